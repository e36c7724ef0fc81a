"""pytest plugin for the conformance run, loaded with ``-p ampulla_conformance`` before any test module.

With ``AMPULLA_CONFORMANCE_PATCH=1`` it imports :mod:`ampulla.flask_patch` first, so ``flask`` and
``flask_sqlalchemy`` are Ampulla's. It writes each test's outcome (and the first line of its error) as JSON to
the file named by ``AMPULLA_CONFORMANCE_RESULTS``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

if os.environ.get("AMPULLA_CONFORMANCE_PATCH") == "1":
    import ampulla.flask_patch  # noqa: F401

_results: dict[str, dict[str, str]] = {}
_collect_errors: dict[str, str] = {}


def _message(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(longrepr or "").strip().splitlines()[-1] if longrepr else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        elif report.outcome != "passed":
            entry["outcome"] = report.outcome
            entry["message"] = _message(report)
    elif report.failed:  # setup or teardown
        if entry["outcome"] != "failed":
            entry["outcome"] = "error"
            entry["message"] = entry["message"] or f"[{report.when}] {_message(report)}"
    elif report.skipped:
        entry["outcome"] = "skipped"
        entry["message"] = _message(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _collect_errors[report.nodeid] = _message(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("AMPULLA_CONFORMANCE_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"tests": _results, "collect_errors": _collect_errors}, f, indent=1, sort_keys=True)
