"""The Starlette benchmark application with ``def`` endpoints, which Starlette runs in its thread pool.

It is the peer of ``ampulla-def`` (the Flask-style app with ``def`` views under ASGI). Starlette reads a request
body only with ``await`` (``request.form()``, ``request.json()``), so the form, upload and JSON echo endpoints stay
``async def`` here, as a Starlette user has to write them; every other endpoint is a plain function.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from benchmarks.apps import template_common
from benchmarks.apps.starlette_app import HookMiddleware, scenario_routes, templates


def hello(request: Request) -> Response:
    """``GET /``."""
    return HTMLResponse("Hello, World!")


def search(request: Request) -> Response:
    """``GET /search``: query string to JSON."""
    args = request.query_params
    page = args.get("page")
    data = {"q": args.get("q"), "page": int(page) if page is not None else None, "tags": args.getlist("tags")}
    return JSONResponse(data)


def hooked(request: Request) -> Response:
    """``GET /hooks``: uses the value set by the middleware."""
    return HTMLResponse(f"x={request.state.x}")


def _static(i: int) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return HTMLResponse(f"static {i}")

    return endpoint


def _item(i: int) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return HTMLResponse(f"item {i} {request.path_params['id']}")

    return endpoint


def create_app() -> Starlette:
    """Build the app serving every scenario except ``hooks``."""
    return Starlette(routes=scenario_routes(hello, search, _static, _item))


def create_hooks_app() -> Starlette:
    """Build the app for the ``hooks`` scenario (pure ASGI middleware, a ``def`` endpoint)."""
    return Starlette(routes=[Route("/hooks", hooked)], middleware=[Middleware(HookMiddleware)])


def create_template_app() -> Starlette:
    """Build the app for the ``template`` scenario: ``TemplateResponse`` from a ``def`` endpoint."""
    renderer = templates()

    def rows(request: Request) -> Response:
        return renderer.TemplateResponse(request, template_common.TEMPLATE, template_common.CONTEXT)

    return Starlette(routes=[Route(template_common.PATH, rows)])


try:
    from benchmarks.apps.orm_starlette_def import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
