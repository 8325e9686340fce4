"""Billing reconciliation: what a contract should have billed in a period, what it did bill,
what time nobody invoiced, and what looks wrong. Pure: no I/O, Decimal money, ``date`` days.

How the figures are made (docs/reconciliation.md and the tool descriptions repeat it):

* **Billing cycle.** A contract bills in advance, one charge per billing period of each
  recurring line. Periods run on the contract's cycle: whole months counted from the first
  day of the contract's start month (else the line's, else the window's), in steps of the
  line's own frequency (else the contract's, else monthly). That is how a recurring invoice
  that runs on the 1st bills: a quarterly line every third month, an annual line once a year.
* **Expected recurring** for the window: every charge *due* in it, i.e. every billing period
  whose first billable day falls inside the window. A charge is quantity x unit price,
  prorated by days when the line or the contract starts or ends inside its billing period
  (live days / days of the period). The line's dates are clipped to the contract's.
  Pending, Cancelled and On Hold contracts are not billable (the contract guide's status
  table): nothing is expected of them. Expired contracts are judged by their end date.
* **Accrued recurring** is also given: the same lines converted to the window by days
  (a share of each billing period by the days that fall inside the window), the revenue the
  window earns whatever the invoice dates. It is information; findings compare charges due.
* **Billed** is the net of the contract's recurring invoice lines: a line belongs to the
  contract named on the line, else to the invoice's contract, so an invoice that mixes
  contracts is split. Recurring billing means invoices made from a recurring invoice (they
  carry its id or a billing period); credit notes subtract. A line is due on the first day of
  its service period (the line's dates, else the invoice's period, else the credited
  invoice's period, else the invoice date) and counts in the window when that day is in it.
  Other invoices of the contract (labour, one-off) are reported as ``other_billed`` and not
  compared with recurring lines. Voided invoices are ignored.
* **Slots.** The window is split into the contract's billing periods (clipped to the window).
  In each slot, something expected and nothing billed is ``missing_invoice``; otherwise a
  difference beyond the tolerance is ``under_billed`` or ``over_billed``.
* Billing that is wrong for a known reason is reported as that reason and kept out of the slot
  comparison, so nothing is counted twice: the days of a billed line after the contract's end
  (``billed_after_contract_end``, by days of the line's service period), recurring billing of
  a contract that is not billable (``billed_while_not_active``), a second invoice with the same
  service period and amount as an earlier one that no credit note cancels
  (``duplicate_invoice``).
* ``line_outside_contract_dates``: a recurring line whose dates reach outside the contract's;
  the amount is what that line would bill in the window on the days outside (often 0.00 when
  the overhang is not in the window; the finding is still reported as a set-up error).
* **Unbilled time**: billable time entries against the contract dated in the window without an
  invoice number. Hours a prepaid block covers are not unbilled. The amount is the entry's own
  charge amount, else - on a Prepaid Hours contract only - its chargeable hours at the block's
  rate (block price / block hours: ``value / prepaid_hours``, which only a contract detail read
  carries). There is no default rate (the server's ``cost_rate`` is a cost, not a charge):
  entries with neither are counted and listed but add nothing (``unpriced_entries``).
* **Billing periods** come from the tenant's code map (``HALO_BILLING_PERIOD_CODES``). A line's
  own frequency, else the contract's, decides; none at all is monthly. A frequency the map does
  not know (``"code 7"``) is also counted as monthly, and a warning says so (``warnings``).
* **Money, two ways.** What the findings put in question is never added into one figure:
  ``owed_to_client`` is billing the client should not have paid (over-billing, billing after
  the end or while not active, duplicates); ``to_collect`` is money the MSP has not billed yet
  (missing invoices, under-billing, unbilled time). A line set up outside the contract's dates
  is a set-up error, counted in neither.
* **History.** Halo holds no recurring billing before the tenant's first invoice made from a
  recurring invoice (``billing_history_start``, from its earliest invoices; the first invoice of
  any kind when none of them is): the part of a window before the month of that invoice
  (``history_window``) is not reconciled, and is reported once as having no history instead of
  as a missing invoice on every contract.
* **Tolerance**: differences of at most one cent (``TOLERANCE``) are rounding, not findings;
  amounts are compared after rounding half-up to cents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from halo_contracts.domain.models import Contract, Invoice, InvoiceLine, RecurringInvoice, RecurringItem, TimeEntry
from halo_contracts.domain.money import (
    ZERO,
    amount_for_window,
    billing_periods,
    cents,
    days_inclusive,
    overlap,
)

TOLERANCE = Decimal("0.01")

FINDING_KINDS: tuple[str, ...] = (
    "missing_invoice",
    "under_billed",
    "over_billed",
    "billed_after_contract_end",
    "billed_while_not_active",
    "line_outside_contract_dates",
    "unbilled_time",
    "duplicate_invoice",
)

# Statuses the contract guide marks "Not billable" while the contract may still be current.
# Expired contracts are judged by their end date instead (billed_after_contract_end), so a past
# window of a now-expired contract still reconciles normally.
NOT_BILLABLE_STATUSES = frozenset({"pending", "cancelled", "on hold"})

MonthsOf = Callable[[str | None], int | None]

OWED_KINDS = frozenset({"over_billed", "billed_after_contract_end", "billed_while_not_active", "duplicate_invoice"})
COLLECT_KINDS = frozenset({"missing_invoice", "under_billed", "unbilled_time"})


def billing_history_start(earliest: Iterable[Invoice]) -> date | None:
    """Where the tenant's recurring billing in Halo starts, from its earliest invoices: the date
    of the first one made from a recurring invoice; when none of them is (a few labour invoices
    came first), the first invoice's date, which cuts less. None when Halo holds no invoice."""
    dated = sorted((i for i in earliest if i.invoice_date is not None), key=lambda i: i.invoice_date)
    recurring = [i for i in dated if is_recurring_billing(i, {})]
    first = recurring or dated
    return first[0].invoice_date if first else None


