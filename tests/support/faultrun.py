"""Fault scenarios shared by tests/plans/test_faults*.py, tests/plans/test_kill*.py and bench/.

A scenario builds two plans against a seeded sandbox, through the MCP tools with ``dry_run``:
a renewal plan for N contracts (``generate_renewals``) and a licence sync of M distributor
lines (``plan_license_sync``), then applies them (``apply_plan``) while the sandbox injects
faults, re-applying after each interruption until the plans report ``applied``. Then it
checks, with faults off and straight from the sandbox store:

* the store equals the initial store with the previewed plan applied once (computed here from
  the previewed steps: creates, updates, deletes): exactly the expected objects, zero
  duplicates, zero missing;
* independently of the plan: every feed customer's active licences equal the feed, and every
  renewed contract has exactly one renewal;
* the journal (read raw from its SQLite file) matches Halo: every step done, every created id
  present in the store with its natural key, every deleted id gone, no id claimed twice.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from halo_contracts.plans.models import PLACEHOLDER_BASE
from support.fuzz import Call, Harness
from support.successors import pending_successors

CONTRACT_KEYS = ("client_id", "ref", "previouscontract", "status", "contracttype", "start_date", "end_date")
LINE_KEYS = ("item_shortdescription", "qty_order", "unit_price")
LICENCE_KEYS = ("client_id", "product_sku", "count", "price", "billing_cycle")
# the sandbox's demo licences come from this distributor: syncing as it adopts, updates and
# cleans them up (a sync leaves other distributors' licences alone)
DISTRIBUTOR = "Pax8"


def _num(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(Decimal(str(v)).normalize())
    return v


def _key(doc: dict[str, Any], keys: tuple[str, ...]) -> tuple:
    return tuple(_num(doc.get(k)) for k in keys)


@dataclass
class Faults:
    error_rate: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    drop_after_write: float = 0.0
    expire_tokens_every: int = 0  # expire every issued token after this many requests
    sandbox_rate: tuple[int, float] = (100_000, 1.0)  # what the sandbox enforces
    client_rate: str = "100000/1"  # what our client paces itself to


@dataclass
class Report:
    renewals: int = 0
    licence_lines: int = 0
    steps: Counter = field(default_factory=Counter)
    apply_calls: int = 0
    requests: int = 0
    status: Counter = field(default_factory=Counter)
    dropped: int = 0
    token_fetches: int = 0
    problems: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict, repr=False)

    def line(self) -> str:
        return (f"renewals={self.renewals} licence_lines={self.licence_lines} steps={dict(self.steps)} "
                f"apply_calls={self.apply_calls} requests={self.requests} status={dict(sorted(self.status.items()))} "
                f"dropped={self.dropped} tokens={self.token_fetches}")


def renewable_ids(h: Harness, n: int) -> list[int]:
    store = h.state.store
    docs = store.where("contracts")
    renewed = {d.get("previouscontract") for d in docs if d.get("previouscontract")}

    successors = pending_successors(docs)  # a Pending contract renewing it without the link

    ids = [d["id"] for d in docs
           if d.get("status") in (1, 2, 5) and d["id"] not in renewed and d.get("end_date")
           and d["id"] not in successors]
    if len(ids) < n:
        raise AssertionError(f"the book has only {len(ids)} renewable contracts, {n} wanted")
    return ids[:n]


def licence_feed(h: Harness, m: int, *, seed: int = 11) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """M feed lines: existing licences re-quantified (updates), a few set to 0 (deletes), new
    SKUs (creates), spread over as many clients as needed; and explicit mappings for them."""
    rnd = random.Random(seed)
    store = h.state.store
    clients = [c for c in store.where("clients") if not c.get("inactive")]
    licences = [lic for lic in store.where("licences") if lic.get("is_active")]
    by_client: dict[int, list[dict]] = {}
    for lic in licences:
        by_client.setdefault(lic["client_id"], []).append(lic)
    per_client = max(10, -(-m // max(1, len(clients))))
    feed: list[dict[str, Any]] = []
    mappings: dict[str, int] = {}
    for c in clients:
        if len(feed) >= m:
            break
        mappings[c["name"]] = c["id"]
        existing = by_client.get(c["id"], [])
        for lic in existing:
            if len(feed) >= m:
                break
            qty = 0 if rnd.random() < 0.2 else int(lic.get("count") or 1) + rnd.randint(1, 5)
            feed.append({"customer": c["name"], "product_code": lic["product_sku"], "product_name": lic["name"],
                         "quantity": qty, "unit_price": float(lic.get("price") or 10), "billing_cycle":
                         lic.get("billing_cycle") or "Monthly", "term": lic.get("term_duration") or "P1M"})
        for i in range(per_client - len(existing)):
            if len(feed) >= m:
                break
            feed.append({"customer": c["name"], "product_code": f"FLT-{c['id']}-{i:03d}",
                         "product_name": f"Fault test product {i}", "quantity": rnd.randint(1, 40),
                         "unit_price": round(rnd.uniform(1, 60), 2), "billing_cycle": "Monthly", "term": "P1M"})
    return feed, mappings


def _expect(h: Harness, steps: list[dict[str, Any]], initial: dict[str, dict[int, dict]]) -> dict[str, Counter]:
    """The store's content after applying the previewed steps once, as multisets of keys."""
    contracts = {i: dict(d) for i, d in initial["contracts"].items()}
    licences = {i: dict(d) for i, d in initial["licences"].items()}
    new_contracts: dict[int, dict] = {}  # step index -> contract body
    lines: Counter = Counter()
    headers = Counter()
    for s in steps:
        req = s.get("request") or {}
        body = req.get("body")
        kind = s["kind"]
        if kind == "create_contract":
            new_contracts[s["index"]] = dict(body[0])
        elif kind == "update_contract":
            upd = body[0]
            target = upd["id"]
            if isinstance(target, int) and target in contracts:
                contracts[target].update({k: v for k, v in upd.items() if k != "id"})
        elif kind == "create_recurring_invoice":
            # one recurring invoice per contract and billing period (the 2026 shapes)
            headers[f"{body[0].get('contract_id')}:{body[0].get('period')}"] += 1
        elif kind == "add_recurring_lines":
            for line in body:
                lines[(str(line.get("contract_id")), *_key(line, LINE_KEYS))] += 1
        elif kind == "create_licence":
            licences[-(s["index"] + 1)] = dict(body[0])
        elif kind == "update_licence":
            upd = body[0]
            licences[upd["id"]].update({k: v for k, v in upd.items() if k != "id"})
        elif kind == "delete_licence":
            lid = int(str(req["path"]).rsplit("/", 1)[-1])
            licences.pop(lid, None)
    out = {
        "contracts": Counter(_key(d, CONTRACT_KEYS) for d in [*contracts.values(), *new_contracts.values()]),
        "licences": Counter(_key(d, LICENCE_KEYS) for d in licences.values()),
        "headers": headers,
        "lines": lines,
    }
    return out


