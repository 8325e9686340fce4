"""The guidance is reachable from an independent client: the MCP Inspector CLI over stdio,
against ``halopsa-contracts-mcp --sandbox``.

Runs only when the Inspector is installed, and never downloads it (``npx --no-install``):
either in this repository's ``node_modules`` (``npm install @modelcontextprotocol/inspector``),
or in the directory named by ``MCP_INSPECTOR_DIR`` (where CI installs it), or as an
``mcp-inspector`` on PATH. Otherwise the module is skipped.
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

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "halo_contracts", "--sandbox"]


def _inspector() -> tuple[list[str], Path] | None:
    """(command, working directory) for ``npx --no-install mcp-inspector --cli``, or None."""
    npx = shutil.which("npx")
    candidates = [Path(os.environ["MCP_INSPECTOR_DIR"])] if os.environ.get("MCP_INSPECTOR_DIR") else []
    candidates += [ROOT, *ROOT.parents]
    for base in candidates:
        if npx and (base / "node_modules" / ".bin" / "mcp-inspector").exists():
            return [npx, "--no-install", "mcp-inspector", "--cli"], base
    on_path = shutil.which("mcp-inspector")
    return ([on_path, "--cli"], ROOT) if on_path else None


FOUND = _inspector()
if FOUND is None:
    pytest.skip("the MCP Inspector CLI is not installed (npm install @modelcontextprotocol/inspector)",
                allow_module_level=True)
INSPECTOR, INSPECTOR_CWD = FOUND


def inspect(tmp_path: Path, *args: str) -> tuple[int, Any, str]:
    """Run one Inspector request; (exit code, parsed JSON result or None, stderr)."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "HALO_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "home").mkdir(exist_ok=True)
    done = subprocess.run([*INSPECTOR, "-q", "--format", "json", *args, "--", *SERVER], cwd=INSPECTOR_CWD, env=env,
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
    ("halopsa://guide/contracts", "halopsa://guide/workflows/{workflow}"),
    ("halopsa://guide/rules", "## Validation rules"),
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


def test_modern_protocol_era_reads_the_guide(tmp_path):
    code, result, err = inspect(tmp_path, "--protocol-era", "modern", "--method", "resources/read",
                                "--uri", "halopsa://guide/workflows/setup")
    assert code == 0, err
    assert result["contents"][0]["text"].startswith("## Workflow: setup")
