"""The in-process test client and the request builder behind ``test_request_context``.

Built on Werkzeug's test tools, as Flask's are: :class:`AmpullaClient` is a :class:`werkzeug.test.Client`
(Flask's ``FlaskClient``), :class:`EnvironBuilder` a :class:`werkzeug.test.EnvironBuilder` and
:class:`TestResponse` has Werkzeug's ``TestResponse`` attributes on Ampulla's response. ``app.test_client()``
sends requests through the app's WSGI callable, or through its ASGI callable with ``protocol="asgi"``, without a
server. The WebSocket test session and the CLI runner are here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import io
import itertools
import json as _json
import os
import secrets
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from importlib import metadata
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import werkzeug.test
from werkzeug.datastructures import Headers as WerkzeugHeaders
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wsgi import get_current_url

from .concurrency import run_coroutine_sync
from .ctx import RequestContext, current_context
from .datastructures import FileStorage
from .wrappers import STATUS_LINES as _imported_status_lines
from .wrappers import Response

if TYPE_CHECKING:
    from .app import Ampulla
    from .sessions import SessionMixin

_STATUS_LINES = _imported_status_lines  # PERF: assigned, not imported: see the note on ctx._cv_ctx


# ---------------------------------------------------------------------------------------------- ASGI driving


def scope_from_environ(environ: dict[str, Any], kind: str = "http") -> dict[str, Any]:
    """An ASGI scope describing the same request as a WSGI environ (used by the test client)."""
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1")))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1")))
    root = environ.get("SCRIPT_NAME", "").encode("latin-1").decode("utf-8", "replace")
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    scheme = environ.get("wsgi.url_scheme", "http")
    if kind == "websocket":
        scheme = "wss" if scheme == "https" else "ws"
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": scheme,
        "path": root + path,
        "raw_path": (root + path).encode(),
        "root_path": root,
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "client": (environ.get("REMOTE_ADDR", "127.0.0.1"), 50000),
        "server": (environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT", "80") or 80)),
    }
    if kind == "http":
        scope["method"] = environ.get("REQUEST_METHOD", "GET")
    if environ.get("ampulla.preserve_context"):
        scope["ampulla.preserve_context"] = True
    return scope


async def _run_request(app: Ampulla, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    scope = scope_from_environ(environ)
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    remaining = int(length) if length and str(length).strip().isdigit() else None
    body_done = False
    status = 500
    headers: list[tuple[str, str]] = []
    parts: list[bytes] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal body_done, remaining
        if not body_done:
            size = 65536 if remaining is None else min(65536, remaining)
            chunk = stream.read(size) if size else b""
            if remaining is not None:
                remaining -= len(chunk)
            more = bool(chunk) and (remaining is None or remaining > 0)
            body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    ctx = scope.get("ampulla._preserved_context")
    if ctx is not None:
        environ["ampulla._preserved_context"] = ctx
    return status, headers, b"".join(parts)


def run_asgi_request(app: Ampulla, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run one request described by a WSGI environ through the app's ASGI callable (test client)."""
    status, headers, body = run_coroutine_sync(_run_request(app, environ))
    return _STATUS_LINES.get(status, f"{status} UNKNOWN"), headers, body


def _is_file(value: Any) -> bool:
    return isinstance(value, FileStorage) or (
        isinstance(value, tuple) and len(value) >= 2 and hasattr(value[0], "read")
    ) or hasattr(value, "read")


