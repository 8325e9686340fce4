"""Prepaid hours: balances, alerts, burn rate, run-out projection, top-up quotes, expiry.

Pure functions over domain models (no I/O). The figures follow the project's prepay
convention (DESIGN.md, "Prepaid hours"):

* the purchased block is the contract's opening block (``prepaid_hours``) plus its prepay
  ledger rows; the contract's hourly rate is ``value / prepaid_hours``;
* hours used are the prepay hours of time entries booked against the contract;
* Halo reports the totals itself on a detail read (``prepay_total/used/balance``); those are
  preferred, the ledger arithmetic here is the fallback and the basis of expiry figures;
* when ``prepay_as_amount`` is set the bank is kept as money, not hours.

Expiry: Halo stamps each ledger row with its expiry date (``expirydate``, set from the
contract's ``prepay_expiry_months`` when the row is added); rows without one do not expire.
Usage consumes the blocks oldest first (the opening block first, it never expires);
whatever is left in a block after its expiry date is lost. ``ledger_expiry`` can also infer
a missing date from the months, for callers that want the stricter reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from halo_contracts.domain.models import Contract, ContractPeriod, PrepayEntry, TimeEntry
from halo_contracts.domain.money import ZERO, add_months, cents

Unit = Literal["hours", "amount"]

BURN_WINDOW_DAYS = 90
HOURS_PLACES = Decimal("0.01")


def hours(value: Decimal) -> Decimal:
    """Hours as presented: two decimals, half-up."""
    return value.quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)


def unit_of(contract: Contract) -> Unit:
    return "amount" if contract.prepay_as_amount else "hours"


# ---- blocks and balance ---------------------------------------------------------------------


@dataclass(frozen=True)
class PrepayBlock:
    """One lot of prepaid hours (or money): the opening block or a ledger row."""

    added: date | None
    quantity: Decimal
    expiry: date | None
    source: str  # "opening block" or "ledger row <id>"


def ledger_expiry(entry: PrepayEntry, expiry_months: int | None) -> date | None:
    """A ledger row's expiry: its own date, else ``expiry_months`` after it was added."""
    if entry.expiry_date is not None:
        return entry.expiry_date
    if expiry_months and expiry_months > 0 and entry.entry_date is not None:
        return add_months(entry.entry_date, expiry_months)
    return None


def prepay_blocks(contract: Contract, ledger: list[PrepayEntry] | None = None, *,
                  infer_expiry: bool = False) -> list[PrepayBlock]:
    """The contract's blocks, oldest first: the opening block, then its ledger rows.

    ``ledger`` defaults to the rows read with the contract (``prepay_history``); rows of other
    contracts are ignored, rows without a contract are taken as the contract's own. Halo's
    ``PrepayHistory`` rows carry no contract id, so callers pass rows read for this contract
    alone (``/ClientPrepay?contract_id=``), stamped with its id; a whole-book ledger cannot be
    split by contract. With
    ``infer_expiry`` a row without an expiry date expires ``prepay_expiry_months`` after it.
    """
    months = contract.prepay_expiry_months if infer_expiry else None
    rows = contract.prepay_history if ledger is None else ledger
    as_amount = contract.prepay_as_amount
    blocks: list[PrepayBlock] = []
    if contract.prepaid_hours:
        blocks.append(PrepayBlock(contract.start_date, contract.prepaid_hours, None, "opening block"))
    own = [r for r in rows if r.contract_id in (None, contract.id)]
    seen: set[int] = set()
    for row in sorted(own, key=lambda r: (r.entry_date or date.min, r.id)):
        if row.id in seen:
            continue
        seen.add(row.id)
        qty = row.amount if as_amount else row.hours
        blocks.append(PrepayBlock(row.entry_date, qty, ledger_expiry(row, months),
                                  f"ledger row {row.id}"))
    return blocks


@dataclass(frozen=True)
class BlockState:
    block: PrepayBlock
    left: Decimal  # not yet consumed by usage to date


def consume(blocks: list[PrepayBlock], used: Decimal) -> list[BlockState]:
    """Usage to date taken from the blocks oldest first."""
    to_consume = max(used, ZERO)
    out: list[BlockState] = []
    for block in blocks:
        if block.quantity <= 0:
            out.append(BlockState(block, ZERO))
            continue
        take = min(block.quantity, to_consume)
        to_consume -= take
        out.append(BlockState(block, block.quantity - take))
    return out


@dataclass(frozen=True)
class Balance:
    unit: Unit
    purchased: Decimal
    used: Decimal
    expired: Decimal
    remaining: Decimal
    source: Literal["halo", "ledger"]  # Halo's own totals, or computed from blocks and usage


