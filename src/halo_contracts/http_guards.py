"""ASGI guards of the HTTP endpoint: exact Host/Origin allow-lists and sessions per token.

Both are plain ASGI middleware (``Middleware(cls, ...)`` in the Starlette app), so they compose
with bearer tokens and sign-in whichever of them is in front.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

log = logging.getLogger("halo_contracts.http")

SESSION_HEADER = b"mcp-session-id"

# ---- Host and Origin ------------------------------------------------------------------------

_NAME = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?))*"
_HOST = re.compile(rf"^(?P<host>{_NAME}|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?$")
_HOST_PATTERN = re.compile(rf"^(?P<host>{_NAME}|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}|\*))?$")
_ORIGIN = re.compile(r"^(?P<scheme>https?)://(?P<rest>[^/?#@\s]+)$")


@dataclass(frozen=True)
class HostRule:
    host: str
    port: str | None  # None: no port; "*": any port (digits)

    def allows(self, host: str, port: str | None) -> bool:
        if host != self.host:
            return False
        if self.port == "*":
            return port is not None
        return port == self.port


def _split_host(value: str, pattern: re.Pattern[str] = _HOST) -> tuple[str, str | None] | None:
    m = pattern.match(value.strip().lower())
    return None if m is None else (m.group("host"), m.group("port"))


def host_rules(entries: Iterable[str]) -> list[HostRule]:
    """Parse ``name``, ``name:port`` or ``name:*`` entries (names case-insensitive)."""
    rules = []
    for entry in entries:
        parsed = _split_host(entry, _HOST_PATTERN)
        if parsed is None:
            raise ValueError(f"'{entry}' is not a host, host:port or host:*")
        rules.append(HostRule(*parsed))
    return rules


def origin_rules(entries: Iterable[str]) -> list[tuple[str, HostRule]]:
    """Parse ``scheme://name``, ``scheme://name:port`` or ``scheme://name:*`` entries."""
    rules = []
    for entry in entries:
        m = _ORIGIN.match(entry.strip().lower())
        parsed = _split_host(m.group("rest"), _HOST_PATTERN) if m else None
        if m is None or parsed is None:
            raise ValueError(f"'{entry}' is not an origin such as https://mcp.example.com or http://localhost:*")
        rules.append((m.group("scheme"), HostRule(*parsed)))
    return rules


def host_allowed(value: str | None, rules: list[HostRule]) -> bool:
    """Whether a Host header names exactly an allowed host (and port)."""
    parsed = _split_host(value) if value else None
    return parsed is not None and any(rule.allows(*parsed) for rule in rules)


def origin_allowed(value: str | None, rules: list[tuple[str, HostRule]]) -> bool:
    """Whether an Origin header is exactly an allowed origin; no Origin (not a browser) is allowed."""
    if value is None:
        return True
    m = _ORIGIN.match(value.strip().lower())
    parsed = _split_host(m.group("rest")) if m else None
    if m is None or parsed is None:
        return False
    return any(scheme == m.group("scheme") and rule.allows(*parsed) for scheme, rule in rules)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _json_error(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})


class ExactHostOrigin:
    """Refuse a request whose Host (421) or Origin (403) is not exactly on the allow-lists; a
    ``:*`` entry stands for any numeric port, nothing else (unlike a prefix match, which lets
    ``127.0.0.1:8000@evil.com`` or ``http://localhost:1.evil.com`` through)."""

    def __init__(self, app: Any, *, allowed_hosts: Iterable[str], allowed_origins: Iterable[str],
                 exempt: Iterable[str] = ("/health",)) -> None:
        self.app = app
        self.hosts = host_rules(allowed_hosts)
        self.origins = origin_rules(allowed_origins)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        host, origin = _header(scope, b"host"), _header(scope, b"origin")
        if not host_allowed(host, self.hosts):
            log.warning("Refused a request for Host %r (not in HALO_ALLOWED_HOSTS)", (host or "")[:100])
            await _json_error(send, 421, "Host not allowed: add the name clients use to HALO_ALLOWED_HOSTS "
                                         "(e.g. mcp.example.com or mcp.example.com:*).")
            return
        if not origin_allowed(origin, self.origins):
            log.warning("Refused a request from Origin %r (not in HALO_ALLOWED_ORIGINS)", (origin or "")[:100])
            await _json_error(send, 403, "Origin not allowed: add it to HALO_ALLOWED_ORIGINS "
                                         "(e.g. https://mcp.example.com).")
            return
        await self.app(scope, receive, send)


# ---- sessions per token ---------------------------------------------------------------------


@dataclass
class _Session:
    last_seen: float
    in_flight: int = 0


