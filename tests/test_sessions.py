"""Sessions: the signed-cookie session, server-side Redis sessions, and flashed messages.

Request-level tests run over WSGI and ASGI (``protocol``) and, where views are involved, with ``def`` and
``async def`` views (``as_view``). Redis tests use the server at 127.0.0.1:6379 and are skipped when it is
unreachable; they use a unique key prefix and delete their keys.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode
from markupsafe import Markup

from ampulla import Ampulla, flash, get_flashed_messages, session
from ampulla.http import parse_date
from ampulla.testing import AmpullaClient, TestResponse

View = Callable[[Callable[..., Any]], Callable[..., Any]]


def plant_cookie(client: AmpullaClient, value: str) -> None:
    """Store a ``session`` cookie as a hostile client would send it, even one too large for a browser to keep."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The 'session' cookie is too large", UserWarning)
        client.set_cookie("session", value)


def set_cookie_headers(response: TestResponse, name: str = "session") -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def cookie_attributes(header: str) -> dict[str, str]:
    attributes = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attributes[key.lower()] = value
    return attributes


def decode_cookie_payload(value: str) -> Any:
    """The JSON inside an itsdangerous-signed cookie, read without the key (signing is not encryption)."""
    payload = value.rsplit(".", 2)[0]
    compressed = payload.startswith(".")
    data = base64_decode(payload.lstrip("."))
    if compressed:
        data = zlib.decompress(data)
    return json.loads(data)


@pytest.fixture
def session_app(app: Ampulla, as_view: View) -> Ampulla:
    """An app with views to set, read, change and clear session values."""

    @app.route("/set/<key>/<value>")
    @as_view
    def set_value(key: str, value: str) -> str:
        session[key] = value
        return "set"

    @app.route("/get/<key>")
    @as_view
    def get_value(key: str) -> str:
        return repr(session.get(key))

    @app.route("/keys")
    @as_view
    def keys() -> str:
        return ",".join(sorted(session))

    @app.route("/permanent")
    @as_view
    def permanent() -> str:
        session.permanent = True
        session["p"] = "yes"
        return "permanent"

    @app.route("/clear")
    @as_view
    def clear() -> str:
        session.clear()
        return "cleared"

    @app.route("/nothing")
    @as_view
    def nothing() -> str:
        return "nothing"

    return app


@pytest.fixture
def session_client(session_app: Ampulla, protocol: str) -> AmpullaClient:
    return session_app.test_client(protocol=protocol)


# ---------------------------------------------------------------------------------------------- cookie session


def test_session_values_survive_between_requests(session_client: AmpullaClient) -> None:
    assert session_client.get("/get/user").text == "None"
    assert session_client.get("/set/user/ada").text == "set"
    assert session_client.get("/get/user").text == "'ada'"
    session_client.get("/set/theme/dark")
    assert session_client.get("/keys").text == "theme,user"


def test_cookie_is_httponly_samesite_lax_and_a_browser_session_cookie(session_client: AmpullaClient) -> None:
    response = session_client.get("/set/user/ada")
    (header,) = set_cookie_headers(response)
    attributes = cookie_attributes(header)
    assert "httponly" in attributes
    assert attributes["samesite"] == "Lax"
    assert attributes["path"] == "/"
    assert "secure" not in attributes
    # Not permanent: no expiry, the browser drops it when closed.
    assert "expires" not in attributes
    assert "max-age" not in attributes


def test_secure_domain_path_and_samesite_settings(session_app: Ampulla, protocol: str) -> None:
    session_app.config.update(
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_NAME="sid",
    )
    response = session_app.test_client(protocol=protocol).get("/set/user/ada")
    (header,) = set_cookie_headers(response, "sid")
    attributes = cookie_attributes(header)
    assert "secure" in attributes
    assert attributes["samesite"] == "Strict"


def test_permanent_session_cookie_expires_after_the_lifetime(session_app: Ampulla, protocol: str) -> None:
    session_app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=2)
    client = session_app.test_client(protocol=protocol)
    response = client.get("/permanent")
    (header,) = set_cookie_headers(response)
    expires = parse_date(cookie_attributes(header)["expires"])
    assert expires is not None
    expected = datetime.now(UTC) + timedelta(days=2)
    assert abs((expires - expected).total_seconds()) < 60
    assert client.get("/get/p").text == "'yes'"


