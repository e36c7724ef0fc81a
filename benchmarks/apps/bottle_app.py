"""The benchmark application written for Bottle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bottle import BaseRequest, Bottle, request, response

from benchmarks.apps import template_common
from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES

#: Bottle's default (100 KiB) rejects the 100 KiB upload plus its title field with "Memory limit
#: reached"; 1 MiB keeps that body in memory, as Werkzeug does below its 500 KB spool threshold.
MEMFILE_MAX = 1024 * 1024


def create_app() -> Bottle:
    """Build the app serving every scenario except ``hooks``."""
    BaseRequest.MEMFILE_MAX = max(BaseRequest.MEMFILE_MAX, MEMFILE_MAX)  # process-wide setting
    app = Bottle()

    @app.get("/")
    def hello() -> str:
        return "Hello, World!"

    @app.get("/search")
    def search() -> dict[str, Any]:
        page = request.query.get("page")
        return {
            "q": request.query.getunicode("q"),
            "page": int(page) if page is not None else None,
            "tags": request.query.getall("tags"),
        }

    @app.post("/form")
    def form() -> str:
        data = request.forms
        return f"{data.getunicode('name')} {data.getunicode('email')} {data.getunicode('age')}"

    @app.post("/upload")
    def upload() -> str:
        upload = request.files["file"]
        size = len(upload.file.read())
        return f"{request.forms.getunicode('title')} {upload.raw_filename} {size}"

    @app.post("/echo")
    def echo() -> Any:
        return request.json

    for i in STATIC_ROUTES:
        app.route(f"/static{i}", "GET", _static_view(i))
    for i in DYNAMIC_ROUTES:
        app.route(f"/items{i}/<id:int>", "GET", _item_view(i))
    return app


def create_hooks_app() -> Bottle:
    """Build the app for the ``hooks`` scenario."""
    app = Bottle()

    @app.hook("before_request")
    def set_value() -> None:
        request.x = HOOK_VALUE

    @app.hook("after_request")
    def add_header() -> None:
        response.set_header("X-Hook", "1")

    @app.get("/hooks")
    def hooks() -> str:
        return f"x={request.x}"

    return app


def create_template_app() -> Bottle:
    """Build the app for the ``template`` scenario: the shared Jinja2 environment (Bottle's own ``jinja2_template``
    adapter does not autoescape by default)."""
    app = Bottle()
    env = template_common.jinja_environment()

    @app.get(template_common.PATH)
    def rows() -> str:
        return template_common.render(env)

    return app


def _static_view(i: int) -> Callable[[], str]:
    def view() -> str:
        return f"static {i}"

    return view


def _item_view(i: int) -> Callable[[int], str]:
    def view(id: int) -> str:
        return f"item {i} {id}"

    return view
