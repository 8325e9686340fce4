"""Sign-in over HTTP: this server as an OAuth resource server (the MCP authorization spec).

With ``HALO_OAUTH_ISSUER`` and ``HALO_PUBLIC_URL`` set, the HTTP server accepts JWT access
tokens issued by the MSP's identity provider. Signatures are checked by PyJWT against the
issuer's JWKS (``HALO_OAUTH_JWKS_URL``, or the ``jwks_uri`` of the issuer's metadata); the
token must name the issuer, be unexpired, have this server's URL as its audience and carry
``halo.read`` (read tools) and/or ``halo.write`` (writes and ``apply_plan``; it implies read).
Static bearer tokens keep working next to it and are tried first.

The SDK serves the RFC 9728 metadata document and puts ``resource_metadata`` in its 401s;
this module only supplies the verifier and the settings. The caller's token is never passed
on to Halo.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from halo_contracts.access import READ_SCOPE, WRITE_SCOPE, TokenStore
from halo_contracts.config import ConfigError, Settings

log = logging.getLogger("halo_contracts.oauth")

SCOPES = [READ_SCOPE, WRITE_SCOPE]

# Asymmetric algorithms only: a JWKS publishes public keys; "none" and HMAC are never accepted.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
# Claims that name the person, in the order a label is chosen from them.
PERSON_CLAIMS = ("name", "preferred_username", "email")
FAILURE_BACKOFF_SECONDS = 5.0


class KeySetError(Exception):
    """The identity provider's metadata or key set could not be read."""


def token_scopes(claims: dict[str, Any]) -> set[str]:
    """Scopes of a JWT access token: ``scope`` (RFC 9068, space separated) or ``scp``
    (a list or a space separated string, as Entra ID and Okta send it)."""
    found: set[str] = set()
    for key in ("scope", "scp"):
        value = claims.get(key)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(str(v) for v in value)
    return found


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer publishes its metadata: OpenID Connect discovery, then RFC 8414."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return [f"{issuer.rstrip('/')}/.well-known/openid-configuration",
            f"{origin}/.well-known/oauth-authorization-server{path}"]


class JwksCache:
    """The issuer's public keys, fetched with httpx2 and kept for ``ttl`` seconds. An unknown
    ``kid`` refetches the set (key rotation), at most once per ``min_refresh`` seconds."""

    def __init__(self, issuer: str, jwks_url: str | None, *, transport: httpx2.AsyncBaseTransport | None = None,
                 timeout: float = 10.0, ttl: float = 300.0, min_refresh: float = 30.0):
        self.issuer = issuer
        self.jwks_url = jwks_url
        self._transport = transport
        self._timeout = timeout
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._fetched_at = -1e18
        self._failure: tuple[float, KeySetError] | None = None
        self._lock = anyio.Lock()

    async def _get_json(self, client: httpx2.AsyncClient, url: str) -> Any:
        try:
            response = await client.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise KeySetError(f"{url} did not answer ({exc.__class__.__name__})") from None
        if response.status_code != 200:
            raise KeySetError(f"{url} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise KeySetError(f"{url} did not answer JSON") from None

    async def _discover(self, client: httpx2.AsyncClient) -> str:
        problems = []
        for url in metadata_urls(self.issuer):
            try:
                meta = await self._get_json(client, url)
            except KeySetError as exc:
                problems.append(str(exc))
                continue
            if not isinstance(meta, dict) or meta.get("issuer") != self.issuer or not meta.get("jwks_uri"):
                problems.append(f"{url} does not describe issuer {self.issuer} with a jwks_uri")
                continue
            return str(meta["jwks_uri"])
        raise KeySetError("; ".join(problems) + ". Set HALO_OAUTH_JWKS_URL to the issuer's key set URL.")

    async def _refresh(self) -> None:
        async with httpx2.AsyncClient(transport=self._transport, timeout=self._timeout,
                                      follow_redirects=False) as client:
            url = self.jwks_url or await self._discover(client)
            data = await self._get_json(client, url)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeySetError(f"{url} is not a JWK set (no 'keys' list)")
        keys: dict[str | None, dict[str, Any]] = {}
        for entry in data["keys"]:
            if isinstance(entry, dict) and entry.get("use", "sig") == "sig" and entry.get("kty"):
                keys[entry.get("kid")] = entry
        self.jwks_url = url
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _refresh_or_recent_failure(self) -> None:
        """Refresh, but while the provider failed in the last few seconds repeat that failure
        instead of asking again (a burst of bad tokens must not hammer the provider)."""
        if self._failure is not None and time.monotonic() - self._failure[0] < FAILURE_BACKOFF_SECONDS:
            if self._keys:
                return  # keep using the keys we have
            raise self._failure[1]
        try:
            await self._refresh()
            self._failure = None
        except KeySetError as exc:
            self._failure = (time.monotonic(), exc)
            if not self._keys:
                raise

    async def load(self) -> int:
        """Fetch the key set now; how many signing keys it holds (doctor)."""
        async with self._lock:
            await self._refresh()
        return len(self._keys)

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The issuer's key ``kid`` bound to ``alg`` (the key's own ``alg`` wins), or None."""
        entry = await self._entry(kid)
        if entry is None:
            return None
        try:
            return jwt.PyJWK(entry, algorithm=entry.get("alg") or alg)
        except jwt.PyJWTError:
            return None  # a key type this library cannot use, or one that does not fit alg

    async def _entry(self, kid: str | None) -> dict[str, Any] | None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age > self._ttl or (kid not in self._keys and age > self._min_refresh)
            if stale:
                await self._refresh_or_recent_failure()
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return self._keys.get(kid)


@dataclass(frozen=True)
class Person:
    """Who a verified token speaks for: ``sub`` and a readable label."""

    id: str
    label: str


def person_of(access: AccessToken) -> Person:
    """The signed-in person (JWT: ``sub`` and the first of name / username / e-mail), or the
    static token's label."""
    claims = access.claims or {}
    if access.subject:
        label = next((str(claims[c]) for c in PERSON_CLAIMS if claims.get(c)), access.subject)
        return Person(id=access.subject, label=label)
    return Person(id=access.client_id, label=access.client_id)


