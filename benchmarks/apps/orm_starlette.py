"""The ``orm`` scenario for Starlette: an ``async def`` endpoint calling the sync SQLAlchemy session inline."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from benchmarks.apps.orm_common import fetch_user, make_engine

PATH = "/users/{user_id:int}"


def user_response(engine: Engine, request: Request) -> Response:
    """The row of ``request``'s ``user_id`` as JSON; a 404 when there is none."""
    data = fetch_user(engine, request.path_params["user_id"])
    if data is None:
        raise HTTPException(404)
    return JSONResponse(data)


def create_orm_app() -> Starlette:
    """``GET /users/<id>``: one row by primary key, answered as JSON (``async def`` endpoint)."""
    engine = make_engine("starlette")

    async def show_user(request: Request) -> Response:
        return user_response(engine, request)

    return Starlette(routes=[Route(PATH, show_user)])
