"""HaloClient: the async Halo API client (the only code, with ``wire.py``, that knows Halo).

INTERFACE FIRST: the method names, arguments and return types below are the contract
every tool codes against. Reads return domain models (``halo_contracts.domain.models``);
writes take the friendly ``*Fields`` drafts (``halo_contracts.domain.drafts``) and send only
the fields that were set. Errors are ``halo_contracts.halo.errors`` exceptions.

How a request travels (``_call``):

1. a bearer token from the :class:`~halo_contracts.halo.auth.TokenCache` (fetched through
   the same budget when missing or about to expire);
2. a slot of the rolling-window :class:`~halo_contracts.halo.pacing.RequestBudget`
   (process-wide by default, shared with token requests); waits instead of failing;
3. the answer: 2xx -> JSON; 401 -> one token refresh and re-send, then
   ``HaloPermissionError``; 403 -> ``HaloPermissionError``; 404 -> ``HaloNotFound``;
   400/422 -> ``HaloValidationError`` with Halo's ModelState; 429 -> exponential back-off
   (5 s doubling to 60 s, ``Retry-After`` honoured) then ``HaloRateLimited``; 5xx and
   transport errors -> reads retry a few times, writes raise ``HaloUnknownOutcome``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2

from halo_contracts.config import CodeMaps, ConfigError, Settings
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.domain.models import (
    Client,
    Contract,
    Invoice,
    Licence,
    LookupValue,
    PrepayEntry,
    RecurringInvoice,
    RecurringItem,
    Sla,
    Ticket,
    TimeEntry,
)
from halo_contracts.halo import wire
from halo_contracts.halo.auth import TokenCache, read_token_answer, token_form
from halo_contracts.halo.errors import (
    HaloAuthError,
    HaloError,
    HaloIncompleteRead,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloServerError,
    HaloUnavailable,
    HaloUnknownOutcome,
    HaloValidationError,
)
from halo_contracts.halo.pacing import Backoff, RequestBudget, parse_retry_after, shared_budget
from halo_contracts.halo.paging import DEFAULT_MAX_PAGES, PAGE_SIZE, extract_rows, read_all_pages, record_count

__all__ = ["ClientStats", "ContractQuery", "HaloClient", "HaloRequest", "PageCallback", "RequestHook"]

logger = logging.getLogger("halo_contracts.halo")

# Called after every Halo request: (method, path, status or None when no answer).
RequestHook = Callable[[str, str, int | None], Awaitable[None] | None]
# Long sweeps call this after each page: (pages done, total pages or None).
PageCallback = Callable[[int, int | None], Awaitable[None]]

API_PREFIX = "/api"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Transport errors that prove the request never left: safe to re-send, even a write.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_MAX_MESSAGE = 600


@dataclass
class ContractQuery:
    """Server-side filters Halo has for ``GET /ClientContract`` (others are client-side)."""

    client_id: int | None = None
    search: str | None = None
    include_inactive: bool = False
    exclude_renewed: bool = False


@dataclass
class ClientStats:
    """Counters of one client (diagnostics, benchmarks, doctor)."""

    requests: int = 0  # HTTP exchanges attempted, token requests included
    token_fetches: int = 0
    rate_limited: int = 0  # 429 answers seen
    retries: int = 0  # re-sends after 5xx / transport errors (reads), connect errors (writes)
    refreshes: int = 0  # token refreshes forced by a 401
    backoff_seconds: float = 0.0  # time slept in back-off (429 and retries)


@dataclass(frozen=True)
class HaloRequest:
    """A write as it will be sent (``preview_request`` shows these)."""

    operation: str  # human label: "create contract"
    method: str
    path: str  # under /api, e.g. "/ClientContract"
    body: Any = None
    params: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": API_PREFIX + self.path, "body": self.body}
        if self.params:
            out["query"] = dict(self.params)
        out["operation"] = self.operation
        return out


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return wire.format_date(value) or ""
    return str(value)


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: _query_value(v) for k, v in (params or {}).items() if v is not None}


def _readable_key(key: str) -> str:
    """``"[0].outcome_id"`` -> ``"outcome_id"``; ``"[2].x"`` -> ``"item 3: x"``."""
    if key.startswith("[") and "]" in key:
        index, _, rest = key[1:].partition("]")
        rest = rest.lstrip(".")
        if index == "0":
            return rest or "request"
        if index.isdigit():
            return f"item {int(index) + 1}: {rest}" if rest else f"item {int(index) + 1}"
    return key or "request"


def halo_message(response: httpx2.Response) -> tuple[str, dict[str, list[str]]]:
    """Halo's own words from an error answer, and its ModelState details if any."""
    text = ""
    try:
        text = response.text
    except Exception:  # pragma: no cover - undecodable body
        text = ""
    body: Any = None
    if text.strip():
        try:
            body = response.json()
        except ValueError:
            body = None
    details: dict[str, list[str]] = {}
    if isinstance(body, Mapping):
        source: Any = body
        if isinstance(body.get("errors"), Mapping):  # ASP.NET ProblemDetails
            source = body["errors"]
        for key, value in source.items():
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                details[str(key)] = [str(v) for v in value]
        if details:
            parts = [f"{_readable_key(k)}: {' '.join(v)}" for k, v in details.items()]
            return "; ".join(parts), details
        for name in ("error_description", "message", "Message", "errorMessage", "detail", "title", "error",
                     "ClassName"):
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                if name == "error" and isinstance(body.get("error_description"), str):
                    continue
                return value.strip(), details
        return (text.strip() or response.reason_phrase or "no message"), details
    if isinstance(body, str) and body.strip():
        return body.strip(), details
    stripped = text.strip()
    if stripped.startswith("<"):
        return f"{response.reason_phrase or 'error'} (Halo sent an HTML page)", details
    return (stripped or response.reason_phrase or "no message"), details


