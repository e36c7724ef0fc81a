"""Hostile input: property-based tests over WSGI and ASGI, and the nasty cases spelled out.

The invariant everywhere: a 4xx or a correct answer. Never a 500, never an exception out of the WSGI/ASGI
callable, nothing logged, bounded memory. The application is the fuzz harness's (``tests/fuzz/harness.py``):
production mode (``TESTING`` off) with small limits (``MAX_CONTENT_LENGTH`` 1 MiB, ``MAX_FORM_MEMORY_SIZE``
64 KiB, ``MAX_FORM_PARTS`` 200), views for every converter, forms, JSON, cookies, sessions and files.

Property tests go through ``app.test_client(protocol=...)``; cases that need control over the ASGI messages
(slow uploads) or over the raw environ use the harness drivers. ``AMPULLA_HYPOTHESIS_EXAMPLES`` sets the
examples per property (default 200).
"""

from __future__ import annotations

import io
import json
import os
import string
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampulla.http import dump_cookie
from ampulla.testing import TestResponse, encode_multipart
from tests.fuzz import harness
from tests.fuzz.harness import (
    FILE_CONTENT,
    MAX_CONTENT_LENGTH,
    MAX_FORM_MEMORY_SIZE,
    MAX_FORM_PARTS,
    SECRET_MARKER,
    Req,
    canonical,
    capture_logs,
    get_app,
    run_asgi,
    run_wsgi,
    send,
    typed,
)
from tests.fuzz.targets import (
    _check_range_answer,
    _serializer,
    files_by_name,
    grouped,
    reference_pairs,
)

