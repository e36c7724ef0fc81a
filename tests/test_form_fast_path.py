"""The fast paths of request input: urlencoded bodies of announced length, query strings with escapes,
``request.form[key]``, and ``response.headers[name] = value``.

Each fast path must answer exactly what the general path answers (the per-field decoder, urllib's ``parse_qsl``
with strict UTF-8, Werkzeug's ``ImmutableMultiDict`` and ``Headers``), limits and errors included.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from typing import Any
from urllib.parse import parse_qsl

import pytest
import werkzeug.datastructures
import werkzeug.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st

from ampulla import Ampulla, request
from ampulla.datastructures import Headers, ImmutableMultiDict, _check_header
from ampulla.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestURITooLarge
from ampulla.formparser import (
    CHUNK_SIZE,
    SPOOL_THRESHOLD,
    _parse_escaped_pairs,
    parse_urlencoded,
    parse_urlencoded_body,
)
from ampulla.testing import TestResponse
from ampulla.wrappers import Request

URLENCODED = "application/x-www-form-urlencoded"

#: Pieces of urlencoded text, escapes of the separators and of "+" and "%" among them, valid and broken UTF-8.
_PIECES = ["a", "b", "=", "&", "+", " ", "%", "%26", "%3D", "%3d", "%2B", "%2b", "%25", "%20", "%C3%A9", "%c3%a9",
           "%C3", "%A9", "%E2%82%AC", "%zz", "%4", "%00", "%FF", ";", "é", "\x00", "=="]  # fmt: skip
escaped_text = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


def _outcome(parse: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """``("ok", items)`` or ``(error class, description)``: what a parser answers, to compare two of them."""
    try:
        return ("ok", list(parse(*args, **kwargs).items(multi=True)))
    except HTTPException as e:
        return (type(e), e.description)


def _reference(text: str, max_pairs: int | None = None) -> tuple[Any, ...]:
    """What urllib answers for the same text (strict UTF-8), in the same form as :func:`_outcome`."""
    if max_pairs is not None and len([p for p in text.split("&") if p]) > max_pairs:
        return ("too many",)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return ("invalid",)
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return ("ok", [(key, value) for key, values in grouped.items() for value in values])


def _kind(outcome: tuple[Any, ...]) -> tuple[Any, ...]:
    if outcome[0] is RequestURITooLarge or outcome[0] is RequestEntityTooLarge:
        return ("too many",)
    if outcome[0] is BadRequest:
        return ("invalid",)
    return outcome


# ---------------------------------------------------------------------------------------------------------
# the parser: whole-text decoding against per-field decoding and urllib
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(text=escaped_text, as_bytes=st.booleans(), max_pairs=st.sampled_from([None, 3, 1000]))
def test_query_strings_parse_as_with_per_field_decoding_and_as_urllib(
    text: str, as_bytes: bool, max_pairs: int | None
) -> None:
    qs: str | bytes = text.encode() if as_bytes else text
    fast = _outcome(parse_urlencoded, qs, max_pairs=max_pairs)
    assert _kind(fast) == _reference(text, max_pairs)
    if "%" in text:
        # The same answer, error descriptions included, as decoding field by field.
        slow = _outcome(_parse_escaped_pairs, text, "utf-8", max_pairs, RequestURITooLarge, "query string")
        assert fast == slow


@settings(max_examples=500)
@given(text=escaped_text, max_pairs=st.sampled_from([None, 3]))
def test_urlencoded_bodies_parse_as_with_per_field_decoding_and_as_urllib(text: str, max_pairs: int | None) -> None:
    body = text.encode()
    fast = _outcome(parse_urlencoded_body, body, None, max_pairs=max_pairs)
    assert _kind(fast) == _reference(text, max_pairs)
    if "%" in text:
        slow = _outcome(_parse_escaped_pairs, text, "utf-8", max_pairs, RequestEntityTooLarge, "form")
        assert fast == slow


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a=%26&b=%3D", [("a", "&"), ("b", "=")]),
        (b"a%3Db=c", [("a=b", "c")]),
        (b"a%26b=c", [("a&b", "c")]),
        (b"a=%2B+%2b", [("a", "+ +")]),
        (b"a+b=c+d%21", [("a b", "c d!")]),
        (b"a=%25%32%30", [("a", "%20")]),
        (b"k=%C3%A9&k=%zz&k", [("k", "\u00e9"), ("k", "%zz"), ("k", "")]),
        (b"a=1;b=2&&c=%3B", [("a", "1;b=2"), ("c", ";")]),
    ],
)
def test_separators_plus_and_percent_escapes(body: bytes, expected: list[tuple[str, str]]) -> None:
    assert list(parse_urlencoded_body(body, None, max_pairs=None).items(multi=True)) == expected
    assert list(parse_urlencoded(body, max_pairs=None).items(multi=True)) == expected


def test_invalid_utf8_after_decoding_names_the_field() -> None:
    with pytest.raises(BadRequest) as info:
        parse_urlencoded_body(b"ok=%C3%A9&bad=%C3x&z=1", None, max_pairs=None)
    assert "'bad=%C3x'" in str(info.value.description)


def test_empty_body_with_an_unusable_charset_is_an_empty_form() -> None:
    assert parse_urlencoded_body(b"", "x-unknown", max_pairs=None) == {}
    with pytest.raises(BadRequest):
        parse_urlencoded_body(b"a=1", "x-unknown", max_pairs=None)


def test_a_charset_other_than_utf8_decodes_each_field() -> None:
    form = parse_urlencoded_body(b"a=%E9&b=%26%E9", "latin-1", max_pairs=None)
    assert list(form.items(multi=True)) == [("a", "\u00e9"), ("b", "&\u00e9")]


# ---------------------------------------------------------------------------------------------------------
# request.form over WSGI: the body of announced length, read in one go
# ---------------------------------------------------------------------------------------------------------


class SlowInput(io.RawIOBase):
    """A ``wsgi.input`` giving at most ``step`` bytes per read (as a socket may); records the sizes asked."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        super().__init__()
        self._data = data
        self._pos = 0
        self.step = step
        self.asked: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        n = self.step if size is None or size < 0 else min(size, self.step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


class UnreadableInput(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body must not be read")


def _form_app(**config: Any) -> Ampulla:
    app = Ampulla(__name__)
    app.config.update(config)

    @app.route("/form", methods=["POST"])
    def form() -> Any:
        return {"form": [[k, v] for k, v in request.form.items(multi=True)], "files": len(request.files),
                "data": request.get_data().decode("latin-1"), "stream": request.stream.read().decode("latin-1")}

    @app.route("/name", methods=["POST"])
    def name() -> Any:
        return request.form["name"]

    @app.route("/limited", methods=["POST"])
    def limited() -> Any:
        request.max_form_memory_size = 4
        request.max_form_parts = 2
        return {"form": [[k, v] for k, v in request.form.items(multi=True)]}

    return app


def _wsgi(app: Ampulla, path: str, wsgi_input: Any, length: str | None, content_type: str = URLENCODED) -> tuple[
    int, bytes
]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": wsgi_input, "CONTENT_TYPE": content_type,
        "wsgi.errors": sys.stderr,
    }  # fmt: skip
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    status: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type,misc]
    return int(status[0][:3]), body


