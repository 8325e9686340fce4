"""Lookups: clients by name, and the tenant's reference data (SLAs, types, periods, statuses)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain.matching_basic import name_score
from halo_contracts.halo.errors import HaloError
from halo_contracts.tools.common import Line, Result, app, halo_errors, halo_tool, invalid, listed, plural, quoted


class ClientMatch(Result):
    id: int
    name: str
    score: float = Field(description="0-100, how well the name matches")
    inactive: bool


class FindClientsResult(Result):
    query: str
    total_candidates: int = Field(description="clients Halo returned for the search")
    matches: list[ClientMatch]

    def said(self) -> str:
        if not self.matches:
            return (f"No client matches {quoted(self.query)} ({plural(self.total_candidates, 'candidate')} read). "
                    "Try a shorter part of the name, or include_inactive=true.")
        best = self.matches[0]
        sure = "a confident match" if best.score >= 90 else "not confident: confirm with the user"
        rows = [f"client {m.id} score {m.score:.0f}{' (inactive)' if m.inactive else ''}"
                for m in self.matches]  # the names are Halo's text: in matches[].name only
        return f"{plural(len(self.matches), 'client')} match {quoted(self.query)}: {listed(rows)}. Best is {sure}."


@halo_tool(group="lookups", kind="read", title="Find clients by name")
async def find_clients(
    name: Annotated[Line, Field(min_length=1, max_length=200,
                               description="All or part of the name, e.g. 'acme'")],
    ctx: Context,
    limit: Annotated[int, Field(strict=True, ge=1, le=50)] = 10,
    include_inactive: Annotated[bool, Field(strict=True)] = False,
) -> FindClientsResult:
    """Find clients by name, best first, scored 0-100 (below 90: confirm with the user)."""
    query = name.strip()
    if not query:
        raise invalid("name", "must contain letters or digits, not only spaces", "give part of the client's name")
    halo = app(ctx).halo
    async with halo_errors():
        # Halo's own search narrows the read; if it finds nothing (typos, punctuation),
        # fall back to scoring every client so near misses still surface.
        clients = await halo.list_clients(search=query, include_inactive=include_inactive)
        if not clients:
            clients = await halo.list_clients(include_inactive=include_inactive)
    scored = sorted(
        (ClientMatch(id=c.id, name=c.name, score=name_score(query, c.name), inactive=c.inactive) for c in clients),
        key=lambda m: (-m.score, m.name.casefold(), m.id),
    )
    matches = [m for m in scored if m.score >= 50][:limit]
    return FindClientsResult(query=query, total_candidates=len(clients), matches=matches)


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
