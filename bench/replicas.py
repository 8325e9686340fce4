"""Replicas sharing one PostgreSQL journal and one Halo budget (issue 18).

Three server processes (streamable HTTP, one ``HALO_JOURNAL_URL``) and one sandbox on a
loopback port that enforces ``--limit`` requests per rolling ``--window`` seconds (Halo's
300 per 300 s, compressed in time). A renewal plan (``--renewals`` contracts) and a licence
sync (``--licences`` feed lines) are previewed on one replica each and applied at the same
time by the two others. Reported from the sandbox's own log and the fault-run checks:
duplicates / missing objects (problems), 429 answers, the busiest rolling window, requests.

    url=$(bash .ci/postgres start /tmp/halo-pg)
    HALO_TEST_POSTGRES_URL=$url python bench/replicas.py [--renewals 100 --licences 300 --window 20]
    bash .ci/postgres stop /tmp/halo-pg
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import replicas
from support.pg import Schema


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--renewals", type=int, default=100)
    p.add_argument("--licences", type=int, default=300)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--contracts", type=int, default=400)
    p.add_argument("--clients", type=int, default=60)
    p.add_argument("--pg-url", default=os.environ.get("HALO_TEST_POSTGRES_URL"))
    args = p.parse_args()
    if not args.pg_url:
        p.error("needs a PostgreSQL server: --pg-url or HALO_TEST_POSTGRES_URL (bash .ci/postgres start DIR)")
    schema = Schema(args.pg_url)
    try:
        with tempfile.TemporaryDirectory(prefix="halo-replicas-") as tmp:
            report = replicas.run(Path(tmp), schema.url, renewals=args.renewals, licence_lines=args.licences,
                                  replicas_n=args.replicas, limit=args.limit, window=args.window,
                                  contracts=args.contracts, clients=args.clients, timeout=1800)
    finally:
        schema.drop()
    out = asdict(report)
    out["requests_per_window_budget"] = f"{report.max_in_window}/{report.limit}"
    print(json.dumps(out, indent=2))
    ok = not report.problems and not report.errors and report.rate_limited == 0 \
        and report.max_in_window <= report.limit
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
