"""Measurement: check each app's answer, calibrate an iteration count, time interleaved rounds."""

from __future__ import annotations

import gc
import statistics
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from benchmarks.frameworks import LoadedFramework
from benchmarks.scenarios import Request, Response, Scenario

Status = Literal["ok", "fail", "n/a"]
Stat = Literal["best", "median"]
Log = Callable[[str], None]


class Driver(Protocol):
    """Sends one scenario's request to apps of one protocol (see :mod:`benchmarks.wsgi`)."""

    def call(self, app: Any) -> Response:
        """Call ``app`` once and capture its complete response."""
        ...

    def time(self, app: Any, calls: int) -> int:
        """Call ``app`` ``calls`` times; return the elapsed nanoseconds."""
        ...


DriverFactory = Callable[[Request], Driver]


@dataclass
class Result:
    """The outcome of one framework on one scenario."""

    scenario: str
    framework: str
    status: Status
    calls: int = 0  #: calls per timed round
    samples: list[float] = field(default_factory=list)  #: ns per call, one per round
    error: str = ""

    def microseconds(self, stat: Stat) -> float | None:
        """Microseconds per request by ``stat``, or ``None`` unless measured."""
        if self.status != "ok" or not self.samples:
            return None
        value = min(self.samples) if stat == "best" else statistics.median(self.samples)
        return value / 1000


def calibrate(driver: Driver, app: Any, seconds: float) -> int:
    """Return how many calls take about ``seconds`` (this also warms the app up)."""
    target_ns = seconds * 1e9
    calls = 1
    while True:
        elapsed = max(driver.time(app, calls), 1)
        if elapsed >= target_ns / 10 or calls >= 1 << 24:
            return max(1, round(calls * target_ns / elapsed))
        calls = min(calls * 10, max(calls * 2, round(calls * target_ns / 10 / elapsed * 1.2)))


def run_scenario(
    scenario: Scenario,
    frameworks: Sequence[LoadedFramework],
    make_driver: DriverFactory,
    seconds: float,
    repeat: int,
    log: Log,
) -> dict[str, Result]:
    """Check then time ``scenario`` on every framework, rounds interleaved across frameworks."""
    driver = make_driver(scenario.request)
    results: dict[str, Result] = {}
    contenders: list[tuple[LoadedFramework, Any, Result]] = []
    for fw in frameworks:
        name = fw.spec.name
        if not fw.has_factory(scenario.factory):
            results[name] = Result(scenario.name, name, "n/a", error=f"no {scenario.factory}()")
            continue
        calls = 0
        try:
            app = fw.app(scenario.factory)
            problems = scenario.check(driver.call(app))
            if not problems:
                calls = calibrate(driver, app, seconds)
                problems = [f"after warm-up: {p}" for p in scenario.check(driver.call(app))]
        except Exception:
            problems = [traceback.format_exc().rstrip()]
        if problems:
            results[name] = Result(scenario.name, name, "fail", error="\n".join(problems))
            log(_failure_banner(scenario.name, fw.spec.label, problems))
            continue
        results[name] = result = Result(scenario.name, name, "ok", calls=calls)
        contenders.append((fw, app, result))

    for round_no in range(repeat):
        shift = round_no % max(len(contenders), 1)  # rotate so no framework always runs first
        for fw, app, result in contenders[shift:] + contenders[:shift]:
            if result.status != "ok":
                continue
            gc.collect()
            try:
                elapsed = driver.time(app, result.calls)
            except Exception:
                result.status, result.error = "fail", traceback.format_exc().rstrip()
                log(_failure_banner(scenario.name, fw.spec.label, [result.error]))
                continue
            result.samples.append(elapsed / result.calls)
    return results


def _failure_banner(scenario: str, label: str, problems: Sequence[str]) -> str:
    rule = "!" * 78
    body = "\n".join(f"  {line}" for problem in problems for line in problem.splitlines())
    return f"{rule}\nFAIL: {label} on scenario {scenario!r}:\n{body}\n{rule}"
