"""HaloClient: the async Halo API client (the only code, with ``wire.py``, that knows Halo).

INTERFACE FIRST: the method names, arguments and return types are the contract every tool
codes against. Reads return domain models (``halo_contracts.domain.models``); writes take the
friendly ``*Fields`` drafts (``halo_contracts.domain.drafts``) and send only the fields that
were set. Errors are ``halo_contracts.halo.errors`` exceptions.

The client is the transport (``transport.py``: auth, pacing, retries, errors, scrubbing) plus
one endpoint module per resource, each beside its wire mapping in ``wire.py``:

========================  ==============================================
``contracts.py``          ``/ClientContract``
``recurring.py``          ``/RecurringInvoice``, ``/Lines``, ``/updatelines``
``invoices.py``           ``/Invoice``
``tickets.py``            ``/Tickets``, ``/Actions``
``prepay.py``             ``/ClientPrepay``
``licences.py``           ``/SoftwareLicence``
``clients.py``            ``/Client``, ``/SLA``, ``/Lookup``
========================  ==============================================
"""

from __future__ import annotations

from halo_contracts.halo.clients import ClientEndpoints
from halo_contracts.halo.contracts import ContractEndpoints, ContractQuery
from halo_contracts.halo.invoices import InvoiceEndpoints
from halo_contracts.halo.licences import LicenceEndpoints
from halo_contracts.halo.prepay import PrepayEndpoints
from halo_contracts.halo.recurring import RecurringEndpoints
from halo_contracts.halo.tickets import TicketEndpoints
from halo_contracts.halo.transport import ClientStats, HaloRequest, PageCallback, RequestHook, halo_message

__all__ = ["ClientStats", "ContractQuery", "HaloClient", "HaloRequest", "PageCallback", "RequestHook",
           "halo_message"]


class HaloClient(ContractEndpoints, RecurringEndpoints, InvoiceEndpoints, TicketEndpoints, PrepayEndpoints,
                 LicenceEndpoints, ClientEndpoints):
    """Async client over one ``httpx2.AsyncClient``: every endpoint module on one transport.

    See :class:`~halo_contracts.halo.transport.HaloTransport` for the constructor's options
    (injected transport, budget, back-off, paging, timeout).
    """
