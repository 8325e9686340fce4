"""A journal that cannot be used says which file and what to do, at start-up (serve, doctor,
demo) and during calls; never a traceback or a bare "Error executing tool". A journal deleted
or replaced while the server runs stops writes (reads of Halo go on) until it is back."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
from contextlib import nullcontext
from pathlib import Path

import pytest
from mcp import Client

from halo_contracts import cli
from halo_contracts.cli import sandbox_settings
from halo_contracts.config import load_settings
from halo_contracts.doctor import run_doctor
from halo_contracts.plans.journal import Journal, open_journal
from halo_contracts.plans.journal_guard import JournalUnavailable, from_sqlite_error, translated
from halo_contracts.sandbox import transport
from halo_contracts.server import build_server

CREDENTIALS = {"HALO_BASE_URL": "https://acme.halopsa.com", "HALO_CLIENT_ID": "id",
               "HALO_CLIENT_SECRET": "secret-value-123"}


def corrupt(path: Path) -> Path:
    path.write_bytes(b"this is not a SQLite database, just text " * 100)
    return path


def serve_stderr(monkeypatch, capsys, data_dir: Path) -> tuple[int, str]:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HALO_DATA_DIR", str(data_dir))
    code = cli.main([])
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout belongs to MCP
    return code, captured.err


# ---- start-up -------------------------------------------------------------------------------


def test_serve_refuses_a_corrupt_journal_with_the_file_and_the_fix(tmp_path, monkeypatch, capsys) -> None:
    path = corrupt(tmp_path / "journal.sqlite3")
    code, err = serve_stderr(monkeypatch, capsys, tmp_path)
    assert code == 2
    assert str(path) in err and "is damaged" in err and "Fix: move it aside" in err
    assert "Traceback" not in err


def test_serve_refuses_a_data_dir_that_cannot_be_created(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, err = serve_stderr(monkeypatch, capsys, blocker / "data")
    assert code == 2
    assert f"The data directory '{blocker / 'data'}'" in err and "cannot be created" in err
    assert "HALO_DATA_DIR" in err and "Traceback" not in err


def test_doctor_names_a_corrupt_journal_and_the_fix(tmp_path, sandbox_app) -> None:
    path = corrupt(tmp_path / "journal.sqlite3")
    out = io.StringIO()
    code = run_doctor(settings=sandbox_settings(data_dir=tmp_path), transport=transport(sandbox_app), out=out)
    text = out.getvalue()
    assert code == 1
    assert f"[FAIL] Journal: The plan journal '{path}' is damaged" in text
    assert "fix: move it aside" in text
    assert path.read_bytes().startswith(b"this is not")  # doctor changed nothing


def test_demo_refuses_an_unwritable_temporary_directory(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr("tempfile.tempdir", str(blocker))  # what TMPDIR=<a file> would give
    code = cli.main(["demo"])
    err = capsys.readouterr().err
    assert code == 2 and "TMPDIR" in err and "Traceback" not in err


def test_open_journal_classifies_what_is_wrong(tmp_path) -> None:
    with pytest.raises(JournalUnavailable, match="is damaged"):
        open_journal(corrupt(tmp_path / "bad.sqlite3"))
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(JournalUnavailable, match="is a directory"):
        open_journal(tmp_path / "dir.sqlite3")


def test_a_read_only_database_error_reads_as_such(tmp_path) -> None:
    path = tmp_path / "ro.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as err:
        db.execute("DELETE FROM plans")
    db.close()
    text = str(from_sqlite_error(str(path), err.value))
    assert "cannot be written (read-only" in text and "chmod u+w" in text and str(path) in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_serve_refuses_a_read_only_journal(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    path.chmod(0o444)
    code, err = serve_stderr(monkeypatch, capsys, tmp_path)
    assert code == 2 and "cannot be written" in err and str(path) in err


# ---- during calls ---------------------------------------------------------------------------


def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         rate_limit="100000/1", tools="contracts,lookups,plans")


def contract_args(sandbox) -> dict:
    book, year = sandbox.book, sandbox.today.year + 1
    client_id = book.client_ids[0]
    return {"client_id": client_id, "ref": f"{book.client_names[client_id]} - Recurring {year}",
            "type": "Recurring", "start_date": f"{year}-01-01", "end_date": f"{year}-12-31",
            "billing_frequency": "Monthly", "value": 100, "dry_run": True}


def writes(sandbox) -> int:
    return sum(1 for e in sandbox.log if e.method != "GET" and e.path.lower().startswith("/api"))


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
async def test_a_journal_removed_while_running_refuses_writes_until_restored(how, tmp_path, sandbox_app) -> None:
    sb = sandbox_app.state.sandbox
    path = tmp_path / "journal.sqlite3"
    server = build_server(settings(), transport=transport(sandbox_app), journal_path=path)
    async with Client(server) as client:
        first = await client.call_tool("create_contract", contract_args(sb))
        assert not first.is_error, first.content[0].text
        plan_id = first.structured_content["plan_id"]
        aside = tmp_path / "aside.sqlite3"
        if how == "deleted":
            path.unlink()
        elif how == "moved":
            path.rename(aside)
        else:
            shutil.copy(path, aside)
            path.unlink()
            shutil.copy(aside, path)  # same content, another file
        for name, args in (("create_contract", contract_args(sb)), ("apply_plan", {"plan_id": plan_id})):
            r = await client.call_tool(name, args)
            text = r.content[0].text
            assert r.is_error, text
            assert str(path) in text and ("was deleted" in text or "was replaced" in text), text
            assert "Fix: put the original file back" in text and "restart the server" in text
            assert text != f"Error executing tool {name}"
        assert writes(sb) == 0
        reads = await client.call_tool("find_clients", {"name": "ac"})
        assert not reads.is_error  # reads of Halo keep working
        if how == "moved":
            aside.rename(path)  # restored: writes go on at once
            again = await client.call_tool("create_contract", contract_args(sb))
            assert not again.is_error, again.content[0].text


def test_sqlite_failures_during_a_write_are_translated(tmp_path) -> None:
    path = tmp_path / "ro.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    with pytest.raises(JournalUnavailable, match="cannot be written"), translated(str(path), nullcontext(db)) as c:
        c.execute("DELETE FROM plans")
    db.close()
