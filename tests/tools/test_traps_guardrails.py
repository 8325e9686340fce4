"""The business traps of issue 14, driven through the SDK client on the sandbox.

Each trap is a write that is valid but makes no business sense without a word: the plan
carries a warning the next step tells the model to show (or, for a cancel, ends the lines in
the same plan). Nothing is written on a preview; what an apply writes is read back from the
sandbox's own store and request log.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from halo_contracts.domain.money import add_months
from support.successors import pending_successors

pytestmark = pytest.mark.anyio

TODAY = date.today()
ACTIVE, PENDING, EXPIRED, CANCELLED = 1, 2, 3, 4


def data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def text(result) -> str:
    return result.content[0].text


def writes(sandbox) -> list:
    return [e for e in sandbox.log if e.path.lower().startswith("/api") and e.method != "GET"]


def day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


def live_lines(sb, contract_id: int) -> list[dict]:
    """The contract's lines that still bill after today, from the sandbox's store."""
    return [x for x in sb.store.where("rlines", "contract_id = ?", [contract_id])
            if not x.get("isinactive") and (x.get("enddate") is None or day(x["enddate"]) > TODAY)]


def contracts(sb, *statuses: int) -> list[dict]:
    """The sandbox's Recurring contracts of those statuses (raw documents)."""
    return [c for c in sb.store.where("contracts") if c.get("contracttype") == 1 and c.get("status") in statuses]


def recurring_with_lines(sb, status: int = ACTIVE) -> int:
    """A Recurring contract of that status with lines that still bill."""
    for c in contracts(sb, status):
        if live_lines(sb, c["id"]):
            return c["id"]
    raise AssertionError(f"the book has no Recurring contract of status {status} with billing lines")


MONTHS = {"Monthly": 1, "Quarterly": 3, "Annual": 12}


async def billing_contract(client) -> dict:
    """get_contract of an Active Recurring contract whose lines (some billing) all bill today."""
    sb = client.sandbox
    for c in contracts(sb, ACTIVE):
        if not live_lines(sb, c["id"]):
            continue
        detail = data(await client.call_tool("get_contract", {"contract_id": c["id"]}))
        if all(i["state"] in ("active", "ended") for i in detail["items"]):
            return detail
    raise AssertionError("the book has no Active Recurring contract whose lines all bill today")


def lines_total(detail: dict) -> Decimal:
    """What the lines in force bill per contract period: each line to the cent, a line of another
    frequency converted by months."""
    period = MONTHS[detail["billing_frequency"]]
    total = Decimal(0)
    for i in detail["items"]:
        if i["state"] == "active":
            net = (Decimal(str(i["quantity"])) * Decimal(i["unit_price"])).quantize(Decimal("0.01"))
            total += net * period / MONTHS[i["billing_frequency"]]
    return total.quantize(Decimal("0.01"))


def items(n: int = 2) -> list[dict]:
    return [{"description": f"Managed seat tier {i}", "quantity": 10, "unit_price": 25 + i} for i in range(n)]


def first_free_client(sb) -> int:
    """An active client with no Active or Pending Recurring contract (so no overlap by chance)."""
    busy = {c["client_id"] for c in contracts(sb, ACTIVE, PENDING)}
    return next(cid for cid in sb.book.client_ids if cid not in busy)


def renewable_recurring(sb) -> int:
    """An Active Recurring contract ending within 90 days that nothing renews yet: no contract
    links back to it, and no Pending one of its client and type starts after it starts and ends
    after it ends (or is open-ended), naming no previous contract."""
    docs = sb.store.where("contracts")
    linked = {c.get("previouscontract") for c in docs} | set(pending_successors(docs))
    for c in contracts(sb, ACTIVE):
        end = day(c.get("end_date"))
        if end is not None and TODAY <= end <= TODAY + timedelta(days=90) and c["id"] not in linked:
            return c["id"]
    raise AssertionError("the book has no renewable Recurring contract")


# ---- a new contract in one plan -----------------------------------------------------------------


