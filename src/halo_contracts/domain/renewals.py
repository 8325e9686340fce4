"""Renewals: rolled references, new terms, uplifts, renewability, performance reviews and the
expiring-contracts dashboard. Pure functions; no I/O.

Reference rolling (``roll_ref``)
  * The years in a ref move forward by as many years as the new term starts after the old
    one: "Acme Corp - Managed Services 2024" (2024-01-01..2024-12-31) -> "... 2025".
    Years inside the old term's span all move ("2024-2026" -> "2027-2029" for a three-year
    term), as do short fiscal forms ("FY2024/25" -> "FY2025/26"). When no year lies in the
    span, the last year in the ref moves.
  * A ref without a year, or a short term that stays in the same calendar year, gets a
    suffix instead: " (renewal 2026)" for terms of a year or more, " (renewal Jul 2026)"
    for shorter ones. An earlier suffix of that form is replaced, never stacked; the rolled
    ref never equals the old one.

New term (``renewal_term``)
  * start = old end + 1 day. Same length unless ``term_months`` is given: a whole-month old
    term (e.g. 1 Jan..31 Dec) gives the same number of months; an irregular one gives the
    same number of days. The new end is start + term - 1 day.

Uplift (``apply_uplift``): value x (1 + uplift/100), Decimal, rounded half-up to the cent.

Recurring lines (``line_not_copied``, ``copied_line_dates``)
  * A line is copied when it is not inactive and is open-ended or ends on/after the old
    contract's end date. A line the MSP set to stop earlier (a decommissioned server) is not
    copied: the renewal must not bill it again for a whole new term.
  * A line bounded to the old term (ending on its end date) is bounded to the new term; a
    line ending later keeps its own end date (capped at the new end). A line starting after
    the old term keeps its own start date.

Value (``renewal_value``)
  * When the old value equals what the copied lines bill per contract period
    (``period_total``) and lines and value get the same uplift, the new value is what the
    uplifted lines bill: value and lines stay equal to the cent (rounding the total instead
    would drift from the per-unit prices: 2336.00 against lines of 2336.13).
  * Otherwise the value is old value x uplift, with a warning showing both figures when the
    copied lines bill something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from dateutil.relativedelta import relativedelta

from halo_contracts.domain.guardrails import pending_successor
from halo_contracts.domain.models import Contract, Invoice, Ticket, TimeEntry
from halo_contracts.domain.money import ZERO, add_months, cents

UPLIFT_MIN = Decimal(-50)
UPLIFT_MAX = Decimal(100)
TERM_MIN = 1
TERM_MAX = 60
WARN_IF_ENDS_AFTER_DAYS = 365

# ---- reference rolling ----------------------------------------------------------------------

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:([/-])(\d{2}))?(?!\d)")  # 2024, or fiscal 2024/25
_SUFFIX = re.compile(r"\s*\(renewal(?: [A-Z][a-z]{2})? (?:19|20)\d{2}\)\s*$")


def _shift_years(ref: str, delta: int, span: tuple[int, int] | None) -> str | None:
    """Move year tokens by ``delta``; None when the ref holds no year to move.

    Years inside ``span`` (the old term's calendar years) all move; when none is inside, the
    last year moves. A short fiscal pair ("2024/25", "2024-25") moves both halves.
    """
    matches = list(_YEAR.finditer(ref))
    if not matches:
        return None
    in_span = [m for m in matches if span and span[0] <= int(m.group(1)) <= span[1]]
    chosen = in_span or [matches[-1]]
    out = ref
    for m in sorted(chosen, key=lambda m: m.start(), reverse=True):
        text = str(int(m.group(1)) + delta)
        if m.group(2):
            text += f"{m.group(2)}{(int(m.group(3)) + delta) % 100:02d}"
        out = out[:m.start()] + text + out[m.end():]
    return out


def roll_ref(ref: str, old_start: date | None, old_end: date | None, new_start: date, new_end: date) -> str:
    """The renewal's reference (see the module docstring for the rules)."""
    base = ref.strip()
    anchor = old_start or old_end
    delta = new_start.year - anchor.year if anchor else 0
    span = (old_start.year if old_start else anchor.year, old_end.year if old_end else anchor.year) if anchor else None
    if delta > 0:
        had_suffix = bool(_SUFFIX.search(base))
        shifted = _shift_years(base, delta, span)
        if shifted is not None and not had_suffix:
            return shifted
        if shifted is not None and had_suffix:
            # "X (renewal 2025)" -> "X (renewal 2026)": rebuild the suffix from the new dates
            base = _SUFFIX.sub("", base)
    else:
        base = _SUFFIX.sub("", base)
    term_days = (new_end - new_start).days + 1
    label = f"{new_start.year}" if term_days >= 365 else new_start.strftime("%b %Y")
    rolled = f"{base} (renewal {label})"
    if rolled.casefold() == ref.strip().casefold():
        # the old ref already carried this exact suffix: name the day instead, never the same ref
        rolled = f"{base} (renewal {new_start.day} {new_start.strftime('%b %Y')})"
    return rolled


# ---- new term -------------------------------------------------------------------------------


def whole_months(start: date, end: date) -> int | None:
    """Months in [start, end] when it is a whole number of months, else None."""
    rd = relativedelta(end + timedelta(days=1), start)
    if rd.days != 0:
        return None
    months = rd.years * 12 + rd.months
    return months if months > 0 else None


class RenewalError(ValueError):
    """A contract cannot be renewed as asked; the message says why and what to do."""


def renewal_term(old_start: date | None, old_end: date | None, term_months: int | None = None
                 ) -> tuple[date, date, int | None]:
    """(new start, new end, months or None for a same-length-in-days term)."""
    if old_end is None:
        raise RenewalError("it has no end date; give it an end date first, or renew it by hand")
    start = old_end + timedelta(days=1)
    if term_months is not None:
        return start, add_months(start, term_months) - timedelta(days=1), term_months
    if old_start is None:
        raise RenewalError("its start date is unknown, so its term cannot be repeated; pass term_months")
    if old_start > old_end:
        raise RenewalError(f"its start date {old_start} is after its end date {old_end}; correct the dates first")
    months = whole_months(old_start, old_end)
    if months is not None:
        return start, add_months(start, months) - timedelta(days=1), months
    return start, start + (old_end - old_start), None


# ---- uplift -------------------------------------------------------------------------------


def apply_uplift(amount: Decimal, uplift_percent: Decimal) -> Decimal:
    """amount x (1 + uplift/100), half-up to the cent."""
    return (amount * (Decimal(100) + uplift_percent) / Decimal(100)).quantize(Decimal("0.01"),
                                                                               rounding=ROUND_HALF_UP)


def period_total(lines: list[tuple[Decimal, Decimal, int | None]], period_months: int | None) -> Decimal | None:
    """What lines bill per contract period, half-up to the cent.

    ``lines``: (quantity, unit price, the line's own months per period or None for the
    contract's). Each line's net is quantity x unit price to the cent (as an invoice line); a
    line on another frequency is converted to the contract's period. None when a conversion
    is needed and the contract's months are unknown."""
    total = ZERO
    for quantity, unit_price, months in lines:
        net = cents(quantity * unit_price)
        if months is not None and months != period_months:
            if not period_months or months <= 0:
                return None
            net = net * period_months / months
        total += net
    return cents(total)


@dataclass
class RenewalValue:
    value: Decimal | None
    from_lines: bool  # True: the value is what the uplifted lines bill
    warning: str | None  # value and lines disagree (both figures in it)


def renewal_value(old_value: Decimal | None, uplift: Decimal, item_uplift: Decimal,
                  lines_before: Decimal | None, lines_after: Decimal | None) -> RenewalValue:
    """The renewal's value (rules in the module docstring). ``lines_before``/``lines_after``:
    ``period_total`` of the copied lines at their old and new prices; None when no line is
    copied (or the total is unknown)."""
    if old_value is None:
        return RenewalValue(None, False, None)
    raised = apply_uplift(old_value, uplift)
    if lines_before is None or lines_after is None:
        return RenewalValue(raised, False, None)
    if cents(old_value) == lines_before and uplift == item_uplift:
        return RenewalValue(lines_after, True, None)
    if raised == lines_after:
        return RenewalValue(raised, False, None)
    return RenewalValue(raised, False, (
        f"its new value {raised} is the old value {cents(old_value)} raised by {uplift:f}%, but the copied "
        f"recurring lines bill {lines_after} per period (before: {lines_before}); check which one is right"))


def line_not_copied(inactive: bool, line_start: date | None, line_end: date | None, old_end: date,
                    new_end: date) -> str | None:
    """Why a recurring line is not copied to the renewal; None when it is copied."""
    if inactive:
        return "inactive in Halo"
    if line_end is not None and line_end < old_end:
        return f"it ends {line_end.isoformat()}, before the old contract ends ({old_end.isoformat()})"
    if line_start is not None and line_start > new_end:
        return f"it starts {line_start.isoformat()}, after the renewal ends ({new_end.isoformat()})"
    return None


def copied_line_dates(line_start: date | None, line_end: date | None, old_end: date, new_start: date,
                      new_end: date) -> tuple[date, date | None]:
    """(start, end) of a copied line on the renewal (rules in the module docstring)."""
    start = line_start if line_start is not None and line_start > new_start else new_start
    if line_end is None:
        return start, None
    return start, new_end if line_end <= old_end else min(line_end, new_end)


def check_uplift(value: Decimal) -> str | None:
    """None when the uplift is allowed, else the rule broken."""
    if not UPLIFT_MIN <= value <= UPLIFT_MAX:
        return f"an uplift must be between {UPLIFT_MIN} and {UPLIFT_MAX} percent (got {value})"
    return None


def check_term(months: int) -> str | None:
    if not TERM_MIN <= months <= TERM_MAX:
        return f"a term must be between {TERM_MIN} and {TERM_MAX} months (got {months})"
    return None


# ---- renewability -------------------------------------------------------------------------


@dataclass
class Renewability:
    errors: list[str] = field(default_factory=list)  # why it cannot be renewed
    warnings: list[str] = field(default_factory=list)  # renewable, but worth a look

    @property
    def ok(self) -> bool:
        return not self.errors


def check_renewable(contract: Contract, today: date, *, term_months: int | None = None) -> Renewability:
    """Rules: not Cancelled; an end date (or nothing to repeat); warn when it does not end
    within a year, or when its status is not Active."""
    r = Renewability()
    status = (contract.status or "").strip()
    if status.casefold() == "cancelled":
        r.errors.append("it is Cancelled; a cancelled contract is not renewed (create a new contract instead)")
    try:
        renewal_term(contract.start_date, contract.end_date, term_months)
    except RenewalError as exc:
        r.errors.append(str(exc))
    if contract.end_date is not None and (contract.end_date - today).days > WARN_IF_ENDS_AFTER_DAYS:
        r.warnings.append(f"it does not end within a year (ends {contract.end_date.isoformat()}); "
                          "check that renewing this early is intended")
    if status and status.casefold() not in ("active", "cancelled"):
        r.warnings.append(f"its status is {status}, not Active")
    return r


# ---- expiring dashboard ---------------------------------------------------------------------

BUCKETS: tuple[tuple[str, int, int], ...] = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90))