class HaloTokenVerifier(TokenVerifier):
    """Static bearer tokens first, then JWT access tokens from the configured issuer."""

    def __init__(self, *, issuer: str, audience: str, keys: JwksCache, tokens: TokenStore | None = None,
                 leeway: float = 30.0):
        self.issuer = issuer
        self.audience = audience
        self._audiences = sorted({audience, audience.rstrip("/"), audience.rstrip("/") + "/"})
        self.keys = keys
        self.tokens = tokens
        self.leeway = leeway

    async def verify_token(self, token: str) -> AccessToken | None:
        static = self.tokens.check(token) if self.tokens is not None else None
        if static is not None:
            scopes = [READ_SCOPE] if static.read_only else [READ_SCOPE, WRITE_SCOPE]
            return AccessToken(token=token, client_id=static.label, scopes=scopes, resource=self.audience)
        return await self._verify_jwt(token)

    async def _verify_jwt(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            log.info("Refused an access token signed with %r (allowed: asymmetric algorithms)", alg)
            return None
        try:
            key = await self.keys.key_for(header.get("kid"), alg)
        except KeySetError as exc:
            log.warning("Cannot check access tokens: %s", exc)
            return None
        if key is None:
            log.info("Refused an access token: no key of the issuer matches its kid and alg")
            return None
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=self._audiences, issuer=self.issuer,
                                leeway=self.leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            log.info("Refused an access token: %s", exc)
            return None
        scopes = token_scopes(claims)
        if WRITE_SCOPE in scopes:
            scopes.add(READ_SCOPE)  # writers read too
        kept = {k: claims[k] for k in ("iss", *PERSON_CLAIMS) if isinstance(claims.get(k), str)}
        client = claims.get("client_id") or claims.get("azp") or claims.get("appid") or claims["sub"]
        return AccessToken(token=token, client_id=str(client), scopes=sorted(scopes), expires_at=int(claims["exp"]),
                           resource=self.audience, subject=str(claims["sub"]), claims=kept)


@dataclass(frozen=True)
class SignIn:
    """What the HTTP app needs to serve sign-in: the SDK settings and the verifier."""

    auth: AuthSettings
    verifier: HaloTokenVerifier
    resource_url: str


def sign_in(settings: Settings, tokens: TokenStore | None = None, *,
            transport: httpx2.AsyncBaseTransport | None = None) -> SignIn | None:
    """The sign-in set-up for ``settings``, or None when ``HALO_OAUTH_ISSUER`` is not set."""
    if not settings.oauth_issuer:
        if settings.oauth_jwks_url:
            raise ConfigError("HALO_OAUTH_JWKS_URL is set but HALO_OAUTH_ISSUER is not: set the issuer too. "
                              "Example: HALO_OAUTH_ISSUER=https://login.example.com/realms/msp")
        return None
    if not settings.public_url:
        raise ConfigError("HALO_OAUTH_ISSUER needs HALO_PUBLIC_URL, this server's URL as clients reach it (the "
                          "audience its access tokens must carry). Example: HALO_PUBLIC_URL=https://mcp.example.com/mcp")
    keys = JwksCache(settings.oauth_issuer, settings.oauth_jwks_url, transport=transport, timeout=settings.timeout)
    verifier = HaloTokenVerifier(issuer=settings.oauth_issuer, audience=settings.public_url, keys=keys,
                                 tokens=tokens if tokens is not None and len(tokens) else None)
    auth = AuthSettings(issuer_url=AnyHttpUrl(settings.oauth_issuer),
                        resource_server_url=AnyHttpUrl(settings.public_url),
                        required_scopes=[READ_SCOPE],
                        validate_token_resource=False)  # the verifier checks the audience itself
    return SignIn(auth=auth, verifier=verifier, resource_url=settings.public_url)
