"""HaloClient against a fake Halo at the HTTP boundary: reads, writes, auth, errors, paging."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import httpx2
import pytest

from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import (
    HaloAuthError,
    HaloIncompleteRead,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloServerError,
    HaloUnavailable,
    HaloUnknownOutcome,
    HaloValidationError,
)
from halo_contracts.halo.pacing import Backoff
from support.fakehalo import FAST, SECRET, FakeHalo, fake_contract, fake_settings, roomy_budget

pytestmark = pytest.mark.anyio


def client_for(fake: FakeHalo, **kwargs) -> HaloClient:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("budget", roomy_budget())
    settings = kwargs.pop("settings", None) or fake_settings()
    return HaloClient(settings, transport=fake.transport(), **kwargs)


# ---- auth ------------------------------------------------------------------------------------


async def test_token_is_fetched_once_and_sent_as_bearer():
    fake = FakeHalo(contracts=[fake_contract(1)])
    async with client_for(fake) as halo:
        await halo.list_contracts()
        await halo.get_contract(1)
        await halo.list_contracts()
    token_calls = [e for e in fake.log if e.path == "/auth/token"]
    assert len(token_calls) == 1
    form = token_calls[0].body
    assert form == {"grant_type": "client_credentials", "client_id": "client-abc", "client_secret": SECRET,
                    "scope": "all"}
    assert all(e.headers["authorization"] == "Bearer tok-1-xyzzy" for e in fake.api_calls())


async def test_token_url_carries_tenant():
    fake = FakeHalo()
    settings = fake_settings(tenant="acme")
    async with client_for(fake, settings=settings) as halo:
        await halo.list_slas()
    assert fake.log[0].path == "/auth/token" and fake.log[0].query == {"tenant": "acme"}


async def test_short_lived_token_is_replaced_before_expiry():
    fake = FakeHalo(token_lifetime=0)  # 0/absent -> treated as the default; use a tiny one instead
    fake.token_lifetime = 1
    async with client_for(fake) as halo:
        await halo.list_slas()
        # lifetime 1 s, 10 % skew: refresh at 0.9 s; pretend time passed
        halo._auth._token.fetched_at -= 1.0  # type: ignore[union-attr]
        await halo.list_slas()
    assert len(fake.tokens_issued) == 2


async def test_expired_token_401_refreshes_once_and_retries():
    fake = FakeHalo(contracts=[fake_contract(1)])
    async with client_for(fake) as halo:
        await halo.get_contract(1)
        fake.revoked.add(fake.tokens_issued[0])  # Halo expired it early
        contract = await halo.get_contract(1)
    assert contract.id == 1
    assert len(fake.tokens_issued) == 2
    assert [e.headers["authorization"] for e in fake.api_calls()] == [
        "Bearer tok-1-xyzzy", "Bearer tok-1-xyzzy", "Bearer tok-2-xyzzy"]


async def test_401_with_fresh_token_is_a_permission_error():
    fake = FakeHalo(contracts=[fake_contract(1)], deny_paths={"/api/ClientContract/"})
    async with client_for(fake) as halo:
        await halo.list_contracts()  # list works, detail is denied (halocli's live observation)
        with pytest.raises(HaloPermissionError) as info:
            await halo.get_contract(1)
    err = info.value
    assert err.status == 401
    assert "missing Halo permission" in str(err) and "/api/ClientContract/1" in str(err)
    assert err.operation == "get contract"
    assert len(fake.tokens_issued) == 2  # refreshed once, then gave up


async def test_403_is_a_permission_error():
    fake = FakeHalo()
    fake.script(r"/api/Invoice", httpx2.Response(403, json={"message": "You do not have access to Invoices"}))
    async with client_for(fake) as halo:
        with pytest.raises(HaloPermissionError) as info:
            await halo.list_invoices()
    assert "You do not have access to Invoices" in str(info.value)
    assert info.value.operation == "list invoices"


async def test_refused_credentials_are_an_auth_error_without_the_secret(caplog):
    caplog.set_level(logging.DEBUG, logger="halo_contracts")
    fake = FakeHalo(accept_secret="something-else")
    async with client_for(fake) as halo:
        with pytest.raises(HaloAuthError) as info:
            await halo.list_slas()
    text = str(info.value)
    assert "invalid" in text.lower() and info.value.status == 400
    assert SECRET not in text and SECRET not in caplog.text


async def test_missing_credentials_are_an_auth_error():
    fake = FakeHalo()
    async with client_for(fake, settings=fake_settings(client_secret=None)) as halo:
        with pytest.raises(HaloAuthError, match="HALO_CLIENT_SECRET"):
            await halo.list_slas()
    assert fake.log == []


# ---- errors ----------------------------------------------------------------------------------


async def test_model_state_400_becomes_validation_error_with_details():
    fake = FakeHalo()
    fake.script(r"/api/ClientContract", httpx2.Response(400, json={
        "[0].start_date": ["Could not convert string to DateTime: soon. Path '[0].start_date'."],
        "[0].ref": ["A contract with this reference already exists."]}))
    async with client_for(fake) as halo:
        with pytest.raises(HaloValidationError) as info:
            await halo.create_contract(ContractFields(client_id=10, ref="C-1"))
    err = info.value
    assert err.status == 400 and err.operation == "create contract"
    assert err.details["[0].ref"] == ["A contract with this reference already exists."]
    assert "ref: A contract with this reference already exists." in str(err)
    assert "start_date: Could not convert" in str(err)
    assert str(err).startswith("create contract: Halo answered 400: ")


async def test_404_is_not_found():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        with pytest.raises(HaloNotFound) as info:
            await halo.get_contract(99)
    assert info.value.status == 404 and "Record not found" in str(info.value)


async def test_reads_retry_5xx_then_succeed():
    fake = FakeHalo(contracts=[fake_contract(1)])
    fake.script(r"/api/ClientContract", httpx2.Response(500, text="boom"), httpx2.Response(503, text=""))
    async with client_for(fake) as halo:
        contracts = await halo.list_contracts()
    assert [c.id for c in contracts] == [1]
    assert len(fake.api_calls()) == 3


async def test_reads_give_up_after_bounded_retries():
    fake = FakeHalo()
    fake.script(r"/api/SLA", *[httpx2.Response(500, json={"message": "Object reference not set"})] * 5)
    async with client_for(fake) as halo:
        with pytest.raises(HaloServerError, match="Object reference not set"):
            await halo.list_slas()
    assert len(fake.api_calls()) == 1 + FAST.read_retries


async def test_read_timeouts_are_retried_then_unavailable():
    fake = FakeHalo()
    fake.script(r"/api/SLA", *[httpx2.ReadTimeout("slow")] * 5)
    async with client_for(fake) as halo:
        with pytest.raises(HaloUnavailable, match="ReadTimeout"):
            await halo.list_slas()
    assert len(fake.api_calls()) == 1 + FAST.read_retries


async def test_write_with_lost_answer_is_unknown_outcome_and_not_resent():
    fake = FakeHalo()
    fake.script(r"/api/ClientContract", httpx2.RemoteProtocolError("peer closed connection"))
    async with client_for(fake) as halo:
        with pytest.raises(HaloUnknownOutcome) as info:
            await halo.create_contract(ContractFields(client_id=10, ref="C-9"))
    assert info.value.operation == "create contract"
    assert len(fake.api_calls("POST")) == 1


@pytest.mark.parametrize("answer", [httpx2.Response(500, text="oops"), httpx2.ReadTimeout("slow"),
                                    httpx2.Response(502, text="")])
async def test_write_5xx_or_timeout_is_unknown_outcome(answer):
    fake = FakeHalo()
    fake.script(r"/api/SoftwareLicence", answer)
    async with client_for(fake) as halo:
        with pytest.raises(HaloUnknownOutcome):
            await halo.delete_licence(5)
    assert len(fake.api_calls("DELETE")) == 1


async def test_write_not_sent_connect_error_is_retried():
    fake = FakeHalo()
    fake.script(r"/api/ClientContract", httpx2.ConnectError("refused"))
    async with client_for(fake) as halo:
        contract = await halo.create_contract(ContractFields(client_id=10, ref="C-9"))
    assert contract.ref == "C-9"
    assert len(fake.api_calls("POST")) == 2


async def test_429_backs_off_then_succeeds_for_reads_and_writes():
    fake = FakeHalo()
    limited = httpx2.Response(429, text="Rate Limit Reached - 300 Requests per rolling 5 minute window")
    fake.script(r"/api/ClientContract", limited, limited)
    slept: list[float] = []

    async def spy(delay: float) -> None:
        slept.append(delay)

    backoff = Backoff(rate_base=0.001, rate_cap=0.003, rate_attempts=5)
    async with client_for(fake, backoff=backoff, sleep=spy) as halo:
        contract = await halo.create_contract(ContractFields(client_id=10, ref="C-1"))
    assert contract.ref == "C-1"
    assert slept == [0.001, 0.002]
    assert len(fake.api_calls("POST")) == 3


def test_backoff_schedule_defaults():
    b = Backoff()
    assert [b.rate_delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert b.rate_delay(1, retry_after=7.0) == 7.0


async def test_429_honours_retry_after_and_gives_up():
    fake = FakeHalo()
    fake.script(r"/api/SLA", *[httpx2.Response(429, headers={"Retry-After": "0"}, text="Rate Limit Reached")] * 9)
    backoff = Backoff(rate_base=100, rate_cap=100, rate_attempts=3)  # Retry-After 0 wins over 100 s
    async with client_for(fake, backoff=backoff) as halo:
        with pytest.raises(HaloRateLimited) as info:
            await halo.list_slas()
    assert info.value.status == 429 and "Rate Limit Reached" in str(info.value)
    assert len(fake.api_calls()) == 4


# ---- paging ----------------------------------------------------------------------------------


async def test_paging_reads_every_page_and_reports_progress():
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 251)])
    progress: list[tuple[int, int | None]] = []

    async def on_page(done: int, total: int | None) -> None:
        progress.append((done, total))

    async with client_for(fake) as halo:
        contracts = await halo.list_contracts(on_page=on_page)
    assert [c.id for c in contracts] == list(range(1, 251))
    calls = fake.api_calls()
    assert [c.query["page_no"] for c in calls] == ["1", "2", "3"]
    assert all(c.query["pageinate"] == "true" and c.query["page_size"] == "100" for c in calls)
    assert progress == [(1, 3), (2, 3), (3, 3)]


async def test_paging_stops_on_short_page_without_record_count():
    fake = FakeHalo()
    rows = [fake_contract(i) for i in range(1, 131)]
    fake.script(r"/api/ClientContract$",
                httpx2.Response(200, json={"contracts": rows[:100]}),
                httpx2.Response(200, json={"contracts": rows[100:]}))
    async with client_for(fake) as halo:
        contracts = await halo.list_contracts()
    assert len(contracts) == 130 and len(fake.api_calls()) == 2


async def test_paging_stops_at_record_count():
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 201)])
    async with client_for(fake) as halo:
        assert len(await halo.list_contracts()) == 200
    assert len(fake.api_calls()) == 2  # no third, empty page


async def test_endpoint_ignoring_paging_is_caught():
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 101)])
    fake.ignore_paging.add("/clientcontract")
    # record_count lies high: every page repeats the same 100 rows
    fake.script(r"/api/ClientContract$", *[httpx2.Response(200, json={"record_count": 500, "contracts":
                                                                       fake.contracts})] * 3)
    async with client_for(fake) as halo:
        with pytest.raises(HaloIncompleteRead, match="repeated"):
            await halo.list_contracts()
    assert len(fake.api_calls()) == 2


async def test_oversized_page_with_full_count_is_accepted_else_incomplete():
    rows = [fake_contract(i) for i in range(1, 151)]
    fake = FakeHalo()
    fake.script(r"/api/ClientContract$", httpx2.Response(200, json={"record_count": 150, "contracts": rows}))
    async with client_for(fake) as halo:
        assert len(await halo.list_contracts()) == 150
    fake = FakeHalo()
    fake.script(r"/api/ClientContract$", httpx2.Response(200, json={"record_count": 900, "contracts": rows}))
    async with client_for(fake) as halo:
        with pytest.raises(HaloIncompleteRead, match="150 rows"):
            await halo.list_contracts()


def pages_read(fake: FakeHalo, path: str = "/api/ClientContract") -> list[str]:
    return [e.query["page_no"] for e in fake.api_calls() if e.path == path]


async def test_row_deleted_between_pages_is_caught_and_the_list_read_again():
    """The review's case: 250 rows, id 50 deleted after page 1 -> id 101 slides onto page 1.
    Read once, that returned 249 rows without 101 and no error; now the count change sends
    the read back to page 1 and the answer is the complete list as it now stands."""
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 251)])

    def delete_50_once(entry):
        if entry.query.get("page_no") == "1" and any(c["id"] == 50 for c in fake.contracts):
            fake.contracts[:] = [c for c in fake.contracts if c["id"] != 50]

    fake.after(r"/api/ClientContract$", delete_50_once)
    progress: list[tuple[int, int | None]] = []
    async with client_for(fake) as halo:
        contracts = await halo.list_contracts(on_page=lambda d, t: progress.append((d, t)))
    ids = [c.id for c in contracts]
    assert ids == [i for i in range(1, 251) if i != 50] and 101 in ids
    # page 2 answered record_count 249 (page 1 said 250): read again from page 1 at once
    assert pages_read(fake) == ["1", "2", "1", "2", "3"]
    # progress only grows, also across the second read
    assert progress == [(1, 3), (2, 4), (3, 4), (4, 4)]


async def test_row_deleted_on_the_last_page_still_ends_complete():
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 251)])

    def delete_250_once(entry):
        if entry.query.get("page_no") == "2" and any(c["id"] == 250 for c in fake.contracts):
            fake.contracts[:] = [c for c in fake.contracts if c["id"] != 250]

    fake.after(r"/api/ClientContract$", delete_250_once)
    async with client_for(fake) as halo:
        contracts = await halo.list_contracts()
    assert [c.id for c in contracts] == list(range(1, 250))
    assert pages_read(fake) == ["1", "2", "3", "1", "2", "3"]


async def test_row_added_between_pages_is_not_missed():
    """A row sorted onto page 1 after it was read pushes row 100 onto page 2 (a repeat)
    and the new row is never seen: the count change catches it."""
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 201)])

    def insert_once(entry):
        if entry.query.get("page_no") == "1" and not any(c["id"] == 0 for c in fake.contracts):
            fake.contracts.insert(0, fake_contract(0))

    fake.after(r"/api/ClientContract$", insert_once)
    async with client_for(fake) as halo:
        contracts = await halo.list_contracts()
    assert [c.id for c in contracts] == list(range(0, 201))
    assert pages_read(fake) == ["1", "2", "1", "2", "3"]


async def test_list_that_keeps_moving_raises_incomplete_read():
    fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, 251)])

    def delete_one_after_each_first_page(entry):
        if entry.query.get("page_no") == "1":
            fake.contracts.pop(0)

    fake.after(r"/api/ClientContract$", delete_one_after_each_first_page)
    async with client_for(fake) as halo:
        with pytest.raises(HaloIncompleteRead) as info:
            await halo.list_contracts()
    message = str(info.value)
    assert info.value.operation == "list contracts"
    assert "the list changed while it was read" in message and "retry" in message
    assert "nothing was decided from a partial list" in message
    assert pages_read(fake) == ["1", "2", "1", "2"]  # two reads, never a third


async def test_count_that_never_matches_the_rows_raises_after_one_reread():
    """record_count says 260, only 250 rows ever come: the short end is no longer just a
    logged warning."""
    rows = [fake_contract(i) for i in range(1, 251)]

    def answer(request):
        page = int(dict(request.url.params)["page_no"])
        return httpx2.Response(200, json={"record_count": 260, "contracts": rows[(page - 1) * 100: page * 100]})

    fake = FakeHalo()
    fake.script(r"/api/ClientContract$", *[answer] * 6)
    async with client_for(fake) as halo:
        with pytest.raises(HaloIncompleteRead, match="250 distinct rows were read but page 1 announced 260"):
            await halo.list_contracts()
    assert pages_read(fake) == ["1", "2", "3", "1", "2", "3"]


async def test_lists_that_do_not_move_cost_no_extra_request():
    for size, pages in ((0, ["1"]), (1, ["1"]), (99, ["1"]), (100, ["1"]), (101, ["1", "2"]),
                        (200, ["1", "2"]), (250, ["1", "2", "3"])):
        fake = FakeHalo(contracts=[fake_contract(i) for i in range(1, size + 1)])
        async with client_for(fake) as halo:
            assert [c.id for c in await halo.list_contracts()] == list(range(1, size + 1))
        assert pages_read(fake) == pages, size


async def test_max_pages_guard():
    fake = FakeHalo()
    fake.script(r"/api/ClientContract$", *[
        httpx2.Response(200, json={"contracts": [fake_contract(p * 100 + i) for i in range(100)]})
        for p in range(10)])
    async with client_for(fake, max_pages=3) as halo:
        with pytest.raises(HaloIncompleteRead, match="3 pages"):
            await halo.list_contracts()


# ---- reads map to domain models --------------------------------------------------------------


async def test_contract_detail_maps_prepay_periods_and_history():
    row = fake_contract(
        7, contracttype=2, status=9, billingperiod=3, periodchargeamount=1500.1, note="Block of 20 h",
        sla_id=3, sla_name="Gold", previouscontract=0, termmonths=12, startbalance=20.0,
        contract_prepaytotal=20.0, contract_prepayused=7.5, contract_prepaybalance=12.5,
        contract_prepayasamount=False, prepayrecurringexpirymonths=12, chargehoursperperiod=5,
        periodicinvoicenextdate="2026-02-01T00:00:00", end_date="1900-01-01T00:00:00",
        periods=[{"id": 1, "contract_id": 7, "name": "Jan", "start_date": "2026-01-01T00:00:00",
                  "end_date": "2026-01-31T00:00:00", "current": True, "hours_in_period": 5, "hours_used": 2.25,
                  "hours_remaining": 2.75}],
        contract_prepayhistory=[{"id": 4, "client_id": 10, "date": "2026-01-02T10:11:12.53", "hours": 20,
                                 "amount": 0, "description": "Initial block", "expirydate": "2027-01-02T00:00:00"}],
    )
    fake = FakeHalo(contracts=[row])
    async with client_for(fake) as halo:
        c = await halo.get_contract(7)
    assert fake.api_calls()[0].query == {"includedetails": "true", "includeperiods": "true"}
    assert c.type == "Prepaid Hours" and c.status == "code 9" and c.billing_frequency == "Annual"
    assert c.value == Decimal("1500.1") and c.notes == "Block of 20 h" and c.sla_name == "Gold"
    assert c.previous_contract_id is None and c.term_months == 12 and c.end_date is None
    assert c.prepaid_hours == Decimal("20.0") and c.prepay_balance == Decimal("12.5")
    assert c.hours_per_period == Decimal(5) and c.next_invoice_date == date(2026, 2, 1)
    assert c.periods[0].hours_used == Decimal("2.25") and c.periods[0].current
    assert c.prepay_history[0].entry_date == date(2026, 1, 2) and c.prepay_history[0].contract_id == 7
    assert c.hourly_rate == Decimal("75.005")


async def test_list_filters_go_to_the_query():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        await halo.list_contracts(ContractQuery(client_id=10, search="Acme", include_inactive=True,
                                                exclude_renewed=True))
        await halo.list_recurring_invoices(contract_id=7)
        await halo.list_invoices(client_id=10, contract_id=7)
        await halo.list_time_entries(start=date(2026, 1, 1), end=date(2026, 1, 31), ticket_id=3)
        await halo.list_tickets(contract_id=7, start=date(2026, 1, 1), end=date(2026, 3, 31))
        await halo.list_prepay_entries(client_id=10, contract_id=7)
        await halo.list_licences(client_id=10)
        await halo.list_clients(search="Ac", include_inactive=True)
        await halo.get_lookup(71)
    q = {e.path: {k: v for k, v in e.query.items() if k not in ("pageinate", "page_size", "page_no")}
         for e in fake.api_calls()}
    assert q["/api/ClientContract"] == {"client_id": "10", "search": "Acme", "includeinactive": "true",
                                        "excluderenewed": "true"}
    assert q["/api/RecurringInvoice"] == {"contract_id": "7", "includelines": "true"}
    assert q["/api/Invoice"] == {"client_id": "10", "contract_id": "7", "includelines": "true"}
    assert q["/api/Actions"] == {"timeentriesonly": "true", "startdate": "2026-01-01T00:00:00",
                                 "enddate": "2026-01-31T23:59:59", "ticket_id": "3"}
    # the slice documents Halo's own spelling: "Date Opened - 'dateoccured'"
    assert q["/api/Tickets"] == {"contract_id": "7", "datesearch": "dateoccured",
                                 "startdate": "2026-01-01T00:00:00", "enddate": "2026-03-31T23:59:59"}
    assert q["/api/ClientPrepay"] == {"client_id": "10", "contract_id": "7"}
    assert q["/api/SoftwareLicence"] == {"client_id": "10"}  # inactive licences left out by default
    assert q["/api/Client"] == {"search": "Ac", "includeinactive": "true"}
    assert q["/api/Lookup"] == {"lookupid": "71"}


async def test_list_licences_can_include_inactive_ones():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        await halo.list_licences(include_inactive=True)
        await halo.list_licences(client_id=10, include_inactive=False)
    sent = [{k: v for k, v in e.query.items() if k not in ("pageinate", "page_size", "page_no")}
            for e in fake.api_calls()]
    assert sent == [{"includeinactive": "true"}, {"client_id": "10"}]


async def test_invoices_map_credits_and_filter_dates_client_side():
    fake = FakeHalo(invoices=[
        {"id": 1, "invoicenumber": "INV-1", "client_id": 10, "invoice_date": "2026-01-31T00:00:00", "total": 100.1,
         "period_start_date": "2026-01-01T00:00:00", "period_end_date": "2026-01-31T00:00:00",
         "lines": [{"id": 11, "contract_id": 7, "item_shortdescription": "Support", "qty_order": 2,
                    "unit_price": 50.05, "net_amount": 100.1}]},
        {"id": 2, "invoicenumber": "CN-1", "client_id": 10, "invoice_date": "2026-02-10T00:00:00", "total": -20,
         "creditlinkedtoinvoiceid": 1, "lines": []},
        {"id": 3, "invoicenumber": "INV-0", "client_id": 10, "invoice_date": "2025-12-31T00:00:00", "total": 5},
    ])
    async with client_for(fake) as halo:
        invoices = await halo.list_invoices(start=date(2026, 1, 1), end=date(2026, 2, 28))
    assert [i.id for i in invoices] == [1, 2]
    first, credit = invoices
    assert first.total == Decimal("100.1") and first.lines[0].contract_id == 7
    assert first.lines[0].total == Decimal("100.1") and first.period_start == date(2026, 1, 1)
    assert credit.is_credit and credit.credit_for_invoice_id == 1 and not first.is_credit


async def test_time_entries_tickets_licences_clients_slas_lookups():
    fake = FakeHalo(
        actions=[{"id": 1, "ticket_id": 5, "actioncontractid": 7, "datetime": "2026-01-05T09:00:00", "timetaken": 1.5,
                  "actisbillable": True, "actionchargeamount": 120, "actionprepayhours": 1.5,
                  "actioninvoicenumber": "", "note": "fixed it"}],
        tickets=[{"id": 5, "client_id": 10, "contract_id": 7, "summary": "Printer", "slastate": "O",
                  "timetaken": 2, "dateoccurred": "2026-01-05T08:00:00", "dateclosed": "2026-01-06T08:00:00"},
                 {"id": 6, "client_id": 10, "slastate": "I", "dateoccurred": "2026-01-07T08:00:00"},
                 {"id": 8, "client_id": 10, "slastate": "", "dateoccurred": "2026-01-07T08:00:00"}],
        licences=[{"id": 3, "client_id": 10, "product_sku": "CFQ7TTC0LH18", "name": "M365 BP", "count": 25,
                   "price": 18.7, "billing_cycle": "Monthly", "term_duration": "P1Y"}],
        clients=[{"id": 10, "name": "Acme", "inactive": False, "toplevel_name": "Acme Group"}],
        slas=[{"id": 1, "name": "Gold"}],
        lookups=[{"id": 1, "lookupid": 71, "name": "Active", "inactive": False}],
    )
    async with client_for(fake) as halo:
        [entry] = await halo.list_time_entries(start=date(2026, 1, 1), end=date(2026, 1, 31))
        tickets = await halo.list_tickets(client_id=10)
        [licence] = await halo.list_licences()
        [client] = await halo.list_clients()
        [sla] = await halo.list_slas()
        [status] = await halo.get_lookup(71)
        assert (await halo.get_client(10)).parent_name == "Acme Group"
    assert entry.hours == Decimal("1.5") and entry.contract_id == 7 and not entry.invoiced
    assert [t.sla_met for t in tickets] == [False, True, None]
    assert licence.product_code == "CFQ7TTC0LH18" and licence.quantity == 25 and licence.unit_price == Decimal("18.7")
    assert licence.term == "P1Y" and client.parent_name == "Acme Group"
    assert sla.name == "Gold" and status.name == "Active"


# ---- writes ----------------------------------------------------------------------------------


async def test_create_and_update_contract_send_only_given_fields():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        created = await halo.create_contract(ContractFields(
            client_id=10, ref="C-NEW", type="Prepaid Hours", status="Active", start_date=date(2026, 1, 1),
            billing_frequency="Quarterly", value=Decimal("1499.99"), notes="n", prepaid_hours=Decimal("20")))
        await halo.update_contract(created.id, ContractFields(end_date=date(2026, 12, 31), notes=None))
    first, second = [e.body for e in fake.api_calls("POST")]
    assert first == [{"client_id": 10, "ref": "C-NEW", "contracttype": 2, "status": 1,
                      "start_date": "2026-01-01T00:00:00", "billingperiod": 2, "periodchargeamount": 1499.99,
                      "note": "n", "startbalance": 20.0}]
    assert second == [{"id": created.id, "end_date": "2026-12-31T00:00:00", "note": None}]
    assert created.type == "Prepaid Hours" and created.value == Decimal("1499.99")


async def test_unknown_type_name_is_refused_before_sending():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        with pytest.raises(HaloValidationError, match="unknown contract type 'Retainer'"):
            await halo.create_contract(ContractFields(client_id=10, type="Retainer"))
        await halo.create_contract(ContractFields(client_id=10, type="code 9"))
    assert fake.api_calls("POST")[0].body == [{"client_id": 10, "contracttype": 9}]


async def test_recurring_invoice_and_lines():
    """A recurring invoice is made with the schedule Halo raises invoices from (taken from the
    contract when not given); lines carry no frequency (the 2026 document): a line of another
    frequency goes to the contract's recurring invoice of that frequency, made on first use."""
    fake = FakeHalo(contracts=[fake_contract(7)])
    async with client_for(fake, today=lambda: date(2026, 3, 15)) as halo:
        header = await halo.create_recurring_invoice(client_id=10, contract_id=7, contract_ref="C-7")
        lines = await halo.add_recurring_lines(header.id, 7, [
            RecurringItemFields(description="Managed desktop", quantity=Decimal(25), unit_price=Decimal("45.50"),
                                start_date=date(2026, 1, 1)),
            RecurringItemFields(description="Backup", quantity=Decimal(1), unit_price=Decimal(99),
                                billing_frequency="Annual"),
        ])
        changed = await halo.update_recurring_line(lines[0].id, header.id, RecurringItemFields(quantity=Decimal(30)))
        read = await halo.list_recurring_invoices(contract_id=7)
    posts = [e.body for e in fake.api_calls("POST")]
    # the contract (monthly, from 2026-01-01) gives the schedule; the next invoice is the next period start
    assert posts[0] == [{"client_id": 10, "contract_id": 7, "is_recurring_invoice": True, "contract_ref": "C-7",
                         "period": 1, "startdate": "2026-01-01T00:00:00", "enddate": "2026-12-31T00:00:00",
                         "nextcreationdate": "2026-04-01T00:00:00"}]
    # the annual line made the contract's Annual recurring invoice (its next invoice: 2027-01-01)
    annual = posts[1][0]
    assert annual["period"] == 3 and annual["nextcreationdate"] == "2027-01-01T00:00:00"
    monthly_lines, annual_lines = posts[2], posts[3]
    assert monthly_lines == [{"ihid": header.id, "contract_id": 7, "item_shortdescription": "Managed desktop",
                              "qty_order": 25, "unit_price": 45.5, "startdate": "2026-01-01T00:00:00"}]
    assert annual_lines[0]["ihid"] != header.id and "billingperiod" not in annual_lines[0]
    assert posts[4] == [{"id": lines[0].id, "ihid": header.id, "qty_order": 30}]
    assert [line.description for line in lines] == ["Managed desktop", "Backup"]
    assert lines[0].recurring_invoice_id == header.id and lines[1].billing_frequency == "Annual"
    assert changed.quantity == Decimal(30)
    by_period = {ri.billing_frequency: ri for ri in read}
    assert set(by_period) == {"Monthly", "Annual"}
    assert [line.quantity for line in by_period["Monthly"].lines] == [Decimal(30)]
    assert [line.billing_frequency for line in by_period["Annual"].lines] == ["Annual"]


