"""Renewals: the expiring-contracts dashboard, a contract's performance review, and renewal
generation as one Plan.

Reads: the expiring report lists the contract book twice (everything, and Halo's
``excluderenewed`` list, whose difference is the set of contracts some later contract renews)
whatever the number of contracts. ``generate_renewals`` chooses by cost (``_read_contracts``,
``_read_recurring_lines``): one or two contracts, or few against the book's pages, are read
directly (detail, their clients' two lists, their own recurring invoices), which costs the same
whatever the book's size; otherwise the book is listed once, the ``excluderenewed`` list is
read per client when the contracts have fewer clients than the book has pages (whole
otherwise), prepaid contracts get a detail read (their block is not on the list rows), and the
recurring invoices are listed whole unless that list has more pages than there are contracts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from halo_contracts.domain import renewal_drafts as rd
from halo_contracts.domain import renewals as rn
from halo_contracts.domain.drafts import ContractFields
from halo_contracts.domain.models import Contract, RecurringInvoice, RecurringItem
from halo_contracts.domain.money import annualised, cents
from halo_contracts.halo.client import ContractQuery, HaloClient, PageCallback
from halo_contracts.halo.errors import HaloNotFound
from halo_contracts.plans import consent
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_line_steps, add_step, route_lines
from halo_contracts.tools.common import (
    ClientId,
    ContractId,
    Cursor,
    Detail,
    DryRun,
    Hours,
    IsoDate,
    Money,
    Number,
    PlanView,
    Result,
    app,
    confirmation_note,
    cursor_offset,
    fingerprint,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
    paged,
    plural,
    submit_plan,
    today_of,
    write_said,
)

MAX_RENEWALS = 200
T = TypeVar("T")


def _same(a: str | None, b: str) -> bool:
    return (a or "").strip().casefold() == b.casefold()


def _pct(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(Decimal("0.1"), rounding="ROUND_HALF_UP"))


# ==== find_expiring_contracts =====================================================================


class ExpiringContract(Result):
    contract_id: int
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    type: str | None
    end_date: date
    days_remaining: int
    bucket: str
    value: Money | None = Field(description="charge per billing period")
    billing_frequency: str | None
    annualised_value: Money | None
    renewed: bool = Field(description="Halo counts it as renewed by a later contract")
    renewal_id: int | None = Field(description="that later contract: the one linking it, else the client's "
                                               "contract with its rolled ref or starting the day after it ends")


class ExpiringBucket(Result):
    bucket: str
    count: int
    renewed: int
    annualised_value: Money


class ExpiringResult(Result):
    today: date
    within_days: int
    total: int
    renewed: int
    buckets: list[ExpiringBucket] = Field(description="0-30, 31-60, 61-90 days, then the rest of the window; "
                                                      "only those the window reaches")
    contracts: list[ExpiringContract] = Field(description="this page, soonest first")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")
    ended_still_active: int = Field(description="Active contracts whose end date has passed: renew or expire them")

    def said(self) -> str:
        value = sum((b.annualised_value for b in self.buckets), Decimal(0))
        text = (f"{plural(self.total, 'contract')} end within {self.within_days} days, {money(value)} a year"
                + (f", {self.renewed} of them already renewed" if self.renewed else "") + ": "
                + ", ".join(f"{b.bucket} days {b.count}" + (f" ({b.renewed} renewed)" if b.renewed else "")
                            + f" {money(b.annualised_value)}" for b in self.buckets) + ".")
        if self.next_cursor:
            text += f" This page lists {len(self.contracts)}; cursor=next_cursor for more."
        if self.contracts:
            text += " Soonest: " + listed([f"{c.contract_id} (client {c.client_id}) ends {c.end_date} "
                                           f"({money(c.annualised_value)}/yr{_renewed_by(c)})"
                                           for c in self.contracts], 5) + "."
        if self.ended_still_active:
            text += f" {self.ended_still_active} Active contracts have already ended: renew or expire them."
        return (text + " Next: review_contract_performance, then generate_renewals(dry_run=true)"
                + (" for those not renewed." if self.renewed else "."))


def _renewed_by(c: ExpiringContract) -> str:
    if not c.renewed:
        return ""
    return f", renewed by {c.renewal_id}" if c.renewal_id else ", renewed"


def _renewals_of(every: list[Contract], not_renewed: list[Contract]) -> dict[int, int | None]:
    """Contract id -> the contract renewing it (None when not found among the rows). Renewed: left
    out of Halo's excluderenewed list, or named as previous by a row. Both lists are already read."""
    open_ids = {c.id for c in not_renewed}
    renewed = {c.id for c in every if c.id not in open_ids}
    renewed |= {c.previous_contract_id for c in every if c.previous_contract_id}
    by_id = {c.id: c for c in every}
    return {cid: rn.renewal_among(by_id[cid], every) for cid in renewed if cid in by_id}


