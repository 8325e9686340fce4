"""``halopsa-contracts-mcp doctor``: is this installation ready to talk to Halo?

Checks the configuration, fetches a token, probes read access to every Halo endpoint the
tools use (one small request each), shows the code maps and the request budget in force,
and prints a pass/fail line per check with the fix for each failure. Secrets are masked.
Exit status: 0 when every check passes, 1 otherwise, 2 for a configuration error.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
import httpx2

from halo_contracts import __version__
from halo_contracts.config import ConfigError, Settings, load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.errors import (
    HaloAuthError,
    HaloError,
    HaloNotFound,
    HaloPermissionError,
    HaloRateLimited,
    HaloUnavailable,
)
from halo_contracts.halo.secrets import mask as mask_secrets
from halo_contracts.halo.secrets import protect_logs

# What each tool area needs: (label, probe name understood by HaloClient.probe, who needs it)
PROBES: list[tuple[str, str, str]] = [
    ("Clients", "clients", "find_clients, licence sync"),
    ("SLAs", "slas", "list_reference_data, contract SLA checks"),
    ("Lookups", "lookups", "list_reference_data"),
    ("Contracts", "contracts", "every contract tool"),
    ("Recurring invoices", "recurring_invoices", "recurring items, renewals, reconciliation"),
    ("Invoices", "invoices", "reconciliation, performance review"),
    ("Ticket actions (time)", "actions", "prepaid balances, reconciliation"),
    ("Tickets", "tickets", "performance review"),
    ("Prepay ledger", "prepay", "prepaid balances"),
    ("Software licences", "licences", "licence sync"),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def mask(value: str | None) -> str:
    """Whether a secret is set, and its length; never any of its characters."""
    return f"set ({len(value)} chars)" if value else "(not set)"


def _token_fix(exc: HaloError, settings: Settings) -> str:
    """The fix for a failed token request: a 404 or an unreachable host is the address, not
    the credentials."""
    where = ("HALO_AUTH_URL (the authorisation server; the token URL is HALO_AUTH_URL + /token)" if settings.auth_url
             else "HALO_BASE_URL (the token URL is HALO_BASE_URL + /auth/token; set HALO_AUTH_URL if the "
                  "authorisation server lives elsewhere)")
    if exc.status == 404:
        return f"No token endpoint at that address: check {where}."
    if isinstance(exc, HaloUnavailable):
        return f"The host did not answer: check {where}, DNS, proxy and firewall."
    return _fix_for(exc, "the API")


def _tried(method: str, url: str) -> str:
    return f" (tried {method} {url})"


def _probe_url(settings: Settings, probe: str) -> str:
    path = getattr(HaloClient, "PROBES", {}).get(probe, ("",))[0]
    return f"{settings.base_url}/api{path}"


def _postgres_journal_detail(url: str) -> tuple[bool, str]:
    """The PostgreSQL journal: reachable? (connects only; creates no table). Names host and
    database, never the password."""
    import psycopg

    from halo_contracts.plans.journal_pg import describe_url

    where = describe_url(url)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            version = conn.info.server_version
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        if password:
            first = first.replace(str(password), "***")
        return False, f"PostgreSQL at {where}: cannot connect ({first})"
    return True, (f"PostgreSQL at {where} (server {version // 10000}; shared by every server process "
                  "using it; tables created when the server first starts)")


def _journal_detail(settings: Settings) -> tuple[bool, str]:
    """Where the journal lives, checked without creating anything."""
    if settings.journal_url is not None:
        return _postgres_journal_detail(settings.journal_url.get_secret_value())
    path = settings.resolved_data_dir / "journal.sqlite3"
    if path.exists():
        return os.access(path, os.W_OK), f"{path} (exists{'' if os.access(path, os.W_OK) else ', NOT writable'})"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    writable = parent.is_dir() and os.access(parent, os.W_OK)
    return writable, (f"{path} (created when the server first starts)" if writable
                      else f"{path} (cannot be created: {parent} is not a writable directory)")


def _sqlite_journal_problem(settings: Settings) -> Check | None:
    """An existing SQLite journal that cannot be read (damaged) or written, as a failed check
    with its own fix; read-only, so doctor changes nothing."""
    from halo_contracts.plans.journal_guard import check_writable, from_sqlite_error

    if settings.journal_url is not None:
        return None
    path = settings.resolved_data_dir / "journal.sqlite3"
    if not path.is_file():
        return None
    try:
        check_writable(str(path))
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except Exception as exc:  # JournalUnavailable from the checks, or sqlite3.Error from reading
        message = str(exc) if isinstance(exc, ConfigError) else str(from_sqlite_error(str(path), exc))
        problem, _, fix = message.partition(" Fix: ")
        return Check("Journal", False, problem, fix.removesuffix(" Nothing was sent to Halo."))
    return None


def _fix_for(exc: HaloError, area: str) -> str:
    if isinstance(exc, HaloAuthError):
        return ("Check HALO_CLIENT_ID and HALO_CLIENT_SECRET (Halo: Configuration > Integrations > Halo API > "
                "Applications), and HALO_TENANT for Halo-hosted tenants.")
    if isinstance(exc, HaloPermissionError):
        return (f"Give the API application and its login agent read access to {area} "
                "(scope 'all' or the matching read: scope, and the agent's role permissions).")
    if isinstance(exc, HaloNotFound):
        return "The endpoint is missing: check HALO_BASE_URL points at the Halo web app (not /api)."
    if isinstance(exc, HaloUnavailable):
        return "Check HALO_BASE_URL, DNS, proxy and firewall: the host did not answer."
    if isinstance(exc, HaloRateLimited):
        return "Halo's request limit is exhausted right now; wait five minutes and run doctor again."
    return "Retry; if it persists, check Halo's status and the server log."


async def _sign_in_check(settings: Settings, transport: httpx2.AsyncBaseTransport | None) -> Check:
    """With HALO_OAUTH_ISSUER: the sign-in settings hold together and the issuer's keys load."""
    from halo_contracts.oauth import JwksCache, KeySetError, sign_in

    try:
        signin = sign_in(settings)
    except ConfigError as exc:
        return Check("Sign-in", False, str(exc), "Set HALO_PUBLIC_URL to this server's URL as clients reach it.")
    assert signin is not None
    keys = JwksCache(settings.oauth_issuer or "", settings.oauth_jwks_url, transport=transport,
                     timeout=settings.timeout)
    try:
        count = await keys.load()
    except KeySetError as exc:
        return Check("Sign-in", False, f"the issuer's keys could not be read: {exc}",
                     "Check HALO_OAUTH_ISSUER (exactly the tokens' iss) or set HALO_OAUTH_JWKS_URL.")
    return Check("Sign-in", count > 0,
                 f"issuer {settings.oauth_issuer}, {count} signing key(s) from {keys.jwks_url}; tokens must carry "
                 f"audience {signin.resource_url} and scope halo.read (halo.write for writes)",
                 "" if count else "The key set has no signing keys this server can use.")


