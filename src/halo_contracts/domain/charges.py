"""Distributor charges into Halo invoices: read the export, apply each client's billing rules (pure).

A distributor's charges export lists, per customer, what it billed the MSP this period:
product code, description, quantity, unit cost, unit price, the kind of charge (recurring,
usage such as Azure consumption, a prorate, a one-off) and the period it covers. Each client
has billing rules (stored per distributor and client, with a global default, see
:class:`BillingRules`) that decide what reaches the client's invoice:

* ``usage``: ``keep`` usage lines as they are, ``drop`` them, or ``collapse`` them into one
  line whose cost and price are the sums of theirs;
* ``drop_favourable_prorates``: drop prorate lines whose amount is negative (a credit the
  distributor gives the MSP, not one the MSP passes on);
* ``drop_zero_lines``: drop lines whose amount is 0;
* ``do_not_invoice``: the client is matched but none of its charges are invoiced;
* ``exclude``: the client is left out of the import altogether (listed as excluded).

Where they go (``target``): a ``new`` invoice, the client's latest invoice not yet posted
(``last``), or the client's ``recurring`` invoice; ``invoice_id`` pins the invoice.

A charge's natural key is its product code and period on the client's invoices: a feed line
whose key Halo already holds (as many times as the feed lists it) is not added again, so a
re-imported export adds nothing. Every dropped, collapsed or already-present line keeps its
reason. Money is Decimal; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from halo_contracts.domain.licence_sync import FeedError, FeedProblem, _number, csv_rows
from halo_contracts.domain.matching import name_key
from halo_contracts.domain.money import ZERO, cents
from halo_contracts.domain.validation import text_problem

ChargeType = Literal["recurring", "usage", "prorate", "one-off"]
Target = Literal["new", "last", "recurring"]
UsageRule = Literal["keep", "drop", "collapse"]

_TYPE_ALIASES: dict[str, ChargeType] = {}
for _kind, _words in {
    "recurring": ("recurring", "subscription", "monthly", "licence", "license", "seat", "seats", "renewal"),
    "usage": ("usage", "azure", "arrears", "consumption", "metered", "azure usage", "azure plan", "pay as you go",
              "payg"),
    "prorate": ("prorate", "prorated", "proration", "pro rata", "prorata", "pro rated", "partial", "adjustment"),
    "one-off": ("one off", "oneoff", "one time", "onetime", "once", "setup", "set up", "single", "non recurring"),
}.items():
    for _w in _words:
        _TYPE_ALIASES[_w] = _kind  # type: ignore[assignment]

FIELDS = ("customer", "product_code", "description", "quantity", "unit_cost", "unit_price", "charge_type",
          "period_start", "period_end")
REQUIRED = ("customer", "product_code", "quantity", "unit_price", "period_start")

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "customer": ("customer", "customer name", "company", "company name", "client", "client name",
                 "organisation", "organization", "account name", "end customer"),
    "product_code": ("product code", "productcode", "sku", "product sku", "part number", "part no", "mpn",
                     "product id", "offer id"),
    "description": ("description", "product name", "product", "name", "item", "charge description",
                    "line description"),
    "quantity": ("quantity", "qty", "units", "seats", "count"),
    "unit_cost": ("unit cost", "cost", "cost price", "buy price", "unit buy price", "unitcost"),
    "unit_price": ("unit price", "price", "sell price", "sale price", "unit sell price", "unitprice"),
    "charge_type": ("charge type", "type", "chargetype", "charge kind", "line type", "billing type"),
    "period_start": ("period start", "start", "start date", "from", "service start", "charge start",
                     "periodstart", "billing start"),
    "period_end": ("period end", "end", "end date", "to", "service end", "charge end", "periodend",
                   "billing end"),
}
_ALIAS_TO_FIELD = {alias: f for f, aliases in COLUMN_ALIASES.items() for alias in aliases}
_TEXT_FIELDS = ("customer", "product_code", "description", "charge_type")
_DELIMITERS = (",", ";", "\t", "|")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.]+Z?)?$")


def charge_type_of(text: str | None) -> ChargeType | None:
    """``"Azure"``, ``"Usage"`` -> usage; ``"Pro-rata"`` -> prorate; blank -> recurring; unknown -> None."""
    plain = " ".join(re.sub(r"[^0-9a-z]+", " ", (text or "").casefold()).split())
    if not plain:
        return "recurring"
    return _TYPE_ALIASES.get(plain)


def charge_key(product_code: str, start: date | None, end: date | None) -> str:
    """The natural key of a charge on an invoice: product code (trimmed, case-folded) and period."""
    return f"{product_code.strip().casefold()}|{start.isoformat() if start else ''}|{end.isoformat() if end else ''}"


# ---- the export ------------------------------------------------------------------------------


class ChargeLine(BaseModel):
    """One validated export line."""

    model_config = ConfigDict(extra="forbid")

    line: int
    customer: str
    product_code: str
    description: str | None = None
    quantity: Decimal
    unit_cost: Decimal | None = None
    unit_price: Decimal
    charge_type: ChargeType = "recurring"
    period_start: date
    period_end: date

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price

    @property
    def cost(self) -> Decimal:
        return self.quantity * (self.unit_cost or ZERO)

    @property
    def key(self) -> str:
        return charge_key(self.product_code, self.period_start, self.period_end)


class ChargeFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[ChargeLine]
    warnings: list[str] = Field(default_factory=list)


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value
    m = _ISO.match(str(value).strip())
    if not m:
        raise ValueError("is not a date in the form YYYY-MM-DD")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError("is not a real date") from None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class _Row:
    """Checks of one row; every problem goes to ``problems`` with the row's line."""

    def __init__(self, values: Mapping[str, Any], line: int, problems: list[FeedProblem]) -> None:
        self.values, self.line, self.problems = values, line, problems
        self.before = len(problems)

    def bad(self, field: str, problem: str, fix: str) -> None:
        self.problems.append(FeedProblem(line=self.line, field=field, problem=problem, fix=fix))

    def text(self, name: str, blank: str | None, fix: str) -> str | None:
        raw = self.values.get(name)
        if isinstance(raw, str) and _cell(raw) is not None:
            problem = text_problem(raw)
            if problem is not None:
                self.bad(name, problem[0], problem[1])
                return None
        value = _cell(raw)
        if value is None and blank is not None:
            self.bad(name, blank, fix)
        return value

    def number(self, name: str, fix: str, *, required: bool) -> Decimal | None:
        raw = self.values.get(name)
        try:
            value = _number(raw)
        except ValueError as exc:
            self.bad(name, f"'{raw}' {exc}", fix)
            return None
        if value is None and required:
            self.bad(name, f"the {name.replace('_', ' ')} is blank", fix)
        return value

    def day(self, name: str, *, required: bool) -> date | None:
        raw = self.values.get(name)
        try:
            value = _date(raw)
        except ValueError as exc:
            self.bad(name, f"'{raw}' {exc}", "write the date as YYYY-MM-DD, e.g. 2026-11-01")
            return None
        if value is None and required:
            self.bad(name, f"the {name.replace('_', ' ')} is blank", "give the first day the charge covers")
        return value