@halo_tool(group="renewals", kind="read", title="Find expiring contracts")
async def find_expiring_contracts(
    ctx: Context,
    within_days: Annotated[int, Field(strict=True, ge=1, le=730,
                                      description="Days from today")] = 90,
    client_id: ClientId | None = None,
    limit: Annotated[int, Field(strict=True, ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> ExpiringResult:
    """Every Active contract ending within the window, soonest first; renewed ones flagged."""
    ac = app(ctx)
    today = today_of(ctx)
    codes = ac.codes
    page_key = fingerprint({"tool": "find_expiring_contracts", "days": within_days, "client": client_id,
                            "limit": limit, "today": today})
    cursor_offset(cursor, page_key, "find_expiring_contracts")  # a bad cursor fails before any read
    async with halo_errors():
        every = await ac.halo.list_contracts(ContractQuery(client_id=client_id))
        not_renewed = await ac.halo.list_contracts(ContractQuery(client_id=client_id, exclude_renewed=True))
    renewals = _renewals_of(every, not_renewed)
    rows: list[ExpiringContract] = []
    ended = 0
    for c in every:
        if client_id is not None and c.client_id != client_id:
            continue
        if _same(c.status, "Active") and c.end_date is not None and c.end_date < today:
            ended += 1
        if not rn.is_expiring(c, today, within_days):
            continue
        if c.id not in renewals:
            # a tenant that ignores excluderenewed (list rows carry no previous-contract link):
            # the renewal generate_renewals would see (rolled ref, or the next term's contract)
            successor = rn.renewal_among(c, every)
            if successor is not None:
                renewals[c.id] = successor
        months = codes.months_of(c.billing_frequency)
        days = rn.days_remaining(c.end_date, today)
        rows.append(ExpiringContract(
            contract_id=c.id, client_id=c.client_id, client_name=c.client_name, contract_ref=c.ref, type=c.type,
            end_date=c.end_date, days_remaining=days, bucket=rn.bucket_of(days, within_days), value=c.value,
            billing_frequency=c.billing_frequency,
            annualised_value=annualised(c.value, months) if c.value is not None and months else None,
            renewed=c.id in renewals, renewal_id=renewals.get(c.id)))
    rows.sort(key=lambda r: (r.end_date, r.contract_id))
    buckets = [ExpiringBucket(bucket=name, count=sum(1 for r in rows if r.bucket == name),
                              renewed=sum(1 for r in rows if r.bucket == name and r.renewed),
                              annualised_value=sum((r.annualised_value or Decimal(0) for r in rows
                                                    if r.bucket == name), Decimal(0)))
               for name, _, _ in rn.buckets_for(within_days)]
    page, next_cursor = paged(rows, cursor, limit, page_key, "find_expiring_contracts")
    return ExpiringResult(today=today, within_days=within_days, total=len(rows),
                          renewed=sum(1 for r in rows if r.renewed), buckets=buckets, contracts=page,
                          next_cursor=next_cursor, ended_still_active=ended)


# ==== review_contract_performance =================================================================

PER_TICKET_READS_UP_TO = 25  # more tickets than this: one bulk time-entry read for the period


class PerformanceReview(Result):
    contract_id: int
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    period_start: date
    period_end: date
    tickets: int
    tickets_sla_tracked: int
    tickets_sla_met: int
    sla_compliance_percent: float | None = Field(description="share of tracked tickets that met their SLA")
    hours: Hours = Field(description="time booked on the contract in the period")
    revenue: Money = Field(description="billed on invoice lines of this contract in the period (credits subtract)")
    cost_rate: Money
    cost: Money = Field(description="hours x cost_rate")
    margin_percent: float | None = Field(description="(revenue - cost) / revenue; None when nothing was billed")
    target_margin_percent: float
    recommendation: Literal["renew as is", "renew with uplift", "review scope"]
    suggested_uplift_percent: float | None = Field(description="uplift that brings the margin to the target")
    reasons: list[str]

    def said(self) -> str:
        margin = "no billing" if self.margin_percent is None else f"margin {self.margin_percent}%"
        sla = ("no SLA-tracked tickets" if self.sla_compliance_percent is None
               else f"SLA met {self.sla_compliance_percent}%")
        text = (f"Contract {self.contract_id}, {self.period_start} to {self.period_end}: "
                f"{self.tickets} tickets, {sla}, {self.hours} hours; revenue {money(self.revenue)}, cost "
                f"{money(self.cost)}, {margin} (target {self.target_margin_percent}%). "
                f"Recommendation: {self.recommendation}")
        if self.suggested_uplift_percent is not None:
            text += f" ({self.suggested_uplift_percent}% uplift)"
        return text + (". " + " ".join(self.reasons[:3]) if self.reasons else ".")


@halo_tool(group="renewals", kind="read", title="Review contract performance")
async def review_contract_performance(
    contract_id: ContractId,
    ctx: Context,
    period_start: IsoDate | None = None,
    period_end: IsoDate | None = None,
    target_margin: Annotated[Number | None, Field(description="Percent (default: the configured target)")] = None,
) -> PerformanceReview:
    """A contract's SLA, hours, revenue, cost and margin over a period, with a renewal advice."""
    ac = app(ctx)
    today = today_of(ctx)
    target = ac.settings.target_margin if target_margin is None else target_margin
    if not Decimal(-100) <= target < Decimal(100):
        raise invalid("target_margin", f"must be a percentage from -100 up to (not including) 100 (got {target})",
                      "give a margin such as 35")
    if period_start and period_end and period_start > period_end:
        raise invalid("period_start", f"{period_start} is after period_end {period_end}",
                      "give a period_start on or before period_end")
    halo = ac.halo
    async with halo_errors():
        contract = await halo.get_contract(contract_id, details=False)
        default_start, default_end = rn.current_term(contract, today)
        start = period_start or default_start
        end = period_end or (default_end if default_end >= start else today)
        if start > end:
            raise invalid("period_start", f"the period would start {start} after it ends {end}",
                          "give period_start and period_end explicitly")
        tickets = await halo.list_tickets(contract_id=contract_id, start=start, end=end)
        tickets = [t for t in tickets if t.contract_id in (None, contract_id)]
        if len(tickets) <= PER_TICKET_READS_UP_TO:
            entries = []
            for t in tickets:
                entries.extend(await halo.list_time_entries(start=start, end=end, ticket_id=t.id))
        else:
            entries = await halo.list_time_entries(start=start, end=end)
        # by client, not contract: an invoice may mix contracts; lines say which contract they bill
        if contract.client_id is not None:
            invoices = await halo.list_invoices(client_id=contract.client_id, start=start, end=end)
        else:
            invoices = await halo.list_invoices(contract_id=contract_id, start=start, end=end)
    cost_rate = ac.settings.cost_rate
    perf = rn.review_performance(contract_id=contract_id, period_start=start, period_end=end, tickets=tickets,
                                 entries=entries, invoices=invoices, cost_rate=cost_rate, target_margin=target)
    return PerformanceReview(
        contract_id=contract.id, client_id=contract.client_id, client_name=contract.client_name,
        contract_ref=contract.ref, period_start=start, period_end=end, tickets=perf.tickets,
        tickets_sla_tracked=perf.tickets_sla_tracked, tickets_sla_met=perf.tickets_sla_met,
        sla_compliance_percent=_pct(perf.sla_compliance), hours=perf.hours, revenue=perf.revenue,
        cost_rate=cost_rate, cost=perf.cost, margin_percent=_pct(perf.margin),
        target_margin_percent=float(target), recommendation=perf.recommendation,
        suggested_uplift_percent=_pct(perf.suggested_uplift), reasons=perf.reasons)


# ==== generate_renewals ===========================================================================

ExpireOld = rd.ExpireOld


class RenewalLine(Result):
    description: str = Field(description="the line's description (Halo's own text)")
    quantity: Hours
    billing_frequency: str | None = Field(description="the line's own frequency; None = the contract's")
    unit_price_before: Money
    unit_price_after: Money
    end_date: date | None = Field(default=None, description="the copied line's end date (None: open-ended)")


class LineNotCopied(Result):
    line_id: int | None = Field(description="the old contract's recurring line")
    description: str = Field(description="the line's description (Halo's own text)")
    end_date: date | None
    reason: str = Field(description="why it is not copied (e.g. it ends before the old contract does)")


class RenewalRow(Result):
    contract_id: int = Field(description="the contract being renewed")
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    old_ref: str = Field(description="Halo's reference of the old contract (its own text)")
    new_ref: str
    old_start: date | None
    old_end: date
    new_start: date
    new_end: date
    term_months: int | None = Field(description="None: the old term was not whole months, same number of days")
    value_before: Money | None
    value_after: Money | None
    value_from_lines: bool = Field(default=False, description=(
        "true: the old value was what its copied lines billed per period, so the new value is what the "
        "uplifted lines bill (value and lines stay equal to the cent)"))
    uplift_percent: float
    item_uplift_percent: float
    lines_copied: int = Field(description="recurring lines copied to the renewal")
    lines_left_out: int = Field(description="the old contract's lines not copied (detail='full' says why)")
    lines: list[RenewalLine] | None = Field(default=None, exclude_if=lambda v: v is None,
                                            description="detail='full': the lines copied, with their prices")
    lines_not_copied: list[LineNotCopied] | None = Field(default=None, exclude_if=lambda v: v is None, description=(
        "detail='full': the old contract's recurring lines left out, with the reason (inactive, or ending "
        "before the old contract ends)"))
    old_contract: str = Field(description="what happens to the old contract")
    new_contract_id: int | None = Field(default=None, description="after applying")
    warnings: list[str] = Field(default_factory=list)


class SkippedRenewal(Result):
    contract_id: int
    reason: str


class FollowUp(Result):
    contract_id: int
    due: date
    action: str


RENEWAL_ROWS = 20  # rows a result lists in full; the plan (get_plan) has every step


class RenewalTotals(Result):
    contracts: int = Field(description="renewals planned")
    lines: int = Field(description="recurring lines copied")
    skipped: int
    value_before: Money
    value_after: Money


class GenerateRenewalsResult(Result):
    plan_id: str | None = Field(description="apply_plan(plan_id) applies or resumes it; None when there was "
                                            "nothing to do")
    dry_run: bool
    status: str = Field(description="planned (dry run), applied, partial or failed; 'nothing to do'")
    message: str
    steps: int
    totals: RenewalTotals
    renewals: list[RenewalRow] = Field(description=f"the renewals in brief, at most {RENEWAL_ROWS} (the most value "
                                                   "first when there are more; the plan has every one); "
                                                   "detail='full': every renewal with its lines, in order")
    plan: PlanView | None = Field(description="the plan's first steps, one line each (get_plan pages the rest)")
    skipped: list[SkippedRenewal]
    follow_ups: list[FollowUp] = Field(description="things the plan deliberately leaves for later")
    warnings: list[str]

    def said(self) -> str:
        t = self.totals
        head = (f"{self.message} {plural(t.contracts, 'renewal')} ({plural(t.lines, 'line')} copied): value "
                f"{money(t.value_before)} -> {money(t.value_after)} per period")
        head += f"; {t.skipped} skipped." if t.skipped else "."
        top = sorted(self.renewals, key=lambda r: -(r.value_after or 0))[:5]
        if top:
            head += " Largest: " + listed([f"{r.contract_id} (client {r.client_id}) {money(r.value_before)} -> "
                                           f"{money(r.value_after)}" for r in top]) + "."
        if self.skipped:
            head += " Skipped: " + listed([f"{s.contract_id} ({_first_clause(s.reason)})"
                                           for s in self.skipped], 3) + "."
        if self.follow_ups:
            head += f" {plural(len(self.follow_ups), 'follow-up')} for later (follow_ups)."
        return write_said(head, self.plan, self.warnings)


def _first_clause(reason: str) -> str:
    """A skip reason up to its first clause's end (whole words; the row has all of it)."""
    cut = min((i for i in (reason.find("; "), reason.find(". ")) if i > 0), default=len(reason))
    return reason[:cut]


@dataclass
class _Reads:
    targets: dict[int, Contract]
    missing: list[int]
    renewed: set[int]
    refs: rd.Refs
    book: rd.Book  # the contracts' clients' contracts


class _ListTooLong(Exception):
    """Raised from a list read's first page: the whole list costs more than the alternative."""


async def _list_unless_longer(read: Callable[[PageCallback], Awaitable[list[T]]], limit: int
                              ) -> tuple[list[T] | None, int | None]:
    """(rows, pages) of a whole-list read, or (None, pages) when its first page shows it has more
    than ``limit`` pages: then that one page is all it cost. ``pages`` is None when Halo gave no
    row count."""
    pages: int | None = None

    async def on_page(done: int, total: int | None) -> None:
        nonlocal pages
        pages = total if total is not None else max(done, pages or 0)
        if done == 1 and total is not None and total > limit:
            raise _ListTooLong

    try:
        rows = await read(on_page)
    except _ListTooLong:
        return None, pages
    return rows, pages


async def _read_contracts(halo: HaloClient, wanted: list[int]) -> _Reads:
    """The contracts to renew, which of them are renewed already, and their clients' refs.

    Targeted (``_read_targeted``: a detail read per contract, two lists per client) costs about
    three requests per contract; the book (``_read_book``) costs its pages plus one request per
    client (or a second whole list). The book's first page says how many pages it has: more
    than twice the number of contracts, and the targeted reads are taken instead."""
    if rd.read_targeted(len(wanted)):
        return await _read_targeted(halo, wanted)
    every, pages = await _list_unless_longer(
        lambda on_page: halo.list_contracts(ContractQuery(include_inactive=True), on_page=on_page),
        limit=rd.book_pages_limit(len(wanted)))
    if every is None:
        return await _read_targeted(halo, wanted)
    return await _read_book(halo, wanted, every, pages or 1)


async def _read_book(halo: HaloClient, wanted: list[int], every: list[Contract], pages: int) -> _Reads:
    """From the whole book (read once): Halo's ``excluderenewed`` list narrowed to each client of
    the contracts when they have fewer clients than the book has pages, else the whole of it;
    a detail read only for prepaid targets (their block is not on the list rows)."""
    by_id = {c.id: c for c in every}
    found = [by_id[i] for i in wanted if i in by_id]
    clients = sorted({c.client_id for c in found if c.client_id is not None})
    if rd.renewed_per_client(len(clients), pages):
        open_ids: set[int] = set()
        for client_id in clients:
            open_ids |= {c.id for c in await halo.list_contracts(
                ContractQuery(client_id=client_id, include_inactive=True, exclude_renewed=True))}
        renewed = {c.id for c in found if c.client_id is not None and c.id not in open_ids}
    else:
        open_ = await halo.list_contracts(ContractQuery(include_inactive=True, exclude_renewed=True))
        renewed = {c.id for c in found} - {c.id for c in open_}
    targets: dict[int, Contract] = {}
    for c in found:
        if rd.needs_detail(c) and c.id not in renewed:
            c = await halo.get_contract(c.id, details=True)
        targets[c.id] = c
    refs: rd.Refs = defaultdict(dict)
    book: rd.Book = defaultdict(list)
    for c in every:
        refs[c.client_id][c.ref.strip().casefold()] = c.id
        book[c.client_id].append(c)
    return _Reads(targets, [i for i in wanted if i not in by_id], renewed, refs, book)


async def _read_targeted(halo: HaloClient, wanted: list[int]) -> _Reads:
    """A few contracts: each one's detail read, and the two lists narrowed to their clients."""
    targets: dict[int, Contract] = {}
    missing: list[int] = []
    for cid in wanted:
        try:
            targets[cid] = await halo.get_contract(cid, details=True)
        except HaloNotFound:
            missing.append(cid)
    renewed: set[int] = set()
    refs: rd.Refs = defaultdict(dict)
    book: rd.Book = defaultdict(list)
    for client_id in sorted({c.client_id for c in targets.values() if c.client_id is not None}):
        every = await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True))
        open_ = await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True,
                                                        exclude_renewed=True))
        renewed |= {c.id for c in every} - {c.id for c in open_}
        for c in every:
            refs[c.client_id][c.ref.strip().casefold()] = c.id
            book[c.client_id].append(c)
    return _Reads(targets, missing, renewed, refs, book)


