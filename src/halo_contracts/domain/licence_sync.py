"""Distributor licence sync: read the feed, decide every licence action (pure).

Two halves, both free of I/O:

* **Reading the feed** (:func:`parse_csv`, :func:`parse_rows`): CSV text with
  case-insensitive headers and common aliases, or a list of row objects. Every problem is
  collected with its line (CSV: the physical line number, the header being line 1; a list:
  the 1-based row number) and raised together as one :class:`FeedError`, so nothing is
  planned from a feed that is partly wrong.
* **Deciding** (:func:`decide`): given every Halo client and every Halo licence (complete
  lists - the caller must not pass a partial picture), match customers
  (:mod:`halo_contracts.domain.matching`) and apply the distributor rules per matched client
  and product code:

  ============================  ===============================================
  Halo licence for the code      feed says
  ============================  ===============================================
  none                           quantity > 0 -> **create** (stamped with the
                                 run's ``distributor``); 0 -> nothing
  exists                         quantity 0 -> **delete** every active one with
                                 the code (inactive: nothing)
  exists                         quantity > 0, quantity/price/billing cycle/term
                                 differ -> **update** (only what differs)
  exists, inactive               quantity > 0 -> **update** that reactivates it
  exists, no distributor         quantity > 0 -> **update** that stamps it
                                 (a first sync adopts hand-made licences)
  exists                         nothing differs -> nothing
  exists, code not in the feed   with ``cleanup`` -> **delete**, only when its
                                 distributor is this run's and it is active
  ============================  ===============================================

  "The licence for the code" is one of the client's licences with that product code whose
  distributor is this run's or blank (active first, this distributor's first, lowest id).
  Licences of another distributor are never changed or deleted; they, unowned licences the
  sync does not sync, and inactive licences are listed as left alone with a hint.
  Products of unmatched, ambiguous or excluded customers are skipped and listed.

  Halo's free text (client names, licence names, distributors, billing cycle and term
  text) never appears in summaries, reasons or warnings: they name clients and licences by
  id; the Halo values stay in their own fields (``client_name``, ``changes`` …).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from halo_contracts.domain.drafts import LicenceFields
from halo_contracts.domain.matching import (
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    MatchDecision,
    match_customers,
    name_key,
    normalise,
)
from halo_contracts.domain.models import Client, Licence
from halo_contracts.domain.money import ZERO, cents, unsigned_zero
from halo_contracts.domain.product_mapping import (
    MappingMethod,
    code_key,
    normalise_mappings,
    product_name_key,
    resolve_code,
)
from halo_contracts.domain.validation import text_problem

# ---- billing cycles and terms -------------------------------------------------------------

# canonical name -> months per billing period (None: charged once, not recurring)
BILLING_CYCLES: dict[str, int | None] = {
    "Monthly": 1,
    "Quarterly": 3,
    "Semi-Annual": 6,
    "Annual": 12,
    "Biennial": 24,
    "Triennial": 36,
    "One-Time": None,
}
_CYCLE_ALIASES: dict[str, str] = {}
for _name, _words in {
    "Monthly": ("monthly", "month", "months", "mo", "per month", "1 month", "p1m", "1m", "month to month",
                "monthly billing", "mtm"),
    "Quarterly": ("quarterly", "quarter", "3 months", "p3m", "3m", "per quarter"),
    "Semi-Annual": ("semi annual", "semiannual", "semi annually", "half yearly", "halfyearly", "biannual",
                    "6 months", "p6m", "6m"),
    "Annual": ("annual", "annually", "yearly", "year", "per year", "1 year", "12 months", "p1y", "1y", "p12m",
               "12m", "annual billing"),
    "Biennial": ("biennial", "2 years", "24 months", "p2y", "2y", "p24m"),
    "Triennial": ("triennial", "3 years", "36 months", "p3y", "3y", "p36m"),
    "One-Time": ("one time", "onetime", "once", "one off", "oneoff", "single"),
}.items():
    for _w in (*_words, _name.casefold().replace("-", " ")):
        _CYCLE_ALIASES[_w] = _name


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def canonical_cycle(text: str | None) -> str | None:
    """``"yearly"``, ``"P1Y"``, ``"12 Months"`` -> ``"Annual"``; unknown or blank -> None."""
    if text is None:
        return None
    return _CYCLE_ALIASES.get(_plain(text))


def cycle_months(text: str | None) -> int | None:
    """Months per billing period of a cycle name, or None (unknown, blank or one-time)."""
    name = canonical_cycle(text)
    return BILLING_CYCLES.get(name) if name else None


_TERM = re.compile(r"^p?(\d+)\s*(m|mo|mos|month|months|y|yr|yrs|year|years)$")


def term_months(text: str | None) -> int | None:
    """A commitment term in months when it can be read (``P1Y``, ``12 months``, ``Annual``)."""
    if text is None or not text.strip():
        return None
    plain = _plain(text).replace(" ", "")
    m = _TERM.match(plain)
    if m:
        n = int(m.group(1))
        return n * 12 if m.group(2).startswith("y") else n
    return cycle_months(text)


def canonical_term(text: str | None) -> str | None:
    """A term in one vocabulary, ISO 8601 as Halo and the distributors write it: ``"Annual"``,
    ``"12 months"``, ``"1 year"`` -> ``"P1Y"``; ``"monthly"`` -> ``"P1M"``; unreadable -> None."""
    months = term_months(text)
    if not months:
        return None
    return f"P{months // 12}Y" if months % 12 == 0 else f"P{months}M"


def same_term(a: str | None, b: str | None) -> bool:
    if (a or "").strip().casefold() == (b or "").strip().casefold():
        return True
    ma, mb = term_months(a), term_months(b)
    return ma is not None and ma == mb


def same_cycle(feed: str | None, halo: str | None) -> bool:
    if (feed or "").strip().casefold() == (halo or "").strip().casefold():
        return True
    cf, ch = canonical_cycle(feed), canonical_cycle(halo)
    return cf is not None and cf == ch


def monthly_amount(quantity: int, unit_price: Decimal | None, billing_cycle: str | None) -> Decimal:
    """Seats x price normalised to one month (annual / 12, quarterly / 3 …). A licence with
    no price, or a one-time charge, is worth 0 a month; an unknown cycle counts as monthly
    (callers note it)."""
    if unit_price is None or quantity <= 0:
        return ZERO
    name = canonical_cycle(billing_cycle)
    if name is not None and BILLING_CYCLES[name] is None:
        return ZERO
    months = BILLING_CYCLES[name] if name else 1
    return Decimal(quantity) * unit_price / Decimal(months or 1)


# ---- reading the feed -----------------------------------------------------------------------

FIELDS = ("customer", "product_code", "product_name", "quantity", "unit_price", "billing_cycle", "term")
REQUIRED = ("customer", "product_code", "quantity")

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "customer": ("customer", "customer name", "company", "company name", "client", "client name",
                 "organisation", "organization", "account name", "end customer"),
    "product_code": ("product code", "productcode", "sku", "product sku", "part number", "part no", "part",
                     "partnumber", "mpn", "product id", "offer id"),
    "product_name": ("product name", "product", "description", "product description", "name", "offer name",
                     "item"),
    "quantity": ("quantity", "qty", "seats", "licenses", "licences", "license count", "licence count",
                 "count", "units"),
    "unit_price": ("unit price", "price", "unit sell price", "sell price", "sale price", "price each",
                   "price per unit", "unitprice"),
    "billing_cycle": ("billing cycle", "billing frequency", "cycle", "frequency", "billing period",
                      "billingcycle"),
    "term": ("term", "term duration", "commitment", "commitment term", "term length", "contract term",
             "termduration"),
}
_ALIAS_TO_FIELD = {alias: f for f, aliases in COLUMN_ALIASES.items() for alias in aliases}


def _header_key(text: str) -> str:
    return " ".join(re.sub(r"[_\-./]+", " ", text.strip().lstrip("\ufeff").casefold()).split())


class SourceLine(BaseModel):
    """One validated feed line."""

    model_config = ConfigDict(extra="forbid")

    line: int
    customer: str
    product_code: str
    product_name: str | None = None
    quantity: int
    unit_price: Decimal | None = None
    billing_cycle: str | None = None  # canonical (see BILLING_CYCLES)
    term: str | None = None
    feed_code: str | None = None  # the feed's own code when a product mapping replaced product_code

    @property
    def code_key(self) -> str:
        return self.product_code.strip().casefold()

    @property
    def code_in_feed(self) -> str:
        return self.feed_code or self.product_code


class FeedProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int | None  # None: the feed as a whole
    field: str | None
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "feed"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.problem}. Fix: {self.fix}"


class FeedError(ValueError):
    """The feed cannot be used; ``problems`` lists every one found (line, field, rule, fix)."""

    def __init__(self, problems: list[FeedProblem], *, unit: str = "line"):
        self.problems = problems
        self.unit = unit
        shown = [str(p) if unit == "line" else str(p).replace("line ", "row ", 1) for p in problems[:25]]
        more = f" (and {len(problems) - 25} more)" if len(problems) > 25 else ""
        super().__init__(f"{len(problems)} problem(s) in the feed{more}: " + "; ".join(shown))


class Feed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[SourceLine]
    columns: dict[str, str] = Field(default_factory=dict)  # field -> the header used (CSV)
    warnings: list[str] = Field(default_factory=list)


_CURRENCY = re.compile(r"^[\s$£€¥]*|[\s$£€¥]*$|^(usd|gbp|eur|aud|nzd|cad)\s*|\s*(usd|gbp|eur|aud|nzd|cad)$",
                       re.IGNORECASE)
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> Decimal | None:
    """A Decimal from a number or text (currency signs and 1,234.50 separators allowed)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("is true/false, not a number")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():
            raise ValueError("is not a finite number")
        return unsigned_zero(number)
    text = _CURRENCY.sub("", str(value).strip())
    if not text:
        return None
    if "," in text:
        if not _THOUSANDS.match(text):
            raise ValueError("is not a number")
        text = text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("is not a number") from None
    if not number.is_finite():
        raise ValueError("is not a finite number")
    return unsigned_zero(number)


