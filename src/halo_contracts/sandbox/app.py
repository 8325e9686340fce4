"""The sandbox ASGI app: an emulator of the Halo API endpoints the product uses.

Written from Halo's documentation and OpenAPI slice (see docs/sandbox.md for the choices
made where Halo does not say). Nothing here imports the rest of the package.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api
from .book import Book, generate
from .quirks import Quirks
from .spec import Spec, load_spec
from .store import Store

DEMO_CLIENT_ID = "sandbox-client"
DEMO_CLIENT_SECRET = "sandbox-secret"


class ConnectionDropped(Exception):
    """Raised after a write was stored to cut the connection before the answer is sent."""


@dataclass
class SandboxConfig:
    db_path: str = ":memory:"
    seed: int = 7
    clients: int = 25
    contracts: int = 120
    today: date | None = None
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    token_lifetime: int = 3600
    rate_limit: int = 300
    rate_window: float = 300.0
    strict: bool = False
    error_rate: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    drop_after_write: float = 0.0
    demo_data: bool = True
    quirks: Quirks = field(default_factory=Quirks)  # answers to what no document settles


@dataclass
class Faults:
    """Live fault settings (mutable; also settable over ``POST /_sandbox/faults``)."""

    error_rate: float = 0.0  # share of /api calls answered with a 5xx (nothing stored)
    latency: tuple[float, float] = (0.0, 0.0)  # seconds, uniform between the two
    drop_after_write: float = 0.0  # probability a stored write's answer is lost
    drop_next_writes: int = 0  # the next N writes are stored, then their answer is lost
    rate_limit: int = 300  # requests per rolling window (/api and /auth)
    rate_window: float = 300.0  # seconds
    token_lifetime: int = 3600  # expires_in of tokens issued from now on

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency"] = list(self.latency)
        return out

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
            if key == "latency":
                lo, hi = (value, value) if isinstance(value, (int, float)) else tuple(value)
                value = (float(lo), float(hi))
            elif key in ("error_rate", "drop_after_write", "rate_window"):
                value = float(value)
            else:
                value = int(value)
            setattr(self, key, value)


@dataclass
class LogEntry:
    method: str
    path: str  # as sent, e.g. "/api/ClientContract"
    query: dict[str, str]
    status: int = 0
    body: Any = None  # parsed JSON body of the request, or None
    dropped: bool = False  # the write was stored but the answer was never delivered
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Every /api and /auth request the sandbox received (admin calls excluded)."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        prefix = path_prefix.lower() if path_prefix else None
        return sum(
            1
            for e in self.entries()
            if (method is None or e.method.upper() == method.upper())
            and (prefix is None or e.path.lower().startswith(prefix))
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries())

    def __getitem__(self, index: int) -> LogEntry:
        return self.entries()[index]


class Sandbox:
    """State behind one sandbox app: config, store, faults, tokens, request log, demo manifest."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config or SandboxConfig()
        self.today: date = config.today or date.today()
        self.store = Store(config.db_path)
        self.quirks: Quirks = config.quirks
        self.spec: Spec = load_spec(config.quirks.document)
        self.log = RequestLog()
        self.faults = Faults(
            error_rate=config.error_rate,
            latency=tuple(config.latency),  # type: ignore[arg-type]
            drop_after_write=config.drop_after_write,
            rate_limit=config.rate_limit,
            rate_window=config.rate_window,
            token_lifetime=config.token_lifetime,
        )
        self.rng = random.Random(config.seed)
        self.book: Book | None = None
        if config.demo_data and self.store.is_empty():
            self.book = generate(
                self.store, clients=config.clients, contracts=config.contracts, today=self.today, seed=config.seed,
                line_periods=config.quirks.document == "2024",
            )
        self._tokens: dict[str, float] = {}
        self._denied: list[str] = []
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def strict(self) -> bool:
        return self.config.strict

    # ------------------------------------------------------------------ auth
    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        lifetime = self.faults.token_lifetime
        with self._lock:
            self._tokens[token] = time.monotonic() + lifetime
        return token, lifetime

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and time.monotonic() < expiry

    def expire_tokens(self) -> None:
        """Make every issued token expired (the next /api call answers 401)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def deny(self, path_prefix: str) -> None:
        """Simulate a missing Halo permission: valid tokens get 401 on paths under the prefix.

        ``"/api/ClientContract"`` denies the list and the records; ``"/api/ClientContract/"``
        (trailing slash) only the records, like Halo's detail-endpoint permission quirk.
        """
        with self._lock:
            self._denied.append(path_prefix.lower())

    def allow(self, path_prefix: str | None = None) -> None:
        """Undo :meth:`deny` for one prefix, or for all when ``None``."""
        with self._lock:
            if path_prefix is None:
                self._denied.clear()
            else:
                self._denied = [d for d in self._denied if d != path_prefix.lower()]

    def denied(self, path: str) -> bool:
        low = path.lower().rstrip("/")
        with self._lock:
            prefixes = list(self._denied)
        for p in prefixes:
            if p.endswith("/"):
                if low.startswith(p):
                    return True
            elif low == p or low.startswith(p + "/"):
                return True
        return False

    # ------------------------------------------------------------------ rate limit
    def take_slot(self) -> bool:
        now = time.monotonic()
        with self._lock:
            window, limit = self.faults.rate_window, self.faults.rate_limit
            while self._hits and self._hits[0] <= now - window:
                self._hits.popleft()
            if limit > 0 and len(self._hits) >= limit:
                return False
            self._hits.append(now)
            return True

    def rate_limit_text(self) -> str:
        window = self.faults.rate_window
        minutes = window >= 60 and window % 60 == 0
        span = f"{int(window // 60)} minute" if minutes else f"{window:g} second"
        return f"Rate Limit Reached - {self.faults.rate_limit} Requests per rolling {span} window"

    def now(self) -> datetime:
        """Server clock for ``last_modified``: the sandbox's today at the current UTC time."""
        t = datetime.now(UTC).replace(tzinfo=None)
        return datetime.combine(self.today, t.time()).replace(microsecond=0)

    def reset_rate_limit(self) -> None:
        with self._lock:
            self._hits.clear()


