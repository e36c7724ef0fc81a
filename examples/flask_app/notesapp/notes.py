"""The notes page: the signed-in user's notes and the form that adds one."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import select

from .extensions import db
from .forms import NoteForm
from .models import Note

bp = Blueprint("notes", __name__)


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> ResponseReturnValue:
    form = NoteForm()
    if form.validate_on_submit():
        db.session.add(Note(body=form.body.data, user_id=current_user.id))
        db.session.commit()
        flash("Note saved.", "success")
        return redirect(url_for("notes.index"))
    notes = db.session.scalars(select(Note).where(Note.user_id == current_user.id).order_by(Note.id.desc())).all()
    return render_template("notes/index.html", form=form, notes=notes), 400 if form.errors else 200