def history_window(period_start: date, period_end: date, first_invoice: date | None
                   ) -> tuple[date | None, tuple[date, date] | None]:
    """(the day reconciling starts, or None when the whole window predates the history; the
    span with no history, or None). History starts on the first day of the month of
    ``first_invoice`` (:func:`billing_history_start`); a tenant with no invoice at all has no
    history to cut at."""
    if first_invoice is None:
        return period_start, None
    start = first_invoice.replace(day=1)
    if start <= period_start:
        return period_start, None
    if start > period_end:
        return None, (period_start, period_end)
    return start, (period_start, start - timedelta(days=1))


@dataclass(frozen=True)
class Finding:
    kind: str
    amount: Decimal  # money in question, rounded to cents, never negative
    period_start: date
    period_end: date
    detail: str
    invoice_ids: tuple[int, ...] = ()
    invoice_line_ids: tuple[int, ...] = ()
    recurring_line_ids: tuple[int, ...] = ()
    time_entry_ids: tuple[int, ...] = ()


@dataclass
class UnbilledTime:
    count: int = 0
    hours: Decimal = ZERO
    amount: Decimal = ZERO
    entry_ids: list[int] = field(default_factory=list)
    unpriced_entries: int = 0


@dataclass
class ContractReconciliation:
    contract: Contract
    period_start: date
    period_end: date
    expected: Decimal  # recurring charges due in the window
    accrued: Decimal  # recurring lines converted to the window by days
    billed: Decimal  # recurring billing in the window, net of credits
    credits: Decimal  # credits in the window, as a positive amount
    other_billed: Decimal  # labour and one-off invoices of the contract dated in the window
    unbilled: UnbilledTime
    prepaid_hours_used: Decimal | None
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    recurring_line_ids: list[int] = field(default_factory=list)
    invoice_ids: list[int] = field(default_factory=list)
    unknown_periods: list[str] = field(default_factory=list)  # billing frequencies treated as monthly

    @property
    def variance(self) -> Decimal:
        """Billed minus expected recurring (negative: under-billed)."""
        return self.billed - self.expected

    @property
    def owed_to_client(self) -> Decimal:
        """Billed and not owed: over-billing, billing after the end or while not active, duplicates."""
        return sum((f.amount for f in self.findings if f.kind in OWED_KINDS), ZERO)

    @property
    def to_collect(self) -> Decimal:
        """Owed and not billed: missing invoices, under-billing, unbilled time."""
        return sum((f.amount for f in self.findings if f.kind in COLLECT_KINDS), ZERO)

    @property
    def clean(self) -> bool:
        return not self.findings


