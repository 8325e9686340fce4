"""What sign-in costs per HTTP request, and how often the identity provider is asked.

One HTTP app (in-process ASGI, stateless mode, so every request is authenticated afresh)
serves with sign-in on and a static token configured as well. A local identity provider (an
ASGI app with OpenID metadata and a JWKS, RSA-2048 keys) issues the JWTs. Requests are
interleaved round-robin:

* ``static`` — a ``tools/list`` call with a static bearer token (tried first, constant time);
* ``jwt`` — the same call with one signed-in person's JWT (signature, issuer, audience, expiry,
  scopes checked on every request; keys cached);
* ``jwt, new token each time`` — a fresh JWT per request (as when many people sign in).

Reports the median time of each, its ratio to ``static``, and how many requests reached the
identity provider in the whole run (discovery + key set, then the 5-minute cache).

    python bench/signin.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from halo_contracts.cli import sandbox_settings, sandbox_transport
from halo_contracts.http import build_http_app
from test_oauth import PUBLIC_URL, IdentityProvider

STATIC = "static-bench-token-0123456789abcdef"
BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
              "io.modelcontextprotocol/clientCapabilities": {}}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}


async def run(rounds: int) -> dict[str, float]:
    idp = IdentityProvider()
    _app, transport = sandbox_transport()
    settings = sandbox_settings(oauth_issuer=idp.issuer, public_url=PUBLIC_URL, mcp_tokens=STATIC)
    with tempfile.TemporaryDirectory() as tmp:
        asgi = build_http_app(settings, transport=transport, journal_path=Path(tmp) / "j.sqlite3", stateless=True,
                              idp_transport=idp.transport)
        person = idp.token()
        times: dict[str, list[float]] = {"static": [], "jwt": [], "jwt, new token each time": []}
        async with asgi.router.lifespan_context(asgi), httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000", timeout=30) as c:
            async def call(kind: str, token: str) -> None:
                started = time.perf_counter()
                r = await c.post("/mcp", json=BODY, headers={**HEADERS, "Authorization": f"Bearer {token}"})
                times[kind].append(time.perf_counter() - started)
                assert r.status_code == 200, (kind, r.status_code, r.text[:200])

            for _ in range(5):  # warm up (and fill the key cache)
                await call("jwt", person)
            times["jwt"].clear()
            for i in range(rounds):
                await call("static", STATIC)
                await call("jwt", person)
                await call("jwt, new token each time", idp.token(sub=f"user-{i}"))
    base = statistics.median(times["static"])
    result = {}
    for kind, values in times.items():
        med = statistics.median(values)
        result[kind] = med
        print(f"{kind:28s} median {med * 1000:7.2f} ms   x{med / base:5.2f} of static")
    print(f"identity provider requests in the whole run ({3 * rounds + 5} calls): {len(idp.requests)} "
          f"({', '.join(idp.requests)})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
