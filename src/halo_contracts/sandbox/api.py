"""The Halo resources the sandbox serves: routing, list filters, paging, writes, validation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

from .logic import (
    ACTIVE_STATUSES,
    BILLING_PERIOD,
    CONTRACT_STATUS,
    CONTRACT_TYPE,
    cents,
    contract_periods,
    money,
    prepay_periods,
    prepay_summary,
    to_json_number,
)
from .spec import check_object, format_ts, parse_ts

if TYPE_CHECKING:
    from .app import Sandbox

MAX_PAGE = 100
DEFAULT_PAGE = 50


class HaloError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _model_state(errors: dict[str, list[str]]) -> HaloError:
    return HaloError(400, errors)


def _not_found(what: str, id_: Any) -> HaloError:
    return HaloError(404, {"ClassName": "HaloNotFound", "Message": f"{what} {id_} not found."})


# --------------------------------------------------------------------------- query helpers


class Query:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.raw = items
        self.values: dict[str, str] = {}
        for k, v in items:
            self.values[k.lower()] = v

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        return value.strip().lower() == "true"

    def int(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value.strip() == "":
            return None
        return int(value)

    def orders(self) -> list[tuple[str, bool]]:
        out = []
        for suffix in ("", "2", "3", "4", "5"):
            name = self.values.get(f"order{suffix}")
            if name:
                out.append((name.strip(), self.flag(f"orderdesc{suffix}")))
        return out


def _check_query(sb: Sandbox, method: str, path: str, q: Query) -> None:
    op = sb.spec.operation(method, path)
    if op is None:
        return
    errors: dict[str, list[str]] = {}
    for name, value in q.values.items():
        kind = op.query.get(name)
        if kind is None:
            if sb.strict:
                errors.setdefault(name, []).append(
                    f"The query parameter '{name}' is not defined for {method} {op.template} (sandbox strict mode)."
                )
            continue
        if value == "":
            continue
        if not _query_value_ok(kind, value.strip()):
            errors.setdefault(name, []).append(f"The value '{value}' is not valid.")
    if errors:
        raise _model_state(errors)


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _query_value_ok(kind: str, value: str) -> bool:
    if kind in ("int", "integer"):
        # Halo's integer parameters are 32-bit: larger values do not bind
        return re.fullmatch(r"[+-]?\d+", value) is not None and _INT32_MIN <= int(value) <= _INT32_MAX
    if kind in ("bool", "boolean"):
        return value.lower() in ("true", "false")
    if kind == "double":
        try:
            float(value)
        except ValueError:
            return False
    return True


def _paging(q: Query, pageable: bool) -> tuple[int | None, int, int | None]:
    """(limit, offset, page_no or None when not paginating)."""
    if pageable and q.flag("pageinate"):
        size = q.int("page_size") or DEFAULT_PAGE
        size = max(1, min(size, MAX_PAGE))
        page = max(1, q.int("page_no") or 1)
        return size, (page - 1) * size, page
    count = q.int("count")
    return (count if count and count > 0 else None), 0, None


def _list(key: str, total: int, rows: list[dict], page: int | None, limit: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if page is not None:
        out["page_no"] = page
        out["page_size"] = limit
    out["record_count"] = total
    out[key] = rows
    return out


def _date_bound(value: str | None, end: bool) -> str | None:
    if not value:
        return None
    parsed = parse_ts(value)
    if parsed is None:
        return None
    try:
        if end and len(value.strip()) <= 10:  # a bare date ends after that whole day
            return format_ts(parsed + timedelta(days=1))
        return format_ts(parsed) if not end else format_ts(parsed + timedelta(seconds=1))
    except OverflowError:  # the last representable day: the bound is open-ended
        return None


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --------------------------------------------------------------------------- write helpers

_COMPUTED = {
    "contracts": {
        "client_name",
        "sla_name",
        "contracttype_name",
        "contract_status",
        "billing_period_string",
        "started",
        "expired",
        "contract_prepaytotal",
        "contract_prepayused",
        "contract_prepaybalance",
        "contract_prepayhistory",
        "prepay_periods",
        "contract_periods",
        "periods",
        "last_modified",
        "_warning",
        "createdby_id",
        "createdby_name",
    },
    "rinvoices": {"client_name", "contract_ref", "total", "tax_total", "_warning", "last_modified"},
    "rlines": {"net_amount", "total_price", "tax_amount", "_warning"},
    "prepay": {"client_name", "_warning"},
    "licences": {"client_name", "site_name", "_warning"},
}


def _parse_body(sb: Sandbox, body: bytes, schema: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Parse and type-check a posted array; returns (coerced items, ModelState errors so far)."""
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise _model_state({"": [f"Unexpected character encountered while parsing value: {exc}. Path ''."]}) from exc
    if not isinstance(data, list):
        raise _model_state(
            {
                "": [
                    "Cannot deserialize the current JSON value into type 'System.Collections.Generic.List`1"
                    f"[{schema}]' because the type requires a JSON array (e.g. [1,2,3]). Path ''."
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    items = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            errors.setdefault(f"[{i}]", []).append(f"Unexpected value for an object of type '{schema}'. Path '[{i}]'.")
            continue
        items.append(check_object(sb.spec, schema, item, f"[{i}]", sb.strict, errors))
    if len(items) != len(data):
        raise _model_state(errors)
    return items, errors


def _required(errors: dict[str, list[str]], i: int, name: str, message: str | None = None) -> None:
    key = f"[{i}].{name}"
    if key not in errors:  # a value that failed conversion is reported once
        errors[key] = [message or f"The {name} field is required."]


def _written(data: Any, items: list[Any]) -> Response:
    return JSONResponse(data[0] if len(items) == 1 else data, status_code=201)


def _now(sb: Sandbox) -> str:
    return format_ts(sb.now())


# --------------------------------------------------------------------------- renderers


class Ctx:
    """Per-request caches for names joined into answers."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._clients: dict[int, dict] = {}
        self._slas: dict[int, dict] | None = None
        self._contracts: dict[int, dict] = {}

    def clients(self, ids: list[Any]) -> None:
        want = [i for i in ids if isinstance(i, int) and i not in self._clients]
        if want:
            self._clients.update(self.sb.store.get_many("clients", want))

    def client_name(self, id_: Any) -> str | None:
        if not isinstance(id_, int):
            return None
        if id_ not in self._clients:
            self.clients([id_])
        doc = self._clients.get(id_)
        return doc.get("name") if doc else None

    def sla_name(self, id_: Any) -> str | None:
        if self._slas is None:
            self._slas = {d["id"]: d for d in self.sb.store.where("slas")}
        doc = self._slas.get(id_) if isinstance(id_, int) else None
        return doc.get("name") if doc else None

    def contracts(self, ids: list[Any]) -> None:
        want = [i for i in ids if isinstance(i, int) and i and i not in self._contracts]
        if want:
            self._contracts.update(self.sb.store.get_many("contracts", want))

    def contract_ref(self, id_: Any) -> str | None:
        if not isinstance(id_, int) or not id_:
            return None
        if id_ not in self._contracts:
            self.contracts([id_])
        doc = self._contracts.get(id_)
        return doc.get("ref") if doc else None


def _contract_out(sb: Sandbox, ctx: Ctx, doc: dict, full: bool) -> dict[str, Any]:
    out = dict(doc)
    out["client_name"] = ctx.client_name(doc.get("client_id"))
    out["sla_name"] = ctx.sla_name(doc.get("sla_id"))
    out["contracttype_name"] = CONTRACT_TYPE.get(doc.get("contracttype") or 0, "")
    out["contract_status"] = CONTRACT_STATUS.get(doc.get("status") or 0, "")
    out["billing_period_string"] = BILLING_PERIOD.get(doc.get("billingperiod") or 0, "")
    start = parse_ts(doc.get("start_date") or "")
    end = parse_ts(doc.get("end_date") or "")
    out["started"] = bool(start and start.date() <= sb.today)
    out["expired"] = bool(end and end.date() < sb.today)
    if not full:
        props = sb.spec.properties("ContractHeader_List")
        out = {k: v for k, v in out.items() if k in props}
    return out


def _line_out(doc: dict) -> dict[str, Any]:
    out = dict(doc)
    net = cents(money(doc.get("qty_order")) * money(doc.get("unit_price")))
    out["net_amount"] = to_json_number(net)
    out["tax_amount"] = 0.0
    out["total_price"] = to_json_number(net)
    return out


def _rinvoice_out(sb: Sandbox, ctx: Ctx, doc: dict, lines: list[dict] | None, all_lines: list[dict]) -> dict:
    out = dict(doc)
    out["client_name"] = ctx.client_name(doc.get("client_id"))
    out["contract_ref"] = ctx.contract_ref(doc.get("contract_id"))
    total = sum((cents(money(x.get("qty_order")) * money(x.get("unit_price"))) for x in all_lines), Decimal(0))
    out["total"] = to_json_number(total)
    out["tax_total"] = 0.0
    if lines is not None:
        out["lines"] = [_line_out(x) for x in lines]
    return out


# --------------------------------------------------------------------------- handlers


class Api:
    def __init__(self, sb: Sandbox, q: Query, body: bytes) -> None:
        self.sb = sb
        self.store = sb.store
        self.q = q
        self.body = body
        self.ctx = Ctx(sb)

    # ------------------------------------------------------------------ clients, SLAs, lookups
    def list_clients(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        include_inactive = q.flag("includeinactive")
        include_active = q.flag("includeactive", True)
        if not include_inactive:
            clauses.append(("coalesce(inactive, 0) = 0", []))
        if not include_active:
            clauses.append(("coalesce(inactive, 0) = 1", []))
        search = q.get("search") or q.get("search_name_only")
        if search:
            clauses.append(("lower(name) LIKE ? ESCAPE '\\'", [_like(search)]))
        if q.int("toplevel_id"):
            clauses.append(("toplevel_id = ?", [q.int("toplevel_id")]))
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("clients", clauses, q.orders(), limit, offset)
        return JSONResponse(_list("clients", total, rows, page, limit))

    def get_client(self, id_: int) -> Response:
        doc = self.store.get("clients", id_)
        if doc is None:
            raise _not_found("Client", id_)
        return JSONResponse(doc)

    def list_slas(self) -> Response:
        return JSONResponse(self.store.where("slas"))

    def get_sla(self, id_: int) -> Response:
        doc = self.store.get("slas", id_)
        if doc is None:
            raise _not_found("SLA", id_)
        return JSONResponse(doc)

    def list_lookups(self) -> Response:
        lookupid = self.q.int("lookupid")
        rows = (
            self.store.where("lookups", "lookupid = ?", [lookupid])
            if lookupid is not None
            else self.store.where("lookups")
        )
        return JSONResponse(
            [
                {"id": r["_code"], "lookupid": r["lookupid"], "name": r["name"], "inactive": r.get("inactive", False)}
                for r in rows
            ]
        )

    # ------------------------------------------------------------------ contracts
    def list_contracts(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.int("site_id"):
            clauses.append(("site_id = ?", [q.int("site_id")]))
        if not q.flag("includeinactive"):
            clauses.append(("active = 1", []))
        if q.flag("excluderenewed"):
            clauses.append(
                ("id NOT IN (SELECT previouscontract FROM contracts WHERE coalesce(previouscontract, 0) <> 0)", [])
            )
        search = q.get("search")
        if search:
            pattern = _like(search)
            clauses.append(
                (
                    "lower(ref) LIKE ? ESCAPE '\\' OR lower(coalesce(json_extract(doc, '$.refextra'), '')) "
                    "LIKE ? ESCAPE '\\' OR client_id IN (SELECT id FROM clients WHERE lower(name) LIKE ? ESCAPE '\\')",
                    [pattern, pattern, pattern],
                )
            )
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query(
            "contracts",
            clauses,
            q.orders(),
            limit,
            offset,
            order_sql={"client_name": "(SELECT name FROM clients c WHERE c.id = contracts.client_id)"},
        )
        self.ctx.clients([r.get("client_id") for r in rows])
        return JSONResponse(
            _list("contracts", total, [_contract_out(self.sb, self.ctx, r, False) for r in rows], page, limit)
        )

    def get_contract(self, id_: int) -> Response:
        doc = self.store.get("contracts", id_)
        if doc is None:
            raise _not_found("Contract", id_)
        out = _contract_out(self.sb, self.ctx, doc, True)
        details, periods = self.q.flag("includedetails"), self.q.flag("includeperiods")
        if details or periods:
            actions = self.store.where("actions", "contract_id = ?", [id_])
        if details:
            ledger = self.store.where("prepay", "contract_id = ?", [id_], order="json_extract(doc, '$.date'), id")
            summary = prepay_summary(doc, ledger, actions, self.sb.today)
            out["contract_prepaytotal"] = to_json_number(summary.total)
            out["contract_prepayused"] = to_json_number(summary.used)
            out["contract_prepaybalance"] = to_json_number(summary.balance)
            out["contract_prepayasamount"] = bool(doc.get("contract_prepayasamount"))
            out["contract_prepayhistory"] = [self._prepay_out(r) for r in ledger]
            prepaid = doc.get("contracttype") == 2 or doc.get("allowprepay") or ledger or money(doc.get("startbalance"))
            out["prepay_periods"] = prepay_periods(doc, ledger, actions, self.sb.today) if prepaid else []
        if periods:
            out["periods"] = contract_periods(doc, actions, self.sb.today)
        return JSONResponse(out)

    def post_contracts(self) -> tuple[Response, bool]:
        items, errors = _parse_body(self.sb, self.body, "ContractHeader")
        plans: list[tuple[dict | None, dict]] = []
        for i, item in enumerate(items):
            existing = None
            if item.get("id"):
                existing = self.store.get("contracts", item["id"])
                if existing is None:
                    raise _not_found("Contract", item["id"])
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["contracts"]})
            if existing is None:
                if not item.get("client_id"):
                    _required(errors, i, "client_id")
                if not (item.get("ref") or "").strip():
                    _required(errors, i, "ref")
            if merged.get("client_id") and self.store.get("clients", merged["client_id"]) is None:
                _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")
            for name, codes in (
                ("status", CONTRACT_STATUS),
                ("contracttype", CONTRACT_TYPE),
                ("billingperiod", BILLING_PERIOD),
            ):
                if name in item and item[name] not in codes and item[name] not in (None, 0):
                    _required(errors, i, name, f"{item[name]} is not a valid {name} code.")
            if merged.get("sla_id") and self.store.get("slas", merged["sla_id"]) is None:
                _required(errors, i, "sla_id", f"SLA {merged['sla_id']} does not exist.")
            prev = merged.get("previouscontract")
            if prev and (prev == merged.get("id") or self.store.get("contracts", prev) is None):
                _required(errors, i, "previouscontract", f"Contract {prev} does not exist.")
            start, end = parse_ts(merged.get("start_date") or ""), parse_ts(merged.get("end_date") or "")
            if start and end and end < start:
                _required(errors, i, "end_date", "The end date must be on or after the start date.")
            plans.append((existing, merged))
        if errors:
            raise _model_state(errors)
        out = []
        for (existing, merged), item in zip(plans, items, strict=True):
            if existing is None:
                merged.pop("id", None)
                for key, value in (
                    ("status", 1),
                    ("contracttype", 1),
                    ("billingperiod", 1),
                    ("periodchargeamount", 0),
                    ("note", ""),
                    ("previouscontract", 0),
                    ("startbalance", 0),
                    ("chargehoursperperiod", 0),
                    ("contract_prepayasamount", False),
                    ("start_date", format_ts(self.sb.today)),
                ):
                    if merged.get(key) is None:
                        merged[key] = value
            if "active" not in item and (existing is None or "status" in item):
                merged["active"] = merged.get("status") in ACTIVE_STATUSES
            merged["last_modified"] = _now(self.sb)
            if existing is None:
                self.store.insert("contracts", merged)
            else:
                self.store.put("contracts", merged)
            out.append(_contract_out(self.sb, self.ctx, merged, True))
        return _written(out, items), True

    def delete_contract(self, id_: int) -> tuple[Response, bool]:
        if not self.store.delete("contracts", id_):
            raise _not_found("Contract", id_)
        return Response(status_code=200), True

    # ------------------------------------------------------------------ recurring invoices
    def _lines_for(self, header_ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {h: [] for h in header_ids}
        for start in range(0, len(header_ids), 500):
            chunk = header_ids[start : start + 500]
            if not chunk:
                continue
            marks = ",".join("?" * len(chunk))
            for line in self.store.where("rlines", f"ihid IN ({marks})", chunk):
                out.setdefault(line["ihid"], []).append(line)
        return out

    def list_rinvoices(self) -> Response:
        q = self.q
        clauses = self._invoice_filters("rinvoices", "rlines")
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("rinvoices", clauses, q.orders(), limit, offset)
        lines = self._lines_for([r["id"] for r in rows])
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        show = q.flag("includelines")
        data = [_rinvoice_out(self.sb, self.ctx, r, lines[r["id"]] if show else None, lines[r["id"]]) for r in rows]
        return JSONResponse(_list("invoices", total, data, page, limit))

    def get_rinvoice(self, id_: int) -> Response:
        doc = self.store.get("rinvoices", id_)
        if doc is None:
            raise _not_found("Recurring invoice", id_)
        lines = self._lines_for([id_])[id_]
        return JSONResponse(_rinvoice_out(self.sb, self.ctx, doc, lines, lines))

    def _line_defaults(self, line: dict, header: dict) -> None:
        for key, value in (
            ("qty_order", 1),
            ("unit_price", 0),
            ("billingperiod", 0),
            ("isinactive", False),
            ("item_shortdescription", ""),
            ("startdate", None),
            ("enddate", None),
        ):
            if key not in line:
                line[key] = value
        if not line.get("contract_id"):
            line["contract_id"] = header.get("contract_id") or 0

    def post_rinvoices(self) -> tuple[Response, bool]:
        items, errors = _parse_body(self.sb, self.body, "InvoiceHeader")
        plans = []
        for i, item in enumerate(items):
            existing = None
            if item.get("id"):
                existing = self.store.get("rinvoices", item["id"])
                if existing is None:
                    raise _not_found("Recurring invoice", item["id"])
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["rinvoices"] and k != "lines"})
            if merged.get("contract_id"):
                contract = self.store.get("contracts", merged["contract_id"])
                if contract is None:
                    _required(errors, i, "contract_id", f"Contract {merged['contract_id']} does not exist.")
                elif not merged.get("client_id"):
                    merged["client_id"] = contract.get("client_id")
            if not merged.get("client_id"):
                _required(errors, i, "client_id")
            elif self.store.get("clients", merged["client_id"]) is None:
                _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")
            for j, line in enumerate(item.get("lines") or []):
                if line.get("ihid") and existing is not None and line["ihid"] != existing["id"]:
                    _required(errors, i, f"lines[{j}].ihid", "A line of this invoice must have ihid = its id.")
            plans.append((existing, merged, item))
        if errors:
            raise _model_state(errors)
        out = []
        for existing, merged, item in plans:
            merged["is_recurring_invoice"] = True
            merged["last_modified"] = _now(self.sb)
            if existing is None:
                merged.pop("id", None)
                self.store.insert("rinvoices", merged)
            else:
                self.store.put("rinvoices", merged)
            if "lines" in item:  # arrays are replaced wholesale
                old = {line["id"] for line in self._lines_for([merged["id"]])[merged["id"]]}
                self.store.delete_where("rlines", "ihid = ?", [merged["id"]])
                for line in item.get("lines") or []:
                    line = {k: v for k, v in line.items() if k not in _COMPUTED["rlines"]}
                    if line.get("id") not in old:
                        line.pop("id", None)
                    line["ihid"] = merged["id"]
                    self._line_defaults(line, merged)
                    self.store.insert("rlines", line)
            lines = self._lines_for([merged["id"]])[merged["id"]]
            out.append(_rinvoice_out(self.sb, self.ctx, merged, lines, lines))
        return _written(out, items), True

    def delete_rinvoice(self, id_: int) -> tuple[Response, bool]:
        if not self.store.delete("rinvoices", id_):
            raise _not_found("Recurring invoice", id_)
        self.store.delete_where("rlines", "ihid = ?", [id_])
        return Response(status_code=200), True

    def post_lines(self) -> tuple[Response, bool]:
        """POST /RecurringInvoice/Lines: add lines (or change the ones whose id is sent)."""
        items, errors = _parse_body(self.sb, self.body, "InvoiceDetail")
        plans = []
        for i, item in enumerate(items):
            existing = None
            if item.get("id"):
                existing = self.store.get("rlines", item["id"])
                if existing is None:
                    raise _not_found("Recurring invoice line", item["id"])
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["rlines"]})
            header = None
            if merged.get("ihid") in (None, 0):
                _required(errors, i, "ihid")
            else:
                header = self.store.get("rinvoices", merged["ihid"])
                if header is None:
                    _required(errors, i, "ihid", f"Recurring invoice {merged['ihid']} does not exist.")
            plans.append((existing, merged, header))
        if errors:
            raise _model_state(errors)
        return self._save_lines(plans), True

    def update_lines(self) -> tuple[Response, bool]:
        """POST /RecurringInvoice/updatelines: change lines by id (only the fields sent)."""
        items, errors = _parse_body(self.sb, self.body, "InvoiceDetail")
        plans = []
        for i, item in enumerate(items):
            if not item.get("id"):
                _required(errors, i, "id")
                continue
            existing = self.store.get("rlines", item["id"])
            if existing is None:
                raise _not_found("Recurring invoice line", item["id"])
            merged = dict(existing)
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["rlines"]})
            header = self.store.get("rinvoices", merged.get("ihid") or 0)
            if header is None:
                _required(errors, i, "ihid", f"Recurring invoice {merged.get('ihid')} does not exist.")
            plans.append((existing, merged, header))
        if errors:
            raise _model_state(errors)
        return self._save_lines(plans), True

    def _save_lines(self, plans: list[tuple[dict | None, dict, dict | None]]) -> Response:
        out = []
        for existing, merged, header in plans:
            if existing is None:
                merged.pop("id", None)
                self._line_defaults(merged, header or {})
                self.store.insert("rlines", merged)
            else:
                self.store.put("rlines", merged)
            out.append(_line_out(merged))
        return JSONResponse(out, status_code=201)

    # ------------------------------------------------------------------ invoices
    def _invoice_filters(self, table: str, line_table: str) -> list[tuple[str, list[Any]]]:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.get("client_ids"):
            ids = [int(x) for x in re.findall(r"-?\d+", q.get("client_ids") or "")]
            if ids:
                clauses.append((f"client_id IN ({','.join('?' * len(ids))})", ids))
        if q.int("contract_id"):
            cid = q.int("contract_id")
            clauses.append(
                (f"contract_id = ? OR id IN (SELECT ihid FROM {line_table} WHERE contract_id = ?)", [cid, cid])
            )
        if table == "invoices":
            if q.int("recurringinvoice_id"):
                clauses.append(("json_extract(doc, '$.recurring_invoice_id') = ?", [q.int("recurringinvoice_id")]))
            if q.get("includecredits") is not None and not q.flag("includecredits"):
                clauses.append(("coalesce(json_extract(doc, '$.total'), 0) >= 0", []))
            if q.get("includeinvoices") is not None and not q.flag("includeinvoices"):
                clauses.append(("coalesce(json_extract(doc, '$.total'), 0) < 0", []))
        search = q.get("search")
        if search:
            clauses.append(
                (
                    "lower(coalesce(json_extract(doc, '$.invoicenumber'), '')) LIKE ? ESCAPE '\\' OR client_id IN "
                    "(SELECT id FROM clients WHERE lower(name) LIKE ? ESCAPE '\\')",
                    [_like(search), _like(search)],
                )
            )
        return clauses

    def _ilines_for(self, ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            if chunk:
                for line in self.store.where("ilines", f"ihid IN ({','.join('?' * len(chunk))})", chunk):
                    out.setdefault(line["ihid"], []).append(line)
        return out

    def _invoice_out(self, doc: dict, lines: list[dict] | None) -> dict:
        out = dict(doc)
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        out["contract_ref"] = self.ctx.contract_ref(doc.get("contract_id")) or ""
        if lines is not None:
            out["lines"] = lines
        return out

    def list_invoices(self) -> Response:
        q = self.q
        clauses = self._invoice_filters("invoices", "ilines")
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("invoices", clauses, q.orders(), limit, offset)
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        lines = self._ilines_for([r["id"] for r in rows]) if q.flag("includelines") else None
        data = [self._invoice_out(r, lines[r["id"]] if lines is not None else None) for r in rows]
        return JSONResponse(_list("invoices", total, data, page, limit))

    def get_invoice(self, id_: int) -> Response:
        doc = self.store.get("invoices", id_)
        if doc is None:
            raise _not_found("Invoice", id_)
        return JSONResponse(self._invoice_out(doc, self._ilines_for([id_])[id_]))

    # ------------------------------------------------------------------ actions and tickets
    def list_actions(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("ticket_id"):
            clauses.append(("ticket_id = ?", [q.int("ticket_id")]))
        start, end = _date_bound(q.get("startdate"), False), _date_bound(q.get("enddate"), True)
        if start:
            clauses.append(("datetime >= ?", [start]))
        if end:
            clauses.append(("datetime < ?", [end]))
        if q.flag("timeentriesonly"):
            clauses.append(("coalesce(json_extract(doc, '$.timetaken'), 0) > 0", []))
        count = q.int("count")
        total, rows = self.store.query(
            "actions", clauses, [("datetime", False)], count if count and count > 0 else None
        )
        return JSONResponse({"record_count": total, "actions": rows})

    def get_action(self, id_: int) -> Response:
        doc = self.store.get("actions", id_)
        if doc is None:
            raise _not_found("Action", id_)
        return JSONResponse(doc)

    def _ticket_out(self, doc: dict) -> dict:
        out = dict(doc)
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        out["contract_ref"] = self.ctx.contract_ref(doc.get("contract_id")) or ""
        out["sla_name"] = self.ctx.sla_name(doc.get("sla_id"))
        return out

    def list_tickets(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.int("contract_id"):
            clauses.append(("contract_id = ?", [q.int("contract_id")]))
        # The slice documents Halo's column names, spelled as Halo spells them: Date Opened
        # 'dateoccured', Date Closed 'datecleared'. No datesearch: date opened. Anything
        # else is refused rather than silently read as date opened.
        searchable = {"dateoccured": "dateoccurred", "datecleared": "dateclosed"}
        datesearch = (q.get("datesearch") or "").strip().lower()
        if datesearch and datesearch not in searchable:
            raise _model_state({"datesearch": [
                f"The value '{q.get('datesearch')}' is not valid. Use one of: {', '.join(searchable)}."]})
        field = searchable[datesearch or "dateoccured"]
        column = "dateoccurred" if field == "dateoccurred" else f"json_extract(doc, '$.{field}')"
        start, end = _date_bound(q.get("startdate"), False), _date_bound(q.get("enddate"), True)
        if start:
            clauses.append((f"{column} >= ?", [start]))
        if end:
            clauses.append((f"{column} < ?", [end]))
        if q.flag("open_only"):
            clauses.append(("json_extract(doc, '$.dateclosed') IS NULL", []))
        if q.flag("closed_only"):
            clauses.append(("json_extract(doc, '$.dateclosed') IS NOT NULL", []))
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("tickets", clauses, q.orders(), limit, offset)
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        return JSONResponse(_list("tickets", total, [self._ticket_out(r) for r in rows], page, limit))

    def get_ticket(self, id_: int) -> Response:
        doc = self.store.get("tickets", id_)
        if doc is None:
            raise _not_found("Ticket", id_)
        return JSONResponse(self._ticket_out(doc))

    # ------------------------------------------------------------------ prepay ledger
    def _prepay_out(self, doc: dict) -> dict:
        """A ledger row as Halo answers it: only ``PrepayHistory`` properties. The stored row
        keeps its ``contract_id`` (the list's ``contract_id`` filter and the contract totals
        use it), but Halo's schema has no such property, so it is never sent back."""
        props = self.sb.spec.properties("PrepayHistory")
        out = {k: v for k, v in doc.items() if k in props}
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        return out

    def list_prepay(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.int("contract_id"):
            clauses.append(("contract_id = ?", [q.int("contract_id")]))
        if q.get("search"):
            clauses.append(
                (
                    "lower(coalesce(json_extract(doc, '$.description'), '')) LIKE ? ESCAPE '\\'",
                    [_like(q.get("search") or "")],
                )
            )
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("prepay", clauses, q.orders(), limit, offset)
        return JSONResponse(_list("prepayhistory", total, [self._prepay_out(r) for r in rows], page, limit))

    def get_prepay(self, id_: int) -> Response:
        doc = self.store.get("prepay", id_)
        if doc is None:
            raise _not_found("Prepay record", id_)
        return JSONResponse(self._prepay_out(doc))

    def post_prepay(self) -> tuple[Response, bool]:
        items, errors = _parse_body(self.sb, self.body, "PrepayHistory")
        plans = []
        for i, item in enumerate(items):
            existing = None
            if item.get("id"):
                existing = self.store.get("prepay", item["id"])
                if existing is None:
                    raise _not_found("Prepay record", item["id"])
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["prepay"]})
            if merged.get("contract_id"):
                contract = self.store.get("contracts", merged["contract_id"])
                if contract is None:
                    _required(errors, i, "contract_id", f"Contract {merged['contract_id']} does not exist.")
                elif not merged.get("client_id"):
                    merged["client_id"] = contract.get("client_id")
            if not merged.get("client_id"):
                _required(errors, i, "client_id")
            elif self.store.get("clients", merged["client_id"]) is None:
                _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")
            plans.append((existing, merged))
        if errors:
            raise _model_state(errors)
        out = []
        for existing, merged in plans:
            if existing is None:
                merged.pop("id", None)
                merged.setdefault("date", format_ts(self.sb.today))
                merged.setdefault("hours", 0)
                merged.setdefault("amount", 0)
                self.store.insert("prepay", merged)
            else:
                self.store.put("prepay", merged)
            out.append(self._prepay_out(merged))
        return _written(out, items), True

    def delete_prepay(self, id_: int) -> tuple[Response, bool]:
        if not self.store.delete("prepay", id_):
            raise _not_found("Prepay record", id_)
        return Response(status_code=200), True

    # ------------------------------------------------------------------ software licences
    def _licence_out(self, doc: dict) -> dict:
        out = dict(doc)
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        return out

    def list_licences(self) -> Response:
        q = self.q
        clauses: list[tuple[str, list[Any]]] = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if not q.flag("includeinactive"):
            clauses.append(("coalesce(is_active, 1) = 1", []))
        if q.get("licence_type") not in (None, ""):
            clauses.append(("json_extract(doc, '$.type') = ?", [q.int("licence_type")]))
        if q.get("search"):
            p = _like(q.get("search") or "")
            clauses.append(
                (
                    "lower(coalesce(name, '')) LIKE ? ESCAPE '\\' OR "
                    "lower(coalesce(json_extract(doc, '$.product_sku'), '')) LIKE ? ESCAPE '\\'",
                    [p, p],
                )
            )
        limit, offset, page = _paging(q, True)
        total, rows = self.store.query("licences", clauses, q.orders(), limit, offset)
        self.ctx.clients([r.get("client_id") for r in rows])
        return JSONResponse(_list("licences", total, [self._licence_out(r) for r in rows], page, limit))

    def get_licence(self, id_: int) -> Response:
        doc = self.store.get("licences", id_)
        if doc is None:
            raise _not_found("Licence", id_)
        return JSONResponse(self._licence_out(doc))

    def post_licences(self) -> tuple[Response, bool]:
        items, errors = _parse_body(self.sb, self.body, "Licence_List")
        plans = []
        for i, item in enumerate(items):
            existing = None
            if item.get("id"):
                existing = self.store.get("licences", item["id"])
                if existing is None:
                    raise _not_found("Licence", item["id"])
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in _COMPUTED["licences"]})
            if existing is None and not (item.get("name") or "").strip():
                _required(errors, i, "name")
            if not merged.get("client_id"):
                _required(errors, i, "client_id")
            elif self.store.get("clients", merged["client_id"]) is None:
                _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")
            if merged.get("count") is not None and merged["count"] < 0:
                _required(errors, i, "count", "The count must not be negative.")
            plans.append((existing, merged))
        if errors:
            raise _model_state(errors)
        out = []
        for existing, merged in plans:
            if existing is None:
                merged.pop("id", None)
                for key, value in (("count", 0), ("is_active", True), ("deleted", False), ("type", 0)):
                    if merged.get(key) is None:
                        merged[key] = value
                self.store.insert("licences", merged)
            else:
                self.store.put("licences", merged)
            out.append(self._licence_out(merged))
        return _written(out, items), True

    def delete_licence(self, id_: int) -> tuple[Response, bool]:
        if not self.store.delete("licences", id_):
            raise _not_found("Licence", id_)
        return Response(status_code=200), True