async def test_create_contract_with_lines_is_one_plan_previewed_then_applied_once(mcp_client):
    sb = mcp_client.sandbox
    client_id = first_free_client(sb)
    start = add_months(TODAY.replace(day=1), 1)
    lines = [*items(2), {"description": "Domain renewal", "quantity": 1, "unit_price": 120,
                         "billing_frequency": "Annual"}]
    args = {"client_id": client_id, "ref": f"{sb.book.client_names[client_id]} - Recurring {start.year}",
            "type": "Recurring", "start_date": start.isoformat(), "end_date": (add_months(start, 12)
                                                                              - timedelta(days=1)).isoformat(),
            "billing_frequency": "Monthly", "value": 500, "sla_id": sb.book.sla_ids[0], "items": lines}
    before = len(writes(sb))
    preview = await mcp_client.call_tool("create_contract", {**args, "dry_run": True, "detail": "full"})
    out = data(preview)
    assert len(writes(sb)) == before  # nothing written on a preview
    assert out["outcome"] == "planned" and out["contract_id"] is None
    kinds = [s["kind"] for s in out["plan"]["steps"]]
    # one recurring invoice per billing frequency: the monthly one with its two lines, then the
    # annual one with the annual line (the preview shows where each line goes)
    assert kinds == ["create_contract", "create_recurring_invoice", "add_recurring_lines",
                     "create_recurring_invoice", "add_recurring_lines"]
    # the later steps take the new contract's (and invoice's) id: placeholders, listed in refs
    invoice_step, lines_step, annual_step, annual_lines = out["plan"]["steps"][1:]
    assert set(invoice_step["refs"].values()) == {0} and set(lines_step["refs"].values()) == {0, 1}
    assert set(annual_step["refs"].values()) == {0} and set(annual_lines["refs"].values()) == {0, 3}
    assert invoice_step["request"]["body"][0]["period"] == 1 and annual_step["request"]["body"][0]["period"] == 3
    assert len(lines_step["request"]["body"]) == 2
    assert [x["item_shortdescription"] for x in annual_lines["request"]["body"]] == ["Domain renewal"]
    assert "(Annual)" in annual_lines["summary"] and "Annual" in annual_step["summary"]
    # money per month: 10 x 25 + 10 x 26 monthly, 120 a year
    assert out["lines_per_month"] == "520.00" and out["plan"]["summary"]["lines_monthly"] == "520.00"
    assert text(preview).startswith("The contract's recurring lines bill 510.00 a month + 120.00 a year (520.00 a "
                                    "month on average). Nothing sent yet.")
    # the value disagrees with the lines: both figures
    assert any("the contract's value 500.00 disagrees with its recurring lines, which bill 520.00 per Monthly "
               "period" in w for w in out["warnings"]), out["warnings"]
    assert "Show the user the plan and its warnings" in text(preview)
    # the next invoice date defaults to the first billing date (the start, which is ahead)
    assert f"next_invoice_date: not given, so it is set to {start.isoformat()}" in " ".join(out["warnings"])

    shown = await mcp_client.call_tool("get_plan", {"plan_id": out["plan_id"]})
    assert text(shown).endswith(f"Next: show the user the plan and its warnings, then apply_plan('{out['plan_id']}').")
    applied = data(await mcp_client.call_tool("apply_plan", {"plan_id": out["plan_id"]}))
    assert applied["status"] == "applied"
    new = next(c for c in sb.store.where("contracts") if c.get("client_id") == client_id and c["ref"] == args["ref"])
    assert day(new.get("periodicinvoicenextdate")) == start
    stored = sb.store.where("rlines", "contract_id = ?", [new["id"]])
    assert sorted(x["item_shortdescription"] for x in stored) == sorted(x["description"] for x in lines)
    headers = sb.store.where("rinvoices", "contract_id = ?", [new["id"]])
    assert len(headers) == 2  # one recurring invoice per billing frequency
    # applying again sends nothing: no second contract, invoice or line
    count = len(writes(sb))
    again = data(await mcp_client.call_tool("apply_plan", {"plan_id": out["plan_id"]}))
    assert again["already_applied"] and len(writes(sb)) == count
    assert len(sb.store.where("rlines", "contract_id = ?", [new["id"]])) == 3