async def _read_recurring_lines(halo: HaloClient, contract_ids: list[int]) -> dict[int, list[RecurringItem]]:
    """The recurring lines of the contracts: each contract's recurring invoices, or every recurring
    invoice when that list has no more pages than there are contracts (its first page says)."""
    invoices: list[RecurringInvoice] | None = None
    limit = rd.lines_list_limit(len(contract_ids))
    if limit is not None:
        invoices, _ = await _list_unless_longer(
            lambda on_page: halo.list_recurring_invoices(include_lines=True, on_page=on_page), limit=limit)
    if invoices is None:
        invoices = [ri for cid in contract_ids
                    for ri in await halo.list_recurring_invoices(contract_id=cid, include_lines=True)]
    wanted = set(contract_ids)
    lines: dict[int, list[RecurringItem]] = defaultdict(list)
    for ri in invoices:
        for line in ri.lines:
            owner = line.contract_id if line.contract_id is not None else ri.contract_id
            if owner in wanted:
                lines[owner].append(line)
    return lines


def _dec(value: Decimal) -> str:
    return f"{value:f}"


@halo_tool(group="renewals", kind="write", title="Generate contract renewals")
async def generate_renewals(
    contract_ids: Annotated[list[ContractId], Field(min_length=1, max_length=MAX_RENEWALS)],
    ctx: Context,
    uplift_percent: Annotated[Number, Field(description="Percent, -50 to 100")] = 0,
    term_months: Annotated[int | None, Field(strict=True, description="1 to 60; default: the old term")] = None,
    copy_recurring_items: Annotated[bool, Field(strict=True)] = True,
    item_uplift_percent: Annotated[Number | None, Field(description="Default: uplift_percent")] = None,
    expire_old: Annotated[ExpireOld, Field(description="at_end: if ended, else a follow-up")] = "never",
    dry_run: DryRun = False,
    detail: Detail = "summary",
) -> GenerateRenewalsResult:
    """Renew contracts as one plan: Pending successors (ref rolled, value uplifted, lines copied), the
    old ones expired now, at their end or never; renewed ones skipped."""
    terms = _terms(uplift_percent, item_uplift_percent, term_months, copy_recurring_items, expire_old, today_of(ctx))
    wanted = _wanted(contract_ids)
    ac = app(ctx)
    async with halo_errors():
        reads = await _read_contracts(ac.halo, wanted)
    chosen = rd.select(wanted, reads.targets, reads.missing, reads.renewed, reads.refs, terms.today, term_months,
                       reads.book)
    if chosen.errors:
        raise invalid("contract_ids", "these contracts cannot be renewed: " + "; ".join(chosen.errors),
                      "remove or correct those ids (find_expiring_contracts lists renewable contracts)")
    lines: dict[int, list[RecurringItem]] = {}
    if copy_recurring_items and chosen.chosen:
        async with halo_errors():
            lines = await _read_recurring_lines(ac.halo, sorted(x.contract.id for x in chosen.chosen))
    drafts = [rd.draft_renewal(x.contract, lines.get(x.contract.id, []), new_ref=x.new_ref, new_start=x.new_start,
                               new_end=x.new_end, months=x.months, terms=terms, months_of=ac.codes.months_of)
              for x in chosen.chosen]
    for d, x in zip(drafts, chosen.chosen, strict=True):
        d.warnings[:0] = x.warnings  # the overlap first
    plan = _renewal_plan(ac.halo, drafts, terms, chosen, ac.codes.months_of)
    return await _submit_renewals(ctx, plan, drafts, chosen, terms, dry_run=dry_run, detail=detail)


