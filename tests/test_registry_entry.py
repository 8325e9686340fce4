"""server.json is a valid MCP registry entry (schema 2025-12-11) that agrees with the package.

The schema is a copy of the registry's own (modelcontextprotocol/registry,
internal/validators/schemas/2025-12-11.json, commit e361b5f), kept in tests/data.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from halo_contracts import __version__
from halo_contracts.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "data" / "server.schema.2025-12-11.json").read_text(encoding="utf-8"))
ENTRY = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _validate(entry: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '/'}: {e.message}" for e in validator.iter_errors(entry)]


def test_server_json_is_valid_against_the_2025_12_11_schema():
    assert SCHEMA["$id"].endswith("/2025-12-11/server.schema.json")
    assert ENTRY["$schema"] == SCHEMA["$id"]
    assert _validate(ENTRY) == []


@pytest.mark.parametrize("breakage", ["long_description", "no_name", "latest", "bad_name"])
def test_the_schema_check_can_fail(breakage):
    entry = json.loads(json.dumps(ENTRY))
    if breakage == "long_description":
        entry["description"] = "x" * 101
    elif breakage == "no_name":
        del entry["name"]
    elif breakage == "latest":
        entry["packages"][0]["version"] = "latest"
    else:
        entry["name"] = "no-slash-here"
    assert _validate(entry)


def test_entry_agrees_with_the_package_and_readme():
    assert len(ENTRY["description"]) <= 100
    assert ENTRY["version"] == __version__
    name = PYPROJECT["project"]["name"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"mcp-name: {re.escape(ENTRY['name'])}\b", readme), "the registry needs the mcp-name line"
    repo = ENTRY["repository"]
    assert repo["source"] == "github" and repo["url"] == PYPROJECT["project"]["urls"]["Repository"]
    owner = ENTRY["name"].split("/")[0].removeprefix("io.github.")
    assert repo["url"].startswith(f"https://github.com/{owner}/")  # the io.github namespace is the repo owner
    for package in ENTRY["packages"]:
        assert package["identifier"] == name and package["version"] == __version__


def test_both_transports_are_declared_and_their_settings_exist():
    transports = {p["transport"]["type"]: p for p in ENTRY["packages"]}
    assert set(transports) == {"stdio", "streamable-http"}
    http = transports["streamable-http"]
    assert http["transport"]["url"].endswith("/mcp")
    args = {a["name"]: a for a in http["packageArguments"]}
    assert args["--transport"]["value"] == "http" and "{port}" in http["transport"]["url"]
    fields = set(Settings.model_fields)
    for package in ENTRY["packages"]:
        for var in package["environmentVariables"]:
            assert var["name"].startswith("HALO_") and var["name"][5:].lower() in fields, var["name"]
            if "SECRET" in var["name"] or "TOKENS" in var["name"]:
                assert var.get("isSecret") is True
