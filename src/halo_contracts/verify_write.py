"""``verify --write`` and ``verify --cleanup``: settle what only a write can show, then remove it.

Every write is a Plan applied by ``plans.executor`` through the journal (tool ``verify``), so
claims, natural-key guards and the lost-answer rule hold as for any tool, and a run cut short
can be cleaned up later. Each plan's summary names the run (``verify_run``: its reference
prefix, and the client); everything a run makes carries that prefix (contract refs, line
descriptions, the licence's product code), so its records can also be found in Halo without
the journal.

The run (``run_writing``), in one client's book:

1. a Pending contract (dated a year ahead, so no invoice can fall due while it exists);
2. its recurring invoice with a monthly and an annual line;
3. everything read back and each field sent compared with what Halo stored;
4. one more line, and the lines read again: added or replaced?
5. a second contract as its renewal, and the list with and without ``excluderenewed``;
6. a licence created, updated and deleted;
7. everything it made removed (``cleanup_run``): licences, recurring invoices, then contracts;
   a contract Halo refuses to delete is cancelled instead and reported as left.

``cleanup_pending`` (``verify --cleanup``) finds the runs in the journal not cleaned up (and,
given a client, records in Halo carrying a verify prefix) and removes what they made.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio

from halo_contracts.access import LOCAL
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.domain.money import add_months
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.verify import (
    Finding,
    Recorder,
    Report,
    check_stored,
    check_write_answers,
    licence_after_delete,
    licence_differences,
    stored_records,
)
from halo_contracts.plans.executor import ApplyOutcome, apply_plan
from halo_contracts.plans.journal import JournalBase
from halo_contracts.plans.models import Actor, Plan
from halo_contracts.plans.steps import add_line_steps, add_step, route_lines

TOOL = "verify"
# VERIFY-20261204T211500-a1b2c3: what every record of a run starts with
PREFIX = re.compile(r"VERIFY-\d{8}T\d{6}-[0-9a-f]{6}")
NOTE = "made by halopsa-contracts-mcp verify --write; verify --cleanup removes it"


def new_prefix(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"VERIFY-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _ours(text: str | None, prefix: str | None) -> bool:
    """Whether a ref/code belongs to run ``prefix`` (None: to any verify run)."""
    text = text or ""
    if prefix is not None:
        return text == prefix or text.startswith(prefix + "-") or text.startswith(prefix + " ")
    return PREFIX.match(text) is not None


class StageFailed(RuntimeError):
    """A plan of the run did not finish: the run stops and cleans up."""


@dataclass
class Run:
    halo: HaloClient
    journal: JournalBase
    recorder: Recorder
    client_id: int
    prefix: str
    report: Report
    start: date = field(default_factory=lambda: add_months(datetime.now(UTC).date().replace(day=1), 12))
    contract_id: int | None = None
    invoice_id: int | None = None
    since: int = 0  # the first exchange of this run in the recorder

    @property
    def end(self) -> date:
        return add_months(self.start, 12) - timedelta(days=1)

    def plan(self, title: str, stage: str) -> Plan:
        plan = Plan(tool=TOOL, title=title, summary={"verify_run": self.prefix, "client_id": self.client_id,
                                                     "stage": stage})
        plan.audit.previewed_by = Actor(id=LOCAL.id, label=LOCAL.label)
        return plan

    async def apply(self, plan: Plan) -> ApplyOutcome:
        return await _apply(self.journal, self.halo, plan, strict=True)


async def _apply(journal: JournalBase, halo: HaloClient, plan: Plan, *, strict: bool) -> ApplyOutcome:
    await anyio.to_thread.run_sync(journal.save_plan, plan)
    outcome = await apply_plan(plan.id, journal=journal, halo=halo)
    if strict and not outcome.ok:
        raise StageFailed(outcome.message)
    return outcome


# ---- the run --------------------------------------------------------------------------------------


def _contract_fields(run: Run, ref: str, start: date, *, previous: int | None = None) -> dict[str, Any]:
    fields = ContractFields(client_id=run.client_id, ref=ref, type="Recurring", status="Pending", start_date=start,
                            end_date=add_months(start, 12) - timedelta(days=1), billing_frequency="Monthly",
                            value=Decimal("13.00"), notes=NOTE)
    if previous is not None:
        fields.previous_contract_id = previous
    return fields.model_dump(mode="json", exclude_unset=True)


def _line(run: Run, word: str, price: str, frequency: str) -> dict[str, Any]:
    item = RecurringItemFields(description=f"{run.prefix} {word}", quantity=Decimal(1), unit_price=Decimal(price),
                               billing_frequency=frequency, start_date=run.start)
    return item.model_dump(mode="json", exclude_unset=True)


async def stage_contract(run: Run) -> None:
    """Steps 1-2: the Pending contract, its recurring invoice, a monthly and an annual line
    (the annual one on the contract's Annual recurring invoice: one per billing frequency)."""
    ref = f"{run.prefix}-A"
    plan = run.plan(f"verify: a Pending contract with a monthly and an annual line for client {run.client_id}",
                    "contract")
    add_step(plan, run.halo, "create_contract", f"Create Pending contract for client {run.client_id}",
             {"fields": _contract_fields(run, ref, run.start)}, natural_key={"client_id": run.client_id, "ref": ref})
    items = [RecurringItemFields.model_validate(_line(run, "monthly", "1.00", "Monthly")),
             RecurringItemFields.model_validate(_line(run, "annual", "12.00", "Annual"))]
    targets = add_line_steps(plan, run.halo, route_lines(items, [], "Monthly"), client_id=run.client_id,
                             contract_id=Plan.ref(0), contract_ref=ref, owner="the verify contract",
                             schedule={"start_date": run.start.isoformat(), "end_date": run.end.isoformat()},
                             natural_key={"contract_id": Plan.ref(0), "existing_line_ids": []},
                             what=lambda t: f"Add its {t.frequency} line")
    outcome = await run.apply(plan)
    monthly = targets[0].create
    run.contract_id = int(outcome.plan.steps[0].result["id"])  # type: ignore[index]
    run.invoice_id = int(outcome.plan.steps[monthly.index].result["id"])  # type: ignore[index,union-attr]


async def stage_read_back(run: Run) -> None:
    """Step 3: each field sent against what Halo stored."""
    assert run.contract_id is not None
    stored = await stored_records(run.halo, [run.contract_id])
    check_stored(run.recorder.exchanges[run.since:], stored, run.report)


async def stage_add_line(run: Run) -> None:
    """Step 4: one more line on the monthly recurring invoice: added to the others, or replacing them?"""
    assert run.contract_id is not None and run.invoice_id is not None
    before = [line.id for line in (await run.halo.get_recurring_invoice(run.invoice_id)).lines]
    plan = run.plan(f"verify: one more line on recurring invoice {run.invoice_id}", "add_line")
    add_step(plan, run.halo, "add_recurring_lines", f"Add a line to recurring invoice {run.invoice_id}",
             {"recurring_invoice_id": run.invoice_id, "contract_id": run.contract_id,
              "items": [_line(run, "added", "2.00", "Monthly")]},
             natural_key={"contract_id": run.contract_id, "existing_line_ids": before})
    await run.apply(plan)
    after = [line.id for line in (await run.halo.get_recurring_invoice(run.invoice_id)).lines]
    kept = [i for i in before if i in after]
    evidence = [f"recurring invoice {run.invoice_id}: lines {before} before, {after} after adding one"]
    question = "Does adding a line to a recurring invoice keep its other lines (added) or drop them (replaced)?"
    if len(kept) == len(before) and len(after) == len(before) + 1:
        run.report.quirks["lines_post"] = "add"
        run.report.findings.append(Finding(question, "added: the earlier lines are kept", evidence))
    elif not kept and len(after) == 1:
        run.report.quirks["lines_post"] = "replace"
        run.report.findings.append(Finding(question, "replaced: only the line just sent is left; send every line "
                                           "of a recurring invoice together", evidence))
    else:
        run.report.findings.append(Finding(question, f"neither: {len(kept)} of {len(before)} earlier lines kept",
                                           evidence, settled=False))


async def stage_renewal(run: Run) -> None:
    """Step 5: a second contract renewing the first; the list with and without excluderenewed."""
    assert run.contract_id is not None
    ref = f"{run.prefix}-B"
    start = run.end + timedelta(days=1)
    plan = run.plan(f"verify: a renewal of contract {run.contract_id}", "renewal")
    add_step(plan, run.halo, "create_contract", f"Create a Pending renewal of contract {run.contract_id}",
             {"fields": _contract_fields(run, ref, start, previous=run.contract_id)},
             natural_key={"client_id": run.client_id, "ref": ref})
    outcome = await run.apply(plan)
    renewal = outcome.plan.steps[0].result["id"]  # type: ignore[index]
    every = await run.halo.list_contracts(ContractQuery(client_id=run.client_id, include_inactive=True))
    kept = await run.halo.list_contracts(ContractQuery(client_id=run.client_id, include_inactive=True,
                                                       exclude_renewed=True))
    listed = ({c.id for c in every}, {c.id for c in kept})
    evidence = [f"contract {renewal} renews {run.contract_id}; client {run.client_id}: {len(every)} contracts "
                f"listed, {len(kept)} with excluderenewed=true; contract {run.contract_id} "
                + ("left out" if run.contract_id not in listed[1] else "still listed") + " with it"]
    question = "Does excluderenewed=true leave out a contract another contract renews (a link made by verify)?"
    if run.contract_id in listed[0] and run.contract_id not in listed[1]:
        run.report.quirks["excluderenewed"] = "hides_renewed"
        run.report.findings.append(Finding(question, "yes: the renewed contract is left out", evidence))
    elif run.contract_id in listed[1]:
        run.report.quirks["excluderenewed"] = "ignored"
        run.report.findings.append(Finding(question, "no: the filter is ignored; renewals are found from the links",
                                           evidence))
    else:
        run.report.findings.append(Finding(question, "not settled: the contract is not listed at all", evidence,
                                           settled=False))


async def stage_licence(run: Run) -> None:
    """Step 6: a licence created, updated (read back), deleted (read again)."""
    code = f"{run.prefix}-LIC"
    fields = LicenceFields(client_id=run.client_id, product_code=code, name=f"{run.prefix} licence", quantity=1,
                           unit_price=Decimal("1.00"))
    plan = run.plan(f"verify: a licence for client {run.client_id}, then changed", "licence")
    add_step(plan, run.halo, "create_licence", f"Create a licence for client {run.client_id}",
             {"fields": fields.model_dump(mode="json", exclude_unset=True)},
             natural_key={"client_id": run.client_id, "product_code": code})
    add_step(plan, run.halo, "update_licence", "Set its quantity to 2",
             {"licence_id": Plan.ref(0), "fields": {"quantity": 2}}, natural_key={"licence_id": Plan.ref(0)})
    outcome = await run.apply(plan)
    licence_id = int(outcome.plan.steps[0].result["id"])  # type: ignore[index]
    sent, differ = await licence_differences(run.halo, run.recorder.exchanges[run.since:], licence_id)
    plan = run.plan(f"verify: delete licence {licence_id}", "licence_delete")
    add_step(plan, run.halo, "delete_licence", f"Delete licence {licence_id}", {"licence_id": licence_id},
             natural_key={"client_id": run.client_id})
    await run.apply(plan)
    after = await licence_after_delete(run.halo, licence_id)
    evidence = [f"licence {licence_id} created and updated: {sent - len(differ)} of {sent} fields as sent"
                + (f"; {'; '.join(differ)}" if differ else ""), f"after the delete: {after}"]
    if not after.startswith("gone"):
        differ.append(f"the deleted licence is {after}")
    answer = "yes: created, updated and deleted" if not differ else "partly: " + "; ".join(differ)
    run.report.findings.append(Finding("Can a licence be created, updated and deleted, and is a deleted one gone?",
                                       answer, evidence))


STAGES = (stage_contract, stage_read_back, stage_add_line, stage_renewal, stage_licence)


async def run_writing(halo: HaloClient, journal: JournalBase, recorder: Recorder, *, client_id: int, prefix: str,
                      report: Report) -> bool:
    """Steps 1-7 under ``prefix`` in client ``client_id``'s book; findings go into ``report``.
    True when every stage ran and nothing was left behind."""
    run = Run(halo, journal, recorder, client_id, prefix, report, since=len(recorder.exchanges))
    ok = True
    for stage in STAGES:
        try:
            await stage(run)
        except (StageFailed, HaloError) as exc:
            name = stage.__name__.removeprefix("stage_").replace("_", " ")
            report.findings.append(Finding(f"verify --write, {name}: did it run?", f"no: {exc}", settled=False))
            ok = False
            break
    check_write_answers(recorder.exchanges[run.since:], report)
    cleaned = await cleanup_run(halo, journal, prefix=prefix, client_id=client_id, report=report)
    if cleaned:
        await anyio.to_thread.run_sync(_close_run, journal, prefix)
    return ok and cleaned


# ---- cleanup ------------------------------------------------------------------------------------


@dataclass
class Targets:
    licences: list[int] = field(default_factory=list)
    invoices: list[int] = field(default_factory=list)
    contracts: list[int] = field(default_factory=list)  # renewals before the contracts they renew

    def steps(self) -> list[tuple[str, str, int]]:
        return ([("delete_licence", "licence", i) for i in self.licences]
                + [("delete_recurring_invoice", "recurring invoice", i) for i in self.invoices]
                + [("delete_contract", "contract", i) for i in self.contracts])

    def empty(self) -> bool:
        return not (self.licences or self.invoices or self.contracts)


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))


