"""The Flask application of ``examples/flask_app`` on Ampulla, over the test client (WSGI and ASGI).

The application imports ``flask``, ``flask_sqlalchemy``, ``flask_login``, ``flask_wtf``, ``flask_migrate`` and
``flask_limiter``, never Ampulla; ``ampulla.flask_patch`` (imported first here, as in ``serve.py``) serves Flask's
modules from Ampulla. Each test builds the app with ``create_app({...})`` on a temporary SQLite file whose
schema is made by the committed migration (Flask-Migrate's ``upgrade``).
"""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: the application imports flask)

# isort: split

import ast
import logging
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _module, _pin in (
    ("flask_login", "Flask-Login==0.6.3"),
    ("flask_wtf", "Flask-WTF==1.3.0"),
    ("flask_migrate", "Flask-Migrate==4.1.0"),
    ("flask_limiter", "Flask-Limiter==4.1.1"),
):
    pytest.importorskip(_module, reason=f"{_pin} is not installed (pip install -e '.[dev]' installs it)")

import flask  # noqa: E402
import flask_migrate  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.security import check_password_hash  # noqa: E402

from ampulla import Ampulla  # noqa: E402
from ampulla.testing import AmpullaClient, TestResponse  # noqa: E402
from examples.flask_app.notesapp import create_app  # noqa: E402
from examples.flask_app.notesapp.extensions import db  # noqa: E402
from examples.flask_app.notesapp.models import Note, User  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_DIR = REPO_ROOT / "examples" / "flask_app"
PASSWORD = "correct horse battery"
SCRIPT = "<script>alert('x')</script>"
CSRF_FIELD = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def keep_logging() -> Iterator[None]:
    """Alembic's ``fileConfig`` (in the migrations' env.py) reconfigures logging: undo it after the test."""
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    loggers = [logging.getLogger(name) for name in ("alembic", "sqlalchemy", "flask_migrate")]
    saved = [(lg, lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers]
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for lg, level, handlers, propagate, disabled in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


AppFactory = Callable[..., flask.Flask]


@pytest.fixture
def make_app(tmp_path: Path, keep_logging: None) -> Iterator[AppFactory]:
    """Build the app on a new SQLite file (schema from the migration); the engines are disposed at the end."""
    apps: list[flask.Flask] = []

    def make(**config: Any) -> flask.Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'notes.db'}",
            "SECRET_KEY": uuid.uuid4().hex,
            "API_RATE_LIMIT": "1000 per hour",
        }
        settings.update(config)
        app = create_app(settings)
        with app.app_context():
            flask_migrate.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> flask.Flask:
    return make_app()


@pytest.fixture
def client(app: flask.Flask, protocol: str) -> AmpullaClient:
    return app.test_client(protocol=protocol)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- helpers
def token_of(response: TestResponse) -> str:
    match = CSRF_FIELD.search(response.text)
    assert match is not None, f"no CSRF token in the page:\n{response.text}"
    return match.group(1)


def tamper(token: str) -> str:
    """``token`` with one character of its signature changed."""
    return token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]


def sign_up(client: AmpullaClient, username: str, password: str = PASSWORD, confirm: str | None = None) -> TestResponse:
    token = token_of(client.get("/signup"))
    data = {"username": username, "password": password, "confirm": password if confirm is None else confirm}
    return client.post("/signup", data={**data, "csrf_token": token})


def sign_in(client: AmpullaClient, username: str, password: str = PASSWORD, query: str = "") -> TestResponse:
    token = token_of(client.get("/login"))
    return client.post(f"/login{query}", data={"username": username, "password": password, "csrf_token": token})


def post_note(client: AmpullaClient, body: str) -> TestResponse:
    token = token_of(client.get("/"))
    return client.post("/", data={"body": body, "csrf_token": token})


def signed_in_as(client: AmpullaClient) -> str | None:
    response = client.get("/")
    if response.status_code == 302:
        return None
    match = re.search(r'<span id="whoami">([^<]*)</span>', response.text)
    assert match is not None
    return match.group(1)


# ---------------------------------------------------------------------------------------------- the application
def test_the_app_is_plain_flask_served_by_ampulla(app: flask.Flask) -> None:
    # What the application imports is Flask's API, and what runs it is Ampulla.
    assert isinstance(app, Ampulla)
    assert flask.Flask is Ampulla
    package = APP_DIR / "notesapp"
    imported: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "ampulla" not in imported
    assert {"flask", "flask_sqlalchemy", "flask_login", "flask_wtf", "flask_migrate", "flask_limiter"} <= imported


