"""One renewal drafted from data already read, and the choice of how to read for a batch.
Pure functions; no I/O, no clock (``today`` is given).

``draft_renewal`` applies the rules of :mod:`halo_contracts.domain.renewals` to one contract:
its new term and reference come in; out come the new contract's fields, the recurring lines to
copy (with the item uplift) and those left out with the reason, the new value, what happens to
the old contract, and any follow-up.

The read planner (``read_targeted``, ``renewed_per_client``, ``lines_per_contract``) weighs
requests: a detail read per contract plus two lists per client against the book's pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from halo_contracts.domain import guardrails as gr
from halo_contracts.domain import renewals as rn
from halo_contracts.domain.drafts import ContractFields, RecurringItemFields
from halo_contracts.domain.models import Contract, RecurringItem

PREPAID_TYPE = "Prepaid Hours"
ALWAYS_TARGETED_UP_TO = 2  # this many contracts or fewer: targeted reads, whatever the book's size
ExpireOld = Literal["never", "now", "at_end"]


# ---- the read planner --------------------------------------------------------------------------


def book_pages_limit(contracts: int) -> int:
    """Listing the book is worth it while it has at most this many pages (else targeted reads,
    about three requests per contract)."""
    return 2 * contracts + 1


def read_targeted(contracts: int) -> bool:
    """A batch this small is read contract by contract without looking at the book."""
    return contracts <= ALWAYS_TARGETED_UP_TO


def renewed_per_client(clients: int, book_pages: int) -> bool:
    """Halo's ``excluderenewed`` list per client (True) or whole (False)."""
    return clients < book_pages


def lines_list_limit(contracts: int) -> int | None:
    """The whole recurring-invoice list is read while it has at most this many pages; None:
    read each contract's recurring invoices."""
    return None if read_targeted(contracts) else contracts + 1


def same(a: str | None, b: str) -> bool:
    return (a or "").strip().casefold() == b.casefold()


def needs_detail(contract: Contract) -> bool:
    """A prepaid contract's block is not on the list rows."""
    return same(contract.type, PREPAID_TYPE) and contract.prepaid_hours is None


# ---- one renewal -------------------------------------------------------------------------------


@dataclass
class Terms:
    """What the caller asked for, the same for every contract of the batch."""

    uplift: Decimal
    item_uplift: Decimal
    copy_lines: bool
    expire_old: ExpireOld
    today: date


@dataclass
class CopiedLine:
    source: RecurringItem
    fields: RecurringItemFields
    unit_price_after: Decimal
    end_date: date | None


@dataclass
class LeftOut:
    line: RecurringItem
    reason: str


@dataclass
class Draft:
    contract: Contract
    new_ref: str
    new_start: date
    new_end: date
    term_months: int | None
    fields: ContractFields
    value: Decimal | None
    value_from_lines: bool
    lines: list[CopiedLine] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    expire: bool = False
    old_action: str = "left as it is"
    follow_up: date | None = None
    warnings: list[str] = field(default_factory=list)


def _dec(value: Decimal) -> str:
    return f"{value:f}"


def copy_lines(c: Contract, lines: list[RecurringItem], new_start: date, new_end: date,
               item_uplift: Decimal) -> tuple[list[CopiedLine], list[LeftOut]]:
    """The old contract's lines that carry over (uplifted, with their new dates), and the rest."""
    copied: list[CopiedLine] = []
    left_out: list[LeftOut] = []
    for line in sorted(lines, key=lambda x: (x.id or 0)):
        reason = rn.line_not_copied(line.inactive, line.start_date, line.end_date, c.end_date, new_end)
        if reason is not None:
            left_out.append(LeftOut(line, reason))
            continue
        price = rn.apply_uplift(line.unit_price, item_uplift)
        start, end = rn.copied_line_dates(line.start_date, line.end_date, c.end_date, new_start, new_end)
        item: dict[str, Any] = dict(description=line.description, quantity=line.quantity, unit_price=price,
                                    start_date=start)
        for name, value in (("long_description", line.long_description), ("item_id", line.item_id),
                            ("billing_frequency", line.billing_frequency), ("end_date", end)):
            if value is not None:
                item[name] = value
        copied.append(CopiedLine(line, RecurringItemFields(**item), price, end))
    return copied, left_out


