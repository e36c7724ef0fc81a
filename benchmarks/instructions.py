"""Machine instructions per request, counted by valgrind's callgrind: a figure that machine load cannot blur.

Usage: ``python benchmarks/instructions.py [--protocol wsgi|asgi] [--frameworks ampulla,flask] [--scenarios
hello,hooks] [--calls 1000] [--all-threads]``. For each framework and scenario the driver runs in a process under
``valgrind --tool=callgrind`` that counts only while ``calls`` requests are made, after a warm-up (start-up and
imports are not counted); the count divided by ``calls`` is the cost of one request. Counts repeat to within a
fraction of a percent from run to run, whatever else the machine does, so they settle small differences that
wall-clock timings (``run.py``) cannot. Only the thread making the requests is counted, unless
``--all-threads`` (use it for ``def`` views under ASGI, whose cycle runs in the thread pool). They do not weigh
cache misses or the GIL hand-offs of thread pools: confirm large changes with ``run.py``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

_COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")
WARM_UP = 200


def _inner(protocol: str, framework: str, scenario: str, calls: int) -> None:
    from benchmarks.frameworks import load, registry
    from benchmarks.run import DRIVERS
    from benchmarks.scenarios import SCENARIOS

    loaded = load(registry(protocol)[framework])
    if isinstance(loaded, str):
        raise SystemExit(f"cannot import {framework}: {loaded}")
    case = SCENARIOS[scenario]
    app = loaded.app(case.factory)
    driver = DRIVERS[protocol](case.request)
    driver.time(app, WARM_UP)
    # NOTE: callgrind collects only inside functools.reduce (--toggle-collect): these calls and nothing else.
    functools.reduce(lambda _, __: driver.time(app, calls), [None], None)


def _callgrind(options: list[str], protocol: str, framework: str, scenario: str, calls: int) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *options, sys.executable, __file__,
        "--inner", "--protocol", protocol, "--frameworks", framework, "--scenarios", scenario, "--calls", str(calls),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = _COLLECTED_RE.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {framework} {scenario}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(protocol: str, framework: str, scenario: str, calls: int, all_threads: bool = False) -> int:
    """Instructions of ``calls`` requests after the warm-up.

    Only the thread making the requests is counted (callgrind starts new threads with collection off), unless
    ``all_threads``: then two whole runs, of ``calls`` and ``2 * calls`` requests, are counted in every thread and
    their difference is the cost of ``calls`` requests, thread-pool work included (a ``def`` view under ASGI).
    """
    if not all_threads:
        return _callgrind(["--collect-atstart=no", "--toggle-collect=functools_reduce"], protocol, framework,
                          scenario, calls)  # fmt: skip
    once = _callgrind(["--collect-atstart=yes"], protocol, framework, scenario, calls)
    twice = _callgrind(["--collect-atstart=yes"], protocol, framework, scenario, 2 * calls)
    return twice - once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("wsgi", "asgi"), default="wsgi")
    parser.add_argument("--frameworks", default="ampulla")
    parser.add_argument("--scenarios", default="hello,route50,query_json,form,json_echo,notfound,hooks,template,orm")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--all-threads", action="store_true",
        help="count every thread (thread pools too) by the difference of two runs; twice as long",
    )  # fmt: skip
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.inner:
        _inner(options.protocol, options.frameworks, options.scenarios, options.calls)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    frameworks = options.frameworks.split(",")
    threads = "every thread" if options.all_threads else "the requesting thread"
    print(f"instructions per request ({options.protocol}, callgrind, {threads}, mean of {options.calls} calls)")
    print("scenario".ljust(12) + "".join(name.rjust(14) for name in frameworks))
    for scenario in options.scenarios.split(","):
        cells = []
        for framework in frameworks:
            total = count(options.protocol, framework, scenario, options.calls, options.all_threads)
            cells.append(f"{total / options.calls:,.0f}")
        print(scenario.ljust(12) + "".join(cell.rjust(14) for cell in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
