"""Money and period arithmetic. Decimal only; dates are ``date``; months via dateutil."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta

CENT = Decimal("0.01")
ZERO = Decimal(0)


def unsigned_zero(value: Decimal) -> Decimal:
    """``value``, with a zero always unsigned: ``-0`` and ``-0.00`` (typed, or rounded from a
    tiny negative amount) become ``0`` and ``0.00``, so no preview, result or body shows ``-0.00``."""
    return abs(value) if value.is_zero() else value


def cents(value: Decimal) -> Decimal:
    """Round half-up to cents (for presenting and comparing amounts)."""
    return unsigned_zero(value.quantize(CENT, rounding=ROUND_HALF_UP))


def monthly_equivalent(period_amount: Decimal, months_per_period: int) -> Decimal:
    """What a charge per billing period is worth per month (unrounded)."""
    return period_amount / Decimal(months_per_period)


def annualised(period_amount: Decimal, months_per_period: int) -> Decimal:
    return monthly_equivalent(period_amount, months_per_period) * 12


def add_months(day: date, months: int) -> date:
    return day + relativedelta(months=months)


def term_end(start: date, months: int) -> date:
    """The last day of a term of ``months`` from ``start`` (a 12-month term from 1 Dec ends 30 Nov)."""
    return add_months(start, months) - timedelta(days=1)


def days_inclusive(start: date, end: date) -> int:
    return (end - start).days + 1 if end >= start else 0


def overlap(a_start: date, a_end: date, b_start: date | None, b_end: date | None) -> tuple[date, date] | None:
    """The inclusive overlap of [a_start, a_end] with [b_start or -inf, b_end or +inf]."""
    start = max(a_start, b_start) if b_start else a_start
    end = min(a_end, b_end) if b_end else a_end
    return (start, end) if start <= end else None


def billing_periods(anchor: date, months: int, start: date, end: date) -> list[tuple[date, date]]:
    """Billing periods of ``months`` months counted from ``anchor`` that touch [start, end]."""
    periods: list[tuple[date, date]] = []
    n = 0
    # step back from the anchor if the window starts before it
    while add_months(anchor, n * months) > start:
        n -= 1
    while True:
        p_start = add_months(anchor, n * months)
        p_end = add_months(anchor, (n + 1) * months) - timedelta(days=1)
        if p_start > end:
            break
        if p_end >= start:
            periods.append((p_start, p_end))
        n += 1
    return periods


def amount_for_window(period_amount: Decimal, months_per_period: int, window_start: date, window_end: date,
                      *, active_start: date | None = None, active_end: date | None = None,
                      anchor: date | None = None) -> Decimal:
    """A recurring charge's worth over [window_start, window_end] (inclusive).

    The charge is ``period_amount`` per billing period of ``months_per_period`` months,
    with periods counted from ``anchor`` (default: the first of ``window_start``'s month).
    Each billing period contributes the share of its days that fall inside the window and
    inside the line's active dates [active_start, active_end]. Unrounded.
    """
    anchor = anchor or window_start.replace(day=1)
    total = ZERO
    for p_start, p_end in billing_periods(anchor, months_per_period, window_start, window_end):
        inside = overlap(p_start, p_end, window_start, window_end)
        if not inside:
            continue
        inside = overlap(inside[0], inside[1], active_start, active_end)
        if not inside:
            continue
        share = Decimal(days_inclusive(*inside)) / Decimal(days_inclusive(p_start, p_end))
        total += period_amount * share
    return total
