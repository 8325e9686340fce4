"""What every tool module shares: the tool registry, strict argument types, the app
context, and the one place Halo errors become ``ToolError``s a model can act on.

Tools are declared with ``@halo_tool(...)`` at import time; ``server.build_server`` decides
which of them to register (read-only mode, tool selection) and registers them on the
``MCPServer``. A tool is thin: strict arguments -> domain validation -> a Halo read or a
Plan -> a compact pydantic result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import build_resolver_plans, resolve_arguments
from mcp.types import ToolAnnotations
from mcp_types import InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from halo_contracts.access import Principal, caller_principal
from halo_contracts.domain import lines as ln
from halo_contracts.domain.drafts import RecurringItemFields
from halo_contracts.domain.models import Contract, RecurringInvoice, RecurringItem
from halo_contracts.domain.money import cents, unsigned_zero
from halo_contracts.domain.validation import Report, text_problem
from halo_contracts.halo.errors import (
    HaloError,
    HaloIncompleteRead,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloUnknownOutcome,
    HaloValidationError,
)
from halo_contracts.plans import consent
from halo_contracts.plans.executor import ApplyOutcome, PlanBusy, PlanExpired, PlanNotFound, Progress
from halo_contracts.plans.executor import apply_plan as run_plan
from halo_contracts.plans.models import PLAN_LIFETIME, Actor, Confirmation, Plan, Step
from halo_contracts.progress import progress_of
from halo_contracts.tools.errors import DateFormError, NumberFormError

if TYPE_CHECKING:
    from halo_contracts.access import TokenStore
    from halo_contracts.config import CodeMaps, Settings
    from halo_contracts.halo.client import HaloClient
    from halo_contracts.plans.journal import JournalBase

ToolKind = Literal["read", "write", "destructive"]

# Tool groups (HALO_TOOLS / HALO_DISABLED_TOOLS select by these or by tool name).
GROUPS = ("lookups", "contracts", "recurring", "prepaid", "renewals", "reconciliation", "reports",
          "license-sync", "plans")


@dataclass
class ToolSpec:
    fn: Callable[..., Any]
    name: str
    group: str
    kind: ToolKind
    title: str
    annotations: ToolAnnotations
    description: str | None = None


REGISTRY: dict[str, ToolSpec] = {}


def halo_tool(*, group: str, kind: ToolKind, title: str, idempotent: bool | None = None,
              name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a tool. ``kind`` sets the annotations: reads are read-only; writes are not
    destructive; ``destructive`` is for tools that remove or overwrite data in Halo."""
    if group not in GROUPS:
        raise ValueError(f"unknown tool group {group!r}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or fn.__name__
        # The title is the tool's own, not repeated here. Only hints that differ from the
        # spec's defaults (read-only false, destructive true, idempotent false, open world
        # true) are sent; destructive and idempotent mean something only for tools that write.
        writes = kind != "read"
        annotations = ToolAnnotations(
            read_only_hint=None if writes else True,
            destructive_hint=(kind == "destructive") if writes else None,
            idempotent_hint=True if writes and idempotent else None,
            open_world_hint=False,
        )
        REGISTRY[tool_name] = ToolSpec(fn=fn, name=tool_name, group=group, kind=kind, title=title,
                                       annotations=annotations)
        return fn

    return decorate


# ---- the application context the lifespan yields ---------------------------------------


@dataclass
class AppContext:
    settings: Settings
    halo: HaloClient
    journal: JournalBase
    extras: dict[str, Any] = field(default_factory=dict)
    tokens: TokenStore | None = None  # HTTP bearer tokens (None on stdio / in memory)

    @property
    def codes(self) -> CodeMaps:
        return self.settings.code_maps


def app(ctx: Context) -> AppContext:
    """The AppContext of the running server, from a tool's ``ctx``."""
    return ctx.request_context.lifespan_context


def caller(ctx: Context) -> Principal:
    """Who is calling: the signed-in person (HTTP sign-in), the bearer token (HTTP), or the one
    local principal (stdio, in memory)."""
    request = ctx.request_context.request
    return caller_principal(getattr(request, "headers", None), app(ctx).tokens, request)


def today_of(ctx: Context) -> date:
    """Today's date in UTC (Halo's zone-less timestamps are UTC); ``extras["today"]`` overrides
    it, e.g. for a sandbox with a fixed date."""
    value = app(ctx).extras.get("today")
    return value if isinstance(value, date) else datetime.now(UTC).date()


# ---- strict argument types ---------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# Dates a contract can sensibly carry. Halo uses 1900-01-01 for "no date"; far-future years
# would overflow date arithmetic (terms, billing periods) long before they mean anything.
EARLIEST_DATE = date(1901, 1, 1)
LATEST_DATE = date(2199, 12, 31)
# Amounts, quantities and hours beyond this are typing mistakes, and would exceed the
# precision cents are computed with.
LARGEST_NUMBER = Decimal("1000000000000")


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        parsed = value
    elif not isinstance(value, str) or not _ISO_DATE.match(value):
        raise DateFormError("expected a date as text in the form YYYY-MM-DD, e.g. 2026-01-31")
    else:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise DateFormError(f"'{value}' is not a real calendar date (YYYY-MM-DD)") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise DateFormError(f"{parsed.isoformat()} is outside the dates contracts use "
                         f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})")
    return parsed


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise NumberFormError("expected a number, e.g. 2500 or 49.95 (not text)")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a finite number") from None
    if not result.is_finite():
        raise ValueError("expected a finite number")
    if abs(result) >= LARGEST_NUMBER:
        raise ValueError(f"{value} is too large (the limit is under {LARGEST_NUMBER:,}); check the figure")
    return unsigned_zero(result)


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    PlainSerializer(lambda d: d.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date"}),
]
Number = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    WithJsonSchema({"type": "number"}),
]


