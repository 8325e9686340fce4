"""Plans: look at a plan, apply it. Also the shared plumbing every write tool uses to save a
plan, preview it (dry run) or apply it at once (``submit_plan``), and the result shapes for
plans (``PlanView``, ``ApplyView``).

Two rules live here, once, on the one path every apply takes (``apply_plan`` and a write tool
called without dry_run):

- **A person says yes.** Before anything is sent, a plan that ``HALO_CONFIRM_WRITES`` says
  needs it is put to the person through MCP elicitation (the SDK's resolver machinery:
  ``Resolve`` + ``Elicit``, which asks within the call on both protocol eras). Decline or
  cancel sends nothing and leaves the plan as it was. A client that cannot ask the person
  gets the plan applied as before, and the result says no confirmation was possible.
- **Plans belong to whoever made them.** A plan records the principal that previewed it;
  another principal is told the plan does not exist, for reading and for applying.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import build_resolver_plans, resolve_arguments
from mcp_types import InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from halo_contracts.access import Principal
from halo_contracts.plans import consent
from halo_contracts.plans.executor import ApplyOutcome, PlanBusy, PlanExpired, PlanNotFound, Progress
from halo_contracts.plans.executor import apply_plan as run_plan
from halo_contracts.plans.models import PLAN_LIFETIME, Actor, Confirmation, Plan, Step
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import Result, app, caller, halo_errors, halo_tool, invalid

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
    previewed_by: Actor | None = Field(default=None, description="who built and saved the plan (a label and "
                                       "a hash of their token; never the token)")
    confirmation: Confirmation | None = Field(default=None, description=(
        "the person's answer before the latest apply: accepted, declined, cancelled; not_needed (the server's "
        "HALO_CONFIRM_WRITES did not ask for this plan); unavailable (the client cannot ask a person, so no "
        "confirmation was possible)"))
    confirmed_by: Actor | None = Field(default=None, description="who answered (or whose call it was)")
    confirmed_at: str | None = None
    applied_by: Actor | None = Field(default=None, description="who started the latest apply")
    applied_at: str | None = None


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
    confirmation: Confirmation | None = Field(default=None, description=(
        "accepted: the person approved it; not_needed: the server does not ask for this plan; unavailable: the "
        "client cannot ask a person, so it was applied without their confirmation"))
    steps: list[StepView]


def _refs(step: Step) -> dict[str, int] | None:
    return {str(r.placeholder): r.step for r in step.refs} or None


def _at(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


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
        previewed_by=plan.audit.previewed_by, confirmation=plan.audit.confirmation,
        confirmed_by=plan.audit.confirmed_by, confirmed_at=_at(plan.audit.confirmed_at),
        applied_by=plan.audit.applied_by, applied_at=_at(plan.audit.applied_at),
    )


def apply_view(outcome: ApplyOutcome) -> ApplyView:
    view = plan_view(outcome.plan)
    return ApplyView(plan_id=outcome.plan.id, status=outcome.plan.status, already_applied=outcome.already_applied,
                     message=outcome.message + confirmation_note(outcome), done=outcome.done,
                     failed=outcome.failed, skipped=outcome.skipped, sent=outcome.sent, settled=outcome.settled,
                     resumed_from=outcome.resumed_from, created=outcome.created,
                     confirmation=outcome.plan.audit.confirmation, steps=view.steps)


def confirmation_note(outcome: ApplyOutcome | None) -> str:
    """A sentence for a result's message when the person could not be asked ("" otherwise)."""
    if outcome is None or outcome.plan.audit.confirmation != "unavailable" or outcome.already_applied:
        return ""
    return (" No confirmation was possible: this client cannot ask the person (no elicitation support), so "
            "the plan was applied without their yes.")


# ---- who: plans belong to whoever previewed them ---------------------------------------------


def actor(principal: Principal) -> Actor:
    return Actor(id=principal.id, label=principal.label)


def visible_to(plan: Plan, principal: Principal) -> bool:
    """Whether ``principal`` may see and apply ``plan``: it previewed it. A plan saved before
    plans had owners stays open to the local principal and full (not read-only) tokens."""
    owner = plan.audit.previewed_by
    if owner is None:
        return not principal.read_only
    return owner.id == principal.id


def _not_found(plan_id: str) -> ToolError:
    return invalid("plan_id", f"there is no plan '{plan_id}' in this server's journal",
                   "use the plan_id a write tool returned (call it with dry_run=true to get one)")


def load_plan(ctx: Context, plan_id: str) -> Plan:
    """The caller's plan, or the same not-found error whether it is missing or someone else's."""
    plan = app(ctx).journal.get_plan(plan_id)
    if plan is None or not visible_to(plan, caller(ctx)):
        raise _not_found(plan_id)
    return plan


def save_plan(ctx: Context, plan: Plan) -> None:
    """Save a new plan in the journal as the caller's."""
    plan.audit.previewed_by = actor(caller(ctx))
    app(ctx).journal.save_plan(plan)


# ---- consent: a person says yes before a write -----------------------------------------------


class WriteConsent(BaseModel):
    """The one field of the confirmation form."""

    apply: bool = Field(description="Send these changes to Halo")


class ConfirmationPending(Exception):
    """The person's answer is not in yet (protocol 2026-07-28: the call returns an
    input-required result and the client calls again with the answer). The tool wrapper in
    ``server.py`` returns ``result``."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("waiting for the person's confirmation")
        self.result = result


_ASK_ROUNDS_ERA = "2026-07-28"


def can_ask_person(ctx: Context) -> bool:
    """Whether the client declared form elicitation and this connection can carry it."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _ASK_ROUNDS_ERA):
        return True  # asked through input-required rounds: no back-channel needed
    return bool(ctx.session.can_send_request)


