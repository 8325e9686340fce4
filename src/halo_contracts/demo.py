"""``halopsa-contracts-mcp demo``: a guided run for a newcomer with no Halo tenant and no MCP client.

Starts the embedded Halo sandbox, connects a real MCP client (the SDK's ``Client``) to this
server, and walks through the main jobs, printing each tool call and its result.
Exits 0 when every step behaved as expected, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.domain.money import add_months
from halo_contracts.plans.journal_guard import JournalUnavailable
from halo_contracts.sandbox import charges_export
from halo_contracts.server import build_server, check_journal

MAX_LINES = 24


class DemoFailed(Exception):
    pass


class Transcript:
    def __init__(self, client: Client, out: TextIO):
        self.client = client
        self.out = out
        self.calls = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def chapter(self, title: str, why: str) -> None:
        self.say()
        self.say(f"== {title}")
        self.say(f"   {why}")

    async def call(self, tool: str, args: dict[str, Any], *, expect_error: bool = False) -> dict[str, Any]:
        self.calls += 1
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
        self.say(f"\n-> {tool}({shown})")
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            text = result.content[0].text if result.content else "(no text)"
            self.say(f"<- error: {text}")
            if not expect_error:
                raise DemoFailed(f"{tool} failed: {text}")
            return {}
        if expect_error:
            raise DemoFailed(f"{tool} was expected to refuse these arguments")
        said = "".join(getattr(c, "text", "") for c in result.content)
        for line in said.splitlines():
            self.say(f"<- {line}")
        data = result.structured_content or {}
        lines = json.dumps(data, indent=2, default=str).splitlines()
        for line in lines[:MAX_LINES]:
            self.say(f"   {line}")
        if len(lines) > MAX_LINES:
            self.say(f"   … ({len(lines) - MAX_LINES} more lines)")
        return data


def _first(rows: list[dict[str, Any]], what: str) -> dict[str, Any]:
    if not rows:
        raise DemoFailed(f"the sandbox book has no {what}")
    return rows[0]


async def _tour(t: Transcript, today: date) -> None:
    t.chapter("1. Find a client", "Turn a name from the conversation into the client_id other tools take.")
    clients = await t.call("find_clients", {"name": "acme", "limit": 3})
    client = _first(clients.get("matches", []), "client matching 'acme'")
    client_id = client["id"]

    t.chapter("2. Search contracts", "Compact rows, always with the total; filters Halo lacks run client-side.")
    await t.call("search_contracts", {"client_id": client_id, "limit": 5})

    t.chapter("3. Catch a mistake before it reaches Halo", "An end date before the start date is refused; "
              "nothing is sent.")
    start = add_months(today.replace(day=1), 1)
    await t.call("create_contract", {"client_id": client_id, "ref": f"{client['name']} - Managed Services",
                                     "type": "Recurring", "start_date": start.isoformat(),
                                     "end_date": (start - timedelta(days=1)).isoformat(), "dry_run": True},
                 expect_error=True)

    t.chapter("4. Preview, then create a contract", "dry_run returns the plan and the exact Halo request; "
              "apply_plan executes exactly that plan.")
    ref = f"{client['name']} - Managed Services {start.year} (demo)"
    plan = await t.call("create_contract", {
        "client_id": client_id, "ref": ref, "type": "Recurring", "status": "Pending",
        "start_date": start.isoformat(), "end_date": (add_months(start, 12) - timedelta(days=1)).isoformat(),
        "billing_frequency": "Monthly", "value": 2450, "notes": "Created by the guided demo", "dry_run": True,
        "detail": "full"})
    applied = await t.call("apply_plan", {"plan_id": plan["plan_id"]})
    contract_id = _created_id(applied, "contract")

    t.chapter("5. Add its recurring lines", "Lines of the contract's recurring invoice (created when missing).")
    items = [
        {"description": "Managed workstation support", "quantity": 25, "unit_price": 48},
        {"description": "Server management", "quantity": 3, "unit_price": 190},
        {"description": "Microsoft 365 Business Premium", "quantity": 25, "unit_price": 22},
    ]
    plan = await t.call("add_recurring_items", {"contract_id": contract_id, "items": items, "dry_run": True})
    await t.call("apply_plan", {"plan_id": plan["plan_id"]})
    await t.call("get_contract", {"contract_id": contract_id})

    t.chapter("6. Check prepaid hours", "Balances, burn rate, run-out date and a top-up quote.")
    low = await t.call("find_low_prepaid_balances", {"threshold_hours": 10})
    row = _first(low.get("rows", []), "prepaid contract below 10 hours")
    await t.call("check_prepaid_balance", {"contract_id": row["contract_id"], "threshold_hours": 10})

    t.chapter("7. Renewals", "Contracts ending within 90 days, then a renewal plan previewed (not applied).")
    expiring = await t.call("find_expiring_contracts", {"within_days": 90})
    ids = [c["contract_id"] for c in expiring.get("contracts", [])]
    _first(ids, "contract ending within 90 days")
    await t.call("generate_renewals", {"contract_ids": ids[:2], "uplift_percent": 5, "dry_run": True})

    t.chapter("8. Reconcile last month", "Expected recurring billing against invoices, plus unbilled time.")
    last_month_end = today.replace(day=1) - timedelta(days=1)
    await t.call("reconcile_billing", {"period_start": last_month_end.replace(day=1).isoformat(),
                                       "period_end": last_month_end.isoformat(), "limit": 5})

    t.chapter("9. Distributor charges into invoices", "Billing rules per distributor, then the month's charges "
              "export planned, applied, and imported again (nothing the second time).")
    await t.call("billing_rules", {"distributor": "Pax8", "set": {"usage": "collapse", "drop_favourable_prorates": True,
                                                                  "drop_zero_lines": True}})
    plan = await t.call("plan_distributor_charges", {"source": charges_export(), "distributor": "Pax8"})
    await t.call("apply_plan", {"plan_id": plan["plan_id"]})
    again = await t.call("plan_distributor_charges", {"source": charges_export(), "distributor": "Pax8"})
    if again.get("plan_id") is not None:
        raise DemoFailed("importing the same charges again planned new lines")


def _created_id(applied: dict[str, Any], kind: str) -> int:
    created = applied.get("created") or {}
    for key, ids in created.items():
        if kind in key and ids:
            return int(ids[0])
    raise DemoFailed(f"apply_plan reported no created {kind}: {applied}")


async def _run(out: TextIO) -> int:
    app, transport = sandbox_transport()
    today = app.state.sandbox.today
    settings = sandbox_settings()
    try:
        journal = Path(tempfile.mkdtemp(prefix="halo-demo-")) / "journal.sqlite3"
    except OSError as exc:
        raise JournalUnavailable(f"The demo's plan journal cannot be created in the temporary directory "
                                 f"'{tempfile.gettempdir()}' ({exc.strerror or exc}). Fix: set TMPDIR to a "
                                 "writable directory. Nothing was sent to Halo.") from None
    check_journal(settings, journal)
    server = build_server(settings, transport, journal_path=journal)
    print("halopsa-contracts-mcp demo: the built-in Halo sandbox with a generated MSP book "
          f"(today is {today.isoformat()}). Nothing leaves this process.", file=out)
    async with Client(server) as client:
        t = Transcript(client, out)
        try:
            await _tour(t, today)
        except DemoFailed as exc:
            print(f"\nDemo stopped: {exc}", file=out)
            return 1
    requests = len(app.state.sandbox.log)
    print(f"\nDone: {t.calls} tool calls, {requests} Halo requests. Point your MCP client at "
          "`halopsa-contracts-mcp --sandbox` to try it yourself.", file=out)
    return 0


def run_demo(out: TextIO | None = None) -> int:
    return anyio.run(_run, out or sys.stdout)
