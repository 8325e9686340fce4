"""Lookups: clients by name, and the tenant's reference data (SLAs, types, periods, statuses)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain.matching_basic import (
    CONFIDENT_CHARS,
    MIN_QUERY_CHARS,
    WEAK_FLOOR,
    is_confident,
    meaningful_chars,
    name_score,
)
from halo_contracts.halo.errors import HaloError
from halo_contracts.tools.common import (
    Cursor,
    Line,
    Result,
    app,
    cursor_offset,
    fingerprint,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    paged,
    plural,
    quoted,
)


class ClientMatch(Result):
    id: int
    name: str
    score: float | None = Field(description="0-100, how well the name matches (null when listing)")
    weak: bool = Field(description="not a confident match: confirm with the user")
    inactive: bool


class FindClientsResult(Result):
    query: str | None
    total_candidates: int = Field(description="clients Halo returned for the search (listing: all of them)")
    matches: list[ClientMatch]
    next_cursor: str | None = None

    def said(self) -> str:
        if self.query is None:
            rows = [f"client {m.id}{' (inactive)' if m.inactive else ''}" for m in self.matches]
            return (f"{plural(self.total_candidates, 'client')}, by name; this page lists {len(self.matches)}: "
                    f"{listed(rows, 10)}." + (" cursor=next_cursor for more." if self.next_cursor else ""))
        if not self.matches:
            return (f"No client matches {quoted(self.query)} ({plural(self.total_candidates, 'candidate')} read). "
                    "Try a shorter part of the name, or include_inactive=true.")
        rows = [f"client {m.id} score {m.score:.0f}{' weak' if m.weak else ''}{' (inactive)' if m.inactive else ''}"
                for m in self.matches]  # the names are Halo's text: in matches[].name only
        sure = [m for m in self.matches if not m.weak]
        if not sure and meaningful_chars(self.query) < CONFIDENT_CHARS:
            return (f"{quoted(self.query)} is too short to be sure of a client. Weak candidates: {listed(rows)}. "
                    "Ask the user which one, or search with more of the name.")
        if not sure:
            return (f"No client matches {quoted(self.query)} with confidence. Weak candidates, probably not it: "
                    f"{listed(rows)}. Ask the user which client is meant, or search with more of the name.")
        if len(sure) > 1:
            return (f"{plural(len(sure), 'client')} match {quoted(self.query)} with confidence: {listed(rows)}. "
                    "Ask the user which one.")
        return f"Client {sure[0].id} matches {quoted(self.query)} with confidence. Candidates: {listed(rows)}."


def _check_query(query: str) -> str:
    query = query.strip()
    if meaningful_chars(query) < MIN_QUERY_CHARS:
        raise invalid("name", f"needs at least {MIN_QUERY_CHARS} letters or digits to match on (got {quoted(query)})",
                      "give more of the client's name, or leave name out to list the clients page by page")
    return query


@halo_tool(group="lookups", kind="read", title="Find clients by name")
async def find_clients(
    ctx: Context,
    name: Annotated[Line | None, Field(max_length=200, description="All or part of the name; "
                                                                   "omit to list clients")] = None,
    limit: Annotated[int, Field(strict=True, ge=1, le=50)] = 10,
    include_inactive: Annotated[bool, Field(strict=True)] = False,
    cursor: Cursor = None,
) -> FindClientsResult:
    """Clients by name, best first, scored 0-100; weak ones are to confirm. Without a name: all, paged."""
    query = None if name is None else _check_query(name)
    page_key = fingerprint({"tool": "find_clients", "name": query, "limit": limit, "inactive": include_inactive})
    cursor_offset(cursor, page_key, "find_clients")  # a bad cursor fails before any read
    halo = app(ctx).halo
    async with halo_errors():
        # Halo's own search narrows the read; if it finds nothing (typos, punctuation),
        # fall back to scoring every client so near misses still surface.
        clients = await halo.list_clients(search=query, include_inactive=include_inactive) if query else []
        if not clients:
            clients = await halo.list_clients(include_inactive=include_inactive)
    if query is None:
        rows = sorted(clients, key=lambda c: (c.name.casefold(), c.id))
        listed_rows = [ClientMatch(id=c.id, name=c.name, score=None, weak=False, inactive=c.inactive) for c in rows]
        page, next_cursor = paged(listed_rows, cursor, limit, page_key, "find_clients")
        return FindClientsResult(query=None, total_candidates=len(clients), matches=page, next_cursor=next_cursor)
    scored = sorted(
        (ClientMatch(id=c.id, name=c.name, score=(s := name_score(query, c.name)), weak=not is_confident(query, s),
                     inactive=c.inactive) for c in clients),
        key=lambda m: (-(m.score or 0), m.name.casefold(), m.id),
    )
    matches = [m for m in scored if (m.score or 0) >= WEAK_FLOOR]
    page, next_cursor = paged(matches, cursor, limit, page_key, "find_clients")
    return FindClientsResult(query=query, total_candidates=len(clients), matches=page, next_cursor=next_cursor)


ReferenceKind = Literal["slas", "contract_types", "billing_periods", "statuses"]


class ReferenceValue(Result):
    id: int
    name: str
    months: int | None = Field(default=None, description="billing periods only: months per period")
    in_tenant: bool | None = Field(
        default=None, description="whether the tenant's own Halo list has this code (None when it could not be read)")
    inactive: bool = False


class ReferenceDataResult(Result):
    kind: ReferenceKind
    values: list[ReferenceValue]
    notes: list[str]

    def said(self) -> str:
        names = [v.name + (f" ({v.months} months)" if v.months else "") + (" (inactive)" if v.inactive else "")
                 for v in self.values]
        text = f"{plural(len(self.values), 'value')} for {self.kind}: {listed(names, 30)}."
        return text + (f" {plural(len(self.notes), 'note')} in the result." if self.notes else "")


@halo_tool(group="lookups", kind="read", title="List reference data")
async def list_reference_data(
    kind: ReferenceKind,
    ctx: Context,
) -> ReferenceDataResult:
    """The tenant's SLAs, contract types, billing periods or statuses."""
    ac = app(ctx)
    codes = ac.codes
    notes: list[str] = []
    async with halo_errors():
        if kind == "slas":
            slas = await ac.halo.list_slas()
            values = [ReferenceValue(id=s.id, name=s.name) for s in sorted(slas, key=lambda s: s.id)]
            return ReferenceDataResult(kind=kind, values=values, notes=notes)
        configured: dict[int, tuple[str, int | None]]
        if kind == "contract_types":
            configured = {c: (n, None) for c, n in codes.types.items()}
            lookup_id = ac.settings.lookup_type_id
        elif kind == "statuses":
            configured = {c: (n, None) for c, n in codes.statuses.items()}
            lookup_id = ac.settings.lookup_status_id
        else:
            configured = {c: (p.name, p.months) for c, p in codes.billing_periods.items()}
            lookup_id = ac.settings.lookup_billing_period_id
        tenant: dict[int, str] | None
        try:
            tenant = {v.id: v.name for v in await ac.halo.get_lookup(lookup_id)}
        except HaloError as exc:  # the tenant list is advisory; the configured map still answers
            tenant = None
            notes.append(f"Could not read the tenant's own list (lookup {lookup_id}): {exc}. "
                         "Showing the configured codes.")
    values = [
        ReferenceValue(id=code, name=name, months=months, in_tenant=None if tenant is None else code in tenant)
        for code, (name, months) in sorted(configured.items())
    ]
    if tenant:
        for code, name in sorted(tenant.items()):
            if code not in configured:
                notes.append(f"The tenant has code {code} '{name}', which the configuration does not map; add it "
                             "to the HALO_*_CODES setting to use it.")
            elif name.casefold() != configured[code][0].casefold():
                notes.append(f"Code {code} is '{name}' in the tenant but '{configured[code][0]}' in the "
                             "configuration; the tools use the configured name.")
    return ReferenceDataResult(kind=kind, values=values, notes=notes)
