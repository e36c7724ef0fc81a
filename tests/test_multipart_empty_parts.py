"""Multipart parts without content: a header block directly followed by the next delimiter.

RFC 2046 makes a part's content optional (``body-part := MIME-part-headers [CRLF *OCTET]``), so the CRLF of
the blank line that ends a part's headers may be the one that starts the next delimiter. Werkzeug's test
client (and so every Flask test suite that posts an empty file or field) writes such parts; browsers write
one CRLF more. Both must parse to an empty field or an empty file, the same as Werkzeug's own parser.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import werkzeug.datastructures
import werkzeug.formparser
import werkzeug.test
from hypothesis import given, settings
from hypothesis import strategies as st

from ampulla import Ampulla, request
from ampulla.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from ampulla.formparser import parse_form_data

BOUNDARY = "----EmptyPartsBoundary0123"
B = BOUNDARY.encode()
TEXT_FIELD = b'Content-Disposition: form-data; name="%s"\r\n'
FILE_PART = b'Content-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: text/plain\r\n'

#: (name, value, filename or None, content type or None): a field has no filename, a file has one.
Part = tuple[str, bytes, str | None, str | None]


class ChunkedStream:
    """Gives at most ``step`` bytes a read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, size: int, /) -> bytes:
        chunk = self._data[self._pos : self._pos + min(size, self._step)]
        self._pos += len(chunk)
        return chunk


def parse(
    body: bytes, step: int = 64 * 1024, content_length: int | None = -1, **kwargs: Any
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str | None, bytes, str | None]]]]:
    length = len(body) if content_length == -1 else content_length
    form, files = parse_form_data(
        ChunkedStream(body, step), "multipart/form-data", {"boundary": BOUNDARY}, length, **kwargs
    )
    return form.to_dict(flat=False), _file_dict(files)


def _file_dict(files: Any) -> dict[str, list[tuple[str | None, bytes, str | None]]]:
    out: dict[str, list[tuple[str | None, bytes, str | None]]] = {}
    for name, storage in files.items(multi=True):
        out.setdefault(name, []).append((storage.filename, storage.read(), storage.content_type))
        storage.close()
    return out


def _field(name: str) -> bytes:
    return TEXT_FIELD % name.encode()


def _file(name: str, filename: str) -> bytes:
    return FILE_PART % (name.encode(), filename.encode())


OPEN = b"--" + B + b"\r\n"
NEXT = b"\r\n--" + B + b"\r\n"
CLOSE = b"\r\n--" + B + b"--\r\n"


# ---------------------------------------------------------------------------------------------------------
# bodies written by hand
# ---------------------------------------------------------------------------------------------------------

# Each body is cut into reads of every size from 1 byte up, so that every split of the delimiter, of the
# blank line and of the next part's headers is met.
STEPS = [1, 2, 3, 5, 7, 11, 64, 64 * 1024]


@pytest.mark.parametrize("step", STEPS)
def test_empty_last_field_and_file(step: int) -> None:
    # `headers CRLF` + `CRLF --boundary--`: no content between the blank line and the delimiter.
    body = OPEN + _field("e") + CLOSE
    assert parse(body, step) == ({"e": [""]}, {})
    body = OPEN + _file("f", "empty.txt") + CLOSE
    assert parse(body, step) == ({}, {"f": [("empty.txt", b"", "text/plain")]})


@pytest.mark.parametrize("step", STEPS)
def test_empty_part_before_another_does_not_swallow_it(step: int) -> None:
    body = OPEN + _field("e") + NEXT + _field("g") + b"\r\nvalue" + CLOSE
    assert parse(body, step) == ({"e": [""], "g": ["value"]}, {})


@pytest.mark.parametrize("step", STEPS)
def test_consecutive_empty_parts(step: int) -> None:
    body = OPEN + _field("a") + NEXT + _file("f", "x.txt") + NEXT + _field("b") + NEXT + _field("c") + CLOSE
    assert parse(body, step) == (
        {"a": [""], "b": [""], "c": [""]},
        {"f": [("x.txt", b"", "text/plain")]},
    )


