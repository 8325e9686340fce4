"""Business rules for contracts and recurring items. Pure: no I/O, no MCP, no HTTP.

Every rule gives an :class:`Issue` naming the field, the rule and how to fix it. All
errors are collected and returned at once; warnings (the guide's best practices) never
block a write.

Contract rules (create, and the merged contract after an update):
ref required and not blank; client required; type and status known to the tenant's code
maps; start date required; end date not before the start; value >= 0 with at most 2 decimal
places (and so is ``hourly_rate``: what is shown is what is sent); billing frequency
known; the next invoice date inside the contract's dates; term months >= 1; prepay expiry
months >= 0; a Prepaid Hours contract needs hours > 0 and a rate (``hourly_rate``: the value
becomes hours x rate; when value and rate are both given they must agree to the cent);
``prepaid_hours``/``hourly_rate`` only on Prepaid Hours contracts.

Status changes follow :data:`STATUS_TRANSITIONS` (see :func:`check_transition`).

Recurring item rules: description required; quantity > 0 with at most 4 decimal places;
unit price >= 0 with at most 4 decimal places; frequency override known; item dates inside
the contract's dates and the end not before the start.

Text rule (:func:`text_problem`, for the refs, names and descriptions tools accept and feed
rows): no control characters (a multi-line note may hold line breaks and tabs), no
bidirectional override or isolate characters, and not only whitespace and zero-width
characters. Text read from Halo is data and never checked: it is sent back verbatim.

Wording: rules quote values the caller gives; values read from Halo (a contract's ref, the
client's name) are not quoted where the caller did not give them (``quote_halo=False``), since
Halo's free text is data, not the tool's own words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from halo_contracts.config import CodeMaps
from halo_contracts.domain.drafts import ContractFields, RecurringItemFields
from halo_contracts.domain.models import Contract, RecurringItem
from halo_contracts.domain.money import cents, term_end

PREPAID = "Prepaid Hours"

# Characters that make text display in another order than it is stored (U+202A-U+202E
# embeddings and overrides, U+2066-U+2069 isolates).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Characters that show nothing: text made only of these and whitespace is blank.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_MULTILINE_CONTROLS = frozenset("\n\r\t")


def text_problem(value: str, *, multiline: bool = False, blank_ok: bool = False) -> tuple[str, str] | None:
    """Why ``value`` cannot be sent as a ref, name or description: ``(rule, fix)``, or None.

    ``multiline``: a note, where line breaks and tabs are ordinary. ``blank_ok``: empty or
    whitespace-only is allowed (e.g. a note being cleared)."""
    for ch in value:
        if ch in BIDI_CONTROLS:
            return (f"contains the bidirectional control character U+{ord(ch):04X}, which makes text display "
                    "differently from what is stored", "remove it and type the text in reading order")
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in _MULTILINE_CONTROLS):
            if ch in _MULTILINE_CONTROLS:
                return (f"contains a line break or tab (U+{ord(ch):04X}); this field is one line",
                        "put it on one line (line breaks belong in notes)")
            return f"contains the control character U+{ord(ch):04X}", "remove it"
    if not blank_ok and is_blank(value):
        return ("is blank or only spaces and invisible (zero-width) characters", "give visible text")
    return None


_STRIP_ZERO_WIDTH = {ord(c): None for c in ZERO_WIDTH}


def is_blank(text: str | None) -> bool:
    """None, empty, or only whitespace and zero-width characters."""
    return text is None or not text.translate(_STRIP_ZERO_WIDTH).strip()


@dataclass(frozen=True)
class Issue:
    field: str
    rule: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}. Fix: {self.fix}."

    @property
    def key(self) -> tuple[str, str]:
        return (self.field, self.rule)


@dataclass
class Report:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, fld: str, rule: str, fix: str) -> None:
        self.errors.append(Issue(fld, rule, fix))

    def warn(self, fld: str, rule: str, fix: str) -> None:
        self.warnings.append(Issue(fld, rule, fix))

    def extend(self, other: Report) -> Report:
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        return self

    def message(self) -> str:
        """All errors as one text a model can act on."""
        lines = [f"- {e}" for e in self.errors]
        return f"{len(self.errors)} problem(s), nothing was sent to Halo:\n" + "\n".join(lines)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


# ---- precision ---------------------------------------------------------------------------------

MONEY_PLACES = 2  # contract value, hourly rate: cents
PRICE_PLACES = 4  # recurring unit price
QUANTITY_PLACES = 4  # recurring quantity


def too_precise(value: Decimal | None, places: int) -> bool:
    """True when ``value`` has more than ``places`` significant decimal places (1.2300 has 2)."""
    if value is None or not isinstance(value, Decimal) or not value.is_finite():
        return False
    try:
        return value != value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:  # more digits than the context holds: far too precise to be money
        return True


def precision_issue(fld: str, value: Decimal | None, places: int, what: str) -> Issue | None:
    """The rule "at most N decimal places" for one figure: field, rule and fix, or None."""
    if not too_precise(value, places):
        return None
    try:
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP")
        example = f", e.g. {rounded}"
    except InvalidOperation:
        example = ""
    return Issue(fld, f"{what} {value} has more than {places} decimal places (Halo would store a different "
                      "figure from the one shown)", f"round it to {places} decimal places{example}")


# ---- status transitions --------------------------------------------------------------------

# from -> {to: condition}. Conditions: "always"; "start_in_future" (the start date is after
# today); "ended" (the contract's end date is today or earlier); "extended" (the end date
# is later than before and after today). A pair missing from the table is not allowed.
STATUS_TRANSITIONS: dict[str, dict[str, str]] = {
    "Pending": {"Active": "always", "On Hold": "always", "Cancelled": "always"},
    "Active": {"Pending": "start_in_future", "On Hold": "always", "Expired": "ended", "Cancelled": "always"},
    "On Hold": {"Active": "always", "Expired": "ended", "Cancelled": "always"},
    "Expired": {"Active": "extended", "Cancelled": "always"},
    "Cancelled": {},
}

_TRANSITION_FIX = {
    ("Cancelled", None): "Cancelled is final; create a new contract (or a renewal) instead",
    ("Pending", "Expired"): "a contract that never started is Cancelled, not Expired",
    ("Expired", "Pending"): "renew instead: create a new contract that names this one as the previous contract",
    ("Expired", "On Hold"): "an expired contract cannot be paused; reactivate it with a later end date or renew it",
    ("On Hold", "Pending"): "resume it as Active, or cancel it",
}


def transition_table_markdown() -> str:
    """The transition table as Markdown (for the guide and the README)."""
    names = list(STATUS_TRANSITIONS)
    words = {"always": "yes", "start_in_future": "only if the start date is after today",
             "ended": "only if the end date is today or earlier", "extended":
             "only with an end date later than before and after today"}
    rows = ["| from \\ to | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for src in names:
        cells = []
        for dst in names:
            if src == dst:
                cells.append("(no change)")
            else:
                cond = STATUS_TRANSITIONS[src].get(dst)
                cells.append(words[cond] if cond else "no")
        rows.append(f"| {src} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def check_transition(old: str | None, new: str | None, *, old_end: date | None, new_end: date | None,
                     start: date | None, today: date) -> list[Issue]:
    """Whether a status change makes sense for billing (see :data:`STATUS_TRANSITIONS`).
    Statuses the table does not know (tenant-defined) are not restricted."""
    if old is None or new is None or _same(old, new):
        return []
    src = next((s for s in STATUS_TRANSITIONS if _same(s, old)), None)
    dst = next((s for s in STATUS_TRANSITIONS if _same(s, new)), None)
    if src is None or dst is None:
        return []
    cond = STATUS_TRANSITIONS[src].get(dst)
    if cond is None:
        fix = _TRANSITION_FIX.get((src, dst)) or _TRANSITION_FIX.get((src, None))
        allowed = ", ".join(STATUS_TRANSITIONS[src]) or "none"
        return [Issue("status", f"a {src} contract cannot become {dst}",
                      fix or f"from {src} the allowed statuses are: {allowed}")]
    if cond == "start_in_future" and not (start and start > today):
        return [Issue("status", f"an Active contract that has started ({start}) cannot go back to Pending",
                      "put it On Hold instead, or move start_date after today in the same change")]
    if cond == "ended" and not (new_end and new_end <= today):
        return [Issue("status", f"a contract becomes Expired only once its end date has passed "
                                f"(end date: {new_end or 'none'})",
                      f"set end_date to the last day of service (on or before {today.isoformat()}) in the same "
                      "change, or use Cancelled to end it early")]
    if cond == "extended" and not (new_end and new_end > today and (old_end is None or new_end > old_end)):
        return [Issue("status", "an Expired contract becomes Active again only with a later end date in the future",
                      f"set end_date after {max(filter(None, [old_end, today])).isoformat()} in the same change, "
                      "or renew the contract instead")]
    return []


# ---- contracts ------------------------------------------------------------------------------

_REF_FORM = re.compile(r"^\s*(?P<client>\S.*?)\s+-\s+(?P<what>\S.*?)\s+(?P<year>(19|20)\d{2})\s*$")


def ref_form_warning(ref: str, client_name: str | None, type_name: str | None, start: date | None, *,
                     quote_halo: bool = True, today: date | None = None) -> Issue | None:
    """The guide's naming practice: "Client - Type Year".

    ``quote_halo=False``: the ref and the client's name were read from Halo, so the wording
    does not quote them (the caller's own new ref is checked with ``quote_halo=True``).
    The example's year is the start's, else ``today``'s (the caller's date: no clock here)."""
    when = start or today
    year = when.year if when else "YYYY"
    client_label = client_name if (client_name and quote_halo) else "<client name>"
    example = f"{client_label} - {type_name or 'Type'} {year}"
    m = _REF_FORM.match(ref or "")
    if not m:
        what = f"'{ref}'" if quote_halo else "the reference"
        return Issue("ref", f"{what} is not in the 'Client - Type Year' form",
                     f"consider a reference like '{example}'")
    if client_name:
        a, b = m.group("client").casefold(), client_name.casefold()
        if a not in b and b not in a:
            start_words = f"starts with '{m.group('client')}', not" if quote_halo else "does not start with"
            return Issue("ref", f"the reference {start_words} the client's name", f"consider '{example}'")
    return None


def contract_state(c: Contract) -> ContractFields:
    """The writable friendly fields of a contract read from Halo."""
    data: dict[str, Any] = {}
    for name in ContractFields.model_fields:
        data[name] = getattr(c, name, None)
    return ContractFields(**data)


def check_contract(c: ContractFields, codes: CodeMaps, *, today: date, client_name: str | None = None,
                   hourly_rate: Decimal | None = None, quote_halo: bool = True) -> Report:
    """Every rule for a whole contract (a new one, or the merged contract after an update).

    ``quote_halo=False`` when the ref and client name were read from Halo (an update)."""
    r = Report()
    _check_identity(r, c, codes, today=today, client_name=client_name, quote_halo=quote_halo)
    _check_dates_and_money(r, c, codes, hourly_rate=hourly_rate)
    if c.type is not None and _same(c.type, PREPAID):
        _check_prepaid(r, c, hourly_rate)
    else:
        _check_not_prepaid(r, c, hourly_rate)
    _warn_practices(r, c, codes, today=today, client_name=client_name, quote_halo=quote_halo)
    return r


def _check_identity(r: Report, c: ContractFields, codes: CodeMaps, *, today: date, client_name: str | None,
                    quote_halo: bool = True) -> None:
    """Client, ref, type and status: present and known to the tenant."""
    if c.client_id is None:
        r.error("client_id", "a contract needs a client", "pass client_id (find it with find_clients)")
    # a ref the caller gives may not be invisible; one read from Halo is data (only a missing one counts)
    if c.ref is None or (is_blank(c.ref) if quote_halo else not c.ref.strip()):
        r.error("ref", "the reference is required and cannot be blank",
                f"give a reference such as '{client_name or 'Acme Ltd'} - Managed Services {today.year}'")
    if c.type is None:
        r.error("type", "the contract type is required", f"use one of: {', '.join(codes.type_names)}")
    elif codes.type_code(c.type) is None:
        r.error("type", f"'{c.type}' is not a contract type this Halo knows",
                f"use one of: {', '.join(codes.type_names)}")
    if c.status is None:
        r.error("status", "the status is required", f"use one of: {', '.join(codes.status_names)}")
    elif codes.status_code(c.status) is None:
        r.error("status", f"'{c.status}' is not a contract status this Halo knows",
                f"use one of: {', '.join(codes.status_names)}")


def _check_dates_and_money(r: Report, c: ContractFields, codes: CodeMaps, *, hourly_rate: Decimal | None) -> None:
    """Start and end, value and rate precision, billing frequency, next invoice, term and expiry."""
    if c.start_date is None:
        r.error("start_date", "the start date is required", "give start_date as YYYY-MM-DD")
    if c.start_date and c.end_date and c.end_date < c.start_date:
        r.error("end_date", f"the end date {c.end_date} is before the start date {c.start_date}",
                "set end_date on or after start_date, or leave it out for an open-ended contract")
    if c.value is not None and c.value < 0:
        r.error("value", f"the value {c.value} is negative", "give a value of 0 or more")
    for issue in (precision_issue("value", c.value, MONEY_PLACES, "the value"),
                  precision_issue("hourly_rate", hourly_rate, MONEY_PLACES, "the hourly rate")):
        if issue:
            r.errors.append(issue)
    if c.billing_frequency is not None and codes.billing_period_code(c.billing_frequency) is None:
        r.error("billing_frequency", f"'{c.billing_frequency}' is not a billing frequency this Halo knows",
                f"use one of: {', '.join(codes.billing_period_names)}")
    _check_next_invoice(r, c)
    if c.term_months is not None and c.term_months < 1:
        r.error("term_months", f"the term of {c.term_months} months is not at least 1",
                "give the term in whole months (12 for a year), or leave it out")
    if c.prepay_expiry_months is not None and c.prepay_expiry_months < 0:
        r.error("prepay_expiry_months", "the expiry cannot be negative", "give 0 (no expiry) or more months")


def _check_next_invoice(r: Report, c: ContractFields) -> None:
    """The next invoice date lies inside the contract's dates."""
    if c.next_invoice_date is None:
        return
    if c.start_date and c.next_invoice_date < c.start_date:
        r.error("next_invoice_date", f"the next invoice date {c.next_invoice_date} is before the start date "
                f"{c.start_date}", "pick a date inside the contract's dates")
    if c.end_date and c.next_invoice_date > c.end_date:
        r.error("next_invoice_date", f"the next invoice date {c.next_invoice_date} is after the end date "
                f"{c.end_date}", "pick a date inside the contract's dates")