EXAMPLES = int(os.environ.get("AMPULLA_HYPOTHESIS_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PROTOCOLS = pytest.mark.parametrize("protocol", ["wsgi", "asgi"])

#: Text a client can put in a URL or a body (no lone surrogates: they cannot be encoded).
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
#: Header text as a server hands it over: latin-1, no CR/LF.
header_text = st.text(alphabet=st.characters(min_codepoint=0x09, max_codepoint=0xFF,
                                             blacklist_characters="\r\n"), max_size=200)
#: Names and filenames browsers send verbatim inside quotes.
safe_name = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\%'),
                    min_size=1, max_size=20).filter(lambda s: s != "_charset_" and s[1:3] != ":\\")


def call(protocol: str, path: str = "/", method: str = "GET", **kwargs: Any) -> TestResponse:
    """One request through the test client; fails on a 5xx or anything logged."""
    client = get_app().test_client(use_cookies=False, protocol=protocol)
    with capture_logs(f"{protocol} {method} {path!r}"):
        response = client.open(path, method=method, **kwargs)
    assert response.status_code < 500, f"{protocol} {method} {path!r}: {response.status_code} {response.data[:300]!r}"
    assert SECRET_MARKER not in response.data
    return response


def raw(protocol: str, req: Req, **kwargs: Any) -> harness.Result:
    """One request through the raw WSGI or ASGI callable (harness checks, memory optional)."""
    return send(req, protocols=(protocol,), **kwargs)[0]


def get(protocol: str, route: str, headers: dict[str, str]) -> harness.Result:
    """A GET through the raw callable with headers as a server hands them over (any latin-1 byte but CR/LF)."""
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    result = raw(protocol, Req("GET", route.encode(), b"", pairs))
    assert SECRET_MARKER not in result.body
    return result


def form_post(body: bytes, content_type: str, route: bytes = b"/form", **kwargs: Any) -> Req:
    return Req("POST", route, b"", [(b"content-type", content_type.encode("latin-1"))], body, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Router and URL building
# ---------------------------------------------------------------------------------------------------------


@PROTOCOLS
@PROPERTY
@given(segments=st.lists(any_text, max_size=5), method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PUT"]))
def test_any_text_path_gets_an_answer(protocol: str, segments: list[str], method: str) -> None:
    # "/p/" first: a path starting with "//" is a URL with a host to the test client ("//host/path"); such
    # request targets reach the app in test_any_bytes_path_gets_an_answer.
    call(protocol, "/p/" + "/".join(quote(s, safe="") for s in segments), method)


@PROTOCOLS
@PROPERTY
@given(path=st.binary(max_size=60))
def test_any_bytes_path_gets_an_answer(protocol: str, path: bytes) -> None:
    call(protocol, environ_overrides={"PATH_INFO": "/" + path.decode("latin-1")})


_segment = any_text.map(lambda s: s.replace("/", "")).filter(bool)
# Werkzeug's path converter ("[^/].*?") does not match a newline.
_path = any_text.map(lambda s: s.lstrip("/").replace("\n", "")).filter(bool)
# Werkzeug's float converter takes digits.digits, no exponent: floats whose str() has none (below 1e16, and
# rounded so that none is below 1e-4).
_finite = st.floats(min_value=-1e15, max_value=1e15).map(lambda f: round(f, 4))
CONVERTER_VALUES: dict[str, Any] = {
    "conv_int": st.fixed_dictionaries({"value": st.integers(min_value=0, max_value=10**40)}),
    "conv_signed": st.fixed_dictionaries({"value": st.integers(min_value=-(10**40), max_value=10**40)}),
    "conv_bounded": st.fixed_dictionaries({"value": st.integers(min_value=1, max_value=100)}),
    "conv_fixed": st.fixed_dictionaries({"value": st.integers(min_value=0, max_value=9999)}),
    "conv_float": st.fixed_dictionaries({"value": _finite.map(abs)}),
    "conv_sfloat": st.fixed_dictionaries({"value": _finite}),
    "conv_uuid": st.fixed_dictionaries({"value": st.uuids()}),
    "conv_string": st.fixed_dictionaries({"value": _segment}),
    "conv_minmax": st.fixed_dictionaries({"value": _segment.filter(lambda s: 2 <= len(s) <= 8)}),
    "conv_exact": st.fixed_dictionaries({"value": st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                          blacklist_characters="/"), min_size=3, max_size=3)}),
    "conv_path": st.fixed_dictionaries({"value": _path}),
    "conv_any": st.fixed_dictionaries({"value": st.sampled_from(harness.ANY_ITEMS)}),
    "conv_multi": st.fixed_dictionaries({"a": st.integers(min_value=0), "b": _segment, "c": _path}),
    "conv_slashed": st.fixed_dictionaries({"value": _segment}),
    "bp.item": st.fixed_dictionaries({"value": st.integers(min_value=0, max_value=2**64)}),
}


@PROTOCOLS
@PROPERTY
@given(data=st.data(), endpoint=st.sampled_from(sorted(CONVERTER_VALUES)),
       query=st.lists(st.tuples(any_text, any_text), max_size=4))
def test_url_for_then_match_gives_back_the_values(
    protocol: str, data: st.DataObject, endpoint: str, query: list[tuple[str, str]]
) -> None:
    values = data.draw(CONVERTER_VALUES[endpoint])
    extra = {f"q{i}_{k}": v for i, (k, v) in enumerate(query)}
    app = get_app()
    with app.test_request_context():
        url = app.url_for(endpoint, **values, **extra)
    answer = call(protocol, url).json
    assert answer["endpoint"] == endpoint, url
    assert answer["values"] == {k: typed(v) for k, v in sorted(values.items())}, url
    assert answer["args"] == [[k, v] for k, v in extra.items()], url


# ---------------------------------------------------------------------------------------------------------
# Query strings and urlencoded bodies
# ---------------------------------------------------------------------------------------------------------


@PROTOCOLS
@PROPERTY
@given(query=st.binary(max_size=200) | st.lists(st.sampled_from([b"a", b"=", b"&", b"%", b"%C3%A9", b"+", b"%zz",
                                                                 b"\xc3\xa9", b"\xff", b"%ff", b"\x00"]))
       .map(b"".join))
def test_query_string_parses_like_parse_qsl(protocol: str, query: bytes) -> None:
    response = call(protocol, "/args", environ_overrides={"QUERY_STRING": query.decode("latin-1")})
    status, pairs = reference_pairs(query, "utf-8", MAX_FORM_PARTS, 414)
    assert response.status_code == status
    if pairs is not None:
        assert response.json["args"] == pairs


@PROTOCOLS
@PROPERTY
@given(pairs=st.lists(st.tuples(any_text, any_text), max_size=20))
def test_query_string_round_trips(protocol: str, pairs: list[tuple[str, str]]) -> None:
    assert call(protocol, "/args", query_string=urlencode(pairs)).json["args"] == grouped(pairs)


@PROTOCOLS
@PROPERTY
@given(pairs=st.lists(st.tuples(any_text, any_text), max_size=20), route=st.sampled_from(["/form", "/form-async"]))
def test_urlencoded_body_round_trips(protocol: str, pairs: list[tuple[str, str]], route: str) -> None:
    response = call(protocol, route, "POST", data=urlencode(pairs),
                    content_type="application/x-www-form-urlencoded")
    assert response.json == {"form": grouped(pairs), "files": []}


@PROTOCOLS
@PROPERTY
@given(body=st.binary(max_size=300))
def test_urlencoded_junk_body(protocol: str, body: bytes) -> None:
    response = call(protocol, "/form", "POST", data=body, content_type="application/x-www-form-urlencoded")
    status, pairs = reference_pairs(body, "utf-8", MAX_FORM_PARTS, 413)
    assert response.status_code == status
    if pairs is not None:
        assert response.json["form"] == pairs


@PROTOCOLS
@pytest.mark.parametrize("body", [b"%" * 12_000, b"x%" * 6_000, b"a=%" + b"%zz" * 4_000, b"%%=%%" * 3_000])
def test_invalid_percent_escapes_cost_no_more_memory_than_the_body(protocol: str, body: bytes) -> None:
    """A body of invalid escapes took 190 bytes per byte sent at peak (urllib's unquote): 2.3 MB for 12 KB."""
    req = form_post(body, "application/x-www-form-urlencoded")
    (result,) = harness.send(req, protocols=(protocol,), measure=True)  # checks the memory bound itself
    assert result.status == 200


# ---------------------------------------------------------------------------------------------------------
# multipart
# ---------------------------------------------------------------------------------------------------------

_file_part = st.tuples(safe_name, safe_name | st.just(""), st.binary(max_size=300))


@PROTOCOLS
@PROPERTY
@given(fields=st.lists(st.tuples(safe_name, any_text), max_size=6), files=st.lists(_file_part, max_size=4))
def test_multipart_round_trips(
    protocol: str, fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> None:
    items: list[tuple[str, Any]] = [*fields, *((n, (io.BytesIO(c), f, "application/x-test")) for n, f, c in files)]
    body, content_type = encode_multipart(items)
    response = call(protocol, "/form", "POST", data=body, content_type=content_type)
    got = response.json
    expected_files = [[n, f, "application/x-test", len(c), harness.file_digest(c)] for n, f, c in files]
    assert got["form"] == grouped(fields)
    assert grouped(files_by_name(got["files"])) == grouped(files_by_name(expected_files))


@PROTOCOLS
@PROPERTY
@given(fields=st.lists(st.tuples(safe_name, any_text), min_size=1, max_size=4), data=st.data())
def test_multipart_truncated_or_corrupted(protocol: str, fields: list[tuple[str, str]], data: st.DataObject) -> None:
    body, content_type = encode_multipart(fields, boundary="hostile")
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    junk = data.draw(st.binary(max_size=20))
    corrupted = body[:cut] + junk + body[cut + len(junk):] if data.draw(st.booleans()) else body[:cut]
    response = call(protocol, "/form", "POST", data=corrupted, content_type=content_type)
    assert response.status_code in (200, 400, 413)
    if corrupted == body:
        assert response.json["form"] == grouped(fields)


# ---------------------------------------------------------------------------------------------------------
# Cookies, JSON
# ---------------------------------------------------------------------------------------------------------

_cookie_name = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=10)


@PROTOCOLS
@PROPERTY
@given(cookies=st.lists(st.tuples(_cookie_name, any_text), min_size=1, max_size=6))
def test_dumped_cookies_parse_back_exactly(protocol: str, cookies: list[tuple[str, str]]) -> None:
    header = "; ".join(dump_cookie(k, v).split("; ")[0] for k, v in cookies)
    response = call(protocol, "/cookies", headers={"Cookie": header})
    assert response.json["cookies"] == grouped(cookies)


@PROTOCOLS
@PROPERTY
@given(header=header_text)
def test_junk_cookie_header(protocol: str, header: str) -> None:
    call(protocol, "/cookies", headers={"Cookie": header})
    assert call(protocol, "/session", headers={"Cookie": header}).json["session"] == "{}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**50), max_value=10**50) | st.floats() | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)


@PROTOCOLS
@PROPERTY
@given(value=json_values)
def test_json_round_trips(protocol: str, value: Any) -> None:
    response = call(protocol, "/json", "POST", data=json.dumps(value), content_type="application/json")
    assert response.json["canon"] == canonical(value)


@PROTOCOLS
@PROPERTY
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()[:-1]))
def test_junk_json_answers_400(protocol: str, body: bytes) -> None:
    response = call(protocol, "/json", "POST", data=body, content_type="application/json")
    try:
        value = json.loads(body.decode("utf-8")) if body[:1] not in (b"\x00", b"\xef", b"\xfe", b"\xff") \
            else json.loads(body)
    except ValueError:
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        assert response.json["canon"] == canonical(value)


