"""Tests for ampulla.formparser: urlencoded bodies, query strings and multipart/form-data."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ampulla import Ampulla, formparser, request
from ampulla.datastructures import FileStorage, Headers, ImmutableMultiDict
from ampulla.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestURITooLarge
from ampulla.formparser import parse_form_data, parse_urlencoded

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "----AmpullaBoundary7MA4YWxkTrZu0gW"


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def _quote_disposition(value: str) -> str:
    # What browsers do (WHATWG HTML): percent-encode CR, LF and '"' only.
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def encode_multipart(
    parts: list[tuple[str, str | bytes, str | None, str | None]],
    boundary: str = BOUNDARY,
    epilogue: bytes = b"\r\n",
) -> bytes:
    """Encode parts as a browser would. Each part is (name, value, filename or None, content type or None)."""
    out = io.BytesIO()
    for name, value, filename, content_type in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{_quote_disposition(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote_disposition(filename)}"'
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if content_type is not None:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n")
        out.write(value.encode() if isinstance(value, str) else value)
        out.write(b"\r\n")
    out.write(f"--{boundary}--".encode() + epilogue)
    return out.getvalue()


def parse_multipart(
    body: bytes, boundary: str = BOUNDARY, content_length: int | None = -1, **kwargs: Any
) -> tuple[ImmutableMultiDict[str], ImmutableMultiDict[FileStorage]]:
    length = len(body) if content_length == -1 else content_length
    return parse_form_data(io.BytesIO(body), MULTIPART, {"boundary": boundary}, length, **kwargs)


def parse_body(
    body: bytes, options: dict[str, str] | None = None, content_length: int | None = -1, **kwargs: Any
) -> ImmutableMultiDict[str]:
    length = len(body) if content_length == -1 else content_length
    form, files = parse_form_data(io.BytesIO(body), URLENCODED, options or {}, length, **kwargs)
    assert not files
    return form


class ChunkedStream:
    """A stream that returns at most `step` bytes per read, like a socket; counts what was read."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self._data = data
        self._pos = 0
        self.step = step
        self.calls = 0

    @property
    def consumed(self) -> int:
        return self._pos

    def read(self, size: int, /) -> bytes:
        self.calls += 1
        n = min(size, self.step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


class ExplodingStream:
    """Returns `data` in small chunks, then raises `exc` from read() (a limited stream past its limit)."""

    def __init__(self, data: bytes, exc: BaseException, step: int = 1024) -> None:
        self._inner = ChunkedStream(data, step)
        self._exc = exc

    def read(self, size: int, /) -> bytes:
        chunk = self._inner.read(size)
        if not chunk:
            raise self._exc
        return chunk


class UnreadableStream:
    def read(self, size: int, /) -> bytes:
        raise AssertionError("the body must not be read")


@pytest.fixture(autouse=True)
def spools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[IO[bytes]]]:
    """Every file the parser creates for a file part (in memory or spooled), to check none is left open after an
    error.

    Files that tests got back are closed at teardown (the request does that in the framework), so that no
    ResourceWarning surfaces in a later test.
    """
    created: list[IO[bytes]] = []
    new_file, memory_file = formparser._new_file, formparser._memory_file

    def tracking_spool(threshold: int) -> IO[bytes]:
        file = new_file(threshold)
        created.append(file)
        return file

    def tracking_memory(data: bytes) -> IO[bytes]:
        file = memory_file(data)
        created.append(file)
        return file

    monkeypatch.setattr(formparser, "_new_file", tracking_spool)
    monkeypatch.setattr(formparser, "_memory_file", tracking_memory)
    yield created
    for file in created:
        file.close()


# ---------------------------------------------------------------------------------------------------------
# parse_urlencoded (query strings)
# ---------------------------------------------------------------------------------------------------------


def test_query_string_keeps_every_value_in_order_and_blank_values() -> None:
    args = parse_urlencoded(b"a=1&b=2&a=3&empty=&flag", max_pairs=None)
    assert args.getlist("a") == ["1", "3"]
    assert args["b"] == "2"
    assert args["empty"] == ""
    assert args["flag"] == ""
    assert isinstance(args, ImmutableMultiDict)


def test_query_string_decodes_plus_and_percent_escapes_as_utf8() -> None:
    args = parse_urlencoded(b"q=caf%C3%A9+au+lait&sp%20ace=a%2Bb%26c%3Dd", max_pairs=None)
    assert args["q"] == "café au lait"
    assert args["sp ace"] == "a+b&c=d"


def test_query_string_keeps_malformed_percent_escapes_literally() -> None:
    args = parse_urlencoded(b"a=%zz&b=100%&c=%4&%g1=x", max_pairs=None)
    assert args["a"] == "%zz"
    assert args["b"] == "100%"
    assert args["c"] == "%4"
    assert args["%g1"] == "x"


def test_query_string_semicolon_is_not_a_separator_and_empty_pieces_are_skipped() -> None:
    args = parse_urlencoded(b"a=1;b=2&&&c=3&", max_pairs=None)
    assert args.to_dict(flat=False) == {"a": ["1;b=2"], "c": ["3"]}


def test_query_string_value_may_contain_equals_signs() -> None:
    assert parse_urlencoded(b"token=abc==&=nokey", max_pairs=None).to_dict() == {
        "token": "abc==",
        "": "nokey",
    }


