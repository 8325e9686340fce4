"""A server process for the SIGKILL tests: builds or applies plans against a sandbox on a real port.

    python tests/support/killdriver.py --base-url URL --journal FILE plan --spec SPEC.json --out OUT.json
    python tests/support/killdriver.py --base-url URL --journal FILE apply --plan-id PLAN [--plan-id PLAN2]

``plan`` previews the renewal and licence-sync plans described in SPEC (``dry_run``) and writes
their ids and previewed steps to OUT. ``apply`` calls ``apply_plan`` until the plan reports
``applied`` (it re-applies after a lost answer), printing one JSON line per call; the test kills
it with SIGKILL somewhere in the middle and starts a fresh process to finish.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio


def _server(base_url: str, journal: str):
    from halo_contracts.config import load_settings
    from halo_contracts.server import build_server

    settings = load_settings(base_url=base_url, client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="100000/1")
    return build_server(settings, journal_path=journal)


async def _plan(args: argparse.Namespace) -> int:
    from mcp import Client

    spec = json.loads(Path(args.spec).read_text())
    out: dict = {}
    async with Client(_server(args.base_url, args.journal)) as c:
        jobs = []
        if spec.get("renewal_ids"):
            jobs.append(("renewal", "generate_renewals", {"contract_ids": spec["renewal_ids"], "dry_run": True,
                                                          "uplift_percent": 3, "expire_old": "now"}))
        if spec.get("feed"):
            jobs.append(("licence", "plan_license_sync", {"source": spec["feed"], "mappings": spec["mappings"],
                                                          "distributor": "Pax8"}))
        for key, tool, tool_args in jobs:
            r = await c.call_tool(tool, tool_args)
            if r.is_error:
                print(r.content[0].text, file=sys.stderr)
                return 1
            plan_id = r.structured_content["plan_id"]
            view = await c.read_resource(f"halopsa://plans/{plan_id}")
            out[key] = plan_id
            out.setdefault("previews", {})[key] = json.loads(view.contents[0].text)["steps"]
    Path(args.out).write_text(json.dumps(out))
    return 0


async def _apply(args: argparse.Namespace) -> int:
    from mcp import Client

    async with Client(_server(args.base_url, args.journal)) as c:
        for plan_id in args.plan_id:
            print(json.dumps({"plan": plan_id, "start": True}), flush=True)
            for attempt in range(args.max_calls):
                r = await c.call_tool("apply_plan", {"plan_id": plan_id})
                sc = r.structured_content or {}
                line = {"plan": plan_id, "attempt": attempt, "is_error": r.is_error, "status": sc.get("status"),
                        "sent": sc.get("sent"), "settled": sc.get("settled"), "resumed_from": sc.get("resumed_from"),
                        "already_applied": sc.get("already_applied"),
                        "text": r.content[0].text[:300] if r.is_error else None}
                print(json.dumps(line), flush=True)
                if not r.is_error and sc.get("status") == "applied":
                    break
            else:
                return 3
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--journal", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("plan")
    pl.add_argument("--spec", required=True)
    pl.add_argument("--out", required=True)
    ap = sub.add_parser("apply")
    ap.add_argument("--plan-id", required=True, action="append", help="repeat to apply several plans in order")
    ap.add_argument("--max-calls", type=int, default=100)
    args = p.parse_args()
    return anyio.run(_plan if args.cmd == "plan" else _apply, args)


if __name__ == "__main__":
    sys.exit(main())