# --------------------------------------------------------------------------- routing

_ID = r"/([^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(f"^/api/{p}$"), h)
    for m, p, h in [
        ("GET", "client", "list_clients"),
        ("GET", "client" + _ID, "get_client"),
        ("GET", "sla", "list_slas"),
        ("GET", "sla" + _ID, "get_sla"),
        ("GET", "lookup", "list_lookups"),
        ("GET", "clientcontract", "list_contracts"),
        ("POST", "clientcontract", "post_contracts"),
        ("GET", "clientcontract" + _ID, "get_contract"),
        ("DELETE", "clientcontract" + _ID, "delete_contract"),
        ("GET", "recurringinvoice", "list_rinvoices"),
        ("POST", "recurringinvoice", "post_rinvoices"),
        ("POST", "recurringinvoice/lines", "post_lines"),
        ("POST", "recurringinvoice/updatelines", "update_lines"),
        ("GET", "recurringinvoice" + _ID, "get_rinvoice"),
        ("DELETE", "recurringinvoice" + _ID, "delete_rinvoice"),
        ("GET", "invoice", "list_invoices"),
        ("GET", "invoice" + _ID, "get_invoice"),
        ("GET", "actions", "list_actions"),
        ("GET", "actions" + _ID, "get_action"),
        ("GET", "clientprepay", "list_prepay"),
        ("POST", "clientprepay", "post_prepay"),
        ("GET", "clientprepay" + _ID, "get_prepay"),
        ("DELETE", "clientprepay" + _ID, "delete_prepay"),
        ("GET", "softwarelicence", "list_licences"),
        ("POST", "softwarelicence", "post_licences"),
        ("GET", "softwarelicence" + _ID, "get_licence"),
        ("DELETE", "softwarelicence" + _ID, "delete_licence"),
        ("GET", "tickets", "list_tickets"),
        ("GET", "tickets" + _ID, "get_ticket"),
    ]
]


