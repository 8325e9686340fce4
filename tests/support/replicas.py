"""Replicas: several server processes sharing one PostgreSQL journal and one Halo budget.

``run(...)`` starts a sandbox on a loopback port (rate limit enforced in a compressed window),
N server processes over streamable HTTP (``python -m halo_contracts --transport http``) on one
``HALO_JOURNAL_URL``, previews a renewal plan and a licence-sync plan, each on one replica,
and applies both at the same time from the OTHER replicas (two appliers per plan, so the
claims are exercised too). It returns what the checks need: the fault-run verification
(duplicates, missing objects, journal == Halo), the 429 count and the most requests the
sandbox saw in any rolling window. Used by tests/plans/test_replicas.py and bench/replicas.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2

from support.faultrun import _snapshot, licence_feed, renewable_ids, verify

SRC = Path(__file__).resolve().parents[2] / "src"
TOKEN = "replica-test-token"


@dataclass
class Report:
    replicas: int
    renewals: int
    licence_lines: int
    limit: int
    window: float
    steps: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    rate_limited: int = 0  # 429 answers the sandbox gave
    max_in_window: int = 0  # most requests the sandbox received in any rolling window
    apply_seconds: float = 0.0
    total_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # apply_plan errors other than "busy"
    busy_answers: int = 0  # apply_plan calls told "another process is applying it"
    appliers: dict[str, list[int]] = field(default_factory=dict)  # plan -> replicas that sent steps
    previewed_on: dict[str, int] = field(default_factory=dict)


def max_in_window(times: list[float], window: float) -> int:
    """Most entries in any half-open rolling window of ``window`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode} before serving")
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"replica at {url} did not answer /health in {timeout:g} s")


@contextlib.contextmanager
def replicas(n: int, *, base: str, journal_url: str, rate: str, logs: Path):
    """N server processes on loopback ports; yields their MCP URLs."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HALO_BASE_URL": base, "HALO_CLIENT_ID": "sandbox-client", "HALO_CLIENT_SECRET": "sandbox-secret",
           "HALO_JOURNAL_URL": journal_url, "HALO_RATE_LIMIT": rate, "HALO_MCP_TOKENS": TOKEN,
           "HALO_DATA_DIR": str(logs / "data"), "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []
    files = []
    urls = []
    try:
        for i in range(n):
            port = _free_port()
            out = open(logs / f"replica{i}.log", "wb")  # noqa: SIM115  (closed below)
            files.append(out)
            procs.append(subprocess.Popen([sys.executable, "-m", "halo_contracts", "--transport", "http",
                                           "--port", str(port)], env=env, stdout=out, stderr=out))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_healthy(url, proc)
        yield [f"{u}/mcp" for u in urls]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        for f in files:
            f.close()


@contextlib.asynccontextmanager
async def _client(url: str):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as hc,
                Client(streamable_http_client(url, http_client=hc)) as client):
        yield client


async def _preview(url: str, tool: str, args: dict[str, Any]) -> tuple[str, list[dict]]:
    async with _client(url) as c:
        r = await c.call_tool(tool, args)
        assert not r.is_error, r.content[0].text
        plan_id = r.structured_content["plan_id"]
        # every step with its Halo request: get_plan pages them, requests only with detail="full"
        steps: list[dict] = []
        args = {"plan_id": plan_id, "detail": "full"}
        while True:
            view = await c.call_tool("get_plan", args)
            assert not view.is_error, view.content[0].text
            steps += view.structured_content["steps"]
            if not view.structured_content.get("next_cursor"):
                return plan_id, steps
            args = {**args, "cursor": view.structured_content["next_cursor"]}


async def _apply_until_done(url: str, plan_id: str, who: int, report: Report, deadline: float) -> None:
    """apply_plan on one replica until the plan reports applied (busy: another replica has it)."""
    async with _client(url) as c:
        while time.monotonic() < deadline:
            r = await c.call_tool("apply_plan", {"plan_id": plan_id})
            sc = r.structured_content or {}
            if not r.is_error and sc.get("sent"):
                report.appliers.setdefault(plan_id, []).append(who)
            if not r.is_error and sc.get("status") == "applied":
                return
            if r.is_error and "another server process" in r.content[0].text:
                report.busy_answers += 1
            elif r.is_error:
                report.errors.append(f"replica {who}, plan {plan_id}: {r.content[0].text[:300]}")
            await anyio.sleep(0.2)
    report.problems.append(f"plan {plan_id}: not applied by replica {who} before the deadline")


def run(tmp: Path, journal_url: str, *, renewals: int, licence_lines: int, replicas_n: int = 3,
        limit: int = 300, window: float = 30.0, contracts: int = 250, clients: int = 40,
        timeout: float = 900.0) -> Report:
    from halo_contracts.sandbox import SandboxConfig, create_app
    from halo_contracts.sandbox.standalone import serve_in_thread

    report = Report(replicas=replicas_n, renewals=renewals, licence_lines=licence_lines, limit=limit,
                    window=window)
    app = create_app(SandboxConfig(seed=7, strict=True, contracts=contracts, clients=clients,
                                   rate_limit=limit, rate_window=window))
    state = app.state.sandbox
    fake = SimpleNamespace(state=state, journal_path=journal_url)
    logs = tmp / "replica-logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with serve_in_thread(app) as base, replicas(replicas_n, base=base, journal_url=journal_url,
                                                rate=f"{limit}/{window:g}", logs=logs) as urls:
        initial = _snapshot(fake)
        feed, mappings = licence_feed(fake, licence_lines)
        spec: dict[str, Any] = {"renewal_ids": renewable_ids(fake, renewals), "feed": feed, "mappings": mappings}

        async def go() -> tuple[dict[str, Any], dict[str, list[dict]]]:
            plans: dict[str, Any] = {}
            previews: dict[str, list[dict]] = {}
            jobs = {"renewal": (0, "generate_renewals", {"contract_ids": spec["renewal_ids"], "dry_run": True,
                                                         "uplift_percent": 3, "expire_old": "now"}),
                    "licence": (1 % replicas_n, "plan_license_sync", {"source": feed, "mappings": mappings,
                                                                      "distributor": "Pax8"})}
            for key, (who, tool, args) in jobs.items():
                plans[key], previews[key] = await _preview(urls[who], tool, args)
                report.previewed_on[plans[key]] = who
            start = time.monotonic()
            deadline = start + timeout
            async with anyio.create_task_group() as tg:
                for key, (who, _tool, _args) in jobs.items():
                    for other in range(replicas_n):
                        if other != who:  # every replica but the previewer applies it
                            tg.start_soon(_apply_until_done, urls[other], plans[key], other, report, deadline)
            report.apply_seconds = time.monotonic() - start
            return plans, previews

        plans, previews = anyio.run(go)
        plans.update(spec)
        report.problems += verify(fake, plans, previews, initial, journal_url)
        entries = state.log.entries()
    report.total_seconds = time.monotonic() - began
    report.steps = {k: len(v) for k, v in previews.items()}
    report.requests = len(entries)
    report.rate_limited = sum(1 for e in entries if e.status == 429)
    report.max_in_window = max_in_window([e.at for e in entries], window)
    for plan_id, who in report.previewed_on.items():
        if who in report.appliers.get(plan_id, []):
            report.problems.append(f"plan {plan_id} was applied on the replica that previewed it")
    return report