_TEXT_FIELDS = ("customer", "product_code", "product_name", "billing_cycle", "term")


def _check_text(values: Mapping[str, Any], bad: Callable[[str, str, str], None]) -> None:
    """The text rule (``validation.text_problem``) on a row's text cells that are not blank."""
    for name in _TEXT_FIELDS:
        raw = values.get(name)
        if isinstance(raw, str) and _text(raw) is not None:
            problem = text_problem(raw)
            if problem is not None:
                bad(name, problem[0], problem[1])


def _term_of(value: Any) -> str | None:
    """The feed's term as written to Halo: in the one vocabulary when it can be read, else as given."""
    text = _text(value)
    return canonical_term(text) or text


def _validate(values: Mapping[str, Any], line: int, problems: list[FeedProblem]) -> SourceLine | None:
    before = len(problems)

    def bad(field: str, problem: str, fix: str) -> None:
        problems.append(FeedProblem(line=line, field=field, problem=problem, fix=fix))

    _check_text(values, bad)
    customer = _text(values.get("customer"))
    if customer is None:
        bad("customer", "the customer name is blank", "fill in the distributor's customer name")
    code = _text(values.get("product_code"))
    if code is None:
        bad("product_code", "the product code is blank",
            "fill in the distributor's product code (SKU), or remove the line if it is a subtotal")

    quantity: int | None = None
    raw_q = values.get("quantity")
    try:
        q = _number(raw_q)
        if q is None:
            bad("quantity", "the quantity is blank", "give the number of seats (0 to remove the licence)")
        elif q != q.to_integral_value():
            bad("quantity", f"'{raw_q}' is not a whole number", "give a whole number of seats")
        elif q < 0:
            bad("quantity", f"'{raw_q}' is negative", "give 0 or more seats (0 removes the licence)")
        else:
            quantity = int(q)
    except ValueError as exc:
        bad("quantity", f"'{raw_q}' {exc}", "give a whole number of seats, e.g. 25")

    price: Decimal | None = None
    raw_p = values.get("unit_price")
    try:
        price = _number(raw_p)
        if price is not None and price < 0:
            bad("unit_price", f"'{raw_p}' is negative", "give the price per seat, 0 or more")
    except ValueError as exc:
        bad("unit_price", f"'{raw_p}' {exc}", "give the price per seat as a number, e.g. 12.50")

    cycle_text = _text(values.get("billing_cycle"))
    cycle = canonical_cycle(cycle_text) if cycle_text else None
    if cycle_text and cycle is None:
        bad("billing_cycle", f"'{cycle_text}' is not a billing cycle this sync knows",
            "use one of " + ", ".join(BILLING_CYCLES) + " (yearly, P1M, 12 months … are also understood)")

    if len(problems) > before:
        return None
    return SourceLine(line=line, customer=customer or "", product_code=code or "",
                      product_name=_text(values.get("product_name")), quantity=quantity or 0,
                      unit_price=price, billing_cycle=cycle, term=_term_of(values.get("term")))


