"""Result tables: µs/request per framework and time ratio to the baseline, plain text or markdown."""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence

from benchmarks.frameworks import Framework
from benchmarks.harness import Result, Stat

Table = dict[str, dict[str, Result]]  # scenario -> framework -> result


def ratios(table: Table, framework: str, baseline: str, stat: Stat) -> dict[str, float]:
    """Time of ``framework`` divided by time of ``baseline``, per scenario where both were measured."""
    out: dict[str, float] = {}
    for scenario, row in table.items():
        mine = row[framework].microseconds(stat) if framework in row else None
        base = row[baseline].microseconds(stat) if baseline in row else None
        if mine is not None and base:
            out[scenario] = mine / base
    return out


def geomean(values: Sequence[float]) -> float | None:
    """Geometric mean, or ``None`` for no values."""
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def render(
    table: Table,
    frameworks: Sequence[Framework],
    baseline: str | None,
    stat: Stat,
    markdown: bool = False,
) -> str:
    """Render rows = scenarios, columns = µs/request and ratio to ``baseline`` per framework."""
    base_label = next((fw.label for fw in frameworks if fw.name == baseline), None)
    headers = ["scenario"]
    for fw in frameworks:
        headers.append(f"{fw.label} \u00b5s")
        if base_label is not None and fw.name != baseline:
            headers.append(f"{fw.label}/{base_label}")

    rows: list[list[str]] = []
    footer: list[list[str]] = []
    all_ratios = {
        fw.name: ratios(table, fw.name, baseline, stat) for fw in frameworks if baseline and base_label
    }
    for scenario, results in table.items():
        row = [scenario]
        for fw in frameworks:
            row.append(_cell(results.get(fw.name), stat))
            if base_label is not None and fw.name != baseline:
                ratio = all_ratios[fw.name].get(scenario)
                row.append(f"{ratio:.2f}" if ratio is not None else "-")
        rows.append(row)

    incomplete = False
    if base_label is not None:
        row = ["geomean"]
        for fw in frameworks:
            row.append("")
            if fw.name != baseline:
                values = list(all_ratios[fw.name].values())
                mean = geomean(values)
                partial = len(values) < len(table)
                incomplete |= partial and mean is not None
                row.append("-" if mean is None else f"{mean:.2f}{'*' if partial else ''}")
        footer.append(row)

    lines = _markdown(headers, rows + footer) if markdown else _plain(headers, rows, footer)
    if base_label is not None:
        lines.append("")
        lines.append(f"\u00b5s = microseconds per request ({stat} round); X/{base_label} = X's time")
        lines.append(f"divided by {base_label}'s, measured in the same run: below 1.00 is faster.")
        if incomplete:
            lines.append("* geometric mean over the scenarios that framework passed, not all of them.")
    return "\n".join(lines)


def render_ratios(
    table: Table, frameworks: Sequence[Framework], baseline: str, stat: Stat, markdown: bool = False
) -> str:
    """Render only the time ratios of every other framework to ``baseline`` (a second yardstick)."""
    base_label = next(fw.label for fw in frameworks if fw.name == baseline)
    others = [fw for fw in frameworks if fw.name != baseline]
    headers = ["scenario", *(f"{fw.label}/{base_label}" for fw in others)]
    all_ratios = {fw.name: ratios(table, fw.name, baseline, stat) for fw in others}
    rows = [
        [scenario, *(_ratio(all_ratios[fw.name].get(scenario)) for fw in others)] for scenario in table
    ]
    footer = [["geomean", *(_ratio(geomean(list(all_ratios[fw.name].values()))) for fw in others)]]
    lines = _markdown(headers, rows + footer) if markdown else _plain(headers, rows, footer)
    lines.append("")
    lines.append(f"X/{base_label} = X's time divided by {base_label}'s ({stat} round), same run.")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(result: Result | None, stat: Stat) -> str:
    if result is None:
        return "-"
    if result.status == "fail":
        return "FAIL"
    us = result.microseconds(stat)
    if us is None:
        return "n/a"
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def _plain(headers: list[str], rows: list[list[str]], footer: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows, *footer]) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))])

    rule = "-" * len(fmt(headers))
    return [fmt(headers), rule, *map(fmt, rows), *([rule] if footer else []), *map(fmt, footer)]


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---", *("---:" for _ in headers[1:])]
    return ["| " + " | ".join(r) + " |" for r in [headers, align, *rows]]


def environment_lines(versions: Mapping[str, str], extra: Mapping[str, str]) -> list[str]:
    """Describe the run: interpreter, platform, framework versions and settings."""
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        "versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        "settings: " + ", ".join(f"{key}={value}" for key, value in extra.items()),
    ]
