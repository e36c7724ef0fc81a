"""A bounded asyncio HTTP/1.1 load generator with keep-alive, and the probes the load and fault tests share.

``run_load`` sends a fixed number of requests over a fixed number of keep-alive connections to 127.0.0.1 and
measures each one; nothing in it is unbounded: every request has a time limit, the run has a deadline, a
connection that breaks is replaced (never retried blindly: a POST whose answer was lost is counted as an
error, not sent twice). ``SimulatedUser`` is one browser: a connection and a cookie jar.

The probes read ``/proc`` (worker PIDs, resident memory, open file descriptors) and PostgreSQL, and
:data:`FIGURES` collects the numbers the tests report (printed, and written to
``test-artifacts/load-figures.md`` at the repository root).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
FIGURES_PATH = ARTIFACTS / "load-figures.md"

#: The largest response head (status line and headers) accepted.
MAX_HEAD = 64 * 1024
#: The largest response body kept in memory.
MAX_BODY = 64 * 1024 * 1024


def load_scale() -> float:
    """``AMPULLA_LOAD_SCALE`` (default 1): the factor applied to every request count of the load tests.

    Raises:
        ValueError: The variable is not a positive number.
    """
    raw = os.environ.get("AMPULLA_LOAD_SCALE", "").strip()
    if not raw:
        return 1.0
    value = float(raw)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"AMPULLA_LOAD_SCALE must be a positive number, not {raw!r}")
    return value


def scaled(count: int, minimum: int = 1) -> int:
    """``count`` times :func:`load_scale`, at least ``minimum``."""
    return max(minimum, round(count * load_scale()))


# ---------------------------------------------------------------------------------------------- HTTP/1.1
class ProtocolError(Exception):
    """The server's answer is not valid HTTP/1.1 (or is larger than this client accepts)."""


@dataclass(slots=True)
class Request:
    """One request to send (``body`` is sent with a ``Content-Length``)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    kind: str = ""  # groups the request in the figures (e.g. "GET /")

    @classmethod
    def json(cls, method: str, path: str, document: Any, kind: str = "") -> Request:
        return cls(method, path, (("Content-Type", "application/json"),), json.dumps(document).encode(), kind)

    @classmethod
    def form(cls, path: str, fields: dict[str, str], kind: str = "") -> Request:
        body = urlencode(fields).encode()
        return cls("POST", path, (("Content-Type", "application/x-www-form-urlencoded"),), body, kind)


@dataclass(slots=True)
class Reply:
    """A response: status, headers in order, the whole body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One HTTP/1.1 connection to ``host:port``, kept alive between requests and reopened when it closes."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.opened = 0  # TCP connections made (keep-alive reuse shows as requests >> opened)

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        self.opened += 1

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def abort(self) -> None:
        """Drop the connection at once (an RST when data is unread): a client that goes away."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def request(self, req: Request, timeout: float | None = None) -> Reply:
        """Send ``req`` and read the whole answer within ``timeout`` seconds (default: the connection's).

        Raises:
            TimeoutError: No complete answer in time (the connection is dropped).
            OSError, asyncio.IncompleteReadError, ProtocolError: The connection broke or the answer is bad.
        """
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await self._exchange(req)
        except BaseException:
            self.abort()
            raise

    def _head(self, req: Request) -> bytes:
        lines = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.extend(f"{name}: {value}" for name, value in req.headers)
        if req.body or req.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(req.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send_partial(self, req: Request, fraction: float) -> None:
        """Send the head and only ``fraction`` of ``req``'s body, then stop (an upload cut short)."""
        if self._writer is None:
            await self._open()
        assert self._writer is not None
        self._writer.write(self._head(req) + req.body[: int(len(req.body) * fraction)])
        await self._writer.drain()

    async def start_download(self, req: Request, body_bytes: int) -> Reply:
        """Send ``req`` and read the head and about ``body_bytes`` of the body, leaving the rest unread."""
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head(req) + req.body)
        await self._writer.drain()
        status, headers = await self._read_head(self._reader)
        data = b""
        while len(data) < body_bytes:
            chunk = await self._reader.read(65536)
            if not chunk:
                break
            data += chunk
        return Reply(status, headers, data)

    async def _exchange(self, req: Request) -> Reply:
        if self._writer is None or self._writer.is_closing():
            await self._open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head(req) + req.body)
        await self._writer.drain()
        reader = self._reader
        status, headers = await self._read_head(reader)
        reply = Reply(status, headers, b"")
        length = reply.header("Content-Length")
        chunked = "chunked" in (reply.header("Transfer-Encoding") or "").lower()
        keep_alive = (reply.header("Connection") or "").lower() != "close"
        if req.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif chunked:
            reply.body = await self._read_chunked(reader)
        elif length is not None:
            size = int(length)
            if size > MAX_BODY:
                raise ProtocolError(f"a body of {size} bytes is larger than {MAX_BODY}")
            reply.body = await reader.readexactly(size)
        else:
            reply.body = await reader.read(MAX_BODY)  # delimited by the server closing the connection
            keep_alive = False
        if not keep_alive:
            await self.close()
        return reply

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as e:
            raise ProtocolError("the response head is too large") from e
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line!r}")
            headers.append((name.strip(), value.strip()))
        return int(parts[1]), headers

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        size_total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            size_total += size
            if size_total > MAX_BODY:
                raise ProtocolError(f"a chunked body larger than {MAX_BODY} bytes")
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("a chunk is not followed by CRLF")


