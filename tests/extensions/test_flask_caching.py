"""Flask-Caching 2.5.1 on Ampulla with ``RedisCache``: ``@cache.cached`` views served from Redis and invalidated
with ``cache.delete``, ``@cache.memoize`` with ``delete_memoized``, cached responses (status, headers, JSON, an
``abort``), ``query_string``, ``unless``, ``response_hit_indication``, template fragments and ``cache.clear``."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_caching imports flask)

# isort: split

from collections.abc import Callable
from typing import Any

import pytest

flask_caching = pytest.importorskip(
    "flask_caching", reason="Flask-Caching is not installed (pip install -e '.[dev]' installs Flask-Caching==2.5.1)"
)

from flask import Flask, abort, jsonify, render_template_string, request, url_for  # noqa: E402
from flask_caching import Cache  # noqa: E402
from flask_caching.utils import make_template_fragment_key  # noqa: E402

from tests.extensions.conftest import redis_keys  # noqa: E402

View = Callable[[Callable[..., Any]], Callable[..., Any]]


def _cached_app(redis_url: str, prefix: str) -> tuple[Flask, Cache]:
    """The app of Flask-Caching's documentation, configured for ``RedisCache``."""
    app = Flask(__name__)
    app.config.from_mapping(
        TESTING=True,
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=prefix + "cache:",
        CACHE_DEFAULT_TIMEOUT=300,
    )
    cache = Cache(app)
    return app, cache


