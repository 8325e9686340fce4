"""Settings: environment, TOML file, code maps, and one clear error per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from halo_contracts.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("HALO_"):
            monkeypatch.delenv(key)


def test_defaults_and_derived_values(tmp_path):
    s = load_settings(base_url="https://acme.halopsa.com/api/", client_id="id", client_secret="s3cret-value",
                      tenant="acme", data_dir=tmp_path)
    assert s.base_url == "https://acme.halopsa.com"
    assert s.token_url == "https://acme.halopsa.com/auth/token?tenant=acme"
    assert (s.rate_limit_requests, s.rate_limit_seconds) == (300, 300.0)
    codes = s.code_maps
    assert codes.status_code("on hold") == 5
    assert codes.type_name(2) == "Prepaid Hours"
    assert codes.months_of("Quarterly") == 3
    assert codes.type_name(99) == "code 99"
    assert s.resolved_data_dir == tmp_path
    assert "s3cret-value" not in repr(s)


def test_environment_and_code_maps(monkeypatch):
    monkeypatch.setenv("HALO_BASE_URL", "https://x.halopsa.com")
    monkeypatch.setenv("HALO_BILLING_PERIOD_CODES", "1:Monthly:1,4:Six-Monthly:6")
    monkeypatch.setenv("HALO_STATUS_CODES", '{"0": "Active", "7": "Lapsed"}')
    monkeypatch.setenv("HALO_TOOLS", "contracts, get_plan")
    s = load_settings()
    assert s.code_maps.months_of("six-monthly") == 6
    assert s.code_maps.status_name(7) == "Lapsed"
    assert s.tools == ["contracts", "get_plan"]


def test_toml_file(monkeypatch, tmp_path: Path):
    cfg = tmp_path / "halo.toml"
    cfg.write_text('[halo]\nbase_url = "https://toml.halopsa.com"\nrate_limit = "20/2"\nread_only = true\n')
    monkeypatch.setenv("HALO_CONFIG", str(cfg))
    monkeypatch.setenv("HALO_RATE_LIMIT", "10/1")  # the environment wins
    s = load_settings()
    assert s.base_url == "https://toml.halopsa.com"
    assert s.rate_limit == "10/1"
    assert s.read_only is True


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("HALO_RATE_LIMIT", "fast", "HALO_RATE_LIMIT"),
        ("HALO_RATE_LIMIT", "0/300", "HALO_RATE_LIMIT"),
        ("HALO_BASE_URL", "acme.halopsa.com", "https://"),
        ("HALO_STATUS_CODES", "Active", "HALO_STATUS_CODES"),
        ("HALO_BILLING_PERIOD_CODES", "1:Monthly", "code:name:months"),
        ("HALO_TARGET_MARGIN", "250", "HALO_TARGET_MARGIN"),
        ("HALO_READ_ONLY", "perhaps", "HALO_READ_ONLY"),
    ],
)
def test_malformed_setting_names_variable_and_example(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert var in text and "Example:" in text and expected in text


def test_missing_credentials_are_listed_without_secrets(monkeypatch):
    monkeypatch.setenv("HALO_CLIENT_SECRET", "canary-secret-123456")
    s = load_settings()
    with pytest.raises(ConfigError) as err:
        s.require_credentials()
    text = str(err.value)
    assert "HALO_BASE_URL" in text and "HALO_CLIENT_ID" in text
    assert "HALO_CLIENT_SECRET" not in text  # it is set
    assert "canary-secret-123456" not in text
    assert "--sandbox" in text


def test_missing_toml_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HALO_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="HALO_CONFIG"):
        load_settings()
