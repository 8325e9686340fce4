"""Prepaid hours: the balance of one contract, and a sweep for low or soon-exhausted blocks.

Reads only. Halo's contract list rows carry no prepay fields (``ContractHeader_List``), so
the balance of a prepaid contract comes from its detail read, where Halo reports its own
totals; the sweep therefore makes one detail read per *active prepaid* contract that has not
already ended by its list row, and nothing per other contract. Burn rates come from one read
of the last 90 days of time entries for the whole book.

The prepay ledger (``/ClientPrepay``) is read only for a contract whose detail read did not
carry its ledger rows although Halo's total shows top-ups, and then for that contract alone
(``?contract_id=``). Halo's ``PrepayHistory`` rows have no ``contract_id`` property, so a
row's contract is known only from the query that returned it: the tool stamps it, it never
filters a whole-book ledger on a field Halo does not send.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain import prepaid as pp
from halo_contracts.domain.models import Contract, PrepayEntry, TimeEntry
from halo_contracts.domain.money import ZERO
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import HaloError
from halo_contracts.tools.common import (
    ClientId,
    ContractId,
    Hours,
    Money,
    Number,
    Result,
    app,
    halo_errors,
    halo_tool,
    invalid,
    today_of,
)

PREPAID_TYPE = "Prepaid Hours"
DETAIL_CONCURRENCY = 8

ThresholdHours = Annotated[Number, Field(description="Alert when the remaining hours are at or below this "
                                                     "(default 10)")]


# ---- results --------------------------------------------------------------------------------


class PrepaidPeriodView(Result):
    name: str | None = Field(default=None, description="Halo's name of the period (its own text)")
    start_date: date | None = None
    end_date: date | None = None
    hours_in_period: Hours | None = None
    hours_used: Hours | None = None
    hours_remaining: Hours | None = None


class ReplenishmentQuote(Result):
    hours: Hours = Field(description="hours to buy to get back to the original block")
    rate: Money = Field(description="the contract's hourly rate: its value / its original block")
    amount: Money = Field(description="hours x rate, to the cent")


class BurnRate(Result):
    window_start: date
    window_end: date
    days: int
    used: Hours = Field(description="prepay hours (or money, for an amount bank) used in the window")
    per_week: Hours
    per_day: Hours


class ExpiringHours(Result):
    source: str = Field(description="'opening block' or 'ledger row <id>'")
    expiry_date: date
    unused_now: Hours = Field(description="still in the block today")
    projected_unused: Hours = Field(description="still in the block on its expiry date at the current burn rate")


class PrepaidBalance(Result):
    contract_id: int
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    status: str | None
    unit: Literal["hours", "amount"] = Field(description="'amount' when the bank is kept as money")
    purchased: Hours | None = Field(default=None, description="hours bought: original block plus top-ups")
    used: Hours | None = None
    expired: Hours | None = None
    remaining: Hours | None = None
    purchased_amount: Money | None = Field(default=None, description="amount banks only")
    used_amount: Money | None = None
    expired_amount: Money | None = None
    remaining_amount: Money | None = None
    figures_from: Literal["halo", "ledger"] = Field(
        description="'halo': Halo's own totals; 'ledger': computed from the ledger and time entries")
    current_period: PrepaidPeriodView | None = None
    threshold_hours: Hours
    alert: bool
    message: str | None = Field(default=None, description="plain words for the account manager")
    suggested_action: str | None = None
    quote: ReplenishmentQuote | None = None
    burn_rate: BurnRate
    projected_run_out: date | None = Field(default=None, description="None when nothing is being used")
    days_until_run_out: int | None = None
    hours_expiring_unused: Hours = Field(description="sum of projected_unused over the expiring blocks")
    expiring: list[ExpiringHours] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _period_view(contract: Contract, today: date) -> PrepaidPeriodView | None:
    period = pp.current_period(contract, today)
    if period is None:
        return None
    return PrepaidPeriodView(name=period.name, start_date=period.start_date, end_date=period.end_date,
                             hours_in_period=period.hours_in_period, hours_used=period.hours_used,
                             hours_remaining=period.hours_remaining)


def _effective_rate(entries: list[TimeEntry], contract_id: int, today: date) -> Decimal | None:
    """Money per hour actually drawn from an amount bank over the burn window."""
    start, end = pp.burn_window(today)
    money = hrs = ZERO
    for e in entries:
        if e.contract_id == contract_id and e.when is not None and start <= e.when <= end:
            money += e.charge_amount
            hrs += e.hours
    return money / hrs if hrs > 0 and money > 0 else None


def assess(contract: Contract, today: date, threshold: Decimal, burn: pp.Burn, *,
           ledger: list[PrepayEntry] | None = None, entries: list[TimeEntry] | None = None) -> PrepaidBalance | None:
    """Everything ``check_prepaid_balance`` reports, from data already read. None when the
    contract carries no prepay figures at all."""
    balance = pp.balance_of(contract, today, ledger=ledger)
    if balance is None:
        return None
    notes: list[str] = []
    unit = balance.unit
    remaining = balance.remaining
    run_out = pp.run_out_date(remaining, burn.per_day, today)
    if unit == "hours":
        threshold_in_unit = threshold
    else:
        rate = _effective_rate(entries or [], contract.id, today)
        if rate is None:
            threshold_in_unit = ZERO
            notes.append("This bank is kept as money and no time was charged to it in the last 90 days, so the "
                         "hour threshold could not be converted: it alerts only when the amount is used up.")
        else:
            threshold_in_unit = threshold * rate
            notes.append(f"This bank is kept as money: the {pp.hours(threshold)}-hour threshold was converted at "
                         f"the {rate.quantize(Decimal('0.01'))} per hour charged over the last 90 days.")
    alert = pp.is_low(remaining, threshold_in_unit)
    message = pp.alert_message(remaining, threshold_in_unit, balance.purchased, unit=unit, run_out=run_out)
    quote = pp.replenishment_quote(contract, remaining) if unit == "hours" else None
    suggested = None
    if alert:
        if quote is not None and quote.hours > 0:
            suggested = (f"Quote a top-up of {pp.hours(quote.hours)} hours at {quote.rate.quantize(Decimal('0.01'))} "
                         f"per hour ({quote.amount}) to restore the original block.")
        else:
            suggested = "Agree a top-up with the client before the balance runs out."
    if unit == "hours" and quote is None:
        notes.append("No replenishment quote: the contract has no original block or no value to derive a rate.")
    blocks = pp.prepay_blocks(contract, ledger)
    expiring = pp.expiring_unused(blocks, balance.used, today, burn.per_day)
    figures: dict[str, Any]
    if unit == "hours":
        figures = dict(purchased=balance.purchased, used=balance.used, expired=balance.expired, remaining=remaining)
    else:
        figures = dict(purchased_amount=balance.purchased, used_amount=balance.used,
                       expired_amount=balance.expired, remaining_amount=remaining)
    return PrepaidBalance(
        contract_id=contract.id, client_id=contract.client_id, client_name=contract.client_name,
        contract_ref=contract.ref, status=contract.status, unit=unit, **figures,
        figures_from=balance.source, current_period=_period_view(contract, today),
        threshold_hours=threshold, alert=alert, message=message, suggested_action=suggested, quote=(
            ReplenishmentQuote(hours=quote.hours, rate=quote.rate, amount=quote.amount) if quote else None),
        burn_rate=BurnRate(window_start=burn.window_start, window_end=burn.window_end, days=burn.days,
                           used=burn.used, per_week=burn.per_week, per_day=burn.per_day),
        projected_run_out=run_out, days_until_run_out=(run_out - today).days if run_out else None,
        hours_expiring_unused=sum((b.projected_unused for b in expiring), ZERO),
        expiring=[ExpiringHours(source=b.source, expiry_date=b.expiry, unused_now=b.unused_now,
                                projected_unused=b.projected_unused) for b in expiring],
        notes=notes,
    )


def _is_prepaid(contract: Contract) -> bool:
    return (contract.type or "").casefold() == PREPAID_TYPE.casefold()


def _has_bank(contract: Contract) -> bool:
    """A Prepaid Hours contract, or any contract Halo reports a non-empty prepay bank for."""
    return _is_prepaid(contract) or bool(contract.prepay_total) or bool(contract.prepaid_hours)


def _needs_ledger(contract: Contract) -> bool:
    """Halo's total says there were top-ups, but the detail read carried no ledger rows."""
    if contract.prepay_history or contract.prepay_total is None:
        return False
    return contract.prepay_total > (contract.prepaid_hours or ZERO)