def _terms(uplift_percent: Decimal, item_uplift_percent: Decimal | None, term_months: int | None,
           copy_lines: bool, expire_old: ExpireOld, today: date) -> rd.Terms:
    """The arguments' rules (nothing read yet)."""
    uplift = Decimal(uplift_percent)  # the schema default arrives as a plain int
    problem = rn.check_uplift(uplift)
    if problem:
        raise invalid("uplift_percent", problem, "give a percentage from -50 to 100, e.g. 3.5")
    item_uplift = uplift if item_uplift_percent is None else item_uplift_percent
    problem = rn.check_uplift(item_uplift)
    if problem:
        raise invalid("item_uplift_percent", problem, "give a percentage from -50 to 100, or leave it out")
    problem = rn.check_term(term_months) if term_months is not None else None
    if problem:
        raise invalid("term_months", problem, "give whole months from 1 to 60, or leave it out for the same term")
    return rd.Terms(uplift=uplift, item_uplift=item_uplift, copy_lines=copy_lines, expire_old=expire_old,
                    today=today)


def _wanted(contract_ids: list[int]) -> list[int]:
    duplicates = sorted({i for i in contract_ids if contract_ids.count(i) > 1})
    if duplicates:
        raise invalid("contract_ids", f"contract(s) {', '.join(map(str, duplicates))} are listed more than once",
                      "list each contract once")
    return list(dict.fromkeys(contract_ids))