async def find_targets(halo: HaloClient, *, prefix: str | None, client_id: int,
                       known: dict[str, list[int]] | None = None) -> tuple[Targets, set[int]]:
    """What a run (``prefix``; None: any verify run) made in the client's book, as Halo shows
    it now, plus ids the journal knows; and which contracts are already cancelled."""
    known = known or {}
    contracts = [c for c in await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True))
                 if c.client_id in (None, client_id) and _ours(c.ref, prefix)]
    renewing = {c.previous_contract_id for c in contracts if c.previous_contract_id}
    ordered = sorted(contracts, key=lambda c: (c.id in renewing, -c.id))
    contract_ids = _unique([*(c.id for c in ordered), *known.get("contract", [])])
    invoices: list[int] = []
    for contract_id in contract_ids:
        invoices += [ri.id for ri in await halo.list_recurring_invoices(contract_id=contract_id, include_lines=False)
                     if ri.contract_id == contract_id]
    licences = [lic.id for lic in await halo.list_licences(client_id=client_id, include_inactive=True)
                if lic.client_id in (None, client_id) and _ours(lic.product_code, prefix) and lic.id is not None]
    cancelled = {c.id for c in contracts if (c.status or "").casefold() == "cancelled"}
    return Targets(_unique([*licences, *known.get("licence", [])]),
                   _unique([*invoices, *known.get("recurring_invoice", [])]), contract_ids), cancelled


