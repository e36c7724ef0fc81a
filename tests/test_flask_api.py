"""Flask API pieces: Flask-signed session cookies, the tagged JSON format, resources, instance folders, logging,
helpers and the test client's Flask arguments."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from itsdangerous import URLSafeTimedSerializer
from markupsafe import Markup

from ampulla import Ampulla, session
from ampulla.helpers import get_debug_flag, get_load_dotenv, get_template_attribute
from ampulla.logging import default_handler, has_level_handler, wsgi_errors_stream
from ampulla.sessions import JSONTag, TaggedJSONSerializer, session_json_serializer

#: What Flask 3.1.3's session serializer writes for these values (taken from Flask itself).
FLASK_PAYLOAD = (
    '{"_flashes":[{" t":["message","Saved"]}],"at":{" d":"Mon, 07 Dec 2026 10:30:15 GMT"},'
    '"html":{" m":"<b>hi</b>"},"id":{" u":"12345678123456781234567812345678"},"pair":{" t":[1,"a"]},'
    '"raw":{" b":"AP8="},"tricky":{" di":{" t__":"not a tuple"}},"user_id":7}'
)
VALUES = {
    "_flashes": [("message", "Saved")],
    "at": datetime(2026, 12, 7, 10, 30, 15, tzinfo=UTC),
    "html": Markup("<b>hi</b>"),
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "pair": (1, "a"),
    "raw": b"\x00\xff",
    "tricky": {" t": "not a tuple"},
    "user_id": 7,
}


def flask_cookie(secret_key: str, payload: str) -> str:
    """A session cookie signed as Flask signs it: itsdangerous, salt ``cookie-session``, HMAC-SHA1."""

    class Raw:
        @staticmethod
        def dumps(value: Any) -> str:
            return payload

        @staticmethod
        def loads(value: Any) -> Any:  # pragma: no cover - only dumps is used
            raise NotImplementedError

    signer = URLSafeTimedSerializer(
        secret_key, salt="cookie-session", serializer=Raw,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return signer.dumps({})


def test_serializer_writes_flasks_format() -> None:
    app = Ampulla(__name__)
    with app.app_context():
        assert session_json_serializer.dumps(VALUES) == FLASK_PAYLOAD
    assert session_json_serializer.loads(FLASK_PAYLOAD) == VALUES


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_a_cookie_signed_by_flask_stays_valid(protocol: str) -> None:
    app = Ampulla(__name__)
    app.secret_key = "shared secret"

    @app.route("/")
    def index() -> dict[str, Any]:
        return {
            "user_id": session["user_id"],
            "pair": list(session["pair"]),
            "is_tuple": isinstance(session["pair"], tuple),
            "uuid": str(session["id"]),
            "at": session["at"].isoformat(),
            "tricky": session["tricky"],
        }

    client = app.test_client(protocol=protocol)
    client.set_cookie("session", flask_cookie("shared secret", FLASK_PAYLOAD))
    data = client.get("/").json
    assert data == {
        "user_id": 7, "pair": [1, "a"], "is_tuple": True, "uuid": "12345678-1234-5678-1234-567812345678",
        "at": "2026-12-07T10:30:15+00:00", "tricky": {" t": "not a tuple"},
    }
    # Signed with another key: an empty session (the view's KeyError), never the data.
    client.set_cookie("session", flask_cookie("another secret", FLASK_PAYLOAD))
    assert client.get("/").status_code in (400, 500)


def test_custom_tag_registration() -> None:
    class TagFrozenSet(JSONTag):
        __slots__ = ()
        key = " fs"

        def check(self, value: Any) -> bool:
            return isinstance(value, frozenset)

        def to_json(self, value: Any) -> Any:
            return sorted(value)

        def to_python(self, value: Any) -> Any:
            return frozenset(value)

    serializer = TaggedJSONSerializer()
    serializer.register(TagFrozenSet)
    assert serializer.loads(serializer.dumps({"s": frozenset({2, 1})})) == {"s": frozenset({1, 2})}
    with pytest.raises(KeyError):
        serializer.register(TagFrozenSet)
    serializer.register(TagFrozenSet, force=True, index=0)
    assert isinstance(serializer.order[0], TagFrozenSet)


def test_iso_dates_of_earlier_cookies_still_load() -> None:
    assert session_json_serializer.loads('{" d":"2026-01-02T03:04:05"}') == datetime(2026, 1, 2, 3, 4, 5)


def test_open_resource_and_instance_resource(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (x);", encoding="utf-8")
    app = Ampulla("no_such_module_here", root_path=str(tmp_path), instance_path=str(tmp_path / "instance"))
    with app.open_resource("schema.sql") as f:
        assert f.read() == b"CREATE TABLE t (x);"
    with app.open_resource("schema.sql", "r", encoding="utf-8") as f:
        assert f.read().startswith("CREATE")
    with pytest.raises(ValueError, match="only be opened for reading"):
        app.open_resource("schema.sql", "w")
    os.makedirs(app.instance_path)
    with app.open_instance_resource("notes.txt", "w") as f:
        f.write("héllo")
    with app.open_instance_resource("notes.txt", "r") as f:
        assert f.read() == "héllo"


def test_instance_path_of_an_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "installed_pkg").mkdir(parents=True)
    (site / "installed_pkg" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "installed_pkg", raising=False)
    app = Ampulla("installed_pkg")
    assert app.instance_path == str(tmp_path / "var" / "installed_pkg-instance")
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(project))
    assert Ampulla("mypkg").instance_path == str(project / "instance")


def test_permanent_session_lifetime() -> None:
    app = Ampulla(__name__)
    assert app.permanent_session_lifetime == timedelta(days=31)
    app.config["PERMANENT_SESSION_LIFETIME"] = 42
    assert app.permanent_session_lifetime == timedelta(seconds=42)
    app.permanent_session_lifetime = timedelta(hours=1)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=1)


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("False", False), ("1", True)])
def test_get_debug_flag(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.delenv("AMPULLA_DEBUG", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", value)
    assert get_debug_flag() is expected


def test_get_load_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMPULLA_SKIP_DOTENV", raising=False)
    monkeypatch.delenv("FLASK_SKIP_DOTENV", raising=False)
    assert get_load_dotenv() is True
    assert get_load_dotenv(False) is False
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    assert get_load_dotenv() is False


def test_get_template_attribute(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "_macros.html").write_text(
        "{% macro hello(name) %}Hello {{ name }}!{% endmacro %}", encoding="utf-8"
    )
    app = Ampulla(__name__, root_path=str(tmp_path))
    with app.app_context():
        assert get_template_attribute("_macros.html", "hello")("World") == "Hello World!"


def test_debug_turns_template_auto_reload_on() -> None:
    app = Ampulla(__name__)
    assert app.jinja_env.auto_reload is False
    app.debug = True
    assert app.jinja_env.auto_reload is True


def test_logger_writes_to_the_requests_error_stream() -> None:
    """WSGI's ``wsgi.errors`` (ASGI has no error stream: there the handler writes to stderr)."""
    app = Ampulla("ampulla_logging_test")
    logger = logging.getLogger("ampulla_logging_test")
    logger.handlers = []
    root_handlers = logging.root.handlers[:]
    logging.root.handlers = []
    try:
        assert app.logger.handlers == [default_handler]

        @app.route("/")
        def index() -> str:
            app.logger.error("told")
            return ""

        stream = io.StringIO()
        app.test_client().get("/", errors_stream=stream)
        assert "ERROR in test_flask_api: told" in stream.getvalue()
        assert wsgi_errors_stream._get_current_object() is sys.stderr  # type: ignore[attr-defined]
        assert not has_level_handler(logging.getLogger("ampulla_nothing_configured"))
    finally:
        logging.root.handlers[:] = root_handlers
        logger.handlers = []


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_client_positional_base_url_and_header_sets(protocol: str) -> None:
    app = Ampulla(__name__)

    @app.route("/", methods=["GET", "POST"])
    def index() -> str:
        from ampulla import request

        return request.host

    client = app.test_client(protocol=protocol)
    assert client.get("/", "http://example.com:8080/").text == "example.com:8080"
    response = client.open("/", method="OPTIONS")
    assert sorted(response.allow) == ["GET", "HEAD", "OPTIONS", "POST"]
    assert "get" in response.allow
    assert not response.vary
    with pytest.raises(TypeError, match="multiple values"):
        client.open("/", method="GET", path="/")
