"""Contract tools against the in-process Halo sandbox, over HTTP (httpx2 ASGI transport).

Every request is checked against Halo's OpenAPI slice; rule violations must reach Halo with
zero requests; writes go through plans and the journal.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

pytestmark = pytest.mark.anyio

TODAY = date.today()


async def call(client, name: str, args: dict, **kw):
    return await client.call_tool(name, args, **kw)


def data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def text(result) -> str:
    return result.content[0].text


def api_writes(sandbox) -> list:
    return [e for e in sandbox.log if e.path.lower().startswith("/api") and e.method != "GET"]


def new_contract_args(book, **over) -> dict:
    client_id = book.client_ids[0]
    args = {"client_id": client_id, "ref": f"{book.client_names[client_id]} - Recurring {TODAY.year + 1}",
            "type": "Recurring", "start_date": f"{TODAY.year + 1}-01-01", "end_date": f"{TODAY.year + 1}-12-31",
            "billing_frequency": "Monthly", "value": 1250.5, "sla_id": book.sla_ids[0], "notes": "Tier 2"}
    args.update(over)
    return args


# ---- search ----------------------------------------------------------------------------------


async def test_search_by_status_is_complete_and_paged(mcp_client):
    book = mcp_client.sandbox.book
    expired = set(book.contracts_by_status["Expired"])
    first = data(await call(mcp_client, "search_contracts", {"status": "Expired", "limit": 5}))
    assert first["total"] == len(expired) and first["count"] == min(5, len(expired))
    seen = [r["id"] for r in first["contracts"]]
    cursor = first["next_cursor"]
    while cursor:
        page = data(await call(mcp_client, "search_contracts", {"status": "Expired", "limit": 5, "cursor": cursor}))
        assert page["total"] == len(expired)
        seen += [r["id"] for r in page["contracts"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(expired) and len(seen) == len(set(seen))
    row = first["contracts"][0]
    assert set(row) == {"id", "ref", "client_id", "client", "type", "status", "start_date", "end_date",
                        "days_to_end", "value", "billing_frequency"}
    assert row["status"] == "Expired"
    mcp_client.spec.assert_clean()


async def test_search_by_client_and_type(mcp_client):
    book = mcp_client.sandbox.book
    prepaid = set(book.contracts_by_type["Prepaid Hours"])
    r = data(await call(mcp_client, "search_contracts", {"type": "prepaid hours", "include_inactive": True,
                                                         "limit": 100}))
    assert {c["id"] for c in r["contracts"]} == prepaid
    client_id = book.client_ids[0]
    r = data(await call(mcp_client, "search_contracts", {"client_id": client_id, "include_inactive": True}))
    assert r["total"] >= 1 and all(c["client_id"] == client_id for c in r["contracts"])
    # the client filter is sent to Halo, not applied to every contract
    assert any(e.query.get("client_id") == str(client_id) for e in mcp_client.sandbox.log)
    by_name = data(await call(mcp_client, "search_contracts", {"client_name": book.client_names[client_id],
                                                               "include_inactive": True}))
    assert {c["id"] for c in by_name["contracts"]} == {c["id"] for c in r["contracts"]}


async def test_search_says_when_halos_inactive_contracts_are_left_out(mcp_client):
    sb = mcp_client.sandbox
    inactive = sb.store.where("contracts", "active = 0")
    assert inactive, "the demo book holds inactive contracts"
    client_id = inactive[0]["client_id"]
    r = await call(mcp_client, "search_contracts", {"client_id": client_id})
    said = r.content[0].text
    assert "Inactive ones (e.g. on hold) left out: include_inactive=true." in said
    ids = {c["id"] for c in data(r)["contracts"]}
    r = await call(mcp_client, "search_contracts", {"client_id": client_id, "include_inactive": True})
    assert "left out" not in r.content[0].text
    assert inactive[0]["id"] in {c["id"] for c in data(r)["contracts"]} - ids
    r = await call(mcp_client, "search_contracts", {"client_id": client_id, "status": "Expired"})
    assert "left out" not in r.content[0].text  # a status filter reads every contract


async def test_search_expiring_window(mcp_client):
    book = mcp_client.sandbox.book
    r = data(await call(mcp_client, "search_contracts", {"ends_within_days": 30, "status": "Active", "limit": 100}))
    assert {c["id"] for c in r["contracts"]} == set(book.expiring[30])
    ends = [c["end_date"] for c in r["contracts"]]
    assert ends == sorted(ends)
    assert all(0 <= c["days_to_end"] <= 30 for c in r["contracts"])
    before = (TODAY + timedelta(days=30)).isoformat()
    r2 = data(await call(mcp_client, "search_contracts", {"ends_after": TODAY.isoformat(), "ends_before": before,
                                                          "status": "Active", "limit": 100}))
    assert {c["id"] for c in r2["contracts"]} == set(book.expiring[30])


@pytest.mark.parametrize(("args", "field"), [
    ({"status": "Archived"}, "status"),
    ({"type": "Subscription"}, "type"),
    ({"client_id": 1, "client_name": "Acme"}, "client_name"),
    ({"ends_before": "2026-01-01", "ends_after": "2026-02-01"}, "ends_before"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"limit": 201}, "limit"),
    ({"limit": "5"}, "limit"),
    ({"ends_before": "31/12/2026"}, "ends_before"),
])
async def test_search_rejects_bad_filters_without_requests(mcp_client, args, field):
    r = await call(mcp_client, "search_contracts", args)
    assert r.is_error and field in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_cursor_of_another_search_is_refused(mcp_client):
    first = data(await call(mcp_client, "search_contracts", {"limit": 2}))
    r = await call(mcp_client, "search_contracts", {"limit": 2, "status": "Active", "cursor": first["next_cursor"]})
    assert r.is_error and "different filters" in text(r)


# ---- get ---------------------------------------------------------------------------------------


async def test_future_lines_say_when_they_start_and_what_they_will_bill(mcp_client):
    """A Pending contract's lines (dated or not) are not billing today: totals say from when and how much."""
    sb = mcp_client.sandbox
    pending = [c for c in sb.store.where("contracts")
               if c.get("status") == 2 and c["id"] in sb.book.headers_by_contract]
    assert pending
    for doc in pending:
        d = data(await call(mcp_client, "get_contract", {"contract_id": doc["id"]}))
        start = doc["start_date"][:10]
        live = [i for i in d["items"] if i["state"] != "ended" and i["state"] != "inactive"]
        assert live and all(i["state"] == "future" for i in live)
        assert d["totals"] and all(t["starts"] is not None and t["starts"] >= start for t in d["totals"])
        assert d["items_monthly_equivalent"] == "0.00"  # nothing bills today
        per_month = sum(D(t["monthly_equivalent"]) for t in d["totals"])
        expected = sum(D(str(i["quantity"])) * D(i["unit_price"]) / {"Monthly": 1, "Quarterly": 3, "Annual": 12}[
            i["billing_frequency"]] for i in live)
        assert abs(per_month - expected) <= D("0.01") * len(live)
        said = text(await call(mcp_client, "get_contract", {"contract_id": doc["id"]}))
        first = min(t["starts"] for t in d["totals"])
        assert f"From {first}: " in said and " a month (" in said


