"""The journal: plans, steps, requests, answers, created ids, remembered mappings.

One interface (:class:`JournalBase`), two stores: :class:`Journal`, one SQLite file (WAL,
``synchronous=FULL``, the embedded default), and ``plans.journal_pg.PostgresJournal``
(``HALO_JOURNAL_URL=postgresql://...``), shared by every server process using that database.
:func:`open_journal` picks one. Both hold every plan the server built and the life of each
of its steps, in the same tables, through the same SQL (the common dialect of the two):

- ``plans``: id, tool, title, status, warnings/skipped/summary, timestamps, and who previewed
  (``owner``), confirmed (``confirmation``: accepted/declined/cancelled/not_needed/unavailable,
  ``confirmed_by``/``_at``) and applied (``applied_by``/``_at``) it: principal ids and labels,
  never a credential (schema 2: the SQLite store migrates an older file on open with
  :meth:`JournalBase._upgrade`; the PostgreSQL store adds every missing column);
- ``steps``: one row per step: kind, summary, params, natural key, the previewed request,
  its status (``pending`` -> ``sending`` -> ``done`` | ``failed`` | ``unknown``), the request
  actually sent (with earlier steps' ids in place of their placeholders), Halo's answer summary
  (``result``: created/changed ids), the error text, attempts and timestamps, and ``refs``
  (where earlier steps' ids go: ``plans.models.ParamRef``; NULL in rows written by 0.1, whose
  ``"$step:N.id"`` id strings are read as references on load, see ``models.legacy_refs``);
- ``mappings``: customer name -> Halo client id, per source (licence sync);
- ``product_mappings``: a distributor's product code -> Halo product code, per source;
- ``licence_lines``: licence id -> the recurring line confirmed to bill it;
- ``billing_rules``: a client's charge billing rules and target invoice per distributor
  (client 0: every client; distributor ``*``: the global default), the fields set at that level.

The executor writes ``sending`` (with the request) and commits it *before* the request
leaves, and ``done`` with the answer after it: a crash at any point leaves either a
``pending`` step (never sent) or a ``sending``/``unknown`` step (maybe sent) that the
executor settles by natural key before anything is re-sent.

Secrets never enter the journal: requests are stored as method/path/query/body previews
(no headers), and any key that looks like a credential is masked before writing.

Claims (one applier per plan) hold across processes: SQLite serialises them with
``BEGIN IMMEDIATE`` on the shared file, PostgreSQL with a transaction-scoped advisory lock
per plan.

Thread-safety: SQLite: one connection guarded by a lock; fine for one process with worker
threads. PostgreSQL: a connection pool; every call takes its own connection.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from halo_contracts.plans.journal_guard import FileWatch, check_writable, from_sqlite_error, translated
from halo_contracts.plans.models import Actor, Audit, ParamRef, Plan, Step, legacy_refs

SCHEMA_VERSION = 2

# Who previewed, confirmed and applied each plan (schema 2): principal ids and labels (token
# hashes, "local"; never a credential), the confirmation decision and ISO timestamps.
# ``owner`` NULL marks a plan saved before plans had owners.
AUDIT_COLUMNS = ("owner", "owner_label", "confirmation", "confirmed_by", "confirmed_label", "confirmed_at",
                 "applied_by", "applied_label", "applied_at")

# schema version -> the statements that bring the previous version up to it (shared SQL).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: tuple(f"ALTER TABLE plans ADD COLUMN {column} TEXT" for column in AUDIT_COLUMNS),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    skipped TEXT NOT NULL DEFAULT '[]',
    summary TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    owner_label TEXT,
    confirmation TEXT,
    confirmed_by TEXT,
    confirmed_label TEXT,
    confirmed_at TEXT,
    applied_by TEXT,
    applied_label TEXT,
    applied_at TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    params TEXT NOT NULL,
    natural_key TEXT NOT NULL DEFAULT '{}',
    request TEXT,
    grp TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    sent TEXT,
    result TEXT,
    error TEXT,
    note TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    refs TEXT,
    PRIMARY KEY (plan_id, idx)
);
CREATE TABLE IF NOT EXISTS mappings (
    source TEXT NOT NULL,
    customer TEXT NOT NULL,
    client_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, customer)
);
CREATE TABLE IF NOT EXISTS product_mappings (
    source TEXT NOT NULL,
    feed_code TEXT NOT NULL,
    halo_code TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, feed_code)
);
CREATE TABLE IF NOT EXISTS licence_lines (
    licence_id INTEGER PRIMARY KEY,
    line_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS billing_rules (
    distributor TEXT NOT NULL,
    client_id INTEGER NOT NULL,
    rules TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (distributor, client_id)
);
CREATE INDEX IF NOT EXISTS plans_created ON plans(created_at);
CREATE TABLE IF NOT EXISTS claims (
    plan_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""

# A journal target with one of these prefixes is a PostgreSQL database.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

HOST = socket.gethostname()
# A claim whose holder has not reported for this long is stale when its process cannot be
# checked (another host sharing the journal file).
CLAIM_LEASE_SECONDS = 600.0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True

# Keys whose values are never written to the journal.
_SECRET_WORDS = ("secret", "password", "token", "authorization", "api_key", "apikey")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def scrub(value: Any) -> Any:
    """A copy of ``value`` with credential-looking keys masked (defence in depth)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and any(w in k.lower() for w in _SECRET_WORDS):
                out[k] = "***"
            else:
                out[k] = scrub(v)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(scrub(value), default=str, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _refs(step: Step) -> str:
    return json.dumps([r.model_dump(mode="json") for r in step.refs])


def _step(r: Any) -> Step:
    """A step from its row (any store's row that reads by column name)."""
    params, key = _load(r["params"]), _load(r["natural_key"]) or {}
    if r["refs"] is None:  # written by 0.1
        params, key, refs = legacy_refs(params, key)
    else:
        refs = [ParamRef.model_validate(x) for x in json.loads(r["refs"])]
    return Step(index=r["idx"], kind=r["kind"], summary=r["summary"], params=params, natural_key=key,
                request=_load(r["request"]), group=r["grp"], status=r["status"], result=_load(r["result"]),
                error=r["error"], sent=_load(r["sent"]), note=r["note"], attempts=r["attempts"], refs=refs)


def _actor(row: Any, id_column: str, label_column: str) -> Actor | None:
    value = row[id_column]
    return None if value is None else Actor(id=value, label=row[label_column] or value)


def _audit(row: Any) -> Audit:
    def at(column: str) -> datetime | None:
        return datetime.fromisoformat(row[column]) if row[column] else None

    return Audit(previewed_by=_actor(row, "owner", "owner_label"), confirmation=row["confirmation"],
                 confirmed_by=_actor(row, "confirmed_by", "confirmed_label"), confirmed_at=at("confirmed_at"),
                 applied_by=_actor(row, "applied_by", "applied_label"), applied_at=at("applied_at"))


def _normalise_customer(name: str) -> str:
    return " ".join(name.split()).casefold()


class JournalBase(ABC):
    """The journal's interface. Subclasses supply connections, transactions, the schema and
    the cross-process lock of a claim; every query is shared (``?`` placeholders, SQL that
    SQLite and PostgreSQL both accept)."""

    # ---- what a store provides -----------------------------------------------------------

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Any]:
        """A write transaction: ``with self._tx() as db: db.execute(sql, params)``; committed
        (durably) when the block ends, rolled back on an exception."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A connection for reads: ``with self._read() as db: db.execute(...).fetchall()``."""

    @abstractmethod
    def _lock_plan(self, db: Any, plan_id: str) -> None:
        """Inside a ``_tx``: serialise this plan's claim against every other process."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""

    def __enter__(self) -> JournalBase:
        return self

    def _upgrade(self) -> None:
        """Bring a journal written by an older version up to :data:`SCHEMA_VERSION` (after the
        ``CREATE TABLE IF NOT EXISTS`` schema ran; a new journal already has every column). One
        transaction: two processes opening an old journal at once migrate it once."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row["value"]) if row is not None else SCHEMA_VERSION
            if row is None:
                db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            for version in sorted(v for v in MIGRATIONS if current < v <= SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plans -----------------------------------------------------------------------------

    def save_plan(self, plan: Plan) -> None:
        """Store a new plan (status planned) with all its steps, and who previewed it
        (``plan.audit.previewed_by``)."""
        now = _now()
        owner = plan.audit.previewed_by
        with self._tx() as db:
            exists = db.execute("SELECT 1 FROM plans WHERE id = ?", (plan.id,)).fetchone()
            if exists:
                raise ValueError(f"plan {plan.id} is already in the journal")
            db.execute(
                "INSERT INTO plans(id, tool, title, status, created_at, updated_at, warnings, skipped, summary,"
                " owner, owner_label) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (plan.id, plan.tool, plan.title, plan.status, plan.created_at.isoformat(), now,
                 _dump(plan.warnings), _dump(plan.skipped), _dump(plan.summary), owner and owner.id,
                 owner and owner.label),
            )
            for step in plan.steps:
                db.execute(
                    "INSERT INTO steps(plan_id, idx, kind, summary, params, natural_key, request, grp, status,"
                    " sent, result, error, note, attempts, updated_at, refs)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (plan.id, step.index, step.kind, step.summary, _dump(step.params), _dump(step.natural_key),
                     _dump(step.request), step.group, step.status, _dump(step.sent), _dump(step.result),
                     step.error, step.note, step.attempts, now, _refs(step)),
                )

    def get_plan(self, plan_id: str) -> Plan | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM plans WHERE id = ?", (plan_id,)).fetchone()
            if row is None:
                return None
            step_rows = db.execute("SELECT * FROM steps WHERE plan_id = ? ORDER BY idx", (plan_id,)).fetchall()
        steps = [_step(r) for r in step_rows]
        return Plan(id=row["id"], tool=row["tool"], title=row["title"],
                    created_at=datetime.fromisoformat(row["created_at"]), steps=steps,
                    warnings=_load(row["warnings"]), skipped=_load(row["skipped"]),
                    summary=_load(row["summary"]), status=row["status"], audit=_audit(row))

    def record_confirmation(self, plan_id: str, decision: str, actor: Actor) -> None:
        """How the person's approval went just before an apply (accepted, declined, cancelled,
        not_needed, unavailable), by whom and when; the latest decision replaces the last."""
        with self._tx() as db:
            cur = db.execute("UPDATE plans SET confirmation = ?, confirmed_by = ?, confirmed_label = ?,"
                             " confirmed_at = ?, updated_at = ? WHERE id = ?",
                             (decision, actor.id, actor.label, _now(), _now(), plan_id))
            if cur.rowcount != 1:
                raise KeyError(f"no plan {plan_id}")

    def record_applied(self, plan_id: str, actor: Actor) -> None:
        """Who started the latest apply of the plan, and when."""
        with self._tx() as db:
            cur = db.execute("UPDATE plans SET applied_by = ?, applied_label = ?, applied_at = ?, updated_at = ?"
                             " WHERE id = ?", (actor.id, actor.label, _now(), _now(), plan_id))
            if cur.rowcount != 1:
                raise KeyError(f"no plan {plan_id}")

    def list_plans(self, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest plans: id, tool, title, status, created_at."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, tool, title, status, created_at FROM plans ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(r) for r in rows]

    def save_step(self, plan_id: str, step: Step) -> None:
        """Persist one step's status/result/error (and the request sent / answer received).

        Committed (and synced) before returning: the executor relies on a ``sending`` mark
        being on disk before the request leaves."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE steps SET status = ?, sent = ?, result = ?, error = ?, note = ?, attempts = ?,"
                " params = ?, refs = ?, updated_at = ? WHERE plan_id = ? AND idx = ?",
                (step.status, _dump(step.sent), _dump(step.result), step.error, step.note, step.attempts,
                 _dump(step.params), _refs(step), _now(), plan_id, step.index),
            )
            if cur.rowcount != 1:
                raise KeyError(f"no step {step.index} in plan {plan_id}")
            db.execute("UPDATE plans SET updated_at = ? WHERE id = ?", (_now(), plan_id))

    def set_plan_status(self, plan_id: str, status: str) -> None:
        with self._tx() as db:
            cur = db.execute("UPDATE plans SET status = ?, updated_at = ? WHERE id = ?", (status, _now(), plan_id))
            if cur.rowcount != 1:
                raise KeyError(f"no plan {plan_id}")

    # ---- claims: one applier per plan across processes sharing this file ----------------

    def claim(self, plan_id: str, owner: str) -> dict[str, Any] | None:
        """Claim ``plan_id`` for applying. None when claimed; otherwise the live holder
        (``owner``, ``host``, ``pid``, ``heartbeat``). A holder is live while its process runs
        (same host) or, on another host, while it reported within ``CLAIM_LEASE_SECONDS``."""
        now = time.time()
        with self._tx() as db:
            self._lock_plan(db, plan_id)
            row = db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE plan_id = ?",
                             (plan_id,)).fetchone()
            if row is not None and row["owner"] != owner:
                same_host = row["host"] == HOST
                live = (_process_alive(int(row["pid"])) if same_host
                        else now - float(row["heartbeat"]) < CLAIM_LEASE_SECONDS)
                if live:
                    return dict(row)
            db.execute("INSERT INTO claims(plan_id, owner, host, pid, heartbeat) VALUES (?,?,?,?,?)"
                       " ON CONFLICT(plan_id) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
                       " pid = excluded.pid, heartbeat = excluded.heartbeat",
                       (plan_id, owner, HOST, os.getpid(), now))
        return None

    def heartbeat(self, plan_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE claims SET heartbeat = ? WHERE plan_id = ? AND owner = ?",
                       (time.time(), plan_id, owner))

    def release(self, plan_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM claims WHERE plan_id = ? AND owner = ?", (plan_id, owner))

    # ---- mappings (licence sync) ----------------------------------------------------------

    # Customer-name -> Halo client id mappings confirmed by a user (licence sync).
    def remember_mapping(self, source: str, customer: str, client_id: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO mappings(source, customer, client_id, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT(source, customer) DO UPDATE SET client_id = excluded.client_id,"
                " updated_at = excluded.updated_at",
                (source, _normalise_customer(customer), int(client_id), _now()),
            )

    def forget_mapping(self, source: str, customer: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM mappings WHERE source = ? AND customer = ?",
                             (source, _normalise_customer(customer)))
            return cur.rowcount > 0

    def mappings(self, source: str) -> dict[str, int]:
        """Remembered mappings of one source; keys are normalised (trimmed, single-spaced,
        case-folded) customer names."""
        with self._read() as db:
            rows = db.execute("SELECT customer, client_id FROM mappings WHERE source = ? ORDER BY customer",
                                    (source,)).fetchall()
        return {r["customer"]: r["client_id"] for r in rows}

    # ---- product mappings (licence sync) ---------------------------------------------------

    def remember_product_mapping(self, source: str, feed_code: str, halo_code: str) -> None:
        """A distributor's product code -> the Halo product code it is billed under."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO product_mappings(source, feed_code, halo_code, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT(source, feed_code) DO UPDATE SET halo_code = excluded.halo_code,"
                " updated_at = excluded.updated_at",
                (source, feed_code.strip().casefold(), halo_code.strip(), _now()),
            )

    def product_mappings(self, source: str) -> dict[str, str]:
        """Remembered product mappings of one source; keys are trimmed, case-folded feed codes."""
        with self._read() as db:
            rows = db.execute("SELECT feed_code, halo_code FROM product_mappings WHERE source = ? ORDER BY feed_code",
                              (source,)).fetchall()
        return {r["feed_code"]: r["halo_code"] for r in rows}

    def remember_licence_line(self, licence_id: int, line_id: int) -> None:
        """The recurring line the MSP confirmed bills a licence (seats against billing)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO licence_lines(licence_id, line_id, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(licence_id) DO UPDATE SET line_id = excluded.line_id, updated_at = excluded.updated_at",
                (int(licence_id), int(line_id), _now()))

    def licence_lines(self) -> dict[int, int]:
        """Confirmed licence id -> recurring line id links."""
        with self._read() as db:
            rows = db.execute("SELECT licence_id, line_id FROM licence_lines ORDER BY licence_id").fetchall()
        return {int(r["licence_id"]): int(r["line_id"]) for r in rows}

    # ---- billing rules (distributor charges) ------------------------------------------------

    def set_billing_rules(self, distributor: str, client_id: int, rules: dict[str, Any]) -> None:
        """Store the fields set at one level (``rules`` empty: the level is removed)."""
        with self._tx() as db:
            if not rules:
                db.execute("DELETE FROM billing_rules WHERE distributor = ? AND client_id = ?",
                           (distributor, int(client_id)))
                return
            db.execute(
                "INSERT INTO billing_rules(distributor, client_id, rules, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT(distributor, client_id) DO UPDATE SET rules = excluded.rules,"
                " updated_at = excluded.updated_at",
                (distributor, int(client_id), json.dumps(rules, sort_keys=True), _now()))

    def billing_rules(self, distributors: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
        """Every stored level of these distributors: (distributor, client id) -> fields."""
        if not distributors:
            return {}
        marks = ",".join("?" * len(distributors))
        with self._read() as db:
            rows = db.execute(f"SELECT distributor, client_id, rules FROM billing_rules WHERE distributor IN ({marks})"
                              " ORDER BY distributor, client_id", tuple(distributors)).fetchall()
        return {(r["distributor"], int(r["client_id"])): _load(r["rules"]) or {} for r in rows}

    def plans_of(self, tool: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Every plan of ``tool`` whatever its status: id, status and summary, oldest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, status, summary FROM plans WHERE tool = ? ORDER BY created_at, id LIMIT ?",
                (tool, limit)).fetchall()
        return [{"id": r["id"], "status": r["status"], "summary": _load(r["summary"])} for r in rows]

    def applied_plans_of(self, tool: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Plans of ``tool`` that changed Halo (applied or partly applied): id and summary, newest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, summary FROM plans WHERE tool = ? AND status IN ('applied', 'partial')"
                " ORDER BY created_at DESC LIMIT ?", (tool, limit)).fetchall()
        return [{"id": r["id"], "summary": _load(r["summary"])} for r in rows]




class Journal(JournalBase):
    """The SQLite store: one file (``<data dir>/journal.sqlite3``, or ``":memory:"`` in tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._add_missing_columns()
            self._db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO NOTHING",
                             (str(SCHEMA_VERSION),))
        self._watch = FileWatch(self.path) if self.path != ":memory:" else None
        self._upgrade()

    def _add_missing_columns(self) -> None:
        """Columns added since 0.1 (a journal written by 0.1 has none of them)."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(steps)")}
        if "refs" not in have:
            self._db.execute("ALTER TABLE steps ADD COLUMN refs TEXT")

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:  # pragma: no cover - closing twice
                pass

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        if self._watch is not None:
            self._watch.check()  # deleted or replaced since it was opened: refuse the write
        return translated(self.path, _Transaction(self._db, self._lock))

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, translated(self.path, nullcontext(self._db)) as db:
            yield db

    def _lock_plan(self, db: Any, plan_id: str) -> None:
        """``BEGIN IMMEDIATE`` already holds the file's write lock: claims are serialised."""


def open_journal(target: str | Path) -> JournalBase:
    """The journal at ``target``: a ``postgresql://`` URL opens the PostgreSQL store (shared
    by every process using that database), anything else is a SQLite file path."""
    text = str(target)
    if text.startswith(POSTGRES_SCHEMES):
        from halo_contracts.plans.journal_pg import PostgresJournal

        return PostgresJournal(text)
    if text == ":memory:":
        return Journal(target)
    check_writable(text)
    try:
        return Journal(target)
    except sqlite3.Error as exc:
        raise from_sqlite_error(text, exc) from None
    except OSError as exc:
        raise from_sqlite_error(text, exc) from None


class _Transaction:
    """``with`` block = one IMMEDIATE transaction under the journal's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock):
        self.db = db
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")
        finally:
            self.lock.release()
