"""Product mapping for distributor feeds (pure).

A distributor names its products by its own codes (SKUs); Halo's licences may carry other
codes for the same product. A feed line's product is found, per client, in this order:

1. **exact**: the client holds a licence whose product code equals the feed's code;
2. **explicit**: the call's ``product_mappings`` (feed code -> Halo code);
3. **remembered**: a mapping confirmed in an earlier month for this distributor.

A product *name* match (:func:`product_name_key`) is never a mapping: it only suggests one
(the licence sync holds such a create/delete pair back as a "likely code mismatch" and says
which mapping to give).

Codes compare case-insensitively with surrounding spaces ignored (:func:`code_key`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

MappingMethod = Literal["exact", "explicit", "remembered"]

# Words distributors add to a product name that do not change which product it is.
_NOISE = frozenset({
    "nce", "new", "commerce", "monthly", "annual", "annually", "yearly", "month", "year", "months", "years",
    "subscription", "subscriptions", "licence", "licences", "license", "licenses", "seat", "seats", "user",
    "users", "per", "commitment", "term", "billing", "paid", "p1m", "p1y", "p3y", "the", "and", "for", "with",
})
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def code_key(code: str | None) -> str:
    """How product codes compare: trimmed and case-folded."""
    return (code or "").strip().casefold()


def product_name_key(name: str | None) -> str:
    """A product name as compared for a *suggestion*: case, punctuation, bracketed notes and
    billing words removed, remaining words sorted ("Microsoft 365 Business Premium (NCE,
    Monthly)" and "microsoft 365 business premium - annual" compare equal). Blank: ``""``."""
    text = _BRACKETS.sub(" ", (name or "").casefold())
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    kept = sorted({w for w in words if w not in _NOISE})
    return " ".join(kept)


def normalise_mappings(mappings: Mapping[str, str] | None) -> dict[str, str]:
    """Feed code key -> Halo code (as given, trimmed)."""
    return {code_key(k): v.strip() for k, v in (mappings or {}).items() if code_key(k) and v.strip()}


def resolve_code(feed_code: str, held: Mapping[str, object], *, explicit: Mapping[str, str],
                 remembered: Mapping[str, str]) -> tuple[str, MappingMethod]:
    """The Halo product code a feed line syncs with for one client, and how it was found.

    ``held`` is keyed by the client's licence code keys; ``explicit`` and ``remembered`` by
    feed code keys (see :func:`normalise_mappings`). Without a mapping the feed code itself is
    used (a create, when the client holds nothing under it)."""
    key = code_key(feed_code)
    if key in held:
        return feed_code, "exact"
    if key in explicit:
        return explicit[key], "explicit"
    if key in remembered:
        return remembered[key], "remembered"
    return feed_code, "exact"
