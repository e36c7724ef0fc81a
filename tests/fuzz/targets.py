"""Fuzz targets: ``target_<name>(data: bytes) -> None`` raises :class:`InvariantError` on a broken invariant.

Input format (the same under atheris and for corpus replay, so a crash file replays byte for byte)::

    <control bytes> 0x1E <field 1> 0x1E <field 2> 0x1E ...

Control bytes drive the choices (method, route, mode, repeat counts); each choice takes the next control byte
(``0`` once they run out). Fields are the payloads (path, header values, body...); missing fields are empty.
One decoder for both worlds beats ``atheris.FuzzedDataProvider``: libFuzzer mutates the separator-delimited
fields well, seed files stay readable, and replay needs no atheris.

Every target sends its request through the raw WSGI callable and the ASGI callable of the harness app
(``harness.send``), which checks: status < 500, nothing escapes, nothing logged, well-formed status and headers,
``Content-Length`` equal to the body. Targets add what they can check: equality with a reference parser,
round trips, WSGI/ASGI agreement, file content of ranges, session integrity, a memory bound for form bodies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes, urlsplit

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from ampulla.http import dump_cookie
from ampulla.routing import BuildError
from ampulla.sessions import session_json_serializer

from . import harness
from .harness import (
    ANY_ITEMS,
    CONVERTER_RULES,
    FILE_CONTENT,
    MAX_CONTENT_LENGTH,
    MAX_FORM_MEMORY_SIZE,
    MAX_FORM_PARTS,
    MAX_JSON_DEPTH,
    SECRET_MARKER,
    InvariantError,
    Req,
    Result,
    assert_same,
    canonical,
    chunk_size_for,
    file_digest,
    get_app,
    send,
    typed,
)

__all__ = ["KNOWN_BUGS", "SEP", "TARGETS", "Reader"]

SEP = b"\x1e"

#: Known, reported bugs: failure messages matching one of these are skipped by ``run.py --skip-known`` (for
#: exploring past them). Never used by the tests: a known bug fails until it is fixed.
KNOWN_BUGS: dict[str, re.Pattern[str]] = {
    "json-recursion": re.compile(r"RecursionError"),
    "charset-unicode-error": re.compile(r"logged ERROR .*(?:idna|punycode|embedded null character)"),
    "redirect-location-nul": re.compile(r"header 'Location' has a value with a newline or NUL"),
}


class Reader:
    """Decodes a fuzz input into control choices and payload fields (see the module docstring)."""

    __slots__ = ("_control", "_fields", "_index", "_pos")

    def __init__(self, data: bytes) -> None:
        control, sep, rest = data.partition(SEP)
        self._control = control
        self._pos = 0
        self._fields = rest.split(SEP) if sep else []
        self._index = 0

    def byte(self) -> int:
        """The next control byte (0 once they run out)."""
        if self._pos >= len(self._control):
            return 0
        value = self._control[self._pos]
        self._pos += 1
        return value

    def number(self, limit: int) -> int:
        """A number in ``range(limit)`` from the next two control bytes."""
        return ((self.byte() << 8) | self.byte()) % max(1, limit)

    def pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return options[self.byte() % len(options)]

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def field(self) -> bytes:
        """The next payload field (``b""`` once they run out)."""
        if self._index >= len(self._fields):
            return b""
        value = self._fields[self._index]
        self._index += 1
        return value

    def has_fields(self) -> bool:
        return self._index < len(self._fields)


def text(raw: bytes) -> str:
    """Bytes as text a client could send (invalid UTF-8 replaced; never a lone surrogate)."""
    return raw.decode("utf-8", "replace")


def _cap(data: bytes, repeat: int, limit: int) -> bytes:
    if not data or repeat <= 1:
        return data
    return data * min(repeat, limit // len(data) + 1)


CHUNK_SIZES = (65536, 1, 7, 100, 4096, 65536, 1 << 20)
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "TRACE", "CONNECT")


def _fail(message: str) -> None:
    raise InvariantError(message)


# ---------------------------------------------------------------------------------------------------------
# router
# ---------------------------------------------------------------------------------------------------------


def _values_from_answer(answer: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (kind, raw) in answer["values"].items():
        if kind == "int":
            values[name] = int(raw)
        elif kind == "float":
            values[name] = float(raw)
        elif kind == "uuid":
            values[name] = uuid.UUID(raw)
        else:
            values[name] = json.loads(raw)
    return values


def _check_rebuild(endpoint: str, values: dict[str, Any], args: list[list[str]] | None = None) -> None:
    """``url_for(endpoint, **values)`` then a request to that URL gives back ``values`` (and ``args``)."""
    if any(isinstance(v, float) and "e" in str(v) for v in values.values()):
        return  # Werkzeug's float converter builds "1e-05", which it does not match (as in Flask)
    app = get_app()
    query_values = {f"q{i}_{k}": v for i, (k, v) in enumerate(args or [])}
    with app.test_request_context():
        try:
            url = app.url_for(endpoint, **values, **query_values)
        except (BuildError, ValueError) as e:
            raise InvariantError(f"url_for({endpoint!r}, {values!r}) refused values it matched: {e}") from e
    split = urlsplit(url)
    path = unquote_to_bytes(split.path)
    try:
        rule, matched = app.url_map.match_compiled("", path.decode("utf-8"), "GET")
    except Exception as e:  # a redirect or 404 for a URL we built ourselves
        raise InvariantError(f"url_for({endpoint!r}, {values!r}) = {url!r} does not match: {e!r}") from e
    if rule.endpoint != endpoint:
        return  # the URL is also matched by a rule of higher priority (ambiguous routes): not a round trip
    if {k: typed(v) for k, v in matched.items()} != {k: typed(v) for k, v in values.items()}:
        raise InvariantError(f"url_for({endpoint!r}, {values!r}) = {url!r} matches back {matched!r}")
    results = send(Req("GET", path, split.query.encode("ascii")))
    assert_same(results, f" for the built URL {url!r}")
    for result in results:
        if result.status != 200:
            raise InvariantError(f"{result.protocol}: built URL {url!r} answered {result.status}")
        answer = result.json()
        expected = {k: typed(v) for k, v in sorted(values.items())}
        if answer["endpoint"] != endpoint or answer["values"] != expected:
            raise InvariantError(f"{result.protocol}: {url!r} gave {answer!r}, expected {endpoint} {expected!r}")
        if args is not None and answer["args"] != [[f"q{i}_{k}", v] for i, (k, v) in enumerate(args)]:
            raise InvariantError(f"{result.protocol}: {url!r} gave args {answer['args']!r}, expected {args!r}")


def target_router(data: bytes) -> None:
    """Arbitrary paths and methods against every converter, slashes, redirects, blueprints, send_from_directory.

    The path field is the request target as sent (percent-decoded like a server does). Checks: no 500, WSGI
    and ASGI agree for UTF-8 paths, nothing outside the public folder is served, and every value a
    converter matched builds back (``url_for``) to a URL that matches the same values.
    """
    r = Reader(data)
    method = r.pick(METHODS)
    path = unquote_to_bytes(r.field())
    query = r.field()
    results = send(Req(method, path, query))
    for result in results:
        if SECRET_MARKER in result.body:
            _fail(f"{result.protocol}: {path!r} served the file outside the public folder")
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert_same(results, f" on {method} {path[:200]!r}")
    result = results[0]
    if method == "GET" and result.status == 200 and result.body.startswith(b'{"args"'):
        answer = result.json()
        if answer.get("endpoint") in CONVERTER_RULES or answer.get("endpoint") == "bp.item":
            _check_rebuild(answer["endpoint"], _values_from_answer(answer))


# ---------------------------------------------------------------------------------------------------------
# url_build
# ---------------------------------------------------------------------------------------------------------


def _segment(raw: bytes, minimum: int = 1, maximum: int | None = None) -> str:
    value = text(raw).replace("/", "")
    if maximum is not None:
        value = value[:maximum]
    return value + "x" * max(0, minimum - len(value))


def _int_value(raw: bytes, signed: bool = False, negative: bool = False) -> int:
    value = int.from_bytes(raw[:48], "big")
    return -value if signed and negative else value


def _float_value(raw: bytes, signed: bool) -> float:
    value = struct.unpack(">d", (raw + bytes(8))[:8])[0]
    if value != value or value in (float("inf"), float("-inf")) or "e" in str(value):
        value = len(raw) + 0.5  # no exponent: Werkzeug's float converter matches digits.digits only
    return value if signed else abs(value)


BUILD_ENDPOINTS = (*(e for e in CONVERTER_RULES if not e.startswith("conv_over")), "bp.item")


def target_url_build(data: bytes) -> None:
    """``url_for`` then match gives back the same values, for every converter, plus query-string values."""
    r = Reader(data)
    endpoint = r.pick(BUILD_ENDPOINTS)
    field = r.field()
    values: dict[str, Any]
    if endpoint in ("conv_int", "bp.item"):
        values = {"value": _int_value(field)}
    elif endpoint == "conv_signed":
        values = {"value": _int_value(field, True, r.flag())}
    elif endpoint == "conv_bounded":
        values = {"value": 1 + _int_value(field) % 100}
    elif endpoint == "conv_fixed":
        values = {"value": _int_value(field) % 10000}
    elif endpoint in ("conv_float", "conv_sfloat"):
        values = {"value": _float_value(field, endpoint == "conv_sfloat")}
    elif endpoint == "conv_uuid":
        values = {"value": uuid.UUID(bytes=(field + bytes(16))[:16])}
    elif endpoint == "conv_minmax":
        values = {"value": _segment(field, 2, 8)}
    elif endpoint == "conv_exact":
        values = {"value": _segment(field, 3, 3)}
    elif endpoint == "conv_path":
        # Werkzeug's path converter ("[^/].*?") does not match a newline.
        values = {"value": text(field).lstrip("/").replace("\n", "") or "p"}
    elif endpoint == "conv_any":
        values = {"value": ANY_ITEMS[len(field) % len(ANY_ITEMS)]}
    elif endpoint == "conv_multi":
        segment = _segment(r.field())
        path = text(r.field()).lstrip("/").replace("\n", "")
        values = {"a": _int_value(field), "b": segment, "c": path or "c"}
    else:  # conv_string, conv_slashed, conv_wild
        values = {"value": _segment(field)}
    args = [[text(r.field()), text(r.field())] for _ in range(r.byte() % 4)]
    _check_rebuild(endpoint, values, args)


# ---------------------------------------------------------------------------------------------------------
# query
# ---------------------------------------------------------------------------------------------------------


def reference_pairs(raw: bytes, charset: str, limit: int, too_many: int) -> tuple[int, list[list[str]] | None]:
    """What parsing ``a=1&b=2`` text must give: ``(status, pairs)``, independently of ampulla's parser."""
    try:
        decoded = raw.decode(charset)
    except UnicodeDecodeError:
        return 400, None
    if len([p for p in decoded.split("&") if p]) > limit:
        return too_many, None
    try:
        pairs = parse_qsl(decoded, keep_blank_values=True, encoding=charset, errors="strict")
    except UnicodeDecodeError:
        return 400, None
    return 200, grouped(pairs)


