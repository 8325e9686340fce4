"""One applier per plan across processes sharing a journal file."""

from __future__ import annotations

import subprocess
import sys

from halo_contracts.plans import journal as journal_mod
from halo_contracts.plans.journal import Journal


def test_a_live_holder_keeps_the_claim_and_release_frees_it(tmp_path):
    path = tmp_path / "j.sqlite3"
    a, b = Journal(path), Journal(path)
    assert a.claim("plan_1", "owner-a") is None
    holder = b.claim("plan_1", "owner-b")
    assert holder is not None and holder["owner"] == "owner-a"
    assert a.claim("plan_1", "owner-a") is None  # the holder may claim again
    a.release("plan_1", "owner-a")
    assert b.claim("plan_1", "owner-b") is None
    assert a.claim("plan_2", "owner-a") is None  # claims are per plan
    a.close()
    b.close()


def test_a_dead_process_loses_its_claim(tmp_path):
    path = tmp_path / "j.sqlite3"
    code = (f"from halo_contracts.plans.journal import Journal; j = Journal({str(path)!r}); "
            "assert j.claim('plan_1', 'owner-dead') is None; j.close()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    j = Journal(path)
    assert j.claim("plan_1", "owner-new") is None  # that process has exited
    j.close()


def test_another_hosts_claim_expires_after_the_lease(tmp_path, monkeypatch):
    j = Journal(tmp_path / "j.sqlite3")
    with j._tx() as db:
        db.execute("INSERT INTO claims VALUES ('plan_1', 'elsewhere', 'other-host', 1, 0)")
    assert j.claim("plan_1", "me") is None  # heartbeat at epoch 0: long stale
    with j._tx() as db:
        db.execute("UPDATE claims SET owner='elsewhere', host='other-host', heartbeat=strftime('%s','now')")
    assert j.claim("plan_1", "me") is not None
    monkeypatch.setattr(journal_mod, "CLAIM_LEASE_SECONDS", 0.0)
    assert j.claim("plan_1", "me") is None
    j.close()
