"""Parsers for form bodies (``application/x-www-form-urlencoded``, ``multipart/form-data``) and query strings.

Every parser answers bad input with an :class:`~ampulla.exceptions.HTTPException` in the 4xx range whose
description says what was wrong, and never silently drops data: a body is either parsed completely or
refused. Limits are enforced while reading, so an oversized body is refused before it is buffered.

Decisions where HTTP leaves room (documented here once):

- ``max_form_memory_size`` bounds the whole body for urlencoded forms (all of it is held in memory) and each
  non-file field for multipart forms, as Flask's ``MAX_FORM_MEMORY_SIZE`` does; file parts are not counted
  (they spool to disk). The total of a multipart body is bounded by the caller's ``MAX_CONTENT_LENGTH``.
- Too many urlencoded pairs or multipart parts in a body answer 413; too many query-string parameters answer
  414 (URI Too Long), since the URL is what the client must shorten.
- Text that is not valid in its charset answers 400 rather than being replaced.
- A multipart part header line over 8 KiB, or more than 8 headers in one part, answers 400: it is a
  malformed body, not an oversized request header (431 would point the client at the wrong place).
- A multipart body of zero bytes gives an empty form (what Flask does, and what a client posting an empty
  form without a closing delimiter means). Any other incomplete body answers 400.
- Part headers that are not valid UTF-8 (old clients sending latin-1 filenames) are decoded as latin-1
  rather than refused; no byte is lost and ``secure_filename`` handles the rest.
- A part whose header block is directly followed by the next delimiter (``...\\r\\n\\r\\n--boundary``, what
  Werkzeug's test client writes for an empty field or file) is empty, as RFC 2046 and Werkzeug read it;
  browsers write one more CRLF for the same part. A part's content therefore never starts with the
  delimiter line (``--boundary`` then CRLF or ``--``).
"""

from __future__ import annotations

import codecs
import functools
import io
import re
import tempfile
from collections.abc import Generator, Iterator
from typing import IO, Any, Protocol, cast

import multipart  # type: ignore[import-untyped]

from .datastructures import FileStorage, Headers, ImmutableMultiDict, multidict_from_lists
from .exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestURITooLarge
from .http import parse_options_header, unquote, unquote_to_bytes

_new_object = object.__new__

__all__ = ["ReadableStream", "parse_form_data", "parse_urlencoded", "parse_urlencoded_body"]

#: Bytes requested from the stream per read.
CHUNK_SIZE = 256 * 1024
#: File parts of a body announced within this many bytes are kept in memory (Werkzeug's default threshold).
SPOOL_THRESHOLD = 500 * 1024
#: Longest accepted multipart part header line (name and value).
MAX_PART_HEADER_SIZE = 8 * 1024
#: Most headers accepted in one multipart part (RFC 7578 needs at most three).
MAX_PART_HEADER_COUNT = 8

# RFC 2046 allows 1-70 characters from a small set; like Werkzeug, accept any printable ASCII (real clients
# stray from the set) up to 200 characters, not ending in a space.
_BAD_HEADER_CHARS_RE = re.compile(r"[\r\n\x00]")


class ReadableStream(Protocol):
    """What the form parser reads from: ``read(size)`` returns at most ``size`` bytes, ``b""`` at the end."""

    def read(self, size: int, /) -> bytes: ...


# ---------------------------------------------------------------------------------------------------------
# Charsets
# ---------------------------------------------------------------------------------------------------------

_ASCII_PROBE = bytes(range(0x20, 0x7F))


@functools.lru_cache(maxsize=64)
def _ascii_compatible_codec(name: str) -> str | None:
    if len(name) > 64:
        return None
    try:
        info = codecs.lookup(name)
        if info.name in _REFUSED_CODECS:
            return None
        usable = _ASCII_PROBE.decode(info.name) == _ASCII_PROBE.decode("ascii")
    except (LookupError, ValueError, TypeError, UnicodeError):
        return None
    return info.name if usable else None


# Codecs that are not text charsets, or decode ASCII bytes into something else: never used for form data.
_REFUSED_CODECS = frozenset(
    ("idna", "punycode", "utf-7", "unicode-escape", "raw-unicode-escape", "unicode_escape", "raw_unicode_escape")
)


def _resolve_charset(name: str | None) -> str:
    if not name or name in ("utf-8", "UTF-8", "utf8"):
        return "utf-8"
    codec = _ascii_compatible_codec(name.strip().lower())
    if codec is None:
        raise BadRequest(
            f"The charset {name[:64]!r} is not supported for form data; send UTF-8 or another "
            "ASCII-compatible charset."
        )
    return codec


