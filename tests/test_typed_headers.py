"""Werkzeug's typed header properties on Ampulla's Request and Response, used as Flask code uses them.

Content negotiation, conditional GETs with ``make_conditional`` (304, 412, 206, 416), caching and CORS headers
set through properties, Basic and Bearer authorization; over WSGI and ASGI. Hostile header values parse to empty
objects or ``None`` and never make a 500.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.datastructures import (
    Authorization,
    ContentSecurityPolicy,
    ETags,
    HeaderSet,
    IfRange,
    LanguageAccept,
    MIMEAccept,
    Range,
    RequestCacheControl,
    ResponseCacheControl,
    WWWAuthenticate,
)
from werkzeug.http import COEP, COOP
from werkzeug.user_agent import UserAgent

from ampulla import Ampulla, request
from ampulla.testing import AmpullaClient
from ampulla.wrappers import Request, Response

BODY = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes
MODIFIED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def client(app: Ampulla, protocol: str) -> AmpullaClient:
    return app.test_client(protocol=protocol)


def _request(headers: dict[str, str], method: str = "GET") -> Request:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/", "wsgi.url_scheme": "http", "SERVER_NAME": "localhost"}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return Request.from_environ(environ)


# ------------------------------------------------------------------------------------------------ request
def test_content_negotiation_with_accept_mimetypes(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/report")
    def report() -> Any:
        best = request.accept_mimetypes.best_match(["application/json", "text/html"])
        if best == "application/json":
            return {"rows": 3}
        return "<p>3 rows</p>"

    assert client.get("/report", headers={"Accept": "application/json, text/html;q=0.5"}).json == {"rows": 3}
    assert client.get("/report", headers={"Accept": "text/html"}).text == "<p>3 rows</p>"
    assert client.get("/report", headers={"Accept": "text/*;q=0.9, */*;q=0.1"}).text == "<p>3 rows</p>"


def test_accept_properties_are_werkzeugs_types() -> None:
    req = _request(
        {
            "Accept": "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8",
            "Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8",
            "Accept-Charset": "utf-8, iso-8859-1;q=0.5",
            "Accept-Encoding": "gzip, br;q=0.9",
        }
    )
    assert isinstance(req.accept_mimetypes, MIMEAccept)
    assert req.accept_mimetypes.accept_html and req.accept_mimetypes.best == "text/html"
    assert req.accept_mimetypes["application/xml"] == 0.9
    assert isinstance(req.accept_languages, LanguageAccept)
    assert req.accept_languages.best_match(["en", "fr"]) == "fr"
    assert req.accept_charsets.best == "utf-8"
    assert "gzip" in req.accept_encodings and req.accept_encodings["br"] == 0.9
    # Cached: the same object on each read.
    assert req.accept_mimetypes is req.accept_mimetypes


def test_missing_headers_give_empty_objects_or_none() -> None:
    req = _request({})
    assert not req.accept_mimetypes and req.accept_mimetypes.provided is False
    assert not req.if_match and not req.if_none_match
    assert req.if_modified_since is None and req.if_unmodified_since is None
    assert isinstance(req.if_range, IfRange) and req.if_range.etag is None and req.if_range.date is None
    assert req.range is None
    assert isinstance(req.cache_control, RequestCacheControl) and not req.cache_control
    assert req.authorization is None
    assert isinstance(req.user_agent, UserAgent) and req.user_agent.string == "" and not req.user_agent
    assert req.origin is None and req.referrer is None and req.date is None and req.max_forwards is None
    assert req.access_control_request_headers is None and req.access_control_request_method is None
    assert req.content_md5 is None and req.content_encoding is None
    assert isinstance(req.pragma, HeaderSet) and not req.pragma


def test_conditional_and_cache_request_headers() -> None:
    req = _request(
        {
            "If-Match": '"a", W/"b"',
            "If-None-Match": '"x"',
            "If-Modified-Since": "Fri, 01 Mar 2024 12:00:00 GMT",
            "If-Unmodified-Since": "Sat, 02 Mar 2024 12:00:00 GMT",
            "If-Range": '"x"',
            "Range": "bytes=0-9",
            "Cache-Control": "no-cache, max-age=0",
            "Pragma": "no-cache",
            "Date": "Fri, 01 Mar 2024 12:00:00 GMT",
            "Max-Forwards": "3",
        }
    )
    assert isinstance(req.if_match, ETags) and req.if_match.contains("a") and req.if_match.is_weak("b")
    assert "x" in req.if_none_match
    assert req.if_modified_since == MODIFIED
    assert req.if_unmodified_since == MODIFIED + timedelta(days=1)
    assert req.if_range.etag == "x"
    assert isinstance(req.range, Range) and req.range.range_for_length(36) == (0, 10)
    assert req.cache_control.no_cache and req.cache_control.max_age == 0
    assert "no-cache" in req.pragma
    assert req.date == MODIFIED and req.max_forwards == 3


def test_basic_and_bearer_authorization(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/me")
    def me() -> Any:
        auth = request.authorization
        if auth is None:
            return "who?", 401, {"WWW-Authenticate": 'Basic realm="me"'}
        assert isinstance(auth, Authorization)
        return {"type": auth.type, "username": auth.username, "password": auth.password, "token": auth.token}

    basic = client.get("/me", headers={"Authorization": "Basic YWRhOnNlY3JldA=="})
    assert basic.json == {"type": "basic", "username": "ada", "password": "secret", "token": None}
    bearer = client.get("/me", headers={"Authorization": "Bearer abc.def"})
    assert bearer.json == {"type": "bearer", "username": None, "password": None, "token": "abc.def"}
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers={"Authorization": "Basic %%%not-base64"}).status_code == 401


def test_user_agent_and_cors_preflight_headers(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/api", methods=["GET", "OPTIONS"], provide_automatic_options=False)
    def api() -> Any:
        if request.method == "OPTIONS":
            response = Response(status=204)
            response.access_control_allow_origin = request.origin
            response.access_control_allow_methods = [request.access_control_request_method or "GET"]
            response.access_control_allow_headers = request.access_control_request_headers
            response.access_control_allow_credentials = True
            response.access_control_max_age = 600
            response.vary.add("Origin")
            return response
        return {"ua": request.user_agent.string}

    preflight = client.open(
        "/api",
        method="OPTIONS",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "X-Token, Content-Type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight.headers["Access-Control-Allow-Methods"] == "PUT"
    assert preflight.headers["Access-Control-Allow-Headers"] == "X-Token, Content-Type"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Access-Control-Max-Age"] == "600"
    assert preflight.headers["Vary"] == "Origin"
    assert client.get("/api", headers={"User-Agent": "curl/8.5"}).json == {"ua": "curl/8.5"}


# ------------------------------------------------------------------------------------------------ response
def test_response_cache_control_writes_back_to_the_header() -> None:
    response = Response("x")
    assert isinstance(response.cache_control, ResponseCacheControl)
    response.cache_control.max_age = 300
    response.cache_control.public = True
    assert response.headers["Cache-Control"] in ("max-age=300, public", "public, max-age=300")
    assert response.cache_control.max_age == 300
    response.cache_control.max_age = None
    response.cache_control.public = False
    assert "Cache-Control" not in response.headers


def test_response_date_properties_and_retry_after() -> None:
    response = Response("x")
    assert response.expires is None and response.last_modified is None and response.date is None
    response.last_modified = MODIFIED
    response.expires = MODIFIED + timedelta(days=1)
    assert response.headers["Last-Modified"] == "Fri, 01 Mar 2024 12:00:00 GMT"
    assert response.expires == MODIFIED + timedelta(days=1)
    response.age = 30
    assert response.headers["Age"] == "30" and response.age == timedelta(seconds=30)
    response.retry_after = 120
    retry = response.retry_after
    assert retry is not None and timedelta(seconds=110) < retry - datetime.now(UTC) <= timedelta(seconds=120)
    response.retry_after = None
    assert "Retry-After" not in response.headers
    response.headers["Retry-After"] = "soon"
    assert response.retry_after is None


def test_response_set_headers_and_simple_properties() -> None:
    response = Response("x")
    response.vary = ["Accept", "Cookie"]
    response.vary.add("Origin")
    assert response.headers["Vary"] == "Accept, Cookie, Origin"
    response.allow = {"GET", "HEAD"}
    assert set(response.allow) == {"GET", "HEAD"}
    response.content_language = "fr"
    assert response.headers["Content-Language"] == "fr"
    response.vary = None
    assert "Vary" not in response.headers
    response.content_location = "/doc/1"
    response.content_encoding = "gzip"
    response.accept_ranges = "bytes"
    assert (response.content_location, response.content_encoding, response.accept_ranges) == (
        "/doc/1",
        "gzip",
        "bytes",
    )
    response.content_length = 1
    assert response.content_length == 1
    response.content_range = "bytes 0-0/1"
    assert (response.content_range.start, response.content_range.stop, response.content_range.length) == (0, 1, 1)
    response.content_range = None
    assert "Content-Range" not in response.headers and not response.content_range
    assert response.cross_origin_opener_policy is COOP.UNSAFE_NONE
    response.cross_origin_opener_policy = COOP.SAME_ORIGIN
    response.cross_origin_embedder_policy = COEP.REQUIRE_CORP
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.cross_origin_embedder_policy is COEP.REQUIRE_CORP
    assert response.mimetype_params == {"charset": "utf-8"}
    response.mimetype_params["charset"] = "latin-1"
    assert response.headers["Content-Type"] == "text/html; charset=latin-1"


def test_content_security_policy_and_www_authenticate() -> None:
    response = Response("x")
    assert isinstance(response.content_security_policy, ContentSecurityPolicy)
    response.content_security_policy.default_src = "'self'"
    response.content_security_policy_report_only = "script-src 'none'"
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.content_security_policy_report_only.script_src == "'none'"
    response.www_authenticate = WWWAuthenticate("basic", {"realm": "api"})
    assert response.headers["WWW-Authenticate"] == "Basic realm=api"
    response.www_authenticate.parameters["realm"] = "other"
    assert response.headers["WWW-Authenticate"] == "Basic realm=other"
    response.www_authenticate = [WWWAuthenticate("basic", {"realm": "a"}), WWWAuthenticate("bearer")]
    assert response.headers.getlist("WWW-Authenticate") == ["Basic realm=a", "Bearer"]
    del response.www_authenticate
    assert "WWW-Authenticate" not in response.headers


def test_etags_direct_passthrough_and_cookie_size(app: Ampulla) -> None:
    response = Response(BODY)
    assert response.get_etag() == (None, None)
    response.add_etag()
    tag, weak = response.get_etag()
    assert tag is not None and len(tag) == 40 and weak is False
    response.set_etag("v1", weak=True)
    assert response.headers["ETag"] == 'W/"v1"' and response.get_etag() == ("v1", True)
    response.add_etag()
    assert response.get_etag() == ("v1", True)
    assert Response("x").direct_passthrough is False
    assert Response("x", direct_passthrough=True).direct_passthrough is True

    assert Response("x").max_cookie_size == 4093
    app.config["MAX_COOKIE_SIZE"] = 80
    with app.app_context():
        response = Response("x")
        assert response.max_cookie_size == 80
        with pytest.warns(UserWarning, match="cookie is too large"):
            response.set_cookie("big", "v" * 100)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            response.set_cookie("small", "v")


# ------------------------------------------------------------------------------------------------ make_conditional
@pytest.fixture
def conditional_app(app: Ampulla) -> Ampulla:
    @app.route("/doc", methods=["GET", "HEAD", "PUT"])
    def doc() -> Any:
        response = Response(BODY, mimetype="text/plain")
        response.set_etag("v1")
        response.last_modified = MODIFIED
        response.cache_control.no_cache = True
        return response.make_conditional(request, accept_ranges=True, complete_length=len(BODY))

    @app.route("/stream")
    def stream() -> Any:
        def chunks() -> Any:
            for i in range(0, len(BODY), 5):
                yield BODY[i : i + 5]

        response = Response(chunks(), mimetype="application/octet-stream")
        response.set_etag("s1")
        return response.make_conditional(request.environ or request, accept_ranges=True, complete_length=len(BODY))

    return app


def test_make_conditional_full_response(conditional_app: Ampulla, protocol: str) -> None:
    client = conditional_app.test_client(protocol=protocol)
    response = client.get("/doc")
    assert response.status_code == 200 and response.data == BODY
    assert response.headers["ETag"] == '"v1"' and response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == str(len(BODY)) and "Date" in response.headers


def test_make_conditional_answers_304(conditional_app: Ampulla, protocol: str) -> None:
    client = conditional_app.test_client(protocol=protocol)
    for headers in (
        {"If-None-Match": '"v1"'},
        {"If-None-Match": 'W/"v1", "other"'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Fri, 01 Mar 2024 12:00:00 GMT"},
        {"If-Modified-Since": "Sat, 02 Mar 2024 00:00:00 GMT"},
    ):
        response = client.get("/doc", headers=headers)
        assert response.status_code == 304, headers
        assert response.data == b""
        assert response.headers["ETag"] == '"v1"' and "Content-Type" not in response.headers
    assert client.get("/doc", headers={"If-None-Match": '"v0"'}).status_code == 200
    assert client.get("/doc", headers={"If-Modified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"}).status_code == 200
    # If-None-Match decides alone when present.
    assert (
        client.get(
            "/doc", headers={"If-None-Match": '"v0"', "If-Modified-Since": "Sat, 02 Mar 2024 00:00:00 GMT"}
        ).status_code
        == 200
    )
    assert client.head("/doc", headers={"If-None-Match": '"v1"'}).status_code == 304


def test_make_conditional_answers_412(conditional_app: Ampulla, protocol: str) -> None:
    client = conditional_app.test_client(protocol=protocol)
    assert client.get("/doc", headers={"If-Match": '"v0"'}).status_code == 412
    assert client.get("/doc", headers={"If-Match": 'W/"v1"'}).status_code == 412
    assert client.get("/doc", headers={"If-Match": '"v1"'}).status_code == 200
    assert client.get("/doc", headers={"If-Match": '"v0", "v1"'}).status_code == 200
    # As in Flask (Werkzeug's make_conditional), If-Unmodified-Since is not evaluated.
    assert client.get("/doc", headers={"If-Unmodified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"}).status_code == 200
    # Only GET and HEAD are concerned.
    assert client.put("/doc", headers={"If-Match": '"v0"'}).status_code == 200


def test_make_conditional_answers_ranges(conditional_app: Ampulla, protocol: str) -> None:
    client = conditional_app.test_client(protocol=protocol)
    for path in ("/doc", "/stream"):
        response = client.get(path, headers={"Range": "bytes=2-5"})
        assert response.status_code == 206, path
        assert response.data == BODY[2:6]
        assert response.headers["Content-Range"] == "bytes 2-5/36"
        assert response.headers["Content-Length"] == "4"
        suffix = client.get(path, headers={"Range": "bytes=-4"})
        assert suffix.status_code == 206 and suffix.data == BODY[-4:]
    # If-Range: the range applies only while the validator still matches.
    assert client.get("/doc", headers={"Range": "bytes=0-1", "If-Range": '"v1"'}).status_code == 206
    stale = client.get("/doc", headers={"Range": "bytes=0-1", "If-Range": '"v0"'})
    assert stale.status_code == 200 and stale.data == BODY
    dated = client.get("/doc", headers={"Range": "bytes=0-1", "If-Range": "Fri, 01 Mar 2024 12:00:00 GMT"})
    assert dated.status_code == 206
    # As in Flask: past the end, invalid, another unit or several ranges: 416 with the length.
    for junk in ("bytes=100-200", "bytes=5-2", "pages=1-2", "bytes=0-1,4-5", "bytes=abc"):
        refused = client.get("/doc", headers={"Range": junk})
        assert refused.status_code == 416 and refused.headers["Content-Range"] == "bytes */36", junk
        assert BODY not in refused.data
    # A date no datetime can hold is no date (Werkzeug's parse_date overflows): the full body, not a 500.
    huge = "Mon, 01 Jan 99999999999 00:00:00 GMT"
    assert client.get("/doc", headers={"Range": "bytes=0-1", "If-Range": huge}).status_code == 200
    assert client.get("/doc", headers={"If-Modified-Since": huge}).status_code == 200


def test_make_conditional_with_an_environ_and_without_validators() -> None:
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": '"x"'}
    response = Response("plain").make_conditional(environ)
    assert response.status_code == 200 and "Date" in response.headers
    assert Response("plain").make_conditional({"REQUEST_METHOD": "POST"}).headers.get("Date") is None


# ------------------------------------------------------------------------------------------------ hostile input
HOSTILE = [
    "",
    " ",
    ",,,;;;===",
    '"',
    "W/",
    "*, *",
    "\x00\x01\x7f",
    "é" * 50,
    "a" * 20_000,
    ", " * 5_000,
    "bytes=" + "0-1," * 2_000,
    "Basic " + "=" * 100,
    'Digest username="',
    "text/html;q=abc, */*;q=9.9, ;q=0",
    'max-age=-1, max-age=zz, no-cache="',
    "Thu, 99 Foo 20245 99:99:99 GMT",
    "Mon, 01 Jan 99999999999 00:00:00 GMT",
    "99999999999999999999999999999",
    "-5",
]
HEADERS = [
    "Accept",
    "Accept-Language",
    "Accept-Charset",
    "Accept-Encoding",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "If-Range",
    "Range",
    "Cache-Control",
    "Authorization",
    "User-Agent",
    "Origin",
    "Pragma",
    "Date",
    "Max-Forwards",
    "Access-Control-Request-Headers",
]
PROPERTIES = [
    "accept_mimetypes",
    "accept_languages",
    "accept_charsets",
    "accept_encodings",
    "if_match",
    "if_none_match",
    "if_modified_since",
    "if_unmodified_since",
    "if_range",
    "range",
    "cache_control",
    "authorization",
    "user_agent",
    "origin",
    "pragma",
    "date",
    "max_forwards",
    "access_control_request_headers",
    "access_control_request_method",
    "referrer",
    "content_md5",
    "content_encoding",
]


def _sendable(value: str) -> str:
    """``value`` as a header line can carry it: latin-1, without control characters (else some junk that can)."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8").decode("latin-1")
    return value if value.isprintable() else '\x7f;=,"W/'


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_request_headers_never_raise(value: str) -> None:
    req = _request({name: value for name in HEADERS})
    for name in PROPERTIES:
        getattr(req, name)
    assert req.accept_mimetypes.best_match(["text/html", "application/json"]) in (None, "text/html", "application/json")
    req.accept_languages.best_match(["en"])
    response = Response(BODY)
    response.set_etag("v")
    for name in HEADERS:
        response.headers["X-" + name] = "x"
    assert response.make_conditional(req, accept_ranges=True, complete_length=len(BODY)).status_code in (200, 304, 412)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_response_headers_never_raise(value: str) -> None:
    value = _sendable(value)
    response = Response("x")
    for name in (
        "Cache-Control",
        "Expires",
        "Last-Modified",
        "Date",
        "Age",
        "Retry-After",
        "Vary",
        "Allow",
        "Content-Range",
        "WWW-Authenticate",
        "Content-Security-Policy",
        "Access-Control-Max-Age",
        "Access-Control-Allow-Headers",
        "Cross-Origin-Opener-Policy",
        "ETag",
    ):
        response.headers.set(name, value)
    for name in (
        "cache_control",
        "expires",
        "last_modified",
        "date",
        "age",
        "retry_after",
        "vary",
        "allow",
        "content_range",
        "www_authenticate",
        "content_security_policy",
        "access_control_max_age",
        "access_control_allow_headers",
        "cross_origin_opener_policy",
    ):
        getattr(response, name)
    response.get_etag()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_headers_over_the_wire_are_never_a_500(app: Ampulla, client: AmpullaClient, value: str) -> None:
    @app.route("/everything")
    def everything() -> Any:
        seen = [getattr(request, name) for name in PROPERTIES]
        response = Response(BODY, mimetype="text/plain")
        response.set_etag("v1")
        response.last_modified = MODIFIED
        response.make_conditional(request, accept_ranges=True, complete_length=len(BODY))
        response.headers["X-Seen"] = str(len(seen))
        return response

    headers = {name: _sendable(value) for name in HEADERS}
    response = client.get("/everything", headers=headers)
    assert response.status_code in (200, 206, 304, 412, 416), (value, response.status_code)


