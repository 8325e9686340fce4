"""Distributor charges into Halo invoices: plan_distributor_charges and the billing rules it follows.

Thin: the export is read (domain, off the event loop, within the feed limits) -> Halo's clients,
open invoices, invoices since the export's first period and recurring invoices are read once ->
customers are matched (shared with licence sync, remembered mappings included) -> each client's
rules (journal ``billing_rules``) decide the lines and the target invoice -> one Plan of
create-invoice / add-lines steps through the one plan path. ``apply_plan(plan_id)`` writes it.

Halo's text (client names, invoice numbers, line descriptions) stays in its own fields;
summaries and reasons name clients and invoices by id.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from halo_contracts.domain.charges import (
    GLOBAL,
    BillingRules,
    ChargeFeed,
    ChargeLine,
    ClientCharges,
    EffectiveRules,
    apply_rules,
    by_customer,
    charge_key,
    distributor_rule_key,
    effective_rules,
    parse_charge_rows,
    parse_charges_csv,
    without_held,
)
from halo_contracts.domain.feed_limits import FeedLimits, check_csv, check_rows
from halo_contracts.domain.licence_sync import FeedError
from halo_contracts.domain.matching import MappingProblem, MatchDecision, match_customers, name_key
from halo_contracts.domain.models import Client, Invoice, RecurringInvoice
from halo_contracts.domain.money import ZERO
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_step
from halo_contracts.tools.common import (
    ArgModel,
    ClientId,
    Line,
    Money,
    Result,
    StrictStr,
    app,
    halo_errors,
    halo_tool,
    invalid,
    listed,
    money,
    submit_plan,
    today_of,
)

MAX_CLIENTS = 40  # client rows in a result (most money first)
MAX_ROWS = 25  # line, set-aside and customer rows in a result; the plan keeps every line


# ---- results ----------------------------------------------------------------------------------


class ClientChargesRow(Result):
    client_id: int
    client_name: str | None
    target: Literal["new", "last", "recurring"]
    invoice_id: int | None = Field(description="the invoice the lines go to (null: a new one)")
    step: int | None
    lines_in: int
    lines_added: int
    set_aside: dict[str, int] = Field(description="lines per rule that dropped, collapsed or found them")
    export_amount: Money = Field(description="the export's lines for this client, as sent")
    amount_added: Money = Field(description="the lines this plan adds, after the rules")
    export_cost: Money
    cost_added: Money
    invoice_total_before: Money
    invoice_total_after: Money
    note: str | None = None


class AddedLineRow(Result):
    client_id: int
    product_code: str
    description: str
    quantity: Money
    unit_price: Money
    amount: Money
    period: str
    feed_lines: list[int]


class SetAsideRow(Result):
    client_id: int | None
    line: int
    product_code: str
    amount: Money
    rule: str
    reason: str


class CustomerRow(Result):
    customer: str
    status: str
    client_id: int | None = None
    candidates: list[dict[str, Any]]
    reason: str


class ChargesPlan(Result):
    plan_id: str | None = Field(description="apply_plan(plan_id); null: nothing to add")
    distributor: str
    feed_lines: int
    steps: int
    clients: list[ClientChargesRow]
    clients_total: int
    lines: list[AddedLineRow]
    lines_total: int
    set_aside: list[SetAsideRow]
    set_aside_total: int
    lines_set_aside: int = Field(description="export lines not added as they are")
    skipped_customers: list[CustomerRow] = Field(description="unmatched, ambiguous and excluded customers")
    skipped_customers_total: int
    export_amount: Money
    amount_added: Money
    warnings: list[str]
    next_step: str

    def said(self) -> str:
        text = (f"Charges from {self.distributor}: {self.feed_lines} export line(s); {self.lines_total} line(s) to add "
                f"for {sum(1 for c in self.clients if c.lines_added)} client(s) in {self.steps} step(s), "
                f"{self.lines_set_aside} export line(s) set aside by rules or already invoiced; the export's "
                f"lines come to {money(self.export_amount)}, the lines added to {money(self.amount_added)}.")
        if self.skipped_customers_total:
            text += f" {self.skipped_customers_total} customer(s) skipped (unmatched, ambiguous or excluded)."
        top = sorted(self.clients, key=lambda c: -abs(c.amount_added))[:3]
        if top and self.plan_id:
            text += " Largest: " + listed([f"client {c.client_id} {money(c.amount_added)}" for c in top], 3) + "."
        return text + " " + self.next_step


class RuleLevelRow(Result):
    distributor: str
    client_id: int = Field(description="0: every client")
    rules: dict[str, Any]


MAX_LEVELS = 100


class BillingRulesResult(Result):
    levels: list[RuleLevelRow] = Field(description=f"stored levels of this distributor and '*' (for client_id: "
                                                   f"its four; first {MAX_LEVELS})")
    levels_total: int
    effective: dict[str, Any] = Field(description="the rules in force for client_id (or any client), with sources")
    changed: bool

    def said(self) -> str:
        e = self.effective
        text = (f"{self.levels_total} stored level(s). In force: target {e.get('target')}, usage {e.get('usage')}, "
                f"drop favourable prorates {e.get('drop_favourable_prorates')}, drop zero lines "
                f"{e.get('drop_zero_lines')}, do not invoice {e.get('do_not_invoice')}, exclude {e.get('exclude')}.")
        return ("Saved. " if self.changed else "") + text


# ---- billing rules tool ------------------------------------------------------------------------


class RulesArg(ArgModel):
    usage: Literal["keep", "drop", "collapse"] | None = None
    drop_favourable_prorates: bool | None = None
    drop_zero_lines: bool | None = None
    do_not_invoice: bool | None = None
    exclude: bool | None = None
    target: Literal["new", "last", "recurring"] | None = None
    invoice_id: Annotated[int, Field(strict=True, ge=-2_147_483_648, le=2_147_483_647)] | None = None


def _rules_arg(given: RulesArg) -> RulesArg:
    if given.invoice_id == 0:
        raise invalid("set.invoice_id", "0 is not an invoice id", "give the invoice's id (recurring ones are "
                                                                 "negative), or null to clear it")
    return given


def _levels(journal: Any, distributor: str) -> dict[tuple[str, int], dict[str, Any]]:
    return journal.billing_rules(sorted({GLOBAL, distributor_rule_key(distributor)}))


@halo_tool(group="license-sync", kind="write", title="Distributor billing rules", idempotent=True)
async def billing_rules(
    ctx: Context,
    distributor: Annotated[Line, Field(max_length=100, description="'*': the global default")] = GLOBAL,
    client_id: ClientId | None = None,
    set: Annotated[RulesArg | None, Field(description="Rules to store for client_id (or all); a field set to null "
                                                      "clears it")] = None,
) -> BillingRulesResult:
    """Read, or set, how a distributor's charges are invoiced: per client or for all, the most specific wins."""
    journal = app(ctx).journal
    key = distributor_rule_key(distributor)
    changed = False
    if set is not None:
        set = _rules_arg(set)
        if set.invoice_id is not None and client_id is None:
            raise invalid("set.invoice_id", "an invoice belongs to one client", "give client_id with invoice_id")
        level = _levels(journal, key).get((key, client_id or 0), {})
        merged = {**level, **set.model_dump(exclude_unset=True)}
        stored = BillingRules(**{k: v for k, v in merged.items() if v is not None}).given()
        await anyio.to_thread.run_sync(journal.set_billing_rules, key, client_id or 0, stored)
        changed = True
    levels = _levels(journal, key)
    effective = effective_rules(key, client_id or 0, levels)
    if client_id is not None:  # the levels that apply to this client
        levels = {k: v for k, v in levels.items() if k[1] in (0, client_id)}
    rows = [RuleLevelRow(distributor=d, client_id=c, rules=r) for (d, c), r in sorted(levels.items())]
    return BillingRulesResult(levels=rows[:MAX_LEVELS], levels_total=len(rows),
                              effective=effective.model_dump(mode="json"), changed=changed)