def _validate(values: Mapping[str, Any], line: int, problems: list[FeedProblem]) -> ChargeLine | None:
    r = _Row(values, line, problems)
    customer = r.text("customer", "the customer name is blank", "fill in the distributor's customer name")
    code = r.text("product_code", "the product code is blank", "fill in the distributor's product code (SKU)")
    description = r.text("description", None, "")
    kind_text = r.text("charge_type", None, "")
    quantity = r.number("quantity", "give the quantity as a number, e.g. 3 or 1.5", required=True)
    unit_cost = r.number("unit_cost", "give the cost per unit as a number, e.g. 12.50", required=False)
    unit_price = r.number("unit_price", "give the price per unit as a number, e.g. 15.00", required=True)
    start = r.day("period_start", required=True)
    end = r.day("period_end", required=False) or start
    kind = charge_type_of(kind_text)
    if kind is None:
        r.bad("charge_type", f"'{kind_text}' is not a charge type this import knows",
              "use recurring, usage (Azure), prorate or one-off")
    if start is not None and end is not None and end < start:
        r.bad("period_end", "the period ends before it starts", "give a period end on or after the period start")
    if len(problems) > r.before or None in (customer, code, quantity, unit_price, start, end, kind):
        return None
    return ChargeLine(line=line, customer=customer or "", product_code=code or "", description=description,
                      quantity=quantity, unit_cost=unit_cost, unit_price=unit_price,
                      charge_type=kind or "recurring", period_start=start, period_end=end)  # type: ignore[arg-type]


