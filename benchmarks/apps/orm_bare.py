"""The ``orm`` scenario as a raw WSGI callable on a bare SQLAlchemy session: the floor for the ORM cost.

One ``Session(engine)`` per request, ``session.get(User, id)``, ``json.dumps`` (:func:`orm_common.fetch_user`):
what any framework must do at least; the issue's target is Ampulla within 5% of this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from benchmarks.apps.orm_common import fetch_user, make_engine

ROUTE = re.compile(r"/users/(\d+)\Z")


def create_orm_app() -> WSGIApplication:
    """``GET /users/<id>`` answered from the database as JSON, 404 otherwise."""
    engine = make_engine("bare")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        match = ROUTE.match(environ["PATH_INFO"])
        data = fetch_user(engine, int(match[1])) if match and environ["REQUEST_METHOD"] == "GET" else None
        if data is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"Not Found"]
        body = json.dumps(data).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app