def lines_totals(c: Contract, copied: list[CopiedLine], months_of: Any) -> tuple[Decimal | None, Decimal | None]:
    """What the copied lines bill per contract period before and after the uplift (None: unknown)."""
    if not copied:
        return None, None
    period_months = months_of(c.billing_frequency)
    own = [months_of(x.source.billing_frequency) if x.source.billing_frequency else None for x in copied]
    if any(m is None and x.source.billing_frequency is not None for m, x in zip(own, copied, strict=True)):
        return None, None
    before = rn.period_total([(x.source.quantity, x.source.unit_price, m) for x, m in zip(copied, own, strict=True)],
                             period_months)
    after = rn.period_total([(x.source.quantity, x.unit_price_after, m) for x, m in zip(copied, own, strict=True)],
                            period_months)
    return before, after


def new_contract_fields(c: Contract, draft_ref: str, new_start: date, new_end: date, months: int | None,
                        value: Decimal | None, uplift: Decimal) -> ContractFields:
    note = (f"Renewal of contract {c.id} ({c.start_date.isoformat() if c.start_date else '?'} to "
            f"{c.end_date.isoformat()}), created by generate_renewals with a {_dec(uplift)}% uplift.")
    fields: dict[str, Any] = dict(client_id=c.client_id, ref=draft_ref, status="Pending", start_date=new_start,
                                  end_date=new_end, notes=note, previous_contract_id=c.id)
    for name, v in (("type", c.type), ("billing_frequency", c.billing_frequency), ("sla_id", c.sla_id),
                    ("site_id", c.site_id), ("value", value), ("term_months", months)):
        if v is not None:
            fields[name] = v
    if same(c.type, PREPAID_TYPE):
        if c.prepaid_hours is not None:
            fields["prepaid_hours"] = c.prepaid_hours
        if c.prepay_expiry_months:
            fields["prepay_expiry_months"] = c.prepay_expiry_months
    return ContractFields(**fields)


def old_contract_fate(c: Contract, terms: Terms) -> tuple[bool, str, date | None]:
    """(expire it in this plan, what happens to it in words, follow-up date)."""
    if terms.expire_old == "now" or (terms.expire_old == "at_end" and c.end_date < terms.today):
        return True, "set to Expired" + (" (its end date has passed)" if terms.expire_old == "at_end" else ""), None
    if terms.expire_old == "at_end":
        due = c.end_date + timedelta(days=1)
        return False, f"stays {c.status or 'as it is'} until its end date; set it to Expired from {due}", due
    return False, "left as it is", None


def draft_renewal(c: Contract, lines: list[RecurringItem], *, new_ref: str, new_start: date, new_end: date,
                  months: int | None, terms: Terms, months_of: Any) -> Draft:
    """The renewal of one contract (rules in :mod:`halo_contracts.domain.renewals`)."""
    copied, left_out = copy_lines(c, lines, new_start, new_end, terms.item_uplift) if terms.copy_lines else ([], [])
    warnings: list[str] = []
    if terms.copy_lines and not copied:
        warnings.append("no active recurring lines to copy" + (" (see lines_not_copied)" if left_out else ""))
    before, after = lines_totals(c, copied, months_of)
    value = rn.renewal_value(c.value, terms.uplift, terms.item_uplift, before, after)
    if value.warning:  # value against the lines: before the minor ones
        warnings.insert(0, value.warning)
    expire, action, due = old_contract_fate(c, terms)
    return Draft(contract=c, new_ref=new_ref, new_start=new_start, new_end=new_end, term_months=months,
                 fields=new_contract_fields(c, new_ref, new_start, new_end, months, value.value, terms.uplift),
                 value=value.value, value_from_lines=value.from_lines, lines=copied, left_out=left_out,
                 expire=expire, old_action=action, follow_up=due, warnings=warnings)


# ---- which contracts of a batch are renewed ------------------------------------------------------

Refs = dict[int | None, dict[str, int]]  # client id -> casefolded ref -> contract id
Book = dict[int | None, list[Contract]]  # client id -> its contracts (every status)


