"""Halo JSON <-> domain models. The only module that knows Halo's field names.

The friendly <-> Halo field tables (``CONTRACT_FIELDS``, ``RECURRING_ITEM_FIELDS``,
``LICENCE_FIELDS``) are plain data: ``{friendly: {"halo": wire name, "note": how mapped}}``.
They are generated from the same ``WireField`` specs the mapping functions below run on,
so the documentation served from them cannot drift from what the code sends.

Conventions (docs/DESIGN.md, "Project conventions"):

* money and hours arrive as JSON numbers and become ``Decimal(str(number))``; they leave
  as floats (ints for whole counts) and only here;
* Halo's zone-less timestamps are UTC; they become ``date``; dates leave as
  ``"YYYY-MM-DDT00:00:00"``; Halo's "no date" sentinel (year 1900 and earlier) reads as None;
* status / contract type / billing period are tenant codes resolved through
  :class:`~halo_contracts.config.CodeMaps`; an unknown code is kept as ``"code <n>"`` and a
  ``"code <n>"`` name goes back out as ``n``;
* writes send only the fields a draft was given (``.given()``), plus ``id`` for updates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from halo_contracts.config import CodeMaps
from halo_contracts.domain.charges import ChargeDraft
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.domain.models import (
    Client,
    Contract,
    ContractPeriod,
    Invoice,
    InvoiceLine,
    Licence,
    LookupValue,
    PrepayEntry,
    RecurringInvoice,
    RecurringItem,
    Sla,
    Ticket,
    TimeEntry,
)
from halo_contracts.halo.errors import HaloWireError

__all__ = [
    "CONTRACT_FIELDS",
    "LICENCE_FIELDS",
    "RECURRING_ITEM_FIELDS",
    "WireField",
    "client_from_wire",
    "contract_from_wire",
    "contract_to_wire",
    "format_date",
    "invoice_from_wire",
    "licence_from_wire",
    "licence_to_wire",
    "lookup_from_wire",
    "parse_date",
    "parse_decimal",
    "prepay_entry_from_wire",
    "recurring_invoice_from_wire",
    "recurring_item_from_wire",
    "recurring_item_to_wire",
    "sla_from_wire",
    "ticket_from_wire",
    "time_entry_from_wire",
]

# --------------------------------------------------------------------------------------
# scalar conversions
# --------------------------------------------------------------------------------------

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_date(value: Any) -> date | None:
    """A Halo timestamp (``2026-10-06T05:04:29.23``, zone-less = UTC) as a ``date``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return None if value.year <= 1900 else value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = _FRACTION.sub(lambda m: m.group(1), text, count=1)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text[:10])
            except ValueError:
                return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    result = parsed.date()
    return None if result.year <= 1900 else result


def format_date(value: date | None) -> str | None:
    """A date as Halo wants it on the wire: ``YYYY-MM-DDT00:00:00``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    return f"{value.isoformat()}T00:00:00"


def parse_decimal(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as an exact ``Decimal``: ``Decimal(str(x))``."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _number_out(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return float(Decimal(str(value))) + 0.0  # + 0.0: a zero is sent as 0.0, never -0.0


def _int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            return None


def _link(value: Any) -> int | None:
    """A link to another record; Halo uses 0 / -1 for "none" on these."""
    n = _int(value)
    return None if n is None or n <= 0 else n


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _text(value: Any) -> str | None:
    """Free text; empty means absent."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


_CODE = re.compile(r"^\s*code\s+(-?\d+)\s*$", re.IGNORECASE)


def _code_out(kind: str, name: Any, codes: CodeMaps) -> int | None:
    if name is None:
        return 0 if kind == "line_billing" else None
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    text = str(name)
    m = _CODE.match(text)
    if m:
        return int(m.group(1))
    if kind == "status":
        code, known, label = codes.status_code(text), codes.status_names, "contract status"
    elif kind == "type":
        code, known, label = codes.type_code(text), codes.type_names, "contract type"
    else:
        code, known, label = codes.billing_period_code(text), codes.billing_period_names, "billing frequency"
    if code is None:
        raise HaloWireError(
            f"unknown {label} '{text}'; this Halo knows: {', '.join(known)}",
            details={label: [f"'{text}' is not one of {', '.join(known)}"]},
        )
    return code