# ---- gathering a book by contract (one pass over each record kind) -----------------------


@dataclass
class BilledLine:
    """An invoice line attributed to one contract."""

    invoice: Invoice
    line: InvoiceLine | None  # None: an invoice without lines, taken as one line of its total
    amount: Decimal  # signed: credits negative

    @property
    def line_id(self) -> int | None:
        return self.line.id if self.line is not None else None


@dataclass
class BillingBook:
    """Recurring lines, billed lines and time entries, indexed by contract id."""

    recurring_lines: dict[int, list[RecurringItem]] = field(default_factory=lambda: defaultdict(list))
    billed_lines: dict[int, list[BilledLine]] = field(default_factory=lambda: defaultdict(list))
    time_entries: dict[int, list[TimeEntry]] = field(default_factory=lambda: defaultdict(list))
    invoices_by_id: dict[int, Invoice] = field(default_factory=dict)


def line_amount(invoice: Invoice, line: InvoiceLine) -> Decimal:
    """A line's signed net amount (credit notes negative, whatever sign the line carries)."""
    amount = line.total
    if amount == ZERO and line.quantity and line.unit_price:
        amount = line.quantity * line.unit_price
    if invoice.is_credit and amount > ZERO:
        amount = -amount
    return amount


def index_book(recurring_invoices: Iterable[RecurringInvoice], invoices: Iterable[Invoice],
               time_entries: Iterable[TimeEntry]) -> BillingBook:
    """Group every record kind by contract, one pass over each."""
    book = BillingBook()
    for header in recurring_invoices:
        for item in header.lines:
            cid = item.contract_id or header.contract_id
            if cid:
                book.recurring_lines[cid].append(item)
    for invoice in invoices:
        book.invoices_by_id[invoice.id] = invoice
        if invoice.voided:
            continue
        if not invoice.lines:
            if invoice.contract_id and invoice.total:
                amount = invoice.total
                if invoice.is_credit and amount > ZERO:
                    amount = -amount
                book.billed_lines[invoice.contract_id].append(BilledLine(invoice, None, amount))
            continue
        for line in invoice.lines:
            cid = line.contract_id or invoice.contract_id
            if cid:
                book.billed_lines[cid].append(BilledLine(invoice, line, line_amount(invoice, line)))
    for entry in time_entries:
        if entry.contract_id:
            book.time_entries[entry.contract_id].append(entry)
    return book


# ---- expected recurring ------------------------------------------------------------------


PERIOD_CODES_SETTING = "HALO_BILLING_PERIOD_CODES"


def period_months(months_of: MonthsOf, *frequencies: str | None) -> int:
    """Months per billing period: the first frequency given decides (a line's own, then its
    contract's); none at all is monthly, and so is one the tenant's code map does not know
    (:func:`unknown_periods` finds those, so the caller can warn instead of assuming silently)."""
    frequency = next((f for f in frequencies if f), None)
    months = months_of(frequency) if frequency else None
    return months if months and months > 0 else 1


def unknown_periods(months_of: MonthsOf, frequencies: Iterable[str | None]) -> list[str]:
    """The billing frequencies among ``frequencies`` the code map does not know, each once."""
    out: list[str] = []
    for frequency in frequencies:
        if frequency and not months_of(frequency) and frequency not in out:
            out.append(frequency)
    return out


def unknown_period_warning(frequency: str, contract_ids: Iterable[int] = ()) -> str:
    """The warning for a billing frequency the code map does not know."""
    ids = sorted(set(contract_ids))
    where = f" (contract{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))})" if ids else ""
    return (f"billing period '{frequency}' is not in {PERIOD_CODES_SETTING}; treated as monthly - add it"
            f"{where}")


