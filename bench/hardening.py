"""No caller can take the server down: a session flood from one token, and big licence feeds.

flood: one read-only token sends N initialize calls (legacy handshake) to the HTTP app
in-process; reports the sessions left open, resident memory, time per call, and how long
another token then takes to connect. ``--per-token 100000`` shows the server without a
per-token bound (every session stays open).

feed: a licence feed of N lines planned on the sandbox while a ticker measures the longest
the event loop was held (the longest any other caller would have waited), plus wall time and
peak resident memory. A feed over the limits is refused; ``--max-rows/--max-bytes`` raise them.

    python bench/hardening.py flood --calls 10000
    python bench/hardening.py flood --calls 10000 --per-token 100000
    python bench/hardening.py feed --lines 150000
    python bench/hardening.py feed --lines 20000 --customers 400
    python bench/hardening.py feed --lines 90000 --max-rows 1000000 --max-bytes 50000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.http import build_http_app

FLOODER, OTHER = "flood-token-0123456789abcdef", "other-token-0123456789abcdef"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def client(asgi, token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)


def open_sessions(asgi) -> int:
    for route in asgi.app.router.routes:
        layer = getattr(route, "endpoint", None)
        while layer is not None:
            manager = getattr(layer, "session_manager", None)
            if manager is not None:
                return len(manager._server_instances)
            layer = getattr(layer, "app", None)
    return -1


async def flood(calls: int, per_token: int) -> None:
    _app, transport = sandbox_transport()
    with TemporaryDirectory() as tmp:
        settings = sandbox_settings(mcp_tokens=f"readonly:{FLOODER},{OTHER}", mcp_max_sessions_per_token=per_token)
        asgi = build_http_app(settings, transport=transport, journal_path=Path(tmp) / "j.sqlite3")
        inner = asgi.app
        async with inner.router.lifespan_context(inner):
            before = rss_mb()
            statuses: dict[int, int] = {}
            started = time.perf_counter()
            async with client(asgi, FLOODER) as c:
                for _ in range(calls):
                    status = (await c.post("/mcp", json=INIT, headers=ACCEPT)).status_code
                    statuses[status] = statuses.get(status, 0) + 1
            took = time.perf_counter() - started
            left, after = open_sessions(asgi), rss_mb()
            t0 = time.perf_counter()
            async with client(asgi, OTHER) as c:
                other = (await c.post("/mcp", json=INIT, headers=ACCEPT)).status_code
            other_s = time.perf_counter() - t0
    print(f"flood: {calls} initialize calls from one token (bound {per_token} per token): answers {statuses}; "
          f"{took:.1f} s ({took / calls * 1000:.2f} ms per call); sessions open after: {left}; "
          f"RSS {before:.0f} -> {after:.0f} MB; another token: {other} in {other_s * 1000:.0f} ms")


def feed_text(lines: int, names: list[str]) -> str:
    """Lines spread over the sandbox's own client names (so customers match and plans have steps)."""
    rows = ["customer,product code,quantity,unit price,billing cycle"]
    rows += [f'"{names[i % len(names)]}",SKU-{i:06d},{i % 9 + 1},12.50,Monthly' for i in range(lines)]
    return "\n".join(rows)


async def feed(lines: int, customers: int, max_rows: int | None, max_bytes: int | None) -> None:
    """Over the HTTP app (stateless, in-process), so only the server's own work is on this
    process's event loop (an in-process MCP client would add its own result validation)."""
    app, transport = sandbox_transport()
    overrides = {k: v for k, v in (("feed_max_rows", max_rows), ("feed_max_bytes", max_bytes)) if v}
    names = [c["name"] for c in app.state.sandbox.store.where("clients")][:customers]
    text = feed_text(lines, names)
    longest = 0.0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal longest
        while not done.is_set():
            t = time.perf_counter()
            await anyio.sleep(0.01)
            longest = max(longest, time.perf_counter() - t - 0.01)

    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "plan_license_sync", "arguments": {"source": text, "distributor": "Bench"}}}
    with TemporaryDirectory() as tmp:
        settings = sandbox_settings(mcp_tokens=OTHER, tools="license-sync,plans", **overrides)
        asgi = build_http_app(settings, transport=transport, journal_path=Path(tmp) / "j.sqlite3", stateless=True)
        inner = asgi.app
        async with inner.router.lifespan_context(inner), client(asgi, OTHER) as c:
            before = rss_mb()
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                answer = await c.post("/mcp", json=call, headers={**ACCEPT, "Mcp-Protocol-Version": "2025-06-18"})
                done.set()
            took = time.perf_counter() - started
    if answer.status_code != 200:
        print(f"feed: {lines} lines ({len(text.encode()) / 1e6:.1f} MB): HTTP {answer.status_code} "
              f"{answer.text[:100]!r} in {took:.2f} s; event loop held at most {longest * 1000:.0f} ms")
        return
    data = next((line[6:] for line in answer.text.splitlines() if line.startswith("data: ")), answer.text)
    result = json.loads(data).get("result", {})
    body = (result.get("content") or [{}])[0].get("text", data)
    if result.get("isError"):
        outcome = "refused: " + body[body.find("the CSV"):][:80]
    else:
        outcome = f"plan with {result['structuredContent']['steps']} steps, answer {len(answer.content):,} bytes"
    print(f"feed: {lines} lines ({len(text.encode()) / 1e6:.1f} MB, {len(names)} customers): {outcome}; "
          f"{took:.2f} s; event loop held at most {longest * 1000:.0f} ms; RSS {before:.0f} MB before, "
          f"peak {peak_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--calls", type=int, default=10_000)
    f.add_argument("--per-token", type=int, default=16)
    g = sub.add_parser("feed")
    g.add_argument("--lines", type=int, default=150_000)
    g.add_argument("--customers", type=int, default=400)
    g.add_argument("--max-rows", type=int, default=None)
    g.add_argument("--max-bytes", type=int, default=None)
    args = parser.parse_args()
    if args.what == "flood":
        anyio.run(flood, args.calls, args.per_token)
    else:
        anyio.run(feed, args.lines, args.customers, args.max_rows, args.max_bytes)


if __name__ == "__main__":
    main()
