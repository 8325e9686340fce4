"""Applying a plan: each step once, in order, through the journal.

The rule that makes a crash harmless at any point (even a SIGKILL between sending a request
and writing its answer):

1. before a request leaves, its step is saved as ``sending`` (with the request) and the
   journal commit is synced to disk;
2. when Halo answers, the step is saved as ``done`` with the answer (created ids);
3. a lost answer (``HaloUnknownOutcome``) marks the step ``unknown`` and stops the run;
4. the next run settles every ``sending``/``unknown`` step *before* anything is re-sent:
   creates are looked up by natural key (client + ref for contracts, contract for the
   recurring invoice, contract + description for lines, client + product code for
   licences); updates are idempotent and sent again; deletes are done when the object is
   gone. A ``done`` step is never sent again.

A step that Halo refused (``failed``) stops the run too; later steps may depend on it.
Applying again retries it. Before a create is first sent, a handler may guard it: a contract
whose client and ref already exist in Halo (created after the plan was built) is not created
again; the step fails and says which contract exists.
Applying a plan whose steps are all done sends nothing and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from weakref import WeakValueDictionary

import anyio
from pydantic import BaseModel

from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.errors import HaloError, HaloNotFound, HaloUnknownOutcome
from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan, Step
from halo_contracts.plans.steps import HANDLERS, UnresolvedReference, is_delete, preview, resolve

log = logging.getLogger("halo_contracts.plans")

# progress(done_steps, total_steps, message)
Progress = Callable[[int, int, str], Awaitable[None]]


class PlanNotFound(LookupError):
    """No plan with this id in the journal."""


class ApplyOutcome(BaseModel):
    plan: Plan
    done: int
    failed: int
    skipped: int
    resumed_from: int  # index of the first step this run executed
    created: dict[str, list[int]]  # kind -> ids created by this plan
    already_applied: bool = False  # every step was done before this run: nothing was sent
    sent: int = 0  # requests sent by this run (writes only)
    settled: int = 0  # steps whose lost answer this run settled by natural key
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.done + self.skipped == len(self.plan.steps)

    @property
    def stopped_at(self) -> Step | None:
        """The failed or unknown step that stopped the run, if any."""
        return next((s for s in self.plan.steps if s.status in ("failed", "unknown", "sending")), None)


_FINISHED = ("done", "skipped")
_locks: WeakValueDictionary[str, anyio.Lock] = WeakValueDictionary()


def _lock_for(plan_id: str) -> anyio.Lock:
    lock = _locks.get(plan_id)
    if lock is None:
        lock = anyio.Lock()
        _locks[plan_id] = lock
    return lock


def _created(plan: Plan) -> dict[str, list[int]]:
    created: dict[str, list[int]] = {}
    for step in plan.steps:
        handler = HANDLERS.get(step.kind)
        if step.status != "done" or handler is None or handler.creates is None or not step.result:
            continue
        ids = step.result.get("ids")
        if ids is None:
            ids = [step.result["id"]] if step.result.get("id") is not None else []
        created.setdefault(handler.creates, []).extend(int(i) for i in ids)
    return created


def _outcome(plan: Plan, *, resumed_from: int, sent: int, settled: int, already: bool = False) -> ApplyOutcome:
    done = sum(1 for s in plan.steps if s.status == "done")
    skipped = sum(1 for s in plan.steps if s.status == "skipped")
    failed = sum(1 for s in plan.steps if s.status in ("failed", "unknown", "sending"))
    total = len(plan.steps)
    if already:
        message = (f"Plan {plan.id} was already applied ({done} of {total} steps done); "
                   "nothing was sent to Halo.")
    elif failed == 0 and done + skipped == total:
        message = f"Plan {plan.id} applied: {done} of {total} steps done."
        if settled:
            message += f" {settled} step(s) with a lost answer were found in Halo and not sent again."
    else:
        stop = next(s for s in plan.steps if s.status not in _FINISHED)
        if stop.status == "unknown":
            what = (f"Halo's answer was lost ({stop.error}), so it is unknown whether it took effect. Run "
                    "apply_plan again with the same plan_id: the object is looked up before anything is re-sent.")
        elif stop.status == "failed":
            what = f"it failed: {stop.error}"
        else:
            what = "it was not run."
        later = sum(1 for s in plan.steps if s.index > stop.index and s.status == "pending")
        message = (f"Plan {plan.id} stopped at step {stop.index + 1} of {total} ('{stop.summary}'): {what} "
                   f"{done} step(s) done" + (f"; {later} later step(s) not sent yet." if later else "."))
    return ApplyOutcome(plan=plan, done=done, failed=failed, skipped=skipped, resumed_from=resumed_from,
                        created=_created(plan), already_applied=already, sent=sent, settled=settled,
                        message=message)


async def _report(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is None:
        return
    try:
        await progress(done, total, message)
    except Exception:  # a progress consumer must never break an apply
        log.warning("progress callback failed", exc_info=True)


def _safe_preview(halo: HaloClient, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return preview(halo, kind, params)
    except Exception:  # the preview is for the record; it must not stop the write
        log.warning("could not build the request preview of a %s step", kind, exc_info=True)
        return {"operation": HANDLERS[kind].operation, "params": params}


async def apply_plan(plan_id: str, *, journal: Journal, halo: HaloClient,
                     progress: Progress | None = None) -> ApplyOutcome:
    """Run every unfinished step of the plan; resume after a crash; never repeat a done step;
    settle an ``unknown`` step by looking its object up by natural key before re-sending."""
    async with _lock_for(plan_id):
        plan = journal.get_plan(plan_id)
        if plan is None:
            raise PlanNotFound(plan_id)
        total = len(plan.steps)
        first = next((s.index for s in plan.steps if s.status not in _FINISHED), None)
        if first is None:
            if plan.status != "applied":
                journal.set_plan_status(plan_id, "applied")
                plan.status = "applied"
            return _outcome(plan, resumed_from=total, sent=0, settled=0, already=True)

        journal.set_plan_status(plan_id, "applying")
        plan.status = "applying"
        results: dict[int, dict[str, Any] | None] = {s.index: s.result for s in plan.steps if s.status == "done"}
        sent = settled = 0

        for step in plan.steps:
            if step.status in _FINISHED:
                continue
            handler = HANDLERS[step.kind]
            try:
                params = resolve(step.params, results)
                key = resolve(step.natural_key, results)
            except UnresolvedReference as exc:
                step.status, step.error = "failed", f"cannot run: {exc}"
                journal.save_step(plan_id, step)
                break

            earlier: dict[str, Any] | None = None
            if step.status in ("sending", "unknown"):
                try:
                    settlement = await handler.settle(halo, params, key)
                except HaloError as exc:
                    step.status = "unknown"
                    step.error = f"could not check in Halo whether this step took effect: {exc}"
                    journal.save_step(plan_id, step)
                    break
                step.note = settlement.note
                if settlement.resend is None:
                    step.status, step.result, step.error = "done", settlement.result, None
                    journal.save_step(plan_id, step)
                    results[step.index] = step.result
                    settled += 1
                    await _step_progress(progress, plan, step)
                    continue
                earlier, params = settlement.result, settlement.resend

            elif handler.guard is not None:
                try:
                    reason = await handler.guard(halo, params, key)
                except HaloError as exc:
                    reason = f"could not check Halo before sending: {exc}"
                if reason:
                    step.status, step.error = "failed", reason
                    journal.save_step(plan_id, step)
                    break

            # Mark "sending" (committed) before the request leaves.
            step.sent = _safe_preview(halo, step.kind, params)
            step.status, step.error = "sending", None
            step.attempts += 1
            journal.save_step(plan_id, step)
            sent += 1
            try:
                result = await handler.send(halo, params)
            except HaloUnknownOutcome as exc:
                step.status, step.error = "unknown", str(exc)
                journal.save_step(plan_id, step)
                break
            except HaloNotFound as exc:
                if is_delete(step.kind) and step.attempts > 1:
                    result = {"id": params.get("licence_id"), "deleted": True}
                    step.note = "already gone when the delete was sent again"
                else:
                    step.status, step.error = "failed", str(exc)
                    journal.save_step(plan_id, step)
                    break
            except HaloError as exc:
                step.status, step.error = "failed", str(exc)
                journal.save_step(plan_id, step)
                break
            except Exception as exc:
                # Not a Halo answer we understand (a bug): whether the write happened is unknown.
                step.status, step.error = "unknown", f"unexpected {type(exc).__name__} while sending"
                journal.save_step(plan_id, step)
                raise
            if earlier:
                result = handler.merge(earlier, result)
            step.status, step.result, step.error = "done", result, None
            journal.save_step(plan_id, step)
            results[step.index] = result
            await _step_progress(progress, plan, step)

        finished = all(s.status in _FINISHED for s in plan.steps)
        any_done = any(s.status == "done" for s in plan.steps)
        plan.status = "applied" if finished else ("partial" if any_done else "failed")
        journal.set_plan_status(plan_id, plan.status)
        return _outcome(plan, resumed_from=first, sent=sent, settled=settled)


async def _step_progress(progress: Progress | None, plan: Plan, step: Step) -> None:
    total = len(plan.steps)
    done = sum(1 for s in plan.steps if s.status in _FINISHED)
    await _report(progress, done, total, f"Step {step.index + 1}/{total} done: {step.summary}")
    if step.group:
        members = [s for s in plan.steps if s.group == step.group]
        if all(s.status in _FINISHED for s in members):
            groups = []
            for s in plan.steps:
                if s.group and s.group not in groups:
                    groups.append(s.group)
            complete = sum(1 for g in groups
                           if all(s.status in _FINISHED for s in plan.steps if s.group == g))
            await _report(progress, done, total,
                          f"Group '{step.group}' complete ({complete} of {len(groups)} groups).")
