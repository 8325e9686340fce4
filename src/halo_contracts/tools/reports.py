"""Portfolio reports: the contract book summarised by status, type, client or billing frequency.

Reads only: one paged sweep of contracts and one of recurring invoices with their lines (for
annualised recurring revenue), side by side; never a request per client. The rules live in
:mod:`halo_contracts.domain.reports`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain import reports as rp
from halo_contracts.domain.reconciliation import index_book
from halo_contracts.halo.client import ContractQuery
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import (
    Cursor,
    Line,
    Money,
    Result,
    ResultFormat,
    app,
    cursor_offset,
    fingerprint,
    first_error,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
    paged,
    plural,
    today_of,
)

GroupBy = Literal["status", "type", "client", "billing_frequency"]
Scope = Literal["current", "all"]

ARR_RULE = ("annualised recurring revenue of a contract in force today (a billable status, i.e. not Pending, "
            "Cancelled, On Hold or Expired; today within its dates; not taken over by a renewal in force): "
            "each recurring line that is not inactive and bills today, quantity x unit price per billing period "
            "x periods per year; contracts without lines: Recurring contracts only, value x periods per year of "
            "their billing frequency (monthly when unset). Contracts not in force: 0")


class GroupRow(Result):
    group: str = Field(description="the status, type, billing frequency, or the client's name (Halo's own text)")
    client_id: int | None = Field(default=None, description="group_by='client' only")
    contracts: int
    total_value: Money = Field(description="sum of the contracts' value (Halo's charge per billing period)")
    annual_recurring_revenue: Money
    arr_from_lines: int = Field(description="contracts whose revenue comes from their recurring lines")
    arr_from_value: int = Field(description="contracts without lines, counted at value x periods per year")


class ReportReads(Result):
    contracts: int
    recurring_invoices: int
    pages: int = Field(description="Halo list requests made: one paged sweep per kind of record")


def _label(g: GroupRow, group_by: str) -> str:
    """A group in our words: a client by id (its name is Halo's text), codes by their name."""
    return f"client {g.client_id}" if group_by == "client" else g.group


class ContractSummary(Result):
    group_by: GroupBy
    status: str | None = Field(description="the status filter, when one was given")
    scope: Scope = Field(description="'current': only contracts in force today are counted; 'all': every contract")
    today: date = Field(description="the day 'in force' and recurring revenue are judged on")
    contracts: int = Field(description="contracts counted")
    contracts_not_current: int = Field(description="contracts (of the status filter) not in force today: left out "
                                                   "with scope='current', counted at 0 recurring revenue with 'all'")
    total_value: Money
    annual_recurring_revenue: Money
    arr_rule: str
    warnings: list[str] = Field(default_factory=list, description="e.g. a billing period code the tenant's code map "
                                                                  "does not know (counted as monthly)")
    groups: list[GroupRow] = Field(description="highest annualised recurring revenue first, then value; "
                                               "empty with format='csv' (every group is a CSV row)")
    total_groups: int
    truncated: bool = Field(description="more groups than this page: see next_cursor")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")
    records_read: ReportReads
    csv: str | None = Field(default=None, description="format='csv': one row per group, then a TOTAL row")

    def said(self) -> str:
        scope = "in force today" if self.scope == "current" else "all"
        text = (f"{plural(self.contracts, 'contract')} ({scope}{', ' + self.status if self.status else ''}) by "
                f"{self.group_by.replace('_', ' ')}: value {money(self.total_value)}, annual recurring revenue "
                f"{money(self.annual_recurring_revenue)}.")
        if self.groups:
            text += " Top: " + listed([f"{_label(g, self.group_by)} {g.contracts} contracts, "
                                       f"{money(g.annual_recurring_revenue)}/yr" for g in self.groups], 6) + "."
        if self.truncated:
            text += f" {self.total_groups - len(self.groups)} more groups: cursor=next_cursor."
        if self.contracts_not_current and self.scope == "current":
            text += f" {self.contracts_not_current} not in force were left out (scope='all' counts them)."
        return text


@halo_tool(group="reports", kind="read", title="Summarise the contract book")
async def summarize_contracts(
    group_by: GroupBy,
    ctx: Context,
    status: Annotated[Line | None, Field()] = None,
    scope: Annotated[Scope, Field(description="'current': in force today; 'all': every contract")] = "current",
    format: ResultFormat = "json",
    limit: Annotated[int, Field(strict=True, ge=1, le=500)] = 25,
    cursor: Cursor = None,
) -> ContractSummary:
    """Count, value and recurring revenue by status, type, client or billing frequency."""
    ac = app(ctx)
    page_key = fingerprint({"tool": "summarize_contracts", "by": group_by, "status": status, "scope": scope,
                            "limit": limit})
    cursor_offset(cursor, page_key, "summarize_contracts")  # a bad cursor fails before any read
    if status is not None:
        names = ac.codes.status_names
        match = next((n for n in names if n.casefold() == status.strip().casefold()), None)
        if match is None:
            raise invalid("status", f"'{status}' is not one of this tenant's contract statuses",
                          f"use one of: {', '.join(names)}, or leave it out for every status")
        status = match
    halo = ac.halo
    pages = {"contracts": 0, "recurring invoices": 0}
    progress_of(ctx).claim()  # every page is reported below
    data: dict[str, list] = {}

    def on_page(kind: str) -> Callable[[int, int | None], Awaitable[None]]:
        async def report(done: int, total: int | None) -> None:
            pages[kind] = done
            await progress_of(ctx).report(sum(pages.values()), None,
                                          f"read {kind}: page {done} of {total if total is not None else '?'}")

        return report

    async def sweep(kind: str, read: Callable[..., Awaitable[list]], **kwargs: object) -> None:
        data[kind] = await read(on_page=on_page(kind), **kwargs)

    async with halo_errors():
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: sweep("contracts", halo.list_contracts,
                                            query=ContractQuery(include_inactive=True)))
                tg.start_soon(lambda: sweep("recurring invoices", halo.list_recurring_invoices, include_lines=True))
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    lines = index_book(data["recurring invoices"], [], []).recurring_lines
    today = today_of(ctx)
    summary = rp.summarize(data["contracts"], lines, group_by, ac.codes.months_of, today, scope=scope, status=status)
    rows = [GroupRow(group=g.label, client_id=g.client_id, contracts=g.contracts, total_value=g.total_value,
                     annual_recurring_revenue=g.annual_recurring, arr_from_lines=g.from_lines,
                     arr_from_value=g.from_value) for g in summary.groups]
    csv_text = rp.summary_csv(summary) if format == "csv" else None
    page, next_cursor = paged(rows, cursor, limit, page_key, "summarize_contracts")
    return ContractSummary(
        group_by=group_by, status=status, scope=scope, today=today, contracts=summary.contracts,
        contracts_not_current=summary.not_current, total_value=summary.total_value,
        annual_recurring_revenue=summary.annual_recurring, arr_rule=ARR_RULE, warnings=summary.warnings,
        groups=[] if csv_text is not None else page, total_groups=len(rows),
        truncated=csv_text is None and next_cursor is not None, next_cursor=None if csv_text else next_cursor,
        records_read=ReportReads(contracts=len(data["contracts"]), recurring_invoices=len(data["recurring invoices"]),
                                 pages=sum(pages.values())),
        csv=csv_text)

