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
Applying again retries it. A delete Halo answers with 404 (the object is already gone) is
done. Before a create is first sent, a handler may check Halo: a contract whose client and ref
already exist (created after the plan was built) is not created again (the step fails and says
which contract exists); a contract that has a recurring invoice by now gets no second one (the
step reuses it, so later steps that need its id get that one). Such checks and their send run one
at a time per object in this process (``StepHandler.lock_key``).

A plan that was never applied is refused once it is older than ``models.PLAN_LIFETIME``
(``PlanExpired``: plan again); a plan already partly applied is always finished.
Applying a plan whose steps are all done sends nothing and says so.

The executor's own messages name steps by number and kind, never by their summaries or
groups (which may quote text read from Halo); Halo's text appears only as a step's error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakValueDictionary

import anyio
from pydantic import BaseModel

from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.errors import HaloError, HaloNotFound, HaloUnknownOutcome
from halo_contracts.plans.journal import JournalBase
from halo_contracts.plans.models import Plan, Step
from halo_contracts.plans.steps import (
    HANDLERS,
    StepHandler,
    UnresolvedReference,
    deleted_id,
    is_delete,
    preview,
    resolve,
)

log = logging.getLogger("halo_contracts.plans")

# progress(done_steps, total_steps, message)
Progress = Callable[[int, int, str], Awaitable[None]]


class PlanNotFound(LookupError):
    """No plan with this id in the journal."""


class PlanBusy(RuntimeError):
    """Another server process sharing the journal is applying this plan right now."""

    def __init__(self, plan_id: str, holder: dict[str, Any]) -> None:
        self.plan_id = plan_id
        self.rule = (f"plan {plan_id} is being applied right now by another server process "
                     f"(pid {holder.get('pid')} on {holder.get('host')})")
        self.fix = "wait until it finishes, then call apply_plan again to see the outcome or resume it"
        super().__init__(self.rule)


class PlanExpired(RuntimeError):
    """The plan was never applied and is older than its lifetime: plan again."""

    def __init__(self, plan: Plan, *, now: datetime, lifetime: timedelta | None = None) -> None:
        self.plan_id = plan.id
        self.tool = plan.tool
        self.built = plan.built_at()
        self.expired_at = plan.expires_at(lifetime)
        days = max(0, (now - self.built).days)
        self.rule = (f"plan {plan.id} was built on {self.built.isoformat(timespec='minutes')} ({days} day(s) ago) "
                     f"and expired on {self.expired_at.isoformat(timespec='minutes')}; a plan that was never "
                     "applied is not started after that, because Halo may have changed since it was built")
        self.fix = (f"plan again: call {plan.tool} again (dry_run=true to preview) and apply the new plan_id")
        super().__init__(f"{self.rule}. Fix: {self.fix}.")


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
    reused: int = 0  # create steps that used an object made after the plan was built instead
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


def _lock_for(key: str) -> anyio.Lock:
    lock = _locks.get(key)
    if lock is None:
        lock = anyio.Lock()
        _locks[key] = lock
    return lock


def _created(plan: Plan) -> dict[str, list[int]]:
    created: dict[str, list[int]] = {}
    for step in plan.steps:
        handler = HANDLERS.get(step.kind)
        if step.status != "done" or handler is None or handler.creates is None or not step.result \
                or step.result.get("reused"):
            continue
        ids = step.result.get("ids")
        if ids is None:
            ids = [step.result["id"]] if step.result.get("id") is not None else []
        created.setdefault(handler.creates, []).extend(int(i) for i in ids)
    return created


def _kind_words(step: Step) -> str:
    return step.kind.replace("_", " ")