def grouped(pairs: list[tuple[str, str]] | list[list[Any]]) -> list[list[Any]]:
    """``MultiDict.items(multi=True)`` order: keys in first-seen order, each key's values in order."""
    by_key: dict[str, list[Any]] = {}
    for key, value in pairs:
        by_key.setdefault(key, []).append(value)
    return [[key, value] for key, values in by_key.items() for value in values]


def target_query(data: bytes) -> None:
    """Query strings: equal to ``urllib.parse.parse_qsl`` (strict UTF-8), 400 for bad UTF-8, 414 past the limit."""
    r = Reader(data)
    route = r.pick((b"/args", b"/values"))
    query = _cap(r.field(), r.number(3000), 200_000)
    results = send(Req("GET", route, query))
    assert_same(results)
    status, pairs = reference_pairs(query, "utf-8", MAX_FORM_PARTS, 414)
    for result in results:
        if result.status != status:
            _fail(f"{result.protocol}: query {query[:200]!r} answered {result.status}, expected {status}")
        if pairs is not None:
            got = result.json()["args" if route == b"/args" else "values"]
            if got != pairs:
                _fail(f"{result.protocol}: query {query[:200]!r} parsed as {got!r}, expected {pairs!r}")


# ---------------------------------------------------------------------------------------------------------
# urlencoded
# ---------------------------------------------------------------------------------------------------------

