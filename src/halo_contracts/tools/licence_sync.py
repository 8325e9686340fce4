"""Distributor licence sync: one previewable plan that mirrors a distributor's monthly
licence quantities into Halo's software licences.

The tool is thin: validate the feed (domain) -> read *every* Halo client and licence ->
decide (domain) -> a Plan of create/update/delete licence steps saved in the journal.
Nothing is written to Halo here; ``apply_plan(plan_id)`` does that.

Halo's free text (client and licence names, distributors) is data: it goes to its own result
fields (``client_name`` in the matching table, actions and money rows; ``distributor`` in the
skipped rows) and never into the title, step summaries, reasons, warnings or plan groups, which
name Halo clients and licences by id.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from halo_contracts.domain.feed_limits import FeedLimits, check_csv, check_rows
from halo_contracts.domain.licence_sync import (
    FeedError,
    LicenceAction,
    SyncDecision,
    decide,
    distributor_key,
    parse_csv,
    parse_rows,
)
from halo_contracts.domain.matching import MappingProblem, name_key
from halo_contracts.domain.money import cents
from halo_contracts.halo.errors import HaloError
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_step
from halo_contracts.progress import progress_of
from halo_contracts.tools.common import (
    ArgModel,
    Line,
    Money,
    Number,
    Result,
    StrictInt,
    StrictStr,
    app,
    halo_error_message,
    halo_tool,
    invalid,
    listed,
    money,
    save_plan,
)

MAX_ROWS_SHOWN = 200  # rows per list at most; fewer when the result would pass its byte share (_fitted)


class FeedLine(ArgModel):

    customer: StrictStr
    product_code: StrictStr
    product_name: StrictStr | None = None
    quantity: StrictInt = Field(description="Seats this month; 0 removes the licence")
    unit_price: Number | None = Field(default=None)
    billing_cycle: StrictStr | None = None
    term: StrictStr | None = Field(default=None)


# ---- result ---------------------------------------------------------------------------------


class CandidateRow(Result):
    client_id: int
    client_name: str
    normalised: str
    score: float


class MatchRow(Result):
    customer: str
    normalised: str = Field(description="the customer name as compared (case, punctuation, legal suffixes removed)")
    status: Literal["matched", "ambiguous", "unmatched", "excluded"]
    method: Literal["explicit", "remembered", "automatic"] | None = None
    client_id: int | None = None
    client_name: str | None = None
    score: float | None = None
    candidates: list[CandidateRow] = Field(description="best three Halo clients, 0-100; none for a sure match")
    reason: str


class ChangeRow(Result):
    field: str
    before: str | None = None
    after: str | None = None


class ActionRow(Result):
    step: int | None = Field(default=None, description="index of the plan step (null: not planned)")
    kind: Literal["create", "update", "delete"]
    client_id: int
    client_name: str
    customer: str | None = Field(description="the feed's customer; null for a cleanup delete")
    product_code: str = Field(description="Halo's product code (the one written)")
    halo_name: str | None = Field(default=None, description="the product as Halo names it")
    feed_name: str | None = Field(default=None, description="the feed's product name, when it differs")
    feed_code: str | None = Field(default=None, description="the feed's code, when a product mapping tied it "
                                                            "to product_code")
    licence_id: int | None = None
    line: int | None = Field(default=None, description="feed line (CSV) or row (list)")
    changes: list[ChangeRow] = Field(default_factory=list)
    summary: str


class SkippedRow(Result):
    customer: str | None = None
    product_code: str | None = None
    line: int | None = None
    client_id: int | None = None
    licence_id: int | None = Field(default=None, description="set when the row is a Halo licence left alone")
    distributor: str | None = Field(default=None, description="that licence's distributor in Halo")
    reason: str


class MismatchRow(Result):
    client_id: int
    client_name: str
    customer: str
    line: int
    feed_code: str
    feed_name: str | None
    feed_quantity: int
    licence_id: int
    halo_code: str
    halo_name: str
    halo_quantity: int
    suggested_mapping: dict[str, str] = Field(description="pass as product_mappings if they are one product")
    reason: str


class MappingUseRow(Result):
    feed_code: str
    halo_code: str
    method: Literal["exact", "explicit", "remembered"]
    lines: int


class ClientMoneyRow(Result):
    client_id: int
    client_name: str
    customers: list[str]
    monthly_before: Money
    monthly_after: Money
    monthly_change: Money
    notes: list[str] = Field(default_factory=list)


class SyncSummaryRow(Result):
    customers: dict[str, int] = Field(description="matched / ambiguous / unmatched / excluded")
    actions: dict[str, int] = Field(description="create / update / delete / unchanged / nothing_to_do / skipped "
                                                "(feed lines) / left_alone (Halo licences, see skipped)")
    monthly_before: Money = Field(description="matched clients' licences per month before the plan")
    monthly_after: Money = Field(description="… and after it (annual / 12, quarterly / 3 …)")
    money: list[ClientMoneyRow] = Field(description=f"per matched client (first {MAX_ROWS_SHOWN})")
    money_total: int


class LicenceSyncPlan(Result):
    plan_id: str = Field(description="apply with apply_plan(plan_id); nothing has been written yet")
    title: str
    distributor: str
    feed_lines: int
    steps: int = Field(description="licence writes the plan holds")
    matching: list[MatchRow] = Field(description=f"one row per feed customer (first {MAX_ROWS_SHOWN}; ambiguous "
                                                 "and unmatched ones first when there are more)")
    matching_total: int
    actions: list[ActionRow] = Field(description=f"the plan's steps (first {MAX_ROWS_SHOWN})")
    actions_total: int
    skipped: list[SkippedRow] = Field(description=f"feed lines and Halo licences left alone (first {MAX_ROWS_SHOWN})")
    skipped_total: int
    likely_code_mismatches: list[MismatchRow] = Field(
        description=f"creates held back beside a licence of the same product name under another code, with "
                    f"the product_mappings to give (first {MAX_ROWS_SHOWN})")
    likely_code_mismatches_total: int
    first_sync: bool = Field(description="no sync from this distributor was applied yet: cleanup deletes are "
                                         "listed in would_delete, not planned, unless cleanup_first_sync")
    would_delete: list[ActionRow] = Field(description=f"cleanup deletes held back on a first sync (first "
                                                      f"{MAX_ROWS_SHOWN})")
    would_delete_total: int
    product_mappings_used: list[MappingUseRow] = Field(description="feed codes synced under other Halo codes")
    summary: SyncSummaryRow
    remembered_mappings: list[str] = Field(description="explicit customer and product mappings stored for next "
                                                       "month")
    warnings: list[str]
    next_step: str

    def said(self) -> str:
        s = self.summary
        c, a = s.customers, s.actions
        text = (f"{self.title}. {self.feed_lines} feed lines; customers: {c.get('matched', 0)} matched, "
                f"{c.get('ambiguous', 0)} ambiguous, {c.get('unmatched', 0)} unmatched, {c.get('excluded', 0)} "
                f"excluded. Actions: {a.get('create', 0)} create, {a.get('update', 0)} update, {a.get('delete', 0)} "
                f"delete, {a.get('unchanged', 0)} unchanged. Licences per month {money(s.monthly_before)} -> "
                f"{money(s.monthly_after)}.")
        biggest = sorted(s.money, key=lambda m: -abs(m.monthly_change))[:3]
        if biggest:
            text += " Biggest changes: " + listed([f"client {m.client_id} {money(m.monthly_change)}/month"
                                                   for m in biggest], 3) + "."
        if self.likely_code_mismatches_total or self.would_delete_total:
            text += (f" Held back: {self.likely_code_mismatches_total} likely code mismatch(es), "
                     f"{self.would_delete_total} first-sync delete(s).")
        return text + " " + self.next_step


# ---- helpers --------------------------------------------------------------------------------


def _read_feed(source: str | list[FeedLine], limits: FeedLimits):
    """The feed within its limits (CPU work: run it off the event loop)."""
    if isinstance(source, str):
        check_csv(source, limits)
        return parse_csv(source)
    check_rows(source, limits)
    return parse_rows([row.model_dump(exclude_none=True) for row in source])


def _first_rows(decisions: list[Any]) -> list[Any]:
    """At most MAX_ROWS_SHOWN matching rows; when there are more, the ones needing the user first."""
    if len(decisions) <= MAX_ROWS_SHOWN:
        return decisions
    return sorted(decisions, key=lambda d: d.status not in ("ambiguous", "unmatched"))[:MAX_ROWS_SHOWN]


SURE_SCORE = 95.0  # a match this good (or one the user mapped) is shown without its candidates


def _match_row(d: Any, mode: str = "python") -> dict[str, Any]:
    """A matching row; the candidates only where the user may have to choose (weak, ambiguous,
    unmatched): a sure match shows its client and score, which keeps a long feed's answer small."""
    row = d.model_dump(mode=mode)
    sure = d.status == "matched" and (d.method != "automatic" or (d.score or 0) >= SURE_SCORE)
    if sure:
        row["candidates"] = []
    return row


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _step_params(action: LicenceAction) -> dict[str, Any]:
    # "product" names what the step is about (Halo's name, the feed's when different): data for
    # the reader, never part of the request
    product = {k: v for k, v in (("code", action.product_code), ("halo_name", action.halo_name),
                                 ("feed_name", action.feed_name), ("feed_code", action.feed_code)) if v}
    if action.kind == "create":
        return {"fields": action.fields.model_dump(mode="json", exclude_unset=True), "product": product}
    if action.kind == "update":
        return {"licence_id": action.licence_id, "fields": action.fields.model_dump(mode="json", exclude_unset=True),
                "product": product}
    return {"licence_id": action.licence_id, "product": product}


