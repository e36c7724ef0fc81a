"""Server benchmark: req/s and latency of real servers on 127.0.0.1, driven by a bounded asyncio client.

Each row is a framework's app under one server, always one worker process:

* ``gunicorn-sync``, ``gunicorn-gthread`` (``--threads``, 4) and ``granian-wsgi`` (``--blocking-threads``,
  the same count) run the WSGI apps: Ampulla, Flask, Falcon (and the bare WSGI callable);
* ``uvicorn`` (httptools and uvloop when installed) and ``granian`` (ASGI interface, one runtime thread) run
  the ASGI apps: Ampulla with ``async def`` views, Ampulla with ``def`` views, Starlette, FastAPI (and
  Starlette with ``def`` endpoints, the bare ASGI callable).

Scenarios (requests and expected answers from :mod:`benchmarks.scenarios`): ``hello`` (``GET /``), ``json``
(``query_json``: query string to JSON), ``db`` (``orm``: one SQLite row by primary key as JSON, served by the
``benchmarks/apps/orm_*.py`` apps), and any other registered scenario by its name (``route50``...). The load
generator keeps ``--connections`` HTTP/1.1 keep-alive connections busy for ``--duration`` seconds (after
``--warmup``) and reports requests per second, p50/p99 latency, CPU shares, and each row's req/s divided by the
best peer's on the same server (Flask or Falcon on the WSGI servers, Starlette or FastAPI on the ASGI ones).
Client and server share the machine's cores, so compare ratios from one run, not absolute numbers.

Usage: ``python benchmarks/server.py [--servers uvicorn,gunicorn-sync] [--frameworks ampulla,falcon]
[--scenarios hello,json,db] [--duration 5] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks.scenarios import SCENARIOS, Response, Scenario  # noqa: E402

HOST = "127.0.0.1"
#: Short names of the registry scenarios this benchmark runs by default (``--scenarios`` also takes any
#: registry name, e.g. ``route50``).
SCENARIO_ALIASES = {"hello": "hello", "json": "query_json", "db": "orm"}
DEFAULT_SCENARIOS = ("hello", "json", "db")
#: Threads of gunicorn's gthread worker and of granian's WSGI blocking pool (``--threads``).
DEFAULT_THREADS = 4

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ServerKind:
    """A server and how it is started: one worker process, listening on 127.0.0.1."""

    name: str  #: key used on the command line
    label: str  #: row heading
    protocol: str  #: "wsgi" or "asgi": which apps it runs
    package: str  #: the module that must import (and the distribution reported)


SERVER_KINDS: dict[str, ServerKind] = {
    s.name: s
    for s in (
        ServerKind("gunicorn-sync", "gunicorn sync", "wsgi", "gunicorn"),
        ServerKind("gunicorn-gthread", "gunicorn gthread", "wsgi", "gunicorn"),
        ServerKind("granian-wsgi", "granian WSGI", "wsgi", "granian"),
        ServerKind("uvicorn", "uvicorn", "asgi", "uvicorn"),
        ServerKind("granian", "granian ASGI", "asgi", "granian"),
    )
}


@dataclass(frozen=True)
class Framework:
    """An app family: the module serving each scenario under each protocol it speaks."""

    name: str  #: key used on the command line
    label: str  #: row heading
    role: str  #: "ampulla" (measured), "peer" (compared with) or "reference" (shown, compared with nothing)
    distribution: str | None  #: reported version
    apps: Mapping[str, tuple[str, str]]  #: protocol -> (app module, ORM app module) under benchmarks/apps/
    lifespan: bool = True  #: whether the app answers ASGI lifespan messages

    def module(self, protocol: str, factory: str) -> str:
        """The module under ``benchmarks.apps`` holding ``factory`` for ``protocol``."""
        app, orm = self.apps[protocol]
        return f"benchmarks.apps.{orm if factory == 'create_orm_app' else app}"


FRAMEWORKS: dict[str, Framework] = {
    f.name: f
    for f in (
        Framework("ampulla", "Ampulla", "ampulla", "ampulla",
                  {"wsgi": ("ampulla_app", "orm_ampulla"), "asgi": ("ampulla_async_app", "orm_ampulla_async")}),
        Framework("ampulla-def", "Ampulla def", "ampulla", "ampulla", {"asgi": ("ampulla_app", "orm_ampulla")}),
        Framework("flask", "Flask", "peer", "flask", {"wsgi": ("flask_app", "orm_flask")}),
        Framework("falcon", "Falcon", "peer", "falcon", {"wsgi": ("falcon_app", "orm_falcon")}),
        Framework("starlette", "Starlette", "peer", "starlette", {"asgi": ("starlette_app", "orm_starlette")}),
        Framework("fastapi", "FastAPI", "peer", "fastapi", {"asgi": ("fastapi_app", "orm_fastapi")}),
        Framework("starlette-def", "Starlette def", "reference", "starlette",
                  {"asgi": ("starlette_def_app", "orm_starlette_def")}),
        Framework("quart", "Quart", "reference", "quart", {"asgi": ("quart_app", "orm_quart")}),
        Framework("bare", "bare WSGI", "reference", None, {"wsgi": ("bare_app", "orm_bare")}),
        Framework("bare-asgi", "bare ASGI", "reference", None, {"asgi": ("bare_asgi_app", "orm_bare_asgi")},
                  lifespan=False),
    )
}  # fmt: skip
#: Frameworks run when ``--frameworks`` is not given (Quart only on request).
DEFAULT_FRAMEWORKS = tuple(name for name in FRAMEWORKS if name != "quart")


@dataclass(frozen=True)
class Row:
    """One framework under one server: a row of the report."""

    server: ServerKind
    framework: Framework

    @property
    def key(self) -> str:
        """``server/framework``, the row's key in the results."""
        return f"{self.server.name}/{self.framework.name}"

    def target(self, factory: str) -> str:
        """``module:factory`` of the app this row serves for a scenario built by ``factory``."""
        return f"{self.framework.module(self.server.protocol, factory)}:{factory}"


