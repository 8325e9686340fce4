"""Plan and Step: every write the server makes is one of these.

INTERFACE FIRST (shared by every write tool): a tool validates, then builds a ``Plan`` of
domain-level ``Step``s, each with a one-line summary, its friendly parameters, the natural
key that finds its object again, and a preview of the Halo request. Nothing is sent while
building. ``plans.executor.apply_plan`` runs the steps through the journal.

Step parameters may refer to the result of an earlier step with a reference string
``"$step:<index>.<field>"`` (e.g. ``"$step:0.id"`` for the contract created by step 0);
the executor substitutes them before the step runs.

A plan has a stated lifetime (:data:`PLAN_LIFETIME`): ``apply_plan`` refuses to *start* a plan
older than that (Halo may have moved on since it was built: a stale licence-sync plan would
roll quantities back), but a plan already partly applied may always be finished.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StepKind = Literal[
    "create_contract",  # params: {"fields": ContractFields-as-json}
    "update_contract",  # params: {"contract_id": int | ref, "fields": {...}}
    "create_recurring_invoice",  # params: {"client_id", "contract_id", "contract_ref"}
    "add_recurring_lines",  # params: {"recurring_invoice_id", "contract_id", "items": [RecurringItemFields-json]}
    "update_recurring_line",  # params: {"line_id", "recurring_invoice_id", "fields": {...}}
    "create_licence",  # params: {"fields": LicenceFields-json}
    "update_licence",  # params: {"licence_id", "fields": {...}}
    "delete_licence",  # params: {"licence_id"}
]

# pending: never sent. sending: marked (and committed) just before the request left; a step
# still "sending" after a crash may or may not have reached Halo. unknown: sent, answer lost.
# Both are settled by natural key before anything is re-sent (plans/executor.py).
StepStatus = Literal["pending", "sending", "done", "failed", "unknown", "skipped"]
PlanStatus = Literal["planned", "applying", "applied", "failed", "partial"]

# How long a plan may wait before it is first applied. Older plans are refused (plan again);
# a plan already partly applied may still be finished whatever its age.
PLAN_LIFETIME = timedelta(days=7)

# Step statuses after which something may have changed in Halo.
_EFFECT = ("done", "sending", "unknown")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    kind: StepKind
    summary: str  # one line, plain words: "Create contract 'Acme - Managed Services 2026' for Acme Ltd"
    params: dict[str, Any]  # friendly, JSON-serialisable (dates as ISO strings, money as strings)
    natural_key: dict[str, Any] = Field(default_factory=dict)  # e.g. {"client_id": 5, "ref": "…"}
    request: dict[str, Any] | None = None  # preview: {"method", "path", "body"}
    group: str | None = None  # e.g. the contract a renewal step belongs to (progress per group)
    status: StepStatus = "pending"
    result: dict[str, Any] | None = None  # e.g. {"id": 5012}
    error: str | None = None
    sent: dict[str, Any] | None = None  # the request as sent (references substituted)
    note: str | None = None  # how the step was settled, e.g. "found by natural key after a lost answer"
    attempts: int = 0  # how many times the request was sent


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: "plan_" + uuid.uuid4().hex[:12])
    tool: str  # the tool that built it
    title: str  # one line: what the whole plan does
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    steps: list[Step] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # things deliberately left out, with reasons
    summary: dict[str, Any] = Field(default_factory=dict)  # tool-specific totals for the preview
    status: PlanStatus = "planned"

    def add(self, kind: StepKind, summary: str, params: dict[str, Any], *,
            natural_key: dict[str, Any] | None = None, request: dict[str, Any] | None = None,
            group: str | None = None) -> Step:
        step = Step(index=len(self.steps), kind=kind, summary=summary, params=params,
                    natural_key=natural_key or {}, request=request, group=group)
        self.steps.append(step)
        return step

    @property
    def started(self) -> bool:
        """Whether any step may already have changed Halo (done, or sent with the answer lost).
        A step Halo refused changed nothing, so it does not count."""
        return any(s.status in _EFFECT for s in self.steps)

    @property
    def finished(self) -> bool:
        return all(s.status in ("done", "skipped") for s in self.steps)

    def built_at(self) -> datetime:
        """``created_at`` as an aware UTC datetime (old journal rows may be naive)."""
        at = self.created_at
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

    def expires_at(self, lifetime: timedelta | None = None) -> datetime:
        """After this moment the plan is not started any more (see :data:`PLAN_LIFETIME`)."""
        return self.built_at() + (PLAN_LIFETIME if lifetime is None else lifetime)

    def expired(self, now: datetime | None = None, lifetime: timedelta | None = None) -> bool:
        """True when applying would be refused: past its lifetime and nothing applied yet."""
        now = now or datetime.now(UTC)
        return not self.started and not self.finished and now > self.expires_at(lifetime)

    @staticmethod
    def ref(index: int, field: str = "id") -> str:
        """A reference to a field of an earlier step's result."""
        return f"$step:{index}.{field}"