def _header_key(text: str) -> str:
    return " ".join(re.sub(r"[_\-./]+", " ", text.strip().lstrip("\ufeff").casefold()).split())


def _header(cells: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _ALIAS_TO_FIELD.get(_header_key(cell))
        if name is not None and name not in index:
            index[name] = i
    return index


def _find_header(first: str) -> tuple[str, dict[str, int], list[str]]:
    best: tuple[str, dict[str, int], list[str]] = (",", {}, [])
    for d in _DELIMITERS:
        try:
            cells = next(csv.reader([first], delimiter=d))
        except (csv.Error, StopIteration):
            continue
        index = _header(cells)
        if len(index) > len(best[1]):
            best = (d, index, cells)
    return best


def _ignored_columns(cells: list[str], index: Mapping[str, int]) -> list[str]:
    """Header cells this import does not read: not a known name, or a second column for a field."""
    used = set(index.values())
    ignored = [c.strip() for i, c in enumerate(cells) if i not in used and c.strip()]
    if not ignored:
        return []
    more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
    shown = ", ".join(f"'{c[:40]}'" for c in ignored[:10]) + more
    return [f"column(s) {shown} not read (unknown or repeated header); headers read: "
            + ", ".join(COLUMN_ALIASES[f][0] for f in FIELDS) + " (or a synonym in docs/charges.md)"]


def parse_charges_csv(text: str) -> ChargeFeed:
    """CSV text with a header row (comma, semicolon, tab or pipe separated; headers matched
    case-insensitively against :data:`COLUMN_ALIASES`). Line numbers are physical lines from 1."""
    body = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    physical = body.split("\n")
    first = next((i for i, raw in enumerate(physical) if raw.strip()), None)
    if first is None:
        raise FeedError([FeedProblem(line=None, field=None, problem="the CSV text is empty",
                                     fix="paste the distributor's charges export including its header row")])
    delimiter, index, cells = _find_header(physical[first])
    missing = [f for f in REQUIRED if f not in index]
    if missing:
        raise FeedError([FeedProblem(line=first + 1, field=f, problem=f"no column for {f} in the header",
                                     fix="name a column one of: " + ", ".join(COLUMN_ALIASES[f]))
                         for f in missing])
    reader = csv.reader(io.StringIO("\n".join(physical[first:])), delimiter=delimiter, strict=True)
    width = len(next(reader))
    problems: list[FeedProblem] = []
    lines: list[ChargeLine] = []
    for at, row in csv_rows(reader, width=width, offset=first, problems=problems, pad_short=True):
        cl = _validate({f: row[i] for f, i in index.items()}, at, problems)
        if cl is not None:
            lines.append(cl)
    if problems:
        raise FeedError(problems)
    warnings = _ignored_columns(cells, index) + ([] if lines else ["the export has a header but no rows"])
    return ChargeFeed(lines=lines, warnings=warnings)


def parse_charge_rows(rows: Sequence[Mapping[str, Any]]) -> ChargeFeed:
    """Row objects with the :data:`FIELDS` keys; problems are numbered by row from 1."""
    problems: list[FeedProblem] = []
    lines: list[ChargeLine] = []
    for n, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - set(FIELDS))
        if unknown:
            problems.append(FeedProblem(line=n, field=unknown[0], problem=f"unknown field(s) {unknown}",
                                        fix="use only " + ", ".join(FIELDS)))
            continue
        cl = _validate(row, n, problems)
        if cl is not None:
            lines.append(cl)
    if problems:
        raise FeedError(problems, unit="row")
    return ChargeFeed(lines=lines)


# ---- billing rules -----------------------------------------------------------------------------

GLOBAL = "*"  # the distributor name of the global default rules