def balance_from_halo(contract: Contract) -> Balance | None:
    """The totals Halo reports on a detail read, or None when the read did not carry them."""
    if contract.prepay_balance is None:
        return None
    total = contract.prepay_total if contract.prepay_total is not None else ZERO
    used = contract.prepay_used if contract.prepay_used is not None else ZERO
    remaining = contract.prepay_balance
    expired = max(total - used - remaining, ZERO)
    return Balance(unit_of(contract), total, used, expired, remaining, "halo")


def balance_from_ledger(contract: Contract, used: Decimal, today: date,
                        ledger: list[PrepayEntry] | None = None) -> Balance:
    """Purchased = blocks; expired = what was left in blocks past their expiry; the rest remains."""
    blocks = prepay_blocks(contract, ledger)
    total = sum((b.quantity for b in blocks), ZERO)
    expired = sum((s.left for s in consume(blocks, used) if s.block.expiry and s.block.expiry < today), ZERO)
    return Balance(unit_of(contract), total, used, expired, total - used - expired, "ledger")


def balance_of(contract: Contract, today: date, *, used: Decimal | None = None,
               ledger: list[PrepayEntry] | None = None) -> Balance | None:
    """Halo's totals when present, else the ledger arithmetic when usage is known."""
    halo = balance_from_halo(contract)
    if halo is not None:
        return halo
    if used is None:
        return None
    return balance_from_ledger(contract, used, today, ledger)


def current_period(contract: Contract, today: date) -> ContractPeriod | None:
    """The period Halo flags as current, else the one containing ``today``."""
    for period in contract.periods:
        if period.current:
            return period
    for period in contract.periods:
        if period.start_date and period.end_date and period.start_date <= today <= period.end_date:
            return period
    return None


# ---- burn rate and run-out ------------------------------------------------------------------


@dataclass(frozen=True)
class Burn:
    window_start: date
    window_end: date
    days: int
    used: Decimal  # prepay hours (or money) used in the window
    per_day: Decimal  # unrounded

    @property
    def per_week(self) -> Decimal:
        return self.per_day * 7


def burn_window(today: date, days: int = BURN_WINDOW_DAYS) -> tuple[date, date]:
    """The last ``days`` days up to and including ``today``."""
    return today - timedelta(days=days - 1), today


def burn_rate(entries: list[TimeEntry], contract_id: int, today: date, *, days: int = BURN_WINDOW_DAYS,
              unit: Unit = "hours") -> Burn:
    """Prepay hours booked on the contract over the last ``days`` days, per day.

    Hours come from each entry's prepay hours (what Halo deducted from the bank). For a bank
    kept as money the entry's charge amount is used instead.
    """
    start, end = burn_window(today, days)
    used = ZERO
    for e in entries:
        if e.contract_id != contract_id or e.when is None or not start <= e.when <= end:
            continue
        used += e.charge_amount if unit == "amount" else e.prepay_hours
    return Burn(start, end, days, used, used / Decimal(days))


def burn_by_contract(entries: list[TimeEntry], contract_ids: set[int], today: date, *,
                     days: int = BURN_WINDOW_DAYS, units: dict[int, Unit] | None = None) -> dict[int, Burn]:
    """``burn_rate`` for many contracts from one list of entries (one pass)."""
    start, end = burn_window(today, days)
    used: dict[int, Decimal] = {cid: ZERO for cid in contract_ids}
    units = units or {}
    for e in entries:
        cid = e.contract_id
        if cid not in used or e.when is None or not start <= e.when <= end:
            continue
        used[cid] += e.charge_amount if units.get(cid) == "amount" else e.prepay_hours
    return {cid: Burn(start, end, days, u, u / Decimal(days)) for cid, u in used.items()}


def run_out_date(remaining: Decimal, per_day: Decimal, today: date) -> date | None:
    """The day the balance reaches zero at the current burn: ``today`` when already out;
    None when nothing is being used. Burn starts tomorrow: 10 hours at 1 h/day run out on
    today + 10 days; 10.5 hours on today + 11."""
    if remaining <= 0:
        return today
    if per_day <= 0:
        return None
    return today + timedelta(days=math.ceil(remaining / per_day))


# ---- alert and quote ------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    hours: Decimal  # to buy to get back to the original block
    rate: Decimal  # the contract's hourly rate (unrounded)
    amount: Decimal  # hours x rate, to the cent
    block: Decimal  # the original block the top-up restores