def encode_multipart(fields: Iterable[tuple[str, Any]], boundary: str | None = None) -> tuple[bytes, str]:
    """Encode fields and files as ``multipart/form-data``.

    Args:
        fields: ``(name, value)`` pairs; a value is text, or a file: ``(fileobj, filename)``,
            ``(fileobj, filename, content_type)``, a :class:`FileStorage` or an open binary file.
        boundary: The boundary (random by default).

    Returns:
        The body and the Content-Type header value.
    """
    boundary = boundary or f"----AmpullaBoundary{secrets.token_hex(12)}"
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if _is_file(value):
            content_type = "application/octet-stream"
            if isinstance(value, FileStorage):
                stream: IO[bytes] = value.stream
                filename = value.filename or ""
                content_type = value.content_type or "application/octet-stream"
            elif isinstance(value, tuple):
                stream, filename = value[0], value[1]
                if len(value) > 2 and value[2]:
                    content_type = value[2]
            else:
                stream, filename = value, os.path.basename(getattr(value, "name", "") or "")
            data = stream.read()
            if isinstance(data, str):
                data = data.encode()
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            out.write(
                f'Content-Disposition: form-data; name="{name}"; filename="{quoted}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n".encode()
            )
            out.write(data)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(value if isinstance(value, bytes) else str(value).encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class EnvironBuilder(werkzeug.test.EnvironBuilder):
    """Werkzeug's :class:`~werkzeug.test.EnvironBuilder` with the host, scheme and root of ``app``.

    Builds the WSGI environ of a test request as Flask's ``EnvironBuilder`` does: the base URL comes from
    ``SERVER_NAME`` (default ``localhost``), ``APPLICATION_ROOT`` and ``PREFERRED_URL_SCHEME`` unless
    ``base_url`` is given, and ``json=`` bodies are serialised with the app's JSON provider (``app.json``).

    Args:
        app: The application (optional: without one the base URL is ``http://localhost/``).
        path: The path; a full URL (``https://example.test/a?x=1``) also sets the scheme, host and query.
        base_url: ``scheme://host/root/``; not with ``subdomain`` or ``url_scheme``.
        subdomain: Prefix ``SERVER_NAME`` with this subdomain.
        url_scheme: ``http`` or ``https`` (default ``PREFERRED_URL_SCHEME``).
        *args: Werkzeug's further arguments, in its order: ``query_string``, ``method``, ``input_stream``,
            ``content_type``, ``content_length``, ``errors_stream``, ``multithread``, ``multiprocess``,
            ``run_once``, ``headers``, ``data``, ``environ_base``, ``environ_overrides``, ``mimetype``, ``json``,
            ``auth``.
        **kwargs: The same by name.

    Raises:
        TypeError: ``base_url`` was given with ``subdomain`` or ``url_scheme``.
    """

    def __init__(
        self,
        app: Ampulla | None = None,
        path: str = "/",
        base_url: str | None = None,
        subdomain: str | None = None,
        url_scheme: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if base_url is not None and (subdomain or url_scheme):
            raise TypeError("Give either 'base_url' or 'subdomain'/'url_scheme', not both.")
        if base_url is None:
            config: Mapping[str, Any] = app.config if app is not None else {}
            host = config.get("SERVER_NAME") or "localhost"
            root = config.get("APPLICATION_ROOT") or "/"
            if subdomain:
                host = f"{subdomain}.{host}"
            if url_scheme is None:
                url_scheme = config.get("PREFERRED_URL_SCHEME") or "http"
            url = urlsplit(path)
            base_url = f"{url.scheme or url_scheme}://{url.netloc or host}/{root.lstrip('/')}"
            path = f"{url.path}?{url.query}" if url.query else url.path
        self.app = app
        super().__init__(path, base_url, *args, **kwargs)

    def json_dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise a ``json=`` body with the app's JSON provider (``app.json``) when there is an app."""
        if self.app is not None:
            return str(self.app.json.dumps(obj, **kwargs))
        return _json.dumps(obj, **kwargs)


class TestResponse(Response):
    """A response returned by the test client: Werkzeug's ``TestResponse`` on Ampulla's :class:`Response`.

    With a custom ``app.response_class`` the client returns a subclass of both (as Werkzeug and Flask do), so the
    response class's own properties are there in tests.

    Attributes:
        request: The request that produced it (a :class:`werkzeug.wrappers.Request`; ``request.environ`` is the
            WSGI environ that was sent).
        history: The responses of followed redirects, oldest first (``follow_redirects=True``).
    """

    __test__ = False
    default_mimetype = None
    request: WerkzeugRequest
    history: tuple[TestResponse, ...]

    def __init__(
        self,
        response: Iterable[bytes],
        status: str,
        headers: WerkzeugHeaders,
        request: WerkzeugRequest,
        history: tuple[TestResponse, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(response, status, headers, **kwargs)
        self.request = request
        self.history = history

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """The body parsed as JSON with :attr:`json_module`; ``None`` when the response is not JSON.

        Args:
            force: Parse whatever the content type.
            silent: Return ``None`` instead of raising on invalid JSON.

        Raises:
            ValueError: The body is not valid JSON (unless ``silent``).
        """
        if not (force or self.is_json):
            return None
        try:
            return self.json_module.loads(self.get_data())
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        """The body parsed as JSON (:meth:`get_json`)."""
        return self.get_json()

    @property
    def is_sequence(self) -> bool:
        """Whether the body is buffered (a list or tuple) rather than an iterator."""
        return isinstance(self.response, list | tuple)

    def make_sequence(self) -> None:
        """Read a streamed body to its end and keep it (the stream is closed)."""
        self.get_data()

    def __enter__(self) -> TestResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_mixed_response_classes: weakref.WeakKeyDictionary[type[Response], type[TestResponse]] = (
    weakref.WeakKeyDictionary()
)


def _test_response_class(response_class: type[Response] | None) -> type[TestResponse]:
    """The class of the client's responses: :class:`TestResponse`, mixed with a custom response class."""
    if response_class is None or response_class is Response:
        return TestResponse
    if issubclass(response_class, TestResponse):
        return response_class
    mixed = _mixed_response_classes.get(response_class)
    if mixed is None:
        mixed = _mixed_response_classes[response_class] = type(
            "WrapperTestResponse", (TestResponse, response_class), {}
        )
    return mixed


@functools.lru_cache(maxsize=1)
def _werkzeug_version() -> str:
    return metadata.version("werkzeug")


class _ClosingBody:
    """A WSGI body read lazily by the test client; ``close()`` runs once, at the latest when it is exhausted."""

    __slots__ = ("_close", "_iterator")

    def __init__(self, iterator: Iterator[bytes], close: Callable[[], Any] | None) -> None:
        self._iterator = iterator
        self._close = close

    def __iter__(self) -> _ClosingBody:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._iterator)
        except StopIteration:
            self.close()
            raise

    def add_close(self, func: Callable[[], Any]) -> None:
        """Run ``func`` too when the body is closed."""
        first = self._close
        if first is None:
            self._close = func
            return

        def both() -> None:
            try:
                first()
            finally:
                func()

        self._close = both

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __del__(self) -> None:
        # NOTE: a response dropped unread still closes its body (an open file, the view's teardown) when the
        # test lets go of it, rather than whenever the garbage collector gets to the file.
        self.close()


def _run_wsgi(
    app: Any, environ: dict[str, Any], buffered: bool
) -> tuple[Iterable[bytes], str, WerkzeugHeaders]:
    """Call a WSGI app; the body is read at once, or as the test reads it when it is a stream.

    Unless ``buffered``, a body of unknown length (no ``Content-Length``: a generator, an event stream) is read
    as the test reads it, as Werkzeug's client does; a body of known length is read and closed at once, so
    that what runs when a response is closed (background tasks, a sent file) is done when the client returns.
    """
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None:
            try:
                raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        started[:] = [status, headers]
        return written.append

    app_rv = app(environ, start_response)
    close = getattr(app_rv, "close", None)
    iterator = iter(app_rv)
    body: Iterable[bytes]
    if started and not buffered:
        buffered = any(name.lower() == "content-length" for name, _ in started[1])
    if buffered:
        try:
            body = [*written, *iterator]
        finally:
            if close is not None:
                close()
    else:
        head = list(written)
        while not started:  # a generator app calls start_response when its first item is asked for
            item = next(iterator, None)
            if item is None:
                break
            head.append(item)
        body = _ClosingBody(itertools.chain(head, iterator), close)
    if not started:
        raise AssertionError("the WSGI application did not call start_response")
    return body, started[0], WerkzeugHeaders(started[1])


class AmpullaClient(werkzeug.test.Client):
    """In-process HTTP client for tests: Werkzeug's :class:`~werkzeug.test.Client`, as Flask's ``FlaskClient``.

    ``client.get("/")``, ``client.post("/", data={...}, follow_redirects=True)``: every
    :class:`EnvironBuilder` argument is accepted, cookies are kept between requests (``get_cookie``,
    ``set_cookie``, ``delete_cookie``), and ``with client:`` keeps the last request's context active until the
    next request or the end of the block. ``protocol="asgi"`` sends the requests through the app's ASGI
    callable instead of its WSGI one (the whole body is read before the response is returned).

    Args:
        application: The application.
        response_wrapper: The response class (``app.test_client()`` passes ``app.response_class``); responses
            are :class:`TestResponse` mixed with it.
        use_cookies: Store cookies from responses and send them back.
        allow_subdomain_redirects: Follow redirects to subdomains of the request's host.
        protocol: ``"wsgi"`` (default) or ``"asgi"``: which of the app's callables handles the requests.

    Raises:
        ValueError: An unknown ``protocol``.
    """

    __test__ = False
    application: Ampulla

    def __init__(
        self,
        application: Ampulla,
        response_wrapper: type[Response] | None = None,
        use_cookies: bool = True,
        allow_subdomain_redirects: bool = False,
        protocol: str = "wsgi",
    ) -> None:
        if protocol not in ("wsgi", "asgi"):
            raise ValueError("protocol must be 'wsgi' or 'asgi'")
        super().__init__(application, use_cookies=use_cookies, allow_subdomain_redirects=allow_subdomain_redirects)
        self.response_wrapper = _test_response_class(response_wrapper)  # type: ignore[assignment]
        self.protocol = protocol
        self.preserve_context = False
        self._context_stack: list[RequestContext] = []
        self._kept_streams: list[IO[bytes]] = []
        self.environ_base: dict[str, Any] = {
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": f"Werkzeug/{_werkzeug_version()}",
        }

    # ------------------------------------------------------------------------------------------ requests
    def _copy_environ(self, other: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.environ_base, **other}

    def _request_from_builder_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> WerkzeugRequest:
        kwargs["environ_base"] = self._copy_environ(kwargs.get("environ_base") or {})
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            return builder.get_request()
        finally:
            builder.close()

    def open(  # type: ignore[override]
        self, *args: Any, buffered: bool = False, follow_redirects: bool = False, **kwargs: Any
    ) -> TestResponse:
        """Send a request and return the response.

        Args:
            *args: An :class:`EnvironBuilder` (Werkzeug's too), a WSGI environ or a Werkzeug request; or the
                arguments of :class:`EnvironBuilder` after ``app``: ``path``, ``base_url``...
            buffered: Read the whole body before returning. Without it a streamed body (one without
                ``Content-Length``) is read as the test reads it (``response.response`` is the iterator), and
                closed once read to its end or when the response is dropped.
            follow_redirects: Follow 3xx responses (``response.history`` keeps them).
            **kwargs: :class:`EnvironBuilder`'s arguments by name: ``method``, ``query_string``, ``data``,
                ``json``, ``headers``, ``content_type``, ``environ_base``, ``environ_overrides``,
                ``errors_stream``...
        """
        first = args[0] if args else None
        request: WerkzeugRequest
        if isinstance(first, werkzeug.test.EnvironBuilder):
            builder = copy.copy(first)
            builder.environ_base = self._copy_environ(builder.environ_base or {})
            request = builder.get_request()
        elif isinstance(first, dict):
            request = EnvironBuilder.from_environ(
                first, app=self.application, environ_base=self._copy_environ({})
            ).get_request()
        elif isinstance(first, WerkzeugRequest):
            request = copy.copy(first)
            request.environ = self._copy_environ(request.environ)
        else:
            request = self._request_from_builder_args(args, kwargs)
        # A context kept by an earlier request of a ``with client:`` block ends when the next request starts.
        self._pop_preserved()
        response = cast(TestResponse, super().open(request, buffered=buffered, follow_redirects=follow_redirects))
        response.json_module = self.application.json
        # The request body (a temporary file for a large upload) is closed with the response's body: at once
        # when it was read, else when the test has read it or lets go of it; inside ``with client:`` when the
        # kept context ends (``request.form`` may still be read from it).
        stream = request.environ["wsgi.input"]
        if self.preserve_context:
            self._kept_streams.append(stream)
        elif isinstance(response.response, _ClosingBody):
            response.response.add_close(stream.close)
        else:
            stream.close()
        return response

    def run_wsgi_app(
        self, environ: dict[str, Any], buffered: bool = False
    ) -> tuple[Iterable[bytes], str, WerkzeugHeaders]:
        """Run one request through the app's WSGI callable (or its ASGI one) with the client's cookies."""
        self._add_cookies_to_wsgi(environ)
        # A copy: what the app changes (middleware, the kept context) must not reach a followed redirect.
        environ = dict(environ)
        if self.preserve_context:
            environ["ampulla.preserve_context"] = True
        try:
            if self.protocol == "asgi":
                status, header_list, data = run_asgi_request(self.application, environ)
                body: Iterable[bytes] = [data]
                headers = WerkzeugHeaders(header_list)
            else:
                body, status, headers = _run_wsgi(self.application, environ, buffered)
        except BaseException:
            if self.preserve_context:
                # The exception propagated out of the request: its kept context is still active here (WSGI);
                # leaving the ``with client:`` block pops it.
                ctx = current_context()
                if isinstance(ctx, RequestContext) and ctx.preserved and ctx not in self._context_stack:
                    self._context_stack.append(ctx)
            raise
        kept = environ.get("ampulla._preserved_context")
        if kept is not None:
            if current_context() is not kept:
                kept.push()  # the ASGI cycle ran in a task of its own: make the context current here
            self._context_stack.append(kept)
        url = urlsplit(get_current_url(environ))
        self._update_cookies_from_response(url.hostname or "localhost", url.path, headers.getlist("Set-Cookie"))
        return body, status, headers

    def _update_cookies_from_response(self, server_name: str, path: str, headers: list[str]) -> None:
        """Store the cookies of ``Set-Cookie`` headers; a ``Domain`` is read without its leading dot.

        As browsers do (RFC 6265 §5.2.3): ``Domain=.example.com`` is sent to ``www.example.com`` too.
        """
        if self._cookies is None:
            return
        for header in headers:
            cookie = werkzeug.test.Cookie._from_response_header(server_name, path, header)
            if cookie.domain.startswith("."):
                cookie = dataclasses.replace(cookie, domain=cookie.domain.lstrip("."))
            if cookie._should_delete:
                self._cookies.pop(cookie._storage_key, None)
            else:
                self._cookies[cookie._storage_key] = cookie

    def _pop_preserved(self) -> None:
        while self._context_stack:
            ctx = self._context_stack.pop()
            ctx.preserved = False
            ctx.pop()
        while self._kept_streams:
            self._kept_streams.pop().close()

    @contextlib.contextmanager
    def session_transaction(self, *args: Any, **kwargs: Any) -> Iterator[SessionMixin]:
        """Open the client's session to read or change it between requests.

        Example::

            with client.session_transaction() as session:
                session["user_id"] = 1
            client.get("/profile")   # the view sees session["user_id"] == 1

        Arguments are those of :class:`EnvironBuilder` after ``app`` (a path for a path-scoped cookie...).

        Raises:
            TypeError: Cookies are disabled.
            RuntimeError: The session cannot be opened (no ``SECRET_KEY``).
        """
        if self._cookies is None:
            raise TypeError(
                "Cookies are disabled. Create a client with 'use_cookies=True' to use session_transaction()."
            )
        app = self.application
        builder = EnvironBuilder(app, *args, **kwargs)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        self._add_cookies_to_wsgi(environ)
        request = app.request_class.from_environ(environ, app)
        interface = app.session_interface
        # The contexts are pushed around opening and saving only: a request context active around the
        # ``with`` block (a test's own) stays the current one inside it.
        with app.request_context(request):
            session = interface.open_session(app, request)
        if session is None:
            raise RuntimeError(
                "Session backend did not open a session: set app.config['SECRET_KEY'] so sessions can be signed."
            )
        yield session
        if interface.is_null_session(session):
            return
        response = app.response_class()
        with app.request_context(request):
            interface.save_session(app, session, response)
        self._update_cookies_from_response(
            request.host.partition(":")[0], request.path, response.headers.getlist("Set-Cookie")
        )

    def websocket(
        self, path: str = "/", *, subprotocols: list[str] | None = None, headers: Any = None, **kwargs: Any
    ) -> WebSocketTestSession:
        """Open a WebSocket to ``path`` through the app's ASGI callable (use as a context manager).

        Example::

            with client.websocket("/ws/lobby") as ws:
                ws.send("hi")
                assert ws.receive() == "lobby:hi"
        """
        builder = EnvironBuilder(self.application, path, headers=headers, **kwargs)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        self._add_cookies_to_wsgi(environ)
        scope = scope_from_environ(environ, "websocket")
        scope["subprotocols"] = list(subprotocols or [])
        return WebSocketTestSession(self.application, scope)

    def __enter__(self) -> AmpullaClient:
        if self.preserve_context:
            raise RuntimeError("Cannot nest client invocations")
        self.preserve_context = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.preserve_context = False
        self._pop_preserved()


class WebSocketRejected(Exception):
    """The application closed the WebSocket before accepting it (a server answers HTTP 403)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"WebSocket rejected with close code {code}")
        self.code = code


class _LoopThread:
    """One event loop in a daemon thread, shared by every WebSocket test session of the process.

    Sessions need the app to run while the test thread sends and receives; sharing one long-lived loop (instead
    of a loop per session) keeps loop-bound resources such as async database pools valid between sessions.
    """

    _instance: _LoopThread | None = None
    _lock: Any = None

    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="ampulla-websocket-test-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> _LoopThread:
        import threading

        if cls._lock is None:
            cls._lock = threading.Lock()
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


class WebSocketTestSession:
    """A WebSocket connection to the app, driven from a test (see ``AmpullaClient.websocket``).

    The app runs on a shared background event loop; ``send``/``receive`` exchange messages with it. Closing
    waits a moment for the view to finish, then cancels it, so no view outlives its test.
    """

    __test__ = False
    #: Seconds ``close()`` waits for the view to end by itself before cancelling it.
    close_timeout = 2.0

    def __init__(self, app: Ampulla, scope: dict[str, Any]) -> None:
        import queue

        self.app = app
        self.scope = scope
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.accept_headers: list[tuple[str, str]] = []
        self._outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._runner = _LoopThread.get()
        self._loop: Any = self._runner.loop
        self._inbox: Any = None
        self._future: Any = None
        self._error: BaseException | None = None

    async def _main(self) -> None:
        import asyncio

        self._inbox = asyncio.Queue()

        async def receive() -> dict[str, Any]:
            message: dict[str, Any] = await self._inbox.get()
            return message

        async def send(message: dict[str, Any]) -> None:
            self._outbox.put(dict(message))

        try:
            await self.app(self.scope, receive, send)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._error = e
        finally:
            self._outbox.put({"type": "ampulla.done"})

    def _put(self, message: dict[str, Any]) -> None:
        def put() -> None:
            if self._inbox is not None:
                self._inbox.put_nowait(message)
            else:  # the task has not started yet
                self._loop.call_soon(put)

        self._loop.call_soon_threadsafe(put)

    def _get(self, timeout: float) -> dict[str, Any]:
        import queue

        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the WebSocket view sent nothing within {timeout} s") from None

    def __enter__(self) -> WebSocketTestSession:
        import asyncio

        self._future = asyncio.run_coroutine_threadsafe(self._main(), self._loop)
        self._put({"type": "websocket.connect"})
        message = self._get(5)
        if message["type"] == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            self.accept_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
            return self
        self._wait(5)
        if self._error is not None:
            raise self._error
        raise WebSocketRejected(int(message.get("code", 1000)))

    def _wait(self, timeout: float) -> bool:
        """Wait for the view to end; cancel it after ``timeout``. True when it ended by itself."""
        import concurrent.futures

        if self._future is None:
            return True
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            self._future.cancel()
            try:
                self._future.result(timeout)
            except BaseException:
                pass
            return False
        except BaseException:
            pass
        return True

    def send(self, data: str | bytes) -> None:
        """Send a text or binary message to the app."""
        if isinstance(data, str):
            self._put({"type": "websocket.receive", "text": data})
        else:
            self._put({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any) -> None:
        """Send ``data`` as JSON text."""
        self.send(_json.dumps(data))

    def receive(self, timeout: float = 5.0) -> str | bytes:
        """The next message from the app.

        Raises:
            WebSocketClosed: The app closed the connection (``close_code`` is set).
        """
        message = self._get(timeout)
        if message["type"] == "websocket.send":
            text: str | None = message.get("text")
            data: bytes = message.get("bytes") or b""
            return text if text is not None else data
        self.close_code = int(message.get("code", 1000)) if message["type"] == "websocket.close" else 1006
        if self._error is not None:
            raise self._error
        raise WebSocketClosed(self.close_code)

    def receive_json(self, timeout: float = 5.0) -> Any:
        """The next message parsed as JSON."""
        return _json.loads(self.receive(timeout))

    def close(self, code: int = 1000) -> bool:
        """Close from the client side; a view still running after ``close_timeout`` seconds is cancelled.

        Returns:
            Whether the view ended by itself (False when it had to be cancelled).
        """
        if self._future is not None and not self._future.done():
            self._put({"type": "websocket.disconnect", "code": code})
        return self._wait(self.close_timeout)

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
        if self._error is not None and exc_info[0] is None:
            raise self._error


class WebSocketClosed(Exception):
    """The application closed the WebSocket (``code`` is its close code)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"WebSocket closed with code {code}")
        self.code = code


class AmpullaCliRunner:
    """Invokes the app's CLI commands in tests (``app.test_cli_runner().invoke(args=["hello"])``).

    Args:
        app: The application.
        **kwargs: Passed to ``click.testing.CliRunner``.
    """

    __test__ = False

    def __init__(self, app: Ampulla, **kwargs: Any) -> None:
        from click.testing import CliRunner

        self.app = app
        self._runner = CliRunner(**kwargs)

    def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:
        """Run a command (default: the app's ``cli`` group) with the app available to it."""
        from .cli import ScriptInfo

        kwargs.setdefault("obj", ScriptInfo(create_app=lambda: self.app))
        return self._runner.invoke(cli or self.app.cli, args, **kwargs)
