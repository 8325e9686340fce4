"""``verify`` (reading): ask a tenant what no public Halo document settles, and say what it answered.

Each check is a question, the evidence (requests and counts) and an answer; the answers that
map onto a sandbox switch are collected in ``quirks`` (``halo_contracts.sandbox.Quirks``), so
``sandbox --quirks REPORT`` plays that tenant. Only reads are sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

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
    """(rows Halo says match, the raw answer) for a one-row page of a list."""
    body = await halo._call("GET", path, operation=f"verify {path}",
                            params={**params, "pageinate": True, "page_size": 1, "page_no": 1})
    count = record_count(body)
    return (count if count is not None else len(extract_rows(body, None))), body


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
