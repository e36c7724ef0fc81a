"""Bad input and failures: ids that cannot exist (404), a database that is down at startup or mid-request
(503 with a clear message, then recovery without a stuck pool), pool exhaustion, genuine errors (500)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, SmallInteger, String, Uuid, select, text

from ampulla import Ampulla
from ampulla.app import run_coroutine_sync
from ampulla.db import Database, DatabaseUnavailableError

AppFactory = Any
Tables = Any

DOWN_URLS = {
    "postgres": "postgresql://postgres@127.0.0.1:1/test",
    "mysql": "mysql://root@127.0.0.1:1/test",
    "sqlite": "sqlite:////nonexistent-ampulla-dir/db.sqlite",
}


def status_app(url: str, tmp_path: Any) -> tuple[Ampulla, Database, Any]:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = Database(app)

    class Probe(db.Model):
        id = Column(Integer, primary_key=True)

    @app.get("/sync")
    def sync_view() -> Any:
        return {"rows": len(db.session.execute(select(Probe)).all())}

    @app.get("/async")
    async def async_view() -> Any:
        return {"rows": len((await db.async_session.execute(select(Probe))).all())}

    return app, db, Probe


@pytest.mark.parametrize("backend_down", sorted(DOWN_URLS))
def test_database_down_at_startup_is_503(
    backend_down: str, tmp_path: Any, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, db, _ = status_app(DOWN_URLS[backend_down], tmp_path)  # creating the app does not connect
    client = app.test_client(protocol=protocol)
    with caplog.at_level(logging.ERROR, logger="ampulla.db"):
        for path in ("/sync", "/async"):
            response = client.get(path)
            assert response.status_code == 503
            assert "database is temporarily unavailable" in response.text
    assert any("database unavailable" in r.getMessage() for r in caplog.records)
    run_coroutine_sync(db.wait_closed())
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
        with pytest.raises(DatabaseUnavailableError):  # outside requests: a clear exception
            db.create_all()
    db.dispose(app)


def test_retry_after_is_configurable(tmp_path: Any, protocol: str) -> None:
    app, db, _ = status_app(DOWN_URLS["sqlite"], tmp_path)
    client = app.test_client(protocol=protocol)
    assert "Retry-After" not in client.get("/sync").headers  # no header unless configured
    app.config["SQLALCHEMY_RETRY_AFTER"] = 15
    for path in ("/sync", "/async"):
        response = client.get(path)
        assert (response.status_code, response.headers.get("Retry-After")) == (503, "15")
    run_coroutine_sync(db.wait_closed())


def test_outage_mid_request_then_recovery(pg_proxy: Any, tmp_path: Any, protocol: str) -> None:
    proxy, url = pg_proxy
    proxy.cut()  # down at startup
    app, db, _Probe = status_app(url, tmp_path)
    client = app.test_client(protocol=protocol)
    assert client.get("/sync").status_code == 503
    assert client.get("/async").status_code == 503
    proxy.restore()
    with app.app_context():
        db.drop_all()
        db.create_all()
    try:
        assert client.get("/sync").json == {"rows": 0}
        assert client.get("/async").json == {"rows": 0}
        proxy.cut()  # goes down while the pools hold open connections
        assert client.get("/sync").status_code == 503
        assert client.get("/async").status_code == 503
        proxy.restore()
        for path in ("/sync", "/async"):  # back at once: pre-ping replaces the dead pooled connections
            assert client.get(path).json == {"rows": 0}
        run_coroutine_sync(db.wait_closed())
        with app.app_context():
            assert db.engine.pool.checkedout() == 0
    finally:
        proxy.restore()
        with app.app_context():
            db.drop_all()
        db.dispose(app)


def test_outage_inside_a_transaction(pg_proxy: Any, tmp_path: Any) -> None:
    proxy, url = pg_proxy
    app, db, _Probe = status_app(url, tmp_path)

    @app.get("/cut-midway")
    def cut_midway() -> Any:
        db.session.execute(text("SELECT 1"))  # the transaction is open on a live connection...
        proxy.cut()  # ...when the server goes away
        db.session.execute(text("SELECT 2"))
        return "unreachable"

    with app.app_context():
        db.drop_all()
        db.create_all()
    client = app.test_client()
    try:
        assert client.get("/cut-midway").status_code == 503
        proxy.restore()
        assert client.get("/sync").json == {"rows": 0}
        with app.app_context():
            assert db.engine.pool.checkedout() == 0
    finally:
        proxy.restore()
        with app.app_context():
            db.drop_all()
        db.dispose(app)


def test_pool_exhaustion_is_503(tmp_path: Any) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/pool.db"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.05}
    db = Database(app)

    @app.get("/")
    def view() -> str:
        db.session.execute(text("SELECT 1"))
        return "ok"

    with app.app_context():
        held = db.engine.connect()  # holds the only connection
    started = time.monotonic()
    assert app.test_client().get("/").status_code == 503
    assert time.monotonic() - started < 5
    held.close()
    assert app.test_client().get("/").status_code == 200
    db.dispose(app)


def test_other_database_errors_stay_500(tmp_path: Any) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    db = Database(app)

    @app.get("/")
    def view() -> str:
        db.session.execute(text("SELECT * FROM no_such_table"))  # OperationalError, but a bug: not a 503
        return "unreachable"

    app.log_exception = lambda exc_info: None  # type: ignore[method-assign]
    assert app.test_client().get("/").status_code == 500
    db.dispose(app)


def test_a_503_handler_of_the_app_is_used(tmp_path: Any, protocol: str, view_kind: str) -> None:
    app, db, _ = status_app(DOWN_URLS["postgres"], tmp_path)

    def answer(e: Any) -> Any:
        return {"error": "maintenance", "detail": e.description}, 503, {"Retry-After": "30"}

    async def async_answer(e: Any) -> Any:
        return answer(e)

    app.register_error_handler(503, async_answer if view_kind == "async" else answer)
    for path in ("/sync", "/async"):
        response = app.test_client(protocol=protocol).get(path)
        assert response.status_code == 503
        assert response.json == {"error": "maintenance", "detail": "The database is temporarily unavailable. "
                                 "Please try again in a moment."}
        assert response.headers["Retry-After"] == "30"
    db.dispose(app)


def test_ids_that_cannot_exist_are_404(make_app: AppFactory, create_tables: Tables, protocol: str) -> None:
    app, db = make_app()

    class Small(db.Model):
        id = Column(SmallInteger, primary_key=True)

    class Big(db.Model):
        id = Column(BigInteger, primary_key=True)

    class Keyed(db.Model):
        id = Column(Uuid, primary_key=True)

    class Pair(db.Model):
        a = Column(Integer, primary_key=True)
        b = Column(String(10), primary_key=True)

    models = {"small": Small, "big": Big, "keyed": Keyed}

    @app.get("/<kind>/<ident>")
    def show(kind: str, ident: str) -> str:
        return str(db.get_or_404(models[kind], ident).id)

    @app.get("/a/<kind>/<ident>")
    async def ashow(kind: str, ident: str) -> str:
        return str((await db.async_get_or_404(models[kind], ident)).id)

    @app.get("/int/<int:ident>")
    def by_int(ident: int) -> str:
        return str(db.get_or_404(Small, ident, description="no such thing").id)

    @app.get("/pair")
    def pair() -> str:
        return str(Pair.query.get_or_404((1, "x")).b)

    create_tables(app, db)
    with app.app_context():
        db.session.add_all([Small(id=1), Big(id=2**40)])
        db.session.commit()
    client = app.test_client(protocol=protocol)
    assert client.get("/small/1").text == "1"
    assert client.get(f"/a/big/{2**40}").text == str(2**40)
    for prefix in ("", "/a"):
        for kind, ident in [("small", "abc"), ("small", "70000"), ("small", "-70000"), ("big", str(2**64)),
                            ("big", "1.5"), ("keyed", "not-a-uuid"), ("keyed", "00000000-0000-0000-0000-000000000001"),
                            ("small", "2")]:
            assert (kind, ident, client.get(f"{prefix}/{kind}/{ident}").status_code) == (kind, ident, 404)
    response = client.get(f"/int/{2**70}")
    assert response.status_code == 404 and "no such thing" in response.text
    assert client.get("/pair").status_code == 404
    run_coroutine_sync(db.wait_closed())
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
