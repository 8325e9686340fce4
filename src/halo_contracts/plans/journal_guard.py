"""The journal file's failures, in words a person can act on.

A corrupt, read-only or missing journal file, or a data directory that cannot be created,
becomes one :class:`JournalUnavailable` naming the file and the fix, at start-up and during
calls. A journal file deleted or replaced while the server runs is noticed (the path no longer
names the file that was opened: missing, or another device/inode) and every write is refused
until it is back, instead of plans vanishing at the next restart.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from halo_contracts.config import ConfigError

NOTHING_SENT = "Nothing was sent to Halo."


class JournalUnavailable(ConfigError):
    """The journal cannot be used; the message names the file and the fix."""


def _unavailable(path: str, problem: str, fix: str) -> JournalUnavailable:
    return JournalUnavailable(f"The plan journal '{path}' {problem}. Fix: {fix}. {NOTHING_SENT}")


def from_sqlite_error(path: str, exc: BaseException) -> JournalUnavailable:
    """What a SQLite error on the journal file means, and what to do."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                   or "corrupt" in text):
        return _unavailable(path, "is damaged (not a readable SQLite database)",
                            f"move it aside (e.g. mv '{path}' '{path}.broken') and start the server again for a "
                            "new journal, or restore it from a backup")
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return _unavailable(path, "cannot be written (read-only file or directory)",
                            "make the file and its directory writable by the user running the server "
                            "(chmod u+w / chown), or point HALO_DATA_DIR at a writable directory")
    if "unable to open" in text or "disk i/o" in text or "no such" in text:
        return _unavailable(path, f"cannot be opened ({exc})",
                            "check that its directory exists and is writable, or point HALO_DATA_DIR at one that is")
    if "locked" in text or "busy" in text:
        return _unavailable(path, "is locked by another process for too long",
                            "retry; if it persists, stop the other process holding it")
    return _unavailable(path, f"failed ({type(exc).__name__}: {exc})",
                        "check the file and the disk, or point HALO_DATA_DIR at another directory")


def journal_file(data_dir: Path, name: str = "journal.sqlite3") -> Path:
    """``<data_dir>/journal.sqlite3``, creating the directory; a clear error if it cannot be."""
    path = data_dir / name
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalUnavailable(
            f"The data directory '{data_dir}' for the plan journal cannot be created ({exc.strerror or exc}). "
            f"Fix: create it with write access for the user running the server, or set HALO_DATA_DIR to a "
            f"writable directory. {NOTHING_SENT}") from None
    return path


def check_writable(path: str) -> None:
    """Before opening: a file that exists must be readable and writable, and so must its directory."""
    p = Path(path)
    journal_file(p.parent)  # the directory exists (created if need be)
    if p.is_dir():
        raise _unavailable(path, "is a directory", "remove it or point HALO_DATA_DIR elsewhere")
    if p.exists() and not os.access(p, os.R_OK | os.W_OK):
        raise from_sqlite_error(path, PermissionError(path))
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise from_sqlite_error(path, PermissionError(str(p.parent)))


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FileWatch:
    """Remembers which file the journal opened, to notice it being deleted or replaced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity = _identity(path)

    def check(self) -> None:
        now = _identity(self.path)
        if now == self.identity:
            return
        what = "was deleted" if now is None else "was replaced by another file"
        raise _unavailable(
            self.path, f"{what} while the server was running, so plans cannot be saved or applied (reads of "
                       f"Halo still work)",
            "put the original file back at that path (the server accepts writes again at once), or restart the "
            "server to start a new, empty journal")


@contextmanager
def translated(path: str, inner: AbstractContextManager[Any]) -> Iterator[Any]:
    """``inner`` with SQLite failures turned into :class:`JournalUnavailable`."""
    try:
        with inner as value:
            yield value
    except sqlite3.Error as exc:
        raise from_sqlite_error(path, exc) from None
