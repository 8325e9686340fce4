"""The public tool surface: one snapshot per tool of ``tools/list`` and the strictness of every schema.

Each registered tool has tests/snapshots/tools/<name>.json: its title, description, input and
output schemas and annotations. Any change to the public interface shows up as a readable
per-tool diff. After an intended change refresh them with:

    UPDATE_SNAPSHOTS=1 pytest tests/tools/test_tools_snapshot.py
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from halo_contracts.config import load_settings
from halo_contracts.server import build_server
from halo_contracts.tools.common import REGISTRY

SNAPSHOTS = Path(__file__).parents[1] / "snapshots" / "tools"

# Fixed settings: the surface must not depend on the environment running the tests.
SETTINGS = dict(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret",
                read_only=False, tools=None, disabled_tools=None)


@functools.cache
def _listing() -> list[Any]:
    server = build_server(load_settings(**SETTINGS))

    async def go():
        return await server.list_tools()

    return anyio.run(go)


def _surface() -> dict[str, Any]:
    tools = {}
    for t in _listing():
        ann = t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None
        tools[t.name] = {"title": t.title, "description": t.description, "annotations": ann,
                         "inputSchema": t.input_schema, "outputSchema": t.output_schema}
    return dict(sorted(tools.items()))


def _text(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True).splitlines(keepends=True)


def test_tools_list_snapshot():
    current = _surface()
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    stored = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SNAPSHOTS.glob("*.json"))}
    if update or not stored:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        for old in set(stored) - set(current):
            (SNAPSHOTS / f"{old}.json").unlink()
        for name, tool in current.items():
            (SNAPSHOTS / f"{name}.json").write_text(json.dumps(tool, indent=2, sort_keys=True) + "\n",
                                                    encoding="utf-8")
        if not update:
            pytest.fail(f"{SNAPSHOTS} was empty; written now. Review and commit it.")
        return
    if stored == current:
        return
    report: list[str] = []
    added, removed = sorted(set(current) - set(stored)), sorted(set(stored) - set(current))
    if added:
        report.append(f"tools added: {', '.join(added)}\n")
    if removed:
        report.append(f"tools removed: {', '.join(removed)}\n")
    for name in sorted(set(current) & set(stored)):
        if current[name] != stored[name]:
            report.append(f"\n=== {name} changed ===\n")
            report.extend(difflib.unified_diff(_text(stored[name]), _text(current[name]),
                                               fromfile=f"snapshot/{name}", tofile=f"now/{name}", n=2))
    pytest.fail("The public tool surface changed (refresh with UPDATE_SNAPSHOTS=1 if intended):\n"
                + "".join(report), pytrace=False)


def test_one_snapshot_file_per_tool():
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == set(REGISTRY)


def test_published_schemas_are_compact():
    """No pydantic titles; nullable types as a type list, never anyOf [X, null]; output schemas
    describe the envelope (top-level fields), nested rows loosely typed."""

    def walk(node: Any, path: str) -> list[str]:
        found = []
        if isinstance(node, dict):
            if isinstance(node.get("title"), str):
                found.append(f"{path}: title")
            branches = node.get("anyOf") or []
            if len(branches) == 2 and {"type": "null"} in branches:
                found.append(f"{path}: anyOf [X, null]")
            for key, value in node.items():
                found += walk(value, f"{path}.{key}") if key != "properties" else [
                    p for name, prop in value.items() for p in walk(prop, f"{path}.{name}")]
        elif isinstance(node, list):
            found += [p for n, v in enumerate(node) for p in walk(v, f"{path}[{n}]")]
        return found

    problems = []
    for t in _listing():
        problems += walk(t.input_schema, f"{t.name}.input")
        out = t.output_schema
        assert out is not None, f"{t.name} has no outputSchema"
        problems += walk(out, f"{t.name}.output")
        assert "$defs" not in out, t.name
        for name, prop in out["properties"].items():
            assert "properties" not in prop and "$ref" not in prop, f"{t.name}.{name} is not loosely typed"
            items = prop.get("items", {})
            assert "properties" not in items and "$ref" not in items, f"{t.name}.{name} rows are not loose"
        assert t.description == t.description.strip() and "\n    " not in t.description, t.name
    assert not problems, problems


def test_snapshot_covers_every_registered_tool():
    names = {t.name for t in _listing()}
    assert names == set(REGISTRY), sorted(set(REGISTRY) ^ names)


# ---- strictness of every schema --------------------------------------------------------------


def _objects(schema: Any, path: str = "$") -> list[tuple[str, dict]]:
    """Every object schema inside ``schema`` (not the root), with a path for messages."""
    found: list[tuple[str, dict]] = []
    if isinstance(schema, dict):
        if path != "$" and (schema.get("type") == "object" or "properties" in schema):
            found.append((path, schema))
        for key, value in schema.items():
            found.extend(_objects(value, f"{path}.{key}"))
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            found.extend(_objects(value, f"{path}[{n}]"))
    return found


def test_every_object_argument_forbids_unknown_keys():
    problems = []
    for t in _listing():
        for where, obj in _objects(t.input_schema):
            if obj.get("additionalProperties") is not False and "properties" in obj:
                problems.append(f"{t.name}: {where}")
    assert not problems, "object arguments that accept unknown keys:\n" + "\n".join(problems)


def _hints(a):
    """(read-only, destructive, idempotent) as a client reads them: a hint left out takes the
    spec's default (false, true, false)."""
    return (bool(a.read_only_hint), a.destructive_hint is not False, bool(a.idempotent_hint))