@pytest.mark.parametrize("step", STEPS)
def test_empty_parts_between_parts_with_content(step: int) -> None:
    body = (
        OPEN + _field("a") + b"\r\n1" + NEXT + _field("b") + NEXT + _file("f", "f.bin")
        + b"\r\n\x00\xff\r\n" + NEXT + _field("c") + NEXT + _field("d") + b"\r\n4" + CLOSE
    )  # fmt: skip
    assert parse(body, step) == (
        {"a": ["1"], "b": [""], "c": [""], "d": ["4"]},
        {"f": [("f.bin", b"\x00\xff\r\n", "text/plain")]},
    )


@pytest.mark.parametrize("step", STEPS)
def test_empty_part_followed_by_an_empty_browser_part(step: int) -> None:
    # A browser's empty part keeps its CRLF before the delimiter: `headers CRLF CRLF CRLF --boundary`.
    body = OPEN + _field("a") + NEXT + _field("b") + b"\r\n" + NEXT + _field("c") + b"\r\n" + CLOSE
    assert parse(body, step) == ({"a": [""], "b": [""], "c": [""]}, {})


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(
    "content",
    [b"x\r\n", b"\r\n", b"\r\n\r\n", b"--", b"--" + B[:5], b"--" + B + b"X", b"--" + B + b" ", b"\r\n--" + B[:-1]],
)
def test_content_is_kept_byte_for_byte(step: int, content: bytes) -> None:
    # Only a delimiter line right after the blank line ends a part early; a CRLF at the end of content, or
    # content that merely starts like the delimiter, stays content.
    body = OPEN + _file("f", "f.txt") + b"\r\n" + content + NEXT + _field("e") + CLOSE
    assert parse(body, step) == ({"e": [""]}, {"f": [("f.txt", content, "text/plain")]})


@pytest.mark.parametrize("step", STEPS)
def test_closing_delimiter_without_final_crlf(step: int) -> None:
    body = OPEN + _field("e") + b"\r\n--" + B + b"--"
    assert parse(body, step) == ({"e": [""]}, {})


@pytest.mark.parametrize("step", [1, 3, 64 * 1024])
def test_epilogue_after_an_empty_last_part_is_ignored(step: int) -> None:
    body = OPEN + _field("e") + CLOSE + b"epilogue\r\n--" + B + b"\r\n\r\n--" + B + b"\r\n"
    assert parse(body, step) == ({"e": [""]}, {})


@pytest.mark.parametrize("step", [1, 5, 64 * 1024])
@pytest.mark.parametrize(
    "body",
    [
        OPEN + _field("e") + b"\r\n--" + B,  # no closing `--`
        OPEN + _field("e") + b"\r\n--" + B + b"-",
        OPEN + _field("e") + NEXT + _field("g"),  # the next part's headers never end
        OPEN + _field("e") + NEXT + _field("g") + b"\r\n",
        OPEN + _field("e") + NEXT + _field("g") + b"\r\nvalue",
    ],
)
def test_truncated_bodies_after_an_empty_part_are_refused(step: int, body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(body, step)


@pytest.mark.parametrize("step", [1, 5, 64 * 1024])
def test_a_header_block_without_blank_line_is_refused(step: int) -> None:
    # The part after an empty one has header lines, then the delimiter with no blank line at all.
    body = OPEN + _field("e") + NEXT + _field("g") + b"X-Other: 1" + NEXT + _field("h") + CLOSE
    with pytest.raises(BadRequest):
        parse(body, step)


@pytest.mark.parametrize("step", [1, 64 * 1024])
def test_a_nameless_part_after_an_empty_part_is_refused(step: int) -> None:
    body = OPEN + _field("e") + NEXT + b"Content-Type: text/plain\r\n" + CLOSE
    with pytest.raises(BadRequest, match="Content-Disposition"):
        parse(body, step)


@pytest.mark.parametrize("step", [1, 7, 64 * 1024])
def test_limits_hold_for_parts_read_after_an_empty_part(step: int) -> None:
    # Part count.
    body = OPEN + _field("a") + NEXT + _field("b") + NEXT + _field("c") + CLOSE
    with pytest.raises(RequestEntityTooLarge):
        parse(body, step, max_form_parts=2)
    # Field size, for a field whose headers the nested parser read.
    body = OPEN + _field("a") + NEXT + _field("b") + b"\r\n" + b"v" * 101 + CLOSE
    with pytest.raises(RequestEntityTooLarge):
        parse(body, step, max_form_memory_size=100)
    assert parse(body, step, max_form_memory_size=101)[0] == {"a": [""], "b": ["v" * 101]}
    # Header line length and header count.
    long_header = b"X-Long: " + b"h" * 9000 + b"\r\n"
    body = OPEN + _field("a") + NEXT + _field("b") + long_header + b"\r\nv" + CLOSE
    with pytest.raises(BadRequest):
        parse(body, step)
    many_headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(9))
    body = OPEN + _field("a") + NEXT + _field("b") + many_headers + b"\r\nv" + CLOSE
    with pytest.raises(BadRequest):
        parse(body, step)