def _renewal_plan(halo: HaloClient, drafts: list[rd.Draft], terms: rd.Terms, chosen: rd.Selection,
                  months_of: Callable[[str | None], int | None]) -> Plan:
    """One plan for the batch (Halo's refs and names stay in the rows' own fields, never in summaries)."""
    plan = Plan(tool="generate_renewals", title=(
        f"Renew {len(drafts)} contract(s): uplift {_dec(terms.uplift)}%, lines {_dec(terms.item_uplift)}%, "
        f"old contracts: {terms.expire_old}"))
    for d in drafts:
        _renewal_steps(plan, halo, d, terms)
    plan.warnings = list(chosen.warnings)
    plan.skipped = [f"contract {cid}: {reason}" for cid, reason in chosen.skipped]
    plan.summary = {"names": {f"contract:{d.contract.id}": d.contract.ref for d in drafts if d.expire},
                    "contracts": len(drafts), "lines": sum(len(d.lines) for d in drafts),
                    "skipped": len(chosen.skipped),
                    "value_before": str(cents(sum((d.contract.value or Decimal(0) for d in drafts), Decimal(0)))),
                    "value_after": str(cents(sum((d.value or Decimal(0) for d in drafts), Decimal(0))))}
    # the change per month: each renewal's run rate against the contract it replaces (whether the
    # old one is expired now or runs to its end, the new one takes over from it)
    money = [(consent.contract_monthly(d.contract.value, months_of(d.contract.billing_frequency), None),
              consent.contract_monthly(d.value, months_of(d.contract.billing_frequency), None)) for d in drafts]
    if money and all(old is not None and new is not None for old, new in money):
        plan.summary |= consent.change_summary(sum((new - old for old, new in money), Decimal(0)))
    return plan


