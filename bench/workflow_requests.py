"""Halo requests per workflow: ours vs the minimum vs the contract guide's loops.

For each book size (sandbox books of 100, 1,000 and 5,000 contracts by default) and each
workflow, counts the ``/api`` requests the sandbox received (its own request log; the OAuth
token request is excluded everywhere):

* **ours**: the MCP tool, called through an in-memory ``mcp.Client`` on the server;
* **minimum**: the pages of each record kind the answer needs (``ceil(records / 100)``, Halo's
  page cap; ``/Actions`` has no paging in Halo's spec and counts 1);
* **guide's loop**: the contract guide's own approach (reference "Contract value by client",
  "Billing reconciliation", "Expiring Contracts Report", ``checkPrepaidBalance``) run honestly
  with our ``HaloClient`` on the same book. The reconciliation and value-by-client loops are
  imported from ``bench/billing_requests.py`` (not duplicated).

Workflows: search (active contracts, first 50 rows), expiring report (90 days), low-prepaid
sweep, value by client, portfolio reconciliation (last full month), renewal plan for 50
contracts (preview reads; the apply's writes are reported separately: one request per step).

    python bench/workflow_requests.py [--sizes 100,1000,5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))

import billing_requests as billing
from book_picks import renewed_by_pending
from halo_contracts.config import load_settings
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.pacing import RequestBudget
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.logic import month_end
from halo_contracts.server import build_server

TODAY = date(2026, 11, 20)
RENEW = 50
PAGE = 100




def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))


def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         allow_insecure_http=True,  # the sandbox is reached in-process
                         rate_limit="100000000/1")


def api(sb) -> int:
    return sb.log.count(path_prefix="/api")


def naive_client(app) -> HaloClient:
    return HaloClient(settings(), transport=transport(app), budget=RequestBudget(100_000_000, 1.0))


async def naive_list_once(app) -> int:
    """The guide's searchContracts / getExpiringContracts: one list call with filters Halo does
    not have (status, enddate_before: ignored by Halo), so every page of contracts is read."""
    sb = app.state.sandbox
    async with naive_client(app) as halo:
        await halo.list_clients(search="warm-up")  # token outside the count
        sb.log.clear()
        await halo.list_contracts(ContractQuery())
        return api(sb)


async def naive_prepaid_sweep(app) -> int:
    """checkPrepaidBalance(contractId) for every active prepaid contract: list, then one GET each."""
    sb = app.state.sandbox
    async with naive_client(app) as halo:
        await halo.list_clients(search="warm-up")
        sb.log.clear()
        for c in await halo.list_contracts(ContractQuery()):
            if c.type == "Prepaid Hours" and c.status == "Active":
                await halo.get_contract(c.id)
        return api(sb)


async def naive_renewal_reads(app, ids: list[int]) -> int:
    """Per contract to renew: read it, read its recurring invoice with lines."""
    sb = app.state.sandbox
    async with naive_client(app) as halo:
        await halo.list_clients(search="warm-up")
        sb.log.clear()
        for cid in ids:
            await halo.get_contract(cid)
            await halo.list_recurring_invoices(contract_id=cid)
        return api(sb)


async def measure(size: int, workdir: Path) -> list[dict]:
    t0 = time.perf_counter()
    app = create_app(SandboxConfig(clients=max(8, size // 5), contracts=size, today=TODAY, seed=7,
                                   rate_limit=10**9, rate_window=1.0))
    sb = app.state.sandbox
    store = sb.store
    book = sb.book
    docs = store.where("contracts")
    n_contracts = len(docs)
    listed_default = [d for d in docs if d.get("active")]  # what GET /ClientContract returns by default
    n_headers = store.count("rinvoices")
    n_invoices = store.count("invoices")
    n_prepay = store.count("prepay")
    prepaid_active = [d for d in docs if d.get("contracttype") == 2 and d.get("status") == 1]
    renewed = {d["previouscontract"] for d in docs if d.get("previouscontract")} | renewed_by_pending(docs)
    renewable = [d["id"] for d in docs if d.get("status") == 1 and d.get("end_date") and d["id"] not in renewed]
    month = book.billing_months[-2]
    start, end = month, month_end(month)
    print(f"[{size}] book: {n_contracts} contracts ({len(listed_default)} listed by default), {n_headers} recurring "
          f"invoices, {n_invoices} invoices, {n_prepay} prepay rows, {len(prepaid_active)} active prepaid "
          f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr)

    server = build_server(settings(), transport=transport(app), journal_path=workdir / f"w{size}.sqlite3",
                          extras={"today": TODAY})
    rows: list[dict] = []

    async with Client(server) as client:
        await client.call_tool("find_clients", {"name": "warm-up"})  # token outside the counts

        async def ours(tool: str, args: dict) -> tuple[int, dict]:
            sb.log.clear()
            r = await client.call_tool(tool, args)
            if r.is_error:
                raise SystemExit(f"{tool}{args}: {r.content[0].text}")
            return api(sb), r.structured_content or {}

        count, _ = await ours("search_contracts", {"status": "Active"})
        rows.append({"workflow": "search (status Active, 50 rows)", "ours": count,
                     "minimum": pages(len(listed_default)), "guide": await naive_list_once(app),
                     "guide_shape": "1 paged list (its status filter does not exist in Halo)"})
        count, _ = await ours("find_expiring_contracts", {"within_days": 90})
        rows.append({"workflow": "expiring report (90 days)", "ours": count, "minimum": pages(len(listed_default)),
                     "guide": await naive_list_once(app),
                     "guide_shape": "1 paged list (enddate_before does not exist in Halo; renewals not excluded)"})
        count, _ = await ours("find_low_prepaid_balances", {})
        rows.append({"workflow": "low-prepaid sweep", "ours": count,
                     "minimum": pages(len(listed_default)) + pages(n_prepay) + 1,
                     "guide": await naive_prepaid_sweep(app),
                     "guide_shape": f"list + checkPrepaidBalance per active prepaid contract ({len(prepaid_active)})"})
        count, _ = await ours("summarize_contracts", {"group_by": "client"})
        rows.append({"workflow": "value by client", "ours": count, "minimum": pages(n_contracts) + pages(n_headers),
                     "guide": await billing.naive_value_by_client(app),
                     "guide_shape": f"clients + contracts per client ({len(book.client_ids)} clients)"})
        count, _rec = await ours("reconcile_billing", {"period_start": start.isoformat(),
                                                      "period_end": end.isoformat()})
        rows.append({"workflow": f"portfolio reconciliation ({start:%b %Y})", "ours": count,
                     "minimum": pages(n_contracts) + pages(n_headers) + pages(n_invoices) + 1,
                     "guide": await billing.naive_reconcile(app, start, end),
                     "guide_shape": "per client, per active contract: contract + invoices + time"})
        ids = renewable[:RENEW]
        count, plan = await ours("generate_renewals", {"contract_ids": ids, "uplift_percent": 3, "dry_run": True})
        rows.append({"workflow": f"renewal plan, {len(ids)} contracts (preview)", "ours": count,
                     "minimum": min(len(ids), pages(len(listed_default))) + min(len(ids), pages(n_headers)),
                     "guide": await naive_renewal_reads(app, ids),
                     "guide_shape": "per contract: contract + its recurring invoice"})
        sb.log.clear()
        r = await client.call_tool("apply_plan", {"plan_id": plan["plan_id"]})
        writes = sb.log.count(method="POST", path_prefix="/api") + sb.log.count(method="DELETE", path_prefix="/api")
        reads = api(sb) - writes
        steps = plan.get("steps") if isinstance(plan.get("steps"), int) else None
        rows.append({"workflow": f"renewal apply, {len(ids)} contracts", "ours": api(sb),
                     "minimum": steps or writes, "guide": steps or writes,
                     "guide_shape": f"one POST per object ({writes} writes, {reads} reads by ours)",
                     "ok": not r.is_error})
    for row in rows:
        row["size"] = size
    print(f"[{size}] done ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| contracts | workflow | ours | minimum | guide's loop | ours / min | guide / ours | guide's shape |",
           "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['size']:,} | {r['workflow']} | {r['ours']:,} | {r['minimum']:,} | {r['guide']:,} | "
                   f"{r['ours'] / r['minimum']:.2f} | {r['guide'] / max(1, r['ours']):.1f}x | {r['guide_shape']} |")
    return "\n".join(out)


async def main(sizes: list[int], json_out: str | None) -> None:
    logging.disable(logging.WARNING)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows += await measure(size, Path(tmp))
    print(table(rows))
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--json", default=None)
    ns = parser.parse_args()
    anyio.run(main, [int(s) for s in ns.sizes.split(",") if s.strip()], ns.json)