def rows_for(servers: Sequence[str], frameworks: Sequence[str]) -> list[Row]:
    """Every (server, framework) pair whose protocols match, servers in registry order then frameworks."""
    return [
        Row(SERVER_KINDS[s], FRAMEWORKS[f])
        for s in SERVER_KINDS
        if s in servers
        for f in FRAMEWORKS
        if f in frameworks and SERVER_KINDS[s].protocol in FRAMEWORKS[f].apps
    ]


def resolve_scenario(name: str) -> Scenario:
    """The registry scenario for a short name (``json`` is ``query_json``...), renamed to that short name."""
    scenario = SCENARIOS[SCENARIO_ALIASES.get(name, name)]
    return dataclasses.replace(scenario, name=name)


# ---------------------------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Settings:
    """Server settings shared by every row of a run."""

    threads: int = DEFAULT_THREADS  #: gthread threads, granian WSGI blocking threads
    loop: str = "asyncio"  #: event loop of uvicorn and granian: "asyncio" or "uvloop"
    http: str = "h11"  #: uvicorn's HTTP parser: "h11" or "httptools"


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here."""
    return importlib.util.find_spec(module) is not None


def default_settings(threads: int = DEFAULT_THREADS) -> Settings:
    """uvloop and httptools when installed (as ``uvicorn[standard]`` would), else asyncio and h11."""
    return Settings(
        threads=threads,
        loop="uvloop" if installed("uvloop") else "asyncio",
        http="httptools" if installed("httptools") else "h11",
    )


def command(row: Row, factory: str, port: int, settings: Settings) -> list[str]:
    """The command line starting ``row``'s app for ``factory`` on ``port``: one worker, no access log."""
    target, kind = row.target(factory), row.server.name
    if kind.startswith("gunicorn-"):
        worker = kind.removeprefix("gunicorn-")
        threads = ["--threads", str(settings.threads)] if worker == "gthread" else []
        return [
            sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", worker, *threads,
            "--bind", f"{HOST}:{port}", "--log-level", "warning", "--graceful-timeout", "3",
            f"{target}()",
        ]  # fmt: skip
    if kind == "uvicorn":
        lifespan = [] if row.framework.lifespan else ["--lifespan", "off"]
        return [
            sys.executable, "-m", "uvicorn", target, "--factory", "--interface", "asgi3",
            "--host", HOST, "--port", str(port), "--workers", "1", "--loop", settings.loop, "--http", settings.http,
            "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "3", *lifespan,
        ]  # fmt: skip
    if kind.startswith("granian"):
        if row.server.protocol == "wsgi":
            interface = ["--interface", "wsgi", "--blocking-threads", str(settings.threads)]
        else:
            interface = ["--interface", "asgi" if row.framework.lifespan else "asginl"]
        return [
            sys.executable, "-m", "granian", *interface, "--factory", "--host", HOST, "--port", str(port),
            "--workers", "1", "--runtime-threads", "1", "--loop", settings.loop, "--http", "1", "--no-ws",
            "--log-level", "warning", "--no-access-log", target,
        ]  # fmt: skip
    raise ValueError(f"unknown server {kind!r}")


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _group_stats(pgid: int) -> list[list[str]]:
    """The ``/proc/PID/stat`` fields after the command name of every live process in group ``pgid`` (Linux)."""
    stats = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ..., utime (11), stime (12)
            stats.append(fields)
    return stats


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies excepted)."""
    return bool(_group_stats(pgid))


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``pgid`` (Linux)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for fields in _group_stats(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(cmd: Sequence[str], log: IO[bytes], env: Mapping[str, str], timeout: float = 30.0) -> Iterator[int]:
    """Start ``cmd`` (a server that will listen on a port given in it), wait until it accepts, yield its port.

    The port is the value after ``--port`` or ``--bind HOST:``. The server starts in a new session, so its
    PID is also the process group id of it and its workers; it is stopped (:func:`stop`) however the block
    ends, a failed readiness wait, an exception or Ctrl-C included.
    """
    port = _port_of(cmd)
    proc = subprocess.Popen(
        list(cmd), cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with status {proc.returncode} before accepting connections")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not accepting connections after {timeout:.0f} s") from None
                time.sleep(0.05)
        yield proc.pid
    finally:
        stop(proc)


def _port_of(cmd: Sequence[str]) -> int:
    for i, arg in enumerate(cmd[:-1]):
        if arg == "--port":
            return int(cmd[i + 1])
        if arg == "--bind":
            return int(cmd[i + 1].rpartition(":")[2])
    raise ValueError(f"no --port or --bind in {cmd!r}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 8.0) -> None:
    """Stop a server we started and everything in its process group, with bounded waits.

    SIGTERM to its PID (the servers stop their workers on it); if it outlives ``timeout``, or if any process
    of its group (the session it was started in: the server and its workers, nothing else) is left once it
    has exited, SIGKILL to that group. An interruption (Ctrl-C) during the wait kills the group at once.
    """
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
    finally:
        deadline = time.monotonic() + timeout
        while group_alive(proc.pid) or proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1)


# ---------------------------------------------------------------------------------------------- client


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop: uvloop's when installed (a cheaper client leaves more CPU to the
    server it shares the cores with), else asyncio's."""
    if installed("uvloop"):
        uvloop = importlib.import_module("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def raw_request(scenario: Scenario) -> bytes:
    """The HTTP/1.1 request bytes for ``scenario`` (keep-alive)."""
    req = scenario.request
    target = req.path + (f"?{req.query}" if req.query else "")
    lines = [f"{req.method} {target} HTTP/1.1", f"Host: {HOST}", "User-Agent: ampulla-bench/1.0", "Accept: */*"]
    if req.body or req.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(req.body)}")
    if req.content_type is not None:
        lines.append(f"Content-Type: {req.content_type}")
    lines += [f"{name}: {value}" for name, value in req.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + req.body


async def read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """Read one response; return it and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(None, 2)[1])
    headers = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    fields = {name.lower(): value for name, value in headers}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return Response(status, headers, body), fields.get("connection", "").lower() == "close"


@dataclass
class LoadResult:
    """One row on one scenario."""

    row: str
    scenario: str
    requests: int = 0  #: completed inside the measured window
    seconds: float = 0.0
    errors: int = 0
    reconnects: int = 0
    client_cpu: float = 0.0  #: share of one core the load generator used in the window
    server_cpu: float = 0.0  #: share of one core the server (all its processes) used in the window
    latencies_ns: list[int] = field(default_factory=list, repr=False)
    error: str = ""
    round_rps: list[float] = field(default_factory=list)  #: per round, once merged

    @property
    def ok(self) -> bool:
        """Whether this is a measurement (no error, some requests)."""
        return not self.error and self.requests > 0

    @property
    def rps(self) -> float:
        """Requests per second over the measured window (the median round's once merged)."""
        if self.round_rps:
            return statistics.median(self.round_rps)
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def merge(cls, rounds: Sequence[LoadResult]) -> LoadResult:
        """One result from several rounds: median req/s, pooled latencies, mean CPU shares, any error."""
        first = rounds[0]
        merged = cls(first.row, first.scenario, error="; ".join(r.error for r in rounds if r.error))
        for r in rounds:
            merged.requests += r.requests
            merged.seconds += r.seconds
            merged.errors += r.errors
            merged.reconnects += r.reconnects
            merged.latencies_ns += r.latencies_ns
            merged.round_rps.append(r.rps)
        merged.client_cpu = statistics.fmean(r.client_cpu for r in rounds)
        merged.server_cpu = statistics.fmean(r.server_cpu for r in rounds)
        return merged

    @property
    def per_cpu_second(self) -> float | None:
        """Requests answered per CPU second of the server (all its processes): how much work each request cost
        the server, less sensitive than req/s to other processes taking the cores."""
        cpu = self.server_cpu * self.seconds
        return self.requests / cpu if cpu > 0 else None

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile ``q`` (0-100) in milliseconds."""
        if len(self.latencies_ns) < 2:
            return None
        cuts = statistics.quantiles(self.latencies_ns, n=1000, method="inclusive")
        return cuts[min(998, max(0, round(q * 10) - 1))] / 1e6


async def check(port: int, scenario: Scenario, timeout: float = 20.0) -> list[str]:
    """Send one request on a fresh connection; return the differences from the expected answer.

    ``timeout`` bounds the wait: a server may accept before its worker has loaded the app.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        writer.write(raw_request(scenario))
        response, _ = await asyncio.wait_for(read_response(reader), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return scenario.check(response)


async def load(
    port: int, pgid: int, scenario: Scenario, connections: int, warmup: float, duration: float
) -> LoadResult:
    """Keep ``connections`` connections busy; measure the window after ``warmup`` for ``duration`` s.

    Also samples the CPU time of this process and of the server's process group ``pgid`` over the window.
    Bounded: connections still busy ``warmup + duration + 30`` s after the start are cancelled (an error).
    """
    payload = raw_request(scenario)
    result = LoadResult("", scenario.name)
    begin = perf_counter_ns()
    window_start = begin + int(warmup * 1e9)
    window_end = window_start + int(duration * 1e9)
    latencies = result.latencies_ns

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while True:
                start = perf_counter_ns()
                if start >= window_end:
                    return
                writer.write(payload)
                try:
                    response, close = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    close, response = True, None
                end = perf_counter_ns()
                if response is not None and window_start <= start and end <= window_end:
                    if response.status == scenario.status:
                        result.requests += 1
                        latencies.append(end - start)
                    else:
                        result.errors += 1
                if close:  # e.g. gunicorn's sync worker closes after every response
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    result.reconnects += 1
        finally:
            writer.close()

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, (window_start - perf_counter_ns()) / 1e9))
        client, server = time.process_time(), group_cpu_seconds(pgid)
        await asyncio.sleep(max(0.0, (window_end - perf_counter_ns()) / 1e9))
        result.client_cpu = (time.process_time() - client) / duration
        result.server_cpu = (group_cpu_seconds(pgid) - server) / duration

    sampler = asyncio.ensure_future(sample_cpu())
    tasks = [asyncio.ensure_future(connection()) for _ in range(connections)]
    bound = warmup + duration + 30
    done, pending = await asyncio.wait(tasks, timeout=bound)
    await asyncio.wait_for(sampler, 5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if pending or failures:
        result.error = f"{len(pending)} connections hung, {len(failures)} failed: {failures[:1]!r}"
    result.seconds = duration
    return result


# ---------------------------------------------------------------------------------------------- report


def _version(distribution: str | None) -> str:
    if distribution is None:
        return "-"
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def best_peer(results: Mapping[str, Mapping[str, LoadResult]], rows: Sequence[Row], server: str,
              scenario: str) -> tuple[Row, float] | None:  # fmt: skip
    """The peer row (role ``peer``) with the highest req/s on ``server`` for ``scenario``, and that req/s."""
    best: tuple[Row, float] | None = None
    for row in rows:
        if row.server.name != server or row.framework.role != "peer":
            continue
        res = results.get(row.key, {}).get(scenario)
        if res is not None and res.ok and (best is None or res.rps > best[1]):
            best = (row, res.rps)
    return best


def render(results: Mapping[str, Mapping[str, LoadResult]], rows: Sequence[Row], scenarios: Sequence[Scenario],
           markdown: bool) -> str:  # fmt: skip
    """One table per scenario; rows = framework under server: req/s, ratio to the best peer, latency, CPU."""
    headers = ["server", "framework", "req/s", "vs best peer", "p50 ms", "p99 ms", "CPU s/c", "req/CPU-s"]
    lines: list[str] = []
    for scenario in scenarios:
        table: list[list[str]] = []
        for row in rows:
            res = results.get(row.key, {}).get(scenario.name)
            cells = [row.server.label, row.framework.label]
            if res is None or not res.ok:
                reason = "-" if res is None else ("skipped" if res.error.startswith("skipped") else "FAIL")
                table.append([*cells, reason, "-", "-", "-", "-", "-"])
                continue
            best = best_peer(results, rows, row.server.name, scenario.name)
            if best is None:
                ratio = "-"
            else:
                ratio = f"{res.rps / best[1]:.2f}"
                if best[0] == row:
                    ratio += " (best)"
            p50, p99 = res.percentile_ms(50), res.percentile_ms(99)
            table.append([
                *cells, f"{res.rps:.0f}", ratio, "-" if p50 is None else f"{p50:.2f}",
                "-" if p99 is None else f"{p99:.2f}", f"{res.server_cpu:.0%}/{res.client_cpu:.0%}",
                    "-" if res.per_cpu_second is None else f"{res.per_cpu_second:.0f}",
            ])  # fmt: skip
        request = scenario.request
        target = request.path + (f"?{request.query}" if request.query else "")
        title = f"{scenario.name}: {request.method} {target} ({scenario.description})"
        lines += ["", f"**{title}**" if markdown else title, ""]
        if markdown:
            align = ["---", "---", *("---:" for _ in headers[2:])]
            lines += ["| " + " | ".join(r) + " |" for r in [headers, align, *table]]
        else:
            widths = [max(len(r[i]) for r in [headers, *table]) for i in range(len(headers))]
            for r in [headers, *table]:
                lines.append(
                    "  ".join(
                        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                    )
                )
    lines += [
        "",
        "req/s over the measured window (median round); 'vs best peer' = req/s divided by the best peer's on the",
        "same server in the same run (Flask or Falcon on the WSGI servers, Starlette or FastAPI on the ASGI ones;",
        "'(best)' marks that peer): above 1.00 is faster. Latency per request, client-side, over all rounds.",
        "CPU s/c = share of one core used by the server (all its processes) / by the client; req/CPU-s = requests",
        "per CPU second of the server, over all rounds (what a request costs the server, whatever else ran).",
    ]
    return "\n".join(lines[1:])


# ---------------------------------------------------------------------------------------------- main


def _choices(registry: Mapping[str, Any], what: str) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in registry]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown) or '(none)'}; choose from: "
                                             f"{', '.join(registry)}")  # fmt: skip
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
    """Parse the command line; ``args.rows`` and ``args.scenario_list`` hold what to run."""
    parser = argparse.ArgumentParser(prog="benchmarks/server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers",
        type=_choices(SERVER_KINDS, "server"),
        default=list(SERVER_KINDS),
        help=f"subset of: {', '.join(SERVER_KINDS)} (all)",
    )
    parser.add_argument(
        "--frameworks",
        type=_choices(FRAMEWORKS, "framework"),
        default=list(DEFAULT_FRAMEWORKS),
        help=f"subset of: {', '.join(FRAMEWORKS)} (all but quart); each runs on the servers of its protocols",
    )
    scenario_names = {**SCENARIO_ALIASES, **{n: n for n in SCENARIOS}}
    parser.add_argument(
        "--scenarios",
        type=_choices(scenario_names, "scenario"),
        default=list(DEFAULT_SCENARIOS),
        help=f"{', '.join(SCENARIO_ALIASES)} (json = query_json, db = orm) or any scenario of "
        f"benchmarks/scenarios.py (default: {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--threads",
        type=_positive(int),
        default=DEFAULT_THREADS,
        help=f"threads of gunicorn's gthread worker and of granian's WSGI pool ({DEFAULT_THREADS})",
    )
    parser.add_argument("--connections", type=_positive(int), default=32, help="concurrent connections (32)")
    parser.add_argument("--duration", type=_positive(float), default=5.0, help="measured seconds per cell (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell (1)")
    parser.add_argument(
        "--rounds",
        type=_positive(int),
        default=1,
        help="passes over all rows, order rotated; req/s is the median round's (1)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to PATH as JSON")
    args = parser.parse_args(argv)  # fmt: skip
    args.rows = rows_for(args.servers, args.frameworks)
    if not args.rows:
        parser.error("no framework of --frameworks runs on a server of --servers (WSGI apps on gunicorn and "
                     "granian-wsgi, ASGI apps on uvicorn and granian)")  # fmt: skip
    args.scenario_list = [resolve_scenario(name) for name in dict.fromkeys(args.scenarios)]
    args.settings = default_settings(args.threads)
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _missing(row: Row, factory: str) -> str | None:
    """Why ``row`` cannot serve ``factory``'s scenarios here (server or app module not importable), or ``None``."""
    if not installed(row.server.package):
        return f"{row.server.package} is not installed"
    module = row.framework.module(row.server.protocol, factory)
    try:
        importlib.import_module(module)
    except Exception as exc:  # as in run.py: any failure to import the app module means "skip"
        return f"cannot import {module} ({type(exc).__name__}: {exc})"
    return None