CHARSETS = (None, b"utf-8", b"UTF-8", b"latin-1", b"iso-8859-15", b"cp1252", b"shift_jis", b"utf-16", b"idna",
            b"x-unknown", b'"utf-8"', b"", b"utf-8 ", b"ascii", b"punycode", b"unicode_escape")
LENGTH_MODES = ("exact", "exact", "chunked", "absent", "bogus", "disconnect", "larger")


def _apply_length_mode(req: Req, mode: str, r: Reader) -> None:
    if mode == "chunked":
        req.content_length = False
    elif mode == "absent":
        req.headers.append((b"x-no-length", b"1"))
        req.headers.append((b"transfer-encoding", b"identity"))
    elif mode == "bogus":
        req.headers.append((b"content-length", r.pick((b"abc", b"-1", b"1e3", b" 12", b"+5", b"0x10", b"", b"9" * 30))))
    elif mode == "disconnect":
        req.disconnect = True
    elif mode == "larger":
        req.headers.append((b"content-length", str(len(req.body) + 1 + r.byte()).encode()))


def target_urlencoded(data: bytes) -> None:
    """``application/x-www-form-urlencoded`` bodies: reference equality, 413 past the limits, bounded memory."""
    r = Reader(data)
    charset = r.pick(CHARSETS)
    route = r.pick((b"/form", b"/form-async", b"/values", b"/data"))
    mode = r.pick(LENGTH_MODES)
    chunk = r.pick(CHUNK_SIZES)
    body = _cap(r.field(), r.number(4000), 2 * MAX_CONTENT_LENGTH)
    content_type = b"application/x-www-form-urlencoded"
    if charset is not None:
        content_type += b"; charset=" + charset
    req = Req("POST", route, b"", [(b"content-type", content_type)], body, chunk_size=chunk_size_for(body, chunk))
    _apply_length_mode(req, mode, r)
    results = send(req, measure=True)
    if mode not in ("exact", "chunked"):
        return
    assert_same(results)
    if charset not in (None, b"utf-8", b"UTF-8"):
        return
    if len(body) > MAX_CONTENT_LENGTH:
        expected: tuple[int, Any] = (413, None)
    elif route == b"/data":
        expected = (200, {"len": len(body), "digest": file_digest(body)})
    elif len(body) > MAX_FORM_MEMORY_SIZE:
        expected = (413, None)
    else:
        status, pairs = reference_pairs(body, "utf-8", MAX_FORM_PARTS, 413)
        key = "values" if route == b"/values" else "form"
        expected = (status, None if pairs is None else {key: pairs, **({} if key == "values" else {"files": []})})
    for result in results:
        if result.status != expected[0] or (expected[1] is not None and result.json() != expected[1]):
            _fail(f"{result.protocol}: {req!r} gave {result.status} {result.body[:300]!r}, expected {expected!r}")