class BillingRules(BaseModel):
    """Rules as stored: only the fields set at that level (None: not set here)."""

    model_config = ConfigDict(extra="forbid")

    usage: UsageRule | None = None
    drop_favourable_prorates: bool | None = None
    drop_zero_lines: bool | None = None
    do_not_invoice: bool | None = None
    exclude: bool | None = None
    target: Target | None = None
    invoice_id: int | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EffectiveRules(BaseModel):
    """The rules in force for one client: each field from the most specific level that sets it."""

    model_config = ConfigDict(extra="forbid")

    usage: UsageRule = "keep"
    drop_favourable_prorates: bool = False
    drop_zero_lines: bool = False
    do_not_invoice: bool = False
    exclude: bool = False
    target: Target = "new"
    invoice_id: int | None = None
    sources: dict[str, str] = Field(default_factory=dict, description="field -> the level that set it")


def rule_levels(distributor: str, client_id: int) -> list[tuple[str, int, str]]:
    """(distributor, client id, label) from the most general to the most specific; client 0 = every client."""
    return [(GLOBAL, 0, "global default"), (GLOBAL, client_id, "client, any distributor"),
            (distributor, 0, "distributor default"), (distributor, client_id, "client and distributor")]


def effective_rules(distributor: str, client_id: int,
                    stored: Mapping[tuple[str, int], Mapping[str, Any]]) -> EffectiveRules:
    """Merge the stored levels (see :func:`rule_levels`); ``stored`` maps (distributor key, client
    id) to the fields set there. A distributor's name is compared trimmed and case-folded."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for dist, cid, label in rule_levels(distributor_rule_key(distributor), client_id):
        if dist != GLOBAL and not dist:
            continue
        for name, value in (stored.get((dist, cid)) or {}).items():
            if value is not None and name in EffectiveRules.model_fields and name != "sources":
                values[name] = value
                sources[name] = label
    return EffectiveRules(**values, sources=sources)


def distributor_rule_key(name: str) -> str:
    text = " ".join(name.split()).casefold()
    return GLOBAL if text == GLOBAL else text


# ---- applying the rules -------------------------------------------------------------------------


class ChargeDraft(BaseModel):
    """A line to add to the client's invoice."""

    model_config = ConfigDict(extra="forbid")

    product_code: str
    description: str
    quantity: Decimal
    unit_cost: Decimal | None
    unit_price: Decimal
    period_start: date
    period_end: date
    charge_type: ChargeType
    feed_lines: list[int]

    @property
    def key(self) -> str:
        return charge_key(self.product_code, self.period_start, self.period_end)

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price

    @property
    def cost(self) -> Decimal:
        return self.quantity * (self.unit_cost or ZERO)


class SetAside(BaseModel):
    """A feed line that is not added, and why."""

    model_config = ConfigDict(extra="forbid")

    line: int
    product_code: str
    amount: Decimal
    rule: Literal["do_not_invoice", "drop_zero_lines", "drop_favourable_prorates", "usage_drop", "usage_collapse",
                  "already_invoiced"]
    reason: str


class ClientCharges(BaseModel):
    """One client's charges after its rules: what to add, what was set aside, the totals."""

    model_config = ConfigDict(extra="forbid")

    add: list[ChargeDraft]
    set_aside: list[SetAside]
    amount_before: Decimal  # the export's lines, price x quantity
    cost_before: Decimal
    amount_after: Decimal  # the lines to add
    cost_after: Decimal


USAGE_CODE = "USAGE"  # product code of a collapsed usage line whose lines had several codes


def _draft(cl: ChargeLine) -> ChargeDraft:
    return ChargeDraft(product_code=cl.product_code, description=cl.description or cl.product_code,
                       quantity=cl.quantity, unit_cost=cl.unit_cost, unit_price=cl.unit_price,
                       period_start=cl.period_start, period_end=cl.period_end, charge_type=cl.charge_type,
                       feed_lines=[cl.line])


def _collapse(usage: list[ChargeLine]) -> ChargeDraft:
    codes = {cl.product_code.strip().casefold() for cl in usage}
    code = usage[0].product_code if len(codes) == 1 else USAGE_CODE
    total_cost = sum((cl.cost for cl in usage), ZERO)
    total_price = sum((cl.amount for cl in usage), ZERO)
    start = min(cl.period_start for cl in usage)
    end = max(cl.period_end for cl in usage)
    return ChargeDraft(product_code=code, description=f"Usage charges {start.isoformat()} to {end.isoformat()} "
                                                      f"({len(usage)} lines)",
                       quantity=Decimal(1), unit_cost=cents(total_cost), unit_price=cents(total_price),
                       period_start=start, period_end=end, charge_type="usage",
                       feed_lines=[cl.line for cl in usage])


