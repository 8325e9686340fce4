"""``verify``: ask a tenant what no public Halo document settles, and say what it answered.

Each check is a question, the evidence (requests and counts) and an answer; the answers that
map onto a sandbox switch are collected in ``quirks`` (``halo_contracts.sandbox.Quirks``), so
``sandbox --quirks REPORT`` plays that tenant. This module only reads: the writes of
``verify --write`` are plans (``halo_contracts.verify_write``); what they sent is seen here
through :class:`Recorder` (the HTTP exchanges) and compared with what Halo then stores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx2

from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import HaloError, HaloNotFound, HaloValidationError
from halo_contracts.halo.paging import extract_rows, record_count
from halo_contracts.halo.tickets import TICKET_DATESEARCH

# Where Halo tenants publish their API description (tried in order; none is documented).
DESCRIPTION_PATHS = ("/api/swagger/v1/swagger.json", "/swagger/v1/swagger.json")
# The requests the server sends (method, path template): what a published description must have.
OUR_REQUESTS = (
    ("GET", "/Client"), ("GET", "/Client/{id}"), ("GET", "/SLA"), ("GET", "/Lookup"),
    ("GET", "/ClientContract"), ("GET", "/ClientContract/{id}"), ("POST", "/ClientContract"),
    ("GET", "/RecurringInvoice"), ("GET", "/RecurringInvoice/{id}"), ("POST", "/RecurringInvoice"),
    ("POST", "/RecurringInvoice/Lines"), ("POST", "/RecurringInvoice/updatelines"),
    ("GET", "/Invoice"), ("GET", "/Actions"), ("GET", "/Tickets"), ("GET", "/ClientPrepay"),
    ("GET", "/SoftwareLicence"), ("GET", "/SoftwareLicence/{id}"), ("POST", "/SoftwareLicence"),
    ("DELETE", "/SoftwareLicence/{id}"),
)
# what verify --write sends besides (its cleanup deletes what it made)
WRITE_REQUESTS = (("DELETE", "/ClientContract/{id}"), ("DELETE", "/RecurringInvoice/{id}"))
LISTS = (("/Client", "clients"), ("/ClientContract", "contracts"), ("/RecurringInvoice", "invoices"),
         ("/Invoice", "invoices"), ("/Tickets", "tickets"), ("/SoftwareLicence", "licences"))


@dataclass
class Finding:
    question: str
    answer: str
    evidence: list[str] = field(default_factory=list)
    settled: bool = True  # False: the tenant's data could not settle it (say why in answer)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    quirks: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings], "quirks": self.quirks}

    def summary(self) -> str:
        lines = []
        for f in self.findings:
            mark = "settled" if f.settled else "open"
            lines.append(f"[{mark}] {f.question}\n    answer: {f.answer}")
            lines += [f"    - {e}" for e in f.evidence]
        if self.quirks:
            lines.append("sandbox quirks: " + ", ".join(f"{k}={v}" for k, v in sorted(self.quirks.items())))
        return "\n".join(lines)


async def _count(halo: HaloClient, path: str, params: dict[str, Any]) -> tuple[int | None, Any]:
    """(rows Halo says match, the raw answer) for a one-row page of a list; a list answered
    without ``record_count`` (a bare array) is read whole and its rows counted."""
    body = await halo._call("GET", path, operation=f"verify {path}",
                            params={**params, "pageinate": True, "page_size": 1, "page_no": 1})
    count = record_count(body)
    if count is None:
        count = len(await halo._list(path, key=dict(LISTS).get(path, ""), operation=f"verify {path}", params=params))
    return count, body


async def check_description(halo: HaloClient, report: Report) -> None:
    question = "Does the tenant publish its API description, and does it have every request we send?"
    for path in DESCRIPTION_PATHS:
        try:
            response = await halo._http.get(path)
        except Exception as exc:  # unreachable: answered below
            report.findings.append(Finding(question, f"could not be read ({type(exc).__name__})", settled=False))
            return
        if response.status_code == 200:
            try:
                paths = {p.lower(): {m.upper() for m in ops} for p, ops in (response.json().get("paths") or {}).items()}
            except ValueError:
                continue
            missing = [f"{m} {p}" for m, p in OUR_REQUESTS
                       if m not in paths.get("/api" + p.lower(), paths.get(p.lower(), set()))]
            answer = "every request we send is described" if not missing else f"missing: {', '.join(missing)}"
            report.findings.append(Finding(question, answer, [f"GET {path} -> 200, {len(paths)} paths"]))
            return
    report.findings.append(Finding(question, "not published at " + " or ".join(DESCRIPTION_PATHS),
                                   [f"GET {p} -> not found" for p in DESCRIPTION_PATHS], settled=False))


async def check_lookups(halo: HaloClient, report: Report) -> None:
    s, codes = halo.settings, halo.codes
    for label, lookup_id, configured in (
            ("contract status", s.lookup_status_id, codes.statuses),
            ("contract type", s.lookup_type_id, codes.types),
            ("billing period", s.lookup_billing_period_id, {c: p.name for c, p in codes.billing_periods.items()})):
        values = await halo.get_lookup(lookup_id)
        tenant = {v.id: v.name for v in values}
        differ = [f"{code}: ours {name!r}, tenant {tenant.get(code)!r}" for code, name in configured.items()
                  if (tenant.get(code) or "").casefold() != str(name).casefold()]
        answer = "the configured codes match" if not differ else "differ: " + "; ".join(differ)
        report.findings.append(Finding(f"Do the tenant's {label} codes (lookup {lookup_id}) match ours?", answer,
                                       [f"lookup {lookup_id}: {tenant}"]))


async def check_ticket_dates(halo: HaloClient, report: Report) -> None:
    end = date.today()
    start = end - timedelta(days=90)
    evidence, honoured = [], []
    for spelling, value in TICKET_DATESEARCH.items():
        params = {"datesearch": value, "startdate": f"{start}T00:00:00", "enddate": f"{end}T23:59:59"}
        try:
            count, _ = await _count(halo, "/Tickets", params)
        except HaloValidationError as exc:
            evidence.append(f"datesearch={value}: refused ({exc})")
            continue
        evidence.append(f"datesearch={value}: {count} tickets opened in the last 90 days")
        honoured.append((spelling, value, count))
    total, _ = await _count(halo, "/Tickets", {})
    evidence.append(f"no filter: {total} tickets")
    narrowing = [h for h in honoured if h[2] is not None and total is not None and h[2] < total]
    if len(honoured) == 1 or len(narrowing) == 1:
        spelling, value, _ = (narrowing or honoured)[0]
        answer = f"'{value}' (HALO_TICKET_DATE_SPELLING={spelling})"
        report.quirks["ticket_datesearch"] = value
        report.findings.append(Finding("Which /Tickets datesearch spelling filters by date opened?", answer, evidence))
    else:
        report.findings.append(Finding("Which /Tickets datesearch spelling filters by date opened?",
                                       "not settled: both spellings gave the same answer (too few tickets?)",
                                       evidence, settled=False))


async def check_actions(halo: HaloClient, report: Report) -> None:
    end = date.today()
    params = {"timeentriesonly": True, "startdate": f"{end - timedelta(days=31)}T00:00:00",
              "enddate": f"{end}T23:59:59"}
    full = await halo._call("GET", "/Actions", operation="verify /Actions", params=params)
    one = await halo._call("GET", "/Actions", operation="verify /Actions", params={**params, "count": 1})
    rows, total = len(extract_rows(full, "actions")), record_count(full)
    capped = total is not None and rows < total
    evidence = [f"without count: {rows} rows, record_count {total}",
                f"count=1: {len(extract_rows(one, 'actions'))} rows"]
    answer = (f"a default cap of {rows} rows without count" if capped else
              "no cap seen: every matching row came back without count")
    report.quirks["actions_cap"] = rows if capped else 0
    report.findings.append(Finding("Does /Actions cap its rows when count is not sent?", answer, evidence))


async def check_excluderenewed(halo: HaloClient, report: Report) -> None:
    question = "Does excluderenewed=true leave out a contract that another contract renews?"
    every, _ = await _count(halo, "/ClientContract", {"includeinactive": True})
    kept, _ = await _count(halo, "/ClientContract", {"includeinactive": True, "excluderenewed": True})
    evidence = [f"includeinactive: {every} contracts; with excluderenewed=true: {kept}"]
    if every is not None and kept is not None and kept < every:
        report.quirks["excluderenewed"] = "hides_renewed"
        report.findings.append(Finding(question, f"yes: {every - kept} renewed contract(s) left out", evidence))
        return
    # the same count: either no renewal link exists, or the filter is ignored; a link in the
    # list rows tells which (Halo's list rows may not carry previouscontract)
    contracts = await halo.list_contracts(ContractQuery(include_inactive=True))
    link = next((c for c in contracts if c.previous_contract_id), None)
    if link is None:
        report.findings.append(Finding(question, "not settled: no renewal link is visible in the list "
                                       "(verify --write would make one)", evidence, settled=False))
        return
    report.quirks["excluderenewed"] = "ignored"
    evidence.append(f"contract {link.id} renews {link.previous_contract_id}, yet nothing was left out")
    report.findings.append(Finding(question, "no: the filter is ignored; renewals are found from the links",
                                   evidence))


async def check_filters(halo: HaloClient, report: Report) -> None:
    """The 2026 document's narrower reads: does the count shrink?"""
    end = date.today()
    start = end - timedelta(days=31)
    total, _ = await _count(halo, "/Invoice", {})
    month, _ = await _count(halo, "/Invoice", {"datesearch": "invoice_date", "start_date": start, "end_date": end})
    honoured = total is not None and month is not None and (month < total or total == 0)
    report.quirks["invoice_dates"] = "honoured" if honoured else "ignored"
    report.findings.append(Finding("Does /Invoice honour start_date/end_date (datesearch=invoice_date)?",
                                   "yes" if honoured else "no: the count did not shrink; we filter on our side",
                                   [f"no filter: {total}; last 31 days: {month}"]))
    all_, _ = await _count(halo, "/ClientContract", {"includeinactive": True})
    code = next(iter(halo.codes.types), 1)
    typed, _ = await _count(halo, "/ClientContract", {"includeinactive": True, "contract_type": code})
    honoured = all_ is not None and typed is not None and typed < all_
    report.quirks["contract_type_filter"] = "honoured" if honoured else "ignored"
    report.findings.append(Finding("Does /ClientContract honour contract_type?",
                                   "yes" if honoured else "no: the count did not shrink; we filter on our side",
                                   [f"no filter: {all_}; contract_type={code}: {typed}"]))