def _check_prepaid(r: Report, c: ContractFields, hourly_rate: Decimal | None) -> None:
    """A Prepaid Hours contract: hours above 0 and a rate, value and rate agreeing to the cent."""
    if c.prepaid_hours is None or c.prepaid_hours <= 0:
        r.error("prepaid_hours", "a Prepaid Hours contract needs an hours allocation above 0",
                "pass prepaid_hours, e.g. 40")
    if hourly_rate is not None and hourly_rate <= 0:
        r.error("hourly_rate", f"the hourly rate {hourly_rate} is not above 0", "give the rate per hour, e.g. 150")
    elif hourly_rate is None and (c.value is None or c.value <= 0):
        r.error("hourly_rate", "a Prepaid Hours contract needs a rate",
                "pass hourly_rate (the value becomes hours x rate) or value (the price of the block)")
    elif hourly_rate is not None and c.value is not None and c.prepaid_hours and c.prepaid_hours > 0:
        expected = cents(c.prepaid_hours * hourly_rate)
        if cents(c.value) != expected:
            r.error("value", f"the value {cents(c.value)} disagrees with prepaid_hours x hourly_rate = "
                    f"{c.prepaid_hours} x {hourly_rate} = {expected}",
                    "give only one of value and hourly_rate, or make value equal hours x rate")


