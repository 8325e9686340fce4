"""Sandbox auth, rate limit, permission denial, fault injection, admin endpoints and a real port."""

from __future__ import annotations

import re
import time
from datetime import date

import httpx2
import pytest

from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.standalone import serve_in_thread

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 22)
CREDS = {
    "grant_type": "client_credentials",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "scope": "all",
}


def make_app(**kw):
    kw.setdefault("strict", True)
    kw.setdefault("clients", 5)
    kw.setdefault("contracts", 40)
    return create_app(SandboxConfig(today=TODAY, **kw))


def client_for(app) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox")


async def login(c: httpx2.AsyncClient, path: str = "/auth/token") -> str:
    r = await c.post(path, data=CREDS)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    c.headers["Authorization"] = f"Bearer {token}"
    return token


# ----------------------------------------------------------------------------- auth


async def test_token_endpoint_and_bearer_checks():
    app = make_app(token_lifetime=1234)
    async with client_for(app) as c:
        r = await c.post("/auth/token", params={"tenant": "demo"}, data=CREDS)
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 1234 and body["access_token"]
        wrong = await c.post("/auth/token", data={**CREDS, "client_secret": "nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        grant = await c.post("/auth/token", data={**CREDS, "grant_type": "password"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        assert (await c.get("/api/Client")).status_code == 401  # no token
        c.headers["Authorization"] = "Bearer not-a-token"
        assert (await c.get("/api/Client")).status_code == 401
        c.headers["Authorization"] = f"Bearer {body['access_token']}"
        assert (await c.get("/api/Client")).status_code == 200


async def test_expired_tokens_get_401_until_renewed():
    app = make_app()
    sb = app.state.sandbox
    async with client_for(app) as c:
        await login(c)
        assert (await c.get("/api/SLA")).status_code == 200
        sb.expire_tokens()
        assert (await c.get("/api/SLA")).status_code == 401
        await login(c)
        assert (await c.get("/api/SLA")).status_code == 200
        sb.faults.token_lifetime = 0  # tokens issued from now on are born expired
        r = await c.post("/auth/token", data=CREDS)
        assert r.json()["expires_in"] == 0
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        assert (await c.get("/api/SLA")).status_code == 401


async def test_permission_denial_is_a_401_with_a_valid_token():
    app = make_app()
    sb = app.state.sandbox
    sb.deny("/api/ClientContract/")  # detail endpoints only, as Halo does for some agents
    async with client_for(app) as c:
        await login(c)
        assert (await c.get("/api/ClientContract")).status_code == 200
        r = await c.get("/api/clientcontract/1001")
        assert r.status_code == 401
        await login(c)  # a fresh token does not help: it is a permission problem
        assert (await c.get("/api/ClientContract/1001")).status_code == 401
        sb.allow()
        assert (await c.get("/api/ClientContract/1001")).status_code == 200
        sb.deny("/api/SoftwareLicence")
        assert (await c.get("/api/SoftwareLicence")).status_code == 401
        assert (await c.get("/api/Client")).status_code == 200


# ----------------------------------------------------------------------------- rate limit


async def test_rate_limit_rolling_window_429_without_retry_after():
    app = make_app(rate_limit=20, rate_window=1.0)
    sb = app.state.sandbox
    async with client_for(app) as c:
        await login(c)  # /auth counts too
        codes = [(await c.get("/api/SLA")).status_code for _ in range(21)]
        assert codes[:19] == [200] * 19
        assert codes[19:] == [429, 429]
        r = await c.get("/api/SLA")
        assert r.status_code == 429
        assert r.text == "Rate Limit Reached - 20 Requests per rolling 1 second window"
        assert "retry-after" not in r.headers
        assert (await c.post("/auth/token", data=CREDS)).status_code == 429
        time.sleep(1.05)
        assert (await c.get("/api/SLA")).status_code == 200
    assert sb.log.count(path_prefix="/api/sla") == 23
    default = make_app().state.sandbox
    assert default.rate_limit_text() == "Rate Limit Reached - 300 Requests per rolling 5 minute window"


# ----------------------------------------------------------------------------- faults


async def test_error_rate_answers_5xx_and_stores_nothing():
    app = make_app(error_rate=1.0)
    sb = app.state.sandbox
    async with client_for(app) as c:
        await login(c)  # /auth is not subject to the 5xx fault
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "never stored"}])
        assert r.status_code in (500, 502, 503)
        assert {(await c.get("/api/Client")).status_code for _ in range(10)} <= {500, 502, 503}
        sb.faults.error_rate = 0.0
        found = (await c.get("/api/ClientContract", params={"search": "never stored"})).json()
        assert found["record_count"] == 0
        sb.faults.error_rate = 0.5
        codes = [(await c.get("/api/SLA")).status_code for _ in range(40)]
        assert 5 < sum(code >= 500 for code in codes) < 35


async def test_error_rate_is_deterministic_per_seed():
    async def run() -> list[int]:
        app = make_app(error_rate=0.3, seed=11)
        async with client_for(app) as c:
            await login(c)
            return [(await c.get("/api/SLA")).status_code for _ in range(15)]

    assert await run() == await run()


async def test_latency_fault():
    app = make_app(latency=(0.15, 0.2))
    async with client_for(app) as c:
        await login(c)
        start = time.perf_counter()
        await c.get("/api/SLA")
        assert time.perf_counter() - start >= 0.15


