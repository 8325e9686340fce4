"""What every tool module shares: the tool registry, strict argument types, the app
context, and the one place Halo errors become ``ToolError``s a model can act on.

Tools are declared with ``@halo_tool(...)`` at import time; ``server.build_server`` decides
which of them to register (read-only mode, tool selection) and registers them on the
``MCPServer``. A tool is thin: strict arguments -> domain validation -> a Halo read or a
Plan -> a compact pydantic result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import ToolAnnotations
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from halo_contracts.access import Principal, caller_principal
from halo_contracts.domain.money import cents, unsigned_zero
from halo_contracts.domain.validation import text_problem
from halo_contracts.halo.errors import (
    HaloError,
    HaloIncompleteRead,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloUnknownOutcome,
    HaloValidationError,
)

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
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=kind == "read",
            destructive_hint=kind == "destructive",
            idempotent_hint=True if kind == "read" else bool(idempotent),
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
        raise ValueError("expected a date as text in the form YYYY-MM-DD, e.g. 2026-01-31")
    else:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a real calendar date (YYYY-MM-DD)") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise ValueError(f"{parsed.isoformat()} is outside the dates contracts use "
                         f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})")
    return parsed


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("expected a number, e.g. 2500 or 49.95 (not text)")
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
    WithJsonSchema({"type": "string", "format": "date", "description": "YYYY-MM-DD"}),
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


def _is_branch(part: Any) -> bool:
    """A union branch in a pydantic error location (``function-after[check(), str]``, ``int``)."""
    return isinstance(part, str) and ("[" in part or part in ("int", "str", "none"))


def _arg_path(loc: tuple[Any, ...]) -> str:
    """``("items", 0, "description")`` -> ``items[0].description``; a dict key (the caller's
    text) is not repeated: the path stops at the dict."""
    parts = list(loc)
    if "[key]" in parts:
        parts = parts[:max(parts.index("[key]") - 1, 1)]
    parts = [p for p in parts if not _is_branch(p)]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def text_rule_refusal(tool: str, exc: Exception) -> ToolError | None:
    """The arguments were refused only by the text rule: one message in the project's format
    (field path, rule, fix), without pydantic's framing or the refused text. None otherwise."""
    cause = exc.__cause__
    if not isinstance(exc, ToolError) or isinstance(exc, UnexpectedToolError) \
            or not isinstance(cause, ValidationError):
        return None
    errors = cause.errors()
    # a union (text or a number) also reports its other branches at the same place: not the point
    union_places = {e["loc"][:-1] for e in errors if e["type"] == "text_rule" and e["loc"] and _is_branch(e["loc"][-1])}
    errors = [e for e in errors if e["type"] == "text_rule" or e["loc"][:-1] not in union_places]
    if not errors or any(e["type"] != "text_rule" for e in errors):
        return None
    lines = [f"Invalid '{_arg_path(e['loc'])}': {e['ctx']['rule']}. Fix: {e['ctx']['fix']}." for e in errors]
    return ToolError(f"Error executing tool {tool}: {' '.join(lines)} Nothing was sent to Halo.")


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
ContractId = Annotated[int, Field(strict=True, gt=0, description="Halo contract id")]
ClientId = Annotated[int, Field(strict=True, gt=0, description="Halo client id")]
DryRun = Annotated[bool, Field(strict=True, description="Preview only: return the plan and its plan_id, "
                                                       "send nothing to Halo. Apply later with apply_plan.")]
ResultFormat = Literal["json", "csv"]


class ArgModel(BaseModel):
    """Base for object arguments: strict types, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Result(BaseModel):
    """Base for tool results."""

    model_config = ConfigDict(extra="forbid")


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
