"""The journal, on both stores (SQLite and PostgreSQL, ``journal_store``): plans and steps
round-trip, statuses persist, secrets never stored. SQLite-only checks say so."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan, placeholder


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


def test_plan_round_trip(journal_store):
    j = journal_store.open()
    plan = _plan()
    j.save_plan(plan)
    loaded = j.get_plan(plan.id)
    assert loaded == plan
    assert loaded.steps[1].params["contract_id"] == placeholder(0)
    assert [(r.path, r.step) for r in loaded.steps[1].refs] == [(("params", "contract_id"), 0)]
    assert j.get_plan("plan_missing") is None
    j.close()


def test_saving_the_same_plan_twice_is_refused(journal_store):
    j = journal_store.open()
    plan = _plan()
    j.save_plan(plan)
    with pytest.raises(ValueError):
        j.save_plan(plan)


def test_step_status_survives_reopening(journal_store):
    j = journal_store.open()
    plan = _plan()
    j.save_plan(plan)
    step = plan.steps[0]
    step.status, step.sent, step.attempts = "sending", {"method": "POST", "path": "/api/ClientContract"}, 1
    j.save_step(plan.id, step)
    j.set_plan_status(plan.id, "applying")
    # no close(): simulate a process that dies; a new connection sees the committed state
    j2 = journal_store.open()
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


def test_sqlite_uses_wal_mode(tmp_path):
    Journal(tmp_path / "j.sqlite3").close()
    mode = sqlite3.connect(tmp_path / "j.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unknown_step_and_plan(journal_store):
    j = journal_store.open()
    plan = _plan()
    j.save_plan(plan)
    plan.steps[0].index = 9
    with pytest.raises(KeyError):
        j.save_step(plan.id, plan.steps[0])
    with pytest.raises(KeyError):
        j.set_plan_status("plan_nope", "applied")


def _stored_bytes(journal_store, tmp_path) -> bytes:
    """Everything the store holds, as bytes (SQLite: the files; PostgreSQL: every row as text)."""
    if journal_store.kind == "sqlite":
        path = tmp_path / "j.sqlite3"
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    import psycopg

    with psycopg.connect(journal_store.target) as conn:
        rows = [conn.execute(f"SELECT t::text FROM {table} t").fetchall()
                for table in ("plans", "steps", "mappings", "claims", "meta")]
    return repr(rows).encode()


def test_secrets_are_masked(journal_store, tmp_path):
    j = journal_store.open()
    plan = Plan(tool="t", title="t")
    plan.add("update_contract", "s", {"contract_id": 1, "fields": {"notes": "x"}},
             request={"method": "POST", "path": "/api/ClientContract",
                      "headers": {"Authorization": "Bearer abc.def"}, "client_secret": "sandbox-secret"})
    j.save_plan(plan)
    raw = _stored_bytes(journal_store, tmp_path)
    assert plan.id.encode() in raw  # the scan sees the stored rows
    assert b"sandbox-secret" not in raw
    assert b"abc.def" not in raw
    stored = j.get_plan(plan.id).steps[0].request
    assert stored["client_secret"] == "***"
    assert stored["headers"]["Authorization"] == "***"


def test_mappings(journal_store):
    j = journal_store.open()
    j.remember_mapping("pax8", "  Acme   Corp ", 5)
    j.remember_mapping("pax8", "acme corp", 6)  # same customer, normalised: replaces
    j.remember_mapping("other", "Acme Corp", 9)
    assert j.mappings("pax8") == {"acme corp": 6}
    assert j.mappings("other") == {"acme corp": 9}
    assert j.forget_mapping("pax8", "ACME CORP") is True
    assert j.mappings("pax8") == {}


def test_threads_share_one_journal(journal_store):
    j = journal_store.open()
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


def test_plans_stored_by_0_1_read_their_id_references_and_keep_text(tmp_path):
    """0.1 stored references as "$step:N.id" strings and had no refs column: on open the column is
    added; on read only the top-level id keys are references, every other string stays text."""
    path = tmp_path / "old.sqlite3"
    j = Journal(path)
    plan = Plan(tool="add_recurring_items", title="t")
    plan.add("create_recurring_invoice", "ri", {"client_id": 5, "contract_id": 9, "contract_ref": "$step:0.id"})
    plan.add("add_recurring_lines", "lines", {"recurring_invoice_id": 1, "contract_id": 9,
                                               "items": [{"description": "$step:0.id"}]})
    j.save_plan(plan)
    j.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE steps SET params = ?, natural_key = ? WHERE idx = 1",
               ('{"contract_id": 9, "items": [{"description": "$step:0.id"}], "recurring_invoice_id": "$step:0.id"}',
                '{"contract_id": 9, "ri_id": "$step:0.id", "ref": "$step:0.id"}'))
    db.execute("ALTER TABLE steps DROP COLUMN refs")
    db.commit()
    db.close()

    j = Journal(path)
    loaded = j.get_plan(plan.id)
    first, second = loaded.steps
    assert first.refs == [] and first.params["contract_ref"] == "$step:0.id"
    assert [(r.path, r.step) for r in second.refs] == [(("params", "recurring_invoice_id"), 0),
                                                       (("natural_key", "ri_id"), 0)]
    assert second.params["recurring_invoice_id"] == placeholder(0)
    assert second.params["items"] == [{"description": "$step:0.id"}]
    assert second.natural_key["ref"] == "$step:0.id"
    # saving a step writes its refs, so the next read does not depend on the old strings any more
    j.save_step(plan.id, second)
    assert j.get_plan(plan.id).steps[1].refs == second.refs
    j.close()


# A journal as schema version 1 wrote it (before plans had owners and confirmations).
_V1_PLANS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE plans (id TEXT PRIMARY KEY, tool TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, warnings TEXT NOT NULL DEFAULT '[]',
    skipped TEXT NOT NULL DEFAULT '[]', summary TEXT NOT NULL DEFAULT '{}');
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO plans(id, tool, title, status, created_at, updated_at)
    VALUES ('plan_0123456789ab', 'create_contract', 'Old plan', 'planned', '2026-01-01T00:00:00+00:00',
            '2026-01-01T00:00:00+00:00');
"""