def _check_not_prepaid(r: Report, c: ContractFields, hourly_rate: Decimal | None) -> None:
    """Hours and an hourly rate belong to Prepaid Hours contracts only."""
    if c.prepaid_hours is not None and c.prepaid_hours > 0:
        r.error("prepaid_hours", f"prepaid hours only apply to {PREPAID} contracts (this one is {c.type})",
                f"leave prepaid_hours out, or set type to '{PREPAID}'")
    if hourly_rate is not None:
        r.error("hourly_rate", f"an hourly rate only applies to {PREPAID} contracts (this one is {c.type})",
                f"leave hourly_rate out, or set type to '{PREPAID}'")


def _warn_practices(r: Report, c: ContractFields, codes: CodeMaps, *, today: date, client_name: str | None,
                    quote_halo: bool) -> None:
    """Warnings: the guide's best practices (they never block a write)."""
    live = c.status is None or not (_same(c.status, "Expired") or _same(c.status, "Cancelled"))
    if c.end_date is None and live:
        r.warn("end_date", "the contract has no end date (open-ended)",
               "set end_date so the contract comes up for review and renewal")
    if c.ref and c.ref.strip():
        w = ref_form_warning(c.ref, client_name, c.type, c.start_date, quote_halo=quote_halo, today=today)
        if w:
            r.warnings.append(w)
    if c.sla_id is None and live:
        r.warn("sla_id", "no SLA is assigned", "assign one with sla_id (list_reference_data kind='slas')")
    if c.type and _same(c.type, "Recurring") and c.billing_frequency is None:
        r.warn("billing_frequency", "a Recurring contract without a billing frequency uses Halo's default",
               f"set billing_frequency ({', '.join(codes.billing_period_names)})")
    if c.type and _same(c.type, "Recurring") and live and c.next_invoice_date is None:
        r.warn("next_invoice_date", "a Recurring contract has no next invoice date",
               "set next_invoice_date to its first billing date (inside the contract's dates)")
    _warn_status_dates(r, c, today)
    if c.term_months and c.start_date and c.end_date:
        expected_end = term_end(c.start_date, c.term_months)
        if expected_end != c.end_date:
            r.warn("term_months", f"a {c.term_months}-month term from {c.start_date} ends on {expected_end}, "
                   f"not {c.end_date}", "make term_months and end_date agree")


