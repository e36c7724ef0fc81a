"""Run the ``orm`` scenario alone: Ampulla, Flask + Flask-SQLAlchemy and a bare SQLAlchemy WSGI callable.

Usage: ``python -m benchmarks.apps.orm_bench [--seconds 0.5] [--repeat 5] [--markdown]`` from the repository
root. The ratio column is relative to the bare callable, the issue's yardstick (Ampulla <= 1.1x bare).
``benchmarks/run.py --scenarios orm`` runs the same scenario once the framework modules expose
``create_orm_app`` (``from benchmarks.apps.orm_ampulla import create_orm_app`` in ``ampulla_app``, etc.).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks import report  # noqa: E402
from benchmarks.frameworks import Framework, LoadedFramework, load  # noqa: E402
from benchmarks.harness import run_scenario  # noqa: E402
from benchmarks.scenarios import SCENARIOS  # noqa: E402
from benchmarks.wsgi import Driver  # noqa: E402

ORM_FRAMEWORKS = (
    Framework("ampulla", "Ampulla", "benchmarks.apps.orm_ampulla", distribution="ampulla"),
    Framework("flask", "Flask+FSA", "benchmarks.apps.orm_flask", distribution="flask-sqlalchemy"),
    Framework("bare", "bare SQLAlchemy", "benchmarks.apps.orm_bare", distribution="sqlalchemy"),
)


def main(argv: list[str] | None = None) -> int:
    """Benchmark the ``orm`` scenario; return 1 if an app gave a wrong answer."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.apps.orm_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one timed round")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per framework")
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)

    loaded: list[LoadedFramework] = []
    for spec in ORM_FRAMEWORKS:
        outcome = load(spec)
        if isinstance(outcome, str):
            print(f"skipping {spec.label}: {outcome}", file=sys.stderr)
        else:
            loaded.append(outcome)
    scenario = SCENARIOS["orm"]
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    results = run_scenario(scenario, loaded, Driver, args.seconds, args.repeat, log)
    baseline = "bare" if any(fw.spec.name == "bare" for fw in loaded) else None
    settings = {"protocol": "wsgi", "seconds": args.seconds, "repeat": args.repeat, "stat": args.stat,
                "baseline": baseline}
    print()
    for line in report.environment_lines({fw.spec.name: fw.version for fw in loaded}, settings):
        print(line)
    print(report.render({"orm": results}, [fw.spec for fw in loaded], baseline, args.stat, markdown=args.markdown))
    return 1 if any(r.status == "fail" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
