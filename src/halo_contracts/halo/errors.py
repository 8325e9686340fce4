"""Typed errors of the Halo boundary. Messages carry Halo's own words, never a secret."""

from __future__ import annotations


class HaloError(Exception):
    """Base class: something went wrong talking to Halo."""

    def __init__(self, message: str, *, status: int | None = None, operation: str | None = None,
                 details: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.operation = operation
        self.details = details or {}

    def __str__(self) -> str:
        parts = []
        if self.operation:
            parts.append(self.operation)
        if self.status is not None:
            parts.append(f"Halo answered {self.status}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class HaloAuthError(HaloError):
    """The credentials were refused by Halo's token server (wrong id or secret)."""


class HaloPermissionError(HaloError):
    """A fresh token was refused (401 after refresh, or 403): the API application or the
    agent it logs in as lacks a permission for this endpoint."""


class HaloNotFound(HaloError):
    """404: the record does not exist (or the route is unknown)."""


class HaloValidationError(HaloError):
    """400: Halo rejected the request; ``details`` is its ModelState ``{"[0].field": [msg]}``."""


class HaloRateLimited(HaloError):
    """429 persisted through every back-off attempt."""


class HaloServerError(HaloError):
    """5xx persisted through the retries a read gets."""


class HaloUnavailable(HaloError):
    """Halo could not be reached (DNS, connection refused, timeout) on a read."""


class HaloUnknownOutcome(HaloError):
    """A write was sent but its answer was lost (timeout, dropped connection, 5xx after
    sending). Whether Halo stored it is unknown: the journal settles it by looking the
    object up by its natural key, never by re-sending blindly."""


class HaloIncompleteRead(HaloError):
    """A paged list could not be read completely, so nothing may be decided from it: an
    endpoint that ignores paging returned more rows than the guard allows, or the list moved
    while it was read (its row count changed between pages, or the distinct rows read did
    not match the count) and still disagreed when read again from page 1. Retrying later
    is safe."""


class HaloWireError(HaloValidationError):
    """A value could not be put on the wire (e.g. a contract type name the tenant's code map
    does not know). Raised before anything is sent."""
