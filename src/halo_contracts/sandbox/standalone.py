"""Run the sandbox on a loopback port (``halopsa-contracts-mcp sandbox``) or in a background thread."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date

import uvicorn
from starlette.applications import Starlette

from .app import ConnectionDropped, SandboxConfig, create_app
from .quirks import Quirks


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _QuietDrops(logging.Filter):
    """uvicorn logs an injected dropped connection as an application error; say it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ConnectionDropped):
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"fault injection: {record.exc_info[1]}",
                (),
                None,
                None,
            )
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    port: int = 8080,
    host: str = "127.0.0.1",
    data: str | None = None,
    clients: int = 25,
    contracts: int = 120,
    seed: int = 7,
    *,
    strict: bool = False,
    today: date | None = None,
    client_id: str = "sandbox-client",
    client_secret: str = "sandbox-secret",
    rate_limit: int = 300,
    rate_window: float = 300.0,
    token_lifetime: int = 3600,
    error_rate: float = 0.0,
    latency: tuple[float, float] = (0.0, 0.0),
    drop_after_write: float = 0.0,
    quirks: str | None = None,
) -> None:
    """Serve the sandbox until interrupted; prints the base URL and the demo credentials.

    With ``data`` the SQLite file persists between runs; demo data is generated only when the
    file holds no data yet. ``quirks``: a ``verify`` report (or a JSON object of switches) whose
    answers the sandbox plays.
    """
    config = SandboxConfig(
        quirks=Quirks.load(quirks) if quirks else Quirks(),
        db_path=data or ":memory:",
        seed=seed,
        clients=clients,
        contracts=contracts,
        today=today,
        client_id=client_id,
        client_secret=client_secret,
        strict=strict,
        rate_limit=rate_limit,
        rate_window=rate_window,
        token_lifetime=token_lifetime,
        error_rate=error_rate,
        latency=latency,
        drop_after_write=drop_after_write,
    )
    app = create_app(config)
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    sb = app.state.sandbox
    base = _base_url(host, actual)
    print(f"Halo API sandbox listening on {base}", flush=True)
    print(f"  API base URL : {base}/api", flush=True)
    print(f"  token URL    : {base}/auth/token", flush=True)
    print(f"  client_id    : {config.client_id}", flush=True)
    print(f"  client_secret: {config.client_secret}", flush=True)
    print(f"  data         : {data or 'in memory'}; today is {sb.today.isoformat()}", flush=True)
    print(f"  limits       : {config.rate_limit} requests per {config.rate_window:g} s; tokens last "
          f"{config.token_lifetime} s; strict {'on' if config.strict else 'off'}", flush=True)
    print(f"  faults       : error rate {config.error_rate:g}, latency {config.latency[0]:g}-{config.latency[1]:g} s, "
          f"dropped answers after writes {config.drop_after_write:g}", flush=True)
    print(f"  admin        : {base}/_sandbox/faults, {base}/_sandbox/log", flush=True)
    print(f"  quirks       : {json.dumps(config.quirks.to_json())}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        sb.store.close()


@contextlib.contextmanager
def serve_in_thread(app: Starlette, host: str = "127.0.0.1", timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a daemon thread; yields the base URL.

    The server stops when the block exits (bounded by ``timeout`` seconds).
    """
    sock = _bind(host, 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="halo-sandbox")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield _base_url(host, port)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="halo-sandbox", description="Run the Halo API sandbox on loopback.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", default=None, help="SQLite file that persists between runs")
    parser.add_argument("--clients", type=int, default=25)
    parser.add_argument("--contracts", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="reject fields and query names not in Halo's schema")
    parser.add_argument("--quirks", default=None, help="a verify report (JSON) whose tenant behaviour to play")
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.host, args.data, args.clients, args.contracts, args.seed, strict=args.strict,
              quirks=args.quirks)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