def _schedule(frequency: str | None, start: date | None, end: date | None) -> dict[str, str]:
    """The schedule a new recurring invoice is made with (plan step params)."""
    out = {"billing_frequency": frequency, "start_date": start.isoformat() if start else None,
           "end_date": end.isoformat() if end else None}
    return {k: v for k, v in out.items() if v}


def _renewal_steps(plan: Plan, halo: HaloClient, d: rd.Draft, terms: rd.Terms) -> None:
    c, group = d.contract, str(d.contract.id)
    what = f"the renewal of contract {c.id}"
    create = add_step(plan, halo, "create_contract",
                      f"Create {what} for client {c.client_id} (Pending, {d.new_start} to {d.new_end}"
                      + (f", value {d.value}" if d.value is not None else "") + ")",
                      {"fields": d.fields.model_dump(mode="json", exclude_unset=True)},
                      natural_key={"client_id": c.client_id, "ref": d.new_ref}, group=group)
    if d.lines:
        # one recurring invoice per billing frequency, each made with the renewal's schedule; the
        # plan knows each one's frequency, so its lines are sent without reading it first
        fields = [x.fields for x in d.lines]
        add_line_steps(plan, halo, route_lines(fields, [], c.billing_frequency), client_id=c.client_id,
                       contract_id=Plan.ref(create.index), contract_ref=d.new_ref, owner=what,
                       schedule=_schedule(None, d.new_start, d.new_end),
                       natural_key={"contract_id": Plan.ref(create.index), "existing_line_ids": []},
                       what=lambda t: (f"Add {len(t.items)} recurring line(s) to {what}"
                                       + (f" ({t.frequency})" if t.frequency else "")
                                       + f" (item uplift {_dec(terms.item_uplift)}%)"), group=group)
    if d.expire:
        add_step(plan, halo, "update_contract", f"Set contract {c.id} to Expired",
                 {"contract_id": c.id, "fields": ContractFields(status="Expired").model_dump(
                     mode="json", exclude_unset=True)},
                 natural_key={"contract_id": c.id}, group=group)


