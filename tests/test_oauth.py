"""Sign-in: the HTTP server as an OAuth resource server (RFC 9728 metadata, JWT access tokens
checked against the issuer's JWKS, scopes halo.read / halo.write, static tokens next to it).

The identity provider is a small ASGI app serving its OpenID metadata and JWKS, reached over
httpx2's ASGI transport; its key pairs are generated per test run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.config import ConfigError
from halo_contracts.http import build_http_app
from halo_contracts.oauth import metadata_urls, person_of, token_scopes

pytestmark = pytest.mark.anyio

ISSUER = "https://idp.example.test/realms/msp"
PUBLIC_URL = "http://127.0.0.1:8000/mcp"
STATIC = "static-token-0123456789abcdef"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _public_jwk(key: Any, kid: str, alg: str | None = "RS256") -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    jwk = algo.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


class IdentityProvider:
    """Publishes OpenID metadata and a JWKS; counts requests; signs tokens."""

    def __init__(self, issuer: str = ISSUER):
        self.issuer = issuer
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.jwks: list[dict[str, Any]] = [_public_jwk(self.key, self.kid)]
        self.requests: list[str] = []
        self.metadata_issuer = issuer
        self.app = Starlette(routes=[Route("/realms/msp/.well-known/openid-configuration", self._meta),
                                     Route("/realms/msp/certs", self._certs)])

    async def _meta(self, request: Request) -> JSONResponse:
        self.requests.append(request.url.path)
        return JSONResponse({"issuer": self.metadata_issuer, "jwks_uri": f"{self.issuer}/certs",
                             "authorization_endpoint": f"{self.issuer}/auth", "token_endpoint": f"{self.issuer}/token"})

    async def _certs(self, request: Request) -> JSONResponse:
        self.requests.append(request.url.path)
        return JSONResponse({"keys": self.jwks})

    @property
    def transport(self) -> httpx2.AsyncBaseTransport:
        return httpx2.ASGITransport(app=self.app)

    def token(self, *, scope: str | None = "halo.read halo.write", key: Any = None, kid: str | None = None,
              alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "aud": PUBLIC_URL, "sub": "user-42", "iat": now,
                                "exp": now + 600, "name": "Dana Finance", "email": "dana@msp.example"}
        if scope is not None:
            body["scope"] = scope
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm=alg, headers={"kid": kid or self.kid})


@pytest.fixture
def idp():
    return IdentityProvider()


@asynccontextmanager
async def running(idp: IdentityProvider, tmp_path, **settings: Any):
    app, transport = sandbox_transport()
    values: dict[str, Any] = {"oauth_issuer": ISSUER, "public_url": PUBLIC_URL}
    values.update(settings)
    s = sandbox_settings(**values)
    asgi = build_http_app(s, transport=transport, journal_path=tmp_path / "j.sqlite3", idp_transport=idp.transport)
    async with asgi.router.lifespan_context(asgi):
        yield asgi, app.state.sandbox


def http(asgi, token: str | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                              headers=headers, timeout=30)


async def _post_list(asgi, token: str | None) -> httpx2.Response:
    async with http(asgi, token) as c:
        return await c.post("/mcp", json=LIST, headers=ACCEPT)


async def test_metadata_document_and_401_point_at_it(idp, tmp_path):
    async with running(idp, tmp_path) as (asgi, sb), http(asgi) as c:
        suffixed = await c.get("/.well-known/oauth-protected-resource/mcp")
        bare = await c.get("/.well-known/oauth-protected-resource")
        refused = await c.post("/mcp", json=LIST, headers=ACCEPT)
    for r in (suffixed, bare):
        assert r.status_code == 200
        doc = r.json()
        assert doc["resource"] == PUBLIC_URL
        assert doc["authorization_servers"] == [ISSUER]
        assert doc["scopes_supported"] == ["halo.read", "halo.write"]
        assert doc["bearer_methods_supported"] == ["header"]
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"' in challenge
    assert len(sb.log) == 0
    assert idp.requests == []  # no token, no reason to ask the identity provider


async def test_good_token_signs_in_with_full_access(idp, tmp_path):
    token = idp.token()
    async with running(idp, tmp_path) as (asgi, sb), http(asgi, token) as hc:
        async with Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"create_contract", "apply_plan", "find_clients"} <= names
            r = await client.call_tool("find_clients", {"name": "acme"})
            assert not r.is_error
    # discovered from the issuer's metadata, then the keys: once each for the whole session
    assert idp.requests == ["/realms/msp/.well-known/openid-configuration", "/realms/msp/certs"]
    assert sb.log and all(token not in str(e.query) and token not in str(e.body) for e in sb.log)


@pytest.mark.parametrize("case", ["wrong_audience", "expired", "bad_signature", "wrong_issuer", "no_subject",
                                  "hmac_with_public_key", "unsigned", "unknown_kid", "garbage"])
async def test_bad_tokens_get_401_and_nothing_reaches_halo(idp, tmp_path, case, caplog):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = idp.key.public_key().public_bytes(encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo)
    tokens = {
        "wrong_audience": lambda: idp.token(aud="https://other-server.example.com/mcp"),
        "expired": lambda: idp.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "bad_signature": lambda: idp.token(key=other),
        "wrong_issuer": lambda: idp.token(iss="https://evil.example.com/realms/msp"),
        "no_subject": lambda: idp.token(sub=None),
        "unknown_kid": lambda: idp.token(key=other, kid="key-9"),
        "garbage": lambda: "not.a.jwt",
    }
    if case == "hmac_with_public_key":
        # the classic confusion: HS256 "signed" with the public key as the shared secret
        body = {"iss": ISSUER, "aud": PUBLIC_URL, "sub": "x", "exp": int(time.time()) + 600, "scope": "halo.write"}
        # (forged by hand: PyJWT itself refuses to sign with a PEM key as HMAC secret)
        def b64(raw: bytes) -> bytes:
            return base64.urlsafe_b64encode(raw).rstrip(b"=")

        signing_input = b64(json.dumps({"alg": "HS256", "kid": idp.kid}).encode()) + b"." + b64(
            json.dumps(body).encode())
        token = (signing_input + b"." + b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())).decode()
    elif case == "unsigned":
        body = {"iss": ISSUER, "aud": PUBLIC_URL, "sub": "x", "exp": int(time.time()) + 600, "scope": "halo.write"}
        token = jwt.encode(body, None, algorithm="none", headers={"kid": idp.kid})
    else:
        token = tokens[case]()
    caplog.set_level(logging.DEBUG)
    async with running(idp, tmp_path) as (asgi, sb):
        r = await _post_list(asgi, token)
    assert r.status_code == 401, case
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "resource_metadata=" in r.headers["www-authenticate"]
    assert len(sb.log) == 0
    assert token not in caplog.text  # refusals are logged without the token


async def test_missing_scope_is_403_insufficient_scope(idp, tmp_path):
    async with running(idp, tmp_path) as (asgi, sb):
        for scope in (None, "openid profile", "halo.admin"):
            r = await _post_list(asgi, idp.token(scope=scope))
            assert r.status_code == 403, scope
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert len(sb.log) == 0


async def test_read_scope_sees_only_read_tools_and_writes_are_refused(idp, tmp_path):
    async with running(idp, tmp_path) as (asgi, sb), http(asgi, idp.token(scope="openid halo.read")) as hc:
        async with Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "find_clients" in names
            assert not names & {"create_contract", "apply_plan", "generate_renewals", "plan_license_sync"}
            sb.log.clear()
            r = await client.call_tool("create_contract", {"client_id": 1, "ref": "X - Y 2027", "type": "Recurring",
                                                           "start_date": "2027-01-01"})
            assert r.is_error and "halo.write" in r.content[0].text
            r = await client.call_tool("apply_plan", {"plan_id": "p-0000000000000000"})
            assert r.is_error and "read-only" in r.content[0].text
            assert len(sb.log) == 0


async def test_write_scope_alone_implies_read_and_scp_claims_count(idp, tmp_path):
    async with running(idp, tmp_path) as (asgi, _sb):
        for token in (idp.token(scope="halo.write"), idp.token(scope=None, scp=["halo.write"])):
            async with http(asgi, token) as hc:
                async with Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as client:
                    assert "apply_plan" in {t.name for t in (await client.list_tools()).tools}


async def test_static_tokens_work_next_to_sign_in_and_are_tried_first(idp, tmp_path):
    async with running(idp, tmp_path, mcp_tokens=f"{STATIC},readonly:{STATIC}-ro") as (asgi, _sb):
        async with http(asgi, STATIC) as hc:
            async with Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as client:
                assert "apply_plan" in {t.name for t in (await client.list_tools()).tools}
        async with http(asgi, f"{STATIC}-ro") as hc:
            async with Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as client:
                assert "apply_plan" not in {t.name for t in (await client.list_tools()).tools}
        assert (await _post_list(asgi, "static-token-but-not-ours-xxxx")).status_code == 401
    assert idp.requests == []  # static tokens (and text that is no JWT) never ask the identity provider


async def test_explicit_jwks_url_skips_discovery_and_rotation_refetches(idp, tmp_path):
    async with running(idp, tmp_path, oauth_jwks_url=f"{ISSUER}/certs") as (asgi, _sb):
        assert (await _post_list(asgi, idp.token())).status_code == 200
        assert idp.requests == ["/realms/msp/certs"]
        # the provider rotates to an EC key with a new kid: one refetch, then accepted
        new = ec.generate_private_key(ec.SECP256R1())
        idp.jwks.append(_public_jwk(new, "key-2", alg=None))
        token = idp.token(key=new, kid="key-2", alg="ES256")
        verifier_cache = _verifier(asgi).keys
        verifier_cache._fetched_at -= 60  # the 30 s refetch guard has passed
        assert (await _post_list(asgi, token)).status_code == 200
        assert idp.requests == ["/realms/msp/certs", "/realms/msp/certs"]


def _verifier(asgi):
    for middleware in asgi.user_middleware:
        backend = middleware.kwargs.get("backend")
        if backend is not None:
            return backend.token_verifier
    raise AssertionError("no bearer backend")


async def test_metadata_naming_another_issuer_is_not_trusted(idp, tmp_path, caplog):
    idp.metadata_issuer = "https://evil.example.com/realms/msp"
    caplog.set_level(logging.WARNING, logger="halo_contracts.oauth")
    async with running(idp, tmp_path) as (asgi, sb):
        r = await _post_list(asgi, idp.token())
    assert r.status_code == 401
    assert "HALO_OAUTH_JWKS_URL" in caplog.text and "openid-configuration" in caplog.text
    assert len(sb.log) == 0


async def test_a_burst_of_tokens_while_the_provider_is_down_asks_it_once(idp, tmp_path):
    async def down(request: Request) -> JSONResponse:
        idp.requests.append(request.url.path)
        return JSONResponse({"error": "down"}, status_code=503)

    idp.app = Starlette(routes=[Route("/{path:path}", down)])
    async with running(idp, tmp_path, oauth_jwks_url=f"{ISSUER}/certs") as (asgi, _sb):
        for _ in range(5):
            assert (await _post_list(asgi, idp.token())).status_code == 401
    assert idp.requests == ["/realms/msp/certs"]


def test_sign_in_configuration_errors(tmp_path):
    _app, transport = sandbox_transport()
    with pytest.raises(ConfigError, match="HALO_PUBLIC_URL"):
        build_http_app(sandbox_settings(oauth_issuer=ISSUER), transport=transport, journal_path=tmp_path / "j")
    with pytest.raises(ConfigError, match="HALO_OAUTH_ISSUER"):
        build_http_app(sandbox_settings(oauth_jwks_url=f"{ISSUER}/certs", mcp_tokens=STATIC), transport=transport,
                       journal_path=tmp_path / "j")
    for bad in ("http://idp.example.com/realms/msp", "idp.example.com", "https://idp.example.com/x?tenant=1"):
        with pytest.raises(ConfigError, match="HALO_OAUTH_ISSUER"):
            sandbox_settings(oauth_issuer=bad)
    assert sandbox_settings(oauth_issuer="http://127.0.0.1:8080/realms/msp").oauth_issuer  # a local provider


def test_no_token_source_at_all_names_both_ways(tmp_path):
    _app, transport = sandbox_transport()
    with pytest.raises(ConfigError, match=r"HALO_MCP_TOKENS.*HALO_OAUTH_ISSUER"):
        build_http_app(sandbox_settings(), transport=transport, journal_path=tmp_path / "j")


def test_scopes_person_and_metadata_urls():
    assert token_scopes({"scope": "a halo.read"}) == {"a", "halo.read"}
    assert token_scopes({"scp": "halo.write x"}) == {"halo.write", "x"}
    assert token_scopes({"scp": ["halo.read"]}) == {"halo.read"}
    assert metadata_urls("https://login.example.com/tenant/v2.0") == [
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration",
        "https://login.example.com/.well-known/oauth-authorization-server/tenant/v2.0"]
    from mcp.server.auth.provider import AccessToken

    named = AccessToken(token="t", client_id="app", scopes=[], subject="u1",
                        claims={"preferred_username": "dana", "email": "d@x"})
    assert (person_of(named).id, person_of(named).label) == ("u1", "dana")
    bare = AccessToken(token="t", client_id="app", scopes=[], subject="u2", claims={})
    assert person_of(bare).label == "u2"
    static = AccessToken(token="t", client_id="token 1", scopes=[])
    assert (person_of(static).id, person_of(static).label) == ("token 1", "token 1")


def _doctor(idp: IdentityProvider, **settings: Any) -> tuple[int, str]:
    import io

    from halo_contracts.doctor import run_doctor

    _app, transport = sandbox_transport()
    out = io.StringIO()
    code = run_doctor(settings=sandbox_settings(**settings), transport=transport, out=out,
                      idp_transport=idp.transport)
    return code, out.getvalue()


def test_doctor_checks_sign_in(idp):
    code, out = _doctor(idp, oauth_issuer=ISSUER, public_url=PUBLIC_URL)
    assert code == 0, out
    line = next(x for x in out.splitlines() if "Sign-in" in x)
    assert line.startswith("[PASS]") and "1 signing key(s)" in line and f"{ISSUER}/certs" in line
    assert PUBLIC_URL in line
    idp.metadata_issuer = "https://evil.example.com/realms/msp"
    code, out = _doctor(idp, oauth_issuer=ISSUER, public_url=PUBLIC_URL)
    assert code == 1 and "[FAIL] Sign-in" in out and "openid-configuration" in out
    code, out = _doctor(idp, oauth_issuer=ISSUER)
    assert code == 1 and "[FAIL] Sign-in" in out and "HALO_PUBLIC_URL" in out
    code, out = _doctor(idp)
    assert "Sign-in" not in out


@pytest.mark.e2e
async def test_keys_fetched_over_a_real_loopback_connection(tmp_path):
    """The verifier's own network path (no injected transport): a provider on a loopback port."""
    from halo_contracts.sandbox.standalone import serve_in_thread

    idp = IdentityProvider()
    with serve_in_thread(idp.app) as base:
        idp.issuer = idp.metadata_issuer = f"{base}/realms/msp"  # the port is known only now
        _app, transport = sandbox_transport()
        s = sandbox_settings(oauth_issuer=idp.issuer, public_url=PUBLIC_URL)
        asgi = build_http_app(s, transport=transport, journal_path=tmp_path / "j.sqlite3")
        async with asgi.router.lifespan_context(asgi):
            assert (await _post_list(asgi, idp.token())).status_code == 200
            assert (await _post_list(asgi, idp.token(aud="https://elsewhere.example/mcp"))).status_code == 401
    assert idp.requests == ["/realms/msp/.well-known/openid-configuration", "/realms/msp/certs"]


