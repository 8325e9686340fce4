"""Pure reconciliation logic: proration by hand, each finding kind, tolerance, attribution."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from halo_contracts.config import Settings
from halo_contracts.domain.models import Contract, Invoice, InvoiceLine, RecurringInvoice, RecurringItem, TimeEntry
from halo_contracts.domain.money import cents
from halo_contracts.domain.reconciliation import (
    FINDING_KINDS,
    TOLERANCE,
    accrued_recurring,
    billing_history_start,
    expected_recurring,
    history_window,
    index_book,
    needs_block_rate,
    period_months,
    reconcile_contract,
    unknown_period_warning,
    unknown_periods,
)

MONTHS_OF = Settings().code_maps.months_of


def contract(cid: int = 1, *, start: date = date(2026, 1, 1), end: date | None = None, frequency: str = "Monthly",
             status: str = "Active", type_: str = "Recurring", **kw) -> Contract:
    return Contract(id=cid, client_id=7, ref=f"C-{cid}", type=type_, status=status, start_date=start, end_date=end,
                    billing_frequency=frequency, **kw)


def item(iid: int, qty: str, price: str, *, cid: int = 1, start: date | None = None, end: date | None = None,
         frequency: str | None = None) -> RecurringItem:
    return RecurringItem(id=iid, contract_id=cid, description=f"line {iid}", quantity=D(qty), unit_price=D(price),
                         start_date=start, end_date=end, billing_frequency=frequency)


def invoice(iid: int, amount: str, start: date, end: date, *, cid: int = 1, when: date | None = None,
            credit_of: int | None = None, line_contracts: tuple[tuple[int, str], ...] | None = None) -> Invoice:
    parts = line_contracts or ((cid, amount),)
    lines = [InvoiceLine(id=iid * 10 + n, contract_id=c, total=D(a), start_date=start, end_date=end)
             for n, (c, a) in enumerate(parts)]
    return Invoice(id=iid, client_id=7, contract_id=cid if len(parts) == 1 else None, invoice_date=when or start,
                   period_start=start, period_end=end, total=sum((ln.total for ln in lines), D(0)),
                   is_credit=credit_of is not None, credit_for_invoice_id=credit_of, recurring_invoice_id=-101,
                   lines=lines)


def run(c: Contract, items: list[RecurringItem], invoices: list[Invoice], start: date, end: date,
        time: list[TimeEntry] = (), recurring_from: date | None = None):
    book = index_book([RecurringInvoice(id=-101, contract_id=c.id, lines=items)], invoices, time)
    return reconcile_contract(c, recurring_lines=book.recurring_lines.get(c.id, []),
                              billed_lines=book.billed_lines.get(c.id, []),
                              time_entries=book.time_entries.get(c.id, []),
                              period_start=start, period_end=end, months_of=MONTHS_OF,
                              invoices_by_id=book.invoices_by_id, recurring_from=recurring_from)


def kinds(result) -> list[tuple[str, D]]:
    return [(f.kind, f.amount) for f in result.findings]


# ---- proration, computed by hand -------------------------------------------------------------


def test_line_starting_mid_month_is_prorated_by_days():
    # 10 x 50.00 = 500.00 a month; the line starts on 16 March: 16 of March's 31 days
    c = contract()
    lines = [item(1, "10", "50.00", start=date(2026, 3, 16))]
    expected = expected_recurring(c, lines, date(2026, 3, 1), date(2026, 3, 31), MONTHS_OF)
    assert cents(expected) == D("258.06")  # 500 * 16 / 31 = 258.0645...
    assert cents(accrued_recurring(c, lines, date(2026, 3, 1), date(2026, 3, 31), MONTHS_OF)) == D("258.06")
    # the month before the line starts owes nothing, the month after owes the full charge
    assert expected_recurring(c, lines, date(2026, 2, 1), date(2026, 2, 28), MONTHS_OF) == 0
    assert expected_recurring(c, lines, date(2026, 4, 1), date(2026, 4, 30), MONTHS_OF) == D("500.00")


def test_contract_ending_mid_quarter_is_prorated_by_days():
    # quarterly 3 x 300.00 = 900.00; the contract ends 15 Feb: Jan 31 + Feb 15 = 46 of Q1's 90 days
    c = contract(frequency="Quarterly", end=date(2026, 2, 15))
    lines = [item(1, "3", "300.00")]
    q1 = expected_recurring(c, lines, date(2026, 1, 1), date(2026, 3, 31), MONTHS_OF)
    assert cents(q1) == D("460.00")  # 900 * 46 / 90
    # the quarter's charge is due on 1 January: February owes no charge but accrues 15/90 of it
    assert expected_recurring(c, lines, date(2026, 2, 1), date(2026, 2, 28), MONTHS_OF) == 0
    assert cents(accrued_recurring(c, lines, date(2026, 2, 1), date(2026, 2, 28), MONTHS_OF)) == D("150.00")
    assert expected_recurring(c, lines, date(2026, 4, 1), date(2026, 6, 30), MONTHS_OF) == 0


def test_annual_line_in_a_monthly_period():
    # monthly contract from 1 Apr 2025 with an annual 1,200.00 line: billed in full each April
    c = contract(start=date(2025, 4, 1))
    lines = [item(1, "1", "1200.00", frequency="Annual"), item(2, "4", "25.00")]
    march = (date(2026, 3, 1), date(2026, 3, 31))
    april = (date(2026, 4, 1), date(2026, 4, 30))
    assert expected_recurring(c, lines, *march, MONTHS_OF) == D("100.00")  # only the monthly line
    assert expected_recurring(c, lines, *april, MONTHS_OF) == D("1300.00")
    # converted to the month by days: 1200 * 31/365 (Apr 2025..Mar 2026 has 365 days) + 100
    assert cents(accrued_recurring(c, lines, *march, MONTHS_OF)) == D("201.92")
    assert cents(accrued_recurring(c, lines, *april, MONTHS_OF)) == D("198.63")  # 1200 * 30/365 + 100


def test_quarterly_line_in_a_monthly_contract_is_due_every_third_month():
    c = contract(start=date(2025, 11, 1))
    lines = [item(1, "2", "225.00", frequency="Quarterly")]
    due = [expected_recurring(c, lines, date(2026, m, 1), date(2026, m, 28), MONTHS_OF) for m in range(1, 7)]
    assert due == [0, D("450.00"), 0, 0, D("450.00"), 0]


def test_whole_year_of_a_monthly_line_is_twelve_charges():
    c = contract()
    lines = [item(1, "3", "33.33")]
    assert expected_recurring(c, lines, date(2026, 1, 1), date(2026, 12, 31), MONTHS_OF) == D("1199.88")


# ---- findings ----------------------------------------------------------------------------------


JAN, FEB, MAR = (date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 2, 28)), \
    (date(2026, 3, 1), date(2026, 3, 31))


def test_clean_contract_has_no_findings():
    c = contract()
    lines = [item(1, "10", "45.00"), item(2, "2", "150.00")]
    invs = [invoice(n, "750.00", *m) for n, m in enumerate((JAN, FEB, MAR), start=1)]
    r = run(c, lines, invs, JAN[0], MAR[1])
    assert r.findings == []
    assert (r.expected, r.billed, r.variance) == (D("2250.00"), D("2250.00"), D(0))


def test_missing_month_under_and_over_billing_per_slot():
    c = contract()
    lines = [item(1, "10", "45.00")]
    invs = [invoice(1, "405.00", *JAN), invoice(3, "460.00", *MAR)]
    r = run(c, lines, invs, JAN[0], MAR[1])
    assert kinds(r) == [("under_billed", D("45.00")), ("missing_invoice", D("450.00")), ("over_billed", D("10.00"))]
    missing = r.findings[1]
    assert (missing.period_start, missing.period_end, missing.recurring_line_ids) == (*FEB, (1,))
    assert r.findings[0].invoice_ids == (1,) and r.findings[0].invoice_line_ids == (10,)
    assert r.variance == D("-485.00")
    assert (r.owed_to_client, r.to_collect) == (D("10.00"), D("495.00"))  # never added into one figure


def test_tolerance_is_one_cent():
    assert D("0.01") == TOLERANCE
    c = contract()
    lines = [item(1, "1", "100.00")]
    assert run(c, lines, [invoice(1, "99.99", *JAN)], *JAN).findings == []
    assert kinds(run(c, lines, [invoice(1, "99.98", *JAN)], *JAN)) == [("under_billed", D("0.02"))]


def test_billed_after_contract_end_whole_and_straddling():
    c = contract(end=date(2026, 2, 14), status="Expired")
    lines = [item(1, "1", "280.00")]
    invs = [invoice(1, "280.00", *JAN), invoice(2, "280.00", *FEB), invoice(3, "280.00", *MAR)]
    r = run(c, lines, invs, JAN[0], MAR[1])
    # February: 14 of 28 days are the contract's (140.00 expected); the other 140.00 and all of March are late
    assert r.expected == D("420.00")
    assert kinds(r) == [("billed_after_contract_end", D("420.00"))]
    assert r.findings[0].invoice_ids == (2, 3)


def test_billed_while_not_active():
    c = contract(status="On Hold")
    r = run(c, [item(1, "1", "99.00")], [invoice(1, "99.00", *FEB)], JAN[0], MAR[1])
    assert r.expected == 0
    assert kinds(r) == [("billed_while_not_active", D("99.00"))]


def test_duplicate_invoice_and_a_credited_one():
    c = contract()
    lines = [item(1, "5", "20.00")]
    invs = [
        invoice(1, "100.00", *JAN),
        invoice(2, "100.00", *JAN, when=date(2026, 1, 3)),  # duplicate
        invoice(3, "100.00", *FEB),
        invoice(4, "100.00", *FEB, when=date(2026, 2, 4)),  # billed twice, then credited
        invoice(5, "-100.00", *FEB, when=date(2026, 2, 10), credit_of=4),
    ]
    r = run(c, lines, invs, JAN[0], FEB[1])
    assert kinds(r) == [("duplicate_invoice", D("100.00"))]
    assert r.findings[0].invoice_ids == (1, 2)
    assert r.credits == D("100.00")
    assert r.billed == D("300.00")  # 100 + 100 + 100 + 100 - 100


def test_invoice_mixing_two_contracts_is_split_by_line():
    a, b = contract(1), contract(2)
    lines_a, lines_b = [item(1, "1", "300.00", cid=1)], [item(2, "1", "200.00", cid=2)]
    mixed = invoice(1, "0", *JAN, line_contracts=((1, "300.00"), (2, "200.00")))
    book = index_book([RecurringInvoice(id=-1, contract_id=1, lines=lines_a),
                       RecurringInvoice(id=-2, contract_id=2, lines=lines_b)], [mixed], [])
    for c in (a, b):
        r = reconcile_contract(c, recurring_lines=book.recurring_lines[c.id], billed_lines=book.billed_lines[c.id],
                               time_entries=[], period_start=JAN[0], period_end=JAN[1], months_of=MONTHS_OF,
                               invoices_by_id=book.invoices_by_id)
        assert r.findings == [] and r.billed == r.expected


def test_line_outside_contract_dates():
    c = contract(end=date(2026, 2, 28))
    lines = [item(1, "1", "50.00", end=date(2026, 3, 31))]
    r = run(c, lines, [invoice(1, "50.00", *JAN), invoice(2, "50.00", *FEB)], JAN[0], MAR[1])
    assert kinds(r) == [("line_outside_contract_dates", D("50.00"))]  # March would bill outside the contract
    assert r.findings[0].recurring_line_ids == (1,)


def test_labour_invoices_are_other_billing_not_recurring():
    c = contract(type_="Ad-Hoc")
    labour = Invoice(id=9, contract_id=1, invoice_date=date(2026, 1, 31), total=D("250.00"),
                     lines=[InvoiceLine(id=90, contract_id=1, total=D("250.00"), start_date=JAN[0], end_date=JAN[1])])
    r = run(c, [], [labour], *JAN)
    assert r.findings == [] and r.other_billed == D("250.00") and r.billed == 0


def test_unbilled_time_rates_and_prepaid_cover():
    c = contract(type_="Prepaid Hours", value=D("1250.00"), prepaid_hours=D("10"))  # 125.00 an hour
    time = [
        TimeEntry(id=1, contract_id=1, when=date(2026, 1, 5), hours=D("2"), billable=True, charge_amount=D("300")),
        TimeEntry(id=2, contract_id=1, when=date(2026, 1, 6), hours=D("1.5"), billable=True),  # at the rate
        TimeEntry(id=3, contract_id=1, when=date(2026, 1, 7), hours=D("3"), billable=True, prepay_hours=D("3")),
        TimeEntry(id=4, contract_id=1, when=date(2026, 1, 8), hours=D("1"), billable=True, invoice_number="INV-1"),
        TimeEntry(id=5, contract_id=1, when=date(2026, 1, 9), hours=D("1"), billable=False),
        TimeEntry(id=6, contract_id=1, when=date(2026, 2, 9), hours=D("1"), billable=True),  # outside
    ]
    r = run(c, [], [], *JAN, time=time)
    assert (r.unbilled.count, r.unbilled.hours, r.unbilled.amount) == (2, D("3.5"), D("487.50"))
    assert kinds(r) == [("unbilled_time", D("487.50"))]
    assert r.findings[0].time_entry_ids == (1, 2)
    assert r.prepaid_hours_used == D("3")


def test_unpriced_time_is_counted_not_priced():
    c = contract(type_="Ad-Hoc")
    time = [TimeEntry(id=1, contract_id=1, when=date(2026, 1, 5), hours=D("2"), billable=True)]
    r = run(c, [], [], *JAN, time=time)
    assert (r.unbilled.count, r.unbilled.amount, r.unbilled.unpriced_entries) == (1, D(0), 1)
    assert r.notes and "no block rate" in r.notes[0]


def test_only_a_prepaid_block_gives_a_rate():
    # a block's rate is block price / block hours; a non-prepaid contract with block hours is not priced by them
    time = [TimeEntry(id=1, contract_id=1, when=date(2026, 1, 5), hours=D("2"), billable=True)]
    recurring = run(contract(value=D("1250.00"), prepaid_hours=D("10")), [], [], *JAN, time=time)
    assert (recurring.unbilled.amount, recurring.unbilled.unpriced_entries) == (D(0), 1)
    prepaid = run(contract(type_="Prepaid Hours", value=D("1250.00"), prepaid_hours=D("10")), [], [], *JAN, time=time)
    assert (prepaid.unbilled.amount, prepaid.unbilled.unpriced_entries) == (D("250.00"), 0)  # 2 h x 125.00
    # a list row (no block hours) leaves it unpriced: that is when a detail read is needed
    listed = run(contract(type_="Prepaid Hours", value=D("1250.00")), [], [], *JAN, time=time)
    assert (listed.unbilled.amount, listed.unbilled.unpriced_entries) == (D(0), 1)


def test_needs_block_rate_only_for_prepaid_list_rows_with_unpriced_time_in_the_window():
    row = contract(type_="Prepaid Hours", value=D("1250.00"))
    unpriced = TimeEntry(id=1, contract_id=1, when=date(2026, 1, 5), hours=D("2"), billable=True)
    assert needs_block_rate(row, [unpriced], *JAN)
    assert not needs_block_rate(row, [unpriced], *FEB)  # outside the window
    assert not needs_block_rate(row.model_copy(update={"prepaid_hours": D("10")}), [unpriced], *JAN)  # a detail
    assert not needs_block_rate(contract(value=D("1250.00")), [unpriced], *JAN)  # not prepaid
    for priced_or_covered in (
        unpriced.model_copy(update={"charge_amount": D("90")}),
        unpriced.model_copy(update={"prepay_hours": D("2")}),
        unpriced.model_copy(update={"invoice_number": "INV-9"}),
        unpriced.model_copy(update={"billable": False}),
    ):
        assert not needs_block_rate(row, [priced_or_covered], *JAN)


# ---- billing periods the code map does not know ---------------------------------------------


def test_one_months_helper_first_frequency_decides_unknown_is_monthly():
    assert period_months(MONTHS_OF, "Quarterly", "Annual") == 3
    assert period_months(MONTHS_OF, None, "Annual") == 12
    assert period_months(MONTHS_OF, None, None) == 1
    # a line's own unknown code is monthly, not silently its contract's frequency
    assert period_months(MONTHS_OF, "code 7", "Annual") == 1
    assert unknown_periods(MONTHS_OF, ["Monthly", "code 7", None, "code 7", "code 9"]) == ["code 7", "code 9"]


def test_unknown_billing_period_is_monthly_and_reported():
    c = contract(frequency="code 7")
    r = run(c, [item(1, "1", "100.00"), item(2, "1", "50.00", frequency="Quarterly")], [], *JAN)
    # treated as monthly: January owes the monthly 100.00 and the quarterly 50.00 (due 1 January)
    assert r.expected == D("150.00")
    assert r.unknown_periods == ["code 7"]
    warning = unknown_period_warning("code 7", [1])
    assert warning == ("billing period 'code 7' is not in HALO_BILLING_PERIOD_CODES; treated as monthly - add it "
                       "(contract 1)")
    assert run(contract(), [item(1, "1", "100.00", frequency="code 9")], [], *JAN).unknown_periods == ["code 9"]
    assert run(contract(), [item(1, "1", "100.00")], [], *JAN).unknown_periods == []


def test_every_kind_is_declared():
    assert len(set(FINDING_KINDS)) == 8


def test_bad_window_is_refused():
    with pytest.raises(ValueError):
        run(contract(), [], [], date(2026, 2, 1), date(2026, 1, 1))


# ---- properties ---------------------------------------------------------------------------------

_days = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(start=_days, length=st.integers(0, 400), cut=st.integers(0, 400), line_start=st.none() | _days,
       line_end=st.none() | _days, contract_end=st.none() | _days,
       frequency=st.sampled_from(["Monthly", "Quarterly", "Annual"]),
       line_frequency=st.sampled_from([None, "Monthly", "Quarterly", "Annual"]))
def test_expected_and_accrued_add_up_over_split_windows(start, length, cut, line_start, line_end, contract_end,
                                                        frequency, line_frequency):
    end = start + timedelta(days=length)
    middle = start + timedelta(days=min(cut, length))
    c = contract(start=date(2024, 3, 12), end=contract_end, frequency=frequency)
    lines = [item(1, "3", "41.17", start=line_start, end=line_end, frequency=line_frequency)]
    for f in (expected_recurring, accrued_recurring):
        whole = f(c, lines, start, end, MONTHS_OF)
        left = f(c, lines, start, middle, MONTHS_OF)
        right = f(c, lines, middle + timedelta(days=1), end, MONTHS_OF) if middle < end else D(0)
        assert abs(whole - (left + right)) < D("0.000001")
        assert whole >= 0


def test_history_window_cuts_at_the_month_of_the_first_invoice():
    start, end = date(2026, 1, 1), date(2026, 6, 30)
    assert history_window(start, end, None) == (start, None)  # no invoice at all: nothing to cut at
    assert history_window(start, end, date(2025, 12, 1)) == (start, None)
    assert history_window(start, end, date(2026, 1, 20)) == (start, None)  # the first month itself counts
    assert history_window(start, end, date(2026, 3, 15)) == (date(2026, 3, 1), (start, date(2026, 2, 28)))
    assert history_window(start, end, date(2026, 7, 1)) == (None, (start, end))


def test_billing_history_starts_at_the_first_recurring_invoice():
    labour = Invoice(id=1, client_id=7, invoice_date=date(2025, 11, 30), total=D("250"))
    first = invoice(2, "450.00", *FEB)
    assert billing_history_start([labour, first, invoice(3, "450.00", *MAR)]) == FEB[0]
    assert billing_history_start([labour]) == date(2025, 11, 30)  # none recurring: the first of any kind
    assert billing_history_start([]) is None


def test_no_recurring_charge_is_expected_before_the_history():
    c = contract()
    lines = [item(1, "10", "45.00")]
    time = [TimeEntry(id=5, contract_id=1, when=date(2026, 1, 10), hours=D("1"), billable=True,
                      charge_amount=D("90"))]
    r = run(c, lines, [invoice(2, "450.00", *FEB), invoice(3, "450.00", *MAR)], JAN[0], MAR[1], time,
            recurring_from=FEB[0])
    assert [f.kind for f in r.findings] == ["unbilled_time"]  # January: no history, but its time still counts
    assert (r.expected, r.billed, r.to_collect) == (D("900.00"), D("900.00"), D("90.00"))
    r = run(c, lines, [], JAN[0], JAN[1], time, recurring_from=FEB[1])  # the whole window predates it
    assert (r.expected, r.accrued, [f.kind for f in r.findings]) == (D(0), D(0), ["unbilled_time"])
