"""The ``orm`` scenario as a raw WSGI callable on a bare SQLAlchemy session: the floor for the ORM cost.

One ``Session(engine)`` per request, ``session.get(User, id)``, ``json.dumps``: what any framework must do
at least; the issue's target is Ampulla within 1.1x of this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from sqlalchemy import Column, Integer, SmallInteger, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Session

from benchmarks.apps.orm_common import make_database


def create_orm_app() -> WSGIApplication:
    """``GET /users/<id>`` answered from the database as JSON, 404 otherwise."""
    engine = create_engine("sqlite:///" + make_database("bare"))

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "user"
        __table_args__ = {"sqlite_autoincrement": True}
        id = Column(Integer, primary_key=True)
        name = Column(String(64), unique=True)
        email = Column(String(120), unique=True, default="")
        role = Column(SmallInteger, default=0)
        password = Column(String)

    route = re.compile(r"/users/(\d+)\Z")
    json_headers = [("Content-Type", "application/json")]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        match = route.match(environ["PATH_INFO"])
        user = None
        if match and environ["REQUEST_METHOD"] == "GET":
            with Session(engine) as session:
                user = session.get(User, int(match[1]))
                if user is not None:
                    body = json.dumps({"id": user.id, "name": user.name, "email": user.email}).encode()
        if user is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"Not Found"]
        start_response("200 OK", [*json_headers, ("Content-Length", str(len(body)))])
        return [body]

    return app
