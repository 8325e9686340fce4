"""Embedded Halo API sandbox: an independent emulator of the Halo endpoints the product uses.

It imports nothing from the rest of ``halo_contracts`` (it only reads the OpenAPI slice shipped
as package data), so tests against it check Halo's wire format, not our own assumptions.
"""

from .app import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ConnectionDropped,
    Faults,
    LogEntry,
    RequestLog,
    Sandbox,
    SandboxConfig,
    create_app,
)
from .asgi_transport import SandboxTransport, transport
from .book import Book, Discrepancy, charges_export, generate
from .quirks import Quirks
from .store import Store

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "Book",
    "ConnectionDropped",
    "Discrepancy",
    "Faults",
    "LogEntry",
    "Quirks",
    "RequestLog",
    "Sandbox",
    "SandboxConfig",
    "SandboxTransport",
    "Store",
    "charges_export",
    "create_app",
    "generate",
    "transport",
]
