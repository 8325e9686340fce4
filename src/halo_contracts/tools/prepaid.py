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
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain import prepaid as pp
from halo_contracts.domain import prepaid_assessment as pa
from halo_contracts.domain.models import Contract, PrepayEntry, TimeEntry
from halo_contracts.domain.money import ZERO
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.tools.common import (
    ClientId,
    ContractId,
    Cursor,
    Hours,
    Money,
    Number,
    Result,
    app,
    cursor_offset,
    fingerprint,
    first_error,
    halo_errors,
    halo_tool,
    hours,
    invalid,
    listed,
    money,
    paged,
    plural,
    today_of,
)

PREPAID_TYPE = "Prepaid Hours"
DETAIL_CONCURRENCY = 8

ThresholdHours = Number  # alert at or below this many hours left


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
    block: Hours = Field(description="the original block the top-up restores")


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
    share_left_percent: float | None = Field(default=None, description="remaining as a share of the block bought")
    alert: bool = Field(description="used up, or at or below threshold_hours and a quarter of the block")
    message: str | None = Field(default=None, description="plain words for the account manager")
    suggested_action: str | None = None
    quote: ReplenishmentQuote | None = None
    burn_rate: BurnRate
    projected_run_out: date | None = Field(default=None, description="None when nothing is being used")
    days_until_run_out: int | None = None
    hours_expiring_unused: Hours = Field(description="sum of projected_unused over the expiring blocks")
    expiring: list[ExpiringHours] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def said(self) -> str:
        share = f", {self.share_left_percent:g}% of the block" if self.share_left_percent is not None else ""
        if self.unit == "hours":
            figures = (f"{hours(self.remaining)} hours left of {hours(self.purchased)} purchased "
                       f"({hours(self.used)} used{share})")
        else:
            figures = (f"{money(self.remaining_amount)} left of {money(self.purchased_amount)} purchased "
                       f"(the bank is kept as money{share})")
        text = (f"Contract {self.contract_id} of client {self.client_id}: "
                f"{figures}; burning {hours(self.burn_rate.per_week)} a week")
        text += (f", runs out {self.projected_run_out} ({self.days_until_run_out} days)." if self.projected_run_out
                 else ", nothing used lately.")
        if self.alert:
            text += f" ALERT: low ({_low_rule(self.threshold_hours)})."
        elif self.remaining is not None and self.remaining <= self.threshold_hours:
            text += (f" Not low: at or below {hours(self.threshold_hours)} hours but more than "
                     f"{pp.percent(pp.LOW_SHARE)} of the block is left.")
        if self.suggested_action:
            text += f" {self.suggested_action}"
        if self.hours_expiring_unused:
            text += f" {hours(self.hours_expiring_unused)} would expire unused."
        return text


def _low_rule(threshold: Decimal) -> str:
    return f"used up, or at most {pp.hours_text(threshold)} hours and {pp.percent(pp.LOW_SHARE)} of the block left"


