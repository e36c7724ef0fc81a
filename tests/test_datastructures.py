"""Request and response data are Werkzeug's data structures, as Flask code and extensions check them."""

from __future__ import annotations

import io
from typing import Any

import pytest
import werkzeug.datastructures as wz

from ampulla import Ampulla, request
from ampulla.datastructures import Headers, MultiDict, header_pairs

PROTOCOLS = pytest.mark.parametrize("protocol", ["wsgi", "asgi"])


@PROTOCOLS
def test_request_data_are_werkzeug_types(protocol: str) -> None:
    app = Ampulla(__name__)

    @app.post("/upload")
    async def upload() -> Any:
        upload = request.files["doc"]
        return {
            "args": isinstance(request.args, wz.ImmutableMultiDict),
            "form": isinstance(request.form, wz.ImmutableMultiDict),
            "files": isinstance(request.files, wz.ImmutableMultiDict) and isinstance(upload, wz.FileStorage),
            "values": isinstance(request.values, wz.CombinedMultiDict),
            "headers": isinstance(request.headers, wz.Headers),
            "tags": request.form.getlist("tag"),
            "page": request.args.get("page", type=int),
            "bad_page": request.args.get("bad", 1, type=int),
            "upload": [upload.filename, upload.content_type, upload.read().decode()],
        }

    answer = app.test_client(protocol=protocol).post(
        "/upload?page=2&bad=x",
        data={"tag": ["a", "b"], "doc": (io.BytesIO(b"hello"), "doc.txt", "text/plain")},
    )
    assert answer.json == {
        "args": True, "form": True, "files": True, "values": True, "headers": True, "tags": ["a", "b"],
        "page": 2, "bad_page": 1, "upload": ["doc.txt", "text/plain", "hello"],
    }  # fmt: skip


@PROTOCOLS
def test_a_missing_key_is_a_400_keyerror(protocol: str) -> None:
    app = Ampulla(__name__)

    @app.post("/")
    def index() -> str:
        try:
            request.form["missing"]
        except KeyError as e:
            assert type(e).__name__ == "BadRequestKeyError"
            raise
        return "unreachable"

    assert app.test_client(protocol=protocol).post("/", data={"x": "1"}).status_code == 400


@PROTOCOLS
@pytest.mark.parametrize("replacement", ["werkzeug-headers", "multidict", "dict"])
def test_an_extension_may_replace_the_response_headers(protocol: str, replacement: str) -> None:
    app = Ampulla(__name__)

    @app.after_request
    def swap(response: Any) -> Any:
        assert isinstance(response.headers, wz.Headers)
        pairs = [("Content-Type", "text/plain"), ("X-One", "1"), ("X-One", "2")]
        if replacement == "werkzeug-headers":
            response.headers = wz.Headers(pairs)
        elif replacement == "multidict":
            response.headers = wz.MultiDict(pairs)
        else:
            response.headers = dict(pairs[:2])
        return response

    app.add_url_rule("/", "index", lambda: "ok")
    answer = app.test_client(protocol=protocol).get("/")
    assert (answer.status_code, answer.text) == (200, "ok")
    expected = ["1"] if replacement == "dict" else ["1", "2"]
    assert answer.headers.getlist("X-One") == expected


def test_unsafe_header_values_are_refused_when_set() -> None:
    headers = Headers()
    for name, value in [("X-A", "a\r\nSet-Cookie: x=1"), ("X-A", "a\x00b"), ("X-A", "snow \u2603"), ("X:A", "v")]:
        with pytest.raises(ValueError):
            headers.set(name, value)
        with pytest.raises(ValueError):
            headers.add(name, value)
        with pytest.raises(ValueError):
            headers[name] = value
    assert list(headers) == []
    headers["X-Ok"] = "fine"
    with pytest.raises(ValueError):
        headers.set("X-Ok", "bad\n")
    assert headers["X-Ok"] == "fine"  # a refused value leaves the header as it was
    with pytest.raises(ValueError):
        header_pairs(wz.MultiDict([("X-B", "a\nb")]))  # checked on the way out when an extension set them


def test_setting_a_header_replaces_its_lines_as_werkzeug_does() -> None:
    ours, theirs = Headers(), wz.Headers()
    for headers in (ours, theirs):
        headers.add("X-A", "1")
        headers.add("Vary", "Cookie")
        headers.add("x-a", "2")
        headers.add("X-A", "3")
        headers["x-A"] = 4
        headers["Vary"] = "Accept"
        headers["X-New"] = "n"
        headers.set("X-New", "m")
        headers[0] = ("X-First", "f")
    assert ours.to_wsgi_list() == theirs.to_wsgi_list() == [("X-First", "f"), ("Vary", "Accept"), ("X-New", "m")]
    with pytest.raises(ValueError):
        ours[0] = ("X-First", "a\nb")
    with pytest.raises(ValueError):
        ours[0:1] = [("X-First", "ok"), ("X-Bad", "a\rb")]
    assert ours.to_wsgi_list() == [("X-First", "f"), ("Vary", "Accept"), ("X-New", "m")]


def test_header_lookups_answer_as_werkzeugs() -> None:
    lines = [("Content-Type", "text/plain"), ("X-Count", "3"), ("x-count", "4"), ("X-Word", "three")]
    ours, theirs = Headers(lines), wz.Headers(lines)
    for key in ("content-type", "X-COUNT", "X-Missing", "X-Word"):
        assert (key in ours) == (key in theirs)
        assert ours.get(key) == theirs.get(key)
        assert ours.get(key, "default") == theirs.get(key, "default")
        assert ours.get(key, -1, type=int) == theirs.get(key, -1, type=int)
        assert ours.getlist(key) == theirs.getlist(key)
    assert 3 not in ours


def test_request_data_lookups_answer_as_werkzeugs() -> None:
    from ampulla.datastructures import ImmutableMultiDict

    pairs = [("a", "1"), ("a", "x"), ("b", "two"), ("c", "")]
    ours, theirs = ImmutableMultiDict(pairs), wz.ImmutableMultiDict(pairs)
    assert isinstance(ours, wz.ImmutableMultiDict)
    for key in ("a", "b", "c", "missing"):
        assert ours.get(key) == theirs.get(key)
        assert ours.get(key, "d") == theirs.get(key, "d")
        assert ours.get(key, -1, type=int) == theirs.get(key, -1, type=int)
        assert ours.getlist(key) == theirs.getlist(key)
        assert ours.getlist(key, type=int) == theirs.getlist(key, type=int)
    with pytest.raises(KeyError):
        ours["missing"]


def test_multidict_is_werkzeugs() -> None:
    data = MultiDict([("a", "1"), ("a", "2")])
    assert isinstance(data, wz.MultiDict)
    assert data.to_dict(flat=False) == {"a": ["1", "2"]}
