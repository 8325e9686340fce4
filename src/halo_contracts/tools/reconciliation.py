"""Billing reconciliation tools: one contract, or the whole book (or one client's) in bulk.

Reads only. ``reconcile_billing`` makes one paged sweep per kind of record — contracts,
recurring invoices with their lines, invoices with their lines, time entries for the period —
and never a request per client; the sweeps run side by side and report progress page by page.
The only per-contract reads are contract details for the few Prepaid Hours contracts whose
unbilled time needs the block's hourly rate (list rows do not carry the block hours), so that
both tools price unbilled time the same way; they are counted in ``records_read``. The money
rules live in :mod:`halo_contracts.domain.reconciliation`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain import reconciliation as rc
from halo_contracts.domain.money import ZERO
from halo_contracts.domain.reports import render_csv
from halo_contracts.halo.client import ContractQuery
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import (
    ClientId,
    ContractId,
    Cursor,
    Hours,
    IsoDate,
    Money,
    Number,
    Result,
    ResultFormat,
    app,
    cursor_offset,
    fingerprint,
    first_error,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
    paged,
    plural,
)

MAX_PERIOD_DAYS = 366

FindingKind = Literal["missing_invoice", "under_billed", "over_billed", "billed_after_contract_end",
                      "billed_while_not_active", "line_outside_contract_dates", "unbilled_time", "duplicate_invoice"]

PeriodStart = Annotated[IsoDate, Field()]
PeriodEnd = Annotated[IsoDate, Field(description=f"Last day (inclusive), at most {MAX_PERIOD_DAYS} days on")]
FormatArg = ResultFormat  # 'csv' adds the result as CSV text


# ---- results ----------------------------------------------------------------------------------


class FindingView(Result):
    kind: FindingKind
    amount: Money = Field(description="money in question, never negative")
    period_start: date
    period_end: date
    detail: str = Field(description="what was found, in this server's words")
    invoice_ids: list[int] = Field(default_factory=list)
    invoice_line_ids: list[int] = Field(default_factory=list)
    recurring_line_ids: list[int] = Field(default_factory=list)
    time_entry_ids: list[int] = Field(default_factory=list)


class UnbilledTimeView(Result):
    entries: int = Field(description="billable time entries in the period without an invoice number")
    hours: Hours = Field(description="their chargeable hours (hours a prepaid block covers excluded)")
    amount: Money = Field(description="each entry's charge amount, else (Prepaid Hours contracts only) its hours "
                                      "at the block's rate, block price / block hours; no default rate")
    unpriced_entries: int = Field(description="entries with no charge amount and no block rate (not in amount)")
    entry_ids: list[int] = Field(default_factory=list)


class ContractReconciliationView(Result):
    contract_id: int
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    client_id: int | None
    client_name: str | None = Field(description="Halo's client name (its own text)")
    type: str | None
    status: str | None
    billing_frequency: str | None
    start_date: date | None
    end_date: date | None
    expected_recurring: Money = Field(description="recurring charges due in the period (billing in advance, "
                                                  "prorated by days where a line or the contract starts or ends)")
    accrued_recurring: Money = Field(description="the recurring lines converted to the period by days "
                                                 "(information; findings compare charges due)")
    billed: Money = Field(description="recurring billing of the contract in the period, credits subtracted")
    credits: Money = Field(description="credit notes in the period, as a positive amount")
    variance: Money = Field(description="billed - expected_recurring (negative: under-billed)")
    other_billed: Money = Field(description="labour and one-off invoices of the contract dated in the period")
    unbilled_time: UnbilledTimeView
    prepaid_hours_used: Hours | None = Field(default=None, description="prepaid contracts: prepay hours "
                                                                       "consumed by time in the period")
    owed_to_client: Money = Field(description="over-billing, billing after the end or while not active, duplicates")
    to_collect: Money = Field(description="missing invoices, under-billing and unbilled time")
    findings: list[FindingView]
    notes: list[str] = Field(default_factory=list)
    recurring_line_ids: list[int] = Field(default_factory=list)
    invoice_ids: list[int] = Field(default_factory=list, description="invoices whose recurring billing falls "
                                                                     "in the period")


class NoHistory(Result):
    period_start: date
    period_end: date
    history_starts: date = Field(description="the month of Halo's first recurring-billing invoice")


def _no_history_said(gap: NoHistory | None) -> str:
    if gap is None:
        return ""
    return (f"Halo's billing history starts {gap.history_starts} (its first recurring invoice): {gap.period_start} "
            f"to {gap.period_end} has no history, so no recurring billing is expected there (time is still checked). ")


class ReconcileContractResult(Result):
    period_start: date
    period_end: date
    tolerance: Money = Field(description="differences up to this are rounding, not findings")
    no_history: NoHistory | None = Field(default=None, description="the part of the period before Halo's "
                                                                   "recurring billing starts: none expected")
    reconciliation: ContractReconciliationView
    warnings: list[str] = Field(default_factory=list, description="e.g. a billing period code the tenant's code "
                                                                  "map does not know (counted as monthly)")
    def said(self) -> str:
        r = self.reconciliation
        text = _no_history_said(self.no_history) + (
                f"Contract {r.contract_id} of client {r.client_id}, "
                f"{self.period_start} to {self.period_end}: due {money(r.expected_recurring)}, billed "
                f"{money(r.billed)}, variance {money(r.variance)}; unbilled time {r.unbilled_time.entries} entries "
                f"({money(r.unbilled_time.amount)}). ")
        if not r.findings and self.no_history and self.no_history.period_end >= self.period_end:
            return text + "No findings; nothing recurring to compare in the period."
        if not r.findings:
            return text + "No findings: the billing matches."
        top = sorted(r.findings, key=lambda f: -f.amount)
        return text + (f"{plural(len(r.findings), 'finding')}: {money(r.owed_to_client)} owed to the client, "
                       f"{money(r.to_collect)} to collect: "
                       + listed([f"{f.kind} {money(f.amount)}" for f in top]) + ".")

    csv: str | None = Field(default=None, description="format='csv': one row per finding (one row for a "
                                                      "clean contract)")


class KindTotal(Result):
    kind: FindingKind
    findings: int
    amount: Money


class ReconcileTotals(Result):
    contracts_checked: int = Field(description="active contracts, plus any other contract with billing or "
                                               "time in the period")
    contracts_with_findings: int
    contracts_listed: int = Field(description="with findings and at_stake >= min_variance")
    expected_recurring: Money
    billed: Money
    credits: Money
    variance: Money
    other_billed: Money
    unbilled_time_entries: int
    unbilled_time_hours: Hours
    unbilled_time_amount: Money
    owed_to_clients: Money = Field(description="over-billing, billing after the end or while not active, duplicates")
    to_collect: Money = Field(description="missing invoices, under-billing and unbilled time")
    by_kind: list[KindTotal]


class SweepCounts(Result):
    contracts: int
    recurring_invoices: int
    invoices: int
    time_entries: int
    pages: int = Field(description="Halo list requests made: one paged sweep per kind of record")
    contract_details: int = Field(default=0, description="contract detail reads: Prepaid Hours contracts whose "
                                                         "unbilled time needs the block's hourly rate")
    history: int = Field(default=1, description="the read of where Halo's billing history starts (1)")
    requests: int = Field(description="every Halo request made: pages + contract_details + history")


class FindingRow(Result):
    """One contract with findings, in brief (detail='full' gives the whole reconciliation)."""

    contract_id: int
    contract_ref: str = Field(description="Halo's contract reference (its own text)")
    client_id: int | None
    client_name: str | None
    status: str | None
    expected_recurring: Money
    billed: Money
    variance: Money
    unbilled_time_amount: Money
    owed_to_client: Money
    to_collect: Money
    findings: dict[str, str] = Field(description="finding kind -> its money")


def _row(r: rc.ContractReconciliation) -> FindingRow:
    kinds: dict[str, Decimal] = {}
    for f in r.findings:
        kinds[f.kind] = kinds.get(f.kind, ZERO) + f.amount
    c = r.contract
    return FindingRow(contract_id=c.id, contract_ref=c.ref, client_id=c.client_id, client_name=c.client_name,
                      status=c.status,
                      expected_recurring=r.expected, billed=r.billed, variance=r.variance,
                      unbilled_time_amount=r.unbilled.amount, owed_to_client=r.owed_to_client,
                      to_collect=r.to_collect,
                      findings={k: str(v.quantize(Decimal("0.01"))) for k, v in kinds.items()})


class ReconcileBillingResult(Result):
    period_start: date
    period_end: date
    client_id: int | None
    min_variance: Money
    tolerance: Money
    totals: ReconcileTotals
    no_history: NoHistory | None = Field(default=None, description="the part of the period before Halo's "
                                                                   "recurring billing starts: none expected")
    contracts: list[FindingRow | ContractReconciliationView] = Field(description=(
        "this page of contracts with findings, most money in question first: brief rows, or each whole "
        "reconciliation with detail='full'; empty with format='csv', where every listed contract is a CSV row"))
    truncated: bool = Field(description="more contracts than this page: see next_cursor")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")
    records_read: SweepCounts
    warnings: list[str] = Field(default_factory=list, description="e.g. a billing period code the tenant's code "
                                                                  "map does not know (counted as monthly)")
    csv: str | None = Field(default=None, description="format='csv': one row per finding of every listed "
                                                      "contract")

    def said(self) -> str:
        t = self.totals
        text = _no_history_said(self.no_history) + (
                f"Billing {self.period_start} to {self.period_end}: {t.contracts_checked} contracts checked, "
                f"due {money(t.expected_recurring)}, billed {money(t.billed)}, variance {money(t.variance)}. "
                f"{plural(t.contracts_with_findings, 'contract')} with findings: "
                f"{money(t.owed_to_clients)} owed to clients (over-billed), {money(t.to_collect)} to collect "
                "(under-billed and unbilled)")
        if t.by_kind:
            text += " (" + ", ".join(f"{k.kind} x{k.findings} {money(k.amount)}" for k in t.by_kind) + ")"
        text += "."
        if self.contracts:
            top = [f"contract {r.contract_id} ({_both(r)})" for r in self.contracts[:5]]
            text += f" First: {listed(top)}."
        if self.next_cursor:
            text += f" {t.contracts_listed - len(self.contracts)} more listed contracts: pass cursor=next_cursor."
        return text + " reconcile_contract_billing(contract_id) shows one contract's evidence."


def _both(r: FindingRow | ContractReconciliationView) -> str:
    parts = [f"{money(r.owed_to_client)} owed" if r.owed_to_client else "",
             f"{money(r.to_collect)} to collect" if r.to_collect else ""]
    return ", ".join(p for p in parts if p) or "set-up findings"


# ---- shaping -------------------------------------------------------------------------------------


def _view(r: rc.ContractReconciliation) -> ContractReconciliationView:
    c = r.contract
    return ContractReconciliationView(
        contract_id=c.id, contract_ref=c.ref, client_id=c.client_id, client_name=c.client_name, type=c.type,
        status=c.status, billing_frequency=c.billing_frequency, start_date=c.start_date, end_date=c.end_date,
        expected_recurring=r.expected, accrued_recurring=r.accrued, billed=r.billed, credits=r.credits,
        variance=r.variance, other_billed=r.other_billed,
        unbilled_time=UnbilledTimeView(entries=r.unbilled.count, hours=r.unbilled.hours, amount=r.unbilled.amount,
                                       unpriced_entries=r.unbilled.unpriced_entries,
                                       entry_ids=list(r.unbilled.entry_ids)),
        prepaid_hours_used=r.prepaid_hours_used, owed_to_client=r.owed_to_client, to_collect=r.to_collect,
        findings=[FindingView(kind=f.kind, amount=f.amount, period_start=f.period_start, period_end=f.period_end,
                              detail=f.detail, invoice_ids=list(f.invoice_ids),
                              invoice_line_ids=list(f.invoice_line_ids),
                              recurring_line_ids=list(f.recurring_line_ids),
                              time_entry_ids=list(f.time_entry_ids)) for f in r.findings],
        notes=list(r.notes), recurring_line_ids=list(r.recurring_line_ids), invoice_ids=list(r.invoice_ids))


CSV_HEADER = ("contract_id", "contract_ref", "client_id", "client_name", "status", "period_start", "period_end",
              "expected_recurring", "billed", "credits", "variance", "other_billed", "unbilled_entries",
              "unbilled_hours", "unbilled_amount", "owed_to_client", "to_collect", "finding_kind", "finding_amount",
              "finding_period_start", "finding_period_end", "invoice_ids", "invoice_line_ids",
              "recurring_line_ids", "time_entry_ids", "detail")


def reconciliation_csv(results: list[rc.ContractReconciliation]) -> str:
    """One row per finding (contract figures repeated on each), one row for a clean contract."""
    rows = []
    for r in results:
        head = (r.contract.id, r.contract.ref, r.contract.client_id, r.contract.client_name, r.contract.status,
                r.period_start, r.period_end, r.expected, r.billed, r.credits, r.variance, r.other_billed,
                r.unbilled.count, r.unbilled.hours, r.unbilled.amount, r.owed_to_client, r.to_collect)
        if not r.findings:
            rows.append((*head, *([None] * 9)))
        for f in r.findings:
            rows.append((*head, f.kind, f.amount, f.period_start, f.period_end, f.invoice_ids, f.invoice_line_ids,
                         f.recurring_line_ids, f.time_entry_ids, f.detail))
    return render_csv(CSV_HEADER, rows)


INVOICE_SLACK = timedelta(days=62)  # how far an invoice's date may be from the period it bills


def check_period(period_start: date, period_end: date) -> None:
    if period_end < period_start:
        raise invalid("period_end", f"must be on or after period_start ({period_end} is before {period_start})",
                      "swap the dates or give the last day of the period, e.g. period_start=2026-01-01, "
                      "period_end=2026-01-31")
    span = (period_end - period_start).days + 1
    if span > MAX_PERIOD_DAYS:
        raise invalid("period_end", f"the period may span at most {MAX_PERIOD_DAYS} days (got {span})",
                      "reconcile a month, a quarter or a year at a time")


# ---- tools ---------------------------------------------------------------------------------------


@halo_tool(group="reconciliation", kind="read", title="Reconcile one contract's billing")
async def reconcile_contract_billing(
    contract_id: ContractId,
    period_start: PeriodStart,
    period_end: PeriodEnd,
    ctx: Context,
    format: FormatArg = "json",
) -> ReconcileContractResult:
    """One contract's billing over a period: due, billed, variance, unbilled time, findings."""
    check_period(period_start, period_end)
    ac = app(ctx)
    async with halo_errors():
        contract = await ac.halo.get_contract(contract_id, details=True)
        first = rc.billing_history_start(await ac.halo.earliest_invoices())
        start, gap = rc.history_window(period_start, period_end, first)
        headers = await ac.halo.list_recurring_invoices(contract_id=contract_id, include_lines=True)
        # by client, not by contract: an invoice mixing contracts names none on its header
        invoices = await ac.halo.list_invoices(client_id=contract.client_id) if contract.client_id else \
            await ac.halo.list_invoices(contract_id=contract_id)
        entries = await ac.halo.list_time_entries(start=period_start, end=period_end)
    book = rc.index_book([h for h in headers if h.contract_id in (None, contract_id)], invoices, entries)
    result = rc.reconcile_contract(
        contract, recurring_lines=book.recurring_lines.get(contract_id, []),
        billed_lines=book.billed_lines.get(contract_id, []), time_entries=book.time_entries.get(contract_id, []),
        period_start=period_start, period_end=period_end, months_of=ac.codes.months_of,
        invoices_by_id=book.invoices_by_id, recurring_from=_recurring_from(start, period_end))
    return ReconcileContractResult(period_start=period_start, period_end=period_end, tolerance=rc.TOLERANCE,
                                   no_history=_gap_view(gap, first), reconciliation=_view(result),
                                   warnings=period_warnings([result]),
                                   csv=reconciliation_csv([result]) if format == "csv" else None)


