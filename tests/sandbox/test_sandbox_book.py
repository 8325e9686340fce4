"""The sandbox's demo book: every promised case is present, billing discrepancies are exactly
the listed ones (checked against the data served over HTTP), determinism and scale."""

from __future__ import annotations

import calendar
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import httpx2
import pytest

from halo_contracts.sandbox import SandboxConfig, Store, create_app, generate, transport

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 22)
CREDS = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
MONTHS = {1: 1, 2: 3, 3: 12}


@pytest.fixture(scope="module")
def app():
    return create_app(SandboxConfig(today=TODAY, strict=True))


async def fetch_all(c: httpx2.AsyncClient, path: str, key: str, **params) -> list[dict]:
    rows: list[dict] = []
    page = 1
    while True:
        body = (await c.get(path, params={**params, "pageinate": "true", "page_size": 100, "page_no": page})).json()
        rows += body[key]
        if len(rows) >= body["record_count"] or not body[key]:
            return rows
        page += 1


def d(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def test_book_contains_every_case(app):
    book = app.state.sandbox.book
    assert len(book.contract_ids) == 120 and len(book.client_ids) == 25
    assert len(book.clean_contract_ids) > 20
    assert_every_case(book)


def test_a_small_book_still_has_every_case():
    book = generate(Store(), clients=4, contracts=33, today=TODAY, seed=5)
    assert len(book.contract_ids) == 33
    assert_every_case(book)


def assert_every_case(book) -> None:
    assert set(book.contracts_by_type) == {"Recurring", "Prepaid Hours", "Ad-Hoc", "Project", "Warranty"}
    assert set(book.contracts_by_status) == {"Active", "Pending", "Expired", "Cancelled", "On Hold"}
    assert book.inactive_client_ids
    assert {x.kind for x in book.discrepancies} == {
        "missing_month",
        "under_billed",
        "billed_after_end",
        "duplicate_invoice",
        "billed_while_inactive",
    }
    for x in book.discrepancies:
        assert x.amount > 0 and x.amount == x.amount.quantize(Decimal("0.01"))
    assert book.prepaid["healthy"] and book.prepaid["low"] and book.prepaid["exhausted"]
    assert book.prepaid["expiring"] and book.prepaid["expired"]
    assert all(book.expiring[bucket] for bucket in (30, 60, 90))
    assert len(book.renewed) >= 2
    expiring_ids = {c for ids in book.expiring.values() for c in ids}
    assert any(old in expiring_ids for old, _ in book.renewed)  # renewed before it ran out
    assert any(old not in expiring_ids for old, _ in book.renewed)  # renewed in the past
    assert book.quarterly_line_ids and book.annual_line_ids and book.included_hours_contract_ids
    assert book.credit_notes and book.mixed_invoice_ids and book.time_invoice_ids
    assert book.unbilled_action_ids and book.invoiced_action_ids and book.unbilled_amount
    assert book.sla_ids and book.ticket_ids and book.breached_ticket_ids
    assert book.licence_ids and book.inactive_licence_ids and book.licence_mismatches
    assert book.clean_contract_ids
    assert book.billing_months[-1] == date(2026, 11, 1) and len(book.billing_months) == 6


def test_client_names_vary_like_real_ones(app):
    names = " | ".join(app.state.sandbox.book.client_names.values())
    for marker in (", LLC", "Ltd", "Inc.", "&", "'", "GmbH", "Corp"):
        assert marker in names


async def test_discrepancies_are_exactly_what_the_served_data_shows(app):
    """Recompute expected billing from the recurring lines and compare with invoices, over HTTP."""
    book = app.state.sandbox.book
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as c:
        c.headers["Authorization"] = "Bearer " + (await c.post("/auth/token", data=CREDS)).json()["access_token"]
        contracts = {
            x["id"]: (await c.get(f"/api/ClientContract/{x['id']}")).json()
            for x in await fetch_all(c, "/api/ClientContract", "contracts", includeinactive="true")
            if x["contracttype"] == 1
        }
        headers = await fetch_all(c, "/api/RecurringInvoice", "invoices", includelines="true")
        invoices = await fetch_all(c, "/api/Invoice", "invoices", includelines="true")
    lines_of: dict[int, list[dict]] = defaultdict(list)
    for h in headers:  # a line bills at its header's period (the 2026 shapes: lines carry none)
        lines_of[h["contract_id"]] += [{**line, "billingperiod": line.get("billingperiod") or h.get("period") or 0}
                                       for line in h["lines"]]
    expected: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    for cid, contract in contracts.items():
        if contract["status"] in (2, 5):  # Pending / On Hold: nothing is due
            continue
        start, end = d(contract["start_date"]), d(contract["end_date"])
        for month in book.billing_months:
            if month < start.replace(day=1) or (end and month > end):
                continue
            for line in lines_of[cid]:
                anchor = d(line["startdate"]).replace(day=1)
                period = MONTHS[line["billingperiod"] or contract["billingperiod"]]
                if month >= anchor and months_between(anchor, month) % period == 0:
                    expected[(cid, month)] += Decimal(str(line["qty_order"])) * Decimal(str(line["unit_price"]))
    billed: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    for inv in invoices:
        if not inv["period_start_date"]:
            continue  # labour invoices
        for line in inv["lines"]:
            billed[(line["contract_id"], d(inv["period_start_date"]))] += Decimal(str(line["net_amount"]))
    found = {key: billed[key] - expected[key] for key in set(expected) | set(billed) if billed[key] != expected[key]}
    listed = {(x.contract_id, x.period_start): x for x in book.discrepancies}
    assert set(found) == set(listed)
    for key, diff in found.items():
        x = listed[key]
        assert abs(diff) == x.amount
        assert (diff < 0) == (x.kind in ("missing_month", "under_billed"))
    for cid in book.clean_contract_ids:
        assert all(key[0] != cid for key in found)
        assert any(billed[(cid, m)] for m in book.billing_months)
    # the invoices the manifest names carry what it says
    by_id = {inv["id"]: inv for inv in invoices}
    for x in book.discrepancies:
        if x.kind == "missing_month":
            assert x.invoice_id is None
            continue
        inv = by_id[x.invoice_id]
        assert d(inv["period_start_date"]) == x.period_start and d(inv["period_end_date"]) == x.period_end
        contract = contracts[x.contract_id]
        if x.kind == "billed_after_end":
            assert d(contract["end_date"]) < x.period_start and contract["contract_status"] == "Expired"
        if x.kind == "billed_while_inactive":
            assert contract["active"] is False and contract["contract_status"] == "On Hold"
        if x.kind == "duplicate_invoice":
            same = [
                i
                for i in invoices
                if i["contract_id"] == x.contract_id and i["period_start_date"] == inv["period_start_date"]
            ]
            assert len(same) == 2
        if x.kind == "under_billed":
            billed_line = next(line for line in inv["lines"] if line["recurring_invoice_line_id"] == x.line_id)
            rec = next(line for line in lines_of[x.contract_id] if line["id"] == x.line_id)
            short = Decimal(str(rec["qty_order"])) - Decimal(str(billed_line["qty_order"]))
            assert short * Decimal(str(rec["unit_price"])) == x.amount


async def test_expiring_buckets_and_renewals_match_the_contracts(app):
    book = app.state.sandbox.book
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as c:
        c.headers["Authorization"] = "Bearer " + (await c.post("/auth/token", data=CREDS)).json()["access_token"]
        rows = {r["id"]: r for r in await fetch_all(c, "/api/ClientContract", "contracts", includeinactive="true")}
        for bucket, ids in book.expiring.items():
            for cid in ids:
                days = (d(rows[cid]["end_date"]) - TODAY).days
                assert bucket - 30 < days <= bucket and rows[cid]["status"] == 1
        for old, new in book.renewed:
            detail = (await c.get(f"/api/ClientContract/{new}")).json()
            assert detail["previouscontract"] == old
            assert d(detail["start_date"]) > d(rows[old]["start_date"])
        for state in ("healthy", "low", "exhausted"):
            for cid in book.prepaid[state]:
                assert rows[cid]["contracttype"] == 2
        expiring = book.prepaid["expiring"][0]
        ledger = (await c.get("/api/ClientPrepay", params={"contract_id": expiring})).json()["prepayhistory"]
        soon = [r for r in ledger if r["expirydate"] and TODAY <= d(r["expirydate"]) <= TODAY + timedelta(days=30)]
        assert soon


def dump(store: Store) -> dict[str, list[str]]:
    tables = (
        "clients",
        "slas",
        "contracts",
        "rinvoices",
        "rlines",
        "invoices",
        "ilines",
        "prepay",
        "actions",
        "tickets",
        "licences",
        "lookups",
    )
    return {t: [row[0] for row in store.db.execute(f"SELECT doc FROM {t} ORDER BY id")] for t in tables}


def test_same_seed_same_book_different_seed_different():
    a, b, other = Store(), Store(), Store()
    book_a = generate(a, clients=12, contracts=60, today=TODAY, seed=3)
    book_b = generate(b, clients=12, contracts=60, today=TODAY, seed=3)
    generate(other, clients=12, contracts=60, today=TODAY, seed=4)
    assert dump(a) == dump(b)
    assert book_a == book_b
    assert dump(a) != dump(other)


def test_default_book_starts_fast():
    start = time.perf_counter()
    app = create_app(SandboxConfig())
    assert time.perf_counter() - start < 1.0
    assert app.state.sandbox.today == date.today()
    assert app.state.sandbox.book.discrepancies


def test_small_books_still_work():
    for n in (0, 1, 7):
        book = generate(Store(), clients=2, contracts=n, today=TODAY)
        assert len(book.contract_ids) == n


@pytest.mark.slow
def test_ten_thousand_contracts():
    store = Store()
    start = time.perf_counter()
    book = generate(store, clients=2000, contracts=10_000, today=TODAY)
    elapsed = time.perf_counter() - start
    assert store.count("contracts") == 10_000 and len(book.contract_ids) == 10_000
    assert store.count("invoices") > 20_000
    assert elapsed < 20
    assert_every_case(book)


async def test_data_file_persists_between_runs(tmp_path):
    path = str(tmp_path / "halo.sqlite")
    first = create_app(SandboxConfig(db_path=path, clients=5, contracts=30, today=TODAY))
    assert first.state.sandbox.book is not None
    async with httpx2.AsyncClient(transport=transport(first), base_url="http://sandbox") as c:
        c.headers["Authorization"] = "Bearer " + (await c.post("/auth/token", data=CREDS)).json()["access_token"]
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "KEEP-ME"}])
        assert r.status_code == 201
    first.state.sandbox.store.close()
    second = create_app(SandboxConfig(db_path=path, clients=5, contracts=30, today=TODAY))
    assert second.state.sandbox.book is None  # not regenerated
    assert second.state.sandbox.store.count("contracts") == 31
    second.state.sandbox.store.close()


def test_month_helper_sanity():
    assert calendar.monthrange(2026, 2)[1] == 28