#: Exceptions that mean "this request got no (complete) answer".
TRANSPORT_ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError, ValueError)


# ---------------------------------------------------------------------------------------------- the load run
@dataclass
class LoadResult:
    """What a run measured."""

    name: str
    planned: int
    duration: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    connections_opened: int = 0
    stopped_by_deadline: bool = False

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.duration if self.duration > 0 else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in seconds (nearest rank)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def summary(self) -> str:
        return (
            f"{self.name}: {self.sent}/{self.planned} requests in {self.duration:.1f} s = {self.rps:.0f} req/s, "
            f"p50 {self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms, "
            f"max {self.percentile(100) * 1000:.1f} ms, statuses {dict(sorted(self.statuses.items()))}, "
            f"errors {dict(self.errors)}, connections {self.connections_opened}"
            + (" (STOPPED BY DEADLINE)" if self.stopped_by_deadline else "")
        )


async def run_load(
    port: int,
    make_request: Callable[[int], Request],
    total: int,
    *,
    concurrency: int = 32,
    timeout: float = 30.0,
    deadline: float = 300.0,
    on_reply: Callable[[int, Request, Reply], None] | None = None,
    requests_per_connection: int = 0,
    name: str = "load",
    host: str = "127.0.0.1",
) -> LoadResult:
    """Send ``make_request(i)`` for ``i`` in ``range(total)`` over ``concurrency`` keep-alive connections.

    Args:
        port: The server's port on ``host``.
        make_request: Builds request number ``i``.
        total: How many requests to send.
        concurrency: Connections (each has one request in flight at a time).
        timeout: Seconds allowed for each request.
        deadline: Seconds after which no new request starts (the result says so).
        on_reply: Called with every complete answer (for checks such as collecting created ids).
        requests_per_connection: Reconnect after this many requests (0: keep each connection for the whole
            run); spreads the connections over the workers of a server that shares one listening socket.
        name: The run's name in the figures.
        host: The server's address.
    """
    result = LoadResult(name, total)
    counter = iter(range(total))
    started = time.perf_counter()
    stop_at = started + deadline

    async def worker() -> None:
        conn = Connection(host, port, timeout)
        on_this_connection = 0
        try:
            for i in counter:
                if time.perf_counter() > stop_at:
                    result.stopped_by_deadline = True
                    return
                if requests_per_connection and on_this_connection >= requests_per_connection:
                    await conn.close()
                    on_this_connection = 0
                on_this_connection += 1
                req = make_request(i)
                t0 = time.perf_counter()
                try:
                    reply = await conn.request(req)
                except TRANSPORT_ERRORS as e:
                    result.errors[type(e).__name__] += 1
                    continue
                result.latencies.append(time.perf_counter() - t0)
                result.statuses[reply.status] += 1
                if on_reply is not None:
                    on_reply(i, req, reply)
        finally:
            result.connections_opened += conn.opened
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, total)))))
    result.duration = time.perf_counter() - started
    return result


def load(port: int, make_request: Callable[[int], Request], total: int, **kwargs: Any) -> LoadResult:
    """:func:`run_load` from synchronous code."""
    return asyncio.run(run_load(port, make_request, total, **kwargs))


# ---------------------------------------------------------------------------------------------- browsers
_COOKIE_DELETED = re.compile(r";\s*(max-age=0|expires=[^;]*19[0-9]{2}\b)", re.IGNORECASE)


