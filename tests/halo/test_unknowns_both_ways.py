"""What no Halo document settles, played both ways by the sandbox's quirks.

For each unknown of issue 17 (sandbox ``Quirks``), the code path that depends on it runs under
both answers, through the real SDK client (or the Halo client) over the sandbox, and must give
the right answer either way: the same figures whether Halo filters or not, while the request
log or ``HaloClient.ignored_filters`` shows which answer the tenant gave.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import HaloIncompleteRead
from halo_contracts.sandbox import Quirks, SandboxConfig, create_app, transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
BASE = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
            allow_insecure_http=True)


def _app(quirks: Quirks, contracts: int = 60):
    return create_app(SandboxConfig(clients=8, contracts=contracts, today=TODAY, seed=7, quirks=quirks, strict=True))


@asynccontextmanager
async def mcp(tmp_path, quirks: Quirks, **settings: Any):
    """The server over a sandbox playing ``quirks``: (sandbox, SDK client)."""
    app = _app(quirks)
    server = build_server(load_settings(**BASE, **settings), transport=transport(app),
                          journal_path=tmp_path / f"j-{id(quirks)}.sqlite3", extras={"today": TODAY})
    async with Client(server) as client:
        yield app.state.sandbox, client


@asynccontextmanager
async def halo(quirks: Quirks, **settings: Any):
    app = _app(quirks)
    async with HaloClient(load_settings(**BASE, **settings), transport=transport(app)) as client:
        yield app.state.sandbox, client


async def call(client: Client, name: str, args: dict) -> dict:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


def api_reads(sb) -> int:
    return sum(1 for e in sb.log if e.path.lower().startswith("/api") and e.method == "GET")


# ---- /Invoice start_date/end_date: honoured or ignored ------------------------------------------


async def _reconcile(tmp_path, quirks: Quirks) -> tuple[dict, int]:
    async with mcp(tmp_path, quirks) as (sb, client):
        await call(client, "list_reference_data", {"kind": "statuses"})  # the token, outside the count
        sb.log.clear()
        out = await call(client, "reconcile_billing", {"period_start": "2026-05-01", "period_end": "2026-05-31",
                                                       "limit": 50, "detail": "full"})
        return out, sum(1 for e in sb.log if e.path.lower() == "/api/invoice")


async def test_reconciliation_figures_are_the_same_whether_halo_filters_invoices_by_date(tmp_path):
    honoured, reads_honoured = await _reconcile(tmp_path, Quirks(invoice_dates="honoured"))
    ignored, reads_ignored = await _reconcile(tmp_path, Quirks(invoice_dates="ignored"))
    # what was read may differ (every invoice comes back when Halo ignores the dates, and is
    # narrowed on our side); the figures do not
    read_honoured, read_ignored = honoured.pop("records_read"), ignored.pop("records_read")
    assert honoured["contracts"] and honoured == ignored
    assert read_ignored["invoices"] >= read_honoured["invoices"]
    assert reads_ignored >= reads_honoured >= 1


@pytest.mark.parametrize("invoice_dates", ["honoured", "ignored"])
async def test_invoice_reads_keep_one_window_and_notice_an_ignored_filter(invoice_dates):
    async with halo(Quirks(invoice_dates=invoice_dates)) as (sb, client):
        rows = await client.list_invoices(start=date(2026, 5, 1), end=date(2026, 5, 31))
        every = sb.store.where("invoices")
        want = sorted(d["id"] for d in every if "2026-05-01" <= str(d.get("invoice_date"))[:10] <= "2026-05-31")
        assert want and sorted(i.id for i in rows) == want
        assert any("/Invoice" in f for f in client.ignored_filters) is (invoice_dates == "ignored")


# ---- /ClientContract contract_type: honoured or ignored -----------------------------------------


@pytest.mark.parametrize("contract_type_filter", ["honoured", "ignored"])
async def test_contracts_of_one_type_are_the_same_whether_halo_filters_them(contract_type_filter):
    async with halo(Quirks(contract_type_filter=contract_type_filter)) as (sb, client):
        rows = await client.list_contracts(ContractQuery(type="Prepaid Hours", include_inactive=True))
        want = sorted(d["id"] for d in sb.store.where("contracts") if d.get("contracttype") == 2)
        assert want and sorted(c.id for c in rows) == want
        ignored = "/ClientContract contract_type" in client.ignored_filters
        assert ignored is (contract_type_filter == "ignored")


async def test_low_prepaid_sweep_is_the_same_whether_halo_filters_by_type(tmp_path):
    answers = []
    for value in ("honoured", "ignored"):
        async with mcp(tmp_path, Quirks(contract_type_filter=value)) as (_sb, client):
            answers.append(await call(client, "find_low_prepaid_balances", {}))
    assert answers[0] == answers[1]


# ---- excluderenewed: honoured or ignored ---------------------------------------------------------


async def test_expiring_contracts_and_renewed_flags_are_the_same_whether_excluderenewed_works(tmp_path):
    answers = []
    for value in ("hides_renewed", "ignored"):
        async with mcp(tmp_path, Quirks(excluderenewed=value)) as (_sb, client):
            answers.append(await call(client, "find_expiring_contracts", {"within_days": 365}))
    assert answers[0]["contracts"] and answers[0] == answers[1]


# ---- /Tickets: the date-field spelling, and dates honoured or ignored ------------------------------


async def _performance(tmp_path, quirks: Quirks, **settings) -> tuple[dict, int]:
    async with mcp(tmp_path, quirks, **settings) as (sb, client):
        with_tickets = sorted({d["contract_id"] for d in sb.store.where("tickets") if d.get("contract_id")})
        reviews = [await call(client, "review_contract_performance", {"contract_id": cid})
                   for cid in with_tickets[:4]]
        return {"reviews": reviews}, len(with_tickets)


@pytest.mark.parametrize(("spelling", "setting"), [("dateoccured", "documented"), ("dateoccurred", "field")])
async def test_contract_performance_is_the_same_under_either_ticket_date_spelling(tmp_path, spelling, setting):
    """The tenant honours one spelling of date opened (and refuses the other); with
    HALO_TICKET_DATE_SPELLING set to it (verify tells which), the review is the same."""
    default, n = await _performance(tmp_path, Quirks())
    played, _ = await _performance(tmp_path, Quirks(ticket_datesearch=spelling), ticket_date_spelling=setting)
    assert n and any(r["tickets"] for r in default["reviews"])
    assert played == default


async def test_a_ticket_date_spelling_the_tenant_refuses_is_an_error_not_a_wrong_review(tmp_path):
    async with mcp(tmp_path, Quirks(ticket_datesearch="dateoccurred")) as (sb, client):
        cid = next(d["contract_id"] for d in sb.store.where("tickets") if d.get("contract_id"))
        result = await client.call_tool("review_contract_performance", {"contract_id": cid})
        assert result.is_error and "datesearch" in result.content[0].text


@pytest.mark.parametrize("ticket_dates", ["honoured", "ignored"])
async def test_tickets_of_a_period_are_the_same_whether_halo_filters_their_dates(tmp_path, ticket_dates):
    default, _ = await _performance(tmp_path, Quirks())
    played, _ = await _performance(tmp_path, Quirks(ticket_dates=ticket_dates))
    assert played == default
    async with halo(Quirks(ticket_dates=ticket_dates)) as (sb, client):
        start, end = date(2026, 1, 1), date(2026, 3, 31)
        rows = await client.list_tickets(start=start, end=end)
        want = sorted(d["id"] for d in sb.store.where("tickets")
                      if start.isoformat() <= str(d.get("dateoccurred"))[:10] <= end.isoformat())
        assert want and sorted(t.id for t in rows) == want
        assert ("/Tickets startdate/enddate" in client.ignored_filters) is (ticket_dates == "ignored")


# ---- /Actions: a default row cap without count ------------------------------------------------------


async def test_a_capped_actions_answer_is_never_read_as_all_the_time(tmp_path):
    """A tenant whose /Actions answers at most N rows without count: the read either has every
    entry (the cap is above the range's count) or fails saying so; it never undercounts."""
    async with halo(Quirks()) as (_sb, client):
        start, end = date(2025, 6, 1), date(2026, 5, 31)
        every = await client.list_time_entries(start=start, end=end)
    assert len(every) > 5
    async with halo(Quirks(actions_cap=len(every) + 50)) as (_sb, client):
        roomy = await client.list_time_entries(start=start, end=end)
        assert sorted(e.id for e in roomy) == sorted(e.id for e in every)
    async with halo(Quirks(actions_cap=5)) as (_sb, client):
        with pytest.raises(HaloIncompleteRead, match="time entries"):
            await client.list_time_entries(start=start, end=end)


# ---- list wrappers: wrapped or bare ------------------------------------------------------------------


async def test_reads_are_the_same_whether_lists_are_wrapped_or_bare(tmp_path):
    answers = []
    for value in ("wrapped", "bare"):
        async with mcp(tmp_path, Quirks(list_wrappers=value)) as (_sb, client):
            answers.append({
                "search": await call(client, "search_contracts", {"status": "Active", "limit": 100}),
                "summary": await call(client, "summarize_contracts", {"group_by": "client"}),
                "clients": await call(client, "find_clients", {}),
            })
    assert answers[0]["search"]["contracts"] and answers[0] == answers[1]


# ---- writes answered with the record or with nothing -----------------------------------------------


async def _write_lines(tmp_path, quirks: Quirks) -> tuple[dict, int]:
    async with mcp(tmp_path, quirks) as (sb, client):
        cid = next(d["id"] for d in sb.store.where("contracts") if d.get("status") == 1 and d.get("contracttype") == 1
                   and sb.store.where("rinvoices", "contract_id = ?", [d["id"]]))
        added = await call(client, "add_recurring_items", {"contract_id": cid, "items": [
            {"description": "Backup as a Service", "quantity": 4, "unit_price": 9.5},
            {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "Annual"}]})
        first = added["item_ids"][0]
        await call(client, "update_recurring_item", {"item_id": first, "contract_id": cid,
                                                     "changes": {"quantity": 6}})
        listed = await call(client, "list_recurring_items", {"contract_id": cid})
        return {"added": {k: added[k] for k in ("outcome", "item_ids", "adds_per_month", "recurring_invoice_id")},
                "listed": listed}, api_reads(sb)


async def test_line_writes_give_the_same_result_whether_halo_answers_the_record_or_nothing(tmp_path):
    record, reads_record = await _write_lines(tmp_path, Quirks(write_answers="record"))
    empty, reads_empty = await _write_lines(tmp_path, Quirks(write_answers="empty"))
    assert record == empty and record["added"]["outcome"] == "added"
    changed = next(i for i in record["listed"]["items"] if i["id"] == record["added"]["item_ids"][0])
    assert changed["quantity"] == "6" or float(changed["quantity"]) == 6
    assert reads_empty > reads_record  # the bodiless answers were read back


# ---- lines posted: added or replacing ----------------------------------------------------------------


@pytest.mark.parametrize("lines_post", ["add", "replace"])
async def test_adding_lines_keeps_the_lines_already_there_whether_halo_adds_or_replaces(tmp_path, lines_post):
    async with mcp(tmp_path, Quirks(lines_post=lines_post), lines_post=lines_post) as (sb, client):
        cid = next(d["id"] for d in sb.store.where("contracts") if d.get("status") == 1 and d.get("contracttype") == 1
                   and sb.store.where("rlines", "contract_id = ?", [d["id"]]))
        before = await call(client, "list_recurring_items", {"contract_id": cid})
        await call(client, "add_recurring_items", {"contract_id": cid, "items": [
            {"description": "Backup as a Service", "quantity": 4, "unit_price": 9.5}]})
        after = await call(client, "list_recurring_items", {"contract_id": cid})
    kept = {i["id"]: i for i in after["items"]}
    assert all(kept.get(i["id"]) == i for i in before["items"]), "a line already there was lost or changed"
    assert len(after["items"]) == len(before["items"]) + 1


# ---- the document: lines with a billingperiod of their own (2024) or not (2026) --------------------


async def test_line_frequencies_and_totals_read_the_same_from_either_document(tmp_path):
    answers = []
    for value in ("2026", "2024"):
        async with mcp(tmp_path, Quirks(document=value)) as (sb, client):
            cids = sorted({d["contract_id"] for d in sb.store.where("rlines") if d.get("contract_id")})[:6]
            rows = []
            for cid in cids:
                listed = await call(client, "list_recurring_items", {"contract_id": cid})
                rows.append(sorted((i["description"], i["billing_frequency"], i["monthly_equivalent"])
                                   for i in listed["items"]))
            # a line of another frequency written, then read back: the same either way
            await call(client, "add_recurring_items", {"contract_id": cids[0], "items": [
                {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600,
                 "billing_frequency": "Annual"}]})
            listed = await call(client, "list_recurring_items", {"contract_id": cids[0]})
            rows.append(sorted((i["description"], i["billing_frequency"], i["monthly_equivalent"])
                               for i in listed["items"]))
            answers.append((cids, rows))
    assert answers[0][0] and answers[0] == answers[1]
    assert ("Firewall (annual)", "Annual", "50.00") in answers[0][1][-1]


# ---- the tenant's lookup codes: the documented defaults, or numbered otherwise ---------------------

SHIFTED = dict(status_codes="11:Active,12:Pending,13:Expired,14:Cancelled,15:On Hold",
               type_codes="11:Recurring,12:Prepaid Hours,13:Ad-Hoc,14:Project,15:Warranty",
               billing_period_codes="11:Monthly:1,12:Quarterly:3,13:Annual:12")


async def _book_view(tmp_path, quirks: Quirks, **settings) -> dict:
    async with mcp(tmp_path, quirks, **settings) as (sb, client):
        cid = next(d["id"] for d in sb.store.where("contracts") if d.get("status") == 1 and d.get("contracttype") == 1
                   and sb.store.where("rlines", "contract_id = ?", [d["id"]]))
        view = {
            "search": await call(client, "search_contracts", {"status": "Active", "type": "Recurring", "limit": 100}),
            "prepaid": await call(client, "find_low_prepaid_balances", {}),
            "items": await call(client, "list_recurring_items", {"contract_id": cid}),
        }
        await call(client, "add_recurring_items", {"contract_id": cid, "items": [
            {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "Annual"}]})
        view["after"] = await call(client, "list_recurring_items", {"contract_id": cid})
        # what was stored, in the stored numbering: the same codes whichever way the tenant numbers
        view["stored"] = sorted(h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [cid]))
        return view


