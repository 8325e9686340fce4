"""domain/lines.py: line states on a day (a contract not started yet included) and totals of the
lines billing today and of those starting later."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from halo_contracts.domain.lines import frequency_totals, line_state, starts_on
from halo_contracts.domain.models import RecurringItem

TODAY = date(2026, 12, 4)
MONTHS = {"Monthly": 1, "Quarterly": 3, "Annual": 12}.get


def item(**kw) -> RecurringItem:
    return RecurringItem(**{"id": 1, "description": "x", "quantity": D(1), "unit_price": D(100), **kw})


def test_a_line_without_dates_on_a_future_contract_is_future_from_the_contract_start():
    start = date(2027, 1, 1)
    assert line_state(item(), TODAY) == "active"
    assert line_state(item(), TODAY, start) == "future" and starts_on(item(), start) == start
    assert starts_on(item(start_date=date(2027, 2, 1)), start) == date(2027, 2, 1)  # the later of the two
    assert line_state(item(start_date=date(2026, 1, 1)), TODAY, date(2025, 1, 1)) == "active"
    assert line_state(item(end_date=date(2026, 1, 1)), TODAY, start) == "ended"


def test_totals_of_future_lines_carry_their_start_day():
    later = date(2027, 1, 1)
    totals = frequency_totals([("Monthly", D(100), "active", None), ("Monthly", D(50), "future", later),
                               ("Annual", D(1200), "future", later), ("Monthly", D(7), "ended", None)], MONTHS)
    assert [(t.starts, t.frequency, t.per_period, t.monthly, t.annual) for t in totals] == [
        (None, "Monthly", D(100), D(100), D(1200)),
        (later, "Monthly", D(50), D(50), D(600)),
        (later, "Annual", D(1200), D(100), D(1200))]