def test_query_string_accepts_text_and_raw_utf8_bytes() -> None:
    assert parse_urlencoded("name=Zo%C3%AB&city=Zürich", max_pairs=None).to_dict() == {
        "name": "Zoë",
        "city": "Zürich",
    }
    assert parse_urlencoded("city=Zürich".encode(), max_pairs=None)["city"] == "Zürich"


def test_empty_query_string_gives_empty_dict() -> None:
    assert parse_urlencoded(b"", max_pairs=1) == {}
    assert parse_urlencoded("", max_pairs=None) == {}


def test_query_string_keeps_nul_bytes() -> None:
    assert parse_urlencoded(b"a=x%00y", max_pairs=None)["a"] == "x\x00y"


@pytest.mark.parametrize("qs", [b"a=%ff", b"a%C3=1", b"a=%C3%28", b"a=%ED%A0%80", b"a=\xff", b"\xc3=1"])
def test_query_string_with_invalid_utf8_is_400(qs: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_urlencoded(qs, max_pairs=None)
    assert info.value.code == 400
    assert "UTF-8" in (info.value.description or "") or "utf-8" in (info.value.description or "")


def test_query_string_with_too_many_pairs_is_414() -> None:
    assert len(parse_urlencoded(b"&".join(b"k%d=v" % i for i in range(10)), max_pairs=10)) == 10
    with pytest.raises(RequestURITooLarge) as info:
        parse_urlencoded(b"&".join(b"k%d=v" % i for i in range(11)), max_pairs=10)
    assert info.value.code == 414
    assert "10" in (info.value.description or "")


def test_query_string_limit_counts_pairs_not_ampersands() -> None:
    assert parse_urlencoded(b"a=1" + b"&" * 50 + b"b=2", max_pairs=2).to_dict() == {"a": "1", "b": "2"}


pairs_strategy = st.lists(st.tuples(st.text(), st.text()), max_size=20)


@given(pairs_strategy)
def test_query_string_round_trips_through_urlencode(pairs: list[tuple[str, str]]) -> None:
    expected: dict[str, list[str]] = {}
    for key, value in pairs:
        expected.setdefault(key, []).append(value)
    parsed = parse_urlencoded(urlencode(pairs).encode("ascii"), max_pairs=None)
    assert parsed.to_dict(flat=False) == expected


@given(pairs_strategy)
def test_query_string_round_trips_with_percent_encoded_spaces(pairs: list[tuple[str, str]]) -> None:
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    expected: dict[str, list[str]] = {}
    for key, value in pairs:
        expected.setdefault(key, []).append(value)
    assert parse_urlencoded(qs, max_pairs=None).to_dict(flat=False) == expected


@given(st.binary(max_size=300))
def test_arbitrary_query_string_bytes_give_a_result_or_a_4xx(data: bytes) -> None:
    try:
        result = parse_urlencoded(data, max_pairs=5)
    except HTTPException as exc:
        assert exc.code in (400, 414)
    else:
        assert all(isinstance(v, str) for _, v in result.items(multi=True))


# ---------------------------------------------------------------------------------------------------------
# application/x-www-form-urlencoded bodies
# ---------------------------------------------------------------------------------------------------------


def test_urlencoded_body_is_parsed_like_a_query_string() -> None:
    form = parse_body(b"name=Zo%C3%AB+K&tags=a&tags=b&empty=&%zz=1")
    assert form["name"] == "Zoë K"
    assert form.getlist("tags") == ["a", "b"]
    assert form["empty"] == ""
    assert form["%zz"] == "1"


def test_urlencoded_body_without_content_length_is_read_to_the_end() -> None:
    stream = ChunkedStream(b"a=1&b=" + b"x" * 100_000, step=4096)
    form, _ = parse_form_data(stream, URLENCODED, {}, None)
    assert form["b"] == "x" * 100_000


def test_urlencoded_body_reads_no_more_than_content_length() -> None:
    stream = io.BytesIO(b"a=1&b=2GARBAGE")
    form, _ = parse_form_data(stream, URLENCODED, {}, 7)
    assert form.to_dict() == {"a": "1", "b": "2"}
    assert stream.read() == b"GARBAGE"


def test_empty_urlencoded_body_gives_empty_form() -> None:
    assert parse_body(b"") == {}
    assert parse_body(b"", content_length=None) == {}


def test_urlencoded_body_announced_over_the_limit_is_413_before_reading() -> None:
    with pytest.raises(RequestEntityTooLarge) as info:
        parse_form_data(UnreadableStream(), URLENCODED, {}, 1001, max_form_memory_size=1000)
    assert info.value.code == 413


def test_urlencoded_body_over_the_limit_without_length_stops_reading_early() -> None:
    stream = ChunkedStream(b"a=" + b"x" * 10_000_000, step=1024)
    with pytest.raises(RequestEntityTooLarge):
        parse_form_data(stream, URLENCODED, {}, None, max_form_memory_size=5000)
    assert stream.consumed <= 5000 + 1024


def test_urlencoded_body_at_the_limit_is_accepted() -> None:
    body = b"a=" + b"x" * 998
    assert parse_body(body, max_form_memory_size=1000)["a"] == "x" * 998
    assert parse_body(body, content_length=None, max_form_memory_size=1000)["a"] == "x" * 998


def test_urlencoded_body_with_too_many_pairs_is_413() -> None:
    body = b"&".join(b"f%d=1" % i for i in range(1001))
    with pytest.raises(RequestEntityTooLarge) as info:
        parse_body(body)
    assert "1000" in (info.value.description or "")
    assert len(parse_body(body, max_form_parts=None)) == 1001


@pytest.mark.parametrize("body", [b"a=%ff", b"a=%C3", b"\xff=1", b"a=%C0%AF"])
def test_urlencoded_body_with_invalid_utf8_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(body)
    assert info.value.code == 400


def test_urlencoded_body_honours_an_ascii_compatible_charset() -> None:
    assert parse_body(b"name=Zo%EB", {"charset": "ISO-8859-1"})["name"] == "Zoë"


@pytest.mark.parametrize("charset", ["no-such-charset", "utf-16", "rot13", "x" * 200])
def test_urlencoded_body_with_unusable_charset_is_400(charset: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(b"a=1", {"charset": charset})
    assert "charset" in (info.value.description or "")


def test_urlencoded_body_shorter_than_content_length_is_400() -> None:
    with pytest.raises(BadRequest) as info:
        parse_form_data(io.BytesIO(b"a=1&b"), URLENCODED, {}, 100)
    assert "Content-Length" in (info.value.description or "")


def test_urlencoded_read_error_from_the_stream_propagates() -> None:
    stream = ExplodingStream(b"a=1&b=2", RequestEntityTooLarge("over MAX_CONTENT_LENGTH"), step=3)
    with pytest.raises(RequestEntityTooLarge, match="over MAX_CONTENT_LENGTH"):
        parse_form_data(stream, URLENCODED, {}, None)


@given(st.binary(max_size=500))
def test_arbitrary_urlencoded_body_gives_a_form_or_a_4xx(data: bytes) -> None:
    try:
        form = parse_body(data, max_form_parts=10, max_form_memory_size=400)
    except HTTPException as exc:
        assert exc.code is not None and 400 <= exc.code < 500
    else:
        assert all(isinstance(v, str) for _, v in form.items(multi=True))


@pytest.mark.parametrize("mimetype", ["application/json", "text/plain", "", "multipart/mixed"])
def test_other_mimetypes_give_empty_dicts_and_leave_the_body_alone(mimetype: str) -> None:
    stream = io.BytesIO(b'{"a": 1}')
    form, files = parse_form_data(stream, mimetype, {"boundary": "x"}, 8)
    assert form == {} and files == {}
    assert stream.read() == b'{"a": 1}'


# ---------------------------------------------------------------------------------------------------------
# multipart/form-data: well-formed bodies
# ---------------------------------------------------------------------------------------------------------


def test_multipart_fields_and_files() -> None:
    body = encode_multipart(
        [
            ("title", "Hello, wörld", None, None),
            ("tag", "a", None, None),
            ("tag", "b", None, None),
            ("upload", b"first file", "a.txt", "text/plain"),
            ("upload", b"\x89PNG\r\n\x1a\n", "b.png", "image/png"),
        ]
    )
    form, files = parse_multipart(body)
    assert form["title"] == "Hello, wörld"
    assert form.getlist("tag") == ["a", "b"]
    uploads = files.getlist("upload")
    assert [f.filename for f in uploads] == ["a.txt", "b.png"]
    assert [f.read() for f in uploads] == [b"first file", b"\x89PNG\r\n\x1a\n"]
    assert [f.content_type for f in uploads] == ["text/plain", "image/png"]
    assert uploads[1].mimetype == "image/png"
    assert all(f.name == "upload" for f in uploads)
    assert uploads[0].content_length == len(b"first file")
    assert uploads[0].headers["content-type"] == "text/plain"
    assert "upload" not in form and "title" not in files


def test_a_file_part_keeps_its_header_lines_in_order_and_its_headers_refuse_bad_values() -> None:
    body = (
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="f"; filename="caf\xc3\xa9.txt"\r\n'
        b"X-Extra: one\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"data\r\n"
        b"--" + BOUNDARY.encode() + b"--\r\n"
    )
    upload = parse_multipart(body)[1]["f"]
    assert upload.filename == "café.txt"
    assert list(upload.headers.items()) == [
        ("Content-Disposition", 'form-data; name="f"; filename="caf\xc3\xa9.txt"'),  # as sent, one char a byte
        ("X-Extra", "one"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", "4"),
    ]
    assert (upload.content_type, upload.content_length, upload.read()) == ("text/plain; charset=utf-8", 4, b"data")
    with pytest.raises(ValueError):
        upload.headers["X-Extra"] = "a\r\nSet-Cookie: x=1"
    assert isinstance(upload.headers, Headers)


def test_file_without_content_type_has_none_as_in_werkzeug() -> None:
    _, files = parse_multipart(encode_multipart([("f", b"data", "x.bin", None)]))
    assert files["f"].content_type is None
    assert files["f"].mimetype == ""
    assert files["f"].read() == b"data"


def test_content_type_parameters_of_a_file_part_are_kept() -> None:
    _, files = parse_multipart(encode_multipart([("f", b"x", "a.csv", "text/csv; charset=latin-1")]))
    assert files["f"].mimetype == "text/csv"
    assert files["f"].mimetype_params == {"charset": "latin-1"}


def test_empty_filename_still_gives_a_file_storage() -> None:
    # What a browser sends for a file input left empty.
    form, files = parse_multipart(encode_multipart([("avatar", b"", "", "application/octet-stream")]))
    assert "avatar" not in form
    storage = files["avatar"]
    assert isinstance(storage, FileStorage)
    assert storage.filename == ""
    assert not storage
    assert storage.read() == b""


def test_empty_field_value() -> None:
    form, _ = parse_multipart(encode_multipart([("empty", "", None, None)]))
    assert form["empty"] == ""


def test_binary_content_with_crlf_and_boundary_like_bytes_survives() -> None:
    tricky = (
        b"\r\n\r\nX--" + BOUNDARY.encode() + b"\r\n"  # the boundary line without the CRLF in front
        b"\n--" + BOUNDARY.encode() + b"--\r\n"  # a closing boundary after a bare LF
        b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n"  # almost the delimiter
        b"\r\r\n\n\x00\xff\xfe" + bytes(range(256)) + b"\r\n-"
    )
    _, files = parse_multipart(encode_multipart([("f", tricky, "t.bin", None), ("g", tricky, "u.bin", None)]))
    assert files["f"].read() == tricky
    assert files["g"].read() == tricky
    text = tricky.replace(b"\xff", b"").replace(b"\xfe", b"").decode("latin-1")
    form, _ = parse_multipart(encode_multipart([("t", text, None, None)]))
    assert form["t"] == text


def test_nul_bytes_in_values_are_kept() -> None:
    form, files = parse_multipart(
        encode_multipart([("text", "a\x00b", None, None), ("bin", b"\x00" * 10, "z.bin", None)])
    )
    assert form["text"] == "a\x00b"
    assert files["bin"].read() == b"\x00" * 10


@pytest.mark.parametrize("step", [1, 7, 64, 65536])
def test_result_does_not_depend_on_how_the_body_is_chunked(step: int) -> None:
    content = b"0123456789\r\n" * 500
    body = encode_multipart(
        [("a", "value", None, None), ("f", content, "big.txt", None), ("b", "z", None, None)]
    )
    stream = ChunkedStream(body, step=step)
    form, files = parse_form_data(stream, MULTIPART, {"boundary": BOUNDARY}, None)
    assert form.to_dict() == {"a": "value", "b": "z"}
    assert files["f"].read() == content


def test_multipart_preamble_and_epilogue_are_ignored() -> None:
    body = b"This is a preamble.\r\nIgnore me.\r\n" + encode_multipart(
        [("a", "1", None, None)], epilogue=b"\r\nand an epilogue"
    )
    form, _ = parse_multipart(body)
    assert form.to_dict() == {"a": "1"}


def test_closing_delimiter_without_trailing_crlf_is_complete() -> None:
    form, _ = parse_multipart(encode_multipart([("a", "1", None, None)], epilogue=b""))
    assert form["a"] == "1"


def test_empty_form_closing_delimiter_only() -> None:
    form, files = parse_multipart(f"--{BOUNDARY}--\r\n".encode())
    assert form == {} and files == {}


@pytest.mark.parametrize("content_length", [0, None])
def test_empty_multipart_body_gives_empty_form(content_length: int | None) -> None:
    form, files = parse_form_data(io.BytesIO(b""), MULTIPART, {"boundary": BOUNDARY}, content_length)
    assert form == {} and files == {}


def test_multipart_reads_no_more_than_content_length() -> None:
    body = encode_multipart([("a", "1", None, None)])
    stream = io.BytesIO(body + b"NEXT REQUEST")
    form, _ = parse_form_data(stream, MULTIPART, {"boundary": BOUNDARY}, len(body))
    assert form["a"] == "1"
    assert stream.read() == b"NEXT REQUEST"


def test_quoted_boundary_parameter_as_parsed_from_the_header() -> None:
    boundary = "simple boundary:with=odd'chars"
    form, _ = parse_multipart(
        encode_multipart([("a", "1", None, None)], boundary=boundary), boundary=boundary
    )
    assert form["a"] == "1"


def test_field_and_file_names_with_quotes_and_newlines_use_browser_escaping() -> None:
    body = encode_multipart([('we"ird\r\nname', "v", None, None), ("f", b"x", 'a "quoted"\nname.txt', None)])
    form, files = parse_multipart(body)
    assert form['we"ird\r\nname'] == "v"
    assert files["f"].filename == 'a "quoted"\nname.txt'


def test_utf8_names_and_filenames() -> None:
    form, files = parse_multipart(
        encode_multipart([("prénom", "Zoë", None, None), ("f", b"x", "日本.txt", None)])
    )
    assert form["prénom"] == "Zoë"
    assert files["f"].filename == "日本.txt"


def test_non_utf8_filename_is_decoded_as_latin1_not_refused() -> None:
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="f"; filename="caf\xe9.txt"\r\n\r\n'
        + b"data\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    _, files = parse_multipart(body)
    assert files["f"].filename == "café.txt"
    assert files["f"].read() == b"data"


def test_windows_full_path_filename_keeps_only_the_name() -> None:
    _, files = parse_multipart(encode_multipart([("f", b"x", "C:\\Users\\me\\report.pdf", None)]))
    assert files["f"].filename == "report.pdf"


def test_rfc2231_filename_star_makes_a_file() -> None:
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\n"
        + b"data\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    form, files = parse_multipart(body)
    assert "f" not in form
    assert files["f"].filename == "naïve.txt"


def test_small_file_stays_in_memory_and_large_file_is_spooled_to_disk() -> None:
    small = b"s" * 1000
    large = b"L" * (600 * 1024)
    _, files = parse_multipart(encode_multipart([("small", small, "s", None), ("large", large, "l", None)]))
    # SpooledTemporaryFile._rolled: True once the data moved from memory to a real temporary file.
    assert files["small"].stream._rolled is False  # type: ignore[attr-defined]
    assert files["large"].stream._rolled is True  # type: ignore[attr-defined]
    assert not isinstance(files["large"].stream._file, io.BytesIO)  # type: ignore[attr-defined]
    assert files["large"].stream.tell() == 0
    assert files["large"].read() == large
    assert files["large"].content_length == len(large)


def test_a_body_announced_within_the_threshold_keeps_its_files_in_memory() -> None:
    body = encode_multipart([("f", b"x" * 100, "f", None)])
    stream = parse_multipart(body, spool_threshold=len(body))[1]["f"].stream
    assert isinstance(stream, io.BytesIO)  # as Werkzeug: the files cannot grow past the announced body
    assert stream.read() == b"x" * 100
    spooled = parse_multipart(body, spool_threshold=len(body) - 1)[1]["f"].stream
    assert isinstance(spooled, tempfile.SpooledTemporaryFile) and spooled._rolled is False  # type: ignore[attr-defined]
    unannounced = parse_multipart(body, content_length=None, spool_threshold=len(body))[1]["f"].stream
    assert isinstance(unannounced, tempfile.SpooledTemporaryFile)


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_in_memory_files_hold_every_chunk_and_behave_as_files(step: int) -> None:
    first, second = bytes(range(256)) * 40, b"\r\n-" * 500  # the second looks like delimiters cut short
    body = encode_multipart(
        [("a", first, "a.bin", None), ("b", second, "b.bin", "application/octet-stream"), ("t", b"text", None, None)]
    )
    form, files = parse_form_data(ChunkedStream(body, step), MULTIPART, {"boundary": BOUNDARY}, len(body))
    assert form["t"] == "text"
    for key, content in (("a", first), ("b", second)):
        storage = files[key]
        assert isinstance(storage.stream, io.BytesIO)
        assert storage.content_length == len(content)
        assert storage.read() == content
        storage.seek(0)
        assert storage.read(3) == content[:3]
        storage.stream.write(b"XYZ")  # a file like any other: writable; the content read before is unchanged
        storage.seek(0)
        assert storage.read(6) == content[:3] + b"XYZ"
    assert files["a"].filename == "a.bin" and files["b"].mimetype == "application/octet-stream"


def test_spool_threshold_is_configurable() -> None:
    body = encode_multipart([("f", b"x" * 100, "f", None)])
    assert parse_multipart(body, spool_threshold=50)[1]["f"].stream._rolled is True  # type: ignore[attr-defined]
    assert parse_multipart(body, spool_threshold=0)[1]["f"].stream._rolled is True  # type: ignore[attr-defined]
    assert parse_multipart(body, spool_threshold=100)[1]["f"].stream._rolled is False  # type: ignore[attr-defined]


def test_saving_an_upload(tmp_path: Any) -> None:
    _, files = parse_multipart(encode_multipart([("f", b"payload", "p.txt", None)]))
    target = tmp_path / "p.txt"
    files["f"].save(target)
    assert target.read_bytes() == b"payload"


def test_part_charset_and_charset_field_decode_text() -> None:
    body = encode_multipart(
        [
            ("before", "Zo\xeb".encode("latin-1"), None, None),
            ("_charset_", "iso-8859-1", None, None),
            ("after", "caf\xe9".encode("latin-1"), None, None),
            ("explicit", "Zoë".encode(), None, "text/plain; charset=utf-8"),
        ]
    )
    form, _ = parse_multipart(body)
    assert form["before"] == "Zoë"
    assert form["after"] == "café"
    assert form["explicit"] == "Zoë"
    assert form["_charset_"] == "iso-8859-1"


def test_body_charset_parameter_is_the_last_fallback() -> None:
    body = encode_multipart([("a", "Zo\xeb".encode("latin-1"), None, None)])
    form, _ = parse_form_data(io.BytesIO(body), MULTIPART, {"boundary": BOUNDARY, "charset": "latin-1"}, None)
    assert form["a"] == "Zoë"


def test_files_are_not_counted_against_the_field_memory_limit() -> None:
    _, files = parse_multipart(encode_multipart([("f", b"x" * 5000, "f", None)]), max_form_memory_size=100)
    assert files["f"].read() == b"x" * 5000


def test_field_at_the_memory_limit_is_accepted() -> None:
    form, _ = parse_multipart(encode_multipart([("a", "x" * 100, None, None)]), max_form_memory_size=100)
    assert form["a"] == "x" * 100


def test_exactly_max_parts_is_accepted() -> None:
    parts: list[tuple[str, str | bytes, str | None, str | None]] = [
        (f"f{i}", "v", None, None) for i in range(5)
    ]
    form, _ = parse_multipart(encode_multipart(parts), max_form_parts=5)
    assert len(form) == 5


# ---------------------------------------------------------------------------------------------------------
# multipart/form-data: hostile bodies
# ---------------------------------------------------------------------------------------------------------


def _assert_all_closed(spools: list[IO[bytes]]) -> None:
    assert spools, "the test should have created files"
    assert all(spool.closed for spool in spools)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"boundary": ""},
        {"boundary": "bad\nboundary"},
        {"boundary": "x" * 201},
        {"boundary": "trailing "},
        {"boundary": "tab\there"},
        {"boundary": "del\x7f"},
        {"boundary": " "},
    ],
)
def test_missing_or_invalid_boundary_is_400(options: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as info:
        parse_form_data(io.BytesIO(b"--x\r\n"), MULTIPART, options, 5)
    assert "boundary" in (info.value.description or "")


@pytest.mark.parametrize("boundary", ["x" * 200, "a b", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "1"])
def test_any_printable_ascii_boundary_of_1_to_200_characters_is_accepted(boundary: str) -> None:
    body = encode_multipart([("a", "1", None, None)], boundary=boundary)
    form, files = parse_form_data(io.BytesIO(body), MULTIPART, {"boundary": boundary}, len(body))
    assert form.to_dict() == {"a": "1"}
    assert not files


def test_non_ascii_boundary_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_multipart(b"--b\xc3\xa9\r\n", boundary="bé")


def test_wrong_boundary_is_400() -> None:
    body = encode_multipart([("a", "1", None, None)], boundary="the-real-one")
    with pytest.raises(BadRequest) as info:
        parse_multipart(body, boundary="another-one")
    assert "malformed" in (info.value.description or "")


def test_junk_glued_to_the_first_boundary_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_multipart(b"junk" + encode_multipart([("a", "1", None, None)]))


def test_garbage_body_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_multipart(b"this is not multipart at all" * 100)


def test_truncated_bodies_are_400_at_every_cut(spools: list[IO[bytes]]) -> None:
    body = encode_multipart([("a", "value", None, None), ("f", b"file\r\ncontent", "f.txt", "text/plain")])
    complete_from = len(body) - 2  # the final CRLF is epilogue
    for cut in range(1, len(body) + 1):
        if cut >= complete_from:
            form, files = parse_multipart(body[:cut])
            assert form["a"] == "value" and files["f"].read() == b"file\r\ncontent"
            files["f"].close()
        else:
            with pytest.raises(BadRequest):
                parse_multipart(body[:cut])
    _assert_all_closed(spools)


def test_body_shorter_than_content_length_is_400() -> None:
    body = encode_multipart([("a", "1", None, None)])
    with pytest.raises(BadRequest):
        parse_form_data(io.BytesIO(body[:-10]), MULTIPART, {"boundary": BOUNDARY}, len(body))


def test_bare_lf_line_endings_are_400() -> None:
    body = encode_multipart([("a", "1", None, None)]).replace(b"\r\n", b"\n")
    with pytest.raises(BadRequest):
        parse_multipart(body)


@pytest.mark.parametrize(
    "disposition",
    [
        b"Content-Disposition: form-data",
        b'Content-Disposition: form-data; name=""',
        b'Content-Disposition: form-data; filename="x.txt"',
    ],
)
def test_part_without_a_name_is_400(disposition: bytes) -> None:
    body = f"--{BOUNDARY}\r\n".encode() + disposition + b"\r\n\r\nvalue\r\n" + f"--{BOUNDARY}--\r\n".encode()
    with pytest.raises(BadRequest) as info:
        parse_multipart(body)
    assert "no name" in (info.value.description or "")


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Type: text/plain",  # no Content-Disposition at all
        b'Content-Disposition: attachment; name="a"',
        b"No colon here",
        b'Bad Header Name!: x\r\nContent-Disposition: form-data; name="a"',
        b'Content-Disposition: form-data; name="a"\r\nContent-Length: nope',
        b'Content-Disposition: form-data; name="a"\r\nContent-Length: 99',
    ],
)
def test_malformed_part_headers_are_400(headers: bytes) -> None:
    body = f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n\r\nvalue\r\n" + f"--{BOUNDARY}--\r\n".encode()
    with pytest.raises(BadRequest):
        parse_multipart(body)