def replenishment_quote(contract: Contract, remaining_hours: Decimal) -> Quote | None:
    """Hours to bring the balance back to the original block, priced at the contract's rate.

    None when the contract has no block or no value to derive a rate from, or the bank is money.
    A balance already at or above the block needs nothing (zero hours, zero amount).
    """
    block = contract.prepaid_hours
    if contract.prepay_as_amount or not block or block <= 0 or contract.value is None:
        return None
    rate = contract.value / block
    top_up = max(block - remaining_hours, ZERO)
    return Quote(hours=top_up, rate=rate, amount=cents(top_up * rate), block=block)


LOW_SHARE = Decimal("0.25")  # a block is low only once a quarter of it or less is left


def block_of(contract: Contract, purchased: Decimal | None = None) -> Decimal | None:
    """The block the client buys: the contract's original block, else what was purchased."""
    for value in (contract.prepaid_hours, purchased):
        if value is not None and value > 0:
            return value
    return None


def share_left(remaining: Decimal, block: Decimal | None) -> Decimal | None:
    """Remaining as a share of the block (0.85 = 85%); None when the block is unknown."""
    return remaining / block if block else None


def is_low(remaining: Decimal, threshold: Decimal, block: Decimal | None = None) -> bool:
    """The alert rule: used up or overdrawn; or at or below the threshold *and* at or below a
    quarter of the block (8.5 hours left of a 10-hour block is not low). Without a known block
    the threshold alone decides."""
    if remaining <= 0:
        return True
    if remaining > threshold:
        return False
    share = share_left(remaining, block)
    return share is None or share <= LOW_SHARE


def hours_text(value: Decimal) -> str:
    """Hours in words: two decimals, none when whole ("10", "8.50")."""
    text = f"{hours(value):f}"
    return text[:-3] if text.endswith(".00") else text


_fmt = hours_text


def percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"


def alert_message(remaining: Decimal, threshold: Decimal, purchased: Decimal, *, unit: Unit = "hours",
                  run_out: date | None = None, block: Decimal | None = None) -> str | None:
    """A plain sentence for the account manager, or None when no alert is due."""
    if not is_low(remaining, threshold, block):
        return None
    what = "hours" if unit == "hours" else "of the prepaid amount"
    if remaining < 0:
        text = f"The prepaid block is overdrawn by {_fmt(-remaining)} {what}."
    elif remaining == 0:
        text = "The prepaid block is used up."
    elif block:
        size = f"{_fmt(block)}-hour" if unit == "hours" else _fmt(block)
        text = (f"Only {_fmt(remaining)} {what} remain of a {size} block ({percent(remaining / block)}; "
                f"low at {_fmt(threshold)} or less and {percent(LOW_SHARE)} or less of the block).")
    else:
        text = (f"Only {_fmt(remaining)} {what} remain of {_fmt(purchased)} purchased "
                f"(alert threshold {_fmt(threshold)}).")
    if run_out is not None and remaining > 0:
        text += f" At the current rate it runs out on {run_out.isoformat()}."
    return text


# ---- expiry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiringBlock:
    source: str
    expiry: date
    unused_now: Decimal  # left in the block today
    projected_unused: Decimal  # still left on its expiry date at the current burn rate


def expiring_unused(blocks: list[PrepayBlock], used: Decimal, today: date, per_day: Decimal) -> list[ExpiringBlock]:
    """Blocks with an expiry today or later that still hold hours, soonest expiry first.

    Future usage keeps consuming blocks oldest first at ``per_day``: the hours left in the
    blocks before this one are used up first, then this one until its expiry date.
    """
    states = consume(blocks, used)
    out: list[ExpiringBlock] = []
    ahead = ZERO  # hours left in earlier, still usable blocks
    for state in states:
        expiry = state.block.expiry
        if expiry is not None and expiry < today:
            continue  # already expired: its leftover is gone, it no longer absorbs usage
        if expiry is not None and state.left > 0:
            burn_until = max(per_day, ZERO) * (expiry - today).days
            from_this = min(max(burn_until - ahead, ZERO), state.left)
            out.append(ExpiringBlock(state.block.source, expiry, state.left, state.left - from_this))
        ahead += state.left
    out.sort(key=lambda b: b.expiry)
    return out


# ---- urgency --------------------------------------------------------------------------------


def urgency_key(remaining: Decimal, run_out: date | None, today: date) -> tuple[int, int, Decimal]:
    """Sort key, most urgent first: already out, then soonest run-out, then lowest balance."""
    if remaining <= 0:
        return (0, 0, remaining)
    if run_out is not None:
        return (1, (run_out - today).days, remaining)
    return (2, 0, remaining)
