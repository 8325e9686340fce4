"""One prepaid contract assessed from data already read: balance, threshold (converted for a
bank kept as money), alert, top-up quote, run-out date and hours expiring unused. Pure; no I/O
and no clock (``today`` is given). The rules themselves are in :mod:`halo_contracts.domain.prepaid`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from halo_contracts.domain import prepaid as pp
from halo_contracts.domain.models import Contract, PrepayEntry, TimeEntry
from halo_contracts.domain.money import ZERO


def effective_rate(entries: list[TimeEntry], contract_id: int, today: date) -> Decimal | None:
    """Money per hour actually drawn from an amount bank over the burn window."""
    start, end = pp.burn_window(today)
    money = hrs = ZERO
    for e in entries:
        if e.contract_id == contract_id and e.when is not None and start <= e.when <= end:
            money += e.charge_amount
            hrs += e.hours
    return money / hrs if hrs > 0 and money > 0 else None


@dataclass
class Assessment:
    contract: Contract
    unit: str
    figures: dict[str, Any]  # purchased/used/expired/remaining (hours) or their *_amount (money)
    source: str
    period: Any  # pp.current_period(...) or None
    block: Decimal | None  # the block the client buys (original block, else purchased)
    share_left: Decimal | None  # remaining / block
    alert: bool
    message: str | None
    suggested: str | None
    quote: Any  # pp.replenishment_quote(...) or None
    burn: pp.Burn
    run_out: date | None
    days_until_run_out: int | None
    expiring: list[Any]
    hours_expiring_unused: Decimal
    notes: list[str] = field(default_factory=list)


def _threshold_in_unit(unit: str, threshold: Decimal, contract: Contract, today: date,
                       entries: list[TimeEntry], notes: list[str]) -> Decimal:
    if unit == "hours":
        return threshold
    rate = effective_rate(entries, contract.id, today)
    if rate is None:
        notes.append("This bank is kept as money and no time was charged to it in the last 90 days, so the "
                     "hour threshold could not be converted: it alerts only when the amount is used up.")
        return ZERO
    notes.append(f"This bank is kept as money: the {pp.hours(threshold)}-hour threshold was converted at "
                 f"the {rate.quantize(Decimal('0.01'))} per hour charged over the last 90 days.")
    return threshold * rate


def _suggestion(alert: bool, quote: Any) -> str | None:
    if not alert:
        return None
    if quote is not None and quote.hours > 0:
        return (f"Quote a top-up of {pp.hours(quote.hours)} hours at {quote.rate.quantize(Decimal('0.01'))} "
                f"per hour ({quote.amount}) to restore the original {pp.hours_text(quote.block)}-hour block.")
    return "Agree a top-up with the client before the balance runs out."


def assess(contract: Contract, today: date, threshold: Decimal, burn: pp.Burn, *,
           ledger: list[PrepayEntry] | None = None, entries: list[TimeEntry] | None = None) -> Assessment | None:
    """Everything a balance check reports; None when the contract carries no prepay figures."""
    balance = pp.balance_of(contract, today, ledger=ledger)
    if balance is None:
        return None
    notes: list[str] = []
    unit, remaining = balance.unit, balance.remaining
    run_out = pp.run_out_date(remaining, burn.per_day, today)
    limit = _threshold_in_unit(unit, threshold, contract, today, entries or [], notes)
    block = pp.block_of(contract, balance.purchased)
    alert = pp.is_low(remaining, limit, block)
    quote = pp.replenishment_quote(contract, remaining) if unit == "hours" else None
    if unit == "hours" and quote is None:
        notes.append("No replenishment quote: the contract has no original block or no value to derive a rate.")
    expiring = pp.expiring_unused(pp.prepay_blocks(contract, ledger), balance.used, today, burn.per_day)
    if unit == "hours":
        figures = dict(purchased=balance.purchased, used=balance.used, expired=balance.expired, remaining=remaining)
    else:
        figures = dict(purchased_amount=balance.purchased, used_amount=balance.used,
                       expired_amount=balance.expired, remaining_amount=remaining)
    return Assessment(
        contract=contract, unit=unit, figures=figures, source=balance.source,
        period=pp.current_period(contract, today), block=block, share_left=pp.share_left(remaining, block),
        alert=alert,
        message=pp.alert_message(remaining, limit, balance.purchased, unit=unit, run_out=run_out, block=block),
        suggested=_suggestion(alert, quote), quote=quote, burn=burn, run_out=run_out,
        days_until_run_out=(run_out - today).days if run_out else None, expiring=expiring,
        hours_expiring_unused=sum((b.projected_unused for b in expiring), ZERO), notes=notes)
