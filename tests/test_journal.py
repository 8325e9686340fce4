"""The SQLite journal: plans and steps round-trip, statuses persist, secrets never stored."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan


def _plan() -> Plan:
    plan = Plan(tool="create_contract", title="Create one contract", warnings=["no SLA"], summary={"n": 1})
    plan.add("create_contract", "Create contract 'Acme - Recurring 2026'",
             {"fields": {"client_id": 5, "ref": "Acme - Recurring 2026", "value": "100.00"}},
             natural_key={"client_id": 5, "ref": "Acme - Recurring 2026"},
             request={"method": "POST", "path": "/api/ClientContract", "body": [{"ref": "Acme - Recurring 2026"}]},
             group="Acme")
    plan.add("create_recurring_invoice", "Create the recurring invoice",
             {"client_id": 5, "contract_id": Plan.ref(0), "contract_ref": "Acme - Recurring 2026"})
    return plan


def test_plan_round_trip(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    plan = _plan()
    j.save_plan(plan)
    loaded = j.get_plan(plan.id)
    assert loaded == plan
    assert loaded.steps[1].params["contract_id"] == "$step:0.id"
    assert j.get_plan("plan_missing") is None
    j.close()


def test_saving_the_same_plan_twice_is_refused(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    plan = _plan()
    j.save_plan(plan)
    with pytest.raises(ValueError):
        j.save_plan(plan)


def test_step_status_survives_reopening(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    plan = _plan()
    j.save_plan(plan)
    step = plan.steps[0]
    step.status, step.sent, step.attempts = "sending", {"method": "POST", "path": "/api/ClientContract"}, 1
    j.save_step(plan.id, step)
    j.set_plan_status(plan.id, "applying")
    # no close(): simulate a process that dies; a new connection sees the committed state
    j2 = Journal(path)
    again = j2.get_plan(plan.id)
    assert again.status == "applying"
    assert again.steps[0].status == "sending"
    assert again.steps[0].attempts == 1
    assert again.steps[0].sent["path"] == "/api/ClientContract"
    step.status, step.result = "done", {"id": 77}
    j2.save_step(plan.id, step)
    assert j2.get_plan(plan.id).steps[0].result == {"id": 77}
    j.close()
    j2.close()


def test_wal_mode_and_unknown_step(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    mode = sqlite3.connect(tmp_path / "j.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    plan = _plan()
    j.save_plan(plan)
    plan.steps[0].index = 9
    with pytest.raises(KeyError):
        j.save_step(plan.id, plan.steps[0])
    with pytest.raises(KeyError):
        j.set_plan_status("plan_nope", "applied")


def test_secrets_are_masked(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    plan = Plan(tool="t", title="t")
    plan.add("update_contract", "s", {"contract_id": 1, "fields": {"notes": "x"}},
             request={"method": "POST", "path": "/api/ClientContract",
                      "headers": {"Authorization": "Bearer abc.def"}, "client_secret": "sandbox-secret"})
    j.save_plan(plan)
    raw = path.read_bytes() + (path.with_name(path.name + "-wal").read_bytes()
                               if path.with_name(path.name + "-wal").exists() else b"")
    assert b"sandbox-secret" not in raw
    assert b"abc.def" not in raw
    stored = j.get_plan(plan.id).steps[0].request
    assert stored["client_secret"] == "***"
    assert stored["headers"]["Authorization"] == "***"


def test_mappings(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.remember_mapping("pax8", "  Acme   Corp ", 5)
    j.remember_mapping("pax8", "acme corp", 6)  # same customer, normalised: replaces
    j.remember_mapping("other", "Acme Corp", 9)
    assert j.mappings("pax8") == {"acme corp": 6}
    assert j.mappings("other") == {"acme corp": 9}
    assert j.forget_mapping("pax8", "ACME CORP") is True
    assert j.mappings("pax8") == {}


def test_threads_share_one_journal(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                j.remember_mapping("s", f"c{n}-{i}", i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(j.mappings("s")) == 80


def test_list_plans_newest_first(tmp_path):
    j = Journal(":memory:")
    a, b = _plan(), _plan()
    j.save_plan(a)
    j.save_plan(b)
    ids = [p["id"] for p in j.list_plans()]
    assert set(ids) == {a.id, b.id}
