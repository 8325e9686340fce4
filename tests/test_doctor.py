"""doctor: a pass/fail line per check, the fix for each failure, secrets masked."""

from __future__ import annotations

import io

from halo_contracts.cli import main, sandbox_settings, sandbox_transport
from halo_contracts.doctor import run_doctor


def doctor(**settings):
    app, transport = sandbox_transport()
    out = io.StringIO()
    code = run_doctor(settings=sandbox_settings(**settings), transport=transport, out=out)
    return code, out.getvalue(), app.state.sandbox


def test_all_checks_pass_on_the_sandbox(capsys):
    assert main(["doctor", "--sandbox"]) == 0
    out = capsys.readouterr().out
    assert "[FAIL]" not in out and "0 failed" in out
    for area in ("Token", "Read Contracts", "Read Invoices", "Read Software licences", "Code maps",
                 "Request budget"):
        assert area in out


def test_bad_secret_fails_with_the_fix_and_masks_it():
    code, out, _sb = doctor(client_secret="wrong-secret-value-42")
    assert code == 1
    assert "[FAIL] Token" in out and "HALO_CLIENT_SECRET" in out
    assert "wrong-secret-value-42" not in out


def test_missing_permission_names_the_area():
    app, transport = sandbox_transport()
    app.state.sandbox.deny("/api/Invoice")
    out = io.StringIO()
    code = run_doctor(settings=sandbox_settings(), transport=transport, out=out)
    text = out.getvalue()
    assert code == 1
    assert "[FAIL] Read Invoices" in text and "permission" in text.lower()
    assert "[PASS] Read Contracts" in text  # the other areas are still checked


def test_unreachable_host():
    out = io.StringIO()
    settings = sandbox_settings(base_url="http://127.0.0.1:9", timeout=3)
    code = run_doctor(settings=settings, transport=None, out=out)
    text = out.getvalue()
    assert code == 1
    assert "[FAIL] Token" in text and "HALO_BASE_URL" in text


def test_missing_configuration_exit_code(monkeypatch, capsys):
    for var in ("HALO_BASE_URL", "HALO_CLIENT_ID", "HALO_CLIENT_SECRET", "HALO_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert main(["doctor"]) == 2
    assert "HALO_BASE_URL" in capsys.readouterr().out
