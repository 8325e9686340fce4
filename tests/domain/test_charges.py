"""Distributor charges (pure): reading the export, each billing rule, the natural key."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from halo_contracts.domain.charges import (
    USAGE_CODE,
    EffectiveRules,
    apply_rules,
    charge_type_of,
    effective_rules,
    parse_charge_rows,
    parse_charges_csv,
    without_held,
)
from halo_contracts.domain.licence_sync import FeedError

D = Decimal
HEADER = "Customer,SKU,Description,Qty,Unit Cost,Unit Price,Charge Type,Period Start,Period End\n"


def feed(*rows: str):
    return parse_charges_csv(HEADER + "\n".join(rows) + "\n").lines


NOV = "2026-11-01,2026-11-30"
LINES = feed(
    f"Acme,M365,Business Premium,10,18.50,22.00,Recurring,{NOV}",
    f"Acme,AZ,Azure prod,1,400.10,460.12,Azure,{NOV}",
    f"Acme,AZ2,Azure test,1,38.90,44.74,Usage,{NOV}",
    "Acme,M365,Two seats removed,-2,18.50,22.00,Prorate,2026-11-16,2026-11-30",
    "Acme,M365,Three seats added,3,9.25,11.00,Prorate,2026-11-16,2026-11-30",
    f"Acme,TRIAL,Defender trial,5,0,0,Recurring,{NOV}",
    "Acme,SETUP,Onboarding,1,0,150,One-off,2026-11-10,",
)


def test_reads_csv_headers_types_money_and_periods():
    assert [cl.charge_type for cl in LINES] == ["recurring", "usage", "usage", "prorate", "prorate", "recurring",
                                                "one-off"]
    assert LINES[3].amount == D(-44) and LINES[1].cost == D("400.10")
    # a one-off with no period end covers its one day
    assert (LINES[6].period_start, LINES[6].period_end) == (date(2026, 11, 10), date(2026, 11, 10))
    assert charge_type_of("Pro-rata") == "prorate" and charge_type_of("") == "recurring"
    assert charge_type_of("AZURE") == "usage" and charge_type_of("refund?") is None


def test_every_problem_is_reported_with_its_line_and_fix():
    with pytest.raises(FeedError) as err:
        parse_charges_csv(HEADER + ",M365,x,1,1,1,Recurring,2026-11-01,2026-11-30\n"
                          "Acme,M365,x,lots,1,1,Recurring,2026-11-01,2026-11-30\n"
                          "Acme,M365,x,1,1,1,Rebate,2026-11-01,2026-11-30\n"
                          "Acme,M365,x,1,1,1,Recurring,01/11/2026,2026-11-30\n"
                          "Acme,M365,x,1,1,1,Recurring,2026-11-30,2026-11-01\n"
                          "Ac\u202eme,M365,x,1,1,1,Recurring,2026-11-01,2026-11-30\n")
    found = {(p.line, p.field) for p in err.value.problems}
    assert found == {(2, "customer"), (3, "quantity"), (4, "charge_type"), (5, "period_start"), (6, "period_end"),
                     (7, "customer")}
    assert "YYYY-MM-DD" in str(err.value)
    with pytest.raises(FeedError, match="no column for unit_price"):
        parse_charges_csv("Customer,SKU,Qty,Period Start\nAcme,M365,1,2026-11-01\n")
    with pytest.raises(FeedError, match=r"row 1.*unknown field"):
        parse_charge_rows([{"customer": "Acme", "sku": "M365"}])


def test_a_row_with_an_unquoted_delimiter_is_refused_not_shifted():
    # "Azure, prod" unquoted would move every later cell one column on: 1 -> unit cost, 400.10 -> price...
    with pytest.raises(FeedError) as err:
        feed(f"Acme,AZ,Azure, prod,1,400.10,460.12,Azure,{NOV}")
    (problem,) = err.value.problems
    assert problem.line == 2 and "10 fields but the header has 9" in problem.problem
    # a short row (trailing optional cells left off) is still read
    (one,) = feed("Acme,SETUP,Onboarding,1,0,150,One-off,2026-11-10")
    assert one.period_end == date(2026, 11, 10)


def test_rows_read_like_csv():
    [cl] = parse_charge_rows([{"customer": "Acme", "product_code": "M365", "quantity": 2, "unit_price": 22,
                               "unit_cost": "18.50", "charge_type": "usage", "period_start": "2026-11-01"}]).lines
    assert (cl.amount, cl.cost, cl.charge_type, cl.line) == (D(44), D(37), "usage", 1)


def rules(**kw) -> EffectiveRules:
    return EffectiveRules(**kw)


def aside_rules(result) -> dict[int, str]:
    return {s.line: s.rule for s in result.set_aside}


def test_no_rules_keeps_every_line_and_the_totals_agree():
    out = apply_rules(LINES, rules())
    assert len(out.add) == len(LINES) and not out.set_aside
    assert out.amount_before == out.amount_after == sum((cl.amount for cl in LINES), D(0))


def test_drop_usage_lines():
    out = apply_rules(LINES, rules(usage="drop"))
    assert aside_rules(out) == {3: "usage_drop", 4: "usage_drop"}
    assert out.amount_after == out.amount_before - D("460.12") - D("44.74")


def test_collapse_usage_into_one_line_whose_cost_and_price_are_the_sums():
    out = apply_rules(LINES, rules(usage="collapse"))
    [usage] = [d for d in out.add if d.charge_type == "usage"]
    assert (usage.quantity, usage.unit_cost, usage.unit_price) == (D(1), D("439.00"), D("504.86"))
    assert usage.product_code == USAGE_CODE and usage.feed_lines == [3, 4]  # two codes: one usage code
    assert aside_rules(out) == {3: "usage_collapse", 4: "usage_collapse"}
    assert out.amount_after == out.amount_before and out.cost_after == out.cost_before
    # one usage line alone is kept as it is
    single = apply_rules(LINES[:2], rules(usage="collapse"))
    assert [d.product_code for d in single.add] == ["M365", "AZ"] and not single.set_aside


def test_drop_favourable_prorates_only_negative_ones():
    out = apply_rules(LINES, rules(drop_favourable_prorates=True))
    assert aside_rules(out) == {5: "drop_favourable_prorates"}
    assert any(d.feed_lines == [6] for d in out.add)  # a prorate the client owes stays


def test_drop_zero_amount_lines():
    out = apply_rules(LINES, rules(drop_zero_lines=True))
    assert aside_rules(out) == {7: "drop_zero_lines"}
    # a collapsed usage line worth 0 is dropped too
    zero = feed(f"Acme,AZ,a,1,0,0,Usage,{NOV}", f"Acme,AZ,b,1,5,0,Usage,{NOV}")
    both = apply_rules(zero, rules(usage="collapse", drop_zero_lines=True))
    assert both.add == [] and {s.rule for s in both.set_aside} == {"drop_zero_lines"}


def test_do_not_invoice_sets_every_line_aside():
    out = apply_rules(LINES, rules(do_not_invoice=True))
    assert out.add == [] and set(aside_rules(out).values()) == {"do_not_invoice"}
    assert out.amount_after == 0 and out.amount_before != 0


def test_lines_halo_already_holds_are_not_added_again():
    out = apply_rules(LINES, rules())
    held = Counter(d.key for d in out.add)  # two prorates of one product and period: held twice
    again = without_held(out, held, {k: "invoice 20001" for k in held}, LINES)
    assert again.add == [] and set(aside_rules(again).values()) == {"already_invoiced"}
    assert "invoice 20001" in again.set_aside[0].reason
    # the same product and period listed twice: Halo holding one leaves one to add
    twice = feed(f"Acme,AZ,prod,1,1,2,Usage,{NOV}", f"Acme,AZ,test,1,1,3,Usage,{NOV}")
    charges = apply_rules(twice, rules())
    left = without_held(charges, {charges.add[0].key: 1}, {}, twice)
    assert [d.feed_lines for d in left.add] == [[3]]


def test_effective_rules_merge_levels_most_specific_last():
    stored = {("*", 0): {"target": "last", "drop_zero_lines": True}, ("*", 7): {"usage": "drop"},
              ("pax8", 0): {"usage": "collapse", "target": "new"}, ("pax8", 7): {"do_not_invoice": True}}
    e = effective_rules("Pax8", 7, stored)
    assert (e.target, e.usage, e.drop_zero_lines, e.do_not_invoice) == ("new", "collapse", True, True)
    assert e.sources["drop_zero_lines"] == "global default" and e.sources["do_not_invoice"] == "client and distributor"
    other = effective_rules("Ingram", 8, stored)
    assert (other.target, other.usage, other.sources.get("usage")) == ("last", "keep", None)


def test_unknown_charge_types_and_headers_are_named_not_guessed():
    # a synonym the import maps is read as its type; an unknown one is refused naming the row and the types
    [cl] = parse_charges_csv("Customer,SKU,Type,Qty,Price,Start\nAcme,X1,Consumption,1,2,2026-11-01\n").lines
    assert cl.charge_type == "usage"
    with pytest.raises(FeedError) as err:
        parse_charge_rows([{"customer": "Acme", "product_code": "X1", "quantity": 1, "unit_price": 2,
                            "period_start": "2026-11-01", "charge_type": "rebate"}])
    assert "row 1, charge_type: 'rebate'" in str(err.value) and "recurring, usage (Azure), prorate or one-off" in str(
        err.value)
    # headers it does not know are listed as ignored, never read as another column
    feed = parse_charges_csv("Customer,SKU,Desc,Qty,Price,Start,Colour\nAcme,X1,Mailbox,1,2,2026-11-01,red\n")
    assert feed.lines[0].product_code == "X1" and feed.lines[0].description is None
    assert len(feed.warnings) == 1 and "'Desc', 'Colour' not read" in feed.warnings[0]
    assert "description" in feed.warnings[0]
    # a required column missing: every missing one is named with the headers that would be read
    with pytest.raises(FeedError) as err:
        parse_charges_csv("Customer,Desc,Type,Qty,Start\nAcme,X1,usage,1,2026-11-01\n")
    assert {p.field for p in err.value.problems} == {"product_code", "unit_price"}
    assert "sku" in str(err.value) and "sell price" in str(err.value)
