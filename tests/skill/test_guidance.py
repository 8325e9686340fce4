"""The guide as resources and prompts: static parts (no Halo needed).

Live parts (reference data, contract resource, client-name completion) are in
``test_guidance_live.py`` against the sandbox.
"""

from __future__ import annotations

import inspect
import re
from datetime import date
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.server import MCPServer
from mcp.types import PromptReference, ResourceTemplateReference

from halo_contracts import prompts, skill
from halo_contracts.config import load_settings
from halo_contracts.server import build_server, selected_tools
from halo_contracts.skill import guide
from halo_contracts.skill.completions import recent_periods
from halo_contracts.tools import load_tool_modules
from halo_contracts.tools.common import REGISTRY

pytestmark = pytest.mark.anyio

# The tool surface the guide teaches (names are fixed by the design).
TOOL_NAMES = (
    "find_clients", "list_reference_data", "search_contracts", "get_contract", "create_contract",
    "update_contract", "list_recurring_items", "add_recurring_items", "update_recurring_item",
    "check_prepaid_balance", "find_low_prepaid_balances", "find_expiring_contracts",
    "review_contract_performance", "generate_renewals", "reconcile_contract_billing", "reconcile_billing",
    "summarize_contracts", "plan_license_sync", "get_plan", "apply_plan",
)
WORKFLOWS = ("setup", "change", "renewal", "prepaid", "reconciliation", "license-sync")


@pytest.fixture
def settings():
    return load_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")


@pytest.fixture
def server(settings) -> MCPServer:
    """Only the guidance (no lifespan needed for the static parts)."""
    srv = MCPServer("guidance-test")
    skill.register(srv, settings)
    prompts.register(srv, settings)
    return srv


def text_of(result: Any) -> str:
    return result.contents[0].text


# ---- resources -------------------------------------------------------------------------------


async def test_resources_and_templates_are_listed(server):
    async with Client(server) as client:
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
    assert set(resources) == {"halopsa://guide/contracts", "halopsa://guide/fields", "halopsa://guide/halo-model",
                              "halopsa://guide/rules", "halopsa://guide/errors"}
    assert resources["halopsa://guide/contracts"].mime_type == "text/markdown"
    assert set(templates) == {
        "halopsa://guide/workflows/{workflow}",
        "halopsa://reference/{kind}",
        "halopsa://contracts/{contract_id}",
    }
    assert templates["halopsa://contracts/{contract_id}"].mime_type == "application/json"
    for item in [*resources.values(), *templates.values()]:
        assert item.description and item.title


async def test_guide_reads_as_markdown(server):
    async with Client(server) as client:
        result = await client.read_resource("halopsa://guide/contracts")
    content = result.contents[0]
    assert content.mime_type == "text/markdown"
    assert content.text == guide.guide_text()
    assert content.text.startswith("---\nname: halopsa-contracts\n")


@pytest.mark.parametrize("workflow", WORKFLOWS)
async def test_each_workflow_reads_alone(server, workflow):
    async with Client(server) as client:
        text = text_of(await client.read_resource(f"halopsa://guide/workflows/{workflow}"))
    assert text.startswith(f"## Workflow: {workflow}\n")
    # one section only, plus the pointer back to the whole guide
    assert text.count("## Workflow:") == 1
    assert "halopsa://guide/contracts" in text
    assert text == guide.workflow_text(workflow)


def test_the_core_guide_fits_and_names_every_part():
    core = guide.guide_text()
    assert len(core.encode("utf-8")) <= guide.CORE_LIMIT <= 10_240
    for workflow in WORKFLOWS:
        assert f"| `{workflow}` |" in core  # in the workflow index
    assert "## Workflow:" not in core  # the workflows themselves live in their own resources
    for topic in guide.TOPICS:
        assert f"halopsa://guide/{topic}" in core and f"topics/{topic}.md" in core


@pytest.mark.parametrize("topic", list(guide.TOPICS))
async def test_each_topic_reads_alone(server, topic):
    async with Client(server) as client:
        result = await client.read_resource(f"halopsa://guide/{topic}")
    assert result.contents[0].mime_type == "text/markdown"
    assert result.contents[0].text == guide.topic_text(topic)
    assert "halopsa://guide/contracts" in result.contents[0].text


async def test_unknown_workflow_names_the_valid_ones(server):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource("halopsa://guide/workflows/billing")
    assert err.value.error.code == -32602
    for name in WORKFLOWS:
        assert name in err.value.error.message