def _action_row(action: LicenceAction, step: int | None) -> ActionRow:
    return ActionRow(
        step=step, kind=action.kind, client_id=action.client_id, client_name=action.client_name,
        customer=action.customer, product_code=action.product_code, halo_name=action.halo_name,
        feed_name=action.feed_name, feed_code=action.feed_code, licence_id=action.licence_id,
        line=action.line, summary=action.summary,
        changes=[ChangeRow(field=c.field, before=_text(c.before), after=_text(c.after)) for c in action.changes])


async def _first_sync(journal: Any, distributor: str, licences: list[Any]) -> bool:
    """A first sync: no licence sync from this distributor was applied through this journal,
    or no Halo licence carries its name yet."""
    key = distributor_key(distributor)
    if not any(distributor_key(x.distributor) == key for x in licences):
        return True
    plans = await anyio.to_thread.run_sync(journal.applied_plans_of, "plan_license_sync")
    return not any(distributor_key(str(p["summary"].get("distributor", ""))) == key for p in plans)


def _check_product_mappings(product_mappings: dict[str, str] | None) -> None:
    for feed_code, halo_code in (product_mappings or {}).items():
        if not feed_code.strip() or not halo_code.strip():
            raise invalid("product_mappings", "a product code is blank",
                          "map the feed's product code to Halo's, e.g. {'CFQ7TTC0LCHC': 'M365BP'}")