@pytest.mark.parametrize("bad", [b"\x00", b"\n", b"\r"])
def test_control_characters_in_part_headers_are_400(bad: bytes) -> None:
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="a'
        + bad
        + b'b"; filename="f"\r\n\r\nvalue\r\n'
        + f"--{BOUNDARY}--\r\n".encode()
    )
    with pytest.raises(BadRequest):
        parse_multipart(body)


def test_huge_part_header_is_400_without_buffering_it_all() -> None:
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="a"; filename="'
        + b"x" * 5_000_000
        + b'"\r\n\r\nvalue\r\n'
        + f"--{BOUNDARY}--\r\n".encode()
    )
    stream = ChunkedStream(body, step=64 * 1024)
    with pytest.raises(BadRequest) as info:
        parse_form_data(stream, MULTIPART, {"boundary": BOUNDARY}, None)
    assert "header" in (info.value.description or "")
    assert stream.consumed < 200_000


def test_too_many_headers_in_one_part_is_400() -> None:
    headers = b"".join(b"X-Junk-%d: 1\r\n" % i for i in range(50))
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="a"\r\n'
        + headers
        + b"\r\nvalue\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    with pytest.raises(BadRequest):
        parse_multipart(body)


def test_thousands_of_parts_over_the_limit_is_413_and_closes_files(
    spools: list[IO[bytes]],
) -> None:
    parts: list[tuple[str, str | bytes, str | None, str | None]] = []
    for i in range(5000):
        parts.append((f"file{i}", b"x", f"{i}.txt", None) if i % 2 else (f"field{i}", "v", None, None))
    with pytest.raises(RequestEntityTooLarge) as info:
        parse_multipart(encode_multipart(parts))
    assert info.value.code == 413
    assert "1000" in (info.value.description or "")
    assert len(spools) == 500
    _assert_all_closed(spools)