def _snapshot(h: Harness) -> dict[str, dict[int, dict]]:
    store = h.state.store
    return {t: {d["id"]: d for d in store.where(t)} for t in ("contracts", "licences", "rinvoices", "rlines")}


def build_plans(h: Harness, n: int, m: int) -> dict[str, Any]:
    """Preview both plans through the tools (retrying a build that a fault broke)."""
    plans: dict[str, Any] = {}
    if n:
        ids = renewable_ids(h, n)
        plans["renewal"] = _preview(h, "generate_renewals", {"contract_ids": ids, "dry_run": True,
                                                             "uplift_percent": 3, "expire_old": "now"})
        plans["renewal_ids"] = ids
    if m:
        feed, mappings = licence_feed(h, m)
        plans["licence"] = _preview(h, "plan_license_sync", {"source": feed, "mappings": mappings,
                                                             "distributor": DISTRIBUTOR})
        plans["feed"] = feed
        plans["mappings"] = mappings
    return plans


def _preview(h: Harness, tool: str, args: dict[str, Any], attempts: int = 5) -> str:
    last = ""
    for _ in range(attempts):
        o = h.call(Call(tool=tool, args=args))
        if not o.is_error:
            return o.result.structured_content["plan_id"]
        last = o.text
    raise AssertionError(f"{tool} could not build its plan: {last[:500]}")


