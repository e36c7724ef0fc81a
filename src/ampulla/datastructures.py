"""Data structures for request and response data: Werkzeug's own (multi-value dicts, headers, uploaded files,
typed header values), so ``isinstance`` checks of Flask code and extensions hold.

Ampulla adds four subclasses that keep Werkzeug's behaviour and layout:

- :class:`ImmutableMultiDict` (request data): ``get`` and ``getlist`` answer a missing key without raising;
- :class:`Headers`: refuses, as soon as they are set, header values a response must never carry (CR, LF, NUL,
  characters outside latin-1) and names that are not tokens;
- :class:`EnvironHeaders` and :class:`ASGIHeaders`: read-only request headers over a WSGI environ or an ASGI
  scope, built without copying, with lookups that cost one dict access.

:func:`multidict_from_lists` builds a (immutable) multi-dict from ready lists without a per-item loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

from werkzeug import datastructures as _wz
from werkzeug.datastructures import (
    Accept,
    Authorization,
    CallbackDict,
    CharsetAccept,
    CombinedMultiDict,
    ContentRange,
    ContentSecurityPolicy,
    ETags,
    FileMultiDict,
    FileStorage,
    HeaderSet,
    IfRange,
    ImmutableDict,
    ImmutableList,
    ImmutableTypeConversionDict,
    LanguageAccept,
    MIMEAccept,
    MultiDict,
    Range,
    RequestCacheControl,
    ResponseCacheControl,
    TypeConversionDict,
    WWWAuthenticate,
)

from .exceptions import BadRequestKeyError

T = TypeVar("T")
_M = TypeVar("_M", bound=MultiDict[Any, Any])


K = TypeVar("K")
V = TypeVar("V")

_dict_get = dict.get
_dict_getitem: Callable[[Any, Any], Any] = dict.__getitem__
_dict_new = dict.__new__
_dict_update = dict.update


class ImmutableMultiDict(_wz.ImmutableMultiDict[K, V]):
    """Werkzeug's :class:`~werkzeug.datastructures.ImmutableMultiDict` (``request.args``, ``form``, ``files``,
    ``cookies``), whose ``get`` and ``getlist`` answer a missing key without raising.

    PERF: Werkzeug's ``get`` builds, raises and catches a ``BadRequestKeyError`` for a missing key, which costs more
    than the rest of a small request (benchmarks/instructions.py); the answers are the same.
    """

    def __getitem__(self, key: K) -> V:
        """The first value of ``key``; a missing key raises Werkzeug's ``BadRequestKeyError`` (a 400).

        PERF: one dict lookup, where Werkzeug's looks the key up twice through ``super()`` (benchmarks/
        instructions.py: form).
        """
        try:
            # PERF: no test on the way to the value (benchmarks/instructions.py: form); an empty list is as missing.
            return _dict_getitem(self, key)[0]  # type: ignore[no-any-return]
        except (KeyError, IndexError):
            raise BadRequestKeyError(key) from None

    @overload  # type: ignore[override]
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: V) -> V: ...
    @overload
    def get(self, key: K, default: T) -> V | T: ...
    @overload
    def get(self, key: K, *, type: Callable[[V], T]) -> T | None: ...
    @overload
    def get(self, key: K, default: T, type: Callable[[V], T]) -> T: ...

    def get(self, key: K, default: Any = None, type: Callable[[V], Any] | None = None) -> Any:
        """The first value of ``key`` (converted with ``type``), or ``default`` when absent or refused."""
        values: Any = _dict_get(self, key)
        if not values:
            return default
        if type is None:
            return values[0]
        try:
            return type(values[0])
        except (ValueError, TypeError):
            return default

    def getlist(self, key: K, type: Callable[[V], Any] | None = None) -> list[Any]:
        """Every value of ``key`` (converted with ``type``; values it refuses are left out)."""
        values: Any = _dict_get(self, key)
        if values is None:
            return []
        if type is None:
            return list(values)
        return _converted_list(values, type)


def multidict_from_lists(cls: type[_M], data: dict[str, list[Any]]) -> _M:
    """A ``cls`` (a Werkzeug multi-dict class, immutable ones included) holding ``data``'s lists as they are.

    PERF: the parsers collect each key's values in a list already; this skips MultiDict's per-item loop.
    """
    result: Any = _dict_new(cls)  # a dict subclass: empty without __init__, which would only call update()
    _dict_update(result, data)
    return result  # type: ignore[no-any-return]


def _converted(value: Any, default: Any, type: Callable[[Any], Any] | None) -> Any:
    """``type(value)``, or ``default`` when the conversion refuses the value (``ValueError``/``TypeError``)."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


