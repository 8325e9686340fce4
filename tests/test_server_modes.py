"""Read-only mode, tool selection, unknown arguments, server info."""

from __future__ import annotations

import pytest
from mcp import Client

from halo_contracts import __version__
from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.server import build_server, selected_tools
from halo_contracts.tools.common import REGISTRY

pytestmark = pytest.mark.anyio


def server_for(tmp_path, **settings):
    app, transport = sandbox_transport()
    server = build_server(sandbox_settings(**settings), transport, journal_path=tmp_path / "j.sqlite3")
    return server, app.state.sandbox


async def test_read_only_mode_hides_and_refuses_writes(tmp_path):
    server, sb = server_for(tmp_path, read_only=True)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert tools, "read tools stay available"
        assert all(t.annotations.read_only_hint for t in tools)
        names = {t.name for t in tools}
        assert "apply_plan" not in names and "create_contract" not in names
        sb.log.clear()
        r = await client.call_tool("apply_plan", {"plan_id": "plan_0123456789ab"})
        assert r.is_error and "read-only" in r.content[0].text
        r = await client.call_tool("update_contract", {"contract_id": 1, "changes": {"notes": "x"}})
        assert r.is_error and "read-only" in r.content[0].text
    assert not [e for e in sb.log if e.method != "GET"]


async def test_every_write_tool_is_declared_as_such():
    for spec in REGISTRY.values():
        assert bool(spec.annotations.read_only_hint) is (spec.kind == "read"), spec.name


@pytest.mark.parametrize(
    ("tools", "disabled", "expect_in", "expect_out"),
    [
        ("contracts,get_plan", None, {"search_contracts", "get_plan"}, {"apply_plan", "find_clients"}),
        (None, "license-sync,reconciliation", {"find_clients"}, {"plan_license_sync", "reconcile_billing"}),
        ("renewals", "generate_renewals", {"find_expiring_contracts"}, {"generate_renewals"}),
    ],
)
async def test_tool_selection(tmp_path, tools, disabled, expect_in, expect_out):
    settings = {}
    if tools:
        settings["tools"] = tools
    if disabled:
        settings["disabled_tools"] = disabled
    server, _sb = server_for(tmp_path, **settings)
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert expect_in <= names and not (expect_out & names)


def test_selected_tools_ignores_unknown_names():
    assert selected_tools(sandbox_settings(tools="no-such-tool")) == []


async def test_unknown_arguments_are_rejected_before_anything_is_sent(tmp_path):
    server, sb = server_for(tmp_path)
    async with Client(server) as client:
        sb.log.clear()
        r = await client.call_tool("find_clients", {"name": "acme", "nmae": "typo"})
    assert r.is_error and "unknown argument" in r.content[0].text and "nmae" in r.content[0].text
    assert len(sb.log) == 0


async def test_server_info_carries_the_version(tmp_path):
    server, _sb = server_for(tmp_path)
    async with Client(server, mode="legacy") as client:
        info = client.initialize_result.server_info if hasattr(client, "initialize_result") else None
        if info is not None:
            assert info.version == __version__
    assert server._lowlevel_server.version == __version__