def run_row(row: Row, scenarios: Sequence[Scenario], args: argparse.Namespace, logs: Path) -> dict[str, LoadResult]:
    """Serve ``row``'s app (one server process per app factory), check then load it on every scenario, stop it.

    A failure is a result with ``error``; a scenario whose app cannot be imported is ``skipped: <reason>``.
    """
    results: dict[str, LoadResult] = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]), TMPDIR=str(logs))
    for factory, group in _by_factory(scenarios).items():
        reason = _missing(row, factory)
        if reason is not None:
            for scenario in group:
                results[scenario.name] = LoadResult(row.key, scenario.name, error=f"skipped: {reason}")
            continue
        cmd = command(row, factory, free_port(), args.settings)
        log_path = logs / f"{row.key.replace('/', '_')}-{factory}.log"
        label = f"{row.framework.label} ({row.server.label})"
        try:
            with log_path.open("wb") as log, running(cmd, log, env) as pid:
                port = _port_of(cmd)
                _log(f"[{label}] port {port}: {row.target(factory)}")
                for scenario in group:
                    problems = run_async(check(port, scenario))
                    if problems:
                        results[scenario.name] = LoadResult(row.key, scenario.name, error="; ".join(problems))
                        _log(f"  FAIL {scenario.name}: {'; '.join(problems)}")
                        continue
                    res = run_async(load(port, pid, scenario, args.connections, args.warmup, args.duration))
                    res.row = row.key
                    results[scenario.name] = res
                    _log(f"  {scenario.name}: {res.rps:.0f} req/s, p50 {res.percentile_ms(50) or 0:.2f} ms, "
                         f"p99 {res.percentile_ms(99) or 0:.2f} ms, {res.errors} errors, {res.reconnects} "
                         f"reconnects, CPU: server {res.server_cpu:.0%}, client {res.client_cpu:.0%} "
                         f"{res.error}")  # fmt: skip
        except Exception as exc:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            _log(f"FAIL {label}: {exc}\n{tail}")
            for scenario in group:
                results.setdefault(scenario.name, LoadResult(row.key, scenario.name, error=str(exc) or repr(exc)))
    return results


