"""``verify --write`` and ``verify --cleanup`` against the sandbox.

The report answers every write question with evidence, the answers follow the sandbox's
switches, and the book is left as it was (contracts, recurring invoices, lines, licences),
also after the network is lost mid-way and ``verify --cleanup`` runs. Without --client-id or
without a yes nothing at all is sent."""

from __future__ import annotations

import io
import json
import sqlite3

import httpx2
import pytest

from halo_contracts.plans.executor import apply_plan
from halo_contracts.plans.journal import open_journal
from halo_contracts.sandbox import Quirks, SandboxConfig, create_app, transport
from halo_contracts.verify_cmd import Options, run_verify
from support.fakehalo import FAST, fake_settings, roomy_budget

TABLES = ("contracts", "rinvoices", "rlines", "licences")
WRITE_QUESTIONS = (
    "Does Halo store each field of a new contract as sent?",
    "Does Halo store a recurring invoice's schedule (period, start, end, next creation) as sent?",
    "Does Halo store each recurring line as sent, on the recurring invoice of its frequency?",
    "Does adding a line to a recurring invoice keep its other lines (added) or drop them (replaced)?",
    "Does excluderenewed=true leave out a contract another contract renews (a link made by verify)?",
    "Can a licence be created, updated and deleted, and is a deleted one gone?",
    "Do the writes documented without a body (lines, licences) answer with the saved record?",
    "Do recurring lines carry a billing period of their own, or bill at their invoice's period?",
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Cut(httpx2.AsyncBaseTransport):
    """The network, lost for good once ``after_writes`` writes went out (the last one's answer
    is lost too); ``refuse`` answers 400 to requests whose method and path start so."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, after_writes: int | None = None,
                 refuse: tuple[str, str] | None = None) -> None:
        self.inner, self.after_writes, self.refuse, self.writes = inner, after_writes, refuse, 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.after_writes is not None and self.writes >= self.after_writes:
            raise httpx2.ReadError("network lost", request=request)
        if self.refuse and request.method == self.refuse[0] and request.url.path.startswith(self.refuse[1]):
            return httpx2.Response(400, json={"[0].id": ["This record is in use and cannot be deleted."]})
        response = await self.inner.handle_async_request(request)
        if request.method != "GET" and request.url.path.startswith("/api/"):
            self.writes += 1
            if self.after_writes is not None and self.writes >= self.after_writes:
                raise httpx2.ReadError("network lost", request=request)
        return response


def _sandbox(quirks: Quirks | None = None):
    app = create_app(SandboxConfig(clients=6, contracts=24, quirks=quirks or Quirks(), strict=True))
    return app, app.state.sandbox


def _book(sb) -> dict[str, list[dict]]:
    return {t: sb.store.where(t) for t in TABLES}


def _verify(tmp_path, app, *, journal: str = "journal.sqlite3", net=None, stdin=None, name: str = "report.json",
            **options) -> tuple[int, dict | None, str, str]:
    sb = app.state.sandbox
    settings = fake_settings(base_url="http://sandbox", client_id=sb.config.client_id,
                             client_secret=sb.config.client_secret)
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / name
    opts = Options(journal_path=tmp_path / journal, client_options={"backoff": FAST, "budget": roomy_budget()},
                   **options)
    code = run_verify(settings=settings, transport=net or transport(app), report_path=str(path), out=out, err=err,
                      options=opts, stdin=stdin if stdin is not None else io.StringIO())
    report = json.loads(path.read_text()) if path.exists() else None
    return code, report, out.getvalue(), err.getvalue()


def _findings(report: dict) -> dict[str, dict]:
    return {f["question"]: f for f in report["findings"]}


def test_verify_write_answers_everything_and_leaves_the_book_as_it_was(tmp_path):
    app, sb = _sandbox()
    client = sb.book.client_ids[0]
    before = _book(sb)
    code, report, text, _err = _verify(tmp_path, app, write=True, client_id=client, yes=True)
    assert code == 0, text
    assert _book(sb) == before  # every record it made is gone; nothing else changed
    found = _findings(report)
    for question in WRITE_QUESTIONS:
        assert found[question]["settled"] and found[question]["evidence"], question
    assert all(f["answer"] and f["evidence"] for f in report["findings"] if f["settled"])
    [cleanup] = [f for q, f in found.items() if q.startswith("Did verify remove everything it made")]
    assert cleanup["answer"] == "yes: nothing it made is left"
    assert sum("deleted" in e for e in cleanup["evidence"]) == 4  # 2 recurring invoices, 2 contracts
    assert found[WRITE_QUESTIONS[2]]["answer"] == "yes: every field sent was stored as sent"
    assert "(period 3," in " ".join(found[WRITE_QUESTIONS[2]]["evidence"])  # the annual line bills annually
    assert "5 of 5 fields as sent" in found[WRITE_QUESTIONS[5]]["evidence"][0]  # the licence, after its update
    assert report["quirks"]["lines_post"] == "add" and report["quirks"]["write_answers"] == "record"
    assert report["quirks"]["excluderenewed"] == "hides_renewed" and report["quirks"]["document"] == "2026"
    assert Quirks.from_report(report) == Quirks()
    assert report["writes"] == sum(1 for e in sb.log.entries() if e.method != "GET" and e.path.startswith("/api"))
    assert report["prefix"].startswith("VERIFY-") and f"reading and writing under {report['prefix']}" in text
    # every write went through the journal, and the run is recorded as cleaned up
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    kinds = [k for (k,) in db.execute("SELECT kind FROM steps JOIN plans ON plans.id = steps.plan_id "
                                      "WHERE plans.tool = 'verify' ORDER BY plans.created_at, idx")]
    assert kinds[:3] == ["create_contract", "create_recurring_invoice", "add_recurring_lines"]
    assert {"delete_licence", "delete_recurring_invoice", "delete_contract"} <= set(kinds)
    code, report, _text, _err = _verify(tmp_path, app, cleanup=True, yes=True, name="again.json")
    assert code == 0 and [f["question"] for f in report["findings"]] == ["Is there a verify run to clean up?"]


def test_verify_write_under_another_tenants_answers(tmp_path):
    other = Quirks(lines_post="replace", write_answers="empty", excluderenewed="ignored", document="2024")
    app, sb = _sandbox(other)
    before = _book(sb)
    code, report, _text, _err = _verify(tmp_path, app, write=True, client_id=sb.book.client_ids[1], yes=True)
    assert code == 0
    assert _book(sb) == before
    found = _findings(report)
    assert found[WRITE_QUESTIONS[3]]["answer"].startswith("replaced")
    assert found[WRITE_QUESTIONS[6]]["answer"].startswith("no: they answer without a body")
    assert found[WRITE_QUESTIONS[4]]["answer"].startswith("no: the filter is ignored")
    assert found[WRITE_QUESTIONS[7]]["answer"].startswith("2 of 2 lines carry billingperiod")
    assert {k: report["quirks"][k] for k in ("lines_post", "write_answers", "excluderenewed", "document")} == {
        "lines_post": "replace", "write_answers": "empty", "excluderenewed": "ignored", "document": "2024"}
    played = Quirks.from_report(report)  # sandbox --quirks REPORT plays this tenant's writes
    assert (played.lines_post, played.write_answers, played.excluderenewed, played.document) == (
        "replace", "empty", "ignored", "2024")


@pytest.mark.parametrize("options, stdin", [
    ({"write": True}, None),  # no --client-id
    ({"write": True, "client_id": 1}, io.StringIO("yes\n")),  # no terminal, no --yes
    ({"write": True, "client_id": 1}, Tty("no\n")),  # the person said no
    ({"write": True, "client_id": 1, "cleanup": True, "yes": True}, None),
    ({"cleanup": True}, io.StringIO()),
])
def test_refusals_send_nothing(tmp_path, options, stdin):
    app, sb = _sandbox()
    code, report, _text, err = _verify(tmp_path, app, stdin=stdin, **options)
    assert code == 2 and report is None
    assert "Nothing was sent to Halo." in err
    assert sb.log.entries() == []  # not even a token request


def test_a_read_only_configuration_refuses_to_write(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_READ_ONLY", "true")
    app, sb = _sandbox()
    code, report, _text, err = _verify(tmp_path, app, write=True, client_id=sb.book.client_ids[0], yes=True)
    assert code == 2 and report is None and "HALO_READ_ONLY" in err and "Nothing was sent to Halo." in err
    assert sb.log.entries() == []


def test_a_yes_on_the_terminal_lets_it_write(tmp_path):
    app, sb = _sandbox()
    before = _book(sb)
    code, report, _text, err = _verify(tmp_path, app, stdin=Tty("yes\n"), write=True, client_id=sb.book.client_ids[0])
    assert code == 0 and "Type yes to go on" in err and report["mode"] == "write"
    assert any(e.method == "POST" for e in sb.log.entries()) and _book(sb) == before


@pytest.mark.parametrize("after_writes", [1, 3, 5, 8, 11])
def test_network_lost_mid_way_then_cleanup_leaves_the_book_as_it_was(tmp_path, after_writes):
    app, sb = _sandbox()
    before = _book(sb)
    client = sb.book.client_ids[0]
    code, report, _text, _err = _verify(tmp_path, app, net=Cut(transport(app), after_writes=after_writes),
                                        write=True, client_id=client, yes=True)
    assert code == 1
    assert _book(sb) != before  # the run could not clean up after itself
    [left] = [f for f in report["findings"] if f["question"].startswith("Did verify remove")]
    assert not left["settled"] and "verify --cleanup" in left["answer"]
    code, report, text, _err = _verify(tmp_path, app, cleanup=True, yes=True, name="cleanup.json")
    assert code == 0, text
    assert _book(sb) == before
    # the interrupted plans are never resumed: applying them again sends nothing
    journal = open_journal(tmp_path / "journal.sqlite3")
    try:
        import anyio

        from halo_contracts.halo.client import HaloClient

        async def resume_all() -> int:
            sent = 0
            async with HaloClient(fake_settings(base_url="http://sandbox", client_id=sb.config.client_id,
                                                client_secret=sb.config.client_secret),
                                  transport=transport(app), backoff=FAST, budget=roomy_budget()) as halo:
                for row in journal.plans_of("verify"):
                    sent += (await apply_plan(row["id"], journal=journal, halo=halo)).sent
            return sent

        assert anyio.run(resume_all) == 0
    finally:
        journal.close()
    assert _book(sb) == before


def test_cleanup_without_the_journal_finds_the_records_by_prefix(tmp_path):
    app, sb = _sandbox()
    before = _book(sb)
    client = sb.book.client_ids[0]
    code, _report, _text, _err = _verify(tmp_path, app, net=Cut(transport(app), after_writes=7), write=True,
                                         client_id=client, yes=True)
    assert code == 1 and _book(sb) != before
    # another machine: an empty journal; the client names where to look
    code, report, text, _err = _verify(tmp_path, app, journal="other.sqlite3", cleanup=True, client_id=client,
                                       yes=True, name="cleanup.json")
    assert code == 0, text
    assert _book(sb) == before
    [done] = [f for f in report["findings"] if f["question"].startswith("Did verify remove")]
    assert "verify (any run)" in done["question"] and done["answer"] == "yes: nothing it made is left"


def test_a_contract_halo_will_not_delete_is_cancelled_and_reported(tmp_path):
    app, sb = _sandbox()
    before = _book(sb)
    net = Cut(transport(app), refuse=("DELETE", "/api/ClientContract"))
    code, report, _text, _err = _verify(tmp_path, app, net=net, write=True, client_id=sb.book.client_ids[0], yes=True)
    assert code == 0  # only contracts Halo refuses to delete are left, cancelled
    after = _book(sb)
    assert {t: after[t] for t in ("rinvoices", "rlines", "licences")} == {t: before[t] for t in
                                                                          ("rinvoices", "rlines", "licences")}
    ids = {c["id"] for c in before["contracts"]}
    left = [c for c in after["contracts"] if c["id"] not in ids]
    assert len(left) == 2 and all(c["status"] == 4 for c in left)  # 4: Cancelled
    assert [c for c in after["contracts"] if c["id"] in ids] == before["contracts"]
    [done] = [f for f in report["findings"] if f["question"].startswith("Did verify remove")]
    assert done["answer"].startswith("no: cancelled what Halo would not delete")
    assert sum("refused to delete it" in e and "cancelled instead" in e for e in done["evidence"]) == 2


@pytest.mark.parametrize("kill_after", [4, pytest.param(10, marks=pytest.mark.slow)])
def test_a_killed_verify_then_cleanup_leaves_the_book_as_it_was(tmp_path, kill_after):
    """The command itself, as a process on a real port, killed (SIGKILL) mid-way; then
    ``verify --cleanup`` (another process, the same data directory) removes what it made."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from halo_contracts.sandbox.standalone import serve_in_thread

    app = create_app(SandboxConfig(clients=6, contracts=24, strict=True, rate_limit=100_000, rate_window=1.0))
    sb = app.state.sandbox
    before = _book(sb)
    with serve_in_thread(app) as base:
        env = {**os.environ, "HALO_BASE_URL": base, "HALO_CLIENT_ID": sb.config.client_id,
               "HALO_CLIENT_SECRET": sb.config.client_secret, "HALO_DATA_DIR": str(tmp_path / "data"),
               "HALO_RATE_LIMIT": "100000/1", "PYTHONUNBUFFERED": "1"}
        for name in ("HALO_TENANT", "HALO_AUTH_URL", "HALO_JOURNAL_URL", "HALO_CONFIG_FILE"):
            env.pop(name, None)
        command = [sys.executable, "-m", "halo_contracts", "verify", "--yes"]
        sb.faults.latency = (0.01, 0.02)  # so the kill lands mid-run
        with open(tmp_path / "a.err", "wb") as errors:
            run = subprocess.Popen([*command, "--write", "--client-id", str(sb.book.client_ids[0])], env=env,
                                   stdout=subprocess.DEVNULL, stderr=errors)
            deadline = time.monotonic() + 120

            def writes() -> int:
                return sum(1 for e in sb.log.entries() if e.method != "GET" and e.path.startswith("/api"))

            while writes() < kill_after and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        assert run.returncode == -signal.SIGKILL, (tmp_path / "a.err").read_text()[-2000:]
        assert 0 < writes() < 14 and _book(sb) != before
        sb.faults.latency = (0.0, 0.0)
        done = subprocess.run([*command, "--cleanup"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "yes: nothing it made is left" in done.stdout
    assert _book(sb) == before
