"""Halo requests of ``verify``, ``verify --write`` and ``verify --cleanup`` on the sandbox.

Counts what the sandbox received (its own request log: reads, writes, token requests) for:
reading only; reading and writing (default answers, and a tenant whose line posts replace and
whose 200 writes answer nothing); and a write run cut off after 8 writes followed by
``verify --cleanup``. Usage:

    python bench/verify_requests.py            # the demo book (8 clients, 120 contracts)
    python bench/verify_requests.py 1000       # a book of 1,000 contracts
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx2

from halo_contracts.config import load_settings
from halo_contracts.sandbox import Quirks, SandboxConfig, create_app, transport
from halo_contracts.verify_cmd import Options, run_verify

TABLES = ("contracts", "rinvoices", "rlines", "licences")


class Cut(httpx2.AsyncBaseTransport):
    """The network lost for good after ``after`` writes (the last answer lost too)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, after: int) -> None:
        self.inner, self.after, self.writes = inner, after, 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.writes >= self.after:
            raise httpx2.ReadError("network lost", request=request)
        response = await self.inner.handle_async_request(request)
        if request.method != "GET" and request.url.path.startswith("/api/"):
            self.writes += 1
            if self.writes >= self.after:
                raise httpx2.ReadError("network lost", request=request)
        return response


def counts(sb, since: int) -> Counter:
    out: Counter = Counter()
    for e in sb.log.entries()[since:]:
        out["token" if e.path.startswith("/auth") else "reads" if e.method == "GET" else "writes"] += 1
    return out


def run(app, tmp: Path, net=None, **options) -> tuple[int, float]:
    sb = app.state.sandbox
    settings = load_settings(base_url="http://sandbox", client_id=sb.config.client_id,
                             client_secret=sb.config.client_secret, rate_limit="100000/1", allow_insecure_http=True)
    opts = Options(journal_path=tmp / "journal.sqlite3", yes=True, **options)
    started = time.perf_counter()
    from halo_contracts.halo.pacing import Backoff

    opts.client_options = {"backoff": Backoff(rate_base=0.001, rate_cap=0.002, read_retries=1, retry_base=0.001,
                                              retry_cap=0.002)}
    code = run_verify(settings=settings, transport=net or transport(app), out=io.StringIO(), err=io.StringIO(),
                      options=opts)
    return code, time.perf_counter() - started


def main(contracts: int | None) -> None:
    size = {"contracts": contracts} if contracts else {}
    print("| run | exit | reads | writes | token | seconds | book as before |\n|---|---:|---:|---:|---:|---:|---|")
    cases = [
        ("verify (reading)", Quirks(), {}, None),
        ("verify --write", Quirks(), {"write": True}, None),
        ("verify --write, lines replace, empty answers", Quirks(lines_post="replace", write_answers="empty"),
         {"write": True}, None),
        ("verify --write cut after 8 writes", Quirks(), {"write": True}, 8),
    ]
    for label, quirks, options, cut in cases:
        app = create_app(SandboxConfig(quirks=quirks, **size))
        sb = app.state.sandbox
        before = {t: sb.store.where(t) for t in TABLES}
        if options.get("write"):
            options = {**options, "client_id": sb.book.client_ids[0]}
        with tempfile.TemporaryDirectory() as tmp:
            code, seconds = run(app, Path(tmp), Cut(transport(app), cut) if cut else None, **options)
            c = counts(sb, 0)
            same = {t: sb.store.where(t) for t in TABLES} == before
            print(f"| {label} | {code} | {c['reads']} | {c['writes']} | {c['token']} | {seconds:.2f} | "
                  f"{'yes' if same else 'no'} |")
            if cut:
                mark = len(sb.log.entries())
                code, seconds = run(app, Path(tmp), cleanup=True)
                c = counts(sb, mark)
                same = {t: sb.store.where(t) for t in TABLES} == before
                print(f"| then verify --cleanup | {code} | {c['reads']} | {c['writes']} | {c['token']} | "
                      f"{seconds:.2f} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
