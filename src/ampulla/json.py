"""JSON support: the app's JSON provider, ``jsonify`` and ``dumps``/``loads`` helpers.

The default provider uses the standard library, sorts keys, and serialises dates (as HTTP dates), ``Decimal``,
``UUID``, dataclasses and objects with ``__html__``. JSON never pickles: unknown objects raise ``TypeError``.
Replace ``app.json`` (or set ``app.json_provider_class``) to use another library such as orjson.
"""

from __future__ import annotations

import dataclasses
import decimal
import json as _json
import json.encoder as _json_encoder
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from itertools import accumulate
from typing import IO, TYPE_CHECKING, Any

from .ctx import _cv_ctx as _imported_cv_ctx

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Response

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx


def _default(o: Any) -> Any:
    if isinstance(o, date):
        from .http import http_date

        return http_date(o) if isinstance(o, (datetime, date)) else str(o)
    if isinstance(o, decimal.Decimal | uuid.UUID):
        return str(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "__html__"):
        return str(o.__html__())
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


#: A JSON string (with its escapes): skipped when counting nesting, brackets inside it are text.
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_exceeds(data: str | bytes, limit: int) -> bool:
    """Whether the JSON document ``data`` nests arrays and objects more than ``limit`` levels deep.

    The answer depends only on the text, never on how much of the interpreter's stack is in use where it is
    parsed: the standard library's decoder recurses, so on its own it accepts a deep document in a thread
    with a short stack and refuses the same document (``RecursionError``) deeper in another one.
    ``[]`` is one level; a scalar is none. Brackets inside strings do not count. The cost is a count of
    bracket bytes, plus a scan of the brackets only when there are more than ``limit`` of them (about what
    parsing them costs: call it on a document that parsed).

    Args:
        data: The document, as text or as bytes in any encoding :func:`json.loads` accepts.
        limit: The most levels allowed.
    """
    if isinstance(data, bytes | bytearray):
        # Every encoding json accepts (UTF-8, -16, -32) has a 0x5B/0x7B byte in each '[' / '{'.
        if data.count(b"[") + data.count(b"{") <= limit:
            return False
        data = bytes(data).decode(_json.detect_encoding(data), "replace")
    elif data.count("[") + data.count("{") <= limit:
        return False
    brackets = _NOT_A_BRACKET_RE.sub("", _STRING_RE.sub("", data))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