def used_frequencies(contract: Contract, items: Iterable[RecurringItem], *, contract_too: bool = True
                     ) -> list[str | None]:
    """The frequencies the figures of a contract rely on: each line's own else the contract's, and
    the contract's own (its billing cycle) when ``contract_too``."""
    used = [item.billing_frequency or contract.billing_frequency for item in items]
    if contract_too:
        used.append(contract.billing_frequency)
    return used


def is_billable_status(contract: Contract) -> bool:
    return (contract.status or "Active").strip().casefold() not in NOT_BILLABLE_STATUSES


def in_force(contract: Contract, day: date) -> bool:
    """Whether the contract bills on ``day``: a billable status (see :data:`NOT_BILLABLE_STATUSES`),
    not Expired (the status says it is over, whatever its end date) and ``day`` within its start
    and end dates (open ends count as open)."""
    if not is_billable_status(contract) or (contract.status or "").strip().casefold() == "expired":
        return False
    return (contract.start_date is None or contract.start_date <= day) and \
        (contract.end_date is None or day <= contract.end_date)


def line_live_on(item: RecurringItem, contract: Contract, day: date) -> bool:
    """Whether a recurring line bills on ``day``: active, and ``day`` within its dates clipped to
    the contract's (:func:`line_live_dates`)."""
    if item.inactive:
        return False
    live = line_live_dates(item, contract)
    return live is not None and (live[0] is None or live[0] <= day) and (live[1] is None or day <= live[1])


def line_live_dates(item: RecurringItem, contract: Contract) -> tuple[date | None, date | None] | None:
    """The days a line may bill: its own dates clipped to the contract's (None: no such day)."""
    start = max(filter(None, (item.start_date, contract.start_date)), default=None)
    end = min(filter(None, (item.end_date, contract.end_date)), default=None)
    if start and end and start > end:
        return None
    return start, end


def cycle_anchor(contract: Contract, item: RecurringItem | None, window_start: date) -> date:
    """First day of the contract's billing cycle: the 1st of its start month."""
    first = contract.start_date or (item.start_date if item is not None else None) or window_start
    return first.replace(day=1)


@dataclass(frozen=True)
class Charge:
    """One billing period's charge of a recurring line."""

    line: RecurringItem
    due: date  # first billable day of the period
    period_start: date
    period_end: date
    amount: Decimal  # unrounded


def _charges(item: RecurringItem, live: tuple[date | None, date | None], anchor: date, months: int,
             window_start: date, window_end: date) -> list[Charge]:
    per_period = item.quantity * item.unit_price
    out = []
    for p_start, p_end in billing_periods(anchor, months, window_start, window_end):
        inside = overlap(p_start, p_end, live[0], live[1])
        if inside is None or not window_start <= inside[0] <= window_end:
            continue
        share = Decimal(days_inclusive(*inside)) / Decimal(days_inclusive(p_start, p_end))
        out.append(Charge(item, inside[0], p_start, p_end, per_period * share))
    return out


def charges_due(item: RecurringItem, contract: Contract, window_start: date, window_end: date,
                months_of: MonthsOf) -> list[Charge]:
    """The line's charges due in [window_start, window_end], prorated by live days."""
    if item.inactive:
        return []
    live = line_live_dates(item, contract)
    if live is None:
        return []
    months = period_months(months_of, item.billing_frequency, contract.billing_frequency)
    return _charges(item, live, cycle_anchor(contract, item, window_start), months, window_start, window_end)


def expected_recurring(contract: Contract, items: Iterable[RecurringItem], window_start: date, window_end: date,
                       months_of: MonthsOf) -> Decimal:
    """Recurring charges due in the window (unrounded); nothing for non-billable contracts."""
    if not is_billable_status(contract):
        return ZERO
    return sum((c.amount for i in items for c in charges_due(i, contract, window_start, window_end, months_of)),
               ZERO)


def accrued_recurring(contract: Contract, items: Iterable[RecurringItem], window_start: date, window_end: date,
                      months_of: MonthsOf) -> Decimal:
    """The lines' worth over the window by days (each billing period shared by its days)."""
    if not is_billable_status(contract):
        return ZERO
    total = ZERO
    for item in items:
        live = None if item.inactive else line_live_dates(item, contract)
        if live is None:
            continue
        months = period_months(months_of, item.billing_frequency, contract.billing_frequency)
        total += amount_for_window(item.quantity * item.unit_price, months, window_start, window_end,
                                   active_start=live[0], active_end=live[1],
                                   anchor=cycle_anchor(contract, item, window_start))
    return total


