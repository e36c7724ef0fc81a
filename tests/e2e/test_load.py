"""Load: the example app (``examples/users``) on PostgreSQL under gunicorn, uvicorn and granian with several
workers each, driven by the bounded load generator of ``loadgen.py`` on 127.0.0.1.

- Concurrent JSON POSTs to ``/api/v1/users/`` with unique names: every one answered 201, exactly that many
  rows afterwards, no 5xx.
- Simulated users, each with a cookie jar of their own, doing the form flow across workers (GET the form for
  its CSRF token, POST it, follow the redirect, see *their* flash and no one else's, then no flash on reload),
  with signed-cookie sessions and with ``RedisSessionInterface``.
- Memory: the resident size of each worker after a warm-up and after a long mixed run (``/``, the API's
  pages, ``/guest/<unique>``) grows less than 10 %.

Counts (CI budget: the module takes about 6-8 minutes on 2 cores) grow with ``AMPULLA_LOAD_SCALE`` (a factor,
e.g. ``AMPULLA_LOAD_SCALE=10`` for a long run). Skipped without ``AMPULLA_TEST_POSTGRES_URL``; the Redis flow
skips when no Redis answers at ``AMPULLA_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). Figures
(requests/s, p50/p99 latency, 5xx, lost) are printed and written to ``test-artifacts/load-figures.md``.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import loadgen
from .conftest import PYTHON, RunningServer, free_port, start_server, stop_server
from .loadgen import FIGURES, REPO_ROOT, Reply, Request, SimulatedUser, load_scale, scaled

PG_ENV = "AMPULLA_TEST_POSTGRES_URL"
REDIS_ENV = "AMPULLA_TEST_REDIS_URL"
LOAD_SERVERS = ("gunicorn", "uvicorn", "granian")
WORKERS = 3
CONCURRENCY = 32
#: Per server: JSON POSTs, and requests of the memory run (after the warm-up).
COUNTS = {
    "gunicorn": {"posts": 10_000, "memory": 100_000},
    "uvicorn": {"posts": 3_000, "memory": 20_000},
    "granian": {"posts": 3_000, "memory": 20_000},
}
WARM_UP = 5_000
MAX_RSS_GROWTH = 0.10
USERS = 32
FLOWS_PER_USER = 3
PASSWORD = "correct horse battery"
FLASH = re.compile(r'<p class="flash (\w+)" role="status">(.*?)</p>', re.S)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The example's ``user`` table, as its model creates it on PostgreSQL.
USER_DDL = (
    'CREATE TABLE "user" (id SERIAL PRIMARY KEY, name VARCHAR(64) UNIQUE, email VARCHAR(120) UNIQUE, '
    "role SMALLINT, password VARCHAR)"
)



def time_limit(seconds: float) -> pytest.MarkDecorator:
    """A pytest-timeout limit that grows with ``AMPULLA_LOAD_SCALE`` (the project default is 120 s)."""
    return pytest.mark.timeout(round(seconds * max(1.0, load_scale())))


WRAPPER = '''\
"""The example app for the load tests (written by tests/e2e/test_load.py): config from LOADAPP_CONFIG, and
sessions in Redis when LOADAPP_REDIS_URL is set."""

import json
import os
import sys

sys.path.insert(0, {repo!r})

from examples.users.app import create_app

app = create_app(json.loads(os.environ["LOADAPP_CONFIG"]))

if os.environ.get("LOADAPP_REDIS_URL"):
    import redis

    from ampulla.redis_sessions import RedisSessionInterface

    app.session_interface = RedisSessionInterface(
        redis.Redis.from_url(os.environ["LOADAPP_REDIS_URL"]), prefix=os.environ["LOADAPP_REDIS_PREFIX"]
    )
'''


@pytest.fixture(scope="session", autouse=True)
def _write_figures() -> Iterator[None]:
    yield
    FIGURES.write()


def load_server_command(name: str, port: int, module: str = "loadapp:app") -> list[str]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    commands = {
        "gunicorn": [
            PYTHON, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "5", module,
        ],
        "uvicorn": [
            PYTHON, "-m", "uvicorn", module, "--workers", str(WORKERS), "--interface", "asgi3", *bind,
            "--timeout-graceful-shutdown", "5", "--no-access-log",
        ],
        "granian": [PYTHON, "-m", "granian", "--interface", "asgi", "--workers", str(WORKERS), *bind, module],
    }  # fmt: skip
    return commands[name]


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this module, with the example's ``user`` table."""
    given = os.environ.get(PG_ENV)
    if not given:
        pytest.skip(f"{PG_ENV} is not set: the load tests run the example app on PostgreSQL")
    with loadgen.postgres_database(given) as url:
        # NOTE: created before any server starts: several workers running the example's create_all() at once
        # on an empty database race on CREATE TABLE (see test_workers_start_on_an_empty_database).
        _sql(url, USER_DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        # PERF: the database's commits do not wait for the WAL flush (halves a POST on this CI disk: 8 -> 4 ms
        # in process). Nothing crashes during the test, so nothing acknowledged can be lost by it.
        _sql(url, f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET synchronous_commit = off')
        FIGURES.notes.append("Load databases run with synchronous_commit = off (commits do not wait for the WAL "
                             "flush; no crash is simulated in the load tests).")  # fmt: skip
        yield url


def _sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(loadgen.plain_dsn(url), autocommit=True, connect_timeout=10) as conn:
        cursor = conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


@dataclass
class LoadServer:
    """The example app under one server with :data:`WORKERS` workers."""

    name: str
    server: RunningServer
    workers: list[int]
    folder: Path

    @property
    def port(self) -> int:
        return self.server.port


def _start(name: str, folder: Path, pg_url: str, *, redis_url: str = "", redis_prefix: str = "") -> LoadServer:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loadapp.py").write_text(WRAPPER.format(repo=str(REPO_ROOT)))
    config = {
        "SQLALCHEMY_DATABASE_URI": pg_url, "SECRET_KEY": secrets.token_hex(32), "PASSWORD_SCRYPT_N": 16,
        "AVATAR_FOLDER": str(folder / "avatars"),
    }  # fmt: skip
    environment = {
        "LOADAPP_CONFIG": json.dumps(config), "LOADAPP_REDIS_URL": redis_url, "LOADAPP_REDIS_PREFIX": redis_prefix,
        # The example's module builds a default app at import: point it at the same database and secret, so
        # nothing is written under examples/users/instance.
        "DATABASE_URL": pg_url, "SECRET_KEY": config["SECRET_KEY"],
    }  # fmt: skip
    port = free_port()
    label = f"{name}{'-redis' if redis_url else ''}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        running = start_server(label, load_server_command(name, port), port, folder / f"{label}.log", cwd=folder,
                               timeout=60)  # fmt: skip
    try:
        workers = loadgen.worker_pids(running.proc.pid, WORKERS)
    except BaseException:
        stop_server(running)
        raise
    return LoadServer(label, running, workers, folder)


@pytest.fixture(scope="module", params=LOAD_SERVERS)
def load_server(
    request: pytest.FixtureRequest, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadServer]:
    """The example app under each server in turn (signed-cookie sessions)."""
    name = str(request.param)
    served = _start(name, tmp_path_factory.mktemp(f"load-{name}"), pg_url)
    try:
        yield served
    finally:
        stop_server(served.server)


def _server_name(served: LoadServer) -> str:
    return served.name.removesuffix("-redis")


def _fail_message(served: LoadServer, result: loadgen.LoadResult) -> str:
    return f"{served.name}: {result.summary()}\n--- server output (tail) ---\n{served.server.output()[-4000:]}"


# ---------------------------------------------------------------------------------------------- POSTs
@time_limit(300)
def test_concurrent_posts_create_exactly_one_row_each(load_server: LoadServer, pg_url: str) -> None:
    served = load_server
    total = scaled(COUNTS[_server_name(served)]["posts"])
    run = f"{served.name}-{secrets.token_hex(3)}"
    created: dict[int, str] = {}
    bad: list[str] = []

    def make(i: int) -> Request:
        return Request.json("POST", "/api/v1/users/", {"name": f"{run}-{i}", "email": f"{run}-{i}@example.org",
                                                        "password": PASSWORD}, "POST /api/v1/users/")  # fmt: skip

    def check(i: int, req: Request, reply: Reply) -> None:
        if reply.status == 201:
            document = reply.json()
            if document.get("name") != f"{run}-{i}" or not isinstance(document.get("id"), int):
                bad.append(reply.text[:200])
            else:
                created[document["id"]] = document["name"]
        elif len(bad) < 20:
            bad.append(f"{reply.status} {reply.text[:200]}")

    result = loadgen.load(served.port, make, total, concurrency=CONCURRENCY, timeout=60, deadline=600,
                          on_reply=check, name=f"{total} POSTs")  # fmt: skip
    rows = _sql(pg_url, 'SELECT count(*), count(DISTINCT name) FROM "user" WHERE name LIKE %s', (f"{run}-%",))[0]
    lost = total - int(rows[0])
    FIGURES.add_load(served.name, f"POST /api/v1/users/ x{total} ({CONCURRENCY} conns)", result, lost=max(lost, 0))
    assert not result.stopped_by_deadline and result.sent == total, _fail_message(served, result)
    assert result.errors == Counter(), _fail_message(served, result)
    assert result.statuses == Counter({201: total}), f"{bad[:5]}\n{_fail_message(served, result)}"
    assert not bad, bad[:5]
    assert len(created) == total, "two answers named the same id"
    assert rows == (total, total), f"{rows[0]} rows ({rows[1]} distinct names) for {total} acknowledged POSTs"


# ---------------------------------------------------------------------------------------------- sessions and flashes
@dataclass
class FlowReport:
    flows: int = 0
    requests: int = 0
    problems: list[str] | None = None


async def _user_flows(port: int, run: str, users: int, flows: int) -> tuple[FlowReport, list[SimulatedUser]]:
    report = FlowReport(problems=[])
    assert report.problems is not None
    problems = report.problems
    people = [SimulatedUser(port, timeout=60) for _ in range(users)]

    async def one_user(u: int, person: SimulatedUser) -> None:
        for f in range(flows):
            name = f"{run}-u{u}-f{f}"
            form = await person.get("/users/new")
            token = CSRF.search(form.text)
            if form.status != 200 or token is None:
                problems.append(f"{name}: GET /users/new {form.status}")
                return
            created = await person.post_form("/users/new", {
                "csrf_token": html.unescape(token[1]), "name": name, "email": f"{name}@example.org",
                "password": PASSWORD,
            })  # fmt: skip
            location = created.header("Location") or ""
            if created.status != 302 or "/users/" not in location:
                problems.append(f"{name}: POST /users/new {created.status} {created.text[:200]}")
                return
            path = "/" + location.split("://", 1)[-1].split("/", 1)[-1] if "://" in location else location
            page = await person.get(path)
            flashes = FLASH.findall(page.text)
            if page.status != 200 or flashes != [("success", f"Created user {name}.")]:
                problems.append(f"{name}: {page.status} on {path}, flashes {flashes}")
            again = await person.get(path)
            if again.status != 200 or FLASH.findall(again.text):
                problems.append(f"{name}: the flash came back on reload: {FLASH.findall(again.text)}")
            report.flows += 1
        await person.close()

    await asyncio.gather(*(one_user(u, p) for u, p in enumerate(people)))
    report.requests = sum(sum(p.statuses.values()) for p in people)
    return report, people


def _flows_result(name: str, people: list[SimulatedUser], duration: float) -> loadgen.LoadResult:
    result = loadgen.LoadResult(name, sum(sum(p.statuses.values()) for p in people), duration)
    result.connections_opened = sum(p.conn.opened for p in people)
    for p in people:
        result.statuses.update(p.statuses)
        result.latencies.extend(p.latencies)
    return result


def _run_flows(served: LoadServer, pg_url: str, label: str) -> list[SimulatedUser]:
    users, flows = scaled(USERS), FLOWS_PER_USER
    run = f"{served.name}-{secrets.token_hex(3)}"
    started = time.perf_counter()
    report, people = asyncio.run(_user_flows(served.port, run, users, flows))
    result = _flows_result(f"{users} users x {flows} flows", people, time.perf_counter() - started)
    rows = _sql(pg_url, 'SELECT count(*) FROM "user" WHERE name LIKE %s', (f"{run}-%",))[0][0]
    FIGURES.add_load(served.name, f"form flows, {label} ({users} users x {flows})", result,
                     lost=users * flows - int(rows))  # fmt: skip
    assert report.problems == [], f"{len(report.problems or [])} problems: {(report.problems or [])[:5]}"
    assert report.flows == users * flows
    assert result.server_errors == 0, result.summary()
    assert rows == users * flows
    return people


def test_sessions_and_flashes_stay_per_user(load_server: LoadServer, pg_url: str) -> None:
    """Signed-cookie sessions: each user's CSRF token and flash travel in their own cookie, whichever worker
    answers."""
    people = _run_flows(load_server, pg_url, "signed-cookie sessions")
    cookies = [p.jar.cookies.get("session", "") for p in people]
    assert all(cookies) and len(set(cookies)) == len(cookies), "users share (or lack) a session cookie"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"no Redis at {url} ({e}): set {REDIS_ENV}")
    finally:
        client.close()
    yield url