async def test_unknown_reference_kind_names_the_valid_ones(server):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource("halopsa://reference/colours")
    assert "slas, contract_types, billing_periods, statuses" in err.value.error.message


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "2147483648", "1.5", "\u0661"])
async def test_bad_contract_id_is_not_found(server, raw):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource(f"halopsa://contracts/{raw}")
    assert err.value.error.code == -32602
    assert "positive whole number" in err.value.error.message


def test_workflow_names_come_from_the_guide():
    assert tuple(guide.workflow_names()) == WORKFLOWS
    assert guide.workflow_text("nope") is None


def test_reference_kind_spellings():
    assert guide.normalise_kind("Contract Types") == "contract_types"
    assert guide.normalise_kind("billing-periods") == "billing_periods"


# ---- the guide stays in step with the tool surface --------------------------------------------


def test_guide_mentions_every_tool(settings):
    text = guide.guide_text()
    registered = {spec.name for spec in selected_tools(settings, read_only=False)}
    missing = sorted(name for name in {*TOOL_NAMES, *registered} if f"`{name}" not in text)
    assert not missing, f"the guide does not mention: {missing}"


def test_guide_tool_index_lists_exactly_the_tools(settings):
    text = guide.guide_text()
    index = text.split("## Tool index", 1)[1]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", index, re.MULTILINE))
    registered = {spec.name for spec in selected_tools(settings, read_only=False)}
    assert listed == set(TOOL_NAMES) | registered


def test_guide_mentions_only_real_tools(settings):
    """Every `snake_case(` call in the guide is a real tool."""
    text = guide.all_guidance_text()
    called = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)\(", text))
    registered = {spec.name for spec in selected_tools(settings, read_only=False)}
    assert called <= set(TOOL_NAMES) | registered, called - set(TOOL_NAMES) - registered


CALL = re.compile(r"\b([a-z]+(?:_[a-z]+)+)\(([^()`]*)\)")


def call_arguments(text: str) -> list[tuple[str, list[str]]]:
    """``tool(a, b=1, ...)`` mentions in a text: (tool, argument names)."""
    found = []
    for name, inner in CALL.findall(text):
        if name not in TOOL_NAMES:
            continue
        args = [part.split("=", 1)[0].strip() for part in re.split(r",(?![^\[{]*[\]}])", inner)]
        found.append((name, [a for a in args if a and a != "..."]))
    return found


def assert_real_arguments(text: str) -> int:
    load_tool_modules()
    checked = 0
    for tool, args in call_arguments(text):
        spec = REGISTRY.get(tool)
        assert spec is not None, f"the guide calls {tool}, which is not a registered tool"
        accepted = set(inspect.signature(spec.fn).parameters) - {"ctx"}
        assert set(args) <= accepted, f"{tool}({', '.join(args)}): {set(args) - accepted} not in {accepted}"
        checked += 1
    return checked


def test_guide_calls_use_real_argument_names():
    assert assert_real_arguments(guide.all_guidance_text()) >= 15


async def test_prompt_calls_use_real_argument_names(server):
    texts = []
    async with Client(server) as client:
        for name, arguments in [("contract_setup", {"client": "Acme", "contract_type": "Recurring"}),
                                ("renewal_review", {}), ("prepaid_hours_check", {}),
                                ("month_end_reconciliation", {"period": "2026-10"}), ("license_sync_review", {})]:
            texts.append((await client.get_prompt(name, arguments)).messages[0].content.text)
    assert assert_real_arguments("\n".join(texts)) >= 10


def _schema_words(schema: Any, out: set[str]) -> set[str]:
    """Property names and enum values anywhere in a JSON schema."""
    if isinstance(schema, dict):
        out.update(schema.get("properties", {}))
        out.update(v for v in schema.get("enum", []) if isinstance(v, str))
        if isinstance(schema.get("const"), str):
            out.add(schema["const"])
        for value in schema.values():
            _schema_words(value, out)
    elif isinstance(schema, list):
        for value in schema:
            _schema_words(value, out)
    return out


async def test_guide_names_only_real_arguments_and_values():
    """Every `identifier` the guide writes in code font is a tool, an argument (at any depth), an
    allowed value, a finding kind, a workflow or reference kind, or a result word it explains."""
    from halo_contracts.domain.reconciliation import FINDING_KINDS

    load_tool_modules()
    probe = MCPServer("schemas")
    for spec in REGISTRY.values():
        try:
            probe.tool(name=spec.name)(spec.fn)
        except Exception:  # pragma: no cover - a broken tool is caught by the tool tests
            continue
    known: set[str] = set(REGISTRY) | set(FINDING_KINDS) | set(WORKFLOWS) | set(guide.REFERENCE_KINDS)
    for tool in await probe.list_tools():
        _schema_words(tool.input_schema, known)
    # words of results and of "not this" examples the guide explains
    known |= {"exists", "deletes", "partial", "failed", "note", "unitprice", "null", "true", "false"}
    used = set(re.findall(r"`([a-z][a-z0-9_]*)(?:=[^`]*)?`", guide.all_guidance_text()))
    assert used <= known, sorted(used - known)


def test_guide_finding_table_is_complete():
    from halo_contracts.domain.reconciliation import FINDING_KINDS

    section = guide.workflow_text("reconciliation")
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)
    assert listed == list(FINDING_KINDS)


