"""Run the in-process framework benchmark and print µs/request and the ratio to Flask.

Usage: ``python benchmarks/run.py [--scenarios hello,form] [--frameworks flask,bottle] [--markdown]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Importable as ``benchmarks.*`` when run as a script, and measure the ampulla of this tree.
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks import report  # noqa: E402
from benchmarks.frameworks import FRAMEWORKS, Framework, LoadedFramework, load  # noqa: E402
from benchmarks.harness import DriverFactory, Stat, run_scenario  # noqa: E402
from benchmarks.scenarios import SCENARIOS  # noqa: E402
from benchmarks.wsgi import Driver as WSGIDriver  # noqa: E402

#: Protocol name -> driver building the per-scenario request; ASGI joins here later.
DRIVERS: dict[str, DriverFactory] = {"wsgi": WSGIDriver}
PROTOCOLS = ("wsgi", "asgi")


def _names(known: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        if value == "all":
            return list(known)
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or '(none)'}; choose from: {', '.join(known)}"
            )
        return names

    return parse


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {value}")
        return number

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="In-process benchmark: identical requests sent to Ampulla, Flask, Bottle, Falcon "
        "and a bare callable; prints microseconds per request and the time ratio to the baseline.",
    )
    parser.add_argument(
        "--scenarios",
        type=_names(list(SCENARIOS), "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--frameworks",
        type=_names(list(FRAMEWORKS), "framework"),
        default=list(FRAMEWORKS),
        help=f"comma-separated subset of: {', '.join(FRAMEWORKS)} (default: all)",
    )
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="wsgi", help="interface the apps are driven through"
    )
    parser.add_argument(
        "--seconds", type=_positive(float), default=0.5, help="duration of one timed round (default 0.5)"
    )
    parser.add_argument("--repeat", type=_positive(int), default=5, help="timed rounds per cell (default 5)")
    parser.add_argument(
        "--stat", choices=("best", "median"), default="best", help="round reported per cell (default best)"
    )
    parser.add_argument(
        "--baseline",
        default="flask",
        help="framework the ratios are relative to, always run; 'none' for no ratios (default flask)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every sample to PATH as JSON")
    parser.add_argument("--list", action="store_true", help="list scenarios and frameworks, then exit")
    args = parser.parse_args(argv)
    if args.protocol not in DRIVERS:
        parser.error(f"--protocol {args.protocol} is not supported yet; available: {', '.join(DRIVERS)}")
    if args.baseline == "none":
        args.baseline = None
    elif args.baseline not in FRAMEWORKS:
        parser.error(f"--baseline: unknown framework {args.baseline!r}; choose from: {', '.join(FRAMEWORKS)}")
    elif args.baseline not in args.frameworks:
        args.frameworks.insert(0, args.baseline)
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 1 if any framework gave a wrong response, else 0."""
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"scenario  {scenario.name:<11} {scenario.description}")
        for fw in FRAMEWORKS.values():
            print(f"framework {fw.name:<11} {fw.protocol}  {fw.module}")
        return 0

    loaded: list[LoadedFramework] = []
    for name in dict.fromkeys(args.frameworks):
        spec = FRAMEWORKS[name]
        if spec.protocol != args.protocol:
            _log(f"skipping {spec.label}: it is benchmarked with --protocol {spec.protocol}")
            continue
        outcome = load(spec)
        if isinstance(outcome, str):
            _log(f"skipping {spec.label}: cannot import {spec.module} ({outcome})")
        else:
            loaded.append(outcome)
    if not loaded:
        _log("nothing to benchmark")
        return 1
    if args.baseline is not None and args.baseline not in {fw.spec.name for fw in loaded}:
        _log(f"baseline {args.baseline} is unavailable: no ratios")
        args.baseline = None

    table: report.Table = {}
    for scenario in (SCENARIOS[name] for name in args.scenarios):
        _log(f"[{scenario.name}] {scenario.description}")
        table[scenario.name] = run_scenario(
            scenario, loaded, DRIVERS[args.protocol], args.seconds, args.repeat, _log
        )

    frameworks: list[Framework] = [fw.spec for fw in loaded]
    stat: Stat = args.stat
    settings = {
        "protocol": args.protocol,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "stat": stat,
        "baseline": args.baseline,
    }
    versions = {fw.spec.name: fw.version for fw in loaded}
    print()
    for line in report.environment_lines(versions, settings):
        print(f"<!-- {line} -->" if args.markdown else line)
    print()
    print(report.render(table, frameworks, args.baseline, stat, markdown=args.markdown))

    if args.json is not None:
        payload = {
            "settings": settings,
            "versions": versions,
            "results": [vars(result) for row in table.values() for result in row.values()],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")

    failed = sorted({r.framework for row in table.values() for r in row.values() if r.status == "fail"})
    if failed:
        _log(f"\nFAILED (wrong responses or errors, see above): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
