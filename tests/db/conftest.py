"""Fixtures for the data layer: backends (SQLite always; PostgreSQL and MariaDB/MySQL from environment
variables), protocols (WSGI, ASGI once ``ampulla.asgi`` exists), an app factory that cleans up, a TCP proxy.

PostgreSQL and MySQL tests run in a database created for this test session (``ampulla_test_<pid>_<hex>``)
and dropped at the end, so fixed table names such as the seed's ``user`` never meet another run's tables.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from ampulla import Ampulla
from ampulla.db import Database

ENV_VARS = {"postgres": "AMPULLA_TEST_POSTGRES_URL", "mysql": "AMPULLA_TEST_MYSQL_URL"}
BACKENDS = ["sqlite", "postgres", "mysql"]
_DB_NAME = re.compile(r"^ampulla_test_(\d+)_[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postgres_database(url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    base = make_url(url)
    name = f"ampulla_test_{os.getpid()}_{secrets.token_hex(4)}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for (stale,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ampulla_test_%'"):
            match = _DB_NAME.match(stale)
            if match and not _pid_alive(int(match[1])):
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.set(database=name).render_as_string(hide_password=False), drop


def _mysql_database(url: str) -> tuple[str, Callable[[], None]]:
    import pymysql

    base = make_url(url)
    name = f"ampulla_test_{os.getpid()}_{secrets.token_hex(4)}"
    params = {
        "host": base.host or "127.0.0.1",
        "port": base.port or 3306,
        "user": base.username or "root",
        "password": base.password or "",
    }
    conn = pymysql.connect(**params, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE 'ampulla\\_test\\_%'")
            for (stale,) in cursor.fetchall():
                match = _DB_NAME.match(stale)
                if match and not _pid_alive(int(match[1])):
                    cursor.execute(f"DROP DATABASE IF EXISTS `{stale}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()

    def drop() -> None:
        conn = pymysql.connect(**params, autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()

    return base.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def server_urls() -> Iterator[dict[str, str | None]]:
    """``{"postgres": url, "mysql": url}`` of this session's databases (``None``: variable not set)."""
    urls: dict[str, str | None] = {}
    drops: list[Callable[[], None]] = []
    for backend, var in ENV_VARS.items():
        given = os.environ.get(var)
        if not given:
            urls[backend] = None
            continue
        try:
            url, drop = (_postgres_database if backend == "postgres" else _mysql_database)(given)
        except Exception as e:  # no right to create databases: use the given one (tests drop their tables)
            print(f"\n[ampulla.db tests] cannot create a {backend} test database ({e}); using {given}")
            url, drop = given, (lambda: None)
        urls[backend] = url
        drops.append(drop)
    yield urls
    for drop in drops:
        drop()


def _server_url(server_urls: dict[str, str | None], backend: str) -> str:
    url = server_urls[backend]
    if url is None:
        pytest.skip(f"{ENV_VARS[backend]} is not set: {backend} tests skipped (see tests/db/conftest.py)")
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, server_urls: dict[str, str | None], tmp_path: Any) -> str:
    """A plain URL for ``backend`` (no driver named: Ampulla picks the sync and async drivers)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    return _server_url(server_urls, backend)


@pytest.fixture
def postgres_url(server_urls: dict[str, str | None]) -> str:
    """This session's PostgreSQL URL (skips when none is configured)."""
    return _server_url(server_urls, "postgres")


@pytest.fixture(params=["wsgi", "asgi"])
def protocol(request: pytest.FixtureRequest) -> str:
    """The protocol the test client drives."""
    return str(request.param)


@pytest.fixture(params=["def", "async"])
def view_kind(request: pytest.FixtureRequest) -> str:
    """Whether views under test are ``def`` or ``async def``."""
    return str(request.param)


AppFactory = Callable[..., tuple[Ampulla, Database]]


@pytest.fixture
def make_app(db_url: str, tmp_path: Any) -> Iterator[AppFactory]:
    """Build ``(app, db)`` on ``db_url``; at the end drop the models' tables and close every connection."""
    made: list[tuple[Ampulla, Database]] = []

    def factory(config: dict[str, Any] | None = None, **db_kwargs: Any) -> tuple[Ampulla, Database]:
        app = Ampulla(__name__, instance_path=str(tmp_path / "instance"))
        app.config["SQLALCHEMY_DATABASE_URI"] = db_url
        app.config.update(config or {})
        db = Database(app, **db_kwargs)
        made.append((app, db))
        return app, db

    yield factory
    for app, db in made:
        with app.app_context(), contextlib.suppress(Exception):
            db.drop_all()
        db.dispose(app)


def _create_tables(app: Ampulla, db: Database) -> None:
    with app.app_context():
        db.drop_all()
        db.create_all()


@pytest.fixture
def create_tables() -> Callable[[Ampulla, Database], None]:
    """``create_tables(app, db)``: drop leftovers and create the models' tables."""
    return _create_tables


# ---------------------------------------------------------------------------------------------- TCP proxy
class TCPProxy:
    """A loopback TCP forwarder to ``target`` that can be cut (connections dropped and refused) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so close() does not wait on a blocked accept()
        self.port: int = self.listener.getsockname()[1]
        self.cut_off = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self.cut_off:
                client.close()  # the server "is down": the handshake fails at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(client)
            self._track(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.cut_off = True
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        """Forward again."""
        self.cut_off = False

    def close(self) -> None:
        """Stop the proxy."""
        self._closed = True
        self.cut()
        self.listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def pg_proxy(postgres_url: str) -> Iterator[tuple[TCPProxy, str]]:
    """A :class:`TCPProxy` in front of PostgreSQL, and the database URL through it."""
    url = make_url(postgres_url)
    proxy = TCPProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()
