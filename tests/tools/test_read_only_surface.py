"""Read-only mode: the whole tool surface, driven by generated calls, sends ZERO writes to Halo.

Write tools are not listed in read-only mode, but a client may still call them by name; they
are driven here with the schemas the full server advertises, *without* ``dry_run`` (a
read-only server must refuse the apply itself, not rely on the caller previewing).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fuzz import Call, Harness, fuzz_settings, invalid_args, is_api_write, minimal_valid, tool_args


async def _listing() -> dict[str, dict]:
    from halo_contracts.server import build_server

    server = build_server(fuzz_settings(), read_only=False)
    return {t.name: t.input_schema for t in await server.list_tools()}


def _full_schemas() -> dict[str, dict]:
    """Input schemas of every tool as a read-write server advertises them."""
    import anyio

    return anyio.run(_listing)


@pytest.fixture(scope="module")
def ro(tmp_path_factory):
    h = Harness(Path(tmp_path_factory.mktemp("ro")), read_only=True)
    h.full = _full_schemas()
    yield h
    h.close()


def _kinds() -> dict[str, str]:
    from halo_contracts.tools import load_tool_modules
    from halo_contracts.tools.common import REGISTRY

    load_tool_modules()
    return {n: s.kind for n, s in REGISTRY.items()}


def test_read_only_lists_only_read_tools(ro: Harness):
    kinds = _kinds()
    assert ro.tools, "no tools listed"
    assert all(kinds.get(n) == "read" for n in ro.tools), {n: kinds.get(n) for n in ro.tools}
    hidden = sorted(n for n, k in kinds.items() if k != "read")
    assert not set(hidden) & set(ro.tools)


def test_write_tools_refused_with_plausible_arguments(ro: Harness):
    """Each write tool with its most plausible arguments and dry_run false: refused, nothing sent."""
    kinds = _kinds()
    before = ro.log_len()
    for name, schema in ro.full.items():
        if kinds.get(name) == "read":
            continue
        args = minimal_valid(schema, hints=ro.hints)
        if "dry_run" in schema.get("properties", {}):
            args["dry_run"] = False
        outcome = ro.call(Call(tool=name, args=args))
        assert outcome.is_error, f"{name} was not refused in read-only mode: {outcome.text[:300]}"
        assert "read-only" in outcome.text or "read only" in outcome.text.lower(), outcome.text
    writes = [e for e in ro.log_since(before) if is_api_write(e)]
    assert not writes, [(e.method, e.path) for e in writes]


@settings(max_examples=int(__import__("os").environ.get("HALO_FUZZ_RO", "120")), deadline=None, database=None,
          derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_calls_send_no_writes(ro: Harness, data):
    name = data.draw(st.sampled_from(sorted(ro.full)), label="tool")
    schema = ro.full[name]
    force = {"dry_run": False} if "dry_run" in schema.get("properties", {}) else {}
    if data.draw(st.booleans(), label="valid"):
        args = data.draw(tool_args(schema, hints=ro.hints, force=force), label="args")
    else:
        args, _why = data.draw(invalid_args(schema, hints=ro.hints, force=force), label="args")
    outcome = ro.call(Call(tool=name, args=args))
    assert outcome.protocol_error is None, outcome.protocol_error
    assert not outcome.writes, (name, args, [(e.method, e.path) for e in outcome.writes])


def test_whole_run_sent_no_writes(ro: Harness):
    """Over everything this module drove (runs last): not one POST/PUT/PATCH/DELETE to /api."""
    entries = ro.log_since(0)
    assert entries, "the read-only run reached Halo not even once (nothing was exercised)"
    writes = [e for e in entries if is_api_write(e)]
    assert not writes, [(e.method, e.path) for e in writes]


def _generated_calls(schemas: dict[str, dict], hints, n: int) -> list[tuple[str, dict]]:
    """``n`` generated calls (valid or invalid, write tools with dry_run=false), collected up front."""
    out: list[tuple[str, dict]] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def collect(data):
        name = data.draw(st.sampled_from(sorted(schemas)))
        schema = schemas[name]
        force = {"dry_run": False} if "dry_run" in schema.get("properties", {}) else {}
        if data.draw(st.booleans()):
            args = data.draw(tool_args(schema, force=force))
        else:
            args, _ = data.draw(invalid_args(schema, force=force))
        out.append((name, args))

    collect()
    return out


@pytest.mark.anyio
async def test_read_only_http_token_sends_no_writes(tmp_path):
    """Over streamable HTTP with a read-only bearer token (the server itself read-write): the same
    generated calls, plus every write tool with plausible arguments, send zero writes."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from halo_contracts.access import load_tokens
    from halo_contracts.http import build_http_app
    from support.fuzz import Hints, make_sandbox, sandbox_module

    full_token, ro_token = "full-" + "f" * 32, "ro-" + "r" * 32
    app = make_sandbox(strict=True, seed=7, rate_limit=100_000, rate_window=1.0)
    sb = app.state.sandbox
    settings_ = fuzz_settings(mcp_tokens=f"{full_token},readonly:{ro_token}")
    asgi = build_http_app(settings_, transport=sandbox_module().transport(app), journal_path=tmp_path / "j.sqlite3",
                          tokens=load_tokens(settings_))
    schemas = await _listing()
    hints = Hints(contract_ids=[d["id"] for d in sb.store.where("contracts")][:50],
                  client_ids=[d["id"] for d in sb.store.where("clients")],
                  item_ids=[d["id"] for d in sb.store.where("rlines")][:50])
    calls = _generated_calls(schemas, hints, 60)
    calls += [(n, {**minimal_valid(s, hints=hints), **({"dry_run": False} if "dry_run" in s.get("properties", {})
                                                        else {})}) for n, s in schemas.items()]
    inner = asgi.app
    async with inner.router.lifespan_context(inner):
        hc = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                                headers={"Authorization": f"Bearer {ro_token}"}, timeout=60)
        async with hc, Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            kinds = _kinds()
            assert listed and all(kinds.get(n) == "read" for n in listed), listed
            for name, args in calls:
                await client.call_tool(name, args)
    writes = [e for e in sb.log.entries() if is_api_write(e)]
    assert len(sb.log) > 0, "nothing reached Halo: the drive exercised nothing"
    assert not writes, [(e.method, e.path) for e in writes]
