"""Plans: look at a plan, apply it. Also the shared plumbing every write tool uses to save a
plan, preview it (dry run) or apply it at once (``submit_plan``), and the result shapes for
plans (``PlanView``, ``ApplyView``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from halo_contracts.plans.executor import ApplyOutcome, PlanBusy, PlanExpired, PlanNotFound
from halo_contracts.plans.executor import apply_plan as run_plan
from halo_contracts.plans.models import PLAN_LIFETIME, Plan, Step
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import Result, app, halo_errors, halo_tool, invalid

_PLAN_ID = re.compile(r"^plan_[0-9a-f]{12}$")


class StepView(Result):
    index: int = Field(description="0-based position in the plan")
    kind: str
    summary: str = Field(description="what the step does, in plain words")
    status: str = Field(description="pending, sending, done, failed, unknown or skipped")
    group: str | None = None
    request: dict[str, Any] | None = Field(default=None, description="the Halo request the step sends, exactly; "
                                           "only an id listed in refs differs (a placeholder until then)")
    refs: dict[str, int] | None = Field(default=None, description="placeholder id in request -> index of the "
                                 "earlier step whose new id is sent in its place")
    result: dict[str, Any] | None = Field(default=None, description="ids Halo answered with, once done")
    error: str | None = None
    note: str | None = Field(default=None, description="how a lost answer was settled, if it was")


class PlanView(Result):
    plan_id: str
    tool: str = Field(description="the tool that built the plan")
    title: str
    status: str = Field(description="planned, applying, applied, partial or failed")
    created_at: str
    expires_at: str = Field(description=f"when the plan expires (UTC): apply_plan does not start a plan after "
                                        f"this ({PLAN_LIFETIME.days} days after it was built; plan again "
                                        "instead), but a plan already partly applied can always be finished")
    expired: bool = Field(description="true: the plan expired before it was applied, so apply_plan refuses it; "
                                      "call the tool that built it again")
    deletes: bool = Field(description="whether the plan deletes anything in Halo")
    steps: list[StepView]
    warnings: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="things deliberately left out, with reasons")
    summary: dict[str, Any] = Field(default_factory=dict)


class ApplyView(Result):
    plan_id: str
    status: str = Field(description="applied, partial or failed")
    already_applied: bool = Field(description="every step was done before: nothing was sent")
    message: str
    done: int
    failed: int
    skipped: int
    sent: int = Field(description="write requests sent by this run")
    settled: int = Field(description="steps whose lost answer was found in Halo instead of re-sent")
    resumed_from: int = Field(description="index of the first step this run executed")
    created: dict[str, list[int]] = Field(description="kind -> ids created by the plan")
    steps: list[StepView]


def _refs(step: Step) -> dict[str, int] | None:
    return {str(r.placeholder): r.step for r in step.refs} or None


def plan_view(plan: Plan) -> PlanView:
    return PlanView(
        plan_id=plan.id, tool=plan.tool, title=plan.title, status=plan.status,
        created_at=plan.created_at.isoformat(timespec="seconds"),
        expires_at=plan.expires_at().isoformat(timespec="seconds"), expired=plan.expired(),
        deletes=any(s.kind.startswith("delete_") for s in plan.steps),
        steps=[StepView(index=s.index, kind=s.kind, summary=s.summary, status=s.status, group=s.group,
                        request=s.request, refs=_refs(s), result=s.result, error=s.error, note=s.note)
               for s in plan.steps],
        warnings=list(plan.warnings), skipped=list(plan.skipped), summary=dict(plan.summary),
    )


def apply_view(outcome: ApplyOutcome) -> ApplyView:
    view = plan_view(outcome.plan)
    return ApplyView(plan_id=outcome.plan.id, status=outcome.plan.status, already_applied=outcome.already_applied,
                     message=outcome.message, done=outcome.done, failed=outcome.failed, skipped=outcome.skipped,
                     sent=outcome.sent, settled=outcome.settled, resumed_from=outcome.resumed_from,
                     created=outcome.created, steps=view.steps)


async def apply_with_progress(ctx: Context, plan_id: str) -> ApplyOutcome:
    """Apply a saved plan, reporting progress to the caller; Halo errors become ToolErrors."""
    ac = app(ctx)

    channel = progress_of(ctx)
    channel.claim()  # the executor reports every step

    async def progress(done: int, total: int, message: str) -> None:
        await channel.report(done, total, message)

    try:
        async with halo_errors():
            outcome = await run_plan(plan_id, journal=ac.journal, halo=ac.halo, progress=progress)
    except PlanNotFound:
        raise invalid("plan_id", f"there is no plan '{plan_id}' in this server's journal",
                      "use the plan_id a write tool returned (call it with dry_run=true to get one)") from None
    except PlanExpired as exc:
        raise invalid("plan_id", exc.rule, exc.fix) from None
    except PlanBusy as exc:
        raise ToolError(f"{exc.rule}. {exc.fix[0].upper()}{exc.fix[1:]}. Nothing was sent by this call.") from None
    if outcome.failed:
        raise ToolError(outcome.message)
    return outcome


async def submit_plan(ctx: Context, plan: Plan, *, dry_run: bool) -> tuple[PlanView, ApplyOutcome | None]:
    """Save the plan; with ``dry_run`` return it unsent, otherwise apply it at once.

    Raises a ToolError naming the plan when a step fails (the plan can be applied again)."""
    ac = app(ctx)
    ac.journal.save_plan(plan)
    if dry_run:
        return plan_view(plan), None
    outcome = await apply_with_progress(ctx, plan.id)
    return plan_view(outcome.plan), outcome


PlanId = Annotated[str, Field(strict=True, min_length=1, max_length=40,
                              description="The plan_id a write tool returned, e.g. 'plan_3f9a0c1b2d4e'")]


def _check_plan_id(plan_id: str) -> str:
    plan_id = plan_id.strip()
    if not _PLAN_ID.match(plan_id):
        raise invalid("plan_id", f"'{plan_id}' is not a plan id", "pass the plan_id exactly as a write tool "
                      "returned it, e.g. 'plan_3f9a0c1b2d4e'")
    return plan_id


@halo_tool(group="plans", kind="read", title="Show a plan")
async def get_plan(plan_id: PlanId, ctx: Context) -> PlanView:
    """Show a saved plan: each step in plain words, the Halo request it sends, and its status.

    A request is sent exactly as shown, text included; only an id that an earlier step creates
    is a negative placeholder until then (listed in the step's refs).

    Use it to show the user what apply_plan will do before applying, or to see how far an
    apply got (done, failed, unknown steps). expires_at says until when the plan can be
    started (a plan never applied expires after a week; plan again then). Reads only this
    server's journal, not Halo.
    """
    plan = app(ctx).journal.get_plan(_check_plan_id(plan_id))
    if plan is None:
        raise invalid("plan_id", f"there is no plan '{plan_id}' in this server's journal",
                      "use the plan_id a write tool returned (call it with dry_run=true to get one)")
    return plan_view(plan)


@halo_tool(group="plans", kind="destructive", title="Apply a plan", idempotent=True)
async def apply_plan(plan_id: PlanId, ctx: Context) -> ApplyView:
    """Apply a plan a write tool built with dry_run=true: send its steps to Halo in order.

    Show the user the plan (get_plan) and get their go-ahead first. Marked destructive
    because some plans delete (licence-sync plans delete licences; the plan's 'deletes'
    field says so); contract and recurring-item plans only create and update.
    Safe to repeat: a finished step is never sent again, an applied plan sends nothing, and
    after an error or a lost answer the same call resumes where it stopped (objects whose
    answer was lost are looked up in Halo before anything is re-sent). A plan never applied
    expires a week after it was built (see get_plan's expires_at): plan again then. Reports
    progress per step.
    """
    outcome = await apply_with_progress(ctx, _check_plan_id(plan_id))
    return apply_view(outcome)
