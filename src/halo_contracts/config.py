"""Settings: environment variables ``HALO_*`` and an optional TOML file (``HALO_CONFIG``).

Every problem is reported as one :class:`ConfigError` that names the variable and shows
an example value. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

APP_NAME = "halopsa-contracts-mcp"

DEFAULT_STATUS_CODES: dict[int, str] = {1: "Active", 2: "Pending", 3: "Expired", 4: "Cancelled", 5: "On Hold"}
DEFAULT_TYPE_CODES: dict[int, str] = {
    1: "Recurring",
    2: "Prepaid Hours",
    3: "Ad-Hoc",
    4: "Project",
    5: "Warranty",
}
DEFAULT_BILLING_PERIOD_CODES: dict[int, tuple[str, int]] = {
    1: ("Monthly", 1),
    2: ("Quarterly", 3),
    3: ("Annual", 12),
}

# Examples shown in error messages, per setting.
EXAMPLES: dict[str, str] = {
    "base_url": "https://acme.halopsa.com",
    "client_id": "3f1c9a52-…",
    "client_secret": "(the secret shown once when the API application was created)",
    "tenant": "acme",
    "auth_url": "https://acme.halopsa.com/auth",
    "scope": "all",
    "read_only": "true",
    "rate_limit": "300/300",
    "data_dir": "/var/lib/halopsa-contracts-mcp",
    "journal_url": "postgresql://halo@db.internal:5432/halo_mcp",
    "status_codes": "1:Active,2:Pending,3:Expired,4:Cancelled,5:On Hold",
    "type_codes": "1:Recurring,2:Prepaid Hours,3:Ad-Hoc,4:Project,5:Warranty",
    "billing_period_codes": "1:Monthly:1,2:Quarterly:3,3:Annual:12",
    "cost_rate": "55.00",
    "target_margin": "35",
    "timeout": "30",
    "tools": "contracts,recurring,get_plan",
    "disabled_tools": "license-sync",
    "mcp_tokens": "token-one,readonly:token-two",
    "mcp_token_file": "/etc/halopsa-contracts-mcp/tokens",
    "allowed_hosts": "mcp.example.com,mcp.example.com:*",
    "allowed_origins": "https://mcp.example.com",
    "oauth_issuer": "https://login.example.com/realms/msp",
    "oauth_jwks_url": "https://login.example.com/realms/msp/protocol/openid-connect/certs",
    "public_url": "https://mcp.example.com/mcp",
    "allow_insecure_http": "false",
    "mcp_max_sessions_per_token": "16",
    "mcp_session_idle_seconds": "300",
    "feed_max_rows": "10000",
    "feed_max_bytes": "2000000",
    "confirm_writes": "destructive",
}


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is this machine: 127.0.0.0/8, ::1 or localhost."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(Exception):
    """A missing or malformed setting. The message names the variable and an example."""


@dataclass(frozen=True)
class BillingPeriod:
    code: int
    name: str
    months: int


@dataclass(frozen=True)
class CodeMaps:
    """The tenant's numeric codes for contract status, type and billing period."""

    statuses: dict[int, str]
    types: dict[int, str]
    billing_periods: dict[int, BillingPeriod]

    @staticmethod
    def _find(mapping: dict[int, str], name: str) -> int | None:
        wanted = name.strip().casefold()
        for code, value in mapping.items():
            if value.casefold() == wanted:
                return code
        return None

    def status_code(self, name: str) -> int | None:
        return self._find(self.statuses, name)

    def type_code(self, name: str) -> int | None:
        return self._find(self.types, name)

    def billing_period_code(self, name: str) -> int | None:
        return self._find({c: p.name for c, p in self.billing_periods.items()}, name)

    def months_of(self, frequency: str | None) -> int | None:
        if frequency is None:
            return None
        code = self.billing_period_code(frequency)
        return None if code is None else self.billing_periods[code].months

    def status_name(self, code: int | None) -> str | None:
        if code is None:
            return None
        return self.statuses.get(code, f"code {code}")

    def type_name(self, code: int | None) -> str | None:
        if code is None:
            return None
        return self.types.get(code, f"code {code}")

    def billing_period_name(self, code: int | None) -> str | None:
        if code is None or code == 0:
            return None
        period = self.billing_periods.get(code)
        return period.name if period else f"code {code}"

    @property
    def status_names(self) -> list[str]:
        return list(self.statuses.values())

    @property
    def type_names(self) -> list[str]:
        return list(self.types.values())

    @property
    def billing_period_names(self) -> list[str]:
        return [p.name for p in self.billing_periods.values()]


