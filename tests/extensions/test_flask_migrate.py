"""Flask-Migrate 4.1.0 on Ampulla: ``db init``, ``migrate``, ``upgrade`` and ``downgrade`` run as a user runs
them, through the ``ampulla`` command and through ``flask.cli`` with the patch, on SQLite and on PostgreSQL
(when ``AMPULLA_TEST_POSTGRES_URL`` is set, see tests/db/conftest.py), checked on the real tables."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_migrate imports flask)

# isort: split

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip(
    "flask_migrate", reason="Flask-Migrate is not installed (pip install -e '.[dev]' installs Flask-Migrate==4.1.0)"
)

from click.testing import CliRunner
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from ampulla.cli import AmpullaGroup, ScriptInfo
from tests.db.conftest import server_urls  # noqa: F401  (the session fixture: this run's PostgreSQL database)

#: The application of Flask-Migrate's documentation, with views that use the migrated tables. ``{user_columns}``
#: and ``{more_models}`` are filled in to change the models between two migrations, as a user edits the file.
APP_PY = """\
import ampulla.flask_patch  # noqa: F401  (first)

import os

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(128), nullable=False)
{user_columns}
{more_models}

@app.post("/users")
def add_user():
    user = User(**request.get_json())
    db.session.add(user)
    db.session.commit()
    return {{"id": user.id}}, 201


@app.get("/users")
async def list_users():
    users = db.session.execute(db.select(User).order_by(User.id)).scalars()
    return jsonify([{{"name": u.name, "email": getattr(u, "email", None)}} for u in users])