def test_a_version_1_journal_is_migrated_and_keeps_its_plans(tmp_path):
    from halo_contracts.plans.journal import SCHEMA_VERSION
    from halo_contracts.plans.models import Actor

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_V1_PLANS)
    db.close()
    for _ in range(2):  # opening again does not migrate twice
        with Journal(path) as j:
            old = j.get_plan("plan_0123456789ab")
            assert old is not None and old.title == "Old plan"
            assert old.audit.previewed_by is None and old.audit.confirmation is None
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    columns = {r[1] for r in db.execute("PRAGMA table_info(plans)")}
    db.close()
    assert version == str(SCHEMA_VERSION) == "2"
    assert {"owner", "confirmation", "confirmed_by", "confirmed_at", "applied_by", "applied_at"} <= columns

    with Journal(path) as j:
        who = Actor(id="token:0123456789abcdef", label="token 2")
        plan = _plan()
        plan.audit.previewed_by = who
        j.save_plan(plan)
        j.record_confirmation(plan.id, "accepted", who)
        j.record_applied(plan.id, who)
        back = j.get_plan(plan.id)
    assert back.audit.previewed_by == who and back.audit.confirmed_by == who and back.audit.applied_by == who
    assert back.audit.confirmation == "accepted" and back.audit.confirmed_at and back.audit.applied_at


def test_who_previewed_confirmed_and_applied_is_kept(journal_store):
    from halo_contracts.plans.models import Actor

    j = journal_store.open()
    previewer = Actor(id="token:0123456789abcdef", label="token 2")
    applier = Actor(id="sub:alice", label="alice@example.com")
    plan = _plan()
    plan.audit.previewed_by = previewer
    j.save_plan(plan)
    j.record_confirmation(plan.id, "accepted", applier)
    j.record_applied(plan.id, applier)
    back = journal_store.open().get_plan(plan.id)  # another connection (another replica) sees it
    assert back.audit.previewed_by == previewer
    assert back.audit.confirmed_by == applier and back.audit.applied_by == applier
    assert back.audit.confirmation == "accepted" and back.audit.confirmed_at and back.audit.applied_at
    with pytest.raises(KeyError):
        j.record_applied("plan_missing", applier)


def test_product_mappings_and_licence_lines_are_shared(journal_store):
    a, b = journal_store.open(), journal_store.open()  # two connections, as two replicas
    a.remember_product_mapping("pax8", "MS-365-BP", "M365BP")
    a.remember_licence_line(41, 900)
    a.remember_licence_line(41, 901)  # a new confirmation replaces the last
    assert b.product_mappings("pax8") == {"ms-365-bp": "M365BP"}
    assert b.licence_lines() == {41: 901}


def test_billing_rules_levels_are_shared_and_cleared(journal_store):
    a, b = journal_store.open(), journal_store.open()  # two connections, as two replicas
    a.set_billing_rules("*", 0, {"target": "new", "drop_zero_lines": True})
    a.set_billing_rules("pax8", 7, {"usage": "collapse"})
    a.set_billing_rules("pax8", 7, {"usage": "drop", "invoice_id": 20001})  # a new setting replaces the level
    a.set_billing_rules("ingram", 7, {"exclude": True})
    assert b.billing_rules(["*", "pax8"]) == {("*", 0): {"target": "new", "drop_zero_lines": True},
                                              ("pax8", 7): {"usage": "drop", "invoice_id": 20001}}
    a.set_billing_rules("pax8", 7, {})  # nothing left at a level: it is removed
    assert b.billing_rules(["pax8"]) == {}
    assert b.billing_rules([]) == {}
