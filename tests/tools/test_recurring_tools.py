"""Recurring-item tools against the in-process Halo sandbox, over HTTP."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from test_contract_tools import api_writes, call, data, new_contract_args, text

pytestmark = pytest.mark.anyio

TODAY = date.today()


async def _contract_with_lines(client) -> dict:
    book = client.sandbox.book
    for cid in book.recurring_invoice_ids:
        if cid not in book.contracts_by_status["Active"]:
            continue
        d = data(await call(client, "get_contract", {"contract_id": cid}))
        if d["items"] and d["end_date"] and date.fromisoformat(d["end_date"]) > TODAY + timedelta(days=60):
            client.sandbox.log.clear()
            return d
    raise AssertionError("no suitable contract in the demo book")


ITEM = {"description": "Backup as a Service", "quantity": 12, "unit_price": 9.5}


async def test_list_recurring_items(mcp_client):
    c = await _contract_with_lines(mcp_client)
    d = data(await call(mcp_client, "list_recurring_items", {"contract_id": c["id"]}))
    assert d["items"] == c["items"] and d["totals"] == c["totals"]
    assert d["monthly_equivalent"] == c["items_monthly_equivalent"]
    assert d["recurring_invoice_ids"] == c["recurring_invoice_ids"]
    mcp_client.spec.assert_clean()


async def test_add_items_to_an_existing_recurring_invoice(mcp_client):
    sb = mcp_client.sandbox
    c = await _contract_with_lines(mcp_client)
    second = {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "annual"}
    had_annual = 3 in {h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [c["id"]])}
    d = data(await call(mcp_client, "add_recurring_items", {"contract_id": c["id"], "items": [ITEM, second]}))
    # the plan makes the annual recurring invoice only when the contract has none
    assert d["outcome"] == "added" and len(d["item_ids"]) == 2
    assert d["creates_recurring_invoice"] is not had_annual
    assert d["recurring_invoice_id"] in c["recurring_invoice_ids"]
    # lines carry no frequency (the 2026 document): each goes to the contract's recurring
    # invoice of its frequency, the annual one made if the contract has none
    writes = api_writes(sb)
    line_posts = [w for w in writes if w.path == "/api/RecurringInvoice/Lines"]
    assert {w.path for w in writes} <= {"/api/RecurringInvoice/Lines", "/api/RecurringInvoice"}
    ihid = {row["item_shortdescription"]: row["ihid"] for w in line_posts for row in w.body}
    assert all("billingperiod" not in row for w in line_posts for row in w.body)
    period = {h["id"]: h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [c["id"]])}
    codes = {"Monthly": 1, "Quarterly": 2, "Annual": 3}
    assert ihid["Backup as a Service"] in c["recurring_invoice_ids"]
    assert period[ihid["Backup as a Service"]] == codes[c["billing_frequency"]]
    assert period[ihid["Firewall (annual)"]] == 3
    after = data(await call(mcp_client, "list_recurring_items", {"contract_id": c["id"]}))
    new = {i["id"]: i for i in after["items"] if i["id"] in d["item_ids"]}
    assert sorted(i["description"] for i in new.values()) == ["Backup as a Service", "Firewall (annual)"]
    annual = next(i for i in new.values() if i["description"] == "Firewall (annual)")
    assert annual["own_frequency"] and annual["billing_frequency"] == "Annual"
    assert annual["monthly_equivalent"] == "50.00"
    months = {"Monthly": 1, "Quarterly": 3, "Annual": 12}[c["billing_frequency"]]
    assert float(d["adds_per_month"]) == pytest.approx(12 * 9.5 / months + 50, abs=0.01)
    mcp_client.spec.assert_clean()


async def test_new_contract_gets_its_recurring_invoice_first(mcp_client):
    sb = mcp_client.sandbox
    created = data(await call(mcp_client, "create_contract", new_contract_args(sb.book)))
    cid = created["contract_id"]
    sb.log.clear()
    d = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [ITEM], "dry_run": True,
                                                            "detail": "full"}))
    kinds = [s["kind"] for s in d["plan"]["steps"]]
    assert kinds == ["create_recurring_invoice", "add_recurring_lines"] and d["creates_recurring_invoice"]
    assert d["plan"]["steps"][1]["request"]["body"][0]["ihid"] == -1_000_000
    assert d["plan"]["steps"][1]["refs"] == {"-1000000": 0}
    assert api_writes(sb) == []
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    assert applied["done"] == 2
    posts = api_writes(sb)
    assert [p.path for p in posts] == ["/api/RecurringInvoice", "/api/RecurringInvoice/Lines"]
    ri_id = applied["created"]["recurring_invoice"][0]
    assert posts[1].body[0]["ihid"] == ri_id
    preview = d["plan"]["steps"][1]["request"]["body"][0]
    assert {k: v for k, v in posts[1].body[0].items() if k != "ihid"} == \
        {k: v for k, v in preview.items() if k != "ihid"}
    listed = data(await call(mcp_client, "list_recurring_items", {"contract_id": cid}))
    assert listed["recurring_invoice_ids"] == [ri_id]
    assert [i["description"] for i in listed["items"]] == ["Backup as a Service"]
    mcp_client.spec.assert_clean()


@pytest.mark.parametrize(("item", "field"), [
    ({"description": "  "}, "description"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": -2}, "quantity"),
    ({"unit_price": -1}, "unit_price"),
    ({"billing_frequency": "Weekly"}, "billing_frequency"),
    ({"start_date": "2026-06-01", "end_date": "2026-05-01"}, "end_date"),
    ({"quantity": "3"}, "quantity"),
    ({"colour": "red"}, "colour"),
])
async def test_item_rules_reject_with_zero_requests(mcp_client, item, field):
    r = await call(mcp_client, "add_recurring_items", {"contract_id": 1001, "items": [{**ITEM, **item}]})
    assert r.is_error and field in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_empty_batch_is_rejected(mcp_client):
    r = await call(mcp_client, "add_recurring_items", {"contract_id": 1001, "items": []})
    assert r.is_error and "items" in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_item_dates_must_fit_the_contract(mcp_client):
    c = await _contract_with_lines(mcp_client)
    late = (date.fromisoformat(c["end_date"]) + timedelta(days=1)).isoformat()
    early = (date.fromisoformat(c["start_date"]) - timedelta(days=1)).isoformat()
    r = await call(mcp_client, "add_recurring_items", {"contract_id": c["id"], "items": [
        {**ITEM, "end_date": late}, {**ITEM, "description": "Other", "start_date": early}]})
    assert r.is_error and "items[0].end_date" in text(r) and "items[1].start_date" in text(r)
    assert api_writes(mcp_client.sandbox) == []


async def test_end_a_line_by_its_end_date(mcp_client):
    sb = mcp_client.sandbox
    c = await _contract_with_lines(mcp_client)
    line = next(i for i in c["items"] if i["state"] == "active")
    end = (TODAY + timedelta(days=30)).isoformat()
    d = data(await call(mcp_client, "update_recurring_item", {"item_id": line["id"], "changes": {"end_date": end}}))
    assert d["outcome"] == "updated" and [x["field"] for x in d["changes"]] == ["end_date"]
    assert d["contract_id"] == c["id"]
    (post,) = api_writes(sb)
    assert post.path == "/api/RecurringInvoice/updatelines"
    assert set(post.body[0]) == {"id", "ihid", "enddate"} and post.body[0]["id"] == line["id"]
    after = data(await call(mcp_client, "list_recurring_items", {"contract_id": c["id"]}))
    assert next(i for i in after["items"] if i["id"] == line["id"])["end_date"] == end
    assert len(after["items"]) == len(c["items"])  # never deleted
    mcp_client.spec.assert_clean()


async def test_update_item_quantity_dry_run_then_apply(mcp_client):
    sb = mcp_client.sandbox
    c = await _contract_with_lines(mcp_client)
    line = c["items"][0]
    args = {"item_id": line["id"], "contract_id": c["id"], "changes": {"quantity": line["quantity"] + 5},
            "dry_run": True, "detail": "full"}
    d = data(await call(mcp_client, "update_recurring_item", args))
    assert d["outcome"] == "planned" and api_writes(sb) == []
    data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    assert [p.body for p in api_writes(sb)] == [d["plan"]["steps"][0]["request"]["body"]]
    unchanged = data(await call(mcp_client, "update_recurring_item", {
        "item_id": line["id"], "contract_id": c["id"], "changes": {"quantity": line["quantity"] + 5}}))
    assert unchanged["outcome"] == "unchanged" and len(api_writes(sb)) == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({}, "changes"),
    ({"quantity": 0}, "quantity"),
    ({"unit_price": -3}, "unit_price"),
    ({"quantity": None}, "quantity"),
    ({"billing_frequency": "Hourly"}, "billing_frequency"),
    ({"delete": True}, "delete"),
])
async def test_item_update_rules_reject_with_zero_requests(mcp_client, changes, field):
    r = await call(mcp_client, "update_recurring_item", {"item_id": 1, "contract_id": 1001, "changes": changes})
    assert r.is_error and field in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_item_update_outside_contract_dates_sends_no_write(mcp_client):
    c = await _contract_with_lines(mcp_client)
    line = c["items"][0]
    late = (date.fromisoformat(c["end_date"]) + timedelta(days=10)).isoformat()
    r = await call(mcp_client, "update_recurring_item", {"item_id": line["id"], "contract_id": c["id"],
                                                         "changes": {"end_date": late}})
    assert r.is_error and "changes.end_date" in text(r)
    r = await call(mcp_client, "update_recurring_item", {"item_id": 987654, "contract_id": c["id"],
                                                         "changes": {"quantity": 2}})
    assert r.is_error and "item_id" in text(r)
    assert api_writes(mcp_client.sandbox) == []


async def test_lost_answer_on_lines_is_resumed_without_duplicates(mcp_client):
    sb = mcp_client.sandbox
    c = await _contract_with_lines(mcp_client)
    before = len(c["items"])
    sb.faults.drop_next_writes = 1
    r = await call(mcp_client, "add_recurring_items", {"contract_id": c["id"], "items": [
        ITEM, {**ITEM, "description": "Endpoint protection"}]})
    assert r.is_error and "apply_plan again" in text(r)
    plan_id = text(r).split("Plan ")[1].split(" ")[0]
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": plan_id}))
    assert applied["status"] == "applied" and applied["settled"] == 1 and applied["sent"] == 0
    assert len(api_writes(sb)) == 1
    after = data(await call(mcp_client, "list_recurring_items", {"contract_id": c["id"]}))
    assert len(after["items"]) == before + 2
    assert sorted(applied["created"]["recurring_item"]) == sorted(
        i["id"] for i in after["items"] if i["description"] in ("Backup as a Service", "Endpoint protection"))


async def test_lost_recurring_invoice_create_is_found_again(mcp_client):
    sb = mcp_client.sandbox
    created = data(await call(mcp_client, "create_contract", new_contract_args(sb.book)))
    sb.log.clear()
    sb.faults.drop_next_writes = 1
    r = await call(mcp_client, "add_recurring_items", {"contract_id": created["contract_id"], "items": [ITEM]})
    assert r.is_error
    plan_id = text(r).split("Plan ")[1].split(" ")[0]
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": plan_id}))
    assert applied["status"] == "applied" and applied["settled"] == 1 and applied["sent"] == 1
    assert [p.path for p in api_writes(sb)] == ["/api/RecurringInvoice", "/api/RecurringInvoice/Lines"]
    listed = data(await call(mcp_client, "list_recurring_items", {"contract_id": created["contract_id"]}))
    assert len(listed["recurring_invoice_ids"]) == 1 and len(listed["items"]) == 1


@pytest.mark.parametrize(("item", "field"), [
    ({"unit_price": 9.12345}, "unit_price"),
    ({"quantity": 1.00005}, "quantity"),
])
async def test_items_refuse_more_than_four_decimals_with_zero_requests(mcp_client, item, field):
    r = await call(mcp_client, "add_recurring_items", {"contract_id": 1001, "items": [{**ITEM, **item}]})
    assert r.is_error and f"items[0].{field}" in text(r) and "more than 4 decimal places" in text(r)
    r = await call(mcp_client, "update_recurring_item", {"item_id": 1, "contract_id": 1001, "changes": item})
    assert r.is_error and f"changes.{field}" in text(r) and "more than 4 decimal places" in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_preview_shows_a_line_of_a_new_frequency_going_on_its_new_recurring_invoice(mcp_client):
    """A contract with only its monthly recurring invoice: an annual line needs an annual one.
    The preview says so (a create step, and the annual line aimed at what it makes), and the
    apply sends exactly that, reading no header before the lines."""
    sb = mcp_client.sandbox
    created = data(await call(mcp_client, "create_contract", new_contract_args(sb.book)))
    cid = created["contract_id"]
    first = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [ITEM]}))
    monthly_id = first["recurring_invoice_id"]
    annual = {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "Annual"}
    sb.log.clear()
    d = data(await call(mcp_client, "add_recurring_items", {
        "contract_id": cid, "items": [{**ITEM, "description": "Offsite copies"}, annual], "dry_run": True,
        "detail": "full"}))
    steps = d["plan"]["steps"]
    assert [s["kind"] for s in steps] == ["add_recurring_lines", "create_recurring_invoice", "add_recurring_lines"]
    assert d["creates_recurring_invoice"] and d["recurring_invoice_id"] == monthly_id
    monthly, create, yearly = steps
    assert [r["ihid"] for r in monthly["request"]["body"]] == [monthly_id]
    assert create["request"]["body"][0]["period"] == 3  # the Annual billing-period code
    assert create["request"]["body"][0]["contract_id"] == cid
    assert [r["item_shortdescription"] for r in yearly["request"]["body"]] == ["Firewall (annual)"]
    assert [r["ihid"] for r in yearly["request"]["body"]] == [-1_000_001]
    assert yearly["refs"] == {"-1000001": 1}
    assert "Annual" in create["summary"] and "step 2" in yearly["summary"]
    assert api_writes(sb) == []
    sb.log.clear()
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    assert applied["done"] == 3
    annual_id = applied["created"]["recurring_invoice"][0]
    posts = api_writes(sb)
    assert [p.path for p in posts] == ["/api/RecurringInvoice/Lines", "/api/RecurringInvoice",
                                       "/api/RecurringInvoice/Lines"]
    assert posts[2].body[0]["ihid"] == annual_id != monthly_id
    # no header read before the lines: the plan knew each header's frequency
    assert not [e for e in sb.log if e.method == "GET" and e.path.lower().startswith("/api/recurringinvoice/")]
    periods = {h["id"]: h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [cid])}
    assert periods == {monthly_id: 1, annual_id: 3}
    listed = data(await call(mcp_client, "list_recurring_items", {"contract_id": cid}))
    by_name = {i["description"]: i["billing_frequency"] for i in listed["items"]}
    assert by_name == {"Backup as a Service": "Monthly", "Offsite copies": "Monthly", "Firewall (annual)": "Annual"}
    mcp_client.spec.assert_clean()


async def test_an_annual_recurring_invoice_made_after_the_plan_is_reused_not_the_monthly_one(mcp_client):
    """The create step of a frequency reuses only a recurring invoice of that frequency made
    since the plan was built; the contract's monthly one is never taken for it."""
    sb = mcp_client.sandbox
    created = data(await call(mcp_client, "create_contract", new_contract_args(sb.book)))
    cid = created["contract_id"]
    first = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [ITEM]}))
    annual = {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "Annual"}
    late = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [annual],
                                                               "dry_run": True}))
    assert late["creates_recurring_invoice"]
    other = data(await call(mcp_client, "add_recurring_items", {
        "contract_id": cid, "items": [{**annual, "description": "Mail filtering (annual)"}]}))
    annual_id = other["recurring_invoice_id"]
    assert annual_id not in (None, first["recurring_invoice_id"])
    sb.log.clear()
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": late["plan_id"]}))
    assert applied["status"] == "applied"
    assert [p.path for p in api_writes(sb)] == ["/api/RecurringInvoice/Lines"]
    assert api_writes(sb)[0].body[0]["ihid"] == annual_id
    periods = sorted(h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [cid]))
    assert periods == [1, 3]


