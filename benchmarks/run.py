"""Run the in-process framework benchmark and print µs/request and the ratio to the baseline.

Usage: ``python benchmarks/run.py [--protocol wsgi|asgi] [--scenarios hello,form] [--frameworks flask,bottle]
[--markdown]``. WSGI ratios are to Flask, ASGI ratios to Starlette (plus a table of ratios to Quart).
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
from benchmarks.asgi import Driver as ASGIDriver  # noqa: E402
from benchmarks.frameworks import ASGI_FRAMEWORKS, FRAMEWORKS, Framework, LoadedFramework, load, registry  # noqa: E402
from benchmarks.harness import DriverFactory, Stat, run_scenario  # noqa: E402
from benchmarks.scenarios import SCENARIOS  # noqa: E402
from benchmarks.wsgi import Driver as WSGIDriver  # noqa: E402

#: Protocol name -> driver building the per-scenario request.
DRIVERS: dict[str, DriverFactory] = {"wsgi": WSGIDriver, "asgi": ASGIDriver}
PROTOCOLS = ("wsgi", "asgi")
#: Protocol -> (default baseline, default second baseline shown as an extra ratio table or None).
BASELINES: dict[str, tuple[str, str | None]] = {"wsgi": ("flask", None), "asgi": ("starlette", "quart")}


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
        description="In-process benchmark: identical requests sent to Ampulla, Flask, Bottle, Falcon and a "
        "bare callable (WSGI), or to Ampulla, Starlette, Quart, FastAPI and a bare callable (ASGI); prints "
        "microseconds per request and the time ratio to the baseline.",
    )
    parser.add_argument(
        "--scenarios",
        type=_names(list(SCENARIOS), "scenario"),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--frameworks",
        help=f"comma-separated subset of the protocol's frameworks; WSGI: {', '.join(FRAMEWORKS)}; "
        f"ASGI: {', '.join(ASGI_FRAMEWORKS)} (default: all but starlette-bhm)",
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
        help="framework the ratios are relative to, always run; 'none' for no ratios "
        "(default: flask for WSGI, starlette for ASGI)",
    )
    parser.add_argument(
        "--also-ratio",
        metavar="FRAMEWORK",
        help="a second baseline: adds a table of ratios to it, always run; 'none' for none "
        "(default: none for WSGI, quart for ASGI)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every sample to PATH as JSON")
    parser.add_argument("--list", action="store_true", help="list scenarios and frameworks, then exit")
    args = parser.parse_args(argv)
    args.explicit_scenarios = args.scenarios is not None
    if args.scenarios is None:
        args.scenarios = list(SCENARIOS)
    if args.protocol not in DRIVERS:
        parser.error(f"--protocol {args.protocol} is not supported yet; available: {', '.join(DRIVERS)}")
    known = registry(args.protocol)
    if args.frameworks is None:
        args.frameworks = [name for name, fw in known.items() if fw.default]
    else:
        try:
            args.frameworks = _names(list(known), f"{args.protocol.upper()} framework")(args.frameworks)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--frameworks: {exc}")
    default_base, default_second = BASELINES[args.protocol]
    options = (("--baseline", "baseline", default_base), ("--also-ratio", "also_ratio", default_second))
    for option, attr, default in options:
        value = getattr(args, attr) or default
        if value is None or value == "none":
            setattr(args, attr, None)
            continue
        if value not in known:
            choices = ", ".join(known)
            parser.error(f"{option}: unknown {args.protocol.upper()} framework {value!r}; choose from: {choices}")
        setattr(args, attr, value)
        if value not in args.frameworks:
            args.frameworks.insert(0 if attr == "baseline" else len(args.frameworks), value)
    if args.also_ratio == args.baseline:
        args.also_ratio = None
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 1 if any framework gave a wrong response, else 0."""
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"scenario  {scenario.name:<11} {scenario.description}")
        for fw in [*FRAMEWORKS.values(), *ASGI_FRAMEWORKS.values()]:
            print(f"framework {fw.name:<13} {fw.protocol}  {fw.module}{'' if fw.default else '  (on request)'}")
        return 0

    loaded: list[LoadedFramework] = []
    for name in dict.fromkeys(args.frameworks):
        spec = registry(args.protocol)[name]
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
    if args.also_ratio is not None and args.also_ratio not in {fw.spec.name for fw in loaded}:
        _log(f"second baseline {args.also_ratio} is unavailable: no second ratio table")
        args.also_ratio = None

    scenarios = [SCENARIOS[name] for name in args.scenarios]
    if not args.explicit_scenarios:  # drop a default scenario that no framework here can serve
        for scenario in [s for s in scenarios if not any(fw.has_factory(s.factory) for fw in loaded)]:
            _log(f"skipping scenario {scenario.name}: no {args.protocol.upper()} app module has {scenario.factory}()")
            scenarios.remove(scenario)

    table: report.Table = {}
    for scenario in scenarios:
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
        "also_ratio": args.also_ratio,
    }
    versions = {fw.spec.name: fw.version for fw in loaded}
    print()
    for line in report.environment_lines(versions, settings):
        print(f"<!-- {line} -->" if args.markdown else line)
    print()
    print(report.render(table, frameworks, args.baseline, stat, markdown=args.markdown))
    if args.also_ratio is not None:
        print()
        print(report.render_ratios(table, frameworks, args.also_ratio, stat, markdown=args.markdown))

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
