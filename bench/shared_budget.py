"""One Halo budget across processes, or one per process: 429s and the busiest window (issue 18).

``--processes`` processes read contracts through ``HaloClient`` as fast as their budget lets
them for ``--windows`` windows, against one sandbox on a loopback port that enforces
``--requests`` per rolling ``--window`` seconds (429 beyond). Two modes, same work:

* ``local``: each process has its own in-memory budget (what replicas had before issue 18);
* ``postgres``: every process uses ``PostgresRequestBudget`` on one database (what the server
  does when ``HALO_JOURNAL_URL`` is a PostgreSQL URL).

Reported from the sandbox's own log: requests, 429 answers, the busiest rolling window.

    url=$(bash .ci/postgres start /tmp/halo-pg)
    HALO_TEST_POSTGRES_URL=$url python bench/shared_budget.py [--requests 60 --window 3 --windows 4]
    bash .ci/postgres stop /tmp/halo-pg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

WORKER = """
import sys, time, anyio
from halo_contracts.config import load_settings
from halo_contracts.halo.client import HaloClient

base, mode, url, requests, window, duration, workers, ids = sys.argv[1:9]
requests, window, duration, workers = int(requests), float(window), float(duration), int(workers)
ids = [int(i) for i in ids.split(",")]

async def main():
    settings = load_settings(base_url=base, client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit=f"{requests}/{window:g}")
    budget = None
    if mode == "postgres":
        from halo_contracts.halo.pacing_pg import PostgresRequestBudget
        budget = PostgresRequestBudget(url, requests, window, key=base)
    else:
        from halo_contracts.halo.pacing import RequestBudget
        budget = RequestBudget(requests, window)
    async with HaloClient(settings, budget=budget) as halo:
        stop = time.monotonic() + duration

        async def worker(k):
            i = k
            while time.monotonic() < stop:
                await halo.get_contract(ids[i % len(ids)], details=False)
                i += workers

        async with anyio.create_task_group() as tg:
            for k in range(workers):
                tg.start_soon(worker, k)
    if mode == "postgres":
        budget.close()

anyio.run(main)
"""


def busiest(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while stamps[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def run(mode: str, url: str | None, *, processes: int, requests: int, window: float, windows: int,
        workers: int) -> dict:
    from halo_contracts.sandbox import SandboxConfig, create_app
    from halo_contracts.sandbox.standalone import serve_in_thread

    app = create_app(SandboxConfig(seed=7, rate_limit=requests, rate_window=window))
    sb = app.state.sandbox
    ids = ",".join(str(d["id"]) for d in sb.store.where("contracts"))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    duration = window * windows
    with serve_in_thread(app) as base:
        started = time.monotonic()
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, base, mode, url or "", str(requests), str(window),
                                   str(duration), str(workers), ids], env=env, stderr=subprocess.DEVNULL)
                 for _ in range(processes)]
        codes = [p.wait(timeout=duration * 20 + 120) for p in procs]
        elapsed = time.monotonic() - started
    entries = sb.log.entries()
    return {"mode": mode, "processes": processes, "budget": f"{requests}/{window:g}s", "seconds": round(elapsed, 1),
            "requests": len(entries), "answered_429": sum(1 for e in entries if e.status == 429),
            "busiest_window": busiest([e.at for e in entries], window), "exit_codes": codes}


def main() -> int:
    from support.pg import Schema

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--window", type=float, default=3.0)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--pg-url", default=os.environ.get("HALO_TEST_POSTGRES_URL"))
    args = p.parse_args()
    if not args.pg_url:
        p.error("needs a PostgreSQL server: --pg-url or HALO_TEST_POSTGRES_URL (bash .ci/postgres start DIR)")
    kw = {"processes": args.processes, "requests": args.requests, "window": args.window,
          "windows": args.windows, "workers": args.workers}
    results = [run("local", None, **kw)]
    schema = Schema(args.pg_url)
    try:
        results.append(run("postgres", schema.url, **kw))
    finally:
        schema.drop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
