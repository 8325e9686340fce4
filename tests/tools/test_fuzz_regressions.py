"""Minimal reproductions of what the fuzzing found (each was a bare "Error executing tool X").

Each case must end either in a result or in an actionable ToolError (a field and a fix), never
in the SDK's sanitised text for an unexpected exception, and must not write.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.fuzz import Call, Harness, is_actionable, is_bare_crash, schema_names


@pytest.fixture(scope="module")
def rh(tmp_path_factory):
    h = Harness(Path(tmp_path_factory.mktemp("regress")))
    yield h
    h.close()


CASES = [
    pytest.param("reconcile_billing", {"period_start": "0001-01-01", "period_end": "0001-01-01"},
                 id="reconcile_billing-year-1"),
    pytest.param("reconcile_billing", {"period_start": "9999-12-31", "period_end": "9999-12-31"},
                 id="reconcile_billing-year-9999"),
    pytest.param("reconcile_contract_billing", {"contract_id": 1038, "period_start": "9999-12-31",
                                                "period_end": "9999-12-31"}, id="reconcile_contract_billing-9999"),
    pytest.param("review_contract_performance", {"contract_id": 1088, "period_start": "2027-02-07",
                                                 "period_end": "9999-12-31"}, id="review_contract_performance-9999"),
    pytest.param("add_recurring_items", {"contract_id": 1107, "dry_run": True, "items": [
        {"description": "W", "quantity": 3.639110191161471e16, "unit_price": 3.639110191161471e16}]},
                 id="add_recurring_items-huge-amount"),
]


@pytest.mark.parametrize("tool,args", CASES)
def test_boundary_values_end_in_a_result_or_an_actionable_error(rh: Harness, tool, args):
    outcome = rh.call(Call(tool=tool, args=args))
    assert outcome.protocol_error is None
    assert not is_bare_crash(tool, outcome.text), f"unexpected exception: {outcome.text!r} for {args}"
    if outcome.is_error:
        assert is_actionable(outcome.text, schema_names(rh.schema(tool)) | set(args)), outcome.text
    assert not outcome.writes


INT32_MAX = 2**31 - 1


@pytest.mark.parametrize("tool,args", [
    pytest.param("get_contract", {"contract_id": 10**20}, id="get_contract-1e20"),
    pytest.param("list_recurring_items", {"contract_id": 2**63}, id="list_recurring_items-2^63"),
    pytest.param("search_contracts", {"client_id": 10**19}, id="search_contracts-client-1e19"),
    pytest.param("get_contract", {"contract_id": INT32_MAX + 1}, id="get_contract-int32+1"),
])
def test_ids_beyond_halos_int32_are_refused_before_halo(rh: Harness, tool, args):
    """Halo's ids are int32 (the OpenAPI slice: ``format: int32``); a bigger id is garbage to send.

    Observed before the fix: the call is sent, and on the sandbox a 64-bit overflow inside the app
    ends in the SDK's bare "Error executing tool X"."""
    outcome = rh.call(Call(tool=tool, args=args))
    assert not is_bare_crash(tool, outcome.text), f"unexpected exception: {outcome.text!r}"
    assert outcome.is_error, outcome.text[:200]
    assert is_actionable(outcome.text, schema_names(rh.schema(tool)) | set(args)), outcome.text
    assert not outcome.requests, [(e.method, e.path) for e in outcome.requests]
