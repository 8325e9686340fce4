"""Invoices Halo raised (``/Invoice``).

A date window is asked of Halo (``start_date``/``end_date`` on ``datesearch=invoice_date``,
the 2026 document's filters), one day wider on each side since the document says "greater
than"/"less than" without saying whether the bound itself is in; the exact window is then
applied here. A tenant that ignores the filter answers rows outside the window: that is
noticed (``ignored_filters``) and the rows are filtered here, as they always are.

Distributor charges are written as invoice lines: a new invoice is one ``POST /Invoice`` with
its lines; lines are added to an existing invoice with ``POST /Invoice`` naming its ``id`` and
the lines in ``add_lines`` (so the lines it has are never replaced); a recurring invoice gets
them through ``POST /RecurringInvoice/Lines``, marked as billed once. An answer without the lines
is confirmed by reading the invoice back.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from halo_contracts.domain.charges import ChargeDraft, charge_key
from halo_contracts.domain.models import Invoice, RecurringInvoice
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.paging import extract_rows
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback, single, within

logger = logging.getLogger("halo_contracts.halo")


class InvoiceEndpoints(HaloTransport):
    """Invoice reads; invoices and lines made from distributor charges."""

    WRITES = ("create_invoice", "add_invoice_lines", "add_recurring_charges")

    async def list_invoices(self, *, client_id: int | None = None, contract_id: int | None = None,
                            start: date | None = None, end: date | None = None, not_posted_only: bool = False,
                            on_page: PageCallback | None = None) -> list[Invoice]:
        """Invoices with lines whose ``invoice_date`` is within ``start``..``end`` (inclusive);
        ``not_posted_only``: only those not yet posted (``notpostedonly``; also checked here)."""
        params: dict[str, object] = {"client_id": client_id, "contract_id": contract_id, "includelines": True}
        if not_posted_only:
            params["notpostedonly"] = True
        if start is not None or end is not None:
            params["datesearch"] = "invoice_date"
            if start is not None:
                params["start_date"] = start - timedelta(days=1)
            if end is not None:
                params["end_date"] = end + timedelta(days=1)
        rows = await self._list("/Invoice", key="invoices", operation="list invoices", params=params,
                                on_page=on_page)
        invoices = [wire.invoice_from_wire(r) for r in rows]
        if start is not None or end is not None:
            wide_start = start - timedelta(days=1) if start is not None else None
            wide_end = end + timedelta(days=1) if end is not None else None
            # rows beyond even the widened window: the tenant ignored the filter
            beyond = [i for i in invoices if i.invoice_date is not None
                      and not within(i.invoice_date, wide_start, wide_end)]
            self.note_filter("/Invoice start_date/end_date", honoured=not beyond)
            invoices = [i for i in invoices if within(i.invoice_date, start, end)]
        if not_posted_only:
            invoices = [i for i in invoices if not i.posted]
        return invoices

    async def get_invoice(self, invoice_id: int) -> Invoice:
        row = await self._get_object(f"/Invoice/{int(invoice_id)}", operation="get invoice",
                                     params={"includedetails": True})
        return wire.invoice_from_wire(row)

    # ---- charges -------------------------------------------------------------------------
    def _req_create_invoice(self, client_id: int, invoice_date: date, lines: list[ChargeDraft]) -> HaloRequest:
        body = wire.invoice_to_wire(client_id=int(client_id), invoice_date=invoice_date,
                                    lines=[wire.charge_line_to_wire(line) for line in lines])
        return HaloRequest("create invoice", "POST", "/Invoice", [body])

    def _req_add_invoice_lines(self, invoice_id: int, lines: list[ChargeDraft]) -> HaloRequest:
        body = wire.invoice_to_wire(invoice_id=int(invoice_id),
                                    add_lines=[wire.charge_line_to_wire(line, header_id=int(invoice_id))
                                               for line in lines])
        return HaloRequest("add invoice lines", "POST", "/Invoice", [body])

    def _req_add_recurring_charges(self, recurring_invoice_id: int, lines: list[ChargeDraft]) -> HaloRequest:
        rows = [wire.charge_line_to_wire(line, header_id=int(recurring_invoice_id), once=True) for line in lines]
        return HaloRequest("add charges to a recurring invoice", "POST", "/RecurringInvoice/Lines", rows)

    async def create_invoice(self, client_id: int, invoice_date: date, lines: list[ChargeDraft]) -> Invoice:
        """A new invoice for the client holding ``lines``; read back when Halo answers without it."""
        request = self._req_create_invoice(client_id, invoice_date, lines)
        row = single(await self._write(request))
        if row is not None and "id" in row:
            return wire.invoice_from_wire(row)
        found = await self.find_charge_invoice(int(client_id), lines, exclude=())
        if found is None:
            raise self._error(HaloError, f"Halo accepted the invoice but no open invoice of client {client_id} "
                              "holds its lines", status=None, operation=request.operation)
        return found

    async def find_charge_invoice(self, client_id: int, lines: list[ChargeDraft],
                                  exclude: tuple[int, ...] | list[int]) -> Invoice | None:
        """The newest open invoice of the client (other than ``exclude``) holding every one of ``lines``."""
        wanted = [line.key for line in lines]
        for invoice in sorted(await self.list_invoices(client_id=client_id, not_posted_only=True),
                              key=lambda i: -i.id):
            if invoice.id in exclude:
                continue
            held = [charge_key(x.product_code or "", x.start_date, x.end_date) for x in invoice.lines]
            if all(held.count(k) >= wanted.count(k) for k in set(wanted)):
                return invoice
        return None

    async def add_invoice_lines(self, invoice_id: int, lines: list[ChargeDraft]) -> Invoice:
        """Add ``lines`` to an invoice (its other lines stay); the invoice as Halo holds it after."""
        request = self._req_add_invoice_lines(invoice_id, lines)
        row = single(await self._write(request))
        if row is not None and isinstance(row.get("lines"), list):
            return wire.invoice_from_wire(row)
        return await self.get_invoice(invoice_id)

    async def add_recurring_charges(self, recurring_invoice_id: int, lines: list[ChargeDraft]) -> RecurringInvoice:
        """Add ``lines`` to a recurring invoice, billed once; the recurring invoice read back."""
        request = self._req_add_recurring_charges(recurring_invoice_id, lines)
        await self._write(request)  # 200 without a documented body: read the header back
        return await self.get_recurring_invoice(int(recurring_invoice_id))  # type: ignore[attr-defined]

    async def earliest_invoices(self, count: int = 25) -> list[Invoice]:
        """The tenant's earliest invoices (headers, no lines), oldest first, in one request:
        ``/Invoice`` ordered by ``invoice_date`` ascending with ``count``. A tenant that ignores
        ``count`` answers more rows: they are sorted and cut here, and the ignored filter noted."""
        body = await self._call("GET", "/Invoice", operation="earliest invoices", params={
            "order": "invoice_date", "orderdesc": False, "count": count})
        rows = extract_rows(body, "invoices")
        self.note_filter("/Invoice count", honoured=len(rows) <= count)
        invoices = [wire.invoice_from_wire(r) for r in rows]
        dated = sorted((i for i in invoices if i.invoice_date is not None), key=lambda i: (i.invoice_date, i.id))
        return dated[:count]