# ---- plan_distributor_charges --------------------------------------------------------------------


def _read(source: str | list[dict[str, Any]], limits: FeedLimits) -> ChargeFeed:
    if isinstance(source, str):
        check_csv(source, limits)
        return parse_charges_csv(source)
    check_rows(source, limits)
    return parse_charge_rows(source)


class _Book:
    """What Halo holds, read once: clients, open invoices, recent invoices, recurring invoices."""

    def __init__(self, clients: list[Client], open_invoices: list[Invoice], recent: list[Invoice],
                 recurring: list[RecurringInvoice]) -> None:
        self.clients = {c.id: c for c in clients}
        self.open: dict[int, list[Invoice]] = {}
        for inv in open_invoices:
            if inv.client_id is not None and not inv.voided and not inv.is_credit:
                self.open.setdefault(inv.client_id, []).append(inv)
        self.held: dict[int, dict[str, int]] = {}
        self.where: dict[int, dict[str, str]] = {}
        seen: set[int] = set()
        for inv in [*open_invoices, *recent]:
            if inv.id in seen or inv.client_id is None or inv.voided:
                continue
            seen.add(inv.id)
            self._hold(inv.client_id, [(x.product_code, x.start_date, x.end_date) for x in inv.lines],
                       f"invoice {inv.id}")
        self.recurring: dict[int, list[RecurringInvoice]] = {}
        for ri in recurring:
            if ri.client_id is None:
                continue
            self.recurring.setdefault(ri.client_id, []).append(ri)
            self._hold(ri.client_id, [(x.product_code, x.start_date, x.end_date) for x in ri.lines],
                       f"recurring invoice {ri.id}")

    def _hold(self, client_id: int, lines: list[tuple[str | None, date | None, date | None]], label: str) -> None:
        held = self.held.setdefault(client_id, {})
        where = self.where.setdefault(client_id, {})
        for code, start, end in lines:
            if not code:
                continue
            k = charge_key(code, start, end)
            held[k] = held.get(k, 0) + 1
            where.setdefault(k, label)