def _row(d: rd.Draft, terms: rd.Terms, full: bool) -> RenewalRow:
    c = d.contract
    return RenewalRow(
        contract_id=c.id, client_id=c.client_id, client_name=c.client_name, old_ref=c.ref, new_ref=d.new_ref,
        old_start=c.start_date, old_end=c.end_date, new_start=d.new_start, new_end=d.new_end,
        term_months=d.term_months, value_before=c.value, value_after=d.value, value_from_lines=d.value_from_lines,
        uplift_percent=float(terms.uplift), item_uplift_percent=float(terms.item_uplift),
        lines_copied=len(d.lines), lines_left_out=len(d.left_out),
        lines=[RenewalLine(description=x.source.description, quantity=x.source.quantity,
                           billing_frequency=x.source.billing_frequency, unit_price_before=x.source.unit_price,
                           unit_price_after=x.unit_price_after, end_date=x.end_date) for x in d.lines]
        if full else None,
        lines_not_copied=[LineNotCopied(line_id=x.line.id, description=x.line.description,
                                        end_date=x.line.end_date, reason=x.reason) for x in d.left_out]
        if full else None,
        old_contract=d.old_action, warnings=d.warnings)


def _follow_up(d: rd.Draft) -> FollowUp:
    cid = d.contract.id
    return FollowUp(contract_id=cid, due=d.follow_up, action=(
        f"Set contract {cid} to Expired from that date: update_contract(contract_id={cid}, "
        "changes={status: 'Expired'}). Halo has no scheduled status change, and running this renewal "
        "again skips the contract"))


