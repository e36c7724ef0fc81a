"""The application the end-to-end tests serve with gunicorn, uvicorn, granian and ``ampulla run``.

Servers import it as ``serverapp:app`` (or ``serverapp:create_app()``) with ``tests/e2e`` as their working
directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ampulla
from ampulla import Ampulla, request


def create_app() -> Ampulla:
    """Build the test application."""
    app = Ampulla(__name__)

    @app.route("/health")
    def health() -> str:
        return "ok"

    @app.route("/guest/<guest>")
    def hello_guest(guest: str) -> str:
        return f"Hello {guest} as Guest"

    @app.route("/form", methods=["POST"])
    def form_echo() -> dict[str, Any]:
        return {"form": {key: request.form.getlist(key) for key in request.form}}

    @app.route("/upload", methods=["POST"])
    def upload() -> dict[str, Any]:
        file = request.files["file"]
        data = file.read()
        return {"filename": file.filename, "size": len(data), "note": request.form.get("note")}

    @app.route("/stream")
    def stream() -> Iterator[str]:
        def generate() -> Iterator[str]:
            for i in range(5):
                yield f"chunk {i}\n"

        return generate()

    @app.route("/json", methods=["POST"])
    def json_echo() -> dict[str, Any]:
        return {"received": request.get_json()}

    @app.route("/async/<int:n>")
    async def async_view(n: int) -> dict[str, int]:
        return {"double": n * 2}

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("this view fails on purpose")

    websocket = getattr(ampulla, "websocket", None)
    if websocket is not None and hasattr(app, "websocket"):

        @app.websocket("/ws")
        async def ws_echo() -> None:
            message = await websocket.receive()
            await websocket.send(message)

    return app


app = create_app()
