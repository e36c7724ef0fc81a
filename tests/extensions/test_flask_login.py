"""Flask-Login 0.6.3 on Ampulla: log in, log out, remember-me, ``login_required`` and ``current_user`` in templates."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_login imports flask)

# isort: split

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

flask_login = pytest.importorskip(
    "flask_login", reason="Flask-Login is not installed (pip install -e '.[dev]' installs Flask-Login==0.6.3)"
)

from flask import Flask, flash, get_flashed_messages, redirect, render_template, request, url_for  # noqa: E402
from flask_login import (  # noqa: E402
    LoginManager,
    UserMixin,
    current_user,
    fresh_login_required,
    login_required,
    login_user,
    logout_user,
    user_logged_in,
    user_logged_out,
)

PROFILE = """\
{% if current_user.is_authenticated %}Hello {{ current_user.name }}{% else %}Hello stranger{% endif %}
"""


class User(UserMixin):
    def __init__(self, user_id: str, name: str) -> None:
        self.id = user_id
        self.name = name


USERS = {"1": User("1", "Ann <admin>"), "2": User("2", "Bob")}


@pytest.fixture
def login_app(tmp_path: Path, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Flask:
    """The app of Flask-Login's documentation: a user loader, a login view, protected views and a logout view."""
    (tmp_path / "profile.html").write_text(PROFILE)
    app = Flask(__name__, template_folder=str(tmp_path))
    app.config.update(SECRET_KEY="extension-tests", TESTING=True)

    login_manager = LoginManager()
    login_manager.init_app(app)
    login_manager.login_view = "login"
    login_manager.refresh_view = "login"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return USERS.get(user_id)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            user = USERS.get(request.form["id"])
            if user is None:
                return "no such user", 401
            login_user(user, remember=request.form.get("remember") == "yes")
            flash("Logged in successfully.")
            return redirect(request.args.get("next") or url_for("profile"))
        return "login form; " + " | ".join(get_flashed_messages())

    def profile() -> Any:
        return render_template("profile.html")

    def fresh() -> Any:
        return f"fresh {current_user.name}"

    def logout() -> Any:
        logout_user()
        return redirect(url_for("public"))

    def public() -> Any:
        return render_template("profile.html")

    app.add_url_rule("/profile", view_func=login_required(as_view(profile)))
    app.add_url_rule("/settings", view_func=fresh_login_required(as_view(fresh)))
    app.add_url_rule("/logout", view_func=login_required(as_view(logout)))
    app.add_url_rule("/", view_func=as_view(public))
    return app


def test_login_required_redirects_to_the_login_view(login_app: Flask, protocol: str) -> None:
    client = login_app.test_client(protocol=protocol)
    response = client.get("/profile")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fprofile"
    assert client.get(response.headers["Location"]).text == "login form; Please log in to access this page."


def test_log_in_and_current_user_in_a_template(login_app: Flask, protocol: str) -> None:
    client = login_app.test_client(protocol=protocol)
    assert client.get("/").text.strip() == "Hello stranger"
    response = client.post("/login?next=/profile", data={"id": "1"})
    assert response.status_code == 302 and response.headers["Location"] == "/profile"
    assert client.get_cookie("remember_token") is None
    assert client.get("/profile").text.strip() == "Hello Ann &lt;admin&gt;"  # autoescaped
    assert client.get("/").text.strip() == "Hello Ann &lt;admin&gt;"
    assert client.get("/settings").text == "fresh Ann <admin>"


def test_log_out(login_app: Flask, protocol: str) -> None:
    client = login_app.test_client(protocol=protocol)
    client.post("/login", data={"id": "2", "remember": "yes"})
    assert client.get("/profile").status_code == 200
    response = client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get_cookie("remember_token") is None  # logout_user deletes the remember cookie
    assert client.get("/").text.strip() == "Hello stranger"
    assert client.get("/profile").status_code == 302


def test_remember_me_restores_the_user_in_a_new_session(login_app: Flask, protocol: str) -> None:
    first = login_app.test_client(protocol=protocol)
    first.post("/login", data={"id": "2", "remember": "yes"})
    remember = first.get_cookie("remember_token")
    assert remember is not None and remember.value.startswith("2|")

    second = login_app.test_client(protocol=protocol)  # a new browser session: no session cookie
    second.set_cookie("remember_token", remember.value)
    response = second.get("/profile")
    assert response.status_code == 200 and response.text.strip() == "Hello Bob"
    assert second.get_cookie("session") is not None  # the restored login is now in the session
    # A session restored from the cookie is not fresh: fresh_login_required sends the user to log in again.
    response = second.get("/settings")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=%2Fsettings"


def test_a_forged_remember_cookie_is_ignored(login_app: Flask, protocol: str) -> None:
    first = login_app.test_client(protocol=protocol)
    first.post("/login", data={"id": "2", "remember": "yes"})
    remember = first.get_cookie("remember_token")
    assert remember is not None
    forged = login_app.test_client(protocol=protocol)
    forged.set_cookie("remember_token", "1|" + remember.value.split("|", 1)[1])
    assert forged.get("/profile").status_code == 302


def test_login_signals(login_app: Flask, protocol: str) -> None:
    events: list[tuple[str, str]] = []

    def logged_in(sender: Flask, user: User) -> None:
        events.append(("in", user.name))

    def logged_out(sender: Flask, user: User) -> None:
        events.append(("out", user.name))

    client = login_app.test_client(protocol=protocol)
    with user_logged_in.connected_to(logged_in, login_app), user_logged_out.connected_to(logged_out, login_app):
        client.post("/login", data={"id": "2"})
        client.get("/logout")
    assert events == [("in", "Bob"), ("out", "Bob")]


def test_request_loader_for_api_keys(protocol: str, view_kind: str) -> None:
    """``request_loader``: a user from an ``Authorization`` header, with ``unauthorized`` answering 401."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="extension-tests", TESTING=True)
    login_manager = LoginManager(app)

    @login_manager.request_loader
    def load_from_header(req: Any) -> User | None:
        key = req.headers.get("Authorization", "").removeprefix("Bearer ")
        return USERS.get(key)

    if view_kind == "def":

        @app.get("/api/me")
        @login_required
        def me() -> Any:
            return {"name": current_user.name}

    else:

        @app.get("/api/me")
        @login_required
        async def me() -> Any:
            return {"name": current_user.name}

    client = app.test_client(protocol=protocol)
    assert client.get("/api/me").status_code == 401  # no login_view: Flask-Login aborts with 401
    assert client.get("/api/me", headers={"Authorization": "Bearer 1"}).json == {"name": "Ann <admin>"}
