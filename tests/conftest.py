"""Shared fixtures. Tests run on anyio's pytest plugin (asyncio backend)."""

from __future__ import annotations

import httpx2
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _plain_http_to_test_hosts():
    """Tests reach their sandboxes in-process under names like http://sandbox: allow plain
    http for them (tests of the refusal itself remove this)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HALO_ALLOW_INSECURE_HTTP", "true")
        yield


# ---- sandbox + in-process MCP client (issue 4; shared by tool tests) ---------------------------
# sandbox_app: a fresh seeded Halo sandbox per test (``app.state.sandbox``: log, faults, book, store).
# spec_transport: the in-process transport to it, checking every request against the OpenAPI slice.
# mcp_client: an MCP ``Client`` connected in memory to the full server, talking to this test's
# sandbox. The server is built once per session (building it costs ~0.4 s) on a transport that
# is pointed at each test's sandbox; each connection runs the lifespan afresh (new HaloClient,
# journal reopened). At teardown every request sent must conform to the OpenAPI slice.
# ``mcp_client.sandbox`` / ``.spec`` / ``.journal_path`` are attached for tests.

SANDBOX_SETTINGS = {"base_url": "http://sandbox", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
                    "rate_limit": "100000/1"}


class _SwitchTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that forwards to whatever ``target`` currently is."""

    def __init__(self) -> None:
        self.target = None

    async def handle_async_request(self, request):
        assert self.target is not None, "mcp_client: no sandbox transport selected"
        return await self.target.handle_async_request(request)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def sandbox_app():
    from halo_contracts.sandbox import SandboxConfig, create_app

    return create_app(SandboxConfig(seed=7))


@pytest.fixture
def spec_transport(sandbox_app):
    from halo_contracts.sandbox import transport
    from support.spec import SpecCheckingTransport

    return SpecCheckingTransport(transport(sandbox_app))


@pytest.fixture(scope="session")
def _shared_mcp_server(tmp_path_factory):
    from halo_contracts.config import load_settings
    from halo_contracts.server import build_server

    switch = _SwitchTransport()
    journal_path = tmp_path_factory.mktemp("journal") / "journal.sqlite3"
    settings = load_settings(**SANDBOX_SETTINGS, read_only=False, tools=None, disabled_tools=None)
    server = build_server(settings, transport=switch, journal_path=journal_path)
    return server, switch, journal_path


@pytest.fixture
async def mcp_client(sandbox_app, spec_transport, _shared_mcp_server):
    from mcp import Client

    server, switch, journal_path = _shared_mcp_server
    switch.target = spec_transport
    async with Client(server) as client:
        client.sandbox = sandbox_app.state.sandbox
        client.spec = spec_transport
        client.journal_path = journal_path
        yield client
    switch.target = None
    # every request a tool sent must conform to Halo's OpenAPI slice
    spec_transport.assert_clean()


# ---- journal stores (issue 18) -----------------------------------------------------------------
# journal_store: the same journal tests run against both stores. ``journal_store.open()`` opens
# a journal on one store (call it twice for two connections / a reopened journal);
# ``journal_store.target`` is what another process passes to ``open_journal``.
# pg_url: a fresh schema in the test PostgreSQL server (see tests/support/pg.py).


@pytest.fixture
def pg_url():
    from support.pg import Schema, server_url

    schema = Schema(server_url())
    yield schema.url
    schema.drop()


class JournalStore:
    def __init__(self, kind: str, target: str) -> None:
        self.kind, self.target = kind, target
        self._open: list = []

    def open(self):
        from halo_contracts.plans.journal import open_journal

        journal = open_journal(self.target)
        self._open.append(journal)
        return journal

    def close_all(self) -> None:
        for journal in self._open:
            journal.close()


@pytest.fixture(params=["sqlite", "postgres"])
def journal_store(request, tmp_path):
    if request.param == "sqlite":
        store = JournalStore("sqlite", str(tmp_path / "j.sqlite3"))
    else:
        store = JournalStore("postgres", request.getfixturevalue("pg_url"))
    yield store
    store.close_all()
