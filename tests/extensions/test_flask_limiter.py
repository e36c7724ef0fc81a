"""Flask-Limiter 4.1.1 on Ampulla, counting in Redis: 429 with the rate-limit headers, default, decorated, shared
and exempt limits, per-client keys, ``deduct_when``, error handlers and ``on_breach``; one limit counted by two
server processes (gunicorn with two workers each, uvicorn, and one of each) through Redis."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_limiter imports flask)

# isort: split

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

flask_limiter = pytest.importorskip(
    "flask_limiter", reason="Flask-Limiter is not installed (pip install -e '.[dev]' installs Flask-Limiter==4.1.1)"
)

from flask import Blueprint, Flask, jsonify, make_response, request  # noqa: E402
from flask_limiter import Limiter, RequestLimit  # noqa: E402
from flask_limiter.util import get_remote_address  # noqa: E402

from tests.e2e.conftest import (  # noqa: E402
    PYTHON,
    RunningServer,
    _gunicorn_extra_args,
    free_port,
    start_server,
    stop_server,
)
from tests.extensions.conftest import redis_keys  # noqa: E402

View = Callable[[Callable[..., Any]], Callable[..., Any]]


def _limited_app(redis_url: str, prefix: str, **options: Any) -> tuple[Flask, Limiter]:
    """The app of Flask-Limiter's quick start, with Redis storage and the headers on."""
    app = Flask(__name__)
    app.config.update(TESTING=True, RATELIMIT_HEADERS_ENABLED=True)
    options.setdefault("default_limits", ["200 per day", "50 per hour"])
    limiter = Limiter(get_remote_address, app=app, storage_uri=redis_url, key_prefix=prefix, **options)
    return app, limiter


def _rate_headers(response: Any) -> tuple[int, int, int, int]:
    """``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` and ``Retry-After`` as integers."""
    headers = response.headers
    return (
        int(headers["X-RateLimit-Limit"]),
        int(headers["X-RateLimit-Remaining"]),
        int(headers["X-RateLimit-Reset"]),
        int(headers["Retry-After"]),
    )


def _check_window(reset: int, retry_after: int, seconds: int, before: float) -> None:
    """The reset time is an epoch second within the window that started at the first hit, and ``Retry-After`` is
    the number of seconds until then."""
    assert before - 1 <= reset <= time.time() + seconds + 1
    assert 0 < retry_after <= seconds


