"""Pure portfolio summaries and CSV rendering."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal as D

import pytest

from halo_contracts.config import Settings
from halo_contracts.domain.models import Contract, RecurringItem
from halo_contracts.domain.reports import GROUP_BY, contract_arr, render_csv, summarize, summary_csv

MONTHS_OF = Settings().code_maps.months_of
TODAY = date(2026, 6, 15)


def c(cid: int, client: int, *, type_: str = "Recurring", status: str = "Active", value: str = "0",
      frequency: str | None = "Monthly") -> Contract:
    return Contract(id=cid, client_id=client, client_name=f"Client {client}", type=type_, status=status,
                    value=D(value), billing_frequency=frequency)


def line(qty: str, price: str, frequency: str | None = None, *, end: date | None = None,
         inactive: bool = False) -> RecurringItem:
    return RecurringItem(quantity=D(qty), unit_price=D(price), billing_frequency=frequency, end_date=end,
                         inactive=inactive)


def test_arr_from_lines_each_at_its_own_frequency():
    contract = c(1, 1, value="999")
    lines = [line("10", "45.00"), line("1", "225.00", "Quarterly"), line("2", "120.00", "Annual"),
             line("5", "10.00", end=date(2026, 1, 31)), line("5", "10.00", inactive=True)]
    arr = contract_arr(contract, lines, MONTHS_OF, TODAY)
    # 450*12 + 225*4 + 240*1; the ended and the inactive line do not recur
    assert (arr.amount, arr.source) == (D("6540.00"), "lines")


def test_arr_falls_back_to_value_for_recurring_contracts_only():
    assert contract_arr(c(1, 1, value="300", frequency="Quarterly"), [], MONTHS_OF, TODAY).amount == D("1200")
    assert contract_arr(c(2, 1, value="300", frequency=None), [], MONTHS_OF, TODAY).amount == D("3600")
    prepaid = contract_arr(c(3, 1, type_="Prepaid Hours", value="2500"), [], MONTHS_OF, TODAY)
    assert (prepaid.amount, prepaid.source) == (D(0), "none")


def test_by_client_highest_first_with_totals():
    contracts = [c(1, 1, value="100"), c(2, 2, value="500"), c(3, 2, value="50", type_="Project"),
                 c(4, 3, value="200", status="Expired")]
    lines = {1: [line("1", "100")], 2: [line("1", "500")]}
    s = summarize(contracts, lines, "client", MONTHS_OF, TODAY)
    assert [(g.client_id, g.contracts, g.total_value, g.annual_recurring) for g in s.groups] == [
        (2, 2, D("550.00"), D("6000.00")),
        (3, 1, D("200.00"), D("2400.00")),  # no lines: value x 12
        (1, 1, D("100.00"), D("1200.00")),
    ]
    assert (s.contracts, s.total_value, s.annual_recurring) == (4, D("850.00"), D("9600.00"))
    assert (s.from_lines, s.from_value) == (2, 1)


@pytest.mark.parametrize("group_by", GROUP_BY)
def test_every_grouping_counts_every_contract(group_by):
    contracts = [c(1, 1, value="10"), c(2, 2, status="Pending", frequency="Annual", value="20"),
                 c(3, 2, type_="Warranty", frequency=None)]
    s = summarize(contracts, {}, group_by, MONTHS_OF, TODAY)
    assert sum(g.contracts for g in s.groups) == 3
    assert sorted(i for g in s.groups for i in g.contract_ids) == [1, 2, 3]


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
