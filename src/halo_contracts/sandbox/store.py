"""SQLite storage for the sandbox: one table per Halo resource, one JSON document per row.

Each table keeps the whole Halo object in ``doc`` (JSON text) and exposes the fields the
list filters need as generated, indexed columns, so filtering, counting, ordering and paging
happen in SQL even for a 10,000-contract book.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

# table -> (first id, id step, {generated column: json field})
TABLES: dict[str, tuple[int, int, dict[str, str]]] = {
    "clients": (1, 1, {"name": "name", "inactive": "inactive", "toplevel_id": "toplevel_id"}),
    "slas": (1, 1, {"name": "name"}),
    "lookups": (1, 1, {"lookupid": "lookupid", "code": "id"}),
    "contracts": (
        1001,
        1,
        {
            "client_id": "client_id",
            "site_id": "site_id",
            "active": "active",
            "previouscontract": "previouscontract",
            "ref": "ref",
            "contracttype": "contracttype",
        },
    ),
    # recurring invoice headers: Halo hands out negative ids
    "rinvoices": (-101, -1, {"client_id": "client_id", "contract_id": "contract_id"}),
    "rlines": (1, 1, {"ihid": "ihid", "contract_id": "contract_id"}),
    "invoices": (
        20001,
        1,
        {"client_id": "client_id", "contract_id": "contract_id", "invoice_date": "invoice_date"},
    ),
    "ilines": (1, 1, {"ihid": "ihid", "contract_id": "contract_id"}),
    "prepay": (1, 1, {"client_id": "client_id", "contract_id": "contract_id"}),
    "actions": (
        1,
        1,
        {"ticket_id": "ticket_id", "contract_id": "actioncontractid", "datetime": "datetime"},
    ),
    "tickets": (
        1,
        1,
        {"client_id": "client_id", "contract_id": "contract_id", "dateoccurred": "dateoccurred"},
    ),
    "licences": (1, 1, {"client_id": "client_id", "is_active": "is_active", "name": "name"}),
    "meta": (1, 1, {"key": "key"}),
}

_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False)


def _dumps(doc: dict[str, Any]) -> str:
    return _ENCODER.encode(doc)


class Store:
    """Thread-safe document store (one connection, one lock)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.lock:
            for table, (_, _, cols) in TABLES.items():
                generated = "".join(
                    f", {col} GENERATED ALWAYS AS (json_extract(doc, '$.{field}')) VIRTUAL"
                    for col, field in cols.items()
                )
                self.db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, doc TEXT NOT NULL{generated})"
                )
                for col in cols:
                    self.db.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{col} ON {table}({col})")

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        with self.lock:
            self.db.close()

    def is_empty(self) -> bool:
        with self.lock:
            return self.db.execute("SELECT count(*) FROM contracts").fetchone()[0] == 0 and (
                self.db.execute("SELECT count(*) FROM clients").fetchone()[0] == 0
            )

    def next_id(self, table: str) -> int:
        first, step, _ = TABLES[table]
        with self.lock:
            if step > 0:
                row = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
                return first if row is None else max(first, row + 1)
            row = self.db.execute(f"SELECT min(id) FROM {table}").fetchone()[0]
            return first if row is None else min(first, row - 1)

    def count(self, table: str) -> int:
        with self.lock:
            return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def get(self, table: str, id_: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(f"SELECT doc FROM {table} WHERE id = ?", (id_,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, table: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = list(dict.fromkeys(ids))
        out: dict[int, dict[str, Any]] = {}
        with self.lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for id_, doc in self.db.execute(f"SELECT id, doc FROM {table} WHERE id IN ({marks})", chunk):
                    out[id_] = json.loads(doc)
        return out

    def insert(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if not doc.get("id"):
                doc["id"] = self.next_id(table)
            self.db.execute(f"INSERT INTO {table} (id, doc) VALUES (?, ?)", (doc["id"], _dumps(doc)))
        return doc

    def insert_many(self, table: str, docs: Sequence[dict[str, Any]]) -> None:
        """Bulk insert; every doc must already carry its id."""
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self.db.executemany(
                    f"INSERT INTO {table} (id, doc) VALUES (?, ?)", ((d["id"], _dumps(d)) for d in docs)
                )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def load(self, docs: dict[str, Sequence[dict[str, Any]]]) -> None:
        """Bulk insert several tables at once (indexes rebuilt once at the end: faster)."""
        with self.lock:
            self.db.execute("BEGIN")
            try:
                for table in docs:
                    for col in TABLES[table][2]:
                        self.db.execute(f"DROP INDEX IF EXISTS ix_{table}_{col}")
                for table, rows in docs.items():
                    if rows:
                        self.db.executemany(
                            f"INSERT INTO {table} (id, doc) VALUES (?, ?)", ((d["id"], _dumps(d)) for d in rows)
                        )
                for table in docs:
                    for col in TABLES[table][2]:
                        self.db.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{col} ON {table}({col})")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def put(self, table: str, doc: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (_dumps(doc), doc["id"]))

    def delete(self, table: str, id_: int) -> bool:
        with self.lock:
            return self.db.execute(f"DELETE FROM {table} WHERE id = ?", (id_,)).rowcount > 0

    def delete_where(self, table: str, where: str, params: Sequence[Any]) -> int:
        with self.lock:
            return self.db.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount

    def where(self, table: str, where: str = "1=1", params: Sequence[Any] = (), order: str = "id") -> list[dict]:
        with self.lock:
            rows = self.db.execute(f"SELECT doc FROM {table} WHERE {where} ORDER BY {order}", params).fetchall()
        return [json.loads(r[0]) for r in rows]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ list queries
    def query(
        self,
        table: str,
        clauses: Sequence[tuple[str, Sequence[Any]]] = (),
        order: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
        order_sql: dict[str, str] | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filtered, ordered, paged read: returns (total matching rows, page of docs).

        ``order`` items are (Halo field name, descending); unknown-looking names are ignored,
        ``order_sql`` maps computed fields (e.g. ``client_name``) to SQL expressions.
        """
        where = " AND ".join(f"({c})" for c, _ in clauses) or "1=1"
        params: list[Any] = [p for _, ps in clauses for p in ps]
        terms = []
        for name, desc in order:
            if not _FIELD_RE.match(name):
                continue
            expr = (order_sql or {}).get(name.lower(), f"json_extract(doc, '$.{name}')")
            terms.append(f"{expr} {'DESC' if desc else 'ASC'}")
        terms.append("id ASC")
        with self.lock:
            total = self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
            sql = f"SELECT doc FROM {table} WHERE {where} ORDER BY {', '.join(terms)}"
            page_params = list(params)
            if limit is not None:
                sql += " LIMIT ? OFFSET ?"
                page_params += [limit, offset]
            rows = self.db.execute(sql, page_params).fetchall()
        return total, [json.loads(r[0]) for r in rows]

    # ------------------------------------------------------------------ metadata
    def get_meta(self, key: str) -> Any:
        with self.lock:
            row = self.db.execute("SELECT doc FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0])["value"] if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
            self.db.execute("INSERT INTO meta (doc) VALUES (?)", (_dumps({"key": key, "value": value}),))
