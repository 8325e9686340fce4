"""What a plan does, in the words a person is asked to approve before it is applied.

Pure: no I/O, no clock. ``consequences(plan)`` counts the creates, updates and deletes, the
money change per month and what the plan ends (deletes, cancels, expires);
``needs_confirmation(plan, policy)`` applies ``HALO_CONFIRM_WRITES``; ``question(plan)`` is
the text shown to the person.

What a plan ends is read from its steps (a tool cannot forget to declare it): every
``delete_*`` step, and every ``update_contract`` step that sets the status to Cancelled or
Expired. The names shown beside their ids come from the plan: a licence's product code is
in its step's natural key; a contract's ref is in ``plan.summary["names"]``
(``{"contract:5001": "Acme - Managed Services 2025"}``) when the tool that built the plan
knew it. The money per month comes from ``plan.summary["monthly_before"]`` and
``["monthly_after"]`` (decimal strings) when the tool stated them, or from
``["monthly_change"]`` when only the change is known (lines added).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from halo_contracts.plans.models import Plan, Step

ConfirmPolicy = Literal["destructive", "always", "never"]

# Statuses that end a contract: setting one is a destructive change.
ENDING_STATUSES = {"cancelled": "cancel", "expired": "expire"}
# At most this many ended objects are listed in the question; the rest are counted.
MAX_LISTED = 20


@dataclass(frozen=True)
class Ended:
    """One object the plan deletes, cancels or expires."""

    action: Literal["delete", "cancel", "expire"]
    kind: str  # "licence", "contract", ...
    id: Any  # the Halo id (an int), or a reference to an object the plan creates
    name: str | None = None  # as Halo has it (product code, contract ref); shown quoted


@dataclass(frozen=True)
class Consequences:
    creates: int = 0
    updates: int = 0
    deletes: int = 0
    ended: list[Ended] = field(default_factory=list)
    monthly_before: Decimal | None = None
    monthly_after: Decimal | None = None
    stated_change: Decimal | None = None  # when only the change is known (lines added)

    @property
    def writes(self) -> int:
        return self.creates + self.updates + self.deletes

    @property
    def destructive(self) -> bool:
        return bool(self.ended)

    @property
    def monthly_change(self) -> Decimal | None:
        if self.monthly_before is None or self.monthly_after is None:
            return self.stated_change
        return self.monthly_after - self.monthly_before


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _ended(step: Step, names: dict[str, Any]) -> Ended | None:
    kind = step.kind
    if kind.startswith("delete_"):
        obj = kind.removeprefix("delete_")
        obj_id = step.params.get(f"{obj}_id")
        name = step.natural_key.get("product_code") if obj == "licence" else None
        name = names.get(f"{obj}:{obj_id}", name)
        return Ended("delete", obj, obj_id, name if isinstance(name, str) else None)
    if kind == "update_contract":
        status = (step.params.get("fields") or {}).get("status")
        action = ENDING_STATUSES.get(str(status).strip().casefold()) if status is not None else None
        if action:
            obj_id = step.params.get("contract_id")
            name = names.get(f"contract:{obj_id}")
            return Ended(action, "contract", obj_id, name if isinstance(name, str) else None)  # type: ignore[arg-type]
    return None


def _objects(step: Step) -> int:
    """How many Halo objects a step creates or changes (a lines step adds several)."""
    items = step.params.get("items")
    return len(items) if isinstance(items, list) and items else 1


def consequences(plan: Plan, *, pending_only: bool = True) -> Consequences:
    """What the plan (by default: its steps not yet done) would do in Halo."""
    creates = updates = deletes = 0
    ended: list[Ended] = []
    names = plan.summary.get("names") if isinstance(plan.summary.get("names"), dict) else {}
    for step in plan.steps:
        if pending_only and step.status in ("done", "skipped"):
            continue
        if step.kind.startswith("delete_"):
            deletes += 1
        elif step.kind.startswith("update_"):
            updates += _objects(step)
        else:  # create_*, add_*
            creates += _objects(step)
        end = _ended(step, names)
        if end is not None:
            ended.append(end)
    return Consequences(creates=creates, updates=updates, deletes=deletes, ended=ended,
                        monthly_before=_money(plan.summary.get("monthly_before")),
                        monthly_after=_money(plan.summary.get("monthly_after")),
                        stated_change=_money(plan.summary.get("monthly_change")))


def needs_confirmation(plan: Plan, policy: ConfirmPolicy) -> bool:
    """Whether the person must approve the plan (its unfinished steps) before it is applied."""
    if policy == "never":
        return False
    found = consequences(plan)
    if found.writes == 0:
        return False
    return policy == "always" or found.destructive


def _cents(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) + Decimal("0.00"))


def _signed(amount: Decimal) -> str:
    text = _cents(amount)
    return text if text.startswith("-") or text == "0.00" else f"+{text}"


def _quote(text: str, limit: int = 200) -> str:
    """Text from Halo, a feed or a person, quoted as data: a JSON string, with control, format
    (bidirectional, zero-width) and line-separator characters escaped so none can rearrange
    or break the question."""
    quoted = json.dumps(text[:limit] + ("…" if len(text) > limit else ""), ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                   for c in quoted)


def _describe(end: Ended) -> str:
    what = f"{end.action} {end.kind} {end.id}"
    return f"{what} named {_quote(end.name)}" if end.name else what


def question(plan: Plan, *, plan_id: str | None = None) -> str:
    """The question the person answers. Deterministic for a given plan: the same plan built
    twice gives the same text (the id is shown only when ``plan_id`` is given)."""
    found = consequences(plan)
    head = f"Apply plan {plan_id} to Halo?" if plan_id else "Apply these changes to Halo?"
    lines = [head, f"Plan: {_quote(plan.title)}",
             f"Changes: {found.creates} create(s), {found.updates} update(s), {found.deletes} delete(s)"]
    change = found.monthly_change
    if change is not None and found.monthly_before is not None and found.monthly_after is not None:
        lines.append(f"Money per month: {_signed(change)} (from {_cents(found.monthly_before)} "
                     f"to {_cents(found.monthly_after)})")
    elif change is not None:
        lines.append(f"Money per month: {_signed(change)}")
    else:
        lines.append("Money per month: not stated by this plan")
    if found.ended:
        lines.append("It ends:")
        lines += [f"- {_describe(e)}" for e in found.ended[:MAX_LISTED]]
        if len(found.ended) > MAX_LISTED:
            lines.append(f"- and {len(found.ended) - MAX_LISTED} more")
    lines.append("Nothing is sent to Halo unless you accept.")
    return "\n".join(lines)


def contract_monthly(value: Decimal | None, months: int | None, status: str | None) -> Decimal | None:
    """What a contract bills per month: its value per billing period over the period's months;
    nothing once it is cancelled or expired; None when the value or the period is unknown."""
    if status is not None and status.strip().casefold() in ENDING_STATUSES:
        return Decimal(0)
    if value is None or not months:
        return None
    return value / Decimal(months)


def change_summary(change: Decimal | None) -> dict[str, str]:
    """``plan.summary`` entry for a money change per month known only as a change."""
    return {} if change is None else {"monthly_change": _cents(change)}


def money_summary(before: Decimal | None, after: Decimal | None) -> dict[str, str]:
    """``plan.summary`` entries for the money per month (empty when either side is unknown)."""
    if before is None or after is None:
        return {}
    return {"monthly_before": _cents(before), "monthly_after": _cents(after)}
