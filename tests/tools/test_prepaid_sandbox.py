"""Prepaid tools against the embedded sandbox.

Expectations are computed here from the sandbox's raw documents and its manifest (``book``),
never from the project's domain code: the totals come from ``book.prepaid_totals``; burn,
run-out, quotes and expiry are worked out by hand from the stored actions and ledger rows.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx2
import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server
from support.spec import SpecCheckingTransport

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
WINDOW_START = TODAY - timedelta(days=89)


class DetailWithoutLedger(httpx2.AsyncBaseTransport):
    """A tenant whose contract detail read comes back without ``contract_prepayhistory``: the
    tools must then read ``/ClientPrepay`` themselves, whose rows (Halo's ``PrepayHistory``)
    carry no ``contract_id``."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "GET" and re.fullmatch(r"/api/clientcontract/\d+", request.url.path.lower()):
            await response.aread()
            body = json.loads(response.content)
            body.pop("contract_prepayhistory", None)
            return httpx2.Response(response.status_code, json=body)
        return response


@asynccontextmanager
async def sandbox_server(tmp_path, *, contracts: int = 45, clients: int = 8, detail_ledger: bool = True):
    app = create_app(SandboxConfig(clients=clients, contracts=contracts, today=TODAY, seed=7))
    sb = app.state.sandbox
    inner = transport(app) if detail_ledger else DetailWithoutLedger(transport(app))
    checked = SpecCheckingTransport(inner)
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             tools="prepaid,renewals")
    server = build_server(settings, transport=checked, journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    async with Client(server) as client:
        yield sb, client, checked


async def call(client: Client, name: str, args: dict) -> dict:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def call_error(client: Client, name: str, args: dict) -> str:
    result = await client.call_tool(name, args)
    assert result.is_error
    return result.content[0].text


def d(value) -> Decimal:
    return Decimal(str(value))


def day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def hand_figures(sb, cid: int) -> dict:
    """Burn, run-out and quote for one prepaid contract, worked out from the raw documents."""
    doc = sb.store.get("contracts", cid)
    total, used, balance = sb.book.prepaid_totals[cid]
    actions = sb.store.where("actions", "contract_id = ?", [cid])
    burned = sum((d(a.get("actionprepayhours") or 0) for a in actions
                  if WINDOW_START <= day(a["datetime"]) <= TODAY), Decimal(0))
    per_day = burned / 90
    if balance <= 0:
        run_out = TODAY
    elif per_day > 0:
        run_out = TODAY + timedelta(days=math.ceil(balance / per_day))
    else:
        run_out = None
    block = d(doc["startbalance"])
    rate = d(doc["periodchargeamount"]) / block
    top_up = max(block - balance, Decimal(0))
    return {"total": total, "used": used, "balance": balance, "burned": burned, "per_day": per_day,
            "run_out": run_out, "quote_hours": top_up, "quote_amount": money(top_up * rate), "rate": money(rate)}


async def test_balances_alerts_and_projections_match_hand_computed_figures(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, checked):
        for state in ("low", "exhausted", "healthy", "expiring", "expired"):
            for cid in sb.book.prepaid[state]:
                exp = hand_figures(sb, cid)
                got = await call(client, "check_prepaid_balance", {"contract_id": cid})
                assert got["unit"] == "hours" and got["figures_from"] == "halo"
                assert d(got["purchased"]) == exp["total"], cid
                assert d(got["used"]) == exp["used"], cid
                assert d(got["remaining"]) == exp["balance"], cid
                assert got["alert"] is is_low(sb, cid), cid
                block = d(sb.store.get("contracts", cid)["startbalance"])
                assert got["share_left_percent"] == float((exp["balance"] * 100 / block).quantize(Decimal("0.1"),
                                                                                                    ROUND_HALF_UP))
                assert d(got["quote"]["block"]) == block
                assert got["projected_run_out"] == (exp["run_out"].isoformat() if exp["run_out"] else None), cid
                assert d(got["burn_rate"]["used"]) == exp["burned"]
                assert got["quote"]["rate"] == exp["rate"]
                assert d(got["quote"]["hours"]) == exp["quote_hours"]
                assert got["quote"]["amount"] == exp["quote_amount"]
                if got["alert"]:
                    assert got["message"] and got["suggested_action"].startswith("Quote a top-up")
                else:
                    assert got["message"] is None
        # a contract whose old top-up expired: Halo's total - used - balance is the expired part
        old = sb.book.prepaid["expired"][0]
        total, used, balance = sb.book.prepaid_totals[old]
        got = await call(client, "check_prepaid_balance", {"contract_id": old})
        assert d(got["expired"]) == total - used - balance > 0
        # current period (monthly prepay periods from the detail read)
        assert got["current_period"]["start_date"] == "2026-06-01"
        checked.assert_clean()


def hand_expiring(sb, cid: int) -> dict:
    """The one dated ledger row still to expire, worked out from the stored rows and actions."""
    doc = sb.store.get("contracts", cid)
    rows = sorted(sb.store.where("prepay", "contract_id = ?", [cid]), key=lambda r: (r["date"], r["id"]))
    exp = hand_figures(sb, cid)
    # oldest first: the opening block absorbs usage before the ledger rows
    left_opening = max(d(doc["startbalance"]) - exp["used"], Decimal(0))
    consumed_from_rows = max(exp["used"] - d(doc["startbalance"]), Decimal(0))
    dated = [r for r in rows if r.get("expirydate") and day(r["expirydate"]) >= TODAY]
    assert len(dated) == 1
    row = dated[0]
    unused_now = d(row["hours"]) - consumed_from_rows
    days_left = (day(row["expirydate"]) - TODAY).days
    burn_until = exp["per_day"] * days_left
    projected = unused_now - min(max(burn_until - left_opening, Decimal(0)), unused_now)
    return {"expiry_date": day(row["expirydate"]).isoformat(), "unused_now": unused_now,
            "projected": projected.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)}


