"""The benchmark application as a bare ASGI 3 callable: the floor for ``--protocol asgi``.

Standard library only and written like ``bare_app``: the body is read whole from ``receive``, there are
no limits and minimal validation. A lower bound, not a framework.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES
from benchmarks.apps.template_common import PATH as TEMPLATE_PATH
from benchmarks.apps.template_common import jinja_environment, render

Scope = dict[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A handler gets the scope and the whole body; it returns status, content type and body.
Handler = Callable[[Scope, bytes], tuple[int, bytes, bytes]]

_HTML = b"text/html; charset=utf-8"
_JSON = b"application/json"
_PARAM = re.compile(r';\s*(\w+)="([^"]*)"')


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _hello(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    return 200, _HTML, b"Hello, World!"


def _search(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    args = parse_qs(scope["query_string"].decode("latin-1"))
    page = args.get("page")
    data = {"q": args.get("q", [None])[0], "page": int(page[0]) if page else None, "tags": args.get("tags", [])}
    return 200, _JSON, json.dumps(data).encode()


def _form(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    data = parse_qs(body.decode())
    return 200, _HTML, f"{data['name'][0]} {data['email'][0]} {data['age'][0]}".encode()


def _multipart(scope: Scope, body: bytes) -> dict[str, tuple[dict[str, str], bytes]]:
    """Parse a multipart body into ``{name: (disposition params, content)}``."""
    boundary = _header(scope, b"content-type").partition("boundary=")[2].strip('"').encode()
    fields: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, content = chunk[2:-2].partition(b"\r\n\r\n")
        for line in head.decode("utf-8").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                params = dict(_PARAM.findall(line))
                fields[params["name"]] = (params, content)
    return fields


def _upload(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    fields = _multipart(scope, body)
    params, content = fields["file"]
    return 200, _HTML, f"{fields['title'][1].decode()} {params['filename']} {len(content)}".encode()


def _echo(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    data: Any = json.loads(body)
    return 200, _JSON, json.dumps(data).encode()


def _hooks(scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
    return 200, _HTML, f"x={scope['bench.x']}".encode()


def _static(i: int) -> Handler:
    text = f"static {i}".encode()
    return lambda scope, body: (200, _HTML, text)


def _make_app(routes: dict[tuple[str, str], Handler], hooks: bool = False) -> ASGIApp:
    items = re.compile(r"/items(\d+)/(\d+)\Z")
    dynamic = set(DYNAMIC_ROUTES)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if hooks:
            scope["bench.x"] = HOOK_VALUE
        method, path = scope["method"], scope["path"]
        handler = routes.get((method, path))
        if handler is not None:
            body = await _read_body(receive) if method == "POST" else b""
            status, content_type, data = handler(scope, body)
        elif method == "GET" and (match := items.match(path)) and int(match[1]) in dynamic:
            status, content_type, data = 200, _HTML, f"item {match[1]} {int(match[2])}".encode()
        else:
            status, content_type, data = 404, _HTML, b"Not Found"
        headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        if hooks:
            headers.append((b"x-hook", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def create_app() -> ASGIApp:
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


def create_hooks_app() -> ASGIApp:
    """Build the app for the ``hooks`` scenario."""
    return _make_app({("GET", "/hooks"): _hooks}, hooks=True)


def create_template_app() -> ASGIApp:
    """Build the app for the ``template`` scenario: Jinja2 called from the bare callable, the yardstick."""
    env = jinja_environment()
    return _make_app({("GET", TEMPLATE_PATH): lambda scope, body: (200, _HTML, render(env).encode())})


try:
    from benchmarks.apps.orm_bare_asgi import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
