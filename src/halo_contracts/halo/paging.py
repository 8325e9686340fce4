"""Reading Halo lists page by page, defensively.

Halo pages with ``pageinate=true&page_size=N&page_no=K`` (1-based) and reports the total as
``record_count`` in a wrapper object (``{"record_count": 250, "contracts": [...]}``). We stop
when ``record_count`` rows are in, on a short page, or on an empty page.

A list is only returned when it is provably complete. The FIRST page's ``record_count`` is
the number of rows the read must end with (rows counted once per id). The list can move
under a paged read: a row deleted from page 1 after page 1 was read pulls the first row of
page 2 onto page 1, where it is never read, and every later page then carries the smaller
count. So when a later page reports a different ``record_count``, or the read ends with
another number of distinct rows than the first page announced, the list is read once more
from page 1; if that second read disagrees too, :class:`HaloIncompleteRead` is raised
instead of returning a partial list. A list that did not move costs no extra request.

Some endpoints ignore the paging parameters (docs/halo-api.md §8.2): they answer every
page with the same rows, or with more rows than asked for. Those are caught instead of
looping forever:

* a page whose ids repeat the previous page's ids -> :class:`HaloIncompleteRead`
  (unless every row announced by ``record_count`` is already in);
* a page with more rows than ``page_size`` -> accepted only when it is the first page and
  holds every row ``record_count`` announces, otherwise :class:`HaloIncompleteRead`;
* more than ``max_pages`` pages in one read -> :class:`HaloIncompleteRead`;
* a short FIRST page while ``record_count`` announces more: the server caps pages below the
  size asked for, so paging continues with the size it actually uses.

Progress (``on_page(done, total)``): ``done`` counts the pages read and only grows, also
across a second read; ``total`` is the pages expected so far (it grows when the list is
read again).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from halo_contracts.halo.errors import HaloIncompleteRead

logger = logging.getLogger("halo_contracts.halo")

__all__ = ["DEFAULT_MAX_PAGES", "PAGE_SIZE", "extract_rows", "read_all_pages", "record_count"]

PAGE_SIZE = 100  # Halo caps pages at 100
DEFAULT_MAX_PAGES = 500  # 50,000 rows: far beyond any contract book; a runaway guard

FetchPage = Callable[[int, int], Awaitable[Any]]
PageCallback = Callable[[int, int | None], Any]


def extract_rows(body: Any, key: str | None) -> list[dict[str, Any]]:
    """The rows of a list answer: a bare array, ``body[key]``, or the wrapper's only array."""
    if body is None:
        return []
    if isinstance(body, list):
        return [r for r in body if isinstance(r, Mapping)]
    if isinstance(body, Mapping):
        if key is not None:
            for k, v in body.items():
                if k.lower() == key.lower() and isinstance(v, list):
                    return [r for r in v if isinstance(r, Mapping)]
        arrays = [v for k, v in body.items() if isinstance(v, list) and not k.lower().startswith("columns")
                  and all(isinstance(r, Mapping) for r in v)]
        if len(arrays) == 1:
            return list(arrays[0])
        if "id" in body:  # a single object where a list was expected
            return [dict(body)]
    return []


