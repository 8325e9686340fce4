"""The guidance is reachable from an independent client: the MCP Inspector CLI over stdio,
against ``halopsa-contracts-mcp --sandbox``.

Runs only when the Inspector is installed (``npm install @modelcontextprotocol/inspector``
in the repository or globally; CI does that). ``npx --no-install`` never downloads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "halo_contracts", "--sandbox"]


def _inspector() -> list[str] | None:
    """``npx --no-install mcp-inspector --cli`` when it is installed for this repository (npx
    resolves it from ``node_modules``); else an ``mcp-inspector`` on PATH; else None."""
    npx = shutil.which("npx")
    local = any((base / "node_modules" / ".bin" / "mcp-inspector").exists() for base in (ROOT, *ROOT.parents))
    if npx and local:
        return [npx, "--no-install", "mcp-inspector", "--cli"]
    on_path = shutil.which("mcp-inspector")
    return [on_path, "--cli"] if on_path else None


INSPECTOR = _inspector()
if INSPECTOR is None:
    pytest.skip("the MCP Inspector CLI is not installed (npm install @modelcontextprotocol/inspector)",
                allow_module_level=True)


def inspect(tmp_path: Path, *args: str) -> tuple[int, Any, str]:
    """Run one Inspector request; (exit code, parsed JSON result or None, stderr)."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "HALO_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "home").mkdir(exist_ok=True)
    done = subprocess.run([*INSPECTOR, "-q", "--format", "json", *args, "--", *SERVER], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    try:
        payload = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and "result" in payload:
        payload = payload["result"]
    return done.returncode, payload, done.stderr


def test_resources_are_listed(tmp_path):
    code, result, err = inspect(tmp_path, "--method", "resources/list")
    assert code == 0, err
    uris = {r["uri"] for r in result["resources"]}
    assert {"halopsa://guide/contracts", "halopsa://guide/fields"} <= uris


def test_resource_templates_are_listed(tmp_path):
    code, result, err = inspect(tmp_path, "--method", "resources/templates/list")
    assert code == 0, err
    templates = {t["uriTemplate"] for t in result["resourceTemplates"]}
    assert {"halopsa://guide/workflows/{workflow}", "halopsa://reference/{kind}",
            "halopsa://contracts/{contract_id}"} <= templates


@pytest.mark.parametrize(("uri", "expected"), [
    ("halopsa://guide/contracts", "## Workflow: license-sync"),
    ("halopsa://guide/fields", "| friendly name | Halo field | note |"),
    ("halopsa://guide/workflows/renewal", "## Workflow: renewal"),
    ("halopsa://reference/statuses", '"kind": "statuses"'),
    ("halopsa://reference/slas", '"kind": "slas"'),
])
def test_resources_read(tmp_path, uri, expected):
    code, result, err = inspect(tmp_path, "--method", "resources/read", "--uri", uri)
    assert code == 0, err
    assert expected in result["contents"][0]["text"]


def test_unknown_workflow_is_an_error(tmp_path):
    code, _result, err = inspect(tmp_path, "--method", "resources/read", "--uri", "halopsa://guide/workflows/nope")
    assert code == 1, err


def test_prompts_are_listed(tmp_path):
    code, result, err = inspect(tmp_path, "--method", "prompts/list")
    assert code == 0, err
    assert {p["name"] for p in result["prompts"]} == {
        "contract_setup", "renewal_review", "prepaid_hours_check", "month_end_reconciliation", "license_sync_review"}


def test_prompt_get_with_arguments(tmp_path):
    code, result, err = inspect(tmp_path, "--method", "prompts/get", "--prompt-name", "month_end_reconciliation",
                                "--prompt-args", "period=2026-10")
    assert code == 0, err
    text = result["messages"][0]["content"]["text"]
    assert 'period_start="2026-10-01", period_end="2026-10-31"' in text


def test_prompt_get_with_a_bad_argument(tmp_path):
    code, _result, err = inspect(tmp_path, "--method", "prompts/get", "--prompt-name", "month_end_reconciliation",
                                 "--prompt-args", "period=October")
    assert code == 1, err