async def test_get_contract_with_items_and_totals(mcp_client):
    book = mcp_client.sandbox.book
    cid = next(c for c in book.recurring_invoice_ids if c in book.contracts_by_status["Active"]
               and c in book.contracts_by_type["Recurring"])
    d = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    assert d["id"] == cid and sorted(d["recurring_invoice_ids"]) == sorted(book.headers_by_contract[cid])
    assert book.recurring_invoice_ids[cid] in d["recurring_invoice_ids"]
    assert d["items"] and d["prepaid"] is None
    active = [i for i in d["items"] if i["state"] == "active"]
    per_freq: dict[str, float] = {}
    for i in active:
        assert float(i["per_period"]) == pytest.approx(i["quantity"] * float(i["unit_price"]))
        per_freq[i["billing_frequency"]] = per_freq.get(i["billing_frequency"], 0) + float(i["per_period"])
    assert {t["billing_frequency"]: float(t["per_period"]) for t in d["totals"]
            if t["starts"] is None} == pytest.approx(per_freq)
    months = {"Monthly": 1, "Quarterly": 3, "Annual": 12}
    expected_month = sum(v / months[k] for k, v in per_freq.items())
    assert float(d["items_monthly_equivalent"]) == pytest.approx(expected_month, abs=0.01)
    assert float(d["items_annualised"]) == pytest.approx(expected_month * 12, abs=0.05)
    if d["value"] is not None and d["billing_frequency"]:
        m = months[d["billing_frequency"]]
        assert float(d["monthly_equivalent"]) == pytest.approx(float(d["value"]) / m, abs=0.01)
    mcp_client.spec.assert_clean()


