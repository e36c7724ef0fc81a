"""The benchmark application written for Falcon (resources, media handlers, middleware)."""

from __future__ import annotations

from typing import Any

import falcon

from benchmarks.apps import template_common
from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES


def _text(resp: falcon.Response, text: str) -> None:
    resp.content_type = falcon.MEDIA_HTML  # what Flask and Bottle send for a str
    resp.text = text


class Hello:
    """``GET /``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _text(resp, "Hello, World!")


class Search:
    """``GET /search``: query string to JSON."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "q": req.get_param("q"),
            "page": req.get_param_as_int("page"),
            "tags": req.get_param_as_list("tags") or [],
        }


class Form:
    """``POST /form``: urlencoded form."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data: dict[str, Any] = req.get_media()
        _text(resp, f"{data['name']} {data['email']} {data['age']}")


class Upload:
    """``POST /upload``: multipart form with a file."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        title = filename = None
        size = 0
        for part in req.get_media():
            if part.name == "file":
                filename = part.filename
                size = len(part.stream.read())
            elif part.name == "title":
                title = part.text
        _text(resp, f"{title} {filename} {size}")


class Echo:
    """``POST /echo``: JSON echo."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = req.get_media()


class Static:
    """``GET /static<i>``."""

    def __init__(self, i: int) -> None:
        self.i = i

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _text(resp, f"static {self.i}")


class Item:
    """``GET /items<i>/{id:int}``."""

    def __init__(self, i: int) -> None:
        self.i = i

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: int) -> None:
        _text(resp, f"item {self.i} {id}")


class HookMiddleware:
    """App-wide before/after hooks, Falcon's equivalent of before_request/after_request."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.x = HOOK_VALUE

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Hook", "1")


class Hooked:
    """``GET /hooks``: uses the value set by the middleware."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _text(resp, f"x={req.context.x}")


class Rows:
    """``GET /rows``: the template scenario, Jinja2 called from the resource (Falcon has no templating)."""

    def __init__(self) -> None:
        self.env = template_common.jinja_environment()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _text(resp, template_common.render(self.env))


def create_app() -> falcon.App[falcon.Request, falcon.Response]:
    """Build the app serving every scenario except ``hooks``."""
    app = falcon.App()
    app.add_route("/", Hello())
    app.add_route("/search", Search())
    app.add_route("/form", Form())
    app.add_route("/upload", Upload())
    app.add_route("/echo", Echo())
    for i in STATIC_ROUTES:
        app.add_route(f"/static{i}", Static(i))
    for i in DYNAMIC_ROUTES:
        app.add_route(f"/items{i}/{{id:int}}", Item(i))
    return app


def create_hooks_app() -> falcon.App[falcon.Request, falcon.Response]:
    """Build the app for the ``hooks`` scenario."""
    app = falcon.App(middleware=[HookMiddleware()])
    app.add_route("/hooks", Hooked())
    return app


def create_template_app() -> falcon.App[falcon.Request, falcon.Response]:
    """Build the app for the ``template`` scenario."""
    app = falcon.App()
    app.add_route(template_common.PATH, Rows())
    return app


try:
    from benchmarks.apps.orm_falcon import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