def test_large_file_after_an_empty_part_streams_to_disk() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, CR and LF included
    body = OPEN + _field("e") + NEXT + _file("f", "big.bin") + b"\r\n" + data + CLOSE
    form, files = parse_form_data(
        ChunkedStream(body, 4093), "multipart/form-data", {"boundary": BOUNDARY}, len(body), spool_threshold=1024
    )
    assert form.to_dict(flat=False) == {"e": [""]}
    storage = files["f"]
    assert storage.stream._rolled  # type: ignore[attr-defined]
    assert storage.read() == data
    storage.close()


# ---------------------------------------------------------------------------------------------------------
# property test: Werkzeug's encoder and a browser's, against Werkzeug's parser
# ---------------------------------------------------------------------------------------------------------


def encode_browser(parts: list[Part]) -> bytes:
    """Encode as browsers do: a CRLF after the blank line, even before an empty part's delimiter."""
    out = io.BytesIO()
    for name, value, filename, content_type in parts:
        out.write(OPEN if not out.tell() else NEXT)
        if filename is None:
            out.write(_field(name))
        else:
            disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            out.write(disposition.encode())
            if content_type is not None:
                out.write(b"Content-Type: %s\r\n" % content_type.encode())
        out.write(b"\r\n" + value)
    out.write(CLOSE if out.tell() else b"--" + B + b"--\r\n")
    return out.getvalue()


def encode_werkzeug(parts: list[Part]) -> bytes:
    """Encode with Werkzeug's test client encoder (``stream_encode_multipart``)."""
    data = werkzeug.datastructures.MultiDict()
    for name, value, filename, content_type in parts:
        if filename is None:
            data.add(name, value.decode())
        else:
            data.add(
                name,
                werkzeug.datastructures.FileStorage(io.BytesIO(value), filename, content_type=content_type),
            )
    stream, length, boundary = werkzeug.test.stream_encode_multipart(data, use_tempfile=False, boundary=BOUNDARY)
    assert boundary == BOUNDARY
    body = stream.read()
    assert len(body) == length
    return body


def parse_with_werkzeug(body: bytes) -> tuple[Any, Any]:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    _, form, files = werkzeug.formparser.parse_form_data(environ)
    return form.to_dict(flat=False), _file_dict(files)


