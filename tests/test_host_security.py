"""Host validation, TRUSTED_HOSTS, PROXY_FIX, repeated headers, HTTP versions and request framing.

Every attack is sent to the raw WSGI and ASGI callables with hand-built environs and scopes, so the exact
header lines (repeated ones, empty ones, odd characters) reach the application as a server would pass them.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ampulla import Ampulla, request, url_for
from ampulla.datastructures import ASGIHeaders
from ampulla.proxy_fix import check_framing, check_http_version, host_is_trusted, is_valid_host, split_host
from ampulla.testing import WebSocketRejected

Result = tuple[int, dict[str, str], bytes]

#: Host values that turned an absolute URL into one on evil.test, or are no valid authority at all.
ATTACK_HOSTS = [
    "example.com:@evil.test",
    "example.com:80@evil.test",
    "evil.test#.example.org",
    "evil.test/.example.org",
    "evil.test?.example.org",
    "evil.test\\.example.org",
    "example.com]",
    "[example.com",
    "user@example.com",
    "example.com evil.test",
    "example.com,evil.test",
    "example.com, evil.test",
    "example.com:8O",
    "example.com:",
    "example.com:99999",
    "example.com\t",
    " example.com",
    "[::1",
    "[zz::1]",
    "[::1]x",
    "ex%61mple.com",
    "example.com;evil.test",
    "exa'mple.com",
    "bücher.example",
]
TRUSTED = ["example.com", ".example.org"]


def wsgi_call(app: Ampulla, path: str = "/", **environ: Any) -> Result:
    """Call ``app`` as a WSGI server would, with exactly the environ keys given (plus the required ones)."""
    import io

    base: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    base.update(environ)
    status: list[str] = []
    headers: dict[str, str] = {}

    def start_response(line: str, pairs: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)
        headers.clear()
        headers.update(pairs)

    iterable = app(base, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return int(status[0][:3]), headers, body


def asgi_call(
    app: Ampulla,
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    **scope_items: Any,
) -> Result:
    """Call ``app`` as an ASGI server would, with exactly the header lines given."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"host", b"example.com")],
        "client": ("10.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(scope_items)
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # never: the app must not read past the body
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    pairs = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}
    return start["status"], pairs, b"".join(m.get("body", b"") for m in sent[1:])


def call(app: Ampulla, protocol: str, host: str | None, extra: dict[str, str] | None = None, **kw: Any) -> Result:
    """One GET with ``Host: host`` (absent when ``None``) and ``extra`` headers over ``protocol``."""
    extra = extra or {}
    if protocol == "wsgi":
        environ = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in extra.items()}
        if host is not None:
            environ["HTTP_HOST"] = host
        return wsgi_call(app, **environ, **kw)
    lines = [] if host is None else [(b"host", host.encode("utf-8"))]
    lines += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    return asgi_call(app, headers=lines, **kw)


@pytest.fixture
def host_app(app: Ampulla) -> Ampulla:
    """An app whose view reports what it saw, and whose 400 handler builds an absolute URL."""
    app.testing = False
    app.config["VIEWS_RUN"] = 0

    @app.route("/")
    def index() -> dict[str, Any]:
        app.config["VIEWS_RUN"] += 1
        return {
            "host": request.host,
            "url": request.url,
            "link": url_for("index", _external=True),
            "scheme": request.scheme,
            "addr": request.remote_addr,
        }

    @app.errorhandler(400)
    def bad_request(error: Exception) -> tuple[str, int]:
        return f"bad request; home is {url_for('index', _external=True)} host={request.host!r}", 400

    return app


# ------------------------------------------------------------------------------------------------ Host syntax


@pytest.mark.parametrize("host", ATTACK_HOSTS)
def test_malformed_host_is_400_with_trusted_hosts(host_app: Ampulla, protocol: str, host: str) -> None:
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    status, _, body = call(host_app, protocol, host)
    assert status == 400
    assert host_app.config["VIEWS_RUN"] == 0
    assert b"evil" not in body
    assert b"host=''" in body  # the 400 handler's request.host and url_for never see the bad value


