"""The text rule and the sign of zero.

Refs, names, codes and descriptions a person or a feed gives are refused (field named, nothing
sent) when they hold control characters (a note may hold line breaks and tabs), bidirectional
override/isolate characters, or nothing visible. Text read from Halo is data: never refused,
sent back verbatim. A zero is never shown or sent as -0.00."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal

import pytest
from mcp import Client

from halo_contracts.config import load_settings
from halo_contracts.domain.money import cents
from halo_contracts.domain.validation import text_problem
from halo_contracts.sandbox import SandboxConfig, create_app, transport
from halo_contracts.server import build_server

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 15)
SETTINGS = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                rate_limit="1000000/1")

BAD_LINES = {
    "NUL": "Acme\x00 2027",
    "escape": "Acme \x1b[31m 2027",
    "DEL": "Acme\x7f 2027",
    "C1": "Acme\x85 2027",
    "newline": "Acme\n2027",
    "tab": "Acme\t2027",
    "RLO": "Acme \u202e7202",
    "LRE": "\u202aAcme 2027",
    "isolate": "Acme \u2066x\u2069 2027",
    "zero-width only": "\u200b\u200c\u200d\u2060\ufeff",
    "spaces and zero-width": " \u200b \u3000 ",
    "empty": "",
}
GOOD_LINES = ["Acme Ltd - Managed Services 2027", "Café Zoë – 2027 ✓", "שלום 2027", "Acme\u200bLtd", "$step:0.id"]


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_a_bad_line_is_refused_with_a_rule_and_a_fix(name):
    problem = text_problem(BAD_LINES[name])
    assert problem is not None
    rule, fix = problem
    assert rule and fix


@pytest.mark.parametrize("text", GOOD_LINES)
def test_visible_text_in_any_script_passes(text):
    assert text_problem(text) is None


def test_notes_may_hold_line_breaks_and_tabs_and_be_blank():
    assert text_problem("Tier 2\r\nsee\tticket 5", multiline=True, blank_ok=True) is None
    assert text_problem("", multiline=True, blank_ok=True) is None
    assert text_problem("a\x00b", multiline=True, blank_ok=True) is not None
    assert text_problem("a\u202eb", multiline=True, blank_ok=True) is not None
    assert "U+000A" in text_problem("a\nb")[0]


def test_no_negative_zero_in_cents():
    assert str(cents(Decimal("-0.001"))) == "0.00"
    assert str(cents(Decimal("-0"))) == "0.00"
    assert str(cents(Decimal("-0.005"))) == "-0.01"


# ---- through the tools ---------------------------------------------------------------------------


def make(tmp_path):
    app = create_app(SandboxConfig(rate_limit=1_000_000, today=TODAY, seed=7))
    server = build_server(load_settings(**SETTINGS), transport=transport(app),
                          journal_path=tmp_path / "j.sqlite3", extras={"today": TODAY})
    return app.state.sandbox, server


def contract_args(**over):
    args = {"client_id": 1, "ref": "Text rules 2027", "type": "Recurring", "start_date": "2027-01-01",
            "end_date": "2027-12-31", "billing_frequency": "Monthly", "value": 10, "dry_run": True}
    args.update(over)
    return args


ITEM = {"description": "Managed seat", "quantity": 1, "unit_price": 5}


def refusals():
    """(tool, args, field) for every kind of text argument."""
    out = []
    for name, bad in BAD_LINES.items():
        out.append(pytest.param("create_contract", contract_args(ref=bad), "ref", id=f"ref-{name}"))
    out += [
        pytest.param("create_contract", contract_args(notes="ok\n\u202eevil"), "notes", id="notes-bidi"),
        pytest.param("create_contract", contract_args(notes="a\x00"), "notes", id="notes-nul"),
        pytest.param("create_contract", contract_args(billing_frequency="Monthly\x00"), "billing_frequency",
                     id="frequency-nul"),
        pytest.param("update_contract", {"contract_id": 1, "changes": {"ref": "\u2067x"}, "dry_run": True},
                     "changes.ref", id="update-ref"),
        pytest.param("add_recurring_items", {"contract_id": 1, "items": [{**ITEM, "description": "\u200b"}],
                                             "dry_run": True}, "items[0].description", id="item-description"),
        pytest.param("add_recurring_items", {"contract_id": 1, "items": [{**ITEM, "long_description": "\x07"}],
                                             "dry_run": True}, "items[0].long_description", id="item-long"),
        pytest.param("find_clients", {"name": "ac\x00me"}, "name", id="find-clients"),
        pytest.param("search_contracts", {"text": "\u202d"}, "text", id="search-text"),
        pytest.param("plan_license_sync", {"source": [{"customer": "Acme", "product_code": "X\u202e",
                                                       "quantity": 1}], "distributor": "Pax8"},
                     "product_code", id="feed-row-code"),
        pytest.param("plan_license_sync", {"source": [{"customer": "\ufeff\u200b", "product_code": "X",
                                                       "quantity": 1}], "distributor": "Pax8"},
                     "customer", id="feed-row-customer"),
        pytest.param("plan_license_sync", {"source": "Customer,SKU,Product,Qty\nAcme,X,Seat\u2066s,1\n",
                                           "distributor": "Pax8"},
                     "product_name", id="feed-csv-name"),
        pytest.param("plan_license_sync", {"source": [{"customer": "Acme", "product_code": "X", "quantity": 1}],
                                           "distributor": "Pax8\x1b"}, "distributor", id="distributor"),
        pytest.param("plan_license_sync", {"source": [{"customer": "Acme", "product_code": "X", "quantity": 1}],
                                           "mappings": {"Acme\u202e": 1}, "distributor": "Pax8"}, "mappings",
                     id="mapping-name"),
        pytest.param("plan_license_sync", {"source": [{"customer": "Acme", "product_code": "X", "quantity": 1}],
                                           "exclude_clients": ["\u200b"], "distributor": "Pax8"},
                     "exclude_clients[0]", id="exclude-name"),
    ]
    return out


@pytest.mark.parametrize(("tool", "args", "field"), refusals())
async def test_bad_text_is_refused_with_the_field_named_and_nothing_sent(tmp_path, tool, args, field):
    sb, server = make(tmp_path)
    async with Client(server) as client:
        sb.log.clear()
        result = await client.call_tool(tool, args)
    text = result.content[0].text
    assert result.is_error, text
    assert f"'{field}'" in text or f", {field}:" in text, text
    assert "Nothing was sent to Halo" in text or "nothing was sent to Halo" in text, text
    # one plain message: no validation-library framing, and the refused text is not echoed back
    assert text.startswith(f"Error executing tool {tool}: ") and "Invalid '" in text, text
    assert "validation error" not in text and "input_value" not in text, text
    assert [e for e in sb.log if e.path.lower().startswith("/api")] == []


async def test_notes_keep_their_line_breaks_and_tabs(tmp_path):
    sb, server = make(tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("create_contract", contract_args(notes="Tier 2\nsee\tticket 5",
                                                                         dry_run=False))
    assert not result.is_error, result.content[0].text
    [stored] = [c for c in sb.store.where("contracts") if c.get("ref") == "Text rules 2027"]
    assert stored["note"] == "Tier 2\nsee\tticket 5"


async def test_text_from_halo_is_not_refused_and_is_sent_back_verbatim(tmp_path):
    """A Halo line described with a bidirectional override and a control character is data:
    a renewal copies it as it is."""
    sb, server = make(tmp_path)
    docs = sb.store.where("contracts")
    renewed = {c["previouscontract"] for c in docs if c.get("previouscontract")}
    cid, line = next((c["id"], x) for c in docs if c.get("status") == 1 and c.get("end_date")
                     and c["id"] not in renewed
                     for x in sb.store.where("rlines", "contract_id = ?", [c["id"]])
                     if not x.get("isinactive") and x.get("enddate") is None)
    odd = "Seat \u202eevil\x07 licence"
    sb.store.put("rlines", {**line, "item_shortdescription": odd})
    async with Client(server) as client:
        result = await client.call_tool("generate_renewals", {"contract_ids": [cid], "uplift_percent": 0,
                                                              "copy_recurring_items": True})
    assert not result.is_error, result.content[0].text
    [new] = sb.store.where("contracts", "previouscontract = ?", [cid])
    headers = sb.store.where("rinvoices", "contract_id = ?", [new["id"]])  # one per billing frequency
    assert odd in [x["item_shortdescription"] for h in headers for x in sb.store.where("rlines", "ihid = ?", [h["id"]])]


# ---- -0.0 ------------------------------------------------------------------------------------


def _no_negative_zero(value, where="") -> None:
    """No -0.0 float and no '-0.00'-like text anywhere in ``value``."""
    if isinstance(value, float):
        assert not (value == 0 and math.copysign(1, value) < 0), f"-0.0 at {where}"
    elif isinstance(value, str):
        assert not (value.startswith("-") and value.lstrip("-").replace(".", "").strip("0") == ""
                    and any(ch.isdigit() for ch in value)), f"{value!r} at {where}"
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_negative_zero(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_negative_zero(v, f"{where}[{i}]")


async def test_negative_zero_money_becomes_zero_in_previews_results_and_bodies(tmp_path):
    sb, server = make(tmp_path)
    async with Client(server) as client:
        created = await client.call_tool("create_contract", contract_args(value=-0.0, dry_run=False))
        assert not created.is_error, created.content[0].text
        out = created.structured_content or json.loads(created.content[0].text)
        assert out["value"] == "0.00"
        items = await client.call_tool("add_recurring_items", {
            "contract_id": out["contract_id"], "dry_run": False,
            "items": [{"description": "Free seat", "quantity": 1, "unit_price": -0.0}]})
        assert not items.is_error, items.content[0].text
        feed = [{"customer": sb.store.get("clients", 1)["name"], "product_code": "ZERO-SKU", "quantity": 1,
                 "unit_price": -0.0}]
        sync = await client.call_tool("plan_license_sync", {"source": feed, "cleanup": False,
                                                            "distributor": "Pax8"})
        assert not sync.is_error, sync.content[0].text
        for result in (created, items, sync):
            _no_negative_zero(result.structured_content)
            assert "-0.0" not in result.content[0].text
        plan = await client.call_tool("get_plan", {"plan_id": sync.structured_content["plan_id"]})
        _no_negative_zero(plan.structured_content)
    for entry in sb.log:
        if entry.method == "POST" and entry.path.lower().startswith("/api"):
            _no_negative_zero(entry.body, entry.path)
