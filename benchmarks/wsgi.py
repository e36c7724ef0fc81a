"""WSGI driver: build an environ once, then call an app in-process, checked or timed.

Every call gets ``dict(base_environ)`` plus a fresh ``BytesIO(body)`` as ``wsgi.input``, made the
same way for every framework, so the per-call harness cost is identical and small.
"""

from __future__ import annotations

import sys
from io import BytesIO
from time import perf_counter_ns
from types import TracebackType
from typing import Any
from wsgiref.types import WSGIApplication, WSGIEnvironment

from benchmarks.scenarios import Request, Response

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class Driver:
    """Sends one scenario's request to WSGI apps."""

    protocol = "wsgi"

    def __init__(self, request: Request) -> None:
        self.base = build_environ(request)
        self.body = request.body

    def call(self, app: WSGIApplication) -> Response:
        """Call ``app`` once and capture its complete response."""
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
        ) -> Any:
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        environ = dict(self.base)
        environ["wsgi.input"] = BytesIO(self.body)
        iterable = app(environ, start_response)
        try:
            chunks.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if "status" not in captured:
            raise RuntimeError("the application never called start_response")
        return Response(int(captured["status"].split(None, 1)[0]), captured["headers"], b"".join(chunks))

    def time(self, app: WSGIApplication, calls: int) -> int:
        """Call ``app`` ``calls`` times, consuming and closing each body; return elapsed ns."""
        base, body, start_response = self.base, self.body, _start_response
        copy, stream = dict, BytesIO
        start = perf_counter_ns()
        for _ in range(calls):
            environ = copy(base)
            environ["wsgi.input"] = stream(body)
            iterable = app(environ, start_response)
            for _chunk in iterable:
                pass
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return perf_counter_ns() - start


def build_environ(request: Request) -> WSGIEnvironment:
    """Return a complete PEP 3333 environ for ``request`` (with an empty ``wsgi.input``)."""
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "54321",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "ampulla-bench/1.0",
        "HTTP_ACCEPT": "*/*",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        environ["CONTENT_LENGTH"] = str(len(request.body))
    if request.content_type is not None:
        environ["CONTENT_TYPE"] = request.content_type
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def _write(data: bytes) -> None:
    """The ``write`` callable returned by :func:`_start_response`; discards data."""


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /) -> Any:
    return _write
