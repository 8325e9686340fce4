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


def line_state(item: RecurringItem, today: date) -> LineState:
    if item.inactive:
        return "inactive"
    if item.end_date and item.end_date < today:
        return "ended"
    if item.start_date and item.start_date > today:
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


def frequency_totals(lines: list[tuple[str | None, Decimal, LineState]],
                     months_of: Callable[[str | None], int | None]) -> list[FrequencyTotal]:
    """(frequency, amount per period, state) of each line -> totals of the active ones per
    frequency, shortest period first."""
    groups: dict[str | None, list[Decimal]] = {}
    for frequency, per_period, state in lines:
        if state == "active":
            groups.setdefault(frequency, []).append(per_period)
    out = []
    for frequency, amounts in groups.items():
        months = months_of(frequency) if frequency else None
        total = sum(amounts, Decimal(0))
        out.append(FrequencyTotal(frequency, len(amounts), total,
                                  monthly_equivalent(total, months) if months else None,
                                  annualised(total, months) if months else None))
    return sorted(out, key=lambda t: months_of(t.frequency) or 0)