def buckets_for(within_days: int) -> list[tuple[str, int, int]]:
    """The dashboard buckets a window of ``within_days`` reaches, the last one cut at the window's
    end: 60 days -> 0-30, 31-60; 45 days -> 0-30, 31-45; 365 days -> ... 61-90, 91-365."""
    out: list[tuple[str, int, int]] = []
    for _, low, high in (*BUCKETS, ("", 91, max(within_days, 91))):
        if low > within_days:
            break
        top = min(high, within_days)
        out.append((f"{low}-{top}", low, top))
    return out


def bucket_of(days_remaining: int, within_days: int) -> str:
    """Dashboard bucket of a contract ending in ``days_remaining`` days (0 = today) in a window of
    ``within_days``: "ended" before today, "later" past the window."""
    for name, low, high in buckets_for(within_days):
        if low <= days_remaining <= high:
            return name
    return "ended" if days_remaining < 0 else "later"


def renewal_among(old: Contract, contracts: list[Contract]) -> int | None:
    """The id of the contract renewing ``old`` (Halo says it is renewed, list rows do not say by
    which): the one naming it as previous; else the one unique contract of the same client
    carrying its rolled reference; else the one of the same client and type starting the day
    after it ends; else its Pending successor (``guardrails.pending_successor``). None when none
    of these names one contract."""
    linked = [c.id for c in contracts if c.previous_contract_id == old.id and c.id != old.id]
    if linked:
        return min(linked)
    if old.end_date is None:
        return None
    mine = [c for c in contracts if c.id != old.id and c.client_id == old.client_id and c.start_date is not None
            and c.start_date > old.end_date - timedelta(days=1)]
    try:
        new_start, new_end, _ = renewal_term(old.start_date, old.end_date)
        rolled = roll_ref(old.ref, old.start_date, old.end_date, new_start, new_end).casefold()
    except RenewalError:
        rolled = None
    for match in ([c for c in mine if rolled and c.ref.strip().casefold() == rolled],
                  [c for c in mine if c.start_date == old.end_date + timedelta(days=1) and c.type == old.type]):
        if len(match) == 1:
            return match[0].id
    pending = pending_successor(old, contracts)  # the rule generate_renewals skips a contract by
    return pending.id if pending is not None else None