def test_pages_ask_for_sign_in(client: AmpullaClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2F"
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert '<p class="flash info">Sign in to see your notes.</p>' in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_sign_up_signs_in_with_a_hashed_password(app: flask.Flask, client: AmpullaClient) -> None:
    response = sign_up(client, "  Ada  ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Welcome, ada! Your account is ready." in page.text
    assert signed_in_as(client) == "ada"
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="ada"))
        assert user is not None
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith("scrypt:")
        assert check_password_hash(user.password_hash, PASSWORD)


def test_sign_up_refuses_taken_names_and_bad_input(app: flask.Flask, client: AmpullaClient) -> None:
    assert sign_up(client, "grace").status_code == 302
    other = app.test_client(protocol="wsgi")
    taken = sign_up(other, "GRACE")
    assert taken.status_code == 400
    assert "That username is taken." in taken.text
    differ = sign_up(other, "hopper", confirm="something else")
    assert differ.status_code == 400
    assert "The passwords differ." in differ.text
    short = sign_up(other, "hopper", password="short")
    assert short.status_code == 400
    assert "Field must be between 8 and 128 characters long." in short.text
    odd = sign_up(other, "<b>x</b>")
    assert odd.status_code == 400
    assert "Use letters, digits" in odd.text
    assert "<b>x</b>" not in odd.text and "&lt;b&gt;x&lt;/b&gt;" in odd.text  # the value shown back, escaped
    with app.app_context():
        assert [u.username for u in db.session.scalars(select(User))] == ["grace"]
    assert signed_in_as(other) is None


