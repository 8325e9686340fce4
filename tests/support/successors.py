"""Renewals made without the previous-contract link, read from the sandbox's raw documents (a
test's own reading of the rule, not the project's code)."""

from __future__ import annotations

from datetime import date, datetime

PENDING = 2


def _day(ts: str | None) -> date | None:
    return datetime.fromisoformat(ts).date() if ts else None


def _follows(new: dict, old: dict) -> bool:
    """Same client and type, starting after ``old`` starts and ending after it ends (or open-ended)."""
    start, end, new_start = _day(old.get("start_date")), _day(old.get("end_date")), _day(new.get("start_date"))
    return (new["id"] != old["id"] and new.get("client_id") == old.get("client_id")
            and new.get("contracttype") == old.get("contracttype") and None not in (start, end, new_start)
            and new_start > start and (not new.get("end_date") or _day(new["end_date"]) > end))


def pending_successors(docs: list[dict]) -> dict[int, int]:
    """Each contract's earliest Pending contract (naming no previous contract) that follows it,
    when it follows no other contract of the client more closely (the end nearest its start)."""
    out: dict[int, dict] = {}
    for new in docs:
        if new.get("status") != PENDING or new.get("previouscontract"):
            continue
        olds = [o for o in docs if _follows(new, o)]
        if not olds:
            continue
        old = min(olds, key=lambda o: (abs((_day(new["start_date"]) - _day(o["end_date"])).days - 1), o["id"]))
        if old["id"] not in out or (_day(new["start_date"]), new["id"]) < (
                _day(out[old["id"]]["start_date"]), out[old["id"]]["id"]):
            out[old["id"]] = new
    return {k: v["id"] for k, v in out.items()}
