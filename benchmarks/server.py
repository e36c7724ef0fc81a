"""Server benchmark: req/s and latency of real servers on 127.0.0.1, driven by a bounded asyncio client.

ASGI apps run under uvicorn (1 worker, asyncio loop, httptools if installed else h11, no access log);
WSGI apps under gunicorn (1 sync worker). The load generator keeps ``--connections`` HTTP/1.1 keep-alive
connections busy for ``--duration`` seconds (after ``--warmup``) and reports requests per second and
p50/p99 latency, with ratios to Starlette (ASGI) and Flask (WSGI). Client and server share the machine's
cores, so compare ratios from one run, not absolute numbers.

Usage: ``python benchmarks/server.py [--servers ampulla,starlette] [--duration 5] [--connections 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks.scenarios import SCENARIOS, Response, Scenario  # noqa: E402

HOST = "127.0.0.1"
#: Scenarios served over sockets (a subset of ``benchmarks/scenarios.py``).
SERVER_SCENARIOS = ("hello", "route50")


@dataclass(frozen=True)
class Server:
    """An app under a server: what to start and which group's baseline it is compared to."""

    name: str  #: key used on the command line
    label: str  #: row heading
    kind: str  #: "uvicorn" or "gunicorn"
    target: str  #: ``module:factory`` (uvicorn ``--factory``) or ``module:factory()`` (gunicorn)
    distribution: str | None = None  #: reported version
    extra: tuple[str, ...] = ()  #: extra server command-line arguments

    @property
    def group(self) -> str:
        """``asgi`` or ``wsgi``: rows are compared within their group."""
        return "asgi" if self.kind == "uvicorn" else "wsgi"


SERVERS: dict[str, Server] = {
    s.name: s
    for s in (
        Server("ampulla", "Ampulla async (uvicorn)", "uvicorn", "benchmarks.apps.ampulla_async_app:create_app",
               "ampulla", ("--interface", "asgi3")),
        Server("ampulla-def", "Ampulla def (uvicorn)", "uvicorn", "benchmarks.apps.ampulla_app:create_app",
               "ampulla", ("--interface", "asgi3")),
        Server("starlette", "Starlette (uvicorn)", "uvicorn", "benchmarks.apps.starlette_app:create_app", "starlette"),
        Server("quart", "Quart (uvicorn)", "uvicorn", "benchmarks.apps.quart_app:create_app", "quart"),
        Server("fastapi", "FastAPI (uvicorn)", "uvicorn", "benchmarks.apps.fastapi_app:create_app", "fastapi"),
        Server("bare-asgi", "bare ASGI (uvicorn)", "uvicorn", "benchmarks.apps.bare_asgi_app:create_app", None,
               ("--lifespan", "off")),
        Server("ampulla-wsgi", "Ampulla (gunicorn)", "gunicorn", "benchmarks.apps.ampulla_app:create_app()", "ampulla"),
        Server("flask", "Flask (gunicorn)", "gunicorn", "benchmarks.apps.flask_app:create_app()", "flask"),
    )
}
BASELINES = {"asgi": "starlette", "wsgi": "flask"}