def _lines_total(lines: list[Any]) -> Decimal:
    return sum((Decimal(x.quantity) * Decimal(x.unit_price) for x in lines), ZERO)


def _target(book: _Book, client_id: int, rules: EffectiveRules) -> tuple[str, Any, str | None]:
    """(target, the invoice or None for a new one, a note or the reason the client is skipped
    as 'skip: …')."""
    if rules.target == "recurring":
        options = book.recurring.get(client_id, [])
        if rules.invoice_id is not None:
            options = [ri for ri in options if ri.id == rules.invoice_id]
            if not options:
                return "recurring", None, f"skip: recurring invoice {rules.invoice_id} is not one of the client's"
        if len(options) != 1:
            ids = ", ".join(str(ri.id) for ri in options) or "none"
            return "recurring", None, (f"skip: the client has {len(options)} recurring invoices ({ids}); pin one with "
                                       "billing_rules set.invoice_id")
        return "recurring", options[0], None
    if rules.target == "last":
        open_ones = book.open.get(client_id, [])
        if rules.invoice_id is not None:
            pinned = [i for i in open_ones if i.id == rules.invoice_id]
            if not pinned:
                return "last", None, f"skip: invoice {rules.invoice_id} is not an open invoice of the client"
            return "last", pinned[0], None
        if open_ones:
            latest = max(open_ones, key=lambda i: (i.invoice_date or date.min, i.id))
            return "last", latest, None
        return "new", None, "the client has no open invoice: a new one is made"
    return "new", None, None