def days_remaining(end: date, today: date) -> int:
    return (end - today).days


def is_expiring(contract: Contract, today: date, within_days: int) -> bool:
    """Active and ending between today and today + within_days (inclusive)."""
    if (contract.status or "").casefold() != "active" or contract.end_date is None:
        return False
    return 0 <= days_remaining(contract.end_date, today) <= within_days


# ---- performance review -------------------------------------------------------------------

Recommendation = Literal["renew as is", "renew with uplift", "review scope"]

SLA_REVIEW_BELOW = Decimal(80)  # percent: service is failing its SLA
SLA_WATCH_BELOW = Decimal(95)  # percent: worth mentioning
MAX_NORMAL_UPLIFT = Decimal(25)  # percent: beyond this a price rise alone will not fix it


@dataclass
class Performance:
    period_start: date
    period_end: date
    tickets: int
    tickets_sla_tracked: int
    tickets_sla_met: int
    sla_compliance: Decimal | None  # percent, unrounded; None when no ticket tracked an SLA
    hours: Decimal
    revenue: Decimal
    cost: Decimal
    margin: Decimal | None  # percent of revenue, unrounded; None when nothing was billed
    target_margin: Decimal
    recommendation: Recommendation
    suggested_uplift: Decimal | None  # percent (one decimal, rounded up) to reach the target
    reasons: list[str]


