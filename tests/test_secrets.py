"""A unique canary client secret and canary bearer tokens never appear anywhere we can see.

The sandbox is configured with a canary secret and hands out canary tokens (its token issuer is
wrapped so every token carries a unique marker). A representative run drives every tool
(valid, invalid, previews, get_plan/apply_plan of each previewed plan, token expiry and refresh,
a refused credential) and then scans: every tool result and error (text and structured content),
every log record at DEBUG (caplog), everything written to stdout/stderr (capfd), the journal
SQLite file and its WAL read as raw bytes, and ``doctor`` output for good and bad credentials.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fuzz import Call, Harness, fuzz_settings, invalid_args, minimal_valid, tool_args

CANARY = uuid.uuid4().hex
SECRET = f"canary-secret-{CANARY}"
TOKEN_MARK = f"CanaryTok{CANARY[:12]}"


def _install_canary_tokens(h: Harness) -> list[str]:
    """Wrap the sandbox's token issuer so each token is a unique, recognisable canary."""
    state = h.state
    issued: list[str] = []
    original = state.issue_token

    def issue() -> tuple[str, int]:
        token, lifetime = original()
        canary = f"{TOKEN_MARK}-{len(issued)}-{uuid.uuid4().hex}"
        with state._lock:
            state._tokens[canary] = state._tokens.pop(token)
        issued.append(canary)
        return canary, lifetime

    state.issue_token = issue
    return issued


def _scan(label: str, text: str, needles: list[str]) -> list[str]:
    found = []
    for needle in needles:
        if needle and needle in text:
            at = text.index(needle)
            found.append(f"{label}: contains {needle[:24]}… near {text[max(0, at - 80):at]!r}")
    # the marker alone catches partial leaks (a token cut short, a secret split in two)
    for mark in (CANARY, TOKEN_MARK):
        if mark in text and not any(n in text for n in needles if mark in n):
            found.append(f"{label}: contains the canary marker {mark[:12]}…")
    return found


def _result_text(outcome) -> str:
    parts = [outcome.text]
    if outcome.result is not None:
        parts.append(json.dumps(outcome.result.structured_content or {}, default=str))
        parts.append(outcome.result.model_dump_json())
    return "\n".join(parts)


def _drive_everything(h: Harness, transcript: list[str]) -> None:
    """Every tool: plausible args, a few generated ones, previews and their apply."""
    for name in sorted(h.tools):
        schema = h.schema(name)
        for optional in (False, True):
            args = minimal_valid(schema, hints=h.hints, optional=optional)
            args.update(h.force_for(name))
            outcome = h.call(Call(tool=name, args=args))
            transcript.append(_result_text(outcome))
            plan_id = (outcome.result.structured_content or {}).get("plan_id") if outcome.result else None
            if plan_id and "get_plan" in h.tools:
                transcript.append(_result_text(h.call(Call(tool="get_plan", args={"plan_id": plan_id}))))
            if plan_id and "apply_plan" in h.tools:
                transcript.append(_result_text(h.call(Call(tool="apply_plan", args={"plan_id": plan_id}))))
        # force a token refresh between tools now and then (401 -> refresh -> retry)
        h.state.expire_tokens()


@pytest.fixture
def canary_run(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path, sandbox_config={"client_secret": SECRET},
                settings_overrides={"client_secret": SECRET})
    issued = _install_canary_tokens(h)
    transcript: list[str] = []
    yield h, issued, transcript
    h.close()


def _leaks(h: Harness, issued: list[str], transcript: list[str], caplog, capfd) -> list[str]:
    needles = [SECRET, *issued]
    problems: list[str] = []
    for i, text in enumerate(transcript):
        problems += _scan(f"tool result #{i}", text, needles)
    problems += _scan("log records (caplog, DEBUG)", caplog.text, needles)
    for record in caplog.records:
        problems += _scan(f"log record args {record.name}", repr(record.args), needles)
    out, err = capfd.readouterr()
    problems += _scan("stdout", out, needles)
    problems += _scan("stderr", err, needles)
    for path in sorted(h.journal_path.parent.glob(h.journal_path.name + "*")):
        problems += _scan(f"journal file {path.name}", path.read_bytes().decode("latin-1"), needles)
    return problems


