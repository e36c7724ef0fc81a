"""HTTP helpers: Werkzeug's (:mod:`werkzeug.http`), re-exported, plus Ampulla's percent-decoding.

Header parsing and formatting (options headers, cookies, dates, entity tags, ranges, conditional requests,
``Accept`` headers) is Werkzeug's, as in Flask: ``ampulla.http.parse_etags is werkzeug.http.parse_etags``.
:func:`parse_date` and :func:`parse_if_range_header` wrap Werkzeug's so that a hostile date gives ``None``
rather than an ``OverflowError`` (a 500).

:func:`unquote` and :func:`unquote_to_bytes` are Ampulla's own: they decode the bodies of
``application/x-www-form-urlencoded`` requests and query strings, which a client controls up to the body limit,
and cost memory in proportion to the text however many invalid escapes it holds (see :func:`unquote_to_bytes`).
"""

from __future__ import annotations

import codecs
import re
from datetime import datetime

from werkzeug.datastructures import IfRange
from werkzeug.http import (
    dump_cookie,
    dump_header,
    dump_options_header,
    generate_etag,
    http_date,
    is_resource_modified,
    parse_accept_header,
    parse_cache_control_header,
    parse_cookie,
    parse_dict_header,
    parse_etags,
    parse_list_header,
    parse_options_header,
    parse_range_header,
    quote_etag,
    unquote_etag,
)
from werkzeug.http import parse_date as _werkzeug_parse_date
from werkzeug.http import parse_if_range_header as _werkzeug_parse_if_range_header

__all__ = [
    "dump_cookie",
    "dump_header",
    "dump_options_header",
    "generate_etag",
    "http_date",
    "is_resource_modified",
    "parse_accept_header",
    "parse_cache_control_header",
    "parse_cookie",
    "parse_date",
    "parse_dict_header",
    "parse_etags",
    "parse_if_range_header",
    "parse_list_header",
    "parse_options_header",
    "parse_range_header",
    "quote_etag",
    "unquote",
    "unquote_etag",
    "unquote_to_bytes",
]

#: A valid percent escape. urllib's ``unquote_to_bytes`` (which Werkzeug 3 uses; ``werkzeug.urls`` no longer
#: has its own) splits the text at every "%" and handles each invalid escape through an exception: a form body
#: of 12,000 "%" took 2.3 MB at peak, 190 bytes per byte sent. A regex substitution touches the valid escapes
#: only and gives the same result.
_ESCAPE_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_HEX_BYTES = {f"{a}{b}".encode(): bytes.fromhex(f"{a}{b}") for a in "0123456789ABCDEFabcdef"
              for b in "0123456789ABCDEFabcdef"}  # fmt: skip
_ASCII_RUN_RE = re.compile(r"([\x00-\x7f]+)")
#: The C decoder of Python's backslash escapes in bytes (``codecs.escape_decode``, what ``pickle`` uses).
_escape_decode = codecs.escape_decode


def _escaped_byte(match: re.Match[bytes]) -> bytes:
    return _HEX_BYTES[match.group(1)]


def unquote_to_bytes(text: str) -> bytes:
    """``urllib.parse.unquote_to_bytes(text)``: %XX escapes decoded, a "%" without two hex digits kept.

    Not urllib's (nor Werkzeug's, which is urllib's): memory stays within a small multiple of the text, however
    many invalid escapes a hostile form body holds.
    """
    # PERF: "%" tested on the text: ``bytes in bytes`` first tries the operand as an int, raising and clearing a
    # TypeError (about 2,000 instructions; benchmarks/instructions.py: form).
    if "%" not in text:
        return text.encode()
    if "\\" not in text:
        # PERF: without backslashes, the escapes as "\xXX" are all that the C escape decoder sees: a third of the
        # regex substitution's cost, which calls back into Python per escape (benchmarks/instructions.py: form).
        try:
            return _escape_decode(text.replace("%", "\\x"))[0]
        except ValueError:  # an invalid escape ("%zz", a "%" at the end): the regex keeps it as it is
            pass
    return _ESCAPE_RE.sub(_escaped_byte, text.encode())


def unquote(text: str, charset: str = "utf-8", errors: str = "strict") -> str:
    """``urllib.parse.unquote(text, charset, errors)``: the escapes of each ASCII run decoded with ``charset``.

    Not urllib's: regex-based, without urllib's per-"%" cost (see :func:`unquote_to_bytes`).
    """
    if "%" not in text:
        return text
    bits = _ASCII_RUN_RE.split(text)
    parts = [bits[0]]
    for i in range(1, len(bits), 2):
        parts.append(unquote_to_bytes(bits[i]).decode(charset, errors))
        parts.append(bits[i + 1])
    return "".join(parts)


def parse_date(value: str | None) -> datetime | None:
    """Werkzeug's :func:`~werkzeug.http.parse_date`, but ``None`` where it raises ``OverflowError``.

    Not Werkzeug's alone: a date whose year is past what a datetime holds (``"Mon, 01 Jan 99999999999 00:00:00
    GMT"``) makes it raise, and the value comes from request headers (``If-Modified-Since``...).
    """
    try:
        return _werkzeug_parse_date(value)
    except OverflowError:
        return None


def parse_if_range_header(value: str | None) -> IfRange:
    """Werkzeug's :func:`~werkzeug.http.parse_if_range_header`; a date it cannot hold counts as no header."""
    try:
        return _werkzeug_parse_if_range_header(value)
    except OverflowError:
        return IfRange()
