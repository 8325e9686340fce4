"""Recurring invoices and their lines (``/RecurringInvoice``, ``/Lines``, ``/updatelines``).

Halo's current document has no billing frequency on a line (``InvoiceDetail.billingperiod``
is gone): a line bills at its recurring invoice's ``period``. So a contract has one recurring
invoice per billing frequency, and a line whose frequency differs from the header it was
aimed at goes to the contract's header of that frequency (made, with its schedule, when the
contract has none yet). See docs/recurring-billing.md.

``/RecurringInvoice/Lines`` and ``/updatelines`` answer 200 without a documented body: when
the answer carries no lines, they are read back from the recurring invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from halo_contracts.domain.drafts import RecurringItemFields
from halo_contracts.domain.models import RecurringInvoice, RecurringItem
from halo_contracts.domain.money import add_months
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.paging import extract_rows
from halo_contracts.halo.transport import HaloRequest, HaloTransport, PageCallback


class RecurringEndpoints(HaloTransport):
    """Recurring invoice headers and lines."""

    WRITES = ("create_recurring_invoice", "add_recurring_lines", "update_recurring_line", "delete_recurring_invoice")

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

    # ---- headers ----------------------------------------------------------------------------
    def _req_create_recurring_invoice(self, *, client_id: int, contract_id: int, contract_ref: str | None = None,
                                      billing_frequency: str | None = None, start_date: date | None = None,
                                      end_date: date | None = None) -> HaloRequest:
        step = self._codes.months_of(billing_frequency) if billing_frequency else None
        next_creation = _next_creation(start_date, self._today(), step or 1) if start_date is not None else None
        body = wire.recurring_invoice_to_wire(client_id=int(client_id), contract_id=int(contract_id),
                                              contract_ref=contract_ref, billing_frequency=billing_frequency,
                                              codes=self._codes, start_date=start_date, end_date=end_date,
                                              next_creation_date=next_creation)
        return HaloRequest("create recurring invoice", "POST", "/RecurringInvoice", [body])

    async def create_recurring_invoice(self, *, client_id: int, contract_id: int, contract_ref: str | None = None,
                                       billing_frequency: str | None = None, start_date: date | None = None,
                                       end_date: date | None = None) -> RecurringInvoice:
        """A recurring invoice Halo will run: its period, start, end and next creation date.
        What is not given comes from the contract (one read), so a header is never bare."""
        if billing_frequency is None or start_date is None:
            contract = await self._contract_schedule(contract_id)
            billing_frequency = billing_frequency or contract[0]
            start_date = start_date or contract[1]
            end_date = end_date or contract[2]
        request = self._req_create_recurring_invoice(
            client_id=client_id, contract_id=contract_id, contract_ref=contract_ref,
            billing_frequency=billing_frequency, start_date=start_date, end_date=end_date)
        return wire.recurring_invoice_from_wire(self._saved(await self._write(request), request), self._codes)

    def _req_delete_recurring_invoice(self, recurring_invoice_id: int) -> HaloRequest:
        return HaloRequest("delete recurring invoice", "DELETE", f"/RecurringInvoice/{int(recurring_invoice_id)}")

    async def delete_recurring_invoice(self, recurring_invoice_id: int) -> None:
        """Delete a recurring invoice with its lines (``verify`` removes what it made)."""
        await self._write(self._req_delete_recurring_invoice(recurring_invoice_id))

    async def _contract_schedule(self, contract_id: int) -> tuple[str | None, date | None, date | None]:
        row = await self._get_object(f"/ClientContract/{int(contract_id)}", operation="read the contract's schedule")
        contract = wire.contract_from_wire(row, self._codes)
        return contract.billing_frequency, contract.start_date, contract.end_date

    async def _header_for(self, header: RecurringInvoice, frequency: str | None,
                          siblings: dict[str, RecurringInvoice]) -> RecurringInvoice:
        """The contract's recurring invoice that bills at ``frequency`` (``header`` itself when
        it does, or when no frequency is asked); made when the contract has none."""
        if frequency is None or header.billing_frequency is None or _same(header.billing_frequency, frequency):
            return header
        key = frequency.casefold()
        if not siblings and header.contract_id is not None:
            for ri in await self.list_recurring_invoices(contract_id=header.contract_id, include_lines=False):
                if ri.contract_id == header.contract_id and ri.billing_frequency:
                    siblings.setdefault(ri.billing_frequency.casefold(), ri)
        if key not in siblings:
            siblings[key] = await self.create_recurring_invoice(
                client_id=int(header.client_id or 0), contract_id=int(header.contract_id or 0),
                contract_ref=header.contract_ref, billing_frequency=frequency, start_date=header.start_date,
                end_date=header.end_date)
        return siblings[key]

    # ---- lines ------------------------------------------------------------------------------
    def _req_add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                 items: list[RecurringItemFields], *,
                                 header_frequency: str | None = None) -> HaloRequest:
        rows = [wire.recurring_item_to_wire(item, self._codes, recurring_invoice_id=int(recurring_invoice_id),
                                            contract_id=int(contract_id)) for item in items]
        return HaloRequest("add recurring lines", "POST", "/RecurringInvoice/Lines", rows)

    async def add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                  items: list[RecurringItemFields], *,
                                  header_frequency: str | None = None) -> list[RecurringItem]:
        """Add lines; a line of another frequency than the recurring invoice's goes to the
        contract's recurring invoice of that frequency (see the module docstring).

        ``header_frequency``: the recurring invoice's frequency when the caller knows it (a
        plan that made the header or read it); lines of that frequency are then sent without
        reading the header first."""
        if not items:
            return []
        groups: dict[int, list[RecurringItemFields]] = {}
        frequencies: dict[int, str | None] = {}
        known = header_frequency is not None and all(
            item.billing_frequency is None or _same(item.billing_frequency, header_frequency) for item in items)
        if known:
            groups[int(recurring_invoice_id)] = list(items)
            frequencies[int(recurring_invoice_id)] = header_frequency
        elif any(item.billing_frequency for item in items):
            header = await self.get_recurring_invoice(recurring_invoice_id)
            siblings: dict[str, RecurringInvoice] = {}
            for item in items:
                target = await self._header_for(header, item.billing_frequency, siblings)
                groups.setdefault(target.id, []).append(item)
                frequencies[target.id] = target.billing_frequency
        else:
            groups[int(recurring_invoice_id)] = list(items)
        saved: list[RecurringItem] = []
        for header_id, group in groups.items():
            lines = await self._post_lines(header_id, contract_id, group)
            frequency = frequencies.get(header_id)
            saved += [line if line.billing_frequency or frequency is None
                      else line.model_copy(update={"billing_frequency": frequency}) for line in lines]
        return saved

    async def _post_lines(self, header_id: int, contract_id: int,
                          items: list[RecurringItemFields]) -> list[RecurringItem]:
        request = self._req_add_recurring_lines(header_id, contract_id, items)
        new_rows, kept = request.body, await self._lines_kept(header_id)
        if kept:  # a tenant whose line post replaces the header's lines: send them along, unchanged
            request = HaloRequest(request.operation, request.method, request.path,
                                  [{"id": line_id, "ihid": int(header_id)} for line_id in kept] + new_rows)
        body = await self._write(request)
        rows = [r for r in _saved_lines(body, new_rows) if r.get("id") not in kept]
        if rows:
            return [wire.recurring_item_from_wire(r, self._codes, recurring_invoice_id=header_id,
                                                  contract_id=int(contract_id)) for r in rows]
        # 200 without the lines: confirm by reading the recurring invoice back
        back = await self.get_recurring_invoice(header_id)
        wanted = [(item.description or "").casefold() for item in items]
        found = [line for line in back.lines if (line.description or "").casefold() in wanted]
        found = sorted(found, key=lambda line: line.id or 0)[-len(items):]
        if len(found) < len(items):
            raise self._error(HaloError, f"Halo accepted the lines but recurring invoice {header_id} shows "
                              f"{len(found)} of the {len(items)} lines sent", status=None,
                              operation=request.operation)
        return found

    async def _lines_kept(self, header_id: int) -> list[int]:
        """The ids of the header's lines a replacing line post must carry (none on a tenant
        whose post adds, ``HALO_LINES_POST=add``; one read of the header otherwise)."""
        if self._settings.lines_post != "replace":
            return []
        header = await self.get_recurring_invoice(header_id)
        return [line.id for line in header.lines if line.id is not None]

    def _req_update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                   fields: RecurringItemFields) -> HaloRequest:
        row = wire.recurring_item_to_wire(fields, self._codes, line_id=int(line_id),
                                          recurring_invoice_id=int(recurring_invoice_id))
        return HaloRequest("update recurring line", "POST", "/RecurringInvoice/updatelines", [row])

    async def update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                    fields: RecurringItemFields) -> RecurringItem:
        """Change a line; a new billing frequency moves it to the contract's recurring invoice
        of that frequency (its ``ihid``)."""
        header_id = int(recurring_invoice_id)
        if fields.billing_frequency:
            header = await self.get_recurring_invoice(header_id)
            header_id = (await self._header_for(header, fields.billing_frequency, {})).id
        request = self._req_update_recurring_line(line_id, header_id, fields)
        body = await self._write(request)
        rows = extract_rows(body, "lines")
        match = next((r for r in rows if r.get("id") == int(line_id)), rows[0] if rows else None)
        if match is not None:
            return wire.recurring_item_from_wire(match, self._codes, recurring_invoice_id=header_id)
        # 200 without the line: confirm by reading the recurring invoice back
        back = await self.get_recurring_invoice(header_id)
        line = next((item for item in back.lines if item.id == int(line_id)), None)
        if line is None:
            raise self._error(HaloError, f"Halo accepted the change but line {line_id} is not on recurring "
                              f"invoice {header_id}", status=None, operation=request.operation)
        return line


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()


def _next_creation(start: date, today: date, step: int) -> date:
    """The first period boundary (every ``step`` months from ``start``) on or after ``today``;
    ``start`` itself while it is ahead. Halo raises from there, never back-billing the
    periods gone by."""
    if start >= today:
        return start
    months = (today.year - start.year) * 12 + (today.month - start.month)
    periods = months // step
    candidate = add_months(start, periods * step)
    while candidate < today:
        periods += 1
        candidate = add_months(start, periods * step)
    return candidate


def _saved_lines(body: Any, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines saved by ``/RecurringInvoice/Lines``: an array, one line, or a header with lines."""
    if isinstance(body, Mapping) and "id" in body and isinstance(body.get("lines"), list) \
            and "item_shortdescription" not in body:
        rows = [r for r in body["lines"] if isinstance(r, Mapping)]
        wanted = [s.get("item_shortdescription") for s in sent]
        matching = [r for r in rows if r.get("item_shortdescription") in wanted]
        return matching[-len(sent):] if len(matching) >= len(sent) else matching
    return extract_rows(body, "lines")
