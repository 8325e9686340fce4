"""Licence sync made safe, pure half: product mapping (exact, explicit, remembered), likely code
mismatches held back, a first sync that does not delete by cleanup, and steps that name the
product by Halo's name."""

from __future__ import annotations

from decimal import Decimal

from halo_contracts.domain.licence_sync import decide, parse_rows
from halo_contracts.domain.models import Client, Licence
from halo_contracts.domain.product_mapping import product_name_key, resolve_code

D = Decimal
CLIENTS = [Client(id=1, name="Acme Ltd"), Client(id=2, name="Globex Corporation")]


def lic(id_: int, client: int, code: str, qty: int, name: str, price: str = "20.00",
        distributor: str | None = "Pax8") -> Licence:
    return Licence(id=id_, client_id=client, product_code=code, name=name, quantity=qty, unit_price=D(price),
                   billing_cycle="Monthly", distributor=distributor)


def feed(*items: tuple) -> list:
    keys = ("customer", "product_code", "product_name", "quantity", "unit_price")
    return parse_rows([dict(zip(keys, item, strict=True)) for item in items]).lines


HALO = [lic(1, 1, "M365BP", 35, "Microsoft 365 Business Premium", "22.00"),
        lic(2, 1, "ACRO-PRO", 17, "Adobe Acrobat Pro", "19.99"),
        lic(3, 1, "EXO1", 4, "Exchange Online Plan 1", "4.00")]
# the distributor's own SKUs for the same products
PAX8 = feed(("Acme Ltd", "CFQ7TTC0LCHC", "Microsoft 365 Business Premium (NCE, Monthly)", 35, 22),
            ("Acme Ltd", "PX-ADOBE-ACRO", "Adobe Acrobat Pro - Annual", 17, 19.99),
            ("Acme Ltd", "EXO1", "Exchange Online (Plan 1)", 5, 4))


def test_name_key_ignores_case_brackets_and_billing_words() -> None:
    assert product_name_key("Microsoft 365 Business Premium (NCE, Monthly)") == \
        product_name_key("microsoft 365 business premium - annual subscription")
    assert product_name_key("Adobe Acrobat Pro") != product_name_key("Adobe Acrobat Standard")
    assert product_name_key(None) == "" and product_name_key("(Monthly)") == ""


def test_resolve_order_exact_then_explicit_then_remembered() -> None:
    held = {"a": object()}
    assert resolve_code("A", held, explicit={"a": "X"}, remembered={"a": "Y"}) == ("A", "exact")
    assert resolve_code("B", held, explicit={"b": "X"}, remembered={"b": "Y"}) == ("X", "explicit")
    assert resolve_code("B", held, explicit={}, remembered={"b": "Y"}) == ("Y", "remembered")
    assert resolve_code("B", held, explicit={}, remembered={}) == ("B", "exact")


def test_mismatched_codes_plan_no_deletes_and_no_duplicate_creates() -> None:
    r = decide(PAX8, CLIENTS, HALO, distributor="Pax8")
    # only the exact-code product is synced; the two renamed SKUs are held back with their licences
    assert [(a.kind, a.licence_id) for a in r.actions] == [("update", 3)]
    assert not [a for a in r.actions if a.kind in ("delete", "create")]
    held = {(m.feed_code, m.licence_id): m.suggested_mapping for m in r.mismatches}
    assert held == {("CFQ7TTC0LCHC", 1): {"CFQ7TTC0LCHC": "M365BP"},
                    ("PX-ADOBE-ACRO", 2): {"PX-ADOBE-ACRO": "ACRO-PRO"}}
    assert all("product_mappings=" in m.reason for m in r.mismatches)
    (money,) = r.summary.money
    # before 35x22 + 17x19.99 + 4x4 = 1125.83; after: only EXO1 goes 4 -> 5 seats
    assert money.monthly_before == D("1125.83") and money.monthly_after == D("1129.83")