# ---------------------------------------------------------------------------------------------------------
# Ranges and conditional requests
# ---------------------------------------------------------------------------------------------------------

_range_item = st.one_of(
    st.tuples(st.integers(0, 1100), st.integers(0, 1100)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 1100).map(lambda n: f"{n}-"),
    st.integers(0, 1100).map(lambda n: f"-{n}"),
)


@PROTOCOLS
@PROPERTY
@given(items=st.lists(_range_item, min_size=1, max_size=8), route=st.sampled_from(["/file", "/file-mem"]))
def test_range_bytes_are_the_file_bytes(protocol: str, items: list[str], route: str) -> None:
    response = call(protocol, route, headers={"Range": "bytes=" + ",".join(items)})
    result = harness.Result(protocol, response.status_code, list(response.headers), response.data)
    _check_range_answer(result, "GET")


@PROTOCOLS
@PROPERTY
@given(headers=st.dictionaries(st.sampled_from(["Range", "If-Range", "If-None-Match", "If-Modified-Since",
                                                "If-Match", "If-Unmodified-Since"]), header_text, min_size=1))
def test_garbage_conditional_headers(protocol: str, headers: dict[str, str]) -> None:
    for route in ("/file", "/file-mem", "/files/hello.txt"):
        response = call(protocol, route, headers=headers)
        _check_range_answer(harness.Result(protocol, response.status_code, list(response.headers), response.data),
                            "GET")