def _share(value: Decimal | None) -> float | None:
    return None if value is None else float((value * 100).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP"))


def _quote_view(quote) -> ReplenishmentQuote | None:
    if quote is None:
        return None
    return ReplenishmentQuote(hours=quote.hours, rate=quote.rate, amount=quote.amount, block=quote.block)


def _period_view(period) -> PrepaidPeriodView | None:
    if period is None:
        return None
    return PrepaidPeriodView(name=period.name, start_date=period.start_date, end_date=period.end_date,
                             hours_in_period=period.hours_in_period, hours_used=period.hours_used,
                             hours_remaining=period.hours_remaining)


def assess(contract: Contract, today: date, threshold: Decimal, burn: pp.Burn, *,
           ledger: list[PrepayEntry] | None = None, entries: list[TimeEntry] | None = None) -> PrepaidBalance | None:
    """Everything ``check_prepaid_balance`` reports, from data already read (the assessment is
    :func:`halo_contracts.domain.prepaid_assessment.assess`). None when the contract carries no
    prepay figures at all."""
    a = pa.assess(contract, today, threshold, burn, ledger=ledger, entries=entries)
    if a is None:
        return None
    quote, burn = a.quote, a.burn
    return PrepaidBalance(
        contract_id=contract.id, client_id=contract.client_id, client_name=contract.client_name,
        contract_ref=contract.ref, status=contract.status, unit=a.unit, **a.figures,
        figures_from=a.source, current_period=_period_view(a.period),
        threshold_hours=threshold, share_left_percent=_share(a.share_left), alert=a.alert, message=a.message,
        suggested_action=a.suggested, quote=_quote_view(quote),
        burn_rate=BurnRate(window_start=burn.window_start, window_end=burn.window_end, days=burn.days,
                           used=burn.used, per_week=burn.per_week, per_day=burn.per_day),
        projected_run_out=a.run_out, days_until_run_out=a.days_until_run_out,
        hours_expiring_unused=a.hours_expiring_unused,
        expiring=[ExpiringHours(source=b.source, expiry_date=b.expiry, unused_now=b.unused_now,
                                projected_unused=b.projected_unused) for b in a.expiring],
        notes=a.notes,
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
    """One prepaid contract's balance, burn rate, run-out date, alert and top-up quote. Low: used up, or
    <= threshold_hours and <= 25% of the block left."""
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
    block: Hours | None = Field(default=None, description="the block the client buys (original block)")
    share_left_percent: float | None = None
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
    truncated: bool = Field(description="more rows than this page: see next_cursor")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")
    figures: ReadFigures

    def said(self) -> str:
        if not self.total:
            return (f"No active prepaid contract is low ({_low_rule(self.threshold_hours)})"
                    + (f" or runs out within {self.runs_out_within_days} days" if self.runs_out_within_days else "")
                    + f" ({self.figures.prepaid_contracts} examined).")
        rows = []
        for r in self.rows[:5]:
            left = f"{hours(r.remaining)} h" if r.unit == "hours" else money(r.remaining_amount)
            out = f", out {r.projected_run_out}" if r.projected_run_out else ""
            quote = (f", top-up quote {money(r.quote.amount)} ({hours(r.quote.hours)} h, back to the "
                     f"{hours(r.quote.block)} h block)" if r.quote and r.quote.hours > 0 else "")
            rows.append(f"{r.contract_id} (client {r.client_id}): {left} left{out}{quote}")
        return (f"{plural(self.total, 'prepaid contract')} need attention (of {self.figures.prepaid_contracts} "
                f"examined), most urgent first: {listed(rows)}."
                + (" More rows: cursor=next_cursor." if self.truncated else "")
                + " check_prepaid_balance(contract_id) gives one in full.")


@halo_tool(group="prepaid", kind="read", title="Find low prepaid-hours balances")
async def find_low_prepaid_balances(
    ctx: Context,
    threshold_hours: ThresholdHours = 10,
    client_id: ClientId | None = None,
    runs_out_within_days: Annotated[int | None, Field(strict=True, ge=1, le=730, description=(
        "Also those running out within this many days"))] = None,
    limit: Annotated[int, Field(strict=True, ge=1, le=500)] = 20,
    cursor: Cursor = None,
) -> LowBalancesResult:
    """Low prepaid contracts (as check_prepaid_balance) or running out soon, most urgent first."""
    threshold_hours = _check_threshold(threshold_hours)
    ac = app(ctx)
    today = today_of(ctx)
    page_key = fingerprint({"tool": "find_low_prepaid_balances", "threshold": str(threshold_hours),
                            "client": client_id, "days": runs_out_within_days, "limit": limit, "today": today})
    cursor_offset(cursor, page_key, "find_low_prepaid_balances")  # a bad cursor fails before any read
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
            reasons.append(f"low: {_low_rule(threshold_hours)}")
        if horizon and view.projected_run_out and view.projected_run_out <= horizon:
            reasons.append(f"projected to run out within {runs_out_within_days} days")
        if not reasons:
            continue
        remaining = view.remaining if view.unit == "hours" else view.remaining_amount
        key = pp.urgency_key(remaining if remaining is not None else ZERO, view.projected_run_out, today)
        rows.append(((*key, contract.id), LowBalanceRow(
            contract_id=contract.id, client_id=contract.client_id, client_name=contract.client_name,
            contract_ref=contract.ref, unit=view.unit, purchased=view.purchased,
            block=pp.block_of(contract, view.purchased if view.unit == "hours" else view.purchased_amount),
            share_left_percent=view.share_left_percent, remaining=view.remaining,
            remaining_amount=view.remaining_amount, burn_per_week=view.burn_rate.per_week,
            projected_run_out=view.projected_run_out, days_until_run_out=view.days_until_run_out,
            reasons=reasons, message=view.message, quote=view.quote,
            hours_expiring_unused=view.hours_expiring_unused)))
    rows.sort(key=lambda kv: kv[0])
    ordered = [r for _, r in rows]
    page, next_cursor = paged(ordered, cursor, limit, page_key, "find_low_prepaid_balances")
    return LowBalancesResult(
        threshold_hours=threshold_hours, runs_out_within_days=runs_out_within_days, today=today,
        total=len(ordered), rows=page, truncated=next_cursor is not None, next_cursor=next_cursor,
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

