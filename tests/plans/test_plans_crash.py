"""A real SIGKILL between Halo storing a write and the journal recording its answer.

A child process applies a plan against a file-backed sandbox and kills itself with SIGKILL
the moment the sandbox has stored the contract (before the answer reaches the executor).
The parent then applies the same plan from the same journal: the step left "sending" is
settled by natural key, nothing is sent twice, and the next step runs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from halo_contracts.config import load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.plans.executor import apply_plan
from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan
from halo_contracts.plans.steps import add_step
from halo_contracts.sandbox import SandboxConfig, create_app, transport

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")]

SETTINGS = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                rate_limit="100000/1")

CHILD = textwrap.dedent("""
    import os, signal, sys
    import anyio, httpx2
    from halo_contracts.config import load_settings
    from halo_contracts.halo.client import HaloClient
    from halo_contracts.plans.executor import apply_plan
    from halo_contracts.plans.journal import Journal
    from halo_contracts.sandbox import SandboxConfig, create_app, transport

    db, journal_path, plan_id = sys.argv[1:4]
    inner = transport(create_app(SandboxConfig(db_path=db, seed=7)))

    class KillAfterStore(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request):
            response = await inner.handle_async_request(request)
            if request.method == "POST" and request.url.path.lower() == "/api/clientcontract":
                os.kill(os.getpid(), signal.SIGKILL)
            return response

    async def main():
        settings = load_settings(base_url="http://sandbox", client_id="sandbox-client",
                                 client_secret="sandbox-secret", rate_limit="100000/1")
        async with HaloClient(settings, transport=KillAfterStore()) as halo:
            await apply_plan(plan_id, journal=Journal(journal_path), halo=halo)
        sys.exit(3)  # not reached: the process is killed mid-apply

    anyio.run(main)
""")


async def test_sigkill_after_send_never_duplicates(tmp_path):
    db, journal_path = str(tmp_path / "halo.sqlite3"), tmp_path / "journal.sqlite3"
    app = create_app(SandboxConfig(db_path=db, seed=7))  # seeds the demo book into the file
    client_id = app.state.sandbox.book.client_ids[0]
    ref = "Acme Corp Ltd - Recurring 2031"
    async with HaloClient(load_settings(**SETTINGS), transport=transport(app)) as halo:
        plan = Plan(tool="test", title="contract and its recurring invoice")
        add_step(plan, halo, "create_contract", "Create contract",
                 {"fields": {"client_id": client_id, "ref": ref, "type": "Recurring", "status": "Pending",
                             "start_date": "2031-01-01", "end_date": "2031-12-31", "value": "100.00"}},
                 natural_key={"client_id": client_id, "ref": ref})
        add_step(plan, halo, "create_recurring_invoice", "Create its recurring invoice",
                 {"client_id": client_id, "contract_id": Plan.ref(0), "contract_ref": ref},
                 natural_key={"contract_id": Plan.ref(0)})
    journal = Journal(journal_path)
    journal.save_plan(plan)

    child = subprocess.run([sys.executable, "-c", CHILD, db, str(journal_path), plan.id],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert journal.get_plan(plan.id).steps[0].status == "sending"  # the answer never reached the journal

    app2 = create_app(SandboxConfig(db_path=db, seed=7))  # same Halo data, as after a restart
    stored = [c for c in app2.state.sandbox.store.where("contracts") if c.get("ref") == ref]
    assert len(stored) == 1  # Halo did store it before the kill
    async with HaloClient(load_settings(**SETTINGS), transport=transport(app2)) as halo:
        outcome = await apply_plan(plan.id, journal=journal, halo=halo)
    assert outcome.ok and outcome.settled == 1 and outcome.sent == 1, outcome.message
    sb = app2.state.sandbox
    assert sb.log.count("POST", "/api/ClientContract") == 0  # never re-sent
    assert sb.log.count("POST", "/api/RecurringInvoice") == 1
    assert len([c for c in sb.store.where("contracts") if c.get("ref") == ref]) == 1
    assert outcome.created["contract"] == [stored[0]["id"]]
    journal.close()
