"""Plan and Step: every write the server makes is one of these.

INTERFACE FIRST (shared by every write tool): a tool validates, then builds a ``Plan`` of
domain-level ``Step``s, each with a one-line summary, its friendly parameters, the natural
key that finds its object again, and a preview of the Halo request. Nothing is sent while
building. ``plans.executor.apply_plan`` runs the steps through the journal.

A step may need the id an earlier step creates (the recurring invoice of a contract the plan
creates). The tool puts a :class:`StepRef` (``Plan.ref(0)``) where that id goes in the step's
params or natural key. ``Step`` takes it out into ``Step.refs`` (a :class:`ParamRef`: where,
which step, which field) and leaves a placeholder id there (:func:`placeholder`: a negative
number no Halo id can be), so the previewed request is the request sent, except for that
number. The executor puts the real id at those places, and nowhere else, before the step runs.
References are structure, never text: no string in params (names, notes, descriptions from a
person, a feed or Halo) is ever read as one, so every string is sent as it is.

A plan has a stated lifetime (:data:`PLAN_LIFETIME`): ``apply_plan`` refuses to *start* a plan
older than that (Halo may have moved on since it was built: a stale licence-sync plan would
roll quantities back), but a plan already partly applied may always be finished.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StepKind = Literal[
    "create_contract",  # params: {"fields": ContractFields-as-json}
    "update_contract",  # params: {"contract_id": int | ref, "fields": {...}}
    "create_recurring_invoice",  # params: {"client_id", "contract_id", "contract_ref", schedule (optional)}
    # params: {"recurring_invoice_id", "contract_id", "items": [RecurringItemFields-json],
    #          "header_frequency" (optional: the header's, when the plan knows it)}
    "add_recurring_lines",
    "update_recurring_line",  # params: {"line_id", "recurring_invoice_id", "fields": {...}}
    "create_licence",  # params: {"fields": LicenceFields-json}
    "update_licence",  # params: {"licence_id", "fields": {...}}
    "delete_licence",  # params: {"licence_id"}
    "create_invoice",  # params: {"client_id", "invoice_date", "lines": [ChargeDraft-json]}
    "add_invoice_lines",  # params: {"invoice_id", "lines": [ChargeDraft-json]}
    "add_recurring_charges",  # params: {"recurring_invoice_id", "lines": [ChargeDraft-json]}
    "delete_recurring_invoice",  # params: {"recurring_invoice_id"} (verify's cleanup)
    "delete_contract",  # params: {"contract_id"} (verify's cleanup)
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


# The placeholder id of step N's result in previews and stored params: PLACEHOLDER_BASE - N
# (step 0: -1000000, step 3: -1000003). Halo ids are positive, and Halo reads 0 and -1 as "none",
# so a placeholder can neither be a real id nor be mistaken for "none".
PLACEHOLDER_BASE = -1_000_000


def placeholder(step: int) -> int:
    """The number that stands for the id step ``step`` creates, until it exists."""
    return PLACEHOLDER_BASE - step


class StepRef(BaseModel):
    """The id an earlier step's result will hold: put it in a step's params or natural key.

    A Python object, never a string: nothing a person, a feed or Halo writes can become one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: int = Field(ge=0, description="index of the earlier step")
    field: Literal["id"] = "id"


class ParamRef(BaseModel):
    """Where a :class:`StepRef` sits in a step: ``path`` from the step (``["params",
    "contract_id"]``, ``["natural_key", "contract_id"]``), keys and list positions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: tuple[str | int, ...]
    step: int = Field(ge=0)
    field: Literal["id"] = "id"

    @property
    def placeholder(self) -> int:
        return placeholder(self.step)


def _take_refs(value: Any, path: tuple[str | int, ...], found: list[ParamRef]) -> Any:
    """``value`` with every :class:`StepRef` replaced by its placeholder (recorded in ``found``)."""
    if isinstance(value, StepRef):
        found.append(ParamRef(path=path, step=value.step, field=value.field))
        return placeholder(value.step)
    if isinstance(value, dict):
        return {k: _take_refs(v, (*path, k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_take_refs(v, (*path, i), found) for i, v in enumerate(value)]
    return value


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
    refs: list[ParamRef] = Field(default_factory=list)  # where earlier steps' ids go (see StepRef)

    @model_validator(mode="before")
    @classmethod
    def _structural_refs(cls, data: Any) -> Any:
        """Move the ``StepRef`` objects of params and natural key into ``refs``."""
        if not isinstance(data, dict):
            return data
        found: list[ParamRef] = []
        out = dict(data)
        for part in ("params", "natural_key"):
            if isinstance(out.get(part), dict):
                out[part] = _take_refs(out[part], (part,), found)
        if found:
            out["refs"] = [*(out.get("refs") or []), *found]
        return out

    @model_validator(mode="after")
    def _refs_point_back(self) -> Step:
        for ref in self.refs:
            if ref.step >= self.index:
                raise ValueError(f"step {self.index} refers to step {ref.step}: only earlier steps can be referred to")
        return self

    def depends_on(self) -> set[int]:
        """Indexes of the earlier steps whose results this step needs."""
        return {ref.step for ref in self.refs}


class Actor(BaseModel):
    """Who did something to a plan: a principal's id (a hash or label, never a credential)
    and a label for people ("token 2", "local")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str


# How the person's approval went the last time the plan was about to be applied:
# accepted / declined / cancelled (they were asked), not_needed (HALO_CONFIRM_WRITES did not
# ask for this plan), unavailable (the client cannot ask a person).
Confirmation = Literal["accepted", "declined", "cancelled", "not_needed", "unavailable"]


class Audit(BaseModel):
    """Who previewed (built and saved), confirmed and applied a plan, and when."""

    model_config = ConfigDict(extra="forbid")

    previewed_by: Actor | None = None  # None: a plan saved before plans had owners
    confirmation: Confirmation | None = None
    confirmed_by: Actor | None = None
    confirmed_at: datetime | None = None
    applied_by: Actor | None = None
    applied_at: datetime | None = None


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
    audit: Audit = Field(default_factory=Audit)

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
    def ref(index: int) -> StepRef:
        """The id step ``index`` creates, to put in a later step's params or natural key."""
        return StepRef(step=index)


# ---- plans stored by 0.1 -----------------------------------------------------------------------

_LEGACY_REF = re.compile(r"\$step:(\d+)\.id")


def legacy_refs(params: dict[str, Any], natural_key: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any],
                                                                              list[ParamRef]]:
    """Steps stored by 0.1 wrote references as ``"$step:N.id"`` strings. Only the places 0.1
    put them are read as references: a top-level ``*_id`` key of params or natural key. Any
    other string (a name, a note, a description) stays text."""
    found: list[ParamRef] = []
    out: list[dict[str, Any]] = []
    for part, value in (("params", params), ("natural_key", natural_key)):
        converted = dict(value)
        for k, v in value.items():
            m = _LEGACY_REF.fullmatch(v) if isinstance(v, str) and k.endswith("_id") else None
            if m is not None:
                found.append(ParamRef(path=(part, k), step=int(m.group(1))))
                converted[k] = placeholder(int(m.group(1)))
        out.append(converted)
    return out[0], out[1], found