def _warn_status_dates(r: Report, c: ContractFields, today: date) -> None:
    """An Active contract whose end date has passed or whose start is still to come."""
    if not (c.status and _same(c.status, "Active")):
        return
    if c.end_date and c.end_date < today:
        r.warn("status", f"the contract is Active but its end date {c.end_date} has passed",
               "set it to Expired, extend end_date, or renew it")
    if c.start_date and c.start_date > today:
        r.warn("status", f"the contract is Active but starts in the future ({c.start_date})",
               "consider Pending until it starts")


@dataclass
class ContractPlanCheck:
    """The outcome of checking a create or an update: the report and the exact fields to send."""

    report: Report
    fields: ContractFields  # create: every field to send; update: only the fields that change
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # update: name -> (old, new)


def check_new_contract(c: ContractFields, codes: CodeMaps, *, today: date, client_name: str | None = None,
                       hourly_rate: Decimal | None = None) -> ContractPlanCheck:
    """Rules for a new contract; with ``hourly_rate`` on a Prepaid Hours contract the value
    becomes hours x rate."""
    report = check_contract(c, codes, today=today, client_name=client_name, hourly_rate=hourly_rate)
    fields = c
    if report.ok and hourly_rate is not None and c.value is None and c.prepaid_hours:
        fields = c.model_copy(update={"value": cents(c.prepaid_hours * hourly_rate)})
    return ContractPlanCheck(report, fields)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        try:
            return a is not None and b is not None and Decimal(a) == Decimal(b)
        except Exception:  # pragma: no cover - not numbers
            return False
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a == b


