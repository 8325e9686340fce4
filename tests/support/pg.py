"""A PostgreSQL database for tests: ``HALO_TEST_POSTGRES_URL`` names a server (``.ci/postgres
start`` makes one); each test gets its own schema in it, dropped afterwards.

Without the variable the PostgreSQL tests skip, except under CI (``CI=true``), where a missing
database is a failure: CI must not skip them silently.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

ENV = "HALO_TEST_POSTGRES_URL"


def server_url() -> str:
    """The test server's URL, or skip (fail under CI) when none is configured."""
    url = os.environ.get(ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{ENV} is not set under CI: .ci/run starts PostgreSQL and exports it", pytrace=False)
    pytest.skip(f"PostgreSQL tests need {ENV} (start one with: .ci/postgres start /tmp/halo-pg)")


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq ``options=-csearch_path=...``)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


class Schema:
    """A fresh schema in the test server; ``url`` points sessions at it."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.base = base
        self.name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        self.url = with_schema(base, self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
