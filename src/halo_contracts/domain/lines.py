"""Recurring lines in figures: a line's state on a day, its amount per billing period and per
month, and the totals per billing frequency of the lines in force. Pure functions; no I/O, and
no clock (the day is given)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from halo_contracts.domain.models import RecurringItem
from halo_contracts.domain.money import annualised, monthly_equivalent

LineState = Literal["active", "ended", "future", "inactive"]


def starts_on(item: RecurringItem, contract_start: date | None = None) -> date | None:
    """The first day the line bills: its own start, or the contract's when that is later (a line
    without dates bills from the contract's start)."""
    days = [d for d in (item.start_date, contract_start) if d is not None]
    return max(days) if days else None


def line_state(item: RecurringItem, today: date, contract_start: date | None = None) -> LineState:
    """Today's state of the line; one on a contract that has not started yet is future too."""
    if item.inactive:
        return "inactive"
    if item.end_date and item.end_date < today:
        return "ended"
    start = starts_on(item, contract_start)
    if start and start > today:
        return "future"
    return "active"


@dataclass(frozen=True)
class LineAmount:
    per_period: Decimal  # quantity x unit price
    monthly: Decimal | None  # None when the frequency's months are unknown


def line_amounts(quantity: Decimal, unit_price: Decimal, months: int | None) -> LineAmount:
    per_period = quantity * unit_price
    return LineAmount(per_period, monthly_equivalent(per_period, months) if months else None)


@dataclass(frozen=True)
class FrequencyTotal:
    frequency: str | None
    items: int
    per_period: Decimal
    monthly: Decimal | None
    annual: Decimal | None
    starts: date | None = None  # None: billing today; else the day these lines start billing


def frequency_totals(lines: list[tuple[str | None, Decimal, LineState]] | list[tuple[str | None, Decimal,
                                                                                   LineState, date | None]],
                     months_of: Callable[[str | None], int | None]) -> list[FrequencyTotal]:
    """(frequency, amount per period, state[, first billing day]) of each line -> totals per
    frequency of the lines billing today, shortest period first; then, per start day and
    frequency, the totals of the future lines (what they will bill once they start)."""
    groups: dict[tuple[date | None, str | None], list[Decimal]] = {}
    for frequency, per_period, state, *start in lines:
        if state == "active":
            groups.setdefault((None, frequency), []).append(per_period)
        elif state == "future":
            groups.setdefault((start[0] if start else None, frequency), []).append(per_period)
    out = []
    for (starts, frequency), amounts in groups.items():
        months = months_of(frequency) if frequency else None
        total = sum(amounts, Decimal(0))
        out.append(FrequencyTotal(frequency, len(amounts), total,
                                  monthly_equivalent(total, months) if months else None,
                                  annualised(total, months) if months else None, starts))
    return sorted(out, key=lambda t: (t.starts is not None, t.starts or date.min, months_of(t.frequency) or 0))
