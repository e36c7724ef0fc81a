"""Notes: sign up, sign in, keep notes. A plain Flask application built by :func:`create_app`.

It uses Flask-SQLAlchemy (an SQLite file in the instance folder by default), Flask-Migrate (the schema is in
``migrations/``), Flask-Login, Flask-WTF (every form is CSRF-protected) and Flask-Limiter (the JSON API under
``/api`` is rate limited per client address).

Settings come from ``create_app(config)``, else from the environment:

- ``SECRET_KEY``: signs the session cookie. Without it, a key is generated once and kept in
  ``instance/secret_key``, so every worker process and restart shares it.
- ``DATABASE_URL``: the database (default ``sqlite:///notes.db``, that is ``instance/notes.db``).
- ``REDIS_URL``: keep the API's rate-limit counters in Redis (``redis://127.0.0.1:6379/0``), shared by every
  worker process; without it each process counts in its own memory.
- ``API_RATE_LIMIT``: requests per client address to the API (default ``60 per minute``).
- ``FLASK_<NAME>``: any other setting, as Flask's ``app.config.from_prefixed_env()`` reads it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from . import api, auth, notes
from .extensions import csrf, db, login_manager, migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: The pages use no inline script or style: a script that got into a page would not run.
CONTENT_SECURITY_POLICY = "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Args:
        config: Settings that win over the defaults and the environment (tests pass a temporary database).

    Returns:
        The Flask application.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL", "sqlite:///notes.db"),
        RATELIMIT_STORAGE_URI=os.environ.get("REDIS_URL", "memory://"),
        RATELIMIT_HEADERS_ENABLED=True,
        API_RATE_LIMIT=os.environ.get("API_RATE_LIMIT", "60 per minute"),
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config.from_prefixed_env()  # any other setting: FLASK_RATELIMIT_KEY_PREFIX=notes sets RATELIMIT_KEY_PREFIX
    app.config.from_mapping(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see your notes."
    login_manager.login_message_category = "info"

    limiter = Limiter(get_remote_address, app=app)
    limiter.shared_limit(lambda: str(app.config["API_RATE_LIMIT"]), scope="api")(api.bp)

    app.register_blueprint(auth.bp)
    app.register_blueprint(notes.bp)
    app.register_blueprint(api.bp)
    _register_handlers(app)

    @app.get("/health")
    def health() -> ResponseReturnValue:
        return {"status": "ok"}

    return app


def _instance_secret_key(instance_path: str) -> str:
    """A random key created once in the instance folder; concurrent first starts agree on one key."""
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(temporary, path)  # fails if another process won: its key is kept
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    with open(path) as f:
        return f.read().strip()


def _wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def _register_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> ResponseReturnValue:
        if _wants_json():
            return jsonify(error=error.description), 400
        return render_template("error.html", title="Form refused", message=error.description), 400

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded) -> ResponseReturnValue:
        body = {"error": "Too many requests.", "limit": error.description}
        return jsonify(body), 429

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        if _wants_json():
            return jsonify(error=error.description), error.code or 500
        return render_template("error.html", title=error.name, message=error.description), error.code or 500

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