async def check_wrappers(halo: HaloClient, report: Report) -> None:
    evidence, bare = [], 0
    for path, key in LISTS:
        body = await halo._call("GET", path, operation=f"verify {path}",
                                params={"pageinate": True, "page_size": 1, "page_no": 1})
        if isinstance(body, list):
            bare += 1
            evidence.append(f"{path}: a bare array")
        else:
            keys = sorted(body) if isinstance(body, dict) else []
            evidence.append(f"{path}: an object with {', '.join(keys)}" + ("" if key in keys else f" (no '{key}')"))
    report.quirks["list_wrappers"] = "bare" if bare == len(LISTS) else "wrapped"
    answer = "wrapped, with record_count" if not bare else f"{bare} of {len(LISTS)} lists answer a bare array"
    report.findings.append(Finding("Which shape do list answers have?", answer, evidence))


CHECKS: tuple[Callable[[HaloClient, Report], Awaitable[None]], ...] = (
    check_description, check_lookups, check_ticket_dates, check_actions, check_excluderenewed, check_filters,
    check_wrappers)


async def run_reading(halo: HaloClient) -> Report:
    """Every reading check; a check Halo refuses is reported, not fatal."""
    report = Report()
    for check in CHECKS:
        try:
            await check(halo, report)
        except (HaloError, HaloNotFound) as exc:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            report.findings.append(Finding(f"{name}: could the tenant answer?", f"no: {exc}", settled=False))
    return report