async def test_get_prepaid_contract_has_a_summary(mcp_client):
    book = mcp_client.sandbox.book
    cid = book.prepaid["healthy"][0]
    total, used, balance = book.prepaid_totals[cid]
    d = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    p = d["prepaid"]
    assert p["hours_purchased"] == pytest.approx(float(total))
    assert p["hours_used"] == pytest.approx(float(used))
    assert p["hours_remaining"] == pytest.approx(float(balance))
    assert d["monthly_equivalent"] is None  # the block price is not a recurring charge


async def test_get_unknown_contract(mcp_client):
    r = await call(mcp_client, "get_contract", {"contract_id": 999999})
    assert r.is_error and "contract_id" in text(r) and "search_contracts" in text(r)


# ---- create ------------------------------------------------------------------------------------


async def test_create_contract_happy_path(mcp_client):
    sb = mcp_client.sandbox
    args = new_contract_args(sb.book)
    d = data(await call(mcp_client, "create_contract", args))
    assert d["outcome"] == "created" and d["contract_id"]
    posts = api_writes(sb)
    assert [(e.method, e.path) for e in posts] == [("POST", "/api/ClientContract")]
    body = posts[0].body[0]
    assert "id" not in body and body["ref"] == args["ref"] and body["note"] == "Tier 2"
    got = data(await call(mcp_client, "get_contract", {"contract_id": d["contract_id"]}))
    assert (got["ref"], got["type"], got["status"], got["billing_frequency"], got["value"]) == \
        (args["ref"], "Recurring", "Pending", "Monthly", "1250.50")  # starts next year: Pending by default
    assert got["start_date"] == args["start_date"] and got["end_date"] == args["end_date"]
    assert got["notes"] == "Tier 2" and got["sla_id"] == args["sla_id"]
    mcp_client.spec.assert_clean()


async def test_create_prepaid_contract_value_from_rate(mcp_client):
    sb = mcp_client.sandbox
    args = new_contract_args(sb.book, type="Prepaid Hours", ref="Acme Corp Ltd - Prepaid Hours 2027",
                             billing_frequency=None, value=None, prepaid_hours=40, hourly_rate=150)
    args = {k: v for k, v in args.items() if v is not None}
    d = data(await call(mcp_client, "create_contract", args))
    assert d["value"] == "6000.00"
    body = api_writes(sb)[0].body[0]
    assert body["periodchargeamount"] == 6000 and body["startbalance"] == 40
    got = data(await call(mcp_client, "get_contract", {"contract_id": d["contract_id"]}))
    assert got["prepaid"]["hourly_rate"] == "150.00"


BAD_CREATES = [
    ({"ref": "   "}, "ref"),
    ({"type": "Subscription"}, "type"),
    ({"status": "Archived"}, "status"),
    ({"end_date": "2020-01-01"}, "end_date"),
    ({"value": -5}, "value"),
    ({"billing_frequency": "Weekly"}, "billing_frequency"),
    ({"next_invoice_date": "2020-01-01"}, "next_invoice_date"),
    ({"type": "Prepaid Hours", "hourly_rate": 100}, "prepaid_hours"),
    ({"type": "Prepaid Hours", "prepaid_hours": 10, "value": None}, "hourly_rate"),
    ({"type": "Prepaid Hours", "prepaid_hours": 10, "hourly_rate": 100, "value": 999}, "value"),
    ({"hourly_rate": 100}, "hourly_rate"),
    ({"prepaid_hours": 10}, "prepaid_hours"),
    # strict argument types and unknown arguments
    ({"client_id": "1"}, "client_id"),
    ({"value": "1250"}, "value"),
    ({"start_date": "01/02/2027"}, "start_date"),
    ({"dry_run": "false"}, "dry_run"),
    ({"setup_fee": 500}, "setup_fee"),
    ({"includes_all_sites": True}, "includes_all_sites"),
]