def test_explicit_product_mappings_sync_under_halo_codes() -> None:
    r = decide(PAX8, CLIENTS, HALO, distributor="Pax8",
               product_mappings={"cfq7ttc0lchc": "M365BP", "PX-ADOBE-ACRO": "ACRO-PRO"})
    assert not r.mismatches
    kinds = sorted((a.kind, a.licence_id) for a in r.actions)
    assert kinds == [("update", 3)]  # same seats and price under the mapped codes: nothing else to do
    uses = {(u.feed_code, u.halo_code, u.method) for u in r.product_mappings}
    assert uses == {("CFQ7TTC0LCHC", "M365BP", "explicit"), ("PX-ADOBE-ACRO", "ACRO-PRO", "explicit")}
    # a seat change through a mapping updates the Halo licence and names both products
    more = feed(("Acme Ltd", "CFQ7TTC0LCHC", "Microsoft 365 Business Premium (NCE, Monthly)", 36, 22))
    r = decide(more, CLIENTS, HALO, distributor="Pax8", cleanup=False, remembered_products={"CFQ7TTC0LCHC": "M365BP"})
    (a,) = r.actions
    assert (a.kind, a.licence_id, a.product_code, a.feed_code) == ("update", 1, "M365BP", "CFQ7TTC0LCHC")
    assert a.halo_name == "Microsoft 365 Business Premium"
    assert a.feed_name == "Microsoft 365 Business Premium (NCE, Monthly)"
    assert r.product_mappings[0].method == "remembered"


def test_two_feed_codes_mapped_to_one_halo_code_are_not_merged() -> None:
    lines = feed(("Acme Ltd", "M365BP", "Microsoft 365 Business Premium", 35, 22),
                 ("Acme Ltd", "OTHER", "Something else", 3, 1))
    r = decide(lines, CLIENTS, HALO, distributor="Pax8", cleanup=False, product_mappings={"OTHER": "M365BP"})
    assert not r.actions
    (s,) = [s for s in r.skipped if s.line == 2]
    assert "maps to the same Halo product code as line 1" in s.reason


def test_first_sync_lists_cleanup_instead_of_deleting() -> None:
    lines = feed(("Acme Ltd", "M365BP", "Microsoft 365 Business Premium", 35, 22))
    later = decide(lines, CLIENTS, HALO, distributor="Pax8")
    assert sorted(a.licence_id for a in later.actions if a.kind == "delete") == [2, 3]
    first = decide(lines, CLIENTS, HALO, distributor="Pax8", first_sync=True)
    assert not [a for a in first.actions if a.kind == "delete"]
    assert sorted(a.licence_id for a in first.would_delete) == [2, 3]
    assert all("first sync" in a.reason for a in first.would_delete)
    assert first.summary.monthly_after == first.summary.monthly_before
    # a zero-seat line is the feed speaking, not cleanup: it is still planned
    zero = feed(("Acme Ltd", "ACRO-PRO", "Adobe Acrobat Pro", 0, 19.99))
    r = decide(zero, CLIENTS, HALO, distributor="Pax8", first_sync=True, cleanup=False)
    assert [(a.kind, a.licence_id) for a in r.actions] == [("delete", 2)]


def test_every_step_names_the_product_by_halo_name() -> None:
    lines = feed(("Acme Ltd", "EXO1", "Exchange Online (Plan 1)", 6, 4),
                 ("Acme Ltd", "NEW1", "Brand new thing", 2, 3))
    r = decide(lines, CLIENTS, HALO, distributor="Pax8")
    by_kind = {(a.kind, a.licence_id): a for a in r.actions}
    assert by_kind[("update", 3)].halo_name == "Exchange Online Plan 1"
    assert by_kind[("update", 3)].feed_name == "Exchange Online (Plan 1)"
    assert by_kind[("create", None)].halo_name == "Brand new thing" and by_kind[("create", None)].feed_name is None
    assert by_kind[("delete", 1)].halo_name == "Microsoft 365 Business Premium"
    assert by_kind[("delete", 2)].halo_name == "Adobe Acrobat Pro"


def test_a_name_match_with_another_distributors_licence_is_not_held() -> None:
    halo = [lic(1, 1, "M365BP", 35, "Microsoft 365 Business Premium", distributor="Ingram")]
    lines = feed(("Acme Ltd", "CFQ7TTC0LCHC", "Microsoft 365 Business Premium", 35, 22))
    r = decide(lines, CLIENTS, halo, distributor="Pax8")
    assert [a.kind for a in r.actions] == ["create"] and not r.mismatches
