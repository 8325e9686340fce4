"""HTTP guards: Host and Origin are matched exactly (a port wildcard matches digits only), and
one token's flood of sessions never locks another token out."""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager

import httpx2
import pytest

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.config import ConfigError
from halo_contracts.http import build_http_app
from halo_contracts.http_guards import host_allowed, host_rules, origin_allowed, origin_rules

FULL = "full-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
OTHER = "other-token-0123456789abcdef"

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "flood", "version": "1"}}}


@asynccontextmanager
async def running(tmp_path, **settings):
    _app, transport = sandbox_transport()
    s = sandbox_settings(mcp_tokens=f"{FULL},readonly:{READ},{OTHER}", **settings)
    asgi = build_http_app(s, transport=transport, journal_path=tmp_path / "j.sqlite3")
    inner = asgi.app
    async with inner.router.lifespan_context(inner):
        yield asgi


def http(asgi, token: str | None = FULL, host: str = "127.0.0.1:8000", **headers) -> httpx2.AsyncClient:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.setdefault("Host", host)
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                              headers=headers, timeout=30)


# ---- Host and Origin ------------------------------------------------------------------------

LOOPBACK_HOSTS = host_rules(["127.0.0.1:*", "localhost:*", "[::1]:*"])
LOOPBACK_ORIGINS = origin_rules(["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:1", "LOCALHOST:65535", "[::1]:8000"])
def test_legitimate_hosts(host) -> None:
    assert host_allowed(host, LOOPBACK_HOSTS)


@pytest.mark.parametrize("host", ["127.0.0.1:8000@evil.com", "127.0.0.1:80.evil.com", "127.0.0.1:8000/x",
                                  "127.0.0.1:", "127.0.0.1:abc", "127.0.0.1", "127.0.0.1.evil.com:80",
                                  "localhost:1 evil", "[::1]:8000@evil.com", "", None, "evil.com"])
def test_attack_hosts(host) -> None:
    assert not host_allowed(host, LOOPBACK_HOSTS)


def test_exact_entries() -> None:
    rules = host_rules(["mcp.example.com", "api.example.com:8443"])
    assert host_allowed("mcp.example.com", rules) and host_allowed("MCP.example.com", rules)
    assert host_allowed("api.example.com:8443", rules)
    assert not host_allowed("mcp.example.com:8000", rules) and not host_allowed("api.example.com:8444", rules)
    assert not host_allowed("mcp.example.com.evil.com", rules)


@pytest.mark.parametrize("origin", [None, "http://localhost:3000", "http://127.0.0.1:6274", "http://[::1]:1"])
def test_legitimate_origins(origin) -> None:
    assert origin_allowed(origin, LOOPBACK_ORIGINS)


@pytest.mark.parametrize("origin", ["http://localhost:1.evil.com", "http://localhost:1@evil.com",
                                    "https://localhost:3000", "http://localhost", "http://localhost:3000/x",
                                    "null", "http://localhost:3000.", "http://evil.com"])
def test_attack_origins(origin) -> None:
    assert not origin_allowed(origin, LOOPBACK_ORIGINS)


def test_malformed_allow_list_entries_are_a_config_error(tmp_path) -> None:
    _app, transport = sandbox_transport()
    with pytest.raises(ConfigError, match="HALO_ALLOWED_HOSTS"):
        build_http_app(sandbox_settings(mcp_tokens=FULL, allowed_hosts="mcp.example.com/path"),
                       transport=transport, journal_path=tmp_path / "j.sqlite3")


@pytest.mark.anyio
async def test_attacks_are_refused_by_the_server(tmp_path) -> None:
    async with running(tmp_path) as asgi:
        async with http(asgi, host="127.0.0.1:8000@evil.com") as c:
            r = await c.post("/mcp", json=LIST, headers=ACCEPT)
            assert r.status_code == 421 and "HALO_ALLOWED_HOSTS" in r.text
        async with http(asgi, Origin="http://localhost:1.evil.com") as c:
            r = await c.post("/mcp", json=LIST, headers=ACCEPT)
            assert r.status_code == 403 and "HALO_ALLOWED_ORIGINS" in r.text
        async with http(asgi, Origin="http://localhost:6274") as c:
            assert (await c.post("/mcp", json=INIT, headers=ACCEPT)).status_code == 200
        async with http(asgi, token=None, host="127.0.0.1:8000@evil.com") as c:
            assert (await c.get("/health")).status_code == 200  # /health stays open


