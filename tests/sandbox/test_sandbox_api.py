"""The Halo sandbox's endpoints, driven over HTTP in-process (httpx2 + ASGI transport)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx2
import pytest

from halo_contracts.sandbox import SandboxConfig, create_app, transport

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 22)
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


def make_app(**kw):
    kw.setdefault("strict", True)
    return create_app(SandboxConfig(today=TODAY, **kw))


@contextlib.asynccontextmanager
async def connect(app, token: bool = True) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox") as client:
        if token:
            r = await client.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "sandbox-client",
                    "client_secret": "sandbox-secret",
                    "scope": "all",
                },
            )
            assert r.status_code == 200
            client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
def app():
    """A read-mostly app shared by the read tests of this module."""
    return make_app()


@pytest.fixture
def fresh():
    return make_app()


# ----------------------------------------------------------------------------- lists


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/Client", "clients"),
        ("/api/ClientContract", "contracts"),
        ("/api/RecurringInvoice", "invoices"),
        ("/api/Invoice", "invoices"),
        ("/api/Actions", "actions"),
        ("/api/ClientPrepay", "prepayhistory"),
        ("/api/SoftwareLicence", "licences"),
        ("/api/Tickets", "tickets"),
    ],
)
async def test_list_wrappers_use_halo_keys(app, path, key):
    async with connect(app) as c:
        r = await c.get(path)
        assert r.status_code == 200
        body = r.json()
        assert isinstance(body[key], list) and body[key]
        assert body["record_count"] == len(body[key])
        assert "page_no" not in body  # only when paginating


async def test_sla_and_lookup_are_bare_arrays(app):
    async with connect(app) as c:
        slas = (await c.get("/api/SLA")).json()
        assert isinstance(slas, list) and {"id", "name"} <= set(slas[0])
        statuses = (await c.get("/api/Lookup", params={"lookupid": 71})).json()
        assert [(x["id"], x["name"]) for x in statuses] == [
            (1, "Active"),
            (2, "Pending"),
            (3, "Expired"),
            (4, "Cancelled"),
            (5, "On Hold"),
        ]
        types = (await c.get("/api/Lookup", params={"lookupid": 72})).json()
        assert [x["name"] for x in types] == ["Recurring", "Prepaid Hours", "Ad-Hoc", "Project", "Warranty"]
        periods = (await c.get("/api/Lookup", params={"lookupid": 73})).json()
        assert [x["name"] for x in periods] == ["Monthly", "Quarterly", "Annual"]
        assert (await c.get("/api/SLA/1")).json()["id"] == 1
        assert (await c.get("/api/SLA/999")).status_code == 404


async def test_paging_is_capped_at_100_and_walks_to_record_count(app):
    async with connect(app) as c:
        base = {"pageinate": "true", "includeinactive": "true"}
        first = (await c.get("/api/ClientContract", params={**base, "page_size": 500, "page_no": 1})).json()
        assert first["page_size"] == 100 and first["page_no"] == 1
        assert len(first["contracts"]) == 100
        total = first["record_count"]
        assert total == 120
        seen = []
        page = 1
        while True:
            body = (await c.get("/api/ClientContract", params={**base, "page_size": 50, "page_no": page})).json()
            seen += [row["id"] for row in body["contracts"]]
            if len(body["contracts"]) < 50:
                break
            page += 1
        assert len(seen) == len(set(seen)) == total
        beyond = (await c.get("/api/ClientContract", params={**base, "page_size": 50, "page_no": 99})).json()
        assert beyond["contracts"] == [] and beyond["record_count"] == total
        everything = (await c.get("/api/ClientContract", params={"includeinactive": "true"})).json()
        assert len(everything["contracts"]) == total  # no pageinate: every row
        five = (await c.get("/api/ClientContract", params={"count": 5})).json()
        assert len(five["contracts"]) == 5
        invoices = (await c.get("/api/Invoice", params={"pageinate": "true", "page_size": 1000})).json()
        assert len(invoices["invoices"]) == 100 and invoices["record_count"] > 100


async def test_paths_are_case_insensitive(app):
    async with connect(app) as c:
        a = (await c.get("/api/clientcontract", params={"count": 3})).json()
        b = (await c.get("/API/CLIENTCONTRACT", params={"count": 3})).json()
        assert a == b
        assert (await c.get("/api/clientContract/1001")).status_code == 200


async def test_contract_list_rows_are_the_list_schema_and_detail_is_full(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        rows = (await c.get("/api/ClientContract", params={"count": 10})).json()["contracts"]
        for row in rows:
            assert "startbalance" not in row and "contract_prepaybalance" not in row
            assert {"id", "client_id", "client_name", "ref", "start_date", "status", "contracttype", "active"} <= set(
                row
            )
        cid = book.prepaid["low"][0]
        detail = (await c.get(f"/api/ClientContract/{cid}")).json()
        assert detail["startbalance"] == 20
        assert "contract_prepaybalance" not in detail  # only with includedetails
        for key in ("start_date", "end_date", "last_modified"):
            assert TS.match(detail[key]), detail[key]  # zone-less timestamps
        assert "note" in detail and "notes" not in detail


async def test_includeinactive_excluderenewed_and_filters(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        default = (await c.get("/api/ClientContract")).json()
        active_ids = set(book.contracts_by_status["Active"]) | set(book.contracts_by_status["Pending"])
        assert {r["id"] for r in default["contracts"]} == active_ids
        assert all(r["active"] for r in default["contracts"])
        every = (await c.get("/api/ClientContract", params={"includeinactive": "true"})).json()
        assert every["record_count"] == len(book.contract_ids)
        not_renewed = (
            await c.get("/api/ClientContract", params={"includeinactive": "true", "excluderenewed": "true"})
        ).json()
        ids = {r["id"] for r in not_renewed["contracts"]}
        for old, new in book.renewed:
            assert old not in ids and new in ids
        client = book.client_ids[1]
        mine = (await c.get("/api/ClientContract", params={"client_id": client, "includeinactive": "true"})).json()
        assert mine["contracts"] and {r["client_id"] for r in mine["contracts"]} == {client}
        found = (await c.get("/api/ClientContract", params={"search": "brightwater"})).json()
        assert found["contracts"] and all(r["client_name"] == "Brightwater Dental, LLC" for r in found["contracts"])
        ordered = (await c.get("/api/ClientContract", params={"order": "end_date", "orderdesc": "true"})).json()
        ends = [r["end_date"] for r in ordered["contracts"] if r["end_date"]]
        assert ends == sorted(ends, reverse=True)


async def test_filters_halo_lacks_are_ignored_when_not_strict():
    app = make_app(strict=False)
    async with connect(app) as c:
        plain = (await c.get("/api/ClientContract")).json()
        filtered = (await c.get("/api/ClientContract", params={"status": "Active", "type": "Recurring"})).json()
        assert filtered == plain


async def test_strict_mode_rejects_query_names_not_in_the_slice(app):
    async with connect(app) as c:
        r = await c.get("/api/ClientContract", params={"status": "Active"})
        assert r.status_code == 400
        assert list(r.json()) == ["status"]
        # /Actions has no paging parameters in Halo's spec
        r = await c.get("/api/Actions", params={"pageinate": "true"})
        assert r.status_code == 400 and "pageinate" in r.json()


async def test_query_values_of_the_wrong_type_are_400(fresh):
    async with connect(fresh) as c:
        r = await c.get("/api/ClientContract", params={"client_id": "acme"})
        assert r.status_code == 400
        assert r.json() == {"client_id": ["The value 'acme' is not valid."]}
        r = await c.get("/api/ClientContract/abc")
        assert r.status_code == 400 and "id" in r.json()


# ----------------------------------------------------------------------------- contract detail


async def test_prepay_fields_computed_from_ledger_and_time(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        for cid, (total, used, balance) in book.prepaid_totals.items():
            d = (await c.get(f"/api/ClientContract/{cid}", params={"includedetails": "true"})).json()
            assert Decimal(str(d["contract_prepaytotal"])) == total
            assert Decimal(str(d["contract_prepayused"])) == used
            assert Decimal(str(d["contract_prepaybalance"])) == balance
            assert d["contract_prepayasamount"] is False
        # the independent arithmetic: start balance + ledger - time, minus unconsumed expired hours
        cid = book.prepaid["expired"][0]
        d = (await c.get(f"/api/ClientContract/{cid}", params={"includedetails": "true"})).json()
        ledger = d["contract_prepayhistory"]
        assert len(ledger) == 2 and any(row["expirydate"] for row in ledger)
        assert d["contract_prepaytotal"] == d["startbalance"] + sum(row["hours"] for row in ledger)
        actions = (await c.get("/api/Actions")).json()["actions"]
        used = sum(Decimal(str(a["actionprepayhours"])) for a in actions if a["actioncontractid"] == cid)
        assert Decimal(str(d["contract_prepayused"])) == used
        assert d["contract_prepaybalance"] < d["contract_prepaytotal"] - d["contract_prepayused"]  # some expired
        periods = d["prepay_periods"]
        assert periods[-1]["current"] is True
        assert periods[-1]["hours_remaining"] == d["contract_prepaybalance"]
        assert sum(p["hours_expired"] for p in periods) > 0
        low = book.prepaid["low"][0]
        d = (await c.get(f"/api/ClientContract/{low}", params={"includedetails": "true"})).json()
        assert 0 < d["contract_prepaybalance"] <= 0.2 * d["contract_prepaytotal"]
        ex = book.prepaid["exhausted"][0]
        d = (await c.get(f"/api/ClientContract/{ex}", params={"includedetails": "true"})).json()
        assert d["contract_prepaybalance"] <= 0


async def test_includeperiods_fills_periods_for_included_hours(app):
    book = app.state.sandbox.book
    cid = book.included_hours_contract_ids[0]
    async with connect(app) as c:
        d = (await c.get(f"/api/ClientContract/{cid}", params={"includeperiods": "true"})).json()
        assert d["chargehoursperperiod"] == 4
        periods = d["periods"]
        assert periods and sum(1 for p in periods if p["current"]) == 1
        for p in periods:
            assert p["hours_in_period"] == 4
            assert p["hours_remaining"] == max(4 - p["hours_used"], 0)
            assert TS.match(p["start_date"])


# ----------------------------------------------------------------------------- contract writes


async def test_contract_create_update_delete(fresh):
    async with connect(fresh) as c:
        r = await c.post(
            "/api/ClientContract",
            json=[
                {
                    "client_id": 1,
                    "ref": "ACME-NEW-1",
                    "start_date": "2026-12-01",
                    "end_date": "2027-11-30",
                    "contracttype": 1,
                    "status": 2,
                    "billingperiod": 1,
                    "periodchargeamount": 1500.5,
                    "note": "hi",
                }
            ],
        )
        assert r.status_code == 201
        created = r.json()
        assert isinstance(created, dict) and created["id"] > 0
        assert created["start_date"] == "2026-12-01T00:00:00"
        assert created["client_name"] == "Acme Corp Ltd" and created["active"] is True
        cid = created["id"]
        r = await c.post("/api/ClientContract", json=[{"id": cid, "periodchargeamount": 1600}])
        assert r.status_code == 201
        updated = (await c.get(f"/api/ClientContract/{cid}")).json()
        assert updated["periodchargeamount"] == 1600
        assert updated["ref"] == "ACME-NEW-1" and updated["note"] == "hi" and updated["status"] == 2
        r = await c.post("/api/ClientContract", json=[{"id": cid, "status": 4}])
        assert r.json()["active"] is False  # Cancelled
        assert (await c.post("/api/ClientContract", json=[{"id": 987654, "note": "x"}])).status_code == 404
        assert (await c.delete(f"/api/ClientContract/{cid}")).status_code == 200
        assert (await c.get(f"/api/ClientContract/{cid}")).status_code == 404
        assert (await c.delete(f"/api/ClientContract/{cid}")).status_code == 404


async def test_renewal_is_a_contract_naming_its_previous(fresh):
    book = fresh.state.sandbox.book
    old = book.expiring[60][0]
    async with connect(fresh) as c:
        r = await c.post(
            "/api/ClientContract",
            json=[{"client_id": 1, "ref": "RENEWAL", "previouscontract": old, "start_date": "2027-02-01"}],
        )
        assert r.status_code == 201
        ids = {
            row["id"]
            for row in (await c.get("/api/ClientContract", params={"excluderenewed": "true"})).json()["contracts"]
        }
        assert old not in ids and r.json()["id"] in ids
        bad = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "R", "previouscontract": 999999}])
        assert bad.status_code == 400 and "[0].previouscontract" in bad.json()


async def test_model_state_400s(fresh):
    async with connect(fresh) as c:
        r = await c.post("/api/ClientContract", json=[{"note": "no client, no ref"}])
        assert r.status_code == 400
        assert r.json() == {
            "[0].client_id": ["The client_id field is required."],
            "[0].ref": ["The ref field is required."],
        }
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "ok"}, {"client_id": "acme", "ref": "x"}])
        assert r.status_code == 400
        assert list(r.json()) == ["[1].client_id"]
        assert r.json()["[1].client_id"][0].startswith("Could not convert string to integer: acme.")
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "d", "start_date": "next tuesday"}])
        assert r.status_code == 400 and "[0].start_date" in r.json()
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "s", "status": 42}])
        assert r.status_code == 400 and "[0].status" in r.json()
        r = await c.post("/api/ClientContract", json={"client_id": 1, "ref": "not an array"})
        assert r.status_code == 400 and "" in r.json()
        r = await c.post(
            "/api/ClientContract",
            json=[{"client_id": 1, "ref": "dates", "start_date": "2027-01-01", "end_date": "2026-01-01"}],
        )
        assert r.status_code == 400 and "[0].end_date" in r.json()
        # nothing of the above was stored
        every = (await c.get("/api/ClientContract", params={"includeinactive": "true"})).json()
        assert every["record_count"] == 120


async def test_strict_mode_rejects_invented_fields_and_lax_mode_keeps_them():
    strict = make_app()
    async with connect(strict) as c:
        r = await c.post(
            "/api/ClientContract", json=[{"client_id": 1, "ref": "X", "notes": "plural", "type": "Recurring"}]
        )
        assert r.status_code == 400
        assert set(r.json()) == {"[0].notes", "[0].type"}
        r = await c.post("/api/RecurringInvoice", json=[{"client_id": 1, "lines": [{"description": "nope"}]}])
        assert r.status_code == 400 and "[0].lines[0].description" in r.json()
    lax = make_app(strict=False)
    async with connect(lax) as c:
        r = await c.post("/api/ClientContract", json=[{"client_id": 1, "ref": "X", "notes": "plural"}])
        assert r.status_code == 201


# ----------------------------------------------------------------------------- recurring invoices


async def test_recurring_invoices_have_negative_ids_and_lines_only_on_request(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        rows = (await c.get("/api/RecurringInvoice")).json()["invoices"]
        assert rows and all(r["id"] < 0 for r in rows)
        assert all("lines" not in r for r in rows)
        cid, hid = next((c_, h) for c_, h in book.recurring_invoice_ids.items()
                        if book.headers_by_contract[c_] == [h])  # a contract whose lines share one frequency
        mine = (await c.get("/api/RecurringInvoice", params={"contract_id": cid, "includelines": "true"})).json()
        assert [r["id"] for r in mine["invoices"]] == [hid]
        lines = mine["invoices"][0]["lines"]
        assert lines and all(line["ihid"] == hid for line in lines)
        total = sum(Decimal(str(x["qty_order"])) * Decimal(str(x["unit_price"])) for x in lines)
        assert Decimal(str(mine["invoices"][0]["total"])) == total
        one = (await c.get(f"/api/RecurringInvoice/{hid}")).json()
        assert one["id"] == hid and one["contract_id"] == cid and len(one["lines"]) == len(lines)
        quarterly = set(book.quarterly_line_ids)
        every = (await c.get("/api/RecurringInvoice", params={"includelines": "true"})).json()["invoices"]
        all_lines = [x for r in every for x in r["lines"]]
        # lines carry no billingperiod (2026 shapes): a quarterly line sits on a quarterly header
        assert all("billingperiod" not in x for x in all_lines)
        assert {x["id"] for r in every if r["period"] == 2 for x in r["lines"]} >= quarterly
        codes = {x["item_code"] for x in all_lines}
        assert {"MW-STD", "MS-STD", "M365-BP", "BKP-TB"} <= codes


async def test_recurring_lines_add_update_replace_delete(fresh):
    async with connect(fresh) as c:
        r = await c.post(
            "/api/RecurringInvoice",
            json=[
                {
                    "client_id": 2,
                    "lines": [
                        {
                            "item_code": "MW-STD",
                            "item_shortdescription": "Managed Workstation",
                            "qty_order": 10,
                            "unit_price": 45,
                        }
                    ],
                }
            ],
        )
        assert r.status_code == 201
        header = r.json()
        hid = header["id"]
        assert hid < 0 and len(header["lines"]) == 1 and header["total"] == 450
        r = await c.post(
            "/api/RecurringInvoice/Lines",
            json=[
                {
                    "ihid": hid,
                    "item_code": "BKP-TB",
                    "item_shortdescription": "Backup",
                    "qty_order": 2,
                    "unit_price": 95,
                    "startdate": "2026-12-01",
                }
            ],
        )
        assert r.status_code == 201
        added = r.json()
        assert isinstance(added, list) and added[0]["ihid"] == hid and added[0]["startdate"] == "2026-12-01T00:00:00"
        line_id = added[0]["id"]
        r = await c.post("/api/RecurringInvoice/updatelines", json=[{"id": line_id, "qty_order": 3}])
        assert r.status_code == 201 and r.json()[0]["qty_order"] == 3
        one = (await c.get(f"/api/RecurringInvoice/{hid}")).json()
        changed = next(x for x in one["lines"] if x["id"] == line_id)
        assert changed["unit_price"] == 95 and changed["item_code"] == "BKP-TB" and "billingperiod" not in changed
        # the 2026 document's lines have no billingperiod: strict mode refuses it
        refused = await c.post("/api/RecurringInvoice/Lines", json=[{"ihid": hid, "billingperiod": 2}])
        assert refused.status_code == 400 and "[0].billingperiod" in refused.json()
        assert one["total"] == 450 + 285
        assert (
            await c.post("/api/RecurringInvoice/updatelines", json=[{"id": 999999, "qty_order": 1}])
        ).status_code == 404
        missing = await c.post("/api/RecurringInvoice/updatelines", json=[{"qty_order": 1}])
        assert missing.status_code == 400 and "[0].id" in missing.json()
        no_header = await c.post("/api/RecurringInvoice/Lines", json=[{"qty_order": 1}])
        assert no_header.status_code == 400 and "[0].ihid" in no_header.json()
        wrong = await c.post("/api/RecurringInvoice/Lines", json=[{"ihid": -99999, "qty_order": 1}])
        assert wrong.status_code == 400 and "[0].ihid" in wrong.json()
        # posting lines on the header replaces the array wholesale
        r = await c.post(
            "/api/RecurringInvoice",
            json=[
                {
                    "id": hid,
                    "lines": [
                        {"item_code": "M365-BP", "item_shortdescription": "M365", "qty_order": 5, "unit_price": 22}
                    ],
                }
            ],
        )
        assert [x["item_code"] for x in r.json()["lines"]] == ["M365-BP"]
        assert (await c.delete(f"/api/RecurringInvoice/{hid}")).status_code == 200
        assert (await c.get(f"/api/RecurringInvoice/{hid}")).status_code == 404


# ----------------------------------------------------------------------------- invoices, time, tickets


async def test_invoices_filters_lines_credits_and_mixed(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        plain = (await c.get("/api/Invoice", params={"count": 3})).json()["invoices"]
        assert all("lines" not in i for i in plain)
        mixed = book.mixed_invoice_ids[0]
        inv = (await c.get(f"/api/Invoice/{mixed}")).json()
        contracts = {line["contract_id"] for line in inv["lines"]}
        assert len(contracts) == 2
        for cid in contracts:
            rows = (await c.get("/api/Invoice", params={"contract_id": cid, "includelines": "true"})).json()
            assert mixed in {r["id"] for r in rows["invoices"]}
        credited, credit = book.credit_notes[0]
        note = (await c.get(f"/api/Invoice/{credit}")).json()
        original = (await c.get(f"/api/Invoice/{credited}")).json()
        assert note["total"] == -original["total"] < 0
        assert note["creditlinkedtoinvoiceid"] == credited
        no_credits = (await c.get("/api/Invoice", params={"includecredits": "false"})).json()["invoices"]
        assert credit not in {r["id"] for r in no_credits}
        client = original["client_id"]
        theirs = (await c.get("/api/Invoice", params={"client_id": client})).json()["invoices"]
        assert {r["client_id"] for r in theirs} == {client}
        for key in ("invoice_date", "period_start_date", "period_end_date"):
            assert TS.match(original[key])


async def test_actions_time_entries_and_dates(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        everything = (await c.get("/api/Actions")).json()
        window = (
            await c.get(
                "/api/Actions", params={"timeentriesonly": "true", "startdate": "2026-10-01", "enddate": "2026-10-31"}
            )
        ).json()
        assert 0 < window["record_count"] < everything["record_count"]
        assert all("2026-10-01" <= a["datetime"][:10] <= "2026-10-31" for a in window["actions"])
        by_id = {a["id"]: a for a in everything["actions"]}
        for aid in book.unbilled_action_ids:
            assert by_id[aid]["actisbillable"] is True and not by_id[aid]["actioninvoicenumber"]
        for aid in book.invoiced_action_ids:
            assert by_id[aid]["actioninvoicenumber"].startswith("INV-")
        cid, amount = next(iter(book.unbilled_amount.items()))
        money = sum(
            Decimal(str(by_id[a]["actionchargeamount"]))
            for a in book.unbilled_action_ids
            if by_id[a]["actioncontractid"] == cid
        )
        assert money == amount
        ticket = everything["actions"][0]["ticket_id"]
        mine = (await c.get("/api/Actions", params={"ticket_id": ticket})).json()["actions"]
        assert mine and {a["ticket_id"] for a in mine} == {ticket}
        assert len((await c.get("/api/Actions", params={"count": 2})).json()["actions"]) == 2
        one = (await c.get(f"/api/Actions/{ticket and everything['actions'][0]['id']}")).json()
        assert one["id"] == everything["actions"][0]["id"]


async def test_tickets_for_contract_performance(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        rows = (await c.get("/api/Tickets")).json()["tickets"]
        assert {"I", "O"} <= {t["slastate"] for t in rows}
        assert {t["id"] for t in rows if t["slastate"] == "O"} == set(book.breached_ticket_ids)
        t = rows[0]
        assert {"contract_id", "sla_id", "slastate", "timetaken", "dateoccurred", "dateclosed"} <= set(t)
        cid = t["contract_id"]
        mine = (await c.get("/api/Tickets", params={"contract_id": cid})).json()["tickets"]
        assert {x["contract_id"] for x in mine} == {cid}
        since = (await c.get("/api/Tickets", params={"startdate": "2026-10-01", "enddate": "2026-10-31"})).json()
        assert all("2026-10" in x["dateoccurred"] for x in since["tickets"])
        paged = (await c.get("/api/Tickets", params={"pageinate": "true", "page_size": 10, "page_no": 2})).json()
        assert paged["page_no"] == 2 and len(paged["tickets"]) == 10
        assert (await c.get(f"/api/Tickets/{t['id']}")).json()["id"] == t["id"]


async def test_ticket_datesearch_takes_the_documented_column_names(app):
    """The slice documents datesearch by Halo's column names: Date Opened 'dateoccured' (Halo's
    spelling), Date Closed 'datecleared'. Anything else is a 400, never silently date opened."""
    window = {"startdate": "2026-10-01", "enddate": "2026-10-31"}
    async with connect(app) as c:

        async def ids(**params):
            r = await c.get("/api/Tickets", params={**window, **params})
            assert r.status_code == 200, r.text
            return r.json()["tickets"]

        default = await ids()
        opened = await ids(datesearch="dateoccured")
        assert opened and [t["id"] for t in opened] == [t["id"] for t in default]
        assert all(t["dateoccurred"].startswith("2026-10") for t in opened)
        closed = await ids(datesearch="datecleared")
        assert closed and all((t["dateclosed"] or "").startswith("2026-10") for t in closed)
        assert [t["id"] for t in await ids(datesearch="DateCleared")] == [t["id"] for t in closed]
        for bad in ("dateoccurred", "dateclosed", "lastupdate"):
            r = await c.get("/api/Tickets", params={**window, "datesearch": bad})
            assert r.status_code == 400, bad
            body = r.json()
            assert set(body) == {"datesearch"} and isinstance(body["datesearch"], list)
            assert bad in body["datesearch"][0] and "dateoccured, datecleared" in body["datesearch"][0]


async def test_client_list_and_detail(app):
    book = app.state.sandbox.book
    async with connect(app) as c:
        active = (await c.get("/api/Client")).json()
        assert active["record_count"] == len(book.client_ids) - len(book.inactive_client_ids)
        every = (await c.get("/api/Client", params={"includeinactive": "true"})).json()
        assert every["record_count"] == len(book.client_ids)
        acme = (await c.get("/api/Client", params={"search": "acme", "includeinactive": "true"})).json()["clients"]
        assert {x["name"] for x in acme} == {"Acme Corp Ltd", "Acme Corporation (Old Account)"}
        assert (await c.get("/api/Client/1")).json()["name"] == "Acme Corp Ltd"
        assert (await c.get("/api/Client/9999")).status_code == 404


# ----------------------------------------------------------------------------- prepay ledger, licences


async def test_prepay_ledger_rows_feed_the_contract_totals():
    app = make_app(strict=False)  # the slice's PrepayHistory has no contract_id (see docs/sandbox.md)
    book = app.state.sandbox.book
    cid = book.prepaid["low"][0]
    async with connect(app) as c:
        before = (await c.get(f"/api/ClientContract/{cid}", params={"includedetails": "true"})).json()
        r = await c.post(
            "/api/ClientPrepay",
            json=[{"contract_id": cid, "hours": 10, "amount": 1250, "date": "2026-11-20", "description": "Top-up"}],
        )
        assert r.status_code == 201 and r.json()["client_id"] == before["client_id"]
        after = (await c.get(f"/api/ClientContract/{cid}", params={"includedetails": "true"})).json()
        assert after["contract_prepaytotal"] == before["contract_prepaytotal"] + 10
        assert after["contract_prepaybalance"] == before["contract_prepaybalance"] + 10
        rows = (await c.get("/api/ClientPrepay", params={"contract_id": cid})).json()["prepayhistory"]
        assert r.json()["id"] in {x["id"] for x in rows}
        # the filter is honoured from the stored row, but the answer has no contract_id (Halo's schema)
        stored = {x["id"] for x in app.state.sandbox.store.where("prepay", "contract_id = ?", [cid])}
        assert {x["id"] for x in rows} == stored
        assert "contract_id" not in r.json() and all("contract_id" not in x for x in rows)
        assert (await c.delete(f"/api/ClientPrepay/{r.json()['id']}")).status_code == 200
    strict = make_app()
    async with connect(strict) as c:
        r = await c.post("/api/ClientPrepay", json=[{"contract_id": cid, "hours": 1}])
        assert r.status_code == 400 and "[0].contract_id" in r.json()
        ok = await c.post("/api/ClientPrepay", json=[{"client_id": 1, "hours": 1}])
        assert ok.status_code == 201


async def test_prepay_ledger_rows_answer_only_prepayhistory_properties(app):
    """Halo's PrepayHistory has no contract_id: list, single read and the contract detail's
    contract_prepayhistory answer only the schema's properties."""
    props = set(app.state.sandbox.spec.properties("PrepayHistory"))
    assert "contract_id" not in props
    cid = app.state.sandbox.book.prepaid["expired"][0]
    async with connect(app) as c:
        every = (await c.get("/api/ClientPrepay")).json()["prepayhistory"]
        own = (await c.get("/api/ClientPrepay", params={"contract_id": cid})).json()["prepayhistory"]
        one = (await c.get(f"/api/ClientPrepay/{own[0]['id']}")).json()
        detail = (await c.get(f"/api/ClientContract/{cid}", params={"includedetails": "true"})).json()
    assert every and own and detail["contract_prepayhistory"]
    for row in [*every, *own, one, *detail["contract_prepayhistory"]]:
        assert set(row) <= props, set(row) - props
    assert len(own) < len(every)
    assert {x["id"] for x in own} == {x["id"] for x in detail["contract_prepayhistory"]}


