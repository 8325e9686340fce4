"""Streamable HTTP serving: bearer tokens, Host/Origin allow-lists, /health, stateless mode."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx2
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse

from halo_contracts import __version__
from halo_contracts.access import TokenStore, load_tokens
from halo_contracts.config import ConfigError, Settings

log = logging.getLogger("halo_contracts.http")

PUBLIC_PATHS = frozenset({"/health"})


class BearerAuthMiddleware:
    """Every HTTP request except /health needs one of our bearer tokens (401 otherwise)."""

    def __init__(self, app: Any, tokens: TokenStore):
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.tokens.from_authorization(headers.get("authorization")) is None:
            error = "invalid_token" if headers.get("authorization") else "invalid_request"
            body = json.dumps({"error": error,
                               "error_description": "A valid bearer token is required "
                                                    "(Authorization: Bearer <token>)."}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", f'Bearer realm="halopsa-contracts-mcp", error="{error}"'.encode()),
            ]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def transport_security(settings: Settings) -> TransportSecuritySettings | None:
    """Configured allow-lists, or None for the SDK's loopback defaults. A list left unset keeps
    the loopback defaults (an empty host list would refuse every request)."""
    if not settings.allowed_hosts and not settings.allowed_origins:
        return None
    return TransportSecuritySettings(allowed_hosts=list(settings.allowed_hosts or LOOPBACK_HOSTS),
                                     allowed_origins=list(settings.allowed_origins or LOOPBACK_ORIGINS))


def build_http_app(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
                   journal_path: str | Path | None = None, host: str = "127.0.0.1", path: str = "/mcp",
                   stateless: bool = False, tokens: TokenStore | None = None) -> Any:
    """The ASGI app: MCP at ``path`` behind bearer auth, plus ``/health``."""
    from halo_contracts.server import build_server

    tokens = tokens if tokens is not None else load_tokens(settings)
    if len(tokens) == 0:
        raise ConfigError(
            "HTTP serving needs at least one bearer token. Set HALO_MCP_TOKENS (comma separated; prefix "
            "'readonly:' for read-only tokens) or HALO_MCP_TOKEN_FILE. Example: "
            "HALO_MCP_TOKENS=$(python -c \"import secrets; print(secrets.token_urlsafe(32))\")"
        )
    server = build_server(settings, transport, journal_path=journal_path, tokens=tokens)

    @server.custom_route("/health", methods=["GET"])
    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "read_only": settings.read_only})

    security = transport_security(settings)
    if security is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Serving on %s without HALO_ALLOWED_HOSTS: requests whose Host is not loopback "
                    "will be refused (421). Set HALO_ALLOWED_HOSTS to the names clients use.", host)
        security = TransportSecuritySettings(allowed_hosts=LOOPBACK_HOSTS, allowed_origins=LOOPBACK_ORIGINS)
    app = server.streamable_http_app(streamable_http_path=path, stateless_http=stateless,
                                     transport_security=security, host=host)
    return BearerAuthMiddleware(app, tokens)


def serve_http(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
               journal_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
               path: str = "/mcp", stateless: bool = False) -> int:
    import uvicorn

    app = build_http_app(settings, transport=transport, journal_path=journal_path, host=host, path=path,
                         stateless=stateless)
    log.info("Serving MCP over HTTP at http://%s:%d%s (bearer token required; /health is open)", host, port, path)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