async def test_a_lost_annual_recurring_invoice_create_is_found_again_by_its_frequency(mcp_client):
    """The answer to the annual header's create is lost: applying again finds the contract's
    annual recurring invoice (not its monthly one), and the annual line goes there."""
    sb = mcp_client.sandbox
    created = data(await call(mcp_client, "create_contract", new_contract_args(sb.book)))
    cid = created["contract_id"]
    first = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [ITEM]}))
    sb.log.clear()
    sb.faults.drop_next_writes = 1
    annual = {"description": "Firewall (annual)", "quantity": 1, "unit_price": 600, "billing_frequency": "Annual"}
    r = await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [annual]})
    assert r.is_error
    plan_id = text(r).split("Plan ")[1].split(" ")[0]
    # meanwhile the contract gets a quarterly recurring invoice too (the newest one)
    quarterly = data(await call(mcp_client, "add_recurring_items", {"contract_id": cid, "items": [
        {"description": "Audit (quarterly)", "quantity": 1, "unit_price": 90, "billing_frequency": "Quarterly"}]}))
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": plan_id}))
    assert applied["status"] == "applied" and applied["settled"] == 1 and applied["sent"] == 1
    headers = {h["id"]: h["period"] for h in sb.store.where("rinvoices", "contract_id = ?", [cid])}
    annual_id = next(i for i, period in headers.items() if period == 3)
    assert sorted(headers.values()) == [1, 2, 3] and first["recurring_invoice_id"] != annual_id
    assert quarterly["recurring_invoice_id"] == next(i for i, period in headers.items() if period == 2)
    assert applied["created"]["recurring_invoice"] == [annual_id]
    lines = {x["item_shortdescription"]: x["ihid"] for x in sb.store.where("rlines", "contract_id = ?", [cid])}
    assert lines == {"Backup as a Service": first["recurring_invoice_id"], "Firewall (annual)": annual_id,
                     "Audit (quarterly)": quarterly["recurring_invoice_id"]}
