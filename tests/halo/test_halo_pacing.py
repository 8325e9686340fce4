"""The rolling-window budget, the back-off policy, the token cache and the paging guards, alone."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from halo_contracts.halo.auth import TokenCache, read_token_answer, refresh_skew
from halo_contracts.halo.errors import HaloIncompleteRead
from halo_contracts.halo.pacing import Backoff, RequestBudget, parse_retry_after, shared_budget
from halo_contracts.halo.paging import extract_rows, read_all_pages

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await anyio.sleep(0)


async def test_budget_never_allows_more_than_n_in_any_window():
    clock = FakeClock()
    budget = RequestBudget(5, 10.0, clock=clock, sleep=clock.sleep, margin=0.0)
    stamps: list[float] = []
    for _ in range(17):
        async with budget.slot():
            stamps.append(clock.now)
            clock.now += 0.1  # each request takes 100 ms
    for i, t in enumerate(stamps):
        in_window = [s for s in stamps if t - 10.0 < s <= t]
        assert len(in_window) <= 5, (i, in_window)
    assert stamps[5] >= stamps[0] + 0.1 + 10.0  # waited for the first answer's slot to age out
    assert budget.waited > 0 and budget.acquired == 17


async def test_budget_stamps_slots_when_the_answer_arrives():
    clock = FakeClock()
    budget = RequestBudget(1, 5.0, clock=clock, sleep=clock.sleep, margin=0.0)
    async with budget.slot():
        clock.now += 3.0  # slow answer
    started = clock.now
    async with budget.slot():
        pass
    assert clock.now - started == pytest.approx(5.0)  # counted from the answer, not the send


async def test_budget_waits_while_every_slot_is_in_flight():
    clock = FakeClock()
    budget = RequestBudget(1, 1.0, clock=clock, sleep=clock.sleep, margin=0.0)
    slot = await budget.acquire()

    async def release_later() -> None:
        await anyio.sleep(0)
        clock.now += 0.2
        budget.release(slot)

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_later)
        second = await budget.acquire()
    assert second is not slot and slot.stamp is not None
    assert clock.now >= slot.stamp + 1.0  # waited for the in-flight request's answer, then the window


def test_shared_budget_is_one_per_limit():
    assert shared_budget(300, 300) is shared_budget(300, 300.0)
    assert shared_budget(300, 300) is not shared_budget(20, 2)
    with pytest.raises(ValueError):
        RequestBudget(0, 1)


def test_backoff_and_retry_after():
    b = Backoff()
    assert [b.rate_delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [5, 10, 20, 40, 60, 60, 60]
    assert b.rate_delay(3, retry_after=2.5) == 2.5
    assert b.rate_delay(1, retry_after=10_000) == b.retry_after_cap
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0


def test_refresh_skew():
    assert refresh_skew(3600) == 60
    assert refresh_skew(100) == pytest.approx(10)
    assert read_token_answer({"access_token": "a", "expires_in": 120}) == ("a", 120.0)
    assert read_token_answer({"access_token": "a"}) == ("a", 3600.0)
    assert read_token_answer({"error": "invalid_client"}) is None


async def test_token_cache_shares_one_fetch_between_concurrent_callers():
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        return f"t{calls}", 3600.0

    cache = TokenCache(fetch)
    results: list[tuple[str, bool]] = []

    async def get() -> None:
        token, fresh = await cache.get()
        results.append((token.value, fresh))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(get)
    assert calls == 1
    assert sorted(results) == [("t1", False)] * 9 + [("t1", True)]
    token = cache.current
    assert token is not None and "t1" not in repr(token)
    cache.invalidate(token)
    assert (await cache.get())[0].value == "t2"
    cache.invalidate(token)  # a stale token does not throw away the new one
    assert cache.current is not None and cache.current.value == "t2"


async def test_token_cache_refreshes_before_expiry():
    clock = FakeClock()
    values = iter(["a", "b"])

    async def fetch() -> tuple[str, float]:
        return next(values), 100.0

    cache = TokenCache(fetch, clock=clock)
    assert (await cache.get())[0].value == "a"
    clock.now += 89.0
    assert (await cache.get())[0].value == "a"
    clock.now += 2.0  # past 100 - 10 % skew
    assert (await cache.get())[0].value == "b"


# ---- paging guards ---------------------------------------------------------------------------


def pages_of(rows, size, *, count=True):
    async def fetch(page_no: int, page_size: int):
        chunk = rows[(page_no - 1) * page_size: page_no * page_size]
        body = {"things": chunk}
        if count:
            body["record_count"] = len(rows)
        return body
    return fetch


async def test_read_all_pages_counts_and_short_page():
    rows = [{"id": i} for i in range(23)]
    seen: list[tuple[int, int | None]] = []
    got = await read_all_pages(pages_of(rows, 10), key="things", operation="t", page_size=10,
                               on_page=lambda d, t: seen.append((d, t)))
    assert got == rows and seen == [(1, 3), (2, 3), (3, 3)]
    got = await read_all_pages(pages_of(rows, 10, count=False), key="things", operation="t", page_size=10)
    assert got == rows


async def test_read_all_pages_exact_multiple_without_count_reads_one_empty_page():
    rows = [{"id": i} for i in range(20)]
    calls: list[int] = []
    inner = pages_of(rows, 10, count=False)

    async def fetch(page_no, page_size):
        calls.append(page_no)
        return await inner(page_no, page_size)

    assert await read_all_pages(fetch, key="things", operation="t", page_size=10) == rows
    assert calls == [1, 2, 3]


async def test_repeating_pages_raise_incomplete():
    async def fetch(page_no, page_size):
        return [{"id": i} for i in range(page_size)]  # bare array, same rows every time

    with pytest.raises(HaloIncompleteRead, match="repeated") as info:
        await read_all_pages(fetch, key="things", operation="list things", page_size=10)
    assert info.value.operation == "list things"


async def test_rows_without_ids_stop_at_max_pages():
    async def fetch(page_no, page_size):
        return {"things": [{"name": "x"}] * page_size}

    with pytest.raises(HaloIncompleteRead, match="4 pages"):
        await read_all_pages(fetch, key="things", operation="t", page_size=10, max_pages=4)


def test_extract_rows_shapes():
    assert extract_rows([{"id": 1}, 3], "x") == [{"id": 1}]
    assert extract_rows({"record_count": 1, "Contracts": [{"id": 1}]}, "contracts") == [{"id": 1}]
    assert extract_rows({"record_count": 1, "whatever": [{"id": 2}], "columns": []}, "contracts") == [{"id": 2}]
    assert extract_rows({"id": 5, "name": "single"}, "contracts") == [{"id": 5, "name": "single"}]
    assert extract_rows(None, "x") == [] and extract_rows("text", "x") == []


def test_shared_budget_can_be_scoped_to_a_transport():
    class Transport:
        pass

    a, b = Transport(), Transport()
    assert shared_budget(7, 7, scope=a) is shared_budget(7, 7, scope=a)
    assert shared_budget(7, 7, scope=a) is not shared_budget(7, 7, scope=b)
    assert shared_budget(7, 7, scope=a) is not shared_budget(7, 7)


async def test_server_capping_page_size_is_followed():
    rows = [{"id": i} for i in range(120)]
    asked: list[tuple[int, int]] = []

    async def fetch(page_no, page_size):  # a server that never returns more than 50 rows a page
        asked.append((page_no, page_size))
        return {"record_count": 120, "things": rows[(page_no - 1) * 50: page_no * 50]}

    seen: list[tuple[int, int | None]] = []
    got = await read_all_pages(fetch, key="things", operation="t", page_size=100,
                               on_page=lambda d, t: seen.append((d, t)))
    assert got == rows
    assert asked == [(1, 100), (2, 50), (3, 50)]
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_moved_list_is_read_again_with_the_servers_capped_page_size():
    """A server capping pages at 50, and a row deleted after the first page: the second read
    starts from page 1 again, follows the cap again and returns the list as it now stands."""
    rows = [{"id": i} for i in range(120)]
    asked: list[tuple[int, int]] = []

    async def fetch(page_no, page_size):
        asked.append((page_no, page_size))
        answer = {"record_count": len(rows), "things": rows[(page_no - 1) * 50: page_no * 50]}
        if len(asked) == 1:
            rows.remove({"id": 7})
        return answer

    seen: list[tuple[int, int | None]] = []
    got = await read_all_pages(fetch, key="things", operation="t", page_size=100,
                               on_page=lambda d, t: seen.append((d, t)))
    assert got == [{"id": i} for i in range(120) if i != 7]
    assert asked == [(1, 100), (2, 50), (1, 100), (2, 50), (3, 50)]
    assert seen == [(1, 3), (2, 4), (3, 4), (4, 4)]
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})  # done only grows


async def test_short_end_without_a_count_change_is_read_again_then_refused():
    rows = [{"id": i} for i in range(25)]
    calls: list[int] = []

    async def fetch(page_no, page_size):  # record_count keeps claiming 30
        calls.append(page_no)
        return {"record_count": 30, "things": rows[(page_no - 1) * page_size: page_no * page_size]}

    with pytest.raises(HaloIncompleteRead, match="the list changed while it was read") as info:
        await read_all_pages(fetch, key="things", operation="list things", page_size=10)
    assert "25 distinct rows were read but page 1 announced 30" in str(info.value)
    assert calls == [1, 2, 3, 1, 2, 3]


async def test_repeated_ids_across_pages_count_once_and_force_a_second_read():
    """Row 9 shows up on pages 1 and 2 (the list shifted): 19 distinct rows for a count of
    20 is not complete, whatever the number of rows received."""
    answers = iter([
        {"record_count": 20, "things": [{"id": i} for i in range(10)]},
        {"record_count": 20, "things": [{"id": i} for i in range(9, 19)]},
        {"record_count": 20, "things": []},
        {"record_count": 20, "things": [{"id": i} for i in range(10)]},
        {"record_count": 20, "things": [{"id": i} for i in range(10, 20)]},
    ])

    async def fetch(page_no, page_size):
        return next(answers)

    got = await read_all_pages(fetch, key="things", operation="t", page_size=10)
    assert got == [{"id": i} for i in range(20)]


async def test_lists_without_record_count_are_not_read_twice():
    rows = [{"id": i} for i in range(25)]
    calls: list[int] = []
    inner = pages_of(rows, 10, count=False)

    async def fetch(page_no, page_size):
        calls.append(page_no)
        return await inner(page_no, page_size)

    assert await read_all_pages(fetch, key="things", operation="t", page_size=10) == rows
    assert calls == [1, 2, 3]
