"""Business guardrails: writes that are valid but make no business sense without a word.

Pure functions over domain models; no I/O, no clock (``today`` is given). Each gives an
:class:`~halo_contracts.domain.validation.Issue` that a tool puts in its plan as a warning
(never a refusal): the person sees it before the plan is applied.

- ``value_vs_lines``: a contract's value (per billing period) against what its recurring lines
  in force bill per period.
- ``overlapping``: Active or Pending contracts of the same client and type whose dates overlap
  a new contract's (or a renewal's).
- ``pending_successor``: a Pending contract of the same client and type starting after a
  contract starts and ending after it ends (or open-ended): it is that contract's renewal even
  without the previous-contract link.
- ``billing_lines`` / ``cancel_lines_issue``: the recurring lines that still bill after a
  cancel date, and the warning when the plan leaves them billing.
- ``frozen_contract_issue``: changing money, dates or lines of a Cancelled or Expired contract.
- ``first_billing_date``: the next invoice date a new Recurring contract gets by default (the
  first period start on or after today, as a new recurring invoice's next creation date).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from halo_contracts.domain.models import Contract, RecurringItem
from halo_contracts.domain.money import add_months, cents
from halo_contracts.domain.validation import PREPAID, Issue

LIVE_STATUSES = ("active", "pending")
FROZEN_STATUSES = ("cancelled", "expired")


def _is(status: str | None, *names: str) -> bool:
    return (status or "").strip().casefold() in names


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _money(value: Decimal) -> str:
    return f"{cents(value):,.2f}"


# ---- value against lines --------------------------------------------------------------------------


@dataclass(frozen=True)
class LineFigures:
    """What a rule needs of a recurring line."""

    quantity: Decimal
    unit_price: Decimal
    billing_frequency: str | None = None  # None: the contract's
    start_date: date | None = None
    end_date: date | None = None
    inactive: bool = False

    @classmethod
    def of(cls, line: RecurringItem) -> LineFigures:
        return cls(line.quantity, line.unit_price, line.billing_frequency, line.start_date, line.end_date,
                   line.inactive)

    def in_force(self, day: date) -> bool:
        return not self.inactive and (self.start_date is None or self.start_date <= day) and (
            self.end_date is None or self.end_date >= day)


def lines_per_period(lines: Iterable[LineFigures], billing_frequency: str | None, day: date,
                     months_of: Callable[[str | None], int | None]) -> Decimal | None:
    """What the lines in force on ``day`` bill per contract period (lines of another frequency
    converted); None when no line is in force or a conversion is impossible."""
    period = months_of(billing_frequency) if billing_frequency else None
    total = Decimal(0)
    counted = 0
    for line in lines:
        if not line.in_force(day):
            continue
        net = cents(line.quantity * line.unit_price)
        own = months_of(line.billing_frequency) if line.billing_frequency else None
        if line.billing_frequency and not _same(line.billing_frequency, billing_frequency):
            if not own or not period:
                return None
            net = net * period / own
        total += net
        counted += 1
    return cents(total) if counted else None


def value_vs_lines(value: Decimal | None, contract_type: str | None, billing_frequency: str | None,
                   lines: Iterable[LineFigures], day: date, months_of: Callable[[str | None], int | None],
                   *, field: str = "value") -> Issue | None:
    """The contract's value disagrees with what its lines in force on ``day`` bill per period
    (Prepaid Hours contracts are priced by their block, not their lines)."""
    if value is None or _same(contract_type, PREPAID):
        return None
    total = lines_per_period(lines, billing_frequency, day, months_of)
    if total is None or cents(value) == total:
        return None
    per = f"per {billing_frequency} period" if billing_frequency else "per period"
    return Issue(field, f"the contract's value {_money(value)} disagrees with its recurring lines, which bill "
                        f"{_money(total)} {per} (from {day.isoformat()})",
                 f"make the value {_money(total)}, or change the lines so they bill {_money(value)}")


# ---- overlapping contracts ------------------------------------------------------------------------


def _overlaps(a_start: date, a_end: date | None, b_start: date | None, b_end: date | None) -> bool:
    return (b_end is None or b_end >= a_start) and (a_end is None or b_start is None or b_start <= a_end)


def overlapping(client_id: int | None, contract_type: str | None, start: date, end: date | None,
                others: Iterable[Contract], *, exclude: Iterable[int] = ()) -> list[Contract]:
    """Active or Pending contracts of the same client and type whose dates overlap start..end
    (an open end overlaps everything after it)."""
    skip = set(exclude)
    return sorted((c for c in others if c.id not in skip and c.client_id == client_id
                   and _same(c.type, contract_type) and _is(c.status, *LIVE_STATUSES)
                   and _overlaps(start, end, c.start_date, c.end_date)), key=lambda c: (c.start_date or date.min, c.id))


def overlap_issue(found: list[Contract], *, what: str = "the new contract", field: str = "start_date") -> Issue:
    """One warning naming the overlapping contracts by id, status and dates (their refs are
    Halo's text: the tool returns them in their own field)."""
    named = ", ".join(f"{c.id} ({c.status}, {c.start_date or '?'} to {c.end_date or 'open-ended'})" for c in found)
    return Issue(field, f"{what} overlaps {'contracts' if len(found) > 1 else 'contract'} {named} of the same "
                        "client and type", "check it is not a duplicate; if it is, change that contract instead")


def _follows(new: Contract, old: Contract) -> bool:
    """``new`` could renew ``old``: same client and type, starting after it starts and ending
    after it ends (or open-ended)."""
    return (new.id != old.id and new.client_id == old.client_id and _same(new.type, old.type)
            and new.start_date is not None and old.start_date is not None and old.end_date is not None
            and new.start_date > old.start_date and (new.end_date is None or new.end_date > old.end_date))


def _gap(new: Contract, old: Contract) -> int:
    """Days between ``old``'s end and ``new``'s start (0: it starts the day after)."""
    assert new.start_date is not None and old.end_date is not None
    return abs((new.start_date - old.end_date).days - 1)


def pending_successor(old: Contract, others: Iterable[Contract]) -> Contract | None:
    """A Pending contract of the old one's client and type that starts after the old one starts
    and ends after it ends (or is open-ended): the renewal made without the previous-contract link,
    even when its term starts before the old one ends (the earliest, when several). A Pending
    contract that follows another contract of the client more closely (that one's end nearer its
    start) is that one's renewal, not this one's."""
    pool = [c for c in others if c.id != old.id] + [old]
    found = [c for c in pool if _is(c.status, "pending") and not c.previous_contract_id and _follows(c, old)
             and min((o for o in pool if _follows(c, o)), key=lambda o: (_gap(c, o), o.id)) is old]
    return min(found, key=lambda c: (c.start_date or date.min, c.id)) if found else None


# ---- cancelling with lines still billing ----------------------------------------------------------


def billing_lines(lines: Iterable[RecurringItem], cancel_date: date) -> list[RecurringItem]:
    """Lines that still bill after ``cancel_date``: not inactive and not ended by then."""
    return [line for line in lines if line.id is not None and not line.inactive
            and (line.end_date is None or line.end_date > cancel_date)]


def cancel_lines_issue(count: int, cancel_date: date) -> Issue:
    return Issue("end_recurring_lines", f"{count} recurring line(s) of the contract keep billing after it is "
                                        f"cancelled on {cancel_date.isoformat()}",
                 "pass end_recurring_lines=true to end them on the cancel date in this plan, or end them with "
                 "update_recurring_item")


# ---- Cancelled or Expired contracts ---------------------------------------------------------------

FROZEN_FIELDS = ("value", "start_date", "end_date", "billing_frequency", "prepaid_hours")


def frozen_contract_issue(status: str | None, what: str, *, field: str = "contract_id") -> Issue | None:
    """Changing money, dates or lines of a Cancelled or Expired contract: it bills nothing, so
    the change is most likely meant for the client's current contract."""
    if not _is(status, *FROZEN_STATUSES):
        return None
    return Issue(field, f"the contract is {status}, so changing its {what} bills nothing",
                 "make the change on the client's current contract, or renew this one first")


# ---- next invoice date ----------------------------------------------------------------------------


def first_billing_date(start: date, today: date, months: int) -> date:
    """The first period start (every ``months`` months from ``start``) on or after ``today``;
    ``start`` itself while it is ahead."""
    if start >= today:
        return start
    periods = ((today.year - start.year) * 12 + (today.month - start.month)) // months
    day = add_months(start, periods * months)
    while day < today:
        periods += 1
        day = add_months(start, periods * months)
    return day


def needs_next_invoice_date(contract_type: str | None, status: str | None) -> bool:
    return _same(contract_type, "Recurring") and not _is(status, *FROZEN_STATUSES)


def next_invoice_defaulted(day: date) -> Issue:
    return Issue("next_invoice_date", f"not given, so it is set to {day.isoformat()}, the first billing date "
                                      "on or after today", "pass next_invoice_date to choose another date")
