"""OAuth2 client-credentials tokens for Halo (docs/halo-api.md §1).

``TokenCache`` keeps one bearer token and fetches a new one shortly before ``expires_in``
runs out (60 s early, or 10 % of the lifetime for short-lived tokens). Fetching itself is
the client's job (it goes through the same request budget as everything else); this module
only decides *when*, builds the form and reads the answer. Nothing here ever logs or
formats a token or the client secret.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from halo_contracts.config import Settings

__all__ = ["DEFAULT_LIFETIME", "Token", "TokenCache", "refresh_skew", "token_form"]

DEFAULT_LIFETIME = 3600.0  # when Halo's answer has no usable expires_in


def refresh_skew(lifetime: float) -> float:
    """How long before expiry a token is replaced: 60 s, or 10 % for short lifetimes."""
    return 60.0 if lifetime >= 600 else max(0.0, lifetime * 0.1)


@dataclass
class Token:
    value: str = field(repr=False)
    lifetime: float
    fetched_at: float
    serial: int  # 1 for the first token of a cache, 2 for the next ...

    @property
    def refresh_at(self) -> float:
        return self.fetched_at + self.lifetime - refresh_skew(self.lifetime)

    def __repr__(self) -> str:  # never show the token itself
        return f"Token(serial={self.serial}, lifetime={self.lifetime:g})"


def token_form(settings: Settings) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` fields of the token request."""
    secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
    return {
        "grant_type": "client_credentials",
        "client_id": settings.client_id or "",
        "client_secret": secret,
        "scope": settings.scope or "all",
    }


def read_token_answer(body: Any) -> tuple[str, float] | None:
    """``(access_token, expires_in)`` from the token server's JSON, or None if unusable."""
    if not isinstance(body, dict):
        return None
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        return None
    lifetime = body.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME
    except (TypeError, ValueError):
        seconds = DEFAULT_LIFETIME
    if seconds <= 0:
        seconds = DEFAULT_LIFETIME
    return value, seconds


class TokenCache:
    """One cached token; concurrent callers share a single fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: Token | None = None
        self._lock: anyio.Lock | None = None
        self._serial = 0
        self.fetches = 0  # how many tokens were fetched (diagnostics, tests)

    @property
    def current(self) -> Token | None:
        return self._token

    def known_values(self) -> list[str]:
        """Token strings to scrub from anything shown (current token only is kept)."""
        return [self._token.value] if self._token else []

    async def get(self) -> tuple[Token, bool]:
        """A valid token and whether it was fetched by this very call."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token, False
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token, False
            value, lifetime = await self._fetch()
            self._serial += 1
            self.fetches += 1
            self._token = Token(value=value, lifetime=lifetime, fetched_at=self._clock(), serial=self._serial)
            return self._token, True

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` (after a 401), unless another caller already replaced it."""
        if self._token is not None and self._token.serial == token.serial:
            self._token = None