async def _cancel(journal: JournalBase, halo: HaloClient, contract_id: int, summary: dict[str, Any]) -> str | None:
    """Cancel a contract Halo would not delete; None when done, else why not."""
    plan = Plan(tool=TOOL, title=f"verify cleanup: cancel contract {contract_id}", summary=summary)
    plan.audit.previewed_by = Actor(id=LOCAL.id, label=LOCAL.label)
    add_step(plan, halo, "update_contract", f"Cancel contract {contract_id}",
             {"contract_id": contract_id, "fields": {"status": "Cancelled"}}, natural_key={"contract_id": contract_id})
    outcome = await _apply(journal, halo, plan, strict=False)
    return None if outcome.ok else outcome.message


_ID_PARAM = {"licence": "licence_id", "recurring invoice": "recurring_invoice_id", "contract": "contract_id"}


async def _remove(journal: JournalBase, halo: HaloClient, targets: Targets, summary: dict[str, Any],
                  removed: list[str], left: list[str]) -> None:
    """Delete every target through cleanup plans; a contract Halo will not delete is cancelled."""
    pending = targets.steps()
    while pending:
        plan = Plan(tool=TOOL, title=f"verify cleanup: delete {len(pending)} record(s) made by verify",
                    summary=summary)
        plan.audit.previewed_by = Actor(id=LOCAL.id, label=LOCAL.label)
        for kind, what, id_ in pending:
            name = _ID_PARAM[what]
            add_step(plan, halo, kind, f"Delete {what} {id_}", {name: id_},  # type: ignore[arg-type]
                     natural_key={"client_id": summary["client_id"]} if what == "licence" else {})
        outcome = await _apply(journal, halo, plan, strict=False)
        for step, (_kind, what, id_) in zip(outcome.plan.steps, pending, strict=True):
            if step.status == "done":
                gone = " (already gone)" if (step.result or {}).get("already_gone") else ""
                removed.append(f"{what} {id_} deleted{gone}")
        stop = outcome.stopped_at
        if stop is None:
            return
        _kind, what, id_ = pending[stop.index]
        reason = " ".join((stop.error or "no details").split())
        if what == "contract" and stop.status == "failed":
            why_not = await _cancel(journal, halo, id_, summary)
            left.append(f"contract {id_}: Halo refused to delete it ({reason}); "
                        + ("cancelled instead" if why_not is None else f"cancelling it failed too: {why_not}"))
        else:
            left.append(f"{what} {id_}: not removed ({reason})")
        pending = pending[stop.index + 1:]


