"""``halopsa-contracts-mcp verify``: let a tenant settle what no public Halo document does.

Reading is the default (``halo_contracts.halo.verify``). ``--write --client-id N`` then also
writes test records in that client's book and removes them (``halo_contracts.verify_write``),
only after a yes typed on the terminal (or ``--yes``); ``--cleanup`` removes what an earlier
run left. Prints a readable summary to stdout; ``--report FILE`` also writes the JSON report,
whose ``quirks`` object ``halopsa-contracts-mcp sandbox --quirks FILE`` plays back.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2

from halo_contracts.config import ConfigError, Settings, load_settings
from halo_contracts.halo.client import HaloClient
from halo_contracts.halo.errors import HaloError
from halo_contracts.halo.verify import Recorder, Report, run_reading
from halo_contracts.plans.journal_guard import JournalUnavailable

NOTHING_SENT = "Nothing was sent to Halo."


@dataclass
class Options:
    """What the command line asked for."""

    write: bool = False
    cleanup: bool = False
    client_id: int | None = None
    yes: bool = False
    journal_path: str | Path | None = None
    client_options: dict[str, Any] = field(default_factory=dict)  # HaloClient keywords (tests: back-off)

    @property
    def mode(self) -> str:
        return "write" if self.write else "cleanup" if self.cleanup else "read"


def refusal(opts: Options) -> str | None:
    """Why the arguments cannot run, in the project's error format (None: they can)."""
    if opts.write and opts.cleanup:
        return ("Invalid '--cleanup': not with --write (a --write run cleans up after itself). Fix: run verify "
                f"--cleanup on its own. {NOTHING_SENT}")
    if opts.write and opts.client_id is None:
        return ("Invalid '--client-id': required with --write (the client whose book gets the test records). "
                f"Fix: add --client-id N, the id of a test client in Halo. {NOTHING_SENT}")
    if opts.client_id is not None and opts.client_id <= 0:
        return ("Invalid '--client-id': a Halo client id is a positive number. Fix: give the client's id. "
                + NOTHING_SENT)
    return None


def confirmed(opts: Options, settings: Settings, prefix: str | None, stdin: TextIO | None,
              err: TextIO) -> str | None:
    """The person's yes before anything is written (None: go on; else why not)."""
    if opts.mode == "read" or opts.yes:
        return None
    if stdin is None or not stdin.isatty():
        return (f"verify --{opts.mode} writes to Halo and needs a yes typed on the terminal. Fix: run it in a "
                f"terminal and answer yes, or add --yes. {NOTHING_SENT}")
    if opts.write:
        what = (f"create test records (a Pending contract, its renewal, recurring lines, a licence) in client "
                f"{opts.client_id}'s book at {settings.base_url} under the reference prefix {prefix}, then delete them")
    else:
        what = f"delete the records earlier verify runs left at {settings.base_url}"
    print(f"verify will {what}. Type yes to go on: ", end="", file=err, flush=True)
    answer = (stdin.readline() or "").strip().casefold()
    return None if answer in ("y", "yes") else f"verify stopped: the answer was not yes. {NOTHING_SENT}"


def _journal(opts: Options, settings: Settings, sandbox: bool) -> Any:
    from halo_contracts.plans.journal import open_journal

    if opts.journal_path is not None:
        return open_journal(opts.journal_path)
    if sandbox:  # the embedded sandbox lives in memory, so its plans must not outlive it
        return open_journal(Path(tempfile.mkdtemp(prefix="halo-verify-")) / "journal.sqlite3")
    from halo_contracts.server import journal_target

    return open_journal(journal_target(settings))


async def _verify(settings: Settings, transport: httpx2.AsyncBaseTransport | None, opts: Options,
                  prefix: str | None, journal: Any) -> tuple[Report, dict[str, int], bool]:
    from halo_contracts.verify_write import cleanup_pending, run_writing

    recorder = Recorder(transport)
    async with HaloClient(settings, transport=recorder, **opts.client_options) as halo:
        await halo.authenticate()
        report = Report()
        ok = True
        if opts.mode != "cleanup":
            report = await run_reading(halo)
        if opts.write:
            await halo.get_client(int(opts.client_id or 0))  # a client that does not exist: nothing is written
            ok = await run_writing(halo, journal, recorder, client_id=int(opts.client_id or 0), prefix=str(prefix),
                                   report=report)
        elif opts.cleanup:
            ok = await cleanup_pending(halo, journal, client_id=opts.client_id, report=report)
        return report, recorder.counts(), ok


def _settings(sandbox: bool, sandbox_config: dict[str, Any] | None) -> tuple[Settings, Any]:
    if sandbox:
        from halo_contracts.cli import sandbox_settings, sandbox_transport

        _app, transport = sandbox_transport(**(sandbox_config or {}))
        return sandbox_settings(), transport
    settings = load_settings()
    settings.require_credentials()
    return settings, None


def run_verify(*, sandbox: bool = False, report_path: str | None = None, settings: Settings | None = None,
               transport: httpx2.AsyncBaseTransport | None = None, out: TextIO | None = None,
               sandbox_config: dict[str, Any] | None = None, options: Options | None = None,
               stdin: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command: 0 done, 1 Halo failed (or something was left), 2 refused before sending anything."""
    out, err, opts = out or sys.stdout, err or sys.stderr, options or Options()
    problem = refusal(opts)
    if problem is None:
        try:
            if settings is None:
                settings, transport = _settings(sandbox, sandbox_config)
        except ConfigError as exc:
            problem = str(exc)
    if problem is None and settings.read_only and opts.mode != "read":
        problem = (f"Invalid '--{opts.mode}': this configuration is read-only (HALO_READ_ONLY). Fix: run verify "
                   f"without --{opts.mode}, or with HALO_READ_ONLY=false for this run. {NOTHING_SENT}")
    if problem is None:
        from halo_contracts.verify_write import new_prefix

        prefix = new_prefix() if opts.write else None
        problem = confirmed(opts, settings, prefix, stdin if stdin is not None else sys.stdin, err)
    if problem is not None:
        print(f"halopsa-contracts-mcp verify: {problem}", file=err)
        return 2
    return _run(settings, transport, opts, prefix, sandbox, report_path, out, err)


def _run(settings: Settings, transport: Any, opts: Options, prefix: str | None, sandbox: bool,
         report_path: str | None, out: TextIO, err: TextIO) -> int:
    try:
        journal = _journal(opts, settings, sandbox) if opts.mode != "read" else None
    except JournalUnavailable as exc:
        print(f"halopsa-contracts-mcp verify: {exc}", file=err)
        return 2
    try:
        report, counts, ok = anyio.run(_verify, settings, transport, opts, prefix, journal)
    except HaloError as exc:
        print(f"halopsa-contracts-mcp verify: {exc}", file=err)
        return 1
    finally:
        if journal is not None:
            journal.close()
    where = " against the sandbox" if sandbox else ""
    mode = {"read": "reading only", "write": f"reading and writing under {prefix}", "cleanup": "cleanup"}[opts.mode]
    print(f"verify ({mode}, {counts['reads']} reads, {counts['writes']} writes){where}", file=out)
    print(report.summary(), file=out)
    if report_path:
        body = {"mode": opts.mode, "prefix": prefix, "client_id": opts.client_id,
                "requests": counts["reads"] + counts["writes"], **counts, **report.to_json()}
        Path(report_path).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        print(f"report written to {report_path}", file=out)
    return 0 if ok else 1
