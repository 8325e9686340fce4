"""A small fake Halo at the HTTP boundary (``httpx2.MockTransport``), for client tests.

It speaks the wire format of docs/halo-api.md: OAuth token endpoint at ``/auth/token``,
bearer tokens, list wrappers with ``record_count`` and paging, array POST bodies, bare
arrays for ``/SLA`` and ``/Lookup``. It is deliberately dumb; behaviour for a test is
scripted with :meth:`FakeHalo.script` (canned answers or exceptions for the next requests
matching a path) and inspected through :attr:`FakeHalo.log`. :meth:`FakeHalo.after` runs a
function after a request was answered (e.g. delete a row once page 1 was read, to move a
list under a paged read).

    fake = FakeHalo()
    fake.contracts = [fake_contract(1, client_id=10)]
    async with HaloClient(fake_settings(), transport=fake.transport(), backoff=FAST) as halo:
        ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2

from halo_contracts.config import Settings
from halo_contracts.halo.pacing import Backoff, RequestBudget

SECRET = "canary-secret-5f3e9b1d"
FAST = Backoff(rate_base=0.001, rate_cap=0.004, rate_attempts=4, read_retries=2, retry_base=0.001, retry_cap=0.002)


def fake_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": "https://acme.halopsa.test",
        "client_id": "client-abc",
        "client_secret": SECRET,
        "rate_limit": "1000/1",
    }
    values.update(overrides)
    return Settings(**values)


def roomy_budget() -> RequestBudget:
    """A budget no test reaches (keeps tests independent of the process-wide one)."""
    return RequestBudget(100_000, 1.0)


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


Answer = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


@dataclass
class FakeHalo:
    token_lifetime: int = 3600
    accept_secret: str = SECRET
    contracts: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    recurring: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    prepay: list[dict[str, Any]] = field(default_factory=list)
    licences: list[dict[str, Any]] = field(default_factory=list)
    slas: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    deny_paths: set[str] = field(default_factory=set)  # 401 for any token (permission)
    ignore_paging: set[str] = field(default_factory=set)  # list paths answering all rows every page
    _script: list[tuple[re.Pattern[str], list[Answer]]] = field(default_factory=list)
    _after: list[tuple[re.Pattern[str], Callable[[Logged], Any]]] = field(default_factory=list)
    _next_id: int = 1000

    # ---- scripting -----------------------------------------------------------------------
    def script(self, path_regex: str, *answers: Answer) -> None:
        """The next requests whose path matches ``path_regex`` get these answers in order."""
        self._script.append((re.compile(path_regex, re.IGNORECASE), list(answers)))

    def after(self, path_regex: str, action: Callable[[Logged], Any]) -> None:
        """Call ``action(entry)`` after each answered request whose path matches ``path_regex``
        (``entry`` is its :class:`Logged`, e.g. ``entry.query["page_no"]``)."""
        self._after.append((re.compile(path_regex, re.IGNORECASE), action))

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def api_calls(self, method: str | None = None) -> list[Logged]:
        return [entry for entry in self.log if entry.path.lower().startswith("/api")
                and (method is None or entry.method == method)]

    # ---- dispatch ------------------------------------------------------------------------
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        response = self._handle(request)
        entry = self.log[-1]
        for pattern, action in self._after:
            if pattern.search(entry.path):
                action(entry)
        return response

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode() if isinstance(request.url.query, bytes)
                                                 else str(request.url.query)).items()}
        body: Any = None
        raw = request.content
        if raw and request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        elif raw:
            body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        self.log.append(Logged(request.method, path, query, body, dict(request.headers)))
        for pattern, answers in self._script:
            if answers and pattern.search(path):
                answer = answers.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                if callable(answer) and not isinstance(answer, httpx2.Response):
                    return answer(request)
                return answer
        if path == "/auth/token":
            return self._token(body or {})
        if not path.lower().startswith("/api/"):
            return httpx2.Response(404, json={"message": "no such route"})
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.tokens_issued or token in self.revoked:
            return httpx2.Response(401, text="")
        if any(path.lower().startswith(p.lower()) for p in self.deny_paths):
            return httpx2.Response(401, text="")
        return self._api(request.method, path[len("/api"):], query, body)

    def _token(self, form: dict[str, str]) -> httpx2.Response:
        if form.get("grant_type") != "client_credentials":
            return httpx2.Response(400, json={"error": "unsupported_grant_type"})
        if form.get("client_secret") != self.accept_secret:
            return httpx2.Response(400, json={"error": "invalid_client",
                                              "error_description": "The client credentials are invalid."})
        value = f"tok-{len(self.tokens_issued) + 1}-xyzzy"
        self.tokens_issued.append(value)
        return httpx2.Response(200, json={"access_token": value, "token_type": "Bearer",
                                          "expires_in": self.token_lifetime})

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _page(self, path: str, rows: list[dict[str, Any]], key: str, query: dict[str, str]) -> httpx2.Response:
        total = len(rows)
        if query.get("pageinate") == "true" and path not in self.ignore_paging:
            size = int(query.get("page_size", "50"))
            page = int(query.get("page_no", "1"))
            rows = rows[(page - 1) * size: page * size]
        return httpx2.Response(200, json={"record_count": total, key: rows})

    def _api(self, method: str, path: str, query: dict[str, str], body: Any) -> httpx2.Response:
        lower = path.lower()
        parts = lower.strip("/").split("/")
        if method == "GET":
            if lower == "/clientcontract":
                rows = self.contracts
                if "client_id" in query:
                    rows = [r for r in rows if str(r.get("client_id")) == query["client_id"]]
                return self._page(lower, rows, "contracts", query)
            if parts[0] == "clientcontract" and len(parts) == 2:
                return self._by_id(self.contracts, parts[1])
            if lower == "/client":
                return self._page(lower, self.clients, "clients", query)
            if parts[0] == "client" and len(parts) == 2:
                return self._by_id(self.clients, parts[1])
            if lower == "/recurringinvoice":
                rows = self.recurring
                if "contract_id" in query:
                    rows = [r for r in rows if str(r.get("contract_id")) == query["contract_id"]]
                return self._page(lower, rows, "invoices", query)
            if parts[0] == "recurringinvoice" and len(parts) == 2:
                return self._by_id(self.recurring, parts[1])
            if lower == "/invoice":
                return self._page(lower, self.invoices, "invoices", query)
            if parts[0] == "invoice" and len(parts) == 2:
                return self._by_id(self.invoices, parts[1])
            if lower == "/actions":
                return self._page(lower, self.actions, "actions", query)
            if lower == "/tickets":
                return self._page(lower, self.tickets, "tickets", query)
            if lower == "/clientprepay":
                return self._page(lower, self.prepay, "prepay", query)
            if lower == "/softwarelicence":
                return self._page(lower, self.licences, "licences", query)
            if parts[0] == "softwarelicence" and len(parts) == 2:
                return self._by_id(self.licences, parts[1])
            if lower == "/sla":
                return httpx2.Response(200, json=self.slas)
            if lower == "/lookup":
                wanted = query.get("lookupid")
                return httpx2.Response(200, json=[r for r in self.lookups if str(r.get("lookupid")) == wanted])
        if method == "POST":
            if not isinstance(body, list):
                return httpx2.Response(400, json={"": ["The request body must be an array."]})
            if lower == "/clientcontract":
                return httpx2.Response(201, json=self._upsert(self.contracts, body[0]))
            if lower == "/recurringinvoice":
                saved = self._upsert(self.recurring, body[0])
                saved.setdefault("lines", [])
                return httpx2.Response(201, json=saved)
            if lower == "/recurringinvoice/lines":
                saved = []
                for row in body:
                    line = {"id": self._new_id(), **row}
                    header = next((h for h in self.recurring if h["id"] == row.get("ihid")), None)
                    if header is not None:
                        header.setdefault("lines", []).append(line)
                    saved.append(line)
                return httpx2.Response(201, json=saved)
            if lower == "/recurringinvoice/updatelines":
                saved = []
                for row in body:
                    for header in self.recurring:
                        for line in header.get("lines", []):
                            if line["id"] == row.get("id"):
                                line.update(row)
                                saved.append(line)
                return httpx2.Response(201, json=saved)
            if lower == "/softwarelicence":
                return httpx2.Response(201, json=self._upsert(self.licences, body[0]))
            if lower == "/invoice":
                added = body[0].pop("add_lines", None) or []
                saved = self._upsert(self.invoices, body[0])
                saved.setdefault("lines", [])
                saved["lines"] += [{"id": self._new_id(), **row} for row in added]
                return httpx2.Response(201, json=saved)
        tables = {"softwarelicence": self.licences, "clientcontract": self.contracts,
                  "recurringinvoice": self.recurring}
        if method == "DELETE" and parts[0] in tables and len(parts) == 2:
            rows = tables[parts[0]]
            before = len(rows)
            rows[:] = [r for r in rows if str(r["id"]) != parts[1]]
            return httpx2.Response(200 if len(rows) < before else 404, text="")
        return httpx2.Response(404, json={"message": f"no route {method} {path}"})

    def _by_id(self, rows: list[dict[str, Any]], raw_id: str) -> httpx2.Response:
        for row in rows:
            if str(row.get("id")) == raw_id:
                return httpx2.Response(200, json=row)
        return httpx2.Response(404, json={"message": "Record not found"})

    def _upsert(self, rows: list[dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("id"):
            for row in rows:
                if row.get("id") == obj["id"]:
                    row.update(obj)
                    return row
        saved = {**obj, "id": self._new_id()}
        rows.append(saved)
        return saved


def fake_contract(id_: int, **extra: Any) -> dict[str, Any]:
    row = {"id": id_, "client_id": 10, "client_name": "Acme", "ref": f"C-{id_}", "status": 1, "contracttype": 1,
           "billingperiod": 1, "start_date": "2026-01-01T00:00:00", "end_date": "2026-12-31T00:00:00",
           "periodchargeamount": 1200.5, "active": True}
    row.update(extra)
    return row