async def test_licence_create_update_delete():
    fake = FakeHalo()
    async with client_for(fake) as halo:
        lic = await halo.create_licence(LicenceFields(client_id=10, product_code="SKU-1", name="M365", quantity=5,
                                                      unit_price=Decimal("12.00"), billing_cycle="Monthly",
                                                      term="P1M"))
        updated = await halo.update_licence(lic.id, LicenceFields(quantity=7))
        await halo.delete_licence(lic.id)
    posts = [e.body for e in fake.api_calls("POST")]
    assert posts[0] == [{"client_id": 10, "product_sku": "SKU-1", "name": "M365", "count": 5, "price": 12.0,
                         "billing_cycle": "Monthly", "term_duration": "P1M"}]
    assert posts[1] == [{"id": lic.id, "count": 7}]
    assert updated.quantity == 7
    assert fake.api_calls("DELETE")[0].path == f"/api/SoftwareLicence/{lic.id}"
    assert fake.licences == []


@pytest.mark.parametrize("answer", [
    {"id": 55, "ref": "X"}, [{"id": 55, "ref": "X"}], {"contracts": [{"id": 55, "ref": "X"}]}])
async def test_post_answers_parsed_defensively(answer):
    fake = FakeHalo()
    fake.script(r"/api/ClientContract", httpx2.Response(201, json=answer))
    async with client_for(fake) as halo:
        assert (await halo.create_contract(ContractFields(ref="X"))).id == 55


