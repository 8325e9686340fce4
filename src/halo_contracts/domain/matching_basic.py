"""Scoring client names against a query for ``find_clients`` (pure).

Confidence: a candidate is a confident match when it scores at least ``CONFIDENT_SCORE`` and the
query has at least ``CONFIDENT_CHARS`` letters or digits; anything else is a weak candidate,
shown as such. A query with fewer than ``MIN_QUERY_CHARS`` letters or digits matches nearly
every name ("e" is in most of them) and is refused before anything is read.
"""

from __future__ import annotations

from rapidfuzz import fuzz, utils

MIN_QUERY_CHARS = 2  # fewer letters or digits: refused
CONFIDENT_CHARS = 3  # fewer: never a confident match ("ac" is in many names)
CONFIDENT_SCORE = 90.0
WEAK_FLOOR = 50.0  # weak candidates below this are not shown


def meaningful_chars(query: str) -> int:
    """Letters and digits in ``query`` (what the scoring looks at)."""
    return sum(1 for ch in query if ch.isalnum())


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


def is_confident(query: str, score: float) -> bool:
    """A match to act on (otherwise a weak candidate to confirm)."""
    return score >= CONFIDENT_SCORE and meaningful_chars(query) >= CONFIDENT_CHARS
