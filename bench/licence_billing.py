"""A first licence sync with the distributor's own SKUs, and seats against billing, on the
embedded sandbox's demo book (in-process).

    python bench/licence_billing.py

1. ``plan_license_sync`` (first sync, distributor "Pax8") of a feed that lists every active
   licence of every client under another code and a longer product name: requests, result
   bytes, creates/deletes planned and likely code mismatches held back.
2. ``reconcile_licences`` over every client: requests, result bytes, mismatches by status and
   true-up steps.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server


def _settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         allow_insecure_http=True, rate_limit="1000000/1", tools="license-sync")


def _feed(sb) -> tuple[str, int]:
    clients = {c["id"]: c["name"] for c in sb.store.where("clients")}
    rows = ["Customer,SKU,Product,Qty,Unit Price,Billing Cycle"]
    for n, x in enumerate(x for x in sb.store.where("licences") if x.get("is_active", True)):
        rows.append(f'"{clients[x["client_id"]]}",PX8-{n:04d},"{x["name"]} (NCE, Monthly)",{x["count"]},'
                    f'{x["price"]},Monthly')
    return "\n".join(rows) + "\n", len(rows) - 1


async def _call(server, sb, tool: str, args: dict) -> tuple[dict, int, int]:
    sb.log.clear()
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    if result.is_error:
        raise SystemExit(result.content[0].text)
    size = len(json.dumps(result.structured_content).encode())
    return result.structured_content, sb.log.count(path_prefix="/api"), size


async def main() -> None:
    app = create_app(SandboxConfig(rate_limit=1_000_000))
    sb = app.state.sandbox
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(_settings(), transport=transport(app), journal_path=Path(tmp) / "j.sqlite3")
        feed, lines = _feed(sb)
        out, requests, size = await _call(server, sb, "plan_license_sync", {"source": feed, "distributor": "Pax8"})
        kinds = out["summary"]["actions"]
        print("| run | feed lines | requests | result bytes | create | update | delete | held back |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| first sync, every code different | {lines} | {requests} | {size:,} | {kinds['create']} | "
              f"{kinds['update']} | {kinds['delete']} | {out['likely_code_mismatches_total']} |")
        rec, requests, size = await _call(server, sb, "reconcile_licences", {})
        steps = sum(1 for r in rec["mismatches"] if r["true_up_step"] is not None)
        print()
        print("| run | licences | requests | result bytes | mismatches (by status) | true-up steps |")
        print("|---|---|---|---|---|---|")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(rec["counts"].items()))
        print(f"| reconcile_licences, every client | {rec['licences_total']} | {requests} | {size:,} | {counts} | "
              f"{steps} |")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    anyio.run(main)