async def test_software_licences_crud_for_licence_sync(fresh):
    book = fresh.state.sandbox.book
    async with connect(fresh) as c:
        listed = (await c.get("/api/SoftwareLicence")).json()
        assert set(book.inactive_licence_ids).isdisjoint(x["id"] for x in listed["licences"])
        every = (await c.get("/api/SoftwareLicence", params={"includeinactive": "true"})).json()
        assert every["record_count"] == len(book.licence_ids)
        row = listed["licences"][0]
        assert {"product_sku", "count", "price", "billing_cycle", "term_duration", "client_id"} <= set(row)
        r = await c.post(
            "/api/SoftwareLicence",
            json=[
                {
                    "client_id": 3,
                    "name": "Microsoft 365 E3",
                    "product_sku": "CFQ7TTC0LFLX:0001",
                    "count": 12,
                    "price": 36.0,
                    "billing_cycle": "Monthly",
                    "term_duration": "P1Y",
                }
            ],
        )
        assert r.status_code == 201
        lid = r.json()["id"]
        r = await c.post("/api/SoftwareLicence", json=[{"id": lid, "count": 15}])
        assert r.json()["count"] == 15 and r.json()["product_sku"] == "CFQ7TTC0LFLX:0001"
        found = (await c.get("/api/SoftwareLicence", params={"client_id": 3, "search": "LFLX"})).json()
        assert [x["id"] for x in found["licences"]] == [lid]
        bad = await c.post("/api/SoftwareLicence", json=[{"client_id": 3, "count": "twelve"}])
        assert bad.status_code == 400 and {"[0].count", "[0].name"} <= set(bad.json())
        assert (await c.delete(f"/api/SoftwareLicence/{lid}")).status_code == 200
        assert (await c.get(f"/api/SoftwareLicence/{lid}")).status_code == 404


