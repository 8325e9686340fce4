"""Unit tests for domain/renewals.py: every rule, no server."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from halo_contracts.domain.models import Contract, Invoice, InvoiceLine, Ticket, TimeEntry
from halo_contracts.domain.money import add_months
from halo_contracts.domain.renewals import (
    RenewalError,
    apply_uplift,
    bucket_of,
    buckets_for,
    check_renewable,
    check_term,
    check_uplift,
    copied_line_dates,
    current_term,
    is_expiring,
    line_not_copied,
    margin_percent,
    period_total,
    renewal_among,
    renewal_term,
    renewal_value,
    revenue_billed,
    review_performance,
    roll_ref,
    sla_compliance,
    uplift_to_target,
    whole_months,
)

TODAY = date(2026, 6, 15)


# ---- ref rolling -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ref", "old", "new", "expected"),
    [
        ("Acme Corp - Managed Services 2024", (date(2024, 1, 1), date(2024, 12, 31)),
         (date(2025, 1, 1), date(2025, 12, 31)), "Acme Corp - Managed Services 2025"),
        # a term across two years: the year named (start or end year) moves by one
        ("Acme 2024", (date(2024, 7, 1), date(2025, 6, 30)), (date(2025, 7, 1), date(2026, 6, 30)), "Acme 2025"),
        ("Acme 2025", (date(2024, 7, 1), date(2025, 6, 30)), (date(2025, 7, 1), date(2026, 6, 30)), "Acme 2026"),
        # three-year term: every year in the span moves by three
        ("Acme 2024-2026", (date(2024, 1, 1), date(2026, 12, 31)), (date(2027, 1, 1), date(2029, 12, 31)),
         "Acme 2027-2029"),
        # fiscal short pair
        ("Acme FY2024/25", (date(2024, 7, 1), date(2025, 6, 30)), (date(2025, 7, 1), date(2026, 6, 30)),
         "Acme FY2025/26"),
        ("Acme FY 2024-25", (date(2024, 7, 1), date(2025, 6, 30)), (date(2025, 7, 1), date(2026, 6, 30)),
         "Acme FY 2025-26"),
        # a year outside the term's span: the last year moves
        ("Acme (est. 1999) Support 2019", (date(2024, 1, 1), date(2024, 12, 31)),
         (date(2025, 1, 1), date(2025, 12, 31)), "Acme (est. 1999) Support 2020"),
        # no year: suffix with the new start year
        ("Acme Managed Services", (date(2025, 1, 1), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 12, 31)),
         "Acme Managed Services (renewal 2026)"),
        # an earlier suffix is replaced, not stacked
        ("Acme Managed Services (renewal 2026)", (date(2026, 1, 1), date(2026, 12, 31)),
         (date(2027, 1, 1), date(2027, 12, 31)), "Acme Managed Services (renewal 2027)"),
        # short term in the same year: month + year suffix so each renewal differs
        ("Acme Q1 2026", (date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 6, 30)),
         "Acme Q1 2026 (renewal Apr 2026)"),
        ("Acme Q1 2026 (renewal Apr 2026)", (date(2026, 4, 1), date(2026, 6, 30)),
         (date(2026, 7, 1), date(2026, 9, 30)), "Acme Q1 2026 (renewal Jul 2026)"),
        # digits that are not years are left alone
        ("Acme 10000 users", (date(2025, 1, 1), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 12, 31)),
         "Acme 10000 users (renewal 2026)"),
    ],
)
def test_roll_ref(ref, old, new, expected):
    assert roll_ref(ref, *old, *new) == expected


def test_roll_ref_without_start_date_uses_end():
    assert roll_ref("X 2025", None, date(2025, 12, 31), date(2026, 1, 1), date(2026, 12, 31)) == "X 2026"


# ---- terms ------------------------------------------------------------------------------------

def test_whole_months():
    assert whole_months(date(2024, 1, 1), date(2024, 12, 31)) == 12
    assert whole_months(date(2024, 3, 15), date(2024, 6, 14)) == 3
    assert whole_months(date(2024, 1, 15), date(2024, 12, 31)) is None


def test_renewal_term_same_months_by_default():
    assert renewal_term(date(2024, 1, 1), date(2024, 12, 31)) == (date(2025, 1, 1), date(2025, 12, 31), 12)
    assert renewal_term(date(2024, 1, 1), date(2024, 3, 31)) == (date(2024, 4, 1), date(2024, 6, 30), 3)
    # month-end start: dateutil clips to the month's last day
    assert renewal_term(date(2023, 12, 1), date(2024, 1, 30), 1) == (date(2024, 1, 31), date(2024, 2, 28), 1)


def test_renewal_term_given_months_and_irregular_days():
    assert renewal_term(date(2024, 1, 1), date(2024, 12, 31), 24) == (date(2025, 1, 1), date(2026, 12, 31), 24)
    # 351-day term repeats as 351 days
    start, end, months = renewal_term(date(2024, 1, 15), date(2024, 12, 31))
    assert (start, end, months) == (date(2025, 1, 1), date(2025, 12, 18), None)
    assert (end - start).days == (date(2024, 12, 31) - date(2024, 1, 15)).days


def test_renewal_term_errors():
    with pytest.raises(RenewalError, match="no end date"):
        renewal_term(date(2024, 1, 1), None)
    with pytest.raises(RenewalError, match="pass term_months"):
        renewal_term(None, date(2024, 12, 31))
    assert renewal_term(None, date(2024, 12, 31), 12)[1] == date(2025, 12, 31)
    with pytest.raises(RenewalError, match="after its end date"):
        renewal_term(date(2025, 1, 1), date(2024, 12, 31))


# ---- uplift and limits --------------------------------------------------------------------------

def test_uplift_to_the_cent_half_up():
    assert apply_uplift(D("2500"), D("10")) == D("2750.00")
    assert apply_uplift(D("2500"), D("3.5")) == D("2587.50")
    assert apply_uplift(D("99.99"), D("3")) == D("102.99")  # 102.9897
    assert apply_uplift(D("0.05"), D("50")) == D("0.08")  # 0.075 -> 0.08 (half-up, not banker's)
    assert apply_uplift(D("1234.56"), D("0")) == D("1234.56")
    assert apply_uplift(D("100"), D("-50")) == D("50.00")


def test_limits():
    assert check_uplift(D("-50")) is None and check_uplift(D("100")) is None
    assert "between -50 and 100" in check_uplift(D("100.01"))
    assert check_uplift(D("-50.5"))
    assert check_term(1) is None and check_term(60) is None
    assert "between 1 and 60" in check_term(0)
    assert check_term(61)


# ---- renewability ------------------------------------------------------------------------------

def c(**kw) -> Contract:
    base = dict(id=1, client_id=1, ref="Acme 2026", status="Active", type="Recurring",
                start_date=date(2025, 7, 1), end_date=date(2026, 6, 30), value=D("1000"), billing_frequency="Monthly")
    base.update(kw)
    return Contract(**base)


def test_renewable_rules():
    assert check_renewable(c(), TODAY).ok
    r = check_renewable(c(status="Cancelled"), TODAY)
    assert not r.ok and "Cancelled" in r.errors[0]
    r = check_renewable(c(end_date=None), TODAY)
    assert not r.ok and "no end date" in r.errors[0]
    r = check_renewable(c(end_date=date(2027, 12, 31)), TODAY)
    assert r.ok and "does not end within a year" in r.warnings[0]
    r = check_renewable(c(status="On Hold"), TODAY)
    assert r.ok and "On Hold" in r.warnings[0]


# ---- expiring ------------------------------------------------------------------------------

def test_renewal_among_rows_without_the_link():
    old = c(id=1, ref="Acme 2025-26")
    other_client = c(id=2, client_id=9, ref="Acme 2026-27", start_date=date(2026, 7, 1), end_date=date(2027, 6, 30))
    rolled = c(id=3, ref="acme 2026-27", start_date=date(2026, 7, 1), end_date=date(2027, 6, 30), type="Ad-Hoc")
    next_term = c(id=4, ref="New deal", start_date=date(2026, 7, 1), end_date=date(2027, 6, 30))
    assert renewal_among(old, [old, other_client, rolled, next_term]) == 3  # its rolled ref first
    assert renewal_among(old, [old, other_client, next_term]) == 4  # same type, the day after it ends
    assert renewal_among(old, [old, other_client]) is None
    twin = c(id=5, ref="Other", start_date=date(2026, 7, 1), end_date=date(2027, 6, 30))
    assert renewal_among(old, [old, next_term, twin]) is None  # two candidates: not guessed
    linked = c(id=6, ref="x", previous_contract_id=1, start_date=date(2026, 8, 1))
    assert renewal_among(old, [old, rolled, linked]) == 6  # Halo's link wins when a row carries it


def test_buckets_and_window():
    assert [bucket_of(d, 90) for d in (0, 30, 31, 60, 61, 90, 91, -1)] == [
        "0-30", "0-30", "31-60", "31-60", "61-90", "61-90", "later", "ended"]
    assert [bucket_of(d, 365) for d in (90, 91, 365)] == ["61-90", "91-365", "91-365"]
    # only the buckets a window reaches, the last cut at the window's end
    assert [b[0] for b in buckets_for(60)] == ["0-30", "31-60"]
    assert [b[0] for b in buckets_for(45)] == ["0-30", "31-45"]
    assert [b[0] for b in buckets_for(20)] == ["0-20"]
    assert [b[0] for b in buckets_for(90)] == ["0-30", "31-60", "61-90"]
    assert [b[0] for b in buckets_for(91)] == ["0-30", "31-60", "61-90", "91-91"]
    assert [b[0] for b in buckets_for(365)] == ["0-30", "31-60", "61-90", "91-365"]
    assert is_expiring(c(end_date=TODAY), TODAY, 90)
    assert is_expiring(c(end_date=date(2026, 9, 13)), TODAY, 90)  # 90 days
    assert not is_expiring(c(end_date=date(2026, 9, 14)), TODAY, 90)  # 91 days
    assert not is_expiring(c(end_date=date(2026, 6, 14)), TODAY, 90)  # already ended
    assert not is_expiring(c(status="Pending"), TODAY, 90)
    assert not is_expiring(c(end_date=None), TODAY, 90)


# ---- performance ------------------------------------------------------------------------------

def test_sla_compliance_ignores_untracked():
    tickets = [Ticket(id=1, sla_met=True), Ticket(id=2, sla_met=False), Ticket(id=3, sla_met=None),
               Ticket(id=4, sla_met=True)]
    tracked, met, pct = sla_compliance(tickets)
    assert (tracked, met) == (3, 2) and pct == D(200) / 3
    assert sla_compliance([Ticket(id=1)]) == (0, 0, None)


def test_revenue_lines_of_the_contract_in_period_credits_subtract_voided_ignored():
    invoices = [
        Invoice(id=1, invoice_date=date(2026, 1, 31), lines=[
            InvoiceLine(contract_id=1, total=D("1000")), InvoiceLine(contract_id=2, total=D("500"))]),
        Invoice(id=2, invoice_date=date(2026, 2, 28), contract_id=1, lines=[InvoiceLine(total=D("1000"))]),
        Invoice(id=3, invoice_date=date(2026, 3, 5), is_credit=True, lines=[
            InvoiceLine(contract_id=1, total=D("-200"))]),
        Invoice(id=4, invoice_date=date(2026, 3, 6), is_credit=True, lines=[
            InvoiceLine(contract_id=1, total=D("50"))]),  # credit stored positive: still subtracts
        Invoice(id=5, invoice_date=date(2026, 3, 31), voided=True, lines=[InvoiceLine(contract_id=1, total=D("9"))]),
        Invoice(id=6, invoice_date=date(2025, 12, 31), lines=[InvoiceLine(contract_id=1, total=D("9"))]),
    ]
    assert revenue_billed(invoices, 1, date(2026, 1, 1), date(2026, 12, 31)) == D("1750")


def test_margin_and_uplift_to_target():
    assert margin_percent(D("1000"), D("700")) == D("30")
    assert margin_percent(D("0"), D("10")) is None
    # cost 700, target 35% -> revenue needed 1076.92..., +7.7% (rounded up to 0.1)
    assert uplift_to_target(D("1000"), D("700"), D("35")) == D("7.7")
    assert uplift_to_target(D("1000"), D("600"), D("35")) == D("0")


def perf(hours, revenue, sla=(9, 1), target=D("35")):
    met, missed = sla
    tickets = [Ticket(id=i, contract_id=1, sla_met=True) for i in range(met)]
    tickets += [Ticket(id=100 + i, contract_id=1, sla_met=False) for i in range(missed)]
    entries = [TimeEntry(id=1, contract_id=1, when=date(2026, 3, 1), hours=D(hours))]
    invoices = [Invoice(id=1, invoice_date=date(2026, 3, 31), lines=[InvoiceLine(contract_id=1, total=D(revenue))])]
    return review_performance(contract_id=1, period_start=date(2026, 1, 1), period_end=date(2026, 6, 15),
                              tickets=tickets, entries=entries, invoices=invoices, cost_rate=D("55"),
                              target_margin=target)


def test_a_quiet_period_says_the_margin_reflects_billing_only():
    invoices = [Invoice(id=1, invoice_date=date(2026, 3, 31), lines=[InvoiceLine(contract_id=1, total=D("2769"))])]
    p = review_performance(contract_id=1, period_start=date(2026, 3, 1), period_end=date(2026, 3, 31), tickets=[],
                           entries=[], invoices=invoices, cost_rate=D("55"), target_margin=D("35"))
    assert p.margin == D(100) and "time at the cost rate only, not licences or products resold" in p.reasons[0]
    assert p.reasons[1].startswith("no tickets and no time in the period: the margin reflects billing only")
    busy = perf("10", "2000")
    assert not any("billing only" in r for r in busy.reasons)


def test_recommendation_renew_as_is():
    p = perf("10", "2000")  # cost 550, margin 72.5%
    assert p.recommendation == "renew as is" and p.margin == D("72.5") and p.cost == D("550")
    assert p.sla_compliance == D("90") and p.suggested_uplift is None
    assert "margin 72.5% against a target of 35.0%" in p.reasons[0]
    assert any("below 95.0%" in r for r in p.reasons)


def test_recommendation_renew_with_uplift():
    p = perf("20", "1500")  # cost 1100, margin 26.7% < 35
    assert p.recommendation == "renew with uplift"
    assert p.suggested_uplift == D("12.9")  # 1100/0.65 = 1692.31 -> +12.82% -> 12.9
    assert any("12.9%" in r for r in p.reasons)


def test_recommendation_review_scope_for_big_gap_sla_or_unbilled_work():
    assert perf("40", "1500").recommendation == "review scope"  # cost 2200 > revenue
    p = perf("10", "2000", sla=(7, 3))  # 70% SLA
    assert p.recommendation == "review scope" and any("SLA compliance is below 80.0%" in r for r in p.reasons)
    p = perf("5", "0")
    assert p.recommendation == "review scope" and p.margin is None
    assert "5 hours were worked but nothing was billed" in p.reasons[0]
    q = perf("0", "0", sla=(0, 0))
    assert q.recommendation == "renew as is" and q.sla_compliance is None


def test_current_term_capped_at_today():
    assert current_term(c(), TODAY) == (date(2025, 7, 1), TODAY)
    assert current_term(c(end_date=date(2026, 3, 31)), TODAY) == (date(2025, 7, 1), date(2026, 3, 31))


def test_roll_ref_never_returns_the_old_ref():
    # the old ref already carries the suffix the new term would get
    assert roll_ref("Acme (renewal Jul 2026)", date(2026, 4, 1), date(2026, 6, 30), date(2026, 7, 1),
                    date(2026, 9, 30)) == "Acme (renewal 1 Jul 2026)"


@settings(max_examples=300, deadline=None)
@given(ref=st.lists(st.sampled_from([*"Acme -/()0123456789FYQ", "2024", "2025/26", " (renewal 2026)",
                                     " (renewal Jul 2026)"]), min_size=1, max_size=12).map("".join)
       .filter(lambda r: r.strip()),
       start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
       months=st.integers(min_value=1, max_value=60))
def test_roll_ref_property_always_a_new_ref(ref, start, months):
    end = add_months(start, months) - timedelta(days=1)
    new_start, new_end, _ = renewal_term(start, end)
    rolled = roll_ref(ref, start, end, new_start, new_end)
    assert rolled.strip() and rolled.casefold() != ref.strip().casefold()


@given(amount=st.decimals(min_value=0, max_value=10**7, places=2),
       pct=st.decimals(min_value=-50, max_value=100, places=2))
def test_uplift_property_matches_cent_rounding(amount, pct):
    exact = amount * (100 + pct) / 100
    got = apply_uplift(amount, pct)
    assert abs(got - exact) <= D("0.005") and got.as_tuple().exponent == -2


# ---- copied lines and the value they make ----------------------------------------------------

OLD_END = date(2026, 12, 31)
NEW_START, NEW_END = date(2027, 1, 1), date(2027, 12, 31)


@pytest.mark.parametrize(("inactive", "start", "end", "copied"), [
    (False, None, None, True),  # open-ended
    (False, None, OLD_END, True),  # bounded to the old term
    (False, None, date(2027, 3, 31), True),  # ends into the new term
    (False, None, date(2026, 12, 30), False),  # stops a day before the old contract: not renewed
    (False, None, TODAY + timedelta(days=30), False),  # still billing today, but ends before the old end
    (True, None, None, False),  # inactive
    (False, date(2028, 1, 1), None, False),  # starts after the renewal ends
])
def test_which_lines_are_copied(inactive, start, end, copied):
    reason = line_not_copied(inactive, start, end, OLD_END, NEW_END)
    assert (reason is None) == copied
    if end is not None and end < OLD_END:
        assert reason == f"it ends {end.isoformat()}, before the old contract ends (2026-12-31)"


@pytest.mark.parametrize(("start", "end", "expected"), [
    (date(2024, 1, 1), None, (NEW_START, None)),
    (date(2024, 1, 1), OLD_END, (NEW_START, NEW_END)),  # bounded to the old term -> to the new one
    (None, date(2027, 3, 31), (NEW_START, date(2027, 3, 31))),  # its own later end is kept
    (None, date(2029, 6, 30), (NEW_START, NEW_END)),  # capped at the new end
    (date(2027, 2, 1), None, (date(2027, 2, 1), None)),  # a later start is kept
])
def test_copied_line_dates(start, end, expected):
    assert copied_line_dates(start, end, OLD_END, NEW_START, NEW_END) == expected


def test_period_total_rounds_each_line_and_converts_other_frequencies():
    assert period_total([(D(25), D("45.17"), None), (D(10), D("99.99"), None)], 1) == D("2129.15")
    assert period_total([(D("1.5"), D("33.33"), None)], 1) == D("50.00")  # 49.995 -> 50.00 per line
    # an annual line in a monthly contract bills a twelfth per month; a quarterly one a third
    assert period_total([(D(1), D("1200"), 12), (D(1), D(90), 3), (D(2), D(10), 1)], 1) == D("150.00")
    assert period_total([(D(1), D(10), 12)], None) is None  # the contract's period is unknown
    assert period_total([], 1) == D("0.00")


def test_renewal_value_follows_the_lines_when_it_was_their_total():
    before, after = D("2129.15"), D("2203.65")  # 25 x 45.17 + 10 x 99.99, and at 3.5%
    got = renewal_value(D("2129.15"), D("3.5"), D("3.5"), before, after)
    assert (got.value, got.from_lines, got.warning) == (D("2203.65"), True, None)
    assert apply_uplift(D("2129.15"), D("3.5")) == D("2203.67")  # what rounding the total would give


def test_renewal_value_keeps_value_times_uplift_otherwise_and_warns_with_both_figures():
    # the value is not its lines' total (a fee on top)
    got = renewal_value(D("2229.15"), D("3.5"), D("3.5"), D("2129.15"), D("2203.65"))
    assert got.value == D("2307.17") and not got.from_lines
    assert "2307.17" in got.warning and "2203.65" in got.warning and "2129.15" in got.warning
    # lines on another uplift than the value
    got = renewal_value(D("2129.15"), D("3.5"), D(5), D("2129.15"), D("2235.65"))
    assert got.value == D("2203.67") and not got.from_lines and "2235.65" in got.warning
    # no lines copied, or no value: value x uplift, nothing to compare
    assert renewal_value(D(100), D(10), D(10), None, None) == renewal_value(D(100), D(10), D(10), None, D(1))
    assert renewal_value(D(100), D(10), D(10), None, None).value == D("110.00")
    assert renewal_value(None, D(10), D(10), D(1), D(1)).value is None
    # value and lines agree after the uplift anyway: no warning
    assert renewal_value(D(100), D(0), D(5), D(100), D("100.00")).warning is None


def test_renewal_among_a_pending_successor_starting_before_the_old_one_ends():
    old = c(id=1, ref="Acme 2025-26")  # 2025-07-01 to 2026-06-30
    early = c(id=7, ref="Hand made", status="Pending", start_date=date(2026, 6, 1), end_date=date(2027, 5, 31))
    later = c(id=8, ref="Another", status="Pending", start_date=date(2026, 6, 20), end_date=None)
    inside = c(id=9, ref="Inside", status="Pending", start_date=date(2025, 9, 1), end_date=date(2026, 3, 31))
    assert renewal_among(old, [old, inside]) is None  # ends before the old one: not a renewal
    assert renewal_among(old, [old, later, early, inside]) == 7  # the earliest such
    assert renewal_among(old, [old, later]) == 8  # open-ended counts
    assert renewal_among(old, [old, c(id=10, ref="Active one", start_date=date(2026, 6, 1),
                                      end_date=date(2027, 5, 31))]) is None  # only a Pending one


def test_another_contracts_renewal_is_not_this_ones():
    old = c(id=1, ref="Acme 2025-26")
    theirs = c(id=11, ref="Acme other", status="Pending", start_date=date(2026, 6, 1), end_date=date(2027, 5, 31),
               previous_contract_id=2)
    assert renewal_among(old, [old, theirs]) is None


def test_a_pending_contract_renews_the_contract_it_follows_most_closely():
    a = c(id=1, ref="Acme A")  # 2025-07-01 to 2026-06-30
    b = c(id=2, ref="Acme B", start_date=date(2025, 10, 1), end_date=date(2026, 9, 30))
    a_next = c(id=3, ref="Acme A next", status="Pending", start_date=date(2026, 7, 1), end_date=date(2027, 6, 30))
    assert renewal_among(a, [a, b, a_next]) == 3
    assert renewal_among(b, [a, b, a_next]) is None  # A's renewal, not B's
    b_next = c(id=4, ref="Acme B next", status="Pending", start_date=date(2026, 9, 20), end_date=date(2027, 9, 30))
    assert renewal_among(b, [a, b, a_next, b_next]) == 4  # starting before B ends, still B's
