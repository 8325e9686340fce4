"""Renewal and licence-sync plans applied through Halo faults end with exactly the expected objects.

Faults: 5% 5xx, bursts of 429 (the sandbox enforces a small compressed window our client does not
pace for), every token expired every 50 requests, random latency, and connections dropped after
a write was stored. Pacing: the same runs with the client's budget equal to the sandbox's limit
(compressed window) show zero 429 answers.

CI variant (unmarked): N=30 renewals, M=80 licence lines. Slow variant (``-m slow``): 200 / 500.
The scenario and its checks live in ``support.faultrun``.
"""

from __future__ import annotations

import functools

import pytest

from support.faultrun import Faults, run_scenario
from support.fuzz import Harness


@pytest.fixture
def quick_backoff(monkeypatch):
    """Back-off delays compressed like the sandbox's window (the client's knob is ``backoff=``;
    the server builds its client with the defaults, so the default is replaced here)."""
    import halo_contracts.halo.transport as client_mod
    from halo_contracts.halo.pacing import Backoff

    monkeypatch.setattr(client_mod, "Backoff", functools.partial(
        Backoff, rate_base=0.05, rate_cap=0.8, rate_attempts=12, retry_base=0.01, retry_cap=0.1))


FAULTY = dict(error_rate=0.05, latency=(0.0, 0.004), drop_after_write=0.05, expire_tokens_every=50)


def _harness(tmp_path, *, contracts: int, clients: int, client_rate: str, sandbox_rate: tuple[int, float]) -> Harness:
    return Harness(tmp_path, sandbox_config={"contracts": contracts, "clients": clients, "seed": 7,
                                             "rate_limit": sandbox_rate[0], "rate_window": sandbox_rate[1]},
                   settings_overrides={"rate_limit": client_rate})


def _run(tmp_path, *, n, m, contracts, clients, faults: Faults):
    h = _harness(tmp_path, contracts=contracts, clients=clients, client_rate=faults.client_rate,
                 sandbox_rate=faults.sandbox_rate)
    try:
        report = run_scenario(h, n=n, m=m, faults=faults)
    finally:
        h.close()
    print(report.line())
    return report


def test_faults_ci(tmp_path, quick_backoff):
    faults = Faults(**FAULTY, sandbox_rate=(40, 1.0), client_rate="100000/1")
    report = _run(tmp_path, n=30, m=80, contracts=120, clients=25, faults=faults)
    assert not report.problems, "\n".join(report.problems)
    assert report.status.get(429, 0) > 0, f"no 429 burst happened: {report.line()}"
    assert report.dropped > 0, f"no connection was dropped after a write: {report.line()}"
    assert sum(v for k, v in report.status.items() if k >= 500) > 0, report.line()


def test_pacing_ci(tmp_path, quick_backoff):
    """The same faults minus the 429 mismatch: our budget equals the sandbox's (50 per 2 s)."""
    faults = Faults(**FAULTY, sandbox_rate=(50, 2.0), client_rate="50/2")
    report = _run(tmp_path, n=30, m=80, contracts=120, clients=25, faults=faults)
    assert not report.problems, "\n".join(report.problems)
    assert report.status.get(429, 0) == 0, f"pacing let 429s through: {report.line()}"


@pytest.mark.slow
def test_faults_slow(tmp_path, quick_backoff):
    faults = Faults(**FAULTY, sandbox_rate=(60, 1.0), client_rate="100000/1")
    report = _run(tmp_path, n=200, m=500, contracts=600, clients=60, faults=faults)
    assert not report.problems, "\n".join(report.problems)
    assert report.status.get(429, 0) > 0


@pytest.mark.slow
def test_pacing_slow(tmp_path, quick_backoff):
    """300 per 300 s compressed 100x in time (30 per 3 s): zero 429s over the whole run."""
    faults = Faults(**FAULTY, sandbox_rate=(30, 3.0), client_rate="30/3")
    report = _run(tmp_path, n=200, m=500, contracts=600, clients=60, faults=faults)
    assert not report.problems, "\n".join(report.problems)
    assert report.status.get(429, 0) == 0, report.line()


def test_checker_sees_duplicates_and_missing_objects(tmp_path):
    """The verification is not vacuous: tampering with Halo after a clean run is reported."""
    from support.faultrun import verify

    h = _harness(tmp_path, contracts=120, clients=25, client_rate="100000/1", sandbox_rate=(100_000, 1.0))
    try:
        report = run_scenario(h, n=3, m=12, faults=Faults())
        assert not report.problems, report.problems
        ctx = report.context
        store = h.state.store
        new_contract = next(d for d in store.where("contracts") if d.get("previouscontract") in
                            set(ctx["plans"]["renewal_ids"]))
        store.insert("contracts", {k: v for k, v in new_contract.items() if k != "id"})
        created = [d for d in store.where("licences") if str(d.get("product_sku", "")).startswith("FLT-")]
        store.insert("licences", {k: v for k, v in created[0].items() if k != "id"})
        store.delete("licences", created[1]["id"])
        problems = verify(h, ctx["plans"], ctx["previews"], ctx["initial"], h.journal_path)
    finally:
        h.close()
    text = "\n".join(problems)
    assert "contracts:" in text and "duplicate" in text, text
    assert "licences:" in text and "missing" in text, text
    assert "renewals: duplicated" in text, text
    assert "still in Halo" in text or "not in Halo" in text, text