def _asgi(app: Ampulla, path: str, body: bytes | None, length: str | None, content_type: str = URLENCODED) -> tuple[
    int, bytes
]:
    """One ASGI request with this Content-Length header as it is; ``body=None``: the body must not be asked for."""
    headers = [(b"host", b"localhost"), (b"content-type", content_type.encode())]
    if length is not None:
        headers.append((b"content-length", length.encode("utf-8")))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        assert body is not None, "the body must not be read"
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _post_raw(protocol: str, app: Ampulla, path: str, body: bytes | None, length: str | None) -> tuple[int, bytes]:
    if protocol == "asgi":
        return _asgi(app, path, body, length)
    return _wsgi(app, path, UnreadableInput() if body is None else io.BytesIO(body), length)


def test_a_body_given_a_byte_at_a_time_is_read_whole() -> None:
    body = b"name=Alice&email=alice%40example.com&age=30"
    wsgi_input = SlowInput(body, step=1)
    status, answer = _wsgi(_form_app(), "/form", wsgi_input, str(len(body)))
    assert status == 200
    assert b'["email","alice@example.com"]' in answer
    assert len(wsgi_input.asked) == len(body)  # one byte each, nothing asked past the announced length


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
@pytest.mark.parametrize("length", ["43", " 43", "43 ", "\t43", "0043"])
def test_a_content_length_with_blanks_around_it_is_read_as_its_number(protocol: str, length: str) -> None:
    body = b"name=Alice&email=alice%40example.com&age=30"
    status, answer = _post_raw(protocol, _form_app(), "/form", body, length)
    assert status == 200
    assert b'["name","Alice"],["email","alice@example.com"],["age","30"]' in answer


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
@pytest.mark.parametrize("length", ["+43", "4 3", "0x2b", "43,43", "\u0664\u0663", "-1", "4_3"])
def test_a_content_length_that_is_not_one_number_is_400_before_the_view(protocol: str, length: str) -> None:
    status, answer = _post_raw(protocol, _form_app(), "/form", None, length)
    assert status == 400
    assert b"Content-Length" in answer


