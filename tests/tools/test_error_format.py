"""One error format for every refused argument (issue 14): the field with its path, the rule, a
concrete fix and "Nothing was sent to Halo." -- for our own checks and for the schema validation
the SDK runs before a tool body, never pydantic's text or links."""

from __future__ import annotations

import re
from datetime import date

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server
from halo_contracts.tools.errors import amount_in, date_fix, field_path, format_errors, text_for_number
from support.spec import SpecCheckingTransport

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
FORMAT = re.compile(r"^Error executing tool \w+: (Invalid '[^']+': .+?\. Fix: .+?\. )+(\(.*\) )?"
                    r"Nothing was sent to Halo\.$", re.S)


def assert_our_format(text: str) -> None:
    assert FORMAT.match(text), text
    assert "pydantic" not in text.lower() and "http" not in text.lower(), text
    assert "validation error for" not in text and "Arguments" not in text, text
    assert text.count("Nothing was sent to Halo.") == 1, text


# ---- the pure formatter --------------------------------------------------------------------------


def test_paths_amounts_and_date_readings():
    assert field_path(("items", 0, "unit_price")) == "items[0].unit_price"
    assert field_path(("changes", "value")) == "changes.value"
    assert amount_in("2,500") == "2500" and amount_in("$150.00") == "150" and amount_in("$1,234.50") == "1234.5"
    assert amount_in("Acme Corp Ltd") is None and amount_in("1,2,3") is None
    both = date_fix("01/02/2027", TODAY)
    assert "1 February 2027 (2027-02-01)" in both and "2 January 2027 (2027-01-02)" in both
    assert "ask which" in both and "today is 2026-06-15" in both
    one = date_fix("31/12/2027", TODAY)
    assert "2027-12-31" in one and "could be" not in one
    assert date_fix("next month", TODAY) == "write it as YYYY-MM-DD (today is 2026-06-15)"


def test_a_name_where_an_id_is_expected_names_the_finder():
    text = text_for_number("client_id", "Acme Corp Ltd", expected="integer")
    assert "call find_clients with name=\"Acme Corp Ltd\"" in text
    assert "search_contracts" in text_for_number("contract_id", "Acme 2026", expected="integer")
    assert "pass the number 2500" in text_for_number("value", "2,500", expected="number")


def test_several_fields_one_message():
    errors = [{"type": "missing", "loc": ("items", 0, "description"), "msg": "x", "input": {}},
              {"type": "int_type", "loc": ("sla_id",), "msg": "x", "input": 1.5}]
    text = format_errors(errors, TODAY)
    assert text.startswith("Invalid 'items[0].description': this argument is required. Fix: ")
    assert "Invalid 'sla_id': expected a whole number, got 1.5." in text
    assert text.endswith("Nothing was sent to Halo.") and text.count("Nothing was sent") == 1


# ---- through the SDK client on the sandbox -------------------------------------------------------