def _code_in(kind: str, value: Any, codes: CodeMaps) -> str | None:
    code = _int(value)
    if kind == "status":
        return codes.status_name(code)
    if kind == "type":
        return codes.type_name(code)
    return codes.billing_period_name(code)


# --------------------------------------------------------------------------------------
# field tables
# --------------------------------------------------------------------------------------

_KIND_NOTES = {
    "int": "whole number",
    "link": "id; Halo's 0 or -1 means none",
    "str": "text",
    "text": "text",
    "bool": "true/false",
    "date": "date; Halo sends a zone-less UTC timestamp, we send YYYY-MM-DDT00:00:00",
    "money": "money as a decimal; a JSON number on the wire",
    "hours": "decimal hours; a JSON number on the wire",
    "status": "name resolved through the tenant's contract status codes (unknown code kept as 'code N')",
    "type": "name resolved through the tenant's contract type codes (unknown code kept as 'code N')",
    "billing": "name resolved through the tenant's billing period codes (unknown code kept as 'code N')",
    "line_billing": "billing period code; 0 or absent = the contract's frequency (None)",
    "count": "whole number",
}


@dataclass(frozen=True)
class WireField:
    """One friendly field and the Halo field that carries it."""

    friendly: str
    halo: str
    kind: str
    note: str = ""
    writable: bool = True
    also_reads: tuple[str, ...] = ()  # fallbacks read when ``halo`` is absent

    def describe(self) -> str:
        base = self.note or _KIND_NOTES.get(self.kind, self.kind)
        return base if self.writable else f"{base} (read only)"

    def decode(self, row: Mapping[str, Any], codes: CodeMaps) -> Any:
        raw = row.get(self.halo)
        for alt in self.also_reads:
            if raw is not None:
                break
            raw = row.get(alt)
        return _decode(self.kind, raw, codes)

    def encode(self, value: Any, codes: CodeMaps) -> Any:
        return _encode(self.kind, value, codes)


def _decode(kind: str, raw: Any, codes: CodeMaps) -> Any:
    if kind in ("int", "count"):
        return _int(raw)
    if kind == "link":
        return _link(raw)
    if kind == "str":
        return _str(raw)
    if kind == "text":
        return _text(raw)
    if kind == "bool":
        return _bool(raw)
    if kind == "date":
        return parse_date(raw)
    if kind in ("money", "hours"):
        return parse_decimal(raw)
    if kind in ("status", "type", "billing", "line_billing"):
        return _code_in(kind, raw, codes)
    raise AssertionError(f"unknown wire kind {kind}")  # pragma: no cover


def _encode(kind: str, value: Any, codes: CodeMaps) -> Any:
    if kind in ("status", "type", "billing", "line_billing"):
        return _code_out(kind, value, codes)
    if value is None:
        return None
    if kind in ("int", "count", "link"):
        return int(value)
    if kind in ("str", "text"):
        return str(value)
    if kind == "bool":
        return bool(value)
    if kind == "date":
        return format_date(value)
    if kind in ("money", "hours"):
        return _number_out(value)
    raise AssertionError(f"unknown wire kind {kind}")  # pragma: no cover


