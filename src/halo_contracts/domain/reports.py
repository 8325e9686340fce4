"""Portfolio reports over a contract book, and CSV rendering for every report. Pure.

**Scope.** By default (``scope="current"``) a report counts only the contracts *in force*
on ``today`` - what an MSP reading "annualised recurring revenue" expects: what is billing now.
A contract is in force when its status is billable (not Pending, Cancelled or On Hold - the
contract guide's status table - and not Expired), ``today`` lies within its start and end
dates, and no other contract in force names it as its previous contract (a renewal that has
taken over). So an expired contract and its renewal are never counted together, and a renewal
that starts next month is not counted yet. ``scope="all"`` counts every contract (counts and
total value), with annualised recurring revenue still 0 for those not in force.

**Total value** is the sum of the counted contracts' ``value`` (Halo's charge per billing period).

**Annualised recurring revenue (ARR)** of a contract in force on ``today``:

* from its recurring lines when it has any: each line that is not inactive and bills on
  ``today`` (its dates clipped to the contract's contain ``today``) contributes quantity x unit
  price per billing period (the line's own frequency, else the contract's, else monthly) x
  billing periods per year;
* otherwise, for contracts of type Recurring only, the fallback is the contract's ``value``
  x billing periods per year of the contract's frequency (monthly when unset);
* anything else (prepaid blocks, projects, warranties, ad-hoc) has no recurring revenue.

A contract not in force has no ARR. A billing frequency the tenant's code map does not know
is counted as monthly and named in ``Summary.warnings``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from halo_contracts.domain.models import Contract, RecurringItem
from halo_contracts.domain.money import ZERO, annualised, cents
from halo_contracts.domain.reconciliation import (
    in_force,
    line_live_on,
    period_months,
    unknown_period_warning,
    unknown_periods,
)

GROUP_BY: tuple[str, ...] = ("status", "type", "client", "billing_frequency")
SCOPES: tuple[str, ...] = ("current", "all")

MonthsOf = Callable[[str | None], int | None]


@dataclass(frozen=True)
class ContractArr:
    amount: Decimal
    source: str  # "lines", "value" or "none"
    frequencies: tuple[str | None, ...] = ()  # the billing frequencies the amount relies on


def contract_arr(contract: Contract, items: Iterable[RecurringItem], months_of: MonthsOf, today: date) -> ContractArr:
    """Annualised recurring revenue of one contract (unrounded) and where it came from; nothing
    for a contract not in force on ``today`` (:func:`halo_contracts.domain.reconciliation.in_force`).
    A renewal that has taken over is the caller's to rule out (:func:`renewed_ids`)."""
    if not in_force(contract, today):
        return ContractArr(ZERO, "none")
    items = list(items)
    if items:
        total = ZERO
        used: list[str | None] = []
        for item in items:
            if not line_live_on(item, contract, today):
                continue
            used.append(item.billing_frequency or contract.billing_frequency)
            months = period_months(months_of, item.billing_frequency, contract.billing_frequency)
            total += annualised(item.quantity * item.unit_price, months)
        return ContractArr(total, "lines", tuple(used))
    if (contract.type or "").strip().casefold() == "recurring" and contract.value:
        return ContractArr(annualised(contract.value, period_months(months_of, contract.billing_frequency)), "value",
                           (contract.billing_frequency,))
    return ContractArr(ZERO, "none")


def renewed_ids(contracts: Iterable[Contract], today: date) -> set[int]:
    """Ids of contracts that a contract in force on ``today`` names as its previous contract."""
    return {c.previous_contract_id for c in contracts if c.previous_contract_id and in_force(c, today)}


def is_current(contract: Contract, today: date, renewed: set[int]) -> bool:
    """In force on ``today`` and not taken over by a renewal in force."""
    return contract.id not in renewed and in_force(contract, today)


@dataclass
class Group:
    key: str
    label: str
    client_id: int | None = None
    contracts: int = 0
    total_value: Decimal = ZERO
    annual_recurring: Decimal = ZERO
    from_lines: int = 0
    from_value: int = 0
    contract_ids: list[int] = field(default_factory=list)


@dataclass
class Summary:
    group_by: str
    groups: list[Group]
    contracts: int
    total_value: Decimal
    annual_recurring: Decimal
    from_lines: int
    from_value: int
    scope: str = "current"
    not_current: int = 0  # contracts not in force today: left out ("current") or counted at 0 ARR ("all")
    warnings: list[str] = field(default_factory=list)