def _check_duplicates(lines: list[SourceLine], problems: list[FeedProblem]) -> None:
    first: dict[tuple[str, str], int] = {}
    for sl in lines:
        key = (name_key(sl.customer), sl.code_key)
        if key in first:
            problems.append(FeedProblem(
                line=sl.line, field="product_code",
                problem=f"customer '{sl.customer}' already lists product '{sl.product_code}' on line {first[key]}",
                fix="keep one line per customer and product (add the quantities together)"))
        else:
            first[key] = sl.line


_DELIMITERS = (",", ";", "\t", "|")
_HEADER_SEARCH = 20  # lines scanned for the header row (title rows before it are skipped)


def _header_fields(cells: list[str]) -> set[str]:
    return {f for f in (_ALIAS_TO_FIELD.get(_header_key(c)) for c in cells) if f}


def _find_header(physical: list[str]) -> tuple[int, str] | None:
    """(index of the header line, delimiter): the first line naming every required column."""
    for i, raw in enumerate(physical[:_HEADER_SEARCH]):
        if not raw.strip():
            continue
        for d in _DELIMITERS:
            try:
                cells = next(csv.reader([raw], delimiter=d))
            except (csv.Error, StopIteration):
                continue
            if all(f in _header_fields(cells) for f in REQUIRED):
                return i, d
    return None


def parse_csv(text: str) -> Feed:
    """Read CSV text (comma, semicolon, tab or pipe separated). The header is the first line
    naming a customer, product code and quantity column (title lines before it are skipped);
    headers are matched case-insensitively against :data:`COLUMN_ALIASES`; unknown columns
    are ignored (and named in the warnings). Line numbers are physical lines, from 1."""
    body = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise FeedError([FeedProblem(line=None, field=None, problem="the CSV text is empty",
                                     fix="paste the distributor's export including its header row")])
    physical = body.split("\n")
    found = _find_header(physical)
    if found is None:
        raise FeedError(_missing_columns(physical))
    header_at, delimiter = found
    reader = csv.reader(io.StringIO("\n".join(physical[header_at:])), delimiter=delimiter, strict=True)
    problems: list[FeedProblem] = []
    warnings: list[str] = []
    if any(raw.strip() for raw in physical[:header_at]):
        warnings.append(f"line(s) 1-{header_at} before the header row were ignored")
    header = next(reader)
    index, columns = _columns(header, warnings)
    lines = _read_rows(reader, index, width=len(header), offset=header_at, problems=problems)
    _check_duplicates(lines, problems)
    if problems:
        problems.sort(key=lambda p: (p.line or 0))
        raise FeedError(problems)
    if not lines:
        warnings.append("the feed has a header but no rows")
    return Feed(lines=lines, columns=columns, warnings=warnings)


def _missing_columns(physical: list[str]) -> list[FeedProblem]:
    """No line names every required column: what the first non-blank line lacks."""
    first = next(i for i, raw in enumerate(physical) if raw.strip())
    delimiter = max(_DELIMITERS, key=physical[first].count)
    try:
        cells = next(csv.reader([physical[first]], delimiter=delimiter))
    except csv.Error:
        cells = [physical[first]]
    have = _header_fields(cells)
    shown = ", ".join(c.strip() for c in cells)
    return [FeedProblem(line=first + 1, field=f, problem=f"no column for {f} in the header ({shown})",
                        fix="name a column one of: " + ", ".join(COLUMN_ALIASES[f]))
            for f in REQUIRED if f not in have]


def _columns(header: list[str], warnings: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Field -> column index and field -> the header's own name; unknown and repeated
    columns are named in ``warnings``."""
    index: dict[str, int] = {}
    columns: dict[str, str] = {}
    ignored: list[str] = []
    for i, name in enumerate(header):
        fld = _ALIAS_TO_FIELD.get(_header_key(name))
        if fld is None:
            if name.strip():
                ignored.append(name.strip())
            continue
        if fld in index:
            warnings.append(f"columns '{columns[fld]}' and '{name.strip()}' both mean {fld}; "
                            f"'{columns[fld]}' was used")
            continue
        index[fld] = i
        columns[fld] = name.strip()
    if ignored:
        warnings.append("columns ignored: " + ", ".join(ignored))
    return index, columns


def csv_rows(reader: Any, *, width: int, offset: int, problems: list[FeedProblem],
             pad_short: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(physical line, cells) of each data row after the header, ``width`` cells each; a row
    that cannot be read stops the file, blank rows are skipped, trailing empty cells dropped
    (spreadsheet exports pad rows); a row of another width is a problem (a cell with the
    delimiter unquoted would shift every column after it), unless ``pad_short`` fills a short one."""
    while True:
        start = offset + reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(FeedProblem(line=start, field=None, problem=f"the row cannot be read ({exc})",
                                        fix="check the quotes on this line"))
            return
        if not any(cell.strip() for cell in row):
            continue
        while len(row) > width and not row[-1].strip():
            row = row[:-1]
        if pad_short and len(row) < width:
            row = [*row, *[""] * (width - len(row))]
        if len(row) != width:
            problems.append(FeedProblem(
                line=start, field=None,
                problem=f"the row has {len(row)} fields but the header has {width}",
                fix="quote values that contain the delimiter, or remove the extra/missing separators"))
            continue
        yield start, row


def _read_rows(reader: Any, index: dict[str, int], *, width: int, offset: int,
               problems: list[FeedProblem]) -> list[SourceLine]:
    """The data rows after the header, validated; ``offset`` is the physical lines before it."""
    lines: list[SourceLine] = []
    for start, row in csv_rows(reader, width=width, offset=offset, problems=problems):
        sl = _validate({f: row[i] for f, i in index.items()}, start, problems)
        if sl is not None:
            lines.append(sl)
    return lines


def parse_rows(rows: Sequence[Mapping[str, Any]]) -> Feed:
    """Validate row objects (``customer``, ``product_code``, ``quantity``, optional
    ``product_name``, ``unit_price``, ``billing_cycle``, ``term``). Problems are numbered by
    row, starting at 1."""
    problems: list[FeedProblem] = []
    lines: list[SourceLine] = []
    for n, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - set(FIELDS))
        if unknown:
            problems.append(FeedProblem(line=n, field=unknown[0], problem=f"unknown field(s) {unknown}",
                                        fix="use only " + ", ".join(FIELDS)))
            continue
        sl = _validate(row, n, problems)
        if sl is not None:
            lines.append(sl)
    _check_duplicates(lines, problems)
    if problems:
        problems.sort(key=lambda p: (p.line or 0))
        raise FeedError(problems, unit="row")
    return Feed(lines=lines)