# ---------------------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------------------

_ORIGINAL_SESSION = {"n": 1, "user": "alice"}


def _good_cookie() -> str:
    serializer = get_app().session_interface.get_signing_serializer(get_app())
    assert serializer is not None
    return serializer.dumps(_ORIGINAL_SESSION)


def _session(protocol: str, value: str) -> str:
    return str(get(protocol, "/session", {"Cookie": f"session={value}"}).json()["session"])


@PROTOCOLS
@PROPERTY
@given(data=st.data())
def test_tampered_session_cookie_is_an_empty_session(protocol: str, data: st.DataObject) -> None:
    original = _good_cookie()
    position = data.draw(st.integers(0, len(original)))
    insert = data.draw(st.text(alphabet=string.ascii_letters + string.digits + "-_.=", max_size=4))
    delete = data.draw(st.integers(0, 3))
    tampered = original[:position] + insert + original[position + delete:]
    got = _session(protocol, tampered)
    assert got in ("{}", canonical(_ORIGINAL_SESSION))
    if tampered == original:
        assert got == canonical(_ORIGINAL_SESSION)


# ---------------------------------------------------------------------------------------------------------
# Explicit cases: bodies and limits
# ---------------------------------------------------------------------------------------------------------


def test_slow_upload_in_one_byte_messages_does_not_pin_memory() -> None:
    """A 256 KiB body sent as 262,144 one-byte ASGI messages must not cost much more than 256 KiB.

    Regression: ``asgi.read_body`` used to keep every message as its own bytes object in a list until
    the body was complete (or over 1 MiB): about 90 bytes per message, 23.5 MB at peak for this body (~94 MB
    for 1 MiB). Since dd40013 it appends to one bytearray: 0.54 MB (2.1 times the body).
    """
    body = b"x" * (256 * 1024)
    req = Req("POST", b"/data", b"", [(b"content-type", b"application/octet-stream")], body, chunk_size=1)
    started = time.monotonic()
    result = run_asgi(get_app(), req, measure=True)
    assert result.status == 200
    assert result.json() == {"len": len(body), "digest": harness.file_digest(body)}
    assert time.monotonic() - started < 60
    assert result.peak is not None and result.peak < 4 * len(body) + 512 * 1024, (
        f"{result.peak} bytes at peak for a {len(body)}-byte body in one-byte messages"
    )


