"""Halo requests made by the renewal and prepaid tools on books of 100 and 1,000 contracts.

Runs the MCP server in-process on the embedded sandbox (no network) and counts the requests
the sandbox received, from its own request log. Usage:

    python bench/renewal_requests.py            # 100 and 1,000 contracts
    python bench/renewal_requests.py 100 5000   # other sizes

Measured per book: the expiring-contracts report, the low-prepaid sweep, a renewal of 50
contracts (preview = reads only, then apply = the writes of the previewed plan, then the same
renewal asked again), a renewal of one contract (targeted reads), and previews of three
contracts and of ten contracts of two clients (the read strategy chosen against the book's
size). The request budget is raised for the run (sandbox and client) so the figures are not slowed by pacing;
the counts do not depend on it.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import anyio
from mcp import Client

from book_picks import renewed_by_pending
from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

TODAY = date(2026, 6, 15)
RENEW = 50




def classify(entry) -> str:
    path = entry.path.lower().rstrip("/")
    if entry.method == "POST":
        return "writes"
    if path.startswith("/api/clientcontract/"):
        return "contract details"
    if path == "/api/clientcontract":
        return "contract list pages"
    if path.startswith("/auth"):
        return "token"
    return "other reads"


async def measure(size: int, workdir: Path) -> list[dict]:
    app = create_app(SandboxConfig(clients=max(8, size // 5), contracts=size, today=TODAY, seed=7,
                                   rate_limit=1_000_000, rate_window=1.0))
    sb = app.state.sandbox
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             allow_insecure_http=True,  # the sandbox is reached in-process
                             tools="prepaid,renewals,plans", rate_limit="1000000/1")
    server = build_server(settings, transport=transport(app), journal_path=workdir / f"j{size}.sqlite3",
                          extras={"today": TODAY})
    docs = sb.store.where("contracts")
    active = sum(1 for c in docs if c.get("active"))
    prepaid = sum(1 for c in docs if c.get("contracttype") == 2 and c.get("status") == 1)
    renewed = {c["previouscontract"] for c in docs if c.get("previouscontract")} | renewed_by_pending(docs)
    renewable = [c["id"] for c in docs if c.get("status") == 1 and c.get("end_date") and c["id"] not in renewed]
    rows: list[dict] = []

    async def run(label: str, tool: str, args: dict) -> dict:
        sb.log.clear()
        started = time.perf_counter()
        result = await client.call_tool(tool, args)
        elapsed = time.perf_counter() - started
        if result.is_error:
            raise SystemExit(f"{label}: {result.content[0].text}")
        counts = Counter(classify(e) for e in sb.log)
        rows.append({"book": size, "operation": label, "total": len(sb.log), **counts, "seconds": elapsed})
        return result.structured_content

    async with Client(server) as client:
        await client.call_tool("find_expiring_contracts", {"within_days": 1})  # token, outside the counts
        await run("expiring report (90 days)", "find_expiring_contracts", {})
        await run("low-prepaid sweep", "find_low_prepaid_balances", {})
        preview = await run(f"renew {RENEW}: preview (dry run)", "generate_renewals",
                            {"contract_ids": renewable[:RENEW], "uplift_percent": 3.5, "dry_run": True})
        await run(f"renew {RENEW}: apply the plan", "apply_plan", {"plan_id": preview["plan_id"]})
        await run(f"renew {RENEW}: run again", "generate_renewals",
                  {"contract_ids": renewable[:RENEW], "uplift_percent": 3.5})
        one = renewable[RENEW]
        await run("renew 1: preview (dry run)", "generate_renewals", {"contract_ids": [one], "dry_run": True})
        await run("renew 1: apply at once", "generate_renewals", {"contract_ids": [one]})
        rest = renewable[RENEW + 1:]
        await run("renew 3: preview (dry run)", "generate_renewals", {"contract_ids": rest[:3], "dry_run": True})
        by_client: dict[int, list[int]] = {}
        for cid in rest:
            by_client.setdefault(sb.store.get("contracts", cid)["client_id"], []).append(cid)
        two = sorted(by_client, key=lambda k: -len(by_client[k]))[:2]
        ten = (by_client[two[0]][:5] + by_client[two[1]][:5])[:10]
        await run(f"renew {len(ten)} of 2 clients: preview (dry run)", "generate_renewals",
                  {"contract_ids": ten, "dry_run": True})
    for row in rows:
        row.update(active=active, pages=math.ceil(active / 100), prepaid=prepaid)
    return rows


def table(rows: list[dict]) -> str:
    cols = ["book", "operation", "contract list pages", "contract details", "other reads", "writes", "total",
            "seconds"]
    head = ["contracts", "operation", "list pages", "details", "other reads", "writes", "total", "s (in-process)"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [str(r.get(c, 0)) if c != "seconds" else f"{r[c]:.2f}" for c in cols]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


async def main(sizes: list[int]) -> None:
    logging.disable(logging.WARNING)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows.extend(await measure(size, Path(tmp)))
    print(table(rows))
    print()
    for size in sizes:
        r = next(x for x in rows if x["book"] == size)
        print(f"book of {size}: {r['active']} active contracts listed ({r['pages']} page(s) of 100), "
              f"{r['prepaid']} active prepaid contracts")


if __name__ == "__main__":
    anyio.run(main, [int(a) for a in sys.argv[1:]] or [100, 1000])
