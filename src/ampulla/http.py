"""HTTP header helpers: options headers, cookies, dates, ETags, ranges, conditional requests, Accept.

Every function here is pure (no I/O, no globals) and tolerant of what real clients send: junk in a request
header gives an empty or ``None`` result, never an exception, unless the docstring says otherwise.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

from .datastructures import ImmutableMultiDict
from .exceptions import RequestedRangeNotSatisfiable

__all__ = [
    "ETags",
    "dump_cookie",
    "generate_etag",
    "http_date",
    "if_range_matches",
    "is_resource_modified",
    "parse_accept",
    "parse_cookie",
    "parse_date",
    "parse_etags",
    "parse_options_header",
    "parse_range_header",
    "precondition_failed",
    "quote_etag",
    "unquote_etag",
]

# ---------------------------------------------------------------------------------------------------------
# Options headers (Content-Type, Content-Disposition)
# ---------------------------------------------------------------------------------------------------------

# One "; key=value" parameter: the value is a quoted string (backslash escapes allowed, closing quote
# optional so that a truncated header still yields something) or everything up to the next ';'.
_OPTION_RE = re.compile(r';\s*([^\s;=]+)\s*(?:=\s*("(?:[^"\\]|\\.)*(?:"|$)|[^;]*))?', re.DOTALL)
_BACKSLASH_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _unquote_header_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 1 and value[0] == '"':
        value = value[1:-1] if len(value) >= 2 and value[-1] == '"' else value[1:]
        if "\\" in value:
            value = _BACKSLASH_ESCAPE_RE.sub(r"\1", value)
    return value


#: A valid percent escape. urllib's ``unquote_to_bytes`` splits the text at every "%" and handles each invalid
#: escape through an exception: a form body of 12,000 "%" took 2.3 MB at peak, 190 bytes per byte sent. A regex
#: substitution touches the valid escapes only and gives the same result.
_ESCAPE_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_HEX_BYTES = {f"{a}{b}".encode(): bytes.fromhex(f"{a}{b}") for a in "0123456789ABCDEFabcdef"
              for b in "0123456789ABCDEFabcdef"}  # fmt: skip
_ASCII_RUN_RE = re.compile(r"([\x00-\x7f]+)")


def _escaped_byte(match: re.Match[bytes]) -> bytes:
    return _HEX_BYTES[match.group(1)]


def unquote_to_bytes(text: str) -> bytes:
    """``urllib.parse.unquote_to_bytes(text)``: %XX escapes decoded, a "%" without two hex digits kept.

    Memory stays within a small multiple of the text, however many invalid escapes it holds.
    """
    raw = text.encode("utf-8")
    return _ESCAPE_RE.sub(_escaped_byte, raw) if b"%" in raw else raw


def unquote(text: str, charset: str = "utf-8", errors: str = "strict") -> str:
    """``urllib.parse.unquote(text, charset, errors)``: the escapes of each ASCII run decoded with ``charset``."""
    if "%" not in text:
        return text
    bits = _ASCII_RUN_RE.split(text)
    parts = [bits[0]]
    for i in range(1, len(bits), 2):
        parts.append(unquote_to_bytes(bits[i]).decode(charset, errors))
        parts.append(bits[i + 1])
    return "".join(parts)


def _decode_rfc2231(value: str) -> str:
    # charset'language'percent-encoded-value; an unknown charset falls back to UTF-8, bad bytes are replaced.
    charset, sep, rest = value.partition("'")
    if not sep:
        return unquote(value, "utf-8", "replace")
    _language, sep, encoded = rest.partition("'")
    if not sep:
        encoded = rest
    try:
        return unquote(encoded, charset or "utf-8", "replace")
    except (LookupError, ValueError, UnicodeError, TypeError):
        # Unknown charsets, codecs that refuse "replace" (idna, punycode) and NUL in the name: UTF-8.
        return unquote(encoded, "utf-8", "replace")


def parse_options_header(value: str | None) -> tuple[str, dict[str, str]]:
    """Split a header such as ``Content-Type`` into its value and parameters.

    ``'Text/HTML; Charset="utf-8"'`` gives ``("text/html", {"charset": "utf-8"})``. Parameter names are
    lower-cased; quoted values are unquoted (backslash escapes resolved). An RFC 2231 extended parameter
    such as ``filename*=UTF-8''na%C3%AFve.txt`` is decoded and stored as ``filename``, taking precedence over
    a plain ``filename``. Otherwise the first occurrence of a repeated parameter wins. Parameters without
    ``=`` are ignored.

    Args:
        value: The header value; ``None`` or ``""`` give ``("", {})``.

    Returns:
        The lower-cased main value and a dict of parameters.
    """
    if not value:
        return "", {}
    index = value.find(";")
    if index < 0:
        # PERF: most Content-Type headers have no parameters.
        return value.strip().lower(), {}
    options: dict[str, str] = {}
    extended: dict[str, str] = {}
    for match in _OPTION_RE.finditer(value, index):
        raw = match.group(2)
        if raw is None:
            continue
        key = match.group(1).lower()
        if key.endswith("*"):
            extended.setdefault(key[:-1], _decode_rfc2231(_unquote_header_value(raw)))
        else:
            options.setdefault(key, _unquote_header_value(raw))
    options.update(extended)
    return value[:index].strip().lower(), options


# ---------------------------------------------------------------------------------------------------------
# Cookies
# ---------------------------------------------------------------------------------------------------------

# RFC 6265 cookie-octet: printable ASCII except space, DQUOTE, comma, semicolon and backslash.
_COOKIE_OCTETS_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_COOKIE_OCTETS = frozenset(b for b in range(0x21, 0x7F) if b not in b'",;\\')
_COOKIE_QUOTE_TABLE: list[bytes] = [bytes((b,)) if b in _COOKIE_OCTETS else b"\\%03o" % b for b in range(256)]
_COOKIE_QUOTE_TABLE[ord('"')] = b'\\"'
_COOKIE_QUOTE_TABLE[ord("\\")] = b"\\\\"
_COOKIE_UNQUOTE_RE = re.compile(rb"\\([0-3][0-7][0-7]|.)", re.DOTALL)
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Characters that would end or split a Set-Cookie attribute.
_ATTRIBUTE_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f;]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SAMESITE_VALUES = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _cookie_unquote_bytes(match: re.Match[bytes]) -> bytes:
    escape = match.group(1)
    if len(escape) == 3:
        return bytes((int(escape, 8),))
    return escape


def _cookie_unquote(value: str) -> str:
    if "\\" not in value:
        return value
    raw = _COOKIE_UNQUOTE_RE.sub(_cookie_unquote_bytes, value.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def parse_cookie(header: str | bytes | None) -> ImmutableMultiDict[str, str]:
    """Parse a ``Cookie`` request header.

    The parser is tolerant: one malformed cookie never drops the others. Whitespace around names and values
    is trimmed, pieces without ``=`` or with an empty name are ignored, and a quoted value is unquoted, its
    backslash and ``\\ooo`` octal escapes resolved (the inverse of :func:`dump_cookie`). Escaped bytes that
    are not valid UTF-8 are replaced with U+FFFD rather than raising. Every value of a repeated name is kept;
    ``cookies[name]`` gives the first, which browsers send for the most specific path.

    Args:
        header: The header value, as bytes or as the latin-1 text WSGI gives (each character one byte);
            raw UTF-8 in it is decoded. A ``str`` with characters above U+00FF is taken as decoded text.

    Returns:
        The cookies, in header order.
    """
    if not header:
        return ImmutableMultiDict()
    if isinstance(header, bytes):
        header = header.decode("utf-8", "replace")
    elif not header.isascii():
        # WSGI and ASGI adapters hand headers over as latin-1 text (one character per byte): recover the
        # bytes and decode them as UTF-8. A str with characters above U+00FF is already text.
        try:
            header = header.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            pass
    data: dict[str, list[str]] = {}
    for piece in header.split(";"):
        key, sep, value = piece.partition("=")
        if not sep:
            continue
        key = key.strip()
        if not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = _cookie_unquote(value[1:-1])
        data.setdefault(key, []).append(value)
    return ImmutableMultiDict(data)


def _cookie_quote(value: str) -> str:
    if _COOKIE_OCTETS_RE.fullmatch(value):
        return value
    table = _COOKIE_QUOTE_TABLE
    return '"' + b"".join([table[b] for b in value.encode("utf-8")]).decode("ascii") + '"'


def _check_attribute(name: str, value: str) -> str:
    if _ATTRIBUTE_UNSAFE_RE.search(value):
        raise ValueError(f"cookie {name} {value!r} contains ';' or a control character")
    return value


def dump_cookie(
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
) -> str:
    """Build a ``Set-Cookie`` header value.

    The value is sent as is when it only has RFC 6265 cookie-octets; otherwise it is UTF-8 encoded and sent as
    a quoted string in which ``"`` and ``\\`` are backslash-escaped and every other byte outside the
    cookie-octets (space, ``,``, ``;``, control and non-ASCII bytes) becomes a ``\\ooo`` octal escape.
    :func:`parse_cookie` reverses this exactly. Browsers limit a cookie to about 4096 bytes; this function
    does not check that.

    Args:
        key: The cookie name; must be an HTTP token.
        value: The cookie value (any text).
        max_age: Lifetime in seconds or as a ``timedelta``. Also sets ``Expires`` unless ``expires`` is given,
            for old clients that ignore ``Max-Age``.
        expires: Expiry as a datetime (naive means UTC), a UNIX timestamp, or a ready HTTP date string.
        path: The ``Path`` attribute; ``None`` omits it.
        domain: The ``Domain`` attribute; ``None`` (the default) limits the cookie to the exact host.
        secure: Send the cookie over HTTPS only.
        httponly: Hide the cookie from JavaScript.
        samesite: ``"Strict"``, ``"Lax"`` or ``"None"`` (any case). ``"None"`` implies ``secure``, since
            browsers drop ``SameSite=None`` cookies that are not ``Secure``.
        partitioned: Add ``Partitioned`` (CHIPS); implies ``secure``.

    Returns:
        The header value, e.g. ``'sid=abc; HttpOnly; Path=/; SameSite=Lax'``.

    Raises:
        ValueError: The key is not a token, ``samesite`` is not one of the three values, ``path``, ``domain``
            or a string ``expires`` contains ``;`` or a control character, or the value cannot be encoded
            as UTF-8 (lone surrogates).
    """
    if not _TOKEN_RE.fullmatch(key):
        raise ValueError(f"cookie name {key!r} is not a valid token (letters, digits and !#$%&'*+-.^_`|~)")
    parts = [f"{key}={_cookie_quote(value)}"]
    if domain is not None:
        parts.append(f"Domain={_check_attribute('domain', domain)}")
    if isinstance(max_age, timedelta):
        max_age = int(max_age.total_seconds())
    if expires is None and max_age is not None:
        expires = time.time() + max_age
    if expires is not None:
        expires_text = (
            _check_attribute("expires", expires) if isinstance(expires, str) else http_date(expires)
        )
        parts.append(f"Expires={expires_text}")
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if samesite is not None:
        normalized = _SAMESITE_VALUES.get(samesite.lower())
        if normalized is None:
            raise ValueError(f"samesite must be 'Strict', 'Lax' or 'None', not {samesite!r}")
        samesite = normalized
        if samesite == "None":
            secure = True
    if partitioned:
        secure = True
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if path is not None:
        parts.append(f"Path={_check_attribute('path', path)}")
    if samesite is not None:
        parts.append(f"SameSite={samesite}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------------------

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _to_utc_datetime(ts: datetime | date | int | float) -> datetime:
    if isinstance(ts, datetime):
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if isinstance(ts, date):
        return datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {ts!r} is out of range") from exc


def http_date(ts: datetime | date | int | float | None = None) -> str:
    """Format a time as an HTTP date (IMF-fixdate), e.g. ``"Sun, 06 Nov 1994 08:49:37 GMT"``.

    Args:
        ts: A datetime (naive means UTC, aware is converted), a date (midnight UTC), a UNIX timestamp, or
            ``None`` for now. Fractions of a second are dropped.

    Returns:
        The formatted date.

    Raises:
        ValueError: The timestamp is outside the range a datetime can hold.
    """
    dt = _to_utc_datetime(time.time() if ts is None else ts)
    return (
        f"{_WEEKDAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} GMT"
    )


def parse_date(value: str | None) -> datetime | None:
    """Parse an HTTP date (IMF-fixdate, RFC 850 or asctime format).

    Args:
        value: The header value.

    Returns:
        An aware datetime in UTC, or ``None`` when the value is missing or not a date.
    """
    if not value or len(value) > 128:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        return None


# ---------------------------------------------------------------------------------------------------------
# ETags
# ---------------------------------------------------------------------------------------------------------


class ETags:
    """The entity tags of an ``If-Match`` or ``If-None-Match`` header.

    ``etag in etags`` uses the strong comparison (weak tags never match); use :meth:`contains_weak` for
    ``If-None-Match``, which RFC 9110 evaluates with the weak comparison. A ``*`` header matches everything.

    Args:
        strong_etags: Unquoted strong tags.
        weak_etags: Unquoted weak tags (without ``W/``).
        star_tag: Whether the header was ``*``.
    """

    __slots__ = ("_strong", "_weak", "star_tag")

    def __init__(
        self,
        strong_etags: Iterable[str] | None = None,
        weak_etags: Iterable[str] | None = None,
        star_tag: bool = False,
    ) -> None:
        self._strong = frozenset(strong_etags or ())
        self._weak = frozenset(weak_etags or ())
        self.star_tag = star_tag

    def as_set(self, include_weak: bool = False) -> frozenset[str]:
        """The strong tags, plus the weak ones when ``include_weak``."""
        return self._strong | self._weak if include_weak else self._strong

    def is_weak(self, etag: str) -> bool:
        """Whether ``etag`` (unquoted) is listed as a weak tag."""
        return etag in self._weak

    def is_strong(self, etag: str) -> bool:
        """Whether ``etag`` (unquoted) is listed as a strong tag."""
        return etag in self._strong

    def contains(self, etag: str) -> bool:
        """Strong comparison: ``etag`` (unquoted) is a listed strong tag, or the header was ``*``."""
        return self.star_tag or etag in self._strong

    def contains_weak(self, etag: str) -> bool:
        """Weak comparison: ``etag`` (unquoted) is listed, weak or strong, or the header was ``*``."""
        return self.star_tag or etag in self._strong or etag in self._weak

    def contains_raw(self, etag: str) -> bool:
        """Check a quoted tag such as ``'W/"abc"'``: a weak one by weak comparison, a strong one by strong."""
        tag, weak = unquote_etag(etag)
        if tag is None:
            return False
        return self.contains_weak(tag) if weak else self.contains(tag)

    def to_header(self) -> str:
        """The header value these tags came from (normalised)."""
        if self.star_tag:
            return "*"
        return ", ".join(
            [f'"{tag}"' for tag in sorted(self._strong)] + [f'W/"{tag}"' for tag in sorted(self._weak)]
        )

    def __contains__(self, etag: object) -> bool:
        return isinstance(etag, str) and self.contains(etag)

    def __iter__(self) -> Iterator[str]:
        return iter(self._strong)

    def __len__(self) -> int:
        return len(self._strong)

    def __bool__(self) -> bool:
        return bool(self.star_tag or self._strong or self._weak)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_header()!r}>"


def quote_etag(etag: str, weak: bool = False) -> str:
    """Quote an entity tag for a header: ``abc`` gives ``'"abc"'`` or ``'W/"abc"'``.

    Args:
        etag: The unquoted tag.
        weak: Mark the tag weak.

    Raises:
        ValueError: The tag contains a ``"`` or a control character.
    """
    if '"' in etag or _CONTROL_RE.search(etag):
        raise ValueError(f"invalid entity tag {etag!r}: it may not contain '\"' or control characters")
    return f'W/"{etag}"' if weak else f'"{etag}"'


def unquote_etag(value: str | None) -> tuple[str | None, bool]:
    """Split a quoted entity tag into the tag and its weakness: ``'W/"abc"'`` gives ``("abc", True)``.

    Unquoted tags are accepted as they are. ``None`` or an empty value gives ``(None, False)``.
    """
    if not value:
        return None, False
    value = value.strip()
    weak = False
    if value[:2] in ("W/", "w/"):
        weak = True
        value = value[2:].lstrip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value, weak


# Empty list items (",,") are skipped in the same match, and junk up to the next comma by _ETAG_SKIP_RE.
# Possessive quantifiers: no backtracking into a long run of separators (no quadratic time on ", , , ...").
_ETAG_RE = re.compile(r'[\s,]*+([Ww]/)?\s*+(?:"([^"]*+)"|([^",\s]++))\s*+(?:,|$)')
_ETAG_SKIP_RE = re.compile(r"[^,]*+[\s,]*+")


def parse_etags(value: str | None) -> ETags:
    """Parse an ``If-Match`` or ``If-None-Match`` header.

    Junk between the tags is skipped; unquoted tags are accepted. ``*`` gives ``ETags(star_tag=True)``.

    Args:
        value: The header value.

    Returns:
        The tags; empty (falsy) when the header is missing or has none.
    """
    if not value:
        return ETags()
    if value.strip() == "*":
        return ETags(star_tag=True)
    strong: list[str] = []
    weak: list[str] = []
    position, end = 0, len(value)
    while position < end:
        match = _ETAG_RE.match(value, position)
        if match is None:
            skip = _ETAG_SKIP_RE.match(value, position)
            assert skip is not None  # the pattern matches the empty string
            position = max(skip.end(), position + 1)
            continue
        tag = match.group(2) if match.group(2) is not None else match.group(3)
        if match.group(1):
            weak.append(tag)
        elif tag == "*":
            return ETags(star_tag=True)
        else:
            strong.append(tag)
        position = max(match.end(), position + 1)
    return ETags(strong, weak)


def generate_etag(data: bytes) -> str:
    """An unquoted strong entity tag for a body: its SHA-1 hex digest (not used for security)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Ranges and conditional requests