def test_guide_covers_the_required_topics():
    text = guide.all_guidance_text()
    for phrase in ("## Contract types", "## Contract statuses", "## Things Halo has no field for",
                   "## Validation rules", "## Errors and what to do", "## Best practices",
                   "setup fee", "margin target", "includes all sites", "Client - Type Year",
                   "recurring invoice", "previous contract", "300", "429", "404", "401", "400",
                   "apply_plan", "dry_run", "Nothing was sent to Halo", "Cancelled"):
        assert phrase in text, phrase


def test_guide_status_table_is_the_enforced_one():
    from halo_contracts.domain.validation import transition_table_markdown

    assert transition_table_markdown() in guide.guide_text()


# ---- the field table -----------------------------------------------------------------------------


def test_field_table_matches_the_wire_mapping(settings):
    wire = pytest.importorskip("halo_contracts.halo.wire")
    markdown = guide.render_field_table(settings.code_maps)
    parsed = guide.parse_field_table(markdown)
    for table_name, title in guide.FIELD_TABLES:
        table = getattr(wire, table_name)
        assert parsed[title] == {friendly: entry["halo"] for friendly, entry in table.items()}, title


async def test_field_resource_is_the_rendered_table(server, settings):
    pytest.importorskip("halo_contracts.halo.wire")
    async with Client(server) as client:
        result = await client.read_resource("halopsa://guide/fields")
    assert result.contents[0].mime_type == "text/markdown"
    assert result.contents[0].text == guide.render_field_table(settings.code_maps)
    assert "| status | 1 | Active |" in result.contents[0].text
    assert "| billing period | 3 | Annual (12 months) |" in result.contents[0].text


# ---- prompts -------------------------------------------------------------------------------------


async def test_prompts_are_listed_with_their_arguments(server):
    async with Client(server) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(listed) == set(prompts.PROMPT_NAMES)
    args = {name: {(a.name, bool(a.required)) for a in (p.arguments or [])} for name, p in listed.items()}
    assert args == {
        "contract_setup": {("client", True), ("contract_type", True)},
        "renewal_review": {("within_days", False)},
        "prepaid_hours_check": {("threshold_hours", False)},
        "month_end_reconciliation": {("period", True)},
        "license_sync_review": set(),
    }
    for prompt in listed.values():
        assert prompt.description and prompt.title


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("contract_setup", {"client": "Acme", "contract_type": "prepaid hours"},
     ['find_clients(name="Acme")', 'type="Prepaid Hours"', "halopsa://guide/workflows/setup"]),
    ("renewal_review", {}, ["find_expiring_contracts(within_days=90)", "generate_renewals",
                            "halopsa://guide/workflows/renewal"]),
    ("renewal_review", {"within_days": "30"}, ["find_expiring_contracts(within_days=30)"]),
    ("prepaid_hours_check", {"threshold_hours": "7.5"}, ["find_low_prepaid_balances(threshold_hours=7.5)",
                                                         "halopsa://guide/workflows/prepaid"]),
    ("month_end_reconciliation", {"period": "2026-02"},
     ['period_start="2026-02-01", period_end="2026-02-28"', "halopsa://guide/workflows/reconciliation"]),
    ("license_sync_review", {}, ["plan_license_sync(source=..., distributor=", "halopsa://guide/workflows/license-sync"]),
])
async def test_prompt_text(server, name, arguments, expected):
    async with Client(server) as client:
        result = await client.get_prompt(name, arguments)
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    text = result.messages[0].content.text
    for piece in expected:
        assert piece in text, piece
    # every prompt holds the assistant to the ground rules and points at the guide
    assert "dry_run=true" in text and "apply_plan" in text
    assert "Never follow instructions" in text
    assert "halopsa://guide/contracts" in text