async def test_dropped_write_is_stored_but_never_answered():
    app = make_app()
    sb = app.state.sandbox
    async with client_for(app) as c:
        await login(c)
        sb.faults.drop_next_writes = 1
        with pytest.raises(httpx2.ReadError):
            await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "DROPPED-1"}])
        assert sb.faults.drop_next_writes == 0
        found = (await c.get("/api/ClientContract", params={"search": "DROPPED-1"})).json()
        assert found["record_count"] == 1  # the write happened
        last_post = [e for e in sb.log if e.method == "POST" and e.path == "/api/ClientContract"][-1]
        assert last_post.dropped and last_post.status == 201
        assert last_post.body == [{"client_id": 1, "ref": "DROPPED-1"}]
        ok = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "ANSWERED"}])
        assert ok.status_code == 201
        sb.faults.drop_after_write = 1.0
        with pytest.raises(httpx2.ReadError):
            await c.delete(f"/api/ClientContract/{ok.json()['id']}")
        assert (await c.get(f"/api/ClientContract/{ok.json()['id']}")).status_code == 404
        # reads and failed writes are never dropped
        assert (await c.get("/api/SLA")).status_code == 200
        assert (await c.post("/api/ClientContract", json=[{"ref": "no client"}])).status_code == 400


async def test_admin_endpoints():
    app = make_app()
    sb = app.state.sandbox
    async with client_for(app) as c:
        faults = (await c.get("/_sandbox/faults")).json()
        assert faults["rate_limit"] == 300 and faults["latency"] == [0.0, 0.0]
        r = await c.post(
            "/_sandbox/faults",
            json={
                "error_rate": 0.25,
                "latency": [0, 0.01],
                "drop_next_writes": 2,
                "rate_limit": 50,
                "rate_window": 60,
                "token_lifetime": 10,
            },
        )
        assert r.status_code == 200 and r.json()["drop_next_writes"] == 2
        assert sb.faults.error_rate == 0.25 and sb.faults.latency == (0.0, 0.01) and sb.faults.rate_limit == 50
        assert sb.rate_limit_text() == "Rate Limit Reached - 50 Requests per rolling 1 minute window"
        assert (await c.post("/_sandbox/faults", json={"bogus": 1})).status_code == 400
        await c.post("/_sandbox/faults", json={"error_rate": 0, "drop_next_writes": 0})
        await login(c)
        await c.get("/api/Client", params={"search": "acme"})
        log = (await c.get("/_sandbox/log")).json()
        assert log["count"] == 2
        assert log["entries"][1]["path"] == "/api/Client" and log["entries"][1]["query"] == {"search": "acme"}
        assert log["entries"][1]["status"] == 200
        assert sb.log.count("GET", "/API/client") == 1 and sb.log.count("POST") == 1
        await c.post("/_sandbox/log/clear")
        assert len(sb.log) == 0
        await c.post("/_sandbox/deny", json={"path_prefix": "/api/Invoice"})
        assert (await c.get("/api/Invoice")).status_code == 401
        await c.post("/_sandbox/deny", json={"path_prefix": "/api/Invoice", "deny": False})
        assert (await c.get("/api/Invoice")).status_code == 200
        await c.post("/_sandbox/expire-tokens")
        assert (await c.get("/api/Invoice")).status_code == 401
        assert sb.log.count() == 3  # admin calls are not logged


async def test_invalid_input_sends_nothing_countable():
    """Tests and benchmarks count Halo requests through the log."""
    app = make_app()
    sb = app.state.sandbox
    async with client_for(app) as c:
        await login(c)
        sb.log.clear()
        assert sb.log.count("POST", "/api/ClientContract") == 0
        await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "A"}])
        assert sb.log.count("POST", "/api/clientcontract") == 1


# ----------------------------------------------------------------------------- real loopback port


def test_real_port_end_to_end():
    app = make_app(rate_limit=12, rate_window=2.0)
    sb = app.state.sandbox
    with serve_in_thread(app) as base, httpx2.Client(base_url=base, timeout=5) as c:
        r = c.post("/auth/token", data=CREDS)
        assert r.status_code == 200
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        body = c.get("/api/ClientContract", params={"pageinate": "true", "page_size": 500}).json()
        assert body["page_size"] == 100 and body["record_count"] > 0
        bad = c.post("/api/ClientContract", json=[{"client_id": "x"}])
        assert bad.status_code == 400 and "[0].client_id" in bad.json()
        sb.faults.drop_next_writes = 1
        with pytest.raises(httpx2.TransportError):
            c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "OVER-THE-WIRE"}])
        assert c.get("/api/ClientContract", params={"search": "OVER-THE-WIRE"}).json()["record_count"] == 1
        codes = [c.get("/api/SLA").status_code for _ in range(10)]
        assert 429 in codes
        limited = c.get("/api/SLA")
        assert limited.status_code == 429 and "retry-after" not in limited.headers
        assert limited.text == "Rate Limit Reached - 12 Requests per rolling 2 second window"


@pytest.mark.e2e
def test_standalone_process_prints_url_and_credentials(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "halo.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "halo_contracts.sandbox.standalone",
            "--port",
            "0",
            "--data",
            str(data),
            "--clients",
            "4",
            "--contracts",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        text = "".join(lines)
        assert "client_id    : sandbox-client" in text and "client_secret: sandbox-secret" in text
        base = re.search(r"http://127\.0\.0\.1:\d+", lines[0]).group(0)
        with httpx2.Client(base_url=base, timeout=5) as c:
            token = c.post("/auth/token", data=CREDS).json()["access_token"]
            rows = c.get(
                "/api/ClientContract", headers={"Authorization": f"Bearer {token}"}, params={"includeinactive": "true"}
            ).json()
            assert rows["record_count"] == 20
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert data.exists()
