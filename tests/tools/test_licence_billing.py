"""Seats against billing: reconcile_licences (domain rules, then end to end on the sandbox
book whose M365 licences sit beside recurring lines billing other quantities)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.domain.licence_billing import BilledLine, check_licences
from halo_contracts.domain.models import Licence, RecurringItem
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.pacing import Backoff
from halo_contracts.plans.executor import apply_plan
from halo_contracts.plans.journal import Journal
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

D = Decimal
FAST = Backoff(rate_base=0.001, rate_cap=0.004, rate_attempts=3, read_retries=1, retry_base=0.001, retry_cap=0.002)


def lic(id_: int, code: str, seats: int, price: str = "22.00", name: str = "Microsoft 365 Business Premium",
        cycle: str = "Monthly") -> Licence:
    return Licence(id=id_, client_id=1, product_code=code, name=name, quantity=seats, unit_price=D(price),
                   billing_cycle=cycle)


def line(id_: int, code: str | None, qty: int, price: str = "22.00", months: int = 1,
         desc: str = "Microsoft 365 Business Premium", client: int = 1) -> BilledLine:
    return BilledLine(line=RecurringItem(id=id_, recurring_invoice_id=9, contract_id=5, description=desc,
                                         product_code=code, quantity=D(qty), unit_price=D(price)),
                      client_id=client, months=months)


def test_tied_by_code_quantity_and_price_mismatches_with_money_per_month() -> None:
    (ok, qty, price, both) = check_licences(
        [lic(1, "M365", 10), lic(2, "EXO", 70, "4.00", "Exchange"), lic(3, "DEF", 5, "3.00", "Defender"),
         lic(4, "ACRO", 3, "240.00", "Acrobat", cycle="Annual")],
        [line(11, "m365", 10), line(12, "EXO", 72, "4.00", desc="Exchange"),
         line(13, "DEF", 5, "9.00", months=3, desc="Defender"), line(14, "ACRO", 2, "20.00", desc="Acrobat")])
    assert (ok.status, ok.tie, ok.monthly_difference) == ("billed_right", "code", 0)
    # 70 seats billed as 72: over-billed 2 x 4.00 a month; the true-up takes 8.00 off
    assert (qty.status, qty.monthly_difference, qty.true_up_monthly) == ("quantity", D(-8), D(-8))
    # 9.00 a quarter is 3.00 a month: the same price
    assert price.status == "billed_right"
    # annual 240 = 20/month per seat; 3 seats vs 2 billed
    assert (both.status, both.true_up_monthly) == ("quantity", D(20))


def test_price_mismatch_unbilled_suggestion_ambiguous_and_confirmed_link() -> None:
    licences = [lic(1, "M365", 10, "25.00"), lic(2, "CFQ7", 12), lic(3, "DUP", 1, name="Dup")]
    lines = [line(11, "M365", 10), line(12, "M365-BP", 10), line(13, "DUP", 1, desc="Dup"),
             line(14, "DUP", 1, desc="Dup"), line(15, "CFQ7", 12, client=2)]
    price, unbilled, ambiguous = check_licences(licences, lines)
    assert price.status == "price" and price.monthly_difference == D(30) and price.true_up_monthly == 0
    # another client's line with the code does not count; a line of the same name is only suggested,
    # and the licence is measured against it (12 seats, 10 billed: 44.00 a month), not as unbilled
    assert unbilled.status == "untied" and [x.line_id for x in unbilled.lines] == [12]
    assert 12 in unbilled.suggested_lines and unbilled.monthly_difference == D(44)
    assert "probably this licence" in unbilled.reason
    (alone,) = check_licences([lic(4, "ZZZ", 2, "5.00", name="Nothing like it")], lines)
    assert (alone.status, alone.lines, alone.monthly_difference) == ("unbilled", [], D(10))
    assert ambiguous.status == "ambiguous" and [x.line_id for x in ambiguous.lines] == [13, 14]
    # confirmed links win: licence 2 -> line 12 (10 billed, 12 seats), licence 3 -> line 14
    _, linked, dup = check_licences(licences, lines, links={2: 12, 3: 14})
    assert (linked.status, linked.tie, linked.true_up_monthly) == ("quantity", "confirmed", D(44))
    assert (dup.status, [x.line_id for x in dup.lines]) == ("billed_right", [14])
    # a link to another client's line is ignored
    (_, other, _) = check_licences(licences, lines, links={2: 15})
    assert other.status == "untied"


# ---- end to end --------------------------------------------------------------------------------


def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                         rate_limit="1000000/1", tools="license-sync,plans")


@pytest.fixture
def sandbox_app():
    return create_app(SandboxConfig(rate_limit=1_000_000))


async def call(server, tool: str, **args: Any) -> tuple[bool, Any]:
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    return result.is_error, result.structured_content if not result.is_error else result.content[0].text


@pytest.mark.anyio
async def test_reconcile_true_up_through_a_confirmed_link(sandbox_app, tmp_path: Path) -> None:
    sb = sandbox_app.state.sandbox
    journal_path = tmp_path / "j.sqlite3"
    server = build_server(settings(), transport=transport(sandbox_app), journal_path=journal_path)
    licence_id, line_id, seats, billed = sb.book.licence_mismatches[0]
    client_id = sb.store.get("licences", licence_id)["client_id"]

    err, out = await call(server, "reconcile_licences", client_id=client_id)
    assert not err, out
    row = next(r for r in out["mismatches"] if r["licence_id"] == licence_id)
    # the line's item code is not the licence's SKU: not tied, only suggested by name
    assert row["status"] == "untied" and line_id in row["suggested_lines"] and row["true_up_step"] is None
    assert D(row["billed_monthly"]) == billed * D("22.00")

    writes_before = sb.log.count(method="POST", path_prefix="/api")
    err, out = await call(server, "reconcile_licences", client_id=client_id,
                          links=[{"licence_id": licence_id, "line_id": line_id}])
    assert not err, out
    row = next(r for r in out["mismatches"] if r["licence_id"] == licence_id)
    assert (row["status"], row["tie"]) == ("quantity", "confirmed")
    assert row["lines"][0]["line_id"] == line_id and D(row["lines"][0]["quantity"]) == billed
    assert D(row["true_up_monthly"]) == (seats - billed) * D("22.00") and row["true_up_step"] is not None
    assert out["plan_id"] and out["links_remembered"] == [f"licence {licence_id} -> line {line_id}"]
    assert sb.log.count(method="POST", path_prefix="/api") == writes_before  # nothing written yet

    journal = Journal(journal_path)
    try:
        async with HaloClient(settings(), transport=transport(sandbox_app), backoff=FAST) as halo:
            outcome = await apply_plan(out["plan_id"], journal=journal, halo=halo)
    finally:
        journal.close()
    assert outcome.ok
    assert sb.store.get("rlines", line_id)["qty_order"] == seats

    # the link is remembered: the next run ties them without being told, and finds them billed right
    err, again = await call(server, "reconcile_licences", client_id=client_id)
    assert not err, again
    assert licence_id not in {r["licence_id"] for r in again["mismatches"]}
    assert again["counts"].get("billed_right", 0) >= 1


@pytest.mark.anyio
async def test_reconcile_refuses_a_link_to_another_clients_line(sandbox_app, tmp_path: Path) -> None:
    sb = sandbox_app.state.sandbox
    server = build_server(settings(), transport=transport(sandbox_app), journal_path=tmp_path / "j.sqlite3")
    licence_id = sb.book.licence_mismatches[0][0]
    client_id = sb.store.get("licences", licence_id)["client_id"]
    headers = {h["id"]: h["client_id"] for h in sb.store.where("rinvoices")}
    other = next(x["id"] for x in sb.store.where("rlines") if headers.get(x["ihid"]) not in (None, client_id))
    for bad in (other, 999999):
        sb.log.clear()
        err, text = await call(server, "reconcile_licences", links=[{"licence_id": licence_id, "line_id": bad}])
        assert err and "Invalid 'links'" in text and f"line {bad}" in text
        assert sb.log.count(method="POST", path_prefix="/api") == 0