def test_sessions_and_flashes_stay_per_user_with_redis(
    load_server: LoadServer, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Server-side sessions in Redis: the cookie holds only a signed id; one session per user across every
    worker and flow, no one sees another user's flash."""
    import redis

    prefix = f"ampulla-load-{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    served = _start(_server_name(load_server), tmp_path, pg_url, redis_url=redis_url, redis_prefix=prefix)
    try:
        people = _run_flows(served, pg_url, "Redis sessions")
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        assert len(keys) == len(people), f"{len(keys)} sessions in Redis for {len(people)} users"
        for person in people:
            cookie = person.jar.cookies.get("session", "")
            sid = cookie.rsplit(".", 1)[0]
            assert client.exists(prefix + sid), "a user's cookie names no stored session"
            assert len(cookie) < 100, f"the cookie carries more than an id: {cookie!r}"
    finally:
        stop_server(served.server)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


# ---------------------------------------------------------------------------------------------- memory
def _mixed(i: int) -> Request:
    """1 in 10 the home page, 1 in 10 a page of the API, 8 in 10 a guest page of a new name (a cache keyed
    by path that never forgets would show here)."""
    page = i // 10 % 50 + 1
    if i % 10 == 0:
        return Request("GET", f"/?page={page}", kind="GET /")
    if i % 10 == 5:
        return Request("GET", f"/api/v1/users/?page={page}", kind="GET /api/v1/users/")
    return Request("GET", f"/guest/g{i}", kind="GET /guest/<name>")


@time_limit(480)
def test_worker_memory_stays_flat(load_server: LoadServer) -> None:
    served = load_server
    total = scaled(COUNTS[_server_name(served)]["memory"])
    warm = loadgen.load(served.port, _mixed, WARM_UP, concurrency=CONCURRENCY, timeout=60, deadline=300,
                        requests_per_connection=100, name="warm-up")  # fmt: skip
    assert warm.statuses.keys() == {200} and not warm.errors, _fail_message(served, warm)
    before = {pid: loadgen.rss_kib(pid) for pid in served.workers}
    cpu_before = {pid: loadgen.cpu_seconds(pid) for pid in served.workers}
    result = loadgen.load(served.port, lambda i: _mixed(i + WARM_UP), total, concurrency=CONCURRENCY, timeout=60,
                          deadline=900, requests_per_connection=100, name=f"{total} mixed GETs")  # fmt: skip
    after = {pid: loadgen.rss_kib(pid) for pid in served.workers}
    busy = {pid: loadgen.cpu_seconds(pid) - cpu_before[pid] for pid in served.workers}
    FIGURES.add_load(served.name, f"mixed GETs x{total} (memory run)", result)
    for pid in served.workers:
        FIGURES.add_memory(served.name, pid, before[pid], after[pid], total)
    assert loadgen.worker_pids(served.server.proc.pid, WORKERS, timeout=1) == served.workers, "a worker restarted"
    assert not result.stopped_by_deadline and not result.errors, _fail_message(served, result)
    assert result.statuses == Counter({200: total}), _fail_message(served, result)
    assert all(cpu > 0.2 for cpu in busy.values()), f"a worker served (almost) nothing: CPU seconds {busy}"
    grown = {pid: (after[pid] - before[pid]) / before[pid] for pid in served.workers}
    assert all(g < MAX_RSS_GROWTH for g in grown.values()), f"RSS growth per worker: {grown} ({before} -> {after})"


# ---------------------------------------------------------------------------------------------- startup
def test_workers_boot_together_on_an_empty_database(tmp_path: Path) -> None:
    """The first deploy: several workers boot at once on a database without tables, and each runs the
    example's ``db.create_all()``. All must come up.

    Made deterministic: the test holds an uncommitted ``CREATE TABLE "user"``, so every booting worker finds
    no table and blocks in its own ``CREATE TABLE``; the test then rolls back, as if the other creator had
    failed. Without serialisation the workers race: one creates the table, the others fail with
    ``UniqueViolation`` on ``pg_type_typname_nsp_index`` and gunicorn stops ("Worker failed to boot").
    Unforced, granian with 3 workers failed this way in 2 of 6 starts on an empty database.
    """
    import threading

    import psycopg

    given = os.environ.get(PG_ENV)
    if not given:
        pytest.skip(f"{PG_ENV} is not set")
    with loadgen.postgres_database(given) as empty:
        database = empty.rsplit("/", 1)[1]
        holder = psycopg.connect(loadgen.plain_dsn(empty), connect_timeout=10)
        outcome: dict[str, Any] = {}
        try:
            holder.execute(USER_DDL)  # uncommitted: invisible to the workers, but they queue behind it

            def boot() -> None:
                try:
                    outcome["server"] = _start("gunicorn", tmp_path / "boot", empty)
                except BaseException as e:
                    outcome["error"] = e

            booting = threading.Thread(target=boot)
            booting.start()

            def blocked() -> int:
                return len(_sql(given, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                                       "'Lock'", (database,)))  # fmt: skip

            assert loadgen.wait_until(lambda: blocked() >= 2, 45, 0.2), "workers did not reach CREATE TABLE"
            holder.rollback()
            booting.join(90)
            served = outcome.get("server")
            if served is not None:
                # A worker that failed to boot makes gunicorn's master stop the others a moment later.
                time.sleep(3)
                alive = served.server.proc.poll() is None
                reply = asyncio.run(_get(served.port, "/health")) if alive else None
                outcome["after"] = (alive, reply.status if reply else None)
        finally:
            holder.close()
            served = outcome.get("server")
            if served is not None:
                stop_server(served.server)
        error = outcome.get("error")
        assert error is None, f"the server did not start:\n{str(error)[-3000:]}"
        assert served is not None
        assert outcome["after"] == (True, 200), (
            f"the server did not survive its workers booting together (alive, /health): {outcome['after']}\n"
            + "\n".join(line for line in served.server.output().splitlines() if "[ERROR]" in line or "Error" in line)
        )


async def _get(port: int, path: str) -> Reply:
    conn = loadgen.Connection("127.0.0.1", port, 30)
    try:
        return await conn.request(Request("GET", path))
    finally:
        await conn.close()