@pytest.mark.parametrize("route", [b"/upload-stream", b"/form"])
def test_slow_upload_memory_bounded_elsewhere(route: bytes) -> None:
    """``@stream_request_body`` never buffers; a slow form (few messages of 100 bytes) stays bounded."""
    body = b"a=" + b"x" * (8 * 1024)
    req = Req("POST", route, b"", [(b"content-type", b"application/x-www-form-urlencoded")], body,
              chunk_size=1 if route == b"/upload-stream" else 100)
    result = raw("asgi", req, measure=True)
    assert result.status == 200
    assert result.peak is not None and result.peak < 2 * 1024 * 1024


@PROTOCOLS
@pytest.mark.parametrize("kind", ["fields", "files"])
def test_thousands_of_parts_answer_413(protocol: str, kind: str) -> None:
    items = [(f"f{i}", "v" if kind == "fields" else (io.BytesIO(b"v"), f"{i}.txt")) for i in range(5000)]
    body, content_type = encode_multipart(items)
    assert len(body) > MAX_CONTENT_LENGTH  # so /form would stop at the size; /big-form allows 4 MiB
    result = raw(protocol, form_post(body, content_type, route=b"/big-form"), measure=True)
    assert result.status == 413
    assert b"more than 200 parts" in result.body


@PROTOCOLS
@pytest.mark.parametrize(("parts", "status"), [(MAX_FORM_PARTS, 200), (MAX_FORM_PARTS + 1, 413)])
def test_form_part_limit_is_exact(protocol: str, parts: int, status: int) -> None:
    body, content_type = encode_multipart([("f", str(i)) for i in range(parts)])
    assert raw(protocol, form_post(body, content_type)).status == status
    urlencoded = "&".join(f"f={i}" for i in range(parts)).encode()
    assert raw(protocol, form_post(urlencoded, "application/x-www-form-urlencoded")).status == status


@PROTOCOLS
def test_many_query_args_answer_414(protocol: str) -> None:
    assert call(protocol, "/args", query_string="&".join(["a=1"] * MAX_FORM_PARTS)).status_code == 200
    response = call(protocol, "/args", query_string="&".join(["a=1"] * (MAX_FORM_PARTS + 1)))
    assert response.status_code == 414
    assert call(protocol, "/args", query_string="&" * 100_000 + "a=1").json["args"] == [["a", "1"]]


@PROTOCOLS
@pytest.mark.parametrize("where", [b"X-Junk: ", b'Content-Disposition: form-data; name="a"; x="'])
def test_megabyte_header_in_a_part_answers_400(protocol: str, where: bytes) -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n" + where + b"j" * (1024 * 1024)
            + b"\r\n\r\nv\r\n--b--\r\n")
    req = form_post(body, "multipart/form-data; boundary=b", route=b"/big-form", chunk_size=4096)
    result = raw(protocol, req, measure=True)
    assert result.status == 400
    assert b"header" in result.body


@PROTOCOLS
def test_large_body_is_spooled_not_held(protocol: str) -> None:
    """Past 1 MiB the ASGI adapter spools the body to a temporary file; the digest proves nothing was lost."""
    body = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    req = Req("POST", b"/big-upload", b"", [(b"content-type", b"application/octet-stream")], body)
    result = raw(protocol, req, measure=True, memory_bound=3 * 1024 * 1024)
    assert result.json() == {"len": len(body), "digest": harness.file_digest(body)}
    assert raw(protocol, form_post(body * 3, "application/octet-stream", route=b"/big-upload")).status == 413


@PROTOCOLS
def test_too_many_part_headers_answer_400(protocol: str) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(50))
    body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n" + headers + b"\r\nv\r\n--b--\r\n"
    assert raw(protocol, form_post(body, "multipart/form-data; boundary=b")).status == 400


