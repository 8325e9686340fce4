"""Recurring invoices and their lines (``/RecurringInvoice``, ``/Lines``, ``/updatelines``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from halo_contracts.domain.drafts import RecurringItemFields
from halo_contracts.domain.models import RecurringInvoice, RecurringItem
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloUnknownOutcome
from halo_contracts.halo.paging import extract_rows
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback


class RecurringEndpoints(HaloTransport):
    """Recurring invoice headers and lines."""

    WRITES = ('create_recurring_invoice', 'add_recurring_lines', 'update_recurring_line')

    async def list_recurring_invoices(self, *, contract_id: int | None = None, client_id: int | None = None,
                                      include_lines: bool = True,
                                      on_page: PageCallback | None = None) -> list[RecurringInvoice]:
        params = {"contract_id": contract_id, "client_id": client_id, "includelines": include_lines}
        rows = await self._list("/RecurringInvoice", key="invoices", operation="list recurring invoices",
                                params=params, on_page=on_page)
        return [wire.recurring_invoice_from_wire(r, self._codes) for r in rows]

    async def get_recurring_invoice(self, recurring_invoice_id: int) -> RecurringInvoice:
        row = await self._get_object(f"/RecurringInvoice/{int(recurring_invoice_id)}",
                                     operation="get recurring invoice", params={"includedetails": True})
        return wire.recurring_invoice_from_wire(row, self._codes)

    def _req_create_recurring_invoice(self, *, client_id: int, contract_id: int,
                                      contract_ref: str | None = None) -> HaloRequest:
        body = wire.recurring_invoice_to_wire(client_id=int(client_id), contract_id=int(contract_id),
                                              contract_ref=contract_ref)
        return HaloRequest("create recurring invoice", "POST", "/RecurringInvoice", [body])

    async def create_recurring_invoice(self, *, client_id: int, contract_id: int,
                                       contract_ref: str | None = None) -> RecurringInvoice:
        request = self._req_create_recurring_invoice(client_id=client_id, contract_id=contract_id,
                                                     contract_ref=contract_ref)
        return wire.recurring_invoice_from_wire(self._saved(await self._write(request), request), self._codes)

    def _req_add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                 items: list[RecurringItemFields]) -> HaloRequest:
        rows = [wire.recurring_item_to_wire(item, self._codes, recurring_invoice_id=int(recurring_invoice_id),
                                            contract_id=int(contract_id)) for item in items]
        return HaloRequest("add recurring lines", "POST", "/RecurringInvoice/Lines", rows)

    async def add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                  items: list[RecurringItemFields]) -> list[RecurringItem]:
        if not items:
            return []
        request = self._req_add_recurring_lines(recurring_invoice_id, contract_id, items)
        body = await self._write(request)
        rows = _saved_lines(body, request.body)
        if not rows:
            raise self._error(HaloUnknownOutcome, "Halo accepted the lines but did not return them",
                              status=None, operation=request.operation)
        return [wire.recurring_item_from_wire(r, self._codes, recurring_invoice_id=int(recurring_invoice_id),
                                              contract_id=int(contract_id)) for r in rows]

    def _req_update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                   fields: RecurringItemFields) -> HaloRequest:
        row = wire.recurring_item_to_wire(fields, self._codes, line_id=int(line_id),
                                          recurring_invoice_id=int(recurring_invoice_id))
        return HaloRequest("update recurring line", "POST", "/RecurringInvoice/updatelines", [row])

    async def update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                    fields: RecurringItemFields) -> RecurringItem:
        request = self._req_update_recurring_line(line_id, recurring_invoice_id, fields)
        body = await self._write(request)
        rows = extract_rows(body, "lines")
        match = next((r for r in rows if r.get("id") == int(line_id)), rows[0] if rows else None)
        if match is None:
            raise self._error(HaloUnknownOutcome, "Halo accepted the change but did not return the line",
                              status=None, operation=request.operation)
        return wire.recurring_item_from_wire(match, self._codes, recurring_invoice_id=int(recurring_invoice_id))


def _saved_lines(body: Any, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines saved by ``/RecurringInvoice/Lines``: an array, one line, or a header with lines."""
    if isinstance(body, Mapping) and "id" in body and isinstance(body.get("lines"), list) \
            and "item_shortdescription" not in body:
        rows = [r for r in body["lines"] if isinstance(r, Mapping)]
        wanted = [s.get("item_shortdescription") for s in sent]
        matching = [r for r in rows if r.get("item_shortdescription") in wanted]
        return matching[-len(sent):] if len(matching) >= len(sent) else matching
    return extract_rows(body, "lines")