def test_canary_secret_and_tokens_never_leak(canary_run, caplog, capfd):
    h, issued, transcript = canary_run
    _drive_everything(h, transcript)
    # a few generated invalid calls per tool: their error texts must not echo secrets either
    names = sorted(h.tools)

    @settings(max_examples=4 * len(names), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def drive(data):
        name = data.draw(st.sampled_from(names))
        schema = h.schema(name)
        if data.draw(st.booleans()):
            args = data.draw(tool_args(schema, hints=h.hints, force=h.force_for(name)))
        else:
            args, _ = data.draw(invalid_args(schema, hints=h.hints, force=h.force_for(name)))
        transcript.append(_result_text(h.call(Call(tool=name, args=args))))

    drive()
    assert issued, "no canary token was ever issued: the run did not reach Halo"
    assert len(issued) >= 2, "token expiry never forced a refresh"
    assert any(p.name.startswith(h.journal_path.name) for p in h.journal_path.parent.iterdir())
    problems = _leaks(h, issued, transcript, caplog, capfd)
    assert not problems, "\n".join(problems[:20])


def test_refused_credentials_do_not_echo_the_secret(tmp_path, caplog, capfd):
    """Halo refuses the secret (the sandbox expects another): tool errors and logs stay clean."""
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path, sandbox_config={"client_secret": "the-right-one"},
                settings_overrides={"client_secret": SECRET})
    transcript: list[str] = []
    try:
        for name in sorted(h.tools):
            args = minimal_valid(h.schema(name), hints=h.hints)
            args.update(h.force_for(name))
            outcome = h.call(Call(tool=name, args=args))
            transcript.append(_result_text(outcome))
        problems = _leaks(h, [], transcript, caplog, capfd)
    finally:
        h.close()
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("right_secret", [True, False], ids=["good-secret", "refused-secret"])
def test_doctor_output_masks_the_secret(right_secret, caplog, capfd):
    from halo_contracts.doctor import run_doctor
    from halo_contracts.sandbox import SandboxConfig, create_app, transport

    caplog.set_level(logging.DEBUG)
    app = create_app(SandboxConfig(client_secret=SECRET if right_secret else "another-secret", seed=7))
    issued: list[str] = []
    state = app.state.sandbox
    original = state.issue_token

    def issue():
        token, lifetime = original()
        canary = f"{TOKEN_MARK}-d{len(issued)}-{uuid.uuid4().hex}"
        with state._lock:
            state._tokens[canary] = state._tokens.pop(token)
        issued.append(canary)
        return canary, lifetime

    state.issue_token = issue
    out = io.StringIO()
    code = run_doctor(settings=fuzz_settings(client_secret=SECRET), transport=transport(app), out=out)
    text = out.getvalue()
    assert (code == 0) == right_secret, text
    if right_secret:
        assert issued
    problems = _scan("doctor output", text, [SECRET, *issued])
    problems += _scan("log records", caplog.text, [SECRET, *issued])
    o, e = capfd.readouterr()
    problems += _scan("stdout/stderr", o + e, [SECRET, *issued])
    assert not problems, "\n".join(problems)


def test_journal_file_is_really_scanned(tmp_path):
    """The scanner itself works: a canary planted in a SQLite file is found in its raw bytes."""
    import sqlite3

    db = tmp_path / "probe.sqlite3"
    con = sqlite3.connect(db)
    con.execute("create table t (v text)")
    con.execute("insert into t values (?)", (SECRET,))
    con.commit()
    con.close()
    assert _scan("probe", Path(db).read_bytes().decode("latin-1"), [SECRET])


@pytest.mark.anyio
async def test_http_bearer_tokens_never_leak(tmp_path, caplog, capfd):
    """Over streamable HTTP: our own bearer tokens (full and read-only) and a refused one, with the
    Halo canary secret behind the server, appear in no response, log record, stdout/stderr or
    journal byte."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from halo_contracts.access import load_tokens
    from halo_contracts.http import build_http_app
    from support.fuzz import make_sandbox, sandbox_module

    caplog.set_level(logging.DEBUG)
    full, read, wrong = (f"{kind}-{CANARY}-{uuid.uuid4().hex}" for kind in ("mcpfull", "mcpread", "mcpwrong"))
    app = make_sandbox(strict=True, seed=7, client_secret=SECRET, rate_limit=100_000, rate_window=1.0)
    settings_ = fuzz_settings(client_secret=SECRET, mcp_tokens=f"{full},readonly:{read}")
    journal = tmp_path / "j.sqlite3"
    asgi = build_http_app(settings_, transport=sandbox_module().transport(app), journal_path=journal,
                          tokens=load_tokens(settings_))
    seen: list[str] = []
    contract_id = app.state.sandbox.store.where("contracts")[0]["id"]
    inner = asgi.app
    async with inner.router.lifespan_context(inner):
        for token in (full, read, wrong, None):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            hc = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000",
                                    headers=headers, timeout=60)
            async with hc:
                raw = await hc.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                seen.append(f"{raw.status_code} {raw.headers} {raw.text}")
                seen.append((await hc.get("/health")).text)
                if token in (full, read):
                    async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=hc)) as c:
                        for name, args in (("get_contract", {"contract_id": contract_id}),
                                           ("find_clients", {"name": "ac"}),
                                           ("create_contract", {"client_id": 1, "ref": "Canary Ltd - Test 2031",
                                                                "type": "Recurring", "start_date": "2031-01-01",
                                                                "dry_run": True}),
                                           ("get_contract", {"contract_id": "1"})):
                            r = await c.call_tool(name, args)
                            seen.append(r.model_dump_json())
    needles = [SECRET, full, read, wrong]
    problems: list[str] = []
    for i, text in enumerate(seen):
        problems += _scan(f"HTTP answer #{i}", text, needles)
    problems += _scan("log records", caplog.text, needles)
    for record in caplog.records:
        problems += _scan(f"log record args {record.name}", repr(record.args), needles)
    out, err = capfd.readouterr()
    problems += _scan("stdout/stderr", out + err, needles)
    for path in sorted(journal.parent.glob(journal.name + "*")):
        problems += _scan(f"journal {path.name}", path.read_bytes().decode("latin-1"), needles)
    assert len(seen) >= 10
    assert not problems, "\n".join(problems[:20])