# ---------------------------------------------------------------------------------------------------------
# multipart
# ---------------------------------------------------------------------------------------------------------

_SAFE_NAME_RE = re.compile(r'[^"\\%\x00-\x1f\x7f]+')
#: A bare parameter value as Werkzeug reads it: token characters ("%" escapes among them).
_RFC2231_TOKEN_RE = re.compile(r"[\w!#$%&'*+\-.^`|~]*", re.ASCII)
#: RFC 2046 boundary characters (what real clients send), so the expected parse is unambiguous.
_BCHAR = r"[0-9A-Za-z'()+_,./:=?-]"
_BOUNDARY_OK_RE = re.compile(rf"{_BCHAR}[0-9A-Za-z'()+_,./:=? -]{{0,68}}{_BCHAR}|{_BCHAR}")
FILE_TYPES = (b"text/plain", b"application/octet-stream", b"image/png", b"text/plain; charset=latin-1")


def _build_multipart(r: Reader) -> tuple[bytes, bytes, tuple[int, ...] | None, Any]:
    """A multipart body from the input; returns ``(content_type, body, expected statuses, expected answer)``.

    ``expected answer`` is the form/files echo for a well-formed body within the limits, else ``None``.
    """
    boundary = r.field() or b"fuzz-boundary"
    nparts = r.byte() % 6
    ops = r.byte()
    valid = _BOUNDARY_OK_RE.fullmatch(boundary.decode("latin-1")) is not None
    statuses: set[int] = set()
    eol = b"\n" if ops & 1 else b"\r\n"
    if ops & 1:
        valid = False
    parts: list[bytes] = []
    form: list[list[str]] = []
    files: list[list[Any]] = []
    memory_limit_hit = False
    part_count = 0
    for _ in range(nparts):
        part_count += 1
        kind = r.byte()
        raw_name = r.field()
        name = text(raw_name)
        content = _cap(r.field(), r.number(400) if kind & 0x40 else 1, 2 * MAX_CONTENT_LENGTH)
        disposition = b'form-data; name="' + raw_name + b'"'
        is_file = bool(kind & 1)
        filename: str | None = None
        if not name or not _SAFE_NAME_RE.fullmatch(name) or name == "_charset_" or raw_name != name.encode():
            valid = False
        if is_file:
            raw_filename = r.field()
            style = (kind >> 1) & 3
            if style == 0:  # UTF-8 (or anything) in quotes
                disposition += b'; filename="' + raw_filename + b'"'
                try:
                    filename = raw_filename.decode("utf-8")
                except UnicodeDecodeError:
                    filename = raw_filename.decode("latin-1")  # old clients: latin-1, kept byte for byte
                if not _SAFE_NAME_RE.fullmatch(filename or "x") or filename[1:3] == ":\\":
                    valid = False
            elif style == 1:  # RFC 2231 only (RFC 7578 forbids it, some clients send it)
                encoded = quote(raw_filename)
                disposition += b"; filename*=UTF-8''" + encoded.encode("ascii")
                # As Flask reads it (Werkzeug's parse_options_header): the bare value up to its first character
                # that is not a token character (a "/" quote() keeps), then decoded unless nothing follows "''".
                token = _RFC2231_TOKEN_RE.match("UTF-8''" + encoded).group()  # type: ignore[union-attr]
                value = token[len("UTF-8''") :]
                filename = unquote(value, "utf-8", "replace") if value else token
            elif style == 2:  # non-UTF-8 raw bytes
                latin = raw_filename + b"\xe9\xff"
                disposition += b'; filename="' + latin + b'"'
                filename = latin.decode("latin-1")
                if not _SAFE_NAME_RE.fullmatch(filename):
                    valid = False
            else:  # empty filename: still a file
                disposition += b'; filename=""'
                filename = ""
        headers = [b"Content-Disposition: " + disposition]
        content_type: bytes | None = None
        if kind & 8:
            content_type = FILE_TYPES[(kind >> 4) % len(FILE_TYPES)]
            headers.append(b"Content-Type: " + content_type)
            if not is_file and content_type != b"text/plain":
                valid = False
        if kind & 0x80:  # a junk extra header (NUL, huge value, many of them)
            headers.extend([b"X-Extra: " + _cap(r.field(), r.number(3000), 20_000)] * (1 + r.byte() % 10))
            valid = False
        if b"--" + boundary in content or ((b"\r" in content or b"\n" in content) and not is_file):
            valid = valid and b"--" + boundary not in content
        parts.append(b"--" + boundary + eol + eol.join(headers) + eol + eol + content + eol)
        if is_file:
            files.append([name, filename, content_type.decode() if content_type else None,
                          len(content), file_digest(content)])
        else:
            try:
                form.append([name, content.decode("latin-1" if content_type == b"text/plain; charset=latin-1"
                                                  else "utf-8")])
            except UnicodeDecodeError:
                statuses.add(400)
            if len(content) > MAX_FORM_MEMORY_SIZE:
                memory_limit_hit = True
    repeat = 1 + (r.number(3000) if ops & 2 else 0)
    body = b"".join(parts)
    repeat = min(repeat, 2 * MAX_CONTENT_LENGTH // max(1, len(body)) + 1)
    body *= repeat
    if repeat > 1:
        form = form * repeat
        files = files * repeat
    if ops & 4:
        body = r.field() + eol + body  # junk preamble (ignored by the grammar)
    if not ops & 8:
        body += b"--" + boundary + b"--" + eol
    else:
        valid = False  # no closing delimiter
    if ops & 16:
        cut = r.number(len(body) + 1)
        if cut != len(body):
            valid = False
        body = body[:cut]
    if ops & 32:
        body += r.field()  # epilogue
    header_boundary = boundary + (b"x" if ops & 64 else b"")
    if ops & 64:
        valid = False
    quoted = ops & 128
    content_type = b"multipart/form-data; boundary=" + (b'"' + header_boundary + b'"' if quoted else header_boundary)
    if quoted and (b'"' in header_boundary or b"\\" in header_boundary):
        valid = False
    if not quoted and _RFC2231_TOKEN_RE.fullmatch(header_boundary.decode("latin-1")) is None:
        valid = False  # unquoted, Werkzeug (so Flask) reads a parameter value up to its first non-token character
    if not valid:
        return content_type, body, None, None
    if len(body) > MAX_CONTENT_LENGTH:
        statuses.add(413)
    if part_count * repeat > MAX_FORM_PARTS:
        statuses.add(413)
    if memory_limit_hit:
        statuses.add(413)
    if not body:
        return content_type, body, (200,), {"form": [], "files": []}
    if statuses:
        return content_type, body, tuple(statuses), None
    return content_type, body, (200,), {"form": grouped(form), "files": grouped(files_by_name(files))}


def files_by_name(files: list[list[Any]]) -> list[list[Any]]:
    return [[entry[0], entry[1:]] for entry in files]


def target_multipart(data: bytes) -> None:
    """``multipart/form-data``: truncated, wrong boundary, huge headers, thousands of parts, junk preamble,
    NUL bytes, non-UTF-8 filenames. Well-formed bodies must parse to exactly what was sent; everything else
    gets a 4xx; memory stays bounded."""
    r = Reader(data)
    route = r.pick((b"/form", b"/form-async", b"/values"))
    chunk = r.pick(CHUNK_SIZES)
    mode = r.byte() % 4
    if mode == 0:  # raw: the Content-Type header and the body as given
        content_type = r.field()
        body = r.field()
        expected_statuses, expected = None, None
    else:
        content_type, body, expected_statuses, expected = _build_multipart(r)
    req = Req("POST", route, b"", [(b"content-type", content_type)], body, chunk_size=chunk_size_for(body, chunk))
    if mode == 3:
        req.content_length = False
    results = send(req, measure=True)
    assert_same(results)
    for result in results:
        if expected_statuses is not None and result.status not in expected_statuses:
            _fail(f"{result.protocol}: {req!r} answered {result.status}, expected one of {expected_statuses}: "
                  f"{result.body[:300]!r}")
        if expected is not None and result.status == 200:
            got = result.json()
            if route == b"/values":
                got = {"form": got["values"], "files": expected["files"]}
            else:
                got["files"] = grouped(files_by_name(got["files"]))
            if got != expected:
                _fail(f"{result.protocol}: {req!r} parsed as {got!r}, expected {expected!r}"[:3000])


# ---------------------------------------------------------------------------------------------------------
# cookies
# ---------------------------------------------------------------------------------------------------------

_TOKEN_CHARS = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")


def target_cookies(data: bytes) -> None:
    """Cookie headers: raw junk never breaks a request or forges a session; ``dump_cookie`` values (any text)
    parse back exactly."""
    r = Reader(data)
    if r.flag():
        header = _cap(r.field(), r.number(2000), 16 * 1024)
        expected = None
    else:
        pairs = []
        for _ in range(1 + r.byte() % 5):
            key = _TOKEN_CHARS.sub(b"", r.field()).decode("ascii") or "k"
            value = text(r.field())
            pairs.append([key, value])
        header = "; ".join(dump_cookie(k, v).split("; ")[0] for k, v in pairs).encode("latin-1")
        expected = grouped(pairs)
    results = send(Req("GET", b"/cookies", b"", [(b"cookie", header)]))
    assert_same(results)
    if expected is not None:
        for result in results:
            got = result.json()["cookies"]
            if got != expected:
                _fail(f"{result.protocol}: Cookie {header[:300]!r} parsed as {got!r}, expected {expected!r}")
    for result in send(Req("GET", b"/session", b"", [(b"cookie", header)])):
        if result.json()["session"] != "{}":
            _fail(f"{result.protocol}: Cookie {header[:300]!r} opened the session {result.body[:200]!r}")


# ---------------------------------------------------------------------------------------------------------
# json
# ---------------------------------------------------------------------------------------------------------

JSON_TYPES = (b"application/json", b"application/json; charset=utf-8", b"application/vnd.api+json",
              b"text/plain", b"application/json; charset=utf-16", b"", b"APPLICATION/JSON", b"application/jsonx")


def _reference_json(body: bytes) -> tuple[str, Any]:
    """``("ok", value)``, ``("invalid", None)`` or ``("deep", None)``: what the stdlib makes of the body, with
    documents nested more than ``MAX_JSON_DEPTH`` levels (the app's limit) counted as too deep."""
    try:
        utf8 = body and body[0] not in (0x00, 0xEF, 0xFE, 0xFF)
        value = json.loads(body.decode("utf-8") if utf8 else body)
    except RecursionError:
        return "deep", None
    except ValueError:
        return "invalid", None
    return ("deep", None) if _depth(value) > MAX_JSON_DEPTH else ("ok", value)


def _depth(value: Any) -> int:
    """Levels of nested arrays and objects in a parsed value (``[]`` is one), without recursion."""
    depth, level = 0, [value]
    while True:
        containers = [item for item in level if isinstance(item, list | dict)]
        if not containers:
            return depth
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]