def _by_factory(scenarios: Sequence[Scenario]) -> dict[str, list[Scenario]]:
    groups: dict[str, list[Scenario]] = {}
    for scenario in scenarios:
        groups.setdefault(scenario.factory, []).append(scenario)
    return groups


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through running(): the server in use is stopped


def main(argv: Sequence[str] | None = None) -> int:
    """Run every selected row on every scenario; return 1 on a wrong answer or a failed server.

    SIGTERM is turned into an exit that stops the server in use, as Ctrl-C does.
    """
    args = parse_args(argv)
    rows: list[Row] = args.rows
    scenarios: list[Scenario] = args.scenario_list
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        rounds: dict[str, dict[str, list[LoadResult]]] = {row.key: {} for row in rows}
        with tempfile.TemporaryDirectory(prefix="ampulla-bench-") as logs:
            for round_no in range(args.rounds):
                shift = round_no % len(rows)  # rotate so no row always runs first
                for row in rows[shift:] + rows[:shift]:
                    for name, res in run_row(row, scenarios, args, Path(logs)).items():
                        rounds[row.key].setdefault(name, []).append(res)
    finally:
        signal.signal(signal.SIGTERM, previous)
    results = {key: {name: LoadResult.merge(rs) for name, rs in row.items()} for key, row in rounds.items()}
    skipped = sorted({f"{r.row} {r.scenario}: {r.error}" for row in results.values() for r in row.values()
                      if r.error.startswith("skipped")})  # fmt: skip
    failed = any(r.error and not r.error.startswith("skipped") for row in results.values() for r in row.values())

    frameworks = {row.framework.name: _version(row.framework.distribution) for row in rows}
    tools = {s: _version(s) for s in ("gunicorn", "uvicorn", "granian", "httptools", "uvloop", "h11")}
    settings: Settings = args.settings
    print()
    for line in (
        f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs for client and server",
        "servers: " + ", ".join(f"{k} {v}" for k, v in tools.items()),
        f"one worker process each; gunicorn gthread --threads {settings.threads}, granian WSGI --blocking-threads "
        f"{settings.threads}, granian --runtime-threads 1; uvicorn --http {settings.http} --loop {settings.loop}, "
        f"granian --loop {settings.loop}; client on {'uvloop' if installed('uvloop') else 'asyncio'}",
        "frameworks: " + ", ".join(f"{k} {v}" for k, v in frameworks.items()),
        f"settings: connections={args.connections}, duration={args.duration}s, warmup={args.warmup}s, "
        f"rounds={args.rounds}",
        *skipped,
    ):
        print(f"<!-- {line} -->" if args.markdown else line)
    print()
    print(render(results, rows, scenarios, args.markdown))
    if args.json is not None:
        payload = {
            "settings": {"servers": args.servers, "frameworks": args.frameworks, "scenarios": args.scenarios,
                         "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
                         "rounds": args.rounds, **dataclasses.asdict(settings)},
            "versions": frameworks | tools,
            "results": [
                {"row": r.row, "scenario": r.scenario, "rps": r.rps, "round_rps": r.round_rps,
                 "requests": r.requests, "errors": r.errors, "reconnects": r.reconnects,
                 "p50_ms": r.percentile_ms(50), "p99_ms": r.percentile_ms(99), "server_cpu": r.server_cpu,
                 "client_cpu": r.client_cpu, "per_cpu_second": r.per_cpu_second, "error": r.error}
                for row in results.values() for r in row.values()
            ],
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if failed:
        _log("\nFAILED: see the FAIL lines above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
