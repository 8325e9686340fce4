"""tools.prepaid.assess on hand-made contracts (no server): money banks, missing figures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from halo_contracts.domain import prepaid as pp
from halo_contracts.domain.models import Contract, TimeEntry
from halo_contracts.tools.prepaid import assess

TODAY = date(2026, 6, 15)


def money_bank(**kw) -> Contract:
    base = dict(id=9, client_id=1, ref="Acme - Prepaid amount", type="Prepaid Hours", status="Active",
                prepay_as_amount=True, prepay_total=D("5000"), prepay_used=D("4200"), prepay_balance=D("800"),
                value=D("5000"), prepaid_hours=D("5000"))
    base.update(kw)
    return Contract(**base)


def test_money_bank_converts_the_hour_threshold_at_the_charged_rate():
    entries = [TimeEntry(id=1, contract_id=9, when=date(2026, 6, 1), hours=D("4"), charge_amount=D("600"))]
    burn = pp.burn_rate(entries, 9, TODAY, unit="amount")
    view = assess(money_bank(), TODAY, D("10"), burn, entries=entries)
    # 10 hours x 150 per hour = 1500 >= 800 remaining: alert
    assert view.unit == "amount" and view.alert
    assert view.remaining_amount == D("800") and view.remaining is None
    assert view.quote is None
    assert "converted" in view.notes[0]
    assert view.burn_rate.used == D("600")
    assert view.projected_run_out == date(2026, 10, 13)  # 800 / (600/90) = 120 days after 15 June


def test_money_bank_without_recent_time_alerts_only_when_used_up():
    burn = pp.burn_rate([], 9, TODAY, unit="amount")
    view = assess(money_bank(), TODAY, D("10"), burn, entries=[])
    assert not view.alert and "could not be converted" in view.notes[0]
    view = assess(money_bank(prepay_balance=D("0")), TODAY, D("10"), burn, entries=[])
    assert view.alert and view.message == "The prepaid block is used up."


def test_no_prepay_figures_means_no_assessment():
    c = Contract(id=1, ref="x", type="Prepaid Hours")
    assert assess(c, TODAY, D("10"), pp.burn_rate([], 1, TODAY)) is None