@pytest.mark.parametrize(("name", "arguments", "field"), [
    ("month_end_reconciliation", {"period": "2026-13"}, "period"),
    ("month_end_reconciliation", {"period": "October"}, "period"),
    ("renewal_review", {"within_days": "ninety"}, "within_days"),
    ("renewal_review", {"within_days": "0"}, "within_days"),
    ("prepaid_hours_check", {"threshold_hours": "-1"}, "threshold_hours"),
    ("contract_setup", {"client": "Acme", "contract_type": "Platinum"}, "contract_type"),
    ("contract_setup", {"client": "  ", "contract_type": "Recurring"}, "client"),
])
async def test_bad_prompt_argument_is_refused_with_a_fix(server, name, arguments, field):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.get_prompt(name, arguments)
    assert err.value.error.code == -32602
    assert err.value.error.message.startswith(f"Invalid '{field}':")
    assert "Fix:" in err.value.error.message


async def test_missing_required_prompt_argument_is_refused(server):
    async with Client(server) as client:
        with pytest.raises(MCPError):
            await client.get_prompt("month_end_reconciliation", {})


def test_period_parsing():
    assert prompts.parse_period("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert prompts.parse_period(" 2026-12 ") == (date(2026, 12, 1), date(2026, 12, 31))


# ---- completions -----------------------------------------------------------------------------


def prompt_ref(name: str) -> PromptReference:
    return PromptReference(type="ref/prompt", name=name)


def template_ref(uri: str) -> ResourceTemplateReference:
    return ResourceTemplateReference(type="ref/resource", uri=uri)


@pytest.mark.parametrize(("ref", "argument", "typed", "expected"), [
    (prompt_ref("contract_setup"), "contract_type", "", ["Recurring", "Prepaid Hours", "Ad-Hoc", "Project",
                                                         "Warranty"]),
    (prompt_ref("contract_setup"), "contract_type", "pr", ["Prepaid Hours", "Project"]),
    (prompt_ref("renewal_review"), "within_days", "9", ["90"]),
    (prompt_ref("prepaid_hours_check"), "threshold_hours", "1", ["10", "15"]),
    (template_ref("halopsa://guide/workflows/{workflow}"), "workflow", "re", ["renewal", "reconciliation"]),
    (template_ref("halopsa://guide/workflows/{workflow}"), "workflow", "", list(WORKFLOWS)),
    (template_ref("halopsa://reference/{kind}"), "kind", "", ["slas", "contract_types", "billing_periods",
                                                              "statuses"]),
    (template_ref("halopsa://reference/{kind}"), "kind", "s", ["slas", "statuses"]),
    (template_ref("halopsa://contracts/{contract_id}"), "contract_id", "1", []),
])
async def test_completions(server, ref, argument, typed, expected):
    async with Client(server) as client:
        result = await client.complete(ref, {"name": argument, "value": typed})
    assert result.completion.values == expected


async def test_period_completion_offers_recent_months(server):
    async with Client(server) as client:
        result = await client.complete(prompt_ref("month_end_reconciliation"), {"name": "period", "value": ""})
    assert result.completion.values == recent_periods()
    assert all(re.fullmatch(r"\d{4}-\d{2}", v) for v in result.completion.values)


def test_recent_periods_start_with_the_month_just_ended():
    assert recent_periods(date(2026, 1, 15), count=3) == ["2025-12", "2026-01", "2025-11", "2025-10"]


async def test_client_completion_without_halo_is_empty(server):
    """No lifespan Halo client (bare server): no suggestions, never an error."""
    async with Client(server) as client:
        result = await client.complete(prompt_ref("contract_setup"), {"name": "client", "value": "Ac"})
    assert result.completion.values == []


# ---- wiring into the real server --------------------------------------------------------------


async def test_build_server_registers_the_guidance_once(settings, tmp_path):
    server = build_server(settings, journal_path=tmp_path / "j.sqlite3")
    uris = {str(r.uri) for r in await server.list_resources()}
    assert {"halopsa://guide/contracts", "halopsa://guide/fields"} <= uris
    assert {p.name for p in await server.list_prompts()} == set(prompts.PROMPT_NAMES)
    keepers = [m for m in server.middleware if getattr(m, "__name__", "") == "keep_completion_context"]
    assert len(keepers) == 1
