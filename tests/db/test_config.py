"""Configuration: one URL gives the sync and the async engine; defaults; engine options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import StaticPool

from ampulla import Ampulla
from ampulla.app import run_coroutine_sync
from ampulla.db import Database, async_url, sync_url


@pytest.mark.parametrize(
    ("given", "sync", "asynchronous"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg_async://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+psycopg_async://u@h/d"),
        ("mysql://root@h:3306/d", "mysql+pymysql://root@h:3306/d?charset=utf8mb4",
         "mysql+asyncmy://root@h:3306/d?charset=utf8mb4"),
        ("mariadb://root@h/d?charset=latin1", "mariadb+pymysql://root@h/d?charset=latin1",
         "mariadb+asyncmy://root@h/d?charset=latin1"),
        ("mysql+asyncmy://root@h/d", "mysql+pymysql://root@h/d?charset=utf8mb4",
         "mysql+asyncmy://root@h/d?charset=utf8mb4"),
        ("sqlite:///app.db", "sqlite:///app.db", "sqlite+aiosqlite:///app.db"),
        ("sqlite+aiosqlite:///app.db", "sqlite:///app.db", "sqlite+aiosqlite:///app.db"),
        ("oracle+oracledb://u@h/d", "oracle+oracledb://u@h/d", None),
    ],
)
def test_one_url_gives_both_drivers(given: str, sync: str, asynchronous: str | None) -> None:
    assert sync_url(given).render_as_string(hide_password=False) == sync
    result = async_url(given)
    assert (result.render_as_string(hide_password=False) if result else None) == asynchronous


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    app = Ampulla(__name__, instance_path=str(instance))
    db = Database(app)
    assert not instance.exists()  # nothing happens before first use
    with app.app_context():
        assert db.engine.url.database == str(instance / "app.db")
        db.session.execute(db.text("SELECT 1"))
    assert (instance / "app.db").is_file()
    db.dispose(app)


def test_url_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def url_of(config: dict[str, Any]) -> str:
        app = Ampulla(__name__, instance_path=str(tmp_path))
        app.config.update(config)
        db = Database(app)
        with app.app_context():
            return str(db.engine.url.database)

    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-env.db")
    assert url_of({}) == str(tmp_path / "from-env.db")
    assert url_of({"DATABASE_URL": "sqlite:///from-config.db"}) == str(tmp_path / "from-config.db")
    assert url_of({"DATABASE_URL": "sqlite:///x.db", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/uri.db"}) == (
        str(tmp_path / "uri.db")
    )


def test_memory_database_is_shared_by_the_sessions(tmp_path: Path) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = Database(app)
    with app.app_context():
        assert isinstance(db.engine.pool, StaticPool)
        db.session.execute(db.text("CREATE TABLE t (x INTEGER)"))
        db.session.commit()
    with app.app_context():
        assert db.session.execute(db.text("SELECT count(*) FROM t")).scalar() == 0
    db.dispose(app)


def test_engine_options(tmp_path: Path) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql://u@127.0.0.1:1/d"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 7, "connect_args": {"connect_timeout": 3}}
    app.config["SQLALCHEMY_ASYNC_ENGINE_OPTIONS"] = {"pool_size": 2}
    app.config["SQLALCHEMY_ECHO"] = True
    db = Database(app, engine_options={"pool_recycle": 60, "pool_size": 1})
    with app.app_context():
        engine = db.engine
        assert engine.pool.size() == 7  # config wins over the constructor's defaults
        assert engine.pool._recycle == 60
        assert engine.pool._pre_ping is True  # Ampulla's default for servers
        assert engine.echo is True

        async def async_engine() -> Any:
            return db.async_engine

        async_side = run_coroutine_sync(async_engine())
        assert async_side.url.drivername == "postgresql+asyncpg"
        assert async_side.sync_engine.pool.size() == 2
    db.dispose(app)
    with pytest.raises(TypeError):
        Database(session_options={"class_": object})
