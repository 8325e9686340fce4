"""Invoices Halo raised (``/Invoice``)."""

from __future__ import annotations

from datetime import date

from halo_contracts.domain.models import Invoice
from halo_contracts.halo import wire
from halo_contracts.halo.transport import HaloTransport, PageCallback, within


class InvoiceEndpoints(HaloTransport):
    """Invoice reads."""

    async def list_invoices(self, *, client_id: int | None = None, contract_id: int | None = None,
                            start: date | None = None, end: date | None = None,
                            on_page: PageCallback | None = None) -> list[Invoice]:
        """Invoices with lines; ``start``/``end`` filter ``invoice_date`` (inclusive) after
        the paged read, since Halo's list has no date filter."""
        params = {"client_id": client_id, "contract_id": contract_id, "includelines": True}
        rows = await self._list("/Invoice", key="invoices", operation="list invoices", params=params,
                                on_page=on_page)
        invoices = [wire.invoice_from_wire(r) for r in rows]
        if start is not None or end is not None:
            invoices = [i for i in invoices if within(i.invoice_date, start, end)]
        return invoices