async def cleanup_run(halo: HaloClient, journal: JournalBase, *, prefix: str | None, client_id: int, report: Report,
                      known: dict[str, list[int]] | None = None) -> bool:
    """Step 7: remove what run ``prefix`` made (None: any verify run's records of the client).
    Reported as a finding; True when nothing is left but contracts Halo will not delete (cancelled)."""
    label = prefix or "verify (any run)"
    question = f"Did verify remove everything it made ({label}, client {client_id})?"
    summary = {"verify_cleanup": prefix, "client_id": client_id}
    removed: list[str] = []
    left: list[str] = []
    try:
        targets, _cancelled = await find_targets(halo, prefix=prefix, client_id=client_id, known=known)
        await _remove(journal, halo, targets, summary, removed, left)
        remaining, cancelled = await find_targets(halo, prefix=prefix, client_id=client_id)
    except HaloError as exc:
        report.findings.append(Finding(question, f"not known: Halo could not be read or written ({exc}); run "
                                       "verify --cleanup again", [*removed, *left], settled=False))
        return False
    stuck = [i for i in remaining.contracts if i not in cancelled] + remaining.invoices + remaining.licences
    if not remaining.empty():
        left.append("still in Halo: " + ", ".join(f"{what} {i}" for _k, what, i in remaining.steps())
                    + (f" (cancelled: contracts {sorted(cancelled)})" if cancelled else ""))
    if not stuck:
        await anyio.to_thread.run_sync(journal.save_plan, _marker(prefix, client_id))
    answer = ("yes: nothing it made is left" if remaining.empty() else
              "no: cancelled what Halo would not delete (see the evidence)" if not stuck else
              "no: some records could not be removed (see the evidence); run verify --cleanup again")
    report.findings.append(Finding(question, answer, [*removed, *left] or ["nothing to remove"]))
    return not stuck


