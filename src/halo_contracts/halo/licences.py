"""Software licences (``/SoftwareLicence``): list, create, update, delete."""

from __future__ import annotations

from halo_contracts.domain.drafts import LicenceFields
from halo_contracts.domain.models import Licence
from halo_contracts.halo import wire
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback


class LicenceEndpoints(HaloTransport):
    """Licence reads and writes."""

    WRITES = ('create_licence', 'update_licence', 'delete_licence')

    async def list_licences(self, *, client_id: int | None = None, include_inactive: bool = False,
                            on_page: PageCallback | None = None) -> list[Licence]:
        """Every software licence (all pages); ``include_inactive`` adds the inactive ones
        (``includeinactive=true``), which Halo leaves out by default."""
        params = {"client_id": client_id, "includeinactive": True if include_inactive else None}
        rows = await self._list("/SoftwareLicence", key="licences", operation="list licences",
                                params=params, on_page=on_page)
        return [wire.licence_from_wire(r) for r in rows]

    def _req_create_licence(self, fields: LicenceFields) -> HaloRequest:
        body = wire.licence_to_wire(fields)
        return HaloRequest("create licence", "POST", "/SoftwareLicence", [body])

    def _req_update_licence(self, licence_id: int, fields: LicenceFields) -> HaloRequest:
        body = wire.licence_to_wire(fields, licence_id=int(licence_id))
        return HaloRequest("update licence", "POST", "/SoftwareLicence", [body])

    def _req_delete_licence(self, licence_id: int) -> HaloRequest:
        return HaloRequest("delete licence", "DELETE", f"/SoftwareLicence/{int(licence_id)}")

    async def create_licence(self, fields: LicenceFields) -> Licence:
        request = self._req_create_licence(fields)
        return wire.licence_from_wire(self._saved(await self._write(request), request))

    async def update_licence(self, licence_id: int, fields: LicenceFields) -> Licence:
        request = self._req_update_licence(licence_id, fields)
        return wire.licence_from_wire(self._saved(await self._write(request), request))

    async def delete_licence(self, licence_id: int) -> None:
        await self._write(self._req_delete_licence(licence_id))
