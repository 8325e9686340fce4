"""A person says yes before writes: MCP elicitation before apply_plan (and before a write tool
called without dry_run), under HALO_CONFIRM_WRITES, on both protocol eras, with what Halo
received checked in the sandbox's request log."""

from __future__ import annotations

from decimal import Decimal

import pytest
from mcp import Client
from mcp.types import ElicitResult

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.plans import consent
from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


class Person:
    """Plays the person answering the client's confirmation form."""

    def __init__(self, action: str = "accept", apply: bool = True) -> None:
        self.action, self.apply = action, apply
        self.asked: list[str] = []

    async def __call__(self, _ctx, params) -> ElicitResult:
        self.asked.append(params.message)
        assert params.requested_schema["properties"]["apply"]["type"] == "boolean"
        if self.action == "accept":
            return ElicitResult(action="accept", content={"apply": self.apply})
        return ElicitResult(action=self.action)


def writes(sb) -> list:
    return [e for e in sb.log if e.method != "GET" and e.path.startswith("/api/")]


@pytest.fixture
def world(tmp_path):
    app, transport = sandbox_transport()
    journal = tmp_path / "j.sqlite3"

    def server(**settings):
        return build_server(sandbox_settings(**settings), transport, journal_path=journal)

    return server, app.state.sandbox, journal


async def _active_contract(client) -> dict:
    found = await client.call_tool("search_contracts", {"status": "Active", "type": "Recurring", "limit": 5})
    rows = [r for r in found.structured_content["contracts"] if r.get("value")]
    assert rows, found.structured_content
    return rows[0]


async def _cancel_plan(client) -> tuple[str, dict]:
    contract = await _active_contract(client)
    # the contract's lines are left billing: the plan is the one contract write these tests count
    r = await client.call_tool("update_contract", {"contract_id": contract["id"], "changes": {"status": "Cancelled"},
                                                   "end_recurring_lines": False, "dry_run": True})
    assert not r.is_error, r.content[0].text
    return r.structured_content["plan_id"], contract


@pytest.mark.parametrize("mode", MODES)
async def test_accept_applies_and_records_who_confirmed(world, mode):
    server, sb, _ = world
    person = Person("accept")
    async with Client(server(), elicitation_callback=person, mode=mode) as client:
        plan_id, contract = await _cancel_plan(client)
        assert writes(sb) == []
        r = await client.call_tool("apply_plan", {"plan_id": plan_id})
        assert not r.is_error, r.content[0].text
        assert r.structured_content["status"] == "applied"
        assert r.structured_content["confirmation"] == "accepted"
        plan = (await client.call_tool("get_plan", {"plan_id": plan_id})).structured_content
    assert len(person.asked) == 1
    question = person.asked[0]
    assert f"Apply plan {plan_id} to Halo?" in question
    assert f'"Update contract {contract["id"]}"' in question  # the title, quoted
    assert "0 create(s), 1 update(s), 0 delete(s)" in question
    assert f"- cancel contract {contract['id']} named \"{contract['ref']}\"" in question
    assert "Money per month: -" in question and "to 0.00)" in question
    sent = writes(sb)
    assert len(sent) == 1 and sent[0].path.lower() == "/api/clientcontract"
    assert plan["status"] == "applied" and plan["confirmation"] == "accepted"
    assert plan["confirmed_by"] == {"id": "local", "label": "local"} and plan["confirmed_at"]
    assert plan["applied_by"] == {"id": "local", "label": "local"} and plan["applied_at"]
    assert plan["previewed_by"] == {"id": "local", "label": "local"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", [("decline", True), ("cancel", True), ("accept", False)])
async def test_decline_or_cancel_sends_nothing_and_keeps_the_plan(world, mode, answer):
    server, sb, _ = world
    person = Person(*answer)
    async with Client(server(), elicitation_callback=person, mode=mode) as client:
        plan_id, _contract = await _cancel_plan(client)
        r = await client.call_tool("apply_plan", {"plan_id": plan_id})
        assert r.is_error
        text = r.content[0].text
        assert "nothing was sent to Halo" in text and plan_id in text
        assert ("cancelled" if answer[0] == "cancel" else "declined") in text
        plan = (await client.call_tool("get_plan", {"plan_id": plan_id})).structured_content
    assert len(person.asked) == 1
    assert writes(sb) == []
    assert plan["status"] == "planned"
    assert {s["status"] for s in plan["steps"]} == {"pending"}
    assert plan["confirmation"] == ("cancelled" if answer[0] == "cancel" else "declined")
    assert plan["applied_by"] is None


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cannot_ask_gets_the_plan_applied_and_told_so(world, mode):
    server, sb, _ = world
    async with Client(server(), mode=mode) as client:  # no elicitation callback: no capability
        plan_id, _contract = await _cancel_plan(client)
        r = await client.call_tool("apply_plan", {"plan_id": plan_id})
    assert not r.is_error, r.content[0].text
    assert r.structured_content["status"] == "applied"
    assert r.structured_content["confirmation"] == "unavailable"
    assert "No confirmation was possible" in r.structured_content["message"]
    assert len(writes(sb)) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_write_tool_without_dry_run_asks_the_same_way(world, mode):
    server, sb, journal = world
    person = Person("decline")
    async with Client(server(), elicitation_callback=person, mode=mode) as client:
        contract = await _active_contract(client)
        args = {"contract_id": contract["id"], "changes": {"status": "Cancelled"}, "end_recurring_lines": False}
        r = await client.call_tool("update_contract", args)
        assert r.is_error and "declined" in r.content[0].text
        assert writes(sb) == []
        person.action = "accept"
        r = await client.call_tool("update_contract", args)
        assert not r.is_error, r.content[0].text
        assert r.structured_content["outcome"] == "updated"
        assert r.structured_content["plan"]["confirmation"] == "accepted"
    assert len(person.asked) == 2
    assert "Apply these changes to Halo?" in person.asked[0]
    assert len(writes(sb)) == 1
    with Journal(journal) as j:
        plans = j.list_plans()
    # one plan per call: waiting for the answer (2026 rounds) saved nothing extra
    assert sorted(p["status"] for p in plans) == ["applied", "planned"]


@pytest.mark.parametrize("policy, destructive_asked, plain_asked", [
    ("destructive", True, False), ("always", True, True), ("never", False, False)])
async def test_the_policy_decides_which_plans_are_asked_about(world, policy, destructive_asked, plain_asked):
    server, sb, _ = world
    person = Person("accept")
    async with Client(server(confirm_writes=policy), elicitation_callback=person) as client:
        contract = await _active_contract(client)
        r = await client.call_tool("update_contract", {"contract_id": contract["id"],
                                                       "changes": {"notes": "Reviewed"}})
        assert not r.is_error, r.content[0].text
        plain = r.structured_content["plan"]["confirmation"]
        asked_after_plain = len(person.asked)
        r = await client.call_tool("update_contract", {"contract_id": contract["id"],
                                                       "changes": {"status": "Cancelled"},
                                                       "end_recurring_lines": False})
        assert not r.is_error, r.content[0].text
        destructive = r.structured_content["plan"]["confirmation"]
    assert (asked_after_plain == 1) is plain_asked
    assert plain == ("accepted" if plain_asked else "not_needed")
    assert (len(person.asked) - asked_after_plain == 1) is destructive_asked
    assert destructive == ("accepted" if destructive_asked else "not_needed")
    assert len(writes(sb)) == 2


async def test_renewals_expiring_the_old_contract_are_asked_about(world):
    server, sb, _ = world
    person = Person("decline")
    async with Client(server(), elicitation_callback=person) as client:
        contract = await _active_contract(client)
        r = await client.call_tool("generate_renewals", {"contract_ids": [contract["id"]], "expire_old": "now"})
        assert r.is_error and "declined" in r.content[0].text
    assert writes(sb) == []
    assert f"- expire contract {contract['id']} named \"{contract['ref']}\"" in person.asked[0]
    assert "Money per month: " in person.asked[0] and "not stated" not in person.asked[0]


async def test_lines_added_state_their_money_per_month(world):
    server, sb, _ = world
    person = Person("decline")
    async with Client(server(confirm_writes="always"), elicitation_callback=person) as client:
        contract = await _active_contract(client)
        r = await client.call_tool("add_recurring_items", {"contract_id": contract["id"], "items": [
            {"description": "Backup", "quantity": 3, "unit_price": 10, "billing_frequency": "Monthly"}]})
        assert r.is_error and "declined" in r.content[0].text
    assert "Money per month: +30.00\n" in person.asked[0]
    # the lines, and first the contract's monthly recurring invoice when it has none
    has_monthly = 1 in {h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [contract["id"]])}
    assert f"{1 if has_monthly else 2} create(s), 0 update(s), 0 delete(s)" in person.asked[0]
    assert writes(sb) == []