# ---- billed --------------------------------------------------------------------------------


def is_recurring_billing(invoice: Invoice, invoices_by_id: dict[int, Invoice]) -> bool:
    """Invoices made from a recurring invoice carry its id or a billing period (credit notes
    of such invoices count too)."""
    if invoice.recurring_invoice_id or (invoice.period_start and invoice.period_end):
        return True
    if invoice.credit_for_invoice_id:
        original = invoices_by_id.get(invoice.credit_for_invoice_id)
        return original is not None and original.id != invoice.id and is_recurring_billing(original, {})
    return False


def service_period(billed: BilledLine, invoices_by_id: dict[int, Invoice]) -> tuple[date, date] | None:
    """The days a billed line pays for, when the records say so."""
    line = billed.line
    if line is not None and line.start_date and line.end_date and line.start_date <= line.end_date:
        return line.start_date, line.end_date
    inv = billed.invoice
    if inv.period_start and inv.period_end and inv.period_start <= inv.period_end:
        return inv.period_start, inv.period_end
    if inv.credit_for_invoice_id:
        original = invoices_by_id.get(inv.credit_for_invoice_id)
        if original is not None and original.period_start and original.period_end:
            return original.period_start, original.period_end
    return None


def _days_after(service: tuple[date, date] | None, when: date | None, end: date | None) -> Decimal:
    """Share (0..1) of a billed line that pays for days after ``end``."""
    if end is None:
        return ZERO
    if service is None:
        return Decimal(1) if when is not None and when > end else ZERO
    if service[0] > end:
        return Decimal(1)
    if service[1] <= end:
        return ZERO
    return Decimal(days_inclusive(end + timedelta(days=1), service[1])) / Decimal(days_inclusive(*service))


# ---- the reconciliation of one contract ------------------------------------------------------


def _ids(values: Iterable[int | None]) -> tuple[int, ...]:
    return tuple(sorted({v for v in values if v is not None}))


def contract_slots(contract: Contract, window_start: date, window_end: date,
                   months_of: MonthsOf) -> list[tuple[date, date]]:
    """The contract's billing periods clipped to the window, in order."""
    months = period_months(months_of, contract.billing_frequency)
    slots = []
    for p_start, p_end in billing_periods(cycle_anchor(contract, None, window_start), months, window_start,
                                          window_end):
        inside = overlap(p_start, p_end, window_start, window_end)
        if inside:
            slots.append(inside)
    return slots


@dataclass
class _Billed:
    b: BilledLine
    due: date | None
    service: tuple[date, date] | None