def http_parser() -> str:
    """uvicorn's ``--http``: httptools when installed, else h11."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def command(server: Server, port: int) -> list[str]:
    """The command line starting ``server`` on ``port``."""
    if server.kind == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", server.target, "--factory",
            "--host", HOST, "--port", str(port), "--workers", "1", "--loop", "asyncio",
            "--http", http_parser(), "--no-access-log", "--log-level", "warning", *server.extra,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
        "--bind", f"{HOST}:{port}", "--log-level", "warning", *server.extra, server.target,
    ]  # fmt: skip


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``pgid`` (Linux)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(server: Server, log: IO[bytes], timeout: float = 20.0) -> Iterator[tuple[int, int]]:
    """Start ``server`` on a free port, wait until it accepts connections, yield (port, PID), stop it.

    The server starts in a new session, so its PID is also the process group id of it and its workers.
    """
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    proc = subprocess.Popen(
        command(server, port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
        yield port, proc.pid
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a server we started: SIGTERM to its PID (gunicorn's master stops its worker), bounded waits.

    Only if it outlives ``timeout`` is its own process group (the session it was started in: the server and
    its worker, nothing else) killed.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


# ---------------------------------------------------------------------------------------------- client


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
    """One server on one scenario."""

    server: str
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
    def rps(self) -> float:
        """Requests per second over the measured window (the median round's once merged)."""
        if self.round_rps:
            return statistics.median(self.round_rps)
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def merge(cls, rounds: Sequence[LoadResult]) -> LoadResult:
        """One result from several rounds: median req/s, pooled latencies, mean CPU shares, any error."""
        first = rounds[0]
        merged = cls(first.server, first.scenario, error="; ".join(r.error for r in rounds if r.error))
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

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile ``q`` (0-100) in milliseconds."""
        if len(self.latencies_ns) < 2:
            return None
        cuts = statistics.quantiles(self.latencies_ns, n=1000, method="inclusive")
        return cuts[min(998, max(0, round(q * 10) - 1))] / 1e6


async def check(port: int, scenario: Scenario) -> list[str]:
    """Send one request on a fresh connection; return the differences from the expected answer."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        writer.write(raw_request(scenario))
        response, _ = await asyncio.wait_for(read_response(reader), 10)
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


def render(results: dict[str, dict[str, LoadResult]], scenarios: Sequence[str], markdown: bool) -> str:
    """Rows = servers; per scenario: req/s, ratio to the group's baseline, p50/p99 latency, CPU shares."""
    headers = ["server"]
    for name in scenarios:
        headers += [f"{name} req/s", f"{name} vs base", f"{name} p50 ms", f"{name} p99 ms", f"{name} CPU s/c"]
    rows: list[list[str]] = []
    for server_name, row in results.items():
        server = SERVERS[server_name]
        base = results.get(BASELINES[server.group], {})
        cells = [server.label]
        for name in scenarios:
            res = row.get(name)
            if res is None or res.error or not res.requests:
                cells += ["FAIL" if res is not None else "-", "-", "-", "-", "-"]
                continue
            base_res = base.get(name)
            ratio = res.rps / base_res.rps if base_res is not None and base_res.rps else None
            p50, p99 = res.percentile_ms(50), res.percentile_ms(99)
            cells += [
                f"{res.rps:.0f}",
                "-" if ratio is None else f"{ratio:.2f}",
                "-" if p50 is None else f"{p50:.2f}",
                "-" if p99 is None else f"{p99:.2f}",
                f"{res.server_cpu:.0%}/{res.client_cpu:.0%}",
            ]
        rows.append(cells)
    if markdown:
        align = ["---", *("---:" for _ in headers[1:])]
        lines = ["| " + " | ".join(r) + " |" for r in [headers, align, *rows]]
    else:
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                 for r in [headers, *rows]]  # fmt: skip
    lines += [
        "",
        "req/s over the measured window (median round); 'vs base' = req/s divided by Starlette's (uvicorn",
        "rows) or Flask's (gunicorn rows) in the same run: above 1.00 is faster. Latency per request, client-side,",
        "over all rounds. CPU s/c = share of one core used by the server (all its processes) / by the client.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown server {', '.join(unknown) or '(none)'}; choose from: "
                                         f"{', '.join(SERVERS)}")  # fmt: skip
    return names


def _scenario_names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario {', '.join(unknown) or '(none)'}")
    return names


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {value}")
        return number

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="benchmarks/server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=_names, default=list(SERVERS), help=f"subset of: {', '.join(SERVERS)}")
    parser.add_argument("--scenarios", type=_scenario_names, default=list(SERVER_SCENARIOS),
                        help=f"scenarios (default: {','.join(SERVER_SCENARIOS)})")  # fmt: skip
    parser.add_argument("--connections", type=_positive(int), default=32, help="concurrent connections (32)")
    parser.add_argument("--duration", type=_positive(float), default=5.0, help="measured seconds per cell (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell (1)")
    parser.add_argument("--rounds", type=_positive(int), default=1,
                        help="passes over all servers, order rotated; req/s is the median round's (1)")  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to PATH as JSON")
    args = parser.parse_args(argv)
    for server in list(args.servers):
        base = BASELINES[SERVERS[server].group]
        if base not in args.servers:
            args.servers.append(base)
    args.servers = [name for name in SERVERS if name in args.servers]  # registry order
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _missing(server: Server) -> str | None:
    """Why ``server`` cannot run here (its server package or its app module does not import), or ``None``."""
    if importlib.util.find_spec(server.kind) is None:
        return f"{server.kind} is not installed"
    module = server.target.partition(":")[0]
    try:
        importlib.import_module(module)
    except Exception as exc:  # as in run.py: any failure to import the app module means "skip"
        return f"cannot import {module} ({type(exc).__name__}: {exc})"
    return None