async def _submit_renewals(ctx: Context, plan: Plan, drafts: list[rd.Draft], chosen: rd.Selection,
                           terms: rd.Terms, *, dry_run: bool, detail: str) -> GenerateRenewalsResult:
    """The one plan path (save; preview or apply), then the result: totals first, the rows with
    the most value when there are more than fit."""
    full = detail == "full"
    shown = drafts if full or len(drafts) <= RENEWAL_ROWS else \
        sorted(drafts, key=lambda d: -(d.value or 0))[:RENEWAL_ROWS]
    rows = [_row(d, terms, full) for d in shown]
    skipped = [SkippedRenewal(contract_id=cid, reason=reason) for cid, reason in chosen.skipped]
    follow_ups = [_follow_up(d) for d in drafts if d.follow_up is not None]
    totals = RenewalTotals(contracts=len(drafts), lines=sum(len(d.lines) for d in drafts), skipped=len(skipped),
                           value_before=sum((d.contract.value or Decimal(0) for d in drafts), Decimal(0)),
                           value_after=sum((d.value or Decimal(0) for d in drafts), Decimal(0)))
    common = dict(dry_run=dry_run, totals=totals, skipped=skipped, follow_ups=follow_ups,
                  warnings=list(chosen.warnings))
    if not plan.steps:
        return GenerateRenewalsResult(
            plan_id=None, status="nothing to do", steps=0, renewals=[], plan=None, **common,
            message="Nothing to renew: every contract given was skipped (see skipped). Nothing was sent to Halo.")
    try:
        view, outcome = await submit_plan(ctx, plan, dry_run=dry_run, detail=detail, progress_by_group=True)
    except ToolError as exc:
        stored = app(ctx).journal.get_plan(plan.id)
        done = [f"{s.group} -> {(s.result or {}).get('id')}" for s in (stored.steps if stored else [])
                if s.kind == "create_contract" and s.status == "done"]
        raise ToolError(f"{exc} Renewals created so far (old -> new): {', '.join(done) or 'none'}. "
                        f"apply_plan(plan_id='{plan.id}') resumes where it stopped; nothing done is sent again."
                        ) from None
    if outcome is None:
        return GenerateRenewalsResult(
            plan_id=plan.id, status="planned", steps=len(plan.steps), renewals=rows, plan=view, **common,
            message=(f"Preview of {len(drafts)} renewal(s) in {len(plan.steps)} steps; nothing was sent. "
                     + ("Show the user the warnings, then apply" if plan.warnings else "Apply")
                     + f" with apply_plan(plan_id='{plan.id}')."))
    created = {s.group: (s.result or {}).get("id") for s in outcome.plan.steps
               if s.kind == "create_contract" and s.status == "done"}
    for row in rows:
        row.new_contract_id = created.get(str(row.contract_id))
    return GenerateRenewalsResult(plan_id=plan.id, status=outcome.plan.status, steps=len(plan.steps),
                                  renewals=rows, plan=view, **common,
                                  message=outcome.message + confirmation_note(outcome))