def test_permanent_session_cookie_is_refreshed_each_request(session_app: Ampulla, protocol: str) -> None:
    client = session_app.test_client(protocol=protocol)
    client.get("/permanent")
    assert len(set_cookie_headers(client.get("/nothing"))) == 0  # the view never touched the session
    assert len(set_cookie_headers(client.get("/get/p"))) == 1
    session_app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert set_cookie_headers(client.get("/get/p")) == []


def test_cookie_holds_signed_json_never_pickle(session_client: AmpullaClient) -> None:
    session_client.get("/set/user/ada")
    cookie = session_client.get_cookie("session")
    assert cookie is not None
    assert decode_cookie_payload(cookie.value) == {"user": "ada"}


def test_tagged_types_round_trip(app: Ampulla, protocol: str, as_view: View) -> None:
    moment = datetime(2024, 5, 17, 12, 30, tzinfo=UTC)

    @app.route("/store")
    @as_view
    def store() -> str:
        session["tuple"] = (1, 2)
        session["bytes"] = b"\x00\xff"
        session["when"] = moment
        session["markup"] = Markup("<b>bold</b>")
        session["nested"] = {"list": [1, {"t": (3,)}]}
        return "ok"

    @app.route("/load")
    @as_view
    def load() -> str:
        assert session["tuple"] == (1, 2)
        assert session["bytes"] == b"\x00\xff"
        assert session["when"] == moment
        assert session["markup"] == Markup("<b>bold</b>") and hasattr(session["markup"], "__html__")
        assert session["nested"] == {"list": [1, {"t": (3,)}]}
        return "loaded"

    client = app.test_client(protocol=protocol)
    client.get("/store")
    assert client.get("/load").text == "loaded"


@pytest.mark.parametrize(
    "value",
    [
        {" t": [1, 2]},
        {" b": "AAAA"},
        {" d": "2020-01-01"},
        {" m": "<i>x</i>"},
        {" di": {"a": 1}},
        {"outer": {" t": ["x"]}},
    ],
    ids=["tuple-tag", "bytes-tag", "date-tag", "markup-tag", "dict-tag", "nested"],
)
def test_user_dicts_that_look_like_type_tags_round_trip_unchanged(
    app: Ampulla, protocol: str, value: dict[str, Any]
) -> None:
    # Dict keys often come from user input (form fields, JSON bodies); they must not change type.
    @app.route("/store", methods=["POST"])
    def store() -> str:
        session["prefs"] = value
        return "ok"

    @app.route("/load")
    def load() -> str:
        return json.dumps([type(session["prefs"]).__name__, session["prefs"]])

    client = app.test_client(protocol=protocol)
    client.post("/store")
    assert json.loads(client.get("/load").text) == ["dict", value]


def test_user_supplied_dict_cannot_become_markup_and_skip_escaping(app: Ampulla, protocol: str) -> None:
    from ampulla import request
    from ampulla.templating import render_template_string

    @app.route("/prefs", methods=["POST"])
    def save_prefs() -> str:
        session["prefs"] = request.get_json()
        return "ok"

    @app.route("/")
    def show() -> str:
        return render_template_string("{{ session.prefs.nickname }}")

    client = app.test_client(protocol=protocol)
    client.post("/prefs", json={"nickname": {" m": "<script>alert(1)</script>"}})
    assert "<script>" not in client.get("/").text


def test_values_json_cannot_hold_raise_instead_of_pickling(app: Ampulla, protocol: str) -> None:
    class Secret:
        pass

    @app.route("/")
    def index() -> str:
        session["obj"] = Secret()
        return "ok"

    with pytest.raises(TypeError):
        app.test_client(protocol=protocol).get("/")


def test_unchanged_session_sends_no_cookie(session_client: AmpullaClient) -> None:
    session_client.get("/set/user/ada")
    reading = session_client.get("/get/user")
    assert set_cookie_headers(reading) == []
    assert "Cookie" in reading.headers.getlist("Vary")
    untouched = session_client.get("/nothing")
    assert set_cookie_headers(untouched) == []
    assert "Cookie" not in untouched.headers.getlist("Vary")


