"""The SQLite journal: plans, steps, requests, answers, created ids, remembered mappings.

INTERFACE FIRST (implementation in progress)."""

from __future__ import annotations

from pathlib import Path

from halo_contracts.plans.models import Plan, Step


class Journal:
    """One SQLite file (``<data dir>/journal.sqlite3``, or ``":memory:"`` in tests)."""

    def __init__(self, path: str | Path) -> None:
        raise NotImplementedError

    def close(self) -> None: ...

    def save_plan(self, plan: Plan) -> None:
        """Store a new plan (status planned) with all its steps."""

    def get_plan(self, plan_id: str) -> Plan | None: ...

    def save_step(self, plan_id: str, step: Step) -> None:
        """Persist one step's status/result/error (and the request sent / answer received)."""

    def set_plan_status(self, plan_id: str, status: str) -> None: ...

    # Customer-name -> Halo client id mappings confirmed by a user (licence sync).
    def remember_mapping(self, source: str, customer: str, client_id: int) -> None: ...

    def mappings(self, source: str) -> dict[str, int]: ...
