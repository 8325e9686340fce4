"""Seats against billing: reconcile_licences compares every licence with the recurring lines
that bill it and offers a true-up plan (line quantity := seats) through the one plan path.

Halo's text (names, descriptions) stays in its own fields; reasons and summaries use ids.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain.drafts import RecurringItemFields
from halo_contracts.domain.licence_billing import LicenceCheck, billed_lines, check_licences
from halo_contracts.domain.licence_sync import distributor_key
from halo_contracts.domain.money import ZERO
from halo_contracts.halo.contracts import ContractQuery
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_step
from halo_contracts.tools.common import (
    ArgModel,
    ClientId,
    Money,
    Result,
    app,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
    save_plan,
)

MAX_ROWS = 100


class LinkArg(ArgModel):
    licence_id: int = Field(gt=0)
    line_id: int = Field(gt=0)


class BilledLineRow(Result):
    line_id: int
    recurring_invoice_id: int | None
    contract_id: int | None
    description: str
    quantity: Money
    unit_price: Money
    monthly: Money


class LicenceBillingRow(Result):
    licence_id: int
    client_id: int
    client_name: str | None
    product_code: str
    halo_name: str
    seats: int
    licence_monthly: Money
    status: Literal["billed_right", "quantity", "price", "quantity_and_price", "unbilled", "untied", "ambiguous"]
    tie: Literal["confirmed", "code"] | None
    lines: list[BilledLineRow]
    billed_monthly: Money
    monthly_difference: Money = Field(description="licence value minus billed value per month (positive: "
                                                  "under-billed)")
    true_up_monthly: Money = Field(description="what the true-up step changes the bill by per month")
    true_up_step: int | None = Field(description="index of the plan step that sets the line to the seats")
    suggested_lines: list[int] = Field(description="lines with the same product name, not tied: confirm with links")
    reason: str


class ReconcileLicencesResult(Result):
    licences_total: int
    counts: dict[str, int] = Field(description="licences per status")
    mismatches: list[LicenceBillingRow] = Field(description=f"every licence not billed right (first {MAX_ROWS})")
    mismatches_total: int
    monthly_difference: Money = Field(description="sum over mismatches (positive: under-billed per month)")
    true_up_monthly: Money = Field(description="what applying the plan adds to the bill per month")
    plan_id: str | None = Field(description="true-up plan: apply_plan(plan_id); null when nothing to true up")
    links_remembered: list[str]
    next_step: str

    def said(self) -> str:
        counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in self.counts.items())
        text = (f"{self.licences_total} licence(s) checked against their billing lines ({counts}); "
                f"{self.mismatches_total} not billed right, {money(self.monthly_difference)} a month.")
        top = sorted(self.mismatches, key=lambda r: -abs(r.monthly_difference))[:5]
        if top:
            text += " Largest: " + listed([f"licence {r.licence_id} (client {r.client_id}) {r.status.replace('_', ' ')}"
                                           f" {money(r.monthly_difference)}/month" for r in top]) + "."
        if self.plan_id:
            text += f" True-up plan {self.plan_id} adds {money(self.true_up_monthly)} a month."
        return text + " " + self.next_step


def _row(c: LicenceCheck, client_name: str | None, step: int | None) -> LicenceBillingRow:
    return LicenceBillingRow(**c.model_dump(exclude={"lines"}), client_name=client_name, true_up_step=step,
                             lines=[BilledLineRow(**ln.model_dump()) for ln in c.lines])


def _check_links(links: list[LinkArg], licences: dict[int, int | None], line_client: dict[int, int]) -> None:
    for link in links:
        if link.licence_id not in licences:
            raise invalid("links", f"licence {link.licence_id} is not an active licence in Halo",
                          "take licence ids from list_licences")
        if line_client.get(link.line_id) != licences[link.licence_id]:
            raise invalid("links", f"line {link.line_id} is not a live recurring line of licence "
                                   f"{link.licence_id}'s client", "take line ids from this tool's lines or "
                                                                  "list_recurring_items of that client")


@halo_tool(group="license-sync", kind="write", title="Reconcile licence seats with billing")
async def reconcile_licences(
    ctx: Context,
    client_id: ClientId | None = None,
    distributor: Annotated[str | None, Field(strict=True, min_length=1, max_length=100)] = None,
    links: Annotated[list[LinkArg] | None, Field(max_length=500, description="Confirmed licence -> line ties; "
                                                                             "remembered")] = None,
    remember_links: Annotated[bool, Field(strict=True)] = True,
    true_up: Annotated[bool, Field(strict=True, description="Plan each tied line's quantity = seats")] = True,
) -> ReconcileLicencesResult:
    """Licence seats and prices against the lines billing them; mismatches and a true-up plan."""
    ac = app(ctx)
    async with halo_errors():
        licences = await ac.halo.list_licences(client_id=client_id)
        invoices = await ac.halo.list_recurring_invoices(client_id=client_id, include_lines=True)
        contracts = await ac.halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True))
    if client_id is not None:
        licences = [x for x in licences if x.client_id == client_id]
        invoices = [i for i in invoices if i.client_id == client_id]
    if distributor is not None:
        licences = [x for x in licences if distributor_key(x.distributor) == distributor_key(distributor)]
    frequency = {c.id: c.billing_frequency for c in contracts}
    lines = billed_lines(((i.client_id or 0, i.lines, frequency.get(i.contract_id)) for i in invoices
                          if i.client_id is not None), ac.codes.months_of)
    active = {x.id: x.client_id for x in licences if x.active and x.id is not None}
    _check_links(links or [], active, {b.line.id: b.client_id for b in lines if b.line.id is not None})
    stored = ac.journal.licence_lines()
    given = {link.licence_id: link.line_id for link in links or []}
    checks = check_licences(licences, lines, links={**stored, **given})
    names = {x.id: x.client_name for x in licences}
    plan = Plan(tool="reconcile_licences", title="Licence true-up: set recurring line quantities to seat counts")
    rows: list[LicenceBillingRow] = []
    for c in (c for c in checks if c.status != "billed_right"):
        step = None
        if true_up and c.status in ("quantity", "quantity_and_price") and len(c.lines) == 1:
            ln = c.lines[0]
            fields = RecurringItemFields(quantity=c.seats).model_dump(mode="json", exclude_unset=True)
            step = add_step(plan, ac.halo, "update_recurring_line",
                            f"Set line {ln.line_id} of contract {ln.contract_id} to {c.seats} (licence "
                            f"{c.licence_id} has {c.seats} seats; the line bills {ln.quantity})",
                            {"line_id": ln.line_id, "recurring_invoice_id": ln.recurring_invoice_id, "fields": fields},
                            natural_key={"contract_id": ln.contract_id, "line_id": ln.line_id},
                            group=f"client {c.client_id}").index
        rows.append(_row(c, names.get(c.licence_id), step))
    plan.summary = {"mismatches": len(rows), "true_up_monthly": str(sum((r.true_up_monthly for r in rows
                                                                         if r.true_up_step is not None), ZERO))}
    if plan.steps:
        save_plan(ctx, plan)
    remembered: list[str] = []
    if remember_links:
        for lid, line_id in given.items():
            ac.journal.remember_licence_line(lid, line_id)
            remembered.append(f"licence {lid} -> line {line_id}")
    counts: dict[str, int] = {}
    for c in checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    next_step = (f"Show the user the mismatches; apply_plan('{plan.id}') sets {len(plan.steps)} line(s) to the "
                 "seat counts." if plan.steps else "No line to true up.")
    if any(r.suggested_lines for r in rows):
        next_step += (" Untied licences are measured against the line of the same product name that probably "
                      "bills them: confirm each with links.")
    return ReconcileLicencesResult(
        licences_total=len(checks), counts=counts, mismatches=rows[:MAX_ROWS], mismatches_total=len(rows),
        monthly_difference=sum((r.monthly_difference for r in rows), ZERO),
        true_up_monthly=sum((r.true_up_monthly for r in rows if r.true_up_step is not None), ZERO),
        plan_id=plan.id if plan.steps else None, links_remembered=remembered, next_step=next_step)