@PROTOCOLS
@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("multipart/form-data; boundary=right", b"--wrong\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n"
     b"--wrong--\r\n", 400),
    ("multipart/form-data", b"--b\r\n", 400),
    ("multipart/form-data; boundary=" + "b" * 201, b"--b\r\n", 400),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nval", 400),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--b--\r\n",
     400),
    ("multipart/form-data; boundary=b", b"\x00junk preamble\xff\r\n--b\r\nContent-Disposition: form-data; "
     b"name=\"a\"\r\n\r\nv\r\n--b--\r\nepilogue \x00\xff", 200),
    ("multipart/form-data; boundary=b", b"", 200),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x\x00.txt\""
     b"\r\n\r\nv\r\n--b--\r\n", 400),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n"
     b"--b--\r\n", 400),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
     + b"v" * (MAX_FORM_MEMORY_SIZE + 1) + b"\r\n--b--\r\n", 413),
])
def test_malformed_multipart(protocol: str, content_type: str, body: bytes, status: int) -> None:
    result = raw(protocol, form_post(body, content_type), measure=True)
    assert result.status == status, result.body[:300]
    if status == 200 and body:
        assert result.json() == {"form": [["a", "v"]], "files": []}


@PROTOCOLS
@pytest.mark.parametrize(("raw_filename", "expected"), [
    (b"r\xe9sum\xe9.pdf", "r\xe9sum\xe9.pdf"),  # latin-1 from an old client: kept byte for byte
    (b"r\xc3\xa9sum\xc3\xa9.pdf", "r\xe9sum\xe9.pdf"),  # UTF-8
    (b"\xff\xfe\x80", "\xff\xfe\x80"),
    (b"", ""),
])
def test_non_utf8_filenames(protocol: str, raw_filename: bytes, expected: str) -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"" + raw_filename + b"\"\r\n"
            b"Content-Type: application/pdf\r\n\r\n%PDF\x00\xff\r\n--b--\r\n")
    result = raw(protocol, form_post(body, "multipart/form-data; boundary=b"))
    assert result.status == 200
    assert result.json()["files"] == [["up", expected, "application/pdf", 6, harness.file_digest(b"%PDF\x00\xff")]]


@PROTOCOLS
def test_body_over_the_limit_is_refused_while_streaming(protocol: str) -> None:
    body = b"a=" + b"x" * (MAX_CONTENT_LENGTH + 10)
    for length in (True, False):  # announced, then chunked (no Content-Length)
        req = form_post(body, "application/x-www-form-urlencoded", route=b"/data", content_length=length)
        result = raw(protocol, req, measure=True, memory_bound=4 * MAX_CONTENT_LENGTH)
        assert result.status == 413


@PROTOCOLS
def test_client_disconnecting_mid_body_is_a_4xx(protocol: str) -> None:
    req = form_post(b"a=1", "application/x-www-form-urlencoded", disconnect=True)
    assert raw(protocol, req).status == 400


# ---------------------------------------------------------------------------------------------------------
# Explicit cases: NUL bytes, headers, ranges, conditional requests, sessions, JSON
# ---------------------------------------------------------------------------------------------------------


@PROTOCOLS
def test_nul_bytes(protocol: str) -> None:
    assert call(protocol, "/int/%00").status_code == 404
    assert call(protocol, "/str/a%00b").json["values"] == {"value": ["str", json.dumps("a\x00b")]}
    assert call(protocol, "/files/hello.txt%00.png").status_code == 404
    assert call(protocol, "/args", query_string="a=%00&b\x00=c").json["args"] == [["a", "\x00"], ["b\x00", "c"]]
    assert get(protocol, "/cookies", {"Cookie": "a=\x00; b=1"}).json()["cookies"] == [["a", "\x00"], ["b", "1"]]
    assert get(protocol, "/session", {"Cookie": "session=\x00"}).json()["session"] == "{}"


@PROTOCOLS
def test_ten_thousand_headers_and_a_megabyte_header(protocol: str) -> None:
    """The adapters do not limit header count or size (the server does: h11, httptools, gunicorn); the app
    must still answer, in time linear in the size."""
    many = [(b"x-h%d" % i, b"v") for i in range(10_000)]
    started = time.monotonic()
    assert raw(protocol, Req("GET", b"/headers", b"", many)).status == 200
    huge = [(b"cookie", b"a=" + b"b" * (1024 * 1024)), (b"user-agent", b"u" * (1024 * 1024)),
            (b"content-type", b"multipart/form-data; " + b"x=y; " * 100_000)]
    assert raw(protocol, Req("POST", b"/headers", b"", huge)).status == 200
    assert time.monotonic() - started < 30