def test_contract_tool_annotations():
    ann = {t.name: t.annotations for t in _listing()}
    for name in ("search_contracts", "get_contract", "list_recurring_items", "get_plan"):
        assert ann[name].read_only_hint is True and ann[name].open_world_hint is False
    for name in ("create_contract", "add_recurring_items"):
        a = ann[name]
        assert _hints(a) == (False, False, False), name
    for name in ("update_contract", "update_recurring_item"):
        a = ann[name]
        assert _hints(a) == (False, False, True), name
    a = ann["apply_plan"]
    assert _hints(a)[:2] == (False, True) and a.destructive_hint is True  # said, not left to the default
    assert "delete" in {t.name: t for t in _listing()}["apply_plan"].description
    assert not any("delete" in n and "contract" in n for n in ann)  # no contract delete tool


def _placeholder(schema: dict, defs: dict) -> Any:
    if "$ref" in schema:
        return _placeholder(defs[schema["$ref"].split("/")[-1]], defs)
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _placeholder(option, defs)
    kind = schema.get("type")
    if isinstance(kind, list):  # nullable: ["integer", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "integer":
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if schema.get("format") == "date":
        return "2026-01-01"
    return "x"



@pytest.mark.anyio
async def test_strict_integers_and_unknown_arguments_are_rejected_before_any_request(mcp_client):
    """For every tool: "1" for an integer argument is refused (no coercion), and so is an
    unknown argument; neither reaches Halo."""
    tools = (await mcp_client.list_tools()).tools
    checked = 0
    for t in tools:
        schema = t.input_schema
        props, defs = schema.get("properties", {}), schema.get("$defs", {})
        base = {name: _placeholder(props[name], defs) for name in schema.get("required", [])}
        r = await mcp_client.call_tool(t.name, {**base, "surprise_argument": 1})
        assert r.is_error and "surprise_argument" in r.content[0].text, (t.name, r.content[0].text)
        for name, prop in props.items():
            types = {t for o in prop.get("anyOf", [prop])
                     for t in (o.get("type") if isinstance(o.get("type"), list) else [o.get("type")])}
            if "integer" not in types:
                continue
            r = await mcp_client.call_tool(t.name, {**base, name: "1"})
            assert r.is_error, f"{t.name}.{name} accepted the string '1'"
            assert name in r.content[0].text and "integer" in r.content[0].text, (t.name, r.content[0].text)
            checked += 1
    assert checked >= 10
    assert len(mcp_client.sandbox.log) == 0, [(e.method, e.path) for e in mcp_client.sandbox.log]


@pytest.mark.anyio
async def test_nested_strict_types(mcp_client):
    for args in ({"contract_id": 1001, "changes": {"sla_id": "1"}},
                 {"contract_id": 1001, "changes": {"end_date": 20260101}},
                 {"contract_id": 1001, "changes": {"value": True}},
                 {"contract_id": "1001", "changes": {"notes": "x"}}):
        r = await mcp_client.call_tool("update_contract", args)
        assert r.is_error, args
    r = await mcp_client.call_tool("add_recurring_items", {"contract_id": 1001, "items": [
        {"description": "x", "quantity": 1, "unit_price": 1, "item_id": "5"}]})
    assert r.is_error and "item_id" in r.content[0].text
    assert len(mcp_client.sandbox.log) == 0
