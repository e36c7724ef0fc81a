"""The WSGI adapter: environ in, core request cycle, status/headers/body out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .concurrency import run_background_tasks, run_coroutine_sync
from .datastructures import Headers, bodiless_header_pairs, header_pairs
from .exceptions import HTTPException, error_response
from .proxy_fix import SUPPORTED_VERSIONS, check_framing, check_http_version

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Response


#: ``SERVER_SOFTWARE`` prefixes of servers that take no ``Connection`` header from the application: wsgiref's
#: refuse hop-by-hop headers; Werkzeug's development server closes every connection and says so itself.
_NO_HOP_BY_HOP_SERVERS = ("WSGIServer/", "Werkzeug/")


class _StreamingBody:
    """A streamed body for the server: encodes text chunks and closes the response when done.

    Async iterables (an ``async def`` view returning an async generator) are driven on the worker thread's
    long-lived event loop.
    """

    __slots__ = ("_aiter", "_iter", "_response")

    def __init__(self, response: Response) -> None:
        self._response = response
        body: Any = response.response
        if hasattr(body, "__aiter__"):
            self._aiter = body.__aiter__()
            self._iter = None
        else:
            self._aiter = None
            self._iter = iter(body)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is not None:
            chunk = next(self._iter)
        else:
            try:
                chunk = run_coroutine_sync(self._aiter.__anext__())
            except StopAsyncIteration:
                raise StopIteration from None
        return chunk.encode("utf-8") if isinstance(chunk, str) else chunk

    def close(self) -> None:
        try:
            aclose = getattr(self._aiter, "aclose", None)
            if aclose is not None:
                    run_coroutine_sync(aclose())
        finally:
            self._response.close()


#: Statuses sent without a body (1xx, 204, 304; the status setter refuses codes under 100).
_BODILESS = frozenset((*range(100, 200), 204, 304))


def to_wsgi(response: Response, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Send ``response`` through ``start_response`` and return the body iterable."""
    given = response.headers
    # PERF: Ampulla's own Headers are checked when set; their list goes out as it is (instructions.py: hello).
    headers: list[tuple[str, str]] = given._list if given.__class__ is Headers else header_pairs(given)
    body = response.response
    code = response._status_code
    if code in _BODILESS:
        # As Werkzeug: a 1xx, 204 or 304 carries no body, whatever the response holds (an error handler's JSON).
        start_response(response._status_line, bodiless_header_pairs(code, headers))
        response.close()
        return []
    if isinstance(body, list):
        # PERF: the usual one-chunk body of bytes without a loop (benchmarks/instructions.py: hello).
        if len(body) != 1 or body[0].__class__ is not bytes:
            for i, chunk in enumerate(body):
                if not isinstance(chunk, bytes):
                    body[i] = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
        for name, _ in headers:
            if name == "Content-Length" or (len(name) == 14 and name.lower() == "content-length"):
                break
        else:
            headers = [*headers, ("Content-Length", str(sum(map(len, body))))]
        start_response(response._status_line, headers)
        if "REQUEST_METHOD" in environ and environ["REQUEST_METHOD"] == "HEAD":
            response.close()
            return []
        if response._on_close:
            return _StreamingBody(response)
        return body
    start_response(response._status_line, headers)
    if environ.get("REQUEST_METHOD") == "HEAD":
        response.close()
        return []
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and type(body) is file_wrapper and not response._on_close:
        # A whole file that send_file wrapped with the server's own wrapper: the server sends it (sendfile(2)).
        return body
    return _StreamingBody(response)


def _refuse(error: HTTPException, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer a request the server should have refused, asking it to close the connection."""
    response = error_response(error)
    # NOTE: PEP 3333 keeps hop-by-hop headers from applications and wsgiref-based servers assert on them;
    # Werkzeug's development server closes every connection anyway. gunicorn drops the header (and refuses these
    # requests itself); the others honour it.
    if not environ.get("SERVER_SOFTWARE", "").startswith(_NO_HOP_BY_HOP_SERVERS):
        response.headers["Connection"] = "close"
    return to_wsgi(response, environ, start_response)


def handle_wsgi(app: Ampulla, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve one WSGI request with ``app``: this is ``app.wsgi_app(environ, start_response)``.

    A request with an unknown HTTP version (505), or with both ``Content-Length`` and ``Transfer-Encoding``
    or an invalid ``Content-Length`` (400), is answered before any hook runs.
    """
    # PERF: membership tests rather than dict.get calls for the usual environ (benchmarks/instructions.py: hello).
    if "SERVER_PROTOCOL" in environ and environ["SERVER_PROTOCOL"] not in SUPPORTED_VERSIONS:
        error = check_http_version(environ["SERVER_PROTOCOL"])
        if error is not None:
            return _refuse(error, environ, start_response)
    if "HTTP_TRANSFER_ENCODING" in environ or (environ.get("CONTENT_LENGTH")):
        length = environ.get("CONTENT_LENGTH") or None
        error = check_framing(None if length is None else str(length), environ.get("HTTP_TRANSFER_ENCODING"))
        if error is not None:
            return _refuse(error, environ, start_response)
    try:
        request = app.request_class.from_environ(environ, app)
    except HTTPException as e:  # undecodable path: answered before any hook runs
        return to_wsgi(error_response(e), environ, start_response)
    response, ctx = (app._sync_cycle or app._cycles()[0]).handle(request)
    if ctx.preserved:
        environ["ampulla._preserved_context"] = ctx
    if ctx.background_tasks:
        response.call_on_close(lambda: run_background_tasks(app, ctx))
    return to_wsgi(response, environ, start_response)