class _Planner:
    def __init__(self, ctx: Context, distributor: str, book: _Book, levels: dict[tuple[str, int], dict[str, Any]],
                 today: date) -> None:
        self.halo = app(ctx).halo
        self.distributor, self.book, self.levels, self.today = distributor, book, levels, today
        self.plan = Plan(tool="plan_distributor_charges", title=f"Charges from {distributor}")
        self.clients: list[ClientChargesRow] = []
        self.lines: list[AddedLineRow] = []
        self.aside: list[SetAsideRow] = []
        self.warnings: list[str] = []

    def client(self, d: MatchDecision, lines: list[ChargeLine]) -> None:
        cid = int(d.client_id or 0)
        rules = effective_rules(self.distributor, cid, self.levels)
        charges = apply_rules(lines, rules)
        target, invoice, note = _target(self.book, cid, rules)
        if note and note.startswith("skip: "):
            reason = note[len("skip: "):]
            self.aside += [SetAsideRow(client_id=cid, line=x.feed_lines[0], product_code=x.product_code,
                                       amount=x.amount, rule="target", reason=reason) for x in charges.add]
            self.warnings.append(f"client {cid}: {reason}")
            charges = ClientCharges(add=[], set_aside=charges.set_aside, amount_before=charges.amount_before,
                                    cost_before=charges.cost_before, amount_after=ZERO, cost_after=ZERO)
        charges = without_held(charges, self.book.held.get(cid, {}), self.book.where.get(cid, {}), lines)
        self._double_billing(cid, charges.add)
        self.aside += [SetAsideRow(client_id=cid, **s.model_dump()) for s in charges.set_aside]
        step = self._step(cid, target, invoice, charges) if charges.add else None
        before = _lines_total(invoice.lines) if invoice is not None else ZERO
        counts: dict[str, int] = {}
        for s in charges.set_aside:
            counts[s.rule] = counts.get(s.rule, 0) + 1
        self.clients.append(ClientChargesRow(
            client_id=cid, client_name=d.client_name, target=target,  # type: ignore[arg-type]
            invoice_id=invoice.id if invoice is not None else None, step=step, lines_in=len(lines),
            lines_added=len(charges.add), set_aside=counts, export_amount=charges.amount_before,
            amount_added=charges.amount_after, export_cost=charges.cost_before, cost_added=charges.cost_after,
            invoice_total_before=before, invoice_total_after=before + charges.amount_after,
            note=None if note and note.startswith("skip: ") else note))
        self.lines += [AddedLineRow(client_id=cid, product_code=x.product_code, description=x.description,
                                    quantity=x.quantity, unit_price=x.unit_price, amount=x.amount,
                                    period=f"{x.period_start.isoformat()}..{x.period_end.isoformat()}",
                                    feed_lines=x.feed_lines) for x in charges.add]

    def _double_billing(self, cid: int, add: list[Any]) -> None:
        """A charge whose product code a recurring line of the client already bills: say so, naming
        the export line and the recurring line (ids only: the code is the export's text)."""
        billed: dict[str, tuple[int, int | None]] = {}
        for ri in self.book.recurring.get(cid, []):
            for x in ri.lines:
                if x.product_code and not x.inactive and not x.billed_once:
                    billed.setdefault(x.product_code.strip().casefold(), (ri.id, x.id))
        pairs = sorted({(x.feed_lines[0], *billed[k]) for x in add
                        if (k := x.product_code.strip().casefold()) in billed})
        if pairs:
            shown = ", ".join(f"export line {n} (recurring invoice {ri} line {line})" for n, ri, line in pairs[:5])
            more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
            self.warnings.append(f"client {cid}: possible double billing: {shown}{more} has the product code of a "
                                 "recurring line; check that line before applying")

    def _step(self, cid: int, target: str, invoice: Any, charges: ClientCharges) -> int:
        lines = [x.model_dump(mode="json") for x in charges.add]
        amount = money(charges.amount_after)
        group = f"client {cid}"
        if invoice is None:
            existing = [i.id for i in self.book.open.get(cid, [])]
            held = {}
            for inv in self.book.open.get(cid, []):
                for x in inv.lines:
                    k = charge_key(x.product_code or "", x.start_date, x.end_date)
                    held[k] = held.get(k, 0) + 1
            return add_step(self.plan, self.halo, "create_invoice",
                            f"Create an invoice for client {cid} with {len(lines)} charge line(s), {amount}",
                            {"client_id": cid, "invoice_date": self.today.isoformat(), "lines": lines},
                            natural_key={"client_id": cid, "existing_invoice_ids": existing, "held": held},
                            group=group).index
        held = {}
        for x in invoice.lines:
            k = charge_key(x.product_code or "", x.start_date, x.end_date)
            held[k] = held.get(k, 0) + 1
        if target == "recurring":
            return add_step(self.plan, self.halo, "add_recurring_charges",
                            f"Add {len(lines)} charge line(s), {amount}, billed once, to recurring invoice "
                            f"{invoice.id} of client {cid}",
                            {"recurring_invoice_id": invoice.id, "lines": lines},
                            natural_key={"client_id": cid, "recurring_invoice_id": invoice.id, "held": held},
                            group=group).index
        return add_step(self.plan, self.halo, "add_invoice_lines",
                        f"Add {len(lines)} charge line(s), {amount}, to invoice {invoice.id} of client {cid}",
                        {"invoice_id": invoice.id, "lines": lines},
                        natural_key={"client_id": cid, "invoice_id": invoice.id, "held": held}, group=group).index


def _customer_row(d: MatchDecision) -> CustomerRow:
    return CustomerRow(customer=d.customer, status=d.status, client_id=d.client_id, reason=d.reason,
                       candidates=[{"client_id": c.client_id, "client_name": c.client_name, "score": c.score}
                                   for c in d.candidates])


async def _read_book(halo: Any, feed: ChargeFeed) -> _Book:
    first = min((cl.period_start for cl in feed.lines), default=None)
    async with halo_errors():
        clients = await halo.list_clients(include_inactive=True)
        open_invoices = await halo.list_invoices(not_posted_only=True)
        recent = await halo.list_invoices(start=first) if first is not None else []
        recurring = await halo.list_recurring_invoices(include_lines=True)
    return _Book(clients, open_invoices, recent, recurring)


