"""The application the fault tests serve: views that fail in each way a view can fail, and counters to prove
that teardown and database cleanup still ran.

Servers call the factory: ``gunicorn 'faultapp:create_app()'``, ``uvicorn --factory faultapp:create_app``.
Without arguments it reads its settings from the environment:

- ``FAULTAPP_DATABASE_URL``: the database (default: SQLite ``fault.db`` in ``FAULTAPP_DIR``);
- ``FAULTAPP_DIR``: a folder for files (the large download);
- ``FAULTAPP_APPLICATION_NAME``: PostgreSQL ``application_name`` of the app's connections, so a test can find
  them in ``pg_stat_activity``;
- ``FAULTAPP_STEP_DELAY``: seconds slept between the statements of a transfer (widens the window in which a
  database outage hits a transaction in progress).

Counters live in the process (``GET /stats`` answers them with the PID): run one worker per server so every
request meets the same counters.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.pool import Pool

from ampulla import Ampulla, Response, request, send_file, stream_with_context
from ampulla.db import Database

db = Database()
CHUNK = b"x" * 65536


class Batch(db.Model):
    """A transfer: written together with exactly ``ITEMS`` items, or not at all."""

    __tablename__ = "fault_batch"
    id = sa.Column(sa.Integer, primary_key=True)
    token = sa.Column(sa.String(64), unique=True, nullable=False)


class Item(db.Model):
    __tablename__ = "fault_item"
    id = sa.Column(sa.Integer, primary_key=True)
    batch_id = sa.Column(sa.Integer, sa.ForeignKey("fault_batch.id"), nullable=False)
    n = sa.Column(sa.Integer, nullable=False)


class Scratch(db.Model):
    """Rows a failing view writes and must never commit."""

    __tablename__ = "fault_scratch"
    id = sa.Column(sa.Integer, primary_key=True)
    note = sa.Column(sa.String(64), nullable=False)


ITEMS = 3

#: Pool check-outs and check-ins of every engine of this process (sync and asyncio).
POOL = Counter[str]()
#: The connection records checked out of any pool of this process right now. (A set, not a difference of
#: counts: SQLAlchemy also fires "checkin" for a check-out that failed, e.g. while the database is down.)
HELD: set[int] = set()


def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    POOL["checkout"] += 1
    HELD.add(id(record))


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    POOL["checkin"] += 1
    HELD.discard(id(record))


def track_pools() -> None:
    """Count check-outs of every pool of the process (servers only: the listeners are process-wide)."""
    if not event.contains(Pool, "checkout", _on_checkout):
        event.listen(Pool, "checkout", _on_checkout)
        event.listen(Pool, "checkin", _on_checkin)


class CountingAmpulla(Ampulla):
    """Counts the HTTP requests servers hand to the app (``requests``), before anything of the app runs: under
    ASGI the body is read before ``before_request`` hooks, so a request whose client left mid-upload is torn
    down without ever reaching them."""

    def __call__(self, scope_or_environ: dict[str, Any], receive_or_start: Any, send: Any = None) -> Any:
        if send is None or scope_or_environ.get("type") == "http":
            self.extensions["faultapp.counters"]["requests"] += 1
        return super().__call__(scope_or_environ, receive_or_start, send)


def _settings_from_env() -> dict[str, Any]:
    folder = os.environ.get("FAULTAPP_DIR") or os.getcwd()
    url = os.environ.get("FAULTAPP_DATABASE_URL") or f"sqlite:///{os.path.join(folder, 'fault.db')}"
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "FAULTAPP_DIR": folder,
        "FAULTAPP_APPLICATION_NAME": os.environ.get("FAULTAPP_APPLICATION_NAME", "ampulla-faultapp"),
        "FAULTAPP_STEP_DELAY": float(os.environ.get("FAULTAPP_STEP_DELAY", "0.02")),
    }


def create_app(config: dict[str, Any] | None = None) -> Ampulla:
    """Build the fault application (``config`` overrides the environment's settings; without it, as servers
    call it, every pool of the process is also tracked for ``/stats``)."""
    if config is None:
        track_pools()
    app = CountingAmpulla(__name__)
    app.config.update(_settings_from_env())
    app.config.update(config or {})
    app.config["SECRET_KEY"] = "fault-app-secret"
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        name = app.config["FAULTAPP_APPLICATION_NAME"]
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"application_name": name, "connect_timeout": 5}}
        app.config["SQLALCHEMY_ASYNC_ENGINE_OPTIONS"] = {
            "connect_args": {"server_settings": {"application_name": name}, "timeout": 5}
        }
    db.init_app(app)
    counters: Counter[str] = Counter()
    app.extensions["faultapp.counters"] = counters
    delay = float(app.config["FAULTAPP_STEP_DELAY"])
    with app.app_context():
        db.create_all()

    def count(name: str) -> None:
        counters[name] += 1

    # ------------------------------------------------------------------------------------------ hooks
    @app.teardown_request
    def raising_teardown(exc: BaseException | None) -> None:
        # Registered first, so it runs last among the request teardowns (they run in reverse order).
        if request.path == "/teardown-raises":
            count("teardown_raised")
            raise RuntimeError("this teardown fails on purpose")

    @app.teardown_request
    def counting_teardown(exc: BaseException | None) -> None:
        count(f"teardown {request.path}")
        if exc is not None:
            count(f"teardown-exc {request.path} {type(exc).__name__}")

    @app.teardown_appcontext
    def counting_appcontext_teardown(exc: BaseException | None) -> None:
        count("teardown_appcontext")

    # ------------------------------------------------------------------------------------------ probes
    @app.route("/health")
    def health() -> str:
        return "ok"

    @app.route("/stats")
    def stats() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "counters": dict(counters),
            "checkedout": db.engine.pool.checkedout(),
            "pool_checkout": POOL["checkout"],
            "pool_checkin": POOL["checkin"],
            "held": len(HELD),
        }

    # ------------------------------------------------------------------------------------------ database
    @app.route("/read")
    def read() -> dict[str, int]:
        return {"batches": int(db.session.scalar(select(func.count(Batch.id))) or 0)}

    @app.post("/transfer")
    def transfer() -> Any:
        token = str(request.get_json()["token"])
        batch = Batch(token=token)
        db.session.add(batch)
        db.session.flush()
        batch_id = batch.id
        time.sleep(delay)
        db.session.add_all(Item(batch_id=batch_id, n=n) for n in range(ITEMS))
        db.session.flush()
        time.sleep(delay)
        db.session.commit()
        count("commit_returned")  # from here on the answer must be 201
        return {"batch": batch_id, "token": token}, 201

    @app.post("/atransfer")
    async def atransfer() -> Any:
        token = str(request.get_json()["token"])
        session = db.async_session
        batch = Batch(token=token)
        session.add(batch)
        await session.flush()
        batch_id = batch.id
        await asyncio.sleep(delay)
        session.add_all(Item(batch_id=batch_id, n=n) for n in range(ITEMS))
        await session.flush()
        await asyncio.sleep(delay)
        await session.commit()
        count("commit_returned")
        return {"batch": batch_id, "token": token}, 201

    # ------------------------------------------------------------------------------------------ faults
    @app.route("/view-raises")
    def view_raises() -> str:
        db.session.add(Scratch(note="view-raises"))
        db.session.flush()  # a transaction holds a connection when the view fails
        count("view_raises_called")
        raise RuntimeError("this view fails on purpose")

    @app.route("/async-view-raises")
    async def async_view_raises() -> str:
        db.async_session.add(Scratch(note="async-view-raises"))
        await db.async_session.flush()
        count("async_view_raises_called")
        raise RuntimeError("this async view fails on purpose")

    @app.route("/teardown-raises")
    def teardown_raises() -> str:
        db.session.add(Scratch(note="teardown-raises"))
        db.session.flush()
        return "fine until teardown"

    @app.route("/stream-raises")
    def stream_raises() -> Any:
        @stream_with_context
        def generate() -> Iterator[bytes]:
            try:
                yield f"{db.session.scalar(select(func.count(Batch.id)))}\n".encode()
                for _ in range(3):
                    yield CHUNK
                raise RuntimeError("this generator fails mid-stream on purpose")
            finally:
                count("stream_raises_finally")

        return Response(generate(), mimetype="application/octet-stream")

    @app.route("/async-stream-raises")
    async def async_stream_raises() -> Any:
        @stream_with_context
        async def generate() -> AsyncIterator[bytes]:
            try:
                yield b"start\n"
                for _ in range(3):
                    yield CHUNK
                raise RuntimeError("this async generator fails mid-stream on purpose")
            finally:
                count("async_stream_raises_finally")

        return Response(generate(), mimetype="application/octet-stream")

    @app.route("/download")
    def download() -> Any:
        size = int(request.args.get("mb", "64")) * 1024 * 1024

        @stream_with_context
        def generate() -> Iterator[bytes]:
            try:
                db.session.scalar(select(func.count(Batch.id)))  # holds a connection while streaming
                sent = 0
                while sent < size:
                    yield CHUNK
                    sent += len(CHUNK)
                count("download_completed")
            finally:
                count("download_finally")

        return Response(generate(), mimetype="application/octet-stream")

    @app.route("/file")
    def big_file() -> Response:
        return send_file(os.path.join(app.config["FAULTAPP_DIR"], "big.bin"), conditional=False)

    @app.post("/upload")
    def upload() -> dict[str, Any]:
        # A transaction is open while the body is read (under WSGI the view reads it; under ASGI the adapter
        # has read it before): a client leaving mid-body must not leave it open. Never committed.
        db.session.add(Scratch(note="upload"))
        db.session.flush()
        file = request.files["file"]
        size = len(file.read())
        count("upload_completed")
        return {"size": size}

    return app


__all__ = ["HELD", "ITEMS", "POOL", "Batch", "Item", "Scratch", "create_app", "db", "track_pools"]
