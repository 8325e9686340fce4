"""Serving over streamable HTTP: bearer tokens, read-only tokens, Host/Origin, /health."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from halo_contracts.access import TokenStore, load_tokens
from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.config import ConfigError
from halo_contracts.http import build_http_app

pytestmark = pytest.mark.anyio

FULL = "full-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"


@pytest.fixture
def sandbox():
    return sandbox_transport()


@asynccontextmanager
async def running(sandbox, tmp_path, stateless: bool = False, **settings):
    app, transport = sandbox
    s = sandbox_settings(mcp_tokens=f"{FULL},readonly:{READ}", **settings)
    asgi = build_http_app(s, transport=transport, journal_path=tmp_path / "j.sqlite3", stateless=stateless)
    inner = asgi.app
    async with inner.router.lifespan_context(inner):
        yield asgi, app.state.sandbox


def http(asgi, token: str | None = None, host: str = "127.0.0.1:8000", **headers) -> httpx2.AsyncClient:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url=f"http://{host}",
                              headers=headers, timeout=30)


async def test_no_token_and_wrong_token_are_refused(sandbox, tmp_path):
    async with running(sandbox, tmp_path) as (asgi, sb):
        for token in (None, "not-a-valid-token-xxxxxxxx"):
            async with http(asgi, token) as c:
                r = await c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                 headers={"Accept": "application/json, text/event-stream"})
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert len(sb.log) == 0  # nothing reached Halo


async def test_health_needs_no_token_and_shows_no_secret(sandbox, tmp_path):
    async with running(sandbox, tmp_path) as (asgi, sb), http(asgi) as c:
        r = await c.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert FULL not in r.text and "secret" not in r.text.lower()
    assert len(sb.log) == 0


async def test_full_token_lists_and_calls_tools(sandbox, tmp_path):
    async with running(sandbox, tmp_path) as (asgi, sb), http(asgi, FULL) as hc:
        async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"create_contract", "apply_plan", "find_clients"} <= names
            r = await client.call_tool("find_clients", {"name": "acme"})
            assert not r.is_error
    # the caller's token never travels to Halo
    assert all(FULL not in str(e.query) and FULL not in str(e.body) for e in sb.log)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stateless_mode_serves_both_protocol_eras_with_progress(sandbox, tmp_path, mode):
    async with running(sandbox, tmp_path, stateless=True) as (asgi, _sb), http(asgi, FULL) as hc:
        async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc), mode=mode) as client:
            seen = []

            async def on_progress(progress, total, message):
                seen.append(progress)

            r = await client.call_tool("reconcile_billing", {"period_start": "2026-10-01",
                                                             "period_end": "2026-10-31", "limit": 3},
                                       progress_callback=on_progress)
            assert not r.is_error, r.content[0].text
            assert seen, "progress notifications reach the caller in stateless mode"


async def test_read_only_token_sees_and_may_call_only_read_tools(sandbox, tmp_path):
    async with running(sandbox, tmp_path) as (asgi, sb), http(asgi, READ) as hc:
        async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "find_clients" in names
            assert not names & {"create_contract", "apply_plan", "generate_renewals", "plan_license_sync"}
            sb.log.clear()
            r = await client.call_tool("create_contract", {"client_id": 1, "ref": "X - Y 2027", "type": "Recurring",
                                                           "start_date": "2027-01-01"})
            assert r.is_error and "read-only" in r.content[0].text
            assert len(sb.log) == 0


async def test_bad_host_and_bad_origin(sandbox, tmp_path):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with running(sandbox, tmp_path) as (asgi, _sb):
        async with http(asgi, FULL, host="evil.example.com") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code == 421
        async with http(asgi, FULL, Origin="http://evil.example.com") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code == 403


async def test_configured_allow_list(sandbox, tmp_path):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with running(sandbox, tmp_path, allowed_hosts="mcp.example.com") as (asgi, _sb):
        async with http(asgi, FULL, host="127.0.0.1:8000") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code == 421
        async with http(asgi, FULL, host="mcp.example.com") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code != 421


async def test_origins_alone_keep_the_loopback_hosts(sandbox, tmp_path):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with running(sandbox, tmp_path, allowed_origins="https://app.example.com") as (asgi, _sb):
        async with http(asgi, FULL, Origin="https://app.example.com") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code not in (403, 421)
        async with http(asgi, FULL, Origin="http://evil.example.com") as c:
            assert (await c.post("/mcp", json=body, headers=accept)).status_code == 403


def test_http_needs_tokens(sandbox, tmp_path):
    _app, transport = sandbox
    with pytest.raises(ConfigError, match="HALO_MCP_TOKENS"):
        build_http_app(sandbox_settings(), transport=transport, journal_path=tmp_path / "j.sqlite3")


def test_token_store_rules(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# ops team\nfile-token-0123456789abc\nreadonly:file-ro-token-0123456789\n")
    store = load_tokens(sandbox_settings(mcp_token_file=f, mcp_tokens=FULL))
    assert len(store) == 3
    assert store.check("file-ro-token-0123456789").read_only
    assert not store.check(FULL).read_only
    assert store.check("file-token-0123456789ab") is None  # a prefix is not a token
    assert store.from_authorization(f"bearer {FULL}") is not None
    assert store.from_authorization(f"Basic {FULL}") is None
    with pytest.raises(ConfigError, match="16 characters"):
        load_tokens(sandbox_settings(mcp_tokens="short"))
    assert len(TokenStore({})) == 0