# ---- deciding ------------------------------------------------------------------------------

DEFAULT_DISTRIBUTOR = "distributor"  # the tool's default source name (documented; pass the real one)

ActionKind = Literal["create", "update", "delete"]


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    before: Any = None
    after: Any = None


class LicenceAction(BaseModel):
    """One licence write the sync wants, with the reason in plain words."""

    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    client_id: int
    client_name: str
    customer: str | None  # None: a cleanup delete (the code is not in the feed)
    product_code: str
    product_name: str | None = None
    line: int | None = None
    licence_id: int | None = None
    fields: LicenceFields | None = None  # create/update: exactly the fields to send
    changes: list[Change] = Field(default_factory=list)
    reason: str
    summary: str
    halo_name: str | None = None  # the product as Halo names it (the licence's name; Halo's text, data only)
    feed_name: str | None = None  # the feed's product name, when it differs from Halo's
    feed_code: str | None = None  # the feed's product code, when a product mapping ties it to product_code


class CodeMismatch(BaseModel):
    """A create and a licence of the same client whose product names match but whose codes
    differ: most likely one product under two codes. Both are held back (no create, no
    delete) until the user maps the codes (``product_mappings``) or says otherwise."""

    model_config = ConfigDict(extra="forbid")

    client_id: int
    client_name: str
    customer: str
    line: int
    feed_code: str
    feed_name: str | None
    feed_quantity: int
    licence_id: int
    halo_code: str
    halo_name: str
    halo_quantity: int
    suggested_mapping: dict[str, str]  # feed code -> Halo code, to pass as product_mappings
    reason: str


class MappingUse(BaseModel):
    """A feed code synced under another Halo code, and how the mapping was found."""

    model_config = ConfigDict(extra="forbid")

    feed_code: str
    halo_code: str
    method: MappingMethod
    lines: int


class SkippedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str | None
    product_code: str | None
    line: int | None = None
    client_id: int | None = None
    licence_id: int | None = None  # set: a Halo licence left alone (not a feed line)
    distributor: str | None = None  # that licence's distributor in Halo (Halo's text, data only)
    reason: str


class ClientMoney(BaseModel):
    """What the client's licences are worth per month, before and after the plan."""

    model_config = ConfigDict(extra="forbid")

    client_id: int
    client_name: str
    customers: list[str]
    monthly_before: Decimal
    monthly_after: Decimal
    monthly_change: Decimal
    notes: list[str] = Field(default_factory=list)


class SyncSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: dict[str, int]  # matched / ambiguous / unmatched / excluded
    actions: dict[str, int]  # create / update / delete / unchanged / nothing_to_do / skipped
    monthly_before: Decimal
    monthly_after: Decimal
    money: list[ClientMoney]


class SyncDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matching: list[MatchDecision]
    actions: list[LicenceAction]
    skipped: list[SkippedLine]
    summary: SyncSummary
    warnings: list[str] = Field(default_factory=list)
    mismatches: list[CodeMismatch] = Field(default_factory=list)  # held back: map the codes, then plan again
    would_delete: list[LicenceAction] = Field(default_factory=list)  # cleanup held back on a first sync
    product_mappings: list[MappingUse] = Field(default_factory=list)  # feed codes synced under Halo codes


def _price(value: Decimal | None) -> str:
    return "no price" if value is None else str(cents(value))


def _label(code: str, name: str | None) -> str:
    """A product as the FEED names it (never Halo's text: Halo free text stays in data fields)."""
    return f"'{name}' ({code})" if name and name.strip().casefold() != code.strip().casefold() else f"'{code}'"


def distributor_key(name: str | None) -> str:
    """How distributor names compare: case-insensitive, whitespace collapsed; blank = none."""
    return " ".join((name or "").casefold().split())


Owner = Literal["ours", "none", "other"]


def _owner(lic: Licence, ours: str) -> Owner:
    key = distributor_key(lic.distributor)
    if not key:
        return "none"
    return "ours" if key == ours else "other"


def _not_ours(lic: Licence, owner: Owner, distributor: str, context: str) -> str:
    """Why a licence is left alone because of its distributor, and what the user can do."""
    whose = "it has no distributor in Halo" if owner == "none" else (
        "its distributor in Halo is another one (see the distributor field)")
    return (f"not from this distributor — left alone: {whose}; {context}. Hint: to let this sync manage it, set "
            f"its distributor to '{distributor}' in Halo; if it should go, delete it by hand in Halo")


_INACTIVE = "inactive in Halo (already ended) — left alone; the sync never deletes an inactive licence"


