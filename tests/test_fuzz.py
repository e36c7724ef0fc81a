"""The fuzz corpus, replayed, and each coverage-guided fuzz target run for a fixed number of inputs.

- ``test_replay``: every file in ``tests/corpus/<target>/`` (seeds, and every input that once failed) goes
  through its target in process, over WSGI and ASGI. Fast; needs no atheris.
- ``test_fuzz_target``: ``python -m tests.fuzz.run <target> --runs N --seed S`` in a subprocess (atheris,
  libFuzzer), two at a time, each started from the test's own thread with its output in a file.
  ``AMPULLA_FUZZ_RUNS`` sets N (default 3000 per target; 0 skips these tests), ``AMPULLA_FUZZ_SEED`` sets S
  (default 1, so a CI run is reproducible), ``AMPULLA_FUZZ_JOBS`` the parallel runs (default 2). A failing
  input is written to ``tests/corpus/<target>/crash-<sha1>``: commit it with the fix, ``test_replay`` keeps it
  fixed. The failure message shows the broken invariant (atheris prints it on standard output).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.fuzz.run import TARGET_NAMES
from tests.fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus"
RUNS = int(os.environ.get("AMPULLA_FUZZ_RUNS", "3000"))
SEED = int(os.environ.get("AMPULLA_FUZZ_SEED", "1"))
JOBS = max(1, int(os.environ.get("AMPULLA_FUZZ_JOBS", "2")))
#: Wall-clock limit of one target's run (3000 inputs take 8-40 s on one core).
RUN_TIMEOUT = int(os.environ.get("AMPULLA_FUZZ_TIMEOUT", "600"))
_EXECUTIONS_RE = re.compile(r"^target: \S+\s+executions: (\d+)", re.MULTILINE)


def _corpus_files() -> list[object]:
    files = []
    for target in TARGET_NAMES:
        for path in sorted((CORPUS / target).iterdir()):
            if path.is_file():
                files.append(pytest.param(target, path, id=f"{target}/{path.name}"))
    return files


def test_every_target_has_a_seed_corpus() -> None:
    assert set(TARGETS) == set(TARGET_NAMES)
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(TARGET_NAMES)
    for target in TARGET_NAMES:
        assert list((CORPUS / target).glob("seed-*")), f"tests/corpus/{target} has no seed-* file"


@pytest.mark.parametrize(("target", "path"), _corpus_files())
def test_replay(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


@dataclass
class _Run:
    """One target's fuzz process: its combined output goes to a file (no pipe to drain, no reader thread)."""

    target: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float
    returncode: int | None = None
    text: str = ""
    elapsed: float = 0.0

    def finished(self) -> bool:
        if self.returncode is None:
            code = self.process.poll()
            if code is None and time.monotonic() - self.started > RUN_TIMEOUT:
                self.process.kill()
                code = self.process.wait()
                self.output.write(f"\nno result within {RUN_TIMEOUT} s: killed\n".encode())
            if code is None:
                return False
            self.returncode = code
            self.elapsed = time.monotonic() - self.started
            self.output.seek(0)
            self.text = self.output.read().decode("utf-8", "replace")
            self.output.close()
        return True


class _Scheduler:
    """Runs every target's fuzz process, ``JOBS`` at a time, all started from the test's own thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pending = list(TARGET_NAMES)
        self.running: list[_Run] = []
        self.done: dict[str, _Run] = {}

    def _start(self, target: str) -> None:
        command = [sys.executable, "-m", "tests.fuzz.run", target, "--runs", str(RUNS), "--seed", str(SEED)]
        output = (self.tmp / f"{target}.log").open("w+b")
        process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT)
        self.running.append(_Run(target, process, output, time.monotonic()))

    def result(self, target: str) -> _Run:
        while target not in self.done:
            while self.pending and len(self.running) < JOBS:
                self._start(self.pending.pop(0))
            finished = [run for run in self.running if run.finished()]
            for run in finished:
                self.running.remove(run)
                self.done[run.target] = run
            if not finished:
                time.sleep(0.2)  # NOTE: only how often to look; no outcome depends on it
        return self.done[target]

    def stop(self) -> None:
        for run in self.running:
            run.process.kill()
            run.process.wait()
            run.output.close()


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Scheduler]:
    """Runs the targets (``JOBS`` at a time, in order); each test waits for its own."""
    if RUNS <= 0:
        pytest.skip("AMPULLA_FUZZ_RUNS=0")
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris)")
    scheduler = _Scheduler(tmp_path_factory.mktemp("fuzz"))
    try:
        yield scheduler
    finally:
        scheduler.stop()


@pytest.mark.timeout(RUN_TIMEOUT * len(TARGET_NAMES))
@pytest.mark.parametrize("target", TARGET_NAMES)
def test_fuzz_target(target: str, fuzz_runs: _Scheduler) -> None:
    run = fuzz_runs.result(target)
    found = _EXECUTIONS_RE.search(run.text)
    executions = int(found.group(1)) if found else 0
    print(f"fuzz {target}: {executions} inputs in {run.elapsed:.1f} s (seed {SEED}), exit code {run.returncode}")
    if run.returncode != 0:
        lines = [line for line in run.text.splitlines() if not line.startswith(("#", "INFO:"))]
        pytest.fail(f"fuzz target {target!r} failed after {executions} inputs (seed {SEED}):\n"
                    + "\n".join(lines[-60:]))
    assert executions >= RUNS, f"only {executions} of {RUNS} inputs ran"