async def test_post_answer_without_record_is_unknown_outcome():
    fake = FakeHalo()
    fake.script(r"/api/ClientContract", httpx2.Response(200, text=""))
    async with client_for(fake) as halo:
        with pytest.raises(HaloUnknownOutcome, match="did not return"):
            await halo.create_contract(ContractFields(ref="X"))


def test_preview_request_matches_what_is_sent():
    halo = HaloClient(fake_settings(), transport=FakeHalo().transport(), budget=roomy_budget())
    preview = halo.preview_request("update_contract", 7, ContractFields(value=Decimal("10.10")))
    assert preview["method"] == "POST" and preview["path"] == "/api/ClientContract"
    assert preview["body"] == [{"id": 7, "periodchargeamount": 10.1}]
    assert halo.preview_request("delete_licence", 3)["path"] == "/api/SoftwareLicence/3"
    assert halo.preview_request("add_recurring_lines", -240, 7, [RecurringItemFields(description="x")])["body"] == [
        {"ihid": -240, "contract_id": 7, "item_shortdescription": "x"}]
    with pytest.raises(ValueError, match="unknown write operation"):
        halo.preview_request("list_contracts")


# ---- secrets and logging ---------------------------------------------------------------------


async def test_no_secret_or_token_in_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="halo_contracts")
    fake = FakeHalo(contracts=[fake_contract(1)])
    # a misbehaving Halo that echoes the secret and the token back in its error messages
    fake.script(r"/api/ClientContract/1", lambda req: httpx2.Response(
        400, json={"message": f"bad {SECRET} {req.headers['authorization']}"}))
    errors: list[str] = []
    async with client_for(fake) as halo:
        with pytest.raises(HaloValidationError) as info:
            await halo.get_contract(1)
        errors.append(str(info.value))
        errors.append(repr(info.value.details))
        await halo.list_contracts()
        errors.append(repr(halo._auth.current))
    everything = "\n".join(errors) + caplog.text
    assert SECRET not in everything
    assert "tok-1-xyzzy" not in everything
    assert "GET /api/ClientContract -> 200" in caplog.text
    assert all(r.name.startswith("halo_contracts") for r in caplog.records)


async def test_on_request_hook_sees_every_request():
    seen: list[tuple[str, str, int | None]] = []
    fake = FakeHalo(contracts=[fake_contract(1)])
    fake.script(r"/api/SLA", httpx2.ReadError("dropped"))

    async def hook(method: str, path: str, status: int | None) -> None:
        seen.append((method, path, status))

    async with client_for(fake, on_request=hook) as halo:
        await halo.get_contract(1)
        await halo.list_slas()
    assert seen == [("POST", "/auth/token", 200), ("GET", "/api/ClientContract/1", 200),
                    ("GET", "/api/SLA", None), ("GET", "/api/SLA", 200)]
