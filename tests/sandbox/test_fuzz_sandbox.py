"""The sandbox answers hostile requests as an HTTP server would: a status, never a crash.

Every GET operation of Halo's OpenAPI slice is called with generated values for its declared
query parameters (boundary dates, huge and negative numbers, wrong types, injection text) and
generated ids in its path. Over the in-process transport an exception inside the app surfaces
as an exception in the caller (over uvicorn it would be a dropped 500), so the property is:
no exception and no 5xx (fault injection is off).
"""

from __future__ import annotations

import re

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.sandbox.spec import load_spec

OPS = [op for op in load_spec().operations if op.method == "GET"]

VALUES = {
    "int": st.one_of(st.integers(-(2**63), 2**63), st.sampled_from(["abc", "1.5", "", "-0", "9" * 40, "0x10"])),
    "integer": st.one_of(st.integers(-(2**63), 2**63), st.sampled_from(["abc", "1.5", "", "9" * 40])),
    "boolean": st.sampled_from(["true", "false", "True", "1", "0", "yes", "", "maybe"]),
    "bool": st.sampled_from(["true", "false", "True", "1", "0", "yes", "", "maybe"]),
    "string": st.one_of(
        st.sampled_from(["9999-12-31", "0001-01-01", "9999-12-31T23:59:59", "2026-02-30", "0000-00-00",
                         "'; DROP TABLE contracts; --", "%", "_", "\\", "{{7*7}}", "x" * 5000, "", " ",
                         "2026-01-01T25:00:00", "-1", "1e309"]),
        st.text(max_size=30)),
}


@pytest.fixture(scope="module")
def sandbox():
    app = create_app(SandboxConfig(seed=7, strict=True, rate_limit=10**9, rate_window=1.0))
    token = anyio.run(_token, app)
    return app, token


async def _token(app) -> str:
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as c:
        r = await c.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "sandbox-client",
                                              "client_secret": "sandbox-secret"})
        return r.json()["access_token"]


async def _get(app, token: str, path: str, params: dict) -> tuple[int | None, str]:
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as c:
        try:
            r = await c.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        except Exception as exc:  # an exception inside the app, surfacing in-process
            return None, f"{type(exc).__name__}: {exc}"
        return r.status_code, r.text[:200]


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.template)
@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_sandbox_get_never_crashes(sandbox, op, data):
    app, token = sandbox
    path = "/api" + re.sub(r"\{[^}]+\}", lambda _m: str(data.draw(st.one_of(
        st.integers(-(2**40), 2**40), st.sampled_from(["abc", "0", "-101", "9" * 30])))), op.template)
    names = sorted(op.query)
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=min(4, len(names)))) if names else []
    params = {n: str(data.draw(VALUES.get(op.query[n], VALUES["string"]))) for n in chosen}
    status, text = anyio.run(_get, app, token, path, params)
    assert status is not None and status < 500, f"GET {path} {params}: {status} {text}"


POSTS = [op for op in load_spec().operations if op.method == "POST" and op.body_schema]
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["9999-12-31T23:59:59", "0001-01-01", "2026-02-30", "", "abc", "-1", "{{7*7}}",
                     "'; DROP TABLE contracts; --", "x" * 5000, "$step:0.id"]),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.sampled_from(["id", "a"]), st.integers(), max_size=2),
)


async def _post(app, token: str, path: str, body) -> tuple[int | None, str]:
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as c:
        try:
            r = await c.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return r.status_code, r.text[:200]


@pytest.mark.parametrize("op", POSTS, ids=lambda o: o.template)
@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_sandbox_post_never_crashes(sandbox, op, data):
    """Arrays of objects with the schema's own property names and values of any type: a 2xx or a
    ModelState 400, never an exception or a 5xx."""
    app, token = sandbox
    props = sorted(load_spec().properties(op.body_schema))
    item = st.dictionaries(st.sampled_from(props) if props else st.just("id"), ANY_VALUE, max_size=6)
    body = data.draw(st.one_of(st.lists(item, max_size=3), item, st.just([]), st.just("not json array")))
    path = "/api" + re.sub(r"\{[^}]+\}", "1", op.template)
    status, text = anyio.run(_post, app, token, path, body)
    assert status is not None and status < 500, f"POST {path} {str(body)[:300]}: {status} {text}"
