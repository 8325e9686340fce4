"""Client contracts (``/ClientContract``): list, read, create, update, delete."""

from __future__ import annotations

from dataclasses import dataclass

from halo_contracts.domain.drafts import ContractFields
from halo_contracts.domain.models import Contract
from halo_contracts.halo import wire
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback


@dataclass
class ContractQuery:
    """Server-side filters Halo has for ``GET /ClientContract`` (others are client-side)."""

    client_id: int | None = None
    search: str | None = None
    include_inactive: bool = False
    exclude_renewed: bool = False
    # a friendly contract type ("Prepaid Hours"): sent as contract_type (the 2026 document's
    # filter) and applied here too, so a tenant that ignores it gives the same answer
    type: str | None = None


class ContractEndpoints(HaloTransport):
    """Contract reads and writes."""

    WRITES = ('create_contract', 'update_contract', 'delete_contract')

    async def list_contracts(self, query: ContractQuery | None = None, *,
                             on_page: PageCallback | None = None) -> list[Contract]:
        """Every contract matching the server-side filters (all pages). List rows: no prepay."""
        q = query or ContractQuery()
        params = {
            "client_id": q.client_id,
            "search": q.search or None,
            "includeinactive": True if q.include_inactive else None,
            "excluderenewed": True if q.exclude_renewed else None,
            "contract_type": self._codes.type_code(q.type) if q.type else None,
        }
        rows = await self._list("/ClientContract", key="contracts", operation="list contracts", params=params,
                                on_page=on_page)
        contracts = [wire.contract_from_wire(r, self._codes) for r in rows]
        if q.type:
            wanted = q.type.casefold()
            kept = [c for c in contracts if (c.type or "").casefold() == wanted]
            self.note_filter("/ClientContract contract_type", honoured=len(kept) == len(contracts))
            contracts = kept
        return contracts

    async def get_contract(self, contract_id: int, *, details: bool = True) -> Contract:
        """One contract; with details the prepay totals, ledger and periods are filled."""
        params = {"includedetails": True, "includeperiods": True} if details else None
        row = await self._get_object(f"/ClientContract/{int(contract_id)}", operation="get contract",
                                     params=params)
        return wire.contract_from_wire(row, self._codes)

    def _req_create_contract(self, fields: ContractFields) -> HaloRequest:
        body = wire.contract_to_wire(fields, self._codes)
        body.pop("id", None)
        return HaloRequest("create contract", "POST", "/ClientContract", [body])

    def _req_update_contract(self, contract_id: int, fields: ContractFields) -> HaloRequest:
        body = wire.contract_to_wire(fields, self._codes, contract_id=int(contract_id))
        return HaloRequest("update contract", "POST", "/ClientContract", [body])

    def _req_delete_contract(self, contract_id: int) -> HaloRequest:
        return HaloRequest("delete contract", "DELETE", f"/ClientContract/{int(contract_id)}")

    async def create_contract(self, fields: ContractFields) -> Contract:
        request = self._req_create_contract(fields)
        return wire.contract_from_wire(self._saved(await self._write(request), request), self._codes)

    async def update_contract(self, contract_id: int, fields: ContractFields) -> Contract:
        """Partial update: sends ``id`` plus exactly ``fields.given()``."""
        request = self._req_update_contract(contract_id, fields)
        return wire.contract_from_wire(self._saved(await self._write(request), request), self._codes)

    async def delete_contract(self, contract_id: int) -> None:
        """Delete a contract (``verify`` removes what it made; no tool deletes contracts)."""
        await self._write(self._req_delete_contract(contract_id))