# ---- verify --write: what was sent, and what Halo stored --------------------------------------


@dataclass
class Exchange:
    """One /api request as it went out and how it was answered."""

    method: str
    path: str  # under /api: "/ClientContract"
    body: Any  # the JSON sent (None: none)
    status: int | None  # None: no answer (the connection dropped)
    answer: Any = None  # the JSON answered (None: an empty body)
    empty: bool = True  # the answer had no body

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


class Recorder(httpx2.AsyncBaseTransport):
    """The HTTP boundary of a verify run: every /api exchange (token requests are not kept),
    so the report can quote the fields sent and count reads and writes."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx2.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        keep = path.lower().startswith("/api/")
        entry = Exchange(request.method.upper(), path[4:] if keep else path, _json_or_none(request.content), None)
        if keep:
            self.exchanges.append(entry)
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        entry.status, entry.empty = response.status_code, not content.strip()
        entry.answer = _json_or_none(content)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def counts(self, since: int = 0) -> dict[str, int]:
        done = self.exchanges[since:]
        writes = sum(1 for e in done if e.is_write)
        return {"reads": len(done) - writes, "writes": writes}


def _json_or_none(content: bytes) -> Any:
    if not content or not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def same_value(sent: Any, stored: Any) -> bool:
    """Whether Halo stored what was sent: numbers by value (1 = 1.0), dates by day (a date
    sent and the midnight timestamp stored), everything else exactly."""
    if isinstance(sent, bool) or isinstance(stored, bool):
        return isinstance(sent, (bool, int)) and isinstance(stored, (bool, int)) and bool(sent) == bool(stored)
    a, b = _number(sent), _number(stored)
    if a is not None and b is not None:
        return a == b
    if isinstance(sent, str) and isinstance(stored, str) and _DATE.match(sent) and _DATE.match(stored):
        return sent[:10] == stored[:10] and stored[10:].lstrip("T") in ("", "00:00:00", "00:00:00Z",
                                                                         "00:00:00.000", sent[10:].lstrip("T"))
    return sent == stored


def compare_fields(sent: dict[str, Any], stored: dict[str, Any], skip: tuple[str, ...] = ("id",)) -> list[str]:
    """Each field sent that Halo did not store as sent, in words (empty: all stored)."""
    out = []
    for name, value in sent.items():
        if name in skip:
            continue
        if name not in stored:
            out.append(f"{name}: sent {value!r}, absent from the stored record")
        elif not same_value(value, stored[name]):
            out.append(f"{name}: sent {value!r}, stored {stored[name]!r}")
    return out


def _posted(exchanges: list[Exchange], path: str) -> list[tuple[Exchange, dict[str, Any]]]:
    return [(e, item) for e in exchanges if e.method == "POST" and e.path.lower() == path.lower()
            and e.status is not None and 200 <= e.status < 300
            for item in (e.body if isinstance(e.body, list) else [e.body]) if isinstance(item, dict)]


async def stored_records(halo: HaloClient, contract_ids: list[int]) -> dict[str, Any]:
    """The records as Halo now holds them: each contract (by id) and its recurring invoices with lines."""
    contracts: dict[int, dict[str, Any]] = {}
    headers: list[dict[str, Any]] = []
    for contract_id in contract_ids:
        contracts[contract_id] = await halo._get_object(f"/ClientContract/{int(contract_id)}",
                                                        operation="verify: read the contract back")
        headers += [h for h in await halo._list("/RecurringInvoice", key="invoices",
                                                 operation="verify: read the recurring invoices back",
                                                 params={"contract_id": contract_id, "includelines": True})
                    if h.get("contract_id") == contract_id]
    return {"contracts": contracts, "headers": headers}


def check_stored(exchanges: list[Exchange], stored: dict[str, Any], report: Report) -> None:
    """Step 3: every field of each contract, recurring invoice and line sent, against what Halo stored."""
    contracts, headers = stored["contracts"], stored["headers"]
    by_ref = {str(c.get("ref")): c for c in contracts.values()}
    evidence, differ = [], []
    for _e, item in _posted(exchanges, "/ClientContract"):
        row = contracts.get(item.get("id")) or by_ref.get(str(item.get("ref")))
        if row is None:
            continue
        found = compare_fields(item, row)
        differ += found
        evidence.append(f"contract {row.get('id')}: {len(item) - len(found)} of {len(item)} fields as sent"
                        + (f"; {'; '.join(found)}" if found else ""))
    _answer(report, "Does Halo store each field of a new contract as sent?", evidence, differ)
    evidence, differ = [], []
    for e, item in _posted(exchanges, "/RecurringInvoice"):
        made = e.answer[0] if isinstance(e.answer, list) and e.answer else e.answer
        made_id = made.get("id") if isinstance(made, dict) else None
        row = next((h for h in headers if h.get("id") == made_id), None) or next(
            (h for h in headers if h.get("period") == item.get("period")), None)
        if row is None:
            continue
        found = compare_fields(item, {k: v for k, v in row.items() if k != "lines"})
        differ += found
        evidence.append(f"recurring invoice {row.get('id')} (period {row.get('period')}): "
                        f"{len(item) - len(found)} of {len(item)} fields as sent" + (f"; {'; '.join(found)}" if found
                                                                                      else ""))
    _answer(report, "Does Halo store a recurring invoice's schedule (period, start, end, next creation) as sent?",
            evidence, differ)
    _check_lines(exchanges, headers, report)


def _check_lines(exchanges: list[Exchange], headers: list[dict[str, Any]], report: Report) -> None:
    evidence, differ = [], []
    for _e, item in _posted(exchanges, "/RecurringInvoice/Lines"):
        where = next(((h, line) for h in headers for line in h.get("lines") or []
                      if line.get("item_shortdescription") == item.get("item_shortdescription")), None)
        if where is None:
            differ.append(f"line {item.get('item_shortdescription')!r}: not found on the contract's recurring invoices")
            continue
        header, line = where
        found = compare_fields(item, line)
        differ += found
        evidence.append(f"line {line.get('id')} on recurring invoice {header.get('id')} (period "
                        f"{header.get('period')}, line billingperiod {line.get('billingperiod', 'absent')}): "
                        f"{len(item) - len(found)} of {len(item)} fields as sent"
                        + (f"; {'; '.join(found)}" if found else ""))
    _answer(report, "Does Halo store each recurring line as sent, on the recurring invoice of its frequency?",
            evidence, differ)
    _check_line_periods(headers, report)


def _check_line_periods(headers: list[dict[str, Any]], report: Report) -> None:
    """A line record with a ``billingperiod`` of its own is the 2024 document's shape; without
    one a line bills at its recurring invoice's ``period`` (2026, docs/recurring-billing.md)."""
    lines = [(h, line) for h in headers for line in h.get("lines") or [] if isinstance(line, dict)]
    question = "Do recurring lines carry a billing period of their own, or bill at their invoice's period?"
    if not lines:
        report.findings.append(Finding(question, "not settled: no line was read back", settled=False))
        return
    own = [line for _h, line in lines if "billingperiod" in line]
    evidence = [f"line {line.get('id')}: invoice period {h.get('period')}, line billingperiod "
                + (repr(line["billingperiod"]) if "billingperiod" in line else "absent") for h, line in lines]
    if own:
        report.quirks["document"] = "2024"
        answer = (f"{len(own)} of {len(lines)} lines carry billingperiod (the 2024 document's shape); the server "
                  "still bills each frequency on its own recurring invoice")
    else:
        report.quirks["document"] = "2026"
        answer = "at their invoice's period: no line carries billingperiod (the 2026 document's shape)"
    report.findings.append(Finding(question, answer, evidence))


