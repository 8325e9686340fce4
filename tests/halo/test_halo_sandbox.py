"""HaloClient against the embedded sandbox (an independent Halo emulator), in-process.

How to build a client on the sandbox (also for other tests):

    app = create_app(SandboxConfig(...))
    settings = Settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")
    async with HaloClient(settings, transport=sandbox.transport(app), budget=RequestBudget(...)) as halo: ...

``app.state.sandbox`` is the Sandbox: ``.log`` (every request), ``.faults`` (rate limit,
dropped answers, 5xx), ``.expire_tokens()``, ``.deny(prefix)``.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import anyio
import pytest

from halo_contracts.domain.drafts import ContractFields
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import (
    HaloAuthError,
    HaloPermissionError,
    HaloRateLimited,
    HaloUnknownOutcome,
    HaloValidationError,
)
from halo_contracts.halo.pacing import Backoff, RequestBudget
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from support.fakehalo import fake_settings, roomy_budget

pytestmark = pytest.mark.anyio

TODAY = date(2026, 3, 15)
CANARY = "sandbox-canary-secret-81c2f0"
TINY = Backoff(rate_base=0.05, rate_cap=0.4, rate_attempts=8, read_retries=2, retry_base=0.001, retry_cap=0.002)


def make_app(**config):
    config.setdefault("clients", 5)
    config.setdefault("contracts", 12)
    config.setdefault("today", TODAY)
    config.setdefault("client_secret", CANARY)
    return create_app(SandboxConfig(**config))


def client_on(app, *, secret: str = CANARY, **kwargs) -> HaloClient:
    kwargs.setdefault("backoff", TINY)
    kwargs.setdefault("budget", roomy_budget())
    settings = fake_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret=secret)
    return HaloClient(settings, transport=transport(app), **kwargs)


def log_of(app):
    return app.state.sandbox.log.entries()


async def test_token_is_cached_across_requests():
    app = make_app()
    async with client_on(app) as halo:
        clients = await halo.list_clients()
        for c in clients[:3]:
            await halo.get_client(c.id)
        await halo.list_contracts()
    assert app.state.sandbox.log.count("POST", "/auth/token") == 1
    assert halo.token_fetches == 1


async def test_expired_token_is_refreshed_once_and_the_call_succeeds():
    app = make_app()
    async with client_on(app) as halo:
        await halo.list_slas()
        app.state.sandbox.expire_tokens()
        slas = await halo.list_slas()
    assert slas
    statuses = [(e.path, e.status) for e in log_of(app)]
    assert statuses == [("/auth/token", 200), ("/api/SLA", 200), ("/api/SLA", 401), ("/auth/token", 200),
                        ("/api/SLA", 200)]


async def test_401_with_fresh_token_is_missing_permission():
    app = make_app()
    async with client_on(app) as halo:
        [contract, *_] = await halo.list_contracts()
        app.state.sandbox.deny(f"/api/ClientContract/{contract.id}")
        with pytest.raises(HaloPermissionError) as info:
            await halo.get_contract(contract.id)
        await halo.list_contracts()  # the rest still works
    assert "missing Halo permission" in str(info.value)
    assert f"/api/ClientContract/{contract.id}" in str(info.value)
    assert app.state.sandbox.log.count("POST", "/auth/token") == 2  # one refresh, no loop


async def test_wrong_secret_is_an_auth_error_and_never_shown(caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(client_secret="what-halo-expects")
    async with client_on(app, secret=CANARY) as halo:
        with pytest.raises(HaloAuthError) as info:
            await halo.list_clients()
    assert info.value.status == 401 and "credentials are invalid" in str(info.value)
    assert CANARY not in str(info.value) and CANARY not in caplog.text


async def test_burst_above_a_compressed_budget_gets_no_429():
    """45 concurrent reads against a server enforcing 20 per 1 s: the budget makes them wait."""
    app = make_app(rate_limit=20, rate_window=1.0)
    budget = RequestBudget(20, 1.0)
    done: list[int] = []
    started = time.monotonic()
    async with client_on(app, budget=budget, backoff=Backoff(rate_attempts=0)) as halo:
        [client, *_] = await halo.list_clients()

        async def one() -> None:
            await halo.get_client(client.id)
            done.append(1)

        async with anyio.create_task_group() as tg:
            for _ in range(43):
                tg.start_soon(one)
    elapsed = time.monotonic() - started
    statuses = [e.status for e in log_of(app)]
    assert len(done) == 43 and len(statuses) == 45  # token + list + 43 gets
    assert 429 not in statuses
    assert elapsed >= 2.0 and budget.waited > 0
    assert halo.stats.requests == 45 and halo.stats.rate_limited == 0 and halo.stats.token_fetches == 1


async def test_the_sandbox_really_enforces_its_limit_without_a_budget():
    app = make_app(rate_limit=5, rate_window=30.0)
    async with client_on(app, backoff=Backoff(rate_attempts=0)) as halo:
        with pytest.raises(HaloRateLimited, match="Rate Limit Reached"):
            for _ in range(10):
                await halo.list_slas()


async def test_429_backs_off_until_the_window_has_room():
    app = make_app(rate_limit=4, rate_window=0.3)
    async with client_on(app) as halo:  # roomy client budget: the server's 429s drive the pacing
        for _ in range(10):
            await halo.list_slas()
    statuses = [e.status for e in log_of(app)]
    assert statuses.count(200) == 11  # token + 10 reads
    assert 429 in statuses
    assert halo.stats.rate_limited == statuses.count(429) and halo.stats.backoff_seconds > 0


async def test_paging_over_several_pages():
    app = make_app(clients=30, contracts=250)
    progress: list[tuple[int, int | None]] = []

    async def on_page(done: int, pages: int | None) -> None:
        progress.append((done, pages))

    async with client_on(app) as halo:
        contracts = await halo.list_contracts(ContractQuery(include_inactive=True), on_page=on_page)
    assert len(contracts) > 200
    assert len({c.id for c in contracts}) == len(contracts)
    pages = -(-len(contracts) // 100)
    listed = [e for e in log_of(app) if e.path == "/api/ClientContract"]
    assert [e.query["page_no"] for e in listed] == [str(n) for n in range(1, pages + 1)]
    assert all(e.query["page_size"] == "100" and e.query["pageinate"] == "true" for e in listed)
    assert progress == [(n, pages) for n in range(1, pages + 1)]


async def test_an_endpoint_that_ignores_paging_is_read_once_not_forever():
    """/Actions has no paging in Halo's spec; asked for pages anyway, it answers everything."""
    app = make_app()
    async with client_on(app, page_size=5) as halo:
        rows = await halo._list("/Actions", key="actions", operation="list actions")
    assert len(rows) > 5
    assert app.state.sandbox.log.count("GET", "/api/Actions") == 1


