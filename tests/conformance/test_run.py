"""The conformance runner's bookkeeping, without the network: outcomes, the table, passing.txt comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance import run


def outcome(kind: str, message: str = "") -> dict[str, str]:
    return {"outcome": kind, "message": message}


RESULTS = {
    "flask/tests/test_a.py::test_ok": outcome("passed"),
    "flask/tests/test_a.py::test_bad": outcome("failed", "AssertionError: at 0x7f00ab\nmore"),
    "flask/tests/test_a.py::test_xfail": outcome("xfailed"),
    "flask/tests/test_b.py": outcome("collection error", "ImportError: cannot import name 'x'"),
    "tutorial/tests/test_c.py::test_setup": outcome("error", "[setup] AttributeError: open_resource"),
}


def test_outcomes_fold_into_four_columns() -> None:
    assert [run.bucket(k) for k in ("xpassed", "xfailed", "collection error", "failed")] == [
        "passed",
        "skipped",
        "error",
        "failed",
    ]


def test_a_module_that_fails_to_import_counts_its_reference_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = tmp_path / "reference_counts.json"
    counts.write_text(json.dumps({"flask/tests/test_b.py": 7}))
    monkeypatch.setattr(run, "REFERENCE_COUNTS", counts)
    lines = run.table(RESULTS)
    assert "| flask/tests/test_b.py (import fails) | 0 | 0 | 7 | 0 | 7 |" in lines
    assert "| **flask total** | 1 | 1 | 7 | 1 | 10 |" in lines
    assert "| **all suites** | 1 | 1 | 8 | 1 | 11 |" in lines
    assert lines[-1] == "passed: 1 of 11 (9.1%)"


def test_causes_group_alike_errors() -> None:
    assert run.cause("AssertionError: at 0x7f00ab\nmore") == "AssertionError: at 0x…"
    assert run.causes(RESULTS)[0].endswith("AssertionError: at 0x…")


def test_compare_reports_regressions_and_new_passes_of_the_suites_run() -> None:
    listed = {"flask/tests/test_a.py::test_bad", "tutorial/tests/test_c.py::test_setup"}
    passing, regressions, new = run.compare(RESULTS, listed, ran={"flask"})
    assert passing == {"flask/tests/test_a.py::test_ok"}
    assert regressions == ["flask/tests/test_a.py::test_bad"]  # the tutorial did not run: not compared
    assert new == ["flask/tests/test_a.py::test_ok"]


def test_pinned_hashes_and_committed_lists_are_well_formed() -> None:
    assert all(len(s.sha256) == 64 and s.filename.endswith(".tar.gz") for s in run.SDISTS)
    listed = run.read_passing()
    assert listed and all(i.split("/", 1)[0] in {s.name for s in run.SUITES} and "::" in i for i in listed)
    assert sum(json.loads(run.REFERENCE_COUNTS.read_text()).values()) == 966