def _parse_code_map(value: Any, *, with_months: bool) -> dict[int, Any]:
    """Accept a dict, JSON text or ``"1:Active,2:Pending"`` (``"1:Monthly:1"`` with months)."""
    result: dict[int, Any] = {}
    for code, entry in _code_map_items(value, with_months=with_months):
        try:
            key = int(code)
        except (TypeError, ValueError):
            raise ValueError(f"code '{code}' is not a whole number") from None
        result[key] = _period_entry(key, entry) if with_months else str(entry).strip()
        if not (result[key][0] if with_months else result[key]):
            raise ValueError(f"code {key}: the name is empty")
    if not result:
        raise ValueError("the map is empty")
    return result


def _code_map_items(value: Any, *, with_months: bool) -> list[tuple[Any, Any]]:
    """The (code, entry) pairs of a dict, JSON text or the short ``code:name[:months]`` text."""
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, str):
        raise ValueError("expected a mapping of code to name")
    text = value.strip()
    if text.startswith("{"):
        return list(json.loads(text).items())
    return [_short_code_item(part, with_months=with_months)
            for part in filter(None, (p.strip() for p in text.split(",")))]


def _short_code_item(part: str, *, with_months: bool) -> tuple[str, Any]:
    """One ``code:name`` (or ``code:name:months``) piece of the short form."""
    pieces = [p.strip() for p in part.split(":")]
    if with_months:
        if len(pieces) != 3:
            raise ValueError(f"'{part}' is not code:name:months")
        return pieces[0], [pieces[1], pieces[2]]
    if len(pieces) != 2:
        raise ValueError(f"'{part}' is not code:name")
    return pieces[0], pieces[1]


def _period_entry(key: int, entry: Any) -> tuple[str, int]:
    """A billing period's ``[name, months]`` (or ``{"name", "months"}``) as (name, months >= 1)."""
    if isinstance(entry, (list, tuple)) and len(entry) == 2:
        name, months = entry
    elif isinstance(entry, dict):
        name, months = entry.get("name"), entry.get("months")
    else:
        raise ValueError(f"code {key}: expected [name, months]")
    months_int = int(months)
    if months_int < 1:
        raise ValueError(f"code {key}: months must be at least 1")
    return str(name).strip(), months_int


