"""Data structures for request and response data: multi-value dicts, headers, uploaded files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import IO, Any, TypeVar, overload

from werkzeug.datastructures import WWWAuthenticate as WWWAuthenticate

from .exceptions import BadRequestKeyError

T = TypeVar("T")
V = TypeVar("V")
_MISSING: Any = object()


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


class MultiDict(MutableMapping[str, V]):
    """A dict that keeps every value given for a key, as HTML forms and query strings do.

    ``md[key]`` and ``md.get(key)`` give the first value, ``md.getlist(key)`` all of them. A missing key raises
    :class:`~ampulla.exceptions.BadRequestKeyError`, which is a ``KeyError`` and, left unhandled in a view,
    answers 400 rather than 500.

    Args:
        mapping: Initial data: a mapping (values that are lists or tuples give several values), another
            MultiDict, or an iterable of ``(key, value)`` pairs.
    """

    __slots__ = ("_data",)

    def __init__(self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        self._data: dict[str, list[V]] = {}
        if mapping is not None:
            self._extend(mapping)

    def _extend(self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        data = self._data
        if isinstance(mapping, MultiDict):
            for key, values in mapping._data.items():
                data.setdefault(key, []).extend(values)
        elif isinstance(mapping, Mapping):
            for key, value in mapping.items():
                if isinstance(value, list | tuple):
                    data.setdefault(key, []).extend(value)
                else:
                    data.setdefault(key, []).append(value)
        else:
            for key, value in mapping:
                data.setdefault(key, []).append(value)

    @classmethod
    def _from_lists(cls, data: dict[str, list[V]]) -> MultiDict[V]:
        # PERF: used by the parsers, which already group values; avoids re-walking the pairs.
        new = cls.__new__(cls)
        new._data = data
        return new

    def __getitem__(self, key: str) -> V:
        try:
            return self._data[key][0]
        except (KeyError, IndexError):
            raise BadRequestKeyError(key) from None

    def __setitem__(self, key: str, value: V) -> None:
        self._data[key] = [value]

    def __delitem__(self, key: str) -> None:
        try:
            del self._data[key]
        except KeyError:
            raise BadRequestKeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return self._data == other._data
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.items(multi=True))!r})"

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: V | T) -> V | T: ...
    @overload
    def get(self, key: str, default: T | None = None, *, type: Callable[[V], T]) -> T | None: ...

    def get(self, key: str, default: Any = None, type: Callable[[Any], Any] | None = None) -> Any:
        """The first value for ``key``, or ``default``.

        Args:
            key: The key to look up.
            default: Returned when the key is missing or ``type`` cannot convert the value.
            type: A callable such as ``int``; a ``ValueError`` or ``TypeError`` from it gives ``default``.
        """
        values = self._data.get(key)
        if not values:
            return default
        return _converted(values[0], default, type)

    def getlist(self, key: str, type: Callable[[Any], Any] | None = None) -> list[Any]:
        """All values for ``key`` (an empty list when missing).

        Args:
            key: The key to look up.
            type: Converts each value; values it rejects with ``ValueError`` or ``TypeError`` are left out.
        """
        values = self._data.get(key)
        if not values:
            return []
        return _converted_list(list(values), type)

    def add(self, key: str, value: V) -> None:
        """Append a value for ``key``, keeping the existing ones."""
        self._data.setdefault(key, []).append(value)

    def setlist(self, key: str, values: Iterable[V]) -> None:
        """Replace all values for ``key``."""
        self._data[key] = list(values)

    def setlistdefault(self, key: str, default: Iterable[V] = ()) -> list[V]:
        """The list for ``key``, set to ``default`` first if missing."""
        return self._data.setdefault(key, list(default))

    def poplist(self, key: str) -> list[V]:
        """Remove ``key`` and return all its values (empty list when missing)."""
        return self._data.pop(key, [])

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its first value."""
        values = self._data.pop(key, None)
        if values:
            return values[0]
        if default is _MISSING:
            raise BadRequestKeyError(key)
        return default

    def popitem(self) -> tuple[str, V]:
        key, values = self._data.popitem()
        return key, values[0]

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add values from a mapping or pairs; unlike ``dict.update`` existing values are kept."""
        for arg in args:
            self._extend(arg)
        if kwargs:
            self._extend(kwargs)

    def items(self, multi: bool = False) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        """Pairs of key and first value, or every pair with ``multi=True``."""
        for key, values in self._data.items():
            if multi:
                for value in values:
                    yield key, value
            elif values:
                yield key, values[0]

    def values(self) -> Iterator[V]:  # type: ignore[override]
        """The first value of each key."""
        for values in self._data.values():
            if values:
                yield values[0]

    def lists(self) -> Iterator[tuple[str, list[V]]]:
        """Pairs of key and list of all its values."""
        for key, values in self._data.items():
            yield key, list(values)

    def listvalues(self) -> Iterator[list[V]]:
        """The list of values of each key."""
        for values in self._data.values():
            yield list(values)

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        """A plain dict: first values, or lists of all values with ``flat=False``."""
        if flat:
            return {key: values[0] for key, values in self._data.items() if values}
        return {key: list(values) for key, values in self._data.items()}

    def copy(self) -> MultiDict[V]:
        return type(self)._from_lists({k: list(v) for k, v in self._data.items()})

    __copy__ = copy


class ImmutableMultiDict(MultiDict[V]):
    """A :class:`MultiDict` that refuses changes; ``request.args``, ``form`` and ``files`` are these."""

    __slots__ = ()

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} objects are immutable; use .copy() to get a mutable MultiDict")

    __setitem__ = __delitem__ = add = setlist = setlistdefault = poplist = pop = popitem = _immutable
    clear = setdefault = _immutable

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._immutable()

    def copy(self) -> MultiDict[V]:
        return MultiDict._from_lists({k: list(v) for k, v in self._data.items()})

    def __hash__(self) -> int:
        return hash(tuple(self.items(multi=True)))


class CombinedMultiDict(ImmutableMultiDict[V]):
    """A read-only view over several MultiDicts; lookups try each in order (``request.values``).

    Args:
        dicts: The MultiDicts to combine, first one wins for ``[]`` and ``get``.
    """

    __slots__ = ()

    def __init__(self, dicts: Iterable[MultiDict[V]]) -> None:
        data: dict[str, list[V]] = {}
        for d in dicts:
            for key, values in d._data.items():
                data.setdefault(key, []).extend(values)
        self._data = data


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


class Headers:
    """Case-insensitive, ordered, multi-valued HTTP headers (a response's ``headers``).

    Iterating gives ``(name, value)`` pairs, so ``dict(headers)`` and ``list(headers)`` work. Values with CR,
    LF or NUL are refused with ``ValueError`` when set, so no view can split a response.

    Args:
        defaults: Initial headers: a mapping, a Headers, or ``(name, value)`` pairs.
    """

    __slots__ = ("_list",)

    def __init__(self, defaults: Mapping[str, Any] | Iterable[tuple[str, Any]] | Headers | None = None) -> None:
        self._list: list[tuple[str, str]] = []
        if defaults is not None:
            self.extend(defaults)

    def __getitem__(self, key: str) -> str:
        lower = key.lower()
        for name, value in self._list:
            if name.lower() == lower:
                return value
        raise BadRequestKeyError(key)

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        """The first value for ``key`` or ``default``; ``type`` converts it like ``MultiDict.get``."""
        lower = key.lower()
        for name, value in self._list:
            if name.lower() == lower:
                return _converted(value, default, type)
        return default

    def getlist(self, key: str, type: Callable[[str], Any] | None = None) -> list[Any]:
        """Every value for ``key``, in order."""
        lower = key.lower()
        values = [value for name, value in self._list if name.lower() == lower]
        return _converted_list(values, type)

    get_all = getlist

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lower = key.lower()
        return any(name.lower() == lower for name, _ in self._list)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

    def __bool__(self) -> bool:
        return bool(self._list)

    def keys(self, lower: bool = False) -> Iterator[str]:
        for name, _ in self._list:
            yield name.lower() if lower else name

    def values(self) -> Iterator[str]:
        for _, value in self._list:
            yield value

    def items(self, lower: bool = False) -> Iterator[tuple[str, str]]:
        for name, value in self._list:
            yield (name.lower() if lower else name), value

    @staticmethod
    def _format(value: Any, params: Mapping[str, Any]) -> str:
        text = str(value)
        for key, param in params.items():
            key = key.replace("_", "-")
            if param is None or param is False:
                continue
            if param is True:
                text += f"; {key}"
            else:
                param = str(param)
                if any(c in param for c in ' ;,"\\'):
                    param = '"' + param.replace("\\", "\\\\").replace('"', '\\"') + '"'
                text += f"; {key}={param}"
        return text

    def add(self, key: str, value: Any, **params: Any) -> None:
        """Add a header, keeping existing ones of that name. Keyword arguments become ``; k=v`` parameters."""
        text = self._format(value, params) if params else str(value)
        _check_header(key, text)
        self._list.append((key, text))

    def set(self, key: str, value: Any, **params: Any) -> None:
        """Replace every header named ``key`` with one value (at the first one's position)."""
        text = self._format(value, params) if params else str(value)
        _check_header(key, text)
        lower = key.lower()
        items = self._list
        found = -1
        for i, (name, _) in enumerate(items):
            if name.lower() == lower:
                if found >= 0:
                    break  # several: rebuild below
                found = i
        else:
            # PERF: absent or present once needs no rebuild (benchmarks/run.py: hooks).
            if found < 0:
                items.append((key, text))
            else:
                items[found] = (key, text)
            return
        new: list[tuple[str, str]] = []
        placed = False
        for item in self._list:
            if item[0].lower() == lower:
                if not placed:
                    new.append((key, text))
                    placed = True
            else:
                new.append(item)
        if not placed:
            new.append((key, text))
        self._list = new

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def setdefault(self, key: str, default: Any) -> str:
        """The first value for ``key``, adding ``default`` when missing."""
        existing: str | None = self.get(key)
        if existing is not None:
            return existing
        self.add(key, default)
        return str(default)

    def remove(self, key: str) -> None:
        """Remove every header named ``key`` (no error when missing)."""
        lower = key.lower()
        self._list = [item for item in self._list if item[0].lower() != lower]

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.remove(key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its first value."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self.remove(key)
        return value

    def extend(self, *args: Mapping[str, Any] | Iterable[tuple[str, Any]] | Headers, **kwargs: Any) -> None:
        """Add headers from a mapping (list values add several), pairs, or another Headers."""
        for arg in (*args, kwargs):
            items: Iterable[tuple[str, Any]]
            if isinstance(arg, Headers):
                self._list.extend(arg._list)
                continue
            items = arg.items() if isinstance(arg, Mapping) else arg
            for key, value in items:
                if isinstance(value, list | tuple):
                    for v in value:
                        self.add(key, v)
                else:
                    self.add(key, value)

    def update(self, *args: Mapping[str, Any] | Iterable[tuple[str, Any]] | Headers, **kwargs: Any) -> None:
        """Replace the headers named in the arguments (list values set several)."""
        for arg in (*args, kwargs):
            items = arg.items() if isinstance(arg, Mapping | Headers) else arg
            grouped: dict[str, list[Any]] = {}
            for key, value in items:
                grouped.setdefault(key, []).extend(value if isinstance(value, list | tuple) else [value])
            for key, values in grouped.items():
                self.remove(key)
                for value in values:
                    self.add(key, value)

    def clear(self) -> None:
        self._list.clear()

    def copy(self) -> Headers:
        new = Headers()
        new._list = list(self._list)
        return new

    __copy__ = copy

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        """The headers as a WSGI list of ``(name, value)`` tuples."""
        return self._list

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._list) == sorted((k.lower(), v) for k, v in other._list)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"

    def __str__(self) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self._list) + "\r\n"


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


class ASGIHeaders(Headers):
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

    def __getitem__(self, key: str) -> str:
        value = self._map.get(_WIRE_NAMES.get(key) or wire_name(key))
        if value is None:
            raise BadRequestKeyError(key)
        return value.decode("latin-1")

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
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

    get_all = getlist

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

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("request headers are read-only")

    add = set = __setitem__ = setdefault = remove = __delitem__ = pop = extend = update = clear = _immutable

    def copy(self) -> Headers:
        new = Headers()
        new._list = self._list
        return new


# PERF: header name -> environ key, memoised (benchmarks/run.py: json_echo, form).
_ENVIRON_KEYS: dict[str, str] = {}


class EnvironHeaders(Headers):
    """A read-only :class:`Headers` view over a WSGI environ, built without copying."""

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

    def __getitem__(self, key: str) -> str:
        value = self.environ.get(self._key(key))
        if value is None or (value == "" and key.lower() in ("content-type", "content-length")):
            raise BadRequestKeyError(key)
        return str(value)

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        value = self.environ.get(self._key(key))
        if value is None or (value == "" and key.lower() in ("content-type", "content-length")):
            return default
        return _converted(value, default, type)

    def getlist(self, key: str, type: Callable[[str], Any] | None = None) -> list[Any]:
        value = self.get(key, type=type)
        return [] if value is None else [value]

    get_all = getlist

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

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("request headers are read-only")

    add = set = __setitem__ = setdefault = remove = __delitem__ = pop = extend = update = clear = _immutable

    def copy(self) -> Headers:
        new = Headers()
        new._list = self._list
        return new


class FileStorage:
    """An uploaded file, as found in ``request.files``.

    Args:
        stream: The file's data (a file object positioned at the start).
        filename: The name the client sent (never trust it for a path: use ``secure_filename``).
        name: The form field's name.
        content_type: The part's Content-Type.
        content_length: The size in bytes, when known.
        headers: The part's headers.
    """

    def __init__(
        self,
        stream: IO[bytes],
        filename: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        content_length: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.stream = stream
        self.filename = filename
        self.name = name
        self.content_type = content_type or "application/octet-stream"
        self.content_length = content_length
        self.headers = headers if headers is not None else Headers()

    @property
    def mimetype(self) -> str:
        """The content type without parameters, lower-cased."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def mimetype_params(self) -> dict[str, str]:
        """The content type's parameters (e.g. ``charset``)."""
        from .http import parse_options_header

        return parse_options_header(self.content_type)[1]

    def read(self, size: int = -1) -> bytes:
        """Read from the stream."""
        return self.stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def save(self, dst: str | os.PathLike[str] | IO[bytes], buffer_size: int = 16384) -> None:
        """Copy the upload to a path or an open binary file.

        Args:
            dst: A path (the file is created or replaced) or a writable binary file object.
            buffer_size: Bytes copied at a time.
        """
        if isinstance(dst, str | os.PathLike):
            with open(dst, "wb") as out:
                shutil.copyfileobj(self.stream, out, buffer_size)
        else:
            shutil.copyfileobj(self.stream, dst, buffer_size)

    def close(self) -> None:
        """Close the underlying stream (and delete its temporary file, if spooled to disk)."""
        try:
            self.stream.close()
        except Exception:  # pragma: no cover - closing never hides a response
            pass

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.filename!r} ({self.content_type!r})>"
