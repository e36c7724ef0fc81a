"""The ``orm`` scenario for Ampulla with an ``async def`` view calling the sync ``db.get_or_404``."""

from __future__ import annotations

from typing import Any

from ampulla import Ampulla
from benchmarks.apps.orm_ampulla import make_app
from benchmarks.apps.orm_common import RULE, user_json


def create_orm_app() -> Ampulla:
    """``GET /users/<id>``: ``orm_ampulla``'s app with the view written ``async def``."""
    app, db, User = make_app("ampulla-async")

    @app.route(RULE)
    async def show_user(user_id: int) -> dict[str, Any]:
        return user_json(db.get_or_404(User, user_id))

    return app
