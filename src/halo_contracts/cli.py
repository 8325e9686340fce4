"""Command line: serve (stdio | http), --sandbox, sandbox, doctor, demo.

stdout belongs to the MCP protocol when serving over stdio: everything human goes to
stderr (logging), except the output of ``sandbox``, ``doctor`` and ``demo``, which are
not MCP servers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from halo_contracts import __version__
from halo_contracts.config import ConfigError, Settings, load_settings
from halo_contracts.logs import quiet_libraries

log = logging.getLogger("halo_contracts")

SANDBOX_BASE_URL = "http://sandbox.invalid"

DESCRIPTION = """\
An MCP server that lets an AI assistant run an MSP's HaloPSA contract book: search,
create and change contracts, manage their recurring billing lines, check prepaid-hour
balances, generate renewals, reconcile billing and sync distributor licence counts.
Every write is previewed as a plan first and validated before it reaches Halo.

Without a command it serves MCP over stdio (what Claude Desktop and most clients use).
Set HALO_BASE_URL, HALO_CLIENT_ID and HALO_CLIENT_SECRET for your Halo tenant, or add
--sandbox to try everything against a built-in Halo sandbox with demo data.
"""

EPILOG = """\
examples:
  halopsa-contracts-mcp --sandbox                 stdio server on the built-in sandbox
  halopsa-contracts-mcp                           stdio server on your tenant (HALO_* set)
  halopsa-contracts-mcp --transport http          HTTP on 127.0.0.1:8000/mcp (needs HALO_MCP_TOKENS)
  halopsa-contracts-mcp doctor                    check configuration and Halo access
  halopsa-contracts-mcp demo                      guided tour on the sandbox, no setup needed
  halopsa-contracts-mcp sandbox --port 8080       run the Halo sandbox on its own
"""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_libraries()


def sandbox_settings(**overrides: Any) -> Settings:
    """Settings that point the client at the embedded sandbox (demo credentials)."""
    from halo_contracts.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    values: dict[str, Any] = {"base_url": SANDBOX_BASE_URL, "client_id": DEMO_CLIENT_ID,
                              "client_secret": DEMO_CLIENT_SECRET, "tenant": None, "auth_url": None,
                              "allow_insecure_http": True}  # the sandbox is reached in-process
    values.update(overrides)
    return load_settings(**values)


def sandbox_transport(**config: Any) -> tuple[Any, Any]:
    """(app, transport): an in-process Halo sandbox with demo data and a transport to it."""
    from halo_contracts.sandbox import SandboxConfig, create_app, transport

    app = create_app(SandboxConfig(**config))
    return app, transport(app)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halopsa-contracts-mcp", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                        help="stdio (default) or streamable HTTP")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP: port (default 8000)")
    parser.add_argument("--path", default="/mcp", help="HTTP: endpoint path (default /mcp)")
    parser.add_argument("--stateless", action="store_true",
                        help="HTTP: stateless mode for several replicas behind a load balancer")
    parser.add_argument("--sandbox", action="store_true",
                        help="use the built-in Halo sandbox with demo data (no credentials needed)")
    parser.add_argument("--read-only", action="store_true", help="expose read tools only; apply_plan refuses")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (to stderr)")

    sub = parser.add_subparsers(dest="command", metavar="command")
    _add_sandbox_parser(sub)

    doc = sub.add_parser("doctor", help="check configuration, credentials and read access to Halo")
    doc.add_argument("--sandbox", action="store_true", help="check against the built-in sandbox")

    ver = sub.add_parser("verify", help="ask the tenant what no Halo document settles and report it "
                                        "(reads only unless --write)")
    ver.add_argument("--sandbox", action="store_true", help="verify against the built-in sandbox")
    ver.add_argument("--report", default=None, metavar="FILE",
                     help="also write the JSON report (sandbox --quirks FILE plays it back)")
    ver.add_argument("--write", action="store_true",
                     help="also write test records in one client's book (needs --client-id), then remove them")
    ver.add_argument("--client-id", type=int, default=None, metavar="N", help="the client --write writes into")
    ver.add_argument("--cleanup", action="store_true",
                     help="remove what earlier verify runs left (journal; with --client-id also by prefix in Halo)")
    ver.add_argument("--yes", action="store_true", help="do not ask before writing")

    sub.add_parser("demo", help="guided tour of the main jobs on the sandbox, printed as a transcript")
    return parser


SANDBOX_DESCRIPTION = """\
Run the embedded Halo API sandbox on its own, on loopback: a Halo-like API with a generated
MSP book (clients, contracts of every type and status, recurring lines, prepaid blocks,
invoices with billing discrepancies, time, tickets, licences), for trying this server or
other Halo tools without a tenant. It prints its base URL and the demo credentials.

Faults, rate limit and strict mode can be set at start-up (options below) and changed while
it runs: GET/POST /_sandbox/faults reads or sets error_rate, latency [min, max],
drop_after_write, drop_next_writes, rate_limit, rate_window and token_lifetime as JSON;
GET /_sandbox/log lists every request; POST /_sandbox/deny {"path_prefix": ...} answers 401
there (a missing permission); POST /_sandbox/expire-tokens expires every token.
"""

SANDBOX_EPILOG = """\
examples:
  halopsa-contracts-mcp sandbox --port 8080
  halopsa-contracts-mcp sandbox --data halo.sqlite --clients 200 --contracts 2000 --seed 3
  halopsa-contracts-mcp sandbox --strict --rate-limit 60 --rate-window 60
  halopsa-contracts-mcp sandbox --error-rate 0.1 --latency 0.05,0.4 --drop-after-write 0.05
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number between 0 and 1 (e.g. 0.1)") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1 (e.g. 0.1 for one call in ten)")
    return value