@pytest.mark.anyio
async def test_configured_names_are_exact(tmp_path) -> None:
    async with running(tmp_path, allowed_hosts="mcp.example.com,mcp.example.com:*",
                       allowed_origins="https://mcp.example.com") as asgi:
        for host, ok in (("mcp.example.com", True), ("mcp.example.com:443", True),
                         ("mcp.example.com.evil.com", False), ("mcp.example.com:443@evil.com", False)):
            async with http(asgi, host=host) as c:
                status = (await c.post("/mcp", json=INIT, headers=ACCEPT)).status_code
            assert (status == 200) is ok, (host, status)
        async with http(asgi, host="mcp.example.com", Origin="https://mcp.example.com.evil.com") as c:
            assert (await c.post("/mcp", json=INIT, headers=ACCEPT)).status_code == 403


# ---- sessions per token ---------------------------------------------------------------------


async def initialize(c: httpx2.AsyncClient) -> httpx2.Response:
    return await c.post("/mcp", json=INIT, headers=ACCEPT)


@pytest.mark.anyio
async def test_one_tokens_flood_does_not_lock_out_another(tmp_path) -> None:
    """10,000 initialize calls (legacy handshake) from one read-only token: it never holds more
    than its bound, memory stays flat, and another token still connects at once."""
    flood = int(os.environ.get("FLOOD", "10000"))
    async with running(tmp_path, mcp_max_sessions_per_token=8) as asgi:
        async with http(asgi, token=READ) as c:
            assert (await initialize(c)).status_code == 200
            after_warmup = 0
            for i in range(1, flood):
                r = await initialize(c)
                assert r.status_code == 200, (i, r.status_code, r.text[:200])
                if i == 500:
                    after_warmup = _rss()
            grown = _rss() - after_warmup
        sessions = _session_manager(asgi)._server_instances
        assert len(sessions) <= 8, len(sessions)
        assert grown < 30_000_000, f"memory grew {grown:,} bytes over {flood - 500} more sessions"
        started = time.perf_counter()
        async with http(asgi, token=OTHER) as c:
            r = await initialize(c)
        assert r.status_code == 200 and r.headers.get("mcp-session-id")
        assert time.perf_counter() - started < 2


@pytest.mark.anyio
async def test_busy_sessions_are_not_evicted_and_the_token_gets_429(tmp_path) -> None:
    async with running(tmp_path, mcp_max_sessions_per_token=2) as asgi:
        async with http(asgi, token=FULL) as c:
            ids = [(await initialize(c)).headers["mcp-session-id"] for _ in range(2)]
            limits = _session_limits(asgi)
            key = next(iter(limits.principals))
            for sid in ids:  # both sessions have a request in flight (e.g. an open stream)
                limits.principals[key].sessions[sid].in_flight += 1
            r = await initialize(c)
            assert r.status_code == 429 and "Too many open sessions for this token" in r.text
            assert r.headers["retry-after"]
            limits.principals[key].sessions[ids[0]].in_flight -= 1
            r = await initialize(c)  # the oldest idle one is closed to make room
            assert r.status_code == 200
            assert ids[0] not in _session_manager(asgi)._server_instances
            assert ids[1] in _session_manager(asgi)._server_instances
        async with http(asgi, token=OTHER) as c:
            assert (await initialize(c)).status_code == 200


@pytest.mark.anyio
async def test_delete_and_idle_expiry_free_the_places(tmp_path) -> None:
    async with running(tmp_path, mcp_max_sessions_per_token=3, mcp_session_idle_seconds=0.2) as asgi:
        async with http(asgi, token=FULL) as c:
            sid = (await initialize(c)).headers["mcp-session-id"]
            limits = _session_limits(asgi)
            key = next(iter(limits.principals))
            assert limits.open_sessions(key) == 1
            r = await c.delete("/mcp", headers={"mcp-session-id": sid})
            assert r.status_code == 200 and limits.open_sessions(key) == 0
            await initialize(c)
            assert limits.open_sessions(key) == 1
            limits.clock = lambda: time.monotonic() + 1  # later than the idle timeout
            await initialize(c)
            assert limits.open_sessions(key) == 1  # the expired one was forgotten


def _rss() -> int:
    """Resident memory of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _walk(app):
    while app is not None:
        yield app
        app = getattr(app, "app", None)


def _session_limits(asgi):
    from halo_contracts.http_guards import SessionLimits

    for layer in _walk(asgi.app.middleware_stack):
        if isinstance(layer, SessionLimits):
            return layer
    raise AssertionError("no SessionLimits layer")


def _session_manager(asgi):
    for route in asgi.app.router.routes:
        endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
        for layer in _walk(endpoint):
            manager = getattr(layer, "session_manager", None)
            if manager is not None:
                return manager
    raise AssertionError("no session manager")