async def test_the_signed_in_person_is_recorded_as_previewer_and_applier(idp, tmp_path):
    dana_writes, dana_reads = idp.token(), idp.token(scope="halo.read")
    async with running(idp, tmp_path) as (asgi, sb):
        async with http(asgi, dana_writes) as hc, Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as c:
            found = await c.call_tool("search_contracts", {"status": "Active", "limit": 1})
            contract_id = found.structured_content["contracts"][0]["id"]
            r = await c.call_tool("update_contract", {"contract_id": contract_id, "changes": {"notes": "Checked"},
                                                      "dry_run": True})
            plan_id = r.structured_content["plan_id"]
        async with http(asgi, dana_reads) as hc, Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as c:
            assert not (await c.call_tool("get_plan", {"plan_id": plan_id})).is_error  # her own plan
            refused = await c.call_tool("apply_plan", {"plan_id": plan_id})
            assert refused.is_error and "halo.write" in refused.content[0].text
        assert not [e for e in sb.log if e.method != "GET" and e.path.startswith("/api/")]
        async with http(asgi, dana_writes) as hc, Client(streamable_http_client(PUBLIC_URL, http_client=hc)) as c:
            assert not (await c.call_tool("apply_plan", {"plan_id": plan_id})).is_error
            shown = (await c.call_tool("get_plan", {"plan_id": plan_id})).structured_content
    dana = {"id": "sub:user-42", "label": "Dana Finance"}
    assert shown["previewed_by"] == dana and shown["applied_by"] == dana
    journal = (tmp_path / "j.sqlite3").read_bytes()
    assert b"user-42" in journal
    assert dana_writes.encode() not in journal and dana_writes.split(".")[2].encode() not in journal  # no token


async def test_the_metadata_document_is_public_to_browser_clients_but_mcp_keeps_its_origin_check(idp, tmp_path):
    async with running(idp, tmp_path) as (asgi, _sb), http(asgi) as c:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            r = await c.get(path, headers={"Origin": "https://inspector.example"})
            assert r.status_code == 200 and r.json()["resource"] == PUBLIC_URL
            assert r.headers.get("access-control-allow-origin") == "*"
        r = await c.post("/mcp", json=LIST, headers={**ACCEPT, "Origin": "https://inspector.example",
                                                     "Authorization": f"Bearer {idp.token()}"})
        assert r.status_code == 403
