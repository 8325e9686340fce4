"""How many Halo requests do billing reconciliation and the value-by-client report cost?

Counts /api requests in the embedded sandbox's request log (in-process, no network) for

* ``reconcile_billing`` over the last full billing month, and
* ``summarize_contracts(group_by="client")``,

both called through the MCP server, on sandbox books of 100, 1,000 and 5,000 contracts; next to
the contract guide's naive loops run with our own ``HaloClient`` on the same book:

* reconciliation ("Billing reconciliation"): list every client; per client list its contracts;
  per active contract get the contract, its invoices and its time for the period (Halo's
  ``/Actions`` has no contract filter, so "its time" is the period's time read again and
  filtered). Reading each contract's recurring lines would add one more request per contract;
  the loop leaves that out, so its count is a floor;
* value by client ("Contract value by client"): list every client; per client list its contracts;

and the minimum possible: the pages of each record kind the answer needs (``ceil(records / 100)``,
Halo's page cap), plus one ``/Actions`` read (that list has no paging in Halo's spec), plus the
contract detail reads the reconciliation needs: one per Prepaid Hours contract whose unbilled time
has no charge amount (list rows lack the block hours its rate needs). The tool reports those in
``records_read.contract_details``; the bench counts the same contracts itself from the sandbox's
records and checks the two agree.

Run: ``python bench/billing_requests.py [--sizes 100,1000,5000]``. Prints a markdown table.
The OAuth token request (one per client session) is not counted in any column.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.pacing import RequestBudget
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.logic import month_end
from halo_contracts.server import build_server

TODAY = date(2026, 11, 20)
PAGE = 100
PREPAID_HOURS = 2  # the default contracttype code (docs/DESIGN.md)


def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         allow_insecure_http=True,  # the sandbox is reached in-process
                         rate_limit="100000000/1", tools="reconciliation,reports")


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))


def details_needed(app, start: date, end: date) -> int:
    """Prepaid Hours contracts with billable, uninvoiced time in [start, end] beyond the block and
    without a charge amount: each needs one contract detail read for its block rate. Counted from
    the sandbox's own records (a contract reconcile_billing checks: Active, or with such time)."""
    store = app.state.sandbox.store
    prepaid = {c["id"] for c in store.get_many("contracts", app.state.sandbox.book.contract_ids).values()
               if c.get("contracttype") == PREPAID_HOURS}
    need = set()
    _, actions = store.query("actions", [("datetime >= ?", [f"{start.isoformat()}T00:00:00"]),
                                         ("datetime <= ?", [f"{end.isoformat()}T23:59:59"])], [("datetime", False)],
                             None)
    for a in actions:
        cid = a.get("actioncontractid")
        chargeable = (a.get("timetaken") or 0) - (a.get("actionprepayhours") or 0)
        if (cid in prepaid and a.get("actisbillable") and not a.get("actioninvoicenumber")
                and chargeable > 0 and not a.get("actionchargeamount")):
            need.add(cid)
    return len(need)


def api(sb) -> int:
    return sb.log.count(path_prefix="/api")


async def ours(app, tool: str, args: dict, journal: Path) -> tuple[int, dict]:
    sb = app.state.sandbox
    server = build_server(settings(), transport=transport(app), journal_path=journal, extras={"today": TODAY})
    async with Client(server) as client:
        sb.log.clear()
        result = await client.call_tool(tool, args)
        count = api(sb)
    if result.is_error:
        raise SystemExit(f"{tool} failed: {result.content[0].text}")
    return count, result.structured_content


def naive_client(app) -> HaloClient:
    return HaloClient(settings(), transport=transport(app), budget=RequestBudget(100_000_000, 1.0))


async def naive_reconcile(app, start: date, end: date) -> int:
    """The guide's reconcileContractBilling for every active contract, client by client."""
    sb = app.state.sandbox
    async with naive_client(app) as halo:
        await halo.list_clients(include_inactive=True)  # fetches the token too
        sb.log.clear()
        clients = await halo.list_clients(include_inactive=True)
        for client in clients:
            contracts = await halo.list_contracts(ContractQuery(client_id=client.id, include_inactive=True))
            for listed in contracts:
                if listed.status != "Active":
                    continue
                await halo.get_contract(listed.id)
                await halo.list_invoices(contract_id=listed.id, start=start, end=end)
                await halo.list_time_entries(start=start, end=end)
        return api(sb)