@pytest.mark.parametrize(("over", "field"), BAD_CREATES)
async def test_create_rules_reject_with_zero_requests(mcp_client, over, field):
    args = {k: v for k, v in new_contract_args(mcp_client.sandbox.book, **over).items() if v is not None}
    r = await call(mcp_client, "create_contract", args)
    assert r.is_error, text(r)
    assert field in text(r)
    assert len(mcp_client.sandbox.log) == 0, [(e.method, e.path) for e in mcp_client.sandbox.log]


async def test_create_reports_every_error_at_once(mcp_client):
    args = new_contract_args(mcp_client.sandbox.book, ref=" ", type="Nope", value=-1, end_date="2020-01-01")
    r = await call(mcp_client, "create_contract", args)
    assert r.is_error
    for field in ("'ref'", "'type'", "'value'", "'end_date'"):
        assert field in text(r)
    assert "Fix:" in text(r) and "nothing was sent" in text(r).lower()


@pytest.mark.parametrize(("over", "field"), [({"client_id": 99999}, "client_id"), ({"sla_id": 999}, "sla_id")])
async def test_create_reference_checks_send_no_write(mcp_client, over, field):
    r = await call(mcp_client, "create_contract", new_contract_args(mcp_client.sandbox.book, **over))
    assert r.is_error and field in text(r)
    assert api_writes(mcp_client.sandbox) == []


async def test_duplicate_guard_refers_to_the_existing_contract(mcp_client):
    sb = mcp_client.sandbox
    cid = sb.book.contracts_by_status["Active"][0]
    existing = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    args = new_contract_args(sb.book, client_id=existing["client_id"], ref=f"  {existing['ref'].upper()} ")
    d = data(await call(mcp_client, "create_contract", args))
    assert d["outcome"] == "exists" and d["contract_id"] == cid and d["existing"]["id"] == cid
    assert d["plan_id"] is None
    assert api_writes(sb) == []


async def test_dry_run_then_apply_creates_exactly_the_preview(mcp_client):
    sb = mcp_client.sandbox
    args = new_contract_args(sb.book, dry_run=True)
    brief = data(await call(mcp_client, "create_contract", args))
    assert [set(s) for s in brief["plan"]["steps"]] == [{"index", "kind", "summary", "status"}]  # one line a step
    d = data(await call(mcp_client, "create_contract", {**args, "detail": "full"}))
    assert d["outcome"] == "planned" and d["contract_id"] is None
    (step,) = d["plan"]["steps"]
    assert step["status"] == "pending" and step["request"]["method"] == "POST"
    assert step["request"]["path"] == "/api/ClientContract"
    assert api_writes(sb) == []
    shown = data(await call(mcp_client, "get_plan", {"plan_id": d["plan_id"], "detail": "full"}))
    assert shown["steps"][0]["request"] == step["request"] and shown["status"] == "planned"
    resource = json.loads((await mcp_client.read_resource(f"halopsa://plans/{d['plan_id']}")).contents[0].text)
    assert resource["steps"][0]["request"] == step["request"]
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    applied = data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}, progress_callback=on_progress))
    assert applied["status"] == "applied" and applied["done"] == 1 and applied["sent"] == 1
    (post,) = api_writes(sb)
    assert post.body == step["request"]["body"]  # exactly what was previewed
    new_id = applied["created"]["contract"][0]
    got = data(await call(mcp_client, "get_contract", {"contract_id": new_id}))
    assert got["ref"] == args["ref"]
    assert progress and progress[-1][0] == 1 and progress[-1][1] == 1
    again = data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    assert again["already_applied"] and again["sent"] == 0 and "already applied" in again["message"]
    assert len(api_writes(sb)) == 1
    mcp_client.spec.assert_clean()


async def test_lost_answer_is_resumed_without_a_duplicate(mcp_client):
    sb = mcp_client.sandbox
    args = new_contract_args(sb.book)
    sb.faults.drop_next_writes = 1
    r = await call(mcp_client, "create_contract", args)
    assert r.is_error
    assert "apply_plan again" in text(r)
    plan_id = text(r).split("Plan ")[1].split(" ")[0]
    assert len(api_writes(sb)) == 1  # Halo stored it; the answer was lost
    plan = data(await call(mcp_client, "get_plan", {"plan_id": plan_id}))
    assert plan["steps"][0]["status"] == "unknown"
    applied = data(await call(mcp_client, "apply_plan", {"plan_id": plan_id}))
    assert applied["status"] == "applied" and applied["settled"] == 1 and applied["sent"] == 0
    assert len(api_writes(sb)) == 1  # not re-sent
    rows = data(await call(mcp_client, "search_contracts", {"client_id": args["client_id"], "text": args["ref"],
                                                            "include_inactive": True}))
    assert [c["ref"] for c in rows["contracts"]].count(args["ref"]) == 1
    assert applied["created"]["contract"] == [rows["contracts"][0]["id"]]


