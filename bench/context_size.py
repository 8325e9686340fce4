"""Context size: what the server puts in a model's context window, in bytes.

* ``tools/list``: the whole listing as JSON on the wire (names, descriptions, input and output
  schemas, annotations), and per tool, largest first;
* typical results: a 50-row ``search_contracts``, ``reconcile_billing`` over a month for the
  whole book, ``reconcile_contract_billing`` for one contract, ``get_contract``: the text
  content, the structured content, and the whole ``CallToolResult`` as JSON (clients usually
  give the model one of the two representations, so the wire total double-counts).

Measured on the sandbox's default demo book (120 contracts) unless ``--contracts`` says
otherwise. Bytes are UTF-8 JSON; a rough token estimate is bytes / 4.

    python bench/context_size.py [--contracts 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from datetime import date
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.logic import month_end
from halo_contracts.server import build_server

TODAY = date(2026, 11, 20)


def size(obj) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


async def run(contracts: int) -> dict:
    app = create_app(SandboxConfig(seed=7, contracts=contracts, clients=max(25, contracts // 5), today=TODAY,
                                   rate_limit=10**9, rate_window=1.0))
    sb = app.state.sandbox
    month = sb.book.billing_months[-2]
    contract_id = next(d["id"] for d in sb.store.where("contracts")
                       if d.get("status") == 1 and d.get("contracttype") == 1)
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000000/1")
    out: dict = {"book_contracts": contracts}
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(settings, transport=transport(app), journal_path=Path(tmp) / "j.sqlite3",
                              extras={"today": TODAY})
        async with Client(server) as client:
            listing = await client.list_tools()
            wire = listing.model_dump(mode="json", by_alias=True, exclude_none=True)
            wire.pop("_meta", None)
            out["tools_list"] = {"tools": len(listing.tools), "bytes": size(wire)}
            out["tools_list"]["per_tool"] = dict(sorted(
                ((t["name"], size(t)) for t in wire["tools"]), key=lambda kv: -kv[1]))
            out["tools_list"]["descriptions_bytes"] = sum(len((t.get("description") or "").encode()) for t in
                                                          wire["tools"])
            out["tools_list"]["input_schema_bytes"] = sum(size(t.get("inputSchema", {})) for t in wire["tools"])
            out["tools_list"]["output_schema_bytes"] = sum(size(t.get("outputSchema", {})) for t in wire["tools"])
            cases = {
                "search_contracts (50 rows)": ("search_contracts", {"limit": 50}),
                "reconcile_billing (whole book, 1 month)": ("reconcile_billing", {
                    "period_start": month.isoformat(), "period_end": month_end(month).isoformat()}),
                "reconcile_contract_billing (1 contract, 1 month)": ("reconcile_contract_billing", {
                    "contract_id": contract_id, "period_start": month.isoformat(),
                    "period_end": month_end(month).isoformat()}),
                "get_contract": ("get_contract", {"contract_id": contract_id}),
            }
            out["results"] = {}
            for label, (tool, args) in cases.items():
                r = await client.call_tool(tool, args)
                if r.is_error:
                    raise SystemExit(f"{label}: {r.content[0].text}")
                text = "".join(getattr(c, "text", "") for c in r.content)
                data = r.model_dump(mode="json", by_alias=True, exclude_none=True)
                data.pop("_meta", None)
                sc = r.structured_content or {}
                rows = None
                for key in ("contracts", "rows", "results", "items"):
                    if isinstance(sc.get(key), list):
                        rows = len(sc[key])
                        break
                out["results"][label] = {"text_bytes": len(text.encode("utf-8")), "structured_bytes": size(sc),
                                         "wire_bytes": size(data), "rows": rows}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--contracts", type=int, default=120)
    p.add_argument("--json", default=None)
    ns = p.parse_args()
    logging.disable(logging.WARNING)
    result = anyio.run(run, ns.contracts)
    print(json.dumps(result, indent=1))
    if ns.json:
        Path(ns.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
