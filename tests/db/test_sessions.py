"""Session scope: one per application/request context, closed at teardown, isolated between concurrent
requests (threads under WSGI, tasks under ASGI), rolled back on errors, no connection left checked out."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, event, func, select

from ampulla import Ampulla, copy_current_request_context
from ampulla.app import run_coroutine_sync
from ampulla.db import Database, Session

AppFactory = Any
Tables = Any


def counter_app(make_app: AppFactory, create_tables: Tables, config: dict[str, Any] | None = None) -> Any:
    app, db = make_app(config)

    class Entry(db.Model):
        id = Column(Integer, primary_key=True)
        label = Column(String(50))

    create_tables(app, db)
    return app, db, Entry


def settle(app: Ampulla, db: Database) -> None:
    """Let sessions closed by an ASGI teardown (on the loop or in the thread pool) finish closing."""
    run_coroutine_sync(db.wait_closed())


def checked_out(app: Ampulla, db: Database) -> int:
    settle(app, db)
    with app.app_context():
        return int(db.engine.pool.checkedout())


def add_views(app: Ampulla, view_kind: str, *funcs: Any) -> None:
    """Route ``/<name>`` to each function: as it is (``def``), or called from an ``async def`` view."""
    for func_ in funcs:
        if view_kind == "async":

            async def view(func_: Any = func_) -> str:
                return str(func_())

            view.__name__ = func_.__name__
            app.add_url_rule(f"/{func_.__name__}", view_func=view)
        else:
            app.add_url_rule(f"/{func_.__name__}", view_func=func_)


def test_session_is_scoped_to_the_request(make_app: AppFactory, create_tables: Tables, protocol: str) -> None:
    app, db, Entry = counter_app(make_app, create_tables)
    seen: list[Session] = []

    @app.get("/")
    def view() -> str:
        session = db.session
        assert isinstance(session, Session)
        assert db.session is session  # the same object for the whole request
        assert Entry.query.session is session
        session.execute(select(1))
        seen.append(session)  # kept alive, so two sessions cannot share an id()
        return "ok"

    client = app.test_client(protocol=protocol)
    client.get("/")
    client.get("/")
    assert seen[0] is not seen[1]
    assert not seen[0].in_transaction() and not seen[0].identity_map  # closed at teardown
    assert checked_out(app, db) == 0


def test_app_context_session_is_shared_with_nested_requests(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Entry = counter_app(make_app, create_tables)

    @app.get("/")
    def view() -> str:
        return str(id(db.session))

    with app.app_context():
        outer = db.session
        outer.add(Entry(label="pending"))
        # As in Flask: a request inside an app context of the same app shares it (and its session).
        assert app.test_client().get("/").text == str(id(outer))
        assert db.session is outer
        assert outer.query(Entry).count() == 1
    with app.app_context():
        assert db.session is not outer
        assert db.session.query(Entry).count() == 0  # never committed: rolled back at teardown


def test_uncommitted_work_and_errors_roll_back(
    make_app: AppFactory, create_tables: Tables, protocol: str, view_kind: str
) -> None:
    app, db, Entry = counter_app(make_app, create_tables)

    def add_then_fail() -> str:
        db.session.add(Entry(label="half"))
        db.session.flush()  # written in the transaction...
        raise RuntimeError("boom")  # ...and never committed

    def add_without_commit() -> str:
        db.session.add(Entry(label="forgotten"))
        db.session.flush()
        return "ok"

    add_views(app, view_kind, add_then_fail, add_without_commit)

    client = app.test_client(protocol=protocol)
    assert client.get("/add_then_fail").status_code == 500
    assert client.get("/add_without_commit").status_code == 200
    with app.app_context():
        assert db.session.query(Entry).count() == 0
    assert checked_out(app, db) == 0


def test_no_connection_left_after_1000_failing_requests(
    make_app: AppFactory, create_tables: Tables, protocol: str, view_kind: str, backend: str
) -> None:
    app, db, Entry = counter_app(make_app, create_tables, {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2}})

    calls = [0]

    def fail() -> str:
        calls[0] += 1
        db.session.execute(select(func.count()).select_from(Entry))  # checks a connection out
        if calls[0] % 100 == 0:  # and now and then writes before failing (disk-bound on SQLite: not always)
            db.session.add(Entry(label="x"))
            db.session.flush()
        raise ValueError("the view failed")

    async def afail() -> str:
        return fail()

    app.add_url_rule("/", view_func=afail if view_kind == "async" else fail, endpoint="fail")
    app.log_exception = lambda exc_info: None  # type: ignore[method-assign]  # 1,000 tracebacks are slow
    client = app.test_client(protocol=protocol)
    # 1,000 on SQLite and on the servers over WSGI with def views; fewer for the other server variants,
    # which exercise the same code through slower round trips (the suite stays fast).
    requests = 1000 if backend == "sqlite" or (protocol, view_kind) == ("wsgi", "def") else 100
    for _ in range(requests):
        assert client.get("/").status_code == 500
    assert checked_out(app, db) == 0
    with app.app_context():
        assert db.session.query(Entry).count() == 0
        assert db.engine.pool.checkedout() == 1  # this context's session only
    assert checked_out(app, db) == 0


def test_concurrent_requests_in_threads_are_isolated(
    make_app: AppFactory, create_tables: Tables, backend: str
) -> None:
    app, db, Entry = counter_app(make_app, create_tables, {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8}})
    workers = 6
    barrier = threading.Barrier(workers, timeout=10)
    results: dict[str, tuple[int, int, list[str]]] = {}

    @app.get("/<name>")
    def view(name: str) -> str:
        session = db.session
        session.add(Entry(label=name))  # pending in this request's session only
        if backend != "sqlite":  # SQLite has one writer at a time: its requests keep their rows pending
            session.flush()
        barrier.wait()  # every request is in flight at once
        with session.no_autoflush:
            labels = [e.label for e in session.query(Entry)] + [e.label for e in session.new]
        barrier.wait()
        results[name] = (id(session), id(db.session), [str(x) for x in labels])
        return "ok"

    def run(name: str) -> None:
        assert app.test_client().get(f"/{name}").status_code == 200

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == workers
    assert len({first for first, _, _ in results.values()}) == workers
    for name, (first, again, labels) in results.items():
        assert first == again
        assert labels == [name]  # saw its own pending row (autoflush), none of the others'
    assert checked_out(app, db) == 0


def test_concurrent_tasks_get_their_own_sessions(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Entry = counter_app(make_app, create_tables)

    async def request_task(name: str) -> tuple[int, int]:
        with app.test_request_context(f"/{name}"):
            first = db.async_session
            await asyncio.sleep(0)  # let the other tasks run in between
            first.add(Entry(label=name))
            await first.flush()
            count = (await first.execute(select(func.count()).select_from(Entry))).scalar_one()
            assert db.async_session is first
            assert count == 1  # the others' rows are in their own transactions
            return id(first), id(db.session)

    async def main() -> list[tuple[int, int]]:
        return await asyncio.gather(*(request_task(f"t{i}") for i in range(5)))

    results = run_coroutine_sync(main())
    assert len({a for a, _ in results}) == 5
    assert len({s for _, s in results}) == 5
    assert checked_out(app, db) == 0


async def _asgi_get(app: Ampulla, path: str) -> tuple[int, bytes]:
    """One GET through the app's ASGI callable, as a server would send it."""
    from ampulla.testing import EnvironBuilder, scope_from_environ

    scope = scope_from_environ(EnvironBuilder(app, path).get_environ())
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_concurrent_asgi_requests_are_isolated(
    make_app: AppFactory, create_tables: Tables, view_kind: str, backend: str
) -> None:
    app, db, Entry = counter_app(make_app, create_tables, {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8}})
    workers = 5
    sessions: dict[str, Any] = {}

    if view_kind == "async":
        arrived = asyncio.Event()

        @app.get("/<name>")
        async def view(name: str) -> str:
            session = db.async_session
            session.add(Entry(label=name))
            if backend != "sqlite":
                await session.flush()
            sessions[name] = session
            if len(sessions) == workers:
                arrived.set()
            await asyncio.wait_for(arrived.wait(), 10)  # every request is in flight at once
            with session.no_autoflush:
                pending = [e.label for e in session.new]
                stored = (await session.execute(select(Entry.label))).scalars().all()
            assert db.async_session is session
            return ",".join(sorted([*pending, *stored]))

    else:
        barrier = threading.Barrier(workers, timeout=10)

        @app.get("/<name>")
        def view(name: str) -> str:  # runs in the ASGI thread pool
            session = db.session
            session.add(Entry(label=name))
            if backend != "sqlite":
                session.flush()
            sessions[name] = session
            barrier.wait()
            with session.no_autoflush:
                labels = [e.label for e in session.new] + [e.label for e in session.query(Entry)]
            assert db.session is session
            return ",".join(sorted(labels))

    async def main() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(_asgi_get(app, f"/w{i}") for i in range(workers)))

    results = run_coroutine_sync(main())
    assert results == [(200, f"w{i}".encode()) for i in range(workers)]  # each saw only its own row
    assert len({id(s) for s in sessions.values()}) == workers
    assert checked_out(app, db) == 0