async def test_create_contract_lines_are_checked_with_the_contract_before_anything_is_sent(mcp_client):
    sb = mcp_client.sandbox
    client_id = first_free_client(sb)
    start = add_months(TODAY.replace(day=1), 1)
    bad = [{"description": "Seat", "quantity": 0, "unit_price": 10},
           {"description": "Backup", "quantity": 1, "unit_price": 5, "start_date": (start - timedelta(days=3))
            .isoformat()}]
    before = len(sb.log)
    r = await mcp_client.call_tool("create_contract", {
        "client_id": client_id, "ref": "X - Recurring 2030", "type": "Recurring", "start_date": start.isoformat(),
        "billing_frequency": "Monthly", "items": bad, "dry_run": True})
    assert r.is_error
    assert "Invalid 'items[0].quantity'" in text(r)
    assert "Invalid 'items[1].start_date'" in text(r) and "nothing was sent to halo" in text(r).lower()
    assert len(sb.log) == before  # not even a read


# ---- cancelling a contract whose lines still bill ------------------------------------------------


async def test_cancel_ends_billing_lines_on_the_cancel_date_in_the_same_plan(mcp_client):
    sb = mcp_client.sandbox
    cid = recurring_with_lines(sb)
    billing = {x["id"] for x in live_lines(sb, cid)}
    before = len(writes(sb))
    out = data(await mcp_client.call_tool("update_contract", {"contract_id": cid, "changes": {"status": "Cancelled"},
                                                              "dry_run": True}))
    assert len(writes(sb)) == before
    steps = out["plan"]["steps"]
    assert [s["kind"] for s in steps] == ["update_recurring_line"] * len(billing) + ["update_contract"]
    assert all(f"on {TODAY.isoformat()} (it would bill after the cancel)" in s["summary"] for s in steps[:-1])
    applied = data(await mcp_client.call_tool("apply_plan", {"plan_id": out["plan_id"]}))
    assert applied["status"] == "applied"
    assert sb.store.get("contracts", cid)["status"] == CANCELLED
    ended = {x["id"]: day(x["enddate"]) for x in sb.store.where("rlines", "contract_id = ?", [cid])
             if x["id"] in billing}
    assert ended == {i: TODAY for i in billing}
    assert not live_lines(sb, cid)
    sent = [e for e in writes(sb)[before:] if e.path.lower().endswith("/recurringinvoice/updatelines")]
    assert len(sent) == len(billing)
    # read back, the cancelled contract does not read as running: no days left, the lines' stop said
    got = await mcp_client.call_tool("get_contract", {"contract_id": cid})
    text = got.content[0].text
    assert "days left" not in text and f"a year until {TODAY.isoformat()}." in text
    assert "bill on without an end" not in text


async def test_cancel_without_ending_lines_warns_they_keep_billing(mcp_client):
    sb = mcp_client.sandbox
    cid = recurring_with_lines(sb)
    n = len(live_lines(sb, cid))
    r = await mcp_client.call_tool("update_contract", {"contract_id": cid, "changes": {"status": "Cancelled"},
                                                       "end_recurring_lines": False, "dry_run": True})
    out = data(r)
    assert [s["kind"] for s in out["plan"]["steps"]] == ["update_contract"]
    assert (f"end_recurring_lines: {n} recurring line(s) of the contract keep billing after it is cancelled on "
            f"{TODAY.isoformat()}. Fix: pass end_recurring_lines=true") in " ".join(out["warnings"])
    assert "Show the user the plan and its warnings" in text(r)
    assert data(await mcp_client.call_tool("apply_plan", {"plan_id": out["plan_id"]}))["status"] == "applied"
    said = text(await mcp_client.call_tool("get_contract", {"contract_id": cid}))
    assert "days left" not in said
    assert ("The contract is Cancelled but some of its lines bill on without an end: end them with "
            "update_recurring_item.") in said