def test_typed_properties_are_parsed_only_when_read() -> None:
    req = _request({"Accept": "text/html", "If-None-Match": '"a"'})
    assert "accept_mimetypes" not in vars(req) and "if_none_match" not in vars(req)
    assert req.accept_mimetypes.best == "text/html"
    assert "accept_mimetypes" in vars(req) and "if_none_match" not in vars(req)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"If-None-Match": '"v1"'},
        {"If-None-Match": '"v0"'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Fri, 01 Mar 2024 12:00:00 GMT"},
        {"If-Modified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"},
        {"If-Match": '"v1"'},
        {"If-Match": '"v0"'},
        {"If-Match": "*"},
        {"If-Unmodified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"},
        {"Range": "bytes=3-7"},
        {"Range": "bytes=3-7", "If-Range": '"v0"'},
        {"Range": "bytes=3-7", "If-Range": '"v1"'},
        {"Range": "bytes=900-"},
        {"Range": "bytes=junk"},
    ],
)
def test_make_conditional_and_send_file_answer_alike(
    app: Ampulla, protocol: str, tmp_path: Any, headers: dict[str, str]
) -> None:
    from ampulla import send_file

    path = tmp_path / "doc.txt"
    path.write_bytes(BODY)

    @app.route("/file")
    def file() -> Any:
        return send_file(path, etag="v1", last_modified=MODIFIED)

    @app.route("/made")
    def made() -> Any:
        response = Response(BODY, mimetype="text/plain")
        response.set_etag("v1")
        response.last_modified = MODIFIED
        return response.make_conditional(request, accept_ranges=True, complete_length=len(BODY))

    client = app.test_client(protocol=protocol)
    from_file = client.get("/file", headers=headers)
    made_here = client.get("/made", headers=headers)
    assert from_file.status_code == made_here.status_code
    if made_here.status_code != 412:  # send_file answers 412 with an error page; make_conditional keeps the body
        assert from_file.data == made_here.data
    assert from_file.headers.get("Content-Range") == made_here.headers.get("Content-Range")
