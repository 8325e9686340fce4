"""SIGKILL mid-apply: a new process applying the same plan finishes it with zero duplicates.

The sandbox runs on a real loopback port (uvicorn in a thread of this test process, so its
store can be inspected directly). The plans are previewed by a server in this process; every
server that applies is a separate process (``support/killdriver.py``) on the same file journal.
Process A applies the renewal plan then the licence plan and is killed with SIGKILL once a share
of the renewal writes reached the sandbox; process B applies the same plans, finishes the
renewals and is killed mid-licences; process C applies them again to the end (the renewal plan
then sends nothing: it is already applied). The result is checked like the fault runs
(``support.faultrun``): exactly the previewed objects, no duplicates, nothing missing, and a
journal that matches Halo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from support.faultrun import DISTRIBUTOR, _snapshot, licence_feed, read_journal, renewable_ids, verify

DRIVER = Path(__file__).parents[1] / "support" / "killdriver.py"


class _WriteCounter:
    """Writes to /api the sandbox received since ``mark``. Scans only the new log entries: the
    poll runs in the sandbox's own process and must not starve its server thread."""

    def __init__(self, state, mark: int) -> None:
        self.state, self.seen, self.count = state, mark, 0

    def __call__(self) -> int:
        log = self.state.log
        n = len(log)
        if n > self.seen:
            with log._lock:
                new = log._entries[self.seen:n]
            self.count += sum(1 for e in new if e.method.upper() in ("POST", "DELETE")
                              and e.path.lower().startswith("/api"))
            self.seen = n
        return self.count


def _driver(base: str, journal: Path, *args: str) -> list[str]:
    return [sys.executable, str(DRIVER), "--base-url", base, "--journal", str(journal), *args]


def _plan_in_process(base: str, journal: Path, spec: dict) -> tuple[dict, dict]:
    """Preview both plans with a server in this process (same journal file the children use)."""
    import anyio
    from mcp import Client

    from halo_contracts.config import load_settings
    from halo_contracts.server import build_server

    settings = load_settings(base_url=base, client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="100000/1")

    async def go() -> tuple[dict, dict]:
        plans: dict = {}
        previews: dict = {}
        async with Client(build_server(settings, journal_path=journal)) as c:
            for key, tool, args in (
                ("renewal", "generate_renewals", {"contract_ids": spec["renewal_ids"], "dry_run": True,
                                                  "uplift_percent": 3, "expire_old": "now"}),
                ("licence", "plan_license_sync", {"source": spec["feed"], "mappings": spec["mappings"],
                                                  "distributor": DISTRIBUTOR})):
                r = await c.call_tool(tool, args)
                assert not r.is_error, r.content[0].text
                plans[key] = r.structured_content["plan_id"]
                view = await c.read_resource(f"halopsa://plans/{plans[key]}")
                previews[key] = json.loads(view.contents[0].text)["steps"]
        return plans, previews

    return anyio.run(go)


def _plan_status(journal: Path, plan_id: str) -> str | None:
    import sqlite3

    con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
    try:
        row = con.execute("select status from plans where id=?", (plan_id,)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def _kill_when(proc: subprocess.Popen, ready, deadline_s: float = 900) -> None:
    deadline = time.monotonic() + deadline_s
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _kill_run(tmp_path: Path, *, n: int, m: int, contracts: int, clients: int, kill_at: float) -> dict:
    """Process A applies renewals then licences and is killed mid-renewals; process B resumes,
    finishes the renewals, starts the licences and is killed mid-licences; process C finishes."""
    from halo_contracts.sandbox import SandboxConfig, create_app
    from halo_contracts.sandbox.standalone import serve_in_thread

    app = create_app(SandboxConfig(seed=7, strict=True, contracts=contracts, clients=clients,
                                   rate_limit=100_000, rate_window=1.0))
    state = app.state.sandbox
    journal = tmp_path / "journal.sqlite3"
    fake = SimpleNamespace(state=state, journal_path=journal)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    info: dict = {"kills": {}}
    with serve_in_thread(app) as base:
        initial = _snapshot(fake)
        feed, mappings = licence_feed(fake, m)
        spec = {"renewal_ids": renewable_ids(fake, n), "feed": feed, "mappings": mappings}
        plans, previews = _plan_in_process(base, journal, spec)
        plans.update(spec)
        state.faults.latency = (0.004, 0.012)  # slow each request a little so the kills land mid-plan
        both = ["--plan-id", plans["renewal"], "--plan-id", plans["licence"]]
        # output goes to files: a pipe nobody reads fills up (the server logs every request) and
        # blocks the child
        logs = tmp_path / "logs"
        logs.mkdir()

        opened: list = []

        def out(name: str):
            f = open(logs / name, "wb")  # noqa: SIM115  (closed at the end of the run)
            opened.append(f)
            return f

        def popen(name: str) -> dict:
            return {"env": env, "stdout": out(f"{name}.out"), "stderr": out(f"{name}.err")}

        def record(key: str, proc: subprocess.Popen, counter: _WriteCounter) -> None:
            rows = read_journal(journal, plans[key])
            info["kills"][key] = {"returncode": proc.returncode, "steps": len(previews[key]),
                                  "writes_before_kill": counter(),
                                  "journal_at_kill": {s: sum(1 for r in rows if r["status"] == s)
                                                      for s in sorted({r["status"] for r in rows})}}

        renewal_writes = _WriteCounter(state, len(state.log))
        a = subprocess.Popen(_driver(base, journal, "apply", *both), **popen("a"))
        _kill_when(a, lambda: renewal_writes() >= max(1, int(len(previews["renewal"]) * kill_at)))
        record("renewal", a, renewal_writes)

        b = subprocess.Popen(_driver(base, journal, "apply", *both), **popen("b"))
        licence_writes: list[_WriteCounter] = []

        def licences_half_done() -> bool:
            if not licence_writes:
                if _plan_status(journal, plans["renewal"]) != "applied":
                    return False
                licence_writes.append(_WriteCounter(state, len(state.log)))
            return licence_writes[0]() >= max(1, int(len(previews["licence"]) * kill_at))

        _kill_when(b, licences_half_done)
        record("licence", b, licence_writes[0] if licence_writes else _WriteCounter(state, len(state.log)))

        c = subprocess.run(_driver(base, journal, "apply", *both), env=env, stdout=subprocess.PIPE,
                           stderr=out("c.err"), text=True, timeout=900)
        for f in opened:
            f.close()
        assert c.returncode == 0, f"process C failed: {c.stdout[-2000:]} {(logs / 'c.err').read_text()[-2000:]}"
        info["resume"] = [json.loads(x) for x in c.stdout.splitlines() if x.startswith("{")]
        state.faults.latency = (0.0, 0.0)
        info["problems"] = verify(fake, plans, previews, initial, journal)
    print(json.dumps({k: v for k, v in info.items() if k != "problems"}, indent=1)[:4000])
    return info


def _check(info: dict) -> None:
    for key, k in info["kills"].items():
        assert k["returncode"] == -signal.SIGKILL, f"{key}: the apply process was not killed ({k})"
        assert 0 < k["writes_before_kill"] < k["steps"], f"{key}: the kill did not land mid-apply ({k})"
    assert not info["problems"], "\n".join(info["problems"])


def test_sigkill_mid_apply_ci(tmp_path):
    _check(_kill_run(tmp_path, n=10, m=30, contracts=120, clients=25, kill_at=0.4))


@pytest.mark.slow
def test_sigkill_mid_apply_slow(tmp_path):
    _check(_kill_run(tmp_path, n=200, m=500, contracts=600, clients=60, kill_at=0.5))
