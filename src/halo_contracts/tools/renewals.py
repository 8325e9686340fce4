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
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from halo_contracts.domain import renewals as rn
from halo_contracts.domain.drafts import ContractFields, RecurringItemFields
from halo_contracts.domain.models import Contract, RecurringInvoice, RecurringItem
from halo_contracts.domain.money import annualised
from halo_contracts.halo.client import ContractQuery, HaloClient, PageCallback
from halo_contracts.halo.errors import HaloNotFound
from halo_contracts.plans import consent
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_step
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import (
    ClientId,
    ContractId,
    DryRun,
    Hours,
    IsoDate,
    Money,
    Number,
    Result,
    app,
    halo_errors,
    halo_tool,
    invalid,
    today_of,
)
from halo_contracts.tools.plans import confirmation_note, submit_plan
from halo_contracts.tools.prepaid import PREPAID_TYPE

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
    bucket: Literal["0-30", "31-60", "61-90", "over 90"]
    value: Money | None = Field(description="charge per billing period")
    billing_frequency: str | None
    annualised_value: Money | None
    renewed: bool = Field(description="a later contract names this one as its previous contract")


class ExpiringBucket(Result):
    bucket: str
    count: int
    annualised_value: Money


class ExpiringResult(Result):
    today: date
    within_days: int
    total: int
    buckets: list[ExpiringBucket] = Field(description="the renewal dashboard: 0-30, 31-60, 61-90 days "
                                                      "(and 'over 90' for longer windows)")
    contracts: list[ExpiringContract] = Field(description="soonest first")
    renewed_left_out: int = Field(description="expiring contracts left out because a renewal exists "
                                              "(include_renewed=true lists them)")
    ended_still_active: int = Field(description="Active contracts whose end date has passed: renew or expire them")


@halo_tool(group="renewals", kind="read", title="Find expiring contracts")
async def find_expiring_contracts(
    ctx: Context,
    within_days: Annotated[int, Field(strict=True, ge=1, le=730,
                                      description="Window in days from today (default 90)")] = 90,
    client_id: ClientId | None = None,
    include_renewed: Annotated[bool, Field(strict=True, description=(
        "Also list contracts that already have a renewal (marked renewed=true)"))] = False,
) -> ExpiringResult:
    """Active contracts ending within the window, soonest first, with days remaining, value and
    annualised value, whether a renewal already exists, grouped as a renewal dashboard (0-30,
    31-60, 61-90 days). Use it to plan renewals; then review_contract_performance and
    generate_renewals. Rules: halopsa://guide/contracts."""
    ac = app(ctx)
    today = today_of(ctx)
    codes = ac.codes
    async with halo_errors():
        every = await ac.halo.list_contracts(ContractQuery(client_id=client_id))
        not_renewed = await ac.halo.list_contracts(ContractQuery(client_id=client_id, exclude_renewed=True))
    open_ids = {c.id for c in not_renewed}
    renewed_ids = {c.id for c in every} - open_ids
    rows: list[ExpiringContract] = []
    left_out = ended = 0
    for c in every:
        if client_id is not None and c.client_id != client_id:
            continue
        if _same(c.status, "Active") and c.end_date is not None and c.end_date < today:
            ended += 1
        if not rn.is_expiring(c, today, within_days):
            continue
        renewed = c.id in renewed_ids
        if renewed and not include_renewed:
            left_out += 1
            continue
        months = codes.months_of(c.billing_frequency)
        days = rn.days_remaining(c.end_date, today)
        rows.append(ExpiringContract(
            contract_id=c.id, client_id=c.client_id, client_name=c.client_name, contract_ref=c.ref, type=c.type,
            end_date=c.end_date, days_remaining=days, bucket=rn.bucket_of(days), value=c.value,
            billing_frequency=c.billing_frequency,
            annualised_value=annualised(c.value, months) if c.value is not None and months else None,
            renewed=renewed))
    rows.sort(key=lambda r: (r.end_date, r.contract_id))
    names = [b[0] for b in rn.BUCKETS] + (["over 90"] if within_days > 90 else [])
    buckets = [ExpiringBucket(bucket=name, count=sum(1 for r in rows if r.bucket == name),
                              annualised_value=sum((r.annualised_value or Decimal(0) for r in rows
                                                    if r.bucket == name), Decimal(0)))
               for name in names]
    return ExpiringResult(today=today, within_days=within_days, total=len(rows), buckets=buckets, contracts=rows,
                          renewed_left_out=left_out, ended_still_active=ended)


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


