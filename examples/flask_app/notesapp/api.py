"""The JSON API, rate limited per client address (``API_RATE_LIMIT``, applied in ``create_app``)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select

from .extensions import db
from .models import Note, User

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/stats")
def stats() -> ResponseReturnValue:
    return jsonify(
        users=db.session.scalar(select(func.count()).select_from(User)),
        notes=db.session.scalar(select(func.count()).select_from(Note)),
    )


@bp.get("/notes")
def notes() -> ResponseReturnValue:
    if not current_user.is_authenticated:
        return jsonify(error="Sign in to read your notes."), 401
    rows = db.session.scalars(select(Note).where(Note.user_id == current_user.id).order_by(Note.id.desc()))
    return jsonify(notes=[note.to_dict() for note in rows])