def reconcile_contract(contract: Contract, *, recurring_lines: Iterable[RecurringItem],
                       billed_lines: Iterable[BilledLine], time_entries: Iterable[TimeEntry],
                       period_start: date, period_end: date, months_of: MonthsOf,
                       invoices_by_id: dict[int, Invoice] | None = None,
                       recurring_from: date | None = None) -> ContractReconciliation:
    """Reconcile one contract over [period_start, period_end] (inclusive).

    ``recurring_from``: where the tenant's recurring billing history starts
    (:func:`history_window`); recurring charges are expected from then on only. Time and other
    billing are judged over the whole window.

    Unbilled time on a Prepaid Hours contract is priced at the block's rate only when
    ``contract`` carries the block hours (a detail read; :func:`needs_block_rate` tells when a
    list row is not enough)."""
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    items = [i for i in recurring_lines if not i.inactive]
    invoices_by_id = dict(invoices_by_id or {})
    all_billed = list(billed_lines)
    for b in all_billed:
        invoices_by_id.setdefault(b.invoice.id, b.invoice)
    window = (period_start, period_end)
    rstart = max(period_start, recurring_from) if recurring_from else period_start
    has_history = rstart <= period_end
    rwindow = (rstart, period_end)
    billable_status = is_billable_status(contract)
    recurring, other_billed = _split_billing(all_billed, invoices_by_id, window)
    billed_net = sum((r.b.amount for r in recurring), ZERO)
    credits = -sum((r.b.amount for r in recurring if r.b.amount < ZERO), ZERO)

    findings, duplicate_ids = _duplicate_findings(recurring, all_billed, invoices_by_id)
    comparable = _after_end_and_idle(contract, recurring, duplicate_ids, findings)
    charges = [c for i in items for c in charges_due(i, contract, rstart, period_end, months_of)] \
        if billable_status and has_history else []
    if has_history:
        _slot_findings(contract, charges, comparable, rwindow, months_of, findings)
        _outside_findings(contract, items, rwindow, months_of, findings)
    notes: list[str] = []
    entries = [e for e in time_entries if e.when is not None and period_start <= e.when <= period_end]
    unbilled = _time_findings(contract, entries, window, findings, notes)
    prepaid_used = sum((e.prepay_hours for e in entries), ZERO) if is_prepaid(contract) else None

    if not billable_status:
        notes.append(f"the contract is {contract.status}: no recurring billing is expected")
    elif not items:
        notes.append("the contract has no recurring lines: no recurring billing is expected")

    order = {k: n for n, k in enumerate(FINDING_KINDS)}
    findings.sort(key=lambda f: (f.period_start, order.get(f.kind, 99)))
    return ContractReconciliation(
        contract=contract, period_start=period_start, period_end=period_end,
        expected=cents(sum((c.amount for c in charges), ZERO)),
        accrued=cents(accrued_recurring(contract, items, rstart, period_end, months_of)) if has_history else ZERO,
        billed=cents(billed_net), credits=cents(credits), other_billed=cents(other_billed), unbilled=unbilled,
        prepaid_hours_used=prepaid_used, findings=findings, notes=notes,
        recurring_line_ids=list(_ids(i.id for i in items)),
        invoice_ids=list(_ids(r.b.invoice.id for r in recurring)),
        unknown_periods=unknown_periods(months_of, used_frequencies(contract, items)))


_Window = tuple[date, date]


def _split_billing(all_billed: list[BilledLine], invoices_by_id: dict[int, Invoice], window: _Window
                   ) -> tuple[list[_Billed], Decimal]:
    """The contract's recurring billing due in the window (compared) and its other billing
    dated in the window (reported as a total)."""
    recurring: list[_Billed] = []
    other_billed = ZERO
    for b in all_billed:
        if is_recurring_billing(b.invoice, invoices_by_id):
            service = service_period(b, invoices_by_id)
            due = service[0] if service else b.invoice.invoice_date
            if due is not None and window[0] <= due <= window[1]:
                recurring.append(_Billed(b, due, service))
        elif b.invoice.invoice_date and window[0] <= b.invoice.invoice_date <= window[1]:
            other_billed += b.amount
    return recurring, other_billed


def _duplicate_findings(recurring: list[_Billed], all_billed: list[BilledLine], invoices_by_id: dict[int, Invoice]
                        ) -> tuple[list[Finding], set[int]]:
    """duplicate_invoice: same service period and amount as an earlier invoice, not credited."""
    credited_ids = {b.invoice.credit_for_invoice_id for b in all_billed
                    if b.invoice.credit_for_invoice_id and b.amount < ZERO}
    by_invoice: dict[int, list[_Billed]] = defaultdict(list)
    for r in recurring:
        if r.b.amount >= ZERO and not r.b.invoice.is_credit:
            by_invoice[r.b.invoice.id].append(r)
    findings: list[Finding] = []
    seen: dict[tuple, int] = {}
    duplicate_ids: set[int] = set()
    for inv_id in sorted(by_invoice, key=lambda i: (invoices_by_id[i].invoice_date or date.min, i)):
        rows = by_invoice[inv_id]
        if inv_id in credited_ids:
            continue
        total = cents(sum((r.b.amount for r in rows), ZERO))
        key = (rows[0].service or rows[0].due, total)
        if total == ZERO:
            continue
        if key not in seen:
            seen[key] = inv_id
            continue
        duplicate_ids.add(inv_id)
        findings.append(Finding(
            kind="duplicate_invoice", amount=total, period_start=key[0][0] if rows[0].service else rows[0].due,
            period_end=key[0][1] if rows[0].service else rows[0].due,
            detail=f"invoice {inv_id} repeats invoice {seen[key]}: same service period and amount",
            invoice_ids=(seen[key], inv_id), invoice_line_ids=_ids(r.b.line_id for r in rows)))
    return findings, duplicate_ids