def _recurring_from(start: date | None, period_end: date) -> date:
    """None (the whole period predates the history): after the period, so nothing recurring is due."""
    return start if start is not None else period_end + timedelta(days=1)


def _gap_view(gap: tuple[date, date] | None, first: date | None) -> NoHistory | None:
    if gap is None or first is None:
        return None
    return NoHistory(period_start=gap[0], period_end=gap[1], history_starts=first.replace(day=1))


def period_warnings(results: list[rc.ContractReconciliation]) -> list[str]:
    """One warning per billing frequency the code map does not know, naming its contracts."""
    unknown: dict[str, set[int]] = {}
    for r in results:
        for frequency in r.unknown_periods:
            unknown.setdefault(frequency, set()).add(r.contract.id)
    return [rc.unknown_period_warning(f, ids) for f, ids in sorted(unknown.items())]


class _Progress:
    """Pages done over every sweep, reported as they come in (total once every sweep knows its own)."""

    def __init__(self, ctx: Context, kinds: tuple[str, ...]) -> None:
        self.ctx = ctx
        progress_of(ctx).claim()  # every page is reported below
        self.done = dict.fromkeys(kinds, 0)
        self.total: dict[str, int | None] = dict.fromkeys(kinds)

    def pages(self) -> int:
        return sum(self.done.values())

    def grand_total(self) -> int | None:
        if any(t is None for t in self.total.values()):
            return None
        return sum(t or 0 for t in self.total.values()) + 1  # + the reconciliation itself

    def on_page(self, kind: str) -> Callable[[int, int | None], Awaitable[None]]:
        async def report(done: int, total: int | None) -> None:
            self.done[kind] = done
            self.total[kind] = max(total, done) if total is not None else None
            await progress_of(self.ctx).report(self.pages(), self.grand_total(),
                                               f"read {kind}: page {done} of {total if total is not None else '?'}")

        return report

    async def detail(self, done: int, total: int) -> None:
        """A contract detail read (after the sweeps, so their totals are known)."""
        before = self.pages()
        await progress_of(self.ctx).report(before + done, before + total + 1,
                                           f"read contract details: {done} of {total}")

    async def finish(self, message: str, details: int = 0) -> None:
        total = self.pages() + details + 1
        await progress_of(self.ctx).report(total, total, message)


