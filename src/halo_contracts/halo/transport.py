"""The transport every Halo endpoint module uses: auth, pacing, retries, errors, scrubbing.

How a request travels (:meth:`HaloTransport._call`):

1. a bearer token from the :class:`~halo_contracts.halo.auth.TokenCache` (fetched through
   the same budget when missing or about to expire);
2. a slot of the rolling-window :class:`~halo_contracts.halo.pacing.RequestBudget`
   (process-wide by default, shared with token requests); waits instead of failing;
3. the answer: 2xx -> JSON; 401 -> one token refresh and re-send, then
   ``HaloPermissionError``; 403 -> ``HaloPermissionError``; 404 -> ``HaloNotFound``;
   400/422 -> ``HaloValidationError`` with Halo's ModelState; 429 -> exponential back-off
   (5 s doubling to 60 s, ``Retry-After`` honoured) then ``HaloRateLimited``; 5xx and
   transport errors -> reads retry a few times, writes raise ``HaloUnknownOutcome``.

The endpoint modules (``contracts``, ``recurring``, ``invoices``, ``tickets``, ``prepay``,
``licences``, ``clients``) add the resource methods on top; ``halo.client.HaloClient``
combines them.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2

from halo_contracts.config import CodeMaps, ConfigError, Settings
from halo_contracts.halo import wire
from halo_contracts.halo.auth import Token, TokenCache, read_token_answer, token_form
from halo_contracts.halo.errors import (
    HaloAuthError,
    HaloError,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloServerError,
    HaloUnavailable,
    HaloUnknownOutcome,
    HaloValidationError,
)
from halo_contracts.halo.pacing import Backoff, RequestBudget, announce_wait, parse_retry_after, shared_budget
from halo_contracts.halo.paging import DEFAULT_MAX_PAGES, PAGE_SIZE, extract_rows, read_all_pages
from halo_contracts.halo.secrets import mask

__all__ = ["ClientStats", "HaloRequest", "HaloTransport", "PageCallback", "RequestHook", "halo_message"]

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
class ClientStats:
    """Counters of one client (diagnostics, benchmarks, doctor)."""

    requests: int = 0  # HTTP exchanges attempted, token requests included
    token_fetches: int = 0
    rate_limited: int = 0  # 429 answers seen
    retries: int = 0  # re-sends after 5xx / transport errors (reads), connect errors (writes)
    refreshes: int = 0  # token refreshes forced by a 401
    backoff_seconds: float = 0.0  # time slept in back-off (429 and retries)


@dataclass
class _Attempt:
    """One request being sent, and how often it has been re-sent so far."""

    method: str
    url: str
    operation: str
    rate_attempts: int = 0
    retries: int = 0
    refreshed: bool = False

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS


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


class HaloTransport:
    """Async transport over one ``httpx2.AsyncClient``.

    ``transport`` may be injected (tests: the sandbox in-process, or MockTransport).
    One rolling-window request budget (``settings.rate_limit``) is shared by every request
    this client sends, token requests included; by default it is the process-wide budget for
    that limit (:func:`~halo_contracts.halo.pacing.shared_budget`), so several clients in one
    process share it; with an injected transport the budget is shared per transport object
    (every client of one sandbox app shares it; separate sandboxes do not). Pass
    ``budget=RequestBudget(n, s)`` to give a client its own.
    ``backoff`` sets the retry delays (tests use tiny ones); ``sleep`` replaces ``anyio.sleep``
    for those waits; ``page_size``/``max_pages`` tune paging; ``timeout`` overrides
    ``settings.timeout``; ``today`` gives the date new recurring invoices schedule from
    (default: today in UTC).
    """

    def __init__(self, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None,
                 on_request: RequestHook | None = None, budget: RequestBudget | None = None,
                 backoff: Backoff | None = None, page_size: int = PAGE_SIZE,
                 max_pages: int = DEFAULT_MAX_PAGES, timeout: float | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 today: Callable[[], date] | None = None) -> None:
        self._settings = settings
        self._today = today or _utc_today  # schedules of new recurring invoices (injectable for tests)
        self._codes = settings.code_maps
        self._on_request = on_request
        self.budget = budget or shared_budget(settings.rate_limit_requests, settings.rate_limit_seconds,
                                              scope=transport)
        self.backoff = backoff or Backoff()
        self._sleep = sleep or anyio.sleep  # back-off waits (injectable for tests)
        self.stats = ClientStats()
        # server-side filters seen ignored by this tenant (rows outside the filter came back)
        self.ignored_filters: set[str] = set()
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

    def note_filter(self, name: str, *, honoured: bool) -> None:
        """Record what a filtered read showed: a tenant that ignores a server-side filter
        answers rows outside it (the rows are then filtered here, as always)."""
        if not honoured and name not in self.ignored_filters:
            self.ignored_filters.add(name)
            logger.warning("Halo ignored the %s filter (rows outside it came back); filtering on our side", name)

    async def _backoff_sleep(self, seconds: float) -> None:
        self.stats.backoff_seconds += seconds
        await self._sleep(seconds)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    async def __aenter__(self) -> HaloTransport:
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
        text = mask(text, self._secrets(), client_id=self._settings.client_id)
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
        await announce_wait(delay, "Halo's rate limit (it answered 429)")
        await self._backoff_sleep(delay)

    async def _call(self, method: str, path: str, *, operation: str, params: Mapping[str, Any] | None = None,
                    body: Any = None) -> Any:
        """Send one API request (path under /api) and return the parsed JSON answer (or None)."""
        attempt = _Attempt(method.upper(), API_PREFIX + path, operation)
        query = _clean_params(params)
        kwargs: dict[str, Any] = {"params": query} if query else {}
        if body is not None:
            kwargs["json"] = body
        while True:
            token, fresh = await self._auth.get()
            headers = {"Authorization": f"Bearer {token.value}"}
            try:
                response = await self._send(attempt.method, attempt.url, log_path=attempt.url, headers=headers,
                                            **kwargs)
            except httpx2.TransportError as exc:
                await self._after_transport_error(exc, attempt)
                continue
            if 200 <= response.status_code < 300:
                return self._json(response, operation)
            if await self._resend(response, attempt, token, fresh):
                continue
            raise self._answer_error(response, attempt)

    async def _after_transport_error(self, exc: httpx2.TransportError, attempt: _Attempt) -> None:
        """A request with no answer: wait before re-sending a read, or raise."""
        kind = type(exc).__name__
        if attempt.is_write and not isinstance(exc, _NOT_SENT):
            raise self._error(
                HaloUnknownOutcome,
                f"the request was sent but its answer was lost ({kind}); whether Halo saved it is "
                "unknown, so it was not sent again",
                status=None, operation=attempt.operation) from None
        if attempt.retries < self.backoff.read_retries:
            attempt.retries += 1
            logger.info("%s %s failed (%s); retry %d of %d", attempt.method, attempt.url, kind, attempt.retries,
                        self.backoff.read_retries)
            self.stats.retries += 1
            await self._backoff_sleep(self.backoff.retry_delay(attempt.retries))
            return
        raise self._error(HaloUnavailable, f"Halo could not be reached ({kind})", status=None,
                          operation=attempt.operation) from None

    async def _resend(self, response: httpx2.Response, attempt: _Attempt, token: Token, fresh: bool) -> bool:
        """Whether an error answer is worth sending again (after a refresh or a wait)."""
        status = response.status_code
        if status == 401 and not (fresh or attempt.refreshed):
            attempt.refreshed = True
            self.stats.refreshes += 1
            self._auth.invalidate(token)
            return True
        if status == 429 and attempt.rate_attempts < self.backoff.rate_attempts:
            attempt.rate_attempts += 1
            await self._rate_wait(response, attempt.rate_attempts, attempt.method, attempt.url)
            return True
        if status >= 500 and not attempt.is_write and attempt.retries < self.backoff.read_retries:
            attempt.retries += 1
            logger.info("%s %s answered %d; retry %d of %d", attempt.method, attempt.url, status, attempt.retries,
                        self.backoff.read_retries)
            self.stats.retries += 1
            await self._backoff_sleep(self.backoff.retry_delay(attempt.retries))
            return True
        return False

    def _answer_error(self, response: httpx2.Response, attempt: _Attempt) -> HaloError:
        """The error for an answer that will not be sent again."""
        status = response.status_code
        message, details = halo_message(response)
        where, operation = f"{attempt.method} {attempt.url}", attempt.operation
        if status == 401:
            return self._error(
                HaloPermissionError,
                f"missing Halo permission for {where}: Halo refused a freshly issued token "
                f"({message}). The API application or the agent it logs in as lacks access to this",
                status=status, operation=operation)
        if status == 429:
            return self._error(HaloRateLimited,
                               f"{message} (still rate limited after {attempt.rate_attempts} back-offs)",
                               status=status, operation=operation)
        if status >= 500:
            if attempt.is_write:
                return self._error(
                    HaloUnknownOutcome,
                    f"{message}; whether Halo saved the change is unknown, so it was not sent again",
                    status=status, operation=operation)
            return self._error(HaloServerError, message, status=status, operation=operation)
        if status == 403:
            return self._error(HaloPermissionError, f"missing Halo permission for {where} ({message})",
                               status=status, operation=operation)
        if status == 404:
            return self._error(HaloNotFound, message, status=status, operation=operation)
        cls = HaloValidationError if status in (400, 409, 422) else HaloError
        return self._error(cls, message, status=status, operation=operation, details=details)

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
        row = single(body)
        if row is None:
            raise self._error(HaloNotFound, "Halo answered without the record", status=None,
                              operation=operation)
        return row

    async def _write(self, request: HaloRequest) -> Any:
        return await self._call(request.method, request.path, operation=request.operation,
                                params=request.params, body=request.body)

    def _saved(self, body: Any, request: HaloRequest) -> dict[str, Any]:
        row = single(body)
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

    # ---- raw preview (for plans) ----------------------------------------------------------
    WRITES: tuple[str, ...] = ()  # write operations an endpoint module adds (each has a ``_req_<name>``)

    def write_operations(self) -> list[str]:
        """Every write operation :meth:`preview_request` knows, over all endpoint modules."""
        return sorted({name for klass in type(self).__mro__ for name in getattr(klass, "WRITES", ())})

    def preview_request(self, operation: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The Halo request a write method would send, without sending it:
        ``{"method": "POST", "path": "/api/ClientContract", "body": [...]}``.
        ``operation`` is the write method's name (e.g. ``"create_contract"``); the other
        arguments are that method's. (Extra keys: ``operation`` label, ``query`` if any.)"""
        known = self.write_operations()
        if operation not in known:
            raise ValueError(f"unknown write operation '{operation}'; known: {', '.join(known)}")
        builder: Callable[..., HaloRequest] = getattr(self, f"_req_{operation}")
        return builder(*args, **kwargs).as_dict()


# ---- helpers ----------------------------------------------------------------------------

def single(body: Any) -> dict[str, Any] | None:
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


def _utc_today() -> date:
    return datetime.now(UTC).date()


def within(value: date | None, start: date | None, end: date | None) -> bool:
    if value is None:
        return False
    if start is not None and value < start:
        return False
    return not (end is not None and value > end)

