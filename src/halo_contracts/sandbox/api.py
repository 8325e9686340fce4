"""The Halo resources the sandbox serves: routing, list filters, paging, writes, validation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
    "invoices": {"client_name", "contract_ref", "total", "tax_total", "_warning", "last_modified", "add_lines"},
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


# the coded fields a tenant numbers its own way (quirk lookup_codes), per table
CODED = {"contracts": ("status", "contracttype", "billingperiod"), "rinvoices": ("period",),
         "rlines": ("billingperiod",)}
SHIFT = 10  # quirk lookup_codes=shifted: wire code = default code + SHIFT


def _codes_out(sb: Sandbox, table: str, out: dict) -> dict:
    """A stored row's codes as this tenant numbers them (quirk ``lookup_codes``)."""
    if sb.quirks.lookup_codes == "shifted":
        for name in CODED[table]:
            value = out.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                out[name] = value + SHIFT
    return out


def _codes_in(sb: Sandbox, table: str, item: dict) -> dict:
    """A posted row's codes in the stored numbering; a code this tenant does not use (a default
    one sent to a shifted tenant) becomes one no list has, so it is refused or reads as none."""
    if sb.quirks.lookup_codes == "shifted" and table in CODED:
        for name in CODED[table]:
            value = item.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                item[name] = value - SHIFT if value > SHIFT else value + 1000
    return item


def _contract_out(sb: Sandbox, ctx: Ctx, doc: dict, full: bool) -> dict[str, Any]:
    out = _codes_out(sb, "contracts", dict(doc))
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
    out = _codes_out(sb, "rinvoices", dict(doc))
    out["client_name"] = ctx.client_name(doc.get("client_id"))
    out["contract_ref"] = ctx.contract_ref(doc.get("contract_id"))
    total = sum((cents(money(x.get("qty_order")) * money(x.get("unit_price"))) for x in all_lines), Decimal(0))
    out["total"] = to_json_number(total)
    out["tax_total"] = 0.0
    if lines is not None:
        out["lines"] = [_codes_out(sb, "rlines", _line_out(x)) for x in lines]
    return out


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """One Halo resource: its table, the body schema its POST takes and its list wrapper.

    Every resource is served by the same four paths (:meth:`Api.list`, :meth:`Api.get`,
    :meth:`Api.post`, :meth:`Api.delete`); what differs lives in the ``Api`` hooks named after
    ``hooks`` (``_<hooks>_filters``, ``_<hooks>_rows``, ``_<hooks>_one``, ``_<hooks>_check``,
    ``_<hooks>_save``), each optional.
    """

    name: str
    table: str
    what: str  # "Contract": for 404 messages
    schema: str | None = None  # item schema of the posted array
    key: str | None = None  # list wrapper key; None: a bare array
    pageable: bool = True
    default_order: tuple[tuple[str, bool], ...] = ()
    order_sql: tuple[tuple[str, str], ...] = ()
    hooks: str = ""  # defaults to name
    answer: str = "record"  # what a POST answers: "record" (201 + the records) or "lines" (201 + an array)
    capped: bool = False  # quirk actions_cap applies (a default row cap without count)
    schemaless: bool = False  # the 2026 document declares a 200 answer with no schema (quirk write_answers)

    @property
    def prefix(self) -> str:
        return self.hooks or self.name


_CLIENT_NAME_SQL = "(SELECT name FROM clients c WHERE c.id = contracts.client_id)"

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("clients", "clients", "Client", key="clients"),
        Resource("slas", "slas", "SLA", pageable=False),
        Resource("lookups", "lookups", "Lookup", pageable=False),
        Resource("contracts", "contracts", "Contract", "ContractHeader", "contracts",
                 order_sql=(("client_name", _CLIENT_NAME_SQL),)),
        Resource("rinvoices", "rinvoices", "Recurring invoice", "InvoiceHeader", "invoices"),
        Resource("rlines", "rlines", "Recurring invoice line", "InvoiceDetail", answer="lines", schemaless=True),
        Resource("rlines_update", "rlines", "Recurring invoice line", "InvoiceDetail", answer="lines", schemaless=True),
        Resource("invoices", "invoices", "Invoice", "InvoiceHeader", key="invoices"),
        Resource("actions", "actions", "Action", key="actions", pageable=False, capped=True,
                 default_order=(("datetime", False),)),
        Resource("tickets", "tickets", "Ticket", key="tickets"),
        Resource("prepay", "prepay", "Prepay record", "PrepayHistory", "prepayhistory", schemaless=True),
        Resource("licences", "licences", "Licence", "Licence_List", "licences", schemaless=True),
    )
}

