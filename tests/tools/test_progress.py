"""Progress as the MCP spec wants it: values strictly increase, slow calls (dry runs too) are
never silent, and a wait on Halo's rate limit is announced. Through the real SDK client, the
embedded sandbox and a real journal; the channel's rules also on their own."""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.pacing import Backoff, RequestBudget, wait_listener
from halo_contracts.progress import CallProgress
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server
from support.successors import pending_successors

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
SANDBOX = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")
WAIT = re.compile(r"^waiting \d+ s for Halo's rate limit")

Seen = list[tuple[float, float | None, str | None]]


def recorder(seen: Seen):
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return on_progress


def increasing(seen: Seen) -> bool:
    return all(a[0] < b[0] for a, b in itertools.pairwise(seen))


def renewable(sb) -> list[int]:
    docs = sb.store.where("contracts")
    renewed = {c["previouscontract"] for c in docs if c.get("previouscontract")} | set(pending_successors(docs))
    return [c["id"] for c in docs if c.get("status") == 1 and c.get("end_date") and c["id"] not in renewed]


def server_on(app, tmp_path, **settings):
    return build_server(load_settings(**SANDBOX, **settings), transport=transport(app),
                        journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})


# ---- through the SDK client ---------------------------------------------------------------------


async def test_a_renewal_apply_reports_strictly_increasing_progress_ending_at_its_total(tmp_path):
    app = create_app(SandboxConfig(clients=8, contracts=45, today=TODAY, seed=7))
    server = server_on(app, tmp_path, tools="renewals,plans")
    async with Client(server) as client:
        ids = renewable(app.state.sandbox)[:5]
        preview = await client.call_tool("generate_renewals", {"contract_ids": ids, "dry_run": True})
        assert not preview.is_error, preview.content[0].text
        plan_id, steps = preview.structured_content["plan_id"], preview.structured_content["steps"]
        assert steps > len(ids)  # several steps per contract: groups complete on their last step
        seen: Seen = []
        applied = await client.call_tool("apply_plan", {"plan_id": plan_id}, progress_callback=recorder(seen))
        assert not applied.is_error, applied.content[0].text
    assert len(seen) == steps and increasing(seen), seen
    assert seen[-1][:2] == (steps, steps)
    assert sum("Group" in (m or "") for _, _, m in seen) == len(ids)  # each contract's group, once


async def test_a_slow_dry_run_is_not_silent(tmp_path):
    app = create_app(SandboxConfig(clients=8, contracts=45, today=TODAY, seed=7))
    server = server_on(app, tmp_path, tools="renewals,plans")
    async with Client(server) as client:
        ids = renewable(app.state.sandbox)[:2]
        app.state.sandbox.faults.latency = (0.3, 0.3)  # every Halo answer takes 0.3 s
        seen: Seen = []
        preview = await client.call_tool("generate_renewals", {"contract_ids": ids, "dry_run": True},
                                         progress_callback=recorder(seen))
        assert not preview.is_error, preview.content[0].text
    assert seen and increasing(seen), seen
    assert all(re.fullmatch(r"\d+ Halo requests? answered", m or "") for _, _, m in seen), seen
    assert app.state.sandbox.log.entries(), "the preview read Halo"


async def test_a_call_held_by_the_request_budget_announces_the_wait(tmp_path):
    app = create_app(SandboxConfig(clients=6, contracts=20, today=TODAY, seed=7))
    # three requests per 2.5 s: the reconciliation's token and four sweeps must wait for room
    server = server_on(app, tmp_path, tools="reconciliation", rate_limit="3/2.5")
    async with Client(server) as client:
        seen: Seen = []
        result = await client.call_tool("reconcile_billing", {"period_start": "2026-05-01",
                                                              "period_end": "2026-05-31"},
                                        progress_callback=recorder(seen))
        assert not result.is_error, result.content[0].text
    waits = [m for _, _, m in seen if m and WAIT.match(m)]
    assert waits, seen
    assert increasing(seen), seen
    assert seen[-1][0] == seen[-1][1]  # the tool's own scale still ends at its total


