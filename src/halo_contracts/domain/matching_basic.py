"""Scoring client names against a query for ``find_clients`` (pure)."""

from __future__ import annotations

from rapidfuzz import fuzz, utils


def name_score(query: str, name: str) -> float:
    """0–100: how well ``name`` answers ``query``.

    A name containing the whole query (case and punctuation aside) scores at least 90, so
    "acme" finds "Acme Corp Ltd"; otherwise the best of token-set and partial ratios.
    """
    q = utils.default_process(query)
    n = utils.default_process(name)
    if not q or not n:
        return 0.0
    if q == n:
        return 100.0
    score = max(fuzz.token_set_ratio(q, n), fuzz.partial_ratio(q, n) * 0.95, fuzz.WRatio(q, n))
    if q in n:
        score = max(score, 90.0 + 10.0 * len(q) / len(n) * 0.99)
    return round(min(score, 99.9), 1)
