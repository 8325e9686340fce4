"""``halopsa-contracts-mcp verify`` (reading) against the sandbox, under its default answers and
under another tenant's: every question is answered, the answers follow the sandbox's switches,
the report plays back as sandbox quirks, and the book is left exactly as it was."""

from __future__ import annotations

import io
import json

from halo_contracts.sandbox import Quirks, SandboxConfig, create_app, transport
from halo_contracts.verify_cmd import run_verify
from support.fakehalo import fake_settings


def _run(tmp_path, quirks: Quirks) -> tuple[dict, str, object]:
    app = create_app(SandboxConfig(clients=8, contracts=40, quirks=quirks, strict=True))
    sb = app.state.sandbox
    # a renewal link for the excluderenewed question (the demo book has none)
    old, new = [c for c in sb.store.where("contracts") if c["client_id"] == sb.book.client_ids[0]][:2]
    sb.store.put("contracts", {**new, "previouscontract": old["id"], "active": True})
    before = {t: sb.store.where(t) for t in ("contracts", "rinvoices", "rlines", "licences", "invoices")}
    settings = fake_settings(base_url="http://sandbox", client_id=sb.config.client_id,
                             client_secret=sb.config.client_secret)
    out = io.StringIO()
    path = tmp_path / "report.json"
    assert run_verify(settings=settings, transport=transport(app), report_path=str(path), out=out) == 0
    after = {t: sb.store.where(t) for t in before}
    assert after == before  # reading only: the book is as it was
    assert not [e for e in sb.log.entries() if e.method != "GET" and e.path.startswith("/api")]
    return json.loads(path.read_text()), out.getvalue(), sb


def test_verify_reads_the_default_answers_and_plays_them_back(tmp_path):
    report, text, _sb = _run(tmp_path, Quirks())
    questions = [f["question"] for f in report["findings"]]
    assert len(questions) == 10 and len(set(questions)) == 10
    assert all(f["answer"] and (f["evidence"] or not f["settled"]) for f in report["findings"])
    assert report["quirks"] == {"ticket_datesearch": "dateoccured", "actions_cap": 0,
                                "excluderenewed": "hides_renewed", "invoice_dates": "honoured",
                                "contract_type_filter": "honoured", "list_wrappers": "wrapped"}
    assert Quirks.from_report(report) == Quirks()
    assert "[settled] Do the tenant's billing period codes (lookup 73) match ours?" in text
    assert "answer: the configured codes match" in text


def test_verify_tells_another_tenants_answers(tmp_path):
    other = Quirks(excluderenewed="ignored", ticket_datesearch="dateoccurred", invoice_dates="ignored",
                   contract_type_filter="ignored", actions_cap=5)
    report, text, _sb = _run(tmp_path, other)
    # excluderenewed ignored looks like a book without renewals when the list rows carry no
    # link (the 2026 list schema has none): reported open, not guessed
    assert report["quirks"] == {"ticket_datesearch": "dateoccurred", "actions_cap": 5,
                                "invoice_dates": "ignored", "contract_type_filter": "ignored",
                                "list_wrappers": "wrapped"}
    [renewed] = [f for f in report["findings"] if "excluderenewed" in f["question"]]
    assert not renewed["settled"]
    played = Quirks.from_report(report)  # sandbox --quirks REPORT plays this tenant
    assert (played.ticket_datesearch, played.actions_cap, played.invoice_dates, played.contract_type_filter) == (
        "dateoccurred", 5, "ignored", "ignored")
    assert "HALO_TICKET_DATE_SPELLING=field" in text
    assert "we filter on our side" in text


def test_bare_lists_are_counted_whole(tmp_path):
    # a bare array has no record_count: a one-row page would count 1 whatever the filter did
    report, _text, _sb = _run(tmp_path, Quirks(list_wrappers="bare"))
    assert report["quirks"] == {"ticket_datesearch": "dateoccured", "actions_cap": 0,
                                "excluderenewed": "hides_renewed", "invoice_dates": "honoured",
                                "contract_type_filter": "honoured", "list_wrappers": "bare"}
    assert Quirks.from_report(report) == Quirks(list_wrappers="bare")
