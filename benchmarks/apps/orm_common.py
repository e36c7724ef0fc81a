"""Shared pieces of the ``orm`` scenario: a 1,000-row ``user`` table in a fresh SQLite file per app.

Every framework's ``create_orm_app()`` (in ``orm_<framework>.py``) gets its own database file, filled here with
the standard library so that the filling is not part of any framework's cost, and answers ``GET /users/<id>`` with
the row as JSON (404 when there is no such row). The frameworks without a database layer of their own use the
same sync SQLAlchemy 2 code, :func:`fetch_user`: a ``Session`` per request and ``Session.get`` by primary key.

Each factory builds its engine when it runs, so a server may call it once per worker process (after the fork);
sessions are per request (or per app context), so threads of one worker never share one.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
from typing import Any

from sqlalchemy import Column, Engine, Integer, SmallInteger, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Session

from benchmarks.apps.common import ORM_ROWS, orm_user

#: The URL rule, in Flask's syntax (Falcon and Starlette write ``/users/{user_id:int}``).
RULE = "/users/<int:user_id>"

_SCHEMA = (
    "CREATE TABLE user (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(64) UNIQUE, "
    "email VARCHAR(120) UNIQUE, role SMALLINT, password VARCHAR)"
)


def make_database(label: str) -> str:
    """Create a SQLite file holding the filled ``user`` table; return its path (removed at exit)."""
    folder = tempfile.mkdtemp(prefix=f"ampulla-bench-orm-{label}-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "bench.db")
    with sqlite3.connect(path) as conn:
        conn.execute(_SCHEMA)
        conn.executemany(
            "INSERT INTO user (id, name, email, role, password) VALUES (?, ?, ?, 0, 'x')",
            [(i, row["name"], row["email"]) for i in range(1, ORM_ROWS + 1) for row in [orm_user(i)]],
        )
    conn.close()
    return path


def database_uri(label: str) -> str:
    """The SQLAlchemy URL of a new database file made by :func:`make_database`."""
    return "sqlite:///" + make_database(label)


class UserColumns:
    """The mapped ``user`` table, mixed into each framework's declarative base (``db.Model`` or :class:`Base`)."""

    __tablename__ = "user"
    __table_args__ = {"sqlite_autoincrement": True}
    id = Column(Integer, primary_key=True)
    name = Column(String(64), unique=True)
    email = Column(String(120), unique=True, default="")
    role = Column(SmallInteger, default=0)
    password = Column(String)


def user_json(user: Any) -> dict[str, Any]:
    """The JSON answer for one user row."""
    return {"id": user.id, "name": user.name, "email": user.email}


class Base(DeclarativeBase):
    """The declarative base of the plain-SQLAlchemy apps."""


class User(UserColumns, Base):
    """The ``user`` model of the plain-SQLAlchemy apps (bare, Falcon, Starlette, FastAPI)."""


def make_engine(label: str) -> Engine:
    """A new engine on a new database file (one per app, built by its factory)."""
    return create_engine(database_uri(label))


def fetch_user(engine: Engine, user_id: int) -> dict[str, Any] | None:
    """The user's JSON answer, or ``None``: a session for this call, ``Session.get`` by primary key."""
    with Session(engine) as session:
        user = session.get(User, user_id)
        return None if user is None else user_json(user)