def test_sign_in_wrong_password_and_sign_out(app: flask.Flask, client: AmpullaClient, protocol: str) -> None:
    sign_up(app.test_client(protocol=protocol), "linus")
    wrong = sign_in(client, "linus", "not the password")
    assert wrong.status_code == 400
    assert "Wrong username or password." in wrong.text
    unknown = sign_in(client, "nobody", PASSWORD)
    assert unknown.status_code == 400
    assert "Wrong username or password." in unknown.text  # the same answer: names cannot be probed
    assert signed_in_as(client) is None

    right = sign_in(client, "Linus", query="?next=/api/notes")
    assert right.status_code == 302
    assert right.headers["Location"] == "/api/notes"
    assert '<p class="flash success">Signed in as linus.</p>' in client.get("/").text
    assert signed_in_as(client) == "linus"

    # Signing out is a post carrying the CSRF token; a link (GET) cannot do it.
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert signed_in_as(client) == "linus"
    token = token_of(client.get("/"))
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302
    assert out.headers["Location"] == "/login"
    assert "You are signed out." in client.get("/login").text
    assert signed_in_as(client) is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_sign_in_never_redirects_off_site(app: flask.Flask, client: AmpullaClient, target: str) -> None:
    sign_up(app.test_client(protocol="wsgi"), "margaret")
    response = sign_in(client, "margaret", query="?" + "next=" + target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_note_form_refuses_a_missing_tampered_or_foreign_csrf_token(app: flask.Flask, client: AmpullaClient) -> None:
    sign_up(client, "barbara")
    token = token_of(client.get("/"))
    missing = client.post("/", data={"body": "no token"})
    assert missing.status_code == 400
    assert "The CSRF token is missing." in missing.text
    tampered = client.post("/", data={"body": "tampered", "csrf_token": tamper(token)})
    assert tampered.status_code == 400
    assert "The CSRF token is invalid." in tampered.text
    stranger = app.test_client(protocol="wsgi")
    sign_up(stranger, "mallory")
    foreign = client.post("/", data={"body": "foreign", "csrf_token": token_of(stranger.get("/"))})
    assert foreign.status_code == 400
    assert "The CSRF tokens do not match." in foreign.text
    with app.app_context():
        assert db.session.scalars(select(Note)).all() == []

    accepted = client.post("/", data={"body": "with the token", "csrf_token": token})
    assert accepted.status_code == 302
    page = client.get("/")
    assert '<p class="flash success">Note saved.</p>' in page.text
    assert '<p class="body">with the token</p>' in page.text


def test_a_note_is_shown_escaped(app: flask.Flask, client: AmpullaClient) -> None:
    sign_up(client, "hedy")
    assert post_note(client, SCRIPT).status_code == 302
    page = client.get("/")
    assert SCRIPT not in page.text
    assert '<p class="body">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>' in page.text
    assert page.text.count("<script") == 0
    with app.app_context():
        assert db.session.scalars(select(Note.body)).all() == [SCRIPT]  # stored as typed


def test_a_note_must_have_a_body_of_bounded_length(client: AmpullaClient) -> None:
    sign_up(client, "frances")
    empty = post_note(client, "   ")
    assert empty.status_code == 400
    assert "This field is required." in empty.text
    long = post_note(client, "x" * 2001)
    assert long.status_code == 400
    assert "Field cannot be longer than 2000 characters." in long.text
    assert 'id="no-notes"' in client.get("/").text


# ---------------------------------------------------------------------------------------------- the JSON API
def test_api_lists_only_the_signed_in_users_notes(app: flask.Flask, client: AmpullaClient) -> None:
    anonymous = client.get("/api/notes")
    assert anonymous.status_code == 401
    assert anonymous.get_json() == {"error": "Sign in to read your notes."}
    other = app.test_client(protocol="wsgi")
    sign_up(other, "someone")
    post_note(other, "not yours")
    sign_up(client, "owner")
    post_note(client, "first")
    post_note(client, SCRIPT)
    notes = client.get("/api/notes")
    assert notes.status_code == 200
    assert [n["body"] for n in notes.get_json()["notes"]] == [SCRIPT, "first"]
    assert client.get("/api/stats").get_json() == {"users": 2, "notes": 3}
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert "error" in missing.get_json()


def test_api_answers_429_after_the_limit(make_app: AppFactory, protocol: str) -> None:
    app = make_app(API_RATE_LIMIT="3 per hour")
    client = app.test_client(protocol=protocol)
    for remaining in (2, 1, 0):
        response = client.get("/api/stats")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    limited = client.get("/api/stats")
    assert limited.status_code == 429
    assert limited.get_json() == {"error": "Too many requests.", "limit": "3 per 1 hour"}
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert client.get("/api/notes").status_code == 429  # the limit covers the whole API
    # Pages are not limited.
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/login").status_code == 200


def _redis_url() -> str:
    redis = pytest.importorskip("redis")
    url = os.environ.get("AMPULLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    connection = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        connection.ping()
    except redis.RedisError as e:
        pytest.skip(f"Redis at {url} is unreachable: {e}")
    finally:
        connection.close()
    return url


def test_api_limit_counted_in_redis_is_shared_by_workers(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    import redis

    url = _redis_url()
    prefix = f"notes-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("REDIS_URL", url)
    # Two applications stand for two worker processes: their counts add up in Redis.
    first = make_app(API_RATE_LIMIT="3 per hour", RATELIMIT_KEY_PREFIX=prefix)
    second = make_app(API_RATE_LIMIT="3 per hour", RATELIMIT_KEY_PREFIX=prefix)
    assert first.config["RATELIMIT_STORAGE_URI"] == url
    connection = redis.Redis.from_url(url)
    try:
        assert first.test_client(protocol=protocol).get("/api/stats").status_code == 200
        assert second.test_client(protocol=protocol).get("/api/stats").status_code == 200
        assert first.test_client(protocol=protocol).get("/api/stats").status_code == 200
        assert second.test_client(protocol=protocol).get("/api/stats").status_code == 429
        assert list(connection.scan_iter(match=f"*{prefix}*")), "no rate-limit key in Redis"
    finally:
        keys = list(connection.scan_iter(match=f"*{prefix}*"))
        if keys:
            connection.delete(*keys)
        connection.close()


# ---------------------------------------------------------------------------------------------- migrations
def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_db_upgrade_with_the_app_cli(tmp_path: Path, keep_logging: None) -> None:
    database = tmp_path / "cli.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "SECRET_KEY": "cli"})
    runner = app.test_cli_runner()
    upgrade = runner.invoke(args=["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    assert {"users", "notes", "alembic_version"} <= _tables(database)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("eb56b919e2e2",)]
    # The models and the committed migration agree: autogenerate finds nothing to add.
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 0, check.output
    downgrade = runner.invoke(args=["db", "downgrade", "base"])
    assert downgrade.exit_code == 0, downgrade.output
    assert _tables(database) == {"alembic_version"}
    with app.app_context():
        db.engine.dispose()


def test_db_upgrade_with_the_ampulla_command_in_a_temporary_folder(tmp_path: Path) -> None:
    # What README.md says to run, from another folder: the migrations are found next to the application.
    database = tmp_path / "served.db"
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "cli",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    environment.pop("AMPULLA_APP", None)
    command = [sys.executable, "-m", "ampulla", "--app", "examples.flask_app.serve:app", "db", "upgrade"]
    done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Running upgrade  -> eb56b919e2e2, users and notes" in done.stderr
    assert {"users", "notes", "alembic_version"} <= _tables(database)
    assert not (tmp_path / "migrations").exists()