def test_copied_request_context_in_a_thread_has_its_own_session(
    make_app: AppFactory, create_tables: Tables
) -> None:
    app, db, _Entry = counter_app(make_app, create_tables)
    seen: dict[str, Session] = {}

    @app.get("/")
    def view() -> str:
        seen["request"] = db.session

        @copy_current_request_context
        def work() -> None:
            seen["thread"] = db.session
            db.session.execute(select(1))

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
        return "ok"

    assert app.test_client().get("/").status_code == 200
    assert seen["thread"] is not seen["request"]
    assert checked_out(app, db) == 0


def test_scoped_session_compatibility(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Entry = counter_app(make_app, create_tables)
    stored = db.session  # at import time in real code: a proxy resolving in each context
    with pytest.raises(RuntimeError, match="app_context"):
        stored.query(Entry)
    with app.app_context():
        assert stored() is db.session
        assert db.session() is db.session
        first = db.session
        stored.add(Entry(label="via proxy"))
        assert first.new
        db.session.remove()
        assert db.session is not first
        assert db.session.query(Entry).count() == 0
        stored.remove()
    assert checked_out(app, db) == 0


def test_async_session_needs_a_running_loop(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Entry = counter_app(make_app, create_tables)
    with app.app_context(), pytest.raises(RuntimeError, match="async def"):
        db.async_session  # noqa: B018
    with pytest.raises(RuntimeError, match="app_context"):
        db.session.query(Entry)
    with pytest.raises(RuntimeError, match="app_context"):
        db.engine  # noqa: B018


def test_dispose_waits_for_sessions_an_asgi_teardown_is_closing(
    make_app: AppFactory, create_tables: Tables, backend: str
) -> None:
    """Under ASGI a sync session closes in the thread pool after the response; ``dispose()`` right after the
    request must still close its connection (not leave it open in a pool already disposed)."""
    if backend == "sqlite":
        pytest.skip("a SQLite connection refuses use from another thread, closed or not: the check needs a server")
    app, db, Entry = counter_app(make_app, create_tables)

    @app.get("/")
    def view() -> str:
        return str(db.session.execute(select(func.count()).select_from(Entry)).scalar())

    with app.app_context():
        engine = db.engine
    used: list[Any] = []
    gate, checked_in = threading.Event(), threading.Event()
    event.listen(engine, "checkout", lambda dbapi_conn, record, proxy: used.append(dbapi_conn))
    event.listen(engine, "rollback", lambda conn: gate.wait(30))  # the teardown's close waits here
    event.listen(engine, "checkin", lambda dbapi_conn, record: checked_in.set())
    assert app.test_client(protocol="asgi").get("/").get_data(as_text=True) == "0"
    assert engine.pool.checkedout() == 1  # still closing in the thread pool
    opener = threading.Thread(target=gate.set)
    opener.start()  # dispose() must wait for the close, however late the gate opens
    db.dispose(app)
    opener.join()
    assert checked_in.wait(30)
    [connection] = used
    with pytest.raises(Exception):  # noqa: B017  (each driver has its own error for a closed connection)
        connection.cursor().execute("SELECT 1")


def test_asgi_teardown_closes_a_read_on_the_loop_where_it_sends_nothing(
    make_app: AppFactory, create_tables: Tables, backend: str, view_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ASGI a session that only read from SQLite (which opens no transaction for a SELECT) closes on the
    event loop at teardown: the close does no I/O, and a thread-pool hop would cost more than it. On PostgreSQL
    and MySQL (a SELECT opens a transaction, the drivers do not report it) and for a session holding
    uncommitted writes the close runs in the thread pool; none leaves a connection checked out."""
    from ampulla.db import extension

    read_on_loop = backend == "sqlite"

    app, db, Entry = counter_app(make_app, create_tables)
    with app.app_context():
        db.session.add(Entry(label="kept"))
        db.session.commit()
    closes: list[tuple[str, bool]] = []
    closed = threading.Semaphore(0)
    close_sync = extension._close_sync

    def recording_close(session: Session) -> None:
        closes.append((str(session.info.get("route")), asyncio._get_running_loop() is not None))
        close_sync(session)
        closed.release()

    monkeypatch.setattr(extension, "_close_sync", recording_close)

    def read() -> str:
        db.session.info["route"] = "read"
        return str(db.get_or_404(Entry, 1).label)

    def write() -> str:
        db.session.info["route"] = "write"
        db.session.add(Entry(label="forgotten"))
        db.session.flush()
        return "ok"

    add_views(app, view_kind, read, write)

    client = app.test_client(protocol="asgi")
    assert client.get("/read").get_data(as_text=True) == "kept"
    assert closed.acquire(timeout=30)  # a close in the thread pool may end after the response
    assert closes == [("read", read_on_loop)]  # closed during the teardown, on the loop for SQLite
    assert client.get("/write").get_data(as_text=True) == "ok"
    assert closed.acquire(timeout=30)
    assert checked_out(app, db) == 0
    assert closes[1] == ("write", False)  # a ROLLBACK to send: in the thread pool
    with app.app_context():
        assert db.session.query(Entry).count() == 1
