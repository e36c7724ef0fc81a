"""Sign-up, sign-in and sign-out, with Flask-Login sessions and passwords hashed by Werkzeug."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .extensions import db, login_manager
from .forms import SignInForm, SignUpForm
from .models import User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def _local_target(target: str | None) -> str | None:
    """``target`` when it is a path on this site (never another host, so ``?next=`` cannot send users away)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("notes.index"))
    form = SignUpForm()
    if form.validate_on_submit():
        user = User(username=form.username.data)
        user.set_password(form.password.data or "")
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.username.errors = [*form.username.errors, "That username is taken."]
        else:
            login_user(user)
            flash(f"Welcome, {user.username}! Your account is ready.", "success")
            return redirect(url_for("notes.index"))
    return render_template("auth/signup.html", form=form), 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("notes.index"))
    form = SignInForm()
    if form.validate_on_submit():
        password = form.password.data or ""
        user = db.session.scalar(select(User).filter_by(username=form.username.data))
        if user is not None and user.check_password(password):
            login_user(user, remember=bool(form.remember.data))
            flash(f"Signed in as {user.username}.", "success")
            return redirect(_local_target(request.args.get("next")) or url_for("notes.index"))
        if user is None:
            User.check_unknown(password)
        form.form_errors.append("Wrong username or password.")
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    # A post (with the CSRF token CSRFProtect checks): another site cannot sign users out with a link.
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