async def test_invoices_created_with_lines_then_lines_added_until_posted(fresh):
    sb = fresh.state.sandbox
    line = {"item_code": "AZURE-PLAN", "item_shortdescription": "Azure", "qty_order": 1.0, "unit_price": 92.12,
            "unit_cost": 80.1, "startdate": "2026-02-01T00:00:00", "enddate": "2026-02-28T00:00:00"}
    async with connect(fresh) as c:
        r = await c.post("/api/Invoice", json=[{"client_id": 2, "invoice_date": "2026-03-01T00:00:00",
                                                "lines": [line]}])
        assert r.status_code == 201
        inv = r.json()
        assert inv["posted"] is False and inv["total"] == 92.12 and inv["invoicenumber"]
        assert [x["item_code"] for x in inv["lines"]] == ["AZURE-PLAN"] and inv["lines"][0]["ihid"] == inv["id"]
        # add_lines adds beside the lines it has
        r = await c.post("/api/Invoice", json=[{"id": inv["id"], "add_lines": [{**line, "item_code": "SETUP"}]}])
        assert r.status_code == 201 and sorted(x["item_code"] for x in r.json()["lines"]) == ["AZURE-PLAN", "SETUP"]
        assert r.json()["total"] == 184.24
        opened = (await c.get("/api/Invoice", params={"notpostedonly": "true", "client_id": 2})).json()
        assert [x["id"] for x in opened["invoices"]] == [inv["id"]]
        # a posted invoice takes no new lines and leaves the open list
        sb.store.put("invoices", {**sb.store.get("invoices", inv["id"]), "posted": True})
        r = await c.post("/api/Invoice", json=[{"id": inv["id"], "add_lines": [line]}])
        assert r.status_code == 400 and "posted" in r.json()["[0].id"][0]
        opened = (await c.get("/api/Invoice", params={"notpostedonly": "true", "client_id": 2})).json()
        assert opened["invoices"] == []
        bad = await c.post("/api/Invoice", json=[{"client_id": 99999, "lines": []}])
        assert bad.status_code == 400 and "[0].client_id" in bad.json()


async def test_unknown_route_and_method(app):
    async with connect(app) as c:
        assert (await c.get("/api/Nope")).status_code == 404
        assert (await c.post("/api/Invoice/123", json=[])).status_code in (404, 405)
        assert (await c.delete("/api/Client")).status_code == 405


def test_the_sandbox_imports_nothing_else_of_the_package():
    import ast
    from pathlib import Path

    import halo_contracts.sandbox as sandbox

    for path in Path(sandbox.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name} reaches outside the sandbox"
                assert not (node.module or "").startswith("halo_contracts"), f"{path.name}: {node.module}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("halo_contracts") for a in node.names), path.name