def _plan_summary(decision: SyncDecision, distributor: str) -> dict[str, Any]:
    s = decision.summary
    return {
        "distributor": distributor,
        "customers": s.customers,
        "actions": s.actions,
        "monthly_before": str(cents(s.monthly_before)),
        "monthly_after": str(cents(s.monthly_after)),
        "money": [
            {"client_id": m.client_id, "client_name": m.client_name, "customers": m.customers,
             "monthly_before": str(cents(m.monthly_before)), "monthly_after": str(cents(m.monthly_after)),
             "monthly_change": str(cents(m.monthly_change)), "notes": m.notes}
            for m in s.money
        ],
        # the journal keeps what needs the user, not the whole feed: unresolved customers first
        "matching": [_match_row(d, "json") for d in _first_rows(decision.matching)],
        "matching_total": len(decision.matching),
        "likely_code_mismatches": [m.model_dump(mode="json") for m in decision.mismatches[:MAX_ROWS_SHOWN]],
        "would_delete": [{"licence_id": a.licence_id, "client_id": a.client_id, "product_code": a.product_code,
                          "halo_name": a.halo_name} for a in decision.would_delete[:MAX_ROWS_SHOWN]],
    }


def _skipped_text(row: SkippedRow) -> str:
    """One skipped row in words: feed text (customer, product code) may be quoted; a Halo
    licence is named by id and client id only (its product code may be Halo's text)."""
    where = f" (line {row.line})" if row.line is not None else ""
    if row.licence_id is not None:
        feed = f" for {row.customer} '{row.product_code}'" if row.line is not None else ""
        return f"licence {row.licence_id} of client {row.client_id}{feed}{where}: {row.reason}"
    what = f"'{row.product_code}'" if row.product_code else ""
    who = row.customer or (f"client {row.client_id}" if row.client_id else "")
    return f"{who} {what}{where}: {row.reason}".strip()