def _sentence(text: str) -> str:
    text = " ".join((text or "").split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _outcome(plan: Plan, *, resumed_from: int, sent: int, settled: int, reused: int = 0,
             already: bool = False) -> ApplyOutcome:
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
        if reused:
            message += (f" {reused} step(s) used an object that appeared in Halo after the plan was built instead "
                        "of creating another (see the step notes).")
    else:
        stop = next(s for s in plan.steps if s.status not in _FINISHED)
        if stop.status == "unknown":
            what = (f"Halo's answer was lost ({' '.join((stop.error or 'no details').split()).rstrip('.')}), so it "
                    "is unknown whether it took effect. Run apply_plan again with the same plan_id: the object is "
                    "looked up before anything is re-sent.")
        elif stop.status == "failed":
            what = "It failed: " + _sentence(stop.error or "no details")
        else:
            what = "It was not run."
        later = sum(1 for s in plan.steps if s.index > stop.index and s.status == "pending")
        message = (f"Plan {plan.id} stopped at step {stop.index + 1} of {total} ({_kind_words(stop)}). {what} "
                   f"{done} of {total} step(s) done" + (f"; {later} later step(s) not sent yet." if later else "."))
    return ApplyOutcome(plan=plan, done=done, failed=failed, skipped=skipped, resumed_from=resumed_from,
                        created=_created(plan), already_applied=already, sent=sent, settled=settled, reused=reused,
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


T = TypeVar("T")


async def _db(call: Callable[..., T], *args: Any) -> T:
    """A journal call in a worker thread: a PostgreSQL round trip or a SQLite fsync never
    blocks the event loop. The caller still waits for the commit before going on (a
    ``sending`` mark is durable before the request leaves), and a cancellation cannot skip
    it (shielded, as the synchronous call was): it lands at the next await instead."""
    with anyio.CancelScope(shield=True):
        return await anyio.to_thread.run_sync(call, *args)


@dataclass
class _Run:
    plan: Plan
    journal: JournalBase
    halo: HaloClient
    progress: Progress | None
    results: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    sent: int = 0
    settled: int = 0
    reused: int = 0

    async def save(self, step: Step) -> None:
        await _db(self.journal.save_step, self.plan.id, step)


async def apply_plan(plan_id: str, *, journal: JournalBase, halo: HaloClient, progress: Progress | None = None,
                     now: datetime | None = None, lifetime: timedelta | None = None,
                     on_claimed: Callable[[], None] | None = None) -> ApplyOutcome:
    """Run every unfinished step of the plan; resume after a crash; never repeat a done step;
    settle an ``unknown`` step by looking its object up by natural key before re-sending.

    Raises ``PlanNotFound``, and ``PlanExpired`` for a plan that was never applied and is older
    than ``lifetime`` (default ``models.PLAN_LIFETIME``); nothing is sent then. ``on_claimed``
    runs (in a worker thread) once this call holds the plan's claim, e.g. to record who applies it."""
    async with _lock_for(plan_id):
        owner = uuid.uuid4().hex
        holder = await _db(journal.claim, plan_id, owner)
        if holder is not None:
            raise PlanBusy(plan_id, holder)
        try:
            if on_claimed is not None:
                await _db(on_claimed)
            return await _apply_claimed(plan_id, owner, journal=journal, halo=halo, progress=progress, now=now,
                                        lifetime=lifetime)
        finally:
            await _db(journal.release, plan_id, owner)


async def _apply_claimed(plan_id: str, owner: str, *, journal: JournalBase, halo: HaloClient,
                         progress: Progress | None, now: datetime | None,
                         lifetime: timedelta | None) -> ApplyOutcome:
    """apply_plan's body, run while this call holds the plan's claim in the journal."""
    plan = await _db(journal.get_plan, plan_id)
    if plan is None:
        raise PlanNotFound(plan_id)
    total = len(plan.steps)
    first = next((s.index for s in plan.steps if s.status not in _FINISHED), None)
    if first is None:
        if plan.status != "applied":
            await _db(journal.set_plan_status, plan_id, "applied")
            plan.status = "applied"
        return _outcome(plan, resumed_from=total, sent=0, settled=0, already=True)
    now = now or datetime.now(UTC)
    if plan.expired(now, lifetime):
        raise PlanExpired(plan, now=now, lifetime=lifetime)

    await _db(journal.set_plan_status, plan_id, "applying")
    plan.status = "applying"
    run = _Run(plan, journal, halo, progress,
               results={s.index: s.result for s in plan.steps if s.status == "done"})

    for step in plan.steps:
        if step.status in _FINISHED:
            continue
        handler = HANDLERS[step.kind]
        try:
            params, key = resolve(step, run.results)
        except UnresolvedReference as exc:
            step.status, step.error = "failed", f"cannot run: {exc}"
            await run.save(step)
            break
        async with AsyncExitStack() as stack:
            lock_key = handler.lock_key(params, key) if handler.lock_key is not None else None
            if lock_key is not None:
                await stack.enter_async_context(_lock_for(f"object:{lock_key}"))
            go_on = await _run_step(run, step, handler, params, key)
        await _db(journal.heartbeat, plan_id, owner)
        if not go_on:
            break

    finished = all(s.status in _FINISHED for s in plan.steps)
    any_done = any(s.status == "done" for s in plan.steps)
    plan.status = "applied" if finished else ("partial" if any_done else "failed")
    await _db(journal.set_plan_status, plan_id, plan.status)
    return _outcome(plan, resumed_from=first, sent=run.sent, settled=run.settled, reused=run.reused)


async def _finish(run: _Run, step: Step, result: dict[str, Any] | None) -> None:
    step.status, step.result, step.error = "done", result, None
    await run.save(step)
    run.results[step.index] = result
    await _step_progress(run.progress, run.plan, step)


async def _run_step(run: _Run, step: Step, handler: StepHandler, params: dict[str, Any],
                    key: dict[str, Any]) -> bool:
    """Settle, check, send and record one step. False: the run stops here."""
    earlier: dict[str, Any] | None = None
    if step.status in ("sending", "unknown"):
        settled = await _settle(run, step, handler, params, key)
        if not isinstance(settled, _Resend):
            return settled
        earlier, params = settled.earlier, settled.params
    else:
        checked = await _check_before_sending(run, step, handler, params, key)
        if checked is not None:
            return checked
    return await _send(run, step, handler, params, earlier)


@dataclass(frozen=True)
class _Resend:
    """A settlement that found the step must be sent again: what it found, and what to send."""

    earlier: dict[str, Any] | None
    params: dict[str, Any]


async def _settle(run: _Run, step: Step, handler: StepHandler, params: dict[str, Any],
                  key: dict[str, Any]) -> bool | _Resend:
    """A step whose answer was lost: look its object up before anything is re-sent. True/False:
    the step is settled (done) or the run stops; a :class:`_Resend`: send again."""
    try:
        settlement = await handler.settle(run.halo, params, key)
    except HaloError as exc:
        step.status = "unknown"
        step.error = f"could not check in Halo whether this step took effect: {exc}"
        await run.save(step)
        return False
    step.note = settlement.note
    if settlement.resend is None:
        run.settled += 1
        await _finish(run, step, settlement.result)
        return True
    return _Resend(settlement.result, settlement.resend)


async def _check_before_sending(run: _Run, step: Step, handler: StepHandler, params: dict[str, Any],
                                key: dict[str, Any]) -> bool | None:
    """A first send: the handler's guard may refuse it and its reuse check may find the object
    already in Halo. True/False: the step is done (reused) or the run stops; None: send it."""
    if handler.guard is not None:
        try:
            reason = await handler.guard(run.halo, params, key)
        except HaloError as exc:
            reason = f"could not check Halo before sending: {exc}"
        if reason:
            return await _stop(run, step, "failed", reason)
    if handler.reuse is None:
        return None
    try:
        found = await handler.reuse(run.halo, params, key)
    except HaloError as exc:
        return await _stop(run, step, "failed", f"could not check Halo before sending: {exc}")
    if found is None:
        return None
    step.note = found.note
    run.reused += 1
    await _finish(run, step, found.result)
    return True


async def _stop(run: _Run, step: Step, status: str, error: str) -> bool:
    """Record why the step did not finish; the run stops here."""
    step.status, step.error = status, error
    await run.save(step)
    return False


async def _send(run: _Run, step: Step, handler: StepHandler, params: dict[str, Any],
                earlier: dict[str, Any] | None) -> bool:
    """Mark the step ``sending`` (committed) before the request leaves, send it, record the answer."""
    step.sent = _safe_preview(run.halo, step.kind, params)
    step.status, step.error = "sending", None
    step.attempts += 1
    await run.save(step)
    run.sent += 1
    try:
        result = await handler.send(run.halo, params)
    except HaloUnknownOutcome as exc:
        return await _stop(run, step, "unknown", str(exc))
    except HaloNotFound as exc:
        if not is_delete(step.kind):
            return await _stop(run, step, "failed", str(exc))
        # the object is not there (deleted out of band, or by an earlier attempt): the delete is done
        result = {"id": deleted_id(step.kind, params), "deleted": True, "already_gone": True}
        step.note = "already gone: Halo answered 404 Not Found, so nothing was deleted by this step"
    except HaloError as exc:
        return await _stop(run, step, "failed", str(exc))
    except Exception as exc:
        # Not a Halo answer we understand (a bug): whether the write happened is unknown.
        await _stop(run, step, "unknown", f"unexpected {type(exc).__name__} while sending")
        raise
    if earlier:
        result = handler.merge(earlier, result)
    await _finish(run, step, result)
    return True


async def _step_progress(progress: Progress | None, plan: Plan, step: Step) -> None:
    """One report per finished step (so the value always grows), in the executor's own words:
    step number and kind, and the group number when the step completes its group (summaries
    and group names may quote Halo's text, so they are not echoed)."""
    total = len(plan.steps)
    done = sum(1 for s in plan.steps if s.status in _FINISHED)
    message = f"Step {step.index + 1} of {total} done ({_kind_words(step)})."
    if step.group and all(s.status in _FINISHED for s in plan.steps if s.group == step.group):
        groups = list(dict.fromkeys(s.group for s in plan.steps if s.group))
        complete = sum(1 for g in groups if all(s.status in _FINISHED for s in plan.steps if s.group == g))
        message += (f" Group {groups.index(step.group) + 1} of {len(groups)} complete "
                    f"({complete} of {len(groups)} groups done).")
    await _report(progress, done, total, message)