# ---- Cancelled and Expired contracts ----------------------------------------------------------------


async def test_changes_to_cancelled_or_expired_contracts_warn_and_reactivating_cancelled_is_refused(mcp_client):
    sb = mcp_client.sandbox
    expired = next(c["id"] for c in contracts(sb, EXPIRED) if sb.store.where("rlines", "contract_id = ?", [c["id"]]))
    out = data(await mcp_client.call_tool("update_contract", {"contract_id": expired, "changes": {"value": 4321},
                                                              "dry_run": True}))
    assert "contract_id: the contract is Expired, so changing its value bills nothing" in " ".join(out["warnings"])
    cancelled = sb.book.contracts_by_status["Cancelled"][0]
    r = await mcp_client.call_tool("update_contract", {"contract_id": cancelled, "changes": {"status": "Active"},
                                                       "dry_run": True})
    assert r.is_error and "Cancelled is final" in text(r) and "nothing was sent to halo" in text(r).lower()
    # lines: adding to a Cancelled contract is a warning now, not a refusal
    before = len(writes(sb))
    added = data(await mcp_client.call_tool("add_recurring_items", {"contract_id": cancelled, "items": items(1),
                                                                    "dry_run": True}))
    assert "contract_id: the contract is Cancelled, so changing its lines bills nothing" in " ".join(
        added["warnings"])
    line = sb.store.where("rlines", "contract_id = ?", [expired])[0]
    changed = data(await mcp_client.call_tool("update_recurring_item", {
        "item_id": line["id"], "contract_id": expired, "changes": {"quantity": line["qty_order"] + 1},
        "dry_run": True}))
    assert "contract_id: the contract is Expired, so changing its lines bills nothing" in " ".join(
        changed["warnings"])
    assert len(writes(sb)) == before


# ---- value against lines ------------------------------------------------------------------------------


async def test_value_that_disagrees_with_the_lines_warns_with_both_figures(mcp_client):
    detail = await billing_contract(mcp_client)
    cid, freq, total = detail["id"], detail["billing_frequency"], lines_total(detail)
    wrong = total + 100
    out = data(await mcp_client.call_tool("update_contract", {"contract_id": cid, "changes": {"value": float(wrong)},
                                                              "dry_run": True}))
    want = (f"changes.value: the contract's value {wrong:,.2f} disagrees with its recurring lines, which bill "
            f"{total:,.2f} per {freq} period")
    assert any(w.startswith(want) for w in out["warnings"]), out["warnings"]
    # a value that matches gives no such warning
    ok = data(await mcp_client.call_tool("update_contract", {"contract_id": cid, "changes": {"value": float(total)},
                                                             "dry_run": True}))
    assert not any("disagrees with its recurring lines" in w for w in ok["warnings"])
    # adding a line without changing the value: the lines then bill 250.00 more than the value
    value = Decimal(detail["value"])
    added = data(await mcp_client.call_tool("add_recurring_items", {"contract_id": cid, "items": items(1),
                                                                    "dry_run": True}))
    after = total + Decimal(250)
    assert any(f"contract's value {value:,.2f} disagrees with its recurring lines, which bill {after:,.2f} per "
               f"{freq} period" in w for w in added["warnings"]), added["warnings"]


# ---- overlapping contracts -------------------------------------------------------------------------


async def test_new_contract_overlapping_a_live_one_of_the_same_client_and_type_warns_naming_it(mcp_client):
    sb = mcp_client.sandbox
    live = next(c for c in contracts(sb, ACTIVE) if c.get("end_date"))
    start = max(TODAY, day(live["start_date"]))
    out = data(await mcp_client.call_tool("create_contract", {
        "client_id": live["client_id"], "ref": f"{sb.book.client_names[live['client_id']]} - Recurring {start.year}b",
        "type": "Recurring", "start_date": start.isoformat(), "billing_frequency": "Monthly", "value": 100,
        "dry_run": True}))
    overlap = next(o for o in out["overlaps"] if o["id"] == live["id"])
    assert overlap["ref"] == live["ref"] and overlap["status"] == "Active"
    warning = next(w for w in out["warnings"] if w.startswith("start_date: the new contract overlaps contract"))
    assert f"{live['id']} (Active, {day(live['start_date'])} to {day(live['end_date'])})" in warning
    assert warning.endswith("of the same client and type. Fix: check it is not a duplicate; if it is, change that "
                            "contract instead.")
    assert all(f"{o['id']} ({o['status']}" in warning for o in out["overlaps"])


