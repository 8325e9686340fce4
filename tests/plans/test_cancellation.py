"""A client cancelling a long apply_plan: the server stops cleanly, the journal stays
consistent, and applying again finishes the plan without duplicates."""

from __future__ import annotations

import sqlite3

import anyio
import pytest
from mcp import Client

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio


async def test_cancel_mid_apply_then_resume(tmp_path):
    app, transport = sandbox_transport(clients=20, contracts=80)
    sb = app.state.sandbox
    journal = tmp_path / "j.sqlite3"
    server = build_server(sandbox_settings(), transport, journal_path=journal)
    async with Client(server) as client:
        found = await client.call_tool("search_contracts", {"type": "Recurring", "status": "Active", "limit": 12})
        ids = [row["id"] for row in found.structured_content["contracts"]][:8]
        assert len(ids) >= 4
        preview = await client.call_tool("generate_renewals", {"contract_ids": ids, "dry_run": True})
        assert not preview.is_error, preview.content[0].text
        plan_id = preview.structured_content["plan_id"]
        total_steps = preview.structured_content["steps"]

        sb.faults.latency = (0.05, 0.05)  # slow Halo down so the cancel lands mid-plan
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)
            if len(seen) == 3:
                scope.cancel()

        with anyio.CancelScope() as scope:
            await client.call_tool("apply_plan", {"plan_id": plan_id}, progress_callback=on_progress)
        assert scope.cancelled_caught
        await anyio.sleep(0.3)  # let the server notice the cancellation

        db = sqlite3.connect(journal)
        statuses = [r[0] for r in db.execute("SELECT status FROM steps WHERE plan_id = ?", (plan_id,))]
        db.close()
        assert statuses, "the journal has the plan's steps"
        assert set(statuses) <= {"done", "pending", "sending", "unknown"}
        assert 0 < statuses.count("done") < total_steps, statuses

        sb.faults.latency = (0.0, 0.0)
        again = await client.call_tool("apply_plan", {"plan_id": plan_id})
        assert not again.is_error, again.content[0].text
        assert again.structured_content["status"] == "applied"

        new_refs: list[str] = []
        args = {"status": "Pending", "limit": 100, "include_inactive": True}
        while True:  # every page
            page = (await client.call_tool("search_contracts", args)).structured_content
            new_refs += [r["ref"] for r in page["contracts"]]
            if not page["next_cursor"]:
                break
            args = {**args, "cursor": page["next_cursor"]}
    assert len(new_refs) == len(set(new_refs)), "no renewal was created twice"
    created = [e for e in sb.log if e.method == "POST" and e.path.lower() == "/api/clientcontract"]
    stored = [e for e in created if isinstance(e.body, list) and not e.body[0].get("id") and e.status == 201]
    # exactly one stored create per renewed contract (a request cut off by the cancel never stored,
    # and the resume looked it up by client + ref before sending it again)
    assert sorted(e.body[0]["ref"] for e in stored) == sorted(set(e.body[0]["ref"] for e in stored))
    assert len(stored) == len(ids)
