"""Progress notifications as a client sees them, through the real SDK client.

Runs the MCP server in-process on the embedded sandbox (no network) and records every
progress notification of:

* a renewal of every renewable contract ending within ``--within`` days (default 180) on a book
  of ``--contracts`` contracts (default 300): previewed, then applied with
  ``apply_plan`` (how many notifications, how many did not rise above the one before);
* the same renewal previewed (a dry run) while every Halo answer takes ``--latency`` seconds
  (how many notifications the slow dry run sent);
* a portfolio reconciliation held by a small request budget (``--budget``, requests/seconds):
  how many waits were announced.

Usage:

    python bench/progress.py       # defaults: --contracts 300 --within 180 --latency 0.2 --budget 3/2
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import anyio
from mcp import Client

from book_picks import renewed_by_pending
from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

TODAY = date(2026, 6, 15)
SANDBOX = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
               allow_insecure_http=True)  # the sandbox is reached in-process




def renewable(sb, within_days: int) -> list[int]:
    docs = sb.store.where("contracts")
    renewed = {c["previouscontract"] for c in docs if c.get("previouscontract")} | renewed_by_pending(docs)
    horizon = (TODAY + timedelta(days=within_days)).isoformat()
    return [c["id"] for c in docs if c.get("status") == 1 and c.get("end_date") and c["id"] not in renewed
            and TODAY.isoformat() <= c["end_date"][:10] <= horizon]


def summary(seen: list[tuple[float, float | None, str | None]]) -> dict:
    repeats = sum(1 for a, b in itertools.pairwise(seen) if b[0] <= a[0])
    waits = sum(1 for _, _, m in seen if m and re.match(r"waiting \d+ s for Halo's rate limit", m))
    return {"notifications": len(seen), "not_increasing": repeats, "waits_announced": waits}


async def call(client: Client, tool: str, args: dict, seen: list | None = None):
    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    result = await client.call_tool(tool, args, progress_callback=on_progress if seen is not None else None)
    if result.is_error:
        raise SystemExit(f"{tool}: {result.content[0].text}")
    return result


async def main(contracts: int, within: int, latency: float, budget: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(SandboxConfig(clients=max(8, contracts // 4), contracts=contracts, today=TODAY, seed=7,
                                       rate_limit=1_000_000, rate_window=1.0))
        sb = app.state.sandbox
        server = build_server(load_settings(**SANDBOX, rate_limit="1000000/1"), transport=transport(app),
                              journal_path=Path(tmp) / "j.sqlite3", extras={"today": TODAY})
        ids = renewable(sb, within)
        async with Client(server) as client:
            preview = await call(client, "generate_renewals", {"contract_ids": ids, "uplift_percent": 5,
                                                               "dry_run": True})
            plan_id, steps = preview.structured_content["plan_id"], preview.structured_content["steps"]
            applied: list = []
            await call(client, "apply_plan", {"plan_id": plan_id}, applied)
            print(f"renewal apply, {len(ids)} contracts, {steps} steps: {summary(applied)}")

        app2 = create_app(SandboxConfig(clients=40, contracts=150, today=TODAY, seed=7, rate_limit=1_000_000,
                                        rate_window=1.0))
        server2 = build_server(load_settings(**SANDBOX, rate_limit="1000000/1"), transport=transport(app2),
                               journal_path=Path(tmp) / "j2.sqlite3", extras={"today": TODAY})
        ids2 = renewable(app2.state.sandbox, 90)[:3]
        async with Client(server2) as client:
            app2.state.sandbox.faults.latency = (latency, latency)
            dry: list = []
            started = time.perf_counter()
            await call(client, "generate_renewals", {"contract_ids": ids2, "dry_run": True}, dry)
            print(f"renewal preview of {len(ids2)} contracts at {latency} s per answer "
                  f"({time.perf_counter() - started:.1f} s): {summary(dry)}")

        app3 = create_app(SandboxConfig(clients=12, contracts=40, today=TODAY, seed=7))
        server3 = build_server(load_settings(**SANDBOX, rate_limit=budget), transport=transport(app3),
                               journal_path=Path(tmp) / "j3.sqlite3", extras={"today": TODAY})
        async with Client(server3) as client:
            held: list = []
            started = time.perf_counter()
            await call(client, "reconcile_billing", {"period_start": "2026-05-01", "period_end": "2026-05-31"}, held)
            print(f"reconcile_billing with a {budget} budget ({time.perf_counter() - started:.1f} s): "
                  f"{summary(held)}; first wait: "
                  f"{next((m for _, _, m in held if m and m.startswith('waiting')), None)!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=300, help="contracts in the book of the renewal apply")
    parser.add_argument("--within", type=int, default=180, help="renew the contracts ending within this many days")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per Halo answer in the slow dry run")
    parser.add_argument("--budget", default="3/2", help="request budget (requests/seconds) for the held call")
    args = parser.parse_args()
    anyio.run(main, args.contracts, args.within, args.latency, args.budget)