_CONTRACT_WIRE: tuple[WireField, ...] = (
    WireField("id", "id", "int", "Halo's contract id", writable=False),
    WireField("client_id", "client_id", "int", "the client (Halo 'Area') id"),
    WireField("client_name", "client_name", "str", "the client's name", writable=False),
    WireField("ref", "ref", "str", "the contract reference / name"),
    WireField("type", "contracttype", "type"),
    WireField("status", "status", "status"),
    WireField("active", "active", "bool", "Halo's own active flag", writable=False),
    WireField("start_date", "start_date", "date"),
    WireField("end_date", "end_date", "date"),
    WireField("billing_frequency", "billingperiod", "billing"),
    WireField("value", "periodchargeamount", "money",
              "charge per billing period (for Prepaid Hours: the price of the block)"),
    WireField("notes", "note", "text", "free text (Halo's field is singular: note)"),
    WireField("sla_id", "sla_id", "link", "the SLA id"),
    WireField("sla_name", "sla_name", "str", "the SLA's name", writable=False),
    WireField("site_id", "site_id", "link", "the client site id"),
    WireField("next_invoice_date", "periodicinvoicenextdate", "date",
              "next periodic invoice date; read falls back to next_invoice_date",
              also_reads=("next_invoice_date",)),
    WireField("previous_contract_id", "previouscontract", "link",
              "the contract this one renews (0 = none)"),
    WireField("term_months", "termmonths", "int", "term length in months"),
    WireField("prepaid_hours", "startbalance", "hours", "hours bought when the contract was set up"),
    WireField("prepay_total", "contract_prepaytotal", "hours",
              "prepay bank total (hours, or money when prepay_as_amount)", writable=False),
    WireField("prepay_used", "contract_prepayused", "hours", "prepay used", writable=False),
    WireField("prepay_balance", "contract_prepaybalance", "hours", "prepay balance left", writable=False),
    WireField("prepay_as_amount", "contract_prepayasamount", "bool",
              "true: the prepay totals are money, not hours", writable=False),
    WireField("prepay_expiry_months", "prepayrecurringexpirymonths", "int",
              "months after which prepaid hours expire"),
    WireField("hours_per_period", "chargehoursperperiod", "hours", "hours allowance per period",
              writable=False),
    WireField("last_modified", "last_modified", "date", writable=False),
)

_LINE_WIRE: tuple[WireField, ...] = (
    WireField("id", "id", "int", "line id", writable=False),
    WireField("recurring_invoice_id", "ihid", "int", "the recurring invoice (header) id; may be negative",
              writable=False),
    WireField("contract_id", "contract_id", "link", "the contract the line bills", writable=False),
    WireField("description", "item_shortdescription", "str", "line description"),
    WireField("long_description", "item_longdescription", "text", "long description"),
    WireField("item_id", "_itemid", "link", "Halo item (product) id"),
    WireField("product_code", "item_code", "str", "the item's code (ties a line to a licence's product code)",
              writable=False),
    WireField("quantity", "qty_order", "hours", "quantity (a decimal; JSON number on the wire)"),
    WireField("unit_price", "unit_price", "money", "price per unit per billing period"),
    WireField("billing_frequency", "period", "line_billing",
              "how often the line bills: the period of the line's recurring invoice (InvoiceHeader.period). "
              "Halo's current lines have no frequency of their own, so a contract has one recurring invoice "
              "per frequency (docs/recurring-billing.md); read falls back to a 2024-era line's billingperiod",
              also_reads=("billingperiod",)),
    WireField("start_date", "startdate", "date", "first day the line bills"),
    WireField("end_date", "enddate", "date", "last day the line bills"),
    WireField("inactive", "isinactive", "bool", "line switched off", writable=False),
    WireField("billed_once", "onetimecharge", "bool", "a charge billed once, not a recurring line", writable=False),
)

_LICENCE_WIRE: tuple[WireField, ...] = (
    WireField("id", "id", "int", "licence id", writable=False),
    WireField("client_id", "client_id", "int", "the client id"),
    WireField("client_name", "client_name", "str", "the client's name", writable=False),
    WireField("product_code", "product_sku", "str", "the distributor's product code (SKU)"),
    WireField("name", "name", "str", "licence / product name"),
    WireField("quantity", "count", "count", "number of seats"),
    WireField("unit_price", "price", "money", "price per seat"),
    WireField("billing_cycle", "billing_cycle", "str", "free text, e.g. Monthly / Annual"),
    WireField("term", "term_duration", "str", "free text, e.g. P1M / P1Y"),
    WireField("distributor", "distributor", "str",
              "who supplies the licence (free text, e.g. Pax8); the licence sync stamps the licences it "
              "manages with its distributor name"),
    WireField("active", "is_active", "bool",
              "Halo's active flag; false = ended (lists include such licences only with includeinactive=true)"),
)


