"""The ``orm`` scenario for FastAPI: an ``async def`` endpoint with a typed path parameter, calling the sync
SQLAlchemy session inline; the returned dict is serialized by FastAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from benchmarks.apps.orm_common import fetch_user, make_engine


def create_orm_app() -> FastAPI:
    """``GET /users/<id>``: one row by primary key, answered as JSON."""
    engine = make_engine("fastapi")
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def show_user(user_id: int) -> dict[str, Any]:
        data = fetch_user(engine, user_id)
        if data is None:
            raise HTTPException(404)
        return data

    return app