@pytest.mark.parametrize("host", ATTACK_HOSTS)
def test_malformed_host_is_400_without_trusted_hosts(host_app: Ampulla, protocol: str, host: str) -> None:
    status, _, body = call(host_app, protocol, host)
    assert status == 400
    assert host_app.config["VIEWS_RUN"] == 0
    assert b"evil" not in body


@pytest.mark.parametrize("host", ATTACK_HOSTS[:7])
def test_malformed_forwarded_host_is_400(host_app: Ampulla, protocol: str, host: str) -> None:
    host_app.config["PROXY_FIX"] = {"x_host": 1}
    status, _, body = call(host_app, protocol, "example.com", {"X-Forwarded-Host": host})
    assert status == 400
    assert b"evil" not in body
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    assert call(host_app, protocol, "example.com", {"X-Forwarded-Host": host})[0] == 400
    assert host_app.config["VIEWS_RUN"] == 0


def test_untrusted_forwarded_host_is_400(host_app: Ampulla, protocol: str) -> None:
    host_app.config.update(PROXY_FIX={"x_host": 1}, TRUSTED_HOSTS=TRUSTED)
    assert call(host_app, protocol, "example.com", {"X-Forwarded-Host": "evil.test"})[0] == 400
    status, _, body = call(host_app, protocol, "internal:8000", {"X-Forwarded-Host": "www.example.org"})
    assert status == 200
    assert b'"link":"http://www.example.org/"' in body.replace(b" ", b"")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("example.com:8080", "example.com:8080"),
        ("EXAMPLE.com.", "EXAMPLE.com."),
        ("api.example.org", "api.example.org"),
        ("example.org:443", "example.org:443"),
    ],
)
def test_trusted_hosts_accept_valid_names(host_app: Ampulla, protocol: str, host: str, expected: str) -> None:
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    status, _, body = call(host_app, protocol, host)
    assert status == 200, body
    assert f'"host":"{expected}"'.encode() in body.replace(b" ", b"")


@pytest.mark.parametrize("host", ["evil.test", "notexample.com", "example.com.evil.test", "xexample.org", "org"])
def test_trusted_hosts_refuse_other_names(host_app: Ampulla, protocol: str, host: str) -> None:
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    status, _, body = call(host_app, protocol, host)
    assert status == 400
    assert b"TRUSTED_HOSTS" in body or b"bad request" in body
    assert b"evil" not in body


def test_valid_hosts_are_served_without_trusted_hosts(host_app: Ampulla, protocol: str) -> None:
    for host in ["localhost:5000", "127.0.0.1", "[::1]:8000", "[2001:db8::1]", "my_service:8000", "a-b.c"]:
        status, _, body = call(host_app, protocol, host)
        assert status == 200, (host, body)
        assert f"http://{host}/".encode() in body


def test_two_host_headers_are_400_over_asgi(host_app: Ampulla) -> None:
    lines = [(b"host", b"example.com"), (b"host", b"evil.test")]
    status, _, body = asgi_call(host_app, headers=lines)
    assert status == 400
    assert b"evil" not in body
    assert asgi_call(host_app, headers=[(b"host", b"example.com"), (b"host", b"example.com")])[0] == 400


def test_two_host_headers_joined_by_a_wsgi_server_are_400(host_app: Ampulla) -> None:
    # gunicorn joins repeated lines with ","; other servers with ", ".
    assert wsgi_call(host_app, HTTP_HOST="example.com,evil.test")[0] == 400
    assert wsgi_call(host_app, HTTP_HOST="example.com, evil.test")[0] == 400


def test_missing_host_falls_back_to_the_server_address(host_app: Ampulla) -> None:
    # HTTP/1.0 has no Host header: WSGI's SERVER_NAME/SERVER_PORT and ASGI's "server" stand in, as Werkzeug does.
    status, _, body = wsgi_call(host_app, SERVER_PROTOCOL="HTTP/1.0")
    assert status == 200
    assert b"http://127.0.0.1:8000/" in body
    status, _, body = asgi_call(host_app, headers=[], http_version="1.0")
    assert status == 200
    assert b"http://127.0.0.1:8000/" in body
    status, _, body = asgi_call(host_app, headers=[], server=("::1", 80))
    assert status == 200
    assert b"http://[::1]/" in body
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    assert wsgi_call(host_app, SERVER_PROTOCOL="HTTP/1.0")[0] == 400
    assert asgi_call(host_app, headers=[])[0] == 400


