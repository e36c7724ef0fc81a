"""The ``orm`` scenario for Flask + Flask-SQLAlchemy (the reference for ``orm_ampulla``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from benchmarks.apps.orm_common import RULE, UserColumns, database_uri, user_json


def create_orm_app() -> Flask:
    """``GET /users/<id>``: one row by primary key through ``db.get_or_404``, answered as JSON."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri("flask")
    db = SQLAlchemy(app)

    class User(UserColumns, db.Model):  # type: ignore[name-defined,misc]
        pass

    @app.route(RULE)
    def show_user(user_id: int) -> dict[str, Any]:
        return user_json(db.get_or_404(User, user_id))

    return app
