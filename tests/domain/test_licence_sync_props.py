"""Properties of the licence sync domain (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo_contracts.domain.licence_sync import Feed, FeedError, SourceLine, decide, parse_csv, parse_rows
from halo_contracts.domain.matching import normalise, similarity
from halo_contracts.domain.models import Client, Licence

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CLIENTS = [Client(id=1, name="Acme Ltd"), Client(id=2, name="Brightwater Dental LLC"),
           Client(id=3, name="Kestrel Engineering GmbH")]
CUSTOMERS = ["ACME LIMITED", "Brightwater Dental", "Kestrel Engineering", "Nobody Matches This"]
CODES = ["A", "B", "C", "D"]
CYCLES = [None, "Monthly", "Annual", "Quarterly"]
TERMS = [None, "P1M", "P1Y"]
PRICES = [None, Decimal("0"), Decimal("9.99"), Decimal("22.00")]


@FAST
@given(st.text(max_size=300))
def test_any_csv_text_gives_a_feed_or_a_feed_error(text: str) -> None:
    try:
        assert isinstance(parse_csv(text), Feed)
    except FeedError as exc:
        assert exc.problems and all(p.problem and p.fix for p in exc.problems)


cell = st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 50), st.floats(allow_nan=True), st.booleans())


@FAST
@given(st.lists(st.fixed_dictionaries({"customer": cell, "product_code": cell, "quantity": cell},
                                      optional={"unit_price": cell, "billing_cycle": cell, "term": cell}),
                max_size=6))
def test_any_rows_give_a_feed_or_a_feed_error(rows: list[dict]) -> None:
    try:
        feed = parse_rows(rows)
    except FeedError as exc:
        assert all(p.line is None or 1 <= p.line <= len(rows) for p in exc.problems)
    else:
        assert all(line.quantity >= 0 and line.customer and line.product_code for line in feed.lines)


@FAST
@given(st.text(max_size=40), st.text(max_size=40))
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    na, nb = normalise(a), normalise(b)
    assert similarity(na, nb) == similarity(nb, na)
    assert 0 <= similarity(na, nb) <= 100
    if na:
        assert similarity(na, na) == 100


line_st = st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(CODES), st.integers(0, 30),
                    st.sampled_from(PRICES), st.sampled_from(CYCLES), st.sampled_from(TERMS))
licence_st = st.tuples(st.sampled_from([1, 2, 3]), st.sampled_from([*CODES, "OLD"]), st.integers(0, 30),
                       st.sampled_from(PRICES), st.sampled_from(CYCLES), st.sampled_from(TERMS),
                       st.sampled_from([None, "", "Pax8", "PAX8 ", "Ingram"]), st.booleans())


def _apply(licences: list[Licence], actions) -> list[Licence]:
    """What Halo would hold after the actions (the executor's effect, simulated)."""
    by_id = {x.id: x.model_copy() for x in licences}
    next_id = max(by_id, default=0) + 1
    for a in actions:
        if a.kind == "create":
            by_id[next_id] = Licence(id=next_id, **a.fields.given())
            next_id += 1
        elif a.kind == "update":
            by_id[a.licence_id] = by_id[a.licence_id].model_copy(update=a.fields.given())
        else:
            del by_id[a.licence_id]
    return list(by_id.values())


@FAST
@given(st.lists(line_st, max_size=10), st.lists(licence_st, max_size=8), st.booleans(), st.booleans())
def test_decide_is_safe_and_converges(lines, held, cleanup: bool, drop_zero: bool) -> None:
    seen: set[tuple[str, str]] = set()
    feed = []
    for n, (customer, code, qty, price, cycle, term) in enumerate(lines, start=1):
        if (customer, code) in seen:
            continue
        seen.add((customer, code))
        feed.append(SourceLine(line=n, customer=customer, product_code=code, quantity=qty, unit_price=price,
                               billing_cycle=cycle, term=term))
    licences = [Licence(id=i + 1, client_id=c, product_code=code, name=code, quantity=q, unit_price=p,
                        billing_cycle=cy, term=t, distributor=dist, active=active)
                for i, (c, code, q, p, cy, t, dist, active) in enumerate(held)]
    by_id = {x.id: x for x in licences}

    first = decide(feed, CLIENTS, licences, cleanup=cleanup, drop_zero_price_lines=drop_zero, distributor="pax8")
    matched = {d.client_id for d in first.matching if d.status == "matched"}
    touched = [a.licence_id for a in first.actions if a.licence_id is not None]
    assert len(touched) == len(set(touched))  # never two writes to one licence
    for a in first.actions:
        assert a.client_id in matched  # never a write for an unmatched/ambiguous customer
        if a.kind == "delete":
            assert any(x.id == a.licence_id and x.client_id == a.client_id for x in licences)
            assert cleanup or a.customer is not None  # without cleanup only quantity-0 deletes
            assert by_id[a.licence_id].active  # an inactive licence is never deleted
            if a.customer is None:  # cleanup deletes only this distributor's licences
                assert (by_id[a.licence_id].distributor or "").strip().casefold() == "pax8"
        if a.licence_id is not None:  # another distributor's licence is never touched
            assert (by_id[a.licence_id].distributor or "").strip().casefold() in ("", "pax8")
        if a.kind == "create":
            assert a.fields.distributor == "pax8"
    assert not any(a.client_id == 0 for a in first.actions)

    second = decide(feed, CLIENTS, _apply(licences, first.actions), cleanup=cleanup,
                    drop_zero_price_lines=drop_zero, distributor="Pax8")
    assert second.actions == [], [a.summary for a in second.actions]