Clauses = list[tuple[str, list[Any]]]


class Api:
    def __init__(self, sb: Sandbox, q: Query, body: bytes) -> None:
        self.sb = sb
        self.store = sb.store
        self.q = q
        self.body = body
        self.ctx = Ctx(sb)

    def _hook(self, res: Resource, what: str) -> Any:
        return getattr(self, f"_{res.prefix}_{what}", None)

    # ------------------------------------------------------------------ the four paths
    def list(self, res: Resource) -> Response:
        q = self.q
        filters = self._hook(res, "filters")
        clauses: Clauses = filters() if filters else []
        limit, offset, page = _paging(q, res.pageable)
        if res.capped and limit is None and self.sb.quirks.actions_cap:
            limit = self.sb.quirks.actions_cap  # quirk: a default row cap without count
        orders = q.orders() or list(res.default_order)
        total, rows = self.store.query(res.table, clauses, orders, limit, offset, order_sql=dict(res.order_sql))
        render = self._hook(res, "rows")
        data = render(rows) if render else rows
        if res.key is None or self.sb.quirks.list_wrappers == "bare":
            return JSONResponse(data)
        return JSONResponse(_list(res.key, total, data, page, limit))

    def _find(self, res: Resource, id_: int) -> dict:
        doc = self.store.get(res.table, id_)
        if doc is None:
            raise _not_found(res.what, id_)
        return doc

    def get(self, res: Resource, id_: int) -> Response:
        doc = self._find(res, id_)
        one = self._hook(res, "one")
        if one is not None:
            return JSONResponse(one(doc))
        render = self._hook(res, "rows")
        return JSONResponse(render([doc])[0] if render else doc)

    def post(self, res: Resource) -> tuple[Response, bool]:
        """Create (no id) or change (id) each posted object: check them all, then save them all."""
        items, errors = _parse_body(self.sb, self.body, res.schema or "")
        items = [_codes_in(self.sb, res.table, item) for item in items]
        check, save = self._hook(res, "check"), self._hook(res, "save")
        computed = _COMPUTED.get(res.table, set())
        plans: list[tuple[dict | None, dict, dict, Any]] = []
        for i, item in enumerate(items):
            existing = self._find(res, item["id"]) if item.get("id") else None
            merged = dict(existing or {})
            merged.update({k: v for k, v in item.items() if k not in computed and k != "lines"})
            extra = check(i, item, existing, merged, errors)
            plans.append((existing, merged, item, extra))
        if errors:
            raise _model_state(errors)
        saving = self._hook(res, "saving")
        if saving is not None:
            saving(plans)
        out = [save(existing, merged, item, extra) for existing, merged, item, extra in plans]
        if res.schemaless and self.sb.quirks.write_answers == "empty":
            return Response(status_code=200), True
        if res.answer == "lines":
            return JSONResponse(out, status_code=201), True
        return _written(out, items), True

    def delete(self, res: Resource, id_: int) -> tuple[Response, bool]:
        if not self.store.delete(res.table, id_):
            raise _not_found(res.what, id_)
        cascade = self._hook(res, "deleted")
        if cascade is not None:
            cascade(id_)
        return Response(status_code=200), True

    # ------------------------------------------------------------------ shared checks
    def _check_client(self, errors: dict[str, list[str]], i: int, merged: dict) -> None:
        if not merged.get("client_id"):
            _required(errors, i, "client_id")
        elif self.store.get("clients", merged["client_id"]) is None:
            _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")

    def _client_from_contract(self, errors: dict[str, list[str]], i: int, merged: dict) -> None:
        if merged.get("contract_id"):
            contract = self.store.get("contracts", merged["contract_id"])
            if contract is None:
                _required(errors, i, "contract_id", f"Contract {merged['contract_id']} does not exist.")
            elif not merged.get("client_id"):
                merged["client_id"] = contract.get("client_id")

    def _save(self, table: str, existing: dict | None, merged: dict) -> None:
        if existing is None:
            merged.pop("id", None)
            self.store.insert(table, merged)
        else:
            self.store.put(table, merged)

    # ------------------------------------------------------------------ clients, SLAs, lookups
    def _clients_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
        if not q.flag("includeinactive"):
            clauses.append(("coalesce(inactive, 0) = 0", []))
        if not q.flag("includeactive", True):
            clauses.append(("coalesce(inactive, 0) = 1", []))
        search = q.get("search") or q.get("search_name_only")
        if search:
            clauses.append(("lower(name) LIKE ? ESCAPE '\\'", [_like(search)]))
        if q.int("toplevel_id"):
            clauses.append(("toplevel_id = ?", [q.int("toplevel_id")]))
        return clauses

    def _lookups_filters(self) -> Clauses:
        lookupid = self.q.int("lookupid")
        return [("lookupid = ?", [lookupid])] if lookupid is not None else []

    def _lookups_rows(self, rows: list[dict]) -> list[dict]:
        return [
            {"id": r["_code"] + (SHIFT if self.sb.quirks.lookup_codes == "shifted" else 0), "lookupid": r["lookupid"],
             "name": r["name"], "inactive": r.get("inactive", False)}
            for r in rows
        ]

    # ------------------------------------------------------------------ contracts
    def _contracts_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.int("site_id"):
            clauses.append(("site_id = ?", [q.int("site_id")]))
        if q.get("contract_type") not in (None, "") and self.sb.quirks.contract_type_filter == "honoured":
            wanted = _codes_in(self.sb, "contracts", {"contracttype": q.int("contract_type")})["contracttype"]
            clauses.append(("json_extract(doc, '$.contracttype') = ?", [wanted]))
        if not q.flag("includeinactive"):
            clauses.append(("active = 1", []))
        if q.flag("excluderenewed") and self.sb.quirks.excluderenewed == "hides_renewed":
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
        return clauses

    def _contracts_rows(self, rows: list[dict]) -> list[dict]:
        self.ctx.clients([r.get("client_id") for r in rows])
        return [_contract_out(self.sb, self.ctx, r, False) for r in rows]

    def _contracts_one(self, doc: dict) -> dict:
        id_ = doc["id"]
        out = _contract_out(self.sb, self.ctx, doc, True)
        details, periods = self.q.flag("includedetails"), self.q.flag("includeperiods")
        actions = self.store.where("actions", "contract_id = ?", [id_]) if details or periods else []
        if details:
            ledger = self.store.where("prepay", "contract_id = ?", [id_], order="json_extract(doc, '$.date'), id")
            summary = prepay_summary(doc, ledger, actions, self.sb.today)
            out["contract_prepaytotal"] = to_json_number(summary.total)
            out["contract_prepayused"] = to_json_number(summary.used)
            out["contract_prepaybalance"] = to_json_number(summary.balance)
            out["contract_prepayasamount"] = bool(doc.get("contract_prepayasamount"))
            out["contract_prepayhistory"] = [self._prepay_one(r) for r in ledger]
            prepaid = doc.get("contracttype") == 2 or doc.get("allowprepay") or ledger or money(doc.get("startbalance"))
            out["prepay_periods"] = prepay_periods(doc, ledger, actions, self.sb.today) if prepaid else []
        if periods:
            out["periods"] = contract_periods(doc, actions, self.sb.today)
        return out

    def _contracts_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                         errors: dict[str, list[str]]) -> None:
        if existing is None:
            if not item.get("client_id"):
                _required(errors, i, "client_id")
            if not (item.get("ref") or "").strip():
                _required(errors, i, "ref")
        if merged.get("client_id") and self.store.get("clients", merged["client_id"]) is None:
            _required(errors, i, "client_id", f"Client {merged['client_id']} does not exist.")
        for name, codes in (("status", CONTRACT_STATUS), ("contracttype", CONTRACT_TYPE),
                            ("billingperiod", BILLING_PERIOD)):
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

    _CONTRACT_DEFAULTS: tuple[tuple[str, Any], ...] = (
        ("status", 1),
        ("contracttype", 1),
        ("billingperiod", 1),
        ("periodchargeamount", 0),
        ("note", ""),
        ("previouscontract", 0),
        ("startbalance", 0),
        ("chargehoursperperiod", 0),
        ("contract_prepayasamount", False),
    )

    def _contracts_save(self, existing: dict | None, merged: dict, item: dict, _extra: Any) -> dict:
        if existing is None:
            for key, value in (*self._CONTRACT_DEFAULTS, ("start_date", format_ts(self.sb.today))):
                if merged.get(key) is None:
                    merged[key] = value
        if "active" not in item and (existing is None or "status" in item):
            merged["active"] = merged.get("status") in ACTIVE_STATUSES
        merged["last_modified"] = _now(self.sb)
        self._save("contracts", existing, merged)
        return _contract_out(self.sb, self.ctx, merged, True)

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

    def _rinvoices_filters(self) -> Clauses:
        return self._invoice_filters("rinvoices", "rlines")

    def _rinvoices_rows(self, rows: list[dict]) -> list[dict]:
        lines = self._lines_for([r["id"] for r in rows])
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        show = self.q.flag("includelines")
        return [_rinvoice_out(self.sb, self.ctx, r, lines[r["id"]] if show else None, lines[r["id"]]) for r in rows]

    def _rinvoices_one(self, doc: dict) -> dict:
        lines = self._lines_for([doc["id"]])[doc["id"]]
        return _rinvoice_out(self.sb, self.ctx, doc, lines, lines)

    def _rinvoices_deleted(self, id_: int) -> None:
        self.store.delete_where("rlines", "ihid = ?", [id_])

    def _line_defaults(self, line: dict, header: dict) -> None:
        for key, value in (
            ("qty_order", 1),
            ("unit_price", 0),
            ("isinactive", False),
            ("item_shortdescription", ""),
            ("startdate", None),
            ("enddate", None),
        ):
            if key not in line:
                line[key] = value
        if self.sb.quirks.document == "2024" and "billingperiod" not in line:
            line["billingperiod"] = 0
        if not line.get("contract_id"):
            line["contract_id"] = header.get("contract_id") or 0

    def _rinvoices_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                         errors: dict[str, list[str]]) -> None:
        self._client_from_contract(errors, i, merged)
        self._check_client(errors, i, merged)
        for j, line in enumerate(item.get("lines") or []):
            if line.get("ihid") and existing is not None and line["ihid"] != existing["id"]:
                _required(errors, i, f"lines[{j}].ihid", "A line of this invoice must have ihid = its id.")

    def _rinvoices_save(self, existing: dict | None, merged: dict, item: dict, _extra: Any) -> dict:
        merged["is_recurring_invoice"] = True
        merged["last_modified"] = _now(self.sb)
        self._save("rinvoices", existing, merged)
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
        return _rinvoice_out(self.sb, self.ctx, merged, lines, lines)

    def _rlines_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                      errors: dict[str, list[str]]) -> dict | None:
        """POST /RecurringInvoice/Lines: add lines (or change the ones whose id is sent)."""
        if merged.get("ihid") in (None, 0):
            _required(errors, i, "ihid")
            return None
        header = self.store.get("rinvoices", merged["ihid"])
        if header is None:
            _required(errors, i, "ihid", f"Recurring invoice {merged['ihid']} does not exist.")
        return header

    def _rlines_update_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                             errors: dict[str, list[str]]) -> dict | None:
        """POST /RecurringInvoice/updatelines: change lines by id (only the fields sent)."""
        if existing is None:
            _required(errors, i, "id")
            return None
        header = self.store.get("rinvoices", merged.get("ihid") or 0)
        if header is None:
            _required(errors, i, "ihid", f"Recurring invoice {merged.get('ihid')} does not exist.")
        return header

    def _rlines_save(self, existing: dict | None, merged: dict, item: dict, header: dict | None) -> dict:
        if existing is None:
            self._line_defaults(merged, header or {})
        self._save("rlines", existing, merged)
        return _codes_out(self.sb, "rlines", _line_out(merged))

    _rlines_update_save = _rlines_save

    def _rlines_saving(self, plans: list[tuple[dict | None, dict, dict, Any]]) -> None:
        """Quirk ``lines_post=replace``: the lines posted become the header's only lines."""
        if self.sb.quirks.lines_post != "replace":
            return
        for header_id in {merged.get("ihid") for _e, merged, _i, _x in plans if merged.get("ihid")}:
            keep = [merged["id"] for _e, merged, _i, _x in plans
                    if merged.get("id") and merged.get("ihid") == header_id]
            marks = ",".join("?" * len(keep))
            self.store.delete_where("rlines", f"ihid = ? AND id NOT IN ({marks})" if keep else "ihid = ?",
                                    [header_id, *keep])

    # ------------------------------------------------------------------ invoices
    def _invoice_filters(self, table: str, line_table: str) -> Clauses:
        q = self.q
        clauses: Clauses = []
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
            clauses.extend(self._invoice_only_filters())
        clauses.extend(self._invoice_date_filters())
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

    _INVOICE_DATES = ("invoice_date", "last_modified", "duedate", "schedulestartdate", "scheduleenddate")

    def _invoice_date_filters(self) -> Clauses:
        """start_date / end_date on the field ``datesearch`` names (default invoice_date)."""
        q = self.q
        if self.sb.quirks.invoice_dates != "honoured" or not (q.get("start_date") or q.get("end_date")):
            return []
        name = (q.get("datesearch") or "invoice_date").strip().lower()
        if name not in self._INVOICE_DATES:
            raise _model_state({"datesearch": [
                f"The value '{q.get('datesearch')}' is not valid. Use one of: {', '.join(self._INVOICE_DATES)}."]})
        column = f"json_extract(doc, '$.{name}')"
        start, end = _date_bound(q.get("start_date"), False), _date_bound(q.get("end_date"), True)
        clauses: Clauses = []
        if start:
            clauses.append((f"{column} >= ?", [start]))
        if end:
            clauses.append((f"{column} < ?", [end]))
        return clauses

    def _invoice_only_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
        if q.int("recurringinvoice_id"):
            clauses.append(("json_extract(doc, '$.recurring_invoice_id') = ?", [q.int("recurringinvoice_id")]))
        if q.get("includecredits") is not None and not q.flag("includecredits"):
            clauses.append(("coalesce(json_extract(doc, '$.total'), 0) >= 0", []))
        if q.get("includeinvoices") is not None and not q.flag("includeinvoices"):
            clauses.append(("coalesce(json_extract(doc, '$.total'), 0) < 0", []))
        if q.flag("notpostedonly"):
            clauses.append(("coalesce(json_extract(doc, '$.posted'), 0) = 0", []))
        if q.flag("postedonly"):
            clauses.append(("coalesce(json_extract(doc, '$.posted'), 0) = 1", []))
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

    def _invoices_filters(self) -> Clauses:
        return self._invoice_filters("invoices", "ilines")

    def _invoices_rows(self, rows: list[dict]) -> list[dict]:
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        lines = self._ilines_for([r["id"] for r in rows]) if self.q.flag("includelines") else None
        return [self._invoice_out(r, lines[r["id"]] if lines is not None else None) for r in rows]

    def _invoices_one(self, doc: dict) -> dict:
        return self._invoice_out(doc, self._ilines_for([doc["id"]])[doc["id"]])

    def _invoices_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                        errors: dict[str, list[str]]) -> None:
        """POST /Invoice: a new invoice (client, its ``lines``) or, with ``id``, one changed; its
        ``add_lines`` are added beside the lines it has. A posted invoice takes no new lines."""
        self._check_client(errors, i, merged)
        if existing is not None and existing.get("posted") and (item.get("add_lines") or "lines" in item):
            _required(errors, i, "id", f"Invoice {existing['id']} has been posted and can no longer be changed.")
        for name in ("lines", "add_lines"):
            for j, line in enumerate(item.get(name) or []):
                if line.get("ihid") and existing is not None and line["ihid"] != existing["id"]:
                    _required(errors, i, f"{name}[{j}].ihid", "A line of this invoice must have ihid = its id.")

    def _invoices_save(self, existing: dict | None, merged: dict, item: dict, _extra: Any) -> dict:
        if existing is None:
            merged.setdefault("invoice_date", format_ts(self.sb.today))
            merged.setdefault("posted", False)
            merged.setdefault("voided", False)
            merged.setdefault("invoicetype", 0)
        merged["last_modified"] = _now(self.sb)
        self._save("invoices", existing, merged)
        if existing is None and not merged.get("invoicenumber"):
            merged["invoicenumber"] = f"INV-{merged['id']:06d}"
        if "lines" in item:  # arrays are replaced wholesale
            self.store.delete_where("ilines", "ihid = ?", [merged["id"]])
        for line in [*(item.get("lines") or []), *(item.get("add_lines") or [])]:
            line = {k: v for k, v in line.items() if k not in _COMPUTED["rlines"] and k != "id"}
            line["ihid"] = merged["id"]
            self._line_defaults(line, merged)
            self.store.insert("ilines", _line_out(line))
        lines = self._ilines_for([merged["id"]])[merged["id"]]
        merged["total"] = to_json_number(sum((money(x.get("net_amount")) for x in lines), Decimal(0)))
        self.store.put("invoices", merged)
        return self._invoice_out(merged, lines)

    # ------------------------------------------------------------------ actions and tickets
    def _actions_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
        if q.int("ticket_id"):
            clauses.append(("ticket_id = ?", [q.int("ticket_id")]))
        start, end = _date_bound(q.get("startdate"), False), _date_bound(q.get("enddate"), True)
        if start:
            clauses.append(("datetime >= ?", [start]))
        if end:
            clauses.append(("datetime < ?", [end]))
        if q.flag("timeentriesonly"):
            clauses.append(("coalesce(json_extract(doc, '$.timetaken'), 0) > 0", []))
        return clauses

    def _tickets_one(self, doc: dict) -> dict:
        out = dict(doc)
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        out["contract_ref"] = self.ctx.contract_ref(doc.get("contract_id")) or ""
        out["sla_name"] = self.ctx.sla_name(doc.get("sla_id"))
        return out

    def _tickets_rows(self, rows: list[dict]) -> list[dict]:
        self.ctx.clients([r.get("client_id") for r in rows])
        self.ctx.contracts([r.get("contract_id") for r in rows])
        return [self._tickets_one(r) for r in rows]

    # The slice documents Halo's column names, spelled as Halo spells them: Date Opened
    # 'dateoccured', Date Closed 'datecleared'. No datesearch: date opened. Anything else is
    # refused rather than silently read as date opened.
    _TICKET_DATES = {"datecleared": "dateclosed"}

    def _tickets_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
        if q.int("client_id"):
            clauses.append(("client_id = ?", [q.int("client_id")]))
        if q.int("contract_id"):
            clauses.append(("contract_id = ?", [q.int("contract_id")]))
        clauses.extend(self._ticket_date_filters())
        if q.flag("open_only"):
            clauses.append(("json_extract(doc, '$.dateclosed') IS NULL", []))
        if q.flag("closed_only"):
            clauses.append(("json_extract(doc, '$.dateclosed') IS NOT NULL", []))
        return clauses

    def _ticket_date_filters(self) -> Clauses:
        q = self.q
        opened = self.sb.quirks.ticket_datesearch  # the spelling this Halo honours for date opened
        searchable = {opened: "dateoccurred", **self._TICKET_DATES}
        datesearch = (q.get("datesearch") or "").strip().lower()
        if datesearch and datesearch not in searchable:
            raise _model_state({"datesearch": [
                f"The value '{q.get('datesearch')}' is not valid. Use one of: {', '.join(searchable)}."]})
        field = searchable[datesearch or opened]
        if self.sb.quirks.ticket_dates != "honoured":  # quirk: the dates are read, then ignored
            return []
        column = "dateoccurred" if field == "dateoccurred" else f"json_extract(doc, '$.{field}')"
        start, end = _date_bound(q.get("startdate"), False), _date_bound(q.get("enddate"), True)
        clauses: Clauses = []
        if start:
            clauses.append((f"{column} >= ?", [start]))
        if end:
            clauses.append((f"{column} < ?", [end]))
        return clauses

    # ------------------------------------------------------------------ prepay ledger
    def _prepay_one(self, doc: dict) -> dict:
        """A ledger row as Halo answers it: only ``PrepayHistory`` properties. The stored row
        keeps its ``contract_id`` (the list's ``contract_id`` filter and the contract totals
        use it), but Halo's schema has no such property, so it is never sent back."""
        props = self.sb.spec.properties("PrepayHistory")
        out = {k: v for k, v in doc.items() if k in props}
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        return out

    def _prepay_rows(self, rows: list[dict]) -> list[dict]:
        return [self._prepay_one(r) for r in rows]

    def _prepay_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
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
        return clauses

    def _prepay_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                      errors: dict[str, list[str]]) -> None:
        self._client_from_contract(errors, i, merged)
        self._check_client(errors, i, merged)

    def _prepay_save(self, existing: dict | None, merged: dict, item: dict, _extra: Any) -> dict:
        if existing is None:
            merged.setdefault("date", format_ts(self.sb.today))
            merged.setdefault("hours", 0)
            merged.setdefault("amount", 0)
        self._save("prepay", existing, merged)
        return self._prepay_one(merged)

    # ------------------------------------------------------------------ software licences
    def _licences_one(self, doc: dict) -> dict:
        out = dict(doc)
        out["client_name"] = self.ctx.client_name(doc.get("client_id"))
        return out

    def _licences_rows(self, rows: list[dict]) -> list[dict]:
        self.ctx.clients([r.get("client_id") for r in rows])
        return [self._licences_one(r) for r in rows]

    def _licences_filters(self) -> Clauses:
        q = self.q
        clauses: Clauses = []
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
        return clauses

    def _licences_check(self, i: int, item: dict, existing: dict | None, merged: dict,
                        errors: dict[str, list[str]]) -> None:
        if existing is None and not (item.get("name") or "").strip():
            _required(errors, i, "name")
        self._check_client(errors, i, merged)
        if merged.get("count") is not None and merged["count"] < 0:
            _required(errors, i, "count", "The count must not be negative.")

    def _licences_save(self, existing: dict | None, merged: dict, item: dict, _extra: Any) -> dict:
        if existing is None:
            for key, value in (("count", 0), ("is_active", True), ("deleted", False), ("type", 0)):
                if merged.get(key) is None:
                    merged[key] = value
        self._save("licences", existing, merged)
        return self._licences_one(merged)