@halo_tool(group="renewals", kind="read", title="Review contract performance")
async def review_contract_performance(
    contract_id: ContractId,
    ctx: Context,
    period_start: IsoDate | None = None,
    period_end: IsoDate | None = None,
    target_margin: Annotated[Number | None, Field(description=(
        "Target margin in percent (default: the server's configured target)"))] = None,
) -> PerformanceReview:
    """How a contract performed over a period (default: its current term up to today): tickets,
    hours, SLA compliance, revenue billed, cost of the time at the configured cost rate, margin
    against the target, and a recommendation (renew as is, renew with an uplift, review scope)
    with its reasons. Use it before generate_renewals to choose the uplift. Rules:
    halopsa://guide/contracts."""
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

ExpireOld = Literal["never", "now", "at_end"]


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
    lines: list[RenewalLine] = Field(description="recurring lines copied to the renewal")
    lines_not_copied: list[LineNotCopied] = Field(default_factory=list, description=(
        "the old contract's recurring lines left out, with the reason (inactive, or ending before the old "
        "contract ends)"))
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


class PlanStep(Result):
    index: int
    kind: str
    summary: str
    group: str | None = Field(description="the contract the step belongs to")


class GenerateRenewalsResult(Result):
    plan_id: str | None = Field(description="apply_plan(plan_id) applies or resumes it; None when there was "
                                            "nothing to do")
    dry_run: bool
    status: str = Field(description="planned (dry run), applied, partial or failed; 'nothing to do'")
    message: str
    steps: int
    plan_steps: list[PlanStep] = Field(description="the plan's steps in order (get_plan shows the Halo requests)")
    renewals: list[RenewalRow]
    skipped: list[SkippedRenewal]
    follow_ups: list[FollowUp] = Field(description="things the plan deliberately leaves for later")
    warnings: list[str]


Refs = dict[int | None, dict[str, int]]  # client id -> casefolded ref -> contract id
ALWAYS_TARGETED_UP_TO = 2  # this many contracts or fewer: targeted reads, without looking at the book's size


@dataclass
class _Reads:
    targets: dict[int, Contract]
    missing: list[int]
    renewed: set[int]
    refs: Refs


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
    if len(wanted) <= ALWAYS_TARGETED_UP_TO:
        return await _read_targeted(halo, wanted)
    every, pages = await _list_unless_longer(
        lambda on_page: halo.list_contracts(ContractQuery(include_inactive=True), on_page=on_page),
        limit=2 * len(wanted) + 1)
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
    if len(clients) < pages:
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
        if _same(c.type, PREPAID_TYPE) and c.prepaid_hours is None and c.id not in renewed:
            c = await halo.get_contract(c.id, details=True)
        targets[c.id] = c
    refs: Refs = defaultdict(dict)
    for c in every:
        refs[c.client_id][c.ref.strip().casefold()] = c.id
    return _Reads(targets, [i for i in wanted if i not in by_id], renewed, refs)


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
    refs: Refs = defaultdict(dict)
    for client_id in sorted({c.client_id for c in targets.values() if c.client_id is not None}):
        every = await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True))
        open_ = await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True,
                                                        exclude_renewed=True))
        renewed |= {c.id for c in every} - {c.id for c in open_}
        for c in every:
            refs[c.client_id][c.ref.strip().casefold()] = c.id
    return _Reads(targets, missing, renewed, refs)


