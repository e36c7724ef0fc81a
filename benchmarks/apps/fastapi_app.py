"""The benchmark application written for FastAPI (typed parameters, ``Form``/``UploadFile``, dependencies).

Text answers are returned as ``HTMLResponse`` objects (what Flask sends for a ``str``); JSON answers are
plain dicts, serialized by FastAPI. The ``hooks`` app uses an app-wide dependency, FastAPI's way to run
code on every request: it sets ``request.state.x`` before the view and adds the header through the
``Response`` parameter, which FastAPI merges into the response the view's return value becomes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import python_multipart  # noqa: F401 - the form parser it needs: when missing, the framework is skipped
from fastapi import Body, Depends, FastAPI, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from benchmarks.apps import template_common
from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES


def create_app() -> FastAPI:
    """Build the app serving every scenario except ``hooks``."""
    app = FastAPI()

    @app.get("/")
    async def hello() -> HTMLResponse:
        return HTMLResponse("Hello, World!")

    @app.get("/search")
    async def search(
        q: str | None = None, page: int | None = None, tags: Annotated[list[str] | None, Query()] = None
    ) -> dict[str, Any]:
        return {"q": q, "page": page, "tags": tags or []}

    @app.post("/form")
    async def form(
        name: Annotated[str, Form()], email: Annotated[str, Form()], age: Annotated[str, Form()]
    ) -> HTMLResponse:
        return HTMLResponse(f"{name} {email} {age}")

    @app.post("/upload")
    async def upload(file: UploadFile, title: Annotated[str, Form()]) -> HTMLResponse:
        size = len(await file.read())
        return HTMLResponse(f"{title} {file.filename} {size}")

    @app.post("/echo")
    async def echo(data: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return data

    for i in STATIC_ROUTES:
        app.add_api_route(f"/static{i}", _static_view(i), methods=["GET"])
    for i in DYNAMIC_ROUTES:
        app.add_api_route(f"/items{i}/{{id}}", _item_view(i), methods=["GET"])
    return app


async def _hook(request: Request, response: Response) -> None:
    """Runs before every view: store the value; the header lands on the final response."""
    request.state.x = HOOK_VALUE
    response.headers["X-Hook"] = "1"


def create_hooks_app() -> FastAPI:
    """Build the app for the ``hooks`` scenario."""
    app = FastAPI(dependencies=[Depends(_hook)])

    @app.get("/hooks", response_class=HTMLResponse, response_model=None)
    async def hooks(request: Request) -> str:
        return f"x={request.state.x}"

    return app


def create_template_app() -> FastAPI:
    """Build the app for the ``template`` scenario: ``TemplateResponse`` from an ``async def`` endpoint."""
    app = FastAPI()
    renderer = Jinja2Templates(env=template_common.jinja_environment())

    @app.get(template_common.PATH, response_class=HTMLResponse)
    async def rows(request: Request) -> HTMLResponse:
        return renderer.TemplateResponse(request, template_common.TEMPLATE, template_common.CONTEXT)

    return app


def _static_view(i: int) -> Callable[[], Awaitable[HTMLResponse]]:
    async def view() -> HTMLResponse:
        return HTMLResponse(f"static {i}")

    return view


def _item_view(i: int) -> Callable[[int], Awaitable[HTMLResponse]]:
    async def view(id: int) -> HTMLResponse:
        return HTMLResponse(f"item {i} {id}")

    return view


try:
    from benchmarks.apps.orm_fastapi import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
