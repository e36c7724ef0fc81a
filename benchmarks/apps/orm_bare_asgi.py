"""The ``orm`` scenario as a bare ASGI callable calling the sync SQLAlchemy session inline: the ASGI floor."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from benchmarks.apps.orm_bare import ROUTE
from benchmarks.apps.orm_common import fetch_user, make_engine

# The types of bare_asgi_app, repeated: that module imports this one (a server may import this one first).
Scope = dict[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_orm_app() -> ASGIApp:
    """``GET /users/<id>`` answered from the database as JSON, 404 otherwise."""
    engine = make_engine("bare-asgi")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        match = ROUTE.match(scope["path"])
        data = fetch_user(engine, int(match[1])) if match and scope["method"] == "GET" else None
        if data is None:
            status, content_type, body = 404, b"text/plain", b"Not Found"
        else:
            status, content_type, body = 200, b"application/json", json.dumps(data).encode()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
