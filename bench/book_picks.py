"""What the benches pick from the sandbox's book: one reading, shared by every bench script.

The benches run as scripts (``python bench/x.py``), so this file is imported by name from
beside them.
"""

from __future__ import annotations

from datetime import date


def renewed_by_pending(docs: list[dict]) -> set[int]:
    """Contracts a Pending one (naming no previous contract) renews: of the same client and type,
    it starts after the contract starts and ends after it ends (or is open-ended), and follows no
    other contract of the client more closely; generate_renewals skips them."""
    def follows(new: dict, old: dict) -> bool:
        return (new["id"] != old["id"] and new.get("client_id") == old.get("client_id")
                and new.get("contracttype") == old.get("contracttype") and bool(old.get("start_date"))
                and bool(old.get("end_date")) and new["start_date"][:10] > old["start_date"][:10]
                and (not new.get("end_date") or new["end_date"][:10] > old["end_date"][:10]))

    def gap(new: dict, old: dict) -> int:
        return abs((date.fromisoformat(new["start_date"][:10]) - date.fromisoformat(old["end_date"][:10])).days - 1)

    out = set()
    for new in docs:
        if new.get("status") == 2 and not new.get("previouscontract") and new.get("start_date"):
            olds = [o for o in docs if follows(new, o)]
            if olds:
                out.add(min(olds, key=lambda o: (gap(new, o), o["id"]))["id"])
    return out