def _converted_list(values: list[Any], type: Callable[[Any], Any] | None) -> list[Any]:
    """Each value converted with ``type``; values it refuses are left out."""
    if type is None:
        return values
    result = []
    for value in values:
        try:
            result.append(type(value))
        except (ValueError, TypeError):
            pass
    return result


#: Header names (``str`` exactly) that passed :func:`_check_header` when set on a :class:`Headers`. A name in it
#: needs no check again; a value then needs one only when it is not printable ASCII (tab, CR, LF, NUL, non-ASCII).
#: Bounded: names beyond it are checked each time.
_CHECKED_NAMES: set[str] = set()


def _check_header(name: str, value: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"header {name!r} has a value with a newline or NUL character; such values are refused")
    if "\n" in name or "\r" in name or ":" in name or "\0" in name or not name:
        raise ValueError(f"header name {name!r} is not a valid token")
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"header {name!r} has characters that HTTP cannot carry; percent-encode or RFC 2047-encode it"
            ) from None


def header_pairs(headers: Any) -> list[tuple[str, str]]:
    """The ``(name, value)`` lines of a response's headers, whatever mapping an extension put there.

    PERF: a :class:`Headers` (checked when set) gives its list as it is; another Werkzeug ``Headers``, a
    ``MultiDict`` or a plain mapping is read line by line and checked here.
    """
    if type(headers) is Headers:
        return headers._list
    if isinstance(headers, _wz.Headers):
        pairs = list(headers.items())
    elif isinstance(headers, MultiDict):
        pairs = list(headers.items(multi=True))
    else:
        pairs = list(headers.items())
    checked = [(str(name), str(value)) for name, value in pairs]
    for name, value in checked:
        _check_header(name, value)
    return checked


#: Headers that describe a body, dropped from a 304 (but ``Expires`` and ``Content-Location``), as Werkzeug does.
_ENTITY_HEADERS = frozenset(
    [
        "allow",
        "content-encoding",
        "content-language",
        "content-length",
        "content-md5",
        "content-range",
        "content-type",
        "last-modified",
    ]
)


