"""The benchmark application written for Quart: ``flask_app`` with quart imports and ``async def`` views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart, Response, g, jsonify, render_template, request

from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES
from benchmarks.apps.template_common import CONTEXT, PATH, TEMPLATE


def create_app() -> Quart:
    """Build the app serving every scenario except ``hooks``."""
    app = Quart(__name__)

    @app.route("/")
    async def hello() -> str:
        return "Hello, World!"

    @app.route("/search")
    async def search() -> dict[str, Any]:
        return {
            "q": request.args.get("q"),
            "page": request.args.get("page", type=int),
            "tags": request.args.getlist("tags"),
        }

    @app.route("/form", methods=["POST"])
    async def form() -> str:
        data = await request.form
        return f"{data['name']} {data['email']} {data['age']}"

    @app.route("/upload", methods=["POST"])
    async def upload() -> str:
        files = await request.files
        upload = files["file"]
        size = len(upload.read())
        return f"{(await request.form)['title']} {upload.filename} {size}"

    @app.route("/echo", methods=["POST"])
    async def echo() -> Response:
        return jsonify(await request.get_json())

    for i in STATIC_ROUTES:
        app.add_url_rule(f"/static{i}", f"static{i}", _static_view(i))
    for i in DYNAMIC_ROUTES:
        app.add_url_rule(f"/items{i}/<int:id>", f"items{i}", _item_view(i))
    return app


def create_hooks_app() -> Quart:
    """Build the app for the ``hooks`` scenario."""
    app = Quart(__name__)

    @app.before_request
    async def set_value() -> None:
        g.x = HOOK_VALUE

    @app.after_request
    async def add_header(response: Response) -> Response:
        response.headers["X-Hook"] = "1"
        return response

    @app.route("/hooks")
    async def hooks() -> str:
        return f"x={g.x}"

    return app


def create_template_app() -> Quart:
    """Build the app for the ``template`` scenario (``await render_template``, Quart's only form)."""
    app = Quart(__name__)

    @app.route(PATH)
    async def rows() -> str:
        return await render_template(TEMPLATE, **CONTEXT)

    return app


def _static_view(i: int) -> Callable[[], Awaitable[str]]:
    async def view() -> str:
        return f"static {i}"

    return view


def _item_view(i: int) -> Callable[[int], Awaitable[str]]:
    async def view(id: int) -> str:
        return f"item {i} {id}"

    return view