@pytest.fixture
async def client(tmp_path):
    app = create_app(SandboxConfig(seed=7, today=TODAY))
    checked = SpecCheckingTransport(transport(app))
    settings = load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                             read_only=False, tools=None, disabled_tools=None)
    server = build_server(settings, transport=checked, journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    async with Client(server) as c:
        c.spec = checked
        yield c
    assert checked.requests == [] and checked.outside == [], "an invalid call reached Halo"


async def refused(client: Client, tool: str, args: dict) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, (tool, args, result.content)
    text = result.content[0].text
    assert_our_format(text)
    return text


NEW = dict(client_id=5, ref="Acme Ltd - Recurring 2027", type="Recurring", start_date="2027-01-01", dry_run=True)


async def test_the_traps_of_issue_14(client):
    text = await refused(client, "create_contract", {**NEW, "start_date": "01/02/2027"})
    assert "Invalid 'start_date': expected a date in the form YYYY-MM-DD, got '01/02/2027'" in text
    assert "1 February 2027 (2027-02-01) or 2 January 2027 (2027-01-02); ask which" in text
    assert "today is 2026-06-15" in text
    text = await refused(client, "create_contract", {**NEW, "value": "2,500"})
    assert "Invalid 'value'" in text and "pass the number 2500" in text and "JSON inside" not in text
    text = await refused(client, "create_contract", {**NEW, "client_id": "Acme Corp Ltd"})
    assert "Invalid 'client_id': expected a Halo id (a number), got the name 'Acme Corp Ltd'" in text
    assert 'call find_clients with name="Acme Corp Ltd"' in text
    text = await refused(client, "get_contract", {"contract_id": "Acme Managed 2026"})
    assert 'call search_contracts with text="Acme Managed 2026"' in text
    text = await refused(client, "generate_renewals", {"contract_ids": [1], "uplift_percent": "3%", "dry_run": True})
    assert "Invalid 'uplift_percent'" in text and "pass the number 3 (no quotes or unit)" in text
    text = await refused(client, "find_expiring_contracts", {"within_days": "60 days"})
    assert "Invalid 'within_days'" in text and "pass the number 60 (no quotes or unit)" in text
    assert "JSON inside" not in text
    text = await refused(client, "update_contract", {"contract_id": 1, "changes": {"value": "$150.00"},
                                                     "dry_run": True})
    assert "Invalid 'changes.value'" in text and "pass the number 150" in text
    text = await refused(client, "add_recurring_items", {"contract_id": 1, "dry_run": True, "items": [
        {"description": "Backup", "unit_price": "$150.00", "quantity": 1}]})
    assert "Invalid 'items[0].unit_price'" in text and "pass the number 150" in text
    text = await refused(client, "update_contract", {"contract_id": 1, "changes": {"end_date": "2027-02-30"},
                                                     "dry_run": True})
    assert "Invalid 'changes.end_date': '2027-02-30' is not a real calendar date" in text


def _wrong_values(prop: dict) -> list:
    """Values of the wrong kind for a published argument schema."""
    kinds: set[str] = set()
    for branch in [prop, *[b for b in prop.get("anyOf", []) if isinstance(b, dict)]]:
        kind = branch.get("type")
        kinds |= set(kind) if isinstance(kind, list) else {kind} if kind else set()
    if "string" in kinds:
        return [{"not": "text"}, 12345]
    return ["Acme Corp Ltd", {"not": "this"} if "object" not in kinds else [1]]


async def test_every_tools_invalid_inputs_use_the_one_format(client):
    tools = (await client.list_tools()).tools
    assert len(tools) > 10
    walked = 0
    for tool in tools:
        schema = tool.input_schema
        props = schema.get("properties", {})
        if schema.get("required"):
            await refused(client, tool.name, {})
            walked += 1
        for name, prop in props.items():
            for bad in _wrong_values(prop):
                await refused(client, tool.name, {name: bad})
                walked += 1
    assert walked > 50


def test_a_union_argument_is_described_by_the_branch_of_the_json_type_given():
    # text or rows: rows with one bad quantity name that row's field, not "expected text"
    errors = [{"type": "string_type", "loc": ("source", "str"), "msg": "x", "input": [{"customer": "A"}]},
              {"type": "int_type", "loc": ("source", "list[FeedLine]", 27, "quantity"), "msg": "x", "input": 2.5}]
    text = format_errors(errors, TODAY)
    assert text.startswith("Invalid 'source[27].quantity': expected a whole number, got 2.5."), text
    assert "expected text" not in text
    # text given: the text branch's own problem is the point, not "expected a list"
    errors = [{"type": "string_too_short", "loc": ("source", "str"), "msg": "x", "input": "", "ctx": {}},
              {"type": "list_type", "loc": ("source", "list[FeedLine]"), "msg": "x", "input": ""}]
    text = format_errors(errors, TODAY)
    assert "Invalid 'source': too short" in text and "expected a list" not in text, text
    # an object given where text or a list is allowed: every branch is wrong, all are said once
    errors = [{"type": "string_type", "loc": ("source", "str"), "msg": "x", "input": {"a": 1}},
              {"type": "list_type", "loc": ("source", "list[FeedLine]"), "msg": "x", "input": {"a": 1}}]
    assert format_errors(errors, TODAY).startswith("Invalid 'source': expected text")


async def test_rows_with_one_bad_quantity_name_the_row(client):
    rows = [{"customer": "Acme Ltd", "product_code": f"SKU-{n}", "quantity": 1} for n in range(30)]
    rows[27]["quantity"] = 2.5
    text = await refused(client, "plan_license_sync", {"source": rows, "distributor": "Pax8"})
    assert "Invalid 'source[27].quantity': expected a whole number" in text and "expected text" not in text, text