@PROTOCOLS
@pytest.mark.parametrize(("header", "status", "expected"), [
    # As Flask answers (Werkzeug's make_conditional): one satisfiable byte range gives 206, anything else 416,
    # so a response is never larger than the file.
    ("bytes=", 416, None),
    ("bytes=-0", 416, None),
    ("bytes=5-1", 416, None),
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(1000)), 416, None),
    ("bytes=" + ",".join(["0-999"] * 100), 416, None),  # overlapping: never repeated
    ("bytes=99999999999999999999999999-", 416, None),
    ("bytes=0-99999999999999999999999999", 206, FILE_CONTENT),
    ("bytes=-99999999999999999999999999", 416, None),
    ("bytes=" + "9" * 5000 + "-", 416, None),
    ("bytes=990-", 206, FILE_CONTENT[990:]),
    ("bytes=-10", 206, FILE_CONTENT[-10:]),
    ("items=0-1", 416, None),
    ("bytes=0-1,,,", 416, None),
    ("bytes=\x00-1", 416, None),
    ("bytes=1000-1000", 416, None),
])
def test_range_edge_cases(protocol: str, header: str, status: int, expected: bytes | None) -> None:
    for route in ("/file", "/file-mem"):
        result = get(protocol, route, {"Range": header})
        assert result.status == status
        _check_range_answer(result, "GET")
        if expected is not None:
            assert result.body == expected


@PROTOCOLS
@pytest.mark.parametrize("value", [
    "", " ", "*,", "W/", '"', '"""', ",,,,", "W/W/W/", "\x00", "\xff\xfe", ", " * 50_000, '"a", ' * 20_000,
    "Mon, 32 Jan 2024 00:00:00 GMT", "Mon, 01 Jan 99999 00:00:00 GMT",
    "Mon, 01 Jan 99999999999 00:00:00 GMT", "0", "-1", "Thu, 01 Jan 1970 00:00:00 +9999",
    "Sun, 06 Nov 1994 08:49:37 GMT" * 10, "1" * 1000, "Sun Nov  6 08:49:37 1994", "Sunday, 06-Nov-94 08:49:37 GMT",
])
def test_conditional_header_garbage(protocol: str, value: str) -> None:
    for name in ("If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"):
        for route in ("/file", "/file-mem"):
            result = get(protocol, route, {name: value, "Range": "bytes=0-9"})
            assert result.status in (200, 206, 304, 412), (name, value, result.status)
            _check_range_answer(result, "GET")


@PROTOCOLS
def test_real_validators_still_work(protocol: str) -> None:
    first = call(protocol, "/file")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert call(protocol, "/file", headers={"If-None-Match": etag}).status_code == 304
    assert call(protocol, "/file", headers={"If-Modified-Since": modified}).status_code == 304
    assert call(protocol, "/file", headers={"If-Match": '"other"'}).status_code == 412
    assert call(protocol, "/file", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert call(protocol, "/file", headers={"Range": "bytes=0-9", "If-Range": '"stale"'}).status_code == 200


@PROTOCOLS
def test_session_cookie_cases(protocol: str) -> None:
    original = _good_cookie()
    accepted = canonical(_ORIGINAL_SESSION)
    assert _session(protocol, original) == accepted
    for cut in range(len(original)):  # every truncation
        assert _session(protocol, original[:cut]) == "{}"
    _payload, _, rest = original.partition(".")
    assert _session(protocol, "eyJhZG1pbiI6dHJ1ZX0." + rest) == "{}"  # {"admin":true} with our signature
    assert _session(protocol, _serializer("attacker").dumps({"admin": True})) == "{}"
    assert _session(protocol, _serializer(harness.SECRET_KEY, salt="other").dumps({"admin": True})) == "{}"
    assert _session(protocol, _serializer(harness.SECRET_KEY, expired=True).dumps(_ORIGINAL_SESSION)) == "{}"
    assert _session(protocol, _serializer(harness.OLD_SECRET_KEY).dumps({"u": "x"})) == canonical({"u": "x"})
    assert _session(protocol, "." + original) == "{}"
    assert _session(protocol, "a" * 100_000) == "{}"
    assert _session(protocol, original.replace(".", "\x00")) == "{}"
    response = call(protocol, "/session/set", "POST", headers={"Cookie": f"session={original[:-1]}"})
    assert response.json == {"n": 1}


@PROTOCOLS
@pytest.mark.parametrize("route", ["/json", "/json-sync"])
@pytest.mark.parametrize("depth", [513, 5_000, 100_000])
def test_deeply_nested_json_answers_400(protocol: str, route: str, depth: int) -> None:
    """The stdlib decoder raises RecursionError (not a ValueError) past ~1000 levels: a 500."""
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth):
        response = call(protocol, route, "POST", data=body, content_type="application/json")
        if len(body) > harness.MAX_CONTENT_LENGTH:
            assert response.status_code == 413  # refused for its size before any parsing
        elif route == "/json":
            assert response.status_code == 400
        else:  # get_json(silent=True): None
            assert response.json == {"canon": "null"}


