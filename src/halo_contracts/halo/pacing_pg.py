"""One Halo request budget for every server process using one PostgreSQL database.

Halo's limit is per tenant, not per process: replicas behind a load balancer must share one
rolling window. :class:`PostgresRequestBudget` keeps the window's slots in a table
(``halo_budget``) instead of process memory, with the same rules as
:class:`~halo_contracts.halo.pacing.RequestBudget`:

- taking a slot is one transaction under a transaction-scoped advisory lock on the budget's
  key, so two processes never both take the last free slot;
- a slot counts from the moment it is taken (in flight) and is stamped when its answer
  arrives; it leaves the window ``seconds`` (plus a small margin) after its stamp;
- every time is the database's clock, so processes (and hosts) agree on the window;
- an in-flight slot whose process died without stamping it stays counted for
  ``stale_after`` seconds, then expires as if stamped then.

Database calls run in a worker thread: the event loop is never blocked by them.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from psycopg_pool import ConnectionPool

from halo_contracts.halo.pacing import RequestBudget, Slot, announce_answer, announce_wait

logger = logging.getLogger("halo_contracts.halo")

__all__ = ["PostgresRequestBudget"]

_LOCK_BUDGET = 0x424447  # "BDG": advisory-lock namespace

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS halo_budget ("
    " id BIGSERIAL PRIMARY KEY,"
    " budget TEXT NOT NULL,"
    " holder TEXT NOT NULL,"
    " taken DOUBLE PRECISION NOT NULL,"
    " stamp DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS halo_budget_key ON halo_budget(budget)",
)

_NOW = "extract(epoch from clock_timestamp())::double precision"


class _DbSlot(Slot):
    __slots__ = ("row_id",)

    def __init__(self, row_id: int) -> None:
        super().__init__()
        self.row_id = row_id


class PostgresRequestBudget(RequestBudget):
    """At most ``requests`` requests in any rolling ``seconds`` window, across every process
    whose budget has the same ``key`` (the Halo tenant) in the database at ``url``."""

    def __init__(self, url: str, requests: int, seconds: float, *, key: str = "halo",
                 margin: float | None = None, stale_after: float = 300.0, pool_size: int = 4) -> None:
        super().__init__(requests, seconds, margin=margin)
        self.key = f"{key}|{requests}/{self.seconds:g}"
        self.stale_after = float(stale_after)
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False,
                                    kwargs={"autocommit": True}, check=ConnectionPool.check_connection,
                                    name="halo-budget")
        try:
            self._pool.open(wait=True, timeout=30)
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_BUDGET,))
                for statement in _SCHEMA:
                    conn.execute(statement)
        except Exception:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresRequestBudget({self.requests}/{self.seconds:g}s, shared)"

    def close(self) -> None:
        self._pool.close()

    # ---- database side (worker thread) ------------------------------------------------------

    def _expire(self, conn: psycopg.Connection, now: float) -> None:
        conn.execute("DELETE FROM halo_budget WHERE budget = %s AND ("
                     " (stamp IS NOT NULL AND stamp <= %s) OR (stamp IS NULL AND taken <= %s))",
                     (self.key, now - self.seconds - self.margin,
                      now - self.stale_after - self.seconds - self.margin))

    def _try_take(self) -> tuple[int | None, float]:
        """(row id, 0) when a slot was taken; (None, seconds to wait) when the window is full."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_BUDGET, self.key))
            now = conn.execute(f"SELECT {_NOW}").fetchone()[0]
            self._expire(conn, now)
            count, oldest = conn.execute("SELECT count(*), min(stamp) FROM halo_budget WHERE budget = %s",
                                         (self.key,)).fetchone()
            if count < self.requests:
                row = conn.execute("INSERT INTO halo_budget(budget, holder, taken) VALUES (%s, %s, %s)"
                                   " RETURNING id", (self.key, self.holder, now)).fetchone()
                return int(row[0]), 0.0
        wait = (oldest + self.seconds + self.margin - now) if oldest is not None else 0.05
        return None, max(wait, 0.001)

    def _stamp(self, row_id: int) -> None:
        with self._pool.connection() as conn:
            conn.execute(f"UPDATE halo_budget SET stamp = {_NOW} WHERE id = %s", (row_id,))

    def _count(self) -> int:
        with self._pool.connection() as conn, conn.transaction():
            now = conn.execute(f"SELECT {_NOW}").fetchone()[0]
            self._expire(conn, now)
            return int(conn.execute("SELECT count(*) FROM halo_budget WHERE budget = %s",
                                    (self.key,)).fetchone()[0])

    # ---- the RequestBudget API --------------------------------------------------------------

    def in_window(self) -> int:
        """Slots counted in the current window by every process (in-flight ones included)."""
        return self._count()

    async def acquire(self) -> Slot:
        while True:
            row_id, wait = await anyio.to_thread.run_sync(self._try_take)
            if row_id is not None:
                self.acquired += 1
                return _DbSlot(row_id)
            if wait >= 1.0:
                logger.info("Halo request budget full (%d per %g s, shared); waiting %.1f s", self.requests,
                            self.seconds, wait)
                await announce_wait(wait)
            self.waited += wait
            await self._sleep(wait)

    def release(self, slot: Slot) -> None:
        """Stamp the slot (synchronously; :meth:`slot` does it in a worker thread)."""
        if isinstance(slot, _DbSlot):
            self._stamp(slot.row_id)
        slot.stamp = 0.0

    async def release_async(self, slot: Slot) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(self.release, slot)
            except Exception:  # the slot stays counted until stale: conservative
                logger.warning("could not stamp a request-budget slot in PostgreSQL", exc_info=True)

    def slot(self) -> _DbSlotContext:  # type: ignore[override]
        return _DbSlotContext(self)


class _DbSlotContext:
    def __init__(self, budget: PostgresRequestBudget) -> None:
        self._budget = budget
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        self._slot = await self._budget.acquire()
        return self._slot

    async def __aexit__(self, *exc: Any) -> None:
        if self._slot is not None:
            await self._budget.release_async(self._slot)
            if exc[0] is None:
                await announce_answer()