async def _progress(ctx: Context, progress: float, message: str) -> None:
    try:
        await progress_of(ctx).report(progress, total=100, message=message)
    except Exception:  # progress is best effort, never the reason a plan fails
        pass


# ---- the tool -------------------------------------------------------------------------------


@halo_tool(group="license-sync", kind="write", title="Plan a distributor licence sync")
async def plan_license_sync(
    source: Annotated[
        StrictStr | list[FeedLine],
        Field(description="CSV with a header row (customer, product code, name, quantity, unit price, billing "
                          "cycle, term), or rows"),
    ],
    distributor: Annotated[Line, Field(min_length=1, max_length=100, pattern=r"\S",
                                       description="The feed's source, e.g. 'Pax8', the same every month; only its "
                                                   "licences are changed")],
    ctx: Context,
    match_threshold: Annotated[float, Field(strict=True, ge=50, le=100,
                                            description="Score to match a customer automatically")] = 90,
    ambiguity_margin: Annotated[float, Field(strict=True, ge=0, le=20,
                                             description="A runner-up this close makes the match ambiguous")] = 3,
    mappings: Annotated[
        dict[Line, Annotated[int, Field(strict=True, gt=0)]] | None,
        Field(),
    ] = None,
    cleanup: Annotated[bool, Field(strict=True, description="Also delete the distributor's licences of "
                                                            "matched customers for products not in the feed")]
    = True,
    exclude_clients: Annotated[
        list[Line | StrictInt] | None,
        Field(),
    ] = None,
    drop_zero_price_lines: Annotated[bool, Field(strict=True)] = False,
    product_mappings: Annotated[
        dict[Annotated[Line, Field(max_length=100)], Annotated[Line, Field(max_length=100)]] | None,
        Field(description="Feed product code -> Halo's (list_licences); remembered"),
    ] = None,
    cleanup_first_sync: Annotated[bool, Field(strict=True, description="First sync: plan the cleanup deletes "
                                                                       "too (else only listed)")] = False,
    remember_mappings: Annotated[bool, Field(strict=True)] = True,
) -> LicenceSyncPlan:
    """Preview a distributor feed's seat counts as Halo licence changes; customers matched to clients by
    name. Guide: halopsa://guide/contracts."""
    # 1. the feed (nothing is read from Halo while the input is wrong); parsed off the event loop
    ctx_app = app(ctx)
    limits = FeedLimits(ctx_app.settings.feed_max_rows, ctx_app.settings.feed_max_bytes)
    try:
        feed = await anyio.to_thread.run_sync(_read_feed, source, limits)
    except FeedError as exc:
        raise ToolError(f"Invalid 'source': {exc}. No plan was built and nothing was sent to Halo.") from None
    _check_options(mappings, exclude_clients, product_mappings)

    halo, journal = ctx_app.halo, ctx_app.journal

    # 2. the complete picture, or nothing: a partial read must never produce deletes
    def pages(what: str, low: float, high: float):
        async def on_page(done: int, total: int | None) -> None:
            share = min(done / total, 1.0) if total else 0.5
            await _progress(ctx, low + (high - low) * share,
                            f"reading {what}: page {done}" + (f" of {total}" if total else ""))
        return on_page

    distributor = distributor.strip()
    await _progress(ctx, 5, "reading every Halo client")
    what = "clients"
    try:
        clients = await halo.list_clients(include_inactive=True, on_page=pages("clients", 5, 35))
        await _progress(ctx, 40, f"read {len(clients)} clients; reading every software licence")
        what = "software licences"
        # inactive ones too: a feed line for an ended licence reactivates it instead of duplicating it
        licences = await halo.list_licences(include_inactive=True, on_page=pages("software licences", 40, 75))
    except HaloError as exc:
        raise ToolError(
            f"Could not read Halo's complete list of {what}, so no plan was built (a partial picture must "
            f"never produce deletes). {halo_error_message(exc)}") from exc
    await _progress(ctx, 80, f"read {len(licences)} licences; deciding")

    # 3. decide
    remembered = journal.mappings(distributor)
    remembered_products = journal.product_mappings(distributor)
    first_sync = await _first_sync(journal, distributor, licences)
    try:
        decision = await anyio.to_thread.run_sync(partial(
            decide, feed.lines, clients, licences, threshold=match_threshold, margin=ambiguity_margin,
            explicit=mappings, remembered=remembered, exclude=exclude_clients or (),
            cleanup=cleanup, drop_zero_price_lines=drop_zero_price_lines, distributor=distributor,
            product_mappings=product_mappings, remembered_products=remembered_products,
            first_sync=first_sync and not cleanup_first_sync))
    except MappingProblem as exc:
        pairs = ", ".join(f"'{c}' -> {i}" for c, i in exc.problems)
        raise invalid("mappings", f"Halo has no client with the id(s) in {pairs}",
                      "check the ids (find_clients by name) and call again") from None

    # 4. the plan (built and saved off the event loop: a big feed makes thousands of steps)
    def build() -> tuple[Plan, list[ActionRow], list[SkippedRow]]:
        counts = decision.summary.actions
        title = (f"Licence sync from {distributor}: {counts['create']} create, {counts['update']} update, "
                 f"{counts['delete']} delete for {decision.summary.customers['matched']} matched customer(s)")
        plan = Plan(tool="plan_license_sync", title=title)
        action_rows: list[ActionRow] = []
        for action in decision.actions:
            step = add_step(plan, halo, f"{action.kind}_licence", action.summary, _step_params(action),
                            natural_key={"client_id": action.client_id, "product_code": action.product_code},
                            group=f"client {action.client_id}")
            action_rows.append(_action_row(action, step.index))
        skipped_rows = [SkippedRow(**s.model_dump()) for s in decision.skipped]
        plan.warnings = [*feed.warnings, *decision.warnings]
        plan.warnings += _held_back_warnings(decision, distributor)
        plan.skipped = [_skipped_text(r) for r in skipped_rows[:MAX_ROWS_SHOWN]]
        if len(skipped_rows) > MAX_ROWS_SHOWN:
            plan.skipped.append(f"… and {len(skipped_rows) - MAX_ROWS_SHOWN} more (the plan's result lists the counts)")
        plan.summary = _plan_summary(decision, distributor)
        return plan, action_rows, skipped_rows

    plan, action_rows, skipped_rows = await anyio.to_thread.run_sync(build)
    title = plan.title
    await anyio.to_thread.run_sync(save_plan, ctx, plan)

    # 5. remember the mappings the user confirmed by giving them
    remembered_now = _remember(journal, distributor, mappings if remember_mappings else None,
                               product_mappings if remember_mappings else None)
    await _progress(ctx, 100, f"plan {plan.id} ready with {len(plan.steps)} step(s)")
    s = decision.summary
    return _fitted(LicenceSyncPlan(
        plan_id=plan.id, title=title, distributor=distributor, feed_lines=len(feed.lines), steps=len(plan.steps),
        matching=[MatchRow(**_match_row(d)) for d in _first_rows(decision.matching)],
        matching_total=len(decision.matching),
        actions=action_rows[:MAX_ROWS_SHOWN], actions_total=len(action_rows),
        skipped=skipped_rows[:MAX_ROWS_SHOWN], skipped_total=len(skipped_rows),
        likely_code_mismatches=[MismatchRow(**m.model_dump()) for m in decision.mismatches[:MAX_ROWS_SHOWN]],
        likely_code_mismatches_total=len(decision.mismatches), first_sync=first_sync,
        would_delete=[_action_row(a, None) for a in decision.would_delete[:MAX_ROWS_SHOWN]],
        would_delete_total=len(decision.would_delete),
        product_mappings_used=[MappingUseRow(**u.model_dump()) for u in decision.product_mappings],
        summary=SyncSummaryRow(
            customers=s.customers, actions=s.actions, monthly_before=s.monthly_before,
            monthly_after=s.monthly_after,
            money=[ClientMoneyRow(**m.model_dump()) for m in s.money[:MAX_ROWS_SHOWN]], money_total=len(s.money)),
        remembered_mappings=remembered_now, warnings=plan.warnings, next_step=_next_step(plan, decision, distributor)))


