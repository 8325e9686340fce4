"""Context size: what the server puts in a model's context window, measured over stdio.

The bench starts the real server as a child process speaking stdio (this file with
``--serve``: the embedded sandbox with a fixed day and a book of ``--contracts`` contracts)
and talks to it with the MCP SDK's stdio client, so the figures are what a client receives:

* ``tools/list``: the whole listing as compact JSON, and per tool, largest first;
* every tool called with default (minimal) arguments: the text block, the structured
  content, and the whole result (text plus structured);
* the biggest results: a 200-row search, the whole book's reconciliation of a month, a
  renewal preview of every contract ending in 90 days, its plan, its apply;
* the scripted month of the contract desk (issue 13): expiring in 60 days; a new contract
  with two lines, previewed then applied; low prepaid balances; renewals of the next 90 days
  at +5%, previewed, applied, applied again; last month's reconciliation; an 8-row licence
  feed, previewed then applied. The figure is the sum of the results' bytes.

Bytes are UTF-8 compact JSON of the result as it arrives (content, structuredContent,
isError; the per-result ``_meta`` the SDK adds is left out). A rough token estimate is
bytes / 4. The run exits 1 when a budget is broken:

    tools/list <= 30,000; text block of any default-arguments result <= 1,500;
    any single result <= 25,000 (demo book and --big book); scripted month <= 40,000.

    python bench/context_size.py [--big 2000] [--json out.json] [--no-budgets]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import anyio

TODAY = date(2026, 11, 20)
LAST_MONTH = ("2026-10-01", "2026-10-31")
BUDGETS = {"tools_list": 30_000, "default_text": 1_500, "single_result": 25_000, "month": 40_000}


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def book_config(contracts: int) -> dict[str, Any]:
    return {"seed": 7, "contracts": contracts, "clients": max(25, contracts // 5), "today": TODAY,
            "rate_limit": 10**9, "rate_window": 1.0}


# ---- the child: the real server on stdio ------------------------------------------------------


def serve(contracts: int, journal: str) -> None:
    from halo_contracts.config import load_settings
    from halo_contracts.sandbox import SandboxConfig, create_app, transport
    from halo_contracts.server import build_server

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    app = create_app(SandboxConfig(**book_config(contracts)))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000000/1", read_only=False, tools=None, disabled_tools=None,
                             allow_insecure_http=True)
    server = build_server(settings, transport(app), journal_path=journal, extras={"today": TODAY})
    server.run("stdio")


# ---- the parent: a client over stdio -------------------------------------------------------------


class Book:
    """Ids picked from the same (deterministic) book the child serves."""

    def __init__(self, contracts: int) -> None:
        from halo_contracts.sandbox import SandboxConfig, charges_export, create_app

        sb = create_app(SandboxConfig(**book_config(contracts))).state.sandbox
        rows = sb.store.where("contracts")
        self.recurring = next(d["id"] for d in rows if d.get("status") == 1 and d.get("contracttype") == 1)
        self.prepaid = (sb.book.prepaid.get("low") or sb.book.prepaid["healthy"])[0]
        self.client_id = next(d["client_id"] for d in rows if d["id"] == self.recurring)
        licences = [x for x in sb.store.where("licences") if x.get("distributor") == "Pax8" and x.get("is_active")]
        self.feed = self._feed(licences[:8])
        self.charges = charges_export()

    @staticmethod
    def _feed(licences: list[dict]) -> str:
        rows = ["Customer,Product Code,Product Name,Quantity,Unit Price,Billing Cycle,Term"]
        for x in licences:
            rows.append(f'"{x["client_name"]}",{x["product_sku"]},"{x["name"]}",{x["count"] + 2},'
                        f'{x["price"]:.2f},{x["billing_cycle"]},{x["term_duration"]}')
        return "\n".join(rows) + "\n"


def measure(result: Any) -> dict[str, Any]:
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("_meta", None)
    text = "".join(c.get("text", "") for c in data.get("content", []) if c.get("type") == "text")
    return {"text_bytes": len(text.encode("utf-8")), "structured_bytes": size(data.get("structuredContent") or {}),
            "bytes": size(data), "error": bool(data.get("isError"))}


def default_cases(book: Book) -> dict[str, dict[str, Any]]:
    """Each tool with its fewest arguments (write tools as a preview)."""
    new_contract = {"client_id": book.client_id, "ref": "Bench - Managed Services", "type": "Recurring",
                    "start_date": "2026-12-01", "end_date": "2027-11-30", "billing_frequency": "Monthly",
                    "value": 1200, "dry_run": True}
    line = {"description": "Managed endpoint", "quantity": 10, "unit_price": 12.5, "billing_frequency": "Monthly"}
    return {
        "find_clients": {},
        "list_reference_data": {"kind": "statuses"},
        "search_contracts": {},
        "get_contract": {"contract_id": book.recurring},
        "create_contract": new_contract,
        "update_contract": {"contract_id": book.recurring, "changes": {"notes": "bench"}, "dry_run": True},
        "list_recurring_items": {"contract_id": book.recurring},
        "add_recurring_items": {"contract_id": book.recurring, "items": [line], "dry_run": True},
        "check_prepaid_balance": {"contract_id": book.prepaid},
        "find_low_prepaid_balances": {},
        "find_expiring_contracts": {},
        "review_contract_performance": {"contract_id": book.recurring},
        "generate_renewals": {"contract_ids": [book.recurring], "dry_run": True},
        "reconcile_contract_billing": {"contract_id": book.recurring, "period_start": LAST_MONTH[0],
                                       "period_end": LAST_MONTH[1]},
        "reconcile_billing": {"period_start": LAST_MONTH[0], "period_end": LAST_MONTH[1]},
        "summarize_contracts": {"group_by": "status"},
        "plan_license_sync": {"source": book.feed, "distributor": "Pax8"},
        "billing_rules": {},
        "plan_distributor_charges": {"source": book.charges, "distributor": "Pax8"},
    }


class Session:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        r = await self.client.call_tool(tool, args)
        sc = r.structured_content or {}
        if r.is_error:
            text = "".join(getattr(c, "text", "") for c in r.content)
            print(f"  ! {tool}: {text[:300]}", file=sys.stderr)
        return measure(r), sc


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r.get("contract_id") or r.get("id")) for r in rows]


async def expiring_ids(s: Session, days: int) -> list[int]:
    ids: list[int] = []
    args: dict[str, Any] = {"within_days": days}
    while True:
        _, sc = await s.call("find_expiring_contracts", args)
        rows = [r for r in sc.get("contracts", []) if not r.get("renewed")]  # the renewed are flagged, not hidden
        ids += [i for i in _ids(rows) if i not in ids]
        if not sc.get("next_cursor"):
            return ids
        args = {"within_days": days, "cursor": sc["next_cursor"]}


async def month(s: Session, book: Book) -> dict[str, Any]:
    steps: dict[str, dict[str, Any]] = {}

    async def step(label: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        m, sc = await s.call(tool, args)
        steps[label] = m
        return sc

    await step("expiring in 60 days", "find_expiring_contracts", {"within_days": 60})
    lines = [{"description": "Cloud backup, per server", "quantity": 3, "unit_price": 40, "billing_frequency":
              "Monthly"},
             {"description": "Backup monitoring", "quantity": 1, "unit_price": 90, "billing_frequency": "Monthly"}]
    new = {"client_id": book.client_id, "ref": "Month - Backup Services", "type": "Recurring",
           "start_date": "2026-12-01", "end_date": "2027-11-30", "billing_frequency": "Monthly", "value": 210,
           "items": lines, "dry_run": True}
    sc = await step("new contract with two lines: preview", "create_contract", new)
    await step("new contract with two lines: apply", "apply_plan", {"plan_id": sc["plan_id"]})
    await step("low prepaid balances", "find_low_prepaid_balances", {})
    ids = await expiring_ids(s, 90)
    sc = await step("renewals 90 days +5%: preview", "generate_renewals",
                    {"contract_ids": ids, "uplift_percent": 5, "dry_run": True})
    await step("renewals: apply", "apply_plan", {"plan_id": sc["plan_id"]})
    await step("renewals: apply again", "apply_plan", {"plan_id": sc["plan_id"]})
    await step("reconcile last month", "reconcile_billing", {"period_start": LAST_MONTH[0],
                                                             "period_end": LAST_MONTH[1]})
    sc = await step("licence feed (8 rows): preview", "plan_license_sync", {"source": book.feed,
                                                                            "distributor": "Pax8"})
    await step("licence feed: apply", "apply_plan", {"plan_id": sc["plan_id"]})
    return {"steps": steps, "bytes": sum(m["bytes"] for m in steps.values()),
            "errors": [k for k, m in steps.items() if m["error"]]}


async def biggest(s: Session, apply: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    out["search_contracts (limit 100)"], _ = await s.call("search_contracts", {"limit": 100})
    out["reconcile_billing (whole book, 1 month)"], _ = await s.call(
        "reconcile_billing", {"period_start": LAST_MONTH[0], "period_end": LAST_MONTH[1]})
    out["summarize_contracts by client"], _ = await s.call("summarize_contracts", {"group_by": "client"})
    out["find_expiring_contracts (365 days)"], _ = await s.call("find_expiring_contracts", {"within_days": 365})
    ids = (await expiring_ids(s, 365))[:150]
    if ids:
        out[f"generate_renewals preview ({len(ids)} contracts)"], sc = await s.call(
            "generate_renewals", {"contract_ids": ids, "uplift_percent": 5, "dry_run": True})
        if sc.get("plan_id"):
            out["get_plan of that preview"], _ = await s.call("get_plan", {"plan_id": sc["plan_id"]})
            if apply:
                out["apply_plan of that preview"], _ = await s.call("apply_plan", {"plan_id": sc["plan_id"]})
    return out


async def run(contracts: int, with_month: bool) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, get_default_environment

    book = Book(contracts)
    with tempfile.TemporaryDirectory() as tmp:
        # the server of the tree this file sits in (not whichever copy is installed)
        env = {**get_default_environment(), "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        params = StdioServerParameters(command=sys.executable, env=env, args=[
            str(Path(__file__).resolve()), "--serve", "--contracts", str(contracts), "--journal",
            str(Path(tmp) / "journal.sqlite3")])
        async with Client(params) as client:
            s = Session(client)
            listing = await client.list_tools()
            wire = listing.model_dump(mode="json", by_alias=True, exclude_none=True)
            wire.pop("_meta", None)
            out: dict[str, Any] = {"book_contracts": contracts, "tools_list": {
                "tools": len(listing.tools), "bytes": size(wire),
                "output_schema_bytes": sum(size(t.get("outputSchema", {})) for t in wire["tools"]),
                "per_tool": dict(sorted(((t["name"], size(t)) for t in wire["tools"]), key=lambda kv: -kv[1]))}}
            out["defaults"] = {}
            for tool, args in default_cases(book).items():
                if tool in {t.name for t in listing.tools}:
                    out["defaults"][tool], _ = await s.call(tool, args)
            out["biggest"] = await biggest(s, apply=not with_month)  # the month applies its own renewals
            if with_month:
                out["month"] = await month(s, book)
    return out


def broken(runs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for r in runs:
        book = f"{r['book_contracts']}-contract book"
        if r["tools_list"]["bytes"] > BUDGETS["tools_list"]:
            problems.append(f"tools/list {r['tools_list']['bytes']} > {BUDGETS['tools_list']}")
        for tool, m in r["defaults"].items():
            if m["text_bytes"] > BUDGETS["default_text"]:
                problems.append(f"{book}: {tool} default text {m['text_bytes']} > {BUDGETS['default_text']}")
        singles = dict(r["defaults"], **r["biggest"], **r.get("month", {}).get("steps", {}))
        for label, m in singles.items():
            if m["bytes"] > BUDGETS["single_result"]:
                problems.append(f"{book}: {label} {m['bytes']} > {BUDGETS['single_result']}")
        if "month" in r and r["month"]["bytes"] > BUDGETS["month"]:
            problems.append(f"{book}: scripted month {r['month']['bytes']} > {BUDGETS['month']}")
    return sorted(set(problems))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--journal", default=None, help=argparse.SUPPRESS)
    p.add_argument("--contracts", type=int, default=120, help="contracts of the demo book (default 120)")
    p.add_argument("--big", type=int, default=2000, help="contracts of the big book (0: skip it)")
    p.add_argument("--json", default=None)
    p.add_argument("--no-budgets", action="store_true", help="report only; exit 0 even when a budget breaks")
    ns = p.parse_args()
    if ns.serve:
        serve(ns.contracts, ns.journal)
        return 0
    logging.disable(logging.WARNING)
    runs = [anyio.run(run, ns.contracts, True)]
    if ns.big:
        runs.append(anyio.run(run, ns.big, False))
    problems = broken(runs)
    print(json.dumps({"runs": runs, "budgets": BUDGETS, "broken": problems}, indent=1))
    if ns.json:
        Path(ns.json).write_text(json.dumps(runs, indent=1))
    return 1 if problems and not ns.no_budgets else 0


if __name__ == "__main__":
    sys.exit(main())
