"""The data layer: SQLAlchemy 2 models, context-scoped sessions (sync and asyncio), pagination, migrations.

::

    from ampulla import Ampulla
    from ampulla.db import Database
    from sqlalchemy import Column, Integer, String

    app = Ampulla(__name__)
    db = Database(app)  # SQLALCHEMY_DATABASE_URI / DATABASE_URL, else instance/app.db

    class User(db.Model):
        id = Column(Integer, primary_key=True)
        name = Column(String(64), unique=True)

    @app.route("/users/<int:id>")
    def show(id):
        return {"name": db.get_or_404(User, id).name}

The sync layer needs only SQLAlchemy; ``db.async_session`` (and ``AsyncSession``) also need ``greenlet``
(``pip install 'ampulla[db]'`` brings it). See ``docs/database.md``.
Migrations: ``ampulla db init | migrate | upgrade`` (:mod:`ampulla.db.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engines import async_url, sync_url
from .errors import DatabaseUnavailable, DatabaseUnavailableError
from .extension import Database, current_database
from .mixin import Model as ModelMixin
from .model import Model, camel_to_snake_case
from .pagination import KeysetPage, Pagination
from .query import Query
from .session import Session

if TYPE_CHECKING:
    from .async_session import AsyncSession

__all__ = [
    "AsyncSession",
    "Database",
    "DatabaseUnavailable",
    "DatabaseUnavailableError",
    "KeysetPage",
    "Model",
    "ModelMixin",
    "Pagination",
    "Query",
    "Session",
    "async_url",
    "camel_to_snake_case",
    "current_database",
    "sync_url",
]


def __getattr__(name: str) -> Any:
    # The asyncio session class imports SQLAlchemy's asyncio extension, which needs greenlet: loaded on first use.
    if name == "AsyncSession":
        from .async_session import AsyncSession

        return AsyncSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
