"""Long lists page with a cursor (`cursor` in, `next_cursor` out), big reports lead with totals
and the rows with the most money, and plan previews are one line per step unless detail='full'."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

TODAY = date(2026, 11, 20)
MONTH = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(tmp_path):
    app = create_app(SandboxConfig(seed=7, today=TODAY, rate_limit=10**9, rate_window=1.0))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000000/1", read_only=False, tools=None, disabled_tools=None)
    server = build_server(settings, transport(app), journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    async with Client(server) as c:
        c.sandbox = app.state.sandbox
        yield c


async def call(client, tool: str, args: dict) -> dict:
    r = await client.call_tool(tool, args)
    assert not r.is_error, r.content[0].text
    return r.structured_content


async def every_page(client, tool: str, args: dict, key: str) -> list[dict]:
    rows, page = [], await call(client, tool, args)
    while True:
        rows += page[key]
        if not page["next_cursor"]:
            return rows
        page = await call(client, tool, {**args, "cursor": page["next_cursor"]})


async def test_reconciliation_pages_brief_rows_by_money_at_stake(client):
    whole = await call(client, "reconcile_billing", {**MONTH, "detail": "full", "limit": 1000})
    first = await call(client, "reconcile_billing", {**MONTH, "limit": 4})
    assert first["totals"] == whole["totals"] and len(first["contracts"]) == 4 and first["next_cursor"]
    assert all(isinstance(r["findings"], dict) for r in first["contracts"])  # kind -> money, not the evidence
    rows = await every_page(client, "reconcile_billing", {**MONTH, "limit": 4}, "contracts")
    assert [r["contract_id"] for r in rows] == [r["contract_id"] for r in whole["contracts"]]
    stakes = [Decimal(r["owed_to_client"]) + Decimal(r["to_collect"]) for r in rows]
    assert stakes == sorted(stakes, reverse=True)
    for brief, full in zip(rows, whole["contracts"], strict=True):
        per_kind: dict[str, Decimal] = {}
        for f in full["findings"]:
            per_kind[f["kind"]] = per_kind.get(f["kind"], Decimal(0)) + Decimal(f["amount"])
        assert {k: Decimal(v) for k, v in brief["findings"].items()} == per_kind


async def test_expiring_contracts_and_summaries_page_to_the_same_rows(client):
    whole = await call(client, "find_expiring_contracts", {"within_days": 365, "limit": 200})
    assert whole["next_cursor"] is None and len(whole["contracts"]) == whole["total"] > 5
    paged = await every_page(client, "find_expiring_contracts", {"within_days": 365, "limit": 5}, "contracts")
    assert paged == whole["contracts"]
    groups = await call(client, "summarize_contracts", {"group_by": "client", "limit": 500})
    assert len(groups["groups"]) == groups["total_groups"] > 3 and not groups["truncated"]
    paged = await every_page(client, "summarize_contracts", {"group_by": "client", "limit": 3}, "groups")
    assert paged == groups["groups"]


async def test_a_cursor_only_fits_the_call_that_made_it(client):
    page = await call(client, "find_expiring_contracts", {"within_days": 365, "limit": 5})
    r = await client.call_tool("find_expiring_contracts", {"within_days": 30, "limit": 5,
                                                           "cursor": page["next_cursor"]})
    assert r.is_error and "Invalid 'cursor'" in r.content[0].text and "Nothing was sent to Halo" in r.content[0].text
    r = await client.call_tool("reconcile_billing", {**MONTH, "cursor": "not-a-cursor"})
    assert r.is_error and "Invalid 'cursor'" in r.content[0].text


async def test_apply_says_counts_and_ids_not_every_step(client):
    ids = client.sandbox.book.expiring[30] + client.sandbox.book.expiring[60]
    preview = await call(client, "generate_renewals", {"contract_ids": ids, "uplift_percent": 5, "dry_run": True})
    assert all("request" not in s for s in preview["plan"]["steps"])  # one line per step
    full = await call(client, "get_plan", {"plan_id": preview["plan_id"], "detail": "full"})
    assert all(s["request"]["method"] for s in full["steps"])
    applied = await client.call_tool("apply_plan", {"plan_id": preview["plan_id"]})
    data = applied.structured_content
    assert "steps" not in data and data["done"] == data["steps_total"] == preview["steps"]
    assert len(data["created"]["contract"]) == preview["totals"]["contracts"] > 0 and data["failures"] == []
    text = applied.content[0].text
    assert str(data["created"]["contract"][0]) in text and "applied" in text
    assert [c.uri for c in applied.content if c.type == "resource_link"] == [f"halopsa://plans/{data['plan_id']}"]
    again = await call(client, "apply_plan", {"plan_id": preview["plan_id"]})
    assert again["already_applied"] and again["sent"] == 0