def record_count(body: Any) -> int | None:
    if isinstance(body, Mapping):
        value = body.get("record_count")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _ids(rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    return tuple(r.get("id") for r in rows)


async def read_all_pages(fetch_page: FetchPage, *, key: str | None, operation: str,
                         page_size: int = PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES,
                         on_page: PageCallback | None = None) -> list[dict[str, Any]]:
    """Every row of a paged list. ``fetch_page(page_no, page_size)`` returns the parsed body.

    Raises :class:`HaloIncompleteRead` rather than return a list it cannot prove complete."""
    progress = _Progress(on_page)
    rows, moved = await _read_once(fetch_page, key=key, operation=operation, page_size=page_size,
                                   max_pages=max_pages, progress=progress)
    if moved is None:
        return rows
    logger.warning("%s: %s; reading the list again from page 1", operation, moved)
    rows, moved_again = await _read_once(fetch_page, key=key, operation=operation, page_size=page_size,
                                         max_pages=max_pages, progress=progress)
    if moved_again is None:
        return rows
    raise HaloIncompleteRead(
        f"the list changed while it was read ({moved}; read again from page 1: {moved_again}); "
        "nothing was decided from a partial list — retry", operation=operation)


@dataclass
class _Progress:
    """``on_page`` with a page counter that keeps growing across a second read."""

    on_page: PageCallback | None
    done: int = 0  # pages reported so far, over every read
    base: int = 0  # pages reported before the current read began

    def restart(self) -> None:
        self.base = self.done

    async def page(self, page_no: int, pages: int | None) -> None:
        self.done = self.base + page_no
        if self.on_page is None:
            return
        result = self.on_page(self.done, self.base + pages if pages is not None else None)
        if inspect.isawaitable(result):
            await result


def _paging_ignored(page: list[dict[str, Any]], ids: tuple[Any, ...], previous: tuple[Any, ...] | None, *,
                    rows: int, expected: int | None, page_no: int, page_size: int, operation: str) -> str | None:
    """Signs that the endpoint ignores paging: ``"done"`` when a repeated page closes a list
    already complete, ``"whole"`` when the first page held the whole list; raises when paging
    is ignored and the list is not proven complete; None when the page looks paged."""
    if page and previous is not None and ids == previous and any(i is not None for i in ids):
        if expected is not None and rows >= expected:
            return "done"
        raise HaloIncompleteRead(
            f"page {page_no} repeated page {page_no - 1} (the endpoint ignores paging); "
            f"read {rows} of {expected if expected is not None else 'an unknown number of'} rows",
            operation=operation)
    if len(page) > page_size:
        if expected is not None and len(page) >= expected and not rows:
            return "whole"
        raise HaloIncompleteRead(
            f"page {page_no} held {len(page)} rows for a page size of {page_size} "
            "(the endpoint ignores paging) and the row count does not prove the list complete",
            operation=operation)
    return None


async def _read_once(fetch_page: FetchPage, *, key: str | None, operation: str, page_size: int,
                     max_pages: int, progress: _Progress) -> tuple[list[dict[str, Any]], str | None]:
    """One read from page 1: ``(rows, None)`` when it agrees with the first page's
    ``record_count`` (or there is none), ``(rows, why)`` when the list moved under it."""
    progress.restart()
    rows: list[dict[str, Any]] = []
    seen: set[Any] = set()
    previous: tuple[Any, ...] | None = None
    expected: int | None = None  # the first page's record_count: the rows this read must end with
    page_no = 0
    while True:
        page_no += 1
        if page_no > max_pages:
            raise HaloIncompleteRead(
                f"stopped after {max_pages} pages ({len(rows)} rows) without reaching the end of the list; "
                "the endpoint may be ignoring paging", operation=operation)
        body = await fetch_page(page_no, page_size)
        page = extract_rows(body, key)
        count = record_count(body)
        if expected is None:
            expected = count  # the first page's; a later page's only when the first had none
        elif count is not None and count != expected:
            return rows, (f"Halo's row count went from {expected} on page 1 to {count} on page {page_no}")
        total_pages = math.ceil(expected / page_size) if expected is not None else None

        ids = _ids(page)
        verdict = _paging_ignored(page, ids, previous, rows=len(rows), expected=expected, page_no=page_no,
                                  page_size=page_size, operation=operation)
        if verdict == "done":
            break
        if verdict == "whole":
            await progress.page(page_no, page_no)
            return list(page), None
        previous = ids
        for row in page:
            rid = row.get("id")
            if rid is not None:
                if rid in seen:
                    continue  # the list shifted between pages; the count check below decides
                seen.add(rid)
            rows.append(row)
        if expected is not None and len(rows) >= expected:
            await progress.page(page_no, total_pages)
            break
        if page and len(page) < page_size and page_no == 1 and expected is not None:
            # The server caps pages below what we asked for (it answered a short first page
            # while record_count says there is more): continue with its page size.
            logger.info("%s: Halo answered %d rows for a page size of %d (record_count %d); paging by %d",
                        operation, len(page), page_size, expected, len(page))
            page_size = len(page)
            await progress.page(page_no, math.ceil(expected / page_size))
            continue
        await progress.page(page_no, total_pages)
        if not page or len(page) < page_size:
            break
    if expected is not None and len(rows) != expected:
        return rows, f"{len(rows)} distinct rows were read but page 1 announced {expected}"
    return rows, None