def test_the_form_limits_of_the_config_apply_to_the_urlencoded_body() -> None:
    body = b"a=1&b=2&c=3"
    assert _wsgi(_form_app(MAX_FORM_PARTS=2), "/form", io.BytesIO(body), str(len(body)))[0] == 413
    assert _wsgi(_form_app(MAX_FORM_PARTS=3), "/form", io.BytesIO(body), str(len(body)))[0] == 200
    assert _wsgi(_form_app(MAX_FORM_MEMORY_SIZE=10), "/form", io.BytesIO(body), str(len(body)))[0] == 413
    assert _wsgi(_form_app(MAX_CONTENT_LENGTH=10), "/form", io.BytesIO(body), str(len(body)))[0] == 413
    # The limits set on the request in the view replace the app's.
    assert _wsgi(_form_app(), "/limited", io.BytesIO(b"a=1&b=2&c=3"), "11")[0] == 413
    assert _wsgi(_form_app(), "/limited", io.BytesIO(b"a=1"), "3")[0] == 200


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_a_limit_changed_in_the_config_applies_from_the_next_form_and_within_a_request(protocol: str) -> None:
    app = _form_app(MAX_FORM_PARTS=3)
    tighten_in_hook = False

    @app.before_request
    def tighten() -> None:
        if tighten_in_hook:
            app.config["MAX_FORM_PARTS"] = 2  # after the request's policy was read

    body = b"a=1&b=2&c=3"
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 200
    app.config["MAX_FORM_PARTS"] = 2
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 413
    app.config["MAX_FORM_PARTS"] = 3
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 200
    tighten_in_hook = True
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 413


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_a_limit_missing_from_the_config_is_the_request_class_default(protocol: str) -> None:
    class FewParts(Request):
        default_max_form_parts = 2

    app = _form_app()
    body = b"a=1&b=2&c=3"
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 200
    app.request_class = FewParts
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 200  # the config's MAX_FORM_PARTS
    del app.config["MAX_FORM_PARTS"]
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 413


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
@pytest.mark.parametrize("name", ["max_content_length", "max_form_memory_size", "max_form_parts"])
def test_a_request_class_answering_a_limit_itself_is_asked_for_it(protocol: str, name: str) -> None:
    # As Flask's Request: its form parsing reads the limits through these properties, which a subclass may
    # override (per-endpoint limits, say).
    tight = type("Tight", (Request,), {name: property(lambda self: 2)})
    assert tight._own_limits and not Request._own_limits
    app = _form_app()
    app.request_class = tight
    body = b"a=1&b=2&c=3"
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 413
    app.request_class = Request
    assert _post_raw(protocol, app, "/form", body, str(len(body)))[0] == 200