async def test_plan_ids_are_checked(mcp_client):
    r = await call(mcp_client, "apply_plan", {"plan_id": "plan_000000000000"})
    assert r.is_error and "plan_id" in text(r)
    r = await call(mcp_client, "get_plan", {"plan_id": "DROP TABLE"})
    assert r.is_error and "plan_id" in text(r)
    assert len(mcp_client.sandbox.log) == 0


# ---- update ------------------------------------------------------------------------------------


async def _active_contract(client) -> dict:
    book = client.sandbox.book
    for cid in book.contracts_by_status["Active"]:
        d = data(await call(client, "get_contract", {"contract_id": cid}))
        if d["end_date"] and d["type"] == "Recurring":
            client.sandbox.log.clear()
            return d
    raise AssertionError("no active recurring contract in the demo book")


async def test_update_sends_only_what_changes(mcp_client):
    sb = mcp_client.sandbox
    c = await _active_contract(mcp_client)
    changes = {"notes": "Renewal due", "status": c["status"], "value": float(c["value"])}
    d = data(await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": changes}))
    assert d["outcome"] == "updated" and [x["field"] for x in d["changes"]] == ["notes"]
    (post,) = api_writes(sb)
    assert post.body == [{"id": c["id"], "note": "Renewal due"}]
    got = data(await call(mcp_client, "get_contract", {"contract_id": c["id"]}))
    assert got["notes"] == "Renewal due" and got["value"] == c["value"]
    mcp_client.spec.assert_clean()


async def test_update_without_a_difference_sends_nothing(mcp_client):
    c = await _active_contract(mcp_client)
    d = data(await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": {"ref": c["ref"]}}))
    assert d["outcome"] == "unchanged" and d["plan_id"] is None
    assert api_writes(mcp_client.sandbox) == []


async def test_update_dry_run_then_apply(mcp_client):
    sb = mcp_client.sandbox
    c = await _active_contract(mcp_client)
    new_end = (date.fromisoformat(c["end_date"]) + timedelta(days=365)).isoformat()
    d = data(await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": {"end_date": new_end},
                                                        "dry_run": True, "detail": "full"}))
    assert d["outcome"] == "planned" and api_writes(sb) == []
    preview = d["plan"]["steps"][0]["request"]["body"]
    data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    assert [e.body for e in api_writes(sb)] == [preview]
    assert data(await call(mcp_client, "get_contract", {"contract_id": c["id"]}))["end_date"] == new_end


@pytest.mark.parametrize(("changes", "field"), [
    ({}, "changes"),
    ({"status": "Archived"}, "status"),
    ({"ref": " "}, "ref"),
    ({"value": -1}, "value"),
    ({"start_date": "2026-05-01", "end_date": "2026-04-01"}, "end_date"),
    ({"ref": None}, "ref"),
    ({"value": "10"}, "value"),
    ({"setup_fee": 10}, "setup_fee"),
])
async def test_update_rules_reject_with_zero_requests(mcp_client, changes, field):
    r = await call(mcp_client, "update_contract", {"contract_id": 1001, "changes": changes})
    assert r.is_error and field in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_update_merged_rules_and_transitions_send_no_write(mcp_client):
    sb = mcp_client.sandbox
    cancelled = sb.book.contracts_by_status["Cancelled"][0]
    r = await call(mcp_client, "update_contract", {"contract_id": cancelled, "changes": {"status": "Active"}})
    assert r.is_error and "Cancelled is final" in text(r)
    c = await _active_contract(mcp_client)
    after_end = (date.fromisoformat(c["end_date"]) + timedelta(days=1)).isoformat()
    r = await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": {"start_date": after_end}})
    assert r.is_error and "'end_date'" in text(r)
    r = await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": {"status": "Expired"}})
    assert r.is_error and "end date has passed" in text(r)
    r = await call(mcp_client, "update_contract", {"contract_id": c["id"], "changes": {"type": "Prepaid Hours"}})
    assert r.is_error and "prepaid_hours" in text(r)
    assert api_writes(sb) == []