async def test_model_state_error_message():
    app = make_app()
    async with client_on(app) as halo:
        with pytest.raises(HaloValidationError) as info:
            await halo.create_contract(ContractFields(client_id=999999, ref="NOPE"))
    err = info.value
    assert err.status == 400 and err.operation == "create contract"
    assert any("client_id" in key for key in err.details)
    assert "client_id: Client 999999 does not exist." in str(err)


async def test_dropped_write_is_unknown_outcome_and_sent_once():
    app = make_app()
    sandbox = app.state.sandbox
    async with client_on(app) as halo:
        [client, *_] = await halo.list_clients()
        sandbox.faults.drop_next_writes = 1
        with pytest.raises(HaloUnknownOutcome):
            await halo.create_contract(ContractFields(client_id=client.id, ref="DROP-1"))
        # the write was stored: the journal would find it by natural key
        found = await halo.list_contracts(query=None)
    posts = [e for e in log_of(app) if e.method == "POST" and e.path == "/api/ClientContract"]
    assert len(posts) == 1 and posts[0].dropped
    assert any(c.ref == "DROP-1" for c in found)


async def test_reads_survive_server_errors():
    app = make_app(error_rate=0.3, seed=11)
    async with client_on(app, backoff=Backoff(read_retries=6, retry_base=0.001, retry_cap=0.002)) as halo:
        for _ in range(10):
            await halo.list_slas()
    assert any(e.status >= 500 for e in log_of(app))


async def test_no_secret_or_token_anywhere_in_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app()
    sandbox = app.state.sandbox
    messages: list[str] = []
    async with client_on(app) as halo:
        [client, *_] = await halo.list_clients()
        await halo.list_contracts()
        sandbox.expire_tokens()
        await halo.list_slas()
        for bad in (ContractFields(client_id=client.id), ContractFields(client_id=-5, ref="x")):
            with pytest.raises(HaloValidationError) as info:
                await halo.create_contract(bad)
            messages += [str(info.value), repr(info.value.details)]
        sandbox.deny("/api/SLA")
        with pytest.raises(HaloPermissionError) as denied:
            await halo.list_slas()
        messages.append(str(denied.value))
    issued = list(sandbox._tokens)
    assert len(issued) >= 2
    everything = "\n".join(messages) + "\n" + caplog.text
    assert CANARY not in everything
    for token in issued:
        assert token not in everything
    assert "GET /api/ClientContract -> 200" in caplog.text


async def test_concurrent_requests_after_expiry_share_one_refresh():
    app = make_app()
    async with client_on(app) as halo:
        [client, *_] = await halo.list_clients()
        app.state.sandbox.expire_tokens()
        got: list[int] = []

        async def one() -> None:
            got.append((await halo.get_client(client.id)).id)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert got == [client.id] * 10
    assert app.state.sandbox.log.count("POST", "/auth/token") == 2  # one refresh for all of them
    assert 1 <= halo.stats.refreshes <= 10


async def test_ticket_window_and_inactive_licences_reach_the_sandbox_filters():
    """The client's datesearch value is one the sandbox (written from the slice) accepts, and
    include_inactive brings back the licences Halo leaves out by default."""
    app = make_app(clients=12, contracts=40)
    book = app.state.sandbox.book
    async with client_on(app) as halo:
        tickets = await halo.list_tickets(start=date(2025, 1, 1), end=date(2026, 12, 31))
        every_ticket = await halo.list_tickets()
        active = await halo.list_licences()
        every_licence = await halo.list_licences(include_inactive=True)
    assert tickets and all(t.opened is not None and date(2025, 1, 1) <= t.opened <= date(2026, 12, 31)
                           for t in tickets)
    assert len(tickets) <= len(every_ticket)
    sent = [e.query for e in log_of(app) if e.path == "/api/Tickets"]
    assert sent[0]["datesearch"] == "dateoccured"
    assert all(e.status == 200 for e in log_of(app) if e.path.startswith("/api/"))
    inactive = {lic.id for lic in every_licence} - {lic.id for lic in active}
    assert book.inactive_licence_ids and inactive == set(book.inactive_licence_ids)