async def _ledger_of(halo: HaloClient, contract: Contract) -> list[PrepayEntry]:
    """The contract's own ledger rows: ``/ClientPrepay?contract_id=<id>`` (narrowed by client
    too). Halo's rows carry no contract id, so each row is stamped with the contract asked for."""
    rows = await halo.list_prepay_entries(client_id=contract.client_id, contract_id=contract.id)
    return [r.model_copy(update={"contract_id": contract.id}) for r in rows]


def _has_ended(contract: Contract, today: date) -> bool:
    """The list row already shows the contract ended (its end date is past)."""
    return contract.end_date is not None and contract.end_date < today


def _check_threshold(threshold: Decimal | int) -> Decimal:
    """The threshold as a Decimal (the schema default arrives as a plain int)."""
    threshold = Decimal(threshold)
    if threshold < 0 or threshold > 100000:
        raise invalid("threshold_hours", f"must be between 0 and 100000 hours (got {threshold})",
                      "give the number of remaining hours that should raise an alert, e.g. 10")
    return threshold


# ---- tools ------------------------------------------------------------------------------------


@halo_tool(group="prepaid", kind="read", title="Check a prepaid-hours balance")
async def check_prepaid_balance(
    contract_id: ContractId,
    ctx: Context,
    threshold_hours: ThresholdHours = 10,
) -> PrepaidBalance:
    """The prepaid-hours balance of one contract: purchased, used and remaining (hours, or money
    when the bank is kept as an amount), the current period, an alert when the remaining hours
    are at or below the threshold with a plain message, a replenishment quote back to the original
    block at the contract's rate, the burn rate over the last 90 days, the projected run-out date,
    and hours that will expire unused. Use it before talking to a client about a top-up; the
    rules are in halopsa://guide/contracts."""
    threshold_hours = _check_threshold(threshold_hours)
    ac = app(ctx)
    today = today_of(ctx)
    start, end = pp.burn_window(today)
    async with halo_errors():
        contract = await ac.halo.get_contract(contract_id, details=True)
        if not _has_bank(contract):
            raise invalid("contract_id", f"contract {contract_id} is a {contract.type or 'untyped'} contract "
                          "with no prepaid-hours bank", "pick a Prepaid Hours contract "
                          "(find_low_prepaid_balances lists them)")
        ledger = await _ledger_of(ac.halo, contract) if _needs_ledger(contract) else None
        entries = await ac.halo.list_time_entries(start=start, end=end)
    unit = pp.unit_of(contract)
    burn = pp.burn_rate(entries, contract_id, today, unit=unit)
    result = assess(contract, today, threshold_hours, burn, ledger=ledger, entries=entries)
    if result is None:
        raise invalid("contract_id", f"Halo reported no prepay figures for contract {contract_id}",
                      "check in Halo that prepay is enabled on the contract")
    return result