def bodiless_header_pairs(status: int, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The header lines of a response sent without a body: a 304 keeps no entity headers (but ``Expires`` and
    ``Content-Location``), a 1xx or 204 no ``Content-Length``; a new list, ``pairs`` is not changed."""
    if status == 304:
        return [(name, value) for name, value in pairs if name.lower() not in _ENTITY_HEADERS]
    return [(name, value) for name, value in pairs if name.lower() != "content-length"]


class Headers(_wz.Headers):
    """Werkzeug's :class:`~werkzeug.datastructures.Headers` (a response's ``headers``), refusing unsafe values.

    A value with CR, LF or NUL, or with characters HTTP cannot carry (outside latin-1), and a name that is not a
    token raise ``ValueError`` when set, so a header can never split a response or break the server.
    """

    def add(self, key: str, value: Any, /, **kwargs: Any) -> None:
        """Add a header (another line when the name is already there)."""
        if not kwargs:
            # PERF: checked before it is stored, no undo needed (benchmarks/run.py: hooks).
            value = value if isinstance(value, str) else str(value)
            _check_header(key, value)
            super().add(key, value)
            return
        super().add(key, value, **kwargs)
        try:
            _check_header(*self._list[-1])
        except ValueError:
            del self._list[-1]
            raise

    # PERF: Werkzeug's get() and ``in`` raise and catch a BadRequestKeyError for a missing name, which costs more
    # than building a response (benchmarks/instructions.py); these two look without raising.
    @overload  # type: ignore[override]
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str) -> str: ...
    @overload
    def get(self, key: str, default: T) -> str | T: ...
    @overload
    def get(self, key: str, *, type: Callable[[str], T]) -> T | None: ...
    @overload
    def get(self, key: str, default: T, type: Callable[[str], T]) -> T: ...

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        """The first value of header ``key`` (converted with ``type``), or ``default`` when absent or refused."""
        lower = key.lower()
        for name, value in self._list:
            if name.lower() == lower:
                if type is None:
                    return value
                try:
                    return type(value)
                except ValueError:
                    return default
        return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False  # no header name is anything but a str
        lower = key.lower()
        for name, _ in self._list:  # noqa: SIM110
            if name.lower() == lower:
                return True
        return False

    def __setitem__(self, key: Any, value: Any) -> None:
        """``headers[name] = value`` sets a header (see :meth:`set`); an index or a slice sets lines."""
        if key.__class__ is not str:
            before = self._list[:]
            super().__setitem__(key, value)
            try:
                for line in self._list[key] if isinstance(key, slice) else (self._list[key],):
                    _check_header(*line)
            except ValueError:
                self._list[:] = before
                raise
            return
        # PERF: Werkzeug's set() in one call, no second value check (benchmarks/instructions.py: hooks).
        value = value if value.__class__ is str else str(value)
        if key not in _CHECKED_NAMES or not (value.isascii() and value.isprintable()):
            _check_header(key, value)
            if len(_CHECKED_NAMES) < 1024:
                _CHECKED_NAMES.add(key)
        lines = self._list
        size = len(key)
        lower = ""
        # PERF: names of another length differ (header names are ASCII): no lower() for them, nor for the new name
        # when no line has its length (benchmarks/instructions.py: hooks).
        for name, _ in lines:
            if len(name) == size:
                lower = lower or key.lower()
                if name.lower() == lower:
                    break
        else:
            lines.append((key, value))
            return
        lower = lower or key.lower()
        index = 0
        while lines[index][0].lower() != lower:
            index += 1
        lines[index] = (key, value)
        last = len(lines) - 1
        while last > index:
            if lines[last][0].lower() == lower:
                del lines[last]
            last -= 1

    def set(self, key: str, value: Any, /, **kwargs: Any) -> None:
        """Set a header, replacing the lines of that name."""
        if not kwargs:
            self[key] = value
            return
        before = self._list[:]
        super().set(key, value, **kwargs)
        try:
            _check_header(key, self.get(key, ""))
        except ValueError:
            self._list[:] = before
            raise

    def setlist(self, key: str, values: Iterable[Any]) -> None:
        """Set the lines of a header, replacing those of that name."""
        values = list(values)
        for value in values:
            _check_header(key, str(value))
        super().setlist(key, values)


class _RequestHeaders(Headers):
    """The read-only part of :class:`ASGIHeaders` and :class:`EnvironHeaders`: a request's headers are as sent."""

    __slots__ = ()

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("request headers are read-only")

    add = set = __setitem__ = setdefault = remove = __delitem__ = pop = extend = update = clear = _immutable

    def copy(self) -> Headers:  # type: ignore[override]
        new = Headers()
        new._list = self._list
        return new


#: Header names (``"Content-Type"``) to their lower-case wire form (``b"content-type"``), for request lookups
#: and for encoding response headers under ASGI. Bounded: names beyond it are encoded each time.
_WIRE_NAMES: dict[str, bytes] = {}


def wire_name(name: str) -> bytes:
    """``name`` lower-cased and encoded as ASGI carries header names (cached in ``_WIRE_NAMES``)."""
    raw = _WIRE_NAMES.get(name)
    if raw is None:
        raw = name.lower().encode("latin-1")
        if len(_WIRE_NAMES) < 1024:
            _WIRE_NAMES[name] = raw
    return raw