def test_field_over_the_memory_limit_is_413_and_reading_stops() -> None:
    body = encode_multipart([("big", "x" * 5_000_000, None, None)])
    stream = ChunkedStream(body, step=64 * 1024)
    with pytest.raises(RequestEntityTooLarge) as info:
        parse_form_data(stream, MULTIPART, {"boundary": BOUNDARY}, None, max_form_memory_size=100_000)
    assert "'big'" in (info.value.description or "")
    assert stream.consumed < 300_000


def test_memory_limit_applies_per_field() -> None:
    parts: list[tuple[str, str | bytes, str | None, str | None]] = [
        (f"f{i}", "x" * 90, None, None) for i in range(5)
    ]
    form, _ = parse_multipart(encode_multipart(parts), max_form_memory_size=100)
    assert len(form) == 5


def test_invalid_utf8_field_is_400_and_closes_files(
    spools: list[IO[bytes]],
) -> None:
    body = encode_multipart([("f", b"ok", "f.txt", None), ("text", b"caf\xe9", None, None)])
    with pytest.raises(BadRequest) as info:
        parse_multipart(body)
    assert "'text'" in (info.value.description or "")
    _assert_all_closed(spools)


@pytest.mark.parametrize("charset", ["no-such-charset", "utf-16", "base64"])
def test_unusable_part_charset_is_400(charset: str) -> None:
    body = encode_multipart([("a", b"x", None, f"text/plain; charset={charset}")])
    with pytest.raises(BadRequest) as info:
        parse_multipart(body)
    assert "charset" in (info.value.description or "")