@halo_tool(group="license-sync", kind="write", title="Plan distributor charges")
async def plan_distributor_charges(
    source: Annotated[StrictStr | list[dict[str, Any]], Field(
        description="CSV with a header row, or rows: customer, product_code, description, quantity, unit_cost, "
                    "unit_price, charge_type, period_start, period_end")],
    distributor: Annotated[Line, Field(min_length=1, max_length=100, pattern=r"\S")],
    ctx: Context,
    mappings: Annotated[dict[Line, Annotated[int, Field(strict=True, gt=0)]] | None, Field()] = None,
) -> ChargesPlan:
    """Preview a charges export as invoice lines per client's billing_rules; re-imports add nothing."""
    ac = app(ctx)
    limits = FeedLimits(ac.settings.feed_max_rows, ac.settings.feed_max_bytes)
    try:
        feed = await anyio.to_thread.run_sync(_read, source, limits)
    except FeedError as exc:
        raise ToolError(f"Invalid 'source': {exc}. No plan was built and nothing was sent to Halo.") from None
    distributor = " ".join(distributor.split())
    for name in mappings or {}:
        if not name.strip():
            raise invalid("mappings", "a customer name is blank", "use the customer name exactly as in the export")
    book = await _read_book(ac.halo, feed)
    levels = _levels(ac.journal, distributor)
    excluded = [cid for cid in book.clients if effective_rules(distributor, cid, levels).exclude]
    per_customer = by_customer(feed.lines)
    try:
        decisions = await anyio.to_thread.run_sync(lambda: match_customers(
            [lines[0].customer for lines in per_customer.values()], list(book.clients.values()),
            explicit=mappings, remembered=ac.journal.mappings(distributor), exclude=excluded))
    except MappingProblem as exc:
        pairs = ", ".join(f"'{c}' -> {i}" for c, i in exc.problems)
        raise invalid("mappings", f"Halo has no client with the id(s) in {pairs}",
                      "check the ids (find_clients by name) and call again") from None
    planner = _Planner(ctx, distributor, book, levels, today_of(ctx))
    per_client: dict[int, tuple[MatchDecision, list[ChargeLine]]] = {}
    skipped: list[CustomerRow] = []
    for d in decisions:
        lines = per_customer[name_key(d.customer)]
        if d.status != "matched" or d.client_id is None:
            skipped.append(_customer_row(d))
            continue
        entry = per_client.setdefault(d.client_id, (d, []))
        entry[1].extend(lines)
    await anyio.to_thread.run_sync(lambda: [planner.client(d, lines) for d, lines in per_client.values()])
    for customer, client_id in (mappings or {}).items():
        ac.journal.remember_mapping(distributor, customer, client_id)
    return await _result(ctx, planner, feed, distributor, skipped)


async def _result(ctx: Context, planner: _Planner, feed: ChargeFeed, distributor: str,
                  skipped: list[CustomerRow]) -> ChargesPlan:
    plan = planner.plan
    added = sum(c.lines_added for c in planner.clients)
    plan.title = f"Charges from {distributor}: {added} line(s) for {len(plan.steps)} invoice(s)"
    export_amount = sum((c.export_amount for c in planner.clients), ZERO)
    amount_added = sum((c.amount_added for c in planner.clients), ZERO)
    plan.warnings = [*feed.warnings, *planner.warnings]
    plan.skipped = [f"{r.customer}: {r.status}" for r in skipped[:MAX_ROWS]]
    plan.summary = {"distributor": distributor, "lines_added": added, "export_amount": str(export_amount),
                    "amount_added": str(amount_added), "set_aside": len(planner.aside),
                    "skipped_customers": len(skipped)}
    plan_id = None
    if plan.steps:
        await submit_plan(ctx, plan, dry_run=True)
        plan_id = plan.id
        next_step = (f"Show the user the clients, set-aside lines and totals; then apply_plan('{plan.id}'). "
                     "Nothing has been written to Halo yet.")
    else:
        next_step = "Nothing to add: every charge is set aside by a rule or already on the client's invoices."
    if skipped:
        next_step += " Confirm skipped customers' Halo clients with the user and call again with mappings."
    clients = sorted(planner.clients, key=lambda c: -abs(c.amount_added))
    return ChargesPlan(
        plan_id=plan_id, distributor=distributor, feed_lines=len(feed.lines), steps=len(plan.steps),
        clients=clients[:MAX_CLIENTS], clients_total=len(clients), lines=planner.lines[:MAX_ROWS],
        lines_total=len(planner.lines), set_aside=planner.aside[:MAX_ROWS], set_aside_total=len(planner.aside),
        lines_set_aside=len({(r.client_id, r.line) for r in planner.aside}),
        skipped_customers=skipped[:MAX_ROWS], skipped_customers_total=len(skipped), export_amount=export_amount,
        amount_added=amount_added, warnings=plan.warnings, next_step=next_step)
