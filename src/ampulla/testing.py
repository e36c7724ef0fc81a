"""The in-process test client and the request builder behind ``test_request_context``.

``app.test_client()`` sends requests through the app's WSGI callable (or its ASGI callable with
``protocol="asgi"``) without a server, keeps cookies between calls and returns :class:`TestResponse` objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json as _json
import os
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

from werkzeug.datastructures import HeaderSet
from werkzeug.http import parse_set_header

from .concurrency import run_coroutine_sync
from .ctx import RequestContext, current_context
from .datastructures import FileStorage, Headers
from .wrappers import STATUS_LINES, Request, Response

if TYPE_CHECKING:
    from .app import Ampulla
    from .sessions import SessionMixin


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
        "raw_path": (root + path).encode("utf-8"),
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
    return STATUS_LINES.get(status, f"{status} UNKNOWN"), headers, body


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
                data = data.encode("utf-8")
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            out.write(
                f'Content-Disposition: form-data; name="{name}"; filename="{quoted}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n".encode()
            )
            out.write(data)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(value if isinstance(value, bytes) else str(value).encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _pairs(data: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    items = data.items() if isinstance(data, Mapping) else data
    pairs: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, list):
            pairs.extend((key, v) for v in value)
        else:
            pairs.append((key, value))
    return pairs


class EnvironBuilder:
    """Builds a WSGI environ the way the test client describes requests.

    Args:
        app: The application (for ``SERVER_NAME`` and ``APPLICATION_ROOT``).
        path: The path, may include ``?query``.
        base_url: ``scheme://host/root`` to use.
        query_string: A string or a mapping (lists give repeated keys).
        method: The method.
        headers: Request headers.
        data: A body: bytes/str, or a mapping of form fields (files make it multipart).
        json: A JSON body (sets the content type).
        content_type: The Content-Type.
        environ_base: Extra environ keys.
        environ_overrides: Environ keys set last.
        subdomain: Build the host from this subdomain and ``SERVER_NAME``.
        url_scheme: ``http`` or ``https``.
        input_stream: The body as a stream.
        errors_stream: ``wsgi.errors``, where the app's log goes during the request (default stderr).
        mimetype: The Content-Type when ``content_type`` is not given.
    """

    def __init__(
        self,
        app: Ampulla | None = None,
        path: str = "/",
        base_url: str | None = None,
        query_string: str | Mapping[str, Any] | None = None,
        method: str = "GET",
        headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | Headers | None = None,
        data: Any = None,
        json: Any = None,
        content_type: str | None = None,
        environ_base: Mapping[str, Any] | None = None,
        environ_overrides: Mapping[str, Any] | None = None,
        subdomain: str | None = None,
        url_scheme: str | None = None,
        input_stream: IO[bytes] | None = None,
        errors_stream: IO[str] | None = None,
        mimetype: str | None = None,
    ) -> None:
        if json is not None and data is not None:
            raise TypeError("pass either 'data' or 'json', not both")
        split = urlsplit(path)
        if base_url is None:
            server_name = (app.config.get("SERVER_NAME") if app is not None else None) or "localhost"
            if subdomain:
                server_name = f"{subdomain}.{server_name}"
            root = (app.config.get("APPLICATION_ROOT") if app is not None else None) or "/"
            scheme = url_scheme or split.scheme or (
                app.config.get("PREFERRED_URL_SCHEME", "http") if app is not None else "http"
            )
            base_url = f"{scheme}://{split.netloc or server_name}/{root.lstrip('/')}"
        base = urlsplit(base_url)
        self.scheme = base.scheme or "http"
        self.host = base.netloc or "localhost"
        self.script_root = base.path.rstrip("/")
        self.path = split.path or "/"
        self.method = method.upper()
        if query_string is None:
            self.query_string = split.query
        elif isinstance(query_string, str):
            self.query_string = query_string
        else:
            self.query_string = urlencode([(k, v) for k, v in _pairs(query_string) if v is not None])
        self.headers = Headers(headers) if headers is not None else Headers()
        self.content_type = content_type or mimetype or self.headers.get("Content-Type")
        self.errors_stream = errors_stream
        self.body: bytes = b""
        self.app = app
        self._input_stream = input_stream
        if json is not None:
            self.body = self.json_dumps(json).encode("utf-8")
            self.content_type = self.content_type or "application/json"
        elif isinstance(data, str):
            self.body = data.encode("utf-8")
        elif isinstance(data, bytes | bytearray):
            self.body = bytes(data)
        elif hasattr(data, "read"):
            self._input_stream = data
        elif data is not None:
            pairs = _pairs(data)
            if any(_is_file(v) for _, v in pairs) or (
                self.content_type or ""
            ).startswith("multipart/form-data"):
                self.body, self.content_type = encode_multipart(pairs)
            else:
                self.body = urlencode(
                    [(k, v if isinstance(v, str | bytes) else str(v)) for k, v in pairs]
                ).encode("ascii")
                self.content_type = self.content_type or "application/x-www-form-urlencoded"
        self.environ_base = dict(environ_base or {})
        self.environ_overrides = dict(environ_overrides or {})

    def json_dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise a ``json=`` body: with the app's JSON provider (``app.json``) when there is an app."""
        if self.app is not None:
            return str(self.app.json.dumps(obj, **kwargs))
        return _json.dumps(obj, **kwargs)

    @property
    def input_stream(self) -> IO[bytes]:
        """The body as a stream: the one given, else a fresh stream over the encoded body."""
        if self._input_stream is not None:
            return self._input_stream
        return io.BytesIO(self.body)

    @input_stream.setter
    def input_stream(self, value: IO[bytes] | None) -> None:
        self._input_stream = value

    @property
    def url_scheme(self) -> str:
        """The URL scheme, ``http`` or ``https``."""
        return self.scheme

    @url_scheme.setter
    def url_scheme(self, value: str) -> None:
        self.scheme = value

    @property
    def base_url(self) -> str:
        """``scheme://host/script-root/``."""
        return f"{self.scheme}://{self.host}{self.script_root}/"

    def close(self) -> None:
        """Close the body stream and any file given in ``data``."""
        if self._input_stream is not None:
            self._input_stream.close()

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ."""
        host = self.host
        server_name, _, port = host.partition(":")
        if not port:
            port = "443" if self.scheme == "https" else "80"
        # A server percent-decodes the path; PATH_INFO carries the bytes as latin-1 text (PEP 3333).
        path = unquote_to_bytes(self.path).decode("latin-1")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": self.script_root.encode("utf-8").decode("latin-1"),
            "PATH_INFO": path,
            "QUERY_STRING": self.query_string,
            "SERVER_NAME": server_name,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": host,
            "RAW_URI": self.path + (f"?{self.query_string}" if self.query_string else ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self.scheme,
            "wsgi.input": self._input_stream if self._input_stream is not None else io.BytesIO(self.body),
            "wsgi.errors": self.errors_stream if self.errors_stream is not None else sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        environ.update(self.environ_base)
        if self._input_stream is None or self.body:
            environ["CONTENT_LENGTH"] = str(len(self.body))
        elif "Content-Length" not in self.headers:
            environ["wsgi.input_terminated"] = True
        if self.content_type:
            environ["CONTENT_TYPE"] = self.content_type
        from_headers: set[str] = set()
        for name, value in self.headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
                continue
            key = "HTTP_" + key
            if key in from_headers and key != "HTTP_HOST":
                environ[key] = f"{environ[key]}, {value}"  # repeated header: one comma-joined value
            else:
                environ[key] = value  # an explicit header replaces the client's default
            from_headers.add(key)
        environ.update(self.environ_overrides)
        return environ


class TestResponse(Response):
    """A response returned by the test client (``status_code``, ``headers``, ``data``, ``text``, ``json``).

    Attributes:
        request: The WSGI environ / request description that produced it.
        history: The responses of followed redirects, oldest first.
    """

    __slots__ = ("environ", "history", "request")

    __test__ = False
    default_mimetype = None
    environ: dict[str, Any]
    request: dict[str, Any]
    history: list[TestResponse]

    @property
    def status_code(self) -> int:
        return self._status_code

    @status_code.setter
    def status_code(self, code: int) -> None:
        Response.status_code.fset(self, code)  # type: ignore[attr-defined]

    @property
    def allow(self) -> HeaderSet:
        """The methods of the ``Allow`` header, as a case-insensitive set."""
        return parse_set_header(self.headers.get("Allow"))

    @property
    def vary(self) -> HeaderSet:
        """The names of the ``Vary`` header, as a case-insensitive set."""
        return parse_set_header(self.headers.get("Vary"))


class _Cookie:
    __slots__ = ("domain", "expires", "path", "value")

    def __init__(self, value: str, path: str, domain: str | None, expires: float | None) -> None:
        self.value = value
        self.path = path
        self.domain = domain
        self.expires = expires


class AmpullaClient:
    """In-process HTTP client for tests: ``client.get("/")``, ``client.post("/", data={...})``.

    Args:
        app: The application.
        use_cookies: Store cookies from responses and send them back.
        protocol: ``"wsgi"`` (default) or ``"asgi"``: which of the app's callables handles the requests.
    """

    __test__ = False

    def __init__(self, app: Ampulla, use_cookies: bool = True, protocol: str = "wsgi") -> None:
        if protocol not in ("wsgi", "asgi"):
            raise ValueError("protocol must be 'wsgi' or 'asgi'")
        self.application = app
        self.use_cookies = use_cookies
        self.protocol = protocol
        self._cookies: dict[tuple[str, str], _Cookie] = {}
        self.preserve_context = False
        self._context_stack: list[RequestContext] = []
        self.environ_base: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "Ampulla-test-client"}

    # ------------------------------------------------------------------------------------------ cookies
    def set_cookie(self, key: str, value: str = "", *, path: str = "/", domain: str = "localhost") -> None:
        """Store a cookie to send with following requests."""
        self._cookies[(key, path)] = _Cookie(value, path, domain, None)

    def delete_cookie(self, key: str, *, path: str = "/") -> None:
        """Forget a cookie."""
        self._cookies.pop((key, path), None)

    def get_cookie(self, key: str, path: str = "/") -> _Cookie | None:
        """The stored cookie ``key`` (its ``value`` attribute), or ``None``."""
        return self._cookies.get((key, path))

    def _cookie_header(self, path: str) -> str | None:
        now = datetime.now(UTC).timestamp()
        parts = []
        for (name, cpath), cookie in list(self._cookies.items()):
            if cookie.expires is not None and cookie.expires <= now:
                del self._cookies[(name, cpath)]
                continue
            if path == cpath or path.startswith(cpath.rstrip("/") + "/") or cpath == "/":
                parts.append(f"{name}={cookie.value}")
        return "; ".join(parts) if parts else None

    def _store_cookies(self, headers: Headers) -> None:
        from .http import parse_date

        for header in headers.getlist("Set-Cookie"):
            first, *attrs = header.split(";")
            name, _, value = first.strip().partition("=")
            path = "/"
            domain = None
            expires: float | None = None
            for attr in attrs:
                key, _, val = attr.strip().partition("=")
                key = key.lower()
                if key == "path" and val:
                    path = val
                elif key == "domain":
                    domain = val
                elif key == "max-age":
                    try:
                        expires = datetime.now(UTC).timestamp() + int(val)
                    except ValueError:
                        pass
                elif key == "expires" and expires is None:
                    date = parse_date(val)
                    if date is not None:
                        expires = date.timestamp()
            if expires is not None and expires <= datetime.now(UTC).timestamp():
                self._cookies.pop((name, path), None)
            else:
                self._cookies[(name, path)] = _Cookie(value, path, domain, expires)

    def _add_cookies_to_wsgi(self, environ: dict[str, Any]) -> None:
        """Put the stored cookies for ``environ``'s path in its ``Cookie`` header (Werkzeug's client method).

        Extensions that build a WSGI environ themselves (Flask-SocketIO's test client) call it to send the
        client's cookies, the session's among them.
        """
        cookie = self._cookie_header(environ.get("PATH_INFO") or "/") if self.use_cookies else None
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        else:
            environ.pop("HTTP_COOKIE", None)

    def _request_from_builder_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        """The request :meth:`open` would send for ``args`` and ``kwargs``, without sending it (Flask's method).

        The request's ``environ`` carries the client's ``environ_base`` but not its cookies (see
        :meth:`_add_cookies_to_wsgi`).
        """
        kwargs = dict(kwargs)
        kwargs["environ_base"] = {**self.environ_base, **(kwargs.get("environ_base") or {})}
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            return self.application.request_class.from_environ(builder.get_environ(), self.application)
        finally:
            builder.close()

    # ------------------------------------------------------------------------------------------ requests
    def open(
        self,
        *args: Any,
        follow_redirects: bool = False,
        buffered: bool = True,
        **kwargs: Any,
    ) -> TestResponse:
        """Send a request and return the response.

        Args:
            *args: The path (may include a query string), then optionally ``base_url``, ``query_string`` and
                ``method``, in :class:`EnvironBuilder`'s order (``client.get("/", "https://example.com/")``).
            follow_redirects: Follow 3xx responses (``response.history`` keeps them).
            buffered: Read the whole body (always true; kept for compatibility).
            **kwargs: As for :class:`EnvironBuilder`: ``method``, ``query_string``, ``data``, ``json``,
                ``headers``, ``content_type``, ``base_url``, ``environ_base``, ``environ_overrides``,
                ``errors_stream``.
        """
        if args and isinstance(args[0], EnvironBuilder | dict):
            return self._open_prepared(args[0], follow_redirects)
        if len(args) > 4:
            raise TypeError("open() takes at most 4 positional arguments: path, base_url, query_string, method")
        for name, value in zip(("path", "base_url", "query_string", "method"), args, strict=False):
            if name in kwargs:
                raise TypeError(f"open() got multiple values for argument {name!r}")
            kwargs[name] = value
        path: str = kwargs.pop("path", "/")
        method: str = kwargs.pop("method", "GET")
        self._pop_preserved()
        environ_base = {**self.environ_base, **(kwargs.pop("environ_base", None) or {})}
        builder = EnvironBuilder(self.application, path, method=method, environ_base=environ_base, **kwargs)
        response = self._run(builder)
        history: list[TestResponse] = []
        redirects = 0
        while follow_redirects and response.status_code in (301, 302, 303, 307, 308):
            redirects += 1
            if redirects > 20:
                raise RuntimeError("more than 20 redirects; is there a redirect loop?")
            history.append(response)
            location = response.headers.get("Location", "/")
            target = urlsplit(location)
            new_method = builder.method
            new_kwargs: dict[str, Any] = {"headers": kwargs.get("headers")}
            if response.status_code in (307, 308):
                new_kwargs["data"] = builder.body
                new_kwargs["content_type"] = builder.content_type
            elif builder.method != "HEAD":
                new_method = "GET"
            new_path = target.path or "/"
            if builder.script_root and new_path.startswith(builder.script_root):
                new_path = new_path[len(builder.script_root) :] or "/"
            self._pop_preserved()
            builder = EnvironBuilder(
                self.application,
                new_path,
                base_url=f"{builder.scheme}://{target.netloc or builder.host}{builder.script_root}",
                query_string=target.query,
                method=new_method,
                environ_base=environ_base,
                **new_kwargs,
            )
            response = self._run(builder)
        response.history = history
        return response

    def _open_prepared(self, target: EnvironBuilder | dict[str, Any], follow_redirects: bool) -> TestResponse:
        """``open(builder)`` or ``open(environ)``: the request they describe, with the client's ``environ_base``."""
        if isinstance(target, EnvironBuilder):
            builder = copy.copy(target)
            builder.environ_base = {**self.environ_base, **target.environ_base}
            environ = builder.get_environ()
        else:
            environ = {**target, **self.environ_base}
            builder = EnvironBuilder(
                self.application,
                environ.get("PATH_INFO") or "/",
                base_url=f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}"
                f"{environ.get('SCRIPT_NAME', '')}",
                method=environ.get("REQUEST_METHOD", "GET"),
            )
        self._pop_preserved()
        response = self._run(builder, environ)
        if follow_redirects and response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("Location", "/")
            redirected = self.open(location, method="GET" if response.status_code in (301, 302, 303) else
                                   builder.method, follow_redirects=True)
            redirected.history = [response, *redirected.history]
            return redirected
        return response

    def _run(self, builder: EnvironBuilder, environ: dict[str, Any] | None = None) -> TestResponse:
        if environ is None:
            environ = builder.get_environ()
        if self.use_cookies:
            cookie = self._cookie_header(builder.path)
            if cookie and "HTTP_COOKIE" not in environ:
                environ["HTTP_COOKIE"] = cookie
        if self.preserve_context:
            environ["ampulla.preserve_context"] = True
        try:
            if self.protocol == "asgi":
                status, headers, body = run_asgi_request(self.application, environ)
            else:
                status, headers, body = _run_wsgi(self.application, environ)
        except BaseException:
            if self.preserve_context:
                # The exception propagated out of the request: its kept context is still active here (WSGI);
                # leaving the ``with client:`` block pops it.
                ctx = current_context()
                if isinstance(ctx, RequestContext) and ctx.preserved and ctx not in self._context_stack:
                    self._context_stack.append(ctx)
            raise
        response = TestResponse(body, status, headers, content_type=dict(headers).get("Content-Type"))
        response.environ = environ
        response.request = environ
        response.history = []
        ctx = environ.get("ampulla._preserved_context")
        if ctx is not None:
            if current_context() is not ctx:
                ctx.push()  # the ASGI cycle ran in a task of its own: make the context current here
            self._context_stack.append(ctx)
        if self.use_cookies:
            self._store_cookies(response.headers)
        return response

    def _pop_preserved(self) -> None:
        while self._context_stack:
            ctx = self._context_stack.pop()
            ctx.preserved = False
            ctx.pop()

    def get(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A GET request."""
        kwargs["method"] = "GET"
        return self.open(*args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A POST request."""
        kwargs["method"] = "POST"
        return self.open(*args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A PUT request."""
        kwargs["method"] = "PUT"
        return self.open(*args, **kwargs)

    def patch(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A PATCH request."""
        kwargs["method"] = "PATCH"
        return self.open(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A DELETE request."""
        kwargs["method"] = "DELETE"
        return self.open(*args, **kwargs)

    def head(self, *args: Any, **kwargs: Any) -> TestResponse:
        """A HEAD request."""
        kwargs["method"] = "HEAD"
        return self.open(*args, **kwargs)

    def options(self, *args: Any, **kwargs: Any) -> TestResponse:
        """An OPTIONS request."""
        kwargs["method"] = "OPTIONS"
        return self.open(*args, **kwargs)

    @contextlib.contextmanager
    def session_transaction(self, *args: Any, **kwargs: Any) -> Iterator[SessionMixin]:
        """Open the client's session to read or change it between requests.

        Example::

            with client.session_transaction() as session:
                session["user_id"] = 1
            client.get("/profile")   # the view sees session["user_id"] == 1

        Arguments are those of ``app.test_request_context`` (e.g. a path for a path-scoped cookie).

        Raises:
            TypeError: Cookies are disabled.
            RuntimeError: The session cannot be opened (no ``SECRET_KEY``).
        """
        if not self.use_cookies:
            raise TypeError(
                "Cookies are disabled. Create a client with 'use_cookies=True' to use session_transaction()."
            )
        app = self.application
        builder = EnvironBuilder(app, *args, **kwargs)
        environ = builder.get_environ()
        cookie = self._cookie_header(builder.path)
        if cookie:
            environ["HTTP_COOKIE"] = cookie
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
        self._store_cookies(response.headers)

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
        environ = builder.get_environ()
        if self.use_cookies:
            cookie = self._cookie_header(builder.path)
            if cookie:
                environ["HTTP_COOKIE"] = cookie
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


def _run_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and captured:
            raise exc_info[1].with_traceback(exc_info[2])
        captured[:] = [status, list(headers)]
        return lambda data: None

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return captured[0], captured[1], body