def test_non_ascii_charset_field_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_multipart(encode_multipart([("_charset_", b"\xff", None, None)]))


def test_stream_error_midway_propagates_and_closes_files(
    spools: list[IO[bytes]],
) -> None:
    body = encode_multipart([("f", b"x" * 10_000, "a.bin", None), ("g", b"y" * 700_000, "b.bin", None)])
    stream = ExplodingStream(body[:400_000], RequestEntityTooLarge("The body is over MAX_CONTENT_LENGTH."))
    with pytest.raises(RequestEntityTooLarge, match="MAX_CONTENT_LENGTH"):
        parse_form_data(stream, MULTIPART, {"boundary": BOUNDARY}, None)
    assert len(spools) == 2
    _assert_all_closed(spools)


def test_multipart_errors_never_leak_temporary_files(
    spools: list[IO[bytes]],
) -> None:
    body = encode_multipart([("f", b"x" * 600_000, "a.bin", None)])
    with pytest.raises(BadRequest):
        parse_multipart(body[:-100])
    _assert_all_closed(spools)


# ---------------------------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------------------------

_DISPOSITION_ESCAPES = ("%0D", "%0A", "%22")


def _plain_name(text: str) -> bool:
    # Browsers' Content-Disposition escaping is ambiguous for text that already holds an escape sequence, and
    # NUL is refused in headers; leave those out of the round trip.
    # `_charset_` names the charset of the other fields (HTML), so it is not an arbitrary field either.
    return (
        bool(text)
        and text != "_charset_"
        and "\x00" not in text
        and not any(e in text for e in _DISPOSITION_ESCAPES)
    )