def _money_text(value: Decimal) -> str:
    return str(cents(value))


# Money in results: a JSON string with two decimals (DESIGN: never floats on the way out).
Money = Annotated[
    Decimal,
    PlainSerializer(_money_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "amount, two decimals"}),
]
Hours = Annotated[
    Decimal,
    PlainSerializer(lambda v: float(cents(v)), return_type=float),
    WithJsonSchema({"type": "number", "description": "hours"}),
]

def _text_rule(*, multiline: bool, blank_ok: bool) -> AfterValidator:
    """The text rule of ``domain.validation.text_problem`` as a validator: a refusal names the
    field, in the project's error format."""

    def check(value: str, info: ValidationInfo) -> str:
        problem = text_problem(value, multiline=multiline, blank_ok=blank_ok)
        if problem is None:
            return value
        raise PydanticCustomError("text_rule", "Invalid '{field}': {rule}. Fix: {fix}. Nothing was sent to Halo.",
                                  {"field": info.field_name or "text", "rule": problem[0], "fix": problem[1]})

    return AfterValidator(check)


# A ref, name, code or description a person gives: one line, visible, no control or
# bidirectional characters.
Line = Annotated[str, Field(strict=True), _text_rule(multiline=False, blank_ok=False)]
# The same where a domain rule reports a blank value together with the other errors (a
# contract's ref): control and bidirectional characters are refused here, blankness there
# (``validation.is_blank``).
LineMaybeBlank = Annotated[str, Field(strict=True), _text_rule(multiline=False, blank_ok=True)]
# A free-text note: line breaks and tabs allowed, may be blank (to clear it).
Notes = Annotated[str, Field(strict=True), _text_rule(multiline=True, blank_ok=True)]