# ---------------------------------------------------------------------------------------------------------

#: More byte ranges than this in one ``Range`` header and the header is ignored (the full body is sent).
MAX_RANGES = 100
_RANGE_SPEC_RE = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_HUGE = 1 << 63


def _range_int(digits: str) -> int:
    # int() of thousands of digits is slow (and refused past 4300); any such value is past every length.
    return int(digits) if len(digits) <= 18 else _HUGE


def parse_range_header(value: str | None, length: int) -> list[tuple[int, int]] | None:
    """Resolve a ``Range: bytes=...`` header against a body of ``length`` bytes.

    Following RFC 9110, a missing, unknown-unit or syntactically invalid header is ignored (``None``: send
    the full body). Unsatisfiable ranges are dropped; if none is left, 416 is raised. A header with more
    than :data:`MAX_RANGES` ranges is ignored. When ranges overlap they are merged and sorted, so a client
    cannot make the response larger than the body by asking for the same bytes many times; otherwise the
    requested order is kept.

    Args:
        value: The header value, e.g. ``"bytes=0-499, -500"``.
        length: The full length of the body.

    Returns:
        Half-open ``(start, stop)`` byte ranges within ``0..length``, or ``None``.

    Raises:
        RequestedRangeNotSatisfiable: The header is valid but no range overlaps the body.
    """
    if not value:
        return None
    unit, sep, specs = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    items = [item.strip() for item in specs.split(",")]
    items = [item for item in items if item]
    if not items or len(items) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for item in items:
        match = _RANGE_SPEC_RE.fullmatch(item)
        if match is None:
            return None
        first_text, last_text, suffix_text = match.groups()
        if suffix_text is not None:
            suffix = _range_int(suffix_text)
            if suffix > 0 and length > 0:
                ranges.append((max(0, length - suffix), length))
            continue
        first = _range_int(first_text)
        if last_text:
            last = _range_int(last_text)
            if last < first:
                return None
            if first < length:
                ranges.append((first, min(last + 1, length)))
        elif first < length:
            ranges.append((first, length))
    if not ranges:
        raise RequestedRangeNotSatisfiable(length=length)
    if len(ranges) > 1:
        ordered = sorted(ranges)
        if any(ordered[i][1] > ordered[i + 1][0] for i in range(len(ordered) - 1)):
            merged = [ordered[0]]
            for start, stop in ordered[1:]:
                last_start, last_stop = merged[-1]
                if start <= last_stop:
                    merged[-1] = (last_start, max(last_stop, stop))
                else:
                    merged.append((start, stop))
            return merged
    return ranges


