"""The seed's users API: ``/api/v1/users/`` (list, create, update) and ``/api/v1/users/<int:id>``.

Writes take JSON only (``Content-Type: application/json``; anything else is 415). A browser cannot send that
cross-site without the site's consent (a CORS preflight), which is what lets the API go without CSRF tokens.
Signing up (``POST``) is open to anyone; changing (``PUT``) or deleting (``DELETE``) a user needs that user's
name and password, or an admin's, in an ``Authorization: Basic`` header (401 without, 403 for someone else).
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ampulla import Blueprint, abort, current_app, request
from ampulla.csrf import csrf_exempt
from ampulla.datastructures import WWWAuthenticate
from ampulla.exceptions import HTTPException, Unauthorized

from .models import User, db

api = Blueprint("api", __name__)
csrf_exempt(api)  # a JSON API authenticated per request, not by the browser's session cookie

#: The ``WWW-Authenticate`` challenge of 401 answers.
CHALLENGE = WWWAuthenticate("basic", {"realm": "users API", "charset": "UTF-8"})


@api.errorhandler(HTTPException)
def json_error(error: HTTPException) -> tuple[dict[str, Any], int, list[tuple[str, str]]]:
    """Errors of the API are JSON, like its answers (keeping headers such as ``WWW-Authenticate``)."""
    headers = [(key, value) for key, value in error.get_headers() if key.lower() != "content-type"]
    return {"error": error.description or error.name}, error.code or 500, headers


def _text(data: Any, key: str) -> str | None:
    """Field ``key`` of the payload as text (``None`` when absent or null); 400 for another JSON type."""
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    abort(400, f"'{key}' must be a string.")


def _problems(data: Any, *, creating: bool) -> list[str]:
    from .app import validate_user

    name = (_text(data, "name") or "").strip()
    email = (_text(data, "email") or "").strip()
    password = _text(data, "password")
    if creating:
        return validate_user(name, email, password or "")
    # An update checks only the fields it changes.
    errors = validate_user(name or "placeholder", email or "placeholder@example.test", None)
    return errors


def _payload() -> dict[str, Any]:
    """The request's JSON object: 415 for another content type (form posts included), 400 for another JSON value."""
    if not request.is_json:
        abort(415, "Send the user as JSON, with Content-Type: application/json.")
    data = request.get_json()
    if not isinstance(data, dict):
        abort(400, "Send a JSON object.")
    return data


def _user_id(value: Any) -> int:
    """The ``id`` of a PUT: a JSON integer (or a string of digits); 400 for anything else (1e999, -Infinity...)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    abort(400, "An integer 'id' is required.")


def _conflict() -> tuple[dict[str, str], int]:
    db.session.rollback()
    return {"error": "a user with this name or email already exists"}, 409


_decoy: list[User] = []


def _decoy_user() -> User:
    """A user nobody can log in as: checked when the name is unknown, so the answer takes the same time."""
    if not _decoy:
        decoy = User(name="")
        decoy.set_password(base64.b64encode(bytes(24)).decode())
        _decoy.append(decoy)
    return _decoy[0]


def authenticated_user() -> User:
    """The user named in the ``Authorization: Basic`` header, if the password matches; 401 otherwise."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise Unauthorized("Send your user name and password (HTTP Basic authentication).", www_authenticate=CHALLENGE)
    name, password = auth.username or "", auth.password or ""
    user = db.session.scalar(select(User).where(User.name == name)) if name else None
    if not (user or _decoy_user()).check_password(password) or user is None:
        raise Unauthorized("The user name or password is wrong.", www_authenticate=CHALLENGE)
    return user


def _authorize(target_id: int) -> None:
    """Only the user themselves or an admin may change or delete user ``target_id`` (401, then 403)."""
    actor = authenticated_user()
    if actor.id != target_id and not actor.is_admin():
        abort(403, "You may only change or delete your own user.")


@api.route("/users/", methods=["GET", "POST", "PUT"])
def users() -> Any:
    if request.method == "GET":
        page = db.paginate(select(User).order_by(User.id), max_per_page=100)
        return {
            "users": [user.to_dict() for user in page.items],
            "page": page.page,
            "pages": page.pages,
            "total": page.total,
        }
    data = _payload()
    if request.method == "POST":
        errors = _problems(data, creating=True)
        if errors:
            return {"error": " ".join(errors), "errors": errors}, 400
        user = User(name=str(data["name"]).strip(), email=str(data["email"]).strip())
        user.set_password(str(data["password"]))
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            return _conflict()
        return user.to_dict(), 201
    # PUT: update the user named by "id".
    user_id = _user_id(data.get("id"))
    errors = _problems(data, creating=False)
    if errors:
        return {"error": " ".join(errors), "errors": errors}, 400
    _authorize(user_id)
    user = db.get_or_404(User, user_id)
    name = _text(data, "name")
    if name:
        user.name = name.strip()
    email = _text(data, "email")
    if email is not None:
        user.email = email
    try:
        db.session.commit()
    except IntegrityError:
        return _conflict()
    return user.to_dict()


@api.route("/users/<int:id>", methods=["GET", "DELETE"])
def user(id: int) -> Any:
    if request.method == "DELETE":
        from .app import remove_avatar

        _authorize(id)
        user = db.get_or_404(User, id)
        db.session.delete(user)
        db.session.commit()
        remove_avatar(current_app._get_current_object(), id)
        return "", 204
    return db.get_or_404(User, id).to_dict()


@api.route("/users/count")
async def user_count() -> dict[str, int]:
    """An async view reading through the async session."""
    count = await db.async_session.scalar(select(func.count()).select_from(User))
    return {"users": int(count or 0)}