def test_empty_host_is_treated_as_missing(host_app: Ampulla) -> None:
    # granian passes "host: ''" for a request that had no Host (an HTTP/1.0 health check, for example).
    status, _, body = asgi_call(host_app, headers=[(b"host", b"")], http_version="1")
    assert status == 200
    assert b"http://127.0.0.1:8000/" in body
    assert wsgi_call(host_app, HTTP_HOST="")[0] == 200
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    assert asgi_call(host_app, headers=[(b"host", b"")])[0] == 400
    host_app.config["TRUSTED_HOSTS"] = ["127.0.0.1"]
    assert asgi_call(host_app, headers=[(b"host", b"")])[0] == 200


def test_error_handlers_see_no_untrusted_host(host_app: Ampulla, protocol: str) -> None:
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    status, _, body = call(host_app, protocol, "evil.test")
    assert status == 400
    assert b"evil" not in body
    assert b"http:///" in body


def test_test_request_context_validates_the_host(app: Ampulla) -> None:
    app.add_url_rule("/", "index", lambda: "ok")
    with app.test_request_context("/", headers={"Host": "example.com:@evil.test"}):
        assert request.routing_exception is not None
        assert request.host == ""
        assert url_for("index", _external=True) == "http:///"


# ------------------------------------------------------------------------------------------------ unit level


@pytest.mark.parametrize("host", ATTACK_HOSTS)
def test_is_valid_host_refuses_attacks(host: str) -> None:
    assert not is_valid_host(host)
    assert not is_valid_host("")
    assert not host_is_trusted(host, TRUSTED)
    assert not host_is_trusted(host, None)


@pytest.mark.parametrize(
    ("host", "trusted", "expected"),
    [
        ("example.com", ["example.com"], True),
        ("Example.COM:80", ["example.com"], True),
        ("example.com.", ["example.com"], True),
        ("example.com", ["example.com:8000"], True),
        ("a.b.example.org", [".example.org"], True),
        ("example.org", [".example.org"], True),
        ("badexample.org", [".example.org"], False),
        ("example.org.evil.test", [".example.org"], False),
        ("[::1]:8000", ["[::1]"], True),
        ("[::1]:8000", ["::1"], True),
        ("[::1]", ["[::2]"], False),
        ("xn--bcher-kva.example", ["bücher.example"], True),
        ("sub.xn--bcher-kva.example:8443", [".bücher.example"], True),
        ("example.com", "example.com", True),
        ("anything.test", [], True),
    ],
)
def test_host_is_trusted_matching(host: str, trusted: list[str] | str, expected: bool) -> None:
    assert host_is_trusted(host, trusted) is expected


def test_split_host_handles_ipv6_literals() -> None:
    assert split_host("[::1]:8080") == ("[::1]", "8080")
    assert split_host("[::1]") == ("[::1]", None)
    assert split_host("example.com:80") == ("example.com", "80")
    assert split_host("example.com") == ("example.com", None)
    assert split_host("::1") == ("::1", None)


_label = st.from_regex(r"[a-z0-9_~-]{1,10}", fullmatch=True)
_names = st.lists(_label, min_size=1, max_size=4).map(".".join)
_ports = st.one_of(st.none(), st.integers(0, 65535).map(str))


@given(name=_names, port=_ports)
def test_valid_hosts_stay_one_authority_in_a_url(name: str, port: str | None) -> None:
    host = name if port is None else f"{name}:{port}"
    assert is_valid_host(host)
    parts = urlsplit(f"http://{host}/path")
    assert parts.netloc == host
    assert parts.username is None
    assert parts.path == "/path"


@given(st.text(max_size=40))
def test_accepted_hosts_never_carry_userinfo_path_query_or_fragment(value: str) -> None:
    if not is_valid_host(value):
        return
    parts = urlsplit(f"http://{value}/path")
    assert parts.netloc == value
    assert parts.username is None and parts.password is None
    assert parts.path == "/path" and not parts.query and not parts.fragment
    assert not set(value) & set("@/\\?#, \t\r\n%")