def _as_validator_date(value: datetime | str | int | float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_date(value)
    try:
        return _to_utc_datetime(value).replace(microsecond=0)
    except ValueError:
        return None


def is_resource_modified(
    if_none_match: str | ETags | None,
    if_modified_since: str | datetime | None,
    etag: str | None,
    last_modified: datetime | str | int | float | None,
) -> bool:
    """Whether a ``GET``/``HEAD`` should get the full response (``True``) or 304 Not Modified (``False``).

    Implements RFC 9110 section 13.2.2: when ``If-None-Match`` is present it alone decides (weak comparison;
    ``*`` matches any current representation) and ``If-Modified-Since`` is ignored. Otherwise a valid
    ``If-Modified-Since`` date at or after ``last_modified`` (compared to the second) means not modified.
    Without a usable validator the resource counts as modified.

    Args:
        if_none_match: The ``If-None-Match`` header or parsed :class:`ETags`.
        if_modified_since: The ``If-Modified-Since`` header or a datetime (naive means UTC).
        etag: The current entity tag, quoted or not.
        last_modified: The resource's modification time (datetime, timestamp or HTTP date).

    Returns:
        ``False`` when the client's copy is current, else ``True``.
    """
    if isinstance(if_none_match, str):
        # A present header decides even when it holds no parseable tag (then nothing matches).
        present = bool(if_none_match.strip())
        if_none_match = parse_etags(if_none_match)
    else:
        present = bool(if_none_match)
    if present and if_none_match is not None:
        if if_none_match.star_tag:
            return False
        tag, _weak = unquote_etag(etag)
        return tag is None or not if_none_match.contains_weak(tag)
    since = _as_validator_date(if_modified_since)
    modified = _as_validator_date(last_modified)
    if since is None or modified is None:
        return True
    return modified > since


def precondition_failed(
    if_match: str | None,
    if_unmodified_since: str | None,
    etag: str | None,
    last_modified: datetime | str | int | float | None,
) -> bool:
    """Whether a request's preconditions fail, so it must be answered 412 (RFC 9110 section 13.2.2, steps 1-2).

    ``If-Match`` decides when present: it fails unless it is ``*`` or lists the current entity tag by strong
    comparison (a weak or missing current tag never matches). Otherwise a valid ``If-Unmodified-Since`` fails
    when the resource changed after that date (compared to the second). Junk in either header never raises.

    Args:
        if_match: The ``If-Match`` header.
        if_unmodified_since: The ``If-Unmodified-Since`` header.
        etag: The current entity tag, quoted or not.
        last_modified: The resource's modification time.

    Returns:
        ``True`` when the request must get 412 Precondition Failed.
    """
    if if_match is not None and if_match.strip():
        tags = parse_etags(if_match)
        if tags.star_tag:
            return False
        tag, weak = unquote_etag(etag)
        return tag is None or weak or not tags.contains(tag)
    since = parse_date(if_unmodified_since)
    modified = _as_validator_date(last_modified)
    if since is not None and modified is not None:
        return modified > since
    return False


def if_range_matches(if_range: str | None, etag: str | None, last_modified: datetime | str | None) -> bool:
    """Whether a ``Range`` header should be honoured given ``If-Range`` (RFC 9110 section 13.1.5).

    Without ``If-Range`` the range applies. An entity tag matches only by strong comparison (a weak tag on
    either side never matches); a date matches only when it equals ``last_modified`` to the second. Anything
    else, including junk, means the full body must be sent.

    Args:
        if_range: The ``If-Range`` header.
        etag: The current entity tag, quoted or not.
        last_modified: The resource's modification time.
    """
    if if_range is None:
        return True
    if_range = if_range.strip()
    if not if_range:
        return True
    if if_range[:1] == '"' or if_range[:2] in ("W/", "w/"):
        wanted, wanted_weak = unquote_etag(if_range)
        current, current_weak = unquote_etag(etag)
        return not wanted_weak and not current_weak and current is not None and wanted == current
    since = parse_date(if_range)
    modified = _as_validator_date(last_modified)
    return since is not None and modified is not None and since == modified


# ---------------------------------------------------------------------------------------------------------
# Accept headers
# ---------------------------------------------------------------------------------------------------------

_ACCEPT_VALUE_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z/]+")
_QVALUE_RE = re.compile(r"(?:0(?:\.[0-9]{0,6})?|1(?:\.0{0,6})?|\.[0-9]{1,6})")


