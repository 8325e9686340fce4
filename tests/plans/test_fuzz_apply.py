"""Purposeful apply: write tools called WITHOUT dry_run on generated valid arguments.

Two generators: the generic one (from each tool's input schema, as in test_fuzz_tools) and a
plausible one per write tool (existing ids, ordered dates, sensible amounts, hostile free
text), which gets past the business rules and really writes.

On a sandbox of its own (strict mode: it rejects field names and types that are not Halo's),
every write the server sends after its own validation accepted the arguments must be one Halo
accepts. Properties per call:

* no unexpected exception (bare "Error executing tool X"), no protocol error;
* Halo never answers a write with 4xx (400 ModelState, 404): our validation let nothing through
  that Halo refuses, i.e. we never send Halo garbage;
* an error result that claims "nothing was sent to Halo" really sent no write.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.fuzz import (
    INJECTION_TEXTS,
    UNICODE_TEXTS,
    Call,
    Harness,
    entry_field,
    is_api_write,
    is_bare_crash,
    tool_args,
)

WRITE_TOOLS = ["create_contract", "update_contract", "add_recurring_items", "update_recurring_item",
               "generate_renewals"]
N_APPLY = int(os.environ.get("HALO_FUZZ_APPLY", "12"))
WRITES: Counter = Counter()
OK: Counter = Counter()


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    h = Harness(Path(tmp_path_factory.mktemp("apply")))
    yield h
    h.close()


def _check(wh: Harness, tool: str, args: dict) -> object:
    outcome = wh.call(Call(tool=tool, args=args))
    assert outcome.protocol_error is None, outcome.protocol_error
    assert not is_bare_crash(tool, outcome.text), f"unexpected exception for {args}"
    refused = [(entry_field(e, "method"), entry_field(e, "path"), entry_field(e, "status"), entry_field(e, "body"))
               for e in outcome.writes if 400 <= int(entry_field(e, "status") or 0) < 500]
    assert not refused, f"Halo refused a write our validation accepted: {refused[:2]} for {args}"
    if outcome.is_error and "nothing was sent to halo" in outcome.text.lower():
        assert not outcome.writes, f"claims nothing was sent after {len(outcome.writes)} write(s): {outcome.text[:200]}"
    return outcome


FREE_TEXT = st.one_of(st.sampled_from(INJECTION_TEXTS + [t for t in UNICODE_TEXTS if t.strip()]),
                      st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCDEF-0123456789", min_size=1, max_size=30))


def _day(h: Harness, lo: int, hi: int):
    from datetime import timedelta

    return st.integers(lo, hi).map(lambda d: (h.hints.today + timedelta(days=d)).isoformat())


def plausible(h: Harness, tool: str):
    """Arguments a user would plausibly send (they may still break a business rule)."""
    from datetime import date, timedelta

    hints = h.hints
    money = st.decimals(min_value=0, max_value=20000, places=2).map(float)

    @st.composite
    def create_contract(draw):
        start = draw(_day(h, -400, 400))
        ctype = draw(st.sampled_from(hints.types))
        args = {"client_id": draw(st.sampled_from(hints.client_ids)), "type": ctype, "start_date": start,
                "ref": draw(FREE_TEXT).strip()[:30] + f" {draw(st.integers(0, 10**6))}", "dry_run": False}
        if draw(st.booleans()):
            args["end_date"] = (date.fromisoformat(start) + timedelta(days=draw(st.integers(30, 1100)))).isoformat()
        for key, strat in (("status", st.sampled_from(["Active", "Pending", "On Hold"])),
                           ("billing_frequency", st.sampled_from(hints.frequencies)), ("value", money),
                           ("notes", FREE_TEXT), ("sla_id", st.sampled_from(hints.sla_ids or [1])),
                           ("term_months", st.integers(1, 60))):
            if draw(st.booleans()):
                args[key] = draw(strat)
        if ctype == "Prepaid Hours" or draw(st.booleans()):
            args["prepaid_hours"] = float(draw(st.integers(1, 200)))
            args["hourly_rate"] = draw(st.decimals(min_value=1, max_value=300, places=2).map(float))
        return args

    @st.composite
    def update_contract(draw):
        fields = {"status": st.sampled_from(hints.statuses), "value": money, "notes": FREE_TEXT,
                  "billing_frequency": st.sampled_from(hints.frequencies), "end_date": _day(h, -30, 900),
                  "sla_id": st.sampled_from(hints.sla_ids or [1]),
                  "ref": FREE_TEXT.map(lambda t: t.strip()[:30] or "r")}
        keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True))
        return {"contract_id": draw(st.sampled_from(hints.contract_ids)),
                "changes": {k: draw(fields[k]) for k in keys}, "dry_run": False}

    @st.composite
    def add_recurring_items(draw):
        item = st.fixed_dictionaries({"description": FREE_TEXT.map(lambda t: t.strip()[:60] or "Item"),
                                      "quantity": st.integers(1, 120).map(float),
                                      "unit_price": st.decimals(min_value=0, max_value=500, places=2).map(float)},
                                     optional={"billing_frequency": st.sampled_from(hints.frequencies)})
        return {"contract_id": draw(st.sampled_from(hints.contract_ids)),
                "items": draw(st.lists(item, min_size=1, max_size=3)), "dry_run": False}

    @st.composite
    def update_recurring_item(draw):
        fields = {"quantity": st.integers(1, 120).map(float),
                  "unit_price": st.decimals(min_value=0, max_value=500, places=2).map(float),
                  "description": FREE_TEXT.map(lambda t: t.strip()[:60] or "Item"), "end_date": _day(h, -30, 400)}
        keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2, unique=True))
        return {"item_id": draw(st.sampled_from(hints.item_ids)), "changes": {k: draw(fields[k]) for k in keys},
                "dry_run": False}

    @st.composite
    def generate_renewals(draw):
        ids = draw(st.lists(st.sampled_from(hints.contract_ids), min_size=1, max_size=3, unique=True))
        args = {"contract_ids": ids, "dry_run": False,
                "uplift_percent": draw(st.decimals(min_value=-10, max_value=20, places=1).map(float))}
        if draw(st.booleans()):
            args["term_months"] = draw(st.integers(1, 36))
        if draw(st.booleans()):
            args["expire_old"] = draw(st.sampled_from(["never", "now", "at_end"]))
        return args

    return {"create_contract": create_contract, "update_contract": update_contract,
            "add_recurring_items": add_recurring_items, "update_recurring_item": update_recurring_item,
            "generate_renewals": generate_renewals}[tool]()


N_PLAUSIBLE = int(os.environ.get("HALO_FUZZ_PLAUSIBLE", "15"))


@pytest.mark.parametrize("tool", WRITE_TOOLS)
@settings(max_examples=N_PLAUSIBLE, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(data=st.data())
def test_plausible_writes_are_accepted_by_halo(wh: Harness, tool, data):
    if tool not in wh.tools:
        pytest.fail(f"{tool} is not registered")
    args = data.draw(plausible(wh, tool), label="args")
    outcome = _check(wh, tool, args)
    WRITES[tool] += len(outcome.writes)
    OK[tool] += 0 if outcome.is_error else 1


def test_plausible_generator_reaches_halo(wh: Harness):
    """Runs after the plausible tests (same module): they did write, so they proved something."""
    assert sum(WRITES.values()) > 0, dict(WRITES)
    assert sum(1 for t in WRITE_TOOLS if OK[t]) >= 3, (dict(OK), dict(WRITES))


def test_duplicate_create_refers_to_the_existing_contract(wh: Harness):
    """The same create twice: the second sends no POST for a second contract."""
    args = {"client_id": wh.hints.client_ids[0], "ref": "Dup Guard Ltd - Managed Services 2031", "type": "Recurring",
            "start_date": "2031-01-01", "end_date": "2031-12-31", "dry_run": False}
    first = _check(wh, "create_contract", args)
    assert not first.is_error, first.text
    second = _check(wh, "create_contract", args)
    creates = [e for e in second.writes if entry_field(e, "path").lower().endswith("/clientcontract")
               and not any("id" in b for b in (entry_field(e, "body") or []) if isinstance(b, dict))]
    assert not creates, f"a second contract was created: {second.text[:300]}"
    same = [d for d in wh.state.store.where("contracts") if d.get("ref") == args["ref"]]
    assert len(same) == 1, same


@pytest.mark.parametrize("tool", WRITE_TOOLS)
@settings(max_examples=N_APPLY, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(data=st.data())
def test_applied_writes_are_accepted_by_halo(wh: Harness, tool, data):
    if tool not in wh.tools:
        pytest.fail(f"{tool} is not registered")
    force = {"dry_run": False} if wh.has_dry_run(tool) else {}
    args = data.draw(tool_args(wh.schema(tool), hints=wh.hints, force=force), label="args")
    outcome = _check(wh, tool, args)
    for e in outcome.writes:
        assert is_api_write(e)