async def _ask_person(ctx: Context, text: str) -> Confirmation:
    """Put ``text`` to the person; accepted (with apply=true), declined or cancelled."""

    async def confirm_writes() -> Elicit[WriteConsent]:
        return Elicit(text, WriteConsent)

    wanted = {"consent": (Resolve(confirm_writes), True)}
    answer = await resolve_arguments(wanted, build_resolver_plans(wanted, set()), {}, ctx)
    if isinstance(answer, InputRequiredResult):
        raise ConfirmationPending(answer)
    outcome = answer["consent"]
    if isinstance(outcome, AcceptedElicitation):
        return "accepted" if outcome.data.apply else "declined"
    return "declined" if isinstance(outcome, DeclinedElicitation) else "cancelled"


async def confirm(ctx: Context, plan: Plan, *, show_id: bool) -> Confirmation:
    """Decide, under ``HALO_CONFIRM_WRITES``, whether the person must approve the plan's
    unfinished steps, and ask them if so. Raises ``ConfirmationPending`` while the answer is
    not in. ``show_id``: the plan is saved, so its id may be shown (the question must read the
    same on every round of one call)."""
    if plan.finished:
        return "not_needed"
    if plan.started and plan.audit.confirmation == "accepted":
        return "accepted"  # resuming a plan the person approved
    if not consent.needs_confirmation(plan, app(ctx).settings.confirm_writes):
        return "not_needed"
    if not can_ask_person(ctx):
        return "unavailable"
    return await _ask_person(ctx, consent.question(plan, plan_id=plan.id if show_id else None))


def _refused(plan: Plan, decision: Confirmation) -> ToolError:
    said = "declined" if decision == "declined" else "cancelled the confirmation of"
    return ToolError(f"The person {said} plan {plan.id}: nothing was sent to Halo and the plan is unchanged "
                     f"(status {plan.status}). Do not apply it again unless they ask; apply_plan('{plan.id}') would "
                     "ask them again.")


async def apply_with_progress(ctx: Context, plan_id: str, *, progress: Progress | None = None,
                              decision: Confirmation | None = None, raise_on_failure: bool = True) -> ApplyOutcome:
    """Apply a saved plan of the caller's, after the person's yes where it is needed, reporting
    progress to the caller; Halo errors become ToolErrors. ``decision``: already asked (by
    ``submit_plan``, before the plan was saved)."""
    ac = app(ctx)
    plan = load_plan(ctx, plan_id)
    if not plan.finished and plan.expired():
        exc = PlanExpired(plan, now=datetime.now(UTC))
        raise invalid("plan_id", exc.rule, exc.fix)
    who = actor(caller(ctx))
    if decision is None:
        decision = await confirm(ctx, plan, show_id=True)
    if not plan.finished:
        ac.journal.record_confirmation(plan_id, decision, who)
        if decision in ("declined", "cancelled"):
            raise _refused(plan, decision)
        ac.journal.record_applied(plan_id, who)

    channel = progress_of(ctx)
    channel.claim()  # the executor reports every step

    async def report(done: int, total: int, message: str) -> None:
        await channel.report(done, total, message)

    try:
        async with halo_errors():
            outcome = await run_plan(plan_id, journal=ac.journal, halo=ac.halo, progress=progress or report)
    except PlanNotFound:
        raise _not_found(plan_id) from None
    except PlanExpired as exc:
        raise invalid("plan_id", exc.rule, exc.fix) from None
    except PlanBusy as exc:
        raise ToolError(f"{exc.rule}. {exc.fix[0].upper()}{exc.fix[1:]}. Nothing was sent by this call.") from None
    if outcome.failed and raise_on_failure:
        raise ToolError(outcome.message + confirmation_note(outcome))
    return outcome


async def submit_plan(ctx: Context, plan: Plan, *, dry_run: bool, progress: Progress | None = None,
                      raise_on_failure: bool = True) -> tuple[PlanView, ApplyOutcome | None]:
    """Save the plan; with ``dry_run`` return it unsent, otherwise apply it at once, after the
    person's yes where ``HALO_CONFIRM_WRITES`` needs it (asked before the plan is saved, so a
    call waiting for the answer saves nothing; a "no" saves the plan unapplied).

    Raises a ToolError naming the plan when a step fails (the plan can be applied again)."""
    if dry_run:
        save_plan(ctx, plan)
        return plan_view(plan), None
    decision = await confirm(ctx, plan, show_id=False)
    save_plan(ctx, plan)
    outcome = await apply_with_progress(ctx, plan.id, progress=progress, decision=decision,
                                        raise_on_failure=raise_on_failure)
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
    return plan_view(load_plan(ctx, _check_plan_id(plan_id)))


@halo_tool(group="plans", kind="destructive", title="Apply a plan", idempotent=True)
async def apply_plan(plan_id: PlanId, ctx: Context) -> ApplyView:
    """Apply a plan a write tool built with dry_run=true: send its steps to Halo in order.

    Show the user the plan (get_plan) and get their go-ahead first. Where the server is set
    to (deletes, cancellations and expiries by default) the person is also asked directly
    before anything is sent; a "no" sends nothing and leaves the plan as it was. Marked destructive
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
