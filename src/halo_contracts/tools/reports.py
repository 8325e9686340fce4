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
    Line,
    Money,
    Result,
    ResultFormat,
    app,
    halo_errors,
    halo_tool,
    invalid,
    today_of,
)
from halo_contracts.tools.reconciliation import first_error

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
    truncated: bool
    records_read: ReportReads
    csv: str | None = Field(default=None, description="format='csv': one row per group, then a TOTAL row")


@halo_tool(group="reports", kind="read", title="Summarise the contract book")
async def summarize_contracts(
    group_by: Annotated[GroupBy, Field(description="'status', 'type', 'client' (contract value by client, "
                                                   "highest first) or 'billing_frequency'")],
    ctx: Context,
    status: Annotated[Line | None, Field(description="Only contracts in this status, e.g. "
                                                                 "'Active'")] = None,
    scope: Annotated[Scope, Field(description="'current' (default): only contracts in force today, i.e. what is "
                                              "billing now; 'all': every contract (those not in force count with "
                                              "their value and 0 recurring revenue)")] = "current",
    format: Annotated[ResultFormat, Field(description="'json' (default) or 'csv': the same result with a "
                                                      "'csv' text for a spreadsheet")] = "json",
    limit: Annotated[int, Field(strict=True, ge=1, le=5000, description="Most groups to list (totals always "
                                                                        "cover every group); default 100")] = 100,
) -> ContractSummary:
    """Where is the money? Counts, total value and annualised recurring revenue (from the
    recurring lines; contracts without lines: Recurring contracts at value x periods per year)
    per status, type, client or billing frequency, highest revenue first, with totals. By client
    it is the contract value by client report. By default only contracts in force today are
    counted (status not Pending, Cancelled, On Hold or Expired; today within their dates; not
    replaced by a renewal in force), so an expired contract and its renewal never
    count twice; scope='all' counts every contract, with 0 recurring revenue for those not in
    force. Optionally only one status (e.g. Active). Reads the whole book in bulk (never a
    request per client). Rules: halopsa://guide/contracts."""
    ac = app(ctx)
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
    return ContractSummary(
        group_by=group_by, status=status, scope=scope, today=today, contracts=summary.contracts,
        contracts_not_current=summary.not_current, total_value=summary.total_value,
        annual_recurring_revenue=summary.annual_recurring, arr_rule=ARR_RULE, warnings=summary.warnings,
        groups=[] if csv_text is not None else rows[:limit], total_groups=len(rows),
        truncated=csv_text is None and len(rows) > limit,
        records_read=ReportReads(contracts=len(data["contracts"]), recurring_invoices=len(data["recurring invoices"]),
                                 pages=sum(pages.values())),
        csv=csv_text)

