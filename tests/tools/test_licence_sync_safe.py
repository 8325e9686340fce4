"""Licence sync made safe, end to end (MCP client -> server -> sandbox): a required
distributor, list_licences, product mapping (explicit, remembered), likely code mismatches
held back, and a first sync that plans no cleanup deletes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.pacing import Backoff
from halo_contracts.plans.executor import apply_plan
from halo_contracts.plans.journal import Journal
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

FAST = Backoff(rate_base=0.001, rate_cap=0.004, rate_attempts=3, read_retries=1, retry_base=0.001, retry_cap=0.002)


def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         rate_limit="1000000/1", tools="license-sync,plans")


@pytest.fixture
def sandbox_app():
    return create_app(SandboxConfig(rate_limit=1_000_000))


@pytest.fixture
def sb(sandbox_app):
    return sandbox_app.state.sandbox


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "j.sqlite3"


@pytest.fixture
def server(sandbox_app, journal_path):
    return build_server(settings(), transport=transport(sandbox_app), journal_path=journal_path)


async def call(server, tool: str, **args: Any) -> dict[str, Any]:
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def call_error(server, tool: str, **args: Any) -> str:
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    return result.content[0].text


async def apply(sandbox_app, journal_path: Path, plan_id: str):
    journal = Journal(journal_path)
    try:
        async with HaloClient(settings(), transport=transport(sandbox_app), backoff=FAST) as halo:
            return await apply_plan(plan_id, journal=journal, halo=halo)
    finally:
        journal.close()


def active_licences(sb, client_id: int) -> list[dict]:
    return [x for x in sb.store.where("licences") if x["client_id"] == client_id and x.get("is_active", True)]


def pax8_feed(sb, client_id: int = 1) -> tuple[str, dict[str, str]]:
    """A Pax8-style export for one client: the same products and seats as Halo holds, under the
    distributor's own SKUs and longer names, plus one new product. Returns the CSV and the
    mapping feed SKU -> Halo code."""
    rows = ["Company,SKU,Product,Qty,Unit Price,Billing Cycle"]
    mapping: dict[str, str] = {}
    for n, x in enumerate(active_licences(sb, client_id)):
        sku = f"PX8-{n:03d}"
        mapping[sku] = x["product_sku"]
        rows.append(f"Acme Corp Ltd,{sku},{x['name']} (NCE Monthly),{x['count']},{x['price']},Monthly")
    rows.append("Acme Corp Ltd,PX8-NEW,Brand New Backup,3,5.00,Monthly")
    return "\n".join(rows) + "\n", mapping


async def test_distributor_is_required(server, sb) -> None:
    sb.log.clear()
    text = await call_error(server, "plan_license_sync", source="customer,sku,qty\nAcme Corp Ltd,X,1\n")
    assert "distributor" in text
    assert sb.log.count(path_prefix="/api") == 0


async def test_list_licences_per_client_all_clients_paged_and_filtered(server, sb) -> None:
    acme = await call(server, "list_licences", client_id=1)
    held = active_licences(sb, 1)
    assert acme["total"] == len(held) and {r["product_code"] for r in acme["licences"]} == \
        {x["product_sku"] for x in held}
    row = acme["licences"][0]
    assert set(row) >= {"product_code", "name", "seats", "unit_price", "billing_cycle", "distributor", "active"}
    assert all(r["client_id"] == 1 and r["active"] for r in acme["licences"])

    every = [x for x in sb.store.where("licences") if x.get("is_active", True)]
    first = await call(server, "list_licences", limit=5)
    assert first["total"] == len(every) and first["count"] == 5 and first["next_cursor"]
    seen = [r["licence_id"] for r in first["licences"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await call(server, "list_licences", limit=5, cursor=cursor)
        seen += [r["licence_id"] for r in page["licences"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(x["id"] for x in every)

    with_inactive = await call(server, "list_licences", include_inactive=True, limit=200)
    assert any(not r["active"] for r in with_inactive["licences"])
    assert (await call(server, "list_licences", distributor="PAX8", limit=1))["total"] == len(every)
    assert (await call(server, "list_licences", distributor="Ingram"))["total"] == 0
    text = await call_error(server, "list_licences", cursor=first["next_cursor"], client_id=1)
    assert "Invalid 'cursor'" in text


async def test_first_sync_with_mismatched_codes_plans_no_deletes(server, sb) -> None:
    feed, mapping = pax8_feed(sb)
    before = {x["id"]: x["count"] for x in active_licences(sb, 1)}
    sb.log.clear()
    out = await call(server, "plan_license_sync", source=feed, distributor="Pax8")
    assert out["first_sync"] is True
    assert not [a for a in out["actions"] if a["kind"] == "delete"]
    # the only create is the product Halo really lacks
    assert [(a["kind"], a["product_code"]) for a in out["actions"]] == [("create", "PX8-NEW")]
    held = {m["feed_code"]: m for m in out["likely_code_mismatches"]}
    assert {k: m["halo_code"] for k, m in held.items()} == mapping
    assert all(m["suggested_mapping"] == {k: mapping[k]} for k, m in held.items())
    assert "product_mappings" in out["next_step"]
    (money,) = out["summary"]["money"]
    assert float(money["monthly_change"]) == 15.0  # only the new product's 3 x 5.00
    assert sb.log.count(method="POST", path_prefix="/api") == 0

    # cleanup on a first sync is only listed, and says how to turn it on
    header, *rows = feed.strip().split("\n")
    only_one = header + "\n" + next(r for r in rows if r.startswith("Acme Corp Ltd,PX8-000,"))
    kept = next(x["id"] for x in active_licences(sb, 1) if x["product_sku"] == mapping["PX8-000"])
    out = await call(server, "plan_license_sync", source=only_one + "\n", distributor="Pax8",
                     product_mappings={"PX8-000": mapping["PX8-000"]}, remember_mappings=False)
    assert not [a for a in out["actions"] if a["kind"] == "delete"]
    assert {a["licence_id"] for a in out["would_delete"]} == set(before) - {kept}
    assert all(a["halo_name"] for a in out["would_delete"])
    assert "cleanup_first_sync=true" in out["next_step"]
    forced = await call(server, "plan_license_sync", source=only_one + "\n", distributor="Pax8",
                        product_mappings={"PX8-000": mapping["PX8-000"]}, remember_mappings=False,
                        cleanup_first_sync=True)
    assert {a["licence_id"] for a in forced["actions"] if a["kind"] == "delete"} == \
        {a["licence_id"] for a in out["would_delete"]}


async def test_product_mappings_are_used_remembered_and_a_rerun_plans_nothing(server, sandbox_app, sb,
                                                                              journal_path) -> None:
    feed, mapping = pax8_feed(sb)
    out = await call(server, "plan_license_sync", source=feed, distributor="Pax8", product_mappings=mapping)
    assert not out["likely_code_mismatches"] and not [a for a in out["actions"] if a["kind"] == "delete"]
    assert [(a["kind"], a["product_code"]) for a in out["actions"]] == [("create", "PX8-NEW")]
    assert {(u["feed_code"], u["halo_code"], u["method"]) for u in out["product_mappings_used"]} == \
        {(k, v, "explicit") for k, v in mapping.items()}
    assert all(f"product {k} -> {v}" in out["remembered_mappings"] for k, v in mapping.items())
    assert (await apply(sandbox_app, journal_path, out["plan_id"])).ok

    # next month: more seats on one product, no mapping given -> the remembered one is used
    first_sku = next(iter(mapping))
    halo_lic = next(x for x in active_licences(sb, 1) if x["product_sku"] == mapping[first_sku])
    more = feed.replace(f"{first_sku},{halo_lic['name']} (NCE Monthly),{halo_lic['count']},",
                        f"{first_sku},{halo_lic['name']} (NCE Monthly),{halo_lic['count'] + 2},")
    assert more != feed
    nxt = await call(server, "plan_license_sync", source=more, distributor="Pax8")
    assert nxt["first_sync"] is False
    (action,) = nxt["actions"]
    assert (action["kind"], action["licence_id"], action["product_code"], action["feed_code"]) == \
        ("update", halo_lic["id"], mapping[first_sku], first_sku)
    assert action["halo_name"] == halo_lic["name"] and action["feed_name"] == f"{halo_lic['name']} (NCE Monthly)"
    assert {u["method"] for u in nxt["product_mappings_used"]} == {"remembered"}
    journal = Journal(journal_path)
    try:
        (step,) = journal.get_plan(nxt["plan_id"]).steps
    finally:
        journal.close()
    assert step.params["product"] == {"code": mapping[first_sku], "halo_name": halo_lic["name"],
                                      "feed_name": f"{halo_lic['name']} (NCE Monthly)", "feed_code": first_sku}
    assert "halo_name" not in str(step.request) and "feed_name" not in str(step.request)  # not sent
    # the same feed again after applying the mapped month: nothing to do
    assert (await apply(sandbox_app, journal_path, nxt["plan_id"])).ok
    again = await call(server, "plan_license_sync", source=more, distributor="Pax8")
    assert again["steps"] == 0 and not again["likely_code_mismatches"]


async def test_bad_product_mappings_are_refused_before_reading_halo(server, sb) -> None:
    sb.log.clear()
    text = await call_error(server, "plan_license_sync", source="customer,sku,qty\nAcme Corp Ltd,X,1\n",
                            distributor="Pax8", product_mappings={" ": "M365"})
    assert "Invalid 'product_mappings'" in text and "Nothing was sent to Halo" in text
    assert sb.log.count(path_prefix="/api") == 0


async def test_a_whole_book_first_sync_under_new_codes_stays_within_the_result_budget(server, sb) -> None:
    """Every client's licences under the distributor's own SKUs, each client with one product that
    only keeps its Halo code, plus customers Halo lacks: mismatches, first-sync cleanup and
    unmatched customers all at once, the answer still fits the 25,000-byte budget (rows capped,
    totals whole; the plan keeps every step)."""
    names = {c["id"]: c["name"] for c in sb.store.where("clients")}
    licences = [x for x in sb.store.where("licences") if x.get("is_active", True)]
    rows = [{"customer": names[x["client_id"]], "product_code": x["product_sku"] if n % 3 == 0 else f"PX8-{n:03d}",
             "product_name": f"{x['name']} (NCE)", "quantity": x["count"] + 1, "unit_price": float(x["price"]),
             "billing_cycle": "Monthly"} for n, x in enumerate(licences)]
    rows += [{"customer": f"Unknown Customer {k} Pty", "product_code": f"PX8-U{k}", "quantity": 2} for k in range(30)]
    async with Client(server) as client:
        result = await client.call_tool("plan_license_sync", {"source": rows, "distributor": "Pax8"})
        assert not result.is_error, result.content[0].text
        view = await client.call_tool("get_plan", {"plan_id": result.structured_content["plan_id"]})
    assert not view.is_error and len(view.content[0].text.encode()) <= 1_500, view.content[0].text
    out = result.structured_content
    size = len(json.dumps(out, separators=(",", ":"))) + len(result.content[0].text)
    assert size <= 25_000, size
    assert out["skipped_total"] + out["actions_total"] + out["likely_code_mismatches_total"] > 25
    assert len(result.content[0].text.encode()) <= 1_500