names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
# Content that sits next to the delimiter in every way: empty, CRLF at either end, dashes, a prefix of the
# delimiter, binary.
special_contents = st.sampled_from(
    [b"", b"\r\n", b"\r\n\r\n", b"x\r\n", b"\r\nx", b"--", b"--x--", b"\r\n--", b"--" + B[:7], b"\r\n--" + B[:7], b"\r"]
)
binary_contents = st.binary(max_size=300)
text_contents = st.text(st.sampled_from("ab\r\n- é"), max_size=40).map(str.encode)
contents = st.one_of(
    special_contents,
    binary_contents,
    text_contents,
    st.tuples(special_contents, st.one_of(binary_contents, text_contents), special_contents).map(b"".join),
)
text_values = st.one_of(special_contents, text_contents, st.tuples(text_contents, special_contents).map(b"".join))
field_parts = st.tuples(names, text_values, st.none(), st.none())
file_parts = st.tuples(
    names, contents, st.from_regex(r"[a-z]{1,6}\.(txt|bin)", fullmatch=True),
    st.sampled_from(["text/plain", "application/octet-stream"]),
)  # fmt: skip


def expected(parts: list[Part]) -> tuple[dict[str, list[str]], dict[str, list[tuple[str | None, bytes, str | None]]]]:
    form: dict[str, list[str]] = {}
    files: dict[str, list[tuple[str | None, bytes, str | None]]] = {}
    for name, value, filename, content_type in parts:
        if filename is None:
            form.setdefault(name, []).append(value.decode())
        else:
            files.setdefault(name, []).append((filename, value, content_type))
    return form, files


@settings(max_examples=300)
@given(
    st.lists(st.one_of(field_parts, file_parts), max_size=8),
    st.sampled_from([encode_werkzeug, encode_browser]),
    st.integers(1, 400),
    st.integers(0, 600),
)
def test_encoded_parts_parse_back_exactly_and_as_werkzeug_parses_them(
    parts: list[Part], encode: Any, step: int, spool_threshold: int
) -> None:
    body = encode(parts)
    want = expected(parts)
    got = parse(body, step, spool_threshold=spool_threshold)
    assert got == want
    assert parse_with_werkzeug(body) == want
    # Without Content-Length (chunked transfer) too.
    assert parse(body, step, content_length=None) == want


@settings(max_examples=200)
@given(st.lists(st.one_of(field_parts, file_parts), min_size=1, max_size=6), st.integers(1, 64), st.data())
def test_truncated_werkzeug_bodies_are_refused(parts: list[Part], step: int, data: st.DataObject) -> None:
    body = encode_werkzeug(parts)
    # Cut before the closing delimiter's last dash: the body is incomplete whatever its parts.
    cut = data.draw(st.integers(1, len(body) - len(b"-\r\n")), label="cut")
    with pytest.raises(HTTPException) as info:
        parse(body[:cut], step)
    assert info.value.code == 400


# ---------------------------------------------------------------------------------------------------------
# end to end: the test client, which encodes as Werkzeug does, over WSGI and ASGI
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def upload_app(app: Ampulla, as_view: Any) -> Ampulla:
    def upload() -> dict[str, Any]:
        return {
            "form": request.form.to_dict(flat=False),
            "files": {
                name: [[f.filename, f.content_type, f.read().decode("latin-1")] for f in storages]
                for name, storages in request.files.lists()
            },
        }

    app.add_url_rule("/upload", view_func=as_view(upload), methods=["POST"])
    return app


def test_client_uploads_an_empty_file_and_an_empty_field(upload_app: Ampulla, protocol: str) -> None:
    client = upload_app.test_client(protocol=protocol)
    response = client.post(
        "/upload",
        data={
            "empty_file": (io.BytesIO(b""), "empty.txt"),
            "empty": "",
            "after": "value",
            "file": (io.BytesIO(b"line\r\n"), "lines.txt"),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "form": {"empty": [""], "after": ["value"]},
        "files": {
            "empty_file": [["empty.txt", "text/plain", ""]],
            "file": [["lines.txt", "text/plain", "line\r\n"]],
        },
    }


def test_client_uploads_only_an_empty_file(upload_app: Ampulla, protocol: str) -> None:
    client = upload_app.test_client(protocol=protocol)
    response = client.post("/upload", data={"f": (io.BytesIO(b""), "empty.txt")})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"form": {}, "files": {"f": [["empty.txt", "text/plain", ""]]}}