# ---------------------------------------------------------------------------------------------------------
# urlencoded (query strings and bodies)
# ---------------------------------------------------------------------------------------------------------


_dict_new = dict.__new__
_dict_update = dict.update


def _as_immutable(data: dict[str, list[str]]) -> ImmutableMultiDict[str, str]:
    # PERF: multidict_from_lists inlined, no cast() call (benchmarks/instructions.py: form, query_json).
    result: Any = _dict_new(ImmutableMultiDict)
    _dict_update(result, data)
    return result  # type: ignore[no-any-return]


def _parse_pairs(
    qs: bytes | str, charset: str, max_pairs: int | None, too_many: type[HTTPException], what: str
) -> ImmutableMultiDict[str, str]:
    if isinstance(qs, bytes):
        if qs.isascii():
            text = qs.decode("ascii")
            ascii_text = True
        else:
            # Percent-encoding is the norm, but some clients send raw UTF-8.
            try:
                text = qs.decode(charset)
            except UnicodeError:
                raise BadRequest(f"The {what} contains bytes that are not valid {charset} text.") from None
            ascii_text = False
    else:
        text = qs
        ascii_text = text.isascii()
    if "%" in text:
        if not (
            ascii_text and charset == "utf-8" and "%26" not in text and "%3D" not in text and "%3d" not in text
        ):
            return _parse_escaped_pairs(text, charset, max_pairs, too_many, what)
        # PERF: no escape here stands for a separator ("&" or "="), so the whole text can be decoded at once,
        # then split: UTF-8 never uses an ASCII byte inside a multi-byte sequence, so this gives what decoding
        # each key and value does (benchmarks/instructions.py: form).
        try:
            decoded = unquote_to_bytes(text.replace("+", " ") if "+" in text else text).decode("utf-8")
        except UnicodeError:
            return _parse_escaped_pairs(text, charset, max_pairs, too_many, what)  # it names the field
        text = decoded
    elif "+" in text:
        # '+' means space in keys and values alike; without percent escapes it can be replaced at once.
        text = text.replace("+", " ")
    pieces = text.split("&")
    if max_pairs is not None and len(pieces) > max_pairs and len(pieces) - pieces.count("") > max_pairs:
        raise too_many(f"The {what} has more than {max_pairs} fields.")
    # PERF: nothing left to decode, the common case for request.args (hot path; 2-3x faster than parse_qsl).
    data: dict[str, list[str]] = {}
    for piece in pieces:
        if piece:
            key, _, value = piece.partition("=")
            if key in data:
                data[key].append(value)
            else:
                data[key] = [value]
    result: Any = _dict_new(ImmutableMultiDict)  # PERF: _as_immutable inlined (benchmarks/instructions.py: form)
    _dict_update(result, data)
    return result  # type: ignore[no-any-return]


def _parse_escaped_pairs(
    text: str, charset: str, max_pairs: int | None, too_many: type[HTTPException], what: str
) -> ImmutableMultiDict[str, str]:
    """:func:`_parse_pairs` for text with percent escapes, decoding each key and value on its own."""
    pieces = text.split("&")
    if max_pairs is not None and len(pieces) > max_pairs and len(pieces) - pieces.count("") > max_pairs:
        raise too_many(f"The {what} has more than {max_pairs} fields.")
    data: dict[str, list[str]] = {}
    # PERF: for ASCII text, unquote_to_bytes + decode equals unquote() without its regex split.
    unquote_ascii = text.isascii()
    for piece in pieces:
        if not piece:
            continue
        key, _, value = piece.partition("=")
        try:
            if "+" in key:
                key = key.replace("+", " ")
            if "%" in key:
                key = unquote_to_bytes(key).decode(charset) if unquote_ascii else unquote(key, charset)
            if "+" in value:
                value = value.replace("+", " ")
            if "%" in value:
                value = unquote_to_bytes(value).decode(charset) if unquote_ascii else unquote(value, charset)
        except UnicodeError:
            raise BadRequest(
                f"The {what} field {piece[:100]!r} is not valid {charset} after percent-decoding."
            ) from None
        if key in data:
            data[key].append(value)
        else:
            data[key] = [value]
    return _as_immutable(data)


