"""Server overhead per tool call, as ratios to a no-op tool on the same server in the same run.

One server (in-process sandbox, no latency, in-memory ``mcp.Client``) gets an extra tool
``noop`` (no arguments, returns a constant). Calls are interleaved round-robin so drift
(CPU frequency, GC) hits every kind alike:

* ``noop`` — the baseline: the SDK's dispatch plus our middleware (read-only guard, unknown-
  argument guard), no Halo;
* ``get_contract(contract_id=<existing>)`` — a real read: one Halo GET (in-process ASGI
  sandbox, SQLite) plus its recurring lines, wire mapping and the structured result;
* a rejected call — ``get_contract(contract_id="1")`` (a string for an int): refused by
  validation, nothing sent;
* a rejected business rule — ``generate_renewals(contract_ids=[1], uplift_percent=500)``.

Reports the median time of each and its ratio to the no-op median. Absolute times vary by
machine; the ratios are what to compare.

    python bench/overhead.py [--rounds 400]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server


async def run(rounds: int) -> dict:
    app = create_app(SandboxConfig(seed=7, rate_limit=10**9, rate_window=1.0))
    sb = app.state.sandbox
    contract_id = next(d["id"] for d in sb.store.where("contracts") if d.get("status") == 1)
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             allow_insecure_http=True,  # the sandbox is reached in-process
                             rate_limit="1000000000/1")
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(settings, transport=transport(app), journal_path=Path(tmp) / "j.sqlite3")

        @server.tool(name="noop", description="Does nothing (benchmark baseline).")
        async def noop() -> str:
            return "ok"

        calls = {
            "noop": ("noop", {}),
            "get_contract": ("get_contract", {"contract_id": contract_id}),
            "rejected (type)": ("get_contract", {"contract_id": "1"}),
            "rejected (rule)": ("generate_renewals", {"contract_ids": [contract_id], "uplift_percent": 500}),
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        async with Client(server) as client:
            for tool, args in calls.values():  # warm-up (token, imports, caches)
                for _ in range(5):
                    await client.call_tool(tool, args)
            before = sb.log.count(path_prefix="/api")
            for _ in range(rounds):
                for name, (tool, args) in calls.items():
                    t = time.perf_counter()
                    r = await client.call_tool(tool, args)
                    times[name].append(time.perf_counter() - t)
                    expect_error = name.startswith("rejected")
                    if bool(r.is_error) != expect_error:
                        raise SystemExit(f"{name}: unexpected result {r.content[0].text[:200]}")
            per_get = (sb.log.count(path_prefix="/api") - before) / rounds
    base = statistics.median(times["noop"])
    out = {"rounds": rounds, "halo_requests_per_get_contract": round(per_get, 2), "median_ms": {}, "ratio_to_noop": {}}
    for name, values in times.items():
        med = statistics.median(values)
        out["median_ms"][name] = round(med * 1000, 3)
        out["ratio_to_noop"][name] = round(med / base, 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=400)
    ns = p.parse_args()
    logging.disable(logging.WARNING)
    print(json.dumps(anyio.run(run, ns.rounds), indent=1))


if __name__ == "__main__":
    main()
