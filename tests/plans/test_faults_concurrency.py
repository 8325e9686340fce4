"""Applying the same plan more than once AT THE SAME TIME still creates each object once.

* In one server: three concurrent ``apply_plan`` calls per plan (a double-clicked "apply", two
  assistants sharing a server), with dropped answers and 5xx on.
* In two server processes sharing one journal (a file, e.g. Claude Desktop and Claude Code each
  starting the server with the default data directory; or one PostgreSQL database, replicas)
  applying the same plans at once against a sandbox on a loopback port.

Checked like the fault runs: exactly the previewed objects, no duplicates, journal == Halo.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from support.faultrun import (
    Faults,
    _snapshot,
    build_plans,
    licence_feed,
    plan_steps,
    renewable_ids,
    set_faults,
    verify,
)
from support.fuzz import Harness

DRIVER = Path(__file__).parents[1] / "support" / "killdriver.py"


def test_concurrent_apply_in_one_server(tmp_path):
    h = Harness(tmp_path, sandbox_config={"contracts": 120, "clients": 25})
    try:
        initial = _snapshot(h)
        plans = build_plans(h, 12, 40)
        previews = {k: plan_steps(h, plans[k]) for k in ("renewal", "licence")}
        set_faults(h, Faults(error_rate=0.03, drop_after_write=0.05))
        outcomes = []
        for _round in range(20):
            futures = [h.portal.start_task_soon(h.client.call_tool, "apply_plan", {"plan_id": plans[key]})
                       for key in ("renewal", "licence") for _ in range(3)]
            concurrent.futures.wait(futures, timeout=300)
            outcomes = [f.result() for f in futures]
            if all(not r.is_error and r.structured_content.get("status") == "applied" for r in outcomes):
                break
        set_faults(h, None)
        assert all(not r.is_error for r in outcomes), [r.content[0].text[:200] for r in outcomes if r.is_error]
        problems = verify(h, plans, previews, initial, h.journal_path)
    finally:
        h.close()
    assert not problems, "\n".join(problems)


def _driver(base: str, journal: Path | str, *args: str) -> list[str]:
    return [sys.executable, str(DRIVER), "--base-url", base, "--journal", str(journal), *args]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_processes_apply_the_same_plans_at_once(tmp_path, request, store):
    from test_kill import _plan_in_process

    from halo_contracts.sandbox import SandboxConfig, create_app
    from halo_contracts.sandbox.standalone import serve_in_thread

    app = create_app(SandboxConfig(seed=7, strict=True, contracts=120, clients=25, rate_limit=100_000,
                                   rate_window=1.0))
    state = app.state.sandbox
    journal = tmp_path / "journal.sqlite3" if store == "sqlite" else request.getfixturevalue("pg_url")
    fake = SimpleNamespace(state=state, journal_path=journal)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with serve_in_thread(app) as base:
        initial = _snapshot(fake)
        feed, mappings = licence_feed(fake, 30)
        spec = {"renewal_ids": renewable_ids(fake, 10), "feed": feed, "mappings": mappings}
        plans, previews = _plan_in_process(base, journal, spec)
        plans.update(spec)
        state.faults.latency = (0.002, 0.006)
        both = ["--plan-id", plans["renewal"], "--plan-id", plans["licence"]]
        outs = [open(tmp_path / f"p{i}.out", "wb") for i in range(2)]  # noqa: SIM115
        procs = [subprocess.Popen(_driver(base, journal, "apply", *both), env=env, stdout=outs[i],
                                  stderr=subprocess.DEVNULL) for i in range(2)]
        deadline = time.monotonic() + 300
        for p in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
        for f in outs:
            f.close()
        state.faults.latency = (0.0, 0.0)
        lines = [json.loads(x) for i in range(2) for x in (tmp_path / f"p{i}.out").read_text().splitlines()
                 if x.startswith("{")]
        # whatever the two processes said, a third run finishes what is left
        subprocess.run(_driver(base, journal, "apply", *both), env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300, check=False)
        problems = verify(fake, plans, previews, initial, journal)
    print(json.dumps(lines)[:2000])
    assert not problems, "\n".join(problems)
