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
from dataclasses import dataclass
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
    bad = [(name, cid) for name, cid in (explicit or {}).items() if cid not in by_id]
    if bad:
        raise MappingProblem(bad)
    excluded_ids, excluded_names = _exclusions(list(exclude), all_clients)
    matcher = _Matcher(by_id=by_id, active=[(c, normalise(c.name)) for c in all_clients if not c.inactive],
                       explicit=_lookup(explicit), remembered=_lookup(remembered), excluded_ids=excluded_ids,
                       excluded_names=excluded_names, threshold=threshold, margin=margin)
    decisions: list[MatchDecision] = []
    seen: set[str] = set()
    for customer in customers:
        key = name_key(customer)
        if key in seen:
            continue
        seen.add(key)
        decisions.append(matcher.decide(customer, key))
    return decisions


def _exclusions(exclude: list[str | int], clients: list[Client]) -> tuple[set[int], set[str]]:
    """The excluded client ids (given, or named by a client's normalised name) and customer keys."""
    excluded_ids = {e for e in exclude if isinstance(e, int) and not isinstance(e, bool)}
    excluded_names = {name_key(e) for e in exclude if isinstance(e, str)}
    excluded_norm = {normalise(e) for e in exclude if isinstance(e, str)}
    excluded_ids.update(c.id for c in clients if normalise(c.name) in excluded_norm)
    return excluded_ids, excluded_names


@dataclass
class _Matcher:
    """The rules of one matching run, applied to one customer at a time."""

    by_id: dict[int, Client]
    active: list[tuple[Client, str]]
    explicit: dict[str, int]
    remembered: dict[str, int]
    excluded_ids: set[int]
    excluded_names: set[str]
    threshold: float
    margin: float

    def decide(self, customer: str, key: str) -> MatchDecision:
        norm = normalise(customer)
        ranked = rank(norm, self.active)
        one = _Decision(customer, norm, ranked[:3])
        if key in self.excluded_names:
            return one.made("excluded", "the customer is in exclude_clients")
        mapped = self._mapped(key)
        if mapped is not None:
            return self._by_mapping(one, *mapped)
        return self._automatic(one, ranked, self._ignored_note(key))

    def _mapped(self, key: str) -> tuple[Client, MatchMethod] | None:
        if key in self.explicit:
            return self.by_id[self.explicit[key]], "explicit"
        if key in self.remembered and self.remembered[key] in self.by_id:
            return self.by_id[self.remembered[key]], "remembered"
        return None

    def _ignored_note(self, key: str) -> str:
        if key in self.remembered and self.remembered[key] not in self.by_id and key not in self.explicit:
            return f" (the remembered mapping to client {self.remembered[key]} was ignored: Halo no longer has it)"
        return ""

    def _by_mapping(self, one: _Decision, client: Client, method: MatchMethod) -> MatchDecision:
        score = similarity(one.norm, normalise(client.name))
        if client.id in self.excluded_ids:
            return one.made("excluded", f"mapped to client {client.id}, which is in exclude_clients",
                            client, method, score)
        why = ("mapped explicitly in this call" if method == "explicit"
               else "mapping confirmed in an earlier run (remembered)")
        if client.inactive:
            why += "; note: the Halo client is inactive"
        return one.made("matched", why, client, method, score)

    def _automatic(self, one: _Decision, ranked: list[Candidate], note: str) -> MatchDecision:
        if not ranked:
            return one.made("unmatched", "Halo has no active clients to match against" + note)
        best = ranked[0]
        best_client = self.by_id[best.client_id]
        if best.score < self.threshold:
            return one.made(
                "unmatched",
                f"best score {best.score:g} is below the threshold {self.threshold:g}; map it explicitly "
                f"with mappings {{\"{one.customer}\": <client id>}} if one of the candidates is right" + note)
        close = [c for c in ranked[1:] if best.score - c.score <= self.margin]
        if close:
            others = ", ".join(f"client {c.client_id} ({c.score:g})" for c in close[:3])
            return one.made(
                "ambiguous",
                f"client {best.client_id} scores {best.score:g} but {others} within {self.margin:g} points; "
                f"not matched automatically - choose with mappings" + note)
        if best_client.id in self.excluded_ids:
            return one.made("excluded", f"matches client {best_client.id}, which is in exclude_clients",
                            best_client, "automatic", best.score)
        return one.made("matched", f"score {best.score:g} is at or above the threshold {self.threshold:g}" + note,
                        best_client, "automatic", best.score)


@dataclass(frozen=True)
class _Decision:
    """What every decision about one customer carries: its name, normal form and top candidates."""

    customer: str
    norm: str
    top3: list[Candidate]

    def made(self, status: MatchStatus, reason: str, client: Client | None = None,
             method: MatchMethod | None = None, score: float | None = None) -> MatchDecision:
        return MatchDecision(customer=self.customer, normalised=self.norm, status=status, method=method,
                             client_id=client.id if client else None,
                             client_name=client.name if client else None,
                             score=score, candidates=self.top3, reason=reason)