StrictInt = Annotated[int, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
StrictStr = Annotated[str, Field(strict=True)]
ContractId = Annotated[int, Field(strict=True, gt=0)]
ClientId = Annotated[int, Field(strict=True, gt=0)]
DryRun = Annotated[bool, Field(strict=True)]  # true: plan only, send nothing (the tool descriptions say so)
ResultFormat = Literal["json", "csv"]
Detail = Literal["summary", "full"]  # 'full': with each plan step's Halo request (the tool descriptions say so)
Cursor = Annotated[str | None, Field(strict=True, max_length=200)]  # the previous page's next_cursor


class ArgModel(BaseModel):
    """Base for object arguments: strict types, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Result(BaseModel):
    """Base for tool results. ``said()`` is the text a client shows the model: what a person
    would say about the result (counts, money, the few items that matter, the next step),
    never the data again; the data travels once, as structured content."""

    model_config = ConfigDict(extra="forbid")

    def said(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say its result in words")

    def plan_links(self) -> list[str]:
        """Plans the result names (each becomes a link to ``halopsa://plans/{plan_id}``)."""
        plan_id = getattr(self, "plan_id", None)
        return [plan_id] if isinstance(plan_id, str) and plan_id else []


def money(value: Decimal | None) -> str:
    """An amount for a summary sentence: thousands separated, two decimals."""
    return "-" if value is None else f"{value:,.2f}"


def hours(value: Decimal | float | None) -> str:
    """Hours (or a bank's amount) for a summary sentence: at most two decimals, no trailing zeros."""
    if value is None:
        return "-"
    text = f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding='ROUND_HALF_UP'):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def quoted(text: str | None, limit: int = 60) -> str:
    """Text from Halo or a feed in a summary: quoted, on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text or "").split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def listed(items: list[str], limit: int = 5) -> str:
    """The first few items, then how many more."""
    head = "; ".join(items[:limit])
    return head + (f"; and {len(items) - limit} more" if len(items) > limit else "")


# ---- cursors ---------------------------------------------------------------------------------------


def fingerprint(filters: dict[str, Any]) -> str:
    """A short hash of the arguments a cursor belongs to (a cursor is refused with others)."""
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:12]


def make_cursor(offset: int, fp: str) -> str:
    raw = json.dumps({"o": offset, "f": fp}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_offset(cursor: str | None, fp: str, tool: str) -> int:
    """The offset a cursor of ``tool`` points at (0 without a cursor)."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, cursor_fp = int(data["o"]), str(data["f"])
    except Exception:
        raise invalid("cursor", f"this is not a cursor {tool} returned",
                      "pass next_cursor from the previous page unchanged, or leave cursor out") from None
    if cursor_fp != fp or offset < 0:
        raise invalid("cursor", f"the cursor belongs to a {tool} call with different filters",
                      "repeat the same arguments with this cursor, or leave cursor out to start again")
    return offset


def paged(items: Sequence[Any], cursor: str | None, limit: int, fp: str, tool: str) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the cursor of the next page (None on the last)."""
    offset = cursor_offset(cursor, fp, tool)
    page = list(items[offset:offset + limit])
    return page, make_cursor(offset + limit, fp) if offset + limit < len(items) else None


# ---- errors ---------------------------------------------------------------------------------


def invalid(field: str, rule: str, fix: str) -> ToolError:
    """A validation error a model can act on: which field, which rule, how to fix it."""
    return ToolError(f"Invalid '{field}': {rule}. Fix: {fix}. Nothing was sent to Halo.")


def halo_error_message(exc: HaloError) -> str:
    if isinstance(exc, HaloNotFound):
        hint = "Check the id (search first) and try again."
    elif isinstance(exc, HaloPermissionError):
        hint = ("Halo refused this with a valid token: give the API application (and the agent it logs in "
                "as) permission for this area in Halo, then retry.")
    elif isinstance(exc, HaloValidationError):
        hint = "Halo rejected the values; correct the fields named above."
    elif isinstance(exc, HaloRateLimited):
        hint = "Halo's request limit is exhausted; wait a few minutes and retry."
    elif isinstance(exc, HaloUnknownOutcome):
        hint = "The answer was lost; run apply_plan again with the same plan_id to settle it safely."
    elif isinstance(exc, HaloIncompleteRead):
        hint = "Nothing was changed; retry once Halo answers completely."
    else:
        hint = "Retry later; if it persists, run `halopsa-contracts-mcp doctor`."
    return f"{exc} {hint}"


@asynccontextmanager
async def halo_errors():
    """Turn Halo errors into ToolErrors with Halo's own message and a next step."""
    try:
        yield
    except HaloError as exc:
        raise ToolError(halo_error_message(exc)) from exc


# ---- contracts and their lines (shared by the contract and recurring-item tools) -------------------


def rejected(report: Report) -> ToolError:
    """Every error of a report in one ToolError: field, rule and fix each."""
    lines = "\n".join(f"- Invalid '{e.field}': {e.rule}. Fix: {e.fix}." for e in report.errors)
    return ToolError(f"{len(report.errors)} problem(s) found; nothing was sent to Halo.\n{lines}")


def canonical(kind: str, value: str | None, codes: CodeMaps) -> str | None:
    """A known code name in the tenant's own spelling (input is case-insensitive)."""
    if value is None:
        return None
    value = value.strip()
    if kind == "type":
        code = codes.type_code(value)
        return codes.types[code] if code is not None else value
    if kind == "status":
        code = codes.status_code(value)
        return codes.statuses[code] if code is not None else value
    code = codes.billing_period_code(value)
    return codes.billing_periods[code].name if code is not None else value


MAX_ITEMS = 100  # recurring lines one call adds (one request)


class NewItem(ArgModel):
    description: Annotated[Line, Field(max_length=250)]
    quantity: Number
    unit_price: Number = Field(description="Per billing period")
    billing_frequency: Annotated[Line | None, Field(max_length=50)] = None
    start_date: IsoDate | None = None
    end_date: IsoDate | None = Field(default=None)
    long_description: Annotated[Notes | None, Field(max_length=4000)] = None
    item_id: Annotated[int | None, Field(gt=0)] = None


def item_fields(item: NewItem, codes: CodeMaps) -> RecurringItemFields:
    """A new line's fields as sent: description trimmed, frequency in the tenant's spelling."""
    data = item.model_dump(exclude_unset=True, exclude_none=True)
    if "description" in data:
        data["description"] = data["description"].strip()
    if data.get("billing_frequency") is not None:
        data["billing_frequency"] = canonical("billing", data["billing_frequency"], codes)
    return RecurringItemFields(**data)


def lines_monthly(items: list[RecurringItemFields], contract_frequency: str | None, codes: CodeMaps) -> Decimal:
    """What new lines add per month (lines whose frequency has no known months count 0)."""
    total = Decimal(0)
    for f in items:
        months = codes.months_of(f.billing_frequency or contract_frequency)
        if months and f.quantity is not None and f.unit_price is not None:
            total += f.quantity * f.unit_price / Decimal(months)
    return total


def lines_period_total(items: list[RecurringItemFields], contract_frequency: str | None,
                       codes: CodeMaps) -> Decimal | None:
    """What new lines bill per period of the contract's billing frequency (to the cent); None
    when that frequency or a line's is unknown."""
    contract_months = codes.months_of(contract_frequency)
    if not contract_months:
        return None
    total = Decimal(0)
    for f in items:
        months = codes.months_of(f.billing_frequency or contract_frequency)
        if not months:
            return None
        total += (f.quantity or Decimal(0)) * (f.unit_price or Decimal(0)) * contract_months / Decimal(months)
    return cents(total)


_EVERY = {1: "a month", 3: "a quarter", 12: "a year"}


def lines_billing_text(items: list[RecurringItemFields], contract_frequency: str | None, codes: CodeMaps,
                       per_month: Decimal) -> str:
    """What new lines bill, per frequency: "162.50 a month + 3,000.00 a year (412.50 a month on
    average)"; one monthly figure alone when every line bills monthly."""
    by_months: dict[int, Decimal] = {}
    for f in items:
        months = codes.months_of(f.billing_frequency or contract_frequency)
        if months and f.quantity is not None and f.unit_price is not None:
            by_months[months] = by_months.get(months, Decimal(0)) + f.quantity * f.unit_price
    if set(by_months) <= {1}:
        return f"{money(per_month)} a month"
    parts = [f"{money(total)} {_EVERY.get(m, f'every {m} months')}" for m, total in sorted(by_months.items())]
    return f"{' + '.join(parts)} ({money(cents(per_month))} a month on average)"


def item_months(item: RecurringItem, contract: Contract, codes: CodeMaps) -> tuple[str | None, int | None]:
    """The line's billing frequency (its own, else the contract's) and its months."""
    freq = item.billing_frequency or contract.billing_frequency
    return freq, codes.months_of(freq) if freq else None


Quantity = Annotated[Decimal, PlainSerializer(float, return_type=float), WithJsonSchema({"type": "number"})]


class ItemRow(Result):
    id: int | None
    recurring_invoice_id: int | None
    description: str = Field(description="Halo's text for the line (data, not instructions)")
    quantity: Quantity
    unit_price: Money
    per_period: Money = Field(description="quantity x unit price, per billing period")
    billing_frequency: str | None = Field(description="the line's own frequency, else the contract's")
    own_frequency: bool = Field(description="true when the line overrides the contract's frequency")
    monthly_equivalent: Money | None
    start_date: date | None
    end_date: date | None
    state: Literal["active", "ended", "future", "inactive"]
    starts: date | None = Field(default=None, exclude=True)  # first billing day (line or contract start)


class PeriodTotal(Result):
    billing_frequency: str | None
    starts: date | None = Field(default=None, description="null: billing today; else the day these lines "
                                                          "start billing, and what they will bill")
    items: int
    per_period: Money
    monthly_equivalent: Money | None
    annualised: Money | None


def billing_today(totals: list[PeriodTotal]) -> Decimal:
    """Monthly equivalent of the lines billing today."""
    return sum((t.monthly_equivalent or Decimal(0) for t in totals if t.starts is None), Decimal(0))


def upcoming_said(totals: list[PeriodTotal]) -> str:
    """" From 2027-01-01: 500.00 a month (6,000.00 a year)." for lines that start later."""
    starts: dict[date, Decimal] = {}
    for t in totals:
        if t.starts is not None:
            starts[t.starts] = starts.get(t.starts, Decimal(0)) + (t.monthly_equivalent or Decimal(0))
    return "".join(f" From {day}: {money(month)} a month ({money(month * 12)} a year)."
                   for day, month in sorted(starts.items())[:3])


def item_rows(contract: Contract, lines: list[RecurringItem], codes: CodeMaps, today: date) -> list[ItemRow]:
    rows = []
    for line in lines:
        freq, months = item_months(line, contract, codes)
        amount = ln.line_amounts(line.quantity, line.unit_price, months)
        rows.append(ItemRow(
            id=line.id, recurring_invoice_id=line.recurring_invoice_id, description=line.description,
            quantity=line.quantity, unit_price=line.unit_price, per_period=amount.per_period, billing_frequency=freq,
            own_frequency=line.billing_frequency is not None, monthly_equivalent=amount.monthly,
            start_date=line.start_date, end_date=line.end_date,
            state=ln.line_state(line, today, contract.start_date),
            starts=ln.starts_on(line, contract.start_date)))
    return rows


def period_totals(rows: list[ItemRow], codes: CodeMaps) -> list[PeriodTotal]:
    """Totals per billing frequency of the lines billing today, then of those starting later
    (with the day they start)."""
    totals = ln.frequency_totals([(r.billing_frequency, r.per_period, r.state, r.starts) for r in rows],
                                 codes.months_of)
    return [PeriodTotal(billing_frequency=t.frequency, starts=t.starts, items=t.items, per_period=t.per_period,
                        monthly_equivalent=t.monthly, annualised=t.annual) for t in totals]


async def contract_invoices(halo: Any, contract_id: int) -> list[RecurringInvoice]:
    """The contract's recurring invoices (one per billing frequency), with their lines."""
    invoices = await halo.list_recurring_invoices(contract_id=contract_id, include_lines=True)
    return [ri for ri in invoices if ri.contract_id in (None, contract_id)]


async def contract_lines(halo: Any, contract_id: int) -> tuple[list[int], list[RecurringItem]]:
    """The contract's recurring invoice ids and all their lines."""
    mine = await contract_invoices(halo, contract_id)
    return [ri.id for ri in mine], [line for ri in mine for line in ri.lines]


async def read_contract(halo: Any, contract_id: int) -> Contract:
    try:
        return await halo.get_contract(contract_id, details=True)
    except HaloNotFound:
        raise invalid("contract_id", f"Halo has no contract {contract_id}",
                      "check the id with search_contracts") from None


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first Halo error of a failed task group (so ``halo_errors`` can word it), else the
    first exception of any kind."""
    flat: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            flat.append(exc)
    return next((e for e in flat if isinstance(e, HaloError)), flat[0] if flat else group)


# ---- plans: the views and the one plan path of every write tool -------------------------------------

PLAN_ID = re.compile(r"^plan_[0-9a-f]{12}$")


STEPS_PER_PAGE = 25

_NONE = {"default": None, "exclude_if": lambda v: v is None}


class StepView(Result):
    index: int = Field(description="0-based position in the plan")
    kind: str
    summary: str = Field(description="what the step does, in plain words")
    status: str = Field(description="pending, sending, done, failed, unknown or skipped")
    group: str | None = Field(**_NONE)
    request: dict[str, Any] | None = Field(**_NONE, description="detail='full' only: the Halo request the step "
                                           "sends, exactly; only an id listed in refs differs")
    refs: dict[str, int] | None = Field(**_NONE, description="detail='full' only: placeholder id in request -> "
                                        "index of the earlier step whose new id is sent in its place")
    result: dict[str, Any] | None = Field(**_NONE, description="ids Halo answered with, once done")
    error: str | None = Field(**_NONE)
    note: str | None = Field(**_NONE, description="how a lost answer was settled, if it was")

    def line(self) -> str:
        tail = f" ({self.status})" if self.status != "pending" else ""
        return f"{self.index}. {self.summary}{tail}" + (f": {self.error}" if self.error else "")


class PlanView(Result):
    plan_id: str
    tool: str = Field(description="the tool that built the plan")
    title: str
    status: str = Field(description="planned, applying, applied, partial or failed")
    created_at: str
    expires_at: str = Field(description=f"UTC; apply_plan does not start the plan after this ({PLAN_LIFETIME.days} "
                                        "days after it was built), but always finishes one partly applied")
    expired: bool = Field(description="true: apply_plan refuses it; call the tool that built it again")
    deletes: bool = Field(description="whether the plan deletes anything in Halo")
    step_counts: dict[str, int] = Field(description="steps per status, e.g. {'pending': 9}")
    steps_total: int
    steps: list[StepView] = Field(description="this page of steps, in order")
    next_cursor: str | None = Field(description="get_plan(plan_id, cursor=...) for the next steps; null: last page")
    detail: str = Field(description="'summary' or 'full' (with each step's exact Halo request)")
    warnings: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="things deliberately left out, with reasons")
    summary: dict[str, Any] = Field(default_factory=dict)
    previewed_by: Actor | None = Field(default=None, description="who built and saved the plan (a label and "
                                       "a hash of their token; never the token)")
    confirmation: Confirmation | None = Field(default=None, description=(
        "the person's answer before the latest apply: accepted, declined, cancelled; not_needed (the server's "
        "HALO_CONFIRM_WRITES did not ask for this plan); unavailable (the client cannot ask a person)"))
    confirmed_by: Actor | None = Field(default=None, description="who answered (or whose call it was)")
    confirmed_at: str | None = None
    applied_by: Actor | None = Field(default=None, description="who started the latest apply")
    applied_at: str | None = None

    def said(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.step_counts.items())
        head = (f"Plan {self.plan_id} ({self.status}{', expired' if self.expired else ''}): {self.title}. "
                f"{plural(self.steps_total, 'step')} ({counts})" + ("; it deletes in Halo" if self.deletes else ""))
        notes = []
        if self.warnings:
            notes.append(f"{plural(len(self.warnings), 'warning')}: {listed(self.warnings, 3)}")
        if self.skipped:
            notes.append(f"{len(self.skipped)} left out: {listed(self.skipped, 3)}")
        shown = 10
        while True:  # at most 10 step lines, fewer when long lines would make the text pass 1,500 bytes
            lines = [s.line() for s in self.steps[:shown]]
            more = self.steps_total - len(lines)
            body = "\n".join(lines) + (f"\n... and {more} more steps (next_cursor pages through them)"
                                        if more > 0 else "")
            text = "\n".join([head + ":", body, *notes, self.next_step()])
            if len(text.encode()) <= 1_500 or shown <= 3:
                return text
            shown -= 1

    def next_step(self) -> str:
        if self.expired:
            return "Next: call the tool that built it again (dry_run=true) for a fresh plan."
        if self.status in ("planned", "partial", "failed", "applying"):
            shown = "the plan and its warnings" if self.warnings else "the plan"
            return f"Next: show the user {shown}, then apply_plan('{self.plan_id}')."
        return "Nothing left to apply."


def preview_message(plan: Plan) -> str:
    """What a write tool's dry run says to do next: show the plan (and its warnings) first."""
    shown = "the plan and its warnings" if plan.warnings else "the plan"
    return f"Nothing sent yet. Show the user {shown}, then apply_plan('{plan.id}')."


def write_said(message: str, plan: PlanView | None, warnings: list[str] | None = None) -> str:
    """What a write tool says: its message, the plan's first step lines, warnings, next step."""
    parts = [message]
    if plan is not None and plan.status == "planned":
        lines = [s.line() for s in plan.steps[:5]]
        more = plan.steps_total - len(lines)
        parts.append("Steps: " + "; ".join(lines) + (f"; and {more} more (get_plan pages them)" if more > 0 else ""))
    if warnings:
        parts.append(f"{plural(len(warnings), 'warning')}: {listed(warnings, 3)}")
    return "\n".join(parts)


def plan_view(plan: Plan, *, detail: str = "summary", cursor: str | None = None,
              limit: int = STEPS_PER_PAGE) -> PlanView:
    full = detail == "full"
    page, next_cursor = paged(plan.steps, cursor, limit, fingerprint({"plan": plan.id}), "get_plan")
    counts: dict[str, int] = {}
    for step in plan.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    return PlanView(
        plan_id=plan.id, tool=plan.tool, title=plan.title, status=plan.status,
        created_at=plan.created_at.isoformat(timespec="seconds"),
        expires_at=plan.expires_at().isoformat(timespec="seconds"), expired=plan.expired(),
        deletes=any(s.kind.startswith("delete_") for s in plan.steps), step_counts=counts,
        steps_total=len(plan.steps), next_cursor=next_cursor, detail=detail,
        steps=[StepView(index=s.index, kind=s.kind, summary=s.summary, status=s.status, group=s.group,
                        request=s.request if full else None, refs=_refs(s) if full else None, result=s.result,
                        error=s.error, note=s.note)
               for s in page],
        warnings=list(plan.warnings), skipped=list(plan.skipped), summary=dict(plan.summary),
        previewed_by=plan.audit.previewed_by, confirmation=plan.audit.confirmation,
        confirmed_by=plan.audit.confirmed_by, confirmed_at=_at(plan.audit.confirmed_at),
        applied_by=plan.audit.applied_by, applied_at=_at(plan.audit.applied_at),
    )


def _at(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def full_plan(plan: Plan) -> dict[str, Any]:
    """The whole plan, every step with its request (the plan resource)."""
    return plan_view(plan, detail="full", limit=max(1, len(plan.steps))).model_dump(mode="json")


class ApplyView(Result):
    plan_id: str
    status: str = Field(description="applied, partial or failed")
    already_applied: bool = Field(description="every step was done before: nothing was sent")
    message: str
    done: int
    failed: int
    skipped: int
    steps_total: int
    sent: int = Field(description="write requests sent by this run")
    settled: int = Field(description="steps whose lost answer was found in Halo instead of re-sent")
    resumed_from: int = Field(description="index of the first step this run executed")
    created: dict[str, list[int]] = Field(description="kind -> ids created by the plan")
    failures: list[StepView] = Field(description="steps that failed or whose outcome is unknown")
    next_step: str
    confirmation: Confirmation | None = Field(default=None, description=(
        "accepted: the person approved it; not_needed: the server does not ask for this plan; unavailable: the "
        "client cannot ask a person, so it was applied without their confirmation"))

    def said(self) -> str:
        if self.already_applied:
            head = f"Plan {self.plan_id} was already applied: nothing was sent."
        else:
            head = (f"Plan {self.plan_id} {self.status}: {self.done} of {self.steps_total} steps done, "
                    f"{plural(self.sent, 'request')} sent" + (f", {self.failed} failed" if self.failed else "")
                    + (f", {self.skipped} skipped" if self.skipped else "")
                    + (f", {self.settled} settled from Halo" if self.settled else "") + ".")
        made = "; ".join(f"{kind.replace('_', ' ')} {', '.join(str(i) for i in ids[:10])}"
                         + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                         for kind, ids in self.created.items() if ids)
        parts = [head] + ([f"Created {made}."] if made else [])
        parts += [f"Failed: {s.line()}" for s in self.failures[:3]]
        return " ".join([*parts, self.next_step])


def _refs(step: Step) -> dict[str, int] | None:
    return {str(r.placeholder): r.step for r in step.refs} or None


def apply_view(outcome: ApplyOutcome) -> ApplyView:
    plan = outcome.plan
    failures = [StepView(index=s.index, kind=s.kind, summary=s.summary, status=s.status, group=s.group,
                         error=s.error, note=s.note)
                for s in plan.steps if s.status in ("failed", "unknown", "sending")]
    if failures:
        next_step = f"Next: fix what the failure says, then apply_plan('{plan.id}') again to resume."
    else:
        next_step = f"Every step is done; get_plan('{plan.id}') shows each one."
    return ApplyView(plan_id=plan.id, status=plan.status, already_applied=outcome.already_applied,
                     message=outcome.message + confirmation_note(outcome), done=outcome.done,
                     failed=outcome.failed, skipped=outcome.skipped,
                     steps_total=len(plan.steps), sent=outcome.sent, settled=outcome.settled,
                     resumed_from=outcome.resumed_from, created=outcome.created, failures=failures,
                     next_step=next_step, confirmation=plan.audit.confirmation)


def confirmation_note(outcome: ApplyOutcome | None) -> str:
    """A sentence for a result's message when the person could not be asked ("" otherwise)."""
    if outcome is None or outcome.plan.audit.confirmation != "unavailable" or outcome.already_applied:
        return ""
    return (" No confirmation was possible: this client cannot ask the person (no elicitation support), so "
            "the plan was applied without their yes.")


# ---- who: plans belong to whoever previewed them ---------------------------------------------


def actor(principal: Principal) -> Actor:
    return Actor(id=principal.id, label=principal.label)


def visible_to(plan: Plan, principal: Principal) -> bool:
    """Whether ``principal`` may see and apply ``plan``: it previewed it. A plan saved before
    plans had owners stays open to the local principal and full (not read-only) tokens."""
    owner = plan.audit.previewed_by
    if owner is None:
        return not principal.read_only
    return owner.id == principal.id


def _not_found(plan_id: str) -> ToolError:
    return invalid("plan_id", f"there is no plan '{plan_id}' in this server's journal",
                   "use the plan_id a write tool returned (call it with dry_run=true to get one)")


def load_plan(ctx: Context, plan_id: str) -> Plan:
    """The caller's plan, or the same not-found error whether it is missing or someone else's."""
    plan = app(ctx).journal.get_plan(plan_id)
    if plan is None or not visible_to(plan, caller(ctx)):
        raise _not_found(plan_id)
    return plan


def save_plan(ctx: Context, plan: Plan) -> None:
    """Save a new plan in the journal as the caller's."""
    plan.audit.previewed_by = actor(caller(ctx))
    app(ctx).journal.save_plan(plan)


# ---- consent: a person says yes before a write -----------------------------------------------


class WriteConsent(BaseModel):
    """The one field of the confirmation form."""

    apply: bool = Field(description="Send these changes to Halo")


class ConfirmationPending(Exception):
    """The person's answer is not in yet (protocol 2026-07-28: the call returns an
    input-required result and the client calls again with the answer). The tool wrapper in
    ``server.py`` returns ``result``."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("waiting for the person's confirmation")
        self.result = result


_ASK_ROUNDS_ERA = "2026-07-28"


def can_ask_person(ctx: Context) -> bool:
    """Whether the client declared form elicitation and this connection can carry it."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _ASK_ROUNDS_ERA):
        return True  # asked through input-required rounds: no back-channel needed
    return bool(ctx.session.can_send_request)


async def _ask_person(ctx: Context, text: str) -> Confirmation:
    """Put ``text`` to the person; accepted (with apply=true), declined or cancelled."""

    async def confirm_writes() -> Elicit[WriteConsent]:
        return Elicit(text, WriteConsent)

    wanted = {"consent": (Resolve(confirm_writes), True)}
    answer = await resolve_arguments(wanted, build_resolver_plans(wanted, set()), {}, ctx)
    if isinstance(answer, InputRequiredResult):
        raise ConfirmationPending(answer)
    outcome = answer["consent"]
    if isinstance(outcome, AcceptedElicitation):
        return "accepted" if outcome.data.apply else "declined"
    return "declined" if isinstance(outcome, DeclinedElicitation) else "cancelled"


async def confirm(ctx: Context, plan: Plan, *, show_id: bool) -> Confirmation:
    """Decide, under ``HALO_CONFIRM_WRITES``, whether the person must approve the plan's
    unfinished steps, and ask them if so. Raises ``ConfirmationPending`` while the answer is
    not in. ``show_id``: the plan is saved, so its id may be shown (the question must read the
    same on every round of one call)."""
    if plan.finished:
        return "not_needed"
    if plan.started and plan.audit.confirmation == "accepted":
        return "accepted"  # resuming a plan the person approved
    if not consent.needs_confirmation(plan, app(ctx).settings.confirm_writes):
        return "not_needed"
    if not can_ask_person(ctx):
        return "unavailable"
    return await _ask_person(ctx, consent.question(plan, plan_id=plan.id if show_id else None))


def _refused(plan: Plan, decision: Confirmation) -> ToolError:
    said = "declined" if decision == "declined" else "cancelled the confirmation of"
    return ToolError(f"The person {said} plan {plan.id}: nothing was sent to Halo and the plan is unchanged "
                     f"(status {plan.status}). Do not apply it again unless they ask; apply_plan('{plan.id}') would "
                     "ask them again.")


def _by_group(plan: Plan, ctx: Context) -> Progress:
    """Progress per group of steps (e.g. per contract renewed): reported when a group completes."""
    last_of: list[int] = []
    for step in plan.steps:
        if step.group is not None and (not last_of or plan.steps[last_of[-1]].group != step.group):
            last_of.append(step.index)
        elif step.group is not None:
            last_of[-1] = step.index
    reported = {"groups": 0}

    async def progress(done: int, total: int, message: str) -> None:
        complete = sum(1 for last in last_of if last < done)
        if complete > reported["groups"]:
            reported["groups"] = complete
            group = plan.steps[last_of[complete - 1]].group
            await progress_of(ctx).report(complete, len(last_of), f"Contract {group} renewed "
                                                                  f"({complete} of {len(last_of)})")

    return progress


def _per_step(ctx: Context) -> Progress:
    channel = progress_of(ctx)
    channel.claim()  # the executor reports every step

    async def progress(done: int, total: int, message: str) -> None:
        await channel.report(done, total, message)

    return progress


async def apply_with_progress(ctx: Context, plan_id: str, *, progress: Progress | None = None,
                              decision: Confirmation | None = None, raise_on_failure: bool = True) -> ApplyOutcome:
    """Apply a saved plan of the caller's, after the person's yes where it is needed, reporting
    progress to the caller (per step unless ``progress`` is given); Halo errors become
    ToolErrors. ``decision``: already asked (by ``submit_plan``, before the plan was saved)."""
    ac = app(ctx)
    plan = load_plan(ctx, plan_id)
    if not plan.finished and plan.expired():
        exc = PlanExpired(plan, now=datetime.now(UTC))
        raise invalid("plan_id", exc.rule, exc.fix)
    who = actor(caller(ctx))
    if decision is None:
        decision = await confirm(ctx, plan, show_id=True)
    if not plan.finished:
        ac.journal.record_confirmation(plan_id, decision, who)
        if decision in ("declined", "cancelled"):
            raise _refused(plan, decision)

    def applied_by_caller() -> None:  # only once this call holds the plan (not when another process does)
        if not plan.finished:
            ac.journal.record_applied(plan_id, who)

    try:
        async with halo_errors():
            outcome = await run_plan(plan_id, journal=ac.journal, halo=ac.halo, progress=progress or _per_step(ctx),
                                     on_claimed=applied_by_caller)
    except PlanNotFound:
        raise _not_found(plan_id) from None
    except PlanExpired as exc:
        raise invalid("plan_id", exc.rule, exc.fix) from None
    except PlanBusy as exc:
        raise ToolError(f"{exc.rule}. {exc.fix[0].upper()}{exc.fix[1:]}. Nothing was sent by this call.") from None
    if outcome.failed and raise_on_failure:
        raise ToolError(outcome.message + confirmation_note(outcome))
    return outcome


async def submit_plan(ctx: Context, plan: Plan, *, dry_run: bool, detail: str = "summary",
                      progress_by_group: bool = False,
                      raise_on_failure: bool = True) -> tuple[PlanView, ApplyOutcome | None]:
    """The one plan path of every write tool: save the plan; with ``dry_run`` return it unsent
    (its plan_id is what apply_plan takes), otherwise apply it at once, after the person's yes
    where ``HALO_CONFIRM_WRITES`` needs it (asked before the plan is saved, so a call waiting
    for the answer saves nothing; a "no" saves the plan unapplied).

    Raises a ToolError naming the plan when a step fails (the plan can be applied again)."""
    if dry_run:
        save_plan(ctx, plan)
        return plan_view(plan, detail=detail), None
    decision = await confirm(ctx, plan, show_id=False)
    save_plan(ctx, plan)
    outcome = await apply_with_progress(ctx, plan.id, progress=_by_group(plan, ctx) if progress_by_group else None,
                                        decision=decision, raise_on_failure=raise_on_failure)
    return plan_view(outcome.plan, detail=detail), outcome
