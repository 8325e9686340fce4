"""Clients, SLAs and lookup lists (``/Client``, ``/SLA``, ``/Lookup``)."""

from __future__ import annotations

from halo_contracts.domain.models import Client, LookupValue, Sla
from halo_contracts.halo import wire
from halo_contracts.halo.paging import extract_rows
from halo_contracts.halo.transport import HaloTransport, PageCallback


class ClientEndpoints(HaloTransport):
    """Reads of clients, SLAs and lookups."""

    async def list_clients(self, *, search: str | None = None, include_inactive: bool = False,
                           on_page: PageCallback | None = None) -> list[Client]:
        params = {"search": search or None, "includeinactive": True if include_inactive else None}
        rows = await self._list("/Client", key="clients", operation="list clients", params=params,
                                on_page=on_page)
        return [wire.client_from_wire(r) for r in rows]

    async def get_client(self, client_id: int) -> Client:
        row = await self._get_object(f"/Client/{int(client_id)}", operation="get client")
        return wire.client_from_wire(row)

    async def list_slas(self) -> list[Sla]:
        body = await self._call("GET", "/SLA", operation="list SLAs")
        return [wire.sla_from_wire(r) for r in extract_rows(body, "slas")]

    async def get_lookup(self, lookup_id: int) -> list[LookupValue]:
        body = await self._call("GET", "/Lookup", operation="read lookup", params={"lookupid": int(lookup_id)})
        return [wire.lookup_from_wire(r) for r in extract_rows(body, "lookup")]
