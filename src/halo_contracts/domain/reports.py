"""Portfolio reports over a contract book, and CSV rendering for every report. Pure.

**Total value** is the sum of the contracts' ``value`` (Halo's charge per billing period).

**Annualised recurring revenue (ARR)** of a contract:

* from its recurring lines when it has any: each line that is not inactive and has not ended
  before ``today`` contributes quantity x unit price per billing period (the line's own
  frequency, else the contract's, else monthly) x billing periods per year;
* otherwise, for contracts of type Recurring only, the fallback is the contract's ``value``
  x billing periods per year of the contract's frequency (monthly when unset);
* anything else (prepaid blocks, projects, warranties, ad-hoc) has no recurring revenue.

Contracts that are Pending, Cancelled, On Hold or Expired still show their ARR in their own
group, so a ``group_by="status"`` report tells what each status is worth; filter with
``status`` to see only live business.
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

GROUP_BY: tuple[str, ...] = ("status", "type", "client", "billing_frequency")

MonthsOf = Callable[[str | None], int | None]


def _months(months_of: MonthsOf, *frequencies: str | None) -> int:
    for frequency in frequencies:
        months = months_of(frequency) if frequency else None
        if months:
            return months
    return 1


@dataclass(frozen=True)
class ContractArr:
    amount: Decimal
    source: str  # "lines", "value" or "none"


def contract_arr(contract: Contract, items: Iterable[RecurringItem], months_of: MonthsOf, today: date) -> ContractArr:
    """Annualised recurring revenue of one contract (unrounded) and where it came from."""
    items = list(items)
    if items:
        total = ZERO
        for item in items:
            if item.inactive or (item.end_date is not None and item.end_date < today):
                continue
            months = _months(months_of, item.billing_frequency, contract.billing_frequency)
            total += annualised(item.quantity * item.unit_price, months)
        return ContractArr(total, "lines")
    if (contract.type or "").strip().casefold() == "recurring" and contract.value:
        return ContractArr(annualised(contract.value, _months(months_of, contract.billing_frequency)), "value")
    return ContractArr(ZERO, "none")


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
              group_by: str, months_of: MonthsOf, today: date) -> Summary:
    """Counts, total value and ARR per group; highest ARR first (then value, then name)."""
    if group_by not in GROUP_BY:
        raise ValueError(f"unknown group_by {group_by!r}; expected one of {', '.join(GROUP_BY)}")
    groups: dict[str, Group] = {}
    for contract in contracts:
        key, label, client_id = group_key(contract, group_by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key=key, label=label, client_id=client_id)
        arr = contract_arr(contract, lines_by_contract.get(contract.id, ()), months_of, today)
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
        from_lines=sum(g.from_lines for g in ordered), from_value=sum(g.from_value for g in ordered))


# ---- CSV -------------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """One CSV cell: money as plain two-decimal text, dates ISO, lists space-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(cents(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return " ".join(csv_cell(v) for v in value)
    return str(value)


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