async def test_a_pending_contract_after_the_old_end_counts_as_its_renewal(mcp_client):
    sb = mcp_client.sandbox
    old = renewable_recurring(sb)
    doc = sb.store.get("contracts", old)
    start = day(doc["end_date"]) + timedelta(days=1)
    made = data(await mcp_client.call_tool("create_contract", {
        "client_id": doc["client_id"], "ref": "Signed renewal, entered by hand", "type": "Recurring",
        "start_date": start.isoformat(), "end_date": (add_months(start, 12) - timedelta(days=1)).isoformat(),
        "billing_frequency": "Monthly", "value": 100, "status": "Pending"}))
    assert made["outcome"] == "created"
    before = len(writes(sb))
    r = await mcp_client.call_tool("generate_renewals", {"contract_ids": [old], "dry_run": True})
    out = data(r)
    assert out["status"] == "nothing to do" and out["plan_id"] is None
    reason = out["skipped"][0]["reason"]
    assert out["skipped"][0]["contract_id"] == old
    assert (f"a renewal already exists: contract {made['contract_id']} of the same client and type is Pending "
            f"from {start}") in reason
    assert len(writes(sb)) == before


async def test_a_renewal_overlapping_another_live_contract_warns_naming_it(mcp_client):
    sb = mcp_client.sandbox
    old = renewable_recurring(sb)
    doc = sb.store.get("contracts", old)
    start = day(doc["end_date"]) - timedelta(days=10)  # overlaps the old term and the renewal's
    other = data(await mcp_client.call_tool("create_contract", {
        "client_id": doc["client_id"], "ref": "Bridging agreement", "type": "Recurring",
        "start_date": start.isoformat(), "end_date": (start + timedelta(days=60)).isoformat(),
        "billing_frequency": "Monthly", "value": 100, "status": "Active"}))
    r = await mcp_client.call_tool("generate_renewals", {"contract_ids": [old], "dry_run": True})
    out = data(r)
    assert out["status"] == "planned", out["skipped"]
    assert "Show the user the warnings, then apply with apply_plan" in text(r)
    # the plan says which renewals overlap; the renewal's own warnings name the contracts, with dates
    assert (f"the renewals of contract(s) {old} overlap other Active or Pending contracts of the same client and "
            "type (each renewal's warnings name them): check none is a duplicate") in out["warnings"]
    row = next(r for r in out["renewals"] if r["contract_id"] == old)
    assert any(w.startswith("the renewal overlaps contract") and
               f"{other['contract_id']} (Active, {start} to {start + timedelta(days=60)})" in w
               for w in row["warnings"]), row["warnings"]


# ---- next invoice date -----------------------------------------------------------------------------


