"""HaloClient: the async Halo API client (the only code, with ``wire.py``, that knows Halo).

INTERFACE FIRST: the method names, arguments and return types below are the contract
every tool codes against. Reads return domain models (``halo_contracts.domain.models``);
writes take the friendly ``*Fields`` drafts (``halo_contracts.domain.drafts``) and send only
the fields that were set. Errors are ``halo_contracts.halo.errors`` exceptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx2

from halo_contracts.config import CodeMaps, Settings
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.domain.models import (
    Client,
    Contract,
    Invoice,
    Licence,
    LookupValue,
    PrepayEntry,
    RecurringInvoice,
    RecurringItem,
    Sla,
    Ticket,
    TimeEntry,
)

# Called after every Halo request: (method, path, status or None when no answer).
RequestHook = Callable[[str, str, int | None], Awaitable[None] | None]
# Long sweeps call this after each page: (pages done, total pages or None).
PageCallback = Callable[[int, int | None], Awaitable[None]]


@dataclass
class ContractQuery:
    """Server-side filters Halo has for ``GET /ClientContract`` (others are client-side)."""

    client_id: int | None = None
    search: str | None = None
    include_inactive: bool = False
    exclude_renewed: bool = False


class HaloClient:
    """Async client over one ``httpx2.AsyncClient``.

    ``transport`` may be injected (tests: the sandbox in-process, or MockTransport).
    One rolling-window request budget (``settings.rate_limit``) is shared by every request
    this client sends, token requests included.
    """

    def __init__(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
                 on_request: RequestHook | None = None) -> None:
        raise NotImplementedError

    @property
    def codes(self) -> CodeMaps: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> HaloClient: ...

    async def __aexit__(self, *exc: object) -> None: ...

    # ---- clients, SLAs, lookups ----------------------------------------------------------
    async def list_clients(self, *, search: str | None = None, include_inactive: bool = False,
                           on_page: PageCallback | None = None) -> list[Client]: ...

    async def get_client(self, client_id: int) -> Client: ...

    async def list_slas(self) -> list[Sla]: ...

    async def get_lookup(self, lookup_id: int) -> list[LookupValue]: ...

    # ---- contracts -------------------------------------------------------------------------
    async def list_contracts(self, query: ContractQuery | None = None, *,
                             on_page: PageCallback | None = None) -> list[Contract]:
        """Every contract matching the server-side filters (all pages). List rows: no prepay."""

    async def get_contract(self, contract_id: int, *, details: bool = True) -> Contract:
        """One contract; with details the prepay totals, ledger and periods are filled."""

    async def create_contract(self, fields: ContractFields) -> Contract: ...

    async def update_contract(self, contract_id: int, fields: ContractFields) -> Contract:
        """Partial update: sends ``id`` plus exactly ``fields.given()``."""

    # ---- recurring invoices and their lines ----------------------------------------------
    async def list_recurring_invoices(self, *, contract_id: int | None = None, client_id: int | None = None,
                                      include_lines: bool = True,
                                      on_page: PageCallback | None = None) -> list[RecurringInvoice]: ...

    async def get_recurring_invoice(self, recurring_invoice_id: int) -> RecurringInvoice: ...

    async def create_recurring_invoice(self, *, client_id: int, contract_id: int,
                                       contract_ref: str | None = None) -> RecurringInvoice: ...

    async def add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                  items: list[RecurringItemFields]) -> list[RecurringItem]: ...

    async def update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                    fields: RecurringItemFields) -> RecurringItem: ...

    # ---- invoices, time, tickets, prepay ledger -------------------------------------------
    async def list_invoices(self, *, client_id: int | None = None, contract_id: int | None = None,
                            start: date | None = None, end: date | None = None,
                            on_page: PageCallback | None = None) -> list[Invoice]:
        """Invoices with lines; ``start``/``end`` filter ``invoice_date`` (inclusive) after
        the paged read, since Halo's list has no date filter."""

    async def list_time_entries(self, *, start: date, end: date, ticket_id: int | None = None,
                                on_page: PageCallback | None = None) -> list[TimeEntry]:
        """Ticket actions carrying time between ``start`` and ``end`` (inclusive)."""

    async def list_tickets(self, *, contract_id: int | None = None, client_id: int | None = None,
                           start: date | None = None, end: date | None = None,
                           on_page: PageCallback | None = None) -> list[Ticket]: ...

    async def list_prepay_entries(self, *, client_id: int | None = None, contract_id: int | None = None,
                                  on_page: PageCallback | None = None) -> list[PrepayEntry]: ...

    # ---- software licences ----------------------------------------------------------------
    async def list_licences(self, *, client_id: int | None = None,
                            on_page: PageCallback | None = None) -> list[Licence]: ...

    async def create_licence(self, fields: LicenceFields) -> Licence: ...

    async def update_licence(self, licence_id: int, fields: LicenceFields) -> Licence: ...

    async def delete_licence(self, licence_id: int) -> None: ...

    # ---- raw preview (for plans) ----------------------------------------------------------
    def preview_request(self, operation: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The Halo request a write method would send, without sending it:
        ``{"method": "POST", "path": "/api/ClientContract", "body": [...]}``.
        ``operation`` is the write method's name (e.g. ``"create_contract"``)."""
        raise NotImplementedError
