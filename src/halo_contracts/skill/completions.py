"""The server's one completion handler: prompt arguments and resource-template arguments.

MCP allows a single ``completion/complete`` handler per server, so every completion lives
here. ``register_completions`` is idempotent: both ``skill.register`` and
``prompts.register`` call it, and the handler is installed once per server.

The SDK hands a completion handler only the reference and the argument, not the request
context; live completions (client names) need the Halo client, so a small middleware
keeps the request context of the ``completion/complete`` call in a context variable
for the duration of that call.
"""

from __future__ import annotations

import logging
import weakref
from contextvars import ContextVar
from datetime import date
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from halo_contracts.config import Settings
from halo_contracts.halo.errors import HaloError
from halo_contracts.skill.guide import REFERENCE_KINDS, workflow_names

log = logging.getLogger("halo_contracts.completions")

MAX_CLIENTS = 20
CLIENT_LOOKUP_SECONDS = 8.0
MIN_CLIENT_CHARS = 2

WITHIN_DAYS_CHOICES = ("30", "60", "90", "120", "180", "365")
THRESHOLD_HOURS_CHOICES = ("5", "10", "15", "20", "40")

_request: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("halo_completion_request", default=None)
_registered: weakref.WeakSet[MCPServer] = weakref.WeakSet()


def _prefixed(values: list[str] | tuple[str, ...], typed: str) -> list[str]:
    wanted = typed.strip().casefold()
    return [v for v in values if v.casefold().startswith(wanted)]


def recent_periods(today: date | None = None, count: int = 12) -> list[str]:
    """``YYYY-MM`` of the last ``count`` months, the month just ended first, then this month."""
    today = today or date.today()
    year, month = today.year, today.month
    months: list[str] = []
    for _ in range(count + 1):
        months.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    current, previous = months[0], months[1:]
    return [previous[0], current, *previous[1:count]]


class _TooBroad(Exception):
    """The client search matches more than one page: ask for more letters instead."""


async def _one_page_only(done: int, total_pages: int | None) -> None:
    if total_pages is not None and total_pages > done:
        raise _TooBroad


async def _client_names(typed: str) -> tuple[list[str], bool]:
    """Active client names matching ``typed`` (Halo's search), prefix matches first.

    Spends at most one Halo request: a search that needs more than one page answers no
    names and ``has_more`` (type more letters)."""
    request = _request.get()
    app = getattr(request, "lifespan_context", None) if request is not None else None
    halo = getattr(app, "halo", None)
    if halo is None or len(typed.strip()) < MIN_CLIENT_CHARS:
        return [], False
    clients: list[Any] = []
    try:
        with anyio.move_on_after(CLIENT_LOOKUP_SECONDS):
            clients = await halo.list_clients(search=typed.strip(), on_page=_one_page_only)
    except _TooBroad:
        return [], True
    except HaloError as exc:  # a completion is a convenience: never fail the call
        log.info("client completion failed: %s", exc)
        return [], False
    names: list[str] = []
    for client in clients:
        if getattr(client, "inactive", False) or client.name in names:
            continue
        names.append(client.name)
    wanted = typed.strip().casefold()
    names.sort(key=lambda n: (not n.casefold().startswith(wanted), n.casefold()))
    return names[:MAX_CLIENTS], len(names) > MAX_CLIENTS


def _period_values(typed: str) -> list[str]:
    return _prefixed(recent_periods(), typed)


def register_completions(server: MCPServer, settings: Settings) -> None:
    """Install the completion handler (and its context middleware) once per server."""
    if server in _registered:
        return
    _registered.add(server)
    codes = settings.code_maps

    async def keep_completion_context(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "completion/complete":
            return await call_next(ctx)
        token = _request.set(ctx)
        try:
            return await call_next(ctx)
        finally:
            _request.reset(token)

    server.middleware.append(keep_completion_context)

    async def complete(ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument,
                       context: CompletionContext | None) -> Completion | None:
        typed = argument.value or ""
        values: list[str] | None = None
        has_more = False
        if isinstance(ref, PromptReference):
            key = (ref.name, argument.name)
            if key == ("contract_setup", "client"):
                values, has_more = await _client_names(typed)
            elif key == ("contract_setup", "contract_type"):
                values = _prefixed(codes.type_names, typed)
            elif key == ("renewal_review", "within_days"):
                values = _prefixed(WITHIN_DAYS_CHOICES, typed)
            elif key == ("prepaid_hours_check", "threshold_hours"):
                values = _prefixed(THRESHOLD_HOURS_CHOICES, typed)
            elif key == ("month_end_reconciliation", "period"):
                values = _period_values(typed)
        elif isinstance(ref, ResourceTemplateReference):
            if argument.name == "workflow" and ref.uri.startswith("halopsa://guide/workflows/"):
                values = _prefixed(workflow_names(), typed)
            elif argument.name == "kind" and ref.uri.startswith("halopsa://reference/"):
                values = _prefixed(REFERENCE_KINDS, typed)
        if values is None:
            return None
        return Completion(values=values[:100], total=None if has_more else len(values), has_more=has_more)

    server.completion()(complete)