async def _checks(settings: Settings, transport: httpx2.AsyncBaseTransport | None,
                  idp_transport: httpx2.AsyncBaseTransport | None = None) -> list[Check]:
    checks: list[Check] = []
    codes = settings.code_maps
    secret = settings.client_secret
    checks.append(Check("Configuration", True,
                        f"base URL {settings.base_url}, client id {mask(settings.client_id)}, "
                        f"secret {mask(secret.get_secret_value() if secret else None)}, "
                        f"tenant {settings.tenant or '(none)'}, scope '{settings.scope}', "
                        f"read-only {settings.read_only}"))
    checks.append(Check("Code maps", True,
                        "status " + ", ".join(f"{c}={n}" for c, n in codes.statuses.items())
                        + "; type " + ", ".join(f"{c}={n}" for c, n in codes.types.items())
                        + "; billing period " + ", ".join(f"{c}={p.name}/{p.months}m"
                                                          for c, p in codes.billing_periods.items())))
    shared = ("every process using the PostgreSQL journal" if settings.journal_url is not None
              else "every request of this process")
    checks.append(Check("Request budget", True,
                        f"{settings.rate_limit_requests} requests per {settings.rate_limit_seconds:g} s "
                        f"(rolling window, shared by {shared})"))
    journal_ok, journal_detail = _journal_detail(settings)
    journal_fix = ("Check HALO_JOURNAL_URL (host, port, database, user, password) and that the server "
                   "accepts connections from here." if settings.journal_url is not None
                   else "Set HALO_DATA_DIR to a directory this user can write.")
    checks.append(_sqlite_journal_problem(settings)
                  or Check("Journal", journal_ok, journal_detail, "" if journal_ok else journal_fix))

    if settings.oauth_issuer:
        checks.append(await _sign_in_check(settings, idp_transport))
    async with HaloClient(settings, transport=transport) as halo:
        try:
            await halo.authenticate()
            checks.append(Check("Token", True, f"fetched from {settings.token_url}"))
        except HaloError as exc:
            checks.append(Check("Token", False, f"{exc}{_tried('POST', settings.token_url)}",
                                _token_fix(exc, settings)))
            return checks
        for label, probe, needed_by in PROBES:
            try:
                count = await halo.probe(probe)
                shown = f"{count} record(s)" if count is not None else "readable"
                checks.append(Check(f"Read {label}", True, f"{shown} (needed by {needed_by})"))
            except HaloError as exc:
                checks.append(Check(f"Read {label}", False,
                                    f"{exc}{_tried('GET', _probe_url(settings, probe))} (needed by {needed_by})",
                                    _fix_for(exc, label.lower())))
    return checks


def _masked(checks: list[Check], settings: Settings) -> list[Check]:
    """Every check with the client secret masked in any form a server may have echoed it."""
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    return [Check(c.name, c.ok, mask_secrets(c.detail, [secret], client_id=settings.client_id),
                  mask_secrets(c.fix, [secret], client_id=settings.client_id)) for c in checks]


def render(checks: list[Check], out: TextIO) -> None:
    for check in checks:
        mark = "PASS" if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}", file=out)
        if not check.ok and check.fix:
            print(f"       fix: {check.fix}", file=out)
    failed = sum(not c.ok for c in checks)
    print(f"\n{len(checks) - failed} passed, {failed} failed", file=out)


def run_doctor(*, sandbox: bool = False, settings: Settings | None = None,
               transport: httpx2.AsyncBaseTransport | None = None, out: TextIO | None = None,
               idp_transport: httpx2.AsyncBaseTransport | None = None) -> int:
    out = out or sys.stdout
    print(f"halopsa-contracts-mcp {__version__} doctor{' (sandbox)' if sandbox else ''}", file=out)
    try:
        if settings is None:
            if sandbox:
                from halo_contracts.cli import sandbox_settings, sandbox_transport

                settings = sandbox_settings()
                _app, transport = sandbox_transport()
            else:
                settings = load_settings()
                settings.require_credentials()
    except ConfigError as exc:
        print(f"[FAIL] Configuration: {exc}", file=out)
        return 2
    protect_logs(settings.client_secret.get_secret_value() if settings.client_secret else None, settings.client_id)
    checks: list[Any] = _masked(anyio.run(_checks, settings, transport, idp_transport), settings)
    render(checks, out)
    return 0 if all(c.ok for c in checks) else 1
