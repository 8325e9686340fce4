"""Even at DEBUG, the log carries no tool result and no Halo data: a canary client name read
from Halo through a tool call over streamable HTTP never appears in a log record."""

from __future__ import annotations

import logging
import uuid

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.http import build_http_app
from halo_contracts.logs import QUIET_LOGGERS

pytestmark = pytest.mark.anyio

TOKEN = "log-token-0123456789abcdef"


async def test_debug_logs_carry_no_results_or_halo_data(tmp_path, caplog) -> None:
    canary = f"Canary{uuid.uuid4().hex[:12]}"
    app, transport = sandbox_transport()
    store = app.state.sandbox.store
    client = store.where("clients")[0]
    store.put("clients", {**client, "name": f"{canary} Holdings"})
    caplog.set_level(logging.DEBUG)
    asgi = build_http_app(sandbox_settings(mcp_tokens=TOKEN), transport=transport,
                          journal_path=tmp_path / "j.sqlite3")
    inner = asgi.app
    async with inner.router.lifespan_context(inner):
        hc = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with hc, Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as mcp:
            result = await mcp.call_tool("find_clients", {"name": canary})
            assert canary in str(result.structured_content)  # the canary is in the result...
            failed = await mcp.call_tool("get_contract", {"contract_id": 2_000_000_000})
            assert failed.is_error
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG was on
    leaked = [f"{r.name} {r.levelname}: {r.getMessage()[:120]}" for r in caplog.records if canary in r.getMessage()]
    assert leaked == []  # ...and in no log record


def test_the_http_libraries_are_quieted_by_their_real_names() -> None:
    import httpcore2
    import httpx2 as httpx2_module

    assert httpx2_module.__name__ in QUIET_LOGGERS and httpcore2.__name__ in QUIET_LOGGERS
    assert "sse_starlette" in QUIET_LOGGERS and "mcp" in QUIET_LOGGERS
