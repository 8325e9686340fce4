"""Unit tests for domain/prepaid.py: every rule, no server."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

from halo_contracts.domain.models import Contract, ContractPeriod, PrepayEntry, TimeEntry
from halo_contracts.domain.prepaid import (
    PrepayBlock,
    alert_message,
    balance_from_halo,
    balance_from_ledger,
    balance_of,
    burn_by_contract,
    burn_rate,
    consume,
    current_period,
    expiring_unused,
    is_low,
    ledger_expiry,
    prepay_blocks,
    replenishment_quote,
    run_out_date,
    urgency_key,
)

TODAY = date(2026, 6, 15)


def contract(**kw) -> Contract:
    base = dict(id=7, client_id=1, ref="Acme - Prepaid 2026", type="Prepaid Hours", status="Active",
                start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), value=D("6000"), prepaid_hours=D("40"))
    base.update(kw)
    return Contract(**base)


def entry(i, when, prepay, contract_id=7, charge="0", hours=None):
    return TimeEntry(id=i, contract_id=contract_id, when=when, prepay_hours=D(prepay),
                     hours=D(hours if hours is not None else prepay), charge_amount=D(charge))


# ---- blocks and balances -----------------------------------------------------------------

def test_blocks_opening_first_then_ledger_by_date_and_other_contracts_ignored():
    c = contract(prepay_history=[
        PrepayEntry(id=2, contract_id=7, entry_date=date(2026, 3, 1), hours=D("10")),
        PrepayEntry(id=1, contract_id=7, entry_date=date(2026, 2, 1), hours=D("5")),
        PrepayEntry(id=3, contract_id=8, entry_date=date(2026, 2, 1), hours=D("99")),
    ])
    blocks = prepay_blocks(c)
    assert [b.source for b in blocks] == ["opening block", "ledger row 1", "ledger row 2"]
    assert [b.quantity for b in blocks] == [D("40"), D("5"), D("10")]
    assert blocks[0].expiry is None


def test_blocks_in_amount_mode_use_amounts():
    c = contract(prepay_as_amount=True, prepaid_hours=D("1000"),
                 prepay_history=[PrepayEntry(id=1, contract_id=7, entry_date=date(2026, 2, 1), hours=D("2"),
                                             amount=D("300"))])
    assert [b.quantity for b in prepay_blocks(c)] == [D("1000"), D("300")]


def test_ledger_expiry_own_date_wins_else_months_after_entry():
    row = PrepayEntry(id=1, entry_date=date(2026, 1, 31), expiry_date=date(2026, 5, 1))
    assert ledger_expiry(row, 3) == date(2026, 5, 1)
    assert ledger_expiry(PrepayEntry(id=1, entry_date=date(2026, 1, 31)), 1) == date(2026, 2, 28)
    assert ledger_expiry(PrepayEntry(id=1, entry_date=date(2026, 1, 31)), None) is None
    assert ledger_expiry(PrepayEntry(id=1), 3) is None


def test_consume_oldest_first():
    blocks = [PrepayBlock(None, D("10"), None, "a"), PrepayBlock(None, D("5"), None, "b")]
    assert [s.left for s in consume(blocks, D("12"))] == [D("0"), D("3")]
    assert [s.left for s in consume(blocks, D("-1"))] == [D("10"), D("5")]


def test_balance_prefers_halo_totals():
    c = contract(prepay_total=D("50"), prepay_used=D("30"), prepay_balance=D("15"))
    b = balance_of(c, TODAY, used=D("999"))
    assert (b.purchased, b.used, b.remaining, b.expired, b.source) == (D("50"), D("30"), D("15"), D("5"), "halo")
    assert balance_from_halo(contract()) is None
    assert balance_of(contract(), TODAY) is None


def test_balance_from_ledger_counts_expired_leftovers():
    c = contract(prepay_history=[
        PrepayEntry(id=1, contract_id=7, entry_date=date(2026, 2, 1), hours=D("10"), expiry_date=date(2026, 5, 1)),
        PrepayEntry(id=2, contract_id=7, entry_date=date(2026, 3, 1), hours=D("10"), expiry_date=date(2026, 9, 1)),
    ])
    # 45 used: opening 40 gone, row 1 has 5 left and expired on 1 May; row 2 untouched
    b = balance_from_ledger(c, D("45"), TODAY)
    assert (b.purchased, b.used, b.expired, b.remaining) == (D("60"), D("45"), D("5"), D("10"))


def test_current_period_flag_then_dates():
    p1 = ContractPeriod(name="May", start_date=date(2026, 5, 1), end_date=date(2026, 5, 31))
    p2 = ContractPeriod(name="June", start_date=date(2026, 6, 1), end_date=date(2026, 6, 30))
    assert current_period(contract(periods=[p1, p2]), TODAY).name == "June"
    p1.current = True
    assert current_period(contract(periods=[p1, p2]), TODAY).name == "May"
    assert current_period(contract(), TODAY) is None


# ---- burn and run-out ------------------------------------------------------------------------

def test_burn_rate_last_90_days_inclusive_prepay_hours_only_own_contract():
    first_day = TODAY - timedelta(days=89)
    entries = [
        entry(1, first_day, "3"),
        entry(2, first_day - timedelta(days=1), "100"),  # outside
        entry(3, TODAY, "6"),
        entry(4, TODAY, "50", contract_id=8),  # other contract
        entry(5, TODAY + timedelta(days=1), "7"),  # future
        TimeEntry(id=6, contract_id=7, when=TODAY, hours=D("4"), prepay_hours=D("0")),  # not prepay
    ]
    b = burn_rate(entries, 7, TODAY)
    assert (b.window_start, b.window_end, b.used) == (first_day, TODAY, D("9"))
    assert b.per_day == D("9") / 90
    assert b.per_week == D("9") / 90 * 7
    many = burn_by_contract(entries, {7, 8, 9}, TODAY)
    assert many[7].used == D("9") and many[8].used == D("50") and many[9].used == 0


def test_burn_rate_amount_mode_uses_charge_amounts():
    b = burn_rate([entry(1, TODAY, "2", charge="300")], 7, TODAY, unit="amount")
    assert b.used == D("300")


def test_run_out_date():
    assert run_out_date(D("10"), D("1"), TODAY) == TODAY + timedelta(days=10)
    assert run_out_date(D("10.5"), D("1"), TODAY) == TODAY + timedelta(days=11)
    assert run_out_date(D("0"), D("1"), TODAY) == TODAY
    assert run_out_date(D("-2"), D("0"), TODAY) == TODAY
    assert run_out_date(D("5"), D("0"), TODAY) is None


# ---- alert and quote -------------------------------------------------------------------------

def test_low_needs_the_share_of_the_block_as_well_as_the_hours():
    assert not is_low(D("8.5"), D("10"), D("10"))  # 85% of a 10-hour block left: not low
    assert is_low(D("2.5"), D("10"), D("10")) and is_low(D("2.5"), D("10"), D("20"))
    assert is_low(D("5"), D("10"), D("20")) and not is_low(D("5.01"), D("10"), D("20"))  # a quarter exactly
    assert not is_low(D("30"), D("10"), D("200"))  # a small share but many hours: the threshold holds
    assert is_low(D("0"), D("0"), D("10")) and is_low(D("-1"), D("10"), D("10"))  # used up is always low
    assert is_low(D("8.5"), D("10"), None)  # block unknown: hours alone
    assert alert_message(D("8.5"), D("10"), D("10"), block=D("10")) is None
    assert alert_message(D("2.5"), D("10"), D("20"), block=D("10")) == (
        "Only 2.50 hours remain of a 10-hour block (25%; low at 10 or less and 25% or less of the block).")


def test_alert_at_or_below_threshold():
    assert is_low(D("10"), D("10")) and is_low(D("9.99"), D("10")) and not is_low(D("10.01"), D("10"))
    assert alert_message(D("10.01"), D("10"), D("40")) is None
    msg = alert_message(D("7.5"), D("10"), D("40"), run_out=date(2026, 7, 1))
    assert msg == ("Only 7.50 hours remain of 40 purchased (alert threshold 10). "
                   "At the current rate it runs out on 2026-07-01.")
    assert alert_message(D("0"), D("10"), D("40")) == "The prepaid block is used up."
    assert alert_message(D("-2.25"), D("10"), D("40")) == "The prepaid block is overdrawn by 2.25 hours."


def test_quote_back_to_original_block_at_contract_rate():
    q = replenishment_quote(contract(value=D("6000"), prepaid_hours=D("40")), D("7.5"))
    assert (q.hours, q.rate, q.amount) == (D("32.5"), D("150"), D("4875.00"))
    # overdrawn: buy the overdraft too
    assert replenishment_quote(contract(), D("-2")).hours == D("42")
    # rate with a repeating decimal, amount to the cent (half-up)
    q = replenishment_quote(contract(value=D("1000"), prepaid_hours=D("30")), D("29"))
    assert q.amount == D("33.33")
    assert replenishment_quote(contract(), D("50")).hours == 0
    assert replenishment_quote(contract(prepaid_hours=None), D("1")) is None
    assert replenishment_quote(contract(value=None), D("1")) is None
    assert replenishment_quote(contract(prepay_as_amount=True), D("1")) is None


# ---- expiry ----------------------------------------------------------------------------------

def test_expiring_unused_with_burn_consuming_older_blocks_first():
    blocks = [
        PrepayBlock(date(2026, 1, 1), D("10"), None, "opening block"),
        PrepayBlock(date(2026, 2, 1), D("10"), date(2026, 6, 1), "ledger row 1"),  # expired already
        PrepayBlock(date(2026, 3, 1), D("20"), date(2026, 7, 15), "ledger row 2"),  # 30 days ahead
        PrepayBlock(date(2026, 4, 1), D("5"), date(2026, 6, 20), "ledger row 3"),  # 5 days ahead
    ]
    # used 12: opening gone, row 1 has 8 left (expired); rows 2 and 3 untouched
    out = expiring_unused(blocks, D("12"), TODAY, D("0.5"))
    assert [(b.source, b.expiry, b.unused_now) for b in out] == [
        ("ledger row 3", date(2026, 6, 20), D("5")),
        ("ledger row 2", date(2026, 7, 15), D("20")),
    ]
    by = {b.source: b for b in out}
    # row 2 absorbs 0.5 * 30 = 15 hours before it expires -> 5 unused
    assert by["ledger row 2"].projected_unused == D("5.0")
    # row 3 sits behind row 2's 20 hours: 2.5 hours of burn by its expiry never reach it
    assert by["ledger row 3"].projected_unused == D("5")
    assert expiring_unused(blocks, D("100"), TODAY, D("1")) == []


def test_urgency_order():
    keys = [
        ("plenty, no burn", urgency_key(D("30"), None, TODAY)),
        ("runs out in 20d", urgency_key(D("8"), TODAY + timedelta(days=20), TODAY)),
        ("out", urgency_key(D("-1"), TODAY, TODAY)),
        ("runs out in 5d", urgency_key(D("9"), TODAY + timedelta(days=5), TODAY)),
    ]
    assert [k for k, _ in sorted(keys, key=lambda kv: kv[1])] == [
        "out", "runs out in 5d", "runs out in 20d", "plenty, no burn"]


def test_rows_without_expiry_date_do_not_expire_unless_inferred():
    c = contract(prepay_expiry_months=12, prepay_history=[
        PrepayEntry(id=1, contract_id=7, entry_date=date(2026, 2, 1), hours=D("10"))])
    assert prepay_blocks(c)[1].expiry is None
    assert prepay_blocks(c, infer_expiry=True)[1].expiry == date(2027, 2, 1)
