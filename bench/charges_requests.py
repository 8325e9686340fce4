"""Distributor charges into Halo invoices on the embedded sandbox's demo book (in-process).

    python bench/charges_requests.py

An export of 500 charge lines over every active client of the book (subscriptions, Azure usage,
prorates both ways, zero lines, one-offs), with rules set for some clients (collapse or drop
usage, drop favourable prorates and zero lines, do not invoice, target the latest open invoice or
the recurring invoice). For ``plan_distributor_charges``, ``apply_plan`` and a re-import of the
same export: Halo requests (by path), result bytes (structured content and text), lines added
and set aside.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections import Counter
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

LINES = 500
KINDS = (("Recurring", 1), ("Azure", 1), ("Azure", 1), ("Prorate", -1), ("Prorate", 1), ("One-off", 1),
         ("Recurring", 0))


def _settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         allow_insecure_http=True, rate_limit="1000000/1", tools="license-sync,plans")


def _export(sb) -> tuple[str, list[int]]:
    clients = [c for c in sb.store.where("clients") if not c.get("inactive")]
    rows = ["Customer,Product Code,Description,Quantity,Unit Cost,Unit Price,Charge Type,Period Start,Period End"]
    n = 0
    while len(rows) <= LINES:
        c = clients[n % len(clients)]
        kind, sign = KINDS[(n // len(clients)) % len(KINDS)]
        price = 0 if sign == 0 else (10 + n % 37) * 1.25
        start = "2026-11-16" if kind == "Prorate" else "2026-11-01"
        rows.append(f'"{c["name"]}",SKU-{n % 61:03d},"{kind} line {n}",{sign or 1},{price * 0.8:.2f},{price:.2f},'
                    f"{kind},{start},2026-11-30")
        n += 1
    return "\n".join(rows) + "\n", [c["id"] for c in clients]


async def _call(server, sb, tool: str, args: dict) -> tuple[dict, Counter, int, int]:
    sb.log.clear()
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    if result.is_error:
        raise SystemExit(result.content[0].text)
    paths = Counter(f"{e.method} {re.sub(r'/-?[0-9]+$', '/{id}', e.path)}" for e in sb.log.entries()
                    if e.path.startswith("/api"))
    text = sum(len(c.text.encode()) for c in result.content if c.type == "text")
    return result.structured_content, paths, len(json.dumps(result.structured_content).encode()), text


async def _rules(server, ids: list[int], sb) -> None:
    async with Client(server) as client:
        async def rule(**args):
            r = await client.call_tool("billing_rules", args)
            assert not r.is_error, r.content[0].text
        await rule(set={"drop_zero_lines": True})
        for n, cid in enumerate(ids):
            if n % 5 == 0:
                await rule(distributor="Pax8", client_id=cid,
                           set={"usage": "collapse", "drop_favourable_prorates": True})
            elif n % 5 == 1:
                await rule(distributor="Pax8", client_id=cid, set={"usage": "drop"})
            elif n % 5 == 2:
                sb.store.insert("invoices", {"client_id": cid, "invoice_date": "2026-11-28T00:00:00", "posted": False,
                                             "voided": False, "total": 0.0})
                await rule(distributor="Pax8", client_id=cid, set={"target": "last"})
            elif n % 5 == 3 and (headers := sb.store.where("rinvoices", "client_id = ?", [cid])):
                await rule(distributor="Pax8", client_id=cid,
                           set={"target": "recurring", "invoice_id": headers[0]["id"]})
        await rule(distributor="Pax8", client_id=ids[-1], set={"do_not_invoice": True})


async def main() -> None:
    app = create_app(SandboxConfig(rate_limit=1_000_000))
    sb = app.state.sandbox
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(_settings(), transport=transport(app), journal_path=Path(tmp) / "j.sqlite3")
        export, ids = _export(sb)
        await _rules(server, ids, sb)
        print(f"export: {LINES} charge lines, {len(export.encode()):,} bytes, {len(ids)} clients")
        print("| run | requests | by path | result bytes | text bytes | lines added | set aside | steps |")
        print("|---|---|---|---|---|---|---|---|")
        out, paths, size, text = await _call(server, sb, "plan_distributor_charges",
                                             {"source": export, "distributor": "Pax8"})
        print(f"| plan | {sum(paths.values())} | {dict(paths)} | {size:,} | {text:,} | {out['lines_total']} | "
              f"{out['lines_set_aside']} | {out['steps']} |")
        applied, paths, size, text = await _call(server, sb, "apply_plan", {"plan_id": out["plan_id"]})
        print(f"| apply | {sum(paths.values())} | {dict(paths)} | {size:,} | {text:,} | | | {applied['done']} |")
        again, paths, size, text = await _call(server, sb, "plan_distributor_charges",
                                               {"source": export, "distributor": "Pax8"})
        print(f"| re-import | {sum(paths.values())} | {dict(paths)} | {size:,} | {text:,} | {again['lines_total']} | "
              f"{again['lines_set_aside']} | {again['steps']} |")


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    anyio.run(main)