names = st.text(min_size=1, max_size=20).filter(_plain_name)
filenames = st.text(max_size=20).filter(lambda t: "\\" not in t and (t == "" or _plain_name(t)))
field_parts = st.tuples(names, st.text(max_size=200), st.none(), st.none())
file_parts = st.tuples(
    names, st.binary(max_size=2000), filenames, st.sampled_from([None, "text/plain", "application/x-thing"])
)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(st.one_of(field_parts, file_parts), max_size=12), st.integers(1, 5000))
def test_multipart_round_trip(parts: list[tuple[str, Any, str | None, str | None]], step: int) -> None:
    boundary = "----hypothesis-boundary-0123456789"
    for _, value, _, _ in parts:
        raw = value.encode() if isinstance(value, str) else value
        assume(boundary.encode() not in raw)
    body = encode_multipart(parts, boundary=boundary)
    stream = ChunkedStream(body, step=step)
    form, files = parse_form_data(stream, MULTIPART, {"boundary": boundary}, len(body), spool_threshold=1000)

    expected_form: dict[str, list[str]] = {}
    expected_files: dict[str, list[tuple[str, bytes, str]]] = {}
    for name, value, filename, content_type in parts:
        if filename is None:
            expected_form.setdefault(name, []).append(value)
        else:
            expected_files.setdefault(name, []).append(
                (filename, value, content_type or None)
            )
    assert form.to_dict(flat=False) == expected_form
    got_files = {
        name: [(f.filename, f.read(), f.content_type) for f in storages] for name, storages in files.lists()
    }
    for _, storage in files.items(multi=True):
        storage.close()
    assert got_files == expected_files