def _specificity(value: str) -> int:
    if value == "*" or value == "*/*":
        return 0
    if value.endswith("/*"):
        return 1
    return 2


def parse_accept(value: str | None) -> list[tuple[str, float]]:
    """Parse an ``Accept``-style header (``Accept``, ``Accept-Language``, ``Accept-Encoding``, ...).

    Values are lower-cased and stripped of parameters other than ``q``. The result is sorted by quality,
    best first; equal qualities keep the more specific value first (``text/html`` before ``text/*`` before
    ``*/*``), then header order. Items with a malformed value or quality are skipped. Items with ``q=0``
    (meaning "not acceptable") are kept, last.

    Args:
        value: The header value.

    Returns:
        ``(value, quality)`` pairs.
    """
    if not value:
        return []
    found: list[tuple[float, int, int, str]] = []
    for index, item in enumerate(value.split(",")):
        main, _, params = item.partition(";")
        main = main.strip().lower()
        if not main or not _ACCEPT_VALUE_RE.fullmatch(main):
            continue
        quality = 1.0
        if params:
            valid = True
            for param in params.split(";"):
                key, _, raw = param.partition("=")
                if key.strip().lower() == "q":
                    raw = raw.strip()
                    if not _QVALUE_RE.fullmatch(raw):
                        valid = False
                        break
                    quality = float(raw)
            if not valid:
                continue
        found.append((-quality, -_specificity(main), index, main))
    found.sort()
    return [(main, -negative_quality) for negative_quality, _, _, main in found]
