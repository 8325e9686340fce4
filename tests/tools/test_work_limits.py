"""Work per call: a licence feed has size limits, and its parsing and matching run off the
event loop, so one big feed never stalls another caller of the same server."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

BIG_LINES = 150_000


def settings(**extra):
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         rate_limit="1000000/1", tools="license-sync,plans,lookups", **extra)


@pytest.fixture
def sandbox_app():
    return create_app(SandboxConfig(rate_limit=1_000_000))


def big_feed(lines: int, quantity: str = "1") -> str:
    rows = ["customer,product code,quantity,unit price"]
    rows += [f"Customer {i % 400} Ltd,SKU-{i},{quantity},12.50" for i in range(lines)]
    return "\n".join(rows)


async def call(server, name: str, args: dict):
    async with Client(server) as client:
        return await client.call_tool(name, args)


async def test_oversized_feeds_are_refused_with_the_limit_and_setting(sandbox_app, tmp_path: Path) -> None:
    server = build_server(settings(), transport=transport(sandbox_app), journal_path=tmp_path / "j.sqlite3")
    sb = sandbox_app.state.sandbox
    sb.log.clear()
    started = time.perf_counter()
    result = await call(server, "plan_license_sync", {"source": big_feed(BIG_LINES, quantity="x"),
                                                      "distributor": "Pax8"})
    assert result.is_error
    text = result.content[0].text
    assert "Invalid 'source': " in text and "over the limit of 2,000,000" in text
    assert "HALO_FEED_MAX_BYTES" in text and "nothing was sent to Halo" in text
    assert time.perf_counter() - started < 5
    # within the bytes, over the rows
    short = "customer,sku,qty\n" + "\n".join(f"C{i},S{i},1" for i in range(10_001))
    text = (await call(server, "plan_license_sync", {"source": short, "distributor": "Pax8"})).content[0].text
    assert "has 10,001 rows, over the limit of 10,000" in text and "HALO_FEED_MAX_ROWS" in text
    rows = [{"customer": f"C{i}", "product_code": f"S{i}", "quantity": 1} for i in range(10_001)]
    text = (await call(server, "plan_license_sync", {"source": rows, "distributor": "Pax8"})).content[0].text
    assert "the list has 10,001 rows" in text
    assert sb.log.count(path_prefix="/api") == 0


async def test_limits_are_configurable(sandbox_app, tmp_path: Path) -> None:
    server = build_server(settings(feed_max_rows=2), transport=transport(sandbox_app),
                          journal_path=tmp_path / "j.sqlite3")
    text = (await call(server, "plan_license_sync", {"source": big_feed(3), "distributor": "Pax8"})).content[0].text
    assert "has 3 rows, over the limit of 2" in text
    result = await call(server, "plan_license_sync", {"source": big_feed(2), "distributor": "Pax8"})
    assert not result.is_error, result.content[0].text


async def test_a_big_feed_does_not_stall_another_call(sandbox_app, tmp_path: Path) -> None:
    """150,000 lines let through by raised limits are parsed in a worker thread: a lookup on
    the same server and session is answered meanwhile, in well under a second."""
    server = build_server(settings(feed_max_rows=1_000_000, feed_max_bytes=50_000_000),
                          transport=transport(sandbox_app), journal_path=tmp_path / "j.sqlite3")
    feed = big_feed(BIG_LINES, quantity="x")  # every line is wrong: the whole parse runs, no Halo reads
    lookup_seconds: list[float] = []
    sync_done = anyio.Event()
    # the objects earlier tests left in this process are not the server's: keep the collector's
    # full passes (which hold every thread) to what this test allocates
    gc.collect()
    gc.freeze()
    try:
        await _lookups_during_sync(server, feed, lookup_seconds, sync_done)
    finally:
        gc.unfreeze()
    assert lookup_seconds, "the sync ended before a lookup could run alongside it"
    assert max(lookup_seconds) < 1.0, lookup_seconds


async def _lookups_during_sync(server, feed: str, lookup_seconds: list[float], sync_done: anyio.Event) -> None:
    async with Client(server) as client:
        await client.call_tool("find_clients", {"name": "ac"})  # warm up

        async def sync() -> None:
            result = await client.call_tool("plan_license_sync", {"source": feed, "distributor": "Pax8"})
            assert result.is_error and f"{BIG_LINES} problem(s) in the feed" in result.content[0].text
            sync_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(sync)
            await anyio.sleep(0.3)  # the sync is parsing now
            while not sync_done.is_set():
                started = time.perf_counter()
                result = await client.call_tool("find_clients", {"name": "ac"})
                lookup_seconds.append(time.perf_counter() - started)
                assert not result.is_error
                await anyio.sleep(0.1)


async def test_an_oversized_charges_export_is_refused_the_same_way(sandbox_app, tmp_path: Path) -> None:
    server = build_server(settings(), transport=transport(sandbox_app), journal_path=tmp_path / "j.sqlite3")
    sb = sandbox_app.state.sandbox
    sb.log.clear()
    rows = ["customer,sku,quantity,unit price,period start"]
    rows += [f"Customer {i % 400} Ltd,SKU-{i},1,12.50,2026-11-01" for i in range(BIG_LINES)]
    started = time.perf_counter()
    result = await call(server, "plan_distributor_charges", {"source": "\n".join(rows), "distributor": "Pax8"})
    assert result.is_error and time.perf_counter() - started < 5
    text = result.content[0].text
    assert "over the limit of 2,000,000" in text and "HALO_FEED_MAX_BYTES" in text and "nothing was sent" in text
    listed = [{"customer": f"C{i}", "product_code": f"S{i}", "quantity": 1, "unit_price": 1,
               "period_start": "2026-11-01"} for i in range(10_001)]
    text = (await call(server, "plan_distributor_charges", {"source": listed, "distributor": "Pax8"})).content[0].text
    assert "the list has 10,001 rows" in text and "HALO_FEED_MAX_ROWS" in text
    assert sb.log.count(path_prefix="/api") == 0