def sla_compliance(tickets: list[Ticket]) -> tuple[int, int, Decimal | None]:
    """(tracked, met, percent met) over tickets whose SLA was tracked."""
    tracked = [t for t in tickets if t.sla_met is not None]
    met = sum(1 for t in tracked if t.sla_met)
    if not tracked:
        return 0, 0, None
    return len(tracked), met, Decimal(met) * 100 / Decimal(len(tracked))


def revenue_billed(invoices: list[Invoice], contract_id: int, start: date, end: date) -> Decimal:
    """Net of the contract's invoice lines dated in [start, end]; credit notes subtract, voided
    invoices count nothing. A line without its own contract takes its invoice's."""
    total = ZERO
    for inv in invoices:
        if inv.voided or inv.invoice_date is None or not start <= inv.invoice_date <= end:
            continue
        for line in inv.lines:
            owner = line.contract_id if line.contract_id is not None else inv.contract_id
            if owner != contract_id:
                continue
            amount = line.total
            if inv.is_credit and amount > 0:
                amount = -amount
            total += amount
    return total


def hours_on_contract(entries: list[TimeEntry], contract_id: int, start: date, end: date) -> Decimal:
    return sum((e.hours for e in entries
                if e.contract_id == contract_id and e.when is not None and start <= e.when <= end), ZERO)


def margin_percent(revenue: Decimal, cost: Decimal) -> Decimal | None:
    if revenue <= 0:
        return None
    return (revenue - cost) * 100 / revenue


