"""Read tools under faults give the same answer as without them, or a clear error; never a
different answer (a page lost or read twice while retrying would change totals silently).

Each read tool is called with plausible arguments on a quiet sandbox (the reference answer),
then again, several times, with 5% 5xx, bursts of 429, every token expired every 50 requests and
random latency. Every faulty answer must equal the reference (fields that describe the reading
itself, like request counts, excepted) or be an actionable error; nothing is written.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

import pytest

from support.faultrun import Faults, install_token_expiry, set_faults
from support.fuzz import Call, Harness, is_actionable, is_bare_crash, schema_names

VOLATILE = {"requests", "pages", "records_read", "elapsed", "seconds", "generated_at", "cursor", "next_cursor"}


@pytest.fixture
def quick_backoff(monkeypatch):
    import halo_contracts.halo.transport as client_mod
    from halo_contracts.halo.pacing import Backoff

    monkeypatch.setattr(client_mod, "Backoff", functools.partial(
        Backoff, rate_base=0.05, rate_cap=0.8, rate_attempts=12, retry_base=0.01, retry_cap=0.1))


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in VOLATILE}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _calls(h: Harness) -> list[tuple[str, dict]]:
    store = h.state.store
    today = h.hints.today
    month_end = today.replace(day=1) - timedelta(days=1)
    month_start = month_end.replace(day=1)
    active = [d for d in store.where("contracts") if d.get("status") == 1]
    recurring = next(d["id"] for d in active if d.get("contracttype") == 1)
    prepaid = next((d["id"] for d in active if d.get("contracttype") == 2), recurring)
    client = active[0]["client_id"]
    period = {"period_start": month_start.isoformat(), "period_end": month_end.isoformat()}
    calls = [
        ("search_contracts", {"limit": 50}),
        ("search_contracts", {"client_id": client}),
        ("find_expiring_contracts", {"within_days": 120}),
        ("find_low_prepaid_balances", {}),
        ("summarize_contracts", {"group_by": "client"}),
        ("reconcile_billing", period),
        ("reconcile_contract_billing", {"contract_id": recurring, **period}),
        ("get_contract", {"contract_id": recurring}),
        ("list_recurring_items", {"contract_id": recurring}),
        ("check_prepaid_balance", {"contract_id": prepaid}),
        ("review_contract_performance", {"contract_id": recurring}),
        ("find_clients", {"name": active[0].get("client_name") or "ac"}),
        ("list_reference_data", {"kind": "slas"}),
    ]
    return [(t, a) for t, a in calls if t in h.tools]


def test_read_tools_under_faults_answer_the_same(tmp_path: Path, quick_backoff):
    h = Harness(tmp_path, sandbox_config={"contracts": 300, "clients": 40})
    try:
        calls = _calls(h)
        reference = {}
        for tool, args in calls:
            o = h.call(Call(tool=tool, args=args))
            assert not o.is_error, (tool, args, o.text[:300])
            reference[(tool, str(args))] = _strip(o.result.structured_content)
        install_token_expiry(h, 50)
        set_faults(h, Faults(error_rate=0.05, latency=(0.0, 0.003), sandbox_rate=(60, 1.0)))
        differing, errors, same = [], [], 0
        start = h.log_len()
        for _round in range(3):
            for tool, args in calls:
                o = h.call(Call(tool=tool, args=args))
                assert not is_bare_crash(tool, o.text), (tool, args)
                if o.is_error:
                    assert is_actionable(o.text, schema_names(h.schema(tool))), o.text[:300]
                    errors.append((tool, o.text[:160]))
                    continue
                if _strip(o.result.structured_content) != reference[(tool, str(args))]:
                    differing.append((tool, args))
                else:
                    same += 1
        entries = h.log_since(start)
        set_faults(h, None)
    finally:
        h.close()
    statuses = {e.status for e in entries}
    assert 429 in statuses and (500 in statuses or 502 in statuses or 503 in statuses), statuses
    assert not [e for e in entries if e.method.upper() in ("POST", "DELETE") and e.path.lower().startswith("/api")]
    assert not differing, f"answers changed under faults: {differing}"
    assert same >= len(calls) * 2, f"too many errors under faults ({len(errors)}): {errors[:5]}"