_fragments = st.sampled_from(
    [
        f"--{BOUNDARY}\r\n".encode(),
        f"\r\n--{BOUNDARY}\r\n".encode(),
        f"\r\n--{BOUNDARY}--\r\n".encode(),
        f"--{BOUNDARY}".encode(),
        b'Content-Disposition: form-data; name="a"\r\n',
        b'Content-Disposition: form-data; name="f"; filename="f.txt"\r\n',
        b"Content-Disposition: form-data\r\n",
        b"Content-Type: text/plain; charset=latin-1\r\n",
        b"Content-Length: 3\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b"--",
        b"value",
        b"\x00\xff\xfe",
    ]
)


@settings(max_examples=300)
@given(st.lists(st.one_of(_fragments, st.binary(max_size=20)), max_size=30), st.integers(1, 64), st.booleans())
def test_hostile_multipart_bodies_give_a_result_or_a_4xx(pieces: list[bytes], step: int, announced: bool) -> None:
    # An announced length within the spool threshold takes the in-memory file path, an unknown one the spooled.
    body = b"".join(pieces)
    created: list[Any] = []
    new_file, memory_file = formparser._new_file, formparser._memory_file

    def tracking_spool(threshold: int) -> Any:
        spool = new_file(threshold)
        created.append(spool)
        return spool

    def tracking_memory(data: bytes) -> Any:
        file = memory_file(data)
        created.append(file)
        return file

    formparser._new_file = tracking_spool  # type: ignore[assignment]
    formparser._memory_file = tracking_memory  # type: ignore[assignment]
    try:
        form, files = parse_form_data(
            ChunkedStream(body, step),
            MULTIPART,
            {"boundary": BOUNDARY},
            len(body) if announced else None,
            max_form_parts=5,
        )
    except HTTPException as exc:
        assert exc.code is not None and 400 <= exc.code < 500, exc
        assert exc.description
        assert all(spool.closed for spool in created)
    else:
        assert all(isinstance(v, str) for _, v in form.items(multi=True))
        assert all(isinstance(f, FileStorage) for _, f in files.items(multi=True))
    finally:
        formparser._new_file, formparser._memory_file = new_file, memory_file  # type: ignore[assignment]
        for spool in created:
            spool.close()