# ------------------------------------------------------------------------------------------------ PROXY_FIX


def test_asgi_uses_the_proxys_appended_forwarded_lines(host_app: Ampulla) -> None:
    # HAProxy style: the client's own X-Forwarded-* line comes first, the proxy appends a second line.
    host_app.config["PROXY_FIX"] = {"x_for": 1, "x_proto": 1}
    lines = [
        (b"host", b"example.com"),
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"http"),
    ]
    status, _, body = asgi_call(host_app, headers=lines)
    assert status == 200
    compact = body.replace(b" ", b"")
    assert b'"addr":"203.0.113.7"' in compact
    assert b'"scheme":"http"' in compact
    # The same request as a WSGI server presents it (repeated lines joined).
    status, _, wsgi_body = wsgi_call(
        host_app,
        HTTP_HOST="example.com",
        HTTP_X_FORWARDED_FOR="6.6.6.6,203.0.113.7",
        HTTP_X_FORWARDED_PROTO="https,http",
    )
    assert wsgi_body == body


def test_asgi_headers_join_repeated_lines_like_wsgi() -> None:
    headers = ASGIHeaders(
        [
            (b"accept", b"text/html"),
            (b"cookie", b"a=1"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"2.2.2.2"),
            (b"accept", b"*/*"),
        ]
    )
    assert headers.get("X-Forwarded-For") == "1.1.1.1, 2.2.2.2"
    assert headers["Accept"] == "text/html, */*"
    assert headers.get("Cookie") == "a=1; b=2"  # RFC 9113 §8.2.3: split cookie lines join with "; "
    assert headers.getlist("X-Forwarded-For") == ["1.1.1.1", "2.2.2.2"]
    assert headers.getlist("Cookie") == ["a=1", "b=2"]
    assert "cookie" in headers and "X-Missing" not in headers
    assert headers.get("X-Missing", "d") == "d"
    assert headers.get("Content-Length", type=int) is None
    assert len(headers) == 6
    assert ASGIHeaders([(b"content-length", b"12")]).get("Content-Length", type=int) == 12


def test_split_cookie_lines_reach_request_cookies(app: Ampulla) -> None:
    @app.route("/")
    def index() -> dict[str, str]:
        return dict(request.cookies)

    status, _, body = asgi_call(app, headers=[(b"host", b"h"), (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    assert status == 200
    assert body.replace(b" ", b"").replace(b"\n", b"") == b'{"a":"1","b":"2"}'


def test_proxy_fix_port_with_ipv6_host(host_app: Ampulla, protocol: str) -> None:
    host_app.config["PROXY_FIX"] = {"x_port": 1}
    status, _, body = call(host_app, protocol, "[::1]:8000", {"X-Forwarded-Port": "8443"})
    assert status == 200
    assert b"http://[::1]:8443/" in body
    status, _, body = call(host_app, protocol, "[::1]:8000", {"X-Forwarded-Port": "80"})
    assert b"http://[::1]/" in body


# ------------------------------------------------------------------------------------------------ WebSocket


@pytest.fixture
def ws_app(app: Ampulla) -> Ampulla:
    @app.websocket("/ws")
    async def ws() -> None:
        from ampulla import websocket

        await websocket.send_json({"host": request.host, "scheme": request.scheme, "addr": request.remote_addr})

    return app


@pytest.mark.parametrize("host", ["evil.test", "example.com:@evil.test", "evil.test#.example.org"])
def test_websocket_handshake_with_bad_or_untrusted_host_is_refused(ws_app: Ampulla, host: str) -> None:
    ws_app.config["TRUSTED_HOSTS"] = TRUSTED
    with pytest.raises(WebSocketRejected), ws_app.test_client().websocket("/ws", headers={"Host": host}):
        pass


def test_websocket_handshake_with_malformed_host_is_refused_without_trusted_hosts(ws_app: Ampulla) -> None:
    with pytest.raises(WebSocketRejected), ws_app.test_client().websocket("/ws", headers={"Host": "a@evil.test"}):
        pass


def test_websocket_trusted_host_is_accepted(ws_app: Ampulla) -> None:
    ws_app.config["TRUSTED_HOSTS"] = TRUSTED
    with ws_app.test_client().websocket("/ws", headers={"Host": "chat.example.org"}) as ws:
        assert ws.receive_json()["host"] == "chat.example.org"


def test_websocket_applies_proxy_fix(ws_app: Ampulla) -> None:
    ws_app.config.update(PROXY_FIX={"x_for": 1, "x_proto": 1, "x_host": 1}, TRUSTED_HOSTS=TRUSTED)
    headers = {
        "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.com",
    }
    with ws_app.test_client().websocket("/ws", headers={"Host": "internal", **headers}) as ws:
        assert ws.receive_json() == {"host": "example.com", "scheme": "wss", "addr": "203.0.113.7"}
    headers["X-Forwarded-Host"] = "evil.test"
    with pytest.raises(WebSocketRejected), ws_app.test_client().websocket("/ws", headers={"Host": "x", **headers}):
        pass


def _ws_handshake(app: Ampulla, host: bytes, extensions: dict[str, Any]) -> list[dict[str, Any]]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host)],
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": extensions,
    }
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_websocket_refusal_uses_http_response_extension_when_offered(ws_app: Ampulla) -> None:
    sent = _ws_handshake(ws_app, b"example.com:@evil.test", {"websocket.http.response": {}})
    assert [m["type"] for m in sent] == ["websocket.http.response.start", "websocket.http.response.body"]
    assert sent[0]["status"] == 400
    assert b"evil" not in sent[1]["body"]
    sent = _ws_handshake(ws_app, b"example.com:@evil.test", {})
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert _ws_handshake(ws_app, b"example.com", {})[0]["type"] == "websocket.accept"


