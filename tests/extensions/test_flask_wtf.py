"""Flask-WTF 1.3.0 on Ampulla: ``FlaskForm`` with CSRF, ``CSRFProtect``, ``FileField`` uploads, ``RecaptchaField``."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_wtf imports flask)

# isort: split

import io
import re
from collections.abc import Callable
from typing import Any

import pytest

flask_wtf = pytest.importorskip(
    "flask_wtf", reason="Flask-WTF is not installed (pip install -e '.[dev]' installs Flask-WTF==1.3.0)"
)

from flask import Flask, render_template_string  # noqa: E402
from flask_wtf import FlaskForm, RecaptchaField  # noqa: E402
from flask_wtf.csrf import CSRFError, CSRFProtect  # noqa: E402
from flask_wtf.file import FileAllowed, FileField, FileRequired, FileSize  # noqa: E402
from werkzeug.exceptions import BadRequest  # noqa: E402
from wtforms import StringField  # noqa: E402
from wtforms.validators import DataRequired  # noqa: E402

FORM_PAGE = """\
<form method="post">{{ form.csrf_token }}{{ form.name.label }} {{ form.name(size=20) }}</form>
{% for field, errors in form.errors.items() %}{{ field }}: {{ errors|join(", ") }}
{% endfor %}"""

TOKEN = re.compile(r'<input id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)">')


class NameForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()])


class UploadForm(FlaskForm):
    document = FileField(validators=[FileRequired(), FileAllowed(["txt", "md"], "Text only!"), FileSize(max_size=64)])


class SignupForm(FlaskForm):
    recaptcha = RecaptchaField()


def make_app(as_view: Callable[[Callable[..., Any]], Callable[..., Any]], handle_csrf_error: bool = False) -> Flask:
    """The app of Flask-WTF's documentation: ``CSRFProtect(app)`` and forms validated in their views."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="extension-tests",
        TESTING=True,
        RECAPTCHA_PUBLIC_KEY="public-site-key",
        RECAPTCHA_PRIVATE_KEY="private-key",
    )
    csrf = CSRFProtect(app)

    if handle_csrf_error:

        @app.errorhandler(CSRFError)
        def csrf_error(e: CSRFError) -> Any:
            return {"csrf": e.description, "bad_request": isinstance(e, BadRequest)}, 400

    def name() -> Any:
        form = NameForm()
        if form.validate_on_submit():
            return f"Hello {form.name.data}"
        return render_template_string(FORM_PAGE, form=form)

    def upload() -> Any:
        form = UploadForm()
        if form.validate_on_submit():
            document = form.document.data
            return {"filename": document.filename, "content": document.read().decode()}
        return {"errors": form.errors}, 422

    def signup() -> Any:
        return render_template_string("{{ form.recaptcha }}", form=SignupForm())

    def webhook() -> Any:
        return "received"

    app.add_url_rule("/name", view_func=as_view(name), methods=["GET", "POST"])
    app.add_url_rule("/upload", view_func=as_view(upload), methods=["POST"])
    app.add_url_rule("/signup", view_func=as_view(signup))
    app.add_url_rule("/webhook", view_func=csrf.exempt(as_view(webhook)), methods=["POST"])
    return app


@pytest.fixture
def wtf_app(as_view: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Flask:
    return make_app(as_view)


def token_of(client: Any) -> str:
    match = TOKEN.search(client.get("/name").text)
    assert match is not None
    return match.group(1)


def test_a_form_with_its_csrf_token_is_accepted(wtf_app: Flask, protocol: str) -> None:
    client = wtf_app.test_client(protocol=protocol)
    page = client.get("/name").text
    field = '<input id="name" name="name" required size="20" type="text" value="">'
    assert f'<label for="name">Name</label> {field}' in page
    assert client.post("/name", data={"name": "Ann", "csrf_token": token_of(client)}).text == "Hello Ann"
    # Validation errors still render the form.
    assert "name: This field is required." in client.post("/name", data={"csrf_token": token_of(client)}).text


def test_a_form_without_its_csrf_token_is_refused_with_400(wtf_app: Flask, protocol: str) -> None:
    client = wtf_app.test_client(protocol=protocol)
    response = client.post("/name", data={"name": "Ann"})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.text
    token_of(client)  # the session now holds a token, but the form sends another
    response = client.post("/name", data={"name": "Ann", "csrf_token": "forged"})
    assert response.status_code == 400 and "The CSRF token is invalid." in response.text


def test_csrf_error_is_a_bad_request_with_its_own_handler(as_view: Any, protocol: str) -> None:
    client = make_app(as_view, handle_csrf_error=True).test_client(protocol=protocol)
    response = client.post("/name", data={"name": "Ann"})
    assert response.status_code == 400
    assert response.json == {"csrf": "The CSRF token is missing.", "bad_request": True}
    assert client.post("/name", data={"name": "Ann", "csrf_token": token_of(client)}).text == "Hello Ann"


def test_the_token_in_a_header_and_exempt_views(wtf_app: Flask, protocol: str) -> None:
    client = wtf_app.test_client(protocol=protocol)
    token = token_of(client)
    assert client.post("/name", data={"name": "Bob"}, headers={"X-CSRFToken": token}).text == "Hello Bob"
    assert client.post("/webhook").text == "received"  # csrf.exempt
    other = wtf_app.test_client(protocol=protocol)  # another session: the token is not its own
    assert other.post("/name", data={"name": "Bob"}, headers={"X-CSRFToken": token}).status_code == 400


def test_https_requests_need_a_same_origin_referrer(wtf_app: Flask, protocol: str) -> None:
    client = wtf_app.test_client(protocol=protocol)
    token = token_of(client)
    data = {"name": "Ann", "csrf_token": token}
    response = client.post("/name", data=data, base_url="https://localhost")
    assert response.status_code == 400 and "The referrer header is missing." in response.text
    response = client.post("/name", data=data, base_url="https://localhost", headers={"Referer": "https://evil.example/"})
    assert response.status_code == 400 and "The referrer does not match the host." in response.text
    response = client.post("/name", data=data, base_url="https://localhost", headers={"Referer": "https://localhost/name"})
    assert response.text == "Hello Ann"


def test_a_file_field_upload_is_validated(wtf_app: Flask, protocol: str) -> None:
    client = wtf_app.test_client(protocol=protocol)
    token = token_of(client)

    def upload(content: bytes, filename: str) -> Any:
        return client.post("/upload", data={"csrf_token": token, "document": (io.BytesIO(content), filename)})

    response = upload(b"hello notes", "notes.txt")
    assert response.status_code == 200 and response.json == {"filename": "notes.txt", "content": "hello notes"}
    response = upload(b"MZ...", "tool.exe")
    assert response.status_code == 422 and response.json == {"errors": {"document": ["Text only!"]}}
    response = upload(b"x" * 65, "big.md")
    assert response.status_code == 422
    assert response.json["errors"]["document"] == ["File must be between 0 and 64 bytes."]
    response = client.post("/upload", data={"csrf_token": token})
    assert response.status_code == 422 and response.json == {"errors": {"document": ["This field is required."]}}


def test_the_recaptcha_field_renders_its_html(wtf_app: Flask, protocol: str) -> None:
    html = wtf_app.test_client(protocol=protocol).get("/signup").text
    assert "<script src='https://www.google.com/recaptcha/api.js' async defer></script>" in html
    assert '<div class="g-recaptcha" data-sitekey="public-site-key" id="recaptcha"></div>' in html