def _table(specs: Iterable[WireField]) -> dict[str, dict[str, str]]:
    return {f.friendly: {"halo": f.halo, "note": f.describe()} for f in specs}


CONTRACT_FIELDS: dict[str, dict[str, str]] = _table(_CONTRACT_WIRE) | {
    "periods": {"halo": "periods / prepay_periods / contract_periods",
                "note": "prepay and allowance periods (read only; detail reads)"},
    "prepay_history": {"halo": "contract_prepayhistory",
                       "note": "the contract's prepay ledger rows (read only; detail reads)"},
}
RECURRING_ITEM_FIELDS: dict[str, dict[str, str]] = _table(_LINE_WIRE)
LICENCE_FIELDS: dict[str, dict[str, str]] = _table(_LICENCE_WIRE)

_BY_FRIENDLY = {
    "contract": {f.friendly: f for f in _CONTRACT_WIRE},
    "line": {f.friendly: f for f in _LINE_WIRE},
    "licence": {f.friendly: f for f in _LICENCE_WIRE},
}


def _read(specs: Iterable[WireField], row: Mapping[str, Any], codes: CodeMaps) -> dict[str, Any]:
    """Friendly kwargs from a Halo row; absent values are left out (model defaults apply)."""
    out: dict[str, Any] = {}
    for spec in specs:
        value = spec.decode(row, codes)
        if value is not None:
            out[spec.friendly] = value
    return out


def _write(table: str, given: Mapping[str, Any], codes: CodeMaps) -> dict[str, Any]:
    specs = _BY_FRIENDLY[table]
    body: dict[str, Any] = {}
    for name, value in given.items():
        spec = specs.get(name)
        if spec is None or not spec.writable:
            raise HaloWireError(f"'{name}' cannot be written to Halo", details={name: ["not a writable field"]})
        body[spec.halo] = spec.encode(value, codes)
    return body


# --------------------------------------------------------------------------------------
# contracts
# --------------------------------------------------------------------------------------


def _period_from_wire(row: Mapping[str, Any]) -> ContractPeriod:
    hours_in = parse_decimal(row.get("hours_in_period"))
    if hours_in is None:
        hours_in = parse_decimal(row.get("hours_added"))
    used = parse_decimal(row.get("hours_used"))
    if used is None:
        used = parse_decimal(row.get("hours_used_this_period"))
    return ContractPeriod(
        name=_text(row.get("name")),
        start_date=parse_date(row.get("start_date")),
        end_date=parse_date(row.get("end_date")),
        current=bool(_bool(row.get("current"))),
        hours_in_period=hours_in,
        hours_used=used,
        hours_remaining=parse_decimal(row.get("hours_remaining")),
        hours_expired=parse_decimal(row.get("hours_expired")),
        amount_remaining=parse_decimal(row.get("amount_remaining")),
    )


def contract_from_wire(row: Mapping[str, Any], codes: CodeMaps) -> Contract:
    """A ``ContractHeader`` (or ``ContractHeader_List`` row) as a :class:`Contract`."""
    data = _read(_CONTRACT_WIRE, row, codes)
    data.setdefault("ref", "")
    periods: list[ContractPeriod] = []
    seen: set[tuple[Any, Any]] = set()
    for key in ("periods", "prepay_periods", "contract_periods"):
        for p in row.get(key) or []:
            if not isinstance(p, Mapping):
                continue
            period = _period_from_wire(p)
            mark = (period.start_date, period.end_date)
            if mark in seen and mark != (None, None):
                continue
            seen.add(mark)
            periods.append(period)
    data["periods"] = periods
    contract_id = data.get("id")
    data["prepay_history"] = [
        prepay_entry_from_wire(h, contract_id=contract_id)
        for h in row.get("contract_prepayhistory") or []
        if isinstance(h, Mapping)
    ]
    return Contract(**data)


