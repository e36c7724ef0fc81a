"""Request and Response objects.

The core works on these objects only; ``wsgi.py`` and ``asgi.py`` build a :class:`Request` from their protocol
and write a :class:`Response` back. Everything is parsed lazily and cached: a view that never touches
``request.form`` never reads the body.

:class:`Response` and its helpers live in :mod:`ampulla.response`; they are re-exported here.
"""

from __future__ import annotations

import io
import json as _json
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import quote

from werkzeug.datastructures import (
    Accept,
    Authorization,
    CharsetAccept,
    ETags,
    HeaderSet,
    IfRange,
    LanguageAccept,
    MIMEAccept,
    Range,
    RequestCacheControl,
)
from werkzeug.http import (
    parse_accept_header,
    parse_cache_control_header,
    parse_etags,
    parse_options_header,
    parse_range_header,
    parse_set_header,
)
from werkzeug.sansio.http import parse_cookie
from werkzeug.user_agent import UserAgent
from werkzeug.utils import cached_property, header_property

from .datastructures import (
    ASGIHeaders,
    CombinedMultiDict,
    EnvironHeaders,
    FileStorage,
    Headers,
    ImmutableMultiDict,
)
from .exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestURITooLarge, UnsupportedMediaType
from .exceptions import ClientDisconnected as _WerkzeugClientDisconnected
from .formparser import SPOOL_THRESHOLD, _parse_pairs, parse_form_data, parse_urlencoded_body
from .http import parse_date, parse_if_range_header
from .json import nesting_exceeds
from .proxy_fix import _VALID_HOSTS, is_valid_host
from .response import STATUS_LINES as STATUS_LINES
from .response import Response as Response
from .response import _is_text as _is_text
from .response import _new_object
from .response import _status_line as _status_line
from .scaffold import blueprint_chain

if TYPE_CHECKING:
    from .app import Ampulla
    from .routing import Rule

_EMPTY_DICT: ImmutableMultiDict[str, Any] = ImmutableMultiDict()
#: (scheme, port) pairs whose port a host leaves out.
#: Marks a cached value not computed yet (``None`` is a value).
_UNSET: Any = object()
#: Methods that need no ``str.upper()``.
_UPPER_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"))
_DEFAULT_PORTS = frozenset((("http", "80"), ("https", "443"), ("ws", "80"), ("wss", "443")))


class ClientDisconnected(_WerkzeugClientDisconnected):
    """The client sent less body than its ``Content-Length`` announced, or its connection failed mid-body.

    Werkzeug's ``ClientDisconnected`` (a ``BadRequest``), with a description that says what happened.
    """

    description = "The client disconnected before sending the whole request body."


class MalformedBody(BadRequest):
    """The server could not decode the request body's framing (a bad chunk size, a missing chunk terminator)."""

    description = (
        "The request body is malformed: its chunked transfer encoding (or other framing) could not be decoded."
    )


_body_log = logging.getLogger("ampulla.request")

#: Names of exception base classes that servers raise from ``wsgi.input`` for a malformed body. Matched by name
#: so that the server need not be importable: gunicorn's ``gunicorn.http.errors.ParseException`` (the base of
#: ``InvalidChunkSize``, ``ChunkMissingTerminator``, ``InvalidChunkExtension``, ``InvalidHeader`` in trailers...).
_MALFORMED_BASES = frozenset({"ParseException"})
#: Names of exception base classes that mean the client went away (werkzeug's, raised by WSGI middleware).
_DISCONNECT_BASES = frozenset({"ClientDisconnected"})


def input_error(exc: Exception) -> Exception:
    """The HTTP error to answer for an exception raised by the server's input stream (``wsgi.input``).

    The rule, applied by the body reader to every read of the raw input:

    - an :class:`~ampulla.exceptions.HTTPException` (raised by Ampulla's own limits) is kept;
    - an :class:`OSError` (``ConnectionResetError``, ``TimeoutError``, gunicorn's ``NoMoreData``, werkzeug's
      ``DechunkedInput`` errors) or a ``ClientDisconnected`` means the client vanished or cut the body short:
      :class:`ClientDisconnected` (400; nobody is usually left to read it);
    - a :class:`ValueError`, an :class:`EOFError` or a server parse error (an exception deriving from a class
      named ``ParseException``, as gunicorn's are) means the body's framing is malformed: :class:`MalformedBody`
      (400);
    - anything else (a bug, ``MemoryError``) is kept, so it stays a 500 with its traceback.

    Either 400 is logged at DEBUG level on the ``ampulla.request`` logger only: a client's bad input is not a
    server error.

    Args:
        exc: What ``wsgi.input.read`` or ``readline`` raised.

    Returns:
        The exception to raise in its place (``exc`` itself when it is not an input error).
    """
    if isinstance(exc, HTTPException):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    translated: HTTPException
    if isinstance(exc, OSError) or not names.isdisjoint(_DISCONNECT_BASES):
        translated = ClientDisconnected()
    elif isinstance(exc, ValueError | EOFError) or not names.isdisjoint(_MALFORMED_BASES):
        translated = MalformedBody()
    else:
        return exc
    _body_log.debug("reading the request body failed (%s: %s); answering 400", type(exc).__name__, exc)
    return translated


