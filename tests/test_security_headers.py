"""Opt-in security headers, TRUSTED_HOSTS and proxy headers (PROXY_FIX), over WSGI and ASGI."""

from __future__ import annotations

from typing import Any

from ampulla import Ampulla, Response, request, url_for
from ampulla.testing import AmpullaClient


def test_security_headers_are_off_by_default(app: Ampulla, client: AmpullaClient) -> None:
    app.add_url_rule("/", "index", lambda: "ok")
    headers = client.get("/").headers
    assert "X-Content-Type-Options" not in headers
    assert "Strict-Transport-Security" not in headers


def test_security_headers_policy(app: Ampulla, client: AmpullaClient) -> None:
    app.config.update(SECURITY_HEADERS=True, CONTENT_SECURITY_POLICY="default-src 'self'", HSTS_MAX_AGE=31536000)

    @app.route("/")
    def index() -> str:
        return "ok"

    @app.route("/framed")
    def framed() -> Response:
        return Response("ok", headers={"X-Frame-Options": "DENY"})

    headers = client.get("/").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Content-Security-Policy"] == "default-src 'self'"
    assert "Strict-Transport-Security" not in headers  # plain HTTP: HSTS would be ignored and misleading
    secure = client.get("/", base_url="https://localhost/").headers
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert client.get("/framed").headers.getlist("X-Frame-Options") == ["DENY"]
    assert client.get("/missing").headers["X-Content-Type-Options"] == "nosniff"


def test_trusted_hosts(app: Ampulla, client: AmpullaClient) -> None:
    app.config["TRUSTED_HOSTS"] = ["example.com", ".example.org"]
    app.testing = False

    @app.route("/")
    def index() -> str:
        return request.host

    assert client.get("/", base_url="http://example.com/").text == "example.com"
    assert client.get("/", base_url="http://example.com:8080/").text == "example.com:8080"
    assert client.get("/", base_url="http://api.example.org/").text == "api.example.org"
    assert client.get("/", base_url="http://example.org/").text == "example.org"
    response = client.get("/", base_url="http://evil.test/")
    assert response.status_code == 400
    assert "TRUSTED_HOSTS" in response.text
    assert client.get("/", base_url="http://notexample.com/").status_code == 400
    assert client.get("/", headers={"Host": "example.com.evil.test"}).status_code == 400


def test_proxy_headers_ignored_unless_configured(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> dict[str, Any]:
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    spoofed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test"}
    assert client.get("/", headers=spoofed).json == {"addr": "127.0.0.1", "scheme": "http", "host": "localhost"}


def test_proxy_fix_trusts_only_the_configured_number_of_proxies(app: Ampulla, client: AmpullaClient) -> None:
    app.config["PROXY_FIX"] = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_prefix": 1}

    @app.route("/page")
    def page() -> dict[str, Any]:
        return {
            "addr": request.remote_addr,
            "route": request.access_route,
            "scheme": request.scheme,
            "host": request.host,
            "url": url_for("page", _external=True),
        }

    headers = {
        # The client sent a forged first entry; the one trusted proxy appended the real address.
        "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "www.example.com",
        "X-Forwarded-Prefix": "/shop",
    }
    assert client.get("/page", headers=headers).json == {
        "addr": "203.0.113.7",
        "route": ["203.0.113.7", "127.0.0.1"],
        "scheme": "https",
        "host": "www.example.com",
        "url": "https://www.example.com/shop/page",
    }
    assert client.get("/page").json["addr"] == "127.0.0.1"