def group_key(contract: Contract, group_by: str) -> tuple[str, str, int | None]:
    """(sort-stable key, label, client id) of a contract's group."""
    if group_by == "status":
        name = contract.status or "(no status)"
        return name.casefold(), name, None
    if group_by == "type":
        name = contract.type or "(no type)"
        return name.casefold(), name, None
    if group_by == "billing_frequency":
        name = contract.billing_frequency or "(not set)"
        return name.casefold(), name, None
    if group_by == "client":
        if contract.client_id is None:
            return "client:none", contract.client_name or "(no client)", None
        label = contract.client_name or f"client {contract.client_id}"
        return f"client:{contract.client_id}", label, contract.client_id
    raise ValueError(f"unknown group_by {group_by!r}; expected one of {', '.join(GROUP_BY)}")


def summarize(contracts: Iterable[Contract], lines_by_contract: Mapping[int, Sequence[RecurringItem]],
              group_by: str, months_of: MonthsOf, today: date, *, scope: str = "current",
              status: str | None = None) -> Summary:
    """Counts, total value and ARR per group; highest ARR first (then value, then name).

    ``contracts`` is the whole book (renewals are recognised across it); ``status`` keeps only
    contracts in that status (case-insensitive); ``scope`` is ``"current"`` (only contracts in
    force on ``today``) or ``"all"``."""
    if group_by not in GROUP_BY:
        raise ValueError(f"unknown group_by {group_by!r}; expected one of {', '.join(GROUP_BY)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    book = list(contracts)
    renewed = renewed_ids(book, today)
    wanted = status.strip().casefold() if status is not None else None
    groups: dict[str, Group] = {}
    not_current = 0
    unknown: dict[str, set[int]] = {}
    for contract in book:
        if wanted is not None and (contract.status or "").strip().casefold() != wanted:
            continue
        current = is_current(contract, today, renewed)
        if not current:
            not_current += 1
            if scope == "current":
                continue
        key, label, client_id = group_key(contract, group_by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key=key, label=label, client_id=client_id)
        arr = contract_arr(contract, lines_by_contract.get(contract.id, ()), months_of, today) if current \
            else ContractArr(ZERO, "none")
        for frequency in unknown_periods(months_of, arr.frequencies):
            unknown.setdefault(frequency, set()).add(contract.id)
        group.contracts += 1
        group.total_value += contract.value or ZERO
        group.annual_recurring += arr.amount
        group.from_lines += arr.source == "lines"
        group.from_value += arr.source == "value"
        group.contract_ids.append(contract.id)
    ordered = sorted(groups.values(),
                     key=lambda g: (-cents(g.annual_recurring), -cents(g.total_value), g.label.casefold(), g.key))
    for g in ordered:
        g.annual_recurring = cents(g.annual_recurring)
        g.total_value = cents(g.total_value)
        g.contract_ids.sort()
    return Summary(
        group_by=group_by, groups=ordered, contracts=sum(g.contracts for g in ordered),
        total_value=sum((g.total_value for g in ordered), ZERO),
        annual_recurring=sum((g.annual_recurring for g in ordered), ZERO),
        from_lines=sum(g.from_lines for g in ordered), from_value=sum(g.from_value for g in ordered),
        scope=scope, not_current=not_current,
        warnings=[unknown_period_warning(f, ids) for f, ids in sorted(unknown.items())])


# ---- CSV -------------------------------------------------------------------------------------


# A spreadsheet opening the CSV runs a cell that starts with one of these as a formula
# (=HYPERLINK(...), +cmd|..., @SUM(...)); tab and carriage return are read as the same.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    """A text cell made inert: a leading ``'`` when it starts like a formula (OWASP's advice)."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_cell(value: Any) -> str:
    """One CSV cell: money as plain two-decimal text, dates ISO, lists space-separated.

    Text (Halo's refs, client names, details) that starts like a formula gets a leading ``'``;
    numbers never do (a negative amount stays ``-12.50``), so the CSV parses back to the same
    numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(cents(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return " ".join(csv_cell(v) for v in value)
    return csv_text(str(value))


def render_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV text (``\\r\\n`` line ends, quoting only where needed)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


SUMMARY_CSV_HEADER = ("group", "client_id", "contracts", "total_value", "annual_recurring_revenue",
                      "arr_from_lines", "arr_from_value")


def summary_csv(summary: Summary) -> str:
    rows = [(g.label, g.client_id, g.contracts, g.total_value, g.annual_recurring, g.from_lines, g.from_value)
            for g in summary.groups]
    rows.append(("TOTAL", None, summary.contracts, summary.total_value, summary.annual_recurring,
                 summary.from_lines, summary.from_value))
    return render_csv(SUMMARY_CSV_HEADER, rows)
