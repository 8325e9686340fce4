"""Seats against billing (pure): each software licence against the recurring invoice lines
that bill its product for the client.

A licence is tied to a line by a link the MSP confirmed (stored), else by product code (the
line's item code equals the licence's product code, case-insensitive). A line whose
description has the licence's product name (normalised) is only a *suggestion*: nothing is
compared or trued up until the link is confirmed.

Money is per month: a line's unit price is per its billing period (the contract's when the
line has none), a licence's per its billing cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from halo_contracts.domain.licence_sync import cycle_months
from halo_contracts.domain.models import Licence, RecurringItem
from halo_contracts.domain.money import ZERO, cents
from halo_contracts.domain.product_mapping import code_key, product_name_key

Status = Literal["billed_right", "quantity", "price", "quantity_and_price", "unbilled", "untied", "ambiguous"]
Tie = Literal["confirmed", "code"]


class BilledLine(BaseModel):
    """A recurring line with the facts the comparison needs."""

    model_config = ConfigDict(extra="forbid")

    line: RecurringItem
    client_id: int
    months: int = Field(ge=1)  # months per billing period of the line


class LineRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: int
    recurring_invoice_id: int | None
    contract_id: int | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    monthly: Decimal


class LicenceCheck(BaseModel):
    """One licence against its billing."""

    model_config = ConfigDict(extra="forbid")

    licence_id: int
    client_id: int
    product_code: str
    halo_name: str
    seats: int
    licence_monthly: Decimal
    status: Status
    tie: Tie | None = None
    lines: list[LineRow] = Field(default_factory=list)
    billed_monthly: Decimal = ZERO
    monthly_difference: Decimal = ZERO  # licence value - billed value (positive: under-billed)
    true_up_monthly: Decimal = ZERO  # what setting the line's quantity to the seats adds per month
    suggested_lines: list[int] = Field(default_factory=list)  # same product name, not tied
    reason: str


def _monthly_unit(price: Decimal | None, months: int | None) -> Decimal:
    return ZERO if price is None else price / Decimal(months or 1)


def _row(b: BilledLine) -> LineRow:
    ln = b.line
    return LineRow(line_id=ln.id or 0, recurring_invoice_id=ln.recurring_invoice_id, contract_id=ln.contract_id,
                   description=ln.description, quantity=ln.quantity, unit_price=ln.unit_price,
                   monthly=ln.quantity * ln.unit_price / Decimal(b.months))


def check_licences(licences: Iterable[Licence], lines: Iterable[BilledLine], *,
                   links: Mapping[int, int] | None = None) -> list[LicenceCheck]:
    """Every active licence against the lines of its client (``links``: licence id -> line id)."""
    by_client: dict[int, list[BilledLine]] = {}
    by_id: dict[int, BilledLine] = {}
    for b in lines:
        by_client.setdefault(b.client_id, []).append(b)
        if b.line.id is not None:
            by_id[b.line.id] = b
    live = sorted((x for x in licences if x.active and x.id is not None and x.client_id is not None),
                  key=lambda x: (x.client_id or 0, x.id or 0))
    # lines another licence already ties (by code or a confirmed link) are never suggested by name
    taken = {b.line.id for lic in live for b in _tied(lic, by_client.get(lic.client_id or 0, []), by_id,
                                                      links or {})[0]}
    out: list[LicenceCheck] = []
    for lic in live:
        own = by_client.get(lic.client_id or 0, [])
        if not _tied(lic, own, by_id, links or {})[0]:
            own = [b for b in own if b.line.id not in taken]
        out.append(_check_one(lic, own, by_id, links or {}))
    return out


def _tied(lic: Licence, client_lines: list[BilledLine], by_id: Mapping[int, BilledLine],
          links: Mapping[int, int]) -> tuple[list[BilledLine], Tie | None]:
    linked = links.get(lic.id or 0)
    if linked is not None and linked in by_id and by_id[linked].client_id == lic.client_id:
        return [by_id[linked]], "confirmed"
    key = code_key(lic.product_code)
    coded = [b for b in client_lines if key and code_key(b.line.product_code) == key]
    return coded, "code" if coded else None


def _check_one(lic: Licence, client_lines: list[BilledLine], by_id: Mapping[int, BilledLine],
               links: Mapping[int, int]) -> LicenceCheck:
    unit = _monthly_unit(lic.unit_price, cycle_months(lic.billing_cycle))
    base = dict(licence_id=lic.id or 0, client_id=lic.client_id or 0, product_code=lic.product_code,
                halo_name=lic.name, seats=lic.quantity, licence_monthly=unit * lic.quantity)
    tied, tie = _tied(lic, client_lines, by_id, links)
    if not tied:
        name = product_name_key(lic.name)
        same_name = [b for b in client_lines if name and product_name_key(b.line.description) == name]
        suggested = [b.line.id or 0 for b in same_name]
        if not same_name:
            return LicenceCheck(**base, status="unbilled", monthly_difference=unit * lic.quantity,
                                reason="no recurring line of the client bills this product code or name")
        # Most likely billed by a line of the same name that lacks the code: measured against it,
        # not counted as wholly unbilled, until the person confirms the tie.
        rows = [_row(b) for b in same_name]
        billed = sum((r.monthly for r in rows), ZERO)
        return LicenceCheck(**base, status="untied", suggested_lines=suggested, lines=rows, billed_monthly=billed,
                            monthly_difference=unit * lic.quantity - billed,
                            reason=f"no line carries this product code, but line(s) {', '.join(map(str, suggested))} "
                                   f"of the same product name bill {cents(billed)} a month: probably this licence; "
                                   f"confirm with links=[{{licence_id: {lic.id}, line_id: <line>}}]")
    rows = [_row(b) for b in tied]
    billed = sum((r.monthly for r in rows), ZERO)
    if len(tied) > 1:
        return LicenceCheck(**base, status="ambiguous", tie=tie, lines=rows, billed_monthly=billed,
                            monthly_difference=unit * lic.quantity - billed,
                            reason=f"{len(tied)} lines bill this product code; confirm the one that bills this "
                                   f"licence with links=[{{licence_id: {lic.id}, line_id: <line>}}]")
    (b,) = tied
    line_unit = _monthly_unit(b.line.unit_price, b.months)
    qty_off = Decimal(lic.quantity) != b.line.quantity
    price_off = lic.unit_price is not None and cents(unit) != cents(line_unit)
    status: Status = ("quantity_and_price" if qty_off and price_off else "quantity" if qty_off
                      else "price" if price_off else "billed_right")
    true_up = (Decimal(lic.quantity) - b.line.quantity) * line_unit if qty_off else ZERO
    reason = {"billed_right": "seats and price match the line",
              "quantity": f"{lic.quantity} seats, line {b.line.id} bills {b.line.quantity}",
              "price": f"licence {cents(unit)}/seat/month, line {b.line.id} {cents(line_unit)}/unit/month",
              "quantity_and_price": f"{lic.quantity} seats at {cents(unit)}/month, line {b.line.id} bills "
                                    f"{b.line.quantity} at {cents(line_unit)}/month"}[status]
    return LicenceCheck(**base, status=status, tie=tie, lines=rows, billed_monthly=billed,
                        monthly_difference=unit * lic.quantity - billed, true_up_monthly=true_up, reason=reason)


def billed_lines(invoices: Iterable[tuple[int, list[RecurringItem], str | None]],
                 months_of: Callable[[str | None], int | None]) -> list[BilledLine]:
    """The live lines of each (client id, lines, contract frequency); a line's own frequency
    wins over its contract's."""
    out: list[BilledLine] = []
    for client_id, lines, contract_frequency in invoices:
        for ln in lines:
            if ln.inactive or ln.id is None:
                continue
            months = months_of(ln.billing_frequency) or months_of(contract_frequency) or 1
            out.append(BilledLine(line=ln, client_id=client_id, months=months))
    return out
