"""SIGKILL mid-apply: a new process applying the same plan finishes it with zero duplicates.

The sandbox runs on a real loopback port (uvicorn in a thread of this test process, so its
store can be inspected directly); every server is a separate process (``support/killdriver.py``)
with a file journal. For each plan (renewals, licence sync): a first process applies it and is
killed with SIGKILL once a share of the plan's writes has reached the sandbox; a second process
applies the same plan to the end. The result is checked like the fault runs (``support.faultrun``):
exactly the previewed objects, no duplicates, nothing missing, journal == Halo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from support.faultrun import _snapshot, licence_feed, read_journal, renewable_ids, verify

DRIVER = Path(__file__).parent / "support" / "killdriver.py"


def _writes(state, since: int) -> int:
    return sum(1 for e in state.log.entries()[since:]
               if e.method.upper() in ("POST", "DELETE") and e.path.lower().startswith("/api"))


def _driver(base: str, journal: Path, *args: str) -> list[str]:
    return [sys.executable, str(DRIVER), "--base-url", base, "--journal", str(journal), *args]


def _kill_run(tmp_path: Path, *, n: int, m: int, contracts: int, clients: int, kill_at: float) -> dict:
    from halo_contracts.sandbox import SandboxConfig, create_app
    from halo_contracts.sandbox.standalone import serve_in_thread

    app = create_app(SandboxConfig(seed=7, strict=True, contracts=contracts, clients=clients,
                                   rate_limit=100_000, rate_window=1.0))
    state = app.state.sandbox
    journal = tmp_path / "journal.sqlite3"
    fake = SimpleNamespace(state=state, journal_path=journal)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    info: dict = {"kills": {}}
    with serve_in_thread(app) as base:
        initial = _snapshot(fake)
        feed, mappings = licence_feed(fake, m)
        spec = {"renewal_ids": renewable_ids(fake, n), "feed": feed, "mappings": mappings}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        out = tmp_path / "plans.json"
        subprocess.run(_driver(base, journal, "plan", "--spec", str(tmp_path / "spec.json"), "--out", str(out)),
                       check=True, env=env, timeout=180, capture_output=True)
        plans = json.loads(out.read_text())
        previews = plans.pop("previews")
        plans.update(spec)
        # slow each request a little so the kill lands mid-plan
        state.faults.latency = (0.004, 0.012)
        for key in ("renewal", "licence"):
            total = len(previews[key])
            mark = len(state.log)
            a = subprocess.Popen(_driver(base, journal, "apply", "--plan-id", plans[key]), env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 120
            threshold = max(1, int(total * kill_at))
            while _writes(state, mark) < threshold and a.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(a.pid, signal.SIGKILL)
            a.wait(timeout=30)
            a.stdout.close()
            a.stderr.close()
            sent_before_kill = _writes(state, mark)
            rows = read_journal(journal, plans[key])
            info["kills"][key] = {"returncode": a.returncode, "steps": total, "writes_before_kill": sent_before_kill,
                                  "journal_at_kill": dict(sorted(
                                      {s: sum(1 for r in rows if r["status"] == s) for s in
                                       {r["status"] for r in rows}}.items()))}
            b = subprocess.run(_driver(base, journal, "apply", "--plan-id", plans[key]), env=env,
                               capture_output=True, text=True, timeout=300)
            assert b.returncode == 0, f"second process could not finish {key}: {b.stdout[-2000:]} {b.stderr[-2000:]}"
            info["kills"][key]["resume"] = [json.loads(x) for x in b.stdout.splitlines() if x.startswith("{")]
        state.faults.latency = (0.0, 0.0)
        info["problems"] = verify(fake, plans, previews, initial, journal)
    print(json.dumps(info["kills"], indent=1)[:3000])
    return info


def _check(info: dict) -> None:
    for key, k in info["kills"].items():
        assert k["returncode"] == -signal.SIGKILL, f"{key}: the apply process was not killed ({k})"
        assert 0 < k["writes_before_kill"] < k["steps"], f"{key}: the kill did not land mid-apply ({k})"
    assert not info["problems"], "\n".join(info["problems"])


def test_sigkill_mid_apply_ci(tmp_path):
    _check(_kill_run(tmp_path, n=10, m=30, contracts=120, clients=25, kill_at=0.4))


@pytest.mark.slow
def test_sigkill_mid_apply_slow(tmp_path):
    _check(_kill_run(tmp_path, n=200, m=500, contracts=600, clients=60, kill_at=0.5))
