"""Which libraries may log what: even at ``-v`` (DEBUG) the log never carries tool results or
Halo data.

The HTTP clients log every request line with its query (``httpx2``; ``httpcore2`` traces each
exchange), ``sse_starlette`` logs every streamed chunk (whole tool results) at DEBUG, and the MCP
SDK logs failed tools' messages (which may quote Halo) at INFO. They are held at WARNING unless
the logger was given a level explicitly.
"""

from __future__ import annotations

import logging

QUIET_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore", "sse_starlette", "mcp", "uvicorn.access")


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Hold the libraries above at ``level`` unless a level was already chosen for them."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
