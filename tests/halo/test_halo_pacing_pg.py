"""The request budget shared through PostgreSQL: budgets opened separately (as separate
processes open them) on one database and tenant never exceed one window together."""

from __future__ import annotations

import time

import anyio
import pytest

from halo_contracts.halo.pacing_pg import PostgresRequestBudget

pytestmark = pytest.mark.anyio


def _max_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max(sum(1 for b in starts if a - window < b <= a) for a in starts)


async def test_two_budgets_on_one_database_share_one_window(pg_url):
    a = PostgresRequestBudget(pg_url, 4, 1.0, key="acme", margin=0.2)
    b = PostgresRequestBudget(pg_url, 4, 1.0, key="acme", margin=0.2)
    starts: list[float] = []

    async def request(budget: PostgresRequestBudget) -> None:
        async with budget.slot():
            starts.append(time.monotonic())
            await anyio.sleep(0.01)

    began = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(request, a if i % 2 else b)
        assert a.in_window() == b.in_window() >= 1
    finally:
        a.close()
        b.close()
    assert len(starts) == 12
    assert _max_in_window(starts, 1.0) <= 4
    # 12 requests at 4 per second: two full waits at least
    assert time.monotonic() - began >= 2.0
    assert a.waited + b.waited > 0


async def test_other_tenants_and_limits_do_not_share(pg_url):
    a = PostgresRequestBudget(pg_url, 2, 60.0, key="acme")
    b = PostgresRequestBudget(pg_url, 2, 60.0, key="globex")
    try:
        for budget in (a, a, b, b):
            async with budget.slot():
                pass
        assert a.in_window() == 2 and b.in_window() == 2
        with anyio.move_on_after(0.5) as scope:
            await a.acquire()  # acme's window is full for a minute
        assert scope.cancelled_caught
    finally:
        a.close()
        b.close()


async def test_a_dead_processes_in_flight_slot_expires_when_stale(pg_url):
    import psycopg

    a = PostgresRequestBudget(pg_url, 1, 0.5, key="acme", stale_after=1.0, margin=0.05)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:  # taken, never stamped
            conn.execute("INSERT INTO halo_budget(budget, holder, taken)"
                         " VALUES (%s, 'gone', extract(epoch from clock_timestamp()))", (a.key,))
        began = time.monotonic()
        async with a.slot():
            pass
        assert 1.0 <= time.monotonic() - began < 5.0
    finally:
        a.close()
