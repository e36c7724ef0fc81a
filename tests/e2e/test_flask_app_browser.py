"""The Flask application of ``examples/flask_app`` in a real browser, served by real gunicorn and uvicorn.

The application is plain Flask (Flask-SQLAlchemy, Flask-Migrate, Flask-Login, Flask-WTF, Flask-Limiter) and
runs on Ampulla through ``examples/flask_app/serve.py``, started as its README says: ``ampulla ... db upgrade``
on a temporary SQLite file, then ``gunicorn`` (2 workers, WSGI) or ``uvicorn`` (ASGI) on a free port of
127.0.0.1, stopped by PID at the end. The browser is Debian's headless chromium driven by Playwright (the
fixtures of ``browser_conftest_helpers.py``); a browser is never downloaded. Each test works in a fresh browser
context, saves screenshots under ``test-artifacts/screenshots/``, and fails if any dialog (``alert()``) opens.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .browser_conftest_helpers import REPO_ROOT, browser_missing_reason
from .conftest import PYTHON, RunningServer, _gunicorn_extra_args, free_port, start_server, stop_server


def _missing_reason() -> str | None:
    if reason := browser_missing_reason():
        return reason
    for module, pin in (
        ("gunicorn", "gunicorn"),
        ("flask_login", "Flask-Login==0.6.3"),
        ("flask_wtf", "Flask-WTF==1.3.0"),
        ("flask_migrate", "Flask-Migrate==4.1.0"),
        ("flask_limiter", "Flask-Limiter==4.1.1"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{pin} is not installed (pip install -e '.[dev]')"
    return None


if reason := _missing_reason():
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402  (imported once the browser is known to exist)

from . import browser_conftest_helpers as helpers  # noqa: E402
from .browser_conftest_helpers import Browsing  # noqa: E402

# The browser fixtures of the helpers module, made visible to pytest in this module; ``browsing`` uses the
# ``example_server`` fixture below.
browser = helpers.browser
browsing = helpers.browsing

APP = "examples.flask_app.serve:app"
PASSWORD = "browser-pass-1"
SCRIPT_NOTE = "<script>alert('note')</script> & <b>bold?</b>"
TIMEOUT = 10_000
API_LIMIT = 5
#: Changes one character of a hidden input's value (in the token's signature).
TAMPER = """el => {
    const c = el.value.at(-5);
    el.value = el.value.slice(0, -5) + (c === "A" ? "B" : "A") + el.value.slice(-4);
}"""

pytestmark = pytest.mark.timeout(90)


def _redis_url() -> str | None:
    """A Redis URL that answers, or None: with it the API's limit is counted across gunicorn's workers."""
    try:
        import redis
    except ImportError:
        return None
    url = os.environ.get("AMPULLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    connection = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        connection.ping()
    except redis.RedisError:
        return None
    finally:
        connection.close()
    return url


@dataclass
class FlaskAppServer:
    """The application under one server: where to reach it and what it was started with."""

    server: RunningServer
    base_url: str
    database: Path
    redis_url: str | None
    key_prefix: str


def _server_command(name: str, port: int) -> list[str]:
    if name == "gunicorn":
        return [
            PYTHON, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", *_gunicorn_extra_args(), APP,
        ]  # fmt: skip
    return [
        PYTHON, "-m", "uvicorn", APP, "--interface", "asgi3", "--host", "127.0.0.1", "--port", str(port),
        "--timeout-graceful-shutdown", "3", "--no-access-log",
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def example_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FlaskAppServer]:
    """``examples/flask_app`` migrated with ``ampulla db upgrade``, then served by gunicorn or uvicorn."""
    name = str(request.param)
    folder = tmp_path_factory.mktemp(f"flask-app-{name}")
    database = folder / "notes.db"
    redis_url = _redis_url()
    key_prefix = f"notes-browser-{uuid.uuid4().hex}"
    environment = {
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": secrets.token_hex(32),
        "API_RATE_LIMIT": f"{API_LIMIT} per hour",
        "FLASK_RATELIMIT_KEY_PREFIX": key_prefix,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    if redis_url:
        environment["REDIS_URL"] = redis_url
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in environment.items():
            patch.setenv(variable, value)
        patch.delenv("AMPULLA_APP", raising=False)
        upgrade = subprocess.run(
            [PYTHON, "-m", "ampulla", "--app", APP, "db", "upgrade"],
            cwd=folder, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        port = free_port()
        running = start_server(
            f"{name}-flask-app", _server_command(name, port), port, folder / f"{name}.log", cwd=folder
        )
    try:
        yield FlaskAppServer(running, f"http://127.0.0.1:{port}", database, redis_url, key_prefix)
    finally:
        stop_server(running)
        if redis_url:
            import redis

            connection = redis.Redis.from_url(redis_url)
            keys = list(connection.scan_iter(match=f"*{key_prefix}*"))
            if keys:
                connection.delete(*keys)
            connection.close()


# ---------------------------------------------------------------------------------------------- steps
def submit(b: Browsing, button: str, path: str) -> int:
    """Click ``button`` and return the status of the POST it sends to ``path``."""
    with b.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0] == b.url(path), timeout=TIMEOUT
    ) as info:
        b.page.click(button)
    b.page.wait_for_load_state("load")
    return int(info.value.status)


def sign_up(b: Browsing, username: str, step: str = "") -> None:
    b.goto("/signup")
    b.page.fill("#signup input[name=username]", username)
    b.page.fill("#signup input[name=password]", PASSWORD)
    b.page.fill("#signup input[name=confirm]", PASSWORD)
    if step:
        b.shot(f"{step} form")
    assert submit(b, "#signup [type=submit]", "/signup") == 302
    expect(b.page).to_have_url(b.url("/"))
    expect(b.page.locator("#whoami")).to_have_text(username.lower())


def sign_out(b: Browsing) -> None:
    assert submit(b, "#logout button[type=submit]", "/logout") == 302
    expect(b.page).to_have_url(b.url("/login"))
    expect(b.page.locator("p.flash.info")).to_have_text("You are signed out.")
    expect(b.page.locator("#whoami")).to_have_count(0)


def sign_in(b: Browsing, username: str, password: str) -> int:
    b.goto("/login")
    b.page.fill("#login input[name=username]", username)
    b.page.fill("#login input[name=password]", password)
    return submit(b, "#login [type=submit]", "/login")


def write_note(b: Browsing, body: str) -> int:
    b.page.fill("#new-note textarea[name=body]", body)
    return submit(b, "#new-note [type=submit]", "/")


# ---------------------------------------------------------------------------------------------- scenarios
def test_sign_up_write_a_note_see_it_escaped_and_sign_out(browsing: Browsing) -> None:
    b = browsing
    b.goto("/")
    expect(b.page).to_have_url(b.url("/login?next=%2F"))
    expect(b.page.locator("p.flash.info")).to_have_text("Sign in to see your notes.")
    b.shot("asked to sign in")
    b.page.click("header >> text=Sign up")
    expect(b.page).to_have_url(b.url("/signup"))
    sign_up(b, "Ada", step="sign up")
    expect(b.page.locator("p.flash.success")).to_have_text("Welcome, ada! Your account is ready.")
    expect(b.page.locator("#no-notes")).to_be_visible()
    b.shot("signed up")

    assert write_note(b, SCRIPT_NOTE) == 302
    expect(b.page).to_have_url(b.url("/"))
    expect(b.page.locator("p.flash.success")).to_have_text("Note saved.")
    expect(b.page.locator("#notes .note .body")).to_have_text([SCRIPT_NOTE])
    expect(b.page.locator("#notes .note b")).to_have_count(0)
    expect(b.page.locator("script")).to_have_count(0)
    assert write_note(b, "a second note") == 302
    expect(b.page.locator("#notes .note .body")).to_have_text(["a second note", SCRIPT_NOTE])
    b.shot("notes escaped")
    b.page.wait_for_timeout(300)  # a script that ran would have opened its dialog by now
    b.assert_no_dialog()
    assert b.page_errors == []
    assert b.console_errors == []  # the stylesheet loaded under the Content-Security-Policy, nothing was blocked

    sign_out(b)
    b.shot("signed out")
    b.goto("/")
    expect(b.page).to_have_url(b.url("/login?next=%2F"))


def test_sign_in_refuses_a_wrong_password(browsing: Browsing) -> None:
    b = browsing
    sign_up(b, "grace")
    sign_out(b)
    assert sign_in(b, "grace", "not-the-password") == 400
    expect(b.page.locator("#form-errors li")).to_have_text(["Wrong username or password."])
    expect(b.page.locator("#whoami")).to_have_count(0)
    expect(b.page.locator("#login input[name=username]")).to_have_value("grace")
    expect(b.page.locator("#login input[name=password]")).to_have_value("")
    b.shot("wrong password")
    assert sign_in(b, "Grace", PASSWORD) == 302
    expect(b.page).to_have_url(b.url("/"))
    expect(b.page.locator("p.flash.success")).to_have_text("Signed in as grace.")
    expect(b.page.locator("#whoami")).to_have_text("grace")
    b.shot("signed in")


def test_a_tampered_or_missing_csrf_token_is_refused(browsing: Browsing) -> None:
    b = browsing
    sign_up(b, "mallory")
    token = b.page.locator("#new-note input[name=csrf_token]")
    # One character of the token's signature changed: refused, nothing saved.
    token.evaluate(TAMPER)
    assert write_note(b, "tampered") == 400
    expect(b.page.locator("h1")).to_have_text("Form refused")
    expect(b.page.locator("#error-message")).to_have_text("The CSRF token is invalid.")
    b.shot("tampered token refused")
    # The token removed from the form: refused too.
    b.goto("/")
    b.page.locator("#new-note input[name=csrf_token]").evaluate("el => el.remove()")
    assert write_note(b, "no token") == 400
    expect(b.page.locator("#error-message")).to_have_text("The CSRF token is missing.")
    b.shot("missing token refused")
    b.goto("/")
    expect(b.page.locator("#no-notes")).to_be_visible()
    # Signing out without the token fails as well: the user stays signed in.
    b.page.locator("#logout input[name=csrf_token]").evaluate("el => el.remove()")
    assert submit(b, "#logout button[type=submit]", "/logout") == 400
    b.goto("/")
    expect(b.page.locator("#whoami")).to_have_text("mallory")
    # The untouched form works.
    assert write_note(b, "with the token") == 302
    expect(b.page.locator("#notes .note .body")).to_have_text(["with the token"])
    b.shot("accepted with the token")


def test_the_api_answers_429_after_its_limit(browsing: Browsing, example_server: FlaskAppServer) -> None:
    if example_server.redis_url is None:
        pytest.skip("no Redis answers: gunicorn's workers would each count in their own memory")
    b = browsing
    statuses: list[int] = []
    last: Any = None
    for _ in range(API_LIMIT + 1):
        last = b.page.request.get(b.url("/api/stats"), timeout=TIMEOUT)
        statuses.append(last.status)
    assert statuses == [200] * API_LIMIT + [429]
    assert last.json() == {"error": "Too many requests.", "limit": f"{API_LIMIT} per 1 hour"}
    assert int(last.headers["retry-after"]) > 0
    # Pages are not limited.
    assert b.goto("/login").status == 200
    expect(b.page.locator("h1")).to_have_text(re.compile("Sign in"))
