"""Renewals made without the previous-contract link, read from the sandbox's raw documents (a
test's own reading of the rule, not the project's code)."""

from __future__ import annotations

from datetime import date, datetime

PENDING = 2


def _day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


def pending_successors(docs: list[dict]) -> dict[int, int]:
    """Each contract's earliest Pending contract of the same client and type that starts after it
    starts and ends after it ends (or is open-ended)."""
    out = {}
    for c in docs:
        start, end = _day(c.get("start_date")), _day(c.get("end_date"))
        if start is None or end is None:
            continue
        found = [o for o in docs if o["id"] != c["id"] and o.get("client_id") == c.get("client_id")
                 and o.get("contracttype") == c.get("contracttype") and o.get("status") == PENDING
                 and _day(o.get("start_date")) and _day(o["start_date"]) > start
                 and (not o.get("end_date") or _day(o["end_date"]) > end)]
        if found:
            out[c["id"]] = min(found, key=lambda o: (_day(o["start_date"]), o["id"]))["id"]
    return out