class LowBalanceRow(Result):
    contract_id: int
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    unit: Literal["hours", "amount"]
    purchased: Hours | None = None
    remaining: Hours | None = Field(default=None, description="hours banks")
    remaining_amount: Money | None = Field(default=None, description="amount banks")
    burn_per_week: Hours
    projected_run_out: date | None = None
    days_until_run_out: int | None = None
    reasons: list[str] = Field(description="why it is listed: below the threshold, runs out within the window")
    message: str | None = None
    quote: ReplenishmentQuote | None = None
    hours_expiring_unused: Hours


class ReadFigures(Result):
    contracts_listed: int
    prepaid_contracts: int = Field(description="active prepaid contracts examined (each one detail read)")
    detail_reads: int = Field(description="one per active prepaid contract examined: Halo's list rows carry no "
                                          "prepay fields, only the detail read has the balance")
    ended_not_read: list[int] = Field(default_factory=list, description=(
        "ids of Active prepaid contracts whose list row shows an end date already past: not read and not "
        "assessed (a renewal matter, not a top-up); check_prepaid_balance reads one in full"))
    ledger_reads: int = Field(description="prepay ledger reads, one per contract whose detail read lacked the "
                                          "ledger rows its total implies (usually 0)")
    time_entries_read: int


class LowBalancesResult(Result):
    threshold_hours: Hours
    runs_out_within_days: int | None
    today: date
    total: int = Field(description="contracts that need attention")
    rows: list[LowBalanceRow] = Field(description="most urgent first: used up, then soonest run-out, "
                                                  "then lowest balance")
    truncated: bool
    figures: ReadFigures


