"""Who may do what: HTTP bearer tokens (full or read-only) and the read-only guard.

Tokens come from ``HALO_MCP_TOKENS`` (comma separated; prefix ``readonly:`` for a
read-only token) and/or ``HALO_MCP_TOKEN_FILE`` (one token per line, same prefix, ``#``
comments). They are compared in constant time. The caller's token is never passed on to
Halo: the server talks to Halo with its own credentials.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from halo_contracts.config import ConfigError, Settings

READONLY_PREFIX = "readonly:"
# OAuth scopes (sign-in, see oauth.py): read tools need READ_SCOPE; writes and apply_plan WRITE_SCOPE.
READ_SCOPE = "halo.read"
WRITE_SCOPE = "halo.write"


@dataclass(frozen=True)
class TokenInfo:
    label: str  # "token 1", never the token itself
    read_only: bool


@dataclass(frozen=True)
class Principal:
    """Who is calling: what plans are owned by. ``id`` is stable and never a credential
    (``token:<hash>`` for a bearer token, ``local`` for stdio and in-memory callers; a
    sign-in can later use the person's subject); ``label`` is for people ("token 2")."""

    id: str
    label: str
    read_only: bool = False


LOCAL = Principal(id="local", label="local")
# A caller over HTTP whose token could not be identified owns (and sees) nothing.
NOBODY = Principal(id="unknown", label="unknown caller", read_only=True)


def token_principal(token: str, label: str, *, read_only: bool = False) -> Principal:
    """The principal of a bearer token: a one-way hash of it (16 hex digits)."""
    digest = hashlib.sha256(b"halo-plan-owner:" + token.encode()).hexdigest()[:16]
    return Principal(id=f"token:{digest}", label=label, read_only=read_only)


class TokenStore:
    def __init__(self, tokens: dict[str, TokenInfo]):
        self._tokens = tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def check(self, presented: str | None) -> TokenInfo | None:
        """The token's info when it is one of ours; constant-time over every token."""
        if not presented:
            return None
        found: TokenInfo | None = None
        given = presented.encode()
        for token, info in self._tokens.items():
            if hmac.compare_digest(token.encode(), given):
                found = info
        return found

    def from_authorization(self, header: str | None) -> TokenInfo | None:
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.check(value.strip())

    def principal(self, header: str | None) -> Principal:
        """The caller of a request whose Authorization header is ``header``."""
        info = self.from_authorization(header)
        if info is None or not header:
            return NOBODY
        return token_principal(header.partition(" ")[2].strip(), info.label, read_only=info.read_only)


def _parse(entries: list[str], where: str) -> dict[str, TokenInfo]:
    tokens: dict[str, TokenInfo] = {}
    for entry in entries:
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        read_only = entry.lower().startswith(READONLY_PREFIX)
        token = entry[len(READONLY_PREFIX):].strip() if read_only else entry
        if len(token) < 16:
            raise ConfigError(f"{where}: a token is shorter than 16 characters; use long random tokens "
                              "(e.g. `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`).")
        tokens[token] = TokenInfo(label=f"token {len(tokens) + 1}", read_only=read_only)
    return tokens


def load_tokens(settings: Settings) -> TokenStore:
    tokens: dict[str, TokenInfo] = {}
    if settings.mcp_tokens:
        tokens.update(_parse(settings.mcp_tokens.get_secret_value().split(","), "HALO_MCP_TOKENS"))
    if settings.mcp_token_file:
        path = settings.mcp_token_file.expanduser()
        if not path.is_file():
            raise ConfigError(f"HALO_MCP_TOKEN_FILE: no file at '{path}'. Example: "
                              "HALO_MCP_TOKEN_FILE=/etc/halopsa-contracts-mcp/tokens")
        tokens.update(_parse(path.read_text(encoding="utf-8").splitlines(), "HALO_MCP_TOKEN_FILE"))
    return TokenStore(tokens)


def signed_in_token(request: Any) -> Any:
    """The SDK's verified ``AccessToken`` of an HTTP request when sign-in is on, else None."""
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, dict) else None
    return getattr(user, "access_token", None)


def signed_in_principal(access: Any) -> Principal:
    """The principal of a verified access token (sign-in): the person's ``sub`` when the token
    names one, else (a static token checked by the sign-in verifier) the token's hash, as
    without sign-in, so a plan keeps its owner when sign-in is turned on."""
    from halo_contracts.oauth import person_of

    read_only = WRITE_SCOPE not in access.scopes
    if access.subject:
        person = person_of(access)
        return Principal(id=f"sub:{person.id}", label=person.label, read_only=read_only)
    return token_principal(access.token, access.client_id or "token", read_only=read_only)


def caller_principal(headers: Any, tokens: TokenStore | None, request: Any = None) -> Principal:
    """Who is calling: the signed-in person (sign-in on), else over HTTP (``tokens`` given and
    the request has headers) the bearer token's principal; stdio and in-memory callers are the
    one local principal."""
    access = signed_in_token(request)
    if access is not None:
        return signed_in_principal(access)
    if tokens is None or headers is None:
        return LOCAL
    return tokens.principal(headers.get("authorization"))


def caller_is_read_only(headers: Any, tokens: TokenStore | None, request: Any = None) -> bool:
    """True when the request carries a read-only bearer token, or (sign-in) a verified access
    token without the write scope."""
    access = signed_in_token(request)
    if access is not None:
        return WRITE_SCOPE not in access.scopes
    if tokens is None or headers is None:
        return False
    info = tokens.from_authorization(headers.get("authorization"))
    return bool(info and info.read_only)
