"""Flask-JWT-Extended 4.7.4 on Ampulla: access and refresh tokens issued, required and refreshed; missing,
expired, revoked (a blocklist in Redis) and invalid tokens answered with the extension's own status and error JSON;
fresh tokens, ``current_user``, claims, optional protection; tokens in cookies with the CSRF double submit and
the implicit refresh in an ``after_request`` function."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_jwt_extended imports flask)

# isort: split

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

flask_jwt_extended = pytest.importorskip(
    "flask_jwt_extended",
    reason="Flask-JWT-Extended is not installed (pip install -e '.[dev]' installs Flask-JWT-Extended==4.7.4)",
)
import jwt as pyjwt  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from flask_jwt_extended import (  # noqa: E402
    JWTManager,
    create_access_token,
    create_refresh_token,
    current_user,
    get_jwt,
    get_jwt_identity,
    jwt_required,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)

View = Callable[[Callable[..., Any]], Callable[..., Any]]
SECRET = "extension-tests-jwt-secret-key-of-48-bytes-long!!"
USERS = {"ann": {"password": "ann-password", "role": "admin"}, "bob": {"password": "bob-password", "role": "user"}}


def _jwt_app(as_view: View, **config: Any) -> tuple[Flask, JWTManager]:
    """The app of Flask-JWT-Extended's basic usage: a login view issuing tokens, protected views."""
    app = Flask(__name__)
    app.config.update(TESTING=True, JWT_SECRET_KEY=SECRET, **config)
    jwt = JWTManager(app)

    def login() -> Any:
        username = request.json.get("username", None)
        password = request.json.get("password", None)
        user = USERS.get(username)
        if user is None or user["password"] != password:
            return jsonify({"msg": "Bad username or password"}), 401
        access_token = create_access_token(identity=username, fresh=True, additional_claims={"role": user["role"]})
        refresh_token = create_refresh_token(identity=username)
        return jsonify(access_token=access_token, refresh_token=refresh_token)

    def protected() -> Any:
        return jsonify(logged_in_as=get_jwt_identity(), role=get_jwt().get("role")), 200

    def refresh() -> Any:
        identity = get_jwt_identity()
        return jsonify(access_token=create_access_token(identity=identity, fresh=False))

    def settings() -> Any:
        return jsonify(changed_by=get_jwt_identity())

    def welcome() -> Any:
        identity = get_jwt_identity()
        return jsonify(hello=identity or "anonymous")

    app.add_url_rule("/login", view_func=as_view(login), methods=["POST"])
    app.add_url_rule("/protected", view_func=jwt_required()(as_view(protected)), methods=["GET", "POST"])
    app.add_url_rule("/refresh", view_func=jwt_required(refresh=True)(as_view(refresh)), methods=["POST"])
    app.add_url_rule("/settings", view_func=jwt_required(fresh=True)(as_view(settings)), methods=["POST"])
    app.add_url_rule("/welcome", view_func=jwt_required(optional=True)(as_view(welcome)))
    return app, jwt


def _login(client: Any, username: str = "ann") -> dict[str, str]:
    response = client.post("/login", json={"username": username, "password": USERS[username]["password"]})
    assert response.status_code == 200, response.text
    return response.json  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_issued_and_required(as_view: View, protocol: str) -> None:
    app, _ = _jwt_app(as_view)
    client = app.test_client(protocol=protocol)
    response = client.post("/login", json={"username": "ann", "password": "wrong"})
    assert (response.status_code, response.json) == (401, {"msg": "Bad username or password"})

    tokens = _login(client)
    claims = pyjwt.decode(tokens["access_token"], SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["type"], claims["fresh"], claims["role"]) == ("ann", "access", True, "admin")
    assert claims["exp"] - claims["iat"] == 15 * 60  # JWT_ACCESS_TOKEN_EXPIRES
    refresh_claims = pyjwt.decode(tokens["refresh_token"], SECRET, algorithms=["HS256"])
    assert (refresh_claims["type"], refresh_claims["exp"] - refresh_claims["iat"]) == ("refresh", 30 * 24 * 3600)

    response = client.get("/protected", headers=_bearer(tokens["access_token"]))
    assert (response.status_code, response.json) == (200, {"logged_in_as": "ann", "role": "admin"})
    assert client.get("/welcome").json == {"hello": "anonymous"}
    assert client.get("/welcome", headers=_bearer(tokens["access_token"])).json == {"hello": "ann"}


