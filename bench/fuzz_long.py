"""The long fuzzing profile: at least 10,000 generated tool calls over the whole surface.

Runs ``tests/tools/test_fuzz_tools.py::test_long_profile`` (``-m slow``) with ``HALO_FUZZ_LONG``
examples (default 11,000; each example is one call: a random tool, valid or invalid arguments
generated from its input schema), then ``test_long_profile_found_nothing``, which lists every
distinct violation, and ``test_no_secret_in_any_result_log_or_journal`` (the harness runs in
canary mode: a unique client secret and marked tokens, scanned in every result, every DEBUG log
record and the journal file). Writes the run's statistics to ``--stats`` (JSON) and prints a summary.

    python bench/fuzz_long.py [--examples 11000] [--stats bench/fuzz_long_stats.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=11_000)
    p.add_argument("--stats", default=str(ROOT / "bench" / "fuzz_long_stats.json"))
    ns = p.parse_args()
    env = {**os.environ, "HALO_FUZZ_LONG": str(ns.examples), "HALO_FUZZ_STATS": ns.stats}
    cmd = [sys.executable, "-m", "pytest", "-m", "slow or not slow", "-p", "no:warnings", "-q",
           "tests/tools/test_fuzz_tools.py::test_long_profile",
           "tests/tools/test_fuzz_tools.py::test_long_profile_found_nothing",
           "tests/tools/test_fuzz_tools.py::test_no_secret_in_any_result_log_or_journal"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    print(proc.stdout[-4000:])
    if proc.returncode and proc.stderr:
        print(proc.stderr[-2000:], file=sys.stderr)
    stats = json.loads(Path(ns.stats).read_text()) if Path(ns.stats).exists() else {}
    print(f"calls: {stats.get('calls')}  (schema-invalid: {stats.get('invalid_calls')}, refused with zero Halo "
          f"requests: {stats.get('invalid_rejected')})  Halo requests: {stats.get('requests')}  "
          f"wall time: {elapsed:.0f} s  pytest exit: {proc.returncode}")
    failures = sorted(set(stats.get("failures", [])))
    print(f"distinct violations: {len(failures)}")
    for f in failures[:30]:
        print("  -", f[:300])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