def run_server(
    server: Server, scenarios: Sequence[Scenario], args: argparse.Namespace, logs: Path
) -> dict[str, LoadResult]:
    """Start ``server``, check then load it on every scenario, stop it; a failure is a result with ``error``."""
    log_path = logs / f"{server.name}.log"
    row: dict[str, LoadResult] = {}
    try:
        with log_path.open("wb") as log, running(server, log) as (port, pid):
            _log(f"[{server.label}] port {port}: {' '.join(command(server, port)[1:4])} ...")
            for scenario in scenarios:
                problems = asyncio.run(check(port, scenario))
                if problems:
                    row[scenario.name] = LoadResult(server.name, scenario.name, error="; ".join(problems))
                    _log(f"  FAIL {scenario.name}: {'; '.join(problems)}")
                    continue
                res = asyncio.run(load(port, pid, scenario, args.connections, args.warmup, args.duration))
                res.server = server.name
                row[scenario.name] = res
                _log(f"  {scenario.name}: {res.rps:.0f} req/s, p50 {res.percentile_ms(50) or 0:.2f} ms, "
                     f"p99 {res.percentile_ms(99) or 0:.2f} ms, {res.errors} errors, {res.reconnects} "
                     f"reconnects, CPU: server {res.server_cpu:.0%}, client {res.client_cpu:.0%} "
                     f"{res.error}")  # fmt: skip
    except Exception as exc:
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        _log(f"FAIL {server.label}: {exc}\n{tail}")
        for scenario in scenarios:
            row.setdefault(scenario.name, LoadResult(server.name, scenario.name, error=str(exc)))
    return row


def main(argv: Sequence[str] | None = None) -> int:
    """Run every selected server on every scenario; return 1 on a wrong answer or a failed server."""
    args = parse_args(argv)
    scenarios = [SCENARIOS[name] for name in args.scenarios]
    servers: list[Server] = []
    for name in args.servers:
        reason = _missing(SERVERS[name])
        if reason is None:
            servers.append(SERVERS[name])
        else:
            _log(f"skipping {SERVERS[name].label}: {reason}")
    rounds: dict[str, dict[str, list[LoadResult]]] = {s.name: {} for s in servers}
    with tempfile.TemporaryDirectory(prefix="ampulla-bench-") as logs:
        for round_no in range(args.rounds):
            shift = round_no % max(len(servers), 1)  # rotate so no server always runs first
            for server in servers[shift:] + servers[:shift]:
                for scenario, res in run_server(server, scenarios, args, Path(logs)).items():
                    rounds[server.name].setdefault(scenario, []).append(res)
    results = {name: {sc: LoadResult.merge(rs) for sc, rs in row.items()} for name, row in rounds.items()}
    failed = any(r.error for row in results.values() for r in row.values())

    versions = {name: _version(SERVERS[name].distribution) for name in results}
    tools = {s: _version(s) for s in ("uvicorn", "gunicorn", "h11", "httptools")}
    print()
    for line in (
        f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs for client and server",
        "servers: " + ", ".join(f"{k} {v}" for k, v in tools.items()) + f"; uvicorn --http {http_parser()}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"settings: connections={args.connections}, duration={args.duration}s, warmup={args.warmup}s, "
        f"rounds={args.rounds}",
    ):
        print(f"<!-- {line} -->" if args.markdown else line)
    print()
    print(render(results, args.scenarios, args.markdown))
    if args.json is not None:
        payload = {
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "versions": versions | tools,
            "results": [
                {"server": r.server, "scenario": r.scenario, "rps": r.rps, "round_rps": r.round_rps,
                 "requests": r.requests, "errors": r.errors, "reconnects": r.reconnects,
                 "p50_ms": r.percentile_ms(50), "p99_ms": r.percentile_ms(99), "server_cpu": r.server_cpu,
                 "client_cpu": r.client_cpu, "error": r.error}
                for row in results.values() for r in row.values()
            ],
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if failed:
        _log("\nFAILED: see the FAIL lines above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
