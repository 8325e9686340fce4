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


def test_token_404_points_at_the_address_not_the_credentials(tmp_path):
    for settings, variable, url in (
        ({"base_url": "http://sandbox.invalid/halo"}, "HALO_BASE_URL", "http://sandbox.invalid/halo/auth/token"),
        ({"auth_url": "http://sandbox.invalid/wrong"}, "HALO_AUTH_URL", "http://sandbox.invalid/wrong/token"),
    ):
        code, out, _sb = doctor(data_dir=tmp_path / "data", **settings)
        assert code == 1
        token_line = next(line for line in out.splitlines() if line.startswith("[FAIL] Token"))
        fix = out.split(token_line, 1)[1].splitlines()[1]
        assert f"tried POST {url}" in token_line
        assert variable in fix and "HALO_CLIENT_SECRET" not in fix and "HALO_CLIENT_ID" not in fix


def test_every_failure_names_the_url_it_tried():
    app, transport = sandbox_transport()
    app.state.sandbox.deny("/api/Invoice")
    out = io.StringIO()
    run_doctor(settings=sandbox_settings(), transport=transport, out=out)
    fails = [line for line in out.getvalue().splitlines() if line.startswith("[FAIL]")]
    assert fails and all("(tried " in line for line in fails)
    assert any("tried GET http://sandbox.invalid/api/Invoice" in line for line in fails)
    code, text, _sb = doctor(client_secret="wrong-secret-value-42")
    assert code == 1 and "tried POST http://sandbox.invalid/auth/token" in text


def test_a_failing_doctor_creates_no_journal(tmp_path):
    data = tmp_path / "not-yet"
    code, out, _sb = doctor(data_dir=data, client_secret="wrong-secret-value-42")
    assert code == 1
    assert f"{data / 'journal.sqlite3'} (created when the server first starts)" in out
    assert not data.exists()
    out_io = io.StringIO()
    assert run_doctor(settings=sandbox_settings(data_dir=tmp_path / "n", base_url="http://127.0.0.1:9", timeout=3),
                      out=out_io) == 1
    assert not (tmp_path / "n").exists()


def test_a_journal_that_cannot_be_created_fails(tmp_path):
    (tmp_path / "a-file").write_text("in the way")
    code, out, _sb = doctor(data_dir=tmp_path / "a-file" / "data")
    assert code == 1 and "[FAIL] Journal" in out and "not a writable directory" in out and "HALO_DATA_DIR" in out


def test_a_postgresql_journal_is_checked_without_creating_tables(pg_url, tmp_path):
    import psycopg

    code, out, _sb = doctor(journal_url=pg_url, data_dir=tmp_path / "unused")
    assert code == 0, out
    assert "[FAIL] Journal" not in out
    assert "PostgreSQL at 127.0.0.1" in out and "shared by every process using the PostgreSQL journal" in out
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM information_schema.tables"
                              " WHERE table_schema = current_schema()").fetchone()[0]
    assert tables == 0
    assert not (tmp_path / "unused").exists()


def test_an_unreachable_postgresql_journal_fails_without_the_password():
    code, out, _sb = doctor(journal_url="postgresql://halo:hunter2@127.0.0.1:1/halo")
    assert code == 1 and "[FAIL] Journal" in out and "HALO_JOURNAL_URL" in out
    assert "127.0.0.1:1/halo" in out and "hunter2" not in out