def uplift_to_target(revenue: Decimal, cost: Decimal, target_margin: Decimal) -> Decimal | None:
    """Percent price rise (rounded up to one decimal) that brings the margin to the target."""
    if revenue <= 0 or target_margin >= 100:
        return None
    needed = cost * 100 / (Decimal(100) - target_margin)
    if needed <= revenue:
        return ZERO
    return ((needed / revenue - 1) * 100).quantize(Decimal("0.1"), rounding="ROUND_CEILING")


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def review_performance(*, contract_id: int, period_start: date, period_end: date, tickets: list[Ticket],
                       entries: list[TimeEntry], invoices: list[Invoice], cost_rate: Decimal,
                       target_margin: Decimal) -> Performance:
    """The numbers and the recommendation for one contract over one period.

    Rules, first match wins:
      * nothing billed but time spent -> review scope (work is going unpaid);
      * SLA compliance below 80% -> review scope (the service is not meeting its promise);
      * margin below target and the uplift needed above 25% -> review scope;
      * margin below target -> renew with uplift (the uplift that reaches the target);
      * otherwise -> renew as is.
    """
    own = [t for t in tickets if t.contract_id in (None, contract_id)]
    tracked, met, sla = sla_compliance(own)
    hrs = hours_on_contract(entries, contract_id, period_start, period_end)
    revenue = revenue_billed(invoices, contract_id, period_start, period_end)
    cost = hrs * cost_rate
    margin = margin_percent(revenue, cost)
    reasons: list[str] = []
    uplift: Decimal | None = None
    rec: Recommendation

    if sla is not None:
        reasons.append(f"SLA met on {met} of {tracked} tracked tickets ({_pct(sla)})")
    else:
        reasons.append("no ticket in the period tracked an SLA")
    if margin is None:
        if hrs > 0:
            rec = "review scope"
            reasons.insert(0, f"{hours_text(hrs)} hours were worked but nothing was billed in the period")
        else:
            rec = "renew as is"
            reasons.insert(0, "no time and no billing in the period: nothing suggests a change")
    else:
        reasons.insert(0, f"margin {_pct(margin)} against a target of {_pct(target_margin)} "
                          f"(revenue {cents(revenue)}, cost {cents(cost)} for {hours_text(hrs)} hours; the cost is "
                          "time at the cost rate only, not licences or products resold)")
        if hrs == 0 and not own:
            reasons.insert(1, "no tickets and no time in the period: the margin reflects billing only; review a "
                              "longer period before deciding")
        if margin < target_margin:
            uplift = uplift_to_target(revenue, cost, target_margin)
        if sla is not None and sla < SLA_REVIEW_BELOW:
            rec = "review scope"
            reasons.append(f"SLA compliance is below {_pct(SLA_REVIEW_BELOW)}: agree what the service covers "
                           "before renewing")
        elif uplift is not None and uplift > MAX_NORMAL_UPLIFT:
            rec = "review scope"
            reasons.append(f"reaching the target needs a {_pct(uplift)} rise, more than a normal uplift "
                           f"({_pct(MAX_NORMAL_UPLIFT)}): the contract's scope or hours need a rethink")
        elif uplift is not None and uplift > 0:
            rec = "renew with uplift"
            reasons.append(f"an uplift of {_pct(uplift)} brings the margin to the target")
        else:
            rec = "renew as is"
            reasons.append("the margin meets the target")
    if rec != "review scope" and sla is not None and sla < SLA_WATCH_BELOW:
        reasons.append(f"SLA compliance is below {_pct(SLA_WATCH_BELOW)}; worth raising at renewal")
    return Performance(period_start, period_end, len(own), tracked, met, sla, hrs, revenue, cost, margin,
                       target_margin, rec, uplift, reasons)


def hours_text(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
    return text[:-3] if text.endswith(".00") else text


def current_term(contract: Contract, today: date) -> tuple[date, date]:
    """The period a review covers by default: the contract's term (start..end), capped at today
    when the term is still running; a year back from today when the dates are missing."""
    start = contract.start_date or (today - timedelta(days=364))
    end = contract.end_date or today
    return start, min(end, today) if end >= start else end