def _split_csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the optional TOML file named by ``HALO_CONFIG`` (keys without the prefix)."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = os.environ.get("HALO_CONFIG")
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                raise ConfigError(f"HALO_CONFIG: no file at '{p}'. Example: HALO_CONFIG=~/.config/{APP_NAME}.toml")
            try:
                raw = tomllib.loads(p.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"HALO_CONFIG: '{p}' is not valid TOML ({exc}).") from None
            section = raw.get("halo", raw)
            self._data = {str(k).lower().removeprefix("halo_"): v for k, v in section.items()}

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """All configuration of the server. Environment wins over the TOML file."""

    model_config = SettingsConfigDict(env_prefix="HALO_", extra="ignore", validate_default=True)

    base_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    tenant: str | None = None
    auth_url: str | None = None
    scope: str = "all"
    read_only: bool = False
    rate_limit: str = "300/300"
    data_dir: Path | None = None
    journal_url: SecretStr | None = None
    status_codes: Any = Field(default_factory=lambda: dict(DEFAULT_STATUS_CODES))
    type_codes: Any = Field(default_factory=lambda: dict(DEFAULT_TYPE_CODES))
    billing_period_codes: Any = Field(default_factory=lambda: dict(DEFAULT_BILLING_PERIOD_CODES))
    lookup_status_id: int = 71
    lookup_type_id: int = 72
    lookup_billing_period_id: int = 73
    # how the ticket list's "date opened" search is spelled: "documented" (as Halo's 2026 document's
    # example spells it) or "field" (as the ticket field itself is spelled); `verify` tells which
    ticket_date_spelling: Literal["documented", "field"] = "documented"
    # what POST /RecurringInvoice/Lines does to a header's other lines: "add" keeps them; "replace"
    # drops them, so the lines already there are sent along (by id) and kept; `verify --write` tells
    lines_post: Literal["add", "replace"] = "add"
    cost_rate: Decimal = Decimal("55")
    target_margin: Decimal = Decimal("35")
    timeout: float = 30.0
    tools: Any = None
    disabled_tools: Any = None
    mcp_tokens: SecretStr | None = None
    mcp_token_file: Path | None = None
    allowed_hosts: Any = None
    allowed_origins: Any = None
    oauth_issuer: str | None = None
    oauth_jwks_url: str | None = None
    public_url: str | None = None
    allow_insecure_http: bool = False
    mcp_max_sessions_per_token: int = Field(default=16, ge=1)
    mcp_session_idle_seconds: float = Field(default=300, gt=0)
    feed_max_rows: int = Field(default=10_000, ge=1)
    feed_max_bytes: int = Field(default=2_000_000, ge=1)
    # When apply_plan asks the person first (MCP elicitation): destructive plans only, every
    # plan with writes, or never.
    confirm_writes: Literal["destructive", "always", "never"] = "destructive"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @field_validator("base_url", "auth_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.strip().rstrip("/")
        if not (v.startswith("https://") or v.startswith("http://")):
            raise ValueError("must start with https://")
        if v.lower().endswith("/api"):
            v = v[:-4]
        return v

    @field_validator("oauth_issuer", "oauth_jwks_url", "public_url")
    @classmethod
    def _sign_in_url(cls, v: str | None) -> str | None:
        """Sign-in URLs: https, or http on a loopback host (a local identity provider)."""
        if v is None or v.strip() == "":
            return None
        v = v.strip()
        parsed = urlsplit(v)
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if not parsed.hostname or not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
            raise ValueError("must be an https:// URL (http:// only on a loopback host)")
        if parsed.query or parsed.fragment:
            raise ValueError("must not carry a query or fragment")
        return v

    @field_validator("journal_url")
    @classmethod
    def _journal_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        if not v.get_secret_value().strip().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave it unset for the SQLite journal in data_dir)")
        return SecretStr(v.get_secret_value().strip())

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        parts = str(v).split("/")
        try:
            n, s = int(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise ValueError("expected requests/seconds") from None
        if len(parts) != 2 or n < 1 or s <= 0:
            raise ValueError("expected requests/seconds with both numbers above zero")
        return v

    @field_validator("status_codes", "type_codes")
    @classmethod
    def _codes(cls, v: Any) -> dict[int, str]:
        return _parse_code_map(v, with_months=False)

    @field_validator("billing_period_codes")
    @classmethod
    def _periods(cls, v: Any) -> dict[int, tuple[str, int]]:
        return _parse_code_map(v, with_months=True)

    @field_validator("tools", "disabled_tools", "allowed_hosts", "allowed_origins")
    @classmethod
    def _csv(cls, v: Any) -> list[str] | None:
        return _split_csv(v) or None

    @field_validator("target_margin")
    @classmethod
    def _margin(cls, v: Decimal) -> Decimal:
        if not Decimal(-100) <= v <= Decimal(100):
            raise ValueError("must be a percentage between -100 and 100")
        return v

    @model_validator(mode="after")
    def _timeout(self) -> Settings:
        if self.timeout <= 0:
            raise ValueError("timeout: must be above zero")
        return self

    @model_validator(mode="after")
    def _cleartext(self) -> Settings:
        if self.allow_insecure_http:
            return self
        for name in ("base_url", "auth_url"):
            url = getattr(self, name)
            if url and url.lower().startswith("http://") and not is_loopback_url(url):
                raise ValueError(
                    f"{name}: plain http:// to a host that is not this machine would send the client secret and "
                    f"tokens in cleartext; use https://, or set HALO_ALLOW_INSECURE_HTTP=true only for a trusted "
                    f"network")
        return self

    # ----- derived values -------------------------------------------------------------

    @property
    def rate_limit_requests(self) -> int:
        return int(self.rate_limit.split("/")[0])

    @property
    def rate_limit_seconds(self) -> float:
        return float(self.rate_limit.split("/")[1])

    @property
    def code_maps(self) -> CodeMaps:
        return CodeMaps(
            statuses=dict(self.status_codes),
            types=dict(self.type_codes),
            billing_periods={c: BillingPeriod(c, n, m) for c, (n, m) in self.billing_period_codes.items()},
        )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    @property
    def token_url(self) -> str:
        base = self.auth_url or (f"{self.base_url}/auth" if self.base_url else "")
        url = f"{base}/token"
        if self.tenant:
            url += f"?tenant={self.tenant}"
        return url

    def require_credentials(self) -> None:
        """Raise a ConfigError naming every missing Halo credential."""
        missing = [
            name
            for name, value in (
                ("base_url", self.base_url),
                ("client_id", self.client_id),
                ("client_secret", self.client_secret),
            )
            if not value
        ]
        if missing:
            lines = [f"HALO_{m.upper()} is not set. Example: HALO_{m.upper()}={EXAMPLES[m]}" for m in missing]
            raise ConfigError(
                "Halo credentials are missing:\n  " + "\n  ".join(lines)
                + "\n(Or run with --sandbox to try the server on the embedded Halo sandbox.)"
            )


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment, the TOML file and overrides; one clear error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            if field == "settings" and ":" in err.get("msg", ""):
                field = err["msg"].split(":")[0].split()[-1]
            msg = err.get("msg", "invalid").removeprefix("Value error, ").removeprefix(f"{field}: ")
            got = err.get("input")
            secret = field in ("client_secret", "mcp_tokens", "journal_url")
            shown = "" if secret or isinstance(got, dict) else f" (got {got!r})"
            problems.append(
                f"HALO_{field.upper()}: {msg}{shown}. Example: HALO_{field.upper()}={EXAMPLES.get(field, '…')}"
            )
        raise ConfigError("Configuration problem:\n  " + "\n  ".join(problems)) from None