def dispatch(sb: Sandbox, method: str, path: str, query: list[tuple[str, str]], body: bytes) -> tuple[Response, bool]:
    """Answer one authenticated /api request: (response, whether something was written)."""
    path = path.rstrip("/")
    matched_path = False
    for route_method, pattern, name in ROUTES:
        m = pattern.match(path)
        if not m:
            continue
        matched_path = True
        if route_method != method:
            continue
        q = Query(query)
        try:
            _check_query(sb, method, path, q)
            args: list[Any] = []
            if m.groups():
                raw = m.group(1)
                if not re.fullmatch(r"-?\d+", raw) or not _INT32_MIN <= int(raw) <= _INT32_MAX:
                    raise _model_state({"id": [f"The value '{raw}' is not valid."]})
                args.append(int(raw))
            result = getattr(Api(sb, q, body), name)(*args)
        except HaloError as exc:
            if isinstance(exc.body, str):
                return PlainTextResponse(exc.body, status_code=exc.status), False
            return JSONResponse(exc.body, status_code=exc.status), False
        if isinstance(result, tuple):
            return result
        return result, False
    if matched_path:
        return JSONResponse(
            {"Message": f"The requested resource does not support http method '{method}'."}, status_code=405
        ), False
    return PlainTextResponse("Not Found", status_code=404), False