def _multipart(file_size: int) -> tuple[bytes, str]:
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nreport\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\n"
        + bytes(range(256)) * (file_size // 256)
        + b"\r\n--b--\r\n"
    )
    return body, "multipart/form-data; boundary=b"


@pytest.mark.parametrize(
    ("file_size", "at_once"), [(256, True), (SPOOL_THRESHOLD - 1024, True), (SPOOL_THRESHOLD + 1024, False)]
)
def test_a_multipart_body_within_the_spool_threshold_is_asked_for_whole(file_size: int, at_once: bool) -> None:
    body, content_type = _multipart(file_size)
    app = _form_app()

    @app.route("/upload", methods=["POST"])
    def upload() -> Any:
        data = request.files["file"].read()
        same = data == bytes(range(256)) * (file_size // 256)
        return {"title": request.form["title"], "size": len(data), "same": same, "data": request.get_data().decode(),
                "stream": request.stream.read().decode()}

    wsgi_input = SlowInput(body, step=1 << 20 if at_once else 64 * 1024)
    status, answer = _wsgi(app, "/upload", wsgi_input, str(len(body)), content_type)
    assert status == 200
    assert json.loads(answer) == {"title": "report", "size": file_size, "same": True, "data": "", "stream": ""}
    if at_once:
        assert wsgi_input.asked == [len(body)]
    else:
        assert max(wsgi_input.asked) <= CHUNK_SIZE


def test_a_multipart_body_shorter_than_its_content_length_is_400() -> None:
    body, content_type = _multipart(256)
    status, answer = _wsgi(_form_app(), "/form", SlowInput(body, step=100), str(len(body) + 10), content_type)
    assert status == 400
    assert f"ended after {len(body)} bytes".encode() in answer


def test_a_body_shorter_than_its_content_length_is_400() -> None:
    status, answer = _wsgi(_form_app(), "/form", SlowInput(b"a=1", step=2), "10")
    assert status == 400
    assert b"ended after 3 bytes" in answer


def test_a_body_over_the_form_memory_limit_is_413_before_reading() -> None:
    assert _wsgi(_form_app(MAX_FORM_MEMORY_SIZE=10), "/form", UnreadableInput(), "11")[0] == 413
    assert _wsgi(_form_app(MAX_CONTENT_LENGTH=10), "/form", UnreadableInput(), "11")[0] == 413


def test_without_limits_an_announced_length_is_not_asked_for_at_once() -> None:
    wsgi_input = SlowInput(b"a=1", step=1 << 30)
    app = _form_app(MAX_CONTENT_LENGTH=None, MAX_FORM_MEMORY_SIZE=None)
    assert _wsgi(app, "/form", wsgi_input, str(1 << 40))[0] == 400
    assert max(wsgi_input.asked) <= 1 << 20


def test_an_empty_length_reads_nothing() -> None:
    status, answer = _wsgi(_form_app(), "/form", UnreadableInput(), "0")
    assert (status, answer) == (200, b'{"data":"","files":0,"form":[],"stream":""}\n')


def test_a_chunked_body_without_length_is_read_to_the_end() -> None:
    app = _form_app()
    environ_input = io.BytesIO(b"a=1&b=2")
    environ = {"wsgi.input_terminated": True}
    status: list[str] = []
    body = b"".join(app.wsgi_app({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/form", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": environ_input, "CONTENT_TYPE": URLENCODED,
        "wsgi.errors": sys.stderr, **environ,
    }, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type,misc]  # fmt: skip
    assert status[0][:3] == "200"
    assert b'"form":[["a","1"],["b","2"]]' in body


# ---------------------------------------------------------------------------------------------------------
# request.form over both protocols
# ---------------------------------------------------------------------------------------------------------


def _post(protocol: str, path: str, data: bytes, content_type: str = URLENCODED, **config: Any) -> TestResponse:
    client = _form_app(**config).test_client(protocol=protocol)
    return client.post(path, data=data, content_type=content_type)


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_once_parsed_the_body_reads_empty(protocol: str) -> None:
    response = _post(protocol, "/form", b"a=1&a=2&b")
    assert response.json == {"form": [["a", "1"], ["a", "2"], ["b", ""]], "files": 0, "data": "", "stream": ""}


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/x-www-form-urlencoded; charset=latin-1", b"a=%E9", [["a", "\u00e9"]]),
        ("Application/X-WWW-Form-Urlencoded", b"a=%C3%A9", [["a", "\u00e9"]]),
        ("application/x-www-form-urlencoded;charset=UTF-8", b"a=%26", [["a", "&"]]),
        ("application/x-www-form-urlencoded; charset=x-unknown", b"", []),
    ],
)
def test_content_type_parameters_and_case(protocol: str, content_type: str, body: bytes, expected: Any) -> None:
    assert _post(protocol, "/form", body, content_type).json["form"] == expected


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_limits_and_errors(protocol: str) -> None:
    assert _post(protocol, "/form", b"a=1&b=2&c=3", MAX_FORM_PARTS=2).status_code == 413
    assert _post(protocol, "/form", b"a=1&&b=2&", MAX_FORM_PARTS=2).status_code == 200
    assert _post(protocol, "/form", b"a=12345", MAX_FORM_MEMORY_SIZE=6).status_code == 413
    assert _post(protocol, "/form", b"a=123456", MAX_CONTENT_LENGTH=7).status_code == 413
    assert _post(protocol, "/form", b"a=%C3x").status_code == 400
    assert _post(protocol, "/form", b"a=\xff").status_code == 400
    assert _post(protocol, "/form", b"a=1", "application/x-www-form-urlencoded; charset=utf-7").status_code == 400
    # Limits set on the request in the view are the ones the body is parsed with.
    assert _post(protocol, "/limited", b"a=12").json == {"form": [["a", "12"]]}
    assert _post(protocol, "/limited", b"a=123").status_code == 413
    assert _post(protocol, "/limited", b"a&b&c").status_code == 413


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_form_item_present_empty_and_missing(protocol: str) -> None:
    assert _post(protocol, "/name", b"name=A&name=B").text == "A"
    assert _post(protocol, "/name", b"name=").text == ""
    assert _post(protocol, "/name", b"other=1").status_code == 400


