"""Run Flask 3.1.3's, Flask-SQLAlchemy 3.1.1's and the Flask tutorial's tests against Ampulla.

Usage (``make conformance`` runs the first)::

    python -m tests.conformance.run                  # every suite; exit 1 if a test in passing.txt stopped passing
    python -m tests.conformance.run --update         # also rewrite passing.txt with today's passes
    python -m tests.conformance.run --suite tutorial # one suite (flask, flask-sqlalchemy, tutorial); repeatable
    python -m tests.conformance.run --reference      # the same suites against real Flask, in another venv

Each run downloads the pinned sdists with pip (cached in ``build/conformance/sdists``, checked against their
sha256), extracts only their tests, the tests' data and the tutorial app, and runs them with pytest in a venv of
its own (``build/conformance/venv``: an editable Ampulla and ``requirements.txt``, never flask). A plugin imports
``ampulla.flask_patch`` before collection, so the suites' ``import flask`` gets Ampulla; each suite runs from its
own root, so its own pytest settings (``filterwarnings = error``) apply. Reports go to
``build/conformance/report.txt`` and ``report.json``; pytest's output to ``build/conformance/<suite>.log``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = REPO / "build" / "conformance"
PASSING = HERE / "passing.txt"
REQUIREMENTS = HERE / "requirements.txt"
PLUGIN_DIR = HERE / "plugin"
#: Tests per file when the suites run on real Flask (written by --reference): a module that fails to import on
#: Ampulla still counts its tests, as errors.
REFERENCE_COUNTS = HERE / "reference_counts.json"

#: Per-test timeout: a hang counts as one failure instead of stopping the run.
TEST_TIMEOUT = 15


@dataclass(frozen=True)
class Sdist:
    """A pinned source distribution, checked against the sha256 PyPI publishes for it."""

    requirement: str
    filename: str
    sha256: str
    root: str  # the folder the archive unpacks into


SDISTS = (
    Sdist(
        "flask==3.1.3",
        "flask-3.1.3.tar.gz",
        "0ef0e52b8a9cd932855379197dd8f94047b359ca0a78695144304cb45f87c9eb",
        "flask-3.1.3",
    ),
    Sdist(
        "flask-sqlalchemy==3.1.1",
        "flask_sqlalchemy-3.1.1.tar.gz",
        "e4b68bb881802dda1a7d878b2fc84c06d1ee57fb40b874d3dc97dabfa36b8312",
        "flask_sqlalchemy-3.1.1",
    ),
)


@dataclass(frozen=True)
class Suite:
    """One test suite: where it lies in an sdist and what it needs on sys.path."""

    name: str
    sdist: Sdist
    root: str  # the folder, inside the sdist, holding the suite's pyproject.toml
    extract: tuple[str, ...]  # paths inside the sdist to unpack (nothing of the library itself)
    pythonpath: tuple[str, ...] = ()  # folders, relative to the suite's root, put on PYTHONPATH


SUITES = (
    Suite("flask", SDISTS[0], "", ("pyproject.toml", "tests/")),
    Suite("flask-sqlalchemy", SDISTS[1], "", ("pyproject.toml", "tests/")),
    Suite("tutorial", SDISTS[0], "examples/tutorial", ("examples/tutorial/",), pythonpath=(".",)),
)


def log(message: str) -> None:
    print(message, flush=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(sdists: Iterable[Sdist]) -> None:
    """Fetch each sdist with pip unless a copy with the right hash is cached; a wrong hash is fatal."""
    folder = BUILD / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    for sdist in sdists:
        path = folder / sdist.filename
        if not (path.exists() and sha256(path) == sdist.sha256):
            log(f"downloading {sdist.requirement}")
            pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
            subprocess.run([*pip, "--dest", str(folder), sdist.requirement], check=True)
        actual = sha256(path)
        if actual != sdist.sha256:
            path.unlink()
            raise SystemExit(f"{sdist.filename}: sha256 {actual}, expected {sdist.sha256}; the file was removed")


def extract(suite: Suite) -> Path:
    """Unpack the suite's files (fresh each run) and return the folder to run pytest in."""
    target = BUILD / "suites" / suite.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    prefix = f"{suite.sdist.root}/"
    wanted = [prefix + path for path in suite.extract]
    with tarfile.open(BUILD / "sdists" / suite.sdist.filename) as archive:
        members = []
        for member in archive.getmembers():
            if not any(member.name == w.rstrip("/") or member.name.startswith(w) for w in wanted):
                continue
            member.name = member.name[len(prefix) :]
            if suite.root:
                member.name = member.name[len(suite.root) + 1 :]
            if member.name:
                members.append(member)
        archive.extractall(target, members=members, filter="data")
    return target


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, extra: Sequence[str]) -> Path:
    """Create (or reuse) a venv holding the pinned requirements plus ``extra`` pip arguments."""
    # Ampulla's own dependencies come from pyproject.toml: a change there rebuilds the venv too.
    stamp_text = "\n".join([sys.version, REQUIREMENTS.read_text(), (REPO / "pyproject.toml").read_text(), *extra])
    stamp = venv / ".conformance-stamp"
    python = venv_python(venv)
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return python
    log(f"creating {venv.relative_to(REPO)}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS), "-c", str(REQUIREMENTS), *extra], check=True)
    stamp.write_text(stamp_text)
    return python


def run_suite(python: Path, suite: Suite, folder: Path, patch: bool, tag: str) -> dict[str, dict[str, str]]:
    """Run one suite with pytest and return its outcomes keyed ``<suite>/<nodeid>``."""
    results_file = BUILD / f"results-{tag}{suite.name}.json"
    results_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FLASK_", "PYTEST_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), *(str(folder / p) for p in suite.pythonpath)])
    env["AMPULLA_CONFORMANCE_PATCH"] = "1" if patch else "0"
    env["AMPULLA_CONFORMANCE_RESULTS"] = str(results_file)
    basetemp = BUILD / "tmp" / f"{tag}{suite.name}"
    shutil.rmtree(basetemp, ignore_errors=True)
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "ampulla_conformance"]
    command += [f"--timeout={TEST_TIMEOUT}", f"--basetemp={basetemp}", "-v", "-rN"]
    # A module that fails to import (a name Ampulla lacks) must not stop the other modules from running.
    command += ["--tb=short", "--continue-on-collection-errors"]
    log_path = BUILD / f"{tag}{suite.name}.log"
    started = time.monotonic()
    with log_path.open("w") as out:
        subprocess.run(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    log(f"  {suite.name}: {time.monotonic() - started:.0f} s, pytest output in {log_path.relative_to(REPO)}")
    if not results_file.exists():
        raise SystemExit(f"pytest wrote no results for {suite.name}: see {log_path}")
    data = json.loads(results_file.read_text())
    results: dict[str, dict[str, str]] = {f"{suite.name}/{k}": v for k, v in data["tests"].items()}
    for nodeid, message in data["collect_errors"].items():
        results[f"{suite.name}/{nodeid}"] = {"outcome": "collection error", "message": message}
    return results


COLUMNS = ("passed", "failed", "error", "skipped")


def bucket(outcome: str) -> str:
    """Fold pytest's outcomes into the table's four columns."""
    return {"xpassed": "passed", "xfailed": "skipped", "collection error": "error"}.get(outcome, outcome)


def file_counts(results: dict[str, dict[str, str]]) -> tuple[dict[str, Counter[str]], set[str]]:
    """Outcomes per test file, and the files that failed to import (their tests count as errors)."""
    per_file: dict[str, Counter[str]] = {}
    broken: set[str] = set()
    for test_id, result in results.items():
        path = test_id.split("::")[0]
        counts = per_file.setdefault(path, Counter())
        if result["outcome"] == "collection error":
            broken.add(path)
        else:
            counts[bucket(result["outcome"])] += 1
    reference = json.loads(REFERENCE_COUNTS.read_text()) if REFERENCE_COUNTS.exists() else {}
    for path in broken:
        counts = per_file[path]
        counts["error"] += max(reference.get(path, 1) - sum(counts.values()), 0)
    return per_file, broken


def table(results: dict[str, dict[str, str]]) -> list[str]:
    """Per-file counts, a total per suite and a grand total, as Markdown table lines."""
    per_file, broken = file_counts(results)
    lines = ["| file | passed | failed | errors | skipped | total |", "|---|---:|---:|---:|---:|---:|"]

    def row(label: str, counts: Counter[str]) -> str:
        cells = [str(counts[c]) for c in COLUMNS]
        return f"| {label} | {' | '.join(cells)} | {sum(counts[c] for c in COLUMNS)} |"

    grand: Counter[str] = Counter()
    for suite in SUITES:
        files = sorted(f for f in per_file if f.startswith(suite.name + "/"))
        if not files:
            continue
        total: Counter[str] = Counter()
        for f in files:
            lines.append(row(f + (" (import fails)" if f in broken else ""), per_file[f]))
            total += per_file[f]
        lines.append(row(f"**{suite.name} total**", total))
        grand += total
    lines.append(row("**all suites**", grand))
    all_tests = sum(grand[c] for c in COLUMNS)
    lines += ["", f"passed: {grand['passed']} of {all_tests} ({100 * grand['passed'] / max(all_tests, 1):.1f}%)"]
    return lines


def cause(message: str) -> str:
    """The first line of an error, with addresses and temporary paths blanked so alike errors group."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-fA-F]+", "0x…", first)
    first = re.sub(r"/\S*/(pytest-of-\S+|tmp\S*)", "<tmp>", first)
    return first[:200]


def causes(results: dict[str, dict[str, str]], limit: int = 40) -> list[str]:
    counts = Counter(cause(r["message"]) for r in results.values() if bucket(r["outcome"]) in ("failed", "error"))
    return [f"{n:4d}  {text}" for text, n in counts.most_common(limit)]


def read_passing() -> set[str]:
    if not PASSING.exists():
        return set()
    return {line.strip() for line in PASSING.read_text().splitlines() if line.strip() and not line.startswith("#")}


def write_passing(ids: Iterable[str]) -> None:
    header = (
        "# Tests of Flask's suites that pass on Ampulla (python -m tests.conformance.run --update rewrites this).\n"
        "# make conformance fails when one of them stops passing.\n"
    )
    PASSING.write_text(header + "".join(f"{i}\n" for i in sorted(ids)))


def compare(
    results: dict[str, dict[str, str]], listed: set[str], ran: set[str]
) -> tuple[set[str], list[str], list[str]]:
    """Compare a run with passing.txt: (tests passing now, listed tests that no longer pass, new passes).

    Only the suites in ``ran`` are compared: a run of one suite says nothing of the others.
    """
    passing_now = {test_id for test_id, r in results.items() if bucket(r["outcome"]) == "passed"}
    expected = {i for i in listed if i.split("/", 1)[0] in ran}
    return passing_now, sorted(expected - passing_now), sorted(passing_now - expected)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", choices=[s.name for s in SUITES], help="run only this suite")
    parser.add_argument("--update", action="store_true", help="rewrite passing.txt with the tests passing now")
    parser.add_argument("--reference", action="store_true", help="run against real Flask instead (no patch)")
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if not args.suite or s.name in args.suite]

    BUILD.mkdir(parents=True, exist_ok=True)
    download(SDISTS)
    if args.reference:
        sdists = [str(BUILD / "sdists" / s.filename) for s in SDISTS]
        python = ensure_venv(BUILD / "venv-flask", sdists)
        tag = "reference-"
    else:
        python = ensure_venv(BUILD / "venv", ["-e", str(REPO)])
        tag = ""
        shadowed = subprocess.run(
            [str(python), "-c", "import importlib.util as u; print(bool(u.find_spec('flask')))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if shadowed == "True":
            log("note: a real flask is installed in the venv (a dependency brought it); ampulla.flask_patch shadows it")

    results: dict[str, dict[str, str]] = {}
    log(f"running {', '.join(s.name for s in suites)} against {'real Flask' if args.reference else 'Ampulla'}")
    for suite in suites:
        results.update(run_suite(python, suite, extract(suite), patch=not args.reference, tag=tag))

    lines = table(results)
    report = [*lines, "", "Most frequent errors (count, first line):", *causes(results)]
    (BUILD / f"{tag}report.txt").write_text("\n".join(report) + "\n")
    (BUILD / f"{tag}report.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    log("\n".join(lines))
    log(f"report: {(BUILD / f'{tag}report.txt').relative_to(REPO)} (with the most frequent errors)")
    if args.reference:
        per_file, _ = file_counts(results)
        counts = {path: sum(c.values()) for path, c in sorted(per_file.items())}
        if not args.suite:
            REFERENCE_COUNTS.write_text(json.dumps(counts, indent=1) + "\n")
        return 0

    ran = {s.name for s in suites}
    passing_now, regressions, new = compare(results, read_passing(), ran)
    expected = {i for i in read_passing() if i.split("/", 1)[0] in ran}
    if args.update:
        keep = {i for i in read_passing() if i.split("/", 1)[0] not in ran}
        write_passing(keep | passing_now)
        log(f"passing.txt: {len(keep | passing_now)} tests ({len(new)} new, {len(regressions)} removed)")
        return 0
    if new:
        log(f"{len(new)} tests pass that passing.txt does not list (add them with --update):")
        log("\n".join(f"  + {i}" for i in new[:30]) + (f"\n  ... and {len(new) - 30} more" if len(new) > 30 else ""))
    if regressions:
        log(f"REGRESSION: {len(regressions)} tests listed in passing.txt no longer pass:")
        for i in regressions:
            r = results.get(i)
            state = f"{r['outcome']}: {cause(r['message'])}" if r else "not run"
            log(f"  - {i} ({state})")
        return 1
    log(f"all {len(expected)} tests in passing.txt still pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