class JSONProvider:
    """The interface of ``app.json``: ``dumps``, ``loads`` and ``response``.

    Args:
        app: The application.
    """

    def __init__(self, app: Ampulla) -> None:
        self._app = app

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj`` to a JSON string."""
        raise NotImplementedError

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a JSON document."""
        raise NotImplementedError

    def dump(self, obj: Any, fp: IO[str], **kwargs: Any) -> None:
        """Serialise ``obj`` to a text file."""
        fp.write(self.dumps(obj, **kwargs))

    def load(self, fp: IO[Any], **kwargs: Any) -> Any:
        """Parse the JSON document a file holds."""
        return self.loads(fp.read(), **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A JSON response: ``response(obj)``, ``response(*items)`` (a list) or ``response(**fields)``.

        Raises:
            TypeError: Both positional and keyword arguments were given.
        """
        if args and kwargs:
            raise TypeError("jsonify() takes either args or kwargs (positional or keyword arguments), not both")
        if not args and not kwargs:
            obj: Any = None
        elif kwargs:
            obj = kwargs
        elif len(args) == 1:
            obj = args[0]
        else:
            obj = list(args)
        return self._app.response_class._fast(
            self.dumps(obj).encode() + b"\n", 200, "application/json"
        )


def _make_encoder(
    default: Callable[[Any], Any], ensure_ascii: bool, sort_keys: bool, compact: bool, pretty: bool
) -> Callable[[Any], str]:
    """A function serialising like ``json.dumps`` with these options.

    PERF: without indentation it calls the standard library's C encoder built once, where ``JSONEncoder.encode``
    builds one per call (benchmarks/instructions.py: query_json). That encoder is shared between threads, so it
    keeps no record of the containers being serialised: a container that contains itself ends in
    ``RecursionError`` instead of ``ValueError`` (both an unhandled error: a 500).
    """
    separators = (",", ":") if compact else ((",", ": ") if pretty else (", ", ": "))
    encoder = _json.JSONEncoder(
        default=default, ensure_ascii=ensure_ascii, sort_keys=sort_keys, separators=separators,
        indent=2 if pretty else None,
    )  # fmt: skip
    make = getattr(_json_encoder, "c_make_encoder", None)
    if pretty or make is None:
        return encoder.encode
    quote = _json_encoder.encode_basestring_ascii if ensure_ascii else _json_encoder.encode_basestring
    try:
        chunks = make(None, default, quote, None, separators[1], separators[0], sort_keys, False, True)
    except TypeError:  # pragma: no cover - another signature
        return encoder.encode

    def encode(obj: Any) -> str:
        return "".join(chunks(obj, 0))

    return encode


class DefaultJSONProvider(JSONProvider):
    """The standard library JSON provider.

    Attributes:
        sort_keys: Sort object keys (default True, for stable output and caching).
        ensure_ascii: Escape non-ASCII characters (default True).
        compact: Compact separators; ``None`` means compact unless the app is in debug mode.
        mimetype: The response mimetype.
    """

    sort_keys = True
    ensure_ascii = True
    compact: bool | None = None
    mimetype = "application/json"
    default = staticmethod(_default)

    def __init__(self, app: Ampulla) -> None:
        super().__init__(app)
        self._encoders: dict[str, Callable[[Any], str]] = {}
        self._decoder = _json.JSONDecoder()

    def _encoder(self, style: str) -> Callable[[Any], str]:
        """The function serialising with ``style`` ("plain", "compact" or "pretty"), built once per style."""
        # PERF: one encoder per style, built once (benchmarks/run.py: query_json, json_echo).
        encode = self._encoders.get(style)
        if encode is None:
            encode = self._encoders[style] = _make_encoder(
                self.default, self.ensure_ascii, self.sort_keys, compact=style == "compact", pretty=style == "pretty"
            )
        return encode

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:
            return self._encoder("plain")(obj)
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return _json.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return _json.loads(s, **kwargs)
        if isinstance(s, bytes | bytearray):
            if not s or s[0] in (0x00, 0xEF, 0xFE, 0xFF):
                return _json.loads(s)  # empty, a BOM or UTF-16/32: let the stdlib detect the encoding
            # PERF: plain UTF-8 decodes without detection (benchmarks/run.py: json_echo).
            s = s.decode("utf-8")
        return self._decoder.decode(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if args and kwargs:
            raise TypeError("jsonify() takes either args or kwargs (positional or keyword arguments), not both")
        obj: Any = kwargs if kwargs else (args[0] if len(args) == 1 else (list(args) if args else None))
        return self._app.response_class._fast(self._body(obj), 200, self.mimetype)

    def _body(self, obj: Any) -> bytes:
        """The body of :meth:`response` for ``obj``: compact unless in debug mode, newline-terminated."""
        compact = self.compact
        if compact is None:
            compact = not self._app.config["DEBUG"]  # PERF: not the debug property (instructions.py: query_json)
        return self._encoder("compact" if compact else "pretty")(obj).encode() + b"\n"


def _app() -> Ampulla | None:
    ctx = _cv_ctx.get(None)
    return ctx.app if ctx is not None else None


def dumps(obj: Any, **kwargs: Any) -> str:
    """Serialise with the current app's provider (or the default rules outside an app)."""
    app = _app()
    if app is not None:
        return app.json.dumps(obj, **kwargs)
    kwargs.setdefault("default", _default)
    return _json.dumps(obj, **kwargs)


def loads(s: str | bytes, **kwargs: Any) -> Any:
    """Parse with the current app's provider (or the standard library outside an app)."""
    app = _app()
    if app is not None:
        return app.json.loads(s, **kwargs)
    return _json.loads(s, **kwargs)


def dump(obj: Any, fp: IO[str], **kwargs: Any) -> None:
    """Serialise to a text file with the current app's provider (or the default rules outside an app)."""
    app = _app()
    if app is not None:
        app.json.dump(obj, fp, **kwargs)
        return
    kwargs.setdefault("default", _default)
    _json.dump(obj, fp, **kwargs)


def load(fp: IO[Any], **kwargs: Any) -> Any:
    """Parse a file with the current app's provider (or the standard library outside an app)."""
    app = _app()
    if app is not None:
        return app.json.load(fp, **kwargs)
    return _json.load(fp, **kwargs)


def jsonify(*args: Any, **kwargs: Any) -> Response:
    """A JSON response: ``jsonify(obj)``, ``jsonify(a, b)`` (a list) or ``jsonify(key=value)``.

    Raises:
        RuntimeError: Called outside an application context.
    """
    app = _app()
    if app is None:
        raise RuntimeError("jsonify() needs an application context: call it in a view or inside app.app_context()")
    return app.json.response(*args, **kwargs)