@dataclass
class Chosen:
    contract: Contract
    new_start: date
    new_end: date
    months: int | None
    new_ref: str
    warnings: list[str] = field(default_factory=list)  # the renewal's own (its row's), e.g. an overlap


@dataclass
class Selection:
    chosen: list[Chosen] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (contract id, reason)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


ALREADY_RENEWED = "a renewal already exists: a later contract names it as its previous contract"


def _ref_clash(clash: int) -> str:
    return (f"the client already has a contract with the renewal's reference (contract {clash}); it may be a "
            "renewal made by hand without the previous-contract link. Link or rename it, then run again")


def _pending_renewal(succ: Contract) -> str:
    return (f"a renewal already exists: contract {succ.id} of the same client and type is Pending from "
            f"{succ.start_date} to {succ.end_date or 'open-ended'} (it has no previous-contract link)")


def _overlap_warnings(c: Contract, new_start: date, new_end: date, others: list[Contract]) -> list[str]:
    """The renewal's own warning (its row's) naming the contracts its term overlaps."""
    found = gr.overlapping(c.client_id, c.type, new_start, new_end, others, exclude=[c.id])
    if not found:
        return []
    issue = gr.overlap_issue(found, what="the renewal")
    return [f"{issue.rule}; {issue.fix}"]


def overlaps_note(ids: list[int]) -> str:
    """The plan's one warning for every renewal that overlaps (each renewal's row names them)."""
    return (f"the renewals of contract(s) {', '.join(map(str, ids))} overlap other Active or Pending contracts of "
            "the same client and type (each renewal's warnings name them): check none is a duplicate")


def select(wanted: list[int], targets: dict[int, Contract], missing: list[int], renewed: set[int], refs: Refs,
           today: date, term_months: int | None, book: Book | None = None) -> Selection:
    """Every contract checked before anything is planned: renewable ones with their new term and
    reference; those already renewed (a later contract links back, or a Pending one of the same
    client and type in ``book`` starts after it starts and ends after it ends, or its new ref is
    taken) skipped with the reason; the rest as errors. A renewal overlapping another Active or Pending contract of the
    same client and type gets a warning naming it."""
    out = Selection(errors=[f"contract {i}: not found in Halo" for i in missing])
    new_refs: dict[tuple[int | None, str], int] = {}
    book = book or {}
    for cid in wanted:
        c = targets.get(cid)
        if c is None:
            continue
        if cid in renewed:
            out.skipped.append((cid, ALREADY_RENEWED))
            continue
        succ = gr.pending_successor(c, book.get(c.client_id, []))
        if succ is not None:
            out.skipped.append((cid, _pending_renewal(succ)))
            continue
        check = rn.check_renewable(c, today, term_months=term_months)
        if c.client_id is None:
            check.errors.append("it has no client; set its client in Halo first")
        if not check.ok:
            out.errors.extend(f"contract {cid}: {e}" for e in check.errors)
            continue
        new_start, new_end, months = rn.renewal_term(c.start_date, c.end_date, term_months)
        new_ref = rn.roll_ref(c.ref, c.start_date, c.end_date, new_start, new_end)
        key = (c.client_id, new_ref.strip().casefold())
        clash = refs.get(c.client_id, {}).get(key[1])
        if clash is not None:
            out.skipped.append((cid, _ref_clash(clash)))
            continue
        if key in new_refs:
            out.errors.append(f"contract {cid}: its renewal's reference would be the same as contract "
                              f"{new_refs[key]}'s renewal for the same client; renew them separately with "
                              "distinct refs")
            continue
        new_refs[key] = cid
        out.warnings.extend(f"contract {cid}: {w}" for w in check.warnings)
        out.chosen.append(Chosen(c, new_start, new_end, months, new_ref,
                                 _overlap_warnings(c, new_start, new_end, book.get(c.client_id, []))))
    overlapping = [x.contract.id for x in out.chosen if x.warnings]
    if overlapping:  # the most serious first: the text shows the first few
        out.warnings.insert(0, overlaps_note(overlapping))
    return out
