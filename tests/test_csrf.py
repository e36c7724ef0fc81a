"""CSRF protection: tokens, which requests are checked, exemptions, errors.

Request-level tests run over WSGI and ASGI (``protocol``) and, where views are involved, with ``def`` and
``async def`` views (``as_view``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from ampulla import Ampulla, request, session
from ampulla.csrf import CSRFError, csrf_exempt, generate_csrf, validate_csrf
from ampulla.exceptions import BadRequest
from ampulla.templating import render_template_string
from ampulla.testing import AmpullaClient
from ampulla.views import MethodView

View = Callable[[Callable[..., Any]], Callable[..., Any]]
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def csrf_app(app: Ampulla, as_view: View) -> Ampulla:
    app.config["CSRF_ENABLED"] = True

    @app.route("/token")
    @as_view
    def token() -> str:
        return generate_csrf()

    @app.route("/form")
    @as_view
    def form() -> str:
        return render_template_string('<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">')

    @app.route("/secret")
    def secret() -> str:
        # The raw per-session secret, so tests can forge tokens that differ from a valid one in one respect.
        return str(session["_csrf_token"])

    @app.route("/submit", methods=["POST", "PUT", "PATCH", "DELETE"])
    @as_view
    def submit() -> str:
        return f"ok {request.method} {request.form.get('name', '')}"

    @app.route("/api", methods=["POST", "PUT", "PATCH", "DELETE"])
    @as_view
    def api() -> dict[str, Any]:
        return {"got": request.get_json(silent=True)}

    return app


@pytest.fixture
def csrf_client(csrf_app: Ampulla, protocol: str) -> AmpullaClient:
    return csrf_app.test_client(protocol=protocol)


def token_for(client: AmpullaClient) -> str:
    response = client.get("/token")
    assert response.status_code == 200
    return response.text


# ---------------------------------------------------------------------------------------------- switching on


def test_disabled_by_default(app: Ampulla, protocol: str) -> None:
    @app.route("/submit", methods=["POST"])
    def submit() -> str:
        return "ok"

    assert app.config["CSRF_ENABLED"] is False
    assert app.test_client(protocol=protocol).post("/submit", data={"a": "b"}).status_code == 200


def test_form_post_without_token_is_rejected_with_a_clear_400(csrf_client: AmpullaClient) -> None:
    response = csrf_client.post("/submit", data={"name": "ada"})
    assert response.status_code == 400
    assert "CSRF token is missing" in response.text
    assert "csrf_token" in response.text


def test_form_post_with_the_token_from_the_template_passes(csrf_client: AmpullaClient) -> None:
    page = csrf_client.get("/form").text
    token = page.split('value="', 1)[1].split('"', 1)[0]
    assert len(token) > 40
    response = csrf_client.post("/submit", data={"name": "ada", "csrf_token": token})
    assert response.status_code == 200
    assert response.text == "ok POST ada"


@pytest.mark.parametrize("header", ["X-CSRFToken", "X-CSRF-Token"])
def test_token_in_a_header_passes(csrf_client: AmpullaClient, header: str) -> None:
    token = token_for(csrf_client)
    response = csrf_client.post("/submit", data={"name": "ada"}, headers={header: token})
    assert response.text == "ok POST ada"


def test_token_stays_valid_for_the_session(csrf_client: AmpullaClient) -> None:
    first = token_for(csrf_client)
    second = token_for(csrf_client)
    for token in (first, second, first):
        assert csrf_client.post("/submit", data={"csrf_token": token}).status_code == 200


def test_token_is_stable_within_one_request(csrf_app: Ampulla) -> None:
    with csrf_app.test_request_context("/"):
        assert generate_csrf() == generate_csrf()
        assert render_template_string("{{ csrf_token() }}") == generate_csrf()
        assert "_csrf_token" in session


# ---------------------------------------------------------------------------------------------- bad tokens


def _sign(value: str, key: str, timestamp: int | None = None) -> str:
    serializer = URLSafeTimedSerializer(key, salt="ampulla.csrf")
    if timestamp is None:
        return serializer.dumps(value)
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: timestamp  # type: ignore[method-assign]
    try:
        return serializer.dumps(value)
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def test_a_token_signed_like_ours_passes(csrf_client: AmpullaClient) -> None:
    # Guards the forged-token tests below: each differs from this valid token in one respect.
    token_for(csrf_client)

    raw = csrf_client.get("/secret").text
    assert csrf_client.post("/submit", data={"csrf_token": _sign(raw, "test-secret")}).status_code == 200


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda token, raw: token[:-2], "invalid"),
        (lambda token, raw: "garbage", "invalid"),
        (lambda token, raw: raw, "invalid"),  # the unsigned session secret
        (lambda token, raw: _sign(raw, "other-key"), "invalid"),
        (lambda token, raw: _sign("0" * 64, "test-secret"), "does not match"),
        (lambda token, raw: "x" * 5000, "invalid"),
        (lambda token, raw: "\u00e9\u00e8", "invalid"),
    ],
    ids=["truncated", "garbage", "unsigned", "other-key", "other-secret", "oversized", "non-ascii"],
)
def test_forged_tokens_are_rejected(
    csrf_app: Ampulla, protocol: str, forge: Callable[[str, str], str], message: str
) -> None:
    client = csrf_app.test_client(protocol=protocol)
    token = token_for(client)
    raw = client.get("/secret").text
    response = client.post("/submit", data={"name": "x", "csrf_token": forge(token, raw)})
    assert response.status_code == 400
    assert message in response.text


def test_token_from_another_session_is_rejected(csrf_app: Ampulla, protocol: str) -> None:
    attacker = csrf_app.test_client(protocol=protocol)
    victim = csrf_app.test_client(protocol=protocol)
    attacker_token = token_for(attacker)
    token_for(victim)
    response = victim.post("/submit", data={"csrf_token": attacker_token})
    assert response.status_code == 400
    assert "does not match" in response.text


def test_token_without_a_session_secret_is_rejected(csrf_app: Ampulla, protocol: str) -> None:
    token = token_for(csrf_app.test_client(protocol=protocol))
    fresh = csrf_app.test_client(protocol=protocol)
    response = fresh.post("/submit", data={"csrf_token": token})
    assert response.status_code == 400
    assert "session token is missing" in response.text


def test_expired_token_with_a_time_limit(csrf_app: Ampulla, protocol: str) -> None:
    csrf_app.config["CSRF_TIME_LIMIT"] = 60

    client = csrf_app.test_client(protocol=protocol)
    token_for(client)
    raw = client.get("/secret").text
    old = _sign(raw, "test-secret", int(time.time()) - 120)
    response = client.post("/submit", data={"csrf_token": old})
    assert response.status_code == 400
    assert "expired" in response.text
    assert client.post("/submit", data={"csrf_token": _sign(raw, "test-secret")}).status_code == 200


def test_old_tokens_pass_while_the_secret_key_rotates(csrf_app: Ampulla, protocol: str) -> None:
    client = csrf_app.test_client(protocol=protocol)
    token = token_for(client)
    csrf_app.config["SECRET_KEY"] = "new-secret"
    csrf_app.config["SECRET_KEY_FALLBACKS"] = ["test-secret"]
    assert client.post("/submit", data={"csrf_token": token}).status_code == 200


def test_csrf_error_is_a_bad_request_with_a_custom_handler(csrf_app: Ampulla, protocol: str) -> None:
    assert issubclass(CSRFError, BadRequest)

    @csrf_app.errorhandler(CSRFError)
    def expired(e: CSRFError) -> tuple[str, int]:
        return f"Please reload the form. ({e.description})", 400

    response = csrf_app.test_client(protocol=protocol).post("/submit", data={"a": "b"})
    assert response.status_code == 400
    assert response.text.startswith("Please reload the form. (The CSRF token is missing.")


# ---------------------------------------------------------------------------------------------- which requests


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("name=ada", FORM),
        ("name=ada", f"{FORM}; charset=utf-8"),
        (None, "multipart/form-data"),
        ('{"name": "ada"}', "text/plain"),
    ],
    ids=["urlencoded", "urlencoded-charset", "multipart", "text-plain"],
)
def test_unsafe_methods_with_form_bodies_are_checked(
    csrf_client: AmpullaClient, method: str, body: str | None, content_type: str
) -> None:
    def request_body() -> dict[str, Any]:  # fresh each time: the client closes the files it sent
        if content_type == "multipart/form-data":
            return {"data": {"name": "ada", "file": (io.BytesIO(b"data"), "a.txt")}}
        return {"data": body, "content_type": content_type}

    assert csrf_client.open("/submit", method=method, **request_body()).status_code == 400
    token = token_for(csrf_client)
    response = csrf_client.open("/submit", method=method, headers={"X-CSRFToken": token}, **request_body())
    assert response.status_code == 200


def test_post_without_a_body_is_checked(csrf_client: AmpullaClient) -> None:
    # A cross-site page can send a bodiless POST without a CORS preflight.
    assert csrf_client.post("/submit").status_code == 400
    assert csrf_client.post("/submit", headers={"X-CSRFToken": token_for(csrf_client)}).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_json_apis_are_exempt(csrf_client: AmpullaClient, method: str) -> None:
    response = csrf_client.open("/api", method=method, json={"name": "ada"})
    assert response.status_code == 200
    assert response.json == {"got": {"name": "ada"}}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_bodiless_non_post_methods_are_not_checked(csrf_client: AmpullaClient, method: str) -> None:
    # Browsers preflight cross-site PUT/PATCH/DELETE, and forms cannot send them.
    assert csrf_client.open("/api", method=method).status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_never_checked(csrf_app: Ampulla, protocol: str, method: str) -> None:
    @csrf_app.route("/safe", methods=["GET", "OPTIONS"])
    def safe() -> str:
        return "safe"

    client = csrf_app.test_client(protocol=protocol)
    assert client.open("/safe", method=method, data="a=b", content_type=FORM).status_code == 200


def test_unrouted_requests_keep_their_404_and_405(csrf_client: AmpullaClient) -> None:
    assert csrf_client.post("/nowhere", data={"a": "b"}).status_code == 404
    assert csrf_client.post("/token", data={"a": "b"}).status_code == 405


# ---------------------------------------------------------------------------------------------- exemptions


def test_csrf_exempt_on_a_view_above_or_below_route(csrf_app: Ampulla, protocol: str, as_view: View) -> None:
    @csrf_app.route("/webhook-a", methods=["POST"])
    @csrf_exempt
    @as_view
    def webhook_a() -> str:
        return "a"

    @csrf_exempt
    @csrf_app.route("/webhook-b", methods=["POST"])
    @as_view
    def webhook_b() -> str:
        return "b"

    client = csrf_app.test_client(protocol=protocol)
    assert client.post("/webhook-a", data={"x": "1"}).text == "a"
    assert client.post("/webhook-b", data={"x": "1"}).text == "b"
    assert client.post("/submit", data={"x": "1"}).status_code == 400


def test_csrf_exempt_on_a_class_based_view(csrf_app: Ampulla, protocol: str) -> None:
    @csrf_exempt
    class Hook(MethodView):
        def post(self) -> str:
            return "hooked"

    csrf_app.add_url_rule("/hook", view_func=Hook.as_view("hook"))
    assert csrf_app.test_client(protocol=protocol).post("/hook", data={"x": "1"}).text == "hooked"


def test_csrf_exempt_blueprint_by_name_contract(csrf_app: Ampulla, protocol: str) -> None:
    # The contract with blueprints.py: ``app.blueprints`` maps names to blueprint objects; endpoints are dotted.
    api = SimpleNamespace(name="api", root_path=csrf_app.root_path, template_folder=None)
    csrf_exempt(api)
    csrf_app.blueprints["api"] = api  # type: ignore[assignment]
    csrf_app.blueprints["api.v1"] = SimpleNamespace(  # type: ignore[assignment]
        name="api.v1", root_path=csrf_app.root_path, template_folder=None
    )
    csrf_app.blueprints["admin"] = SimpleNamespace(  # type: ignore[assignment]
        name="admin", root_path=csrf_app.root_path, template_folder=None
    )

    def view() -> str:
        return "ok"

    csrf_app.add_url_rule("/api/x", "api.x", view, methods=["POST"])
    csrf_app.add_url_rule("/api/v1/x", "api.v1.x", view, methods=["POST"])
    csrf_app.add_url_rule("/admin/x", "admin.x", view, methods=["POST"])
    client = csrf_app.test_client(protocol=protocol)
    assert client.post("/api/x", data={"a": "b"}).status_code == 200
    assert client.post("/api/v1/x", data={"a": "b"}).status_code == 200  # nested in an exempt blueprint
    assert client.post("/admin/x", data={"a": "b"}).status_code == 400


def test_csrf_exempt_blueprint_inside_an_app_context_is_recorded_on_the_app(csrf_app: Ampulla) -> None:
    bp = SimpleNamespace(name="hooks")
    with csrf_app.app_context():
        csrf_exempt(bp)
    assert "hooks" in csrf_app.extensions["csrf_exempt_blueprints"]


def test_csrf_exempt_real_blueprint_before_and_after_registration(csrf_app: Ampulla, protocol: str) -> None:
    from ampulla import blueprints
    early = blueprints.Blueprint("early", __name__, url_prefix="/early")
    late = blueprints.Blueprint("late", __name__, url_prefix="/late")
    guarded = blueprints.Blueprint("guarded", __name__, url_prefix="/guarded")
    for bp in (early, late, guarded):
        bp.add_url_rule("/", "index", lambda: "ok", methods=["POST"])
    csrf_exempt(early)
    csrf_app.register_blueprint(early)
    csrf_app.register_blueprint(late)
    csrf_app.register_blueprint(guarded)
    csrf_exempt(late)
    client = csrf_app.test_client(protocol=protocol)
    assert client.post("/early/", data={"a": "b"}).status_code == 200
    assert client.post("/late/", data={"a": "b"}).status_code == 200
    assert client.post("/guarded/", data={"a": "b"}).status_code == 400


# ---------------------------------------------------------------------------------------------- API


def test_validate_csrf_directly(csrf_app: Ampulla) -> None:
    with csrf_app.test_request_context("/"):
        token = generate_csrf()
        validate_csrf(token)
        with pytest.raises(CSRFError, match="missing"):
            validate_csrf(None)
        with pytest.raises(CSRFError, match="missing"):
            validate_csrf("")
        with pytest.raises(CSRFError, match="invalid"):
            validate_csrf(token + "x")


def test_generate_csrf_needs_a_secret_key(app: Ampulla) -> None:
    app.config["SECRET_KEY"] = None
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="SECRET_KEY"):
        generate_csrf()


def test_generate_csrf_needs_a_request(app: Ampulla) -> None:
    with app.app_context(), pytest.raises(RuntimeError, match="request"):
        generate_csrf()