def test_a_cached_view_is_served_from_redis_until_deleted(
    redis_url: str, redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    calls: list[str] = []

    def build() -> tuple[Flask, Cache]:
        app, cache = _cached_app(redis_url, redis_prefix)

        def report() -> str:
            calls.append(request.path)
            return f"report {len(calls)}"

        def invalidate() -> str:
            cache.delete("view/" + url_for("report"))  # the documented key of a cached view: "view/<path>"
            return "deleted"

        app.add_url_rule("/report", view_func=cache.cached(timeout=60)(as_view(report)))
        app.add_url_rule("/invalidate", view_func=as_view(invalidate), methods=["POST"])
        return app, cache

    app, cache = build()
    client = app.test_client(protocol=protocol)
    assert client.get("/report").text == "report 1"
    assert client.get("/report").text == "report 1"
    assert calls == ["/report"]
    key = f"{redis_prefix}cache:view//report"
    assert redis_keys(redis_client, redis_prefix) == [key]
    assert 0 < redis_client.ttl(key) <= 60

    # Another application on the same Redis (another worker process) is served from the cache too.
    other, _ = build()
    assert other.test_client(protocol=protocol).get("/report").text == "report 1"
    assert calls == ["/report"]

    assert client.post("/invalidate").text == "deleted"
    assert redis_keys(redis_client, redis_prefix) == []
    assert client.get("/report").text == "report 2"
    with app.app_context():
        cache.delete("view//report")
    assert client.get("/report").text == "report 3"
    assert client.get("/report").text == "report 3"


def test_memoize_and_delete_memoized(
    redis_url: str, redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    app, cache = _cached_app(redis_url, redis_prefix)
    computed: list[int] = []

    @cache.memoize(timeout=60)
    def square(n: int) -> int:
        computed.append(n)
        return n * n

    def show(n: int) -> str:
        return str(square(n))

    def forget(n: int) -> str:
        cache.delete_memoized(square, n) if n else cache.delete_memoized(square)
        return "forgotten"

    app.add_url_rule("/square/<int:n>", view_func=as_view(show))
    app.add_url_rule("/forget/<int:n>", view_func=as_view(forget), methods=["POST"])
    client = app.test_client(protocol=protocol)
    assert [client.get(f"/square/{n}").text for n in (2, 3, 2, 3)] == ["4", "9", "4", "9"]
    assert computed == [2, 3]
    # Two results and the function's version key, all under the prefix.
    assert len(redis_keys(redis_client, redis_prefix)) == 3

    client.post("/forget/2")  # one argument's result
    assert [client.get(f"/square/{n}").text for n in (2, 3)] == ["4", "9"]
    assert computed == [2, 3, 2]
    client.post("/forget/0")  # every result of the function
    assert [client.get(f"/square/{n}").text for n in (2, 3)] == ["4", "9"]
    assert computed == [2, 3, 2, 2, 3]


def test_cached_responses_keep_status_headers_and_errors(
    redis_url: str, redis_prefix: str, as_view: View, protocol: str
) -> None:
    """A response object, a ``(body, status, headers)`` tuple and an ``abort(404)`` come back from Redis as
    they were; ``response_hit_indication`` marks hits; ``response_filter`` keeps errors out of the cache."""
    app, cache = _cached_app(redis_url, redis_prefix)
    calls: list[str] = []

    def item() -> Any:
        calls.append("item")
        response = jsonify(id=7, calls=len(calls))
        response.headers["X-Item"] = "7"
        return response

    def created() -> Any:
        calls.append("created")
        return "made", 201, {"X-Made": "yes"}

    def missing() -> Any:
        calls.append("missing")
        abort(404)

    def flaky() -> Any:
        calls.append("flaky")
        abort(503)

    app.add_url_rule("/item", view_func=cache.cached(timeout=60, response_hit_indication=True)(as_view(item)))
    app.add_url_rule("/created", view_func=cache.cached(timeout=60)(as_view(created)))
    app.add_url_rule("/missing", view_func=cache.cached(timeout=60)(as_view(missing)))
    keep_errors_out = cache.cached(timeout=60, response_filter=lambda rv: getattr(rv, "status_code", 200) < 400)
    app.add_url_rule("/flaky", view_func=keep_errors_out(as_view(flaky)))
    client = app.test_client(protocol=protocol)

    first = client.get("/item")
    assert first.json == {"id": 7, "calls": 1} and "hit_cache" not in first.headers
    hit = client.get("/item")
    assert hit.json == {"id": 7, "calls": 1}
    assert hit.headers["X-Item"] == "7" and hit.headers["Content-Type"] == "application/json"
    assert hit.headers["hit_cache"] == "True"

    for _ in range(2):
        response = client.get("/created")
        assert (response.status_code, response.text, response.headers["X-Made"]) == (201, "made", "yes")
        assert client.get("/missing").status_code == 404
        assert client.get("/flaky").status_code == 503
    assert calls == ["item", "created", "missing", "flaky", "flaky"]


def test_query_string_and_unless(redis_url: str, redis_prefix: str, as_view: View, protocol: str) -> None:
    app, cache = _cached_app(redis_url, redis_prefix)
    calls: list[str] = []

    def search() -> str:
        calls.append(request.query_string.decode())
        return f"results for {request.args.get('q')} ({len(calls)})"

    def news() -> str:
        calls.append("news")
        return f"news {len(calls)}"

    app.add_url_rule("/search", view_func=cache.cached(timeout=60, query_string=True)(as_view(search)))
    bypass = cache.cached(timeout=60, unless=lambda: request.headers.get("Cache-Control") == "no-cache")
    app.add_url_rule("/news", view_func=bypass(as_view(news)))
    client = app.test_client(protocol=protocol)
    assert client.get("/search?q=a&page=1").text == "results for a (1)"
    assert client.get("/search?page=1&q=a").text == "results for a (1)"  # the same arguments, another order
    assert client.get("/search?q=b&page=1").text == "results for b (2)"

    assert client.get("/news").text == "news 3"
    assert client.get("/news", headers={"Cache-Control": "no-cache"}).text == "news 4"
    assert client.get("/news").text == "news 3"


def test_template_fragments_and_the_cache_api(
    redis_url: str, redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    """``{% cache %}`` in a template, ``make_template_fragment_key`` to delete it, ``cache.get``/``cache.set`` in
    views, and ``cache.clear()`` deleting the prefix's keys only."""
    app, cache = _cached_app(redis_url, redis_prefix)
    renders: list[int] = []
    template = "{% cache 60, 'sidebar' %}sidebar {{ render() }}{% endcache %} / page {{ hits }}"

    def page() -> str:
        hits = (cache.get("hits") or 0) + 1
        cache.set("hits", hits)
        return render_template_string(template, render=lambda: renders.append(1) or len(renders), hits=hits)

    def forget_sidebar() -> str:
        cache.delete(make_template_fragment_key("sidebar"))
        return "ok"

    def remember(word: str) -> str:
        previous = cache.get("word")
        cache.set("word", word, timeout=60)
        return f"{previous} -> {cache.get('word')}"

    app.add_url_rule("/page", view_func=as_view(page))
    app.add_url_rule("/sidebar", view_func=as_view(forget_sidebar), methods=["DELETE"])
    app.add_url_rule("/remember/<word>", view_func=as_view(remember))
    client = app.test_client(protocol=protocol)
    assert client.get("/page").text == "sidebar 1 / page 1"
    assert client.get("/page").text == "sidebar 1 / page 2"
    client.delete("/sidebar")
    assert client.get("/page").text == "sidebar 2 / page 3"
    assert client.get("/remember/one").text == "None -> one"
    assert client.get("/remember/two").text == "one -> two"

    unrelated = redis_prefix + "not-the-cache"
    redis_client.set(unrelated, "kept")
    with app.app_context():
        assert cache.get("hits") == 3
        cache.clear()
        assert cache.get("hits") is None and cache.get("word") is None
    assert redis_keys(redis_client, redis_prefix) == [unrelated]
    assert client.get("/page").text == "sidebar 3 / page 1"