def _marker(prefix: str | None, client_id: int) -> Plan:
    """A step-less plan recording that a run's cleanup finished (``verify --cleanup`` skips it)."""
    plan = Plan(tool=TOOL, title=f"verify cleanup of {prefix or 'verify records'} finished", status="applied",
                summary={"verify_cleaned": prefix, "client_id": client_id})
    plan.audit.previewed_by = Actor(id=LOCAL.id, label=LOCAL.label)
    return plan


def pending_runs(journal: JournalBase) -> dict[str, dict[str, Any]]:
    """Runs in the journal not cleaned up: prefix -> client and the ids its plans created."""
    runs: dict[str, dict[str, Any]] = {}
    cleaned: set[str] = set()
    for row in journal.plans_of(TOOL):
        summary = row["summary"] or {}
        if summary.get("verify_cleaned"):
            cleaned.add(summary["verify_cleaned"])
            continue
        prefix = summary.get("verify_run")
        if not prefix:
            continue
        run = runs.setdefault(prefix, {"client_id": int(summary["client_id"]), "known": {}})
        plan = journal.get_plan(row["id"])
        for step in plan.steps if plan else []:
            kind = step.kind.removeprefix("create_")
            if step.status == "done" and step.result and kind in ("contract", "recurring_invoice", "licence") \
                    and not step.result.get("reused"):
                run["known"].setdefault(kind, []).append(int(step.result["id"]))
    return {p: r for p, r in runs.items() if p not in cleaned}


