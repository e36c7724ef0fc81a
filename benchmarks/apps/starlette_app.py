"""The benchmark application written for Starlette (routes, ``Request``, response classes).

Starlette has no before/after request hooks. ``create_hooks_app`` uses a pure ASGI middleware (what
Starlette's docs recommend when speed matters): it stores the value in ``scope["state"]`` (read back as
``request.state.x``) and adds the header to the ``http.response.start`` message.
``create_hooks_basehttp_app`` does the same with ``BaseHTTPMiddleware`` (``@app.middleware("http")``),
the request/response style closest to ``after_request``; it is benchmarked as ``starlette-bhm``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import python_multipart  # noqa: F401 - the form parser it needs: when missing, the framework is skipped
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.apps import template_common
from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES

Endpoint = Callable[[Request], Awaitable[Response]]


async def hello(request: Request) -> Response:
    """``GET /``."""
    return HTMLResponse("Hello, World!")


async def search(request: Request) -> Response:
    """``GET /search``: query string to JSON."""
    args = request.query_params
    page = args.get("page")
    data = {"q": args.get("q"), "page": int(page) if page is not None else None, "tags": args.getlist("tags")}
    return JSONResponse(data)


async def form(request: Request) -> Response:
    """``POST /form``: urlencoded form."""
    async with request.form() as data:
        return HTMLResponse(f"{data['name']} {data['email']} {data['age']}")


async def upload(request: Request) -> Response:
    """``POST /upload``: multipart form with a file."""
    async with request.form() as data:
        file = data["file"]
        assert isinstance(file, UploadFile)
        size = len(await file.read())
        return HTMLResponse(f"{data['title']} {file.filename} {size}")


async def echo(request: Request) -> Response:
    """``POST /echo``: JSON echo."""
    return JSONResponse(await request.json())


async def hooked(request: Request) -> Response:
    """``GET /hooks``: uses the value set by the middleware."""
    return HTMLResponse(f"x={request.state.x}")


def _static(i: int) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return HTMLResponse(f"static {i}")

    return endpoint


def _item(i: int) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return HTMLResponse(f"item {i} {request.path_params['id']}")

    return endpoint


class HookMiddleware:
    """Pure ASGI middleware: a before hook (request state) and an after hook (a response header)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["x"] = HOOK_VALUE

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-hook", b"1")]
            await send(message)

        await self.app(scope, receive, send_with_header)


class BaseHTTPHookMiddleware(BaseHTTPMiddleware):
    """The same hooks with ``BaseHTTPMiddleware``: request and response objects, slower."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.x = HOOK_VALUE
        response = await call_next(request)
        response.headers["X-Hook"] = "1"
        return response


def scenario_routes(
    hello: Callable[..., Any], search: Callable[..., Any], static: Callable[[int], Any], item: Callable[[int], Any]
) -> list[Route]:
    """The routes of every scenario except ``hooks``, with these endpoints for the bodiless ones (``async def`` or
    ``def``); the form, upload and JSON echo endpoints are always ``async def``: Starlette reads a body with
    ``await``."""
    routes = [
        Route("/", hello),
        Route("/search", search),
        Route("/form", form, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/echo", echo, methods=["POST"]),
    ]
    routes += [Route(f"/static{i}", static(i)) for i in STATIC_ROUTES]
    routes += [Route(f"/items{i}/{{id:int}}", item(i)) for i in DYNAMIC_ROUTES]
    return routes


def create_app() -> Starlette:
    """Build the app serving every scenario except ``hooks``."""
    return Starlette(routes=scenario_routes(hello, search, _static, _item))


def create_hooks_app() -> Starlette:
    """Build the app for the ``hooks`` scenario (pure ASGI middleware)."""
    return Starlette(routes=[Route("/hooks", hooked)], middleware=[Middleware(HookMiddleware)])


def create_hooks_basehttp_app() -> Starlette:
    """Build the app for the ``hooks`` scenario with ``BaseHTTPMiddleware``."""
    return Starlette(routes=[Route("/hooks", hooked)], middleware=[Middleware(BaseHTTPHookMiddleware)])


def templates() -> Jinja2Templates:
    """Starlette's template renderer on the shared Jinja2 settings (it adds its ``url_for`` global)."""
    return Jinja2Templates(env=template_common.jinja_environment())


def create_template_app() -> Starlette:
    """Build the app for the ``template`` scenario: ``TemplateResponse`` from an ``async def`` endpoint."""
    renderer = templates()

    async def rows(request: Request) -> Response:
        return renderer.TemplateResponse(request, template_common.TEMPLATE, template_common.CONTEXT)

    return Starlette(routes=[Route(template_common.PATH, rows)])


try:
    from benchmarks.apps.orm_starlette import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