def target_json(data: bytes) -> None:
    """JSON bodies: the stdlib's value, or 400 (invalid, nested past the limit), 415 (not JSON), 413 (too big);
    never 500. ``/json-sync`` reads with ``silent=True``: ``None`` where ``/json`` answers 400."""
    r = Reader(data)
    content_type = r.pick(JSON_TYPES)
    route = r.pick((b"/json", b"/json-sync"))
    depth = r.number(120_000) if r.flag() else 0
    body = r.field()
    body = b"[" * depth + body + b"]" * depth
    body = _cap(body, r.number(400) if r.flag() else 1, 2 * MAX_CONTENT_LENGTH)
    results = send(Req("POST", route, b"", [(b"content-type", content_type)], body))
    assert_same(results)
    mimetype = content_type.split(b";")[0].strip().lower()
    is_json = mimetype == b"application/json" or (mimetype.startswith(b"application/") and mimetype.endswith(b"+json"))
    for result in results:
        # Under ASGI the body is read before the view runs: 413 even where the view would not read it.
        if len(body) > MAX_CONTENT_LENGTH and (is_json or route == b"/json" or result.status == 413):
            if result.status != 413 and not (route == b"/json" and not is_json and result.status == 415):
                _fail(f"{result.protocol}: {len(body)}-byte JSON body answered {result.status}, expected 413")
            continue
        if route == b"/json" and not is_json:
            if result.status != 415:
                _fail(f"{result.protocol}: Content-Type {content_type!r} answered {result.status}, expected 415")
            continue
        outcome, value = _reference_json(body) if is_json else ("invalid", None)
        expected = canonical(value) if outcome == "ok" else None
        if route == b"/json-sync":
            got = result.json()["canon"] if result.status == 200 else None
            if got != (expected or "null"):
                _fail(f"{result.protocol}: {body[:200]!r} answered {result.status} {result.body[:200]!r}, "
                      f"expected {(expected or 'null')[:200]!r}")
        elif outcome == "ok":
            if result.status != 200 or result.json()["canon"] != expected:
                _fail(f"{result.protocol}: {body[:200]!r} answered {result.status} {result.body[:200]!r}, "
                      f"expected {expected[:200]!r}")
        elif result.status != 400:
            _fail(f"{result.protocol}: {outcome} JSON {body[:200]!r} answered {result.status}, expected 400")