# ---------------------------------------------------------------------------------------------------------
# ImmutableMultiDict.__getitem__ against Werkzeug's
# ---------------------------------------------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "", "\u00e9", 1])


@given(data=st.dictionaries(_keys, st.lists(st.text(max_size=3), max_size=3)), key=_keys)
def test_getitem_answers_as_werkzeugs(data: dict[Any, list[str]], key: Any) -> None:
    ours: ImmutableMultiDict[Any, str] = ImmutableMultiDict()
    theirs: werkzeug.datastructures.ImmutableMultiDict[Any, str] = werkzeug.datastructures.ImmutableMultiDict()
    dict.update(ours, data)  # the way the parsers build them, empty lists included
    dict.update(theirs, data)
    try:
        expected: Any = theirs[key]
    except KeyError as e:
        expected = (type(e), e.args)
    try:
        got: Any = ours[key]
    except KeyError as e:
        got = (type(e), e.args)
        assert isinstance(e, werkzeug.exceptions.BadRequestKeyError)
    assert got == expected


def test_getitem_with_an_unhashable_key_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ImmutableMultiDict([("a", "1")])[[]]  # type: ignore[index]


# ---------------------------------------------------------------------------------------------------------
# Headers.__setitem__ against Werkzeug's and the checks
# ---------------------------------------------------------------------------------------------------------

