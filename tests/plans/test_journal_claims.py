"""One applier per plan across processes sharing a journal, on both stores."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from halo_contracts.plans import journal as journal_mod


def test_a_live_holder_keeps_the_claim_and_release_frees_it(journal_store):
    a, b = journal_store.open(), journal_store.open()
    assert a.claim("plan_1", "owner-a") is None
    holder = b.claim("plan_1", "owner-b")
    assert holder is not None and holder["owner"] == "owner-a"
    assert a.claim("plan_1", "owner-a") is None  # the holder may claim again
    a.release("plan_1", "owner-a")
    assert b.claim("plan_1", "owner-b") is None
    assert a.claim("plan_2", "owner-a") is None  # claims are per plan


def test_a_dead_process_loses_its_claim(journal_store):
    code = (f"from halo_contracts.plans.journal import open_journal; j = open_journal({journal_store.target!r}); "
            "assert j.claim('plan_1', 'owner-dead') is None; j.close()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    j = journal_store.open()
    assert j.claim("plan_1", "owner-new") is None  # that process has exited


def test_another_hosts_claim_expires_after_the_lease(journal_store, monkeypatch):
    j = journal_store.open()
    with j._tx() as db:
        db.execute("INSERT INTO claims VALUES ('plan_1', 'elsewhere', 'other-host', 1, 0)")
    assert j.claim("plan_1", "me") is None  # heartbeat at epoch 0: long stale
    with j._tx() as db:
        db.execute("UPDATE claims SET owner='elsewhere', host='other-host', heartbeat=?", (time.time(),))
    assert j.claim("plan_1", "me") is not None
    monkeypatch.setattr(journal_mod, "CLAIM_LEASE_SECONDS", 0.0)
    assert j.claim("plan_1", "me") is None


def test_claims_racing_on_separate_connections_have_one_winner(journal_store):
    journals = [journal_store.open() for _ in range(6)]
    for round_no in range(5):
        plan_id = f"plan_race_{round_no}"
        start = threading.Barrier(len(journals))
        results: dict[int, object] = {}

        def claim(n: int, plan_id: str = plan_id, start: threading.Barrier = start,
                  results: dict[int, object] = results) -> None:
            start.wait()
            results[n] = journals[n].claim(plan_id, f"owner-{n}")

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(journals))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, holder in results.items() if holder is None]
        assert len(results) == len(journals)
        assert len(winners) == 1, results
        assert all(h["owner"] == f"owner-{winners[0]}" for h in results.values() if h is not None)
