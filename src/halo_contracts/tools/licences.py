"""Software licences as Halo holds them: the read a licence sync needs before product mapping
(which product codes and names Halo uses, per client, with seats, price and distributor).

Halo's text (client, product and distributor names) is returned in its own fields only.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.domain.licence_sync import distributor_key, monthly_amount
from halo_contracts.domain.models import Licence
from halo_contracts.tools.common import (
    ClientId,
    Cursor,
    Money,
    Result,
    app,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
)


class LicenceRow(Result):
    licence_id: int
    client_id: int | None
    client_name: str | None
    product_code: str = Field(description="Halo's product code (what product_mappings map a feed code to)")
    name: str = Field(description="the product as Halo names it")
    seats: int
    unit_price: Money | None
    billing_cycle: str | None
    monthly: Money = Field(description="seats x price per month (annual / 12 …)")
    distributor: str | None
    active: bool


class ListLicencesResult(Result):
    total: int = Field(description="licences matching every filter")
    count: int = Field(description="rows in this page")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")
    monthly_total: Money = Field(description="monthly value of every matching active licence (all pages)")
    licences: list[LicenceRow]

    def said(self) -> str:
        if not self.total:
            return "No licence matches these filters."
        text = (f"{self.total} licence(s) match, {money(self.monthly_total)} a month; this page has {self.count}: "
                + listed([f"licence {x.licence_id} (client {x.client_id}) {x.seats} seats" for x in self.licences])
                + ".")
        return text + (" More: cursor=next_cursor." if self.next_cursor else "")


def _cursor_for(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset_of(cursor: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        offset, fp = int(data["o"]), str(data["f"])
    except Exception:
        raise invalid("cursor", "this is not a cursor list_licences returned",
                      "pass next_cursor from the previous page unchanged, or leave cursor out") from None
    if fp != fingerprint or offset < 0:
        raise invalid("cursor", "the cursor belongs to a listing with different filters",
                      "repeat the same filters with this cursor, or leave cursor out to start again")
    return offset


def _row(x: Licence) -> LicenceRow:
    return LicenceRow(licence_id=x.id or 0, client_id=x.client_id, client_name=x.client_name,
                      product_code=x.product_code, name=x.name, seats=x.quantity, unit_price=x.unit_price,
                      billing_cycle=x.billing_cycle,
                      monthly=monthly_amount(x.quantity, x.unit_price, x.billing_cycle) if x.active else Decimal(0),
                      distributor=x.distributor, active=x.active)


@halo_tool(group="license-sync", kind="read", title="List software licences")
async def list_licences(
    ctx: Context,
    client_id: ClientId | None = None,
    distributor: Annotated[str | None, Field(strict=True, min_length=1, max_length=100,
                                             description="Only this distributor's")]
    = None,
    include_inactive: Annotated[bool, Field(strict=True)] = False,
    limit: Annotated[int, Field(strict=True, ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> ListLicencesResult:
    """Halo's software licences, paged: the codes plan_license_sync's product_mappings take."""
    fingerprint = json.dumps([client_id, distributor_key(distributor), include_inactive])
    offset = _offset_of(cursor, fingerprint) if cursor else 0
    async with halo_errors():
        rows = await app(ctx).halo.list_licences(client_id=client_id, include_inactive=include_inactive)
    if client_id is not None:
        rows = [x for x in rows if x.client_id == client_id]
    if distributor is not None:
        rows = [x for x in rows if distributor_key(x.distributor) == distributor_key(distributor)]
    rows.sort(key=lambda x: (x.client_id or 0, x.product_code.casefold(), x.id or 0))
    page = rows[offset:offset + limit]
    more = offset + limit < len(rows)
    return ListLicencesResult(
        total=len(rows), count=len(page), next_cursor=_cursor_for(offset + limit, fingerprint) if more else None,
        monthly_total=sum((monthly_amount(x.quantity, x.unit_price, x.billing_cycle) for x in rows if x.active),
                          Decimal(0)),
        licences=[_row(x) for x in page])