def test_refresh_and_fresh_tokens(as_view: View, protocol: str) -> None:
    app, _ = _jwt_app(as_view)
    client = app.test_client(protocol=protocol)
    tokens = _login(client, "bob")
    assert client.post("/settings", headers=_bearer(tokens["access_token"])).json == {"changed_by": "bob"}

    response = client.post("/refresh", headers=_bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    refreshed = response.json["access_token"]
    assert pyjwt.decode(refreshed, SECRET, algorithms=["HS256"])["fresh"] is False
    assert client.get("/protected", headers=_bearer(refreshed)).json == {"logged_in_as": "bob", "role": None}
    response = client.post("/settings", headers=_bearer(refreshed))
    assert (response.status_code, response.json) == (401, {"msg": "Fresh token required"})

    response = client.post("/refresh", headers=_bearer(tokens["access_token"]))
    assert (response.status_code, response.json) == (422, {"msg": "Only refresh tokens are allowed"})
    response = client.get("/protected", headers=_bearer(tokens["refresh_token"]))
    assert (response.status_code, response.json) == (422, {"msg": "Only non-refresh tokens are allowed"})


def test_missing_expired_and_invalid_tokens(as_view: View, protocol: str) -> None:
    """The extension's own answers: 401 for a missing or expired token, 422 for one it cannot read."""
    app, _ = _jwt_app(as_view)
    client = app.test_client(protocol=protocol)
    with app.app_context():
        expired = create_access_token(identity="ann", expires_delta=timedelta(seconds=-1))
    forged = pyjwt.encode({"sub": "ann", "type": "access", "jti": "x"}, "another-secret-of-thirty-two-bytes!!", "HS256")

    cases = [
        ({}, 401, "Missing Authorization Header"),
        (_bearer(expired), 401, "Token has expired"),
        ({"Authorization": f"Token {expired}"}, 401,
         "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"),
        (_bearer(forged), 422, "Signature verification failed"),
        (_bearer("not-a-token"), 422, "Not enough segments"),
    ]  # fmt: skip
    for headers, status, message in cases:
        response = client.get("/protected", headers=headers)
        assert (response.status_code, response.json) == (status, {"msg": message}), headers
        assert response.headers["Content-Type"] == "application/json"


def test_custom_loaders_current_user_and_claims(as_view: View, protocol: str) -> None:
    """``user_identity_loader``/``user_lookup_loader`` with ``current_user``, a user that no longer exists, and an
    ``expired_token_loader`` changing the answer."""
    app, jwt = _jwt_app(as_view)
    deleted: set[str] = set()

    @jwt.user_lookup_loader
    def user_lookup_callback(_jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Any:
        identity = jwt_data["sub"]
        return None if identity in deleted else {"name": identity, **USERS[identity]}

    @jwt.expired_token_loader
    def my_expired_token_callback(jwt_header: dict[str, Any], jwt_payload: dict[str, Any]) -> Any:
        return jsonify(code="dave", err=f"I can't let you do that, {jwt_payload['sub']}"), 401

    def who_am_i() -> Any:
        return jsonify(name=current_user["name"], role=current_user["role"], claims_role=get_jwt()["role"])

    app.add_url_rule("/who_am_i", view_func=jwt_required()(as_view(who_am_i)))
    client = app.test_client(protocol=protocol)
    token = _login(client)["access_token"]
    response = client.get("/who_am_i", headers=_bearer(token))
    assert response.json == {"name": "ann", "role": "admin", "claims_role": "admin"}

    deleted.add("ann")
    response = client.get("/who_am_i", headers=_bearer(token))
    assert (response.status_code, response.json) == (401, {"msg": "Error loading the user ann"})
    with app.app_context():
        expired = create_access_token(identity="bob", expires_delta=timedelta(seconds=-1))
    response = client.get("/who_am_i", headers=_bearer(expired))
    assert (response.status_code, response.json) == (401, {"code": "dave", "err": "I can't let you do that, bob"})


def test_revoked_tokens_in_a_redis_blocklist(
    redis_url: str, redis_prefix: str, redis_client: Any, as_view: View, protocol: str
) -> None:
    """The documented Redis blocklist: logging out stores the token's ``jti`` with the token's lifetime, and the
    extension answers 401 "Token has been revoked" from then on."""
    access_expires = timedelta(hours=1)
    app, jwt = _jwt_app(as_view, JWT_ACCESS_TOKEN_EXPIRES=access_expires)

    @jwt.token_in_blocklist_loader
    def check_if_token_is_revoked(jwt_header: dict[str, Any], jwt_payload: dict[str, Any]) -> bool:
        return redis_client.get(redis_prefix + jwt_payload["jti"]) is not None

    def logout() -> Any:
        jti = get_jwt()["jti"]
        redis_client.set(redis_prefix + jti, "", ex=access_expires)
        return jsonify(msg="Access token revoked")

    app.add_url_rule("/logout", view_func=jwt_required()(as_view(logout)), methods=["DELETE"])
    client = app.test_client(protocol=protocol)
    token = _login(client)["access_token"]
    other = _login(client)["access_token"]
    assert client.get("/protected", headers=_bearer(token)).status_code == 200
    assert client.delete("/logout", headers=_bearer(token)).json == {"msg": "Access token revoked"}
    jti = pyjwt.decode(token, SECRET, algorithms=["HS256"])["jti"]
    assert 0 < redis_client.ttl(redis_prefix + jti) <= 3600
    response = client.get("/protected", headers=_bearer(token))
    assert (response.status_code, response.json) == (401, {"msg": "Token has been revoked"})
    assert client.get("/protected", headers=_bearer(other)).status_code == 200


def test_tokens_in_cookies_with_csrf_double_submit(as_view: View, protocol: str) -> None:
    """``JWT_TOKEN_LOCATION = ["cookies"]``: the tokens in HttpOnly cookies, the CSRF values in readable ones; a
    state-changing request must repeat the CSRF value in ``X-CSRF-TOKEN``; tokens close to expiring are renewed
    in an ``after_request`` function (the documented implicit refresh); logout unsets the cookies."""
    app, _ = _jwt_app(as_view, JWT_TOKEN_LOCATION=["cookies"], JWT_COOKIE_SECURE=False)

    def cookie_login() -> Any:
        response = jsonify(msg="login successful")
        set_access_cookies(response, create_access_token(identity=request.json["username"]))
        set_refresh_cookies(response, create_refresh_token(identity=request.json["username"]))
        return response

    def cookie_logout() -> Any:
        response = jsonify(msg="logout successful")
        unset_jwt_cookies(response)
        return response

    @app.after_request
    def refresh_expiring_jwts(response: Any) -> Any:
        try:
            exp_timestamp = get_jwt()["exp"]
            target_timestamp = datetime.timestamp(datetime.now(UTC) + timedelta(minutes=30))
            if target_timestamp > exp_timestamp:
                set_access_cookies(response, create_access_token(identity=get_jwt_identity()))
            return response
        except (RuntimeError, KeyError):
            return response  # no valid JWT in this request

    app.add_url_rule("/cookie-login", view_func=as_view(cookie_login), methods=["POST"])
    app.add_url_rule("/cookie-logout", view_func=as_view(cookie_logout), methods=["POST"])
    client = app.test_client(protocol=protocol)
    response = client.post("/cookie-login", json={"username": "ann"})
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert set(cookies) == {"access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"}
    assert "HttpOnly" in cookies["access_token_cookie"] and "HttpOnly" not in cookies["csrf_access_token"]
    access = client.get_cookie("access_token_cookie")
    csrf = client.get_cookie("csrf_access_token")
    assert access is not None and csrf is not None
    assert pyjwt.decode(access.value, SECRET, algorithms=["HS256"])["csrf"] == csrf.value

    response = client.get("/protected")  # a GET needs no CSRF value
    assert response.json == {"logged_in_as": "ann", "role": None}
    renewed = client.get_cookie("access_token_cookie")
    assert renewed is not None and renewed.value != access.value  # 15 minutes left < 30: renewed

    response = client.post("/protected")
    assert (response.status_code, response.json) == (401, {"msg": "Missing CSRF token"})
    response = client.post("/protected", headers={"X-CSRF-TOKEN": "not-the-value"})
    assert (response.status_code, response.json) == (401, {"msg": "CSRF double submit tokens do not match"})
    csrf = client.get_cookie("csrf_access_token")
    assert csrf is not None
    response = client.post("/protected", headers={"X-CSRF-TOKEN": csrf.value})
    assert response.status_code == 200

    refresh_csrf = client.get_cookie("csrf_refresh_token")
    assert refresh_csrf is not None
    response = client.post("/refresh", headers={"X-CSRF-TOKEN": refresh_csrf.value})
    assert response.status_code == 200 and "access_token" in response.json

    response = client.post("/cookie-logout")
    assert all("Expires=Thu, 01 Jan 1970" in c for c in response.headers.getlist("Set-Cookie"))
    assert client.get_cookie("access_token_cookie") is None
    response = client.get("/protected")
    assert (response.status_code, response.json) == (401, {"msg": 'Missing cookie "access_token_cookie"'})
