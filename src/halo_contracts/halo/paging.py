"""Reading Halo lists page by page, defensively.

Halo pages with ``pageinate=true&page_size=N&page_no=K`` (1-based) and reports the total as
``record_count`` in a wrapper object (``{"record_count": 250, "contracts": [...]}``). We stop
when ``record_count`` rows are in, on a short page, or on an empty page. Some endpoints
ignore the paging parameters (docs/halo-api.md §8.2): they answer every page with the same
rows, or with more rows than asked for. Those are caught instead of looping forever:

* a page whose ids repeat the previous page's ids -> :class:`HaloIncompleteRead`
  (unless every row announced by ``record_count`` is already in);
* a page with more rows than ``page_size`` -> accepted only when it holds every row
  ``record_count`` announces, otherwise :class:`HaloIncompleteRead`;
* more than ``max_pages`` pages -> :class:`HaloIncompleteRead`;
* a short FIRST page while ``record_count`` announces more: the server caps pages below the
  size asked for, so paging continues with the size it actually uses.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from halo_contracts.halo.errors import HaloIncompleteRead

logger = logging.getLogger("halo_contracts.halo")

__all__ = ["DEFAULT_MAX_PAGES", "PAGE_SIZE", "extract_rows", "read_all_pages", "record_count"]

PAGE_SIZE = 100  # Halo caps pages at 100
DEFAULT_MAX_PAGES = 500  # 50,000 rows: far beyond any contract book; a runaway guard

FetchPage = Callable[[int, int], Awaitable[Any]]


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
                         on_page: Callable[[int, int | None], Any] | None = None) -> list[dict[str, Any]]:
    """Every row of a paged list. ``fetch_page(page_no, page_size)`` returns the parsed body."""
    rows: list[dict[str, Any]] = []
    seen: set[Any] = set()
    previous: tuple[Any, ...] | None = None
    total: int | None = None
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
        if count is not None:
            total = count
        total_pages = math.ceil(total / page_size) if total is not None else None

        ids = _ids(page)
        if page and previous is not None and ids == previous and any(i is not None for i in ids):
            if total is not None and len(rows) >= total:
                break
            raise HaloIncompleteRead(
                f"page {page_no} repeated page {page_no - 1} (the endpoint ignores paging); "
                f"read {len(rows)} of {total if total is not None else 'an unknown number of'} rows",
                operation=operation)
        if len(page) > page_size:
            # Paging ignored: the whole list (or a capped part of it) came in one answer.
            if total is not None and len(page) >= total and not rows:
                rows.extend(page)
                await _notify(on_page, page_no, page_no)
                break
            raise HaloIncompleteRead(
                f"page {page_no} held {len(page)} rows for a page size of {page_size} "
                "(the endpoint ignores paging) and the row count does not prove the list complete",
                operation=operation)
        previous = ids
        for row in page:
            rid = row.get("id")
            if rid is not None:
                if rid in seen:
                    continue  # the list shifted between pages
                seen.add(rid)
            rows.append(row)
        if total is not None and len(rows) >= total:
            await _notify(on_page, page_no, total_pages)
            break
        if page and len(page) < page_size and page_no == 1 and total is not None:
            # The server caps pages below what we asked for (it answered a short first page
            # while record_count says there is more): continue with its page size.
            logger.info("%s: Halo answered %d rows for a page size of %d (record_count %d); paging by %d",
                        operation, len(page), page_size, total, len(page))
            page_size = len(page)
            total_pages = math.ceil(total / page_size)
            await _notify(on_page, page_no, total_pages)
            continue
        await _notify(on_page, page_no, total_pages)
        if not page or len(page) < page_size:
            if total is not None and len(rows) < total:
                logger.warning("%s: the list ended after %d of the %d rows Halo announced (rows removed while "
                               "reading?)", operation, len(rows), total)
            break
    return rows


async def _notify(on_page: Callable[[int, int | None], Any] | None, done: int, total: int | None) -> None:
    if on_page is None:
        return
    result = on_page(done, total)
    if inspect.isawaitable(result):
        await result