# ---------------------------------------------------------------------------------------------------------
# range and conditional requests
# ---------------------------------------------------------------------------------------------------------

RANGE_ROUTES = (b"/file", b"/file-mem", b"/files/hello.txt", b"/files/sub/data.bin")
CONDITIONAL_HEADERS = (b"range", b"if-range", b"if-none-match", b"if-modified-since", b"if-match",
                       b"if-unmodified-since")
_validators: dict[bytes, tuple[bytes, bytes]] = {}
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _validators_of(route: bytes) -> tuple[bytes, bytes]:
    found = _validators.get(route)
    if found is None:
        result = send(Req("GET", route), protocols=("wsgi",))[0]
        found = _validators[route] = (
            (result.header("ETag") or "").encode("latin-1"),
            (result.header("Last-Modified") or "").encode("latin-1"),
        )
    return found


def _check_range_answer(result: Result, method: str) -> None:
    where = result.protocol
    if method not in ("GET", "HEAD"):
        if result.status != 405:
            _fail(f"{where}: {method} on send_file answered {result.status}, expected 405")
        return
    if result.status not in (200, 206, 304, 412, 416):
        _fail(f"{where}: send_file answered {result.status}")
    if method == "HEAD" or result.status in (304, 412):
        return
    if result.status == 200 and result.body != FILE_CONTENT:
        _fail(f"{where}: 200 with a {len(result.body)}-byte body that is not the file")
    if result.status == 416 and result.header("Content-Range") != f"bytes */{len(FILE_CONTENT)}":
        _fail(f"{where}: 416 with Content-Range {result.header('Content-Range')!r}")
    if result.status != 206:
        return
    content_type = result.header("Content-Type") or ""
    if not content_type.startswith("multipart/byteranges"):
        m = _CONTENT_RANGE_RE.fullmatch(result.header("Content-Range") or "")
        if m is None:
            _fail(f"{where}: 206 with Content-Range {result.header('Content-Range')!r}")
        start, end, size = (int(g) for g in m.groups())  # type: ignore[union-attr]
        if size != len(FILE_CONTENT) or not start <= end < size or result.body != FILE_CONTENT[start : end + 1]:
            _fail(f"{where}: 206 bytes {start}-{end}/{size} with the wrong {len(result.body)}-byte body")
        return
    boundary = content_type.partition("boundary=")[2].encode("latin-1")
    pieces = result.body.split(b"--" + boundary)
    if not boundary or pieces[0] != b"" or pieces[-1] != b"--\r\n":
        _fail(f"{where}: malformed multipart/byteranges body {result.body[:300]!r}")
    total = 0
    last_end = -1
    for piece in pieces[1:-1]:
        head, _, payload = piece.partition(b"\r\n\r\n")
        payload = payload[:-2]
        m = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        if m is None:
            _fail(f"{where}: byteranges part without Content-Range: {head!r}")
        start, end, size = (int(g) for g in m.groups())  # type: ignore[union-attr]
        if size != len(FILE_CONTENT) or payload != FILE_CONTENT[start : end + 1]:
            _fail(f"{where}: byteranges part {start}-{end} has the wrong content")
        total += end + 1 - start
        last_end = max(last_end, end)
    if total > len(FILE_CONTENT):
        _fail(f"{where}: the byteranges parts repeat bytes: {total} bytes of a {len(FILE_CONTENT)}-byte file")


