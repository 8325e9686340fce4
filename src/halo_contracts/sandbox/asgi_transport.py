"""In-process transport: an httpx2 ASGI transport that behaves like a network for dropped answers."""

from __future__ import annotations

import httpx2

from .app import ConnectionDropped


class SandboxTransport(httpx2.ASGITransport):
    """``httpx2.ASGITransport`` that turns :class:`ConnectionDropped` into ``httpx2.ReadError``.

    With it an in-process client sees the same thing as over a socket when the sandbox cuts
    the connection after storing a write: a transport error and no answer.
    """

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx2.ReadError("connection closed by the Halo sandbox before the answer", request=request) from exc


def transport(app: object) -> SandboxTransport:
    """Transport for ``httpx2.AsyncClient(transport=transport(app), base_url="http://sandbox")``."""
    return SandboxTransport(app=app)  # type: ignore[arg-type]