@halo_tool(group="prepaid", kind="read", title="Find low prepaid-hours balances")
async def find_low_prepaid_balances(
    ctx: Context,
    threshold_hours: ThresholdHours = 10,
    client_id: ClientId | None = None,
    runs_out_within_days: Annotated[int | None, Field(strict=True, ge=1, le=730, description=(
        "Also list contracts projected to run out within this many days at their 90-day burn rate"))] = None,
    limit: Annotated[int, Field(strict=True, ge=1, le=500, description="Most rows to return (total is "
                                                                       "always reported)")] = 50,
) -> LowBalancesResult:
    """Every active prepaid-hours contract at or below the threshold, or projected to run out
    within the given number of days, most urgent first, each with its balance, burn rate,
    run-out date and a top-up quote. Use it for a weekly prepaid review; then
    check_prepaid_balance for one contract in full. Cost in Halo requests: one list sweep (one
    per 100 contracts) + one detail read per active prepaid contract (Halo's list rows carry no
    balance; the reads run concurrently within the request budget) + one time-entry read;
    contracts whose end date has passed are listed in figures.ended_not_read instead of read.
    Rules: halopsa://guide/contracts."""
    threshold_hours = _check_threshold(threshold_hours)
    ac = app(ctx)
    today = today_of(ctx)
    start, end = pp.burn_window(today)
    halo = ac.halo
    async with halo_errors():
        listed = await halo.list_contracts(ContractQuery(client_id=client_id))
        candidates = [c for c in listed if _is_prepaid(c) and (c.status or "").casefold() == "active"
                      and (client_id is None or c.client_id == client_id)]
        ended = [c.id for c in candidates if _has_ended(c, today)]
        prepaid = [c for c in candidates if not _has_ended(c, today)]
        detailed = await _details(halo, prepaid)
        entries = await halo.list_time_entries(start=start, end=end) if detailed else []
    units = {c.id: pp.unit_of(c) for c, _ in detailed}
    burns = pp.burn_by_contract(entries, set(units), today, units=units)
    rows: list[tuple[tuple, LowBalanceRow]] = []
    horizon = today + timedelta(days=runs_out_within_days) if runs_out_within_days else None
    for contract, ledger in detailed:
        view = assess(contract, today, threshold_hours, burns[contract.id], ledger=ledger, entries=entries)
        if view is None:
            continue
        reasons = []
        if view.alert:
            reasons.append(f"at or below the {pp.hours(threshold_hours)}-hour threshold")
        if horizon and view.projected_run_out and view.projected_run_out <= horizon:
            reasons.append(f"projected to run out within {runs_out_within_days} days")
        if not reasons:
            continue
        remaining = view.remaining if view.unit == "hours" else view.remaining_amount
        key = pp.urgency_key(remaining if remaining is not None else ZERO, view.projected_run_out, today)
        rows.append(((*key, contract.id), LowBalanceRow(
            contract_id=contract.id, client_id=contract.client_id, client_name=contract.client_name,
            contract_ref=contract.ref, unit=view.unit, purchased=view.purchased, remaining=view.remaining,
            remaining_amount=view.remaining_amount, burn_per_week=view.burn_rate.per_week,
            projected_run_out=view.projected_run_out, days_until_run_out=view.days_until_run_out,
            reasons=reasons, message=view.message, quote=view.quote,
            hours_expiring_unused=view.hours_expiring_unused)))
    rows.sort(key=lambda kv: kv[0])
    ordered = [r for _, r in rows]
    return LowBalancesResult(
        threshold_hours=threshold_hours, runs_out_within_days=runs_out_within_days, today=today,
        total=len(ordered), rows=ordered[:limit], truncated=len(ordered) > limit,
        figures=ReadFigures(contracts_listed=len(listed), prepaid_contracts=len(prepaid),
                            detail_reads=len(prepaid), ended_not_read=ended,
                            ledger_reads=sum(1 for _, ledger in detailed if ledger is not None),
                            time_entries_read=len(entries)),
    )


async def _details(halo: HaloClient, contracts: list[Contract]) -> list[tuple[Contract, list[PrepayEntry] | None]]:
    """Detail reads, a few at a time (the client's request budget paces them), in list order;
    each with its own ledger rows when its detail read lacked them (else None)."""
    out: list[tuple[Contract, list[PrepayEntry] | None] | None] = [None] * len(contracts)
    limiter = anyio.CapacityLimiter(DETAIL_CONCURRENCY)

    async def one(i: int, cid: int) -> None:
        async with limiter:
            contract = await halo.get_contract(cid, details=True)
            ledger = await _ledger_of(halo, contract) if _needs_ledger(contract) else None
            out[i] = (contract, ledger)

    try:
        async with anyio.create_task_group() as tg:
            for i, c in enumerate(contracts):
                tg.start_soon(one, i, c.id)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return [c for c in out if c is not None]


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first Halo error in a task group's exceptions (so ``halo_errors`` can word it), else the
    first exception of any kind."""
    halo, _ = group.split(HaloError)
    chosen = halo or group
    while isinstance(chosen, BaseExceptionGroup):
        chosen = chosen.exceptions[0]
    return chosen