# ------------------------------------------------------------------------------------------------ HTTP versions


def test_unknown_http_version_is_505(host_app: Ampulla) -> None:
    status, headers, _ = wsgi_call(host_app, HTTP_HOST="example.com", SERVER_PROTOCOL="HTTP/9.9")
    assert status == 505
    assert headers.get("Connection") == "close"
    status, headers, _ = asgi_call(host_app, http_version="9.9")
    assert status == 505
    assert headers.get("connection") == "close"
    assert host_app.config["VIEWS_RUN"] == 0


def test_malformed_http_version_is_400_and_later_minor_versions_are_served(host_app: Ampulla) -> None:
    assert wsgi_call(host_app, HTTP_HOST="example.com", SERVER_PROTOCOL="HTTP/x")[0] == 400
    assert asgi_call(host_app, http_version="one")[0] == 400
    assert wsgi_call(host_app, HTTP_HOST="example.com", SERVER_PROTOCOL="HTTP/1.2")[0] == 200
    for version in ("1", "1.0", "1.1", "2", "3"):
        assert asgi_call(host_app, http_version=version)[0] == 200


def test_check_http_version() -> None:
    for version in ("1.1", "HTTP/1.0", "HTTP/2.0", "2", "3", "HTTP/0.9", "1.9"):
        assert check_http_version(version) is None
    error = check_http_version("HTTP/9.9")
    assert error is not None and error.code == 505
    error = check_http_version("HTTP/1.1x")
    assert error is not None and error.code == 400


# ------------------------------------------------------------------------------------------------ framing


@pytest.fixture
def body_app(app: Ampulla) -> Ampulla:
    app.config["VIEWS_RUN"] = 0

    @app.route("/", methods=["GET", "POST"])
    def index() -> str:
        app.config["VIEWS_RUN"] += 1
        return request.get_data(as_text=True)

    return app


