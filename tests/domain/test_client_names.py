"""find_clients' scoring and confidence rule (domain/matching_basic.py)."""

from __future__ import annotations

from halo_contracts.domain.matching_basic import is_confident, meaningful_chars, name_score


def test_confidence_needs_the_score_and_three_letters():
    assert meaningful_chars(" a-c ") == 2 and meaningful_chars("Acme Corp") == 8
    assert name_score("acme", "Acme Corp Ltd") >= 90 and is_confident("acme", name_score("acme", "Acme Corp Ltd"))
    assert name_score("ac", "Acme Corp Ltd") >= 90 and not is_confident("ac", name_score("ac", "Acme Corp Ltd"))
    weak = name_score("Wayne Enterprises", "Tidewater Marine Supply")
    assert weak < 90 and not is_confident("Wayne Enterprises", weak)