def _answer(report: Report, question: str, evidence: list[str], differ: list[str]) -> None:
    if not evidence and not differ:
        report.findings.append(Finding(question, "not settled: nothing of this kind was written", settled=False))
        return
    answer = "yes: every field sent was stored as sent" if not differ else (
        f"no: {len(differ)} field(s) differ (see the evidence)")
    report.findings.append(Finding(question, answer, evidence or differ))


def check_write_answers(exchanges: list[Exchange], report: Report) -> None:
    """Do the writes the 2026 document declares without a body (lines, licences) answer one?"""
    paths = ("/RecurringInvoice/Lines", "/RecurringInvoice/updatelines", "/SoftwareLicence")
    seen = [e for e in exchanges if e.method == "POST" and e.path.lower() in {p.lower() for p in paths}
            and e.status is not None and 200 <= e.status < 300]
    question = "Do the writes documented without a body (lines, licences) answer with the saved record?"
    if not seen:
        report.findings.append(Finding(question, "not settled: none was sent", settled=False))
        return
    evidence = [f"POST {e.path} -> {e.status}, " + ("no body" if e.empty else "a body") for e in seen]
    empty = sum(1 for e in seen if e.empty)
    if empty == len(seen):
        report.quirks["write_answers"] = "empty"
        answer = "no: they answer without a body; each write is read back to confirm it"
    elif empty == 0:
        report.quirks["write_answers"] = "record"
        answer = "yes: each answered with a body"
    else:
        answer = f"mixed: {empty} of {len(seen)} answered without a body; each such write is read back"
    report.findings.append(Finding(question, answer, evidence))


async def licence_differences(halo: HaloClient, exchanges: list[Exchange], licence_id: int) -> tuple[int, list[str]]:
    """(fields sent, those Halo did not store as sent) for a licence: its create and the
    updates sent after it, merged, against the licence read back."""
    sent: dict[str, Any] = {}
    for _e, item in _posted(exchanges, "/SoftwareLicence"):
        if item.get("id") in (None, licence_id):
            sent.update(item)
    stored = await halo._get_object(f"/SoftwareLicence/{int(licence_id)}", operation="verify: read the licence back")
    return len([k for k in sent if k != "id"]), compare_fields(sent, stored)


async def licence_after_delete(halo: HaloClient, licence_id: int) -> str:
    """What a deleted licence looks like: gone (404), or kept and marked."""
    try:
        row = await halo._get_object(f"/SoftwareLicence/{int(licence_id)}", operation="verify: read the licence")
    except HaloNotFound:
        return "gone (404)"
    flags = {k: row.get(k) for k in ("deleted", "is_active", "inactive") if k in row}
    return f"still readable, {flags}"