@halo_tool(group="reconciliation", kind="read", title="Reconcile billing across the contract book")
async def reconcile_billing(
    period_start: PeriodStart,
    period_end: PeriodEnd,
    ctx: Context,
    client_id: ClientId | None = None,
    min_variance: Annotated[Number, Field(description="Smallest amount listed")] = 0,
    format: FormatArg = "json",
    limit: Annotated[int, Field(strict=True, ge=1, le=1000)] = 10,
    cursor: Cursor = None,
    detail: Annotated[Literal["summary", "full"], Field(description="'full': with evidence ids")] = "summary",
) -> ReconcileBillingResult:
    """Billing check of the book (or a client): totals, then contracts by money owed or to collect."""
    check_period(period_start, period_end)
    page_key = fingerprint({"tool": "reconcile_billing", "start": period_start, "end": period_end,
                            "client": client_id, "min": str(min_variance), "limit": limit, "format": format})
    cursor_offset(cursor, page_key, "reconcile_billing")  # a bad cursor fails before any read
    min_variance = Decimal(min_variance)
    if min_variance < 0:
        raise invalid("min_variance", f"must be zero or more (got {min_variance})",
                      "give the smallest amount owed or to collect worth listing, e.g. 50")
    ac = app(ctx)
    halo = ac.halo
    kinds = ("contracts", "recurring invoices", "invoices", "time entries")
    progress = _Progress(ctx, kinds)
    data: dict[str, list] = {}

    async def sweep(kind: str, read: Callable[..., Awaitable[list]], **kwargs: object) -> None:
        data[kind] = await read(on_page=progress.on_page(kind), **kwargs)

    async def history() -> None:
        data["first invoice"] = [rc.billing_history_start(await halo.earliest_invoices())]

    async with halo_errors():
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(history)
                tg.start_soon(lambda: sweep("contracts", halo.list_contracts,
                                            query=ContractQuery(client_id=client_id, include_inactive=True)))
                tg.start_soon(lambda: sweep("recurring invoices", halo.list_recurring_invoices,
                                            client_id=client_id, include_lines=True))
                # invoices raised up to two months either side of the period (billing in advance
                # or in arrears): Halo filters them by invoice date, not the whole history
                tg.start_soon(lambda: sweep("invoices", halo.list_invoices, client_id=client_id,
                                            start=period_start - INVOICE_SLACK, end=period_end + INVOICE_SLACK))
                tg.start_soon(lambda: sweep("time entries", halo.list_time_entries, start=period_start,
                                            end=period_end))
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    start, gap = rc.history_window(period_start, period_end, data["first invoice"][0])
    book = rc.index_book(data["recurring invoices"], data["invoices"], data["time entries"])
    checked = []
    for contract in data["contracts"]:
        if client_id is not None and contract.client_id not in (None, client_id):
            continue
        active = (contract.status or "").casefold() == "active"
        if not active and contract.id not in book.billed_lines and contract.id not in book.time_entries:
            continue
        checked.append((contract, active))

    # List rows lack a prepaid block's hours: read the detail of the few contracts whose unbilled
    # time needs the block rate, so this tool prices time as reconcile_contract_billing does.
    need = [n for n, (contract, _) in enumerate(checked)
            if rc.needs_block_rate(contract, book.time_entries.get(contract.id, []), period_start, period_end)]
    async with halo_errors():
        for done, n in enumerate(need, start=1):
            contract, active = checked[n]
            checked[n] = (await halo.get_contract(contract.id, details=True), active)
            await progress.detail(done, len(need))

    results: list[rc.ContractReconciliation] = []
    for contract, active in checked:
        result = rc.reconcile_contract(
            contract, recurring_lines=book.recurring_lines.get(contract.id, []),
            billed_lines=book.billed_lines.get(contract.id, []), time_entries=book.time_entries.get(contract.id, []),
            period_start=period_start, period_end=period_end, months_of=ac.codes.months_of,
            invoices_by_id=book.invoices_by_id, recurring_from=_recurring_from(start, period_end))
        if active or result.findings or result.billed or result.unbilled.count:
            results.append(result)
    await progress.finish(f"reconciled {len(results)} contracts", len(need))
    counts = SweepCounts(contracts=len(data["contracts"]), recurring_invoices=len(data["recurring invoices"]),
                         invoices=len(data["invoices"]), time_entries=len(data["time entries"]),
                         pages=progress.pages(), contract_details=len(need), requests=progress.pages() + len(need) + 1)
    page = Page(cursor=cursor, limit=limit, key=page_key, full=detail == "full")
    out = _book_result(results, period_start, period_end, client_id, min_variance, format, page, counts)
    out.no_history = _gap_view(gap, data["first invoice"][0])
    return out



