"""Streamable HTTP serving: bearer tokens, sign-in (OAuth resource server), Host/Origin allow-lists,
/health, stateless mode."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from halo_contracts import __version__
from halo_contracts.access import TokenStore, load_tokens
from halo_contracts.config import ConfigError, Settings
from halo_contracts.http_guards import ExactHostOrigin, SessionLimits, host_rules, origin_rules
from halo_contracts.oauth import SCOPES, SignIn, sign_in

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
                   stateless: bool = False, tokens: TokenStore | None = None,
                   idp_transport: httpx2.AsyncBaseTransport | None = None) -> Any:
    """The ASGI app: MCP at ``path`` behind bearer auth (static tokens and/or sign-in), plus
    ``/health``. ``idp_transport`` replaces the network to the identity provider (tests)."""
    from halo_contracts.server import build_server

    tokens = tokens if tokens is not None else load_tokens(settings)
    signin = sign_in(settings, tokens, transport=idp_transport)
    if len(tokens) == 0 and signin is None:
        raise ConfigError(
            "HTTP serving needs at least one bearer token or sign-in. Set HALO_MCP_TOKENS (comma separated; "
            "prefix 'readonly:' for read-only tokens) or HALO_MCP_TOKEN_FILE. Example: "
            "HALO_MCP_TOKENS=$(python -c \"import secrets; print(secrets.token_urlsafe(32))\"). "
            "Or sign people in with your identity provider: HALO_OAUTH_ISSUER and HALO_PUBLIC_URL."
        )
    if signin is not None and urlsplit(signin.resource_url).path.rstrip("/") != path.rstrip("/"):
        log.warning("HALO_PUBLIC_URL %s does not end in the endpoint path %s: fine behind a proxy that "
                    "rewrites paths, otherwise clients will not find the server.", signin.resource_url, path)
    server = build_server(settings, transport, journal_path=journal_path, tokens=tokens,
                          auth=signin.auth if signin else None, token_verifier=signin.verifier if signin else None)

    @server.custom_route("/health", methods=["GET"])
    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "read_only": settings.read_only})

    security = transport_security(settings)
    if security is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Serving on %s without HALO_ALLOWED_HOSTS: requests whose Host is not loopback "
                    "will be refused (421). Set HALO_ALLOWED_HOSTS to the names clients use.", host)
        security = TransportSecuritySettings(allowed_hosts=LOOPBACK_HOSTS, allowed_origins=LOOPBACK_ORIGINS)
    app = server.streamable_http_app(streamable_http_path=path, stateless_http=stateless,
                                     transport_security=security, host=host,
                                     session_idle_timeout=settings.mcp_session_idle_seconds, max_sessions=None)
    add_guards(app, settings, security, path=path, stateless=stateless,
               public=metadata_paths(signin.resource_url) if signin else ())
    if signin is not None:
        publish_resource_metadata(app, signin)
        return app  # the SDK's bearer middleware checks every /mcp request (static tokens first)
    return BearerAuthMiddleware(app, tokens)


def add_guards(app: Any, settings: Settings, security: TransportSecuritySettings | None, *, path: str,
               stateless: bool, public: tuple[str, ...] = ()) -> None:
    """Exact Host/Origin checks in front of everything but /health, and (stateful mode) a bound
    on each token's open sessions, innermost so they see only requests that reached the app."""
    hosts = security.allowed_hosts if security else LOOPBACK_HOSTS
    origins = security.allowed_origins if security else LOOPBACK_ORIGINS
    try:
        host_rules(hosts), origin_rules(origins)  # the middleware is built at the first request: check now
    except ValueError as exc:
        raise ConfigError(f"HALO_ALLOWED_HOSTS / HALO_ALLOWED_ORIGINS: {exc}. Example: "
                          "HALO_ALLOWED_HOSTS=mcp.example.com,mcp.example.com:* "
                          "HALO_ALLOWED_ORIGINS=https://mcp.example.com") from None
    app.user_middleware.insert(0, Middleware(ExactHostOrigin, allowed_hosts=hosts, allowed_origins=origins,
                                             exempt=PUBLIC_PATHS | set(public)))
    if not stateless:
        app.user_middleware.append(Middleware(SessionLimits, max_per_token=settings.mcp_max_sessions_per_token,
                                              idle_seconds=settings.mcp_session_idle_seconds, path=path))


BARE_METADATA_PATH = "/.well-known/oauth-protected-resource"


def metadata_paths(resource_url: str) -> tuple[str, ...]:
    """Where the RFC 9728 document is served: the path-suffixed URL and the bare one. They are
    public (a browser-based client fetches them cross-origin), so the Origin check skips them."""
    suffixed = urlsplit(str(build_resource_metadata_url(AnyHttpUrl(resource_url)))).path
    return tuple(dict.fromkeys([suffixed, BARE_METADATA_PATH]))


def publish_resource_metadata(app: Any, signin: SignIn) -> None:
    """RFC 9728 metadata at the path-suffixed URL the SDK's 401s point at and at the bare
    ``/.well-known/oauth-protected-resource``, listing both scopes (the SDK would list only the
    scope every request needs)."""
    routes = create_protected_resource_routes(resource_url=AnyHttpUrl(signin.resource_url),
                                              authorization_servers=[signin.auth.issuer_url],
                                              scopes_supported=list(SCOPES),
                                              resource_name="HaloPSA contracts")
    if all(r.path != BARE_METADATA_PATH for r in routes):
        routes.append(Route(BARE_METADATA_PATH, endpoint=routes[0].endpoint, methods=["GET", "OPTIONS"]))
    app.router.routes[0:0] = routes  # ahead of the SDK's own copy


def serve_http(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
               journal_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
               path: str = "/mcp", stateless: bool = False) -> int:
    import uvicorn

    app = build_http_app(settings, transport=transport, journal_path=journal_path, host=host, path=path,
                         stateless=stateless)
    signin = " or sign-in" if settings.oauth_issuer else ""
    log.info("Serving MCP over HTTP at http://%s:%d%s (bearer token%s required; /health is open)", host, port, path,
             signin)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