def plan_steps(h: Harness, plan_id: str) -> list[dict[str, Any]]:
    """Every step of a plan with its request (get_plan pages them)."""
    steps: list[dict[str, Any]] = []
    args: dict[str, Any] = {"plan_id": plan_id, "detail": "full"}
    while True:
        o = h.call(Call(tool="get_plan", args=args))
        assert not o.is_error, o.text
        steps += o.result.structured_content["steps"]
        if not o.result.structured_content["next_cursor"]:
            return steps
        args = {**args, "cursor": o.result.structured_content["next_cursor"]}


def apply_until_done(h: Harness, plan_id: str, report: Report, max_calls: int = 200) -> dict[str, Any]:
    last: dict[str, Any] | str = ""
    for _ in range(max_calls):
        report.apply_calls += 1
        o = h.call(Call(tool="apply_plan", args={"plan_id": plan_id}))
        if not o.is_error and o.result.structured_content.get("status") == "applied":
            return o.result.structured_content
        last = o.text if o.is_error else o.result.structured_content
        if o.is_error and o.text.strip() == "Error executing tool apply_plan":
            report.problems.append(f"apply_plan crashed (bare error) on {plan_id}")
    raise AssertionError(f"plan {plan_id} not applied after {max_calls} apply_plan calls; last: {str(last)[:800]}")


def install_token_expiry(h: Harness, every: int) -> None:
    """Expire every issued token after each ``every`` requests the sandbox receives."""
    if every <= 0:
        return
    log = h.state.log
    original = log.append

    def append(entry: Any) -> None:
        original(entry)
        if len(log) % every == 0:
            h.state.expire_tokens()

    log.append = append  # instance attribute: the sandbox calls sb.log.append(...)


def set_faults(h: Harness, f: Faults | None) -> None:
    faults = h.state.faults
    if f is None:
        faults.error_rate = 0.0
        faults.latency = (0.0, 0.0)
        faults.drop_after_write = 0.0
        faults.drop_next_writes = 0
        faults.rate_limit = 100_000
        faults.rate_window = 1.0
        return
    faults.error_rate = f.error_rate
    faults.latency = f.latency
    faults.drop_after_write = f.drop_after_write
    faults.rate_limit, faults.rate_window = f.sandbox_rate


