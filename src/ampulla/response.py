"""The Response object.

The core builds a :class:`Response` from a view's return value; ``wsgi.py`` and ``asgi.py`` write it back to
their protocol. :mod:`ampulla.wrappers` re-exports everything here, next to :class:`~ampulla.wrappers.Request`.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, cast

from .datastructures import Headers


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} UNKNOWN"


# PERF: the status line of every registered code is computed once (benchmarks/run.py: hello).
STATUS_LINES: dict[int, str] = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class Response:
    """An HTTP response.

    Args:
        response: The body: str, bytes, or an iterable of str/bytes (streamed).
        status: An int (``404``) or a status line (``"404 NOT FOUND"``).
        headers: Initial headers (mapping, pairs or :class:`Headers`).
        mimetype: The mimetype; ``charset=utf-8`` is added for text types.
        content_type: The full Content-Type (wins over ``mimetype``).
        direct_passthrough: Accepted for compatibility.
    """

    # NOTE: no __slots__: extensions keep their own attributes on responses (and read ``response.__dict__``).

    default_status = 200
    default_mimetype: str | None = "text/html"
    #: Set by the application for JSON responses built with ``jsonify``.
    json_module: Any = _json

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
        if status is None:
            self._status_code = self.default_status
            self._status_line = STATUS_LINES[self.default_status]
        else:
            self.status = status
        if response is None:
            self.response: Iterable[bytes] | list[bytes] = []
        elif isinstance(response, str):
            self.response = [response.encode("utf-8")]
        elif isinstance(response, bytes | bytearray | memoryview):
            self.response = [bytes(response)]
        else:
            self.response = cast(Iterable[bytes], response)

    @classmethod
    def _fast(cls, body: bytes, status: int, content_type: str) -> Response:
        """Build a response without argument checks (views returning str/bytes)."""
        # PERF: skips header parsing and status lookup (benchmarks/run.py: hello, route50).
        self = cls.__new__(cls)
        headers = Headers.__new__(Headers)
        headers._list = [("Content-Type", content_type)]
        self.headers = headers
        self._status_code = status
        self._status_line = STATUS_LINES.get(status) or _status_line(status)
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
        if not isinstance(self.response, list):
            self.response = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in self.response]
        data = b"".join(self.response)
        return data.decode("utf-8", "replace") if as_text else data

    def set_data(self, value: str | bytes) -> None:
        """Replace the body."""
        self.response = [value.encode("utf-8") if isinstance(value, str) else bytes(value)]
        if "Content-Length" in self.headers:
            self.headers.set("Content-Length", str(len(self.response[0])))

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
            yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk

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
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    @content_length.setter
    def content_length(self, value: int) -> None:
        self.headers.set("Content-Length", str(int(value)))

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
        """
        from .http import dump_cookie

        self.headers.add(
            "Set-Cookie",
            dump_cookie(
                key,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
                partitioned=partitioned,
            ),
        )

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


def _is_text(mimetype: str) -> bool:
    return mimetype.startswith("text/") or mimetype in (
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "image/svg+xml",
    ) or mimetype.endswith("+xml")
