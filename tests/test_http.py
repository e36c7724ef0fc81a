"""Tests for ampulla.http: header parsing and formatting helpers."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ampulla.exceptions import RequestedRangeNotSatisfiable
from ampulla.http import (
    MAX_RANGES,
    ETags,
    dump_cookie,
    generate_etag,
    http_date,
    if_range_matches,
    is_resource_modified,
    parse_accept,
    parse_cookie,
    parse_date,
    parse_etags,
    parse_options_header,
    parse_range_header,
    quote_etag,
    unquote_etag,
)

# ---------------------------------------------------------------------------------------------------------
# parse_options_header
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("", {})),
        ("", ("", {})),
        ("text/html", ("text/html", {})),
        ("  Text/HTML  ", ("text/html", {})),
        ("text/html; charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('Text/HTML; Charset="utf-8"', ("text/html", {"charset": "utf-8"})),
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            ("multipart/form-data", {"boundary": "----WebKitFormBoundary7MA4YWxkTrZu0gW"}),
        ),
        ('multipart/form-data; boundary="a b;c"', ("multipart/form-data", {"boundary": "a b;c"})),
        ('form-data; name="a\\"b\\\\c"', ("form-data", {"name": 'a"b\\c'})),
        ("text/plain;charset=utf-8;format=flowed", ("text/plain", {"charset": "utf-8", "format": "flowed"})),
        ("text/plain; charset = utf-8 ", ("text/plain", {"charset": "utf-8"})),
        ("text/plain; a=1; a=2", ("text/plain", {"a": "1"})),
        ("text/plain; novalue; b=2", ("text/plain", {"b": "2"})),
        ("text/plain; ;;; b=2;", ("text/plain", {"b": "2"})),
        ('text/plain; a="unterminated', ("text/plain", {"a": "unterminated"})),
        ("text/plain; a=", ("text/plain", {"a": ""})),
    ],
)
def test_parse_options_header(value: str | None, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_options_header(value) == expected


def test_rfc2231_extended_parameter_wins_over_the_plain_one() -> None:
    value = "attachment; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20file.txt"
    assert parse_options_header(value) == ("attachment", {"filename": "naïve file.txt"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("attachment; filename*=iso-8859-1'en'caf%E9.txt", "café.txt"),
        ("attachment; filename*=''plain.txt", "plain.txt"),
        ("attachment; filename*=no-such-charset''x%41", "xA"),
        ("attachment; filename*=UTF-8''bad%FF", "bad\ufffd"),
        ("attachment; filename*=nocharsetmarkers%20here", "nocharsetmarkers here"),
    ],
)
def test_rfc2231_values_are_decoded_tolerantly(value: str, expected: str) -> None:
    assert parse_options_header(value)[1]["filename"] == expected


@given(st.text(max_size=200))
def test_parse_options_header_never_raises(value: str) -> None:
    mimetype, options = parse_options_header(value)
    assert mimetype == mimetype.lower().strip()
    assert all(key == key.lower() for key in options)


# ---------------------------------------------------------------------------------------------------------
# cookies
# ---------------------------------------------------------------------------------------------------------


def test_parse_cookie_basic() -> None:
    cookies = parse_cookie("session=abc123; theme=dark; lang=en-US")
    assert cookies.to_dict() == {"session": "abc123", "theme": "dark", "lang": "en-US"}


def test_parse_cookie_missing_or_empty_header() -> None:
    assert parse_cookie(None) == {}
    assert parse_cookie("") == {}
    assert parse_cookie(b"") == {}


def test_one_malformed_cookie_does_not_drop_the_others() -> None:
    # SimpleCookie gives up on the whole header at the first of these.
    header = 'a=1; junk; b="unterminated; c=x y z; d=[1,2]; e=\\"; =noname; f={"k":"v"}; g=2'
    cookies = parse_cookie(header)
    assert cookies["a"] == "1"
    assert cookies["b"] == '"unterminated'
    assert cookies["c"] == "x y z"
    assert cookies["d"] == "[1,2]"
    assert cookies["e"] == '\\"'
    assert cookies["f"] == '{"k":"v"}'
    assert cookies["g"] == "2"
    assert "junk" not in cookies
    assert "" not in cookies


def test_parse_cookie_trims_whitespace_and_keeps_inner_equals() -> None:
    cookies = parse_cookie("  a =  1  ;\tb=x=y==;c=")
    assert cookies.to_dict() == {"a": "1", "b": "x=y==", "c": ""}


def test_parse_cookie_keeps_every_value_of_a_repeated_name_first_first() -> None:
    cookies = parse_cookie("sid=specific; sid=general")
    assert cookies["sid"] == "specific"
    assert cookies.getlist("sid") == ["specific", "general"]


def test_parse_cookie_unquotes_backslash_and_octal_escapes() -> None:
    cookies = parse_cookie(r'a="h\303\251\040llo\073\"\\"; b=""; c="plain"')
    assert cookies["a"] == 'hé llo;"\\'
    assert cookies["b"] == ""
    assert cookies["c"] == "plain"


def test_invalid_utf8_in_escapes_is_replaced_not_raised() -> None:
    assert parse_cookie(r'a="\377\376x"; b=1').to_dict() == {"a": "\ufffd\ufffdx", "b": "1"}


def test_parse_cookie_decodes_raw_utf8_from_bytes_and_wsgi_latin1_text() -> None:
    raw = "name=Zoë; city=Zürich".encode()
    assert parse_cookie(raw).to_dict() == {"name": "Zoë", "city": "Zürich"}
    # What a WSGI server puts in environ["HTTP_COOKIE"] for those bytes.
    assert parse_cookie(raw.decode("latin-1")).to_dict() == {"name": "Zoë", "city": "Zürich"}
    assert parse_cookie(b"bad=\xff\xfe; ok=1").to_dict() == {"bad": "\ufffd\ufffd", "ok": "1"}
    assert parse_cookie("emoji=😀").to_dict() == {"emoji": "😀"}


def test_dump_cookie_plain_value() -> None:
    assert dump_cookie("sid", "abc123") == "sid=abc123; Path=/"


def test_dump_cookie_quotes_values_outside_cookie_octets() -> None:
    assert dump_cookie("a", 'hé llo;"\\', path=None) == r'a="h\303\251\040llo\073\"\\"'
    assert dump_cookie("a", "x,y", path=None) == r'a="x\054y"'
    assert dump_cookie("a", "", path=None) == "a="


def test_dump_cookie_attributes() -> None:
    header = dump_cookie(
        "sid", "v", path="/app", domain="example.com", secure=True, httponly=True, samesite="lax"
    )
    assert header == "sid=v; Domain=example.com; Secure; HttpOnly; Path=/app; SameSite=Lax"


def test_dump_cookie_max_age_also_sets_expires() -> None:
    before = time.time()
    header = dump_cookie("a", "1", max_age=timedelta(hours=1))
    assert "Max-Age=3600" in header
    expires = re.search(r"Expires=([^;]+)", header)
    assert expires is not None
    parsed = parse_date(expires.group(1))
    assert parsed is not None
    assert before + 3600 - 2 <= parsed.timestamp() <= time.time() + 3600 + 1


def test_dump_cookie_expires_forms() -> None:
    expected = "Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    assert expected in dump_cookie("a", expires=0)
    assert expected in dump_cookie("a", expires=datetime(1970, 1, 1, tzinfo=UTC))
    assert expected in dump_cookie("a", expires="Thu, 01 Jan 1970 00:00:00 GMT")
    header = dump_cookie("a", max_age=0, expires=0)
    assert "Max-Age=0" in header and expected in header


def test_deleting_a_cookie() -> None:
    header = dump_cookie("sid", "", max_age=0)
    assert header.startswith("sid=; Expires=") and "Max-Age=0" in header


@pytest.mark.parametrize("samesite", ["None", "none"])
def test_samesite_none_implies_secure(samesite: str) -> None:
    assert dump_cookie("a", samesite=samesite) == "a=; Secure; Path=/; SameSite=None"


def test_partitioned_implies_secure() -> None:
    assert dump_cookie("a", "1", partitioned=True) == "a=1; Secure; Path=/; Partitioned"


@pytest.mark.parametrize("key", ["", "a b", "a;b", "a=b", "é", "a\nb", 'a"b', "a,b", "(a)"])
def test_dump_cookie_refuses_invalid_names(key: str) -> None:
    with pytest.raises(ValueError, match="not a valid token"):
        dump_cookie(key, "v")


def test_dump_cookie_refuses_unknown_samesite() -> None:
    with pytest.raises(ValueError, match="samesite"):
        dump_cookie("a", samesite="sometimes")


@pytest.mark.parametrize(
    "kwargs",
    [{"path": "/a; HttpOnly"}, {"domain": "evil.com\r\nSet-Cookie: x=1"}, {"expires": "x; Domain=evil.com"}],
)
def test_dump_cookie_refuses_attribute_injection(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="control character"):
        dump_cookie("a", "v", **kwargs)  # type: ignore[arg-type]


def test_dump_cookie_refuses_unencodable_text() -> None:
    with pytest.raises(ValueError):
        dump_cookie("a", "\ud800")


token_chars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(st.text(token_chars, min_size=1, max_size=20), st.text(max_size=100))
def test_cookie_round_trip(key: str, value: str) -> None:
    header = dump_cookie(key, value, max_age=60, httponly=True, samesite="Strict")
    # A browser keeps the first pair of Set-Cookie and sends it back in Cookie.
    pair = header.split(";", 1)[0]
    assert pair.isascii() and " " not in pair
    cookies = parse_cookie(f"other=1; {pair}; last=2")
    assert cookies[key] == value
    assert cookies["last"] == "2"
    # And the same through the bytes path.
    assert parse_cookie(pair.encode())[key] == value


@given(st.text(max_size=200))
def test_parse_cookie_never_raises_on_text(header: str) -> None:
    cookies = parse_cookie(header)
    assert all(key and key == key.strip() for key in cookies)


@given(st.binary(max_size=200))
def test_parse_cookie_never_raises_on_bytes(header: bytes) -> None:
    cookies = parse_cookie(header)
    assert all(isinstance(value, str) for _, value in cookies.items(multi=True))


# ---------------------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------------------


def test_http_date_formats_imf_fixdate() -> None:
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(784111777.999) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(datetime(1994, 11, 6, 8, 49, 37)) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(datetime(1994, 11, 6, 9, 49, 37, tzinfo=timezone(timedelta(hours=1)))) == (
        "Sun, 06 Nov 1994 08:49:37 GMT"
    )
    assert http_date(date(1994, 11, 6)) == "Sun, 06 Nov 1994 00:00:00 GMT"


def test_http_date_defaults_to_now() -> None:
    parsed = parse_date(http_date())
    assert parsed is not None
    assert abs(parsed.timestamp() - time.time()) < 2


def test_http_date_out_of_range_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        http_date(1e20)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        "Sun, 06 Nov 1994 09:49:37 +0100",
    ],
)
def test_parse_date_accepts_the_three_http_formats(value: str) -> None:
    assert parse_date(value) == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [None, "", "garbage", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "x" * 1000],
)
def test_parse_date_gives_none_for_garbage(value: str | None) -> None:
    assert parse_date(value) is None


@given(st.text(max_size=60))
def test_parse_date_never_raises(value: str) -> None:
    result = parse_date(value)
    assert result is None or result.tzinfo is UTC


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_http_date_round_trips_to_the_second(moment: datetime) -> None:
    assume(moment.year >= 1900)  # two-digit-year quirks aside, HTTP dates are modern
    assert parse_date(http_date(moment)) == moment.replace(microsecond=0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------
# ETags
# ---------------------------------------------------------------------------------------------------------


def test_quote_and_unquote_etag() -> None:
    assert quote_etag("abc") == '"abc"'
    assert quote_etag("abc", weak=True) == 'W/"abc"'
    assert unquote_etag('"abc"') == ("abc", False)
    assert unquote_etag('W/"abc"') == ("abc", True)
    assert unquote_etag(' w/"abc" ') == ("abc", True)
    assert unquote_etag("abc") == ("abc", False)
    assert unquote_etag(None) == (None, False)
    assert unquote_etag("") == (None, False)


@pytest.mark.parametrize("bad", ['a"b', "a\nb", "a\x00b"])
def test_quote_etag_refuses_invalid_tags(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_etag(bad)


def test_parse_etags() -> None:
    etags = parse_etags('"a", W/"b", "c,d" ,"e"')
    assert etags.contains("a")
    assert etags.contains("c,d")
    assert etags.contains("e")
    assert not etags.contains("b")
    assert etags.contains_weak("b")
    assert etags.is_weak("b") and not etags.is_weak("a")
    assert etags.is_strong("a") and not etags.is_strong("b")
    assert "a" in etags and "b" not in etags
    assert etags.contains_raw('W/"b"') and etags.contains_raw('W/"a"') and etags.contains_raw('"a"')
    assert not etags.contains_raw('"b"') and not etags.contains_raw('W/"zzz"') and not etags.contains_raw("")
    assert etags.as_set() == {"a", "c,d", "e"}
    assert etags.as_set(include_weak=True) == {"a", "b", "c,d", "e"}
    assert not etags.star_tag
    assert bool(etags)


def test_parse_etags_star() -> None:
    etags = parse_etags(" * ")
    assert etags.star_tag
    assert etags.contains("anything") and etags.contains_weak("anything")
    assert etags.to_header() == "*"


def test_parse_etags_empty_and_junk() -> None:
    assert not parse_etags(None)
    assert not parse_etags("")
    assert not parse_etags(" , ,, ")
    etags = parse_etags('"good", ""bad""junk, W/ "spaced", unquoted')
    assert etags.contains("good")
    assert etags.contains_weak("spaced")
    assert etags.contains("unquoted")


@pytest.mark.parametrize("junk", [", " * 50_000, '"' + "," * 100_000, "a b," * 25_000, "W/" * 50_000])
def test_parse_etags_is_linear_on_hostile_headers(junk: str) -> None:
    start = time.perf_counter()
    parse_etags(junk)
    assert parse_etags(junk + ' x y, "tag"').contains("tag")
    assert time.perf_counter() - start < 0.5


def test_etags_to_header_round_trips() -> None:
    etags = parse_etags('"b", W/"w", "a"')
    assert parse_etags(etags.to_header()).as_set(include_weak=True) == {"a", "b", "w"}
    assert parse_etags(etags.to_header()).is_weak("w")


@given(st.text(max_size=100))
def test_parse_etags_never_raises(value: str) -> None:
    etags = parse_etags(value)
    again = parse_etags(etags.to_header())
    assert again.star_tag == etags.star_tag
    assert again.as_set() == etags.as_set()
    assert again.as_set(include_weak=True) == etags.as_set(include_weak=True)


def test_generate_etag_is_stable_and_content_dependent() -> None:
    assert generate_etag(b"hello") == generate_etag(b"hello")
    assert generate_etag(b"hello") != generate_etag(b"hello!")
    assert re.fullmatch(r"[0-9a-f]{40}", generate_etag(b""))


# ---------------------------------------------------------------------------------------------------------
# ranges
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-499", [(0, 500)]),
        ("bytes=500-999", [(500, 1000)]),
        ("bytes=500-", [(500, 1000)]),
        ("bytes=-500", [(500, 1000)]),
        ("bytes=-5000", [(0, 1000)]),
        ("bytes=0-0", [(0, 1)]),
        ("bytes=999-999", [(999, 1000)]),
        ("bytes=900-5000", [(900, 1000)]),
        ("bytes=0-1, 10-19", [(0, 2), (10, 20)]),
        ("bytes=10-19,0-1", [(10, 20), (0, 2)]),  # order kept when nothing overlaps
        ("Bytes = 0-1", [(0, 2)]),
        ("bytes=0-1,,", [(0, 2)]),
        ("bytes=0-1, 2000-3000", [(0, 2)]),  # unsatisfiable parts are dropped
        ("bytes=0-99999999999999999999999999", [(0, 1000)]),
    ],
)
def test_parse_range_header(value: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range_header(value, 1000) == expected


def test_overlapping_ranges_are_merged_so_the_response_cannot_grow() -> None:
    assert parse_range_header("bytes=0-499, 100-199, 400-600, -100", 1000) == [(0, 601), (900, 1000)]
    assert parse_range_header(", ".join(["bytes=0-"] + ["0-"] * 50), 1000) == [(0, 1000)]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "items=0-1",
        "bytes=abc",
        "bytes=5-1",
        "bytes=-",
        "bytes=1-2-3",
        "bytes=0 - 1",
        "bytes=+1-2",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits: int() accepts them, HTTP does not
        "bytes=0-1;x",
        "bytes=" + ",".join(["0-1"] * (MAX_RANGES + 1)),
    ],
)
def test_invalid_range_headers_are_ignored(value: str | None) -> None:
    assert parse_range_header(value, 1000) is None


@pytest.mark.parametrize(
    ("value", "length"),
    [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-5", 0)],
)
def test_unsatisfiable_ranges_are_416_with_the_length(value: str, length: int) -> None:
    with pytest.raises(RequestedRangeNotSatisfiable) as info:
        parse_range_header(value, length)
    assert info.value.code == 416
    assert ("Content-Range", f"bytes */{length}") in info.value.get_headers()


def test_huge_digit_strings_are_cheap() -> None:
    start = time.perf_counter()
    with pytest.raises(RequestedRangeNotSatisfiable):
        parse_range_header("bytes=" + "9" * 100_000 + "-", 10)
    assert time.perf_counter() - start < 0.5


@given(st.text(max_size=100), st.integers(0, 10_000))
def test_parse_range_header_gives_ranges_within_the_body_none_or_416(value: str, length: int) -> None:
    try:
        ranges = parse_range_header(value, length)
    except RequestedRangeNotSatisfiable as exc:
        assert exc.length == length
        return
    if ranges is not None:
        assert 1 <= len(ranges) <= MAX_RANGES
        assert all(0 <= start < stop <= length for start, stop in ranges)


@given(
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000)), min_size=1, max_size=20),
    st.integers(1, 1500),
)
def test_merged_ranges_never_cover_more_than_the_body(pairs: list[tuple[int, int]], length: int) -> None:
    specs = ",".join(f"{min(a, b)}-{max(a, b)}" for a, b in pairs)
    try:
        ranges = parse_range_header(f"bytes={specs}", length)
    except RequestedRangeNotSatisfiable:
        assert all(min(a, b) >= length for a, b in pairs)
        return
    assert ranges is not None
    assert sum(stop - start for start, stop in ranges) <= length
    covered = {i for start, stop in ranges for i in range(start, stop)}
    wanted = {i for a, b in pairs for i in range(min(a, b), min(max(a, b) + 1, length))}
    assert covered == wanted


# ---------------------------------------------------------------------------------------------------------
# conditional requests
# ---------------------------------------------------------------------------------------------------------

MODIFIED = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
MODIFIED_HTTP = "Wed, 01 May 2024 12:00:00 GMT"


def test_not_modified_when_the_etag_matches() -> None:
    assert not is_resource_modified('"abc"', None, "abc", None)
    assert not is_resource_modified('"x", W/"abc"', None, '"abc"', None)  # weak comparison
    assert not is_resource_modified('"abc"', None, 'W/"abc"', None)
    assert not is_resource_modified("*", None, "abc", None)
    assert not is_resource_modified(parse_etags('"abc"'), None, "abc", None)


def test_modified_when_the_etag_differs_or_is_unknown() -> None:
    assert is_resource_modified('"old"', None, "new", None)
    assert is_resource_modified('"old"', None, None, MODIFIED)
    assert is_resource_modified("junk,,", None, "abc", None)


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    # The date alone would say "not modified", but the tag differs.
    assert is_resource_modified('"old"', MODIFIED_HTTP, "new", MODIFIED)
    # The date alone would say "modified", but the tag matches.
    assert not is_resource_modified('"abc"', "Mon, 01 Jan 2001 00:00:00 GMT", "abc", MODIFIED)


def test_if_modified_since() -> None:
    assert not is_resource_modified(None, MODIFIED_HTTP, None, MODIFIED)  # sub-second part ignored
    assert not is_resource_modified(None, "Thu, 02 May 2024 00:00:00 GMT", None, MODIFIED)
    assert is_resource_modified(None, "Tue, 30 Apr 2024 00:00:00 GMT", None, MODIFIED)
    assert not is_resource_modified("", MODIFIED.replace(microsecond=0), "abc", MODIFIED_HTTP)
    assert not is_resource_modified(ETags(), datetime(2024, 5, 1, 12), None, MODIFIED.timestamp())


def test_unusable_validators_mean_modified() -> None:
    assert is_resource_modified(None, None, "abc", MODIFIED)
    assert is_resource_modified(None, "garbage", None, MODIFIED)
    assert is_resource_modified(None, MODIFIED_HTTP, None, None)
    assert is_resource_modified(None, MODIFIED_HTTP, None, 1e30)


def test_if_range() -> None:
    assert if_range_matches(None, "abc", None)
    assert if_range_matches("  ", "abc", None)
    assert if_range_matches('"abc"', "abc", None)
    assert if_range_matches('"abc"', '"abc"', None)
    assert not if_range_matches('"abc"', "other", None)
    assert not if_range_matches('W/"abc"', "abc", None)  # weak tags never match If-Range
    assert not if_range_matches('"abc"', 'W/"abc"', None)
    assert not if_range_matches('"abc"', None, None)
    assert if_range_matches(MODIFIED_HTTP, None, MODIFIED)
    assert if_range_matches(MODIFIED_HTTP, None, MODIFIED_HTTP)
    assert not if_range_matches("Tue, 30 Apr 2024 00:00:00 GMT", None, MODIFIED)
    assert not if_range_matches(MODIFIED_HTTP, None, None)
    assert not if_range_matches("garbage", "abc", MODIFIED)


# ---------------------------------------------------------------------------------------------------------
# Accept
# ---------------------------------------------------------------------------------------------------------


def test_parse_accept_sorts_by_quality_then_specificity() -> None:
    header = "text/*;q=0.5, */*;q=0.1, text/html, application/json;q=0.9, text/plain;format=flowed"
    assert parse_accept(header) == [
        ("text/html", 1.0),
        ("text/plain", 1.0),
        ("application/json", 0.9),
        ("text/*", 0.5),
        ("*/*", 0.1),
    ]


def test_parse_accept_keeps_header_order_for_ties_and_q0_last() -> None:
    assert parse_accept("en-US, fr;q=0, de, *") == [("en-us", 1.0), ("de", 1.0), ("*", 1.0), ("fr", 0.0)]


@pytest.mark.parametrize("value", [None, "", ",,,", "text/html;q=2", "a b", "x;q=nan", "x;q=1e0", "x;q=-1"])
def test_parse_accept_skips_junk(value: str | None) -> None:
    assert parse_accept(value) == []


def test_parse_accept_tolerates_junk_next_to_good_items() -> None:
    assert parse_accept("gzip;q=abc, br;q=0.8, deflate;;q=0.5, identity ;q=1.000") == [
        ("identity", 1.0),
        ("br", 0.8),
        ("deflate", 0.5),
    ]


@given(st.text(max_size=200))
def test_parse_accept_never_raises_and_is_sorted(value: str) -> None:
    result = parse_accept(value)
    qualities = [q for _, q in result]
    assert qualities == sorted(qualities, reverse=True)
    assert all(0.0 <= q <= 1.0 for q in qualities)
