"""The Response object.

The core builds a :class:`Response` from a view's return value; ``wsgi.py`` and ``asgi.py`` write it back to
their protocol. :mod:`ampulla.wrappers` re-exports everything here, next to :class:`~ampulla.wrappers.Request`.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from werkzeug.datastructures import (
    CallbackDict,
    ContentRange,
    ContentSecurityPolicy,
    HeaderSet,
    ResponseCacheControl,
    WWWAuthenticate,
)
from werkzeug.http import (
    COEP,
    COOP,
    dump_age,
    dump_cookie,
    dump_header,
    dump_options_header,
    generate_etag,
    http_date,
    parse_age,
    parse_cache_control_header,
    parse_content_range_header,
    parse_csp_header,
    parse_etags,
    parse_options_header,
    parse_range_header,
    parse_set_header,
    quote_etag,
    remove_entity_headers,
    unquote_etag,
)
from werkzeug.sansio.http import is_resource_modified
from werkzeug.utils import header_property

from .ctx import _cv_ctx as _imported_cv_ctx
from .datastructures import EnvironHeaders, Headers
from .exceptions import RequestedRangeNotSatisfiable
from .http import parse_date

if TYPE_CHECKING:
    from .wrappers import Request

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} UNKNOWN"


# PERF: the status line of every registered code is computed once (benchmarks/run.py: hello).
STATUS_LINES: dict[int, str] = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
#: ``str(n)`` of small body sizes, for Content-Length.
_SIZES = [str(n) for n in range(1024)]
#: Builds an object without running its ``__init__``.
_new_object = object.__new__

#: The ``Content-Type`` of a view's text, by response class (its ``default_mimetype`` with the charset).
_TEXT_CONTENT_TYPES: dict[type[Response], str] = {}


def _text_content_type(response_class: type[Response]) -> str:
    """The ``Content-Type`` of a text body for ``response_class``, kept in :data:`_TEXT_CONTENT_TYPES`."""
    mimetype = response_class.default_mimetype or "text/html"
    content_type = Response(b"", mimetype=mimetype).content_type or mimetype
    _TEXT_CONTENT_TYPES[response_class] = content_type
    return content_type


def _enum_value(member: COOP | COEP) -> str:
    return str(member.value)


def _set_header_property(name: str, doc: str) -> Any:
    """A property for a comma-separated set header (``Vary``, ``Allow``...) read as a Werkzeug ``HeaderSet``.

    Changing the set writes the header back; assigning a string, an iterable or ``None`` replaces or removes it.
    """

    def fget(self: ResponseHeaderProperties) -> HeaderSet:
        headers = self.headers

        def on_update(header_set: HeaderSet) -> None:
            if header_set:
                headers[name] = header_set.to_header()
            elif name in headers:
                del headers[name]

        return parse_set_header(headers.get(name), on_update)

    def fset(self: ResponseHeaderProperties, value: str | Iterable[str] | None) -> None:
        if not value:
            del self.headers[name]
        elif isinstance(value, str):
            self.headers[name] = value
        else:
            self.headers[name] = dump_header(value)

    return property(fget, fset, doc=doc)


def _csp_property(name: str, doc: str) -> Any:
    """A property for a ``Content-Security-Policy`` style header read as a Werkzeug ``ContentSecurityPolicy``."""

    def fget(self: ResponseHeaderProperties) -> ContentSecurityPolicy:
        headers = self.headers

        def on_update(csp: ContentSecurityPolicy) -> None:
            if csp:
                headers[name] = csp.to_header()
            else:
                del headers[name]

        policy = parse_csp_header(headers.get(name), on_update)
        return policy if policy is not None else ContentSecurityPolicy(None, on_update=on_update)

    def fset(self: ResponseHeaderProperties, value: ContentSecurityPolicy | str | None) -> None:
        if not value:
            del self.headers[name]
        else:
            self.headers[name] = value if isinstance(value, str) else value.to_header()

    return property(fget, fset, doc=doc)


class ResponseHeaderProperties:
    """Werkzeug's typed response header properties, read and written through Werkzeug's parsers.

    Mixed into :class:`Response`; it needs only a ``headers`` attribute. Nothing is parsed until a property is
    read, and a mutable value (``cache_control``, ``vary``, ``www_authenticate``, ``content_range``...) writes
    the header back when changed.
    """

    headers: Headers

    age = header_property[timedelta | None](
        "Age",
        None,
        parse_age,
        dump_age,  # type: ignore[arg-type]
        doc="The ``Age`` header as a timedelta (set an int of seconds or one).",
    )
    content_location = header_property[str]("Content-Location", doc="The ``Content-Location`` header.")
    content_encoding = header_property[str]("Content-Encoding", doc="The ``Content-Encoding`` header.")
    content_md5 = header_property[str]("Content-MD5", doc="The ``Content-MD5`` header.")
    date = header_property[datetime | None](
        "Date", None, parse_date, http_date, doc="The ``Date`` header as an aware datetime."
    )
    expires = header_property[datetime | None](
        "Expires", None, parse_date, http_date, doc="The ``Expires`` header as an aware datetime."
    )
    last_modified = header_property[datetime | None](
        "Last-Modified", None, parse_date, http_date, doc="The ``Last-Modified`` header as an aware datetime."
    )
    accept_ranges = header_property[str](
        "Accept-Ranges", doc="The ``Accept-Ranges`` header: one token, usually ``bytes`` or ``none``."
    )
    vary = _set_header_property("Vary", "The ``Vary`` header as a :class:`~werkzeug.datastructures.HeaderSet`.")
    content_language = _set_header_property("Content-Language", "The ``Content-Language`` header as a set.")
    allow = _set_header_property("Allow", "The ``Allow`` header (the methods a resource supports) as a set.")
    content_security_policy = _csp_property(
        "Content-Security-Policy",
        "The ``Content-Security-Policy`` header as a :class:`~werkzeug.datastructures.ContentSecurityPolicy` "
        "(available, empty, when the header is not set).",
    )
    content_security_policy_report_only = _csp_property(
        "Content-Security-Policy-Report-Only", "The ``Content-Security-Policy-Report-Only`` header, as above."
    )
    access_control_allow_headers = header_property[HeaderSet](
        "Access-Control-Allow-Headers",
        load_func=parse_set_header,
        dump_func=dump_header,
        doc="The headers a cross-origin request may send.",
    )
    access_control_allow_methods = header_property[HeaderSet](
        "Access-Control-Allow-Methods",
        load_func=parse_set_header,
        dump_func=dump_header,
        doc="The methods a cross-origin request may use.",
    )
    access_control_allow_origin = header_property[str](
        "Access-Control-Allow-Origin", doc="The origin (or ``*``) allowed to read the response."
    )
    access_control_expose_headers = header_property[HeaderSet](
        "Access-Control-Expose-Headers",
        load_func=parse_set_header,
        dump_func=dump_header,
        doc="The headers the browser may show to cross-origin JavaScript.",
    )
    access_control_max_age = header_property[int](
        "Access-Control-Max-Age",
        load_func=int,
        dump_func=str,
        doc="How many seconds a browser may cache the preflight answer.",
    )
    cross_origin_opener_policy = header_property[COOP](
        "Cross-Origin-Opener-Policy",
        load_func=COOP,
        dump_func=_enum_value,
        default=COOP.UNSAFE_NONE,
        doc="The ``Cross-Origin-Opener-Policy`` header as a :class:`werkzeug.http.COOP` member.",
    )
    cross_origin_embedder_policy = header_property[COEP](
        "Cross-Origin-Embedder-Policy",
        load_func=COEP,
        dump_func=_enum_value,
        default=COEP.UNSAFE_NONE,
        doc="The ``Cross-Origin-Embedder-Policy`` header as a :class:`werkzeug.http.COEP` member.",
    )

    @property
    def access_control_allow_credentials(self) -> bool:
        """Whether cross-origin requests may carry credentials (``Access-Control-Allow-Credentials: true``)."""
        return "Access-Control-Allow-Credentials" in self.headers

    @access_control_allow_credentials.setter
    def access_control_allow_credentials(self, value: bool | None) -> None:
        if value is True:
            self.headers["Access-Control-Allow-Credentials"] = "true"
        else:
            self.headers.pop("Access-Control-Allow-Credentials", None)

    @property
    def retry_after(self) -> datetime | None:
        """The ``Retry-After`` header as an aware datetime (a number of seconds counts from now).

        Set a datetime, a number of seconds or a string; ``None`` removes it.
        """
        value = self.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = int(value)
        except ValueError:
            return parse_date(value)
        try:
            return datetime.now(UTC) + timedelta(seconds=seconds)
        except OverflowError:
            return None

    @retry_after.setter
    def retry_after(self, value: datetime | int | str | None) -> None:
        if value is None:
            self.headers.pop("Retry-After", None)
            return
        self.headers["Retry-After"] = http_date(value) if isinstance(value, datetime) else str(value)

    @property
    def cache_control(self) -> ResponseCacheControl:
        """The ``Cache-Control`` header as a :class:`~werkzeug.datastructures.ResponseCacheControl`.

        Setting a directive writes the header: ``response.cache_control.max_age = 300``.
        """
        headers = self.headers

        def on_update(cache_control: Any) -> None:
            if cache_control:
                headers["Cache-Control"] = cache_control.to_header()
            elif "Cache-Control" in headers:
                del headers["Cache-Control"]

        return parse_cache_control_header(headers.get("Cache-Control"), on_update, ResponseCacheControl)

    @property
    def content_range(self) -> ContentRange:
        """The ``Content-Range`` header as a :class:`~werkzeug.datastructures.ContentRange` (empty when unset)."""
        headers = self.headers

        def on_update(content_range: ContentRange) -> None:
            if content_range:
                headers["Content-Range"] = content_range.to_header()
            else:
                del headers["Content-Range"]

        parsed = parse_content_range_header(headers.get("Content-Range"), on_update)
        return parsed if parsed is not None else ContentRange(None, None, None, on_update=on_update)

    @content_range.setter
    def content_range(self, value: ContentRange | str | None) -> None:
        if not value:
            del self.headers["Content-Range"]
        else:
            self.headers["Content-Range"] = value if isinstance(value, str) else value.to_header()

    @property
    def www_authenticate(self) -> WWWAuthenticate:
        """The ``WWW-Authenticate`` header as a :class:`~werkzeug.datastructures.WWWAuthenticate`.

        Changing the object changes the header. When the header is not set this is an empty ``basic`` challenge
        that sets it once changed. Assign a challenge (or a list of them) to set it, ``None`` to remove it.
        """
        value = WWWAuthenticate.from_header(self.headers.get("WWW-Authenticate"))
        if value is None:
            value = WWWAuthenticate("basic")

        def on_update(changed: WWWAuthenticate) -> None:
            self.www_authenticate = changed

        value._on_update = on_update
        return value

    @www_authenticate.setter
    def www_authenticate(self, value: WWWAuthenticate | list[WWWAuthenticate] | None) -> None:
        if not value:
            del self.headers["WWW-Authenticate"]
        elif isinstance(value, list):
            self.headers.set("WWW-Authenticate", value[0].to_header())
            for challenge in value[1:]:
                self.headers.add("WWW-Authenticate", challenge.to_header())
        else:
            self.headers.set("WWW-Authenticate", value.to_header())

            def on_update(changed: WWWAuthenticate) -> None:
                self.www_authenticate = changed

            value._on_update = on_update

    @www_authenticate.deleter
    def www_authenticate(self) -> None:
        del self.headers["WWW-Authenticate"]

    # ---------------------------------------------------------------------------------------- entity tags
    def set_etag(self, etag: str, weak: bool = False) -> None:
        """Set the ``ETag`` header (replacing any), quoting ``etag``.

        Args:
            etag: The unquoted entity tag.
            weak: Mark it weak (``W/"..."``).
        """
        self.headers["ETag"] = quote_etag(etag, weak)

    def get_etag(self) -> tuple[str, bool] | tuple[None, None]:
        """The ``ETag`` header as ``(tag, is_weak)``, or ``(None, None)`` when there is none."""
        return unquote_etag(self.headers.get("ETag"))


class Response(ResponseHeaderProperties):
    """An HTTP response.

    Args:
        response: The body: str, bytes, or an iterable of str/bytes (streamed).
        status: An int (``404``) or a status line (``"404 NOT FOUND"``).
        headers: Initial headers (mapping, pairs or :class:`Headers`).
        mimetype: The mimetype; ``charset=utf-8`` is added for text types.
        content_type: The full Content-Type (wins over ``mimetype``).
        direct_passthrough: Stored as :attr:`direct_passthrough` (a hint for middleware that the body is not to be
            touched; Ampulla sends every body as it is).
    """

    # NOTE: no __slots__: extensions keep their own attributes on responses (and read ``response.__dict__``).

    default_status = 200
    default_mimetype: str | None = "text/html"
    #: Set by the application for JSON responses built with ``jsonify``.
    json_module: Any = _json
    #: Whether the body is to be passed through untouched (set from the constructor's argument).
    direct_passthrough: bool = False
    #: Whether :meth:`set_data` (a str or bytes body) and :meth:`make_conditional` set ``Content-Length``.
    automatically_set_content_length: bool = True

    def __init__(
        self,
        response: str | bytes | Iterable[str | bytes] | None = None,
        status: int | str | HTTPStatus | None = None,
        headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | Headers | None = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        direct_passthrough: bool = False,
    ) -> None:
        self.headers = Headers(headers) if headers is not None else Headers()
        if content_type is None:
            if mimetype is None and "Content-Type" not in self.headers:
                mimetype = self.default_mimetype
            if mimetype is not None:
                content_type = mimetype + "; charset=utf-8" if _is_text(mimetype) else mimetype
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        self._on_close: list[Callable[[], Any]] | None = None
        if direct_passthrough:
            self.direct_passthrough = True  # PERF: the class default serves the usual False
        if status is None:
            self._status_code = self.default_status
            self._status_line = STATUS_LINES[self.default_status]
        else:
            self.status = status
        if response is None:
            self.response: Iterable[bytes] | list[bytes] = []
        elif isinstance(response, str | bytes | bytearray | memoryview):
            # As Werkzeug: a whole body sets Content-Length at once (after_request sees ``content_length``).
            self.set_data(response)
        else:
            self.response = cast(Iterable[bytes], response)

    @classmethod
    def _fast(cls, body: bytes, status: int, content_type: str) -> Response:
        """Build a response without argument checks (views returning str/bytes)."""
        # PERF: skips header parsing and status lookup (benchmarks/instructions.py: hello, route50).
        self = _new_object(cls)
        headers = _new_object(Headers)
        size = len(body)
        headers._list = [("Content-Type", content_type), ("Content-Length", _SIZES[size] if size < 1024 else str(size))]
        self.headers = headers
        self._status_code = status
        self._status_line = STATUS_LINES[status] if status in STATUS_LINES else _status_line(status)
        self._on_close = None
        self.response = [body]
        return self

    # ---------------------------------------------------------------------------------------- status
    @property
    def status_code(self) -> int:
        """The status as an int."""
        return self._status_code

    @status_code.setter
    def status_code(self, code: int) -> None:
        code = int(code)
        if not 100 <= code <= 999:
            raise ValueError(f"status code {code} is out of range (100-999)")
        self._status_code = code
        self._status_line = STATUS_LINES.get(code) or _status_line(code)

    @property
    def status(self) -> str:
        """The status line, e.g. ``"200 OK"``; settable to a code or a line."""
        return self._status_line

    @status.setter
    def status(self, value: int | str | HTTPStatus) -> None:
        if isinstance(value, int):
            self.status_code = value
            return
        text = str(value).strip()
        code_text, _, reason = text.partition(" ")
        try:
            code = int(code_text)
        except ValueError:
            raise ValueError(f"status {value!r} must start with a number, e.g. '200 OK'") from None
        self.status_code = code
        if reason:
            if "\n" in reason or "\r" in reason:
                raise ValueError("status reason must not contain newlines")
            self._status_line = f"{code} {reason}"

    # ---------------------------------------------------------------------------------------- body
    @property
    def is_streamed(self) -> bool:
        """Whether the body is an iterator of unknown length."""
        return not isinstance(self.response, list | tuple)

    def get_data(self, as_text: bool = False) -> Any:
        """The body (a streamed body is consumed and kept).

        Args:
            as_text: Decode as UTF-8.
        """
        body = self.response
        if not isinstance(body, list):
            self.response = [c.encode() if isinstance(c, str) else bytes(c) for c in body]
            close = getattr(body, "close", None)
            if close is not None:
                close()  # read to the end (a file of send_file's does not close itself)
        data = b"".join(self.response)
        return data.decode("utf-8", "replace") if as_text else data

    def set_data(self, value: str | bytes | bytearray | memoryview) -> None:
        """Replace the body; ``Content-Length`` follows (unless :attr:`automatically_set_content_length` is off)."""
        data = value.encode() if isinstance(value, str) else bytes(value)
        self.response = [data]
        if self.automatically_set_content_length:
            self.headers.set("Content-Length", str(len(data)))

    data = property(get_data, set_data, doc="The body as bytes.")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return cast(str, self.get_data(as_text=True))

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """Parse the body as JSON (for tests and clients).

        Args:
            force: Parse even when the content type is not JSON.
            silent: Return ``None`` instead of raising.
        """
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError(f"response is not JSON (Content-Type {self.content_type!r})")
        try:
            return _json.loads(self.get_data())
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return self.get_json()

    @property
    def is_json(self) -> bool:
        mt = self.mimetype or ""
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def iter_encoded(self) -> Iterator[bytes]:
        """The body as bytes chunks."""
        for chunk in self.response:
            yield chunk.encode() if isinstance(chunk, str) else chunk

    # ---------------------------------------------------------------------------------------- headers
    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers.set("Content-Type", value)

    @property
    def mimetype(self) -> str | None:
        """The content type without parameters; setting it adds ``charset=utf-8`` for text types."""
        ct = self.content_type
        return ct.split(";", 1)[0].strip().lower() if ct else None

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        self.headers.set("Content-Type", value + "; charset=utf-8" if _is_text(value) else value)

    @property
    def mimetype_params(self) -> dict[str, str]:
        """The content type's parameters, e.g. ``{"charset": "utf-8"}``; changing the dict rewrites the header."""
        headers = self.headers

        def on_update(params: CallbackDict[str, str]) -> None:
            headers["Content-Type"] = dump_options_header(self.mimetype, params)

        return CallbackDict(parse_options_header(headers.get("Content-Type", ""))[1], on_update)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is None:
            self.headers.pop("Content-Length", None)
        else:
            self.headers.set("Content-Length", str(int(value)))

    def calculate_content_length(self) -> int | None:
        """The body's length in bytes when it is a list (``None`` for a streamed body)."""
        body = self.response
        if not isinstance(body, list):
            return None
        return sum(len(chunk.encode()) if isinstance(chunk, str) else len(chunk) for chunk in body)

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @location.setter
    def location(self, value: str) -> None:
        self.headers.set("Location", value)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | timedelta | None = None,
        expires: str | datetime | int | float | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header.

        Args:
            key: The cookie name (a token).
            value: The value (quoted when needed).
            max_age: Seconds (or a timedelta) until it expires; also sets ``Expires``.
            expires: A datetime or timestamp.
            path: The path it applies to.
            domain: The domain it applies to.
            secure: Only sent over HTTPS.
            httponly: Hidden from JavaScript.
            samesite: ``"Strict"``, ``"Lax"`` or ``"None"``.
            partitioned: CHIPS partitioned cookie (implies ``secure``).

        A cookie longer than :attr:`max_cookie_size` is still set, with a warning: browsers may ignore it.
        """
        header = dump_cookie(
            key,
            value,
            max_age=max_age,
            expires=expires,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            max_size=self.max_cookie_size,
            samesite=samesite,
            partitioned=partitioned,
        )
        self.headers.add("Set-Cookie", header)

    @property
    def max_cookie_size(self) -> int:
        """The cookie size past which :meth:`set_cookie` warns: the app's ``MAX_COOKIE_SIZE`` when an application
        context is active, else 4093 (``0`` disables the warning)."""
        ctx = _cv_ctx.get(None)
        if ctx is not None:
            return int(ctx.app.config.get("MAX_COOKIE_SIZE", 4093) or 0)
        return 4093

    def delete_cookie(
        self,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
        partitioned: bool = False,
    ) -> None:
        """Expire a cookie in the browser (same ``path`` and ``domain`` as when it was set)."""
        self.set_cookie(
            key,
            expires=0,
            max_age=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    # ---------------------------------------------------------------------------------------- conditional
    def add_etag(self, overwrite: bool = False, weak: bool = False) -> None:
        """Set an ``ETag`` computed from the body (its SHA-1), unless one is set and not ``overwrite``.

        A streamed body is read into memory to compute it.
        """
        if overwrite or "ETag" not in self.headers:
            self.set_etag(generate_etag(self.get_data()), weak)

    def make_conditional(
        self,
        request_or_environ: Request | dict[str, Any],
        accept_ranges: bool | str = False,
        complete_length: int | None = None,
    ) -> Response:
        """Answer the request's conditional and range headers from this response's ``ETag`` and ``Last-Modified``.

        Only ``GET`` and ``HEAD`` requests are concerned; for others the response is left as it is. In place, and
        returned: ``return response.make_conditional(request)``. A ``Date`` header is added when missing. Then,
        as Werkzeug's ``Response.make_conditional`` (with Werkzeug's header parsers and
        :func:`werkzeug.sansio.http.is_resource_modified`):

        - a single byte range (when ``accept_ranges`` and ``complete_length`` are given, and ``If-Range``, if sent,
          still matches) makes it 206 Partial Content with that slice of the body, ``Content-Range`` and
          ``Content-Length``; a ``Range`` header that is invalid, asks for several ranges or for bytes past the
          end raises 416;
        - otherwise, when the client's copy is current (``If-None-Match``, ``If-Modified-Since``), it becomes 304
          Not Modified without a body and without entity headers, or 412 Precondition Failed when the request
          sent an ``If-Match`` that does not list the entity tag.

        Args:
            request_or_environ: The request (``ampulla.request``) or a WSGI environ.
            accept_ranges: Send ``Accept-Ranges``: ``True`` for ``bytes``, or the value to send.
            complete_length: The length of the whole body, needed to answer a range.

        Returns:
            This response.

        Raises:
            RequestedRangeNotSatisfiable: The ``Range`` header cannot be answered with one byte range (416).
        """
        if isinstance(request_or_environ, dict):
            method = str(request_or_environ.get("REQUEST_METHOD", "GET")).upper()
            headers: Headers = EnvironHeaders(request_or_environ)
        else:
            method = request_or_environ.method
            headers = request_or_environ.headers
        if method not in ("GET", "HEAD"):
            return self
        own = self.headers
        if "Date" not in own:
            own["Date"] = http_date()
        etag = own.get("ETag")
        modified = own.get("Last-Modified")
        if_match = headers.get("If-Match")
        if not self._answer_range(headers, accept_ranges, complete_length, etag, modified) and not (
            _resource_modified(
                http_if_modified_since=headers.get("If-Modified-Since"),
                http_if_none_match=headers.get("If-None-Match"),
                http_if_match=if_match,
                etag=etag,
                last_modified=modified,
            )
        ):
            if parse_etags(if_match):
                self.status_code = 412
            else:
                self.status_code = 304
                self._drop_body()
                remove_entity_headers(own)
                return self
        if self.automatically_set_content_length and "Content-Length" not in own:
            length = self.calculate_content_length()
            if length is not None:
                own["Content-Length"] = str(length)
        return self

    def _answer_range(
        self,
        headers: Headers,
        accept_ranges: bool | str,
        complete_length: int | None,
        etag: str | None,
        modified: str | None,
    ) -> bool:
        """Make this a 206 answer to the request's ``Range`` header when it applies; whether it did."""
        if not accept_ranges:
            return False
        self.headers["Accept-Ranges"] = "bytes" if accept_ranges is True else accept_ranges
        range_header = headers.get("Range")
        if not complete_length or range_header is None:
            return False
        if_range = headers.get("If-Range")
        if if_range is not None and _resource_modified(
            http_range=range_header,
            http_if_range=if_range,
            etag=etag,
            last_modified=modified,
            ignore_if_range=False,
        ):
            return False
        parsed = parse_range_header(range_header)
        span = parsed.range_for_length(complete_length) if parsed is not None else None
        content_range = parsed.to_content_range_header(complete_length) if parsed is not None else None
        if span is None or content_range is None:
            raise RequestedRangeNotSatisfiable(length=complete_length)
        start, stop = span
        self.status_code = 206
        self.headers["Content-Range"] = content_range
        self.headers["Content-Length"] = str(stop - start)
        body = self.response
        if isinstance(body, list):
            data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in body)
            self.response = [data[start:stop]]
        else:
            self.response = _ByteRange(body, start, stop - start)
        return True

    def _drop_body(self) -> None:
        close = getattr(self.response, "close", None)
        if close is not None:
            close()
        self.response = []

    # ---------------------------------------------------------------------------------------- lifecycle
    def call_on_close(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``func`` once the server has sent the body (usable as a decorator)."""
        if self._on_close is None:
            self._on_close = []
        self._on_close.append(func)
        return func

    def close(self) -> None:
        """Close the body iterable and run ``call_on_close`` functions."""
        close = getattr(self.response, "close", None)
        if close is not None:
            close()
        if self._on_close:
            for func in self._on_close:
                func()

    def __repr__(self) -> str:
        body = "streamed" if self.is_streamed else f"{sum(len(c) for c in self.response)} bytes"
        return f"<{type(self).__name__} {body} [{self.status}]>"


def _resource_modified(**kwargs: Any) -> bool:
    """:func:`werkzeug.sansio.http.is_resource_modified`, with a request date too far out for a datetime
    (``OverflowError`` from Werkzeug's ``parse_date``) counting as no date: a full answer, not a 500."""
    try:
        return is_resource_modified(**kwargs)
    except OverflowError:
        return True


def _is_text(mimetype: str) -> bool:
    return (
        mimetype.startswith("text/")
        or mimetype
        in (
            "application/xml",
            "application/javascript",
            "application/ecmascript",
            "image/svg+xml",
        )
        or mimetype.endswith("+xml")
    )


class _ByteRange:
    """``length`` bytes of a streamed body, from byte ``start`` on (the body is closed with this iterator).

    A seekable body (Werkzeug's ``FileWrapper``, as ``send_file`` builds) is sought to ``start`` instead of read up
    to it. Werkzeug's own range wrapper is private (``werkzeug.wsgi._RangeWrapper``), hence this one.
    """

    __slots__ = ("_body", "_iter", "_length", "_start")

    def __init__(self, body: Iterable[bytes], start: int, length: int) -> None:
        self._body = body
        self._iter: Iterator[bytes | str] | None = None
        self._start = start
        self._length = length

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            body: Any = self._body
            seekable = getattr(body, "seekable", None)
            if self._start and seekable is not None and seekable():
                body.seek(self._start)
                self._start = 0
            self._iter = iter(body)
        while self._length > 0:
            chunk = next(self._iter)
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            if self._start >= len(data):
                self._start -= len(data)
                continue
            data = data[self._start : self._start + self._length]
            self._start = 0
            self._length -= len(data)
            return data
        raise StopIteration

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