def _changes(sl: SourceLine, lic: Licence, *, adopt: str | None) -> tuple[LicenceFields, list[Change]]:
    """The fields to send for a feed line synced into ``lic``: what differs, plus reactivation
    (an inactive licence with seats in the feed) and, with ``adopt``, the distributor stamp
    of a licence that has none."""
    data: dict[str, Any] = {}
    changes: list[Change] = []
    if sl.quantity != lic.quantity:
        data["quantity"] = sl.quantity
        changes.append(Change(field="quantity", before=lic.quantity, after=sl.quantity))
    if sl.unit_price is not None and (lic.unit_price is None or cents(lic.unit_price) != cents(sl.unit_price)):
        data["unit_price"] = sl.unit_price
        changes.append(Change(field="unit_price", before=None if lic.unit_price is None else str(lic.unit_price),
                              after=str(sl.unit_price)))
    if sl.billing_cycle is not None and not same_cycle(sl.billing_cycle, lic.billing_cycle):
        data["billing_cycle"] = sl.billing_cycle
        changes.append(Change(field="billing_cycle", before=canonical_cycle(lic.billing_cycle) or lic.billing_cycle,
                              after=sl.billing_cycle))
    if sl.term is not None and not same_term(sl.term, lic.term):
        data["term"] = sl.term
        changes.append(Change(field="term", before=canonical_term(lic.term) or lic.term, after=sl.term))
    if not lic.active:
        data["active"] = True
        changes.append(Change(field="active", before=False, after=True))
    if adopt is not None:
        data["distributor"] = adopt
        changes.append(Change(field="distributor", before=lic.distributor, after=adopt))
    return LicenceFields(**data), changes


_NUMERIC_BEFORE = {"quantity", "unit_price", "active"}  # Halo values safe to quote (numbers, flags)


def _change_text(c: Change) -> str:
    """One change in our own words: Halo's old value is quoted only when it is a number or a
    flag (Halo's free text - billing cycle, term, distributor - stays in the change rows)."""
    if c.field in _NUMERIC_BEFORE:
        return f"{c.field} {'none' if c.before is None else c.before} -> {c.after}"
    return f"{c.field} -> {c.after}"


def _delete(client_id: int, client_name: str, lic: Licence, *, label: str | None, sl: SourceLine | None,
            reason: str, why: str) -> LicenceAction:
    what = f"licence {label} (id {lic.id}" if label else f"licence {lic.id} ("
    sep = ", " if label else ""
    return LicenceAction(
        kind="delete", client_id=client_id, client_name=client_name, customer=sl.customer if sl else None,
        product_code=lic.product_code, product_name=lic.name, line=sl.line if sl else None, licence_id=lic.id,
        changes=[Change(field="quantity", before=lic.quantity, after=0)], reason=reason,
        summary=f"Delete {what}{sep}{lic.quantity} seats) for client {client_id}: {why}",
        halo_name=lic.name or None, feed_name=_other_name(sl.product_name if sl else None, lic.name),
        feed_code=sl.feed_code if sl else None)


def _other_name(feed_name: str | None, halo_name: str | None) -> str | None:
    """The feed's product name when it is not Halo's (case and spaces aside)."""
    if not feed_name or " ".join(feed_name.casefold().split()) == " ".join((halo_name or "").casefold().split()):
        return None
    return feed_name


def decide(
    lines: Iterable[SourceLine],
    clients: Iterable[Client],
    licences: Iterable[Licence],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    explicit: Mapping[str, int] | None = None,
    remembered: Mapping[str, int] | None = None,
    exclude: Iterable[str | int] = (),
    cleanup: bool = True,
    drop_zero_price_lines: bool = False,
    distributor: str = DEFAULT_DISTRIBUTOR,
    product_mappings: Mapping[str, str] | None = None,
    remembered_products: Mapping[str, str] | None = None,
    first_sync: bool = False,
) -> SyncDecision:
    """Every licence action for the feed against Halo's complete client and licence lists
    (inactive licences included when the caller could read them).

    ``distributor`` is this feed's source. Licences the sync creates carry it; a licence
    whose distributor is another one is never changed or deleted; one with no distributor
    is adopted (stamped) when a feed line syncs it, and otherwise left alone; cleanup deletes
    only active licences whose distributor is this one. Summaries, reasons and warnings name
    Halo clients and licences by id only: Halo's own text stays in data fields.

    Products (:mod:`halo_contracts.domain.product_mapping`): a feed code is synced with the
    client's licence of the same code, else with the Halo code ``product_mappings`` (this call)
    or ``remembered_products`` (earlier months) map it to. A create whose feed product name
    matches (normalised) a licence of the client under another code the feed does not name is
    a likely code mismatch: the create, and any delete of that licence, are held back and
    listed in ``mismatches`` with the mapping to give. With ``first_sync`` (this distributor
    was never synced), cleanup deletes are not planned: they are listed in ``would_delete``.

    Raises :class:`halo_contracts.domain.matching.MappingProblem` when an explicit mapping
    names a client id Halo does not have.
    """
    feed = list(lines)
    all_clients = list(clients)
    by_id = {c.id: c for c in all_clients}
    distributor = distributor.strip() or DEFAULT_DISTRIBUTOR
    exclude = list(exclude)
    matching = match_customers([sl.customer for sl in feed], all_clients, threshold=threshold, margin=margin,
                               explicit=explicit, remembered=remembered, exclude=exclude)
    decision_of = {name_key(d.customer): d for d in matching}
    out = _Outcome(warnings=_option_warnings(explicit, exclude, decision_of, all_clients, by_id))
    per_client, customers_of = _lines_per_client(feed, decision_of, out.skipped)
    held = _held_by_client(licences)
    money: list[ClientMoney] = []
    products = _Products(explicit=normalise_mappings(product_mappings),
                         remembered=normalise_mappings(remembered_products))
    for client_id, client_lines in per_client.items():
        sync = _ClientSync(client=by_id[client_id], customers=customers_of[client_id],
                           mine=held.get(client_id, {}), distributor=distributor, cleanup=cleanup,
                           drop_zero_price_lines=drop_zero_price_lines, out=out, products=products,
                           hold_cleanup=first_sync)
        money.append(sync.run(client_lines))
    for key in products.explicit:
        if key not in products.feed_codes:
            out.warnings.append(f"product_mappings: '{key}' is not a product code in this feed (kept for later months)")
    return SyncDecision(matching=matching, actions=out.actions, skipped=out.skipped,
                        summary=_summary(matching, out, money), warnings=out.warnings,
                        mismatches=out.mismatches, would_delete=out.would_delete,
                        product_mappings=sorted(products.uses.values(), key=lambda u: (u.feed_code, u.halo_code)))


