"""Profile one framework on one scenario through the in-process driver and list its hotspots.

Usage: ``python benchmarks/hotspots.py [--protocol asgi] [--framework ampulla] [--scenario hello] [--calls 20000]``.
Prints the functions with the most self time (``tottime``) and, with ``--only src/ampulla``, the same list
restricted to files under that path, each as a share of the profiled total. cProfile adds a fixed cost per
function call, so shares over-weight small functions; use them to rank, and confirm with ``run.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks.frameworks import load, registry  # noqa: E402
from benchmarks.harness import DriverFactory  # noqa: E402
from benchmarks.run import DRIVERS  # noqa: E402
from benchmarks.scenarios import SCENARIOS  # noqa: E402

#: (file, line, function) as cProfile keys them, and its (calls, tottime, cumtime).
Row = tuple[tuple[str, int, str], tuple[int, float, float]]


def profile(protocol: str, framework: str, scenario: str, calls: int) -> pstats.Stats:
    """Check the answer, warm up, then profile ``calls`` calls; return the statistics."""
    spec = registry(protocol)[framework]
    loaded = load(spec)
    if isinstance(loaded, str):
        raise SystemExit(f"cannot import {spec.module}: {loaded}")
    case = SCENARIOS[scenario]
    make_driver: DriverFactory = DRIVERS[protocol]
    driver = make_driver(case.request)
    app = loaded.app(case.factory)
    problems = case.check(driver.call(app))
    if problems:
        raise SystemExit(f"wrong answer: {problems}")
    driver.time(app, max(1, calls // 10))  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    driver.time(app, calls)
    profiler.disable()
    return pstats.Stats(profiler)


def rows(stats: pstats.Stats) -> list[Row]:
    """Every profiled function with its call count, self time and cumulative time."""
    table = stats.stats  # type: ignore[attr-defined]
    return [(key, (value[1], value[2], value[3])) for key, value in table.items()]


def render(found: list[Row], total: float, limit: int, root: Path) -> str:
    """The ``limit`` functions with the most self time, as shares of ``total``."""
    lines = [f"{'self %':>7} {'cum %':>7} {'calls':>9}  function"]
    for (file, line, func), (ncalls, tottime, cumtime) in sorted(found, key=lambda r: -r[1][1])[:limit]:
        where = file
        try:
            where = str(Path(file).resolve().relative_to(root))
        except ValueError:
            where = "/".join(Path(file).parts[-2:]) if file.startswith("/") else file
        lines.append(f"{tottime / total:7.1%} {cumtime / total:7.1%} {ncalls:9d}  {where}:{line}:{func}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile and print the hotspots."""
    parser = argparse.ArgumentParser(prog="benchmarks/hotspots.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=("wsgi", "asgi"), default="asgi")
    parser.add_argument("--framework", default="ampulla")
    parser.add_argument("--scenario", choices=list(SCENARIOS), default="hello")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--limit", type=int, default=25, help="functions listed (25)")
    parser.add_argument("--only", default="src/ampulla", help="also list functions under this path ('' for none)")
    args = parser.parse_args(argv)
    stats = profile(args.protocol, args.framework, args.scenario, args.calls)
    found = rows(stats)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"{args.framework} ({args.protocol}) on {args.scenario}: {args.calls} calls, {total:.3f} s profiled, "
          f"{total / args.calls * 1e6:.1f} µs/call under cProfile")  # fmt: skip
    print("\nall functions, by self time:")
    print(render(found, total, args.limit, ROOT))
    if args.only:
        prefix = str((ROOT / args.only).resolve())
        mine = [row for row in found if row[0][0].startswith(prefix)]
        share = sum(row[1][1] for row in mine) / total
        print(f"\nunder {args.only} ({share:.0%} of the self time):")
        print(render(mine, total, args.limit, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
