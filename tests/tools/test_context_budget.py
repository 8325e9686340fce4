"""Context budgets (issue 13), in memory: the whole ``tools/list`` and the text block of every
tool's default-arguments result. The figures over stdio, and the biggest results, are
``bench/context_size.py``'s (bench/RESULTS.md); this test only holds the line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

BENCH = Path(__file__).resolve().parents[2] / "bench" / "context_size.py"


def _bench():
    spec = importlib.util.spec_from_file_location("context_size", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cs = _bench()
pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(tmp_path):
    app = create_app(SandboxConfig(**cs.book_config(120)))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             rate_limit="1000000000/1", read_only=False, tools=None, disabled_tools=None)
    server = build_server(settings, transport(app), journal_path=tmp_path / "j.sqlite3", extras={"today": cs.TODAY})
    async with Client(server) as c:
        yield c


async def test_tools_list_fits_its_budget(client):
    listing = (await client.list_tools()).model_dump(mode="json", by_alias=True, exclude_none=True)
    listing.pop("_meta", None)
    assert len(listing["tools"]) == 24
    assert cs.size(listing) <= cs.BUDGETS["tools_list"], cs.size(listing)


async def test_every_default_result_says_itself_briefly(client):
    """Each tool with its fewest arguments: a short text that is not the data again, plus the
    structured content; plans come with a link to their resource."""
    over, dumps = [], []
    for tool, args in cs.default_cases(cs.Book(120)).items():
        r = await client.call_tool(tool, args)
        assert not r.is_error, (tool, r.content[0].text)
        text = r.content[0].text
        m = cs.measure(r)
        if m["text_bytes"] > cs.BUDGETS["default_text"]:
            over.append((tool, m["text_bytes"]))
        if text.lstrip().startswith("{") or text == json.dumps(r.structured_content):
            dumps.append(tool)
        assert r.structured_content, tool
        links = [c.uri for c in r.content if c.type == "resource_link"]
        if r.structured_content.get("plan_id"):
            assert links == [f"halopsa://plans/{r.structured_content['plan_id']}"], tool
    assert not over, over
    assert not dumps, dumps
