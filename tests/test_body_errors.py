"""Errors raised by the server's input stream (``wsgi.input``) answer 400, never 500, and log no traceback.

Servers report a malformed body (a bad chunk size, a missing chunk terminator) and a vanished client (a reset
connection, a body cut short) by raising from ``wsgi.input.read``. These tests drive the raw WSGI callable with
input streams that raise what gunicorn, werkzeug's server and the socket layer raise. The exception classes below
copy gunicorn's hierarchy (``ParseException`` and ``NoMoreData``) so that the tests need no gunicorn import.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import Any

import pytest

from ampulla import Ampulla, request
from ampulla.wrappers import ClientDisconnected, MalformedBody, Request, input_error


class ParseException(Exception):
    """Like ``gunicorn.http.errors.ParseException``: the base of gunicorn's request parse errors."""


class InvalidChunkSize(ParseException):
    """Like gunicorn's: a chunk size line that is not hexadecimal."""

    def __str__(self) -> str:
        return "Invalid chunk size: b'zz'"


class ChunkMissingTerminator(ParseException):
    """Like gunicorn's: a chunk not followed by CRLF."""


class NoMoreData(IOError):
    """Like gunicorn's: the connection ended in the middle of the body."""


class RaisingInput(io.RawIOBase):
    """A ``wsgi.input`` that hands out ``prefix`` and then raises ``exc`` from every read."""

    def __init__(self, exc: BaseException, prefix: bytes = b"") -> None:
        super().__init__()
        self._exc = exc
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # Blocking file semantics (PEP 3333): a read asking for more than the prefix needs more input, and fails.
        if size is not None and 0 <= size <= len(self._prefix):
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        raise self._exc

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)


MALFORMED: list[Callable[[], Exception]] = [
    InvalidChunkSize,
    ChunkMissingTerminator,
    lambda: ValueError("Invalid chunk header"),
    lambda: EOFError("body ended"),
]
VANISHED: list[Callable[[], Exception]] = [
    ConnectionResetError,
    BrokenPipeError,
    lambda: TimeoutError("timed out"),
    NoMoreData,
    lambda: OSError("Invalid chunk header"),  # werkzeug's dev server (DechunkedInput)
]


def _app() -> Ampulla:
    app = Ampulla(__name__)

    @app.post("/data")
    def data() -> dict[str, int]:
        return {"size": len(request.get_data())}

    @app.post("/form")
    def form() -> dict[str, Any]:
        return dict(request.form)

    @app.post("/json")
    def json_view() -> Any:
        return request.get_json()

    @app.post("/stream")
    def stream() -> dict[str, int]:
        total = 0
        while chunk := request.stream.read(1000):
            total += len(chunk)
        return {"size": total}

    @app.post("/lines")
    def lines() -> dict[str, int]:
        return {"lines": len(request.stream.readlines())}

    @app.post("/async-data")
    async def async_data() -> dict[str, int]:
        return {"size": len(request.get_data())}

    return app


ROUTES = {
    "/data": "application/octet-stream",
    "/form": "application/x-www-form-urlencoded",
    "/json": "application/json",
    "/stream": "application/octet-stream",
    "/lines": "text/plain",
    "/async-data": "application/octet-stream",
}
MULTIPART = "multipart/form-data; boundary=b"


def _call(app: Ampulla, path: str, content_type: str, wsgi_input: io.RawIOBase, chunked: bool) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "CONTENT_TYPE": content_type,
        "wsgi.url_scheme": "http",
        "wsgi.input": wsgi_input,
        "wsgi.errors": io.StringIO(),
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = "100"
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    body = b"".join(app(environ, start_response))
    return statuses[0], body


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("path", [*ROUTES, "/form-multipart"])
@pytest.mark.parametrize("make_exc", MALFORMED, ids=lambda f: getattr(f, "__name__", "lambda"))
def test_malformed_body_from_the_server_answers_400_without_traceback(
    path: str, make_exc: Callable[[], Exception], chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app()
    route, content_type = ("/form", MULTIPART) if path == "/form-multipart" else (path, ROUTES[path])
    caplog.set_level(logging.DEBUG)
    status, body = _call(app, route, content_type, RaisingInput(make_exc(), b"a"), chunked)
    assert status.startswith("400"), body
    assert b"malformed" in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("path", [*ROUTES, "/form-multipart"])
@pytest.mark.parametrize("make_exc", VANISHED, ids=lambda f: getattr(f, "__name__", "lambda"))
def test_vanished_client_is_a_quiet_400(
    path: str, make_exc: Callable[[], Exception], chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app()
    route, content_type = ("/form", MULTIPART) if path == "/form-multipart" else (path, ROUTES[path])
    caplog.set_level(logging.DEBUG)
    status, body = _call(app, route, content_type, RaisingInput(make_exc()), chunked)
    assert status.startswith("400"), body
    assert b"disconnected" in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]


def test_the_debug_line_names_the_server_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ampulla.request")
    status, _ = _call(_app(), "/data", "application/octet-stream", RaisingInput(InvalidChunkSize()), True)
    assert status.startswith("400")
    [record] = [r for r in caplog.records if r.name == "ampulla.request"]
    assert record.levelno == logging.DEBUG
    assert "InvalidChunkSize" in record.getMessage()


def test_other_errors_from_the_input_stay_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A bug (here a TypeError inside the server's reader) is not the client's fault: 500, logged."""
    status, _ = _call(_app(), "/data", "application/octet-stream", RaisingInput(TypeError("bug")), True)
    assert status.startswith("500")
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_an_error_handler_for_400_sees_the_translated_error() -> None:
    app = _app()

    @app.errorhandler(400)
    def bad_request(e: Exception) -> tuple[str, int]:
        return type(e).__name__, 400

    status, body = _call(app, "/data", "application/octet-stream", RaisingInput(ConnectionResetError()), True)
    assert (status[:3], body) == ("400", b"ClientDisconnected")
    status, body = _call(app, "/form", MULTIPART, RaisingInput(InvalidChunkSize()), True)
    assert (status[:3], body) == ("400", b"MalformedBody")


def test_input_error_rule() -> None:
    assert isinstance(input_error(InvalidChunkSize()), MalformedBody)
    assert isinstance(input_error(ValueError()), MalformedBody)
    assert isinstance(input_error(ConnectionAbortedError()), ClientDisconnected)
    assert isinstance(input_error(NoMoreData()), ClientDisconnected)
    mine = MalformedBody()
    assert input_error(mine) is mine
    bug = KeyError("x")
    assert input_error(bug) is bug


def test_request_stream_read_raises_the_http_error_directly() -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": "10",
        "wsgi.input": RaisingInput(InvalidChunkSize(), b"abc"),
    }
    req = Request.from_environ(environ)
    assert req.stream.read(3) == b"abc"
    with pytest.raises(MalformedBody) as info:
        req.stream.read(3)
    assert isinstance(info.value.__cause__, InvalidChunkSize)


@pytest.mark.parametrize("path", ["/data", "/async-data", "/form"])
def test_asgi_client_gone_mid_body_is_a_quiet_400(path: str, caplog: pytest.LogCaptureFixture) -> None:
    app = _app()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"a=1", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", ROUTES[path].encode()), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    caplog.set_level(logging.DEBUG)
    asyncio.run(app(scope, receive, send))
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [400]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
