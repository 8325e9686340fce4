"""find_expiring_contracts and review_contract_performance against the embedded sandbox.

Expectations come from the sandbox's raw documents and manifest, not from project code.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server
from support.spec import SpecCheckingTransport
from support.successors import pending_successors

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
MONTHS = {1: 1, 2: 3, 3: 12}


@asynccontextmanager
async def sandbox_server(tmp_path, *, contracts: int = 45, clients: int = 8):
    app = create_app(SandboxConfig(clients=clients, contracts=contracts, today=TODAY, seed=7))
    sb = app.state.sandbox
    checked = SpecCheckingTransport(transport(app))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             tools="prepaid,renewals")
    server = build_server(settings, transport=checked, journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    async with Client(server) as client:
        yield sb, client, checked


async def call(client: Client, name: str, args: dict) -> dict:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


def day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


def d(value) -> Decimal:
    return Decimal(str(value))


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def expected_expiring(sb, within: int = 90) -> dict[int, dict]:
    """Active contracts ending in [today, today + within], from the raw documents."""
    renewed = {c["previouscontract"] for c in sb.store.where("contracts") if c.get("previouscontract")}
    out = {}
    for c in sb.store.where("contracts"):
        end = day(c.get("end_date"))
        if c.get("status") != 1 or end is None or not 0 <= (end - TODAY).days <= within:
            continue
        value = d(c.get("periodchargeamount") or 0)
        out[c["id"]] = {"days": (end - TODAY).days, "renewed": c["id"] in renewed,
                        "annualised": cents(value * 12 / MONTHS[c.get("billingperiod") or 1])}
    return out


async def test_expiring_dashboard_matches_the_book(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, checked):
        exp = expected_expiring(sb)
        manifest = {cid for ids in sb.book.expiring.values() for cid in ids}
        assert set(exp) == manifest  # our reading of the raw data agrees with the manifest
        # renewed: the book's linked renewals, else a Pending successor (what generate_renewals skips)
        renewal_of = pending_successors(sb.store.where("contracts")) | dict(sb.book.renewed)
        renewed = set(renewal_of)
        for cid in exp:
            exp[cid]["renewed"] = cid in renewed
        got = await call(client, "find_expiring_contracts", {})
        rows = got["contracts"]
        # every expiring contract is listed, the renewed ones flagged with their renewal's id
        assert {r["contract_id"] for r in rows} == manifest
        assert got["renewed"] == len(manifest & renewed) >= 1
        assert "renewed_left_out" not in got
        assert [r["end_date"] for r in rows] == sorted(r["end_date"] for r in rows)
        for r in rows:
            e = exp[r["contract_id"]]
            assert r["days_remaining"] == e["days"]
            assert r["annualised_value"] == e["annualised"]
            assert r["renewed"] is e["renewed"]
            assert r["renewal_id"] == renewal_of.get(r["contract_id"])
            low, high = {"0-30": (0, 30), "31-60": (31, 60), "61-90": (61, 90)}[r["bucket"]]
            assert low <= r["days_remaining"] <= high
        assert [b["bucket"] for b in got["buckets"]] == ["0-30", "31-60", "61-90"]
        for days, ids in sb.book.expiring.items():
            bucket = {30: "0-30", 60: "31-60", 90: "61-90"}[days]
            b = next(b for b in got["buckets"] if b["bucket"] == bucket)
            assert b["count"] == len(set(ids))
            assert b["renewed"] == len(set(ids) & renewed)
        # a narrower window and one client
        got = await call(client, "find_expiring_contracts", {"within_days": 30})
        assert {r["contract_id"] for r in got["contracts"]} == {c for c, e in exp.items() if e["days"] <= 30}
        assert [b["bucket"] for b in got["buckets"]] == ["0-30"]
        got = await call(client, "find_expiring_contracts", {"within_days": 45})
        assert [b["bucket"] for b in got["buckets"]] == ["0-30", "31-45"]
        assert sum(b["count"] for b in got["buckets"]) == got["total"] == sum(1 for e in exp.values()
                                                                             if e["days"] <= 45)
        one = rows[0]
        got = await call(client, "find_expiring_contracts", {"client_id": one["client_id"]})
        assert all(r["client_id"] == one["client_id"] for r in got["contracts"])
        assert one["contract_id"] in {r["contract_id"] for r in got["contracts"]}
        checked.assert_clean()


async def expiring_requests(tmp_path, contracts: int) -> tuple[dict[tuple[str, str], int], int]:
    async with sandbox_server(tmp_path / str(contracts), contracts=contracts, clients=max(8, contracts // 5)) as (
            sb, client, _):
        await call(client, "find_expiring_contracts", {})
        sb.log.clear()
        await call(client, "find_expiring_contracts", {})
        counts: dict[tuple[str, str], int] = {}
        for e in sb.log:
            key = (e.path.lower(), "excluderenewed" if e.query.get("excluderenewed") == "true" else "all")
            counts[key] = counts.get(key, 0) + 1
        listed = sum(1 for c in sb.store.where("contracts") if c.get("active"))
        return counts, math.ceil(listed / 100)


async def test_expiring_report_requests_grow_only_with_paging(tmp_path):
    small, small_pages = await expiring_requests(tmp_path, 45)
    big, big_pages = await expiring_requests(tmp_path, 320)
    assert small == {("/api/clientcontract", "all"): small_pages,
                     ("/api/clientcontract", "excluderenewed"): small_pages}
    assert big == {("/api/clientcontract", "all"): big_pages, ("/api/clientcontract", "excluderenewed"): big_pages}
    assert small_pages == 1 and big_pages >= 3


async def test_performance_review_from_raw_tickets_time_and_invoices(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, checked):
        # a contract with tickets and invoices
        tickets_by_contract: dict[int, list[dict]] = {}
        for t in sb.store.where("tickets"):
            tickets_by_contract.setdefault(t.get("contract_id"), []).append(t)
        cid = next(c for c in sb.book.clean_contract_ids if len(tickets_by_contract.get(c, [])) >= 2)
        doc = sb.store.get("contracts", cid)
        start = day(doc["start_date"])
        end = min(day(doc["end_date"]), TODAY)
        tickets = [t for t in tickets_by_contract[cid] if start <= day(t["dateoccurred"]) <= end]
        tracked = [t for t in tickets if (t.get("slastate") or "").strip().upper() in ("I", "O")]
        met = [t for t in tracked if t["slastate"].strip().upper() == "I"]
        ticket_ids = {t["id"] for t in tickets}
        hours = sum((d(a.get("timetaken") or 0) for a in sb.store.where("actions")
                     if a.get("ticket_id") in ticket_ids and a.get("actioncontractid") == cid
                     and start <= day(a["datetime"]) <= end), Decimal(0))
        revenue = Decimal(0)
        for inv in sb.store.where("invoices", "client_id = ?", [doc["client_id"]]):
            if not start <= day(inv["invoice_date"]) <= end:
                continue
            for line in sb.store.where("ilines", "ihid = ?", [inv["id"]]):
                owner = line.get("contract_id") or inv.get("contract_id")
                if owner == cid:
                    amount = d(line.get("qty_order") or 0) * d(line.get("unit_price") or 0)
                    revenue += amount
        cost = hours * Decimal(55)
        got = await call(client, "review_contract_performance", {"contract_id": cid})
        assert (got["period_start"], got["period_end"]) == (start.isoformat(), end.isoformat())
        assert got["tickets"] == len(tickets)
        assert (got["tickets_sla_tracked"], got["tickets_sla_met"]) == (len(tracked), len(met))
        if tracked:
            assert got["sla_compliance_percent"] == float(
                (Decimal(len(met)) * 100 / len(tracked)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
        assert d(got["hours"]) == hours
        assert got["revenue"] == cents(revenue)
        assert got["cost"] == cents(cost)
        margin = (revenue - cost) * 100 / revenue
        assert got["margin_percent"] == float(margin.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
        assert got["recommendation"] in ("renew as is", "renew with uplift", "review scope")
        assert got["reasons"]
        # a target above the margin asks for an uplift (or a scope review when the gap is large)
        higher = await call(client, "review_contract_performance",
                            {"contract_id": cid, "target_margin": 99.9})
        assert margin < Decimal("99.9")
        assert higher["recommendation"] in ("renew with uplift", "review scope")
        checked.assert_clean()


async def test_performance_review_rejects_a_backwards_period(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, _):
        result = await client.call_tool("review_contract_performance", {
            "contract_id": sb.book.contract_ids[0], "period_start": "2026-05-01", "period_end": "2026-04-01"})
        assert result.is_error and "period_start" in result.content[0].text
        assert sb.log.count(path_prefix="/api") == 0
