"""Invoices Halo raised (``/Invoice``).

A date window is asked of Halo (``start_date``/``end_date`` on ``datesearch=invoice_date``,
the 2026 document's filters), one day wider on each side since the document says "greater
than"/"less than" without saying whether the bound itself is in; the exact window is then
applied here. A tenant that ignores the filter answers rows outside the window: that is
noticed (``ignored_filters``) and the rows are filtered here, as they always are.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from halo_contracts.domain.models import Invoice
from halo_contracts.halo import wire
from halo_contracts.halo.transport import HaloTransport, PageCallback, within

logger = logging.getLogger("halo_contracts.halo")


class InvoiceEndpoints(HaloTransport):
    """Invoice reads."""

    async def list_invoices(self, *, client_id: int | None = None, contract_id: int | None = None,
                            start: date | None = None, end: date | None = None,
                            on_page: PageCallback | None = None) -> list[Invoice]:
        """Invoices with lines whose ``invoice_date`` is within ``start``..``end`` (inclusive)."""
        params: dict[str, object] = {"client_id": client_id, "contract_id": contract_id, "includelines": True}
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
        return invoices
