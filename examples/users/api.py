"""The seed's users API: ``/api/v1/users/`` (list, create, update) and ``/api/v1/users/<int:id>``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ampulla import Blueprint, abort, current_app, request
from ampulla.csrf import csrf_exempt
from ampulla.exceptions import HTTPException

from .models import User, db

api = Blueprint("api", __name__)
csrf_exempt(api)  # a JSON API authenticated per request, not by the browser's session cookie


@api.errorhandler(HTTPException)
def json_error(error: HTTPException) -> tuple[dict[str, Any], int]:
    """Errors of the API are JSON, like its answers."""
    return {"error": error.description or error.name}, error.code or 500


def _problems(data: Any, *, creating: bool) -> list[str]:
    from .app import validate_user

    name = str(data.get("name") or "").strip()
    email = str(data.get("email") or "").strip()
    password = data.get("password")
    if creating:
        return validate_user(name, email, str(password or ""))
    # An update checks only the fields it changes.
    errors = validate_user(name or "placeholder", email or "placeholder@example.test", None)
    return errors


def _payload() -> Any:
    """The request's fields: a JSON object or a form."""
    if request.is_json:
        data = request.get_json()
        if not isinstance(data, dict):
            abort(400, "Send a JSON object.")
        return data
    return request.form


def _conflict() -> tuple[dict[str, str], int]:
    db.session.rollback()
    return {"error": "a user with this name or email already exists"}, 409


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
    try:
        user_id = int(data.get("id"))
    except (TypeError, ValueError):
        abort(400, "An integer 'id' is required.")
    user = db.get_or_404(User, user_id)
    errors = _problems(data, creating=False)
    if errors:
        return {"error": " ".join(errors), "errors": errors}, 400
    if data.get("name"):
        user.name = str(data["name"]).strip()
    if data.get("email") is not None:
        user.email = str(data["email"])
    try:
        db.session.commit()
    except IntegrityError:
        return _conflict()
    return user.to_dict()


@api.route("/users/<int:id>", methods=["GET", "DELETE"])
def user(id: int) -> Any:
    user = db.get_or_404(User, id)
    if request.method == "DELETE":
        from .app import remove_avatar

        db.session.delete(user)
        db.session.commit()
        remove_avatar(current_app._get_current_object(), id)
        return "", 204
    return user.to_dict()


@api.route("/users/count")
async def user_count() -> dict[str, int]:
    """An async view reading through the async session."""
    count = await db.async_session.scalar(select(func.count()).select_from(User))
    return {"users": int(count or 0)}