@dataclass
class _Products:
    """The product mappings of one sync and what they did."""

    explicit: dict[str, str]
    remembered: dict[str, str]
    uses: dict[tuple[str, str], MappingUse] = field(default_factory=dict)
    feed_codes: set[str] = field(default_factory=set)

    def resolve(self, sl: SourceLine, held: Mapping[str, object]) -> SourceLine:
        """``sl`` with the Halo code it syncs with for this client (``feed_code`` keeps its own)."""
        self.feed_codes.add(sl.code_key)
        halo_code, method = resolve_code(sl.product_code, held, explicit=self.explicit, remembered=self.remembered)
        if method == "exact" or code_key(halo_code) == sl.code_key:
            return sl
        use = self.uses.setdefault((sl.code_key, code_key(halo_code)), MappingUse(
            feed_code=sl.product_code, halo_code=halo_code, method=method, lines=0))
        use.lines += 1
        return sl.model_copy(update={"product_code": halo_code, "feed_code": sl.product_code})


def _option_warnings(explicit: Mapping[str, int] | None, exclude: list[str | int],
                     decision_of: Mapping[str, MatchDecision], clients: list[Client],
                     by_id: Mapping[int, Client]) -> list[str]:
    """Say so when an option names nothing in this feed (a typo would otherwise pass silently)."""
    warnings: list[str] = []
    client_names = {normalise(c.name) for c in clients}
    for name in explicit or {}:
        if name_key(name) not in decision_of:
            warnings.append(f"mappings: '{name}' is not a customer in this feed (kept for later months)")
    for entry in exclude:
        if isinstance(entry, str):
            if name_key(entry) not in decision_of and normalise(entry) not in client_names:
                warnings.append(f"exclude_clients: '{entry}' is neither a customer in this feed nor a Halo client")
        elif entry not in by_id:
            warnings.append(f"exclude_clients: Halo has no client with id {entry}")
    return warnings


def _held_by_client(licences: Iterable[Licence]) -> dict[int, dict[str, list[Licence]]]:
    """Halo licences by client and product code (lowest id first)."""
    held: dict[int, dict[str, list[Licence]]] = {}
    for lic in sorted(licences, key=lambda x: (x.id is None, x.id or 0)):
        if lic.client_id is None:
            continue
        held.setdefault(lic.client_id, {}).setdefault(lic.product_code.strip().casefold(), []).append(lic)
    return held


def _lines_per_client(feed: list[SourceLine], decision_of: Mapping[str, MatchDecision], skipped: list[SkippedLine]
                      ) -> tuple[dict[int, list[SourceLine]], dict[int, list[str]]]:
    """Feed lines (and customer names) per matched client; every other line is skipped with
    its customer's reason."""
    per_client: dict[int, list[SourceLine]] = {}
    customers_of: dict[int, list[str]] = {}
    for sl in feed:
        d = decision_of[name_key(sl.customer)]
        if d.status != "matched" or d.client_id is None:
            skipped.append(SkippedLine(customer=sl.customer, product_code=sl.product_code, line=sl.line,
                                       client_id=d.client_id, reason=f"customer {d.status}: {d.reason}"))
            continue
        per_client.setdefault(d.client_id, []).append(sl)
        names = customers_of.setdefault(d.client_id, [])
        if sl.customer not in names:
            names.append(sl.customer)
    return per_client, customers_of


def _summary(matching: list[MatchDecision], out: _Outcome, money: list[ClientMoney]) -> SyncSummary:
    counts = {status: sum(1 for d in matching if d.status == status)
              for status in ("matched", "ambiguous", "unmatched", "excluded")}
    kinds = {k: sum(1 for a in out.actions if a.kind == k) for k in ("create", "update", "delete")}
    kinds.update(unchanged=out.unchanged, nothing_to_do=out.nothing,
                 skipped=sum(1 for s in out.skipped if s.line is not None and s.licence_id is None),
                 left_alone=sum(1 for s in out.skipped if s.licence_id is not None))
    return SyncSummary(customers=counts, actions=kinds,
                       monthly_before=sum((m.monthly_before for m in money), ZERO),
                       monthly_after=sum((m.monthly_after for m in money), ZERO), money=money)


@dataclass
class _Outcome:
    """What the whole sync collects, in the order it is decided."""

    actions: list[LicenceAction] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchanged: int = 0
    nothing: int = 0
    mismatches: list[CodeMismatch] = field(default_factory=list)
    would_delete: list[LicenceAction] = field(default_factory=list)


_Seats = tuple[int, Decimal | None, str | None]  # quantity, unit price, billing cycle


