"""Plans belong to whoever previewed them (HTTP): another token can neither read nor apply
a plan, and is answered exactly as for a plan that does not exist."""

from __future__ import annotations

from contextlib import asynccontextmanager, contextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from halo_contracts.access import TokenInfo, TokenStore, caller_principal, token_principal
from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.http import build_http_app

pytestmark = pytest.mark.anyio

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
READER = "reader-token-0123456789abcd"
NO_SUCH_PLAN = "plan_000000000000"


@asynccontextmanager
async def serving(tmp_path):
    app, transport = sandbox_transport()
    settings = sandbox_settings(mcp_tokens=f"{ALICE},{BOB},readonly:{READER}")
    asgi = build_http_app(settings, transport=transport, journal_path=tmp_path / "j.sqlite3")
    async with asgi.app.router.lifespan_context(asgi.app):
        yield asgi, app.state.sandbox


@asynccontextmanager
async def connect(asgi, token: str):
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                                  headers={"Authorization": f"Bearer {token}"}, timeout=30) as hc:
        async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as client:
            yield client


def _writes(sb) -> list:
    return [e for e in sb.log if e.method != "GET" and e.path.startswith("/api/")]


async def _alice_plan(client) -> str:
    found = await client.call_tool("search_contracts", {"status": "Active", "limit": 1})
    contract_id = found.structured_content["contracts"][0]["id"]
    r = await client.call_tool("update_contract", {"contract_id": contract_id, "changes": {"notes": "Reviewed"},
                                                   "dry_run": True})
    assert not r.is_error, r.content[0].text
    return r.structured_content["plan_id"]


async def test_another_token_can_neither_read_nor_apply_a_plan(tmp_path):
    async with serving(tmp_path) as (asgi, sb):
        async with connect(asgi, ALICE) as alice:
            plan_id = await _alice_plan(alice)
            mine = await alice.call_tool("get_plan", {"plan_id": plan_id})
            assert not mine.is_error
        async with connect(asgi, BOB) as bob:
            answers = {}
            for tool in ("get_plan", "apply_plan"):
                theirs = await bob.call_tool(tool, {"plan_id": plan_id})
                missing = await bob.call_tool(tool, {"plan_id": NO_SUCH_PLAN})
                assert theirs.is_error and missing.is_error
                # the same answer as for a plan that does not exist: nothing leaks
                assert theirs.content[0].text.replace(plan_id, "X") == missing.content[0].text.replace(
                    NO_SUCH_PLAN, "X")
                assert theirs.structured_content is None
                answers[tool] = theirs.content[0].text
            assert "there is no plan" in answers["get_plan"]
        assert _writes(sb) == []
        async with connect(asgi, READER) as reader:
            r = await reader.call_tool("get_plan", {"plan_id": plan_id})
            assert r.is_error and "there is no plan" in r.content[0].text
        async with connect(asgi, ALICE) as alice:
            applied = await alice.call_tool("apply_plan", {"plan_id": plan_id})
            assert not applied.is_error, applied.content[0].text
            shown = (await alice.call_tool("get_plan", {"plan_id": plan_id})).structured_content
    assert len(_writes(sb)) == 1
    owner = token_principal(ALICE, "token 1")
    for key in ("previewed_by", "applied_by"):
        assert shown[key] == {"id": owner.id, "label": "token 1"}
    assert shown["confirmation"] == "not_needed"  # a notes change is not destructive
    assert ALICE not in str(shown) and ALICE[:12] not in str(shown)
    assert ALICE.encode() not in (tmp_path / "j.sqlite3").read_bytes()


async def test_read_only_token_reads_only_its_own_plans(tmp_path):
    async with serving(tmp_path) as (asgi, sb):
        async with connect(asgi, ALICE) as alice:
            plan_id = await _alice_plan(alice)
        async with connect(asgi, READER) as reader:
            names = {t.name for t in (await reader.list_tools()).tools}
            assert "get_plan" in names and "apply_plan" not in names
            assert (await reader.call_tool("get_plan", {"plan_id": plan_id})).is_error
            assert (await reader.call_tool("apply_plan", {"plan_id": plan_id})).is_error
    assert _writes(sb) == []


def test_principals_are_hashes_of_tokens_never_the_tokens():
    store = TokenStore({ALICE: TokenInfo("token 1", False)})
    who = caller_principal({"authorization": f"Bearer {ALICE}"}, store)
    assert who.id.startswith("token:") and len(who.id) == len("token:") + 16 and ALICE not in who.id
    assert who == token_principal(ALICE, "token 1")
    assert caller_principal(None, None).id == "local"
    assert caller_principal({"authorization": "Bearer not-a-known-token-xxxx"}, store).id == "unknown"
    assert token_principal(BOB, "token 1").id != who.id


async def test_signed_in_people_own_their_plans_by_sub(tmp_path):
    from test_oauth import IdentityProvider
    from test_oauth import running as signed_in_server

    idp = IdentityProvider()
    dana, sam = idp.token(), idp.token(sub="user-7", name="Sam Ops")
    async with signed_in_server(idp, tmp_path) as (asgi, sb):
        async with connect(asgi, dana) as client:
            plan_id = await _alice_plan(client)
            shown = (await client.call_tool("get_plan", {"plan_id": plan_id})).structured_content
        async with connect(asgi, sam) as client:
            assert (await client.call_tool("get_plan", {"plan_id": plan_id})).is_error
            assert (await client.call_tool("apply_plan", {"plan_id": plan_id})).is_error
    assert shown["previewed_by"] == {"id": "sub:user-42", "label": "Dana Finance"}
    assert _writes(sb) == []


@contextmanager
def on_loopback(asgi):
    """Serve ``asgi`` with uvicorn on a free loopback port for the length of the block (the
    in-process ASGI transport buffers whole responses, so a question pushed mid-call on a legacy
    connection could never reach the client through it)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Person:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, _ctx, params):
        from mcp.types import ElicitResult

        self.asked.append(params.message)
        return ElicitResult(action="accept", content={"apply": True})


async def _cancel_over_http(base: str, mode: str, person: Person):
    async with httpx2.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ALICE}"}, timeout=30) as hc:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=hc), mode=mode,
                          elicitation_callback=person) as client:
            found = await client.call_tool("search_contracts", {"status": "Active", "limit": 1})
            contract_id = found.structured_content["contracts"][0]["id"]
            r = await client.call_tool("update_contract", {"contract_id": contract_id,
                                                           "changes": {"status": "Cancelled"},
                                                           "end_recurring_lines": False})
    assert not r.is_error, r.content[0].text
    return contract_id, r.structured_content


@pytest.mark.parametrize("stateless", [False, True])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_confirmation_over_http_both_eras(tmp_path, mode, stateless):
    app, transport = sandbox_transport()
    settings = sandbox_settings(mcp_tokens=ALICE)
    asgi = build_http_app(settings, transport=transport, journal_path=tmp_path / "j.sqlite3", stateless=stateless)
    sb, person = app.state.sandbox, Person()
    with on_loopback(asgi) as base:
        contract_id, result = await _cancel_over_http(base, mode, person)
    assert len(_writes(sb)) == 1
    if mode == "legacy" and stateless:
        # a legacy stateless request has no channel for a question pushed mid-call: applied as
        # without elicitation, and the result says so
        assert result["plan"]["confirmation"] == "unavailable" and person.asked == []
        assert "No confirmation was possible" in result["message"]
    else:
        assert result["plan"]["confirmation"] == "accepted"
        assert len(person.asked) == 1 and f"cancel contract {contract_id}" in person.asked[0]