def test_nested_changes_are_saved_only_when_marked_modified(app: Ampulla, protocol: str) -> None:
    @app.route("/init")
    def init() -> str:
        session["cart"] = []
        return "ok"

    @app.route("/add-unmarked")
    def add_unmarked() -> str:
        session["cart"].append("apple")
        return "ok"

    @app.route("/add-marked")
    def add_marked() -> str:
        session["cart"].append("pear")
        session.modified = True
        return "ok"

    @app.route("/cart")
    def cart() -> str:
        return ",".join(session["cart"])

    client = app.test_client(protocol=protocol)
    client.get("/init")
    client.get("/add-unmarked")
    assert client.get("/cart").text == ""
    client.get("/add-marked")
    assert client.get("/cart").text == "pear"


def test_clearing_the_session_deletes_the_cookie(session_client: AmpullaClient) -> None:
    session_client.get("/set/user/ada")
    response = session_client.get("/clear")
    (header,) = set_cookie_headers(response)
    attributes = cookie_attributes(header)
    assert header.startswith("session=;")
    assert attributes["max-age"] == "0"
    assert session_client.get_cookie("session") is None
    assert session_client.get("/get/user").text == "None"


def test_secret_key_rotation_keeps_sessions_signed_with_fallback_keys(session_app: Ampulla, protocol: str) -> None:
    client = session_app.test_client(protocol=protocol)
    client.get("/set/user/ada")
    old_cookie = client.get_cookie("session")
    assert old_cookie is not None
    session_app.config["SECRET_KEY"] = "new-secret"
    session_app.config["SECRET_KEY_FALLBACKS"] = ["test-secret"]
    assert client.get("/get/user").text == "'ada'"
    # New cookies are signed with the new key only.
    client.get("/set/user/bob")
    new_cookie = client.get_cookie("session")
    assert new_cookie is not None
    session_app.config["SECRET_KEY_FALLBACKS"] = None
    assert client.get("/get/user").text == "'bob'"
    # Once the old key is dropped, cookies signed with it are ignored.
    client.set_cookie("session", old_cookie.value)
    assert client.get("/get/user").text == "None"