@dataclass
class _ClientSync:
    """The feed lines of one Halo client against the licences it holds."""

    client: Client
    customers: list[str]
    mine: dict[str, list[Licence]]  # product code key -> licences, lowest id first
    distributor: str
    cleanup: bool
    drop_zero_price_lines: bool
    out: _Outcome
    products: _Products = field(default_factory=lambda: _Products(explicit={}, remembered={}))
    hold_cleanup: bool = False  # a first sync: cleanup deletes are listed, not planned
    # the monthly value of every active licence after the plan (by object), plus the new ones
    after: dict[int, _Seats] = field(default_factory=dict)
    created: list[tuple[LicenceAction, SourceLine, _Seats]] = field(default_factory=list)

    @property
    def client_id(self) -> int:
        return self.client.id

    def owner(self, lic: Licence) -> Owner:
        return _owner(lic, distributor_key(self.distributor))

    def left_alone(self, lic: Licence, reason: str, sl: SourceLine | None = None) -> None:
        self.out.skipped.append(SkippedLine(
            customer=sl.customer if sl else None, product_code=sl.product_code if sl else lic.product_code or None,
            line=sl.line if sl else None, client_id=self.client_id, licence_id=lic.id, distributor=lic.distributor,
            reason=reason))

    def skip_line(self, sl: SourceLine, reason: str) -> None:
        self.out.skipped.append(SkippedLine(customer=sl.customer, product_code=sl.product_code, line=sl.line,
                                            client_id=self.client_id, reason=reason))

    def delete(self, lic: Licence, *, label: str | None, sl: SourceLine | None, reason: str, why: str) -> None:
        self.out.actions.append(_delete(self.client_id, self.client.name, lic, label=label, sl=sl,
                                        reason=reason, why=why))
        self.after.pop(id(lic), None)

    def cleanup_delete(self, lic: Licence, *, label: str | None, sl: SourceLine | None, reason: str,
                       why: str) -> None:
        """A delete by cleanup: planned, or on a first sync only listed in ``would_delete``."""
        if not self.hold_cleanup:
            self.delete(lic, label=label, sl=sl, reason=reason, why=why)
            return
        self.out.would_delete.append(_delete(self.client_id, self.client.name, lic, label=label, sl=sl,
                                             reason=f"{reason}; held back: first sync of {self.distributor}",
                                             why=why))

    def run(self, client_lines: list[SourceLine]) -> ClientMoney:
        before_total, notes = self._value_before()
        client_lines = self._mapped(client_lines)
        conflicted = self._conflicted_codes(client_lines)
        protected: set[str] = set()  # codes the feed speaks about (never cleaned up)
        for sl in client_lines:
            protected.add(sl.code_key)
            self._line(sl, conflicted)
        self._unlisted(protected)
        self._code_mismatches(protected)
        after_total = sum((monthly_amount(q, p, c)
                           for q, p, c in [*self.after.values(), *(seats for _, _, seats in self.created)]), ZERO)
        return ClientMoney(client_id=self.client_id, client_name=self.client.name, customers=self.customers,
                           monthly_before=before_total, monthly_after=after_total,
                           monthly_change=after_total - before_total, notes=sorted(set(notes)))

    def _value_before(self) -> tuple[Decimal, list[str]]:
        """The monthly value of every active licence before; "after" starts as a copy."""
        notes: list[str] = []
        total = ZERO
        for x in (x for lics in self.mine.values() for x in lics if x.active):
            self.after[id(x)] = (x.quantity, x.unit_price, x.billing_cycle)
            total += monthly_amount(x.quantity, x.unit_price, x.billing_cycle)
            if x.unit_price is not None and x.billing_cycle and canonical_cycle(x.billing_cycle) is None:
                notes.append(f"licence {x.id}: its billing cycle is not one this sync knows; counted as monthly")
        return total, notes

    def _mapped(self, client_lines: list[SourceLine]) -> list[SourceLine]:
        """Each line under the Halo code it syncs with; a second line landing on a code the
        feed already names for this customer is skipped (the mapping would merge products)."""
        out: list[SourceLine] = []
        seen: dict[tuple[str, str], SourceLine] = {}
        for sl in client_lines:
            mapped = self.products.resolve(sl, self.mine)
            key = (name_key(mapped.customer), mapped.code_key)
            if key in seen:
                self.skip_line(sl, f"product '{sl.product_code}' maps to the same Halo product code as line "
                                   f"{seen[key].line}; fix product_mappings so each feed code has its own")
                continue
            seen[key] = mapped
            out.append(mapped)
        return out

    def _code_mismatches(self, protected: set[str]) -> None:
        """Hold back each create whose feed product name matches an active licence of this
        client under a code the feed does not name (and any delete of that licence)."""
        by_name: dict[str, list[Licence]] = {}
        for code, lics in self.mine.items():
            if code in protected or not code:
                continue
            for x in lics:
                if x.active and self.owner(x) != "other" and product_name_key(x.name):
                    by_name.setdefault(product_name_key(x.name), []).append(x)
        for action, sl, seats in list(self.created):
            matches = by_name.get(product_name_key(sl.product_name), [])
            if not matches:
                continue
            self.created.remove((action, sl, seats))
            self.out.actions.remove(action)
            for x in matches:
                self._hold_licence(x)
                self.out.mismatches.append(CodeMismatch(
                    client_id=self.client_id, client_name=self.client.name, customer=sl.customer, line=sl.line,
                    feed_code=sl.code_in_feed, feed_name=sl.product_name, feed_quantity=sl.quantity,
                    licence_id=x.id or 0, halo_code=x.product_code, halo_name=x.name, halo_quantity=x.quantity,
                    suggested_mapping={sl.code_in_feed: x.product_code},
                    reason=(f"the feed's product on line {sl.line} and licence {x.id} have the same product name "
                            f"but different codes: no create and no delete was planned for them. If they are "
                            f"the same product, call again with product_mappings={{'{sl.code_in_feed}': "
                            f"<licence {x.id}'s product_code>}} (it is remembered for next month); if not, "
                            f"use a product name that tells them apart")))

    def _hold_licence(self, lic: Licence) -> None:
        """Take a planned (or first-sync listed) delete of ``lic`` back; its value stays."""
        for bucket in (self.out.actions, self.out.would_delete):
            for a in [a for a in bucket if a.kind == "delete" and a.licence_id == lic.id]:
                bucket.remove(a)
        self.after[id(lic)] = (lic.quantity, lic.unit_price, lic.billing_cycle)

    def _conflicted_codes(self, client_lines: list[SourceLine]) -> set[str]:
        """Codes listed by two customers mapped to this client (left alone)."""
        owners: dict[str, set[str]] = {}
        for sl in client_lines:
            owners.setdefault(sl.code_key, set()).add(name_key(sl.customer))
        if len(self.customers) > 1:
            self.out.warnings.append(f"customers {', '.join(repr(c) for c in self.customers)} all map to "
                                     f"client {self.client_id}; their lines are combined")
        return {code for code, who in owners.items() if len(who) > 1}

    def _line(self, sl: SourceLine, conflicted: set[str]) -> None:
        if sl.code_key in conflicted:
            self.skip_line(sl, f"product '{sl.product_code}' is listed by more than one "
                               f"customer mapped to client {self.client_id}; resolve the mapping")
            return
        if self.drop_zero_price_lines and sl.unit_price is not None and sl.unit_price == 0:
            self.skip_line(sl, "zero price line dropped (drop_zero_price_lines); the Halo "
                               "licence, if any, is left as it is")
            return
        lics = self.mine.get(sl.code_key, [])
        # the licence a feed line syncs: active before inactive, this distributor's before
        # unowned ones, lowest id first; another distributor's licences are never touched
        eligible = sorted((x for x in lics if self.owner(x) != "other"),
                          key=lambda x: (not x.active, self.owner(x) != "ours", x.id is None, x.id or 0))
        foreign = [x for x in lics if self.owner(x) == "other"]
        for x in foreign:
            self.left_alone(x, _not_ours(x, "other", self.distributor,
                                         "this sync keeps its own licence for the product"), sl)
        label = _label(sl.product_code, sl.product_name)
        if not eligible:
            self._create(sl, label, foreign)
        elif sl.quantity == 0:
            self._zero_seats(sl, label, eligible[0], eligible[1:])
        else:
            self._sync(sl, label, eligible[0], eligible[1:])

    def _create(self, sl: SourceLine, label: str, foreign: list[Licence]) -> None:
        if sl.quantity == 0:
            self.out.nothing += 1
            return
        data: dict[str, Any] = {"client_id": self.client_id, "product_code": sl.product_code,
                                "name": sl.product_name or sl.product_code, "quantity": sl.quantity,
                                "distributor": self.distributor}
        for name in ("unit_price", "billing_cycle", "term"):
            if getattr(sl, name) is not None:
                data[name] = getattr(sl, name)
        price = f" at {_price(sl.unit_price)}" + (f" {sl.billing_cycle}" if sl.billing_cycle else "")
        action = LicenceAction(
            kind="create", client_id=self.client_id, client_name=self.client.name, customer=sl.customer,
            product_code=sl.product_code, product_name=sl.product_name, line=sl.line,
            fields=LicenceFields(**data),
            reason=f"no Halo licence from {self.distributor} with this product code and the feed has seats",
            summary=f"Create licence {label} x{sl.quantity}{price} for client {self.client_id}",
            halo_name=data["name"], feed_code=sl.feed_code)
        self.out.actions.append(action)
        self.created.append((action, sl, (sl.quantity, sl.unit_price, sl.billing_cycle)))
        active_foreign = [x.id for x in foreign if x.active]
        if active_foreign:
            self.out.warnings.append(
                f"client {self.client_id}: licence(s) {', '.join(str(i) for i in active_foreign)} of another "
                f"distributor carry product '{sl.product_code}' too; after this plan both are billed - "
                f"if the customer moved to {self.distributor}, end the old licence in Halo")

    def _zero_seats(self, sl: SourceLine, label: str, existing: Licence, rest: list[Licence]) -> None:
        """The feed says 0 seats: every active licence of the code that is this distributor's
        or nobody's goes (the feed names the product for this customer)."""
        if not existing.active:
            self.out.nothing += 1  # already ended in Halo
            for x in rest:
                self.left_alone(x, _INACTIVE, sl)
            return
        reason = "the feed has 0 seats for this product"
        self.delete(existing, label=label, sl=sl, reason=reason, why="0 seats in the feed")
        for x in rest:
            if x.active:
                self.delete(x, label=label, sl=sl, reason=reason,
                            why=f"0 seats in the feed (duplicate of licence {existing.id})")
            else:
                self.left_alone(x, _INACTIVE, sl)

    def _sync(self, sl: SourceLine, label: str, existing: Licence, rest: list[Licence]) -> None:
        """Seats > 0: sync ``existing``; the others with the code are duplicates."""
        self._duplicates(sl, label, existing, rest)
        fields, changes = _changes(sl, existing, adopt=self.distributor if self.owner(existing) == "none" else None)
        if not changes:
            self.out.unchanged += 1
            return
        what = ", ".join(_change_text(c) for c in changes)
        verb = "Reactivate" if not existing.active else "Update"
        reason = "the feed differs from Halo"
        if not existing.active:
            reason = "the licence is inactive in Halo and the feed has seats: reactivated"
        elif self.owner(existing) == "none" and len(changes) == 1:
            reason = f"the licence has no distributor: stamped {self.distributor} so the sync manages it"
        self.out.actions.append(LicenceAction(
            kind="update", client_id=self.client_id, client_name=self.client.name, customer=sl.customer,
            product_code=existing.product_code, product_name=existing.name, line=sl.line,
            licence_id=existing.id, fields=fields, changes=changes, reason=reason,
            summary=f"{verb} licence {label} (id {existing.id}) for client {self.client_id}: {what}",
            halo_name=existing.name or None, feed_name=_other_name(sl.product_name, existing.name),
            feed_code=sl.feed_code))
        self.after[id(existing)] = (sl.quantity,
                                    sl.unit_price if sl.unit_price is not None else existing.unit_price,
                                    sl.billing_cycle or existing.billing_cycle)

    def _duplicates(self, sl: SourceLine, label: str, existing: Licence, rest: list[Licence]) -> None:
        """Other licences of the synced code: this distributor's go with cleanup, the rest stay."""
        active_rest = [x for x in rest if x.active]
        if active_rest and existing.active:
            ids = ", ".join(str(x.id) for x in [existing, *active_rest])
            self.out.warnings.append(
                f"client {self.client_id} holds {len(active_rest) + 1} active licences for product "
                f"'{sl.product_code}' (ids {ids}); id {existing.id} is synced; the others from "
                f"{self.distributor} are deleted only with cleanup, the rest are left alone")
        for x in rest:
            if not x.active:
                self.left_alone(x, _INACTIVE, sl)
            elif self.owner(x) == "ours":
                if self.cleanup:
                    self.cleanup_delete(x, label=label, sl=sl,
                                reason=f"duplicate of licence {existing.id} for the same product (cleanup)",
                                why=f"duplicate of licence {existing.id} (cleanup)")
            else:
                self.left_alone(x, _not_ours(x, self.owner(x), self.distributor,
                                             f"licence {existing.id} is the one synced for this product"), sl)

    def _unlisted(self, protected: set[str]) -> None:
        """Licences whose product the feed does not name: cleanup deletes this distributor's."""
        for code, lics in self.mine.items():
            if code in protected:
                continue
            if not code:
                for x in lics:
                    self.left_alone(x, f"Halo licence {x.id} has no product code; the sync does not manage it")
                continue
            if self.cleanup:
                for x in lics:
                    self._cleanup_one(x)

    def _cleanup_one(self, x: Licence) -> None:
        if not x.active:
            self.left_alone(x, _INACTIVE)
        elif self.owner(x) == "ours":
            self.cleanup_delete(x, label=None, sl=None, reason="product code not in the feed (cleanup)",
                        why=f"product not in the {self.distributor} feed (cleanup)")
        else:
            self.left_alone(x, _not_ours(x, self.owner(x), self.distributor,
                                         "its product is not in the feed, but cleanup deletes only licences "
                                         f"whose distributor is '{self.distributor}'"))
