"""The PostgreSQL journal through the server: ``HALO_JOURNAL_URL`` selects it, a plan previewed
on one server is applied on another sharing the database, and the URL's password never shows."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from mcp import Client

from halo_contracts.config import ConfigError, load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from support.faultrun import renewable_ids

SANDBOX = {"base_url": "http://sandbox", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
           "rate_limit": "100000/1"}


def test_journal_url_must_be_postgresql(monkeypatch):
    monkeypatch.setenv("HALO_JOURNAL_URL", "mysql://user:hunter2@db/halo")
    with pytest.raises(ConfigError) as err:
        load_settings(**SANDBOX)
    text = str(err.value)
    assert "HALO_JOURNAL_URL" in text and "postgresql://" in text
    assert "hunter2" not in text
    monkeypatch.setenv("HALO_JOURNAL_URL", "postgresql://halo:hunter2@db/halo")
    settings = load_settings(**SANDBOX)
    assert "hunter2" not in repr(settings)


def test_an_unreachable_database_names_the_host_not_the_password():
    from halo_contracts.plans.journal_pg import JournalUnavailable, PostgresJournal

    with pytest.raises(JournalUnavailable) as err:  # the server waits 30 s for its database; 2 here
        PostgresJournal("postgresql://halo:hunter2@127.0.0.1:1/halo?connect_timeout=2", timeout=2)
    assert "127.0.0.1:1/halo" in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.anyio
async def test_preview_on_one_server_apply_on_another(pg_url, monkeypatch, tmp_path):
    from halo_contracts.server import build_server

    monkeypatch.setenv("HALO_JOURNAL_URL", pg_url)
    monkeypatch.setenv("HALO_DATA_DIR", str(tmp_path / "data"))
    app = create_app(SandboxConfig(seed=7))
    sandbox = app.state.sandbox
    settings = load_settings(**SANDBOX, read_only=False)
    a = build_server(settings, transport(app))
    b = build_server(settings, transport(app))
    contract_ids = renewable_ids(SimpleNamespace(state=sandbox), 3)
    async with Client(a) as ca:
        r = await ca.call_tool("generate_renewals", {"contract_ids": contract_ids, "dry_run": True,
                                                     "uplift_percent": 3})
        assert not r.is_error, r.content[0].text
        plan_id = r.structured_content["plan_id"]
    writes_before = _writes(sandbox)
    async with Client(b) as cb:
        seen = await cb.call_tool("get_plan", {"plan_id": plan_id})
        assert not seen.is_error and seen.structured_content["plan_id"] == plan_id
        done = await cb.call_tool("apply_plan", {"plan_id": plan_id})
        assert not done.is_error, done.content[0].text
        assert done.structured_content["status"] == "applied"
    async with Client(a) as ca:
        again = await ca.call_tool("apply_plan", {"plan_id": plan_id})
        assert not again.is_error and again.structured_content["already_applied"] is True
    assert _writes(sandbox) > writes_before, "apply on server B sent nothing"
    assert not (tmp_path / "data" / "journal.sqlite3").exists()  # the SQLite journal was never opened


def _writes(sandbox) -> int:
    return sum(1 for e in sandbox.log.entries() if e.method.upper() != "GET")


def test_a_database_made_before_step_refs_gets_the_column(pg_url):
    import psycopg

    from halo_contracts.plans.journal import open_journal
    from halo_contracts.plans.models import Plan

    open_journal(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("ALTER TABLE steps DROP COLUMN refs")
    journal = open_journal(pg_url)
    try:
        plan = Plan(tool="t", title="t")
        plan.add("create_contract", "c", {"fields": {"client_id": 5, "ref": "R"}})
        plan.add("create_recurring_invoice", "ri", {"client_id": 5, "contract_id": Plan.ref(0),
                                                    "contract_ref": "$step:0.id"})
        journal.save_plan(plan)
        loaded = journal.get_plan(plan.id)
        assert loaded.steps[1].refs == plan.steps[1].refs and loaded.steps[1].params["contract_ref"] == "$step:0.id"
    finally:
        journal.close()


def test_a_database_made_by_an_older_version_gets_every_missing_column(pg_url):
    import psycopg

    from halo_contracts.plans.journal import SCHEMA_VERSION, open_journal
    from halo_contracts.plans.journal_pg import schema_columns
    from halo_contracts.plans.models import Plan

    open_journal(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:  # as an older version left it
        db.execute("ALTER TABLE steps DROP COLUMN note")
        db.execute("ALTER TABLE steps DROP COLUMN attempts")
        db.execute("ALTER TABLE plans DROP COLUMN skipped")
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    journal = open_journal(pg_url)
    try:
        plan = Plan(tool="t", title="t", skipped=["x"])
        plan.add("create_contract", "c", {"fields": {"client_id": 5, "ref": "R"}})
        plan.steps[0].note, plan.steps[0].attempts = "a note", 2
        journal.save_plan(plan)
        journal.save_step(plan.id, plan.steps[0])
        assert journal.get_plan(plan.id) == plan
    finally:
        journal.close()
    with psycopg.connect(pg_url) as db:
        columns = {(r[0], r[1]) for r in db.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()")}
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert {(t, d.split()[0]) for t, d in schema_columns()} <= columns
    assert version == str(SCHEMA_VERSION)


def test_connections_the_database_dropped_are_replaced(pg_url):
    import psycopg

    from halo_contracts.plans.journal import open_journal

    name = f"halo-journal-test-{os.getpid()}"
    journal = open_journal(f"{pg_url}&application_name={name}")
    try:
        journal.remember_mapping("pax8", "Acme", 5)
        with psycopg.connect(pg_url, autocommit=True) as admin:  # as a database restart would
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                   " WHERE application_name = %s", (name,)).fetchone()[0]
        assert killed >= 1
        assert journal.mappings("pax8") == {"acme": 5}
        journal.remember_mapping("pax8", "Globex", 6)
        assert journal.mappings("pax8") == {"acme": 5, "globex": 6}
    finally:
        journal.close()


def test_a_database_that_went_away_is_one_clear_error():
    import uuid

    import psycopg

    from halo_contracts.plans.journal_pg import JournalUnavailable, PostgresJournal
    from support.pg import server_url

    base = server_url()
    name = f"halo_gone_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _database_url(base, name)
    journal = PostgresJournal(url, timeout=2)
    try:
        journal.remember_mapping("pax8", "Acme", 5)
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        with pytest.raises(JournalUnavailable) as err:
            journal.mappings("pax8")
        text = str(err.value)
        assert f"/{name}" in text and "cannot be reached" in text and "HALO_JOURNAL_URL" in text
    finally:
        journal.close()


def test_the_server_does_not_start_without_its_database(monkeypatch, capsys):
    from halo_contracts import cli
    from halo_contracts.plans import journal_pg

    monkeypatch.setattr(journal_pg, "OPEN_TIMEOUT", 2.0)
    for key, value in {**{f"HALO_{k.upper()}": str(v) for k, v in SANDBOX.items()},
                       "HALO_BASE_URL": "http://127.0.0.1:9",
                       "HALO_JOURNAL_URL": "postgresql://halo:hunter2@127.0.0.1:1/halo"}.items():
        monkeypatch.setenv(key, value)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:1/halo" in err and "hunter2" not in err


@pytest.mark.anyio
async def test_a_tool_call_after_the_database_went_away_names_it_and_the_fix(monkeypatch, tmp_path):
    import uuid

    import psycopg

    from halo_contracts.plans import journal_pg
    from halo_contracts.server import build_server
    from support.pg import server_url

    base = server_url()
    name = f"halo_gone_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    monkeypatch.setattr(journal_pg, "OPEN_TIMEOUT", 2.0)
    url = _database_url(base, name)
    settings = load_settings(**SANDBOX, read_only=False)
    server = build_server(settings, transport(create_app(SandboxConfig(seed=7))), journal_path=url)
    async with Client(server) as c:
        ok = await c.call_tool("get_plan", {"plan_id": "plan_0123456789ab"})
        assert ok.is_error and "no plan" in ok.content[0].text
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        gone = await c.call_tool("get_plan", {"plan_id": "plan_0123456789ab"})
    assert gone.is_error
    text = gone.content[0].text
    assert f"/{name}" in text and "cannot be reached" in text and "HALO_JOURNAL_URL" in text


def _database_url(base: str, dbname: str) -> str:
    """``base`` (a postgresql:// URL) naming another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{dbname}"))