class CookieJar:
    """The cookies of one simulated browser (one host, path ``/``; enough for the example app)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def update(self, reply: Reply) -> None:
        for line in reply.header_list("Set-Cookie"):
            pair = line.split(";", 1)[0]
            name, _, value = pair.partition("=")
            name = name.strip()
            if _COOKIE_DELETED.search(line) or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value.strip()

    def header(self) -> tuple[tuple[str, str], ...]:
        if not self.cookies:
            return ()
        return (("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())),)


class SimulatedUser:
    """One browser: its own keep-alive connection and cookie jar; records the latency of each exchange."""

    def __init__(self, port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
        self.conn = Connection(host, port, timeout)
        self.jar = CookieJar()
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()

    async def send(self, req: Request) -> Reply:
        req = Request(req.method, req.path, req.headers + self.jar.header(), req.body, req.kind)
        t0 = time.perf_counter()
        reply = await self.conn.request(req)
        self.latencies.append(time.perf_counter() - t0)
        self.statuses[reply.status] += 1
        self.jar.update(reply)
        return reply

    async def get(self, path: str) -> Reply:
        return await self.send(Request("GET", path))

    async def post_form(self, path: str, fields: dict[str, str]) -> Reply:
        return await self.send(Request.form(path, fields))

    async def close(self) -> None:
        await self.conn.close()


# ---------------------------------------------------------------------------------------------- /proc probes
def children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ProcessLookupError(pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> list[str]:
    """What each open file descriptor of ``pid`` points to (``socket:[...]``, a path, ``pipe:[...]``...)."""
    folder = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(folder):
        with contextlib.suppress(OSError):
            targets.append(os.readlink(f"{folder}/{fd}"))
    return sorted(targets)


def _tcp_sockets() -> dict[str, tuple[int, int, str]]:
    """``socket:[inode]`` -> (local port, remote port, state) for every TCP socket of this network namespace."""
    table: dict[str, tuple[int, int, str]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            table[f"socket:[{inode}]"] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state)
    return table


def fd_kinds(pid: int, server_port: int, db_ports: Sequence[int] = ()) -> Counter[str]:
    """The open descriptors of ``pid`` by kind: ``client`` (connections to ``server_port``), ``listen``,
    ``db`` (connections to ``db_ports``), ``socket`` (other sockets), ``tmpfile`` (deleted files: spooled
    uploads), ``file:<name>`` (regular files), ``pipe``, ``other``."""
    sockets = _tcp_sockets()
    kinds: Counter[str] = Counter()
    for target in open_fds(pid):
        if target.startswith("socket:"):
            info = sockets.get(target)
            if info is None:
                kinds["socket"] += 1
            elif info[2] == "0A":
                kinds["listen"] += 1
            elif info[0] == server_port:
                kinds["client"] += 1
            elif info[1] in db_ports:
                kinds["db"] += 1
            else:
                kinds["socket"] += 1
        elif target.endswith(" (deleted)"):
            kinds["tmpfile"] += 1
        elif target.startswith("/"):
            kinds[f"file:{os.path.basename(target)}"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        else:
            kinds["other"] += 1
    return kinds


_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker", "forkserver")


def worker_pids(master: int, expected: int, timeout: float = 20.0) -> list[int]:
    """The worker processes under ``master`` (helpers such as the resource tracker left out).

    Waits (bounded) until ``expected`` workers exist.

    Raises:
        RuntimeError: Not ``expected`` workers within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    found: list[int] = []
    while time.monotonic() < deadline:
        found = [pid for pid in descendants(master) if not any(h in cmdline(pid) for h in _HELPERS)]
        if len(found) == expected:
            return found
        time.sleep(0.1)
    details = {pid: cmdline(pid) for pid in descendants(master)}
    raise RuntimeError(f"expected {expected} workers under {master}, found {details}")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------- PostgreSQL