class LimitedStream(io.RawIOBase):
    """Reads at most ``length`` bytes of a WSGI input; refuses to read past ``max_length`` (413).

    Args:
        stream: The raw input (``wsgi.input``).
        length: The announced ``Content-Length``; ``None`` reads to the end (chunked input).
        max_length: ``MAX_CONTENT_LENGTH``; reading more raises :class:`RequestEntityTooLarge`.
    """

    def __init__(self, stream: IO[bytes], length: int | None, max_length: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._length = length
        self._max = max_length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _allowed(self, size: int) -> int:
        if self._length is not None:
            left = self._length - self._pos
            size = left if size < 0 else min(size, left)
        return size

    def read(self, size: int | None = -1) -> bytes:
        size = self._allowed(-1 if size is None else size)
        if size == 0:
            return b""
        if self._max is not None and size < 0:
            size = self._max + 1 - self._pos  # read one byte beyond the limit to detect the excess
        try:
            data = self._stream.read(size) if size >= 0 else self._stream.read()
        except Exception as e:
            raise input_error(e) from e
        self._pos += len(data)
        if self._max is not None and self._pos > self._max:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {self._max} bytes.")
        if self._length is not None and not data and size > 0:
            raise ClientDisconnected()
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while True:
            chunk = self.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def readline(self, size: int | None = -1) -> bytes:
        size = self._allowed(-1 if size is None else size)
        if size == 0:
            return b""
        try:
            line = self._stream.readline(size) if size > 0 else self._stream.readline()
        except Exception as e:
            raise input_error(e) from e
        self._pos += len(line)
        if self._max is not None and self._pos > self._max:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {self._max} bytes.")
        return line

    def exhausted(self) -> bool:
        """Whether all announced bytes were read."""
        return self._length is not None and self._pos >= self._length


class RequestHeaderProperties:
    """Werkzeug's typed request header properties, parsed by Werkzeug's parsers on first read.

    Mixed into :class:`Request`; it needs only a ``headers`` attribute. Each property is a class-level descriptor,
    so a request that never reads one pays nothing for it; a parsed value is cached on the request. Every property
    tolerates any header value: junk parses to an empty object or ``None``, never an exception.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def headers(self) -> Headers: ...

    #: The class :attr:`user_agent` returns; a subclass may parse the string (Werkzeug's own does no parsing).
    user_agent_class: type[UserAgent] = UserAgent

    content_encoding = header_property[str](
        "Content-Encoding", doc="The ``Content-Encoding`` header (``None`` when absent).", read_only=True
    )
    content_md5 = header_property[str]("Content-MD5", doc="The ``Content-MD5`` header.", read_only=True)
    referrer = header_property[str]("Referer", doc="The ``Referer`` header (``None`` when absent).", read_only=True)
    date = header_property[datetime | None](
        "Date",
        None,
        parse_date,
        doc="The ``Date`` header as an aware datetime (``None``: absent or invalid).",
        read_only=True,
    )
    max_forwards = header_property[int](
        "Max-Forwards",
        None,
        int,
        doc="The ``Max-Forwards`` header as an int (``None``: absent or not a number).",
        read_only=True,
    )
    origin = header_property[str](
        "Origin", doc="The ``Origin`` header of a cross-origin request (``None`` when absent).", read_only=True
    )
    access_control_request_headers = header_property[HeaderSet](
        "Access-Control-Request-Headers",
        load_func=parse_set_header,
        doc="The headers a CORS preflight request announces, as a :class:`~werkzeug.datastructures.HeaderSet`.",
        read_only=True,
    )
    access_control_request_method = header_property[str](
        "Access-Control-Request-Method", doc="The method a CORS preflight request announces.", read_only=True
    )

    @cached_property
    def pragma(self) -> HeaderSet:
        """The ``Pragma`` header's directives (``"no-cache" in request.pragma``)."""
        return parse_set_header(self.headers.get("Pragma", ""))

    @cached_property
    def accept_mimetypes(self) -> MIMEAccept:
        """The ``Accept`` header: ``request.accept_mimetypes.best_match(["application/json", "text/html"])``."""
        return parse_accept_header(self.headers.get("Accept"), MIMEAccept)

    @cached_property
    def accept_charsets(self) -> CharsetAccept:
        """The ``Accept-Charset`` header as a :class:`~werkzeug.datastructures.CharsetAccept`."""
        return parse_accept_header(self.headers.get("Accept-Charset"), CharsetAccept)

    @cached_property
    def accept_encodings(self) -> Accept:
        """The ``Accept-Encoding`` header (content codings such as ``gzip``) as an ``Accept``."""
        return parse_accept_header(self.headers.get("Accept-Encoding"))

    @cached_property
    def accept_languages(self) -> LanguageAccept:
        """The ``Accept-Language`` header: ``request.accept_languages.best_match(["en", "fr"])``."""
        return parse_accept_header(self.headers.get("Accept-Language"), LanguageAccept)

    @cached_property
    def cache_control(self) -> RequestCacheControl:
        """The ``Cache-Control`` header as a :class:`~werkzeug.datastructures.RequestCacheControl`."""
        return parse_cache_control_header(self.headers.get("Cache-Control"), None, RequestCacheControl)

    @cached_property
    def if_match(self) -> ETags:
        """The entity tags of the ``If-Match`` header (empty when absent)."""
        return parse_etags(self.headers.get("If-Match"))

    @cached_property
    def if_none_match(self) -> ETags:
        """The entity tags of the ``If-None-Match`` header (empty when absent)."""
        return parse_etags(self.headers.get("If-None-Match"))

    @cached_property
    def if_modified_since(self) -> datetime | None:
        """The ``If-Modified-Since`` header as an aware datetime (``None``: absent or invalid)."""
        return parse_date(self.headers.get("If-Modified-Since"))

    @cached_property
    def if_unmodified_since(self) -> datetime | None:
        """The ``If-Unmodified-Since`` header as an aware datetime (``None``: absent or invalid)."""
        return parse_date(self.headers.get("If-Unmodified-Since"))

    @cached_property
    def if_range(self) -> IfRange:
        """The ``If-Range`` header as an :class:`~werkzeug.datastructures.IfRange` (an etag or a date)."""
        return parse_if_range_header(self.headers.get("If-Range"))

    @cached_property
    def range(self) -> Range | None:
        """The ``Range`` header as a :class:`~werkzeug.datastructures.Range` (``None``: absent or invalid)."""
        return parse_range_header(self.headers.get("Range"))

    @cached_property
    def user_agent(self) -> UserAgent:
        """The ``User-Agent`` header as a :attr:`user_agent_class`; ``request.user_agent.string`` is the text."""
        return self.user_agent_class(self.headers.get("User-Agent", ""))

    @cached_property
    def authorization(self) -> Authorization | None:
        """The ``Authorization`` header as an :class:`~werkzeug.datastructures.Authorization`, or ``None``.

        Basic credentials are in ``.username`` and ``.password``; a token scheme (``Bearer``) in ``.token``.
        """
        return Authorization.from_header(self.headers.get("Authorization"))


#: The properties answering the form limits (a subclass overriding one sets ``_own_limits``).
_LIMIT_PROPERTIES = ("max_content_length", "max_form_memory_size", "max_form_parts")


class Request(RequestHeaderProperties):
    """The incoming request, available as ``ampulla.request`` in views.

    Attributes are computed on first use and cached. Body-related attributes (``form``, ``files``, ``json``,
    ``data``) read the body within ``MAX_CONTENT_LENGTH``; ``stream`` gives raw access.
    """

    # NOTE: "__dict__" among the slots: extensions keep their own attributes on the request.
    # PERF: what every request sets or reads is a slot; the caches and overrides below keep class-level defaults
    # until a request sets them (benchmarks/instructions.py: hello).
    __slots__ = (
        "__dict__",
        "_files",
        "_headers",
        "app",
        "endpoint",
        "environ",
        "input_stream",
        "method",
        "path",
        "query_string",
        "remote_addr",
        "root_path",
        "routing_exception",
        "scheme",
        "scope",
        "server",
        "url_rule",
        "view_args",
    )

    _args: ImmutableMultiDict[str, str] | None = None
    _form: ImmutableMultiDict[str, str] | None = None
    _cookies: ImmutableMultiDict[str, str] | None = None
    _data: bytes | None = None
    _stream: IO[bytes] | None = None
    _json: Any = _UNSET
    _access_route: list[str] | None = None
    _content_length: int | object | None = _UNSET
    #: Limits set for this request only (``request.max_content_length = ...``), else the app's.
    max_content_length_override: int | object | None = _UNSET
    max_form_memory_size_override: int | object | None = _UNSET
    max_form_parts_override: int | object | None = _UNSET
    #: One of the three above was set, or the class answers the limits itself (PERF: one test for the form fast
    #: path).
    _own_limits = False
    #: The class overrides :meth:`close` (PERF: else the WSGI adapter calls it only for a request with uploads).
    _own_close = False
    #: The host trusted through ``PROXY_FIX`` (``""`` once a host was refused).
    forwarded_host: str | None = None

    # Used when the request is not bound to an app (plain construction in tests or tools).
    default_max_content_length: int | None = 16 * 1024 * 1024
    default_max_form_memory_size: int | None = 500_000
    default_max_json_depth: int | None = 512
    default_max_form_parts: int | None = 1_000

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        query_string: bytes = b"",
        headers: Headers | None = None,
        *,
        scheme: str = "http",
        server: tuple[str, int | None] | None = None,
        root_path: str = "",
        remote_addr: str | None = None,
        input_stream: IO[bytes] | None = None,
        environ: dict[str, Any] | None = None,
        scope: dict[str, Any] | None = None,
        app: Ampulla | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self._headers = headers
        self.scheme = scheme
        self.server = server
        self.root_path = root_path
        self.remote_addr = remote_addr
        self.input_stream = input_stream
        self.environ: dict[str, Any] = environ if environ is not None else {}
        self.scope = scope
        self.app = app
        self._init_lazy()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that answers one of the form limits itself is asked for all three: the form fast path reads
        # the app's config only for classes that leave the limits properties as they are.
        if any(getattr(cls, name) is not getattr(Request, name) for name in _LIMIT_PROPERTIES):
            cls._own_limits = True
        # Teardown calls close() whatever the request holds when a subclass overrides it (as Flask always does).
        cls._own_close = cls.close is not Request.close

    def _init_lazy(self) -> None:
        self._files: ImmutableMultiDict[str, FileStorage] | None = None
        self.url_rule: Rule | None = None
        self.view_args: dict[str, Any] | None = None
        self.endpoint: str | None = None
        self.routing_exception: Exception | None = None

    @classmethod
    def from_environ(cls, environ: dict[str, Any], app: Ampulla | None = None) -> Request:
        """Build a request from a WSGI environ.

        Raises:
            BadRequest: The path or script name is not valid UTF-8.
        """
        # PERF: fill the slots directly, reading the keys PEP 3333 servers always set without method calls
        # (benchmarks/instructions.py: hello).
        self = _new_object(cls)
        self.environ = environ
        self.app = app
        self.scope = None
        try:
            method = environ["REQUEST_METHOD"]
            path = environ["PATH_INFO"] or "/"
            root = environ["SCRIPT_NAME"]
            query = environ["QUERY_STRING"]
            self.scheme = environ["wsgi.url_scheme"]
            self.input_stream = environ["wsgi.input"]
            self.remote_addr = environ["REMOTE_ADDR"]
        except KeyError:  # a hand-made environ without some of them
            method = environ.get("REQUEST_METHOD", "GET")
            path = environ.get("PATH_INFO") or "/"
            root = environ.get("SCRIPT_NAME", "")
            query = environ.get("QUERY_STRING", "")
            self.scheme = environ.get("wsgi.url_scheme", "http")
            self.input_stream = environ.get("wsgi.input")
            self.remote_addr = environ.get("REMOTE_ADDR")
        self.method = method if method in _UPPER_METHODS else method.upper()
        if not path.isascii():
            path = _wsgi_decoding(path)
        self.path = path if path[0] == "/" else "/" + path
        self.root_path = _wsgi_decoding(root) if root and not root.isascii() else root
        self.query_string = query.encode("latin-1") if query else b""
        self.server = None
        self._headers = None
        self._files = None
        self.url_rule = None
        self.view_args = None
        self.endpoint = None
        self.routing_exception = None
        return self

    @classmethod
    def from_scope(cls, scope: dict[str, Any], app: Ampulla | None = None) -> Request:
        """Build a request from an ASGI HTTP or WebSocket scope (the body is attached by the adapter)."""
        self = _new_object(cls)
        self.scope = scope
        self.environ = {}
        self.app = app
        method = scope.get("method", "GET")
        self.method = method if method in _UPPER_METHODS else method.upper()
        root = scope.get("root_path", "")
        path = scope["path"]
        if root and path.startswith(root):
            # NOTE: ASGI servers put the mount prefix in both root_path and path.
            path = path[len(root) :] or "/"
        self.path = path if path[:1] == "/" else "/" + path
        self.root_path = root
        self.query_string = scope.get("query_string", b"")
        self.scheme = scope.get("scheme", "http")
        client = scope.get("client")
        self.remote_addr = client[0] if client else None
        server = scope.get("server")
        self.server = (server[0], server[1]) if server else None
        self.input_stream = None
        self._headers = None
        self._init_lazy()
        return self

    async def stream_async(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """Iterate over the body as it arrives, without buffering it (ASGI; views marked
        ``@stream_request_body``). Over WSGI, or when the body was already read, it yields from the buffer.

        Raises:
            RequestEntityTooLarge: More than ``MAX_CONTENT_LENGTH`` bytes arrive.
            ClientDisconnected: The client went away before the end of the body.
        """
        receive = self.scope.get("ampulla.receive") if self.scope is not None else None
        if receive is None or self.input_stream is not None or self._data is not None:
            stream = self.stream
            while True:
                chunk = stream.read(chunk_size)
                if not chunk:
                    return
                yield chunk
        limit = self.max_content_length
        length = self.content_length
        if length is not None and limit is not None and length > limit:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            received += len(chunk)
            if limit is not None and received > limit:
                raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.input_stream = io.BytesIO()
                return

    # ---------------------------------------------------------------------------------------- limits
    def _limit(self, override: Any, key: str, default: int | None) -> int | None:
        # PERF: no typing.cast here, it is a call at run time (benchmarks/instructions.py: query_json, form).
        if override is not _UNSET:
            return override  # type: ignore[no-any-return]
        app = self.app
        if app is not None:
            return app.config.get(key, default)
        return default

    # PERF: the three limits read on every form request do what _limit does without calling it
    # (benchmarks/instructions.py: form, query_json).
    @property
    def max_content_length(self) -> int | None:
        """The body size limit in bytes (``MAX_CONTENT_LENGTH``); settable per request."""
        override = self.max_content_length_override
        if override is not _UNSET:
            return override  # type: ignore[return-value]
        app = self.app
        if app is not None:
            return app.config.get("MAX_CONTENT_LENGTH", self.default_max_content_length)
        return self.default_max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self.max_content_length_override = value
        self._own_limits = True

    @property
    def max_form_memory_size(self) -> int | None:
        """The limit for non-file form data held in memory (``MAX_FORM_MEMORY_SIZE``)."""
        override = self.max_form_memory_size_override
        if override is not _UNSET:
            return override  # type: ignore[return-value]
        app = self.app
        if app is not None:
            return app.config.get("MAX_FORM_MEMORY_SIZE", self.default_max_form_memory_size)
        return self.default_max_form_memory_size

    @max_form_memory_size.setter
    def max_form_memory_size(self, value: int | None) -> None:
        self.max_form_memory_size_override = value
        self._own_limits = True

    @property
    def max_form_parts(self) -> int | None:
        """The limit on the number of form fields and files (``MAX_FORM_PARTS``)."""
        override = self.max_form_parts_override
        if override is not _UNSET:
            return override  # type: ignore[return-value]
        app = self.app
        if app is not None:
            return app.config.get("MAX_FORM_PARTS", self.default_max_form_parts)
        return self.default_max_form_parts

    @max_form_parts.setter
    def max_form_parts(self, value: int | None) -> None:
        self.max_form_parts_override = value
        self._own_limits = True

    @property
    def max_json_depth(self) -> int | None:
        """The most levels of nested arrays and objects in a JSON body (``MAX_JSON_DEPTH``); ``None``: no limit."""
        return self._limit(_UNSET, "MAX_JSON_DEPTH", self.default_max_json_depth)

    # ---------------------------------------------------------------------------------------- headers
    @property
    def headers(self) -> Headers:
        """The request headers (read-only, case-insensitive)."""
        headers = self._headers
        if headers is None:
            scope = self.scope
            headers = ASGIHeaders(scope["headers"]) if scope is not None else EnvironHeaders(self.environ)
            self._headers = headers
        return headers

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header."""
        value: str | None
        if self._headers is None and self.scope is None:
            # PERF: straight from the environ, without building the headers view (benchmarks/instructions.py:
            # form); an empty value is no header, as for EnvironHeaders.
            value = self.environ.get("CONTENT_TYPE") or None
            return value
        value = self.headers.get("Content-Type")
        return value

    @property
    def mimetype(self) -> str:
        """The content type without parameters, lower-cased (``""`` when absent)."""
        return _mimetype_of(self.content_type)

    @property
    def mimetype_params(self) -> dict[str, str]:
        """The content type's parameters, e.g. ``{"charset": "utf-8"}``."""
        return parse_options_header(self.content_type)[1]

    @property
    def content_length(self) -> int | None:
        """The ``Content-Length`` as an int, or ``None`` when absent or invalid."""
        length: Any = self._content_length
        if length is _UNSET:
            if self._headers is None and self.scope is None:
                # PERF: straight from the environ (an empty value reads as absent below, as for EnvironHeaders).
                value = self.environ.get("CONTENT_LENGTH")
            else:
                value = self.headers.get("Content-Length")
            if value is None:
                length = None
            elif value.isdigit():
                # Digits only: int() would also take "+5", "1_0" (and isdigit() non-ASCII digits).
                length = _length_of(value) if value.isascii() else None
            else:
                value = value.strip()
                length = _length_of(value) if value and value.isascii() and value.isdigit() else None
            self._content_length = length
        return length  # type: ignore[no-any-return]

    @property
    def is_json(self) -> bool:
        """Whether the mimetype is ``application/json`` or ``application/*+json``."""
        content_type = self.content_type
        if content_type == "application/json":
            return True  # PERF: the usual value, without working out its mimetype (run.py --protocol asgi: json_echo)
        mt = _mimetype_of(content_type)
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    @property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        """The request cookies."""
        if self._cookies is None:
            self._cookies = cast(
                "ImmutableMultiDict[str, str]", parse_cookie(self.headers.get("Cookie"), ImmutableMultiDict)
            )
        return self._cookies

    # ---------------------------------------------------------------------------------------- URL parts
    def host_header(self) -> str | None:
        """The ``Host`` header exactly as received (repeated lines joined by commas), ``None`` when absent.

        Unlike :attr:`host` it is not validated: use it only to check or log the value.
        """
        headers = self._headers
        host: str | None
        if headers is None:
            if self.scope is None:
                # PERF: straight from the environ, without building the headers view (benchmarks/run.py: hello).
                host = self.environ.get("HTTP_HOST")
                return host
            headers = self.headers
        host = headers.get("Host")
        return host

    @property
    def host(self) -> str:
        """The host the client asked for, with port when not the default (``X-Forwarded-Host`` when trusted).

        Without a ``Host`` header (HTTP/1.0), or with an empty one, it is the server's address. A ``Host`` that
        is not a valid ``name[:port]`` (the request is answered with 400) reads as ``""``, so it never reaches a
        URL.
        """
        if self.forwarded_host is not None:
            return self.forwarded_host
        host = self.host_header()
        if host:
            # PERF: the set of hosts already validated answers nearly every request (benchmarks/run.py: hello).
            return host if host in _VALID_HOSTS or is_valid_host(host) else ""
        if self.server is not None:
            name, port = self.server
            if port is None:  # a Unix socket: its path is no host name
                return ""
        else:
            name, port = self.environ.get("SERVER_NAME", "localhost"), self.environ.get("SERVER_PORT")
        name = str(name)
        if ":" in name and name[:1] != "[":
            name = f"[{name}]"  # an IPv6 server address, bracketed as in a Host header
        if not port or (self.scheme, str(port)) in _DEFAULT_PORTS:
            return name
        return f"{name}:{port}"

    @property
    def is_secure(self) -> bool:
        """Whether the request came over HTTPS (or WSS)."""
        return self.scheme in ("https", "wss")

    @property
    def script_root(self) -> str:
        """The prefix the application is mounted under (``SCRIPT_NAME`` / ``root_path``)."""
        return self.root_path.rstrip("/")

    @property
    def full_path(self) -> str:
        """Path and query string: ``/search?q=x`` (always with ``?``, as in Flask)."""
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def host_url(self) -> str:
        """``scheme://host/``."""
        return f"{self.scheme}://{self.host}/"

    @property
    def url_root(self) -> str:
        """``scheme://host/script_root/``."""
        return f"{self.scheme}://{self.host}{quote(self.script_root)}/"

    @property
    def base_url(self) -> str:
        """The URL without the query string."""
        return f"{self.scheme}://{self.host}{quote(self.script_root + self.path, safe='/:@!$&()*+,;=~')}"

    @property
    def url(self) -> str:
        """The full URL, with the query string."""
        qs = self.query_string.decode("latin-1")
        return self.base_url + ("?" + qs if qs else "")

    @property
    def access_route(self) -> list[str]:
        """The client and the proxies it came through, client first (``X-Forwarded-For`` when trusted)."""
        if self._access_route is not None:
            return self._access_route
        return [self.remote_addr] if self.remote_addr else []

    @property
    def blueprint(self) -> str | None:
        """The name of the blueprint of the matched endpoint (dotted for nested blueprints)."""
        endpoint = self.endpoint
        if endpoint and "." in endpoint:
            return endpoint.rpartition(".")[0]
        return None

    @property
    def blueprints(self) -> list[str]:
        """The matched blueprint and its parents, innermost first."""
        return list(blueprint_chain(self.endpoint))

    # ---------------------------------------------------------------------------------------- query string
    @property
    def args(self) -> ImmutableMultiDict[str, str]:
        """The parsed query string: ``request.args.get("page", 1, type=int)``."""
        args = self._args
        if args is None:
            if not self.query_string:
                args = _EMPTY_DICT
            else:
                # PERF: parse_urlencoded and the max_form_parts property inline (benchmarks/instructions.py:
                # query_json).
                limit: Any = self.max_form_parts_override
                if limit is _UNSET:
                    app = self.app
                    limit = self.default_max_form_parts
                    if app is not None:
                        limit = app.config.get("MAX_FORM_PARTS", limit)
                args = _parse_pairs(self.query_string, "utf-8", limit, RequestURITooLarge, "query string")
            self._args = args
        return args

    # ---------------------------------------------------------------------------------------- body
    @property
    def stream(self) -> IO[bytes]:
        """The body as a file object, limited to ``Content-Length`` and ``MAX_CONTENT_LENGTH``.

        Reading it directly bypasses form parsing: use it for large uploads.

        Raises:
            RequestEntityTooLarge: The announced length is over the limit.
        """
        if self._stream is None:
            if self._data is not None:
                self._stream = io.BytesIO(self._data)
            else:
                self._stream = self._make_stream()
        return self._stream

    def _read_known_length(self) -> bytes | None:
        """The body in one read when its length is announced and within the limit (else ``None``)."""
        raw = self.input_stream
        if raw is None:
            return None
        length = self.content_length
        if length is None:
            return None
        limit = self.max_content_length
        if limit is not None and length > limit:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        # PERF: read whole instead of through a LimitedStream (benchmarks/run.py: json_echo).
        data = _read_exactly(raw, length) if length else b""
        self._stream = io.BytesIO(b"")
        return data

    def _make_stream(self) -> IO[bytes]:
        raw = self.input_stream
        if raw is None:
            if self.scope is not None and self.scope.get("ampulla.receive") is not None:
                raise RuntimeError(
                    "This view streams its request body (@stream_request_body): read it with "
                    "'async for chunk in request.stream_async()' instead of form/json/data."
                )
            return io.BytesIO()
        limit = self.max_content_length
        length = self.content_length
        if length is not None and limit is not None and length > limit:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        if length is None:
            if "Content-Length" in self.headers and self.headers.get("Content-Length", "").strip():
                raise BadRequest("The Content-Length header is not a valid number.")
            chunked = self.environ.get("wsgi.input_terminated") or (
                self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            )
            if not chunked and self.scope is None:
                return io.BytesIO()
        stream: Any = LimitedStream(raw, length, limit)  # PERF: no cast(IO[bytes], ...) call per request
        return stream  # type: ignore[no-any-return]

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        """The raw body.

        Args:
            cache: Keep the bytes for later calls (and for ``form`` parsing afterwards).
            as_text: Decode as UTF-8 (invalid bytes replaced).
            parse_form_data: Parse form data first (then form bodies give ``b""`` here, as in Flask).

        Raises:
            RequestEntityTooLarge: The body is over ``MAX_CONTENT_LENGTH``.
        """
        if parse_form_data:
            self._load_form_data()
        data = self._data
        if data is None:
            data = self._read_known_length() if self._stream is None else None
            if data is None:
                data = self.stream.read()
            if cache:
                self._data = data
        return data.decode("utf-8", "replace") if as_text else data

    @property
    def data(self) -> bytes:
        """The raw body as bytes (read within the limits and cached)."""
        return cast(bytes, self.get_data())

    def _load_form_data(self) -> None:
        if self._form is None:
            self._parse_form_body()

    def _parse_form_body(self) -> None:
        """Parse the body into ``_form`` and ``_files`` (both unset: they are always set together)."""
        length: Any = self._content_length  # PERF: set by the WSGI adapter, else the property (instructions.py: form)
        if length is _UNSET:
            length = self.content_length
        app = self.app
        if self._own_limits or app is None:
            limit, memory, parts = self.max_content_length, self.max_form_memory_size, self.max_form_parts
        else:
            # PERF: what the three properties answer without per-request limits: as the request policy read
            # them while it is current, else read at once (benchmarks/instructions.py: form).
            policy = app._policy
            config = app.config
            limits = policy.form_limits if policy.version == config.version else None
            if limits is not None:
                limit, memory, parts = limits
            else:
                limit = config.get("MAX_CONTENT_LENGTH", self.default_max_content_length)
                memory = config.get("MAX_FORM_MEMORY_SIZE", self.default_max_form_memory_size)
                parts = config.get("MAX_FORM_PARTS", self.default_max_form_parts)
        if length is not None and limit is not None and length > limit:
            raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        # PERF: the content_type property's environ case inline (benchmarks/instructions.py: form).
        content_type = (
            self.environ.get("CONTENT_TYPE") if self._headers is None and self.scope is None else self.content_type
        ) or ""
        options: dict[str, str] | None = None
        if content_type == _URLENCODED:
            mimetype = _URLENCODED
        else:
            simple = _SIMPLE_MULTIPART.fullmatch(content_type)
            if simple is not None:
                # PERF: a browser's multipart Content-Type, read without the general header parser (what it
                # gives; benchmarks/instructions.py: upload).
                mimetype = "multipart/form-data"
                options = {"boundary": simple[1]}
            else:
                mimetype = _mimetype_of(content_type)
        if mimetype == _URLENCODED and length is not None and self._data is None and self._stream is None:
            raw = self.input_stream
            if raw is not None:
                # PERF: a urlencoded body of announced length is read in one call and parsed, without a
                # LimitedStream and the chunked reader; limits and errors as in parse_form_data
                # (benchmarks/instructions.py: form).
                if memory is not None and length > memory:
                    raise RequestEntityTooLarge(f"The form data is larger than the limit of {memory} bytes.")
                body = _read_exactly(raw, length) if length else b""
                self._data = b""  # what the body reads as once parsed, as for an exhausted stream
                if ";" not in content_type:
                    # PERF: parse_urlencoded_body's own case of a UTF-8 body, without its call (run.py: form).
                    self._form = _parse_pairs(body, "utf-8", parts, RequestEntityTooLarge, "form")
                else:
                    self._form = parse_urlencoded_body(
                        body,
                        parse_options_header(content_type)[1].get("charset") if ";" in content_type else None,
                        max_pairs=parts,
                    )
                self._files = _EMPTY_DICT
                return
        if mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            if options is None:
                options = parse_options_header(content_type)[1] if ";" in content_type else {}
            stream: Any
            raw = self.input_stream
            if self._data is not None:
                stream = io.BytesIO(self._data)
            elif length is not None and length <= SPOOL_THRESHOLD and self._stream is None and raw is not None:
                # PERF: a body whose files stay in memory anyway is read in one call, without a LimitedStream
                # (benchmarks/run.py: upload).
                stream = io.BytesIO(_read_exactly(raw, length) if length else b"")
                self._data = b""  # what the body reads as once parsed, as for an exhausted stream
            else:
                stream = self.stream
            form, files = parse_form_data(
                stream,
                mimetype,
                options,
                length,
                max_form_memory_size=memory,
                max_form_parts=parts,
            )
            self._form, self._files = form, files
        else:
            self._form = self._files = _EMPTY_DICT

    @property
    def form(self) -> ImmutableMultiDict[str, str]:
        """Fields of a urlencoded or multipart body: ``request.form["name"]`` (400 when missing)."""
        form = self._form
        if form is None:
            self._parse_form_body()
            form = self._form
            assert form is not None
        return form

    @property
    def files(self) -> ImmutableMultiDict[str, FileStorage]:
        """Uploaded files of a multipart body, by field name."""
        if self._files is None:
            self._parse_form_body()
        assert self._files is not None
        return self._files

    @property
    def values(self) -> CombinedMultiDict[str, str]:
        """``args`` and ``form`` combined (only ``args`` for GET, as in Flask)."""
        if self.method == "GET":
            return CombinedMultiDict([self.args])
        return CombinedMultiDict([self.args, self.form])

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """Parse the body as JSON.

        Args:
            force: Parse even when the content type is not JSON.
            silent: Return ``None`` instead of raising on a wrong content type or invalid JSON.
            cache: Keep the result for later calls.

        Raises:
            UnsupportedMediaType: The content type is not JSON (415) and neither ``force`` nor ``silent``.
            BadRequest: The body is not valid JSON (400) and not ``silent``.
        """
        if cache and self._json is not _UNSET:
            return self._json
        if not (force or self.is_json):
            if silent:
                return None
            raise UnsupportedMediaType(
                "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
            )
        data = self.get_data(cache=cache)
        try:
            value = self.app.json.loads(data) if self.app is not None else _json.loads(data)
            # NOTE: checked on the text, after parsing: whether the recursive decoder gives up (RecursionError)
            # depends on the stack in use where it runs, so without this the same body would parse in a
            # thread-pool thread and fail in the server's thread.
            depth = self.max_json_depth
            if depth is not None and nesting_exceeds(data, depth):
                raise ValueError(f"arrays and objects nested more than {depth} levels deep")
        except (ValueError, RecursionError) as e:
            # RecursionError: deeply nested input ("[[[[..."), a client error like any other invalid JSON.
            if silent:
                value = None
                if cache:
                    self._json = value
                return value
            raise BadRequest(f"Failed to decode JSON object: {e}") from None
        if cache:
            self._json = value
        return value

    @property
    def json(self) -> Any:
        """The parsed JSON body (same as ``get_json()``): 415 for another content type, 400 when invalid."""
        return self.get_json()

    def close(self) -> None:
        """Close uploaded files and a spooled body (deleting their temporary files)."""
        files = self._files
        if files:
            for _, upload in files.items(multi=True):
                upload.close()
        stream = self.input_stream
        if stream is not None and self.scope is not None:
            stream.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.path!r}>"


_URLENCODED = "application/x-www-form-urlencoded"
#: ``multipart/form-data; boundary=...`` as browsers send it: a boundary of token characters only.
_SIMPLE_MULTIPART = re.compile(r"multipart/form-data; boundary=([0-9A-Za-z'+_\-.]{1,70})")


def _mimetype_of(ct: str | None) -> str:
    """The mimetype of a ``Content-Type`` value: without parameters, lower-cased (``""`` for ``None``)."""
    if not ct:
        return ""
    if ";" not in ct and ct.islower() and ct.isprintable() and " " not in ct:
        return ct  # PERF: the usual bare "application/json" (benchmarks/run.py --protocol asgi: json_echo)
    return ct.split(";", 1)[0].strip().lower()


#: The length given for a Content-Length of more than 19 significant digits (``int()`` refuses more than 4,300):
#: more than any limit and any body.
_TOO_LONG = 1 << 64


def _length_of(digits: str) -> int:
    """The number an ASCII Content-Length of digits alone stands for, without converting thousands of digits."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 19 else _TOO_LONG


def _read_exactly(raw: IO[bytes], length: int) -> bytes:
    """``length`` bytes of ``raw`` (a server may give fewer per read); 400 when the body ends before them.

    Raises:
        ClientDisconnected: The body ended early (400).
        HTTPException: What :func:`input_error` makes of an exception from ``raw.read``.
    """
    try:
        # NOTE: at most 1 MiB asked at once: a buffered reader allocates what is asked before it reads, and
        # without limits the announced length is the client's word.
        data = raw.read(length if length <= 1 << 20 else 1 << 20)
    except Exception as e:
        raise input_error(e) from e
    if len(data) < length:
        chunks = [data]
        received = len(data)
        while received < length:
            try:
                data = raw.read(min(length - received, 1 << 20))
            except Exception as e:
                raise input_error(e) from e
            if not data:
                raise ClientDisconnected(
                    f"The request body ended after {received} bytes, before the {length} announced by "
                    "Content-Length."
                )
            chunks.append(data)
            received += len(data)
        data = b"".join(chunks)
    return data


def _wsgi_decoding(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest("The URL is not valid UTF-8 after percent-decoding.") from None