async def test_recurring_contract_without_next_invoice_date(mcp_client):
    sb = mcp_client.sandbox
    client_id = first_free_client(sb)
    start = add_months(TODAY.replace(day=1), -2)  # started two months ago, billed monthly
    out = data(await mcp_client.call_tool("create_contract", {
        "client_id": client_id, "ref": f"{sb.book.client_names[client_id]} - Recurring {start.year}",
        "type": "Recurring", "start_date": start.isoformat(), "billing_frequency": "Quarterly", "value": 300,
        "dry_run": True, "detail": "full"}))
    first = add_months(start, 3)  # the first quarter start on or after today
    assert first >= TODAY > add_months(start, 0)
    assert (f"next_invoice_date: not given, so it is set to {first.isoformat()}, the first billing date on or "
            "after today. Fix: pass next_invoice_date to choose another date.") in out["warnings"]
    body = out["plan"]["steps"][0]["request"]["body"]
    body = body[0] if isinstance(body, list) else body
    assert day(body["periodicinvoicenextdate"]) == first
    # clearing it on a Recurring contract: a warning
    cid = recurring_with_lines(sb)
    cleared = data(await mcp_client.call_tool("update_contract", {"contract_id": cid,
                                                                  "changes": {"next_invoice_date": None},
                                                                  "dry_run": True}))
    assert cleared["outcome"] == "planned"
    assert ("next_invoice_date: a Recurring contract has no next invoice date. Fix: set next_invoice_date to its "
            "first billing date (inside the contract's dates).") in cleared["warnings"]


async def test_cancelling_a_pending_contract_ends_its_lines_before_they_start(mcp_client):
    sb = mcp_client.sandbox
    cid = recurring_with_lines(sb, PENDING)
    future = {x["id"]: day(x["startdate"]) for x in live_lines(sb, cid)}
    assert future and all(start > TODAY for start in future.values())
    out = data(await mcp_client.call_tool("update_contract", {"contract_id": cid,
                                                              "changes": {"status": "Cancelled"}}))
    assert out["outcome"] == "updated" and f"ended {len(future)} recurring line(s) on {TODAY}" in out["message"]
    assert sb.store.get("contracts", cid)["status"] == CANCELLED
    for x in sb.store.where("rlines", "contract_id = ?", [cid]):
        if x["id"] in future:
            assert day(x["enddate"]) == TODAY < future[x["id"]]  # ends before it starts: never bills
    # nothing is left billing, so cancelling again would end nothing more
    assert not live_lines(sb, cid)


async def test_a_contract_with_lines_whose_answers_are_lost_is_finished_without_duplicates(mcp_client):
    sb = mcp_client.sandbox
    client_id = first_free_client(sb)
    start = add_months(TODAY.replace(day=1), 1)
    args = {"client_id": client_id, "ref": f"{sb.book.client_names[client_id]} - Recurring {start.year}",
            "type": "Recurring", "start_date": start.isoformat(), "billing_frequency": "Monthly", "value": 510,
            "items": items(2), "dry_run": True}
    plan_id = data(await mcp_client.call_tool("create_contract", args))["plan_id"]
    sb.faults.drop_next_writes = 3  # contract, recurring invoice and lines: each stored, each answer lost
    runs = []
    for _ in range(4):
        r = await mcp_client.call_tool("apply_plan", {"plan_id": plan_id})
        runs.append("error" if r.is_error else r.structured_content["status"])
        if runs[-1] == "applied":
            break
    assert runs == ["error", "error", "error", "applied"]
    mine = [c for c in sb.store.where("contracts") if c.get("client_id") == client_id and c["ref"] == args["ref"]]
    assert len(mine) == 1
    assert len(sb.store.where("rinvoices", "contract_id = ?", [mine[0]["id"]])) == 1
    lines = sb.store.where("rlines", "contract_id = ?", [mine[0]["id"]])
    assert sorted(x["item_shortdescription"] for x in lines) == ["Managed seat tier 0", "Managed seat tier 1"]


# ---- worked out, and the most serious warning first ---------------------------------------------------


def two_lines() -> list[dict]:
    return [{"description": "Managed support", "quantity": 1, "unit_price": 162.5},
            {"description": "Backup licence", "quantity": 1, "unit_price": 3000, "billing_frequency": "Annual"}]


async def test_a_term_without_an_end_date_gives_the_end_date_and_says_so(mcp_client):
    sb = mcp_client.sandbox
    client_id = sb.book.client_ids[0]
    start = date(TODAY.year + 1, 3, 15)
    r = await mcp_client.call_tool("create_contract", {
        "client_id": client_id, "ref": f"{sb.book.client_names[client_id]} - Recurring {start.year}",
        "type": "Recurring", "start_date": start.isoformat(), "term_months": 12, "billing_frequency": "Monthly",
        "value": 100, "sla_id": sb.book.sla_ids[0]})
    out = data(r)
    end = date(start.year + 1, 3, 14)
    assert not any("open-ended" in w for w in out["warnings"]), out["warnings"]
    assert f"End date {end}: start + 12 months - 1 day." in text(r)
    assert day(sb.store.get("contracts", out["contract_id"])["end_date"]) == end