def check_contract_update(existing: Contract, changes: ContractFields, codes: CodeMaps, *, today: date,
                          client_name: str | None = None, hourly_rate: Decimal | None = None) -> ContractPlanCheck:
    """Rules for an update: the merged contract must pass :func:`check_contract` (problems the
    contract already had in Halo and that this change does not touch are reported as
    warnings, not errors), the status change must be allowed, and only the fields that differ
    from the contract as it is are sent."""
    before = contract_state(existing)
    given = changes.given()
    merged_type = given.get("type", before.type)
    merged_hours = given.get("prepaid_hours", before.prepaid_hours)

    report = Report()
    # value from the rate (Prepaid Hours)
    if hourly_rate is not None and _same(merged_type, PREPAID) and merged_hours and merged_hours > 0 \
            and hourly_rate > 0 and "value" not in given:
        given["value"] = cents(merged_hours * hourly_rate)
    elif ("prepaid_hours" in given and "value" not in given and hourly_rate is None and _same(merged_type, PREPAID)
          and before.value and before.prepaid_hours and merged_hours and merged_hours > 0):
        old_rate = cents(before.value / before.prepaid_hours)
        new_rate = cents(before.value / merged_hours)
        if old_rate != new_rate:
            report.warn("hourly_rate", f"the block price stays {cents(before.value)}, so the hourly rate changes "
                        f"from {old_rate} to {new_rate}", "pass hourly_rate (or value) to set the price of the block")

    if hourly_rate is not None and _same(merged_type, PREPAID) and not (merged_hours and merged_hours > 0):
        report.error("hourly_rate", "the value is hours x rate, but the contract has no hours allocation",
                     "pass prepaid_hours together with hourly_rate, or give value (the price of the block)")
    changed = {k: (getattr(before, k), v) for k, v in given.items() if not _equal(getattr(before, k), v)}
    merged = before.model_copy(update={k: v for k, (_, v) in changed.items()})
    # the contract's ref and client name come from Halo: the wording does not quote them
    report_merged = check_contract(merged, codes, today=today, client_name=client_name, hourly_rate=hourly_rate,
                                   quote_halo=False)
    report_before = check_contract(before, codes, today=today, client_name=client_name, quote_halo=False)
    old_errors = {e.key for e in report_before.errors}
    old_warnings = {w.key for w in report_before.warnings}
    touched = set(given) | ({"value"} if hourly_rate is not None else set())
    for e in report_merged.errors:
        if e.field in touched or e.key not in old_errors:
            report.errors.append(e)
        else:
            report.warn(e.field, f"already in Halo before this change: {e.rule}", e.fix)
    for w in report_merged.warnings:
        if w.key not in old_warnings or w.field in touched:
            report.warnings.append(w)
    if "status" in changed:
        report.errors.extend(check_transition(before.status, merged.status, old_end=before.end_date,
                                              new_end=merged.end_date, start=merged.start_date, today=today))
    fields = ContractFields(**{k: v for k, (_, v) in changed.items()})
    return ContractPlanCheck(report, fields, changed)