def parse_urlencoded(qs: bytes | str, *, max_pairs: int | None) -> ImmutableMultiDict[str, str]:
    """Parse a query string (``request.args``) or any ``application/x-www-form-urlencoded`` text.

    Pairs are separated by ``&`` only (not ``;``). ``+`` is a space; percent escapes are decoded as UTF-8,
    and malformed ones such as ``%zz`` are kept literally, as browsers do. Blank values (``a=`` or ``a``)
    are kept as ``""``; empty pieces (``&&``) are skipped. Repeated keys keep every value in order.

    Args:
        qs: The raw query string as bytes (decoded as UTF-8), or text.
        max_pairs: The most pairs accepted; ``None`` for no limit.

    Returns:
        The parsed pairs.

    Raises:
        BadRequest: The text is not valid UTF-8 after percent-decoding (400).
        RequestURITooLarge: There are more than ``max_pairs`` pairs (414).
    """
    if not qs:
        return ImmutableMultiDict()
    return _parse_pairs(qs, "utf-8", max_pairs, RequestURITooLarge, "query string")


def parse_urlencoded_body(
    body: bytes, charset: str | None, *, max_pairs: int | None
) -> ImmutableMultiDict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body already read (as :func:`parse_form_data` does).

    Args:
        body: The whole body.
        charset: The ``charset`` parameter of the Content-Type, ``None`` (UTF-8) when absent.
        max_pairs: The most pairs accepted; ``None`` for no limit.

    Returns:
        The form fields.

    Raises:
        BadRequest: Text not valid in its charset, or an unsupported charset (400).
        RequestEntityTooLarge: More than ``max_pairs`` pairs (413).
    """
    if not body:
        return ImmutableMultiDict()
    return _parse_pairs(
        body, "utf-8" if charset is None else _resolve_charset(charset), max_pairs, RequestEntityTooLarge, "form"
    )


def _read_limited(stream: ReadableStream, content_length: int | None, limit: int | None) -> bytes:
    if content_length is not None and limit is not None and content_length > limit:
        raise RequestEntityTooLarge(f"The form data is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    remaining = content_length
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
        if not chunk:
            break
        total += len(chunk)
        if limit is not None and total > limit:
            raise RequestEntityTooLarge(f"The form data is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    if remaining is not None and remaining > 0:
        raise BadRequest(
            f"The request body ended after {total} bytes, before the {content_length} announced by "
            "Content-Length."
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# ---------------------------------------------------------------------------------------------------------
# multipart/form-data
# ---------------------------------------------------------------------------------------------------------


def _header_text(value: str) -> str:
    # The parser decodes part headers as latin-1, which never fails; recover UTF-8 where it is valid.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _close_all(files: dict[str, list[FileStorage]], current: IO[bytes] | None) -> None:
    if current is not None:
        current.close()
    for storages in files.values():
        for storage in storages:
            storage.close()


def _new_file(threshold: int) -> IO[bytes]:
    """The temporary file a file part is written to as it arrives: kept in memory up to ``threshold`` bytes,
    then on disk.

    The caller owns the file: it goes into a FileStorage or is closed by _close_all on error.
    """
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(max_size=max(threshold, 0))  # noqa: SIM115
    if threshold <= 0:
        spool.rollover()  # max_size=0 would mean "never roll over"
    return cast(IO[bytes], spool)


def _memory_file(data: bytes) -> IO[bytes]:
    """The in-memory file of a file part whose whole content is ``data``.

    ``io.BytesIO`` shares ``data`` until something writes to the file, and a whole ``read()`` from the start
    returns ``data`` itself: the content is not copied.
    """
    return io.BytesIO(data)


_Segment = multipart.MultipartSegment
# States of _PartEvents.
_NORMAL = 0  # inside a part's headers or content
_CHECK = 1  # a part's headers just ended: its first content bytes may be a delimiter line
_NESTED = 2  # the library reads the current part's delimiter and headers as content: a second parser reads them
_DONE = 3  # the closing delimiter was read: the rest is the epilogue
_DASH = ord("-")


class _PartEvents:
    """The events of :class:`multipart.PushMultipartParser`, also for parts that have no content at all.

    RFC 2046 makes a part's content optional (``body-part := MIME-part-headers [CRLF *OCTET]``): the CRLF of the
    blank line that ends a part's headers may be the one that starts the next delimiter, as in
    ``...Content-Type: text/plain\\r\\n\\r\\n--boundary``. The library always reads content after the blank line,
    so it takes that delimiter, and the next part's headers, for content. This wrapper looks at the first bytes
    of each part's content, and at nothing else (the cost does not grow with the size of the body): when they are
    a delimiter line (``--boundary`` then CRLF, or ``--`` for the closing one), the part ends there, empty. What
    the library then reports as content (the next part's headers and content, up to the delimiter it finds) is
    read by a second parser. Events are those of :meth:`multipart.PushMultipartParser.parse`: per part a
    ``MultipartSegment``, its content as non-empty ``bytes``, then ``None``.
    """

    __slots__ = ("_boundary", "_head", "_inner", "_inner_started", "_parser", "_state")

    def __init__(self, boundary: bytes) -> None:
        self._boundary = boundary
        self._parser = self._new_parser()
        self._head = b""  # the first bytes of the current part's content, while too few to decide
        self._inner: Any = None  # in _NESTED: the parser of the part the library takes for content
        self._inner_started = False  # whether _inner has read that part's headers
        self._state = _NORMAL

    def _new_parser(self) -> Any:
        return multipart.PushMultipartParser(
            self._boundary,
            max_header_size=MAX_PART_HEADER_SIZE,
            max_header_count=MAX_PART_HEADER_COUNT,
            header_charset="latin-1",
        )

    def parse(self, chunk: bytes) -> Iterator[Any]:
        """Parse the next chunk of the body (``b""`` at its end); yield the events it completes.

        Raises:
            multipart.MultipartError: The body is malformed or over a part header limit.
        """
        state = self._state
        if state == _DONE:
            return
        for event in self._parser.parse(chunk):
            if not state:  # _NORMAL
                if isinstance(event, _Segment):
                    state = _CHECK
                yield event
            elif state == _CHECK and not self._head and (event is None or event[0] != _DASH):
                state = _NORMAL  # PERF: the usual case, decided on one byte
                yield event
            else:
                state = yield from self._unusual(state, event)
                if state == _DONE:
                    break
        self._state = state

    def _unusual(self, state: int, event: Any) -> Generator[Any, None, int]:
        """Handle ``event`` in ``state`` (_CHECK with content starting with a dash, or _NESTED); yield the events
        to report and return the new state."""
        if state == _NESTED:
            if event is not None:
                yield from self._feed_inner(event)
                return _NESTED
            # The library found the delimiter after the part _inner reads: that part ends there.
            inner, self._inner = self._inner, None
            if self._inner_started:
                yield from inner.parse(b"\r\n--" + self._boundary + b"--")
            else:
                # The CRLF before that delimiter was the blank line ending the part's headers: it is empty too.
                events = list(inner.parse(b"\r\n"))
                if not events or not isinstance(events[-1], _Segment):
                    raise multipart.ParserError("Segment headers not followed by an empty line")
                yield events[-1]
                yield None
            return _NORMAL
        # _CHECK
        head = self._head
        if event is None:  # the part ended before its content could be told from a delimiter
            self._head = b""
            if head:
                yield head
            yield None
            return _NORMAL
        head = head + event if head else event
        dash_boundary = b"--" + self._boundary
        size = len(dash_boundary) + 2
        if len(head) < size and (
            (dash_boundary + b"\r\n").startswith(head) or (dash_boundary + b"--").startswith(head)
        ):
            self._head = head  # too few bytes to tell yet
            return _CHECK
        self._head = b""
        if not head.startswith(dash_boundary) or head[size - 2 : size] not in (b"\r\n", b"--"):
            yield head  # content that merely starts with a dash
            return _NORMAL
        yield None  # the headers ended at a delimiter: the part is empty
        if head[size - 2 : size] == b"--":
            return _DONE  # the closing delimiter
        self._inner = self._new_parser()
        self._inner_started = False
        yield from self._feed_inner(head)
        return _NESTED

    def _feed_inner(self, data: bytes) -> Iterator[Any]:
        for event in self._inner.parse(data):
            if isinstance(event, _Segment):
                self._inner_started = True
            yield event


def _parse_multipart(
    stream: ReadableStream,
    options: dict[str, str],
    content_length: int | None,
    max_form_memory_size: int | None,
    max_form_parts: int | None,
    spool_threshold: int,
) -> tuple[ImmutableMultiDict[str, str], ImmutableMultiDict[str, FileStorage]]:
    boundary = options.get("boundary", "")
    if not boundary:
        raise BadRequest("The multipart/form-data Content-Type has no boundary parameter.")
    # RFC 2046: 1 to 70 characters not ending in a space (up to 200 accepted, printable ASCII; PERF: no regex).
    if len(boundary) > 200 or not (boundary.isascii() and boundary.isprintable()) or boundary[-1] == " ":
        raise BadRequest(
            "The multipart/form-data boundary is invalid: it must be 1 to 200 printable ASCII characters."
        )
    try:
        parser = _PartEvents(boundary.encode("ascii"))
    except multipart.MultipartError as exc:
        raise BadRequest(f"The multipart/form-data boundary is invalid: {exc}") from None

    # Field values stay bytes until the end, when the `_charset_` field (if any) is known.
    # As Werkzeug: when the whole body is announced within the threshold, no file part can grow past it, so
    # file parts are gathered in memory like fields (content is never written to a file and read back).
    in_memory = content_length is not None and content_length <= spool_threshold
    fields: list[tuple[str, bytes, str | None]] = []
    files: dict[str, list[FileStorage]] = {}
    parts = 0
    name = ""
    filename: str | None = None
    part_headers: list[tuple[str, str]] = []
    part_charset: str | None = None
    is_file = False  # whether the current part is a file part
    spool: IO[bytes] | None = None  # the current file part's temporary file, when not in memory
    chunks: list[bytes] = []  # the current part's content, when not spooled
    field_size = 0
    received = 0
    remaining = content_length
    read = stream.read
    try:
        while True:
            if remaining is not None and remaining <= 0:
                chunk = b""
            else:
                chunk = read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk and received == 0:
                return ImmutableMultiDict(), ImmutableMultiDict()
            received += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            # An empty chunk tells the parser the input ended; it raises if the body is incomplete.
            for event in parser.parse(chunk):
                if event is None:  # end of the current part
                    if is_file:
                        if spool is None:
                            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                            chunks = []
                            size = len(data)
                            file = _memory_file(data)
                        else:
                            file, spool = spool, None
                            size = file.tell()
                            file.seek(0)
                        content_type = None
                        general = False
                        for key, text in part_headers:  # names as the parser gives them: title case
                            if key == "Content-Type":
                                general = general or content_type is not None or not text.isascii()
                                if content_type is None:
                                    content_type = _header_text(text)
                            elif key == "Content-Length":
                                general = True
                        # PERF: the parser's header lines as they are (names checked by the parser, values by the
                        # search above), without Headers' per-line checks (benchmarks/instructions.py: upload).
                        headers = _new_object(Headers)
                        headers._list = list(part_headers)
                        if general:
                            storage = FileStorage(file, filename, name, content_type, size, headers)
                        else:
                            # What FileStorage's Content-Type and Content-Length settings come to here: the one
                            # ASCII Content-Type line stays as it is, the size is added.
                            headers._list.append(("Content-Length", str(size)))
                            storage = FileStorage(file, filename, name, headers=headers)
                        files.setdefault(name, []).append(storage)
                    else:
                        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                        fields.append((name, raw, part_charset))
                        chunks = []
                        field_size = 0
                elif isinstance(event, _Segment):  # a new part's headers
                    parts += 1
                    if max_form_parts is not None and parts > max_form_parts:
                        raise RequestEntityTooLarge(
                            f"The form has more than {max_form_parts} parts (fields and files)."
                        )
                    # Kept as the parser decoded them (latin-1, one character per byte), the form every
                    # Headers object in the framework holds.
                    part_headers = event.headerlist
                    for key, text in part_headers:
                        # PERF: printable text has no CR, LF or NUL; the regex looks only at the rest.
                        if not text.isprintable() and _BAD_HEADER_CHARS_RE.search(text):
                            raise BadRequest(
                                f"The multipart part header {key!r} contains a CR, LF or NUL character."
                            )
                    name = _header_text(event.name or "")
                    if not name:
                        raise BadRequest(
                            f"Multipart part number {parts} has no name in its Content-Disposition header."
                        )
                    filename = event.filename
                    if filename is not None:
                        filename = _header_text(filename)
                    else:
                        # RFC 7578 forbids `filename*=`, but some clients send only that.
                        disposition = _header_text(event.header("Content-Disposition", ""))
                        if "filename*" in disposition.lower():
                            filename = parse_options_header(disposition)[1].get("filename")
                    is_file = filename is not None
                    if not is_file:
                        part_charset = event.charset
                    elif not in_memory:
                        spool = _new_file(spool_threshold)
                else:  # a chunk of the current part's content
                    if spool is not None:
                        spool.write(event)
                    elif is_file:
                        chunks.append(event)
                    else:
                        field_size += len(event)
                        if max_form_memory_size is not None and field_size > max_form_memory_size:
                            raise RequestEntityTooLarge(
                                f"The form field {name[:100]!r} is larger than the limit of "
                                f"{max_form_memory_size} bytes."
                            )
                        chunks.append(event)
            if not chunk:
                break
    except multipart.MultipartError as exc:
        _close_all(files, spool)
        raise BadRequest(f"The multipart/form-data body is malformed: {exc}.") from None
    except BaseException:
        _close_all(files, spool)
        raise

    try:
        form = _decode_fields(fields, options.get("charset"))
    except BaseException:
        _close_all(files, None)
        raise
    return form, multidict_from_lists(ImmutableMultiDict, files)


def _decode_fields(
    fields: list[tuple[str, bytes, str | None]], body_charset: str | None
) -> ImmutableMultiDict[str, str]:
    default = body_charset
    for key, raw, _charset in fields:
        if key == "_charset_":
            # HTML forms fill a hidden `_charset_` field with the charset the browser used.
            try:
                default = raw.decode("ascii").strip() or default
            except UnicodeError:
                raise BadRequest("The _charset_ form field is not an ASCII charset name.") from None
            break
    default_codec = _resolve_charset(default)
    data: dict[str, list[str]] = {}
    for key, raw, part_charset in fields:
        codec = default_codec if part_charset is None else _resolve_charset(part_charset)
        try:
            value = raw.decode(codec)
        except UnicodeError:
            raise BadRequest(f"The form field {key[:100]!r} is not valid {codec} text.") from None
        if key in data:
            data[key].append(value)
        else:
            data[key] = [value]
    return _as_immutable(data)


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------


def parse_form_data(
    stream: ReadableStream,
    mimetype: str,
    options: dict[str, str],
    content_length: int | None,
    *,
    max_form_memory_size: int | None = 500_000,
    max_form_parts: int | None = 1_000,
    spool_threshold: int = SPOOL_THRESHOLD,
) -> tuple[ImmutableMultiDict[str, str], ImmutableMultiDict[str, FileStorage]]:
    """Parse a request body into form fields and uploaded files.

    ``application/x-www-form-urlencoded`` bodies follow :func:`parse_urlencoded` (a ``charset`` parameter is
    honoured). ``multipart/form-data`` bodies are streamed through :class:`multipart.PushMultipartParser`:
    a part whose ``Content-Disposition`` has a ``filename`` (even ``""``) becomes a
    :class:`~ampulla.datastructures.FileStorage` whose ``stream`` is rewound to the start: an ``io.BytesIO``
    when ``content_length`` is within ``spool_threshold`` (as Werkzeug), else a ``SpooledTemporaryFile`` (kept
    in memory up to ``spool_threshold`` bytes, then on disk); other parts become text,
    decoded with the part's ``charset``, else the form's ``_charset_`` field, else the body's ``charset``
    parameter, else UTF-8. Other mimetypes give two empty dicts and leave the stream untouched. On any error
    every file opened so far is closed (its temporary file deleted) before the exception propagates.

    Args:
        stream: The body, already limited by the caller; an exception from its ``read`` (such as
            :class:`~ampulla.exceptions.RequestEntityTooLarge` past ``MAX_CONTENT_LENGTH``) propagates.
        mimetype: The lower-cased mimetype, e.g. ``"multipart/form-data"``.
        options: The Content-Type parameters, e.g. ``{"boundary": "...", "charset": "utf-8"}``.
        content_length: The announced body length; no more than this is read. ``None`` reads to the end.
        max_form_memory_size: Most bytes of a urlencoded body, or of one non-file multipart field; ``None``
            for no limit.
        max_form_parts: Most urlencoded pairs or multipart parts (fields plus files); ``None`` for no limit.
        spool_threshold: File parts larger than this many bytes are written to a temporary file.

    Returns:
        ``(form, files)``.

    Raises:
        BadRequest: Malformed body (missing or invalid boundary, truncated or garbage multipart, a part
            without a name, bad part headers, text invalid in its charset, unsupported charset, or a
            urlencoded body shorter than ``content_length``) (400).
        RequestEntityTooLarge: Over ``max_form_memory_size`` or ``max_form_parts`` (413).
    """
    if mimetype == "application/x-www-form-urlencoded":
        body = _read_limited(stream, content_length, max_form_memory_size)
        form = parse_urlencoded_body(body, options.get("charset"), max_pairs=max_form_parts)
        return form, ImmutableMultiDict()
    if mimetype == "multipart/form-data":
        return _parse_multipart(
            stream, options, content_length, max_form_memory_size, max_form_parts, spool_threshold
        )
    return ImmutableMultiDict(), ImmutableMultiDict()
