"""The sandbox's answers to what no public Halo document settles, one switch per unknown.

Defaults follow Halo's 2026 OpenAPI document where it speaks, and the most likely reading
where it does not. ``halopsa-contracts-mcp verify --report FILE`` measures a real tenant's
answers; :func:`Quirks.from_report` turns that report into switches, so the sandbox can play
that tenant (``sandbox --quirks FILE``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CHOICES: dict[str, tuple[Any, ...]] = {
    "document": ("2026", "2024"),
    "lines_post": ("add", "replace"),
    "write_answers": ("record", "empty"),
    "excluderenewed": ("hides_renewed", "ignored"),
    "ticket_datesearch": ("dateoccured", "dateoccurred"),
    "ticket_dates": ("honoured", "ignored"),
    "invoice_dates": ("honoured", "ignored"),
    "contract_type_filter": ("honoured", "ignored"),
    "list_wrappers": ("wrapped", "bare"),
    "lookup_codes": ("default", "shifted"),
}


@dataclass
class Quirks:
    # which document's shapes are served: "2026" (lines carry no billingperiod; one recurring
    # invoice per billing frequency) or "2024" (a billingperiod per line)
    document: str = "2026"
    # POST /RecurringInvoice/Lines: "add" appends the lines, "replace" drops the header's others
    lines_post: str = "add"
    # the 200-without-schema writes (Lines, updatelines, SoftwareLicence, ClientPrepay):
    # "record" answers the saved records, "empty" answers 200 with no body
    write_answers: str = "record"
    # GET /ClientContract?excluderenewed=true: "hides_renewed" leaves out contracts another
    # contract renews (its previouscontract), "ignored" lists them all
    excluderenewed: str = "hides_renewed"
    # the /Tickets datesearch spelling that filters by date opened (the other one is refused)
    ticket_datesearch: str = "dateoccured"
    # GET /Tickets startdate/enddate: "honoured" narrows the list, "ignored" lists every ticket
    ticket_dates: str = "honoured"
    # /Invoice and /RecurringInvoice start_date/end_date/datesearch (2026 document)
    invoice_dates: str = "honoured"
    # GET /ClientContract?contract_type=N
    contract_type_filter: str = "honoured"
    # list answers: "wrapped" ({"record_count", "<key>": [...]}) or "bare" (a JSON array)
    list_wrappers: str = "wrapped"
    # the tenant's numeric codes of contract status, contract type and billing period: "default"
    # (the documented defaults, 1..5) or "shifted" (each 10 higher on the wire and in /Lookup,
    # a tenant whose lists were numbered otherwise: the server needs HALO_*_CODES to match)
    lookup_codes: str = "default"
    # GET /Actions without count answers at most this many rows (0: no cap)
    actions_cap: int = 0

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"quirk {name}={value!r}: use one of {', '.join(map(str, allowed))}")
        if int(self.actions_cap) < 0:
            raise ValueError("quirk actions_cap: a row count, 0 for none")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Quirks:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown quirk(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Quirks:
        """The switches a ``verify`` report settles (its ``"quirks"`` object); a plain
        mapping of switches is accepted as well."""
        values = report.get("quirks", report)
        if not isinstance(values, dict):
            raise ValueError("the report has no 'quirks' object")
        return cls.from_mapping({k: v for k, v in values.items() if v is not None})

    @classmethod
    def load(cls, path: str | Path) -> Quirks:
        return cls.from_report(json.loads(Path(path).read_text(encoding="utf-8")))