async def test_a_429_back_off_is_announced_to_the_call(tmp_path):
    app = create_app(SandboxConfig(clients=6, contracts=20, today=TODAY, seed=7))
    sb = app.state.sandbox
    heard: list[tuple[float, str]] = []
    slept: list[float] = []

    async def listener(seconds: float, message: str) -> None:
        heard.append((seconds, message))

    async def sleep(seconds: float) -> None:  # no real 5 s wait; the window clears meanwhile
        slept.append(seconds)
        sb.reset_rate_limit()

    settings = load_settings(**SANDBOX)
    async with HaloClient(settings, transport=transport(app), budget=RequestBudget(1000, 1), backoff=Backoff(),
                          sleep=sleep) as halo:
        await halo.list_contracts(ContractQuery())  # token and one page
        sb.faults.rate_limit = 1
        sb.reset_rate_limit()
        sb.take_slot()  # the window is full: the next request is answered 429
        token = wait_listener.set(listener)
        try:
            rows = await halo.list_contracts(ContractQuery())
        finally:
            wait_listener.reset(token)
    assert rows and slept == [5.0]
    assert heard == [(5.0, "waiting 5 s for Halo's rate limit (it answered 429)")]


# ---- the channel's rules ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def channel(clock: Clock | None = None) -> tuple[CallProgress, Seen]:
    seen: Seen = []
    return CallProgress(recorder(seen), clock=clock or Clock()), seen


async def test_a_repeated_value_moves_between_steps_and_never_overtakes_the_next():
    progress, seen = channel()
    await progress.report(1, 3, "step 1")
    await progress.report(1, 3, "group 1")  # the same value again
    await progress.report(1, 3, "group 1 again")
    await progress.report(2, 3, "step 2")
    await progress.report(3, 3, "step 3")
    await progress.report(3, 3, "after the end")  # no room above the total: dropped
    assert [v for v, _, _ in seen] == [1, 1.5, 1.75, 2, 3]
    assert [m for _, _, m in seen][-1] == "step 3" and all(t == 3 for _, t, _ in seen)


async def test_a_wait_is_announced_between_two_reports():
    progress, seen = channel()
    await progress.announce_wait(40, "waiting 40 s for Halo's rate limit")  # before any report
    await progress.report(1, 4, "step 1")
    await progress.announce_wait(12, "waiting 12 s for Halo's rate limit")
    await progress.report(2, 4, "step 2")
    assert seen == [(0.0, None, "waiting 40 s for Halo's rate limit"), (1.0, 4.0, "step 1"),
                    (1.5, 4.0, "waiting 12 s for Halo's rate limit"), (2.0, 4.0, "step 2")]


async def test_answered_requests_are_reported_after_a_quiet_second_until_the_tool_reports():
    clock = Clock()
    progress, seen = channel(clock)
    await progress.request_answered()  # at once: nothing yet
    clock.now = 1.2
    await progress.request_answered()
    clock.now = 1.5
    await progress.request_answered()  # 0.3 s after the last notification: quiet
    clock.now = 2.6
    await progress.request_answered()
    await progress.report(1, 2, "first of two")  # the tool takes over, counting on from 5
    clock.now = 9.0
    await progress.request_answered()  # the tool owns the scale now
    await progress.report(2, 2, "second of two")
    assert seen == [(2.0, None, "2 Halo requests answered"), (4.0, None, "4 Halo requests answered"),
                    (6.0, 7.0, "first of two"), (7.0, 7.0, "second of two")]


async def test_a_claimed_call_reports_no_requests_and_a_failing_consumer_breaks_nothing():
    clock = Clock()

    async def broken(*_args) -> None:
        raise RuntimeError("the client went away")

    progress = CallProgress(broken, clock=clock)
    progress.claim()
    clock.now = 5.0
    await progress.request_answered()
    assert progress.sent == 0
    await progress.report(1, 1, "done")  # raises inside the consumer: logged, not raised
    assert progress.sent == 1 and progress.last == 1