async def naive_value_by_client(app) -> int:
    """The guide's getContractValueByClient: every client, then each client's contracts."""
    sb = app.state.sandbox
    async with naive_client(app) as halo:
        await halo.list_clients(include_inactive=True)
        sb.log.clear()
        for client in await halo.list_clients(include_inactive=True):
            await halo.list_contracts(ContractQuery(client_id=client.id))
        return api(sb)


async def measure(size: int, journal_dir: Path) -> list[dict]:
    t0 = time.perf_counter()
    app = create_app(SandboxConfig(clients=max(5, size // 5), contracts=size, today=TODAY, rate_limit=10**9))
    book = app.state.sandbox.book
    month = book.billing_months[-2]  # the last full month
    start, end = month, month_end(month)
    n_contracts, n_headers, n_invoices = len(book.contract_ids), len(book.recurring_invoice_ids), len(book.invoice_ids)
    print(f"[{size}] book: {n_contracts} contracts, {n_headers} recurring invoices, {n_invoices} invoices, "
          f"{len(book.client_ids)} clients ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)

    rec_count, rec = await ours(app, "reconcile_billing",
                                {"period_start": start.isoformat(), "period_end": end.isoformat()},
                                journal_dir / f"r{size}.sqlite3")
    sum_count, summ = await ours(app, "summarize_contracts", {"group_by": "client"}, journal_dir / f"s{size}.sqlite3")
    print(f"[{size}] ours: reconcile {rec_count}, summary {sum_count} ({time.perf_counter() - t0:.1f}s)",
          file=sys.stderr)
    naive_rec = await naive_reconcile(app, start, end)
    print(f"[{size}] naive reconcile {naive_rec} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    naive_sum = await naive_value_by_client(app)
    print(f"[{size}] naive summary {naive_sum} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)

    details = details_needed(app, start, end)
    min_rec = pages(n_contracts) + pages(n_headers) + pages(n_invoices) + 1 + details
    min_sum = pages(n_contracts) + pages(n_headers)
    assert rec["records_read"]["contracts"] == n_contracts
    assert rec["records_read"]["contract_details"] == details, (rec["records_read"], details)
    assert rec["records_read"]["requests"] == rec_count, (rec["records_read"], rec_count)
    return [
        {"size": size, "tool": f"reconcile_billing ({start:%b %Y})", "ours": rec_count, "naive": naive_rec,
         "minimum": min_rec, "checked": rec["totals"]["contracts_checked"]},
        {"size": size, "tool": "summarize_contracts(group_by=\"client\")", "ours": sum_count, "naive": naive_sum,
         "minimum": min_sum, "checked": summ["contracts"]},
    ]


def wait_at_limit(requests: int, limit: int = 300, window_minutes: int = 5) -> str:
    """Least time Halo's rolling window (300 requests / 5 minutes) lets this many requests take."""
    minutes = ((requests - 1) // limit) * window_minutes if requests > 0 else 0
    if minutes == 0:
        return "none"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def table(rows: list[dict]) -> str:
    out = ["| contracts | tool | ours | guide's loop | minimum (pages) | ours / minimum | loop / ours "
           "| rate-limit wait: ours / loop |",
           "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['size']:,} | {r['tool']} | {r['ours']:,} | {r['naive']:,} | {r['minimum']:,} | "
                   f"{r['ours'] / r['minimum']:.2f} | {r['naive'] / r['ours']:.0f}x | "
                   f"{wait_at_limit(r['ours'])} / {wait_at_limit(r['naive'])} |")
    return "\n".join(out)


async def main(sizes: list[int]) -> None:
    logging.disable(logging.INFO)  # the per-request INFO lines would drown the table
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows += await measure(size, Path(tmp))
    print(table(rows))
    worst = max(r["ours"] / r["minimum"] for r in rows)
    print(f"\nWorst ours/minimum: {worst:.2f} (target: within 1.10)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated book sizes (contracts)")
    ns = parser.parse_args()
    anyio.run(main, [int(s) for s in ns.sizes.split(",") if s.strip()])
