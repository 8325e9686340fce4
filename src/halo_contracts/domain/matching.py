"""Matching a distributor's customer names to Halo clients, explainably (pure).

Every decision says *why*: the normalised names that were compared, the score of the best
candidates, and which rule decided (explicit mapping, remembered mapping, automatic match,
ambiguous, unmatched, excluded). Nothing here does I/O.

Normalisation
    case-folded, accents removed, ``&``/``+`` read as ``and``, apostrophes and dots dropped
    (``L.L.C.`` -> ``llc``), every other punctuation mark a space, spaces collapsed, a
    leading ``the`` dropped, and trailing legal-form words removed repeatedly (``Pty Ltd``,
    ``GmbH & Co KG``, ``Inc.``, ``Limited`` …). A name that would become empty keeps its
    words (a company called "Company Ltd" stays "company").

Scoring: ``max(token_sort_ratio(a, b), ratio(a_without_spaces, b_without_spaces))`` on
    the normalised names, 0-100.

    Why this scorer, and not the others rapidfuzz offers:

    * ``token_sort_ratio`` compares whole names after sorting their words, so word order
      ("Smith & Jones" / "Jones and Smith") does not matter, while every word of both names
      still counts: a missing or extra word costs points.
    * ``ratio`` on the names with spaces removed catches split or joined words
      ("NorthWind" / "North Wind"), which token sorting would otherwise punish.
    * ``WRatio``, ``partial_ratio`` and ``token_set_ratio`` are deliberately *not* used:
      they reward one name being contained in the other, so "Acme" scores 100 against
      "Acme Holdings" and "Acme Logistics". For billing that is the dangerous direction -
      sister companies and group members would be matched automatically. Containment is
      better left to a human (the candidates are listed with their scores).

Reasons name Halo clients by id only ("client 12 scores 94 but client 40 (92) …"): a client's
    name is Halo free text and stays in the ``client_name`` fields of the decision and its
    candidates, never in the wording.

Decision (``threshold`` default 90, ``margin`` default 3 points)
    1. an explicit mapping given in the call wins;
    2. otherwise a remembered mapping (confirmed in an earlier month) is used;
    3. otherwise the best-scoring active client is taken automatically when its score is at
       or above ``threshold`` **and** no other client scores within ``margin`` of it;
       when another does, the customer is *ambiguous* and never matched automatically;
    4. otherwise the customer is *unmatched*; its three best candidates are listed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz

from halo_contracts.domain.models import Client

DEFAULT_THRESHOLD = 90.0
DEFAULT_MARGIN = 3.0

# Legal forms, written as their normalised word sequences (dots already removed, so
# "L.L.C." is "llc", "S.A." is "sa", "Pty. Ltd." is "pty ltd").
_LEGAL_FORMS: tuple[str, ...] = (
    "ltd", "limited", "inc", "incorporated", "llc", "llp", "lp", "plc", "gmbh", "mbh", "ag", "kg",
    "gmbh and co kg", "gmbh and co", "co kg", "pty", "pty ltd", "pty limited", "proprietary limited",
    "corp", "corporation", "co", "company", "co ltd", "co inc", "and co", "sa", "sas", "sarl", "srl", "spa",
    "bv", "nv", "oy", "ab", "as", "aps", "kk", "se", "sl", "pc", "pllc", "lda", "ltda", "ulc",
)
# Longest first so "pty ltd" is removed as one form before "ltd" is considered alone.
_SUFFIXES: tuple[tuple[str, ...], ...] = tuple(
    sorted({tuple(f.split()) for f in _LEGAL_FORMS}, key=len, reverse=True)
)

_DROP = re.compile(r"['’`´.]")  # removed without a space: L.L.C. -> LLC, O'Brien -> OBrien
_AND = re.compile(r"[&+]")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _fold(name: str) -> str:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("ß", "ss")
    text = _DROP.sub("", text)
    text = _AND.sub(" and ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def normalise(name: str) -> str:
    """The comparable form of a company name (see the module docstring)."""
    words = _fold(name).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            n = len(suffix)
            if len(words) > n and tuple(words[-n:]) == suffix:
                words = words[:-n]
                changed = True
                break
    return " ".join(words)


def name_key(name: str) -> str:
    """How a customer name is recognised across calls (mappings, exclusions, duplicates):
    case-folded with whitespace collapsed, otherwise exactly as the distributor spells it."""
    return " ".join(name.casefold().split())


def similarity(a: str, b: str) -> float:
    """Score two *normalised* names, 0-100, one decimal (see the module docstring)."""
    if not a or not b:
        return 0.0
    if a == b:
        return 100.0
    score = max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")))
    return round(float(score), 1)


# ---- results ---------------------------------------------------------------------------

MatchStatus = Literal["matched", "ambiguous", "unmatched", "excluded"]
MatchMethod = Literal["explicit", "remembered", "automatic"]


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: int
    client_name: str
    normalised: str
    score: float


class MatchDecision(BaseModel):
    """How one distributor customer was matched (or why not)."""

    model_config = ConfigDict(extra="forbid")

    customer: str
    normalised: str
    status: MatchStatus
    method: MatchMethod | None = None
    client_id: int | None = None
    client_name: str | None = None
    score: float | None = None
    candidates: list[Candidate] = Field(default_factory=list)  # best first, at most three
    reason: str


class MappingProblem(ValueError):
    """An explicit mapping names a client id that Halo does not have."""

    def __init__(self, problems: list[tuple[str, int]]):
        self.problems = problems
        text = "; ".join(f"'{c}' -> {i}" for c, i in problems)
        super().__init__(f"unknown Halo client id(s) in mappings: {text}")


def _lookup(mapping: Mapping[str, int] | None) -> dict[str, int]:
    return {name_key(k): v for k, v in (mapping or {}).items()}


def rank(customer_normalised: str, clients: Iterable[tuple[Client, str]]) -> list[Candidate]:
    """Every client scored against one normalised customer name, best first (ties by id)."""
    scored = [
        Candidate(client_id=c.id, client_name=c.name, normalised=n, score=similarity(customer_normalised, n))
        for c, n in clients
    ]
    scored.sort(key=lambda c: (-c.score, c.client_id))
    return scored


def match_customers(
    customers: Iterable[str],
    clients: Iterable[Client],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    explicit: Mapping[str, int] | None = None,
    remembered: Mapping[str, int] | None = None,
    exclude: Iterable[str | int] = (),
) -> list[MatchDecision]:
    """Decide a Halo client for each distinct customer name (order of first appearance).

    ``explicit`` and ``remembered`` map customer names (compared with :func:`name_key`) to
    client ids. An explicit mapping to an unknown client id raises :class:`MappingProblem`;
    a remembered one that no longer exists is ignored (the decision says so).
    ``exclude`` holds customer names, Halo client names (compared normalised) or Halo client
    ids; an excluded customer is reported and left alone. Inactive clients are only used
    through a mapping: they never take part in automatic matching.
    """
    all_clients = list(clients)
    by_id = {c.id: c for c in all_clients}
    explicit_k = _lookup(explicit)
    remembered_k = _lookup(remembered)
    bad = [(name, cid) for name, cid in (explicit or {}).items() if cid not in by_id]
    if bad:
        raise MappingProblem(bad)

    excluded_ids = {e for e in exclude if isinstance(e, int) and not isinstance(e, bool)}
    excluded_names = {name_key(e) for e in exclude if isinstance(e, str)}
    excluded_norm = {normalise(e) for e in exclude if isinstance(e, str)}
    for c in all_clients:
        if normalise(c.name) in excluded_norm:
            excluded_ids.add(c.id)

    active = [(c, normalise(c.name)) for c in all_clients if not c.inactive]
    decisions: list[MatchDecision] = []
    seen: set[str] = set()
    for customer in customers:
        key = name_key(customer)
        if key in seen:
            continue
        seen.add(key)
        norm = normalise(customer)
        ranked = rank(norm, active)
        top3 = ranked[:3]

        def decided(status: MatchStatus, reason: str, client: Client | None = None,
                    method: MatchMethod | None = None, score: float | None = None,
                    customer: str = customer, norm: str = norm, top3: list[Candidate] = top3) -> MatchDecision:
            return MatchDecision(customer=customer, normalised=norm, status=status, method=method,
                                 client_id=client.id if client else None,
                                 client_name=client.name if client else None,
                                 score=score, candidates=top3, reason=reason)

        def score_of(client: Client, norm: str = norm) -> float:
            return similarity(norm, normalise(client.name))

        if key in excluded_names:
            decisions.append(decided("excluded", "the customer is in exclude_clients"))
            continue

        mapped_id, method = None, None
        if key in explicit_k:
            mapped_id, method = explicit_k[key], "explicit"
        elif key in remembered_k and remembered_k[key] in by_id:
            mapped_id, method = remembered_k[key], "remembered"
        note = ""
        if key in remembered_k and remembered_k[key] not in by_id and key not in explicit_k:
            note = f" (the remembered mapping to client {remembered_k[key]} was ignored: Halo no longer has it)"

        if mapped_id is not None:
            client = by_id[mapped_id]
            if client.id in excluded_ids:
                decisions.append(decided("excluded", f"mapped to client {client.id}, which is in exclude_clients",
                                         client, method, score_of(client)))
                continue
            why = ("mapped explicitly in this call" if method == "explicit"
                   else "mapping confirmed in an earlier run (remembered)")
            if client.inactive:
                why += "; note: the Halo client is inactive"
            decisions.append(decided("matched", why, client, method, score_of(client)))
            continue

        if not ranked:
            decisions.append(decided("unmatched", "Halo has no active clients to match against" + note))
            continue
        best = ranked[0]
        best_client = by_id[best.client_id]
        if best.score < threshold:
            decisions.append(decided(
                "unmatched",
                f"best score {best.score:g} is below the threshold {threshold:g}; map it explicitly "
                f"with mappings {{\"{customer}\": <client id>}} if one of the candidates is right" + note))
            continue
        close = [c for c in ranked[1:] if best.score - c.score <= margin]
        if close:
            others = ", ".join(f"client {c.client_id} ({c.score:g})" for c in close[:3])
            decisions.append(decided(
                "ambiguous",
                f"client {best.client_id} scores {best.score:g} but {others} within {margin:g} points; "
                f"not matched automatically - choose with mappings" + note))
            continue
        if best_client.id in excluded_ids:
            decisions.append(decided("excluded", f"matches client {best_client.id}, which is in exclude_clients",
                                     best_client, "automatic", best.score))
            continue
        decisions.append(decided("matched", f"score {best.score:g} is at or above the threshold {threshold:g}"
                                 + note, best_client, "automatic", best.score))
    return decisions