# --------------------------------------------------------------------------- routing

_ID = r"/([^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str, Resource]] = [
    (m, re.compile(f"^/api/{p}$"), h, RESOURCES[r])
    for m, p, h, r in [
        ("GET", "client", "list", "clients"),
        ("GET", "client" + _ID, "get", "clients"),
        ("GET", "sla", "list", "slas"),
        ("GET", "sla" + _ID, "get", "slas"),
        ("GET", "lookup", "list", "lookups"),
        ("GET", "clientcontract", "list", "contracts"),
        ("POST", "clientcontract", "post", "contracts"),
        ("GET", "clientcontract" + _ID, "get", "contracts"),
        ("DELETE", "clientcontract" + _ID, "delete", "contracts"),
        ("GET", "recurringinvoice", "list", "rinvoices"),
        ("POST", "recurringinvoice", "post", "rinvoices"),
        ("POST", "recurringinvoice/lines", "post", "rlines"),
        ("POST", "recurringinvoice/updatelines", "post", "rlines_update"),
        ("GET", "recurringinvoice" + _ID, "get", "rinvoices"),
        ("DELETE", "recurringinvoice" + _ID, "delete", "rinvoices"),
        ("GET", "invoice", "list", "invoices"),
        ("POST", "invoice", "post", "invoices"),
        ("GET", "invoice" + _ID, "get", "invoices"),
        ("GET", "actions", "list", "actions"),
        ("GET", "actions" + _ID, "get", "actions"),
        ("GET", "clientprepay", "list", "prepay"),
        ("POST", "clientprepay", "post", "prepay"),
        ("GET", "clientprepay" + _ID, "get", "prepay"),
        ("DELETE", "clientprepay" + _ID, "delete", "prepay"),
        ("GET", "softwarelicence", "list", "licences"),
        ("POST", "softwarelicence", "post", "licences"),
        ("GET", "softwarelicence" + _ID, "get", "licences"),
        ("DELETE", "softwarelicence" + _ID, "delete", "licences"),
        ("GET", "tickets", "list", "tickets"),
        ("GET", "tickets" + _ID, "get", "tickets"),
    ]
]


def dispatch(sb: Sandbox, method: str, path: str, query: list[tuple[str, str]], body: bytes) -> tuple[Response, bool]:
    """Answer one authenticated /api request: (response, whether something was written)."""
    path = path.rstrip("/")
    matched_path = False
    for route_method, pattern, name, resource in ROUTES:
        m = pattern.match(path)
        if not m:
            continue
        matched_path = True
        if route_method != method:
            continue
        q = Query(query)
        try:
            _check_query(sb, method, path, q)
            args: list[Any] = [resource]
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