class HaloClient:
    """Async client over one ``httpx2.AsyncClient``.

    ``transport`` may be injected (tests: the sandbox in-process, or MockTransport).
    One rolling-window request budget (``settings.rate_limit``) is shared by every request
    this client sends, token requests included; by default it is the process-wide budget for
    that limit (:func:`~halo_contracts.halo.pacing.shared_budget`), so several clients in one
    process share it; with an injected transport the budget is shared per transport object
    (every client of one sandbox app shares it; separate sandboxes do not). Pass
    ``budget=RequestBudget(n, s)`` to give a client its own.
    ``backoff`` sets the retry delays (tests use tiny ones); ``sleep`` replaces ``anyio.sleep``
    for those waits; ``page_size``/``max_pages`` tune paging; ``timeout`` overrides
    ``settings.timeout``.
    """

    def __init__(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
                 on_request: RequestHook | None = None, budget: RequestBudget | None = None,
                 backoff: Backoff | None = None, page_size: int = PAGE_SIZE,
                 max_pages: int = DEFAULT_MAX_PAGES, timeout: float | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self._settings = settings
        self._codes = settings.code_maps
        self._on_request = on_request
        self.budget = budget or shared_budget(settings.rate_limit_requests, settings.rate_limit_seconds,
                                              scope=transport)
        self.backoff = backoff or Backoff()
        self._sleep = sleep or anyio.sleep  # back-off waits (injectable for tests)
        self.stats = ClientStats()
        self.page_size = page_size
        self.max_pages = max_pages
        base_url = settings.base_url or "http://halo.invalid"
        self._http = httpx2.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx2.Timeout(timeout if timeout is not None else settings.timeout),
            headers={"Accept": "application/json", "User-Agent": "halopsa-contracts-mcp"},
            follow_redirects=False,
        )
        self._auth = TokenCache(self._fetch_token)
        self._closed = False
        self._writers: dict[str, Callable[..., HaloRequest]] = {
            "create_contract": self._req_create_contract,
            "update_contract": self._req_update_contract,
            "create_recurring_invoice": self._req_create_recurring_invoice,
            "add_recurring_lines": self._req_add_recurring_lines,
            "update_recurring_line": self._req_update_recurring_line,
            "create_licence": self._req_create_licence,
            "update_licence": self._req_update_licence,
            "delete_licence": self._req_delete_licence,
        }

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def codes(self) -> CodeMaps:
        return self._codes

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def token_fetches(self) -> int:
        """How many tokens this client fetched (diagnostics)."""
        return self._auth.fetches

    async def _backoff_sleep(self, seconds: float) -> None:
        self.stats.backoff_seconds += seconds
        await self._sleep(seconds)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    async def __aenter__(self) -> HaloClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- secrets --------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        found = [v for v in self._auth.known_values() if v]
        if self._settings.client_secret is not None:
            secret = self._settings.client_secret.get_secret_value()
            if secret:
                found.append(secret)
        return found

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        if len(text) > _MAX_MESSAGE:
            text = text[: _MAX_MESSAGE - 1] + "…"
        return text

    def _error(self, cls: type[HaloError], message: str, *, status: int | None, operation: str,
               details: dict[str, list[str]] | None = None) -> HaloError:
        clean = {self._scrub(k): [self._scrub(m) for m in v] for k, v in (details or {}).items()}
        return cls(self._scrub(message), status=status, operation=operation, details=clean)

    # ---- plumbing -------------------------------------------------------------------------
    async def _hook(self, method: str, path: str, status: int | None) -> None:
        if self._on_request is None:
            return
        try:
            result = self._on_request(method, path, status)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken hook must not break the request
            logger.exception("on_request hook failed")

    async def _send(self, method: str, url: str, *, log_path: str, **kwargs: Any) -> httpx2.Response:
        """One HTTP exchange inside a budget slot; logs and calls the hook."""
        started = time.perf_counter()
        status: int | None = None
        self.stats.requests += 1
        try:
            async with self.budget.slot():
                response = await self._http.request(method, url, **kwargs)
                await response.aread()
            status = response.status_code
            return response
        finally:
            ms = (time.perf_counter() - started) * 1000
            logger.debug("%s %s -> %s in %.0f ms", method, log_path, status if status is not None else "no answer", ms)
            await self._hook(method, log_path, status)

    async def _fetch_token(self) -> tuple[str, float]:
        operation = "get a Halo token"
        try:
            self._settings.require_credentials()
        except ConfigError as exc:
            raise HaloAuthError(str(exc), operation=operation) from None
        url = self._settings.token_url
        log_path = urlsplit(url).path or "/token"
        rate_attempts = 0
        retries = 0
        while True:
            try:
                response = await self._send("POST", url, log_path=log_path, data=token_form(self._settings))
            except httpx2.TransportError as exc:
                if retries < self.backoff.read_retries:
                    retries += 1
                    self.stats.retries += 1
                    await self._backoff_sleep(self.backoff.retry_delay(retries))
                    continue
                raise self._error(HaloUnavailable, f"the token server could not be reached ({type(exc).__name__})",
                                  status=None, operation=operation) from None
            status = response.status_code
            if 200 <= status < 300:
                try:
                    parsed = read_token_answer(response.json())
                except ValueError:
                    parsed = None
                if parsed is None:
                    raise self._error(HaloAuthError, "the token server's answer carried no access_token",
                                      status=status, operation=operation)
                self.stats.token_fetches += 1
                return parsed
            if status == 429 and rate_attempts < self.backoff.rate_attempts:
                rate_attempts += 1
                await self._rate_wait(response, rate_attempts, "POST", log_path)
                continue
            if status >= 500 and retries < self.backoff.read_retries:
                retries += 1
                self.stats.retries += 1
                await self._backoff_sleep(self.backoff.retry_delay(retries))
                continue
            message, _details = halo_message(response)
            if status in (400, 401, 403):
                raise self._error(
                    HaloAuthError,
                    f"Halo's token server refused the credentials ({message}). Check HALO_CLIENT_ID, "
                    "HALO_CLIENT_SECRET, HALO_TENANT and that the API application is active",
                    status=status, operation=operation)
            if status == 429:
                raise self._error(HaloRateLimited, message, status=status, operation=operation)
            raise self._error(HaloServerError if status >= 500 else HaloAuthError, message, status=status,
                              operation=operation)

    async def _rate_wait(self, response: httpx2.Response, attempt: int, method: str, path: str) -> None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = self.backoff.rate_delay(attempt, retry_after)
        logger.warning("Halo rate limit (429) on %s %s; waiting %.1f s before re-sending (attempt %d of %d)",
                       method, path, delay, attempt, self.backoff.rate_attempts)
        self.stats.rate_limited += 1
        await self._backoff_sleep(delay)

    async def _call(self, method: str, path: str, *, operation: str, params: Mapping[str, Any] | None = None,
                    body: Any = None) -> Any:
        """Send one API request (path under /api) and return the parsed JSON answer (or None)."""
        method = method.upper()
        is_write = method in _WRITE_METHODS
        url = API_PREFIX + path
        query = _clean_params(params)
        kwargs: dict[str, Any] = {"params": query} if query else {}
        if body is not None:
            kwargs["json"] = body
        rate_attempts = 0
        retries = 0
        refreshed = False
        while True:
            token, fresh = await self._auth.get()
            headers = {"Authorization": f"Bearer {token.value}"}
            try:
                response = await self._send(method, url, log_path=url, headers=headers, **kwargs)
            except httpx2.TransportError as exc:
                kind = type(exc).__name__
                if is_write and not isinstance(exc, _NOT_SENT):
                    raise self._error(
                        HaloUnknownOutcome,
                        f"the request was sent but its answer was lost ({kind}); whether Halo saved it is "
                        "unknown, so it was not sent again",
                        status=None, operation=operation) from None
                if retries < self.backoff.read_retries:
                    retries += 1
                    logger.info("%s %s failed (%s); retry %d of %d", method, url, kind, retries,
                                self.backoff.read_retries)
                    self.stats.retries += 1
                    await self._backoff_sleep(self.backoff.retry_delay(retries))
                    continue
                raise self._error(HaloUnavailable, f"Halo could not be reached ({kind})", status=None,
                                  operation=operation) from None

            status = response.status_code
            if 200 <= status < 300:
                return self._json(response, operation)
            if status == 401:
                if fresh or refreshed:
                    message, _ = halo_message(response)
                    raise self._error(
                        HaloPermissionError,
                        f"missing Halo permission for {method} {url}: Halo refused a freshly issued token "
                        f"({message}). The API application or the agent it logs in as lacks access to this",
                        status=status, operation=operation)
                refreshed = True
                self.stats.refreshes += 1
                self._auth.invalidate(token)
                continue
            if status == 429:
                if rate_attempts < self.backoff.rate_attempts:
                    rate_attempts += 1
                    await self._rate_wait(response, rate_attempts, method, url)
                    continue
                message, _ = halo_message(response)
                raise self._error(HaloRateLimited,
                                  f"{message} (still rate limited after {rate_attempts} back-offs)",
                                  status=status, operation=operation)
            if status >= 500:
                message, _ = halo_message(response)
                if is_write:
                    raise self._error(
                        HaloUnknownOutcome,
                        f"{message}; whether Halo saved the change is unknown, so it was not sent again",
                        status=status, operation=operation)
                if retries < self.backoff.read_retries:
                    retries += 1
                    logger.info("%s %s answered %d; retry %d of %d", method, url, status, retries,
                                self.backoff.read_retries)
                    self.stats.retries += 1
                    await self._backoff_sleep(self.backoff.retry_delay(retries))
                    continue
                raise self._error(HaloServerError, message, status=status, operation=operation)
            message, details = halo_message(response)
            if status == 403:
                raise self._error(
                    HaloPermissionError,
                    f"missing Halo permission for {method} {url} ({message})", status=status,
                    operation=operation)
            if status == 404:
                raise self._error(HaloNotFound, message, status=status, operation=operation)
            if status in (400, 409, 422):
                raise self._error(HaloValidationError, message, status=status, operation=operation,
                                  details=details)
            raise self._error(HaloError, message, status=status, operation=operation, details=details)

    def _json(self, response: httpx2.Response, operation: str) -> Any:
        if not response.content or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise self._error(HaloError, "Halo answered with something that is not JSON",
                              status=response.status_code, operation=operation) from None

    async def _list(self, path: str, *, key: str, operation: str, params: Mapping[str, Any] | None = None,
                    on_page: PageCallback | None = None) -> list[dict[str, Any]]:
        base = dict(params or {})

        async def fetch(page_no: int, page_size: int) -> Any:
            query = {**base, "pageinate": True, "page_size": page_size, "page_no": page_no}
            return await self._call("GET", path, operation=operation, params=query)

        return await read_all_pages(fetch, key=key, operation=operation, page_size=self.page_size,
                                    max_pages=self.max_pages, on_page=on_page)

    async def _get_object(self, path: str, *, operation: str, params: Mapping[str, Any] | None = None
                          ) -> dict[str, Any]:
        body = await self._call("GET", path, operation=operation, params=params)
        row = _single(body)
        if row is None:
            raise self._error(HaloNotFound, "Halo answered without the record", status=None,
                              operation=operation)
        return row

    async def _write(self, request: HaloRequest) -> Any:
        return await self._call(request.method, request.path, operation=request.operation,
                                params=request.params, body=request.body)

    def _saved(self, body: Any, request: HaloRequest) -> dict[str, Any]:
        row = _single(body)
        if row is None:
            raise self._error(
                HaloUnknownOutcome,
                "Halo accepted the request but did not return the saved record",
                status=None, operation=request.operation)
        return row

    # ---- diagnostics (doctor) -------------------------------------------------------------
    PROBES: dict[str, tuple[str, str | None, dict[str, Any]]] = {
        # name: (path, list key or None for a bare array, extra query)
        "clients": ("/Client", "clients", {}),
        "slas": ("/SLA", None, {}),
        "lookups": ("/Lookup", None, {"lookupid": 72}),
        "contracts": ("/ClientContract", "contracts", {}),
        "recurring_invoices": ("/RecurringInvoice", "invoices", {}),
        "invoices": ("/Invoice", "invoices", {}),
        "actions": ("/Actions", "actions", {"timeentriesonly": True, "count": 1}),
        "tickets": ("/Tickets", "tickets", {}),
        "prepay": ("/ClientPrepay", "prepayhistory", {}),
        "licences": ("/SoftwareLicence", "licences", {}),
    }

    async def authenticate(self) -> None:
        """Fetch a token now (or reuse the cached one); HaloAuthError when refused."""
        await self._auth.get()

    async def probe(self, name: str) -> int | None:
        """One small read of an endpoint the tools use; the record count when Halo reports one."""
        path, key, extra = self.PROBES[name]
        params: dict[str, Any] = dict(extra)
        if name == "lookups":
            params["lookupid"] = self._settings.lookup_type_id
        if key is not None and name != "actions":
            params.update({"pageinate": True, "page_size": 1, "page_no": 1})
        body = await self._call("GET", path, operation=f"read {name.replace('_', ' ')}", params=params)
        if isinstance(body, list):
            return len(body)
        if isinstance(body, dict):
            count = body.get("record_count")
            if isinstance(count, int):
                return count
            rows = body.get(key) if key else None
            return len(rows) if isinstance(rows, list) else None
        return None

    # ---- clients, SLAs, lookups ----------------------------------------------------------
    async def list_clients(self, *, search: str | None = None, include_inactive: bool = False,
                           on_page: PageCallback | None = None) -> list[Client]:
        params = {"search": search or None, "includeinactive": True if include_inactive else None}
        rows = await self._list("/Client", key="clients", operation="list clients", params=params,
                                on_page=on_page)
        return [wire.client_from_wire(r) for r in rows]

    async def get_client(self, client_id: int) -> Client:
        row = await self._get_object(f"/Client/{int(client_id)}", operation="get client")
        return wire.client_from_wire(row)

    async def list_slas(self) -> list[Sla]:
        body = await self._call("GET", "/SLA", operation="list SLAs")
        return [wire.sla_from_wire(r) for r in extract_rows(body, "slas")]

    async def get_lookup(self, lookup_id: int) -> list[LookupValue]:
        body = await self._call("GET", "/Lookup", operation="read lookup", params={"lookupid": int(lookup_id)})
        return [wire.lookup_from_wire(r) for r in extract_rows(body, "lookup")]

    # ---- contracts -------------------------------------------------------------------------
    async def list_contracts(self, query: ContractQuery | None = None, *,
                             on_page: PageCallback | None = None) -> list[Contract]:
        """Every contract matching the server-side filters (all pages). List rows: no prepay."""
        q = query or ContractQuery()
        params = {
            "client_id": q.client_id,
            "search": q.search or None,
            "includeinactive": True if q.include_inactive else None,
            "excluderenewed": True if q.exclude_renewed else None,
        }
        rows = await self._list("/ClientContract", key="contracts", operation="list contracts", params=params,
                                on_page=on_page)
        return [wire.contract_from_wire(r, self._codes) for r in rows]

    async def get_contract(self, contract_id: int, *, details: bool = True) -> Contract:
        """One contract; with details the prepay totals, ledger and periods are filled."""
        params = {"includedetails": True, "includeperiods": True} if details else None
        row = await self._get_object(f"/ClientContract/{int(contract_id)}", operation="get contract",
                                     params=params)
        return wire.contract_from_wire(row, self._codes)

    def _req_create_contract(self, fields: ContractFields) -> HaloRequest:
        body = wire.contract_to_wire(fields, self._codes)
        body.pop("id", None)
        return HaloRequest("create contract", "POST", "/ClientContract", [body])

    def _req_update_contract(self, contract_id: int, fields: ContractFields) -> HaloRequest:
        body = wire.contract_to_wire(fields, self._codes, contract_id=int(contract_id))
        return HaloRequest("update contract", "POST", "/ClientContract", [body])

    async def create_contract(self, fields: ContractFields) -> Contract:
        request = self._req_create_contract(fields)
        return wire.contract_from_wire(self._saved(await self._write(request), request), self._codes)

    async def update_contract(self, contract_id: int, fields: ContractFields) -> Contract:
        """Partial update: sends ``id`` plus exactly ``fields.given()``."""
        request = self._req_update_contract(contract_id, fields)
        return wire.contract_from_wire(self._saved(await self._write(request), request), self._codes)

    # ---- recurring invoices and their lines ----------------------------------------------
    async def list_recurring_invoices(self, *, contract_id: int | None = None, client_id: int | None = None,
                                      include_lines: bool = True,
                                      on_page: PageCallback | None = None) -> list[RecurringInvoice]:
        params = {"contract_id": contract_id, "client_id": client_id, "includelines": include_lines}
        rows = await self._list("/RecurringInvoice", key="invoices", operation="list recurring invoices",
                                params=params, on_page=on_page)
        return [wire.recurring_invoice_from_wire(r, self._codes) for r in rows]

    async def get_recurring_invoice(self, recurring_invoice_id: int) -> RecurringInvoice:
        row = await self._get_object(f"/RecurringInvoice/{int(recurring_invoice_id)}",
                                     operation="get recurring invoice", params={"includedetails": True})
        return wire.recurring_invoice_from_wire(row, self._codes)

    def _req_create_recurring_invoice(self, *, client_id: int, contract_id: int,
                                      contract_ref: str | None = None) -> HaloRequest:
        body = wire.recurring_invoice_to_wire(client_id=int(client_id), contract_id=int(contract_id),
                                              contract_ref=contract_ref)
        return HaloRequest("create recurring invoice", "POST", "/RecurringInvoice", [body])

    async def create_recurring_invoice(self, *, client_id: int, contract_id: int,
                                       contract_ref: str | None = None) -> RecurringInvoice:
        request = self._req_create_recurring_invoice(client_id=client_id, contract_id=contract_id,
                                                     contract_ref=contract_ref)
        return wire.recurring_invoice_from_wire(self._saved(await self._write(request), request), self._codes)

    def _req_add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                 items: list[RecurringItemFields]) -> HaloRequest:
        rows = [wire.recurring_item_to_wire(item, self._codes, recurring_invoice_id=int(recurring_invoice_id),
                                            contract_id=int(contract_id)) for item in items]
        return HaloRequest("add recurring lines", "POST", "/RecurringInvoice/Lines", rows)

    async def add_recurring_lines(self, recurring_invoice_id: int, contract_id: int,
                                  items: list[RecurringItemFields]) -> list[RecurringItem]:
        if not items:
            return []
        request = self._req_add_recurring_lines(recurring_invoice_id, contract_id, items)
        body = await self._write(request)
        rows = _saved_lines(body, request.body)
        if not rows:
            raise self._error(HaloUnknownOutcome, "Halo accepted the lines but did not return them",
                              status=None, operation=request.operation)
        return [wire.recurring_item_from_wire(r, self._codes, recurring_invoice_id=int(recurring_invoice_id),
                                              contract_id=int(contract_id)) for r in rows]

    def _req_update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                   fields: RecurringItemFields) -> HaloRequest:
        row = wire.recurring_item_to_wire(fields, self._codes, line_id=int(line_id),
                                          recurring_invoice_id=int(recurring_invoice_id))
        return HaloRequest("update recurring line", "POST", "/RecurringInvoice/updatelines", [row])

    async def update_recurring_line(self, line_id: int, recurring_invoice_id: int,
                                    fields: RecurringItemFields) -> RecurringItem:
        request = self._req_update_recurring_line(line_id, recurring_invoice_id, fields)
        body = await self._write(request)
        rows = extract_rows(body, "lines")
        match = next((r for r in rows if r.get("id") == int(line_id)), rows[0] if rows else None)
        if match is None:
            raise self._error(HaloUnknownOutcome, "Halo accepted the change but did not return the line",
                              status=None, operation=request.operation)
        return wire.recurring_item_from_wire(match, self._codes, recurring_invoice_id=int(recurring_invoice_id))

    # ---- invoices, time, tickets, prepay ledger -------------------------------------------
    async def list_invoices(self, *, client_id: int | None = None, contract_id: int | None = None,
                            start: date | None = None, end: date | None = None,
                            on_page: PageCallback | None = None) -> list[Invoice]:
        """Invoices with lines; ``start``/``end`` filter ``invoice_date`` (inclusive) after
        the paged read, since Halo's list has no date filter."""
        params = {"client_id": client_id, "contract_id": contract_id, "includelines": True}
        rows = await self._list("/Invoice", key="invoices", operation="list invoices", params=params,
                                on_page=on_page)
        invoices = [wire.invoice_from_wire(r) for r in rows]
        if start is not None or end is not None:
            invoices = [i for i in invoices if _within(i.invoice_date, start, end)]
        return invoices

    async def list_time_entries(self, *, start: date, end: date, ticket_id: int | None = None,
                                on_page: PageCallback | None = None) -> list[TimeEntry]:
        """Ticket actions carrying time between ``start`` and ``end`` (inclusive)."""
        params = {
            "timeentriesonly": True,
            "startdate": f"{start.isoformat()}T00:00:00",
            "enddate": f"{end.isoformat()}T23:59:59",
            "ticket_id": ticket_id,
        }
        # /Actions has no paging parameters in Halo's spec: one read returns the whole range.
        operation = "list time entries"
        body = await self._call("GET", "/Actions", operation=operation, params=params)
        rows = extract_rows(body, "actions")
        total = record_count(body)
        if total is not None and total > len(rows):
            raise self._error(HaloIncompleteRead, f"Halo returned {len(rows)} of {total} time entries; "
                              "ask for a shorter date range", status=None, operation=operation)
        if on_page is not None:
            result = on_page(1, 1)
            if inspect.isawaitable(result):
                await result
        entries = [wire.time_entry_from_wire(r) for r in rows]
        return [e for e in entries if e.when is None or _within(e.when, start, end)]

    async def list_tickets(self, *, contract_id: int | None = None, client_id: int | None = None,
                           start: date | None = None, end: date | None = None,
                           on_page: PageCallback | None = None) -> list[Ticket]:
        params: dict[str, Any] = {"contract_id": contract_id, "client_id": client_id}
        if start is not None or end is not None:
            # Halo's column name, spelled as the slice documents it ("Date Opened - 'dateoccured'")
            params["datesearch"] = "dateoccured"
            if start is not None:
                params["startdate"] = f"{start.isoformat()}T00:00:00"
            if end is not None:
                params["enddate"] = f"{end.isoformat()}T23:59:59"
        rows = await self._list("/Tickets", key="tickets", operation="list tickets", params=params,
                                on_page=on_page)
        tickets = [wire.ticket_from_wire(r) for r in rows]
        if start is not None or end is not None:
            tickets = [t for t in tickets if t.opened is None or _within(t.opened, start, end)]
        return tickets

    async def list_prepay_entries(self, *, client_id: int | None = None, contract_id: int | None = None,
                                  on_page: PageCallback | None = None) -> list[PrepayEntry]:
        params = {"client_id": client_id, "contract_id": contract_id}
        rows = await self._list("/ClientPrepay", key="prepayhistory", operation="list prepay entries", params=params,
                                on_page=on_page)
        entries = [wire.prepay_entry_from_wire(r, contract_id=contract_id) for r in rows]
        if contract_id is not None:
            entries = [e for e in entries if e.contract_id in (None, contract_id)]
        return entries

    # ---- software licences ----------------------------------------------------------------
    async def list_licences(self, *, client_id: int | None = None, include_inactive: bool = False,
                            on_page: PageCallback | None = None) -> list[Licence]:
        """Every software licence (all pages); ``include_inactive`` adds the inactive ones
        (``includeinactive=true``), which Halo leaves out by default."""
        params = {"client_id": client_id, "includeinactive": True if include_inactive else None}
        rows = await self._list("/SoftwareLicence", key="licences", operation="list licences",
                                params=params, on_page=on_page)
        return [wire.licence_from_wire(r) for r in rows]

    def _req_create_licence(self, fields: LicenceFields) -> HaloRequest:
        body = wire.licence_to_wire(fields)
        return HaloRequest("create licence", "POST", "/SoftwareLicence", [body])

    def _req_update_licence(self, licence_id: int, fields: LicenceFields) -> HaloRequest:
        body = wire.licence_to_wire(fields, licence_id=int(licence_id))
        return HaloRequest("update licence", "POST", "/SoftwareLicence", [body])

    def _req_delete_licence(self, licence_id: int) -> HaloRequest:
        return HaloRequest("delete licence", "DELETE", f"/SoftwareLicence/{int(licence_id)}")

    async def create_licence(self, fields: LicenceFields) -> Licence:
        request = self._req_create_licence(fields)
        return wire.licence_from_wire(self._saved(await self._write(request), request))

    async def update_licence(self, licence_id: int, fields: LicenceFields) -> Licence:
        request = self._req_update_licence(licence_id, fields)
        return wire.licence_from_wire(self._saved(await self._write(request), request))

    async def delete_licence(self, licence_id: int) -> None:
        await self._write(self._req_delete_licence(licence_id))

    # ---- raw preview (for plans) ----------------------------------------------------------
    def preview_request(self, operation: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The Halo request a write method would send, without sending it:
        ``{"method": "POST", "path": "/api/ClientContract", "body": [...]}``.
        ``operation`` is the write method's name (e.g. ``"create_contract"``); the other
        arguments are that method's. (Extra keys: ``operation`` label, ``query`` if any.)"""
        builder = self._writers.get(operation)
        if builder is None:
            raise ValueError(f"unknown write operation '{operation}'; known: {', '.join(sorted(self._writers))}")
        return builder(*args, **kwargs).as_dict()


# ---- helpers ----------------------------------------------------------------------------


def _single(body: Any) -> dict[str, Any] | None:
    """The one record in a POST/GET answer: an object, an array's first item, or a wrapper's."""
    if isinstance(body, Mapping):
        if "id" in body:
            return dict(body)
        rows = extract_rows(body, None)
        return rows[0] if rows else None
    if isinstance(body, list):
        rows = [r for r in body if isinstance(r, Mapping)]
        return dict(rows[0]) if rows else None
    return None


def _saved_lines(body: Any, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines saved by ``/RecurringInvoice/Lines``: an array, one line, or a header with lines."""
    if isinstance(body, Mapping) and "id" in body and isinstance(body.get("lines"), list) \
            and "item_shortdescription" not in body:
        rows = [r for r in body["lines"] if isinstance(r, Mapping)]
        wanted = [s.get("item_shortdescription") for s in sent]
        matching = [r for r in rows if r.get("item_shortdescription") in wanted]
        return matching[-len(sent):] if len(matching) >= len(sent) else matching
    return extract_rows(body, "lines")


def _within(value: date | None, start: date | None, end: date | None) -> bool:
    if value is None:
        return False
    if start is not None and value < start:
        return False
    return not (end is not None and value > end)
