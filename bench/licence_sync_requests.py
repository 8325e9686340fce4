"""Request counts of a distributor licence sync against the embedded sandbox (in-process).

    python bench/licence_sync_requests.py [--lines 500] [--products 21]

Builds a feed of ``--lines`` licences spread over the sandbox's active clients, then:
plan (reads), apply (writes), re-plan (reads, expecting no actions), and prints the Halo
API requests of each phase from the sandbox's request log, with the time the same requests
would need under Halo's hosted limit (300 requests per rolling 5 minutes).
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.plans.executor import apply_plan
from halo_contracts.plans.journal import Journal
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

HOSTED_LIMIT, HOSTED_WINDOW = 300, 300.0


def _settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         allow_insecure_http=True,  # the sandbox is reached in-process
                         rate_limit="1000000/1", tools="license-sync")


def _feed(sb, lines: int, products: int) -> str:
    names = [c["name"] for c in sb.store.where("clients") if not c.get("inactive")]
    rows = ["Customer,Product Code,Product Name,Quantity,Unit Price,Billing Cycle,Term"]
    for name in names:
        for p in range(products):
            rows.append(f'"{name}",BENCH-{p:03d},Product {p},{3 + p % 4},{5 + p % 7}.50,Monthly,P1Y')
    if len(rows) - 1 < lines:
        raise SystemExit(f"only {len(rows) - 1} lines possible; raise --products")
    return "\n".join(rows[: lines + 1]) + "\n"


def _hosted_minutes(requests: int) -> float:
    """Lower bound under a rolling window: every full window of requests beyond the first waits."""
    return max(0, math.ceil(requests / HOSTED_LIMIT) - 1) * HOSTED_WINDOW / 60


async def main(lines: int, products: int) -> None:
    app = create_app(SandboxConfig(rate_limit=1_000_000))
    sb = app.state.sandbox
    with tempfile.TemporaryDirectory() as tmp:
        journal_path = Path(tmp) / "j.sqlite3"
        server = build_server(_settings(), transport=transport(app), journal_path=journal_path)
        feed = _feed(sb, lines, products)

        async def plan() -> dict:
            async with Client(server) as client:
                result = await client.call_tool("plan_license_sync", {"source": feed, "cleanup": False,
                                                                       "distributor": "Pax8"})
            if result.is_error:
                raise SystemExit(result.content[0].text)
            return result.structured_content

        phases: list[tuple[str, int, int, float]] = []
        sb.log.clear()
        t0 = time.perf_counter()
        out = await plan()
        phases.append(("plan", sb.log.count(path_prefix="/api"), sb.log.count(path_prefix="/auth"),
                       time.perf_counter() - t0))

        sb.log.clear()
        t0 = time.perf_counter()
        journal = Journal(journal_path)
        try:
            async with HaloClient(_settings(), transport=transport(app)) as halo:
                outcome = await apply_plan(out["plan_id"], journal=journal, halo=halo)
        finally:
            journal.close()
        phases.append(("apply", sb.log.count(path_prefix="/api"), sb.log.count(path_prefix="/auth"),
                       time.perf_counter() - t0))
        assert outcome.ok, outcome.message

        sb.log.clear()
        t0 = time.perf_counter()
        again = await plan()
        phases.append(("re-plan", sb.log.count(path_prefix="/api"), sb.log.count(path_prefix="/auth"),
                       time.perf_counter() - t0))

    print(f"feed: {out['feed_lines']} lines, {out['summary']['customers']['matched']} customers matched, "
          f"{out['steps']} steps; re-plan steps: {again['steps']}")
    print(f"{'phase':8} {'api':>5} {'token':>5} {'in-process s':>12} {'hosted min (>=)':>16}")
    for name, api, auth, secs in phases:
        print(f"{name:8} {api:5d} {auth:5d} {secs:12.2f} {_hosted_minutes(api + auth):16.1f}")
    total = sum(p[1] + p[2] for p in phases)
    print(f"total requests {total}; under {HOSTED_LIMIT}/{int(HOSTED_WINDOW)}s that is at least "
          f"{_hosted_minutes(total):.1f} minutes of waiting")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--products", type=int, default=21)
    args = parser.parse_args()
    for noisy in ("httpx", "httpx2", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    anyio.run(main, args.lines, args.products)
