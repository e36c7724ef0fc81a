"""The example application: the seed's routing, user inputs, templates and model, working together.

``make run`` serves it at http://127.0.0.1:5000 on an SQLite file in ``instance/``; set ``DATABASE_URL`` (for
example ``postgresql://postgres@127.0.0.1:5432/test``) to use another database. It runs under WSGI and ASGI
servers alike; the live user count (a WebSocket) needs an ASGI server such as uvicorn.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import unicodedata
from typing import Any

from markupsafe import escape
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from ampulla import (
    Ampulla,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
    websocket,
)
from ampulla.exceptions import HTTPException

from . import constants
from .api import api, json_error
from .models import User, db

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
AVATAR_TYPES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"GIF87a": "gif", b"GIF89a": "gif"}
MAX_AVATAR_BYTES = 2 * 1024 * 1024
#: The longest search: as long as the longest field (an email), so nothing that could match is refused, and far
#: below SQLite's limit on LIKE patterns (50,000 bytes, "LIKE or GLOB pattern too complex").
MAX_SEARCH = 120


def _secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()


def create_app(config: dict[str, Any] | None = None) -> Ampulla:
    """Build the example application (``config`` overrides settings, e.g. in tests)."""
    app = Ampulla(__name__)
    app.config.update(
        CSRF_ENABLED=True,
        SECURITY_HEADERS=True,
        CONTENT_SECURITY_POLICY="default-src 'self'; img-src 'self'; style-src 'self'; connect-src 'self' ws: wss:",
        PER_PAGE=10,
    )
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)
    app.config.setdefault("AVATAR_FOLDER", os.path.join(app.instance_path, "avatars"))
    db.init_app(app)
    _create_tables(app)
    app.register_blueprint(api, url_prefix="/api/v1")
    _register_pages(app)
    return app


def _register_pages(app: Ampulla) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def add_timing_header(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            response.headers["X-Response-Time"] = f"{(time.perf_counter() - started) * 1000:.2f}ms"
        return response

    @app.errorhandler(404)
    def not_found(error: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return {"error": "not found"}, 404
        return render_template("error.html", error=error), 404

    @app.errorhandler(400)
    def bad_request(error: HTTPException) -> Any:
        # Handlers by code come before handlers by class (as in Flask): the API's 400s stay JSON here.
        if request.blueprint == "api":
            return json_error(error)
        return render_template("error.html", error=error), 400

    @app.route("/")
    def index() -> str:
        query = request.args.get("q", "").strip()
        if len(query) > MAX_SEARCH:
            abort(400, f"The search is too long: at most {MAX_SEARCH} characters.")
        problem = text_problem("The search", query)
        if problem:
            abort(400, problem)
        statement = select(User).order_by(User.id)
        if query:
            # icontains with autoescape: "%" and "_" in the query are literal, and case is ignored everywhere.
            statement = statement.where(
                or_(User.name.icontains(query, autoescape=True), User.email.icontains(query, autoescape=True))
            )
        page = db.paginate(statement, per_page=app.config["PER_PAGE"], max_per_page=50)
        return render_template("index.html", page=page, query=query)

    @app.route("/guest/<guest>")
    def hello_guest(guest: str) -> str:
        # The seed's example, with the value escaped: this string is sent as HTML.
        return "Hello %s as Guest" % escape(guest)  # noqa: UP031 - the seed's own example

    @app.route("/users/new", methods=["GET", "POST"])
    def new_user() -> Any:
        form = {"name": "", "email": ""}
        errors: list[str] = []
        if request.method == "POST":
            form = {"name": request.form.get("name", "").strip(), "email": request.form.get("email", "").strip()}
            errors = validate_user(form["name"], form["email"], request.form.get("password", ""))
            if not errors:
                user = User(name=form["name"], email=form["email"], role=constants.ROLE_USER)
                user.set_password(request.form["password"])
                db.session.add(user)
                try:
                    db.session.commit()
                except IntegrityError:
                    db.session.rollback()
                    errors.append("That name or email is already taken.")
                else:
                    flash(f"Created user {user.name}.", "success")
                    return redirect(url_for("user_detail", id=user.id))
        status = 400 if errors else 200
        return render_template("new_user.html", form=form, errors=errors), status

    @app.route("/users/<int:id>")
    def user_detail(id: int) -> str:
        user = db.get_or_404(User, id)
        return render_template("user.html", user=user, avatar=_avatar_name(app, id))

    @app.route("/users/<int:id>/avatar", methods=["POST"])
    def upload_avatar(id: int) -> Response:
        user = db.get_or_404(User, id)
        upload = request.files.get("avatar")
        data = upload.read(MAX_AVATAR_BYTES + 1) if upload else b""
        kind = next((ext for magic, ext in AVATAR_TYPES.items() if data.startswith(magic)), None)
        if not upload or not data:
            flash("Choose a picture to upload.", "error")
        elif len(data) > MAX_AVATAR_BYTES:
            flash("That picture is larger than 2 MB.", "error")
        elif kind is None:
            flash("Only PNG, JPEG and GIF pictures are accepted.", "error")
        else:
            folder = app.config["AVATAR_FOLDER"]
            os.makedirs(folder, exist_ok=True)
            remove_avatar(app, id)
            # The stored name comes from the user id and the detected type, never from the client's filename.
            with open(os.path.join(folder, f"{id}.{kind}"), "wb") as out:
                out.write(data)
            flash("Picture updated.", "success")
        return redirect(url_for("user_detail", id=user.id))

    @app.route("/avatars/<path:filename>")
    def avatar(filename: str) -> Response:
        return send_from_directory(app.config["AVATAR_FOLDER"], filename, max_age=60)

    @app.route("/escaping")
    def escaping() -> str:
        sample = request.args.get("text", "<script>alert(1)</script>")
        return render_template("escaping.html", sample=sample)

    def about() -> str:
        return render_template("about.html")

    # One view registered with add_url_rule, one attached through @app.endpoint (the seed's two forms).
    app.add_url_rule("/about", view_func=about)
    app.add_url_rule("/health", endpoint="health")

    @app.endpoint("health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "users": db.session.scalar(select(func.count()).select_from(User))}

    @app.websocket("/ws/users/count")
    async def live_user_count() -> None:
        await websocket.accept()

        async def until_closed() -> None:
            async for _ in websocket:  # ends quietly when the client disconnects
                pass

        gone = asyncio.ensure_future(until_closed())
        last = -1
        try:
            while not gone.done():
                count = await db.async_session.scalar(select(func.count()).select_from(User))
                await db.async_session.rollback()  # end the read so the next one sees new users
                if count != last:
                    await websocket.send_json({"users": count})
                    last = count
                await asyncio.wait({gone}, timeout=1.0)
        finally:
            gone.cancel()


def _create_tables(app: Ampulla) -> None:
    """Create missing tables. Several workers may start at once on an empty database and race on CREATE TABLE:
    the loser's error means another worker created the table, so look again (production apps create tables
    in a deploy step: ``ampulla db upgrade``)."""
    with app.app_context():
        for attempt in range(5):
            try:
                db.create_all()
                return
            except (IntegrityError, ProgrammingError, OperationalError):
                db.session.remove()
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))


def text_problem(label: str, value: str, *, controls: bool = False) -> str | None:
    """Why ``value`` cannot be stored or searched, or ``None``.

    A lone surrogate (``"\\ud800"`` in JSON) cannot be encoded as UTF-8, so no database can store it; NUL is
    refused by PostgreSQL, and the other control characters have no place in a name, an email or a search.

    Args:
        label: How the message names the value, e.g. ``"The name"``.
        value: The text.
        controls: Whether control characters are allowed (passwords: only surrogates are refused).
    """
    if value.isprintable():  # PERF: the usual case; no control character or surrogate is printable
        return None
    categories = {unicodedata.category(char) for char in value}
    if "Cs" in categories:
        return f"{label} contains invalid Unicode (a lone surrogate)."
    if not controls and "Cc" in categories:
        return f"{label} contains control characters (such as NUL or a line break)."
    return None


def validate_user(name: str, email: str, password: str | None) -> list[str]:
    """The problems with a new user's fields (``password=None`` skips the password, for updates)."""
    errors: list[str] = []
    if not name:
        errors.append("A name is required.")
    elif len(name) > 64:
        errors.append("The name must be at most 64 characters.")
    elif problem := text_problem("The name", name):
        errors.append(problem)
    if not EMAIL_RE.match(email) or len(email) > 120 or text_problem("", email):
        errors.append("A valid email address is required.")
    if password is not None:
        if len(password) < 8:
            errors.append("The password must have at least 8 characters.")
        elif problem := text_problem("The password", password, controls=True):
            errors.append(problem)
    return errors


def remove_avatar(app: Ampulla, id: int) -> None:
    """Delete the stored picture(s) of user ``id``."""
    for name in _avatar_files(app, id):
        os.remove(os.path.join(app.config["AVATAR_FOLDER"], name))


def _avatar_files(app: Ampulla, id: int) -> list[str]:
    folder = app.config["AVATAR_FOLDER"]
    if not os.path.isdir(folder):
        return []
    return [name for name in os.listdir(folder) if name.split(".", 1)[0] == str(id)]


def _avatar_name(app: Ampulla, id: int) -> str | None:
    files = _avatar_files(app, id)
    return files[0] if files else None


def __getattr__(name: str) -> Any:
    # ``examples.users.app:app`` (make run, servers) builds the default app on first use, not at import.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