def _rule_out(cl: ChargeLine, rules: EffectiveRules) -> tuple[str, str] | None:
    """The rule (and reason) that drops a single line, or None."""
    if rules.do_not_invoice:
        return "do_not_invoice", "the client's rules say do not invoice"
    if rules.drop_zero_lines and cl.amount == 0:
        return "drop_zero_lines", "amount is 0 (drop zero-amount lines)"
    if rules.drop_favourable_prorates and cl.charge_type == "prorate" and cl.amount < 0:
        return "drop_favourable_prorates", "a negative prorate (drop favourable prorates)"
    if rules.usage == "drop" and cl.charge_type == "usage":
        return "usage_drop", "a usage line (drop usage lines)"
    return None


def apply_rules(lines: Iterable[ChargeLine], rules: EffectiveRules) -> ClientCharges:
    """One client's export lines through its rules, in this order: do not invoice, zero
    amounts, favourable prorates, usage (drop, or collapse into one line)."""
    feed = list(lines)
    add: list[ChargeDraft] = []
    aside: list[SetAside] = []
    usage: list[ChargeLine] = []
    for cl in feed:
        out = _rule_out(cl, rules)
        if out is not None:
            aside.append(SetAside(line=cl.line, product_code=cl.product_code, amount=cl.amount, rule=out[0],  # type: ignore[arg-type]
                                  reason=out[1]))
        elif rules.usage == "collapse" and cl.charge_type == "usage":
            usage.append(cl)
        else:
            add.append(_draft(cl))
    if usage:
        collapsed = _collapse(usage)
        aside += [SetAside(line=cl.line, product_code=cl.product_code, amount=cl.amount, rule="usage_collapse",
                           reason=f"collapsed with {len(usage) - 1} other usage line(s) into one line")
                  for cl in usage] if len(usage) > 1 else []
        if len(usage) == 1:
            add.append(_draft(usage[0]))
        elif rules.drop_zero_lines and collapsed.amount == 0:
            aside.append(SetAside(line=usage[0].line, product_code=collapsed.product_code, amount=ZERO,
                                  rule="drop_zero_lines", reason="the collapsed usage line's amount is 0"))
        else:
            add.append(collapsed)
    return _totals(feed, add, aside)


def _totals(feed: list[ChargeLine], add: list[ChargeDraft], aside: list[SetAside]) -> ClientCharges:
    return ClientCharges(add=add, set_aside=aside,
                         amount_before=sum((cl.amount for cl in feed), ZERO),
                         cost_before=sum((cl.cost for cl in feed), ZERO),
                         amount_after=sum((d.amount for d in add), ZERO),
                         cost_after=sum((d.cost for d in add), ZERO))


def without_held(charges: ClientCharges, held: Mapping[str, int], where: Mapping[str, str],
                 feed: Sequence[ChargeLine]) -> ClientCharges:
    """Leave out the lines Halo already holds: per natural key, as many as Halo has (``held``:
    key -> count on the client's invoices; ``where``: key -> the invoice, in words)."""
    left = Counter(held)
    add: list[ChargeDraft] = []
    aside = list(charges.set_aside)
    for draft in charges.add:
        if left[draft.key] > 0:
            left[draft.key] -= 1
            aside.append(SetAside(line=draft.feed_lines[0], product_code=draft.product_code, amount=draft.amount,
                                  rule="already_invoiced",
                                  reason=f"already on {where.get(draft.key, 'an invoice of the client')} "
                                         "(same product and period)"))
        else:
            add.append(draft)
    return _totals(list(feed), add, aside)


def by_customer(lines: Iterable[ChargeLine]) -> dict[str, list[ChargeLine]]:
    """Export lines per customer (by the normalised name the matching uses), in feed order."""
    out: dict[str, list[ChargeLine]] = {}
    for cl in lines:
        out.setdefault(name_key(cl.customer), []).append(cl)
    return out