def test_content_length_with_transfer_encoding_is_refused(body_app: Ampulla) -> None:
    import io

    status, headers, _ = wsgi_call(
        body_app,
        REQUEST_METHOD="POST",
        HTTP_HOST="example.com",
        CONTENT_LENGTH="5",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(b"hello")},
    )
    assert status == 400
    assert headers["Connection"] == "close"
    lines = [(b"host", b"example.com"), (b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    status, headers, _ = asgi_call(body_app, headers=lines, body=b"hello", method="POST")
    assert status == 400
    assert headers["connection"] == "close"
    lines = [(b"host", b"example.com"), (b"transfer-encoding", b"chunked"), (b"content-length", b"0")]
    assert asgi_call(body_app, headers=lines, method="GET")[0] == 400
    assert body_app.config["VIEWS_RUN"] == 0


def test_wsgi_refusal_leaves_out_connection_for_wsgiref_servers(body_app: Ampulla) -> None:
    status, headers, _ = wsgi_call(
        body_app, HTTP_HOST="h", CONTENT_LENGTH="5", HTTP_TRANSFER_ENCODING="chunked", SERVER_SOFTWARE="WSGIServer/0.2"
    )
    assert status == 400
    assert "Connection" not in headers


@pytest.mark.parametrize("value", ["5, 5", "5,5", "+5", "-1", "0x5", "5 5", "abc", "\u0665", ""])
def test_invalid_content_length_is_400(body_app: Ampulla, value: str) -> None:
    import io

    if value:  # an empty CONTENT_LENGTH means "absent" in WSGI
        environ = {"CONTENT_LENGTH": value, "wsgi.input": io.BytesIO(b"hello")}
        status, headers, _ = wsgi_call(body_app, REQUEST_METHOD="POST", HTTP_HOST="h", **environ)
        assert status == 400
        assert headers["Connection"] == "close"
    lines = [(b"host", b"h"), (b"content-length", value.encode())]
    status, headers, _ = asgi_call(body_app, headers=lines, body=b"hello", method="POST")
    assert status == 400
    assert headers["connection"] == "close"
    assert body_app.config["VIEWS_RUN"] == 0


def test_repeated_content_length_lines_are_400_over_asgi(body_app: Ampulla) -> None:
    lines = [(b"host", b"h"), (b"content-length", b"5"), (b"content-length", b"5")]
    assert asgi_call(body_app, headers=lines, body=b"hello", method="POST")[0] == 400


def test_valid_bodies_still_pass(body_app: Ampulla) -> None:
    import io

    environ = {"CONTENT_LENGTH": "5", "wsgi.input": io.BytesIO(b"hello")}
    assert wsgi_call(body_app, REQUEST_METHOD="POST", HTTP_HOST="h", **environ)[2] == b"hello"
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"hello"), "wsgi.input_terminated": True}
    assert wsgi_call(body_app, REQUEST_METHOD="POST", HTTP_HOST="h", **environ)[2] == b"hello"
    lines = [(b"host", b"h"), (b"content-length", b" 5 ")]
    assert asgi_call(body_app, headers=lines, body=b"hello", method="POST")[2] == b"hello"
    lines = [(b"host", b"h"), (b"transfer-encoding", b"chunked")]
    assert asgi_call(body_app, headers=lines, body=b"hello", method="POST")[2] == b"hello"


def test_check_framing() -> None:
    assert check_framing(None, None) is None
    assert check_framing("10", None) is None
    assert check_framing(None, "chunked") is None
    for length, encoding in [("10", "chunked"), ("0", "gzip, chunked"), ("1,1", None), ("", None)]:
        error = check_framing(length, encoding)
        assert error is not None and error.code == 400


def test_a_host_served_before_is_still_checked_against_later_settings(host_app: Ampulla, protocol: str) -> None:
    # A Host already seen valid skips the syntax check, never TRUSTED_HOSTS or PROXY_FIX set afterwards.
    assert call(host_app, protocol, "evil.test")[0] == 200
    host_app.config["TRUSTED_HOSTS"] = TRUSTED
    assert call(host_app, protocol, "evil.test")[0] == 400
    host_app.config["TRUSTED_HOSTS"] = None
    host_app.config["PROXY_FIX"] = {"x_host": 1}
    status, _, body = call(host_app, protocol, "evil.test", {"X-Forwarded-Host": "www.example.org"})
    assert status == 200
    assert b'"host":"www.example.org"' in body.replace(b" ", b"")
    assert call(host_app, protocol, "evil.test", {"X-Forwarded-Host": "bad host"})[0] == 400