def assert_expiring(got: dict, want: dict) -> None:
    assert len(got["expiring"]) == 1
    item = got["expiring"][0]
    assert item["expiry_date"] == want["expiry_date"]
    assert d(item["unused_now"]) == want["unused_now"]
    assert d(item["projected_unused"]) == want["projected"]
    assert d(got["hours_expiring_unused"]) == d(item["projected_unused"])


async def test_hours_expiring_unused_projected_from_the_burn(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, _):
        cid = sb.book.prepaid["expiring"][0]
        want = hand_expiring(sb, cid)
        got = await call(client, "check_prepaid_balance", {"contract_id": cid})
        assert_expiring(got, want)


def with_topups(sb) -> set[int]:
    return {cid for cid in active_prepaid(sb) if sb.store.where("prepay", "contract_id = ?", [cid])}


def ledger_queries(sb) -> list[dict[str, str]]:
    return [e.query for e in sb.log if e.path.lower().rstrip("/") == "/api/clientprepay"]


async def test_without_ledger_in_the_detail_each_contract_reads_its_own_rows(tmp_path):
    """Halo's /ClientPrepay rows carry no contract_id: the tools ask for one contract's rows
    (?contract_id=) and get the same balances, alerts and expiring hours as from the detail."""
    async with sandbox_server(tmp_path / "detail") as (_, client, _checked):
        from_detail = await call(client, "find_low_prepaid_balances", {"threshold_hours": 100000})
    async with sandbox_server(tmp_path / "ledger", detail_ledger=False) as (sb, client, checked):
        cid = sb.book.prepaid["expiring"][0]
        want, exp = hand_expiring(sb, cid), hand_figures(sb, cid)
        assert want["unused_now"] > 0
        await call(client, "find_expiring_contracts", {})  # token fetched
        sb.log.clear()
        got = await call(client, "check_prepaid_balance", {"contract_id": cid})
        asked = [{k: q.get(k) for k in ("client_id", "contract_id")} for q in ledger_queries(sb)]
        assert asked == [{"client_id": str(sb.store.get("contracts", cid)["client_id"]), "contract_id": str(cid)}]
        assert_expiring(got, want)
        assert (d(got["purchased"]), d(got["used"]), d(got["remaining"])) == (exp["total"], exp["used"],
                                                                              exp["balance"])
        assert got["alert"] is is_low(sb, cid)
        # the sweep: one ledger read per contract whose total shows top-ups, each for that contract only
        sb.log.clear()
        sweep = await call(client, "find_low_prepaid_balances", {"threshold_hours": 100000})
        asked = [q["contract_id"] for q in ledger_queries(sb)]
        assert sorted(asked) == sorted(str(c) for c in with_topups(sb)) and len(asked) > 1
        assert sweep["figures"]["ledger_reads"] == len(asked)
        rows = {r["contract_id"]: r for r in sweep["rows"]}
        # low at any hour count: used up, or a quarter of the block or less left
        assert set(rows) == {c for c in active_prepaid(sb) if is_low_share(sb, c)} and len(rows) > 1
        for other in active_prepaid(sb):
            f = hand_figures(sb, other)
            got = rows.get(other) or await call(client, "check_prepaid_balance", {"contract_id": other})
            assert d(got["remaining"]) == f["balance"] and d(got["purchased"]) == f["total"]
            if other == cid:
                assert d(got["hours_expiring_unused"]) == want["projected"]
        # everything the rows say matches the run whose detail carried the ledger
        assert sweep["rows"] == from_detail["rows"] and from_detail["figures"]["ledger_reads"] == 0
        checked.assert_clean()


def is_low_share(sb, cid: int) -> bool:
    """Used up, or at most a quarter of the contract's original block left (from the raw data)."""
    balance = sb.book.prepaid_totals[cid][2]
    return balance <= 0 or balance <= d(sb.store.get("contracts", cid)["startbalance"]) / 4


def is_low(sb, cid: int, threshold: Decimal = Decimal(10)) -> bool:
    balance = sb.book.prepaid_totals[cid][2]
    return balance <= 0 or (balance <= threshold and is_low_share(sb, cid))