def _after_end_and_idle(contract: Contract, recurring: list[_Billed], duplicate_ids: set[int],
                        findings: list[Finding]) -> list[tuple[_Billed, Decimal]]:
    """Billing for days after the contract's end, and billing while it is not billable, become
    findings; what is left (with its share) is returned for the slot comparison."""
    end = contract.end_date
    billable_status = is_billable_status(contract)
    late: list[tuple[_Billed, Decimal]] = []
    idle: list[tuple[_Billed, Decimal]] = []
    comparable: list[tuple[_Billed, Decimal]] = []
    for r in recurring:
        inv = r.b.invoice
        if inv.id in duplicate_ids or (inv.credit_for_invoice_id in duplicate_ids and r.b.amount < ZERO):
            continue
        after = r.b.amount * _days_after(r.service, inv.invoice_date, end)
        rest = r.b.amount - after
        if after != ZERO:
            late.append((r, after))
        if rest != ZERO:
            (comparable if billable_status else idle).append((r, rest))
    for kind, rows, why in (
        ("billed_after_contract_end", late, f"billed for days after the contract ended on {end}"),
        ("billed_while_not_active", idle, f"billed while the contract is {contract.status}"),
    ):
        total = cents(sum((p for _, p in rows), ZERO))
        if rows and abs(total) >= TOLERANCE:
            findings.append(Finding(
                kind=kind, amount=abs(total), period_start=min(r.due for r, _ in rows),
                period_end=max(r.service[1] if r.service else r.due for r, _ in rows), detail=why,
                invoice_ids=_ids(r.b.invoice.id for r, _ in rows),
                invoice_line_ids=_ids(r.b.line_id for r, _ in rows)))
    return comparable


def _slot_findings(contract: Contract, charges: list[Charge], comparable: list[tuple[_Billed, Decimal]],
                   window: _Window, months_of: MonthsOf, findings: list[Finding]) -> None:
    """Slot by slot: charges due against what is left of the billing."""
    for slot_start, slot_end in contract_slots(contract, window[0], window[1], months_of):
        slot_charges = [c for c in charges if slot_start <= c.due <= slot_end]
        expected = cents(sum((c.amount for c in slot_charges), ZERO))
        slot_rows = [(r, p) for r, p in comparable if slot_start <= r.due <= slot_end]
        billed = cents(sum((p for _, p in slot_rows), ZERO))
        diff = billed - expected
        line_ids = _ids(c.line.id for c in slot_charges)
        if expected > ZERO and not slot_rows:
            findings.append(Finding(
                kind="missing_invoice", amount=expected, period_start=slot_start, period_end=slot_end,
                detail=f"nothing billed for {slot_start}..{slot_end}; the recurring lines expect {expected}",
                recurring_line_ids=line_ids))
        elif abs(diff) > TOLERANCE:
            findings.append(Finding(
                kind="under_billed" if diff < ZERO else "over_billed", amount=abs(diff), period_start=slot_start,
                period_end=slot_end, detail=f"billed {billed} where the recurring lines expect {expected}",
                invoice_ids=_ids(r.b.invoice.id for r, _ in slot_rows),
                invoice_line_ids=_ids(r.b.line_id for r, _ in slot_rows), recurring_line_ids=line_ids))


def _outside_findings(contract: Contract, items: list[RecurringItem], window: _Window, months_of: MonthsOf,
                      findings: list[Finding]) -> None:
    """line_outside_contract_dates: a line set up to bill on days the contract does not cover."""
    for item in items:
        outside = _outside_amount(item, contract, window[0], window[1], months_of)
        if outside is not None:
            findings.append(Finding(
                kind="line_outside_contract_dates", amount=cents(outside), period_start=window[0],
                period_end=window[1],
                detail=(f"recurring line {item.id} runs {item.start_date or 'open'}..{item.end_date or 'open'}, "
                        f"outside the contract's {contract.start_date or 'open'}..{contract.end_date or 'open'}"),
                recurring_line_ids=_ids([item.id])))