def _close_plans(journal: JournalBase, plan_ids: list[str]) -> None:
    """The run's unfinished plans are never resumed: their open steps are marked skipped."""
    for plan_id in plan_ids:
        plan = journal.get_plan(plan_id)
        if plan is None or plan.finished:
            continue
        for step in plan.steps:
            if step.status not in ("done", "skipped"):
                step.status, step.note = "skipped", "not resumed: verify --cleanup removed what the run made"
                journal.save_step(plan_id, step)
        journal.set_plan_status(plan_id, "failed")


def _of_run(summary: dict[str, Any] | None, prefix: str | None) -> bool:
    """Whether a plan's summary belongs to run ``prefix`` (its writes or its cleanup; None:
    the cleanup of any verify records by prefix)."""
    summary = summary or {}
    if prefix is None:
        return "verify_cleanup" in summary and summary["verify_cleanup"] is None
    return prefix in (summary.get("verify_run"), summary.get("verify_cleanup"))


def _close_run(journal: JournalBase, prefix: str | None) -> None:
    _close_plans(journal, [row["id"] for row in journal.plans_of(TOOL) if _of_run(row["summary"], prefix)])


async def cleanup_pending(halo: HaloClient, journal: JournalBase, *, client_id: int | None, report: Report) -> bool:
    """``verify --cleanup``: every run of the journal not cleaned up, then (given a client) any
    record of that client carrying a verify prefix. True when nothing is left that could go."""
    ok = True
    runs = await anyio.to_thread.run_sync(pending_runs, journal)
    for prefix, run in runs.items():
        done = await cleanup_run(halo, journal, prefix=prefix, client_id=run["client_id"], report=report,
                                 known=run["known"])
        if done:
            await anyio.to_thread.run_sync(_close_run, journal, prefix)
        ok = ok and done
    if client_id is not None:
        done = await cleanup_run(halo, journal, prefix=None, client_id=client_id, report=report)
        if done:
            await anyio.to_thread.run_sync(_close_run, journal, None)
        ok = ok and done
    if not runs and client_id is None:
        report.findings.append(Finding("Is there a verify run to clean up?", "no: every run in the journal was "
                                       "cleaned up (give --client-id to also look in Halo for verify records)",
                                       ["journal: no verify run left open"]))
    return ok