def test_question_counts_names_and_quotes_data():
    plan = Plan(tool="t", title='Tidy "licences"\u202e')
    plan.add("delete_licence", "Delete licence 7", {"licence_id": 7},
             natural_key={"client_id": 5, "product_code": "SKU-\u202eX\nY"})
    plan.add("create_licence", "Create", {"fields": {}})
    plan.add("add_recurring_lines", "Add", {"items": [{}, {}, {}]})
    plan.summary = consent.money_summary(Decimal("100"), Decimal("70.005"))
    found = consent.consequences(plan)
    assert (found.creates, found.updates, found.deletes) == (4, 0, 1)
    assert found.destructive and consent.needs_confirmation(plan, "destructive")
    text = consent.question(plan)
    assert "Plan: \"Tidy \\\"licences\\\"\\u202e\"" in text
    assert '- delete licence 7 named "SKU-\\u202eX\\nY"' in text
    assert "Money per month: -29.99 (from 100.00 to 70.01)" in text
    assert "\u202e" not in text and text == consent.question(plan)  # deterministic
    plan.steps[0].status = "done"  # what is left only creates
    assert not consent.needs_confirmation(plan, "destructive")
    assert consent.needs_confirmation(plan, "always")
    assert not consent.needs_confirmation(plan, "never")


async def test_a_run_refused_because_another_process_holds_the_plan_records_no_applier(world):
    server, sb, journal_path = world
    async with Client(server(), elicitation_callback=Person("accept")) as client:
        plan_id, _contract = await _cancel_plan(client)
        other = Journal(journal_path)
        try:
            assert other.claim(plan_id, "another-applier") is None  # a live process (this one) holds it
            r = await client.call_tool("apply_plan", {"plan_id": plan_id})
            assert r.is_error and "Nothing was sent by this call" in r.content[0].text
            plan = (await client.call_tool("get_plan", {"plan_id": plan_id})).structured_content
        finally:
            other.release(plan_id, "another-applier")
            other.close()
    assert writes(sb) == []
    assert plan["applied_by"] is None and plan["applied_at"] is None
