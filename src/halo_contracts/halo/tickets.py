"""Tickets and their time entries (``/Tickets``, ``/Actions``)."""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any

from halo_contracts.domain.models import Ticket, TimeEntry
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloIncompleteRead
from halo_contracts.halo.paging import extract_rows, record_count
from halo_contracts.halo.transport import HaloTransport, PageCallback, within

# the /Tickets datesearch value for "date opened", by HALO_TICKET_DATE_SPELLING
TICKET_DATESEARCH = {"documented": "dateoccured", "field": "dateoccurred"}


class TicketEndpoints(HaloTransport):
    """Ticket and time-entry reads."""

    async def list_time_entries(self, *, start: date, end: date, ticket_id: int | None = None,
                                on_page: PageCallback | None = None) -> list[TimeEntry]:
        """Ticket actions carrying time between ``start`` and ``end`` (inclusive)."""
        params = {
            "timeentriesonly": True,
            "startdate": f"{start.isoformat()}T00:00:00",
            "enddate": f"{end.isoformat()}T23:59:59",
            "ticket_id": ticket_id,
        }
        # /Actions has no paging parameters in Halo's spec: one read returns the whole range.
        operation = "list time entries"
        body = await self._call("GET", "/Actions", operation=operation, params=params)
        rows = extract_rows(body, "actions")
        total = record_count(body)
        if total is not None and total > len(rows):
            raise self._error(HaloIncompleteRead, f"Halo returned {len(rows)} of {total} time entries; "
                              "ask for a shorter date range", status=None, operation=operation)
        if on_page is not None:
            result = on_page(1, 1)
            if inspect.isawaitable(result):
                await result
        entries = [wire.time_entry_from_wire(r) for r in rows]
        return [e for e in entries if e.when is None or within(e.when, start, end)]

    async def list_tickets(self, *, contract_id: int | None = None, client_id: int | None = None,
                           start: date | None = None, end: date | None = None,
                           on_page: PageCallback | None = None) -> list[Ticket]:
        params: dict[str, Any] = {"contract_id": contract_id, "client_id": client_id}
        if start is not None or end is not None:
            # Halo's column name, spelled as the slice documents it ("Date Opened - 'dateoccured'");
            # HALO_TICKET_DATE_SPELLING=field when a tenant honours the field's spelling (verify tells)
            params["datesearch"] = TICKET_DATESEARCH[self._settings.ticket_date_spelling]
            if start is not None:
                params["startdate"] = f"{start.isoformat()}T00:00:00"
            if end is not None:
                params["enddate"] = f"{end.isoformat()}T23:59:59"
        rows = await self._list("/Tickets", key="tickets", operation="list tickets", params=params,
                                on_page=on_page)
        tickets = [wire.ticket_from_wire(r) for r in rows]
        if start is not None or end is not None:
            kept = [t for t in tickets if t.opened is None or within(t.opened, start, end)]
            self.note_filter("/Tickets startdate/enddate", honoured=len(kept) == len(tickets))
            tickets = kept
        return tickets