def test_a_limit_answers_429_with_the_rate_limit_headers(
    redis_url: str, redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    app, limiter = _limited_app(redis_url, redis_prefix)

    def slow() -> str:
        return "slow"

    app.add_url_rule("/slow", view_func=limiter.limit("2 per day")(as_view(slow)))
    client = app.test_client(protocol=protocol)
    before = time.time()

    first, second, third = client.get("/slow"), client.get("/slow"), client.get("/slow")
    assert (first.status_code, first.text) == (200, "slow")
    assert _rate_headers(first)[:2] == (2, 1)
    assert _rate_headers(second)[:2] == (2, 0)
    assert third.status_code == 429
    assert "Too Many Requests" in third.text and "2 per 1 day" in third.text
    limit, remaining, reset, retry_after = _rate_headers(third)
    assert (limit, remaining) == (2, 0)
    _check_window(reset, retry_after, 24 * 3600, before)
    assert third.headers["Content-Type"] == "text/html; charset=utf-8"
    # The count lives in Redis, under the limiter's key prefix, with the window as its expiry.
    keys = redis_keys(redis_client, redis_prefix)
    assert len(keys) == 1 and keys[0].endswith("/slow/2/1/day"), keys
    assert 0 < redis_client.ttl(keys[0]) <= 24 * 3600


def test_default_limits_and_exempt_views(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    app, limiter = _limited_app(redis_url, redis_prefix, default_limits=["3 per hour"])

    def fast() -> str:
        return "fast"

    def ping() -> str:
        return "pong"

    app.add_url_rule("/fast", view_func=as_view(fast))
    app.add_url_rule("/ping", view_func=limiter.exempt(as_view(ping)))
    client = app.test_client(protocol=protocol)
    assert [client.get("/fast").status_code for _ in range(4)] == [200, 200, 200, 429]
    for _ in range(5):
        response = client.get("/ping")
        assert response.text == "pong" and "X-RateLimit-Limit" not in response.headers
    assert client.get("/fast").headers["X-RateLimit-Limit"] == "3"


def test_a_429_error_handler(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    """The documented ``@app.errorhandler(429)`` answering JSON: the rate-limit headers are still added."""
    app, limiter = _limited_app(redis_url, redis_prefix)

    @app.errorhandler(429)
    def ratelimit_handler(e: Any) -> Any:
        return make_response(jsonify(error=f"ratelimit exceeded {e.description}"), 429)

    def one() -> Any:
        return jsonify(ok=True)

    app.add_url_rule("/one", view_func=limiter.limit("1 per hour")(as_view(one)))
    client = app.test_client(protocol=protocol)
    assert client.get("/one").json == {"ok": True}
    response = client.get("/one")
    assert response.status_code == 429
    assert response.json == {"error": "ratelimit exceeded 1 per 1 hour"}
    assert response.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in response.headers


def test_on_breach_answers_for_one_limit(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    """``on_breach`` is told which limit was breached and its response is the 429 (when no 429 error handler
    answers instead, as on Flask)."""
    app, limiter = _limited_app(redis_url, redis_prefix)
    breaches: list[str] = []

    def on_breach(limit: RequestLimit) -> Any:
        breaches.append(f"{limit.key.split('/')[-4]} {limit.limit}")
        return make_response("try again later", 429)

    def two() -> Any:
        return jsonify(ok=True)

    app.add_url_rule("/two", view_func=limiter.limit("1 per hour", on_breach=on_breach)(as_view(two)))
    client = app.test_client(protocol=protocol)
    assert client.get("/two").status_code == 200
    response = client.get("/two")
    assert (response.status_code, response.text) == (429, "try again later")
    assert response.headers["X-RateLimit-Limit"] == "1"
    assert breaches == ["two 1 per 1 hour"]


def test_limits_count_per_client_key(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    """A key function per limit (an API key header here): each client has its own budget."""
    app, limiter = _limited_app(redis_url, redis_prefix)

    def api() -> str:
        return f"hello {request.headers['X-Api-Key']}"

    limit = limiter.limit("2 per hour", key_func=lambda: request.headers["X-Api-Key"])
    app.add_url_rule("/api", view_func=limit(as_view(api)))
    client = app.test_client(protocol=protocol)
    ann, bob = {"X-Api-Key": "ann"}, {"X-Api-Key": "bob"}
    assert [client.get("/api", headers=ann).status_code for _ in range(3)] == [200, 200, 429]
    response = client.get("/api", headers=bob)
    assert response.text == "hello bob" and response.headers["X-RateLimit-Remaining"] == "1"
    assert client.get("/api", headers=ann).status_code == 429


def test_a_shared_limit_and_deduct_when(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    """``shared_limit`` counts two views together; ``deduct_when`` counts only the responses it accepts (the
    documented "failed logins" limit)."""
    app, limiter = _limited_app(redis_url, redis_prefix)
    shared = limiter.shared_limit("3 per hour", scope="search")

    def search_a() -> str:
        return "a"

    def search_b() -> str:
        return "b"

    def login() -> Any:
        return ("welcome", 200) if request.args.get("password") == "right" else ("wrong password", 401)

    app.add_url_rule("/a", view_func=shared(as_view(search_a)))
    app.add_url_rule("/b", view_func=shared(as_view(search_b)))
    failed_logins = limiter.limit("2 per hour", deduct_when=lambda response: response.status_code == 401)
    app.add_url_rule("/login", view_func=failed_logins(as_view(login)))
    client = app.test_client(protocol=protocol)

    statuses = [client.get(path).status_code for path in ("/a", "/b", "/a", "/b")]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/a").status_code == 429

    assert [client.get("/login?password=right").status_code for _ in range(3)] == [200, 200, 200]
    assert client.get("/login?password=no").status_code == 401
    assert client.get("/login?password=no").status_code == 401
    assert client.get("/login?password=right").status_code == 429  # two failures used the budget


def test_a_blueprint_limit_and_a_new_limiter_on_the_same_redis(
    redis_url: str, redis_prefix: str, as_view: View, protocol: str
) -> None:
    """A limit on a blueprint covers its views; the counts are in Redis, so a second application (another process,
    after a restart) continues them."""

    def build() -> Flask:
        app, limiter = _limited_app(redis_url, redis_prefix)
        bp = Blueprint("reports", __name__, url_prefix="/reports")

        def daily() -> str:
            return "daily"

        bp.add_url_rule("/daily", view_func=as_view(daily))
        limiter.limit("2 per hour")(bp)
        app.register_blueprint(bp)
        return app

    first = build().test_client(protocol=protocol)
    response = first.get("/reports/daily")
    assert response.text == "daily" and response.headers["X-RateLimit-Remaining"] == "1"
    second = build().test_client(protocol=protocol)
    assert second.get("/reports/daily").headers["X-RateLimit-Remaining"] == "0"
    assert second.get("/reports/daily").status_code == 429
    assert first.get("/reports/daily").status_code == 429


# ------------------------------------------------------------------------------------------ two server processes
SERVER_APP = """\
import ampulla.flask_patch  # noqa: F401  (first)

import os

from flask import Flask, jsonify
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

app = Flask(__name__)
app.config["RATELIMIT_HEADERS_ENABLED"] = True
limiter = Limiter(get_remote_address, app=app, storage_uri={redis_url!r}, key_prefix={prefix!r})


@app.route("/health")
@limiter.exempt
def health():
    return "ok"


@app.route("/sync")
@limiter.limit("5 per hour")
def sync_view():
    return jsonify(pid=os.getpid())


@app.route("/async")
@limiter.limit("5 per hour")
async def async_view():
    return jsonify(pid=os.getpid())
"""


def _command(server: str, port: int) -> list[str]:
    if server == "gunicorn":  # WSGI, two worker processes
        return [
            PYTHON, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            *_gunicorn_extra_args(), "limiterapp:app",
        ]  # fmt: skip
    return [PYTHON, "-m", "uvicorn", "limiterapp:app", "--interface", "asgi3", "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip


@pytest.fixture(params=[("gunicorn", "gunicorn"), ("uvicorn", "uvicorn"), ("gunicorn", "uvicorn")], ids="+".join)
def two_servers(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_prefix: str
) -> Iterator[list[RunningServer]]:
    """The same limited app served by two server processes on two ports, counting in the same Redis."""
    (tmp_path / "limiterapp.py").write_text(SERVER_APP.format(redis_url=redis_url, prefix=redis_prefix))
    servers: list[RunningServer] = []
    try:
        for index, name in enumerate(request.param):
            port = free_port()
            log = tmp_path / f"{index}-{name}.log"
            servers.append(start_server(name, _command(name, port), port, log, cwd=tmp_path))
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def _get(server: RunningServer, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = server.connection()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_a_limit_is_shared_by_two_server_processes(
    two_servers: list[RunningServer], redis_client: Any, redis_prefix: str
) -> None:
    """Requests alternate between the two servers: one budget of 5 counts down across both, then both refuse;
    for a ``def`` view and an ``async def`` view (each its own limit)."""
    for path in ("/sync", "/async"):
        pids: set[int] = set()
        for n in range(5):
            server = two_servers[n % 2]
            status, headers, body = _get(server, path)
            assert status == 200, (server.name, path, body)
            assert headers["x-ratelimit-limit"] == "5"
            assert headers["x-ratelimit-remaining"] == str(4 - n), f"{path}: request {n + 1} on {server.name}"
            pids.add(json.loads(body)["pid"])
        assert len(pids) >= 2, "one process answered every request"
        for server in two_servers:
            status, headers, body = _get(server, path)
            assert status == 429, (server.name, path, body)
            assert b"5 per 1 hour" in body
            assert headers["x-ratelimit-remaining"] == "0" and 0 < int(headers["retry-after"]) <= 3600
    assert [key.split("/")[-4] for key in redis_keys(redis_client, redis_prefix)] == ["async_view", "sync_view"]
    assert _get(two_servers[0], "/health")[0] == 200  # exempt
