"""The PostgreSQL store of the journal (``HALO_JOURNAL_URL=postgresql://...``).

Same tables and the same queries as the SQLite store (:class:`~halo_contracts.plans.journal.
JournalBase`), so every server process using the database sees the same plans, steps, claims
and remembered mappings: a plan previewed on one replica can be applied on another.

- every call takes a connection from a pool (``psycopg_pool``), so threads and processes
  never share one;
- a write is one transaction, committed (``synchronous_commit`` as the server has it, on by
  default) before the call returns: a ``sending`` mark is durable before the request leaves;
- a claim takes a transaction-scoped advisory lock on the plan id first, so two processes
  claiming one plan at once are serialised (the second sees the first's claim);
- creating the schema is serialised with an advisory lock too (replicas start together);
  a database made by an older version gets every column the schema names that it lacks
  (``ADD COLUMN IF NOT EXISTS``), so a column added to the shared DDL needs no PostgreSQL
  migration of its own.

The URL may carry a password: it is never logged, and errors name the host and database
only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from halo_contracts.plans.journal import _SCHEMA, SCHEMA_VERSION, JournalBase
from halo_contracts.plans.journal_guard import JournalUnavailable

__all__ = ["OPEN_TIMEOUT", "JournalUnavailable", "PostgresJournal", "describe_url", "schema_columns"]

# Seconds a server waits for its database at start (it may be starting too).
OPEN_TIMEOUT = 30.0

log = logging.getLogger("halo_contracts.journal")

# Advisory-lock namespaces (first key of the two-int form).
_LOCK_SCHEMA = 0x4A524E  # "JRN"
_LOCK_CLAIM = 0x434C4D  # "CLM"


def postgres_schema(sqlite_schema: str = _SCHEMA) -> str:
    """The SQLite DDL in PostgreSQL's words (the only type that differs is REAL)."""
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", sqlite_schema)


_TABLE = re.compile(r"^\s*CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*)\)\s*$", re.S)
_CONSTRAINTS = ("PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT")


def schema_columns(schema: str | None = None) -> list[tuple[str, str]]:
    """(table, column definition) for every column of the schema, for ``ADD COLUMN IF NOT
    EXISTS`` on a database made by an older version: name, type, and ``NOT NULL`` only with a
    default (keys and references are the tables' own, present since the first version)."""
    out: list[tuple[str, str]] = []
    for statement in (schema or postgres_schema()).split(";"):
        match = _TABLE.match(statement)
        if match is None:
            continue
        table, body = match.groups()
        for part in re.split(r",\s*\n", body) if "\n" in body else body.split(","):
            definition = " ".join(part.split())
            if not definition or definition.split()[0].upper() in _CONSTRAINTS:
                continue
            definition = re.sub(r"\s+(PRIMARY KEY|REFERENCES\b.*)$", "", definition)
            if "NOT NULL" in definition and "DEFAULT" not in definition:
                definition = " ".join(definition.replace("NOT NULL", " ").split())
            out.append((table, definition))
    return out


def describe_url(url: str) -> str:
    """``host:port/db`` of a PostgreSQL URL, without user or password (for messages)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable PostgreSQL URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _first_line(exc: BaseException, url: str) -> str:
    """The error's first line, with the URL's password (if it ever appears) masked."""
    text = str(exc).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    return detail.replace(str(password), "***") if password else detail


def _pg_sql(sql: str) -> str:
    """``?`` placeholders -> psycopg's ``%s`` (and a literal ``%`` escaped)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Conn:
    """A psycopg connection that speaks the journal's ``?`` SQL and returns dict rows."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: tuple | list | None = None) -> psycopg.Cursor:
        return self.raw.execute(_pg_sql(sql), params)


class PostgresJournal(JournalBase):
    """The journal in a PostgreSQL database, shared by every process that opens the same URL."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float | None = None) -> None:
        timeout = OPEN_TIMEOUT if timeout is None else timeout
        self.url = url
        self.where = describe_url(url)
        # check: a connection the server dropped (a restart, an idle timeout) is replaced
        # before use instead of failing the call
        self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
                                    kwargs={"autocommit": True, "row_factory": dict_row},
                                    check=ConnectionPool.check_connection, name="halo-journal")
        try:
            self._pool.open(wait=True, timeout=timeout)
            self._create_schema()
        except Exception as exc:
            self._pool.close()
            raise JournalUnavailable(f"cannot open the PostgreSQL journal at {self.where}: "
                                     f"{_first_line(exc, url)}") from None

    def _create_schema(self) -> None:
        with self._tx() as db:
            db.raw.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_SCHEMA,))
            for statement in postgres_schema().split(";"):
                if statement.strip():
                    db.raw.execute(statement)
            # a database made by an older version: every column the schema names, added if missing
            for table, column in schema_columns():
                db.raw.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column}")
            # the tables are now those of this version
            db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
                       " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    # ---- the store -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[_Conn]:
        with self._reachable(), self._pool.connection() as raw, raw.transaction():
            yield _Conn(raw)

    @contextmanager
    def _read(self) -> Iterator[_Conn]:
        with self._reachable(), self._pool.connection() as raw:
            yield _Conn(raw)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """A lost database (down, unreachable, pool exhausted) as one JournalUnavailable."""
        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise JournalUnavailable(
                f"The plan journal (PostgreSQL at {self.where}) cannot be reached ({_first_line(exc, self.url)}). "
                "Fix: check that the database server is running and accepts connections, and HALO_JOURNAL_URL; "
                "then call again (a plan resumes where it stopped, a step already sent is checked in Halo "
                "before anything is re-sent).") from None

    def _lock_plan(self, db: Any, plan_id: str) -> None:
        db.raw.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLAIM, plan_id))

    def close(self) -> None:
        self._pool.close()
