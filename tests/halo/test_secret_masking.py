"""The client secret is masked in every form a token server may echo it in: raw, URL-encoded
(quote and quote_plus), JSON-escaped, and base64 inside a Basic header (of ``id:secret`` and of
the secret alone). Checked in the tool result, ``doctor`` output and DEBUG log records."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.doctor import run_doctor
from halo_contracts.halo.secrets import MASK, mask
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

CLIENT_ID = "echo-client"
SECRET = 'Zq9 s3cr+t/=Ünï"x&y'  # a space, +, /, =, non-ASCII, a quote and & all encode differently

FORMS = {
    "raw": SECRET,
    "quote": quote(SECRET, safe=""),
    "quote-default-safe": quote(SECRET),
    "quote_plus": quote_plus(SECRET),
    "quote-lower-hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
    "json": json.dumps(SECRET)[1:-1],
    "json-unicode": json.dumps(SECRET, ensure_ascii=False)[1:-1],
    "basic-id-secret": "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode(),
    "basic-secret": base64.b64encode(SECRET.encode()).decode(),
}


def test_mask_covers_each_form() -> None:
    for name, form in FORMS.items():
        text = f"before {form} after"
        masked = mask(text, [SECRET], client_id=CLIENT_ID)
        assert form not in masked and MASK in masked, name
    assert mask("nothing here", [SECRET]) == "nothing here"
    assert mask("abc", ["ab"]) == "abc"  # too short to mask safely


class EchoingTokenServer:
    """The sandbox, except that its token endpoint refuses and echoes the secret in one form."""

    def __init__(self, app, form: str) -> None:
        self.app, self.form = app, form

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/token"):
            body = f"invalid_client: the client_secret {self.form} is not valid for {CLIENT_ID}".encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def echoing(form: str) -> EchoingTokenServer:
    return EchoingTokenServer(create_app(SandboxConfig(rate_limit=1_000_000)), FORMS[form])


def leaks(text: str) -> list[str]:
    return [name for name, form in FORMS.items() if form in text]


def settings():
    return load_settings(base_url="http://sandbox", client_id=CLIENT_ID, client_secret=SECRET,
                         rate_limit="100000/1", tools="lookups")


@pytest.mark.anyio
@pytest.mark.parametrize("form", sorted(FORMS))
async def test_an_echoed_secret_is_masked_in_results_and_logs(form, tmp_path: Path, caplog) -> None:
    echo = echoing(form)
    caplog.set_level(logging.DEBUG)
    server = build_server(settings(), transport=transport(echo), journal_path=tmp_path / "j.sqlite3")
    async with Client(server) as client:
        result = await client.call_tool("find_clients", {"name": "acme"})
    assert result.is_error
    text = result.content[0].text
    assert "refused the credentials" in text and MASK in text, text
    assert leaks(text) == [], text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    logged += "\n".join(str(r.exc_text or "") for r in caplog.records)
    assert leaks(logged) == [], logged


@pytest.mark.parametrize("form", sorted(FORMS))
def test_an_echoed_secret_is_masked_in_doctor(form, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    assert run_doctor(settings=settings(), transport=transport(echoing(form)), out=out) == 1
    assert "[FAIL] Token" in out.getvalue() and MASK in out.getvalue(), out.getvalue()
    assert leaks(out.getvalue()) == [], out.getvalue()
    assert leaks("\n".join(r.getMessage() for r in caplog.records)) == []