RESULT_BYTES = 22_000  # the answer's share of a single result's 25,000 bytes (the text adds about 1,000)
_CAPPED = ("matching", "actions", "skipped", "likely_code_mismatches", "would_delete")


def _fitted(result: LicenceSyncPlan) -> LicenceSyncPlan:
    """The result cut to its byte share: the longest list (in bytes) halves until it fits, each
    down to 5 rows at least. Totals stay whole, the rows that need the user come first, and the
    plan keeps every step (get_plan pages them)."""
    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":"), default=str))

    data = result.model_dump(mode="json")
    if size(data) <= RESULT_BYTES:
        return result
    # customers the user must settle first, so cutting the list never hides one of them
    result = result.model_copy(update={"matching": sorted(
        result.matching, key=lambda m: m.status not in ("ambiguous", "unmatched"))})
    data = result.model_dump(mode="json")
    while size(data) > RESULT_BYTES:
        name = max(_CAPPED, key=lambda k: size(data[k]) if len(data[k]) > 5 else -1)
        if len(data[name]) <= 5:
            break
        data[name] = data[name][:max(5, len(data[name]) // 2)]
    rows = {k: getattr(result, k)[:len(data[k])] for k in _CAPPED}
    return result.model_copy(update=rows)


def _check_options(mappings: dict[str, int] | None, exclude_clients: list[str | int] | None,
                   product_mappings: dict[str, str] | None) -> None:
    _check_product_mappings(product_mappings)
    for name in mappings or {}:
        if not name.strip():
            raise invalid("mappings", "a customer name is blank", "use the customer name exactly as in the feed")
    for entry in exclude_clients or []:
        if isinstance(entry, str) and not entry.strip():
            raise invalid("exclude_clients", "an entry is blank", "give customer names, client names or ids")
        if isinstance(entry, int) and entry <= 0:
            raise invalid("exclude_clients", f"{entry} is not a Halo client id", "give ids above zero")


def _held_back_warnings(decision: SyncDecision, distributor: str) -> list[str]:
    out: list[str] = []
    if decision.mismatches:
        out.append(f"{len(decision.mismatches)} likely code mismatch(es) held back (no create, no delete): "
                   "see likely_code_mismatches and give product_mappings")
    if decision.would_delete:
        out.append(f"first sync from {distributor}: {len(decision.would_delete)} cleanup delete(s) listed "
                   "in would_delete, not planned; call again with cleanup_first_sync=true to plan them")
    return out


def _remember(journal: Any, distributor: str, mappings: dict[str, int] | None,
              product_mappings: dict[str, str] | None) -> list[str]:
    """Store the mappings the user confirmed by giving them; what was stored, in words."""
    stored: list[str] = []
    for customer, client_id in (mappings or {}).items():
        journal.remember_mapping(distributor, customer, client_id)
        stored.append(f"{name_key(customer)} -> {client_id}")
    for feed_code, halo_code in (product_mappings or {}).items():
        journal.remember_product_mapping(distributor, feed_code, halo_code)
        stored.append(f"product {feed_code.strip()} -> {halo_code.strip()}")
    return stored


def _next_step(plan: Plan, decision: SyncDecision, distributor: str) -> str:
    s = decision.summary
    open_customers = s.customers["ambiguous"] + s.customers["unmatched"]
    if plan.steps:
        text = (f"Show the user the matching table, actions and money per month; then apply_plan('{plan.id}'). "
                "Nothing has been written to Halo yet.")
    else:
        text = "Halo already matches the feed for every matched customer: nothing to apply."
    left_alone = s.actions.get("left_alone", 0)
    if left_alone:
        text += (f" {left_alone} Halo licence(s) were left alone (another or no distributor, or inactive): "
                 "they are listed in skipped with what to do.")
    if open_customers:
        text += (f" {open_customers} customer(s) are ambiguous or unmatched and were skipped: confirm their "
                 "Halo clients with the user and call again with mappings.")
    if decision.mismatches:
        text += (f" {len(decision.mismatches)} product(s) look like one product under two codes and were held "
                 "back: confirm with the user, then call again with product_mappings (feed code -> Halo code).")
    if decision.would_delete:
        text += (f" First sync from {distributor}: {len(decision.would_delete)} cleanup delete(s) were only "
                 "listed (would_delete); if the user confirms them, call again with cleanup_first_sync=true.")
    return text