def contract_to_wire(fields: ContractFields, codes: CodeMaps, *, contract_id: int | None = None) -> dict[str, Any]:
    """The ``ContractHeader`` object for a create (no id) or a partial update (id + given)."""
    body = _write("contract", fields.given(), codes)
    if contract_id is not None:
        body = {"id": contract_id, **body}
    return body


# --------------------------------------------------------------------------------------
# recurring invoices and lines
# --------------------------------------------------------------------------------------


def recurring_item_from_wire(row: Mapping[str, Any], codes: CodeMaps, *,
                             recurring_invoice_id: int | None = None,
                             contract_id: int | None = None) -> RecurringItem:
    """An ``InvoiceDetail`` line of a recurring invoice as a :class:`RecurringItem`."""
    data = _read(_LINE_WIRE, row, codes)
    if "recurring_invoice_id" not in data and recurring_invoice_id is not None:
        data["recurring_invoice_id"] = recurring_invoice_id
    if "contract_id" not in data and contract_id is not None:
        data["contract_id"] = contract_id
    return RecurringItem(**data)


def recurring_item_to_wire(fields: RecurringItemFields, codes: CodeMaps, *, line_id: int | None = None,
                           recurring_invoice_id: int | None = None,
                           contract_id: int | None = None) -> dict[str, Any]:
    """An ``InvoiceDetail`` row: id (updates) + ihid + contract_id (adds) + the given fields.

    ``billing_frequency`` is not a line field in Halo's current document: it picks the line's
    recurring invoice (its ``period``), so it is left out of the row."""
    body: dict[str, Any] = {}
    if line_id is not None:
        body["id"] = line_id
    if recurring_invoice_id is not None:
        body["ihid"] = recurring_invoice_id
    if contract_id is not None:
        body["contract_id"] = contract_id
    given = {k: v for k, v in fields.given().items() if k != "billing_frequency"}
    body.update(_write("line", given, codes))
    return body


def recurring_invoice_from_wire(row: Mapping[str, Any], codes: CodeMaps) -> RecurringInvoice:
    """A recurring ``InvoiceHeader`` (with its ``lines``) as a :class:`RecurringInvoice`.

    The header's ``period`` is how often it raises an invoice; a line without a frequency of
    its own (every line on a current Halo) bills at it."""
    header_id = _int(row.get("id"))
    contract_id = _link(row.get("contract_id"))
    frequency = _code_in("billing", row.get("period"), codes) if _int(row.get("period")) else None
    lines = [
        recurring_item_from_wire(line, codes, recurring_invoice_id=header_id, contract_id=contract_id)
        for line in row.get("lines") or []
        if isinstance(line, Mapping)
    ]
    if frequency is not None:
        lines = [line if line.billing_frequency else line.model_copy(update={"billing_frequency": frequency})
                 for line in lines]
    return RecurringInvoice(
        id=header_id if header_id is not None else 0,
        client_id=_int(row.get("client_id")),
        contract_id=contract_id,
        contract_ref=_text(row.get("contract_ref")),
        billing_frequency=frequency,
        start_date=parse_date(row.get("startdate")),
        end_date=parse_date(row.get("enddate")),
        next_creation_date=parse_date(row.get("nextcreationdate")),
        lines=lines,
    )


def recurring_invoice_to_wire(*, client_id: int, contract_id: int, contract_ref: str | None = None,
                              billing_frequency: str | None = None, codes: CodeMaps | None = None,
                              start_date: date | None = None, end_date: date | None = None,
                              next_creation_date: date | None = None) -> dict[str, Any]:
    """A recurring ``InvoiceHeader`` with the schedule Halo raises invoices from: ``period``
    (the billing-period code), ``startdate``/``enddate`` and ``nextcreationdate``."""
    body: dict[str, Any] = {"client_id": client_id, "contract_id": contract_id, "is_recurring_invoice": True}
    if contract_ref is not None:
        body["contract_ref"] = contract_ref
    if billing_frequency is not None and codes is not None:
        body["period"] = _code_out("billing", billing_frequency, codes)
    for name, value in (("startdate", start_date), ("enddate", end_date), ("nextcreationdate", next_creation_date)):
        if value is not None:
            body[name] = format_date(value)
    return body


