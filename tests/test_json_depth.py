"""Nesting limit of JSON bodies (``MAX_JSON_DEPTH``): the same body gets the same answer wherever it is parsed.

The standard library's decoder recurses, and gives up (``RecursionError``) when the interpreter's stack is
full: a 700-level body used to parse in a shallow thread (a ``def`` view in the ASGI thread pool) and fail in
a deep one. The limit is a property of the body alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ampulla import Ampulla, request
from ampulla.json import nesting_exceeds
from ampulla.testing import TestResponse


def _app(**config: Any) -> Ampulla:
    app = Ampulla(__name__)
    app.config.update(config)

    @app.post("/sync")
    def sync_view() -> Any:
        return {"depth": _depth(request.get_json())}

    @app.post("/async")
    async def async_view() -> Any:
        return {"depth": _depth(request.get_json())}

    @app.post("/silent")
    def silent_view() -> Any:
        return {"value": request.get_json(silent=True) is not None}

    return app


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        nested = [item for item in level if isinstance(item, list | dict)]
        if not nested:
            break
        depth += 1
        level = [child for item in nested for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth // 2) + b"[" * (depth - depth // 2) + b"1" + b"]" * (depth - depth // 2) + (
        b"}" * (depth // 2)
    )


def _in_deep_stack(frames: int, call: Callable[[], TestResponse]) -> TestResponse:
    if frames == 0:
        return call()
    return _in_deep_stack(frames - 1, call)


VIEWS = pytest.mark.parametrize("route", ["/sync", "/async"])
PROTOCOLS = pytest.mark.parametrize("protocol", ["wsgi", "asgi"])


@PROTOCOLS
@VIEWS
def test_limit_is_exact(protocol: str, route: str) -> None:
    client = _app().test_client(protocol=protocol)
    ok = client.post(route, data=_nested(512), content_type="application/json")
    assert ok.status_code == 200
    assert ok.json == {"depth": 512}
    deep = client.post(route, data=_nested(513), content_type="application/json")
    assert deep.status_code == 400
    assert "nested more than 512 levels" in deep.text


@PROTOCOLS
@VIEWS
@pytest.mark.parametrize("depth", [300, 700])
def test_same_answer_from_a_deep_stack(protocol: str, route: str, depth: int) -> None:
    client = _app().test_client(protocol=protocol)
    body = _nested(depth)
    shallow = client.post(route, data=body, content_type="application/json")
    deep = _in_deep_stack(300, lambda: client.post(route, data=body, content_type="application/json"))
    assert shallow.status_code == deep.status_code == (200 if depth <= 512 else 400)


@PROTOCOLS
def test_silent_gives_none_past_the_limit(protocol: str) -> None:
    client = _app(MAX_JSON_DEPTH=3).test_client(protocol=protocol)
    assert client.post("/silent", json=[[[1]]]).json == {"value": True}
    assert client.post("/silent", json=[[[[1]]]]).json == {"value": False}


@PROTOCOLS
def test_limit_is_one_setting_away(protocol: str) -> None:
    client = _app(MAX_JSON_DEPTH=None).test_client(protocol=protocol)
    assert client.post("/sync", data=_nested(600), content_type="application/json").json == {"depth": 600}
    # Past what the decoder can do, still a client error.
    assert client.post("/sync", data=b"[" * 50_000 + b"]" * 50_000, content_type="application/json").status_code == 400


@pytest.mark.parametrize(
    ("document", "limit", "exceeds"),
    [
        ("1", 0, False),
        ("[]", 0, True),
        ("[]", 1, False),
        ('{"a": [{"b": []}]}', 3, True),
        ('{"a": [{"b": []}]}', 4, False),
        (json.dumps(["[[[[[[", "{{{{", '\\"[[['] * 10), 1, False),  # brackets in strings are text
        ("[" * 20 + "]" * 20, 19, True),
        ("[]" * 1000, 1, False),  # many arrays side by side are not deep
    ],
)
def test_nesting_exceeds(document: str, limit: int, exceeds: bool) -> None:
    assert nesting_exceeds(document, limit) is exceeds
    for encoding in ("utf-8", "utf-16", "utf-32-be"):
        assert nesting_exceeds(document.encode(encoding), limit) is exceeds


def test_nesting_exceeds_ignores_bracket_bytes_inside_utf16_characters() -> None:
    # U+5B00 is the bytes 5B 00 in UTF-16-LE: not a bracket.
    document = '["' + "\u5b00" * 50 + '"]'
    assert nesting_exceeds(document.encode("utf-16-le"), 1) is False
