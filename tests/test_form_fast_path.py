"""The fast paths of request input and response headers: ``request.form[key]`` and
``response.headers[name] = value``.

Each fast path must answer exactly what the general path answers (Werkzeug's ``ImmutableMultiDict`` and
``Headers``, the header checks), errors included.
"""

from __future__ import annotations

from typing import Any

import pytest
import werkzeug.datastructures
import werkzeug.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st

from ampulla.datastructures import Headers, ImmutableMultiDict, _check_header

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
