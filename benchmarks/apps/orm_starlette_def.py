"""The ``orm`` scenario for Starlette with a ``def`` endpoint (run in Starlette's thread pool): the peer of
``ampulla-def``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.apps.orm_common import make_engine
from benchmarks.apps.orm_starlette import PATH, user_response


def create_orm_app() -> Starlette:
    """``GET /users/<id>``: one row by primary key, answered as JSON (``def`` endpoint)."""
    engine = make_engine("starlette-def")

    def show_user(request: Request) -> Response:
        return user_response(engine, request)

    return Starlette(routes=[Route(PATH, show_user)])
