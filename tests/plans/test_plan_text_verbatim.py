"""Text is data: no name, note or description changes what a plan writes.

A step needs the id an earlier step creates through a structural reference (``Step.refs``),
never through a string pattern. These tests send text that looks like the old ``$step:N.field``
strings from every source (a feed, a person, Halo itself) and check that Halo receives it as it
was written, that the plan applies, and that applying again is clean."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
SETTINGS = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                rate_limit="1000000/1")


def make(tmp_path, tools: str):
    app = create_app(SandboxConfig(rate_limit=1_000_000, today=TODAY, seed=7))
    server = build_server(load_settings(**SETTINGS, tools=tools), transport=transport(app),
                          journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    return app.state.sandbox, server


async def call(client: Client, name: str, args: dict) -> dict:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content or json.loads(result.content[0].text)


def posts(sb, path: str) -> list:
    return [e for e in sb.log if e.method == "POST" and e.path.lower() == path.lower()]


def steps_of(plan_result: dict) -> list[dict]:
    plan = plan_result.get("plan") or plan_result
    return plan["steps"]


async def apply_twice(client: Client, sb, plan_id: str) -> list:
    """apply_plan, then apply_plan again: the second sends nothing and says so. The writes of
    the first."""
    sb.log.clear()
    first = await call(client, "apply_plan", {"plan_id": plan_id})
    assert first["status"] == "applied", first["message"]
    writes = [e for e in sb.log if e.method != "GET"]
    sb.log.clear()
    again = await client.call_tool("apply_plan", {"plan_id": plan_id})
    assert not again.is_error, again.content[0].text
    assert again.structured_content["already_applied"]
    assert [e for e in sb.log if e.method != "GET"] == []
    return writes


# ---- a) and b): licence feed product names -----------------------------------------------------


@pytest.mark.parametrize("name", ["$step:0.product_code", "$step:0.id"])
async def test_feed_product_name_is_sent_verbatim(tmp_path, name):
    sb, server = make(tmp_path, "license-sync,plans")
    client_name = sb.store.get("clients", 1)["name"]
    feed = [{"customer": client_name, "product_code": "RT-SKU-X", "product_name": "First", "quantity": 2,
             "unit_price": 3},
            {"customer": client_name, "product_code": "RT-SKU-Y", "product_name": name, "quantity": 1,
             "unit_price": 4}]
    async with Client(server) as client:
        planned = await call(client, "plan_license_sync", {"source": feed, "cleanup": False, "distributor": "Pax8"})
        previews = [s["request"]["body"][0] for s in steps_of(await call(client, "get_plan",
                                                                      {"plan_id": planned["plan_id"],
                                                                       "detail": "full"}))]
        assert {"RT-SKU-Y": name}.items() <= {b["product_sku"]: b["name"] for b in previews}.items()
        await apply_twice(client, sb, planned["plan_id"])
    [sent] = [e.body[0] for e in sb.log_all if e.method == "POST" and e.body and e.body[0].get("product_sku")
              == "RT-SKU-Y"] if hasattr(sb, "log_all") else [None]
    del sent
    stored = [x for x in sb.store.where("licences") if x.get("product_sku") == "RT-SKU-Y"]
    assert [x["name"] for x in stored] == [name]


# ---- c): a recurring line in Halo ------------------------------------------------------------


async def test_recurring_line_description_from_halo_is_copied_verbatim(tmp_path):
    sb, server = make(tmp_path, "renewals,plans")
    docs = sb.store.where("contracts")
    renewed = {c["previouscontract"] for c in docs if c.get("previouscontract")}
    cid, line = next((c["id"], x) for c in docs if c.get("status") == 1 and c.get("end_date")
                     and c["id"] not in renewed
                     for x in sb.store.where("rlines", "contract_id = ?", [c["id"]])
                     if not x.get("isinactive") and x.get("enddate") is None)
    sb.store.put("rlines", {**line, "item_shortdescription": "$step:1.id"})
    async with Client(server) as client:
        planned = await call(client, "generate_renewals", {"contract_ids": [cid], "uplift_percent": 0,
                                                           "copy_recurring_items": True, "dry_run": True})
        shown = await call(client, "get_plan", {"plan_id": planned["plan_id"], "detail": "full"})
        sent_lines = [s for s in steps_of(shown) if s["kind"] == "add_recurring_lines"]
        assert "$step:1.id" in [b["item_shortdescription"] for b in sent_lines[0]["request"]["body"]]
        writes = await apply_twice(client, sb, planned["plan_id"])
    assert "$step:1.id" in [b.get("item_shortdescription") for e in writes for b in e.body or []]
    [new] = sb.store.where("contracts", "previouscontract = ?", [cid])
    headers = sb.store.where("rinvoices", "contract_id = ?", [new["id"]])  # one per billing frequency
    descriptions = [x["item_shortdescription"] for h in headers
                    for x in sb.store.where("rlines", "ihid = ?", [h["id"]])]
    assert "$step:1.id" in descriptions


# ---- d): notes from a person -------------------------------------------------------------------


async def test_contract_notes_from_a_person_are_stored_verbatim(tmp_path):
    sb, server = make(tmp_path, "contracts,plans")
    async with Client(server) as client:
        args = {"client_id": 1, "ref": "Verbatim notes 2027", "type": "Recurring", "start_date": "2027-01-01",
                "end_date": "2027-12-31", "billing_frequency": "Monthly", "value": 10, "notes": "$step:0.id",
                "dry_run": True}
        planned = await call(client, "create_contract", args)
        [step] = steps_of(await call(client, "get_plan", {"plan_id": planned["plan_id"], "detail": "full"}))
        assert step["request"]["body"][0]["note"] == "$step:0.id"
        writes = await apply_twice(client, sb, planned["plan_id"])
    assert [e.body[0]["note"] for e in writes] == ["$step:0.id"]
    [stored] = [c for c in sb.store.where("contracts") if c.get("ref") == "Verbatim notes 2027"]
    assert stored["note"] == "$step:0.id"


# ---- property: any text round-trips verbatim to the wire ----------------------------------------

_TEXT = st.one_of(
    st.from_regex(r"\$step:[0-9]{1,3}\.(id|ids|product_code|contract_id|ref)", fullmatch=True),
    # tools trim the ends of a ref (a rule of their own, not of plans): text is kept whole inside
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=40)
    .filter(lambda s: s.strip() == s),
)


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=_TEXT, ref_suffix=_TEXT)
def test_any_text_reaches_the_wire_as_written(tmp_path_factory, description, ref_suffix):
    """A new contract's first line (two steps that refer to each other by id): the previewed
    bodies equal the bodies sent, byte for byte, except for the placeholder ids in refs."""
    import anyio

    async def run() -> None:
        tmp = tmp_path_factory.mktemp("prop")
        sb, server = make(tmp, "contracts,recurring,plans")
        async with Client(server) as client:
            ref = f"P {ref_suffix}"
            created = await call(client, "create_contract", {
                "client_id": 1, "ref": ref, "type": "Recurring", "start_date": "2027-01-01",
                "end_date": "2027-12-31", "billing_frequency": "Monthly", "value": 10, "notes": description})
            cid = created["contract_id"]
            planned = await call(client, "add_recurring_items", {
                "contract_id": cid, "dry_run": True, "detail": "full",
                "items": [{"description": description, "quantity": 1, "unit_price": 2, "start_date": "2027-01-01"}]})
            steps = steps_of(planned)
            sb.log.clear()
            applied = await call(client, "apply_plan", {"plan_id": planned["plan_id"]})
            assert applied["status"] == "applied", applied["message"]
            ri_id = applied["created"]["recurring_invoice"][0]
            sent = {e.path: e.body for e in sb.log if e.method == "POST"}
            assert sent["/api/RecurringInvoice"] == steps[0]["request"]["body"]
            assert steps[0]["request"]["body"][0]["contract_ref"] == ref
            want = [{**b, "ihid": ri_id} if b["ihid"] == int(next(iter(steps[1]["refs"]))) else b
                    for b in steps[1]["request"]["body"]]
            assert sent["/api/RecurringInvoice/Lines"] == want
            assert want[0]["item_shortdescription"] == description
        [stored] = [c for c in sb.store.where("contracts") if c["id"] == cid]
        assert stored["note"] == description and stored["ref"] == ref

    anyio.run(run)