def target_range(data: bytes) -> None:
    """``Range``, ``If-Range``, ``If-(None-)Match``, ``If-(Un)Modified-Since`` on send_file and
    send_from_directory: 200/206/304/412/416 only, and every byte sent is the file's byte at that position.

    ``{etag}``, ``{wetag}`` and ``{date}`` in a field are replaced by the resource's real validators."""
    r = Reader(data)
    route = r.pick(RANGE_ROUTES)
    method = r.pick(("GET", "GET", "GET", "HEAD", "POST"))
    etag, date = _validators_of(route)
    headers = []
    for name in CONDITIONAL_HEADERS:
        value = r.field()
        if not value:
            continue
        value = value.replace(b"{etag}", etag).replace(b"{wetag}", b"W/" + etag).replace(b"{date}", date)
        if name == b"range" and r.flag():
            unit, _, items = value.partition(b"=")
            value = unit + b"=" + b",".join([items] * (1 + r.number(2000)))
        headers.append((name, value))
    results = send(Req(method, route, b"", headers))
    assert_same(results)
    for result in results:
        _check_range_answer(result, method)


# ---------------------------------------------------------------------------------------------------------
# session
# ---------------------------------------------------------------------------------------------------------

_ORIGINAL = {"n": 1, "user": "alice"}


def _serializer(key: str, salt: str = "cookie-session", expired: bool = False) -> URLSafeTimedSerializer:
    signer: type[TimestampSigner] = TimestampSigner
    if expired:

        class _Old(TimestampSigner):
            def get_timestamp(self) -> int:
                return 1_000_000_000

        signer = _Old
    return URLSafeTimedSerializer(
        key, salt=salt, serializer=session_json_serializer, signer=signer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )


def _mutate(value: bytes, r: Reader) -> bytes:
    for _ in range(1 + r.byte() % 4):
        op = r.byte() % 6
        pos = r.number(len(value) + 1)
        if op == 0 and value:  # flip bits of one byte
            pos %= len(value)
            value = value[:pos] + bytes([value[pos] ^ (1 + r.byte() % 255)]) + value[pos + 1 :]
        elif op == 1:
            value = value[:pos]
        elif op == 2:
            value = value[:pos] + r.field() + value[pos:]
        elif op == 3:
            value = value[:pos] + value[pos + 1 :]
        elif op == 4:  # replace the payload, keep timestamp and signature
            _payload, _, rest = value.partition(b".")
            value = base64.urlsafe_b64encode(r.field()).rstrip(b"=") + b"." + rest
        else:  # compressed-payload marker
            value = b"." + value
    return value


