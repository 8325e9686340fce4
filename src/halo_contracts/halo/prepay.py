"""The prepay ledger (``/ClientPrepay``)."""

from __future__ import annotations

from halo_contracts.domain.models import PrepayEntry
from halo_contracts.halo import wire
from halo_contracts.halo.transport import HaloTransport, PageCallback


class PrepayEndpoints(HaloTransport):
    """Prepay ledger reads."""

    async def list_prepay_entries(self, *, client_id: int | None = None, contract_id: int | None = None,
                                  on_page: PageCallback | None = None) -> list[PrepayEntry]:
        params = {"client_id": client_id, "contract_id": contract_id}
        rows = await self._list("/ClientPrepay", key="prepayhistory", operation="list prepay entries", params=params,
                                on_page=on_page)
        entries = [wire.prepay_entry_from_wire(r, contract_id=contract_id) for r in rows]
        if contract_id is not None:
            entries = [e for e in entries if e.contract_id in (None, contract_id)]
        return entries
