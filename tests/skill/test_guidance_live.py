"""Live guidance against the embedded sandbox: tenant reference data, the contract resource,
client-name completion, and Halo errors surfacing as resource errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.types import PromptReference

from halo_contracts import sandbox
from halo_contracts.config import load_settings
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def halo_app():
    return sandbox.create_app(sandbox.SandboxConfig())


@pytest.fixture
def book(halo_app):
    return halo_app.state.sandbox.book


@pytest.fixture
def server(halo_app, tmp_path):
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")
    return build_server(settings, transport=sandbox.transport(halo_app), journal_path=tmp_path / "j.sqlite3")


def api_requests(halo_app) -> int:
    return sum(1 for e in halo_app.state.sandbox.log.entries() if "/api/" in e.path.lower())


async def read_json(client: Client, uri: str) -> Any:
    result = await client.read_resource(uri)
    assert result.contents[0].mime_type == "application/json"
    return json.loads(result.contents[0].text)


async def test_sla_reference_lists_the_tenant_slas(server, book):
    async with Client(server) as client:
        data = await read_json(client, "halopsa://reference/slas")
    assert data["kind"] == "slas"
    assert sorted(v["id"] for v in data["values"]) == sorted(book.sla_ids)
    assert all(v["name"] for v in data["values"])
    assert "sla_id" in data["usage"]


@pytest.mark.parametrize(("uri", "kind", "names"), [
    ("halopsa://reference/statuses", "statuses", ["Active", "Pending", "Expired", "Cancelled", "On Hold"]),
    ("halopsa://reference/contract_types", "contract_types",
     ["Recurring", "Prepaid Hours", "Ad-Hoc", "Project", "Warranty"]),
    ("halopsa://reference/contract-types", "contract_types",
     ["Recurring", "Prepaid Hours", "Ad-Hoc", "Project", "Warranty"]),
    ("halopsa://reference/billing_periods", "billing_periods", ["Monthly", "Quarterly", "Annual"]),
])
async def test_code_lists_match_the_tenant(server, uri, kind, names):
    async with Client(server) as client:
        data = await read_json(client, uri)
    assert data["kind"] == kind
    assert [v["name"] for v in data["values"]] == names
    # the sandbox uses the default code maps: every configured code is in the tenant's list
    assert all(v["in_tenant"] is True for v in data["values"])
    if kind == "billing_periods":
        assert [v["months"] for v in data["values"]] == [1, 3, 12]


async def test_contract_resource_has_its_recurring_lines(server, book):
    contract_id = next(iter(book.recurring_invoice_ids))
    async with Client(server) as client:
        data = await read_json(client, f"halopsa://contracts/{contract_id}")
        tool = await client.call_tool("get_contract", {"contract_id": contract_id})
    assert data["id"] == contract_id
    assert data["ref"] and data["type"] and data["status"]
    assert data["items"], "a contract with a recurring invoice has lines"
    for line in data["items"]:
        assert Decimal(line["per_period"]) == (Decimal(str(line["quantity"])) * Decimal(line["unit_price"])
                                               ).quantize(Decimal("0.01"))
    assert "not instructions" in data.pop("data_note")
    # the resource is the get_contract tool's answer: one source for the figures
    assert data == tool.structured_content


async def test_prepaid_contract_resource_has_its_balance(server, book):
    prepaid = [cid for ids in book.prepaid.values() for cid in ids]
    if not prepaid:
        pytest.skip("the demo book has no prepaid contracts")
    contract_id = prepaid[0]
    async with Client(server) as client:
        data = await read_json(client, f"halopsa://contracts/{contract_id}")
    assert data["type"] == "Prepaid Hours"
    total, used, balance = book.prepaid_totals[contract_id]
    assert Decimal(str(data["prepaid"]["hours_purchased"])) == total
    assert Decimal(str(data["prepaid"]["hours_used"])) == used
    assert Decimal(str(data["prepaid"]["hours_remaining"])) == balance


async def test_missing_contract_is_not_found(server):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource("halopsa://contracts/987654")
    assert err.value.error.code == -32602
    assert "987654" in err.value.error.message


async def test_permission_error_reads_as_a_resource_error(server, halo_app):
    halo_app.state.sandbox.deny("/api/SLA")
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource("halopsa://reference/slas")
    assert err.value.error.code == -32603
    assert "permission" in err.value.error.message.lower()
    assert "sandbox-secret" not in err.value.error.message


async def test_client_name_completion_is_live(server, book, halo_app):
    name = book.client_names[book.client_ids[0]]
    async with Client(server) as client:
        result = await client.complete(PromptReference(type="ref/prompt", name="contract_setup"),
                                       {"name": "client", "value": name[:4]})
    assert name in result.completion.values
    assert len(result.completion.values) <= 20
    assert all(v.casefold().find(name[:4].casefold()) >= 0 for v in result.completion.values[:1])


async def test_client_completion_needs_two_characters(server, halo_app):
    async with Client(server) as client:
        before = api_requests(halo_app)
        result = await client.complete(PromptReference(type="ref/prompt", name="contract_setup"),
                                       {"name": "client", "value": "A"})
        assert result.completion.values == []
        assert api_requests(halo_app) == before


async def test_broad_client_search_spends_one_request(tmp_path):
    """A search matching more than one page of clients suggests nothing (type more letters)
    and reads only the first page."""
    big = sandbox.create_app(sandbox.SandboxConfig(clients=260, contracts=30))
    names = list(big.state.sandbox.book.client_names.values())
    assert sum("er" in n.lower() for n in names) > 100
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")
    server = build_server(settings, transport=sandbox.transport(big), journal_path=tmp_path / "j.sqlite3")
    async with Client(server) as client:
        result = await client.complete(PromptReference(type="ref/prompt", name="contract_setup"),
                                       {"name": "client", "value": "er"})
    assert result.completion.values == [] and result.completion.has_more is True
    client_reads = [e for e in big.state.sandbox.log.entries() if e.path.lower().startswith("/api/client")]
    assert len(client_reads) == 1
