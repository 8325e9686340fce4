"""HALO_BASE_URL and HALO_AUTH_URL over plain http:// are refused at config load unless the
host is this machine or HALO_ALLOW_INSECURE_HTTP=true: the secret would go out in cleartext."""

from __future__ import annotations

import pytest

from halo_contracts.config import ConfigError, is_loopback_url, load_settings


@pytest.fixture(autouse=True)
def _default_rule(monkeypatch):
    monkeypatch.delenv("HALO_ALLOW_INSECURE_HTTP", raising=False)


@pytest.mark.parametrize("name", ["base_url", "auth_url"])
@pytest.mark.parametrize("url", ["http://acme.halopsa.com", "http://10.0.0.5:8080", "http://127.0.0.1.evil.com",
                                 "http://localhost.evil.com"])
def test_plain_http_to_another_host_is_refused(name, url) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**{"base_url": "https://acme.halopsa.com", name: url})
    text = str(err.value)
    assert f"HALO_{name.upper()}:" in text and "cleartext" in text
    assert "https://" in text and "HALO_ALLOW_INSECURE_HTTP=true" in text


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:8080",
                                 "http://[::1]:8080", "http://sandbox.localhost", "https://acme.halopsa.com"])
def test_loopback_and_https_are_accepted(url) -> None:
    assert load_settings(base_url=url, auth_url=url).base_url == url


def test_the_environment_can_allow_plain_http(monkeypatch) -> None:
    monkeypatch.setenv("HALO_BASE_URL", "http://halo.internal")
    with pytest.raises(ConfigError, match="HALO_BASE_URL"):
        load_settings()
    monkeypatch.setenv("HALO_ALLOW_INSECURE_HTTP", "true")
    assert load_settings().base_url == "http://halo.internal"


def test_is_loopback_url() -> None:
    assert is_loopback_url("http://127.0.0.1") and is_loopback_url("http://[::1]/x")
    assert not is_loopback_url("http://[::2]") and not is_loopback_url("http://example.com")