_names = st.sampled_from(["X-Hook", "x-hook", "Content-Type", "X:Y", "", "X\nY", "X\rY", "X\x00Y", "\u00c9t\u00e9"])
_values = st.text(alphabet=st.sampled_from(["a", "1", " ", "\t", "\r", "\n", "\x00", "\x7f", "\u00e9", "\u20ac"]),
                  max_size=4) | st.integers()  # fmt: skip


@settings(max_examples=300)
@given(steps=st.lists(st.tuples(_names, _values), max_size=6))
def test_setitem_stores_what_werkzeug_does_and_refuses_what_the_check_refuses(steps: list[tuple[str, Any]]) -> None:
    ours = Headers([("Content-Type", "text/plain"), ("X-Hook", "0"), ("x-hook", "00")])
    theirs = werkzeug.datastructures.Headers(list(ours.items()))
    for name, value in steps:
        try:
            _check_header(name, str(value))
        except ValueError:
            before = list(ours.items())
            with pytest.raises(ValueError):
                ours[name] = value
            assert list(ours.items()) == before
            continue
        ours[name] = value
        theirs[name] = value
        assert list(ours.items()) == list(theirs.items())


@pytest.mark.parametrize("bad", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b", "\u20ac"])
def test_a_name_set_before_does_not_let_a_bad_value_through(bad: str) -> None:
    headers = Headers()
    headers["X-Cached"] = "1"
    headers["X-Cached"] = "2"
    with pytest.raises(ValueError):
        headers["X-Cached"] = bad
    assert list(headers.items()) == [("X-Cached", "2")]
    headers["X-Cached"] = "tab\tand \u00e9"  # a tab and latin-1 text are valid values
    assert headers["X-Cached"] == "tab\tand \u00e9"


@pytest.mark.parametrize("bad_name", ["X:Y", "", "X\r\nY", "X\x00"])
def test_bad_names_are_refused_every_time(bad_name: str) -> None:
    headers = Headers()
    for _ in range(2):
        with pytest.raises(ValueError):
            headers[bad_name] = "1"
    assert not headers


def test_a_json_body_given_a_byte_at_a_time_is_read_whole_and_a_short_one_is_400() -> None:
    # get_data() and get_json() read an announced length with the same reader as forms: short reads loop.
    app = Ampulla(__name__)

    @app.route("/echo", methods=["POST"])
    def echo() -> Any:
        return {"got": request.get_json()}

    body = b'{"name": "Alice", "tags": ["a", "b"]}'
    wsgi_input = SlowInput(body, step=1)
    status, answer = _wsgi(app, "/echo", wsgi_input, str(len(body)), "application/json")
    assert status == 200
    assert json.loads(answer) == {"got": {"name": "Alice", "tags": ["a", "b"]}}
    assert len(wsgi_input.asked) == len(body)
    status, answer = _wsgi(app, "/echo", SlowInput(b"{}", step=1), "10", "application/json")
    assert status == 400
    assert b"ended after 2 bytes" in answer


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
@pytest.mark.parametrize("digits", [19, 20, 4301, 20000])
def test_a_content_length_of_thousands_of_digits_is_over_the_limit_not_a_500(protocol: str, digits: int) -> None:
    app = _form_app()
    huge = "1" * digits
    assert _post_raw(protocol, app, "/form", b"x=y", huge)[0] == 413
    unlimited = _form_app(MAX_CONTENT_LENGTH=None)
    assert _post_raw(protocol, unlimited, "/form", b"x=y", huge)[0] == 413  # the form memory limit
    assert _post_raw(protocol, app, "/name", b"name=z", "0" * 30 + "6") == (200, b"z")  # leading zeros: 6
    assert _post_raw(protocol, app, "/name", b"name=z", "0" * 18 + "6") == (200, b"z")
    # The property (ASGI requests read it too) gives a number over any limit, not a ValueError.
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_LENGTH": huge, "wsgi.input": io.BytesIO()}
    length = Request.from_environ(environ).content_length
    assert length is not None and length > 10**18
