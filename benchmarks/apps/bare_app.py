"""The benchmark application as a bare WSGI callable: the floor the frameworks are measured against.

Standard library only, eager (whole body read into memory), no limits and minimal validation:
it does the work each scenario needs and nothing else, so it is a lower bound, not a framework.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES
from benchmarks.apps.template_common import PATH as TEMPLATE_PATH
from benchmarks.apps.template_common import jinja_environment, render

Handler = Callable[[WSGIEnvironment], tuple[str, str, bytes]]

_HTML = "text/html; charset=utf-8"
_JSON = "application/json"
_PARAM = re.compile(r';\s*(\w+)="([^"]*)"')


def _body(environ: WSGIEnvironment) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data: bytes = environ["wsgi.input"].read(length) if length else b""
    return data


def _hello(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    return "200 OK", _HTML, b"Hello, World!"


def _search(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    args = parse_qs(environ.get("QUERY_STRING", ""))
    page = args.get("page")
    data = {
        "q": args.get("q", [None])[0],
        "page": int(page[0]) if page else None,
        "tags": args.get("tags", []),
    }
    return "200 OK", _JSON, json.dumps(data).encode()


def _form(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    data = parse_qs(_body(environ).decode())
    return "200 OK", _HTML, f"{data['name'][0]} {data['email'][0]} {data['age'][0]}".encode()


def _multipart(environ: WSGIEnvironment) -> dict[str, tuple[dict[str, str], bytes]]:
    """Parse a multipart body into ``{name: (disposition params, content)}``."""
    boundary = environ["CONTENT_TYPE"].partition("boundary=")[2].strip('"').encode()
    chunks = _body(environ).split(b"--" + boundary)
    fields: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in chunks[1:-1]:
        head, _, content = chunk[2:-2].partition(b"\r\n\r\n")
        for line in head.decode("utf-8").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                params = dict(_PARAM.findall(line))
                fields[params["name"]] = (params, content)
    return fields


def _upload(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    fields = _multipart(environ)
    params, content = fields["file"]
    title = fields["title"][1].decode()
    return "200 OK", _HTML, f"{title} {params['filename']} {len(content)}".encode()


def _echo(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    data: Any = json.loads(_body(environ))
    return "200 OK", _JSON, json.dumps(data).encode()


def _hooks(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    return "200 OK", _HTML, f"x={environ['bench.x']}".encode()


def _static(i: int) -> Handler:
    body = f"static {i}".encode()
    return lambda environ: ("200 OK", _HTML, body)


def _not_found(environ: WSGIEnvironment) -> tuple[str, str, bytes]:
    return "404 Not Found", _HTML, b"Not Found"


def _make_app(routes: dict[tuple[str, str], Handler], hooks: bool = False) -> WSGIApplication:
    items = re.compile(r"/items(\d+)/(\d+)\Z")
    dynamic = set(DYNAMIC_ROUTES)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if hooks:
            environ["bench.x"] = HOOK_VALUE
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        handler = routes.get((method, path))
        if handler is not None:
            status, content_type, body = handler(environ)
        elif method == "GET" and (match := items.match(path)) and int(match[1]) in dynamic:
            status, content_type, body = "200 OK", _HTML, f"item {match[1]} {int(match[2])}".encode()
        else:
            status, content_type, body = _not_found(environ)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if hooks:
            headers.append(("X-Hook", "1"))
        start_response(status, headers)
        return [body]

    return app


def create_app() -> WSGIApplication:
    """Build the app serving every scenario except ``hooks``."""
    routes: dict[tuple[str, str], Handler] = {
        ("GET", "/"): _hello,
        ("GET", "/search"): _search,
        ("POST", "/form"): _form,
        ("POST", "/upload"): _upload,
        ("POST", "/echo"): _echo,
    }
    routes.update({("GET", f"/static{i}"): _static(i) for i in STATIC_ROUTES})
    return _make_app(routes)


def create_hooks_app() -> WSGIApplication:
    """Build the app for the ``hooks`` scenario."""
    return _make_app({("GET", "/hooks"): _hooks}, hooks=True)


def create_template_app() -> WSGIApplication:
    """Build the app for the ``template`` scenario: Jinja2 called from the bare callable, the yardstick."""
    env = jinja_environment()
    return _make_app({("GET", TEMPLATE_PATH): lambda environ: ("200 OK", _HTML, render(env).encode())})


try:
    from benchmarks.apps.orm_bare import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
