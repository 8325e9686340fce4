"""Issue 14, "answer the question that was asked": each trap a first natural call fell into on the
demo book, driven through the real SDK client on the sandbox. Expectations come from the
sandbox's raw documents, not from project code; the messages are asserted word for word where
they carry the answer."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server
from support.spec import SpecCheckingTransport
from support.successors import pending_successors

pytestmark = pytest.mark.anyio

TODAY = date(2026, 12, 4)
OWED = ("over_billed", "billed_after_contract_end", "billed_while_not_active", "duplicate_invoice")
COLLECT = ("missing_invoice", "under_billed", "unbilled_time")


@asynccontextmanager
async def demo(tmp_path):
    app = create_app(SandboxConfig(today=TODAY, rate_limit=1_000_000))  # the demo book: 120 contracts
    sb = app.state.sandbox
    checked = SpecCheckingTransport(transport(app))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000/1")
    server = build_server(settings, transport=checked, journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    async with Client(server) as client:
        yield sb, client
    checked.assert_clean()


async def ask(client: Client, tool: str, **args) -> tuple[str, dict]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.content[0].text, result.structured_content


def day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


async def test_expiring_lists_renewed_contracts_flagged_with_their_renewal(tmp_path):
    async with demo(tmp_path) as (sb, client):
        docs = sb.store.where("contracts")
        # linked by Halo, else a Pending successor (the contract generate_renewals skips it for)
        renewal_of = pending_successors(docs) | {c["previouscontract"]: c["id"] for c in docs
                                                 if c.get("previouscontract")}
        ending = {c["id"] for c in docs if c.get("status") == 1 and c.get("end_date")
                  and 0 <= (day(c["end_date"]) - TODAY).days <= 60}
        said, got = await ask(client, "find_expiring_contracts", within_days=60)
        rows = {r["contract_id"]: r for r in got["contracts"]}
        assert set(rows) == ending  # every contract ending in the window, renewed or not
        renewed = ending & set(renewal_of)
        assert renewed and got["renewed"] == len(renewed) and "renewed_left_out" not in got
        for cid in renewed:
            assert rows[cid]["renewed"] is True and rows[cid]["renewal_id"] == renewal_of[cid]
            assert f"renewed by {renewal_of[cid]})" in said
        assert all(r["renewed"] is False and r["renewal_id"] is None for c, r in rows.items() if c not in renewed)
        assert f", {len(renewed)} of them already renewed:" in said
        assert said.endswith("generate_renewals(dry_run=true) for those not renewed.")
        # the year's value counts the renewed ones too
        assert D(sum(D(b["annualised_value"]) for b in got["buckets"])) == sum(
            (D(r["annualised_value"]) for r in rows.values()), D(0))
        # only the buckets the window reaches
        assert [b["bucket"] for b in got["buckets"]] == ["0-30", "31-60"]
        assert "61-90" not in said
        _, odd = await ask(client, "find_expiring_contracts", within_days=45)
        assert [b["bucket"] for b in odd["buckets"]] == ["0-30", "31-45"]


async def test_prepaid_low_weighs_the_share_of_the_block(tmp_path):
    async with demo(tmp_path) as (sb, client):
        def figures(cid):
            block = D(str(sb.store.get("contracts", cid)["startbalance"]))
            return block, sb.book.prepaid_totals[cid][2]

        active = [c["id"] for c in sb.store.where("contracts") if c.get("contracttype") == 2 and c.get("status") == 1]
        # 8.5 hours left of a 10-hour block: under the 10-hour threshold, yet 85% of the block is left
        roomy = [cid for cid in active if 0 < figures(cid)[1] <= 10 and figures(cid)[1] > figures(cid)[0] / 4]
        low = {cid for cid in active if figures(cid)[1] <= 0
               or (figures(cid)[1] <= 10 and figures(cid)[1] <= figures(cid)[0] / 4)}
        assert roomy and low
        cid = next(c for c in roomy if figures(c) == (D(10), D("8.50")))
        said, got = await ask(client, "check_prepaid_balance", contract_id=cid)
        assert got["alert"] is False and got["share_left_percent"] == 85.0 and got["message"] is None
        assert "8.5 hours left of 10 purchased (1.5 used, 85% of the block)" in said
        assert "Not low: at or below 10 hours but more than 25% of the block is left." in said
        said, sweep = await ask(client, "find_low_prepaid_balances")
        assert {r["contract_id"] for r in sweep["rows"]} == low and not set(roomy) & low
        for r in sweep["rows"]:
            block, _ = figures(r["contract_id"])
            assert D(r["block"]) == block and D(r["quote"]["block"]) == block
            if D(r["quote"]["hours"]) > 0:
                assert f"({D(r['quote']['hours']).normalize():f} h, back to the {block.normalize():f} h block)" in said
        one = next(r for r in sweep["rows"] if D(r["remaining"]) > 0)
        _, full = await ask(client, "check_prepaid_balance", contract_id=one["contract_id"])
        block, left = figures(one["contract_id"])
        assert full["alert"] is True and full["message"] == (
            f"Only {left:f} hours remain of a {block.normalize():f}-hour block "
            f"({(left * 100 / block).quantize(D(1), ROUND_HALF_UP)}%; low at 10 or less and 25% or less of the block)."
            + (f" At the current rate it runs out on {full['projected_run_out']}."
               if full["projected_run_out"] else ""))


async def test_reconciliation_money_owed_and_to_collect_apart_and_history_said_once(tmp_path):
    async with demo(tmp_path) as (sb, client):
        recurring = [i for i in sb.store.where("invoices") if i.get("recurring_invoice_id")]
        history = min(day(i["invoice_date"]) for i in recurring).replace(day=1)
        year_ago = (TODAY - timedelta(days=365)).replace(day=1)
        assert year_ago < history  # the demo tenant's billing history is younger than a year
        end = TODAY.replace(day=1) - timedelta(days=1)
        said, whole = await ask(client, "reconcile_billing", period_start=year_ago.isoformat(),
                                period_end=end.isoformat(), detail="full", limit=1000)
        gap = whole["no_history"]
        assert gap == {"period_start": year_ago.isoformat(), "period_end": (history - timedelta(days=1)).isoformat(),
                       "history_starts": history.isoformat()}
        assert said.count("has no history") == 1
        assert said.startswith(f"Halo's billing history starts {history} (its first recurring invoice): "
                               f"{year_ago} to {history - timedelta(days=1)} has no history, so no recurring "
                               "billing is expected there (time is still checked). ")
        findings = [f for r in whole["contracts"] for f in r["findings"]]
        assert not [f for f in findings if f["kind"] == "missing_invoice" and f["period_start"] < str(history)]
        # the same recurring findings as a period that starts with the history
        _, since = await ask(client, "reconcile_billing", period_start=history.isoformat(),
                             period_end=end.isoformat(), detail="full", limit=1000)
        assert since["no_history"] is None

        def recurring_findings(out):
            return sorted((r["contract_id"], f["kind"], f["amount"], f["period_start"]) for r in out["contracts"]
                          for f in r["findings"] if f["kind"] != "unbilled_time")

        assert recurring_findings(whole) == recurring_findings(since)
        # money: what clients are owed and what is to collect, never one figure
        t = whole["totals"]
        by_kind = {k["kind"]: D(k["amount"]) for k in t["by_kind"]}
        owed = sum((by_kind.get(k, D(0)) for k in OWED), D(0))
        collect = sum((by_kind.get(k, D(0)) for k in COLLECT), D(0))
        assert owed > 0 and collect > 0 and "at_stake" not in t
        assert (D(t["owed_to_clients"]), D(t["to_collect"])) == (owed, collect)
        assert (f"{owed:,.2f} owed to clients (over-billed), {collect:,.2f} to collect (under-billed and unbilled)"
                in said)
        row = next(r for r in whole["contracts"] if D(r["owed_to_client"]) > 0)
        said, one = await ask(client, "reconcile_contract_billing", contract_id=row["contract_id"],
                              period_start=year_ago.isoformat(), period_end=end.isoformat())
        r = one["reconciliation"]
        assert one["no_history"] == gap and said.count("has no history") == 1
        assert f"{D(r['owed_to_client']):,.2f} owed to the client, {D(r['to_collect']):,.2f} to collect" in said
        # a period wholly before the history: said once, nothing recurring expected or missing
        before = history - timedelta(days=1)
        said, old = await ask(client, "reconcile_contract_billing", contract_id=row["contract_id"],
                              period_start=year_ago.isoformat(), period_end=before.isoformat())
        assert old["reconciliation"]["expected_recurring"] == "0.00"
        assert not [f for f in old["reconciliation"]["findings"] if f["kind"] != "unbilled_time"]
        assert said.count("has no history") == 1


async def test_future_contracts_show_when_their_lines_start_and_what_they_bill(tmp_path):
    async with demo(tmp_path) as (sb, client):
        pending = [c for c in sb.store.where("contracts") if c.get("status") == 2
                   and c["id"] in sb.book.headers_by_contract]
        assert len(pending) >= 2
        for doc in pending:
            said, got = await ask(client, "get_contract", contract_id=doc["id"])
            assert got["totals"], doc["id"]  # never an empty total next to another future contract's year
            assert all(t["starts"] and t["starts"] >= doc["start_date"][:10] for t in got["totals"])
            per_month: dict[str, D] = {}
            for t in got["totals"]:
                per_month[t["starts"]] = per_month.get(t["starts"], D(0)) + D(t["monthly_equivalent"])
            for starts, month in per_month.items():
                assert f"From {starts}: {month:,.2f} a month ({month * 12:,.2f} a year)." in said
            assert got["items_monthly_equivalent"] == "0.00"  # nothing of it bills today


async def test_find_clients_refuses_one_letter_says_no_match_and_pages_the_list(tmp_path):
    async with demo(tmp_path) as (sb, client):
        sb.log.clear()
        result = await client.call_tool("find_clients", {"name": "e"})
        text = result.content[0].text
        assert result.is_error and text == (
            "Error executing tool find_clients: Invalid 'name': needs at least 2 letters or digits to match on "
            "(got 'e'). Fix: give more of the client's name, or leave name out to list the clients page by page. "
            "Nothing was sent to Halo.")
        assert sb.log.count(path_prefix="/api") == 0
        said, got = await ask(client, "find_clients", name="Wayne Enterprises")
        assert got["matches"] and all(m["weak"] for m in got["matches"])
        assert said.startswith("No client matches 'Wayne Enterprises' with confidence. Weak candidates, "
                               "probably not it: client ")
        said, got = await ask(client, "find_clients", name="ac")
        assert all(m["weak"] for m in got["matches"]) and said.startswith("'ac' is too short to be sure")
        said, got = await ask(client, "find_clients", name="Tidewater")
        tide = next(c["id"] for c in sb.store.where("clients") if c["name"] == "Tidewater Marine Supply")
        assert [m["id"] for m in got["matches"] if not m["weak"]] == [tide]
        assert said.startswith(f"Client {tide} matches 'Tidewater' with confidence.")
        # no name: every active client by name, a page at a time
        for inactive in (False, True):
            want = sorted((c["name"].casefold(), c["id"]) for c in sb.store.where("clients")
                           if inactive or not c.get("inactive"))
            seen, cursor = [], None
            while True:
                args = {"limit": 7, "include_inactive": inactive, **({"cursor": cursor} if cursor else {})}
                said, page = await ask(client, "find_clients", **args)
                assert page["total_candidates"] == len(want) and len(page["matches"]) <= 7
                seen += [(m["name"].casefold(), m["id"]) for m in page["matches"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
                assert re.search(r"this page lists 7: .*cursor=next_cursor for more\.$", said)
            assert seen == want
        assert any(c.get("inactive") for c in sb.store.where("clients"))