# ---- recurring items --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractDates:
    """What item rules need from the contract."""

    start_date: date | None
    end_date: date | None
    billing_frequency: str | None = None

    @classmethod
    def of(cls, c: Contract) -> ContractDates:
        return cls(c.start_date, c.end_date, c.billing_frequency)


def check_item(item: RecurringItemFields, contract: ContractDates, codes: CodeMaps, *, prefix: str = "") -> Report:
    r = Report()
    if item.description is None or not item.description.strip():
        r.error(f"{prefix}description", "the description is required and cannot be blank",
                "describe the service, e.g. 'Managed Workstation Support'")
    if item.quantity is None or item.quantity <= 0:
        r.error(f"{prefix}quantity", f"the quantity must be above 0 (got {item.quantity})",
                "give a positive quantity; to stop billing a line, set its end_date instead")
    if item.unit_price is None or item.unit_price < 0:
        r.error(f"{prefix}unit_price", f"the unit price must be 0 or more (got {item.unit_price})",
                "give the price per unit per billing period")
    for issue in (precision_issue(f"{prefix}quantity", item.quantity, QUANTITY_PLACES, "the quantity"),
                  precision_issue(f"{prefix}unit_price", item.unit_price, PRICE_PLACES, "the unit price")):
        if issue:
            r.errors.append(issue)
    if item.billing_frequency is not None and codes.billing_period_code(item.billing_frequency) is None:
        r.error(f"{prefix}billing_frequency", f"'{item.billing_frequency}' is not a billing frequency this Halo knows",
                f"use one of: {', '.join(codes.billing_period_names)}, or leave it out to use the contract's")
    cs, ce = contract.start_date, contract.end_date
    if item.start_date and item.end_date and item.end_date < item.start_date:
        r.error(f"{prefix}end_date", f"the end date {item.end_date} is before the start date {item.start_date}",
                "set end_date on or after start_date")
    for name in ("start_date", "end_date"):
        d = getattr(item, name)
        if d is None:
            continue
        if cs and d < cs:
            r.error(f"{prefix}{name}", f"{d} is before the contract starts ({cs})",
                    "pick a date inside the contract's dates")
        if ce and d > ce:
            r.error(f"{prefix}{name}", f"{d} is after the contract ends ({ce})",
                    "pick a date inside the contract's dates, or extend the contract first")
    return r