async def test_expired_contract_reactivated_with_a_later_end(mcp_client):
    sb = mcp_client.sandbox
    cid = sb.book.contracts_by_status["Expired"][0]
    end = (TODAY + timedelta(days=200)).isoformat()
    r = await call(mcp_client, "update_contract", {"contract_id": cid, "changes": {"status": "Active"}})
    assert r.is_error and "later end date" in text(r)
    d = data(await call(mcp_client, "update_contract", {"contract_id": cid,
                                                        "changes": {"status": "Active", "end_date": end}}))
    assert d["outcome"] == "updated"
    got = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    assert (got["status"], got["end_date"]) == ("Active", end)


async def test_prepaid_rate_change_sets_the_block_price(mcp_client):
    sb = mcp_client.sandbox
    cid = sb.book.prepaid["healthy"][0]
    before = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    hours = before["prepaid"]["block_hours"]
    sb.log.clear()
    d = data(await call(mcp_client, "update_contract", {"contract_id": cid, "changes": {"hourly_rate": 160}}))
    assert [c["field"] for c in d["changes"]] == ["value"]
    (post,) = api_writes(sb)
    assert post.body == [{"id": cid, "periodchargeamount": hours * 160}]
    after = data(await call(mcp_client, "get_contract", {"contract_id": cid}))
    assert after["prepaid"]["hourly_rate"] == "160.00"
    r = await call(mcp_client, "update_contract", {"contract_id": cid, "changes": {"hourly_rate": 160, "value": 1}})
    assert r.is_error and "'value'" in text(r)
    assert len(api_writes(sb)) == 1


async def test_two_plans_for_the_same_contract_create_it_once(mcp_client):
    sb = mcp_client.sandbox
    args = new_contract_args(sb.book, dry_run=True)
    first = data(await call(mcp_client, "create_contract", args))
    second = data(await call(mcp_client, "create_contract", args))
    data(await call(mcp_client, "apply_plan", {"plan_id": first["plan_id"]}))
    r = await call(mcp_client, "apply_plan", {"plan_id": second["plan_id"]})
    assert r.is_error and "already has contract" in text(r) and "nothing was sent" in text(r)
    assert len(api_writes(sb)) == 1


# ---- money precision: what is previewed is what is sent ----------------------------------------


@pytest.mark.parametrize(("over", "field"), [
    ({"value": 1.239}, "value"),
    ({"type": "Prepaid Hours", "billing_frequency": None, "value": None, "prepaid_hours": 10,
      "hourly_rate": 150.125, "ref": "Acme - Prepaid Hours 2027"}, "hourly_rate"),
])
async def test_create_refuses_sub_cent_money_with_zero_requests(mcp_client, over, field):
    args = {k: v for k, v in new_contract_args(mcp_client.sandbox.book, **over).items() if v is not None}
    r = await call(mcp_client, "create_contract", {**args, "dry_run": True})
    assert r.is_error and f"Invalid '{field}'" in text(r) and "more than 2 decimal places" in text(r)
    assert "Fix: round it to 2 decimal places" in text(r)
    assert len(mcp_client.sandbox.log) == 0


async def test_create_sends_exactly_the_previewed_value(mcp_client):
    sb = mcp_client.sandbox
    d = data(await call(mcp_client, "create_contract", new_contract_args(sb.book, value=1.24, dry_run=True,
                                                                         detail="full")))
    assert d["value"] == "1.24"
    data(await call(mcp_client, "apply_plan", {"plan_id": d["plan_id"]}))
    (post,) = api_writes(sb)
    assert post.body[0]["periodchargeamount"] == d["plan"]["steps"][0]["request"]["body"][0]["periodchargeamount"]
    assert float(post.body[0]["periodchargeamount"]) == 1.24


@pytest.mark.parametrize("changes", [{"value": 99.999}, {"hourly_rate": 0.001}])
async def test_update_refuses_sub_cent_money_with_zero_requests(mcp_client, changes):
    cid = mcp_client.sandbox.book.contracts_by_status["Active"][0]
    r = await call(mcp_client, "update_contract", {"contract_id": cid, "changes": changes})
    assert r.is_error and "more than 2 decimal places" in text(r)
    assert len(mcp_client.sandbox.log) == 0
