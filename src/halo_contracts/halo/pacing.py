"""Request pacing: the rolling-window budget every Halo request passes through, and the
back-off policy for 429s, 5xx and transport errors.

Halo's hosted limit is a rolling window ("300 Requests per rolling 5 minute window"). The
budget keeps a slot per request sent in the last window; work that needs more waits
(``anyio.sleep``) instead of failing. A slot is stamped when its answer arrives (the
latest moment Halo can have counted it), so a server that counts arrivals never sees more
than the budget in any window. The budget is loop-agnostic (a ``threading.Lock`` guards a
short critical section; waiting is an anyio sleep), so one process-wide instance can serve
every client, event loop and test.

Two context variables let the tool call running a request report progress: a wait of a
second or more is announced to ``wait_listener`` (never only logged), and every answered
request is counted by ``request_listener``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anyio

logger = logging.getLogger("halo_contracts.halo")

__all__ = ["Backoff", "RequestBudget", "Slot", "announce_answer", "announce_wait", "parse_retry_after",
           "request_listener", "shared_budget", "wait_listener"]

# listener(seconds, message): told about every wait of a second or more in this context
wait_listener: ContextVar[Callable[[float, str], Awaitable[None]] | None] = ContextVar(
    "halo_wait_listener", default=None)
# listener(): told each time a request's answer arrives in this context
request_listener: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "halo_request_listener", default=None)


async def announce_answer() -> None:
    """Tell the current request listener that a request's answer arrived."""
    listener = request_listener.get()
    if listener is None:
        return
    try:
        await listener()
    except Exception:  # whoever listens must never break a request
        logger.warning("request listener failed", exc_info=True)


async def announce_wait(seconds: float, why: str = "Halo's rate limit") -> None:
    """Tell the current listener "waiting N s for <why>" (waits under a second are not worth it)."""
    listener = wait_listener.get()
    if listener is None or seconds < 1.0:
        return
    try:
        await listener(seconds, f"waiting {math.ceil(seconds)} s for {why}")
    except Exception:  # whoever listens must never break a request
        logger.warning("wait listener failed", exc_info=True)


class Slot:
    """One request's place in the window; ``stamp`` is None while the request is in flight."""

    __slots__ = ("stamp",)

    def __init__(self) -> None:
        self.stamp: float | None = None


class RequestBudget:
    """At most ``requests`` requests in any rolling ``seconds`` window.

    ``async with budget.slot(): send()``: waits for room, holds a slot while the request is
    in flight and stamps it when the answer arrives. ``clock`` and ``sleep`` are injectable.
    """

    def __init__(self, requests: int, seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None, margin: float | None = None) -> None:
        if requests < 1 or seconds <= 0:
            raise ValueError("a request budget needs requests >= 1 and seconds > 0")
        self.requests = requests
        self.seconds = float(seconds)
        # A little slack on top of the window absorbs clock granularity differences.
        self.margin = min(0.5, self.seconds * 0.02) if margin is None else margin
        self._clock = clock
        self._sleep = sleep or anyio.sleep
        self._lock = threading.Lock()
        self._slots: list[Slot] = []
        self.waited = 0.0  # total seconds spent waiting for room (diagnostics)
        self.acquired = 0  # slots handed out

    def __repr__(self) -> str:
        return f"RequestBudget({self.requests}/{self.seconds:g}s)"

    def _prune(self, now: float) -> None:
        horizon = now - self.seconds - self.margin
        self._slots = [s for s in self._slots if s.stamp is None or s.stamp > horizon]

    def in_window(self) -> int:
        """Slots counted in the current window (in-flight ones included)."""
        with self._lock:
            self._prune(self._clock())
            return len(self._slots)

    async def acquire(self) -> Slot:
        """Wait until the window has room, then take a slot (stamp it with :meth:`release`)."""
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                if len(self._slots) < self.requests:
                    slot = Slot()
                    self._slots.append(slot)
                    self.acquired += 1
                    return slot
                finished = [s.stamp for s in self._slots if s.stamp is not None]
                wait = (min(finished) + self.seconds + self.margin - now) if finished else 0.05
            wait = max(wait, 0.001)
            if wait >= 1.0:
                logger.info("Halo request budget full (%d per %g s); waiting %.1f s", self.requests,
                            self.seconds, wait)
                await announce_wait(wait)
            self.waited += wait
            await self._sleep(wait)

    def release(self, slot: Slot) -> None:
        """The request's answer arrived (or it failed): the slot counts from now."""
        with self._lock:
            slot.stamp = self._clock()

    def slot(self) -> _SlotContext:
        return _SlotContext(self)


class _SlotContext:
    def __init__(self, budget: RequestBudget) -> None:
        self._budget = budget
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        self._slot = await self._budget.acquire()
        return self._slot

    async def __aexit__(self, *exc: object) -> None:
        if self._slot is not None:
            self._budget.release(self._slot)
            if exc[0] is None:
                await announce_answer()


_SHARED: dict[tuple[int, float], RequestBudget] = {}
_SCOPED: weakref.WeakKeyDictionary[object, dict[tuple[int, float], RequestBudget]] = weakref.WeakKeyDictionary()
_STRONG: dict[int, dict[tuple[int, float], RequestBudget]] = {}
_SHARED_LOCK = threading.Lock()


def shared_budget(requests: int, seconds: float, *, scope: object | None = None) -> RequestBudget:
    """The process-wide budget for ``requests`` per ``seconds`` (one per distinct limit).

    ``scope`` narrows it to one target: the client passes its injected transport, so every
    client talking to the same in-process sandbox (or fake) shares one budget, while
    unrelated tests with their own sandboxes do not eat into each other's window. Clients on
    the real network (no transport injected) all share the unscoped budget.
    """
    key = (int(requests), float(seconds))
    with _SHARED_LOCK:
        if scope is None:
            table = _SHARED
        else:
            try:
                table = _SCOPED.setdefault(scope, {})
            except TypeError:  # not weak-referenceable: scope by identity, kept for the process
                table = _STRONG.setdefault(id(scope), {})
        budget = table.get(key)
        if budget is None:
            budget = table[key] = RequestBudget(*key)
        return budget


@dataclass(frozen=True)
class Backoff:
    """Retry policy. Tests inject tiny delays; production uses the defaults.

    * 429: wait ``rate_base`` doubling up to ``rate_cap`` (or ``Retry-After`` when Halo sends
      it, capped at ``retry_after_cap``), at most ``rate_attempts`` re-sends, then
      ``HaloRateLimited``. A 429 means Halo did not process the request, so reads and writes
      are both re-sent.
    * reads: 5xx / timeouts / transport errors are retried ``read_retries`` times after
      ``retry_base`` doubling.
    * writes: never re-sent after a 5xx, timeout or lost answer (``HaloUnknownOutcome``);
      only errors that prove nothing was sent (connection refused) are retried.
    """

    rate_base: float = 5.0
    rate_cap: float = 60.0
    rate_attempts: int = 6
    retry_after_cap: float = 300.0
    read_retries: int = 3
    retry_base: float = 0.5
    retry_cap: float = 8.0

    def rate_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before re-send number ``attempt`` (1-based) after a 429."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        return min(self.rate_base * (2 ** (attempt - 1)), self.rate_cap)

    def retry_delay(self, attempt: int) -> float:
        return min(self.retry_base * (2 ** (attempt - 1)), self.retry_cap)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent/garbled."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)