def target_session(data: bytes) -> None:
    """Session cookies: tampered, truncated, signed with other keys or salts, expired, or junk give an empty
    session (never a 500, never someone else's data); the fallback key is accepted; an untouched cookie is."""
    r = Reader(data)
    mode = r.byte() % 6
    good = get_app().session_interface.get_signing_serializer(get_app())
    assert good is not None
    original = good.dumps(_ORIGINAL).encode("ascii")
    accepted: tuple[str, ...] = ("{}",)
    if mode == 0:  # junk
        value = r.field()
    elif mode == 1:  # a real cookie, tampered with
        value = _mutate(original, r)
        accepted = ("{}", canonical(_ORIGINAL)) if value != original else (canonical(_ORIGINAL),)
    elif mode == 2:  # signed with a key we never had, or our key with another salt
        payload = {"user": text(r.field())}
        key, salt = r.pick(
            ((harness.SECRET_KEY, "other-salt"), ("attacker-key", "cookie-session"), ("", "cookie-session"))
        )
        value = _serializer(key, salt).dumps(payload).encode("latin-1")
    elif mode == 3:  # signed with the fallback key: accepted
        payload = {"user": text(r.field())}
        value = _serializer(harness.OLD_SECRET_KEY).dumps(payload).encode("latin-1")
        accepted = (canonical(payload),)
    elif mode == 4:  # expired
        value = _serializer(harness.SECRET_KEY, expired=True).dumps(_ORIGINAL).encode("ascii")
    else:  # untouched
        value = original
        accepted = (canonical(_ORIGINAL),)
    quote_it = r.flag()
    cookie = b"session=" + (b'"' + value + b'"' if quote_it else value)
    if quote_it and accepted != ("{}",):
        accepted = (*accepted, "{}")
    results = send(Req("GET", b"/session", b"", [(b"cookie", cookie)]))
    assert_same(results)
    for result in results:
        got = result.json()["session"]
        if got not in accepted:
            _fail(f"{result.protocol}: session cookie {cookie[:300]!r} opened {got[:300]!r}, expected {accepted}")
    for result in send(Req("POST", b"/session/set", b"", [(b"cookie", cookie)])):
        if result.status != 200 or not result.header_list("Set-Cookie"):
            _fail(f"{result.protocol}: updating the session answered {result.status} without a cookie")


# ---------------------------------------------------------------------------------------------------------
# request: everything at once
# ---------------------------------------------------------------------------------------------------------

ROUTE_PATHS = (b"/", b"/form", b"/json", b"/data", b"/upload-stream", b"/cookies", b"/session", b"/session/set",
               b"/file", b"/file-mem", b"/files/hello.txt", b"/stream", b"/headers", b"/values", b"/args",
               b"/int/7", b"/old/3", b"/dir", b"/loose/", b"/post-only", b"/bp/1")
HEADER_NAMES = (b"content-type", b"content-length", b"cookie", b"range", b"if-none-match", b"if-modified-since",
                b"host", b"transfer-encoding", b"authorization", b"user-agent", b"accept", b"x-forwarded-for",
                b"upgrade", b"expect", b"content-encoding", b"if-range", b"if-match", b"x-custom",
                b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-prefix")


def target_request(data: bytes) -> None:
    """Any method, path, query, headers (repeated, huge, junk) and body on any route: never a 500."""
    r = Reader(data)
    method = r.pick(METHODS)
    choice = r.byte()
    path = unquote_to_bytes(r.field()) if choice >= len(ROUTE_PATHS) * 8 else ROUTE_PATHS[choice % len(ROUTE_PATHS)]
    query = r.field()
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(r.byte() % 8):
        which = r.byte()
        name = r.field() if which >= 240 else HEADER_NAMES[which % len(HEADER_NAMES)]
        headers.append((name, r.field()))
    if headers and r.flag():
        repeat = r.byte() % 4
        if repeat == 0:  # thousands of copies
            headers.extend([headers[-1]] * (1 + r.number(3000)))
        elif repeat == 1:  # one huge value
            name, value = headers[-1]
            headers[-1] = (name, _cap(value or b"a", r.number(60_000), 256 * 1024))
    body = _cap(r.field(), r.number(200) if r.flag() else 1, 2 * MAX_CONTENT_LENGTH)
    req = Req(method, path, query, headers, body, content_length=not r.flag(),
              chunk_size=chunk_size_for(body, r.pick(CHUNK_SIZES)))
    for result in send(req):
        if SECRET_MARKER in result.body:
            _fail(f"{result.protocol}: served the file outside the public folder")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "router": target_router,
    "url_build": target_url_build,
    "query": target_query,
    "urlencoded": target_urlencoded,
    "multipart": target_multipart,
    "cookies": target_cookies,
    "json": target_json,
    "range": target_range,
    "session": target_session,
    "request": target_request,
}