async def test_lines_without_a_value_give_the_value_and_mixed_frequencies_are_said_apart(mcp_client):
    sb = mcp_client.sandbox
    client_id = sb.book.client_ids[0]
    start = date(TODAY.year + 1, 5, 1)
    r = await mcp_client.call_tool("create_contract", {
        "client_id": client_id, "ref": f"{sb.book.client_names[client_id]} - Recurring {start.year} lines",
        "type": "Recurring", "start_date": start.isoformat(), "end_date": date(start.year + 1, 4, 30).isoformat(),
        "billing_frequency": "Monthly", "sla_id": sb.book.sla_ids[0], "items": two_lines()})
    out = data(r)
    # 162.50 a month + 3,000.00 a year = 162.50 + 250.00 per Monthly period
    assert Decimal(str(out["value"])) == Decimal("412.50")
    assert Decimal(str(sb.store.get("contracts", out["contract_id"])["periodchargeamount"])) == Decimal("412.50")
    assert "Value 412.50 per Monthly period: what the lines bill." in text(r)
    assert "recurring lines bill 162.50 a month + 3,000.00 a year (412.50 a month on average)." in text(r)
    assert not any("disagrees with its recurring lines" in w for w in out["warnings"]), out["warnings"]


async def test_create_shows_the_overlap_and_the_value_against_lines_first(mcp_client):
    sb = mcp_client.sandbox
    [old] = [c for c in contracts(sb, ACTIVE) if c.get("end_date")][:1]
    start = day(old["start_date"]) + timedelta(days=1)
    r = await mcp_client.call_tool("create_contract", {
        "client_id": old["client_id"], "ref": "Odd reference", "type": "Recurring", "start_date": start.isoformat(),
        "end_date": day(old["end_date"]).isoformat(), "billing_frequency": "Monthly", "value": 100,
        "items": two_lines(), "dry_run": True})
    out = data(r)
    warnings = out["warnings"]
    assert len(warnings) > 3, warnings  # the minor ones (ref, SLA, next invoice date) come after
    assert warnings[0].startswith("start_date: the new contract overlaps contract"), warnings
    assert "disagrees with its recurring lines" in warnings[1], warnings
    shown = text(r).split("warnings: ", 1)[1]
    assert shown.startswith(warnings[0]) and warnings[1] in shown


async def test_update_shows_the_value_against_lines_before_the_minor_warnings(mcp_client):
    detail = await billing_contract(mcp_client)
    wrong = lines_total(detail) + 100
    out = data(await mcp_client.call_tool("update_contract", {
        "contract_id": detail["id"], "changes": {"value": float(wrong), "ref": "Odd reference"}, "dry_run": True}))
    warnings = out["warnings"]
    assert len(warnings) >= 2, warnings
    assert warnings[0].startswith("changes.value: the contract's value"), warnings


async def test_added_lines_of_mixed_frequencies_are_said_per_frequency(mcp_client):
    detail = await billing_contract(mcp_client)
    lines = [{"description": "Monitoring", "quantity": 2, "unit_price": 50, "billing_frequency": "Monthly"},
             {"description": "Domain", "quantity": 1, "unit_price": 1200, "billing_frequency": "Annual"}]
    r = await mcp_client.call_tool("add_recurring_items", {"contract_id": detail["id"], "items": lines,
                                                           "dry_run": True})
    out = data(r)
    assert Decimal(str(out["adds_per_month"])) == Decimal("200.00")  # 2 x 50 + 1200 / 12
    assert "The lines add 100.00 a month + 1,200.00 a year (200.00 a month on average)." in text(r)
