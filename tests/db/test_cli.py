"""``ampulla db``: Alembic migrations (init, migrate, upgrade, downgrade, current, history, stamp) and
create/drop, run inside an application context as the main ``ampulla`` command provides it."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy import Column, Integer, String

from ampulla import Ampulla, current_app
from ampulla.db import Database
from ampulla.db.cli import db_cli

AppFactory = Any


def run(app: Ampulla | None, *args: str, input: str | None = None) -> Result:
    runner = CliRunner()
    if app is None:
        return runner.invoke(db_cli, list(args), input=input)
    with app.app_context():
        return runner.invoke(db_cli, list(args), input=input)


def test_migrations_round_trip(make_app: AppFactory, tmp_path: Path) -> None:
    app, db = make_app()
    folder = str(tmp_path / "migrations")

    class Gadget(db.Model):
        id = Column(Integer, primary_key=True)
        name = Column(String(40), nullable=False)

    try:
        result = run(app, "init", "-d", folder)
        assert result.exit_code == 0, result.output
        assert (tmp_path / "migrations" / "env.py").is_file()
        assert run(app, "init", "-d", folder).exit_code != 0  # not twice

        result = run(app, "migrate", "-d", folder, "-m", "add gadget")
        assert result.exit_code == 0, result.output
        [revision] = list((tmp_path / "migrations" / "versions").glob("*add_gadget.py"))
        assert "create_table('gadget'" in revision.read_text()

        assert run(app, "upgrade", "-d", folder).exit_code == 0
        with app.app_context():
            assert "gadget" in sa.inspect(db.engine).get_table_names()
        current = run(app, "current", "-d", folder)
        assert current.exit_code == 0 and revision.name.split("_")[0] in current.output

        # No model change: no new revision file.
        assert run(app, "migrate", "-d", folder, "-m", "nothing").exit_code == 0
        assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1
        assert revision.name.split("_")[0] in run(app, "history", "-d", folder).output

        assert run(app, "upgrade", "-d", folder, "--sql").exit_code == 0  # offline mode prints SQL
        assert run(app, "downgrade", "-d", folder).exit_code == 0
        with app.app_context():
            assert "gadget" not in sa.inspect(db.engine).get_table_names()
        assert run(app, "stamp", "-d", folder, "head").exit_code == 0
        assert run(app, "downgrade", "-d", folder, "nonexistent-revision").exit_code == 1
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def test_migrations_folder_defaults_to_the_app_root(tmp_path: Path) -> None:
    app = Ampulla(__name__, root_path=str(tmp_path), instance_path=str(tmp_path / "instance"))
    Database(app)
    assert run(app, "init").exit_code == 0
    assert (tmp_path / "migrations" / "script.py.mako").is_file()
    app.config["MIGRATIONS_DIR"] = "db/migrations"
    assert run(app, "init").exit_code == 0
    assert (tmp_path / "db" / "migrations" / "env.py").is_file()
    app.extensions["sqlalchemy"].dispose(app)


def test_create_and_drop(make_app: AppFactory) -> None:
    app, db = make_app()

    class Widget(db.Model):
        id = Column(Integer, primary_key=True)

    result = run(app, "create")
    assert result.exit_code == 0 and "widget" in result.output
    with app.app_context():
        assert "widget" in sa.inspect(db.engine).get_table_names()
    assert run(app, "drop", input="n\n").exit_code == 1  # asks first
    assert run(app, "drop", "--yes").exit_code == 0
    with app.app_context():
        assert "widget" not in sa.inspect(db.engine).get_table_names()


def test_clear_errors(tmp_path: Path) -> None:
    assert "No application context" in run(None, "create").output
    bare = Ampulla(__name__, instance_path=str(tmp_path))
    assert "has no Database" in run(bare, "create").output
    app = Ampulla(__name__, instance_path=str(tmp_path))
    Database(app)
    result = run(app, "upgrade", "-d", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "ampulla db init" in result.output


def test_main_cli_runs_db_commands_in_the_app_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ampulla import cli as cli_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    (tmp_path / "dbcliapp.py").write_text(textwrap.dedent("""
        from sqlalchemy import Column, Integer
        from ampulla import Ampulla
        from ampulla.db import Database

        app = Ampulla(__name__)
        db = Database(app)

        class Thing(db.Model):
            id = Column(Integer, primary_key=True)
    """))
    importlib.invalidate_caches()
    try:
        result = CliRunner().invoke(cli_module.cli, ["--app", "dbcliapp:app", "db", "create"])
        assert result.exit_code == 0, result.output
        assert "thing" in result.output
        assert (tmp_path / "instance" / "app.db").is_file()  # the default database
    finally:
        module = sys.modules.pop("dbcliapp", None)
        if module is not None:
            module.db.dispose(module.app)


def test_an_app_command_named_db_replaces_the_built_in_one(tmp_path: Path) -> None:
    """The app's own ``db`` (an extension's, such as Flask-Migrate's) is what ``ampulla db`` runs, help included."""
    from ampulla.cli import AmpullaGroup, ScriptInfo

    app = Ampulla(__name__, instance_path=str(tmp_path))
    Database(app)

    @app.cli.group("db")
    def app_db() -> None:
        """The app's own database commands."""

    @app_db.command("seed")
    def seed() -> None:
        click.echo(f"seeded by {current_app.name}")

    cli = AmpullaGroup(name="ampulla")
    runner = CliRunner()

    def invoke(target: Ampulla, *args: str) -> Result:
        return runner.invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: target))

    result = invoke(app, "db", "seed")
    assert result.exit_code == 0, result.output
    assert result.output == f"seeded by {app.name}\n"  # in the app context
    assert "The app's own database commands" in invoke(app, "db", "--help").output
    listing = invoke(app, "--help").output
    assert "The app's own database commands" in listing and listing.count(" db ") == 1
    assert invoke(app, "db", "create").exit_code == 2  # Ampulla's 'create' is not mixed in

    plain = Ampulla(__name__, instance_path=str(tmp_path))
    Database(plain)
    assert "Create the database and manage its migrations" in invoke(plain, "db", "--help").output
    result = invoke(plain, "db", "create")
    assert result.exit_code == 0, result.output

    # No app at all: the built-in group still answers (its commands then explain what is missing).
    assert "Create the database" in runner.invoke(cli, ["db", "--help"], obj=ScriptInfo()).output


def test_an_app_that_fails_to_load_keeps_the_built_in_db_in_help() -> None:
    from ampulla.cli import AmpullaGroup, ScriptInfo

    def create_app() -> Ampulla:
        raise RuntimeError("oh no")

    cli = AmpullaGroup(name="ampulla")
    result = CliRunner().invoke(cli, ["--help"], obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 0, result.output
    assert "RuntimeError: oh no" in result.output and "Create the database" in result.output
    result = CliRunner().invoke(cli, ["db", "create"], obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)  # reported when run
