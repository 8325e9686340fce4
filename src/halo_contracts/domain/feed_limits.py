"""Size limits of a distributor feed, checked before it is parsed.

A feed beyond the limits is refused with one problem naming the limit and the setting that
raises it, so one oversized paste can neither hold the server's memory nor its CPU.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

from halo_contracts.domain.licence_sync import FeedError, FeedProblem

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class FeedLimits:
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES


def _too_big(problem: str, fix: str) -> FeedError:
    return FeedError([FeedProblem(line=None, field=None, problem=problem, fix=fix)])


def csv_rows(text: str) -> int:
    """Data rows of CSV text: non-blank physical lines after the first (the header)."""
    return max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)


def check_csv(text: str, limits: FeedLimits) -> None:
    """Raise :class:`FeedError` when CSV text is over the byte or row limit."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise _too_big(f"the CSV text is {size:,} bytes, over the limit of {limits.max_bytes:,}",
                       "split the export (e.g. by customer) and plan each part, or raise HALO_FEED_MAX_BYTES")
    rows = csv_rows(text)
    if rows > limits.max_rows:
        raise _too_big(f"the CSV text has {rows:,} rows, over the limit of {limits.max_rows:,}",
                       "split the export (e.g. by customer) and plan each part, or raise HALO_FEED_MAX_ROWS")


def check_rows(rows: Sized, limits: FeedLimits) -> None:
    """Raise :class:`FeedError` when a list of row objects is over the row limit."""
    if len(rows) > limits.max_rows:
        raise _too_big(f"the list has {len(rows):,} rows, over the limit of {limits.max_rows:,}",
                       "split the feed (e.g. by customer) and plan each part, or raise HALO_FEED_MAX_ROWS")