def active_prepaid(sb) -> list[int]:
    return [c["id"] for c in sb.store.where("contracts") if c.get("contracttype") == 2 and c.get("status") == 1]


async def test_low_balance_sweep_lists_exactly_the_low_ones_most_urgent_first(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, checked):
        figures = {cid: hand_figures(sb, cid) for cid in active_prepaid(sb)}
        low = {cid for cid in figures if is_low(sb, cid)}
        assert set(sb.book.prepaid["low"]) | set(sb.book.prepaid["exhausted"]) <= low
        got = await call(client, "find_low_prepaid_balances", {})
        assert {r["contract_id"] for r in got["rows"]} == low
        assert got["total"] == len(low)
        first = got["rows"][0]
        assert first["contract_id"] in sb.book.prepaid["exhausted"]  # used up: most urgent
        run_outs = [r["projected_run_out"] for r in got["rows"][1:]]
        assert run_outs == sorted(run_outs, key=lambda v: v or "9999")
        # wider net: projected to run out within a year
        horizon = TODAY + timedelta(days=365)
        soon = {cid for cid, f in figures.items() if f["run_out"] and f["run_out"] <= horizon}
        got = await call(client, "find_low_prepaid_balances", {"runs_out_within_days": 365})
        assert {r["contract_id"] for r in got["rows"]} == low | soon
        # a threshold of zero keeps only the used-up blocks
        got = await call(client, "find_low_prepaid_balances", {"threshold_hours": 0})
        assert {r["contract_id"] for r in got["rows"]} == {c for c, f in figures.items() if f["balance"] <= 0}
        checked.assert_clean()


async def sweep_requests(tmp_path, contracts: int) -> tuple[dict[str, int], int, int]:
    async with sandbox_server(tmp_path / str(contracts), contracts=contracts, clients=max(8, contracts // 5)) as (
            sb, client, _):
        await call(client, "find_low_prepaid_balances", {})  # warm the token
        sb.log.clear()
        await call(client, "find_low_prepaid_balances", {})
        counts: dict[str, int] = {}
        for e in sb.log:
            key = e.path.lower().rstrip("/")
            if key.startswith("/api/clientcontract/"):
                key = "/api/clientcontract/{id}"
            counts[key] = counts.get(key, 0) + 1
        listed = sum(1 for c in sb.store.where("contracts") if c.get("active"))
        return counts, math.ceil(listed / 100), len(active_prepaid(sb))


async def test_sweep_requests_grow_only_with_paging_and_prepaid_details(tmp_path):
    small, small_pages, small_prepaid = await sweep_requests(tmp_path, 45)
    big, big_pages, big_prepaid = await sweep_requests(tmp_path, 260)
    for counts, pages, prepaid in ((small, small_pages, small_prepaid), (big, big_pages, big_prepaid)):
        # one list sweep + one detail read per active prepaid contract + one time-entry read; no ledger read
        assert counts == {"/api/clientcontract": pages, "/api/clientcontract/{id}": prepaid, "/api/actions": 1}
    assert big_pages > small_pages and big_prepaid > small_prepaid


async def test_sweep_does_not_read_contracts_whose_list_row_shows_them_ended(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, _):
        ended = sb.book.prepaid["exhausted"][0]  # used up: it would head the list
        doc = sb.store.get("contracts", ended)
        doc["end_date"] = "2026-06-14T00:00:00"  # yesterday; still status Active
        sb.store.put("contracts", doc)
        await call(client, "find_expiring_contracts", {})  # token fetched
        sb.log.clear()
        got = await call(client, "find_low_prepaid_balances", {})
        assert ended not in {r["contract_id"] for r in got["rows"]}
        assert got["figures"]["ended_not_read"] == [ended]
        others = [c for c in active_prepaid(sb) if c != ended]
        assert got["figures"]["detail_reads"] == got["figures"]["prepaid_contracts"] == len(others)
        read = sorted(int(e.path.rsplit("/", 1)[1]) for e in sb.log
                      if e.path.lower().startswith("/api/clientcontract/"))
        assert read == sorted(others)
        # the contract itself is still one call away
        one = await call(client, "check_prepaid_balance", {"contract_id": ended})
        assert one["alert"] is True


async def test_errors_send_nothing(tmp_path):
    async with sandbox_server(tmp_path) as (sb, client, _):
        recurring = sb.book.contracts_by_type["Recurring"][0]
        await call(client, "find_expiring_contracts", {})  # token fetched
        sb.log.clear()
        text = await call_error(client, "check_prepaid_balance", {"contract_id": 1, "threshold_hours": -1})
        assert "threshold_hours" in text and "Nothing was sent" in text
        assert len(sb.log) == 0
        text = await call_error(client, "check_prepaid_balance", {"contract_id": "1015"})
        assert "contract_id" in text
        text = await call_error(client, "check_prepaid_balance", {"contract_id": recurring})
        assert "no prepaid-hours bank" in text
        assert sb.log.count(method="POST") == 0