# --------------------------------------------------------------------------------------
# invoices
# --------------------------------------------------------------------------------------


def _invoice_line_from_wire(row: Mapping[str, Any], header_contract_id: int | None) -> InvoiceLine:
    qty = parse_decimal(row.get("qty_order")) or Decimal(0)
    price = parse_decimal(row.get("unit_price")) or Decimal(0)
    total = parse_decimal(row.get("net_amount"))
    if total is None:
        total = qty * price
    contract_id = _link(row.get("contract_id"))
    return InvoiceLine(
        id=_int(row.get("id")),
        contract_id=contract_id if contract_id is not None else header_contract_id,
        description=_str(row.get("item_shortdescription")) or "",
        product_code=_text(row.get("item_code")),
        quantity=qty,
        unit_price=price,
        total=total,
        start_date=parse_date(row.get("startdate")),
        end_date=parse_date(row.get("enddate")),
    )


def invoice_from_wire(row: Mapping[str, Any]) -> Invoice:
    """An ``InvoiceHeader`` as an :class:`Invoice` (credit = negative total or linked credit)."""
    total = parse_decimal(row.get("total")) or Decimal(0)
    credit_for = _link(row.get("creditlinkedtoinvoiceid"))
    contract_id = _link(row.get("contract_id"))
    number = _text(row.get("invoicenumber"))
    return Invoice(
        id=_int(row.get("id")) or 0,
        invoice_number=number,
        client_id=_int(row.get("client_id")),
        client_name=_text(row.get("client_name")),
        contract_id=contract_id,
        invoice_date=parse_date(row.get("invoice_date")),
        period_start=parse_date(row.get("period_start_date")),
        period_end=parse_date(row.get("period_end_date")),
        total=total,
        is_credit=total < 0 or credit_for is not None,
        credit_for_invoice_id=credit_for,
        voided=bool(_bool(row.get("voided"))),
        recurring_invoice_id=_int(row.get("recurring_invoice_id")) or None,
        posted=_bool(row.get("posted")),
        lines=[_invoice_line_from_wire(line, contract_id) for line in row.get("lines") or []
               if isinstance(line, Mapping)],
    )


def charge_line_to_wire(line: ChargeDraft, *, header_id: int | None = None, once: bool = False) -> dict[str, Any]:
    """A distributor charge as an ``InvoiceDetail``: item code, description, quantity, unit cost
    and price, the period it covers (``startdate``/``enddate``: with the code, its natural key);
    ``once`` marks a line added to a recurring invoice as billed once (``onetimecharge``)."""
    body: dict[str, Any] = {}
    if header_id is not None:
        body["ihid"] = header_id
    body.update({
        "item_code": line.product_code,
        "item_shortdescription": line.description,
        "qty_order": _number_out(line.quantity),
        "unit_price": _number_out(line.unit_price),
        "startdate": format_date(line.period_start),
        "enddate": format_date(line.period_end),
    })
    if line.unit_cost is not None:
        body["unit_cost"] = _number_out(line.unit_cost)
    if once:
        body["onetimecharge"] = True
    return body


