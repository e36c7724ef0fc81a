"""The ``orm`` scenario for Ampulla with a ``def`` view: the same code as ``orm_flask`` with ampulla imports."""

from __future__ import annotations

from typing import Any

from ampulla import Ampulla
from ampulla.db import Database
from benchmarks.apps.orm_common import RULE, UserColumns, database_uri, user_json


def make_app(label: str) -> tuple[Ampulla, Database, type[Any]]:
    """The app, its ``Database`` and the ``User`` model, on a new database file; no route yet."""
    app = Ampulla(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(label)
    db = Database(app)

    class User(UserColumns, db.Model):  # type: ignore[name-defined,misc]
        pass

    return app, db, User


def create_orm_app() -> Ampulla:
    """``GET /users/<id>``: one row by primary key through ``db.get_or_404``, answered as JSON."""
    app, db, User = make_app("ampulla")

    @app.route(RULE)
    def show_user(user_id: int) -> dict[str, Any]:
        return user_json(db.get_or_404(User, user_id))

    return app