def _joined_lines(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Name -> value of ASGI header pairs, repeated names joined in order (``Cookie`` with ``"; "``)."""
    mapping: dict[bytes, bytes] = {}
    for name, value in raw:
        previous = mapping.get(name)
        if previous is None:
            mapping[name] = value
        else:
            mapping[name] = previous + (b"; " if name == b"cookie" else b", ") + value
    return mapping


class ASGIHeaders(_RequestHeaders):
    """Read-only :class:`Headers` over an ASGI scope's raw ``(name, value)`` byte pairs, decoded on use.

    Servers send lower-case names (the ASGI spec asks them to), so lookups compare bytes without per-entry
    lowering, as Starlette does. A name sent on several lines reads as WSGI servers present it: ``get`` gives
    the lines joined in order with ``", "`` (``"; "`` for ``Cookie``, RFC 9113 §8.2.3), so a proxy's appended
    ``X-Forwarded-For`` line is the last value, and two ``Host`` lines never pass for one; ``getlist`` gives the
    lines one by one.
    """

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        # PERF: one dict built in C (about 0.3 µs for 10 headers) answers each lookup in about 0.1 µs where a
        # scan of the list took 0.2-0.3 µs: it pays for itself by the third lookup (timeit, 8 headers). The
        # ASGI adapter reads Host, Content-Length and Transfer-Encoding from it on every request.
        mapping = dict(raw)
        if len(mapping) != len(raw):
            mapping = _joined_lines(raw)
        self._map = mapping

    @property
    def _list(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw]

    def __getitem__(self, key: str) -> str:  # type: ignore[override]
        value = self._map.get(_WIRE_NAMES.get(key) or wire_name(key))
        if value is None:
            raise BadRequestKeyError(key)
        return value.decode("latin-1")

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:  # type: ignore[override]
        value = self._map.get(_WIRE_NAMES.get(key) or wire_name(key))
        if value is None:
            return default
        if type is None:
            return value.decode("latin-1")
        return _converted(value.decode("latin-1"), default, type)

    def getlist(self, key: str, type: Callable[[str], Any] | None = None) -> list[Any]:
        wanted = wire_name(key)
        values = [raw.decode("latin-1") for name, raw in self._raw if name == wanted]
        return _converted_list(values, type)

    get_all = getlist  # type: ignore[assignment]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return wire_name(key) in self._map

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._raw)

    def __bool__(self) -> bool:
        return bool(self._raw)



# PERF: header name -> environ key, memoised (benchmarks/run.py: json_echo, form).
_ENVIRON_KEYS: dict[str, str] = {}


class EnvironHeaders(_RequestHeaders):
    """A read-only :class:`Headers` view over a WSGI environ, built without copying.

    Not Werkzeug's ``EnvironHeaders``: it is one of Ampulla's checked :class:`Headers` (``copy()`` gives one),
    maps header names to environ keys once per name, and treats an empty ``CONTENT_TYPE`` or ``CONTENT_LENGTH``
    (which some servers set) as absent.
    """

    __slots__ = ("environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            if len(_ENVIRON_KEYS) < 1024:
                _ENVIRON_KEYS[name] = key
        return key

    def __getitem__(self, key: str) -> str:  # type: ignore[override]
        value = self.environ.get(_ENVIRON_KEYS.get(key) or self._key(key))
        if value is None or (value == "" and key.lower() in ("content-type", "content-length")):
            raise BadRequestKeyError(key)
        return str(value)

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:  # type: ignore[override]
        # PERF: the memoised key and no conversion call in the usual case (benchmarks/instructions.py: form).
        value = self.environ.get(_ENVIRON_KEYS.get(key) or self._key(key))
        if value is None or (value == "" and key.lower() in ("content-type", "content-length")):
            return default
        return value if type is None else _converted(value, default, type)

    def getlist(self, key: str, type: Callable[[str], Any] | None = None) -> list[Any]:
        value = self.get(key, type=type)
        return [] if value is None else [value]

    get_all = getlist  # type: ignore[assignment]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def _list(self) -> list[tuple[str, str]]:  # type: ignore[override]
        result = []
        for key, value in self.environ.items():
            if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                result.append((key[5:].replace("_", "-").title(), str(value)))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                result.append((key.replace("_", "-").title(), str(value)))
        return result



__all__ = [
    "ASGIHeaders",
    "Accept",
    "Authorization",
    "CallbackDict",
    "CharsetAccept",
    "CombinedMultiDict",
    "ContentRange",
    "ContentSecurityPolicy",
    "ETags",
    "EnvironHeaders",
    "FileMultiDict",
    "FileStorage",
    "HeaderSet",
    "Headers",
    "IfRange",
    "ImmutableDict",
    "ImmutableList",
    "ImmutableMultiDict",
    "ImmutableTypeConversionDict",
    "LanguageAccept",
    "MIMEAccept",
    "MultiDict",
    "Range",
    "RequestCacheControl",
    "ResponseCacheControl",
    "TypeConversionDict",
    "WWWAuthenticate",
    "header_pairs",
    "multidict_from_lists",
    "wire_name",
]