def check_new_items(items: list[RecurringItemFields], contract: ContractDates, codes: CodeMaps,
                    existing: list[RecurringItem] | None = None, *, today: date | None = None) -> Report:
    r = Report()
    if not items:
        r.error("items", "no items were given", "pass at least one item")
    seen: set[str] = set()
    live = {(line.description or "").strip().casefold() for line in existing or []
            if not line.inactive and (line.end_date is None or today is None or line.end_date >= today)}
    for n, item in enumerate(items):
        r.extend(check_item(item, contract, codes, prefix=f"items[{n}]."))
        key = (item.description or "").strip().casefold()
        if key and (key in seen or key in live):
            r.warn(f"items[{n}].description", f"the contract already has a line '{item.description}'",
                   "if this is meant to change that line, use update_recurring_item instead")
        seen.add(key)
    return r


def item_state(line: RecurringItem) -> RecurringItemFields:
    return RecurringItemFields(**{name: getattr(line, name, None) for name in RecurringItemFields.model_fields})


@dataclass
class ItemUpdateCheck:
    report: Report
    fields: RecurringItemFields
    changed: dict[str, tuple[Any, Any]]


def check_item_update(line: RecurringItem, changes: RecurringItemFields, contract: ContractDates,
                      codes: CodeMaps) -> ItemUpdateCheck:
    """The merged line must pass :func:`check_item`; only fields that differ are sent."""
    before = item_state(line)
    given = changes.given()
    changed = {k: (getattr(before, k), v) for k, v in given.items() if not _equal(getattr(before, k), v)}
    merged = before.model_copy(update={k: v for k, (_, v) in changed.items()})
    r_merged = check_item(merged, contract, codes, prefix="changes.")
    old = {e.key for e in check_item(before, contract, codes, prefix="changes.").errors}
    report = Report()
    for e in r_merged.errors:
        if e.field.removeprefix("changes.") in given or e.key not in old:
            report.errors.append(e)
        else:
            report.warn(e.field, f"already in Halo before this change: {e.rule}", e.fix)
    fields = RecurringItemFields(**{k: v for k, (_, v) in changed.items()})
    return ItemUpdateCheck(report, fields, changed)