"""

FIRST = {"user_columns": "", "more_models": ""}
SECOND = {
    "user_columns": "    email = db.Column(db.String(256))",
    "more_models": textwrap.dedent("""

        class Post(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            title = db.Column(db.String(200), nullable=False)
            user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
        """),
}

#: How each command line starts: the ``ampulla`` command, and Flask's ``flask.cli.main`` with the patch first.
COMMANDS = {
    "ampulla": [sys.executable, "-m", "ampulla", "--app", "app"],
    "flask": [sys.executable, "-c", "import ampulla.flask_patch; from flask.cli import main; main()"],
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, server_urls: dict[str, str | None]  # noqa: F811
) -> Iterator[str]:
    """An empty database: a SQLite file, or this session's PostgreSQL database (its tables dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    url = server_urls["postgres"]
    if url is None:
        pytest.skip("AMPULLA_TEST_POSTGRES_URL is not set: the PostgreSQL migration test is skipped")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def drop_tables() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS post, "user", alembic_version CASCADE'))

    drop_tables()
    try:
        yield url
    finally:
        drop_tables()
        engine.dispose()


@pytest.fixture(params=sorted(COMMANDS))
def db_command(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Callable[..., str]:
    """``db_command("upgrade")`` runs ``<cli> db upgrade`` in the project folder and returns its output."""
    project = tmp_path / "project"
    project.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("AMPULLA_APP", "FLASK_APP")}
    env.update(DATABASE_URL=database_url, FLASK_APP="app", PYTHONDONTWRITEBYTECODE="1")

    def run(*args: str) -> str:
        done = subprocess.run(
            [*COMMANDS[request.param], "db", *args],
            cwd=project, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"db {' '.join(args)} exited with {done.returncode}:\n{output}"
        return output

    return run


def _write_app(project: Path, models: dict[str, str]) -> None:
    (project / "app.py").write_text(APP_PY.format(**models))


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _schema(url: str) -> dict[str, set[str]]:
    """Each table of the database (but Alembic's) with its column names, and the revision Alembic recorded."""
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
        with engine.connect() as conn:
            version = (
                set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
                if "alembic_version" in tables
                else set()
            )
    finally:
        engine.dispose()
    tables.pop("alembic_version", None)
    return {**tables, "<revision>": version}


def _revision(versions: Path, slug: str) -> tuple[str, str]:
    [path] = list(versions.glob(f"*_{slug}.py"))
    return path.name.split("_")[0], path.read_text()


def _load_app(project: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import the project's ``app.py`` in this process (under a name of its own)."""
    monkeypatch.setenv("DATABASE_URL", url)
    spec = importlib.util.spec_from_file_location(f"migrate_project_{project.parent.name}", project / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_apply_and_revert_migrations(
    db_command: Callable[..., str], database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    versions = project / "migrations" / "versions"
    _write_app(project, FIRST)

    output = db_command("init")  # Flask-Migrate's command: the app's 'db' group is not Ampulla's own
    assert "Please edit configuration/connection/logging settings" in output
    assert "current_app.extensions['migrate']" in (project / "migrations" / "env.py").read_text()
    assert (project / "migrations" / "alembic.ini").is_file()

    db_command("migrate", "-m", "users")
    first, script = _revision(versions, "users")
    assert "op.create_table('user'" in script
    assert _schema(database_url) == {"<revision>": set()}  # generated, not applied yet

    db_command("upgrade")
    assert _schema(database_url) == {"user": {"id", "name"}, "<revision>": {first}}

    # The user adds a column and a model; the next migration holds only those changes.
    _write_app(project, SECOND)
    db_command("migrate", "-m", "emails and posts")
    second, script = _revision(versions, "emails_and_posts")
    assert "op.create_table('post'" in script and "'email'" in script and "create_table('user'" not in script
    assert f"down_revision = '{first}'" in script

    db_command("upgrade")
    assert "No changes in schema detected." in db_command("migrate", "-m", "nothing")
    assert len(list(versions.glob("*.py"))) == 2
    assert _schema(database_url) == {
        "user": {"id", "name", "email"},
        "post": {"id", "title", "user_id"},
        "<revision>": {second},
    }
    assert second in db_command("current")

    # The migrated tables serve the app, over WSGI and ASGI, with a def and an async def view.
    module = _load_app(project, database_url, monkeypatch)
    try:
        for protocol in ("wsgi", "asgi"):
            client = module.app.test_client(protocol=protocol)
            response = client.post("/users", json={"name": f"ann-{protocol}", "email": f"ann@{protocol}.test"})
            assert response.status_code == 201, response.get_data(as_text=True)
        listing = module.app.test_client(protocol="asgi").get("/users").get_json()
        assert listing == [
            {"name": "ann-wsgi", "email": "ann@wsgi.test"},
            {"name": "ann-asgi", "email": "ann@asgi.test"},
        ]
    finally:
        module.db.dispose(module.app)

    db_command("downgrade")
    assert _schema(database_url) == {"user": {"id", "name"}, "<revision>": {first}}
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:  # the rows stay: only the column and the table went
            assert conn.execute(sa.text('SELECT name FROM "user" ORDER BY id')).scalars().all() == [
                "ann-wsgi",
                "ann-asgi",
            ]
    finally:
        engine.dispose()

    db_command("downgrade", "base")
    assert _schema(database_url) == {"<revision>": set()}


def test_migrate_db_group_in_process(tmp_path: Path) -> None:
    """``Migrate(app, db)`` puts Flask-Migrate's group on ``app.cli``: ``ampulla db`` runs it, and an app without
    Flask-Migrate keeps Ampulla's own ``db``."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
    db = SQLAlchemy(app)
    Migrate(app, db, directory=str(tmp_path / "migrations"))

    cli = AmpullaGroup(name="ampulla")
    runner = CliRunner()

    def invoke(target: Flask, *args: str) -> Any:
        return runner.invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: target))

    result = invoke(app, "db", "init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "migrations" / "env.py").is_file()
    result = invoke(app, "db", "heads")  # a command only Flask-Migrate has
    assert result.exit_code == 0, result.output
    assert "Perform database migrations." in invoke(app, "--help").output

    # The app's own CLI runner reaches the same group. (In this process, only commands that do not run
    # migrations/env.py: its logging.config.fileConfig() would disable every logger already created.)
    result = app.test_cli_runner().invoke(args=["db", "history"])
    assert result.exit_code == 0, result.output
    assert not logging.getLogger("ampulla.request").disabled

    other = Flask(__name__, instance_path=str(tmp_path / "instance"))
    other.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'other.db'}"
    SQLAlchemy(other)
    assert "Create the database and manage its migrations" in invoke(other, "db", "--help").output
    db.dispose(app)