@given(st.binary(max_size=1000))
def test_arbitrary_bytes_as_multipart_body_give_a_result_or_a_4xx(data: bytes) -> None:
    try:
        parse_multipart(data, boundary="b")
    except HTTPException as exc:
        assert exc.code is not None and 400 <= exc.code < 500


@given(st.text(st.characters(exclude_categories=()), max_size=100))
def test_arbitrary_query_string_text_gives_a_result_or_a_4xx(text: str) -> None:
    # Includes lone surrogates, which a str argument may carry.
    try:
        result = parse_urlencoded(text, max_pairs=5)
    except HTTPException as exc:
        assert exc.code in (400, 414)
    else:
        assert all(isinstance(v, str) for _, v in result.items(multi=True))


@pytest.mark.parametrize(
    "content_type",
    [
        f"multipart/form-data; boundary={BOUNDARY}",  # as browsers send it
        f'multipart/form-data; boundary="{BOUNDARY}"',
        f"Multipart/Form-Data; boundary={BOUNDARY}; charset=utf-8",
        f"multipart/form-data;boundary={BOUNDARY}",
        f"multipart/form-data; boundary={BOUNDARY} ",
    ],
)
def test_every_shape_of_the_multipart_content_type_reads_the_same_form(protocol: str, content_type: str) -> None:
    app = Ampulla(__name__)

    @app.post("/")
    def upload() -> Any:
        f = request.files["f"]
        return {"t": request.form["t"], "f": [f.filename, f.read().decode(), list(f.headers.items())]}

    body = encode_multipart([("t", "x", None, None), ("f", "data", "a.txt", "text/plain")])
    answer = app.test_client(protocol=protocol).post("/", data=body, content_type=content_type)
    assert answer.json == {"t": "x", "f": ["a.txt", "data", [
        ["Content-Disposition", 'form-data; name="f"; filename="a.txt"'],
        ["Content-Type", "text/plain"],
        ["Content-Length", "4"],
    ]]}  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "content_type", "expected"),
    [
        # Two Content-Type lines: the first one is the file's; the second goes (as FileStorage sets it).
        (b"Content-Type: text/plain\r\nContent-Type: image/png\r\n", "text/plain",
         [("Content-Type", "text/plain"), ("Content-Length", "4")]),
        # A Content-Length line in the part (the parser checks it): one line, the size received.
        (b"Content-Length: 4\r\nX-A: 1\r\n", None, [("Content-Length", "4"), ("X-A", "1")]),
        # A non-ASCII Content-Type value (UTF-8 on the wire): decoded.
        ("Content-Type: text/plain; x=é\r\n".encode(), "text/plain; x=é",
         [("Content-Type", "text/plain; x=é"), ("Content-Length", "4")]),
    ],
)  # fmt: skip
def test_a_file_part_with_unusual_header_lines_gets_filestorages_headers(
    lines: bytes, content_type: str | None, expected: list[tuple[str, str]]
) -> None:
    body = (
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n'
        + lines + b"\r\ndata\r\n--" + BOUNDARY.encode() + b"--\r\n"
    )
    upload = parse_multipart(body)[1]["f"]
    assert upload.content_type == content_type
    assert list(upload.headers.items())[1:] == expected
    assert upload.content_length == 4
