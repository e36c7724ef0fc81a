"""The ``orm`` scenario for Ampulla: the same code as ``orm_flask`` with ampulla imports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, SmallInteger, String

from ampulla import Ampulla
from ampulla.db import Database
from benchmarks.apps.orm_common import make_database


def create_orm_app() -> Ampulla:
    """``GET /users/<id>``: one row by primary key through ``db.get_or_404``, answered as JSON."""
    app = Ampulla(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + make_database("ampulla")
    db = Database(app)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "user"
        __table_args__ = {"sqlite_autoincrement": True}
        id = Column(Integer, primary_key=True)
        name = Column(String(64), unique=True)
        email = Column(String(120), unique=True, default="")
        role = Column(SmallInteger, default=0)
        password = Column(String)

    @app.route("/users/<int:user_id>")
    def show_user(user_id: int) -> dict[str, Any]:
        user = db.get_or_404(User, user_id)
        return {"id": user.id, "name": user.name, "email": user.email}

    return app
