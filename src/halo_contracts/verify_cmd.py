"""``halopsa-contracts-mcp verify``: let a tenant settle what no public Halo document does.

Reading only (the default and, for now, the only mode): see ``halo_contracts.halo.verify``.
Prints a readable summary to stdout; ``--report FILE`` also writes the JSON report, whose
``quirks`` object ``halopsa-contracts-mcp sandbox --quirks FILE`` plays back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2

from halo_contracts.config import ConfigError, Settings, load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.verify import Report, run_reading


async def _verify(settings: Settings, transport: httpx2.AsyncBaseTransport | None) -> tuple[Report, int]:
    async with HaloClient(settings, transport=transport) as halo:
        await halo.authenticate()
        report = await run_reading(halo)
        return report, halo.stats.requests


def run_verify(*, sandbox: bool = False, report_path: str | None = None, settings: Settings | None = None,
               transport: httpx2.AsyncBaseTransport | None = None, out: TextIO | None = None,
               sandbox_config: dict[str, Any] | None = None) -> int:
    out = out or sys.stdout
    try:
        if settings is None:
            if sandbox:
                from halo_contracts.cli import sandbox_settings, sandbox_transport

                settings = sandbox_settings()
                _app, transport = sandbox_transport(**(sandbox_config or {}))
            else:
                settings = load_settings()
                settings.require_credentials()
    except ConfigError as exc:
        print(f"halopsa-contracts-mcp verify: {exc}", file=sys.stderr)
        return 2
    try:
        report, requests = anyio.run(_verify, settings, transport)
    except HaloError as exc:
        print(f"halopsa-contracts-mcp verify: {exc}", file=sys.stderr)
        return 1
    print(f"verify (reading only, {requests} requests){' against the sandbox' if sandbox else ''}", file=out)
    print(report.summary(), file=out)
    if report_path:
        Path(report_path).write_text(json.dumps({"mode": "read", "requests": requests, **report.to_json()},
                                                indent=2) + "\n", encoding="utf-8")
        print(f"report written to {report_path}", file=out)
    return 0
