"""Sustained request rate under the budget: how much of a (compressed) rolling window we use.

The sandbox enforces Halo's rule (N requests per rolling W seconds, 429 beyond) and our
``HaloClient`` paces itself to the same budget. Several workers read contracts as fast as the
budget lets them for ``--windows`` windows (at least 2). Reported, from the sandbox's own log:

* requests per window sent vs the budget (utilisation = requests / (N x run seconds / W)), and
  the steady-state utilisation after the first window (whose N requests may all go at once);
* the busiest rolling window seen by the sandbox (must be <= N);
* 429 answers (must be 0).

Halo's hosted limit is 300 per 300 s; the default here compresses it 100x in time (30 per 3 s)
so a run of several windows takes seconds. Absolute rates vary by machine; the ratios do not.

    python bench/sustained_rate.py [--requests 30 --window 3 --windows 4 --workers 6]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import anyio

from halo_contracts.config import load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.pacing import RequestBudget
from halo_contracts.sandbox import SandboxConfig, create_app, transport


def busiest_window(stamps: list[float], window: float) -> int:
    best = 0
    j = 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def run(requests: int, window: float, windows: int, workers: int, phase: str = "reads") -> dict:
    app = create_app(SandboxConfig(seed=7, rate_limit=requests, rate_window=window))
    sb = app.state.sandbox
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             allow_insecure_http=True,  # the sandbox is reached in-process
                             rate_limit=f"{requests}/{window:g}")
    budget = RequestBudget(requests, window)  # a fresh budget (the process-wide one may carry earlier stamps)
    ids = [d["id"] for d in sb.store.where("contracts")]
    duration = window * windows
    async with HaloClient(settings, transport=transport(app), budget=budget) as halo:
        started = time.monotonic()
        wall0 = time.time()
        stop = started + duration
        done = 0

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < stop:
                await halo.get_contract(ids[i % len(ids)], details=False)
                done += 1
                i += workers

        async with anyio.create_task_group() as tg:
            for k in range(workers):
                tg.start_soon(worker, k)
        elapsed = time.monotonic() - started
    entries = sb.log.entries()
    stamps = sorted(e.at for e in entries)
    statuses: dict[int, int] = {}
    for e in entries:
        statuses[e.status] = statuses.get(e.status, 0) + 1
    span = elapsed
    allowed = requests * span / window
    # steady state: after the first window (whose requests may all go at once)
    later = [t for t in stamps if t >= wall0 + window]
    steady_span = span - window
    steady = len(later) / (requests * steady_span / window) if steady_span > 0 else float("nan")
    return {
        "budget": f"{requests} per {window:g} s",
        "windows_run": round(span / window, 2),
        "workers": workers,
        "requests_sent": len(entries),
        "requests_per_window": round(len(entries) / (span / window), 1),
        "utilisation": round(len(entries) / allowed, 3),
        "steady_state_utilisation": round(steady, 3),
        "busiest_rolling_window": busiest_window(stamps, window),
        "status_429": statuses.get(429, 0),
        "statuses": statuses,
        "client_waited_s": round(budget.waited, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=30)
    p.add_argument("--window", type=float, default=3.0)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--workers", type=int, default=6)
    ns = p.parse_args()
    if ns.windows < 2:
        p.error("--windows must be at least 2")
    logging.disable(logging.WARNING)
    result = anyio.run(run, ns.requests, ns.window, ns.windows, ns.workers)
    print(json.dumps(result, indent=1))
    ok = (result["status_429"] == 0 and result["steady_state_utilisation"] >= 0.9
          and result["busiest_rolling_window"] <= ns.requests)
    print("PASS" if ok else "FAIL", "(target: >= 90% of the budget, zero 429s, no window above the budget)")


if __name__ == "__main__":
    main()