@dataclass
class _Principal:
    sessions: dict[str, _Session] = field(default_factory=dict)  # insertion order: oldest first
    opening: int = 0  # initialize requests under way


def principal_key(authorization: str | None) -> str | None:
    """Who a request is, as a hash of its Authorization header (never the token itself)."""
    if not authorization:
        return None
    return hashlib.sha256(authorization.strip().encode("utf-8", "replace")).hexdigest()[:32]


class SessionLimits:
    """At most ``max_per_token`` open sessions per bearer token. A token opening one more first
    closes its own oldest idle session (by a DELETE through the app, as a client would); when
    every one of its sessions is busy it gets 429. Other tokens are never affected.

    Sessions are seen on the answers that open them (``Mcp-Session-Id``), and forgotten on
    DELETE, on a 404 for their id, on eviction, and once idle past ``idle_seconds`` (the SDK
    closes them then too)."""

    def __init__(self, app: Any, *, max_per_token: int, idle_seconds: float, path: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.max_per_token = max_per_token
        self.idle_seconds = idle_seconds
        self.path = path.rstrip("/") or "/"
        self.clock = clock
        self.principals: dict[str, _Principal] = {}
        self._lock = anyio.Lock()

    def open_sessions(self, key: str) -> int:
        p = self.principals.get(key)
        return len(p.sessions) if p else 0

    def _prune(self, principal: _Principal) -> None:
        cutoff = self.clock() - self.idle_seconds
        for sid in [s for s, info in principal.sessions.items() if info.in_flight == 0 and info.last_seen < cutoff]:
            del principal.sessions[sid]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope.get("path", "").rstrip("/") or "/") != self.path:
            await self.app(scope, receive, send)
            return
        key = principal_key(_header(scope, b"authorization"))
        if key is None:
            await self.app(scope, receive, send)
            return
        session_id = _header(scope, SESSION_HEADER)
        if session_id is None and scope.get("method") == "POST":
            await self._open(key, scope, receive, send)
        elif session_id is not None:
            await self._use(key, session_id, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _make_room(self, key: str, scope: dict) -> bool:
        """Reserve a place for one more session of ``key``, evicting its oldest idle one if needed."""
        async with self._lock:
            principal = self.principals.setdefault(key, _Principal())
            self._prune(principal)
            if len(principal.sessions) + principal.opening < self.max_per_token:
                principal.opening += 1
                return True
            idle = [sid for sid, info in principal.sessions.items() if info.in_flight == 0]
            if not idle:
                return False
            victim = idle[0]
            del principal.sessions[victim]
            principal.opening += 1
        await self._close(victim, scope)
        return True

    async def _close(self, session_id: str, scope: dict) -> None:
        """End a session the way a client does: DELETE with its id and the same credentials."""
        keep = (b"host", b"authorization", b"mcp-protocol-version")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() in keep]
        headers.append((SESSION_HEADER, session_id.encode("latin-1")))
        delete = {**scope, "method": "DELETE", "headers": headers, "query_string": b""}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(_message: dict) -> None:
            return None

        try:
            await self.app(delete, receive, discard)
        except Exception:  # the session may be gone already; it is forgotten either way
            log.debug("closing an evicted session failed", exc_info=True)

    async def _open(self, key: str, scope: dict, receive: Any, send: Any) -> None:
        if not await self._make_room(key, scope):
            log.warning("Refused a new session: token %s… already has %d busy sessions", key[:8],
                        self.max_per_token)
            await _json_error(send, 429, f"Too many open sessions for this token ({self.max_per_token}, all busy). "
                                         "Close one (DELETE with its Mcp-Session-Id) or retry later.",
                              [(b"retry-after", b"5")])
            return
        opened: list[str] = []

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start" and message.get("status", 500) < 400:
                for k, v in message.get("headers", []):
                    if k.lower() == SESSION_HEADER:
                        opened.append(v.decode("latin-1"))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            async with self._lock:
                principal = self.principals.setdefault(key, _Principal())
                principal.opening -= 1
                for sid in opened:
                    principal.sessions[sid] = _Session(last_seen=self.clock())
                if not principal.sessions and not principal.opening:
                    del self.principals[key]  # a refused credential leaves nothing behind

    async def _use(self, key: str, session_id: str, scope: dict, receive: Any, send: Any) -> None:
        principal = self.principals.get(key)
        info = principal.sessions.get(session_id) if principal else None
        if info is not None:
            info.in_flight += 1
            info.last_seen = self.clock()
        status: list[int] = []

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if info is not None:
                info.in_flight -= 1
                info.last_seen = self.clock()
                ended = scope.get("method") == "DELETE" and status and status[0] < 400
                if (ended or (status and status[0] == 404)) and principal is not None:
                    principal.sessions.pop(session_id, None)
