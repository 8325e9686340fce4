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
                 "check_prepaid_balance", "find_expiring_contracts", "generate_renewals", "reconcile_billing",
                 "billing_rules", "plan_distributor_charges"):
        assert f"-> {tool}(" in text
    assert "nothing was sent to Halo" in text  # the deliberate mistake was refused
    assert "Done:" in text


def test_console_script_module_runs():
    proc = subprocess.run([sys.executable, "-m", "halo_contracts", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_sandbox_help_describes_every_option_and_the_fault_rate_and_strict_settings(capsys):
    from halo_contracts.cli import _build_parser

    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    sub = next(a for a in _build_parser()._actions if a.dest == "command").choices["sandbox"]
    for action in sub._actions:
        if action.dest != "help":
            assert action.help and len(action.help) > 15, action.dest
            assert all(flag in out for flag in action.option_strings)
    for words in ("/_sandbox/faults", "error_rate", "latency", "drop_after_write", "rate_limit", "rate_window",
                  "429", "--strict", "OpenAPI", "/_sandbox/deny", "token_lifetime"):
        assert words in out, words


@pytest.mark.parametrize("args", [["--error-rate", "2"], ["--latency", "0.5,0.1"], ["--drop-after-write", "x"]])
def test_sandbox_refuses_bad_fault_values(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", *args])
    assert exit_.value.code == 2
    assert args[0] in capsys.readouterr().err


@pytest.mark.e2e
def test_sandbox_options_reach_the_running_sandbox():
    import httpx2

    proc = subprocess.Popen([sys.executable, "-m", "halo_contracts", "sandbox", "--port", "0", "--rate-limit", "7",
                             "--rate-window", "30", "--token-lifetime", "120", "--error-rate", "0.25",
                             "--latency", "0,0.01", "--drop-after-write", "0.5", "--strict", "--clients", "3",
                             "--contracts", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("Halo API sandbox listening on "), first + proc.stderr.read()
        base = first.rsplit(" ", 1)[-1].strip()
        lines = [proc.stdout.readline() for _ in range(7)]
        assert any("7 requests per 30 s" in line and "strict on" in line for line in lines), lines
        faults = httpx2.get(f"{base}/_sandbox/faults", timeout=10).json()
        assert faults["rate_limit"] == 7 and faults["rate_window"] == 30 and faults["token_lifetime"] == 120
        assert faults["error_rate"] == 0.25 and faults["latency"] == [0, 0.01] and faults["drop_after_write"] == 0.5
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()
