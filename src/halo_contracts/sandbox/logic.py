"""Server-side calculations the sandbox performs the way Halo does (or as DESIGN.md settles it).

Shared by the HTTP app (computed fields) and the demo generator (its manifest), so the
manifest states exactly what the API will report.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .spec import format_ts, parse_ts

# Default code maps (DESIGN.md, "Project conventions"): the sandbox uses exactly these.
CONTRACT_STATUS = {1: "Active", 2: "Pending", 3: "Expired", 4: "Cancelled", 5: "On Hold"}
CONTRACT_TYPE = {1: "Recurring", 2: "Prepaid Hours", 3: "Ad-Hoc", 4: "Project", 5: "Warranty"}
BILLING_PERIOD = {1: "Monthly", 2: "Quarterly", 3: "Annual"}
BILLING_MONTHS = {1: 1, 2: 3, 3: 12}
LOOKUP_IDS = {"status": 71, "type": 72, "billingperiod": 73}
# contract statuses whose `active` flag defaults to true (see docs/sandbox.md)
ACTIVE_STATUSES = frozenset({1, 2})

CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    """Decimal of a JSON number (via its text, never binary float arithmetic)."""
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_json_number(value: Decimal) -> float | int:
    value = value.normalize() if value == value.to_integral_value() else value
    return int(value) if value == value.to_integral_value() else float(value)


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = parse_ts(str(value))
    return parsed.date() if parsed else None


def add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


# --------------------------------------------------------------------------- prepay


@dataclass
class PrepaySummary:
    total: Decimal
    used: Decimal
    expired: Decimal
    balance: Decimal
    expiring_soon: Decimal  # unconsumed hours (or money) expiring within 30 days


def _blocks(contract: dict, ledger: list[dict], as_amount: bool) -> list[tuple[date | None, Decimal, date | None]]:
    start = as_date(contract.get("start_date"))
    blocks: list[tuple[date | None, Decimal, date | None]] = []
    sb = money(contract.get("startbalance"))
    if sb:
        blocks.append((start, sb, None))
    rows = sorted(ledger, key=lambda r: (as_date(r.get("date")) or date.min, r.get("id") or 0))
    for row in rows:
        qty = money(row.get("amount") if as_amount else row.get("hours"))
        blocks.append((as_date(row.get("date")), qty, as_date(row.get("expirydate"))))
    return blocks


def prepay_summary(contract: dict, ledger: list[dict], actions: list[dict], today: date) -> PrepaySummary:
    """Totals Halo reports as contract_prepaytotal / _used / _balance.

    total   = startbalance + sum of the contract's ledger rows (hours, or amount when
              ``contract_prepayasamount``)
    used    = sum of ``actionprepayhours`` (``actionprepayamount``) of actions whose
              ``actioncontractid`` is the contract
    expired = hours left unconsumed in ledger rows whose ``expirydate`` is before today,
              consuming blocks oldest first (startbalance first)
    balance = total - used - expired
    """
    as_amount = bool(contract.get("contract_prepayasamount"))
    blocks = _blocks(contract, ledger, as_amount)
    used = sum(
        (money(a.get("actionprepayamount") if as_amount else a.get("actionprepayhours")) for a in actions),
        Decimal(0),
    )
    total = sum((b[1] for b in blocks), Decimal(0))
    to_consume = used
    expired = Decimal(0)
    expiring = Decimal(0)
    soon = today + timedelta(days=30)
    for _, qty, expiry in blocks:
        if qty <= 0:
            continue
        take = min(qty, max(to_consume, Decimal(0)))
        to_consume -= take
        left = qty - take
        if expiry is not None and left > 0:
            if expiry < today:
                expired += left
            elif expiry <= soon:
                expiring += left
    return PrepaySummary(total, used, expired, total - used - expired, expiring)


def prepay_periods(
    contract: dict, ledger: list[dict], actions: list[dict], today: date, max_months: int = 36
) -> list[dict[str, Any]]:
    """Monthly PrepayPeriod rows from the contract start (at most ``max_months``) to today."""
    as_amount = bool(contract.get("contract_prepayasamount"))
    start = as_date(contract.get("start_date")) or today
    first = month_start(max(start, add_months(month_start(today), -(max_months - 1))))
    sb = money(contract.get("startbalance"))
    rate = (money(contract.get("periodchargeamount")) / sb) if sb and not as_amount else None
    blocks = _blocks(contract, ledger, as_amount)
    # expiry of each block, consumed oldest first over all usage up to the expiry
    field = "actionprepayamount" if as_amount else "actionprepayhours"
    dated_use = sorted(
        ((as_date(a.get("datetime")) or today, money(a.get(field))) for a in actions), key=lambda t: t[0]
    )
    expiries: list[tuple[date, Decimal]] = []
    to_consume = sum((u for _, u in dated_use), Decimal(0))
    for _, qty, expiry in blocks:
        if qty <= 0:
            continue
        take = min(qty, max(to_consume, Decimal(0)))
        to_consume -= take
        if expiry is not None and expiry < today and qty - take > 0:
            expiries.append((expiry, qty - take))
    out: list[dict[str, Any]] = []
    remaining = Decimal(0)
    # everything before the first shown month is carried in as the opening balance
    for when, qty, _ in blocks:
        if (when or start) < first:
            remaining += qty
    for when, qty in dated_use:
        if when < first:
            remaining -= qty
    for when, qty in expiries:
        if when < first:
            remaining -= qty
    period = first
    n = 0
    while period <= today:
        end = month_end(period)
        added = sum((q for w, q, _ in blocks if period <= (w or start) <= end), Decimal(0))
        use = sum((q for w, q in dated_use if period <= w <= end), Decimal(0))
        gone = sum((q for w, q in expiries if period <= w <= end), Decimal(0))
        remaining += added - use - gone
        n += 1
        row: dict[str, Any] = {
            "id": n,
            "contract_id": contract.get("id"),
            "name": period.strftime("%B %Y"),
            "start_date": format_ts(period),
            "end_date": format_ts(end),
            "start_date_display": format_ts(period),
            "end_date_display": format_ts(end),
            "current": period <= today <= end,
        }
        if as_amount:
            row.update(
                amount_added=to_json_number(added),
                amount_expired=to_json_number(gone),
                amount_remaining=to_json_number(remaining),
                amount_used_this_period=to_json_number(use),
            )
        else:
            row.update(
                hours_added=to_json_number(added),
                hours_expired=to_json_number(gone),
                hours_remaining=to_json_number(remaining),
                hours_used_this_period=to_json_number(use),
            )
            if rate is not None:
                row.update(
                    amount_added=to_json_number(cents(added * rate)),
                    amount_expired=to_json_number(cents(gone * rate)),
                    amount_remaining=to_json_number(cents(remaining * rate)),
                    amount_used_this_period=to_json_number(cents(use * rate)),
                )
        out.append(row)
        period = add_months(period, 1)
    return out


def contract_periods(contract: dict, actions: list[dict], today: date, max_periods: int = 36) -> list[dict]:
    """ContractPeriod rows for contracts with ``chargehoursperperiod`` (hours included per period).

    Periods follow the contract's billing period from ``start_date`` up to the current one
    (or the end date); hours_used sums ``timetaken`` of billable actions on the contract.
    """
    per = money(contract.get("chargehoursperperiod"))
    start = as_date(contract.get("start_date"))
    if not per or start is None:
        return []
    months = BILLING_MONTHS.get(int(contract.get("billingperiod") or 1), 1)
    end = as_date(contract.get("end_date"))
    last = min(end, today) if end else today
    periods: list[tuple[date, date]] = []
    p = start
    while p <= last:
        nxt = add_months(start, months * (len(periods) + 1))
        periods.append((p, nxt - timedelta(days=1)))
        p = nxt
    periods = periods[-max_periods:]
    out = []
    for i, (a, b) in enumerate(periods, start=1):
        used = sum(
            (
                money(x.get("timetaken"))
                for x in actions
                if x.get("actisbillable") and a <= (as_date(x.get("datetime")) or date.min) <= b
            ),
            Decimal(0),
        )
        out.append(
            {
                "id": i,
                "contract_id": contract.get("id"),
                "name": f"{a.isoformat()} - {b.isoformat()}",
                "start_date": format_ts(a),
                "end_date": format_ts(b),
                "start_date_display": format_ts(a),
                "end_date_display": format_ts(b),
                "current": a <= today <= b,
                "hours_in_period": to_json_number(per),
                "hours_used": to_json_number(used),
                "hours_remaining": to_json_number(max(per - used, Decimal(0))),
                "hours_charged": to_json_number(max(used - per, Decimal(0))),
            }
        )
    return out