async def test_the_book_reads_and_writes_the_same_when_the_tenant_numbers_its_codes_otherwise(tmp_path):
    """A tenant whose status, type and billing-period lists are numbered otherwise: with
    HALO_*_CODES set to its lists (verify compares them), every answer and write is the same."""
    default = await _book_view(tmp_path, Quirks())
    shifted = await _book_view(tmp_path, Quirks(lookup_codes="shifted"), **SHIFTED)
    assert default["search"]["contracts"] and default["items"]["items"]
    assert 3 in default["stored"]  # the annual line got (or found) the annual recurring invoice
    assert shifted == default


@pytest.mark.parametrize("lookup_codes", ["default", "shifted"])
async def test_the_lookup_lists_show_the_codes_the_tenant_uses(lookup_codes):
    codes = SHIFTED if lookup_codes == "shifted" else {}
    async with halo(Quirks(lookup_codes=lookup_codes), **codes) as (sb, client):
        listed = {row.name: row.id for row in await client.get_lookup(71)}
        assert listed["Active"] == (11 if lookup_codes == "shifted" else 1)
        active = await client.list_contracts(ContractQuery())
        want = sum(1 for d in sb.store.where("contracts") if d.get("active"))
        assert len(active) == want and {c.status for c in active} <= {"Active", "Pending"}


@pytest.mark.parametrize(("lookup_codes", "configured"), [("default", {}), ("shifted", SHIFTED), ("shifted", {})])
async def test_verify_says_whether_the_configured_codes_match_the_tenant(lookup_codes, configured):
    from halo_contracts.halo.verify import Report, check_lookups

    async with halo(Quirks(lookup_codes=lookup_codes), **configured) as (_sb, client):
        report = Report()
        await check_lookups(client, report)
    answers = [f.answer for f in report.findings]
    assert len(answers) == 3
    matched = lookup_codes == "default" or bool(configured)
    assert all(a == "the configured codes match" for a in answers) is matched
    assert any(a.startswith("differ: ") for a in answers) is not matched