async def _read_recurring_lines(halo: HaloClient, contract_ids: list[int]) -> dict[int, list[RecurringItem]]:
    """The recurring lines of the contracts: each contract's recurring invoices, or every recurring
    invoice when that list has no more pages than there are contracts (its first page says)."""
    invoices: list[RecurringInvoice] | None = None
    if len(contract_ids) > ALWAYS_TARGETED_UP_TO:
        invoices, _ = await _list_unless_longer(
            lambda on_page: halo.list_recurring_invoices(include_lines=True, on_page=on_page),
            limit=len(contract_ids) + 1)
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
    contract_ids: Annotated[list[ContractId], Field(min_length=1, max_length=MAX_RENEWALS, description=(
        "The contracts to renew (Halo ids), e.g. from find_expiring_contracts"))],
    ctx: Context,
    uplift_percent: Annotated[Number, Field(description="Price change of the contract value in percent, "
                                                        "-50 to 100 (default 0)")] = 0,
    term_months: Annotated[int | None, Field(strict=True, description=(
        "Term of the renewals in months, 1 to 60 (default: the same term as the old contract)"))] = None,
    copy_recurring_items: Annotated[bool, Field(strict=True, description=(
        "Copy the old contract's active recurring lines to the renewal (default true)"))] = True,
    item_uplift_percent: Annotated[Number | None, Field(description=(
        "Price change of the copied lines in percent (default: uplift_percent)"))] = None,
    expire_old: Annotated[ExpireOld, Field(description=(
        "Old contract: 'never' leave it (default), 'now' set it Expired, 'at_end' set it Expired only if its "
        "end date has passed (otherwise listed as a follow-up)"))] = "never",
    dry_run: DryRun = False,
) -> GenerateRenewalsResult:
    """Renew contracts as ONE plan: for each, a Pending contract starting the day after the old one
    ends, for the same term (or term_months), with the ref rolled forward ('... 2025' -> '... 2026'),
    linked to the old one as its previous contract, a note naming it, the value raised by the
    uplift (or, when the value was what its lines bill, what the uplifted lines bill), and its
    active recurring lines copied with the item uplift (lines ending before the old contract
    ends are not copied; lines_not_copied says why); the old contract is expired now, at its
    end, or never. Contracts that already have a renewal are skipped with the
    reason, so running it twice creates nothing. Everything is validated before the plan exists.
    Use dry_run=true to preview, then apply_plan(plan_id). Rules: halopsa://guide/contracts."""
    # ---- argument rules (nothing read yet) ----
    uplift_percent = Decimal(uplift_percent)  # the schema default arrives as a plain int
    problem = rn.check_uplift(uplift_percent)
    if problem:
        raise invalid("uplift_percent", problem, "give a percentage from -50 to 100, e.g. 3.5")
    item_uplift = uplift_percent if item_uplift_percent is None else item_uplift_percent
    problem = rn.check_uplift(item_uplift)
    if problem:
        raise invalid("item_uplift_percent", problem, "give a percentage from -50 to 100, or leave it out")
    if term_months is not None:
        problem = rn.check_term(term_months)
        if problem:
            raise invalid("term_months", problem, "give whole months from 1 to 60, or leave it out for the same term")
    duplicates = sorted({i for i in contract_ids if contract_ids.count(i) > 1})
    if duplicates:
        raise invalid("contract_ids", f"contract(s) {', '.join(map(str, duplicates))} are listed more than once",
                      "list each contract once")

    ac = app(ctx)
    halo = ac.halo
    today = today_of(ctx)
    wanted = list(dict.fromkeys(contract_ids))

    # ---- reads (see _read_contracts / _read_recurring_lines) ----
    async with halo_errors():
        reads = await _read_contracts(halo, wanted)
    targets, renewed_ids, refs_by_client = reads.targets, reads.renewed, reads.refs

    # ---- validation of every contract before anything is planned ----
    errors: list[str] = [f"contract {i}: not found in Halo" for i in reads.missing]
    warnings: list[str] = []
    skipped: list[SkippedRenewal] = []
    planned: list[tuple[Contract, date, date, int | None, str]] = []
    new_refs: dict[tuple[int | None, str], int] = {}
    for cid in wanted:
        c = targets.get(cid)
        if c is None:
            continue
        if cid in renewed_ids:
            skipped.append(SkippedRenewal(contract_id=cid, reason=(
                "a renewal already exists: a later contract names it as its previous contract")))
            continue
        check = rn.check_renewable(c, today, term_months=term_months)
        if c.client_id is None:
            check.errors.append("it has no client; set its client in Halo first")
        if not check.ok:
            errors.extend(f"contract {cid}: {e}" for e in check.errors)
            continue
        new_start, new_end, months = rn.renewal_term(c.start_date, c.end_date, term_months)
        new_ref = rn.roll_ref(c.ref, c.start_date, c.end_date, new_start, new_end)
        key = (c.client_id, new_ref.strip().casefold())
        clash = refs_by_client[c.client_id].get(key[1])
        if clash is not None:
            skipped.append(SkippedRenewal(contract_id=cid, reason=(
                f"the client already has a contract with the renewal's reference (contract {clash}); it may be a "
                "renewal made by hand without the previous-contract link. Link or rename it, then run again")))
            continue
        if key in new_refs:
            errors.append(f"contract {cid}: its renewal's reference would be the same as contract "
                          f"{new_refs[key]}'s renewal for the same client; renew them separately with distinct refs")
            continue
        new_refs[key] = cid
        warnings.extend(f"contract {cid}: {w}" for w in check.warnings)
        planned.append((c, new_start, new_end, months, new_ref))
    if errors:
        raise invalid("contract_ids", "these contracts cannot be renewed: " + "; ".join(errors),
                      "remove or correct those ids (find_expiring_contracts lists renewable contracts)")

    lines_by_contract: dict[int, list[RecurringItem]] = {}
    if copy_recurring_items and planned:
        async with halo_errors():
            lines_by_contract = await _read_recurring_lines(halo, sorted(c.id for c, *_ in planned))

    # ---- the plan (Halo's refs and names stay in the rows' own fields, never in summaries) ----
    plan = Plan(tool="generate_renewals", title=(
        f"Renew {len(planned)} contract(s): uplift {_dec(uplift_percent)}%, lines {_dec(item_uplift)}%, "
        f"old contracts: {expire_old}"))
    codes = ac.codes
    rows: list[RenewalRow] = []
    follow_ups: list[FollowUp] = []
    ended_names: dict[str, str] = {}
    money: list[tuple[Decimal | None, Decimal | None]] = []  # (old stops, new bills) per month
    for c, new_start, new_end, months, new_ref in planned:
        group = str(c.id)
        row_warnings: list[str] = []
        copied: list[RenewalLine] = []
        not_copied: list[LineNotCopied] = []
        items: list[RecurringItemFields] = []
        kept: list[RecurringItem] = []
        if copy_recurring_items:
            for line in sorted(lines_by_contract.get(c.id, []), key=lambda x: (x.id or 0)):
                reason = rn.line_not_copied(line.inactive, line.start_date, line.end_date, c.end_date, new_end)
                if reason is not None:
                    not_copied.append(LineNotCopied(line_id=line.id, description=line.description,
                                                    end_date=line.end_date, reason=reason))
                    continue
                price = rn.apply_uplift(line.unit_price, item_uplift)
                start, end = rn.copied_line_dates(line.start_date, line.end_date, c.end_date, new_start, new_end)
                item = dict(description=line.description, quantity=line.quantity, unit_price=price,
                            start_date=start)
                for name, value in (("long_description", line.long_description), ("item_id", line.item_id),
                                    ("billing_frequency", line.billing_frequency), ("end_date", end)):
                    if value is not None:
                        item[name] = value
                items.append(RecurringItemFields(**item))
                kept.append(line)
                copied.append(RenewalLine(description=line.description, quantity=line.quantity,
                                          billing_frequency=line.billing_frequency,
                                          unit_price_before=line.unit_price, unit_price_after=price,
                                          end_date=end))
            if not items:
                row_warnings.append("no active recurring lines to copy"
                                    + (" (see lines_not_copied)" if not_copied else ""))
        lines_before = lines_after = None
        if kept:
            period_months = codes.months_of(c.billing_frequency)
            own = [codes.months_of(x.billing_frequency) if x.billing_frequency else None for x in kept]
            if all(m is not None or x.billing_frequency is None for m, x in zip(own, kept, strict=True)):
                lines_before = rn.period_total([(x.quantity, x.unit_price, m) for x, m in zip(kept, own, strict=True)],
                                               period_months)
                lines_after = rn.period_total([(x.quantity, i.unit_price, m) for x, i, m in
                                               zip(kept, items, own, strict=True)], period_months)
        value = rn.renewal_value(c.value, uplift_percent, item_uplift, lines_before, lines_after)
        if value.warning:
            row_warnings.append(value.warning)
        value_after = value.value
        note = (f"Renewal of contract {c.id} ({c.start_date.isoformat() if c.start_date else '?'} to "
                f"{c.end_date.isoformat()}), created by generate_renewals with a {_dec(uplift_percent)}% uplift.")
        fields: dict[str, Any] = dict(client_id=c.client_id, ref=new_ref, status="Pending", start_date=new_start,
                                      end_date=new_end, notes=note, previous_contract_id=c.id)
        for name, v in (("type", c.type), ("billing_frequency", c.billing_frequency), ("sla_id", c.sla_id),
                        ("site_id", c.site_id), ("value", value_after), ("term_months", months)):
            if v is not None:
                fields[name] = v
        if _same(c.type, PREPAID_TYPE):
            if c.prepaid_hours is not None:
                fields["prepaid_hours"] = c.prepaid_hours
            if c.prepay_expiry_months:
                fields["prepay_expiry_months"] = c.prepay_expiry_months
        draft = ContractFields(**fields)
        what = f"the renewal of contract {c.id}"
        create = add_step(plan, halo, "create_contract",
                          f"Create {what} for client {c.client_id} (Pending, {new_start} to {new_end}"
                          + (f", value {value_after}" if value_after is not None else "") + ")",
                          {"fields": draft.model_dump(mode="json", exclude_unset=True)},
                          natural_key={"client_id": c.client_id, "ref": new_ref}, group=group)
        if items:
            ri = add_step(plan, halo, "create_recurring_invoice", f"Create the recurring invoice of {what}",
                          {"client_id": c.client_id, "contract_id": Plan.ref(create.index),
                           "contract_ref": new_ref, **_schedule(c.billing_frequency, new_start, new_end)},
                          natural_key={"contract_id": Plan.ref(create.index)}, group=group)
            add_step(plan, halo, "add_recurring_lines",
                     f"Add {len(items)} recurring line(s) to {what} (item uplift {_dec(item_uplift)}%)",
                     {"recurring_invoice_id": Plan.ref(ri.index), "contract_id": Plan.ref(create.index),
                      "items": [i.model_dump(mode="json", exclude_unset=True) for i in items]},
                     natural_key={"contract_id": Plan.ref(create.index), "existing_line_ids": []}, group=group)
        old_action = "left as it is"
        expire = expire_old == "now" or (expire_old == "at_end" and c.end_date < today)
        if expire:
            add_step(plan, halo, "update_contract", f"Set contract {c.id} to Expired",
                     {"contract_id": c.id, "fields": ContractFields(status="Expired").model_dump(
                         mode="json", exclude_unset=True)},
                     natural_key={"contract_id": c.id}, group=group)
            old_action = "set to Expired" + (" (its end date has passed)" if expire_old == "at_end" else "")
            ended_names[f"contract:{c.id}"] = c.ref
        elif expire_old == "at_end":
            due = c.end_date + timedelta(days=1)
            old_action = f"stays {c.status or 'as it is'} until its end date; set it to Expired from {due}"
            follow_ups.append(FollowUp(contract_id=c.id, due=due, action=(
                f"Set contract {c.id} to Expired from that date: update_contract(contract_id={c.id}, "
                "changes={status: 'Expired'}). Halo has no scheduled status change, and running this renewal "
                "again skips the contract")))
        per_month = codes.months_of(c.billing_frequency)
        money.append((consent.contract_monthly(c.value, per_month, c.status) if expire else Decimal(0),
                      consent.contract_monthly(value_after, per_month, None)))
        rows.append(RenewalRow(
            contract_id=c.id, client_id=c.client_id, client_name=c.client_name, old_ref=c.ref, new_ref=new_ref,
            old_start=c.start_date, old_end=c.end_date, new_start=new_start, new_end=new_end, term_months=months,
            value_before=c.value, value_after=value_after, value_from_lines=value.from_lines,
            uplift_percent=float(uplift_percent), item_uplift_percent=float(item_uplift), lines=copied,
            lines_not_copied=not_copied, old_contract=old_action, warnings=row_warnings))
    plan.warnings = list(warnings)
    plan.skipped = [f"contract {s.contract_id}: {s.reason}" for s in skipped]
    plan.summary = {"names": ended_names,
                    "contracts": len(rows), "lines": sum(len(r.lines) for r in rows), "skipped": len(skipped),
                    "value_before": str(sum((r.value_before or Decimal(0) for r in rows), Decimal(0))),
                    "value_after": str(sum((r.value_after or Decimal(0) for r in rows), Decimal(0)))}
    if money and all(old is not None and new is not None for old, new in money):
        plan.summary |= consent.change_summary(sum((new - old for old, new in money), Decimal(0)))

    if not plan.steps:
        return GenerateRenewalsResult(
            plan_id=None, dry_run=dry_run, status="nothing to do", steps=0, plan_steps=[], renewals=[],
            skipped=skipped,
            follow_ups=follow_ups, warnings=warnings,
            message="Nothing to renew: every contract given was skipped (see skipped). Nothing was sent to Halo.")

    # ---- progress per contract while applying ----
    group_last: list[int] = []
    for step in plan.steps:
        if step.group is not None and (not group_last or plan.steps[group_last[-1]].group != step.group):
            group_last.append(step.index)
        elif step.group is not None:
            group_last[-1] = step.index
    total_groups = len(group_last)
    reported = {"groups": 0}

    async def progress(done: int, total: int, message: str) -> None:
        complete = sum(1 for last in group_last if last < done)
        if complete > reported["groups"]:
            reported["groups"] = complete
            contract = plan.steps[group_last[complete - 1]].group
            await progress_of(ctx).report(complete, total_groups, f"Contract {contract} renewed "
                                                                 f"({complete} of {total_groups})")

    _view, outcome = await submit_plan(ctx, plan, dry_run=dry_run, progress=progress, raise_on_failure=False)
    if outcome is None:
        return GenerateRenewalsResult(
            plan_id=plan.id, dry_run=True, status="planned", steps=len(plan.steps), plan_steps=_steps(plan),
            renewals=rows, skipped=skipped,
            follow_ups=follow_ups, warnings=warnings,
            message=(f"Preview of {len(rows)} renewal(s) in {len(plan.steps)} steps; nothing was sent. "
                     f"Apply with apply_plan(plan_id='{plan.id}')."))

    created = {s.group: (s.result or {}).get("id") for s in outcome.plan.steps
               if s.kind == "create_contract" and s.status == "done"}
    if outcome.failed:
        done = [f"{g} -> {i}" for g, i in created.items()]
        raise ToolError(f"{outcome.message} Renewals created so far (old -> new): {', '.join(done) or 'none'}. "
                        f"apply_plan(plan_id='{plan.id}') resumes where it stopped; nothing done is sent again.")
    for row in rows:
        row.new_contract_id = created.get(str(row.contract_id))
    return GenerateRenewalsResult(
        plan_id=plan.id, dry_run=False, status=outcome.plan.status, steps=len(plan.steps),
        plan_steps=_steps(outcome.plan), renewals=rows, skipped=skipped, follow_ups=follow_ups, warnings=warnings,
        message=outcome.message + confirmation_note(outcome))


def _steps(plan: Plan) -> list[PlanStep]:
    return [PlanStep(index=s.index, kind=s.kind, summary=s.summary, group=s.group) for s in plan.steps]


def _schedule(frequency: str | None, start: date | None, end: date | None) -> dict[str, str]:
    """The schedule a new recurring invoice is made with (plan step params)."""
    out = {"billing_frequency": frequency, "start_date": start.isoformat() if start else None,
           "end_date": end.isoformat() if end else None}
    return {k: v for k, v in out.items() if v}
