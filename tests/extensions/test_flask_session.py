"""Flask-Session 0.8.0 on Ampulla with ``SESSION_TYPE = "redis"``: the session's data lives in Redis under its
key prefix and the cookie holds only the session id (signed with ``SESSION_USE_SIGNER``); it survives between
requests and applications, ``session.clear()`` deletes the key and the cookie, unknown or forged ids start a new
session, ``regenerate`` changes the id."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_session imports flask)

# isort: split

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

flask_session = pytest.importorskip(
    "flask_session", reason="Flask-Session is not installed (pip install -e '.[dev]' installs Flask-Session==0.8.0)"
)
import msgspec  # noqa: E402
from flask import Flask, session  # noqa: E402
from flask_session import Session  # noqa: E402

from tests.extensions.conftest import redis_keys  # noqa: E402

View = Callable[[Callable[..., Any]], Callable[..., Any]]
#: ``secrets.token_urlsafe(32)``: Flask-Session's session id.
SID = re.compile(r"[A-Za-z0-9_-]{43}")


def _session_app(client: Any, prefix: str, as_view: View, **config: Any) -> Flask:
    """The app of Flask-Session's quick start, storing in Redis with ``client``."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="extension-tests",
        TESTING=True,
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX=prefix,
        **config,
    )
    Session(app)

    def set_value(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    def get_value(key: str) -> str:
        return str(session.get(key, "not set"))

    def add_to_cart(item: int) -> str:
        session.setdefault("cart", []).append(item)
        session.modified = True  # a change inside a mutable value: Flask's rule, mark it
        return ",".join(map(str, session["cart"]))

    def clear() -> str:
        session.clear()
        return "cleared"

    def regenerate() -> str:
        app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return "regenerated"

    app.add_url_rule("/set/<key>/<value>", view_func=as_view(set_value))
    app.add_url_rule("/get/<key>", view_func=as_view(get_value))
    app.add_url_rule("/cart/<int:item>", view_func=as_view(add_to_cart), methods=["POST"])
    app.add_url_rule("/clear", view_func=as_view(clear), methods=["POST"])
    app.add_url_rule("/regenerate", view_func=as_view(regenerate), methods=["POST"])
    return app


def _stored(client: Any, key: str) -> Any:
    raw = client.get(key)
    return None if raw is None else msgspec.msgpack.decode(raw)


def test_the_session_lives_in_redis_and_the_cookie_holds_only_its_id(
    redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    app = _session_app(redis_client, redis_prefix, as_view)
    client = app.test_client(protocol=protocol)
    assert client.get("/get/user").text == "not set"
    assert client.get_cookie("session") is None and redis_keys(redis_client, redis_prefix) == []

    response = client.get("/set/user/ann")
    set_cookie = response.headers["Set-Cookie"]
    sid = set_cookie.split(";")[0].removeprefix("session=")
    assert SID.fullmatch(sid), set_cookie
    assert "HttpOnly" in set_cookie and "Expires=" in set_cookie  # permanent by default (SESSION_PERMANENT)
    assert response.headers["Vary"] == "Cookie"
    client.post("/cart/1")
    client.post("/cart/2")

    key = f"{redis_prefix}{sid}"
    assert redis_keys(redis_client, redis_prefix) == [key]
    assert _stored(redis_client, key) == {"_permanent": True, "user": "ann", "cart": [1, 2]}
    assert 0 < redis_client.ttl(key) <= timedelta(days=31).total_seconds()  # PERMANENT_SESSION_LIFETIME
    # A request that reads the session renews the cookie and the expiry in Redis (SESSION_REFRESH_EACH_REQUEST).
    redis_client.expire(key, 100)
    response = client.get("/get/user")
    assert response.text == "ann" and response.headers["Set-Cookie"].startswith(f"session={sid};")
    assert redis_client.ttl(key) > 100

    # Only the id travels: another client (another browser, another application on the same Redis) with the
    # cookie sees the data, a client without it does not.
    other_app = _session_app(redis_client, redis_prefix, as_view)
    other = other_app.test_client(protocol=protocol)
    assert other.get("/get/user").text == "not set"
    other.set_cookie("session", sid)
    assert other.get("/get/cart").text == "[1, 2]"
    other.get("/set/user/bob")
    assert client.get("/get/user").text == "bob"
    assert redis_keys(redis_client, redis_prefix) == [key]


def test_session_clear_deletes_the_key_and_the_cookie(
    redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    app = _session_app(redis_client, redis_prefix, as_view)
    client = app.test_client(protocol=protocol)
    client.get("/set/user/ann")
    cookie = client.get_cookie("session")
    assert cookie is not None and len(redis_keys(redis_client, redis_prefix)) == 1

    response = client.post("/clear")
    assert response.text == "cleared"
    assert response.headers["Set-Cookie"].startswith("session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert client.get_cookie("session") is None
    assert redis_keys(redis_client, redis_prefix) == []
    # The old id, replayed, names nothing any more.
    replay = app.test_client(protocol=protocol)
    replay.set_cookie("session", cookie.value)
    assert replay.get("/get/user").text == "not set"


def test_an_unknown_id_starts_a_new_session(redis_prefix: str, redis_client: Any, as_view: View, protocol: str) -> None:
    """An id the server never issued is not adopted (no session fixation): the next write gets a fresh id."""
    app = _session_app(redis_client, redis_prefix, as_view)
    client = app.test_client(protocol=protocol)
    chosen = "attacker-chosen-session-id-0000000000000000"
    client.set_cookie("session", chosen)
    assert client.get("/get/user").text == "not set"
    client.get("/set/user/ann")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.value != chosen and SID.fullmatch(cookie.value)
    assert redis_keys(redis_client, redis_prefix) == [f"{redis_prefix}{cookie.value}"]


def test_regenerate_changes_the_id_and_keeps_the_data(
    redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    app = _session_app(redis_client, redis_prefix, as_view)
    client = app.test_client(protocol=protocol)
    client.get("/set/user/ann")
    before = client.get_cookie("session")
    assert before is not None
    client.post("/regenerate")
    after = client.get_cookie("session")
    assert after is not None and after.value != before.value
    assert redis_keys(redis_client, redis_prefix) == [f"{redis_prefix}{after.value}"]
    assert client.get("/get/user").text == "ann"


def test_a_signed_session_id(redis_prefix: str, redis_client: Any, as_view: View, protocol: str) -> None:
    """``SESSION_USE_SIGNER``: the cookie is the id and its signature with the secret key; a changed signature
    or id starts a new session. Flask-Session 0.8.0 deprecates the option (the id alone has 256 random bits)."""
    with pytest.warns(DeprecationWarning, match="use_signer"):
        app = _session_app(redis_client, redis_prefix, as_view, SESSION_USE_SIGNER=True)
    client = app.test_client(protocol=protocol)
    client.get("/set/user/ann")
    cookie = client.get_cookie("session")
    assert cookie is not None
    sid, _, signature = cookie.value.partition(".")
    assert SID.fullmatch(sid) and signature
    assert redis_keys(redis_client, redis_prefix) == [f"{redis_prefix}{sid}"]  # stored under the bare id
    assert client.get("/get/user").text == "ann"

    for forged in (sid, f"{sid}.{signature[::-1]}", f"{sid[::-1]}.{signature}"):
        other = app.test_client(protocol=protocol)
        other.set_cookie("session", forged)
        assert other.get("/get/user").text == "not set", forged


def test_a_non_permanent_session(redis_prefix: str, redis_client: Any, as_view: View, protocol: str) -> None:
    """``SESSION_PERMANENT = False``: a browser-session cookie (no expiry); Redis still expires the data after
    ``PERMANENT_SESSION_LIFETIME``."""
    app = _session_app(
        redis_client, redis_prefix, as_view, SESSION_PERMANENT=False, PERMANENT_SESSION_LIFETIME=timedelta(hours=1)
    )
    client = app.test_client(protocol=protocol)
    response = client.get("/set/user/ann")
    assert "Expires" not in response.headers["Set-Cookie"]
    (key,) = redis_keys(redis_client, redis_prefix)
    assert _stored(redis_client, key) == {"user": "ann"}
    assert 0 < redis_client.ttl(key) <= 3600