def invoice_to_wire(*, client_id: int | None = None, invoice_id: int | None = None, invoice_date: date | None = None,
                    lines: list[dict[str, Any]] | None = None,
                    add_lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ``InvoiceHeader``: a new one (client, date, its lines) or lines added to one (id, ``add_lines``)."""
    body: dict[str, Any] = {}
    if invoice_id is not None:
        body["id"] = invoice_id
    if client_id is not None:
        body["client_id"] = client_id
    if invoice_date is not None:
        body["invoice_date"] = format_date(invoice_date)
    if lines is not None:
        body["lines"] = lines
    if add_lines is not None:
        body["add_lines"] = add_lines
    return body


# --------------------------------------------------------------------------------------
# time, tickets, prepay ledger
# --------------------------------------------------------------------------------------


def time_entry_from_wire(row: Mapping[str, Any]) -> TimeEntry:
    """A ticket action (``Actions``) as a :class:`TimeEntry` (``timetaken`` is decimal hours)."""
    contract_id = _link(row.get("actioncontractid"))
    if contract_id is None:
        contract_id = _link(row.get("action_contract_id"))
    return TimeEntry(
        id=_int(row.get("id")) or 0,
        ticket_id=_int(row.get("ticket_id")),
        contract_id=contract_id,
        client_id=_int(row.get("client_id")),
        when=parse_date(row.get("datetime")),
        hours=parse_decimal(row.get("timetaken")) or Decimal(0),
        billable=bool(_bool(row.get("actisbillable"))),
        charge_amount=parse_decimal(row.get("actionchargeamount")) or Decimal(0),
        prepay_hours=parse_decimal(row.get("actionprepayhours")) or Decimal(0),
        invoice_number=_text(row.get("actioninvoicenumber")),
        note=_text(row.get("note")),
    )


def ticket_from_wire(row: Mapping[str, Any]) -> Ticket:
    """A ticket (``Faults``) as a :class:`Ticket`; ``slastate`` "I" = met, "O" = breached."""
    state = (_str(row.get("slastate")) or "").strip().upper()
    return Ticket(
        id=_int(row.get("id")) or 0,
        client_id=_int(row.get("client_id")),
        contract_id=_link(row.get("contract_id")),
        summary=_text(row.get("summary")),
        sla_id=_link(row.get("sla_id")),
        sla_met=True if state == "I" else False if state == "O" else None,
        hours=parse_decimal(row.get("timetaken")) or Decimal(0),
        opened=parse_date(row.get("dateoccurred")),
        closed=parse_date(row.get("dateclosed")),
    )


def prepay_entry_from_wire(row: Mapping[str, Any], *, contract_id: int | None = None) -> PrepayEntry:
    """A ``PrepayHistory`` ledger row as a :class:`PrepayEntry`."""
    row_contract = _link(row.get("contract_id"))
    return PrepayEntry(
        id=_int(row.get("id")) or 0,
        client_id=_int(row.get("client_id")),
        contract_id=row_contract if row_contract is not None else contract_id,
        entry_date=parse_date(row.get("date")),
        hours=parse_decimal(row.get("hours")) or Decimal(0),
        amount=parse_decimal(row.get("amount")) or Decimal(0),
        description=_text(row.get("description")),
        expiry_date=parse_date(row.get("expirydate")),
        invoice_number=_text(row.get("invoice_number")),
    )


# --------------------------------------------------------------------------------------
# licences, clients, SLAs, lookups
# --------------------------------------------------------------------------------------


def licence_from_wire(row: Mapping[str, Any], codes: CodeMaps | None = None) -> Licence:
    """A ``Licence_List`` row as a :class:`Licence`."""
    data = _read(_LICENCE_WIRE, row, codes)  # type: ignore[arg-type]  # no coded fields
    return Licence(**data)


def licence_to_wire(fields: LicenceFields, *, licence_id: int | None = None) -> dict[str, Any]:
    body = _write("licence", fields.given(), None)  # type: ignore[arg-type]
    if licence_id is not None:
        body = {"id": licence_id, **body}
    return body


def client_from_wire(row: Mapping[str, Any]) -> Client:
    """An ``Area`` (Halo's client) as a :class:`Client`."""
    return Client(
        id=_int(row.get("id")) or 0,
        name=_str(row.get("name")) or "",
        inactive=bool(_bool(row.get("inactive"))),
        parent_name=_text(row.get("toplevel_name")),
    )


def sla_from_wire(row: Mapping[str, Any]) -> Sla:
    return Sla(id=_int(row.get("id")) or 0, name=_str(row.get("name")) or "")


def lookup_from_wire(row: Mapping[str, Any]) -> LookupValue:
    return LookupValue(id=_int(row.get("id")) or 0, name=_str(row.get("name")) or "",
                       inactive=bool(_bool(row.get("inactive"))))
