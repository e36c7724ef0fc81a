"""Tests for ampulla.http: Werkzeug's header helpers as Ampulla uses them, and Ampulla's percent-decoding.

Ampulla parses request headers with Werkzeug's functions; the properties here hold for any text a client can
send, since a parser that raised would turn a request into a 500.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from urllib.parse import unquote as urllib_unquote
from urllib.parse import unquote_to_bytes as urllib_unquote_to_bytes

import pytest
import werkzeug.http
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.sansio.http import is_resource_modified
from werkzeug.sansio.http import parse_cookie as sansio_parse_cookie

from ampulla import http

# ---------------------------------------------------------------------------------------------------------
# Werkzeug's helpers
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "dump_cookie",
        "dump_header",
        "dump_options_header",
        "generate_etag",
        "http_date",
        "is_resource_modified",
        "parse_accept_header",
        "parse_cache_control_header",
        "parse_cookie",
        "parse_dict_header",
        "parse_etags",
        "parse_list_header",
        "parse_options_header",
        "parse_range_header",
        "quote_etag",
        "unquote_etag",
    ],
)
def test_header_helpers_are_werkzeugs(name: str) -> None:
    assert getattr(http, name) is getattr(werkzeug.http, name)


#: Text shaped like HTTP header values, with the characters parsers split on, and anything at all.
header_text = st.one_of(
    st.text(max_size=120),
    st.text(
        alphabet=st.sampled_from([*" \t,;=\"'\\-*/:%0123456789abcdefGMTJanWw", "\x00", "\xff", "é", "\u2028"]),
        max_size=120,
    ),
)


@given(header_text)
def test_options_header_parsing_never_raises(value: str) -> None:
    mimetype, options = http.parse_options_header(value)
    assert isinstance(mimetype, str)
    assert all(key == key.lower() for key in options)


@given(header_text)
def test_cookie_parsing_never_raises(header: str) -> None:
    # What Request.cookies uses, as Flask's request does.
    cookies = sansio_parse_cookie(header, ImmutableMultiDict)
    assert all(isinstance(value, str) for _, value in cookies.items(multi=True))


token_chars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


cookie_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=100)


@given(st.text(token_chars, min_size=1, max_size=20), cookie_values)
def test_dumped_cookie_parses_back(key: str, value: str) -> None:
    header = http.dump_cookie(key, value, max_age=60, httponly=True, samesite="Strict")
    pair = header.split(";", 1)[0]  # a browser sends back the first pair of Set-Cookie
    assert "\r" not in pair and "\n" not in pair
    cookies = sansio_parse_cookie(f"other=1; {pair}; last=2", ImmutableMultiDict)
    assert cookies[key] == value
    assert cookies["last"] == "2"


@given(header_text, header_text, header_text)
def test_conditional_request_evaluation_never_raises_but_overflow(range_: str, if_range: str, date: str) -> None:
    kwargs = {
        "http_range": range_,
        "http_if_range": if_range,
        "http_if_modified_since": date,
        "http_if_none_match": if_range,
        "http_if_match": range_,
        "etag": '"abc"',
        "last_modified": "Wed, 01 May 2024 12:00:00 GMT",
        "ignore_if_range": False,
    }
    try:
        assert isinstance(is_resource_modified(**kwargs), bool)
    except OverflowError:  # Werkzeug's parse_date: Response.make_conditional counts it as no date
        pass
    parsed = http.parse_range_header(range_)
    if parsed is not None:
        span = parsed.range_for_length(1000)
        assert span is None or 0 <= span[0] < span[1] <= 1000
    http.parse_etags(if_range)


# ---------------------------------------------------------------------------------------------------------
# parse_date and parse_if_range_header: Werkzeug's, without OverflowError
# ---------------------------------------------------------------------------------------------------------

HUGE_YEAR = "Mon, 01 Jan 99999999999 00:00:00 GMT"


def test_werkzeug_parse_date_overflows_on_a_huge_year() -> None:
    # The reason ampulla.http.parse_date exists: if Werkzeug stops raising, it can go.
    with pytest.raises(OverflowError):
        werkzeug.http.parse_date(HUGE_YEAR)


def test_parse_date_gives_none_for_a_huge_year() -> None:
    assert http.parse_date(HUGE_YEAR) is None
    assert http.parse_if_range_header(HUGE_YEAR).date is None
    assert http.parse_if_range_header(HUGE_YEAR).etag is None


def test_parse_date_otherwise_is_werkzeugs() -> None:
    assert http.parse_date("Wed, 01 May 2024 12:00:00 GMT") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert http.parse_date("junk") is None
    assert http.parse_date(None) is None
    assert http.parse_if_range_header('"abc"').etag == "abc"
    assert http.parse_if_range_header("Wed, 01 May 2024 12:00:00 GMT").date == datetime(2024, 5, 1, 12, tzinfo=UTC)


@given(header_text)
def test_parse_date_never_raises(value: str) -> None:
    result = http.parse_date(value)
    assert result is None or result.tzinfo is not None


@given(st.lists(st.one_of(st.integers(-(10**30), 10**30).map(str), st.sampled_from(["Jan", "GMT", "24:00", "-2359"]))))
def test_parse_date_never_raises_on_date_shaped_text(parts: list[str]) -> None:
    value = " ".join(parts)
    assert http.parse_date(value) == werkzeug_parse_date_or_none(value)
    http.parse_if_range_header(value)


def werkzeug_parse_date_or_none(value: str) -> datetime | None:
    try:
        return werkzeug.http.parse_date(value)
    except OverflowError:
        return None


# ---------------------------------------------------------------------------------------------------------
# unquote, unquote_to_bytes: urllib's results at a memory cost in proportion to the text
# ---------------------------------------------------------------------------------------------------------

escape_text = st.text(st.sampled_from([*"%0123456789abcdefABCDEFgG+ ", "é", "\u00ff", "\U0001f600"]), max_size=80)


@given(st.one_of(escape_text, st.text(max_size=80)))
def test_unquote_to_bytes_is_urllibs(text: str) -> None:
    assert http.unquote_to_bytes(text) == urllib_unquote_to_bytes(text)


@given(st.one_of(escape_text, st.text(max_size=80)), st.sampled_from(["utf-8", "latin-1"]))
def test_unquote_is_urllibs(text: str, charset: str) -> None:
    assert http.unquote(text, charset, "replace") == urllib_unquote(text, charset, "replace")


def test_unquote_raises_like_urllib_with_strict_errors() -> None:
    with pytest.raises(UnicodeDecodeError):
        http.unquote("%ff", "utf-8", "strict")
    with pytest.raises(UnicodeDecodeError):
        urllib_unquote("%ff", "utf-8", "strict")


@pytest.mark.parametrize("text", ["%" * 12_000, "%g" * 6_000, "%%" * 6_000 + "%41"])
def test_invalid_escapes_cost_memory_in_proportion_to_the_text(text: str) -> None:
    tracemalloc.start()
    try:
        http.unquote_to_bytes(text)
        http.unquote(text, "utf-8", "replace")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # urllib took about 190 bytes per byte of such text (2.3 MB for 12,000 "%").
    assert peak < 20 * len(text)


@given(st.lists(st.sampled_from(["%", "%4", "%41", "%e9", "%C3%A9", "%x4", "x", "\\", "\\x41", "\\n", "\n", "\x00",
                                 "%%", "%0a", "%5C", "%5cx41", "a", "é", "\U0001f600"]), max_size=20).map("".join))
def test_unquote_to_bytes_is_urllibs_with_backslashes_and_line_ends(text: str) -> None:
    assert http.unquote_to_bytes(text) == urllib_unquote_to_bytes(text)


def test_unquote_to_bytes_with_a_lone_surrogate_raises_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        http.unquote_to_bytes("%41\ud800")
