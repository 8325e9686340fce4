"""Software licences (``/SoftwareLicence``): list, create, update, delete.

``POST /SoftwareLicence`` answers 200 without a documented body: when the answer carries no
record, the licence is read back (by id for an update; by client and product code for a
create), so an accepted write is never reported as an unknown outcome."""

from __future__ import annotations

from halo_contracts.domain.drafts import LicenceFields
from halo_contracts.domain.models import Licence
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback, single


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

    async def get_licence(self, licence_id: int) -> Licence:
        row = await self._get_object(f"/SoftwareLicence/{int(licence_id)}", operation="get licence")
        return wire.licence_from_wire(row)

    async def create_licence(self, fields: LicenceFields) -> Licence:
        request = self._req_create_licence(fields)
        row = single(await self._write(request))
        if row is not None:
            return wire.licence_from_wire(row)
        # 200 without the record: the newest licence of that client with that product code
        found = [lic for lic in await self.list_licences(client_id=fields.client_id, include_inactive=True)
                 if (lic.product_code or "").casefold() == (fields.product_code or "").casefold()
                 and (fields.name is None or (lic.name or "") == fields.name)]
        if not found:
            raise self._error(HaloError, "Halo accepted the licence but no licence of that client and product "
                              "code can be read back", status=None, operation=request.operation)
        return max(found, key=lambda lic: lic.id or 0)

    async def update_licence(self, licence_id: int, fields: LicenceFields) -> Licence:
        request = self._req_update_licence(licence_id, fields)
        row = single(await self._write(request))
        if row is not None:
            return wire.licence_from_wire(row)
        return await self.get_licence(licence_id)  # 200 without the record: read it back

    async def delete_licence(self, licence_id: int) -> None:
        await self._write(self._req_delete_licence(licence_id))