def _latency(text: str) -> tuple[float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or parts[0] < 0 or parts[1] < parts[0]:
        raise argparse.ArgumentTypeError(f"'{text}' is not SECONDS or MIN,MAX seconds (e.g. 0.05,0.4)")
    return parts[0], parts[1]


def _add_sandbox_parser(sub: Any) -> None:
    sb = sub.add_parser("sandbox", help="run the Halo API sandbox on its own (for trying other Halo tools)",
                        description=SANDBOX_DESCRIPTION, epilog=SANDBOX_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sb.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    sb.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    data = sb.add_argument_group("data and credentials")
    data.add_argument("--data", default=None, metavar="FILE",
                      help="SQLite file that keeps the sandbox's data between runs (default: in memory); "
                           "demo data is generated only when the file is empty")
    data.add_argument("--clients", type=int, default=None, help="demo clients to generate (default 25)")
    data.add_argument("--contracts", type=int, default=None, help="demo contracts to generate (default 120)")
    data.add_argument("--seed", type=int, default=None, help="random seed of the demo data (default 7)")
    data.add_argument("--today", default=None, metavar="YYYY-MM-DD",
                      help="the sandbox's today, for reproducible expiry windows (default: the real date)")
    data.add_argument("--client-id", default=None, help="client id the token URL accepts (default sandbox-client)")
    data.add_argument("--client-secret", default=None,
                      help="client secret the token URL accepts (default sandbox-secret)")
    behaviour = sb.add_argument_group("rate limit, tokens and strict mode")
    behaviour.add_argument("--rate-limit", type=int, default=None, metavar="N",
                           help="requests per rolling window before Halo's 429 (no Retry-After) (default 300)")
    behaviour.add_argument("--rate-window", type=float, default=None, metavar="SECONDS",
                           help="length of the rolling window (default 300)")
    behaviour.add_argument("--token-lifetime", type=int, default=None, metavar="SECONDS",
                           help="expires_in of the tokens it issues (default 3600)")
    behaviour.add_argument("--strict", action="store_true",
                           help="answer 400 for any posted field or query parameter Halo's OpenAPI description "
                                "lacks for that endpoint (default: ignore them, as Halo does)")
    faults = sb.add_argument_group("faults (also settable at run time via /_sandbox/faults)")
    faults.add_argument("--error-rate", type=_fraction, default=None, metavar="P",
                        help="share of /api calls answered 500/502/503 with nothing stored (0..1, default 0)")
    faults.add_argument("--latency", type=_latency, default=None, metavar="MIN,MAX",
                        help="added delay per call in seconds, uniform between MIN and MAX (default 0)")
    faults.add_argument("--drop-after-write", type=_fraction, default=None, metavar="P",
                        help="probability a write is stored but its answer is lost mid-way (0..1, default 0)")
    sb.add_argument("--quirks", default=None, metavar="FILE",
                    help="play a tenant's behaviour: a `verify --report` file (see docs/sandbox.md)")


SANDBOX_OPTIONS = ("clients", "contracts", "seed", "client_id", "client_secret", "rate_limit", "rate_window",
                   "token_lifetime", "error_rate", "latency", "drop_after_write", "quirks")


def _run_sandbox(args: argparse.Namespace) -> int:
    from datetime import date

    from halo_contracts.sandbox.standalone import serve as serve_sandbox

    options: dict[str, Any] = {k: getattr(args, k) for k in SANDBOX_OPTIONS if getattr(args, k) is not None}
    if args.today:
        try:
            options["today"] = date.fromisoformat(args.today)
        except ValueError:
            raise ConfigError(f"--today: '{args.today}' is not a date. Example: --today 2026-10-15") from None
    serve_sandbox(port=args.port, host=args.host, data=args.data, strict=args.strict, **options)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "sandbox":
            return _run_sandbox(args)
        if args.command == "doctor":
            from halo_contracts.doctor import run_doctor

            return run_doctor(sandbox=args.sandbox)
        if args.command == "verify":
            from halo_contracts.verify_cmd import Options, run_verify

            return run_verify(sandbox=args.sandbox, report_path=args.report,
                              options=Options(write=args.write, cleanup=args.cleanup, client_id=args.client_id,
                                              yes=args.yes))
        if args.command == "demo":
            from halo_contracts.demo import run_demo

            return run_demo()
        return serve(args)
    except ConfigError as exc:
        print(f"halopsa-contracts-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def serve(args: argparse.Namespace) -> int:
    from halo_contracts.server import build_server, check_journal

    transport = None
    journal_path: Path | None = None
    if args.sandbox:
        settings = sandbox_settings(**({"read_only": True} if args.read_only else {}))
        _app, transport = sandbox_transport()
        # The sandbox lives in memory, so its plans must not outlive it.
        journal_path = Path(tempfile.mkdtemp(prefix="halo-sandbox-")) / "journal.sqlite3"
        log.info("Using the built-in Halo sandbox with demo data (nothing leaves this process).")
    else:
        settings = load_settings(**({"read_only": True} if args.read_only else {}))
        settings.require_credentials()

    check_journal(settings, journal_path)  # a journal that cannot be used stops here, with the fix
    if args.transport == "stdio":
        server = build_server(settings, transport, journal_path=journal_path)
        server.run("stdio")
        return 0

    from halo_contracts.http import serve_http

    return serve_http(settings, transport=transport, journal_path=journal_path, host=args.host, port=args.port,
                      path=args.path, stateless=args.stateless)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
