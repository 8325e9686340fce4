"""Masking secrets in text that is shown: error messages, doctor output, log records.

A server echoing a credential back rarely echoes it raw: it may be URL-encoded (as in the
token request's form body), JSON-escaped, or base64 inside a Basic header. :func:`mask`
replaces every one of those forms with ``***``. Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words


def _hex_lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _b64_forms(raw: str) -> set[str]:
    data = raw.encode("utf-8")
    forms = set()
    for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return forms


def _text_forms(secret: str) -> set[str]:
    """The secret raw, URL-encoded (quote and quote_plus, either hex case, and twice) and
    JSON-escaped (ASCII-only or not)."""
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret), quote(quote_plus(secret), safe="")}
    forms = {secret, *encoded, *(_hex_lower(e) for e in encoded)}
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return forms


@lru_cache(maxsize=256)
def _pattern(secrets: tuple[str, ...], client_id: str | None) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_LENGTH:
            continue
        forms |= _text_forms(secret)
        forms |= _b64_forms(secret)
        if client_id:
            # a Basic header: base64 of id:secret, raw or form-encoded first (RFC 6749 2.3.1)
            forms |= _b64_forms(f"{client_id}:{secret}")
            forms |= _b64_forms(f"{quote_plus(client_id)}:{quote_plus(secret)}")
    forms = {f for f in forms if len(f) >= MIN_LENGTH}
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


def mask(text: str, secrets: Iterable[str | None], *, client_id: str | None = None) -> str:
    """``text`` with every form of every secret replaced by ``***``. ``client_id`` adds the
    base64 of ``client_id:secret`` (a Basic authorization header)."""
    pattern = _pattern(tuple(sorted({s for s in secrets if s})), client_id or None)
    return text if pattern is None else pattern.sub(MASK, text)


# ---- log records ----------------------------------------------------------------------------

_lock = threading.Lock()
_known: dict[str, str | None] = {}  # secret -> its client id
_installed = False


def _mask_known(text: str) -> str:
    with _lock:
        pairs = list(_known.items())
    for client_id in {c for _, c in pairs}:
        text = mask(text, [s for s, c in pairs if c == client_id], client_id=client_id)
    return text


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler to report
        return
    clean = _mask_known(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = _mask_known(logging.Formatter().formatException(record.exc_info))


def protect_logs(secret: str | None, client_id: str | None = None) -> None:
    """Mask ``secret`` (every form :func:`mask` knows) in every log record created from now
    on, whichever logger or handler it goes to."""
    global _installed
    if not secret or len(secret) < MIN_LENGTH:
        return
    with _lock:
        _known[secret] = client_id
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