def _time_findings(contract: Contract, entries: list[TimeEntry], window: _Window, findings: list[Finding],
                   notes: list[str]) -> UnbilledTime:
    """Unbilled billable time entries in the window (entries already limited to it)."""
    unbilled = unbilled_time(contract, entries)
    if unbilled.count:
        if unbilled.unpriced_entries:
            notes.append(f"{unbilled.unpriced_entries} unbilled entries have no charge amount and the contract "
                         "has no block rate (Prepaid Hours contracts only); their hours are counted but not priced")
        findings.append(Finding(
            kind="unbilled_time", amount=cents(unbilled.amount), period_start=window[0], period_end=window[1],
            detail=f"{unbilled.count} billable time entries ({unbilled.hours} h) have no invoice number",
            time_entry_ids=tuple(unbilled.entry_ids)))
    return unbilled


def _outside_amount(item: RecurringItem, contract: Contract, start: date, end: date,
                    months_of: MonthsOf) -> Decimal | None:
    """What a line would bill in the window on days outside the contract's dates; None when
    the line sits inside the contract's dates."""
    early = bool(item.start_date and contract.start_date and item.start_date < contract.start_date)
    late = bool(item.end_date and contract.end_date and item.end_date > contract.end_date)
    after = bool(item.start_date and contract.end_date and item.start_date > contract.end_date)
    if not (early or late or after):
        return None
    months = period_months(months_of, item.billing_frequency, contract.billing_frequency)
    own = _charges(item, (item.start_date, item.end_date), cycle_anchor(contract, item, start), months, start, end)
    inside = charges_due(item, contract, start, end, months_of)
    return max(sum((c.amount for c in own), ZERO) - sum((c.amount for c in inside), ZERO), ZERO)


# ---- time ------------------------------------------------------------------------------------


def is_prepaid(contract: Contract) -> bool:
    return (contract.type or "").strip().casefold() == "prepaid hours"


def contract_rate(contract: Contract) -> Decimal | None:
    """The charge rate for unbilled hours without a charge amount: a Prepaid Hours contract's
    block rate (block price / block hours), when the contract carries its block hours. Nothing
    else: there is no default rate (the server's cost rate is a cost, not a charge)."""
    return contract.hourly_rate if is_prepaid(contract) else None


def _chargeable(e: TimeEntry) -> Decimal | None:
    """Chargeable hours of an unbilled billable entry; None when it is not unbilled time
    (not billable, invoiced, or covered by the prepaid block)."""
    if not e.billable or e.invoiced:
        return None
    chargeable = e.hours - e.prepay_hours if e.prepay_hours else e.hours
    if chargeable <= ZERO and not e.charge_amount:
        return None  # covered by the prepaid block
    return chargeable


def needs_block_rate(contract: Contract, entries: Iterable[TimeEntry], period_start: date, period_end: date) -> bool:
    """Whether pricing the contract's unbilled time in the window needs the block rate that only a
    contract detail read carries: a Prepaid Hours contract without its block hours (a list row)
    with an unbilled entry that has chargeable hours and no charge amount."""
    if not is_prepaid(contract) or contract_rate(contract) is not None:
        return False
    for e in entries:
        if e.when is None or not period_start <= e.when <= period_end:
            continue
        chargeable = _chargeable(e)
        if chargeable is not None and chargeable > ZERO and not e.charge_amount:
            return True
    return False


def unbilled_time(contract: Contract, entries: Iterable[TimeEntry]) -> UnbilledTime:
    """Billable, uninvoiced time of a contract (entries already limited to the window)."""
    out = UnbilledTime()
    rate = contract_rate(contract)
    for e in entries:
        chargeable = _chargeable(e)
        if chargeable is None:
            continue
        out.count += 1
        out.hours += max(chargeable, ZERO)
        out.entry_ids.append(e.id)
        if e.charge_amount:
            out.amount += e.charge_amount
        elif rate is not None:
            out.amount += chargeable * rate
        else:
            out.unpriced_entries += 1
    out.entry_ids.sort()
    return out