# --------------------------------------------------------------------------- ASGI plumbing


class _DropGuard:
    """Turns ``ConnectionDropped`` into a connection cut mid-answer.

    The response is started (status line and a Content-Length it never fulfils) and the
    exception propagates: uvicorn closes the socket (the client sees a transport error, not
    a 500), and ``sandbox.transport`` turns it into ``httpx2.ReadError`` in-process.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except ConnectionDropped:
            if not started and scope["type"] == "http":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 201,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
            raise


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def _admin(sb: Sandbox, request: Request, low: str) -> Response:
    try:
        return await _admin_inner(sb, request, low)
    except (ValueError, TypeError, AttributeError) as exc:
        return _json({"error": str(exc)}, 400)


async def _admin_inner(sb: Sandbox, request: Request, low: str) -> Response:
    method = request.method
    if low == "/_sandbox/faults":
        if method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                sb.faults.update(body)
            except (ValueError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(sb.faults.to_json())
    if low == "/_sandbox/log" and method == "GET":
        entries = [e.to_json() for e in sb.log.entries()]
        return _json({"count": len(entries), "entries": entries})
    if low == "/_sandbox/log/clear" and method == "POST":
        sb.log.clear()
        return _json({"count": 0})
    if low == "/_sandbox/deny":
        if method == "POST":
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            prefix = body.get("path_prefix")
            if body.get("deny", True) and prefix:
                sb.deny(prefix)
            else:
                sb.allow(prefix)
        return _json({"denied": list(sb._denied)})
    if low == "/_sandbox/expire-tokens" and method == "POST":
        sb.expire_tokens()
        return _json({"expired": True})
    if low == "/_sandbox" and method == "GET":
        return _json(
            {
                "today": sb.today.isoformat(),
                "strict": sb.strict,
                "client_id": sb.config.client_id,
                "faults": sb.faults.to_json(),
                "endpoints": [
                    "/_sandbox/faults",
                    "/_sandbox/log",
                    "/_sandbox/log/clear",
                    "/_sandbox/deny",
                    "/_sandbox/expire-tokens",
                ],
            }
        )
    return PlainTextResponse("Not Found", status_code=404)


async def _token(sb: Sandbox, body: bytes) -> Response:
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if form.get("grant_type") != "client_credentials":
        return _json(
            {"error": "unsupported_grant_type", "error_description": "The specified 'grant_type' is not supported."},
            400,
        )
    if form.get("client_id") != sb.config.client_id or form.get("client_secret") != sb.config.client_secret:
        return _json(
            {"error": "invalid_client", "error_description": "The specified client credentials are invalid."}, 401
        )
    token, lifetime = sb.issue_token()
    return _json(
        {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": form.get("scope") or "all"}
    )


_UNAUTHORIZED = {"Message": "Authorization has been denied for this request."}


async def _handle(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    raw_path = request.url.path
    low = raw_path.lower().rstrip("/") or "/"
    if low == "/_sandbox" or low.startswith("/_sandbox/"):
        return await _admin(sb, request, low)
    is_api = low == "/api" or low.startswith("/api/")
    is_auth = low == "/auth" or low.startswith("/auth/")
    if not (is_api or is_auth):
        return PlainTextResponse("Not Found", status_code=404)
    body_bytes = await request.body()
    parsed: Any = None
    if is_api and body_bytes:
        try:
            parsed = json.loads(body_bytes)
        except ValueError:
            parsed = None
    entry = LogEntry(request.method, raw_path, dict(request.query_params), body=parsed)
    sb.log.append(entry)
    response, wrote = await _process(sb, request, low, is_api, body_bytes)
    entry.status = response.status_code
    if wrote and 200 <= response.status_code < 300:
        faults = sb.faults
        drop = False
        if faults.drop_next_writes > 0:
            faults.drop_next_writes -= 1
            drop = True
        elif faults.drop_after_write > 0 and sb.rng.random() < faults.drop_after_write:
            drop = True
        if drop:
            entry.dropped = True
            raise ConnectionDropped(f"{request.method} {raw_path}: stored, answer dropped")
    return response


async def _process(sb: Sandbox, request: Request, low: str, is_api: bool, body: bytes) -> tuple[Response, bool]:
    if not sb.take_slot():
        return PlainTextResponse(sb.rate_limit_text(), status_code=429), False
    lo, hi = sb.faults.latency
    if hi > 0 or lo > 0:
        await anyio.sleep(sb.rng.uniform(min(lo, hi), max(lo, hi)))
    if not is_api:
        if low == "/auth/token" and request.method == "POST":
            return await _token(sb, body), False
        return PlainTextResponse("Not Found", status_code=404), False
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not sb.token_valid(token.strip()):
        return JSONResponse(_UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"}), False
    if sb.denied(low):
        return JSONResponse(_UNAUTHORIZED, status_code=401), False
    if sb.faults.error_rate > 0 and sb.rng.random() < sb.faults.error_rate:
        status = sb.rng.choice([500, 502, 503])
        if status == 500:
            return _json({"ClassName": "System.Exception", "Message": "An error occurred (sandbox fault)."}, 500), False
        return PlainTextResponse("Service Unavailable" if status == 503 else "Bad Gateway", status_code=status), False
    return api.dispatch(sb, request.method, low, list(request.query_params.multi_items()), body)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """Build the sandbox ASGI app; ``app.state.sandbox`` is its :class:`Sandbox`."""
    sandbox = Sandbox(config)
    app = Starlette(
        routes=[Route("/{path:path}", _handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])],
        middleware=[Middleware(_DropGuard)],
    )
    app.state.sandbox = sandbox
    return app
