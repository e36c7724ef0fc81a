"""The ``orm`` scenario for Falcon: a resource on the plain SQLAlchemy code of ``orm_common.fetch_user``."""

from __future__ import annotations

import falcon
from sqlalchemy import Engine

from benchmarks.apps.orm_common import fetch_user, make_engine


class UserResource:
    """``GET /users/{user_id:int}``: the row as JSON, or Falcon's 404."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        data = fetch_user(self.engine, user_id)
        if data is None:
            raise falcon.HTTPNotFound()
        resp.media = data


def create_orm_app() -> falcon.App[falcon.Request, falcon.Response]:
    """``GET /users/<id>``: one row by primary key, answered as JSON."""
    app = falcon.App()
    app.add_route("/users/{user_id:int}", UserResource(make_engine("falcon")))
    return app
