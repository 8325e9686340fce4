"""The progress notifications of one tool call, as the MCP spec wants them.

* Values strictly increase. A report whose value is not above the last one is moved to a
  point between the last value and the next whole step (or the total), so a second message
  at the same step still arrives and never overtakes the next real step; when no room is
  left it is dropped.
* A call is never silent for long: until the tool reports progress of its own (or
  claims the scale with :meth:`CallProgress.claim`), an answered Halo request after a second without a
  notification is reported ("12 Halo requests answered"). A tool's own values count on from
  the requests already reported, so they still grow.
* A wait on Halo's rate limit is announced ("waiting 40 s for Halo's rate limit") between
  two reports.
* Reporting never breaks the call: a failing consumer is logged and ignored.

Tools report with ``await progress_of(ctx).report(value, total, message)`` (never with
``ctx.report_progress``, which would bypass the ordering). The channel belongs to the request;
``progress_middleware`` points ``halo.pacing``'s listeners at it for every ``tools/call``.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from halo_contracts.halo.pacing import request_listener, wait_listener

log = logging.getLogger("halo_contracts.progress")

Send = Callable[[float, float | None, str | None], Awaitable[None]]


class CallProgress:
    """One request's progress channel (see the module docstring)."""

    def __init__(self, send: Send, *, clock: Callable[[], float] = time.monotonic, quiet: float = 1.0) -> None:
        self._send = send
        self._clock = clock
        self.quiet = quiet  # seconds without a notification before an answered request is reported
        self._last_at = clock()  # when the last notification was sent (or the call began)
        self.last: float | None = None
        self.total: float | None = None
        self.own = False  # the tool reported progress itself: it owns the scale
        self.offset = 0.0  # added to the tool's values: the requests reported before it took over
        self.requests = 0  # Halo requests answered during the call
        self.sent = 0  # notifications sent

    def _between(self) -> float | None:
        """A value above the last one and below the next whole step (and the total); None
        when there is no room left (the last report was the total)."""
        if self.last is None:
            return 0.0
        ceiling = math.floor(self.last) + 1.0
        if self.total is not None:
            ceiling = min(ceiling, self.total)
        value = self.last + (ceiling - self.last) / 2
        return value if value > self.last else None

    def claim(self, first: float | None = None) -> None:
        """The tool reports its own progress from now on (answered requests stay unreported).

        Its values are counted on from what was already sent, unless its ``first`` value is
        above that anyway."""
        if not self.own:
            self.own = True
            behind = self.last is not None and (first is None or first <= self.last)
            self.offset = math.floor(self.last) + 1.0 if behind and self.last is not None else 0.0

    async def report(self, value: float, total: float | None = None, message: str | None = None) -> None:
        """Send ``value`` (of ``total``); a value not above the last one is moved just above it.

        The tool's first report takes over the scale: when requests were reported before it,
        the tool's values (and total) are counted on from there, so they still grow."""
        self.claim(float(value))
        if total is not None:
            self.total = float(total) + self.offset
        await self._emit_above(float(value) + self.offset, message)

    async def request_answered(self) -> None:
        """A Halo request of this call was answered: reported while the tool reports nothing
        itself and nothing was sent for ``quiet`` seconds."""
        self.requests += 1
        if not self.own and self._clock() - self._last_at >= self.quiet:
            plural = "" if self.requests == 1 else "s"
            await self._emit_above(float(self.requests), f"{self.requests} Halo request{plural} answered")

    async def announce_wait(self, seconds: float, message: str) -> None:
        """Announce a wait between two reports (the value moves a little, the step does not)."""
        value = self._between()
        if value is not None:
            await self._emit(value, message)

    async def _emit_above(self, value: float, message: str | None) -> None:
        if self.last is not None and value <= self.last:
            moved = self._between()
            if moved is None:
                log.debug("progress report dropped: %s is not above %s", value, self.last)
                return
            value = moved
        await self._emit(value, message)

    async def _emit(self, value: float, message: str | None) -> None:
        self.last = value
        self.sent += 1
        self._last_at = self._clock()
        try:
            await self._send(value, self.total, message)
        except Exception:  # a progress consumer must never break a call
            log.warning("progress notification failed", exc_info=True)


_channels: weakref.WeakKeyDictionary[Any, CallProgress] = weakref.WeakKeyDictionary()


def channel_for(session: Any) -> CallProgress:
    """The channel of one request (the SDK gives each request its own session object)."""
    channel = _channels.get(session)
    if channel is None:
        channel = _channels[session] = CallProgress(session.report_progress)
    return channel


def progress_of(ctx: Any) -> CallProgress:
    """The progress channel of the running tool call (``ctx`` is the tool's ``Context``)."""
    return channel_for(ctx.request_context.session)


async def progress_middleware(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Point Halo's wait and request listeners at the ``tools/call``'s progress channel."""
    if getattr(ctx, "method", None) != "tools/call":
        return await call_next(ctx)
    channel = channel_for(ctx.session)
    wait_token = wait_listener.set(channel.announce_wait)
    request_token = request_listener.set(channel.request_answered)
    try:
        return await call_next(ctx)
    finally:
        request_listener.reset(request_token)
        wait_listener.reset(wait_token)