def _sign(data: dict[str, Any], key: str, timestamp: int | None = None) -> str:
    serializer = URLSafeTimedSerializer(
        key, salt="cookie-session", signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1}
    )
    if timestamp is None:
        return serializer.dumps(data)
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: timestamp  # type: ignore[method-assign]
    try:
        return serializer.dumps(data)
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def _flip_signature(cookie: str) -> str:
    # Change the signature's first character: it carries 6 full bits (the last one partly carries padding).
    payload, _, signature = cookie.rpartition(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def test_a_cookie_signed_the_same_way_is_accepted(session_client: AmpullaClient) -> None:
    # Guards the bad-cookie tests below: they differ from this valid cookie in one respect each.
    session_client.set_cookie("session", _sign({"user": "mallory"}, "test-secret"))
    assert session_client.get("/get/user").text == "'mallory'"


@pytest.mark.parametrize(
    "make_cookie",
    [
        pytest.param(lambda valid: _flip_signature(valid), id="tampered-signature"),
        pytest.param(
            lambda valid: _sign({"user": "admin"}, "test-secret").split(".")[0] + "." + valid.split(".", 1)[1],
            id="tampered-payload",
        ),
        pytest.param(lambda valid: valid[: len(valid) // 2], id="truncated"),
        pytest.param(lambda valid: _sign({"user": "mallory"}, "other-key"), id="other-key"),
        pytest.param(lambda valid: _sign({"user": "mallory"}, "test-secret", int(time.time()) - 3600), id="expired"),
        pytest.param(lambda valid: _sign(["not", "a", "dict"], "test-secret"), id="not-a-dict"),  # type: ignore[arg-type]
        pytest.param(lambda valid: "garbage", id="garbage"),
        pytest.param(lambda valid: "...", id="dots"),
        pytest.param(lambda valid: "%ff%fe\\x00", id="binary"),
        pytest.param(lambda valid: "a" * 10_000, id="oversized"),
        pytest.param(lambda valid: "eyJ1c2VyIjoiYWRhIn0", id="unsigned-json"),
    ],
)
def test_bad_cookies_give_an_empty_session_not_an_error(
    session_app: Ampulla, protocol: str, make_cookie: Callable[[str], str]
) -> None:
    session_app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=30)
    client = session_app.test_client(protocol=protocol)
    plant_cookie(client, make_cookie(_sign({"user": "mallory"}, "test-secret")))
    response = client.get("/get/user")
    assert response.status_code == 200
    assert response.text == "None"
    # The session still works afterwards.
    client.get("/set/user/ada")
    assert client.get("/get/user").text == "'ada'"


def test_session_without_secret_key_raises_an_error_saying_what_to_set(session_app: Ampulla, protocol: str) -> None:
    session_app.config["SECRET_KEY"] = None
    client = session_app.test_client(protocol=protocol)
    # Reading is harmless: nothing is stored.
    assert client.get("/get/user").text == "None"
    with pytest.raises(RuntimeError, match=r"SECRET_KEY"):
        client.get("/set/user/ada")


def test_session_without_secret_key_is_a_500_in_production(
    session_app: Ampulla, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_app.config["SECRET_KEY"] = None
    session_app.testing = False
    monkeypatch.setattr(session_app.logger, "disabled", True)  # the logger is global: restore it after
    response = session_app.test_client(protocol=protocol).get("/set/user/ada")
    assert response.status_code == 500
    assert set_cookie_headers(response) == []


def test_oversized_session_raises_a_clear_error(app: Ampulla, protocol: str) -> None:
    @app.route("/big")
    def big() -> str:
        session["blob"] = secrets.token_urlsafe(4000)  # random: the cookie's zlib compression cannot shrink it
        return "ok"

    @app.route("/fits")
    def fits() -> str:
        session["blob"] = secrets.token_urlsafe(1500)
        return "ok"

    client = app.test_client(protocol=protocol)
    assert client.get("/fits").status_code == 200
    with pytest.raises(ValueError, match=r"MAX_COOKIE_SIZE.*RedisSessionInterface"):
        client.get("/big")


def test_oversized_session_is_not_sent_in_production(
    app: Ampulla, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.testing = False
    monkeypatch.setattr(app.logger, "disabled", True)  # the logger is global: restore it after

    @app.route("/big")
    def big() -> str:
        session["blob"] = secrets.token_urlsafe(4000)
        return "ok"

    response = app.test_client(protocol=protocol).get("/big")
    assert response.status_code == 500
    assert set_cookie_headers(response) == []


# ---------------------------------------------------------------------------------------------- flash


@pytest.fixture
def flash_app(app: Ampulla, as_view: View) -> Ampulla:
    @app.route("/flash")
    @as_view
    def do_flash() -> str:
        flash("plain")
        flash("saved", "success")
        flash("oops", "error")
        flash("careful", "warning")
        return "flashed"

    @app.route("/all")
    @as_view
    def all_messages() -> str:
        first = get_flashed_messages()
        again = get_flashed_messages()
        assert first == again  # repeated calls in one request see the same messages
        return json.dumps(first)

    @app.route("/categories")
    @as_view
    def with_categories() -> str:
        return json.dumps(get_flashed_messages(with_categories=True))

    @app.route("/errors")
    @as_view
    def errors_only() -> str:
        return json.dumps(
            [get_flashed_messages(category_filter=["error", "warning"]), get_flashed_messages(with_categories=True)]
        )

    return app


def test_flashed_messages_are_shown_once(flash_app: Ampulla, protocol: str) -> None:
    client = flash_app.test_client(protocol=protocol)
    client.get("/flash")
    assert json.loads(client.get("/all").text) == ["plain", "saved", "oops", "careful"]
    assert json.loads(client.get("/all").text) == []


def test_flashed_messages_with_categories(flash_app: Ampulla, protocol: str) -> None:
    client = flash_app.test_client(protocol=protocol)
    client.get("/flash")
    assert json.loads(client.get("/categories").text) == [
        ["message", "plain"],
        ["success", "saved"],
        ["error", "oops"],
        ["warning", "careful"],
    ]


def test_flashed_messages_category_filter(flash_app: Ampulla, protocol: str) -> None:
    client = flash_app.test_client(protocol=protocol)
    client.get("/flash")
    filtered, everything = json.loads(client.get("/errors").text)
    assert filtered == ["oops", "careful"]
    assert len(everything) == 4


def test_flash_in_templates_with_filter(flash_app: Ampulla, protocol: str) -> None:
    from ampulla.templating import render_template_string

    @flash_app.route("/page")
    def page() -> str:
        return render_template_string(
            "{% for m in get_flashed_messages(category_filter=['error']) %}[{{ m }}]{% endfor %}"
            "{% with msgs = get_flashed_messages(with_categories=true) %}"
            "{% for c, m in msgs %}({{ c }}:{{ m }}){% endfor %}{% endwith %}"
        )

    client = flash_app.test_client(protocol=protocol)
    client.get("/flash")
    assert client.get("/page").text == "[oops](message:plain)(success:saved)(error:oops)(warning:careful)"
    assert client.get("/page").text == ""


def test_flash_then_redirect(app: Ampulla, protocol: str) -> None:
    from ampulla import redirect, url_for

    @app.route("/save")
    def save() -> Any:
        flash("Saved!")
        return redirect(url_for("show"))

    @app.route("/show")
    def show() -> str:
        return "|".join(get_flashed_messages())

    response = app.test_client(protocol=protocol).get("/save", follow_redirects=True)
    assert response.text == "Saved!"


# ---------------------------------------------------------------------------------------------- Redis


def _redis_client() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"Redis at 127.0.0.1:6379 is unreachable: {e}")
    return client


@pytest.fixture
def redis_client() -> Iterator[Any]:
    client = _redis_client()
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    value = f"ampulla-test:{uuid.uuid4().hex}:"
    yield value
    keys = list(redis_client.scan_iter(match=value + "*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def redis_app(session_app: Ampulla, redis_client: Any, prefix: str) -> Ampulla:
    from ampulla.redis_sessions import RedisSessionInterface

    session_app.session_interface = RedisSessionInterface(redis_client, prefix=prefix)
    session_app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=1)

    @session_app.route("/sid")
    def sid() -> str:
        return str(session.sid)  # type: ignore[attr-defined]

    @session_app.route("/login/<user>")
    def login(user: str) -> str:
        session_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        session["user"] = user
        return str(session.sid)  # type: ignore[attr-defined]

    return session_app


def _keys(redis_client: Any, prefix: str) -> list[str]:
    return sorted(k.decode() for k in redis_client.scan_iter(match=prefix + "*"))


def test_redis_session_round_trip_keeps_data_on_the_server(
    redis_app: Ampulla, redis_client: Any, prefix: str, protocol: str
) -> None:
    client = redis_app.test_client(protocol=protocol)
    client.get("/set/user/ada")
    assert client.get("/get/user").text == "'ada'"
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert "ada" not in cookie.value
    (key,) = _keys(redis_client, prefix)
    sid = key[len(prefix) :]
    assert cookie.value.startswith(sid + ".")  # the id, then its signature
    assert len(sid) >= 40  # token_urlsafe(32)
    assert json.loads(redis_client.get(key)) == {"user": "ada"}


def test_redis_session_ttl_is_the_lifetime(redis_app: Ampulla, redis_client: Any, prefix: str) -> None:
    client = redis_app.test_client()
    client.get("/set/user/ada")
    (key,) = _keys(redis_client, prefix)
    assert 3590 <= redis_client.ttl(key) <= 3600
    redis_client.expire(key, 100)
    client.get("/get/user")  # an active session slides its expiry
    assert redis_client.ttl(key) > 3500


def test_redis_session_cookie_attributes(redis_app: Ampulla) -> None:
    redis_app.config["SESSION_COOKIE_SECURE"] = True
    client = redis_app.test_client()
    (header,) = set_cookie_headers(client.get("/set/user/ada"))
    attributes = cookie_attributes(header)
    assert "httponly" in attributes and "secure" in attributes
    assert attributes["samesite"] == "Lax"
    assert "expires" not in attributes
    (header,) = set_cookie_headers(client.get("/permanent"))
    assert "expires" in cookie_attributes(header)


def test_redis_untouched_session_writes_nothing(redis_app: Ampulla, redis_client: Any, prefix: str) -> None:
    client = redis_app.test_client()
    response = client.get("/get/user")
    assert response.text == "None"
    assert set_cookie_headers(response) == []
    assert _keys(redis_client, prefix) == []


def test_redis_revoke_logs_the_session_out(redis_app: Ampulla, protocol: str) -> None:
    client = redis_app.test_client(protocol=protocol)
    client.get("/set/user/ada")
    sid = client.get("/sid").text
    assert redis_app.session_interface.revoke(sid) is True  # type: ignore[attr-defined]
    assert client.get("/get/user").text == "None"
    assert redis_app.session_interface.revoke(sid) is False  # type: ignore[attr-defined]


def test_redis_deleting_the_key_logs_the_session_out(redis_app: Ampulla, redis_client: Any, prefix: str) -> None:
    client = redis_app.test_client()
    client.get("/set/user/ada")
    redis_client.delete(*_keys(redis_client, prefix))
    assert client.get("/get/user").text == "None"


def test_redis_regenerate_changes_the_id_and_keeps_the_data(
    redis_app: Ampulla, redis_client: Any, prefix: str, protocol: str
) -> None:
    client = redis_app.test_client(protocol=protocol)
    client.get("/set/cart/apple")
    old_sid = client.get("/sid").text
    new_sid = client.get("/login/ada").text
    assert new_sid != old_sid
    assert _keys(redis_client, prefix) == [prefix + new_sid]
    assert client.get("/get/cart").text == "'apple'"
    assert client.get("/get/user").text == "'ada'"


def test_redis_fixation_a_planted_or_unknown_id_is_never_adopted(
    redis_app: Ampulla, redis_client: Any, prefix: str
) -> None:
    from itsdangerous import Signer

    planted = "attacker-chosen-id"
    signed = Signer("test-secret", salt="ampulla.redis-session").sign(planted).decode()
    client = redis_app.test_client()
    client.set_cookie("session", signed)
    client.get("/set/user/ada")
    assert client.get("/sid").text != planted
    assert redis_client.get(prefix + planted) is None


@pytest.mark.parametrize(
    "cookie",
    ["garbage", "abc.def", "x" * 5000, "", "sid.", ".sig"],
    ids=["garbage", "bad-signature", "oversized", "empty", "no-signature", "no-id"],
)
def test_redis_bad_cookies_give_an_empty_session(redis_app: Ampulla, protocol: str, cookie: str) -> None:
    client = redis_app.test_client(protocol=protocol)
    plant_cookie(client, cookie)
    response = client.get("/get/user")
    assert response.status_code == 200
    assert response.text == "None"


def test_redis_cookie_signed_with_another_key_is_ignored(redis_app: Ampulla) -> None:
    client = redis_app.test_client()
    client.get("/set/user/ada")
    redis_app.config["SECRET_KEY"] = "rotated"
    assert client.get("/get/user").text == "None"
    redis_app.config["SECRET_KEY_FALLBACKS"] = ["test-secret"]
    client.get("/set/user/ada")
    assert client.get("/get/user").text == "'ada'"


def test_redis_corrupt_stored_data_gives_an_empty_session(
    redis_app: Ampulla, redis_client: Any, prefix: str
) -> None:
    client = redis_app.test_client()
    client.get("/set/user/ada")
    (key,) = _keys(redis_client, prefix)
    redis_client.set(key, b"\x80not json")
    assert client.get("/get/user").text == "None"


def test_redis_clearing_deletes_key_and_cookie(redis_app: Ampulla, redis_client: Any, prefix: str) -> None:
    client = redis_app.test_client()
    client.get("/set/user/ada")
    response = client.get("/clear")
    assert cookie_attributes(set_cookie_headers(response)[0])["max-age"] == "0"
    assert _keys(redis_client, prefix) == []


def test_redis_large_sessions_are_fine(redis_app: Ampulla, protocol: str) -> None:
    @redis_app.route("/big")
    def big() -> str:
        session["blob"] = "x" * 100_000
        return "ok"

    @redis_app.route("/size")
    def size() -> str:
        return str(len(session["blob"]))

    client = redis_app.test_client(protocol=protocol)
    client.get("/big")
    assert client.get("/size").text == "100000"


def test_redis_without_secret_key_raises_a_clear_error(redis_app: Ampulla) -> None:
    redis_app.config["SECRET_KEY"] = None
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        redis_app.test_client().get("/set/user/ada")


def test_redis_flash_messages(redis_app: Ampulla, protocol: str) -> None:
    @redis_app.route("/flash")
    def do_flash() -> str:
        flash("hello", "info")
        return "ok"

    @redis_app.route("/show")
    def show() -> str:
        return json.dumps(get_flashed_messages(with_categories=True))

    client = redis_app.test_client(protocol=protocol)
    client.get("/flash")
    assert json.loads(client.get("/show").text) == [["info", "hello"]]
    assert json.loads(client.get("/show").text) == []


def test_regenerate_refuses_other_sessions(app: Ampulla, redis_client: Any) -> None:
    from ampulla.redis_sessions import RedisSessionInterface
    from ampulla.sessions import SecureCookieSession

    with pytest.raises(TypeError, match="RedisSession"):
        RedisSessionInterface(redis_client).regenerate(SecureCookieSession())
