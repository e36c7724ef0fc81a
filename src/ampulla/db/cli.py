"""``ampulla db``: migrations with Alembic, and ``create``/``drop`` for quick starts.

The commands run inside the application context that the ``ampulla`` command pushes, and find the
``Database`` through ``current_app``. The migrations folder is ``<app root>/migrations`` unless
``MIGRATIONS_DIR`` (config) or ``--directory`` says otherwise.

An app whose ``app.cli`` has a command named ``db`` gets that one instead: with Flask-Migrate's
``Migrate(app, db)``, ``ampulla db ...`` runs Flask-Migrate's commands.

::

    ampulla db init                 # once: creates migrations/
    ampulla db migrate -m "users"   # compares the models with the database, writes a revision
    ampulla db upgrade              # applies the revisions (downgrade, current, history, stamp)
    ampulla db create               # or, without migrations: CREATE the missing tables
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..ctx import current_context
from . import _templates

if TYPE_CHECKING:
    from alembic.config import Config

    from .extension import Database

F = TypeVar("F", bound=Callable[..., Any])


def _database() -> Database:
    ctx = current_context()
    if ctx is None:
        raise click.ClickException(
            "No application context: run 'ampulla --app module:app db ...', or push 'app.app_context()' first."
        )
    db = ctx.app.extensions.get("sqlalchemy")
    if db is None:
        raise click.ClickException(f"The app {ctx.app.name!r} has no Database: add 'db = Database(app)'.")
    return db  # type: ignore[no-any-return]


def add_models_to_shell() -> dict[str, Any]:
    """The names ``ampulla shell`` gets from the current app's ``Database``: ``db`` and each model class.

    Registered as a shell context processor unless ``Database(add_models_to_shell=False)``.

    Raises:
        RuntimeError: No application context, or the app has no ``Database``.
    """
    ctx = current_context()
    db = ctx.app.extensions.get("sqlalchemy") if ctx is not None else None
    if db is None:
        raise RuntimeError("add_models_to_shell() needs an application context of an app with a Database.")
    names: dict[str, Any] = {mapper.class_.__name__: mapper.class_ for mapper in db.Model.registry.mappers}
    names["db"] = db
    return names


def _directory(directory: str | None) -> str:
    if directory:
        return os.path.abspath(directory)
    ctx = current_context()
    if ctx is None:
        return os.path.abspath("migrations")
    configured = ctx.app.config.get("MIGRATIONS_DIR")
    if configured:
        return os.path.abspath(os.path.join(ctx.app.root_path, configured))
    return os.path.join(ctx.app.root_path, "migrations")


def _alembic_config(directory: str | None) -> Config:
    _database()
    folder = _directory(directory)
    if not os.path.isfile(os.path.join(folder, "env.py")):
        raise click.ClickException(f"No migrations folder at {folder}: run 'ampulla db init' first.")
    try:
        from alembic.config import Config
    except ImportError:
        raise click.ClickException("Migrations need Alembic: pip install 'ampulla[db]'.") from None
    ini = os.path.join(folder, "alembic.ini")
    config = Config(ini if os.path.isfile(ini) else None, stdout=sys.stdout)
    config.set_main_option("script_location", folder)
    return config


def _run(action: Callable[[], Any]) -> None:
    from alembic.util import CommandError

    try:
        action()
    except CommandError as e:
        raise click.ClickException(str(e)) from None


def _directory_option(f: F) -> F:
    return click.option(
        "-d",
        "--directory",
        default=None,
        help="Migrations folder (default: MIGRATIONS_DIR, else 'migrations' in the app's root folder).",
    )(f)


@click.group("db")
def db_cli() -> None:
    """Create the database and manage its migrations (Alembic)."""


@db_cli.command("init")
@_directory_option
def init(directory: str | None) -> None:
    """Create the migrations folder (env.py reads the URL and models from the app)."""
    _database()
    folder = _directory(directory)
    if os.path.isdir(folder) and os.listdir(folder):
        raise click.ClickException(f"{folder} already exists and is not empty.")
    os.makedirs(os.path.join(folder, "versions"), exist_ok=True)
    files = {
        "env.py": _templates.ENV_PY,
        "script.py.mako": _templates.SCRIPT_PY_MAKO,
        "alembic.ini": _templates.ALEMBIC_INI,
        "README": _templates.README,
    }
    for name, content in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(content)
    click.echo(f"Created {folder}. Next: 'ampulla db migrate -m \"initial\"' then 'ampulla db upgrade'.")


@db_cli.command("migrate")
@_directory_option
@click.option("-m", "--message", default=None, help="Revision message.")
@click.option("--empty", is_flag=True, help="Write an empty revision instead of comparing models and database.")
def migrate(directory: str | None, message: str | None, empty: bool) -> None:
    """Write a revision with the changes between the models and the database."""
    from alembic import command

    config = _alembic_config(directory)
    config.attributes["ampulla_autogenerate"] = not empty
    _run(lambda: command.revision(config, message=message, autogenerate=not empty))


@db_cli.command("upgrade")
@_directory_option
@click.argument("revision", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
def upgrade(directory: str | None, revision: str, sql: bool) -> None:
    """Apply revisions up to REVISION (default: head)."""
    from alembic import command

    config = _alembic_config(directory)
    _run(lambda: command.upgrade(config, revision, sql=sql))


@db_cli.command("downgrade")
@_directory_option
@click.argument("revision", default="-1")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
def downgrade(directory: str | None, revision: str, sql: bool) -> None:
    """Revert revisions down to REVISION (default: the previous one)."""
    from alembic import command

    config = _alembic_config(directory)
    _run(lambda: command.downgrade(config, revision, sql=sql))


@db_cli.command("current")
@_directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show revision details.")
def current(directory: str | None, verbose: bool) -> None:
    """Show the revision the database is at."""
    from alembic import command

    config = _alembic_config(directory)
    _run(lambda: command.current(config, verbose=verbose))


@db_cli.command("history")
@_directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show revision details.")
def history(directory: str | None, verbose: bool) -> None:
    """List the revisions."""
    from alembic import command

    config = _alembic_config(directory)
    _run(lambda: command.history(config, verbose=verbose))


@db_cli.command("stamp")
@_directory_option
@click.argument("revision", default="head")
def stamp(directory: str | None, revision: str) -> None:
    """Mark the database as being at REVISION without running migrations."""
    from alembic import command

    config = _alembic_config(directory)
    _run(lambda: command.stamp(config, revision))


@db_cli.command("create")
@click.option("--bind", "bind_key", default="__all__", help="Only this bind key (default: all databases).")
def create(bind_key: str) -> None:
    """Create the tables of every model that do not exist yet (no migrations needed)."""
    db = _database()
    db.create_all(bind_key)
    names = sorted(t.name for m in db.metadatas.values() for t in m.sorted_tables)
    click.echo(f"Created the missing tables among: {', '.join(names) or '(no models)'}.")


@db_cli.command("drop")
@click.option("--bind", "bind_key", default="__all__", help="Only this bind key (default: all databases).")
@click.confirmation_option(prompt="Drop every table of the models? Their data will be lost.")
def drop(bind_key: str) -> None:
    """Drop the tables of every model."""
    _database().drop_all(bind_key)
    click.echo("Dropped the tables.")


__all__ = ["db_cli"]