@PROTOCOLS
@pytest.mark.parametrize(("body", "status", "canon"), [
    (b"1" * 5000, 400, None),  # over Python's int digit limit: a ValueError
    (b"-" + b"9" * 4300, 200, "-" + "9" * 4300),
    (b"1e999999", 200, "inf"),
    (b"[NaN, -Infinity]", 200, "[nan,-inf]"),
    (b'"\\ud800"', 200, '"\\ud800"'),  # an escaped lone surrogate is valid JSON
    (b'"\xed\xa0\x80"', 400, None),  # an encoded surrogate is not UTF-8
    (b"\xff", 400, None),
    (b'\xef\xbb\xbf{"a": 1}', 200, '{"a":1}'),
    ('{"a": "é"}'.encode("utf-16"), 200, '{"a":"\\u00e9"}'),
    (b"", 400, None),
    (b"{" * 10 + b"\x00", 400, None),
    (b'{"a":1,"a":2}', 200, '{"a":2}'),
])
def test_json_edge_cases(protocol: str, body: bytes, status: int, canon: str | None) -> None:
    response = call(protocol, "/json", "POST", data=body, content_type="application/json")
    assert response.status_code == status
    if canon is not None:
        assert response.json["canon"] == canon


# ---------------------------------------------------------------------------------------------------------
# Regressions for the bugs found by fuzzing (failing until fixed; see docs/security.md, "Hostile input")
# ---------------------------------------------------------------------------------------------------------


@PROTOCOLS
@pytest.mark.parametrize(("content_type", "body"), [
    # charsets whose decoder raises UnicodeError (not UnicodeDecodeError) or with errors="replace"
    ("application/x-www-form-urlencoded; charset=idna", b"a=%78n--"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n"
     b"Content-Type: text/plain; charset=idna\r\n\r\nxn--\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"; "
     b"filename*=idna''x%ff\r\n\r\nv\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"; "
     b"filename*=punycode''%ff\r\n\r\nv\r\n--b--\r\n"),
    ("multipart/form-data; boundary*=idna''%ff", b"--b\r\n"),
    ("multipart/form-data; boundary*=a\x00''%ff", b"--b\r\n"),  # codecs.lookup: "embedded null character"
])
def test_charset_decoders_that_raise_unicode_error_answer_400(protocol: str, content_type: str, body: bytes) -> None:
    result = raw(protocol, form_post(body, content_type))
    assert result.status in (200, 400)


@PROTOCOLS
@pytest.mark.parametrize("query", [b"a=\x00", b"\x00", b"x=1&\x00=2"])
def test_redirect_with_nul_in_query_string(protocol: str, query: bytes) -> None:
    """the redirect copies the raw query string into Location; a NUL there makes Headers raise: 500."""
    for path in (b"/dir/name", b"/old/5", b"/dir"):
        result = raw(protocol, Req("GET", path, query))
        assert result.status == 308
        assert "\x00" not in (result.header("Location") or "")


def test_method_case_is_the_same_over_wsgi_and_asgi() -> None:
    """``Request.from_environ`` upper-cases the method, ``from_scope`` does not: "get /int/1" is 200 over
    WSGI and 405 over ASGI. One app object must answer the same over both protocols."""
    for method in ("get", "Post", "head"):
        req = Req(method, b"/form" if method == "Post" else b"/int/1", b"", [], b"")
        wsgi = run_wsgi(get_app(), req)
        asgi = run_asgi(get_app(), req)
        assert wsgi.status == asgi.status, (method, wsgi.status, asgi.status)


def test_fuzz_harness_app_is_in_production_mode() -> None:
    app = get_app()
    assert not app.testing and not app.debug and not app.should_propagate()