def _read_pg_journal(url: str, plan_id: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as con:
        rows = con.execute("select idx, kind, status, result, natural_key from steps where plan_id=%s order by idx",
                           (plan_id,)).fetchall()
        plan = con.execute("select status from plans where id=%s", (plan_id,)).fetchone()
    return rows, plan


def read_journal(path: Path | str, plan_id: str) -> list[dict[str, Any]]:
    """The plan's steps read raw from the journal (a SQLite file, or a ``postgresql://`` URL)."""
    if str(path).startswith("postgresql://"):
        rows, plan = _read_pg_journal(str(path), plan_id)
    else:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            rows = con.execute("select idx, kind, status, result, natural_key from steps where plan_id=?"
                               " order by idx", (plan_id,)).fetchall()
            plan = con.execute("select status from plans where id=?", (plan_id,)).fetchone()
        finally:
            con.close()
    out = [dict(r) for r in rows]
    for r in out:
        r["result"] = json.loads(r["result"]) if r["result"] else None
        r["natural_key"] = json.loads(r["natural_key"]) if r["natural_key"] else {}
        r["plan_status"] = plan["status"] if plan else None
    return out


def verify(h: Harness, plans: dict[str, Any], previews: dict[str, list[dict]], initial: dict[str, dict[int, dict]],
           journal_path: Path) -> list[str]:
    problems: list[str] = []
    store = h.state.store
    final = _snapshot(h)
    all_steps = [s for key in ("renewal", "licence") for s in previews.get(key, [])]
    expected = _expect(h, all_steps, initial)
    got_contracts = Counter(_key(d, CONTRACT_KEYS) for d in final["contracts"].values())
    got_licences = Counter(_key(d, LICENCE_KEYS) for d in final["licences"].values())
    for label, want, got in (("contracts", expected["contracts"], got_contracts),
                             ("licences", expected["licences"], got_licences)):
        missing = want - got
        extra = got - want
        if missing:
            problems.append(f"{label}: {sum(missing.values())} missing, e.g. {list(missing)[:3]}")
        if extra:
            problems.append(f"{label}: {sum(extra.values())} unexpected/duplicate, e.g. {list(extra)[:3]}")

    # renewals, independently of the plan: one renewal per renewed contract, with its lines
    if "renewal" in plans:
        renewals_of = Counter(d.get("previouscontract") for d in final["contracts"].values()
                              if d.get("previouscontract") in set(plans["renewal_ids"]))
        dup = {k: v for k, v in renewals_of.items() if v > 1}
        miss = [i for i in plans["renewal_ids"] if renewals_of.get(i, 0) == 0]
        if dup:
            problems.append(f"renewals: duplicated renewals for {dup}")
        if miss:
            problems.append(f"renewals: no renewal for {miss[:10]} ({len(miss)})")
        # headers and lines per new contract (placeholders resolved through the journal)
        rows = read_journal(journal_path, plans["renewal"])
        ids = {r["idx"]: (r["result"] or {}).get("id") for r in rows}
        want_headers = Counter()
        for key, count in expected["headers"].items():
            ref, _, period = key.rpartition(":")
            want_headers[(_resolve(ref, ids), None if period == "None" else int(period))] += count
        # one recurring invoice per billing frequency (period) of a new contract's lines: every
        # header the plans made is there once, and no contract they gave one has two of a period
        contracts_given = {cid for cid, _period in want_headers}
        per_period = Counter((d.get("contract_id"), d.get("period")) for d in final["rinvoices"].values()
                             if d.get("contract_id") in contracts_given)
        twice = sorted(k for k, n in per_period.items() if n > 1)
        if set(per_period) != set(want_headers) or twice or any(n > 1 for n in want_headers.values()):
            problems.append(f"recurring invoices: want {sum(want_headers.values())}, got {sum(per_period.values())}; "
                            f"missing {sorted(set(want_headers) - set(per_period))}, twice {twice}")
        want_lines = Counter()
        for (ref, *rest), count in expected["lines"].items():
            want_lines[(_resolve(ref, ids), *rest)] += count
        new_ids = {k[0] for k in want_lines}
        got_lines = Counter((d.get("contract_id"), *_key(d, LINE_KEYS)) for d in final["rlines"].values()
                            if d.get("contract_id") in new_ids)
        if got_lines != want_lines:
            problems.append(f"recurring lines: want {sum(want_lines.values())}, got {sum(got_lines.values())}; "
                            f"missing {list(want_lines - got_lines)[:3]}, extra {list(got_lines - want_lines)[:3]}")

    if "licence" in plans:
        feed_clients = set(plans["mappings"].values())
        want = Counter((plans["mappings"][r["customer"]], r["product_code"], r["quantity"])
                       for r in plans["feed"] if r["quantity"] > 0)
        got = Counter((d["client_id"], d["product_sku"], d["count"]) for d in final["licences"].values()
                      if d["client_id"] in feed_clients and d.get("is_active", True)
                      and (d.get("distributor") or DISTRIBUTOR) == DISTRIBUTOR)
        if want != got:
            problems.append(f"licences vs feed: missing {list(want - got)[:3]} ({sum((want - got).values())}), "
                            f"extra {list(got - want)[:3]} ({sum((got - want).values())})")

    # the journal matches Halo
    for key in ("renewal", "licence"):
        if key not in plans:
            continue
        rows = read_journal(journal_path, plans[key])
        if not rows:
            problems.append(f"journal: no steps for plan {plans[key]}")
            continue
        if rows[0]["plan_status"] != "applied":
            problems.append(f"journal: plan {plans[key]} status {rows[0]['plan_status']}")
        not_done = [(r["idx"], r["status"]) for r in rows if r["status"] not in ("done", "skipped")]
        if not_done:
            problems.append(f"journal: steps not done in {key}: {not_done[:5]}")
        claimed: Counter = Counter()
        for r in rows:
            res = r["result"] or {}
            kind = r["kind"]
            if kind == "create_contract":
                cid = res.get("id")
                claimed[("contract", cid)] += 1
                doc = store.get("contracts", cid) if cid else None
                if doc is None:
                    problems.append(f"journal: step {r['idx']} created contract {cid}, not in Halo")
                elif doc.get("ref") != r["natural_key"].get("ref", doc.get("ref")):
                    problems.append(f"journal: contract {cid} ref {doc.get('ref')} != natural key {r['natural_key']}")
            elif kind == "create_recurring_invoice":
                rid = res.get("id")
                claimed[("rinvoice", rid)] += 1
                if rid is None or store.get("rinvoices", rid) is None:
                    problems.append(f"journal: step {r['idx']} created recurring invoice {rid}, not in Halo")
            elif kind == "add_recurring_lines":
                for lid in res.get("ids", []):
                    claimed[("rline", lid)] += 1
                    if store.get("rlines", lid) is None:
                        problems.append(f"journal: step {r['idx']} created line {lid}, not in Halo")
            elif kind == "create_licence":
                lid = res.get("id")
                claimed[("licence", lid)] += 1
                doc = store.get("licences", lid) if lid else None
                if doc is None:
                    problems.append(f"journal: step {r['idx']} created licence {lid}, not in Halo")
            elif kind == "delete_licence":
                lid = int(str((previews[key][r["idx"]].get("request") or {}).get("path", "0")).rsplit("/", 1)[-1])
                if store.get("licences", lid) is not None:
                    problems.append(f"journal: step {r['idx']} deleted licence {lid}, still in Halo")
        twice = [k for k, v in claimed.items() if v > 1]
        if twice:
            problems.append(f"journal: ids claimed by two steps: {twice[:5]}")
    return problems


def _resolve(ref: str, ids: dict[int, Any]) -> Any:
    """A previewed id: a placeholder stands for the id its step created (see the journal)."""
    try:
        number = int(ref)
    except (TypeError, ValueError):
        return ref
    return ids.get(PLACEHOLDER_BASE - number) if number <= PLACEHOLDER_BASE else number


def run_scenario(h: Harness, *, n: int, m: int, faults: Faults, plan_under_faults: bool = True) -> Report:
    report = Report(renewals=n, licence_lines=m)
    install_token_expiry(h, faults.expire_tokens_every)
    if plan_under_faults:
        set_faults(h, faults)
    initial = _snapshot(h)
    plans = build_plans(h, n, m)
    set_faults(h, None)
    previews = {k: plan_steps(h, plans[k]) for k in ("renewal", "licence") if k in plans}
    for k, steps in previews.items():
        report.steps.update(f"{k}:{s['kind']}" for s in steps)
    before = h.log_len()
    set_faults(h, faults)
    for key in ("renewal", "licence"):
        if key in plans:
            apply_until_done(h, plans[key], report)
    set_faults(h, None)
    entries = h.log_since(0)
    report.requests = len(entries) - 0
    report.status = Counter(e.status for e in entries)
    report.dropped = sum(1 for e in entries[before:] if getattr(e, "dropped", False))
    report.token_fetches = sum(1 for e in entries if e.path.lower().startswith("/auth"))
    report.problems += verify(h, plans, previews, initial, h.journal_path)
    report.context = {"plans": plans, "previews": previews, "initial": initial}
    # applying again sends nothing
    mark = h.log_len()
    for key in ("renewal", "licence"):
        if key in plans:
            o = h.call(Call(tool="apply_plan", args={"plan_id": plans[key]}))
            sc = (o.result.structured_content or {}) if o.result else {}
            if o.is_error or not sc.get("already_applied"):
                report.problems.append(f"re-apply of {key}: {o.text[:300]}")
    writes = [e for e in h.log_since(mark) if e.method.upper() in ("POST", "DELETE")
              and e.path.lower().startswith("/api")]
    if writes:
        report.problems.append(f"re-apply sent {len(writes)} write(s)")
    return report