_DB_NAME = re.compile(r"^ampulla_test_(\d+)_[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def plain_dsn(url: str) -> str:
    """A libpq DSN (``postgresql://...``) for a SQLAlchemy URL that may name a driver."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A database of its own (``ampulla_test_<pid>_<hex>``, as in ``tests/db``) on ``url``'s server.

    Yields its URL; drops it at the end (and databases of that pattern whose process is gone).
    """
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"ampulla_test_{os.getpid()}_{secrets.token_hex(4)}"
    dsn = plain_dsn(url)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        for (stale,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ampulla_test_%'"):
            match = _DB_NAME.match(stale)
            if match and not _pid_alive(int(match[1])):
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_backends(url: str, application_name: str) -> list[tuple[int, str, str]]:
    """``(pid, state, query)`` of the server connections tagged with ``application_name``."""
    import psycopg

    with psycopg.connect(plain_dsn(url), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pid, coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return [(int(pid), str(state), str(query)) for pid, state, query in rows]


# ---------------------------------------------------------------------------------------------- figures
@dataclass
class Figures:
    """The numbers the load and fault tests report, kept for the whole test session."""

    load: list[dict[str, Any]] = field(default_factory=list)
    memory: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _written: tuple[int, ...] = ()

    def add_load(self, server: str, scenario: str, result: LoadResult, lost: int = 0) -> None:
        row = {
            "server": server, "scenario": scenario, "requests": result.sent, "rps": result.rps,
            "p50_ms": result.percentile(50) * 1000, "p99_ms": result.percentile(99) * 1000,
            "5xx": result.server_errors, "errors": sum(result.errors.values()), "lost": lost,
        }  # fmt: skip
        self.load.append(row)
        print(f"\n[load] {server} {scenario}: {result.summary()}; lost {lost}")

    def add_memory(self, server: str, pid: int, before_kib: int, after_kib: int, requests: int) -> None:
        growth = (after_kib - before_kib) / before_kib * 100
        self.memory.append(
            {"server": server, "pid": pid, "before": before_kib, "after": after_kib, "growth": growth,
             "requests": requests}
        )  # fmt: skip
        print(f"\n[memory] {server} worker {pid}: {before_kib} KiB -> {after_kib} KiB ({growth:+.2f} %)")

    def add_fault(self, fault: str, server: str, injected: int, survived: int, lost: int, detail: str = "") -> None:
        self.faults.append(
            {"fault": fault, "server": server, "injected": injected, "survived": survived, "lost": lost,
             "detail": detail}
        )  # fmt: skip
        print(f"\n[fault] {server} {fault}: injected {injected}, survived {survived}, lost {lost}. {detail}")

    def render(self) -> str:
        out = [f"# Load and fault figures ({time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} cores, "
               f"AMPULLA_LOAD_SCALE={load_scale():g})", ""]  # fmt: skip
        if self.load:
            out += ["## Load", "", "| server | scenario | requests | req/s | p50 ms | p99 ms | 5xx | errors | lost |",
                    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
            for r in self.load:
                out.append(
                    f"| {r['server']} | {r['scenario']} | {r['requests']} | {r['rps']:.0f} | {r['p50_ms']:.1f} "
                    f"| {r['p99_ms']:.1f} | {r['5xx']} | {r['errors']} | {r['lost']} |"
                )
            out.append("")
        if self.memory:
            out += ["## Worker memory (RSS after warm-up -> end)", "",
                    "| server | worker | requests | RSS before KiB | RSS after KiB | growth |",
                    "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
            for m in self.memory:
                out.append(
                    f"| {m['server']} | {m['pid']} | {m['requests']} | {m['before']} | {m['after']} "
                    f"| {m['growth']:+.2f} % |"
                )
            out.append("")
        if self.faults:
            out += ["## Faults", "", "| fault | server | injected | survived | lost | detail |",
                    "| --- | --- | ---: | ---: | ---: | --- |"]  # fmt: skip
            for f in self.faults:
                out.append(
                    f"| {f['fault']} | {f['server']} | {f['injected']} | {f['survived']} | {f['lost']} "
                    f"| {f['detail']} |"
                )
            total = sum(f["injected"] for f in self.faults)
            survived = sum(f["survived"] for f in self.faults)
            lost = sum(f["lost"] for f in self.faults)
            out += ["", f"Faults injected: {total}, survived: {survived}, lost: {lost}.", ""]
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"

    def write(self) -> None:
        """Write (and print) the figures, unless nothing was added since the last write."""
        size = (len(self.load), len(self.memory), len(self.faults), len(self.notes))
        if not any(size) or size == self._written:
            return
        self._written = size
        text = self.render()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        FIGURES_PATH.write_text(text)
        print(f"\n{text}\n(written to {FIGURES_PATH})")


#: The figures of this test session (both test modules add to it; each writes the file at the end).
FIGURES = Figures()


def sample_ids(ids: Sequence[int], k: int = 5) -> list[int]:
    """A few values of ``ids`` for an assertion message."""
    return list(ids[:k])
