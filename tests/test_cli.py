"""The command line: --help, --version, the guided demo, configuration errors."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from halo_contracts import __version__
from halo_contracts.cli import main
from halo_contracts.demo import run_demo


def test_help_explains_the_server(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for words in ("HaloPSA contract book", "--sandbox", "doctor", "demo", "HALO_BASE_URL", "--transport"):
        assert words in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_missing_credentials_is_a_clear_error_on_stderr(monkeypatch, capsys):
    for var in ("HALO_BASE_URL", "HALO_CLIENT_ID", "HALO_CLIENT_SECRET", "HALO_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout belongs to the MCP protocol
    assert "HALO_BASE_URL is not set" in captured.err and "--sandbox" in captured.err


def test_demo_walks_through_the_main_jobs():
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    for tool in ("find_clients", "search_contracts", "create_contract", "apply_plan", "add_recurring_items",
                 "check_prepaid_balance", "find_expiring_contracts", "generate_renewals", "reconcile_billing"):
        assert f"-> {tool}(" in text
    assert "nothing was sent to Halo" in text  # the deliberate mistake was refused
    assert "Done:" in text


def test_console_script_module_runs():
    proc = subprocess.run([sys.executable, "-m", "halo_contracts", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and __version__ in proc.stdout