def _book_result(results: list[rc.ContractReconciliation], period_start: date, period_end: date,
                 client_id: int | None, min_variance: Decimal, format: str, page: Page,
                 counts: SweepCounts) -> ReconcileBillingResult:
    with_findings = [r for r in results if r.findings]
    shortlist = [r for r in with_findings if max(r.owed_to_client, r.to_collect) >= min_variance]
    shortlist.sort(key=lambda r: (-(r.owed_to_client + r.to_collect), -abs(r.variance), r.contract.id))
    by_kind: dict[str, list[Decimal]] = {}
    for r in results:
        for f in r.findings:
            by_kind.setdefault(f.kind, []).append(f.amount)
    order = {k: n for n, k in enumerate(rc.FINDING_KINDS)}
    totals = ReconcileTotals(
        contracts_checked=len(results), contracts_with_findings=len(with_findings), contracts_listed=len(shortlist),
        expected_recurring=sum((r.expected for r in results), ZERO), billed=sum((r.billed for r in results), ZERO),
        credits=sum((r.credits for r in results), ZERO), variance=sum((r.variance for r in results), ZERO),
        other_billed=sum((r.other_billed for r in results), ZERO),
        unbilled_time_entries=sum(r.unbilled.count for r in results),
        unbilled_time_hours=sum((r.unbilled.hours for r in results), ZERO),
        unbilled_time_amount=sum((r.unbilled.amount for r in results), ZERO),
        owed_to_clients=sum((r.owed_to_client for r in results), ZERO),
        to_collect=sum((r.to_collect for r in results), ZERO),
        by_kind=[KindTotal(kind=k, findings=len(v), amount=sum(v, ZERO))
                 for k, v in sorted(by_kind.items(), key=lambda kv: order.get(kv[0], 99))])
    csv_text = reconciliation_csv(shortlist) if format == "csv" else None
    rows, next_cursor = paged(shortlist, page.cursor, page.limit, page.key, "reconcile_billing")
    shown: list[FindingRow | ContractReconciliationView] = []
    if csv_text is None:
        shown = [_view(r) if page.full else _row(r) for r in rows]
    else:
        next_cursor = None
    return ReconcileBillingResult(
        period_start=period_start, period_end=period_end, client_id=client_id, min_variance=min_variance,
        tolerance=rc.TOLERANCE, totals=totals, contracts=shown, truncated=next_cursor is not None,
        next_cursor=next_cursor, records_read=counts, warnings=period_warnings(results), csv=csv_text)


@dataclass(frozen=True)
class Page:
    cursor: str | None
    limit: int
    key: str
    full: bool
