"""Cross-site request forgery (CSRF) protection, switched on with ``CSRF_ENABLED = True``.

Each session gets a random secret (``session["_csrf_token"]``). Forms carry a signed copy of it,
``{{ csrf_token() }}``, in a hidden ``csrf_token`` field; JavaScript sends it in an ``X-CSRFToken`` (or
``X-CSRF-Token``) header. A page on another site cannot read the token, so it cannot forge the request.

Which requests are checked: ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` whose body is a form
(``application/x-www-form-urlencoded``, ``multipart/form-data``) or ``text/plain`` — the bodies a
cross-site page can send without a CORS preflight — and ``POST`` requests without a ``Content-Type``.
JSON and other content types are exempt: a browser only sends them cross-site after a CORS preflight that
the application must explicitly allow. Unrouted requests (404/405) are not checked.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .exceptions import BadRequest

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Request

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

__all__ = ["CSRFError", "csrf_check", "csrf_exempt", "generate_csrf", "validate_csrf"]

#: The session key holding the per-session secret.
SESSION_KEY = "_csrf_token"
#: The form field read by the check.
FIELD_NAME = "csrf_token"
#: The headers read by the check (first present wins).
HEADER_NAMES = ("X-CSRFToken", "X-CSRF-Token")
#: The ``app.extensions`` key of the set of exempt blueprint names.
EXEMPT_BLUEPRINTS_KEY = "csrf_exempt_blueprints"

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHECKED_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
_SALT = "ampulla.csrf"
_G_KEY = "_ampulla_csrf_token"
_EXEMPT_ATTR = "_ampulla_csrf_exempt"

T = TypeVar("T")


class CSRFError(BadRequest):
    """400: the CSRF token of an unsafe request is missing, invalid or expired.

    Register ``@app.errorhandler(CSRFError)`` to show your own page (e.g. "your form expired, reload").
    """

    description = "The CSRF token is missing or invalid."


def _serializer(app: Ampulla) -> URLSafeTimedSerializer:
    secret = app.config["SECRET_KEY"]
    if not secret:
        raise RuntimeError(
            "CSRF protection needs a secret key: set app.config['SECRET_KEY'] to a long random value, e.g. "
            "the output of python -c 'import secrets; print(secrets.token_hex())'."
        )
    keys: list[Any] = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), secret]
    # itsdangerous signs with the last key and accepts every key when verifying.
    return URLSafeTimedSerializer(keys, salt=_SALT)


def _request_context(name: str) -> RequestContext:
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError(f"{name}() can only be used while handling a request (it needs the session)")
    return ctx


def generate_csrf() -> str:
    """The CSRF token for the current session (``csrf_token()`` in templates).

    The per-session secret is created (and stored in the session) on first use. Repeated calls in one
    request return the same signed token.

    Returns:
        A signed token to put in a hidden ``csrf_token`` form field or an ``X-CSRFToken`` header.

    Raises:
        RuntimeError: Outside a request, or without ``SECRET_KEY``.
    """
    ctx = _request_context("generate_csrf")
    g = ctx.g
    token: str | None = g.get(_G_KEY)
    if token is not None:
        return token
    serializer = _serializer(ctx.app)
    session = ctx.session
    raw = session.get(SESSION_KEY)
    if not isinstance(raw, str) or not raw:
        raw = secrets.token_hex(32)
        session[SESSION_KEY] = raw
    token = serializer.dumps(raw)
    setattr(g, _G_KEY, token)
    return token


def validate_csrf(token: str | None) -> None:
    """Check ``token`` against the current session's CSRF secret.

    ``CSRF_TIME_LIMIT`` (seconds, or ``None`` for no limit — the default) bounds a token's age.

    Args:
        token: The token the client sent.

    Raises:
        CSRFError: The token is missing, malformed, signed with another key, expired, or belongs to another
            session.
        RuntimeError: Outside a request, or without ``SECRET_KEY``.
    """
    ctx = _request_context("validate_csrf")
    app = ctx.app
    if not token:
        raise CSRFError(
            "The CSRF token is missing. Forms must include a hidden field: "
            '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">; JavaScript clients send '
            "the token in an X-CSRFToken header."
        )
    serializer = _serializer(app)
    expected = ctx.session.get(SESSION_KEY)
    if not isinstance(expected, str) or not expected:
        raise CSRFError(
            "The CSRF session token is missing: the session expired or the browser does not keep cookies. "
            "Reload the form and submit it again."
        )
    time_limit = app.config.get("CSRF_TIME_LIMIT")
    max_age: int | None = None
    if isinstance(time_limit, timedelta):
        max_age = int(time_limit.total_seconds())
    elif time_limit is not None:
        max_age = int(time_limit)
    try:
        raw = serializer.loads(token, max_age=max_age)
    except SignatureExpired:
        raise CSRFError("The CSRF token has expired. Reload the form and submit it again.") from None
    except (BadData, UnicodeError, ValueError, TypeError):
        raise CSRFError("The CSRF token is invalid.") from None
    if not isinstance(raw, str) or not hmac.compare_digest(raw.encode(), expected.encode()):
        raise CSRFError("The CSRF token does not match this session. Reload the form and submit it again.")


def csrf_exempt(view_or_blueprint: T) -> T:
    """Exclude a view function, a ``View`` class or a blueprint from the CSRF check.

    Use it as a decorator on a view (above or below ``@app.route``), or call it on a blueprint:
    ``csrf_exempt(api)``. A blueprint may be exempted before or after it is registered; nested blueprints
    of an exempt blueprint are exempt too.

    Args:
        view_or_blueprint: The view function, view class, or blueprint.

    Returns:
        The same object.
    """
    setattr(view_or_blueprint, _EXEMPT_ATTR, True)
    if not callable(view_or_blueprint):
        name = getattr(view_or_blueprint, "name", None)
        ctx = _cv_ctx.get(None)
        if name is not None and ctx is not None:
            ctx.app.extensions.setdefault(EXEMPT_BLUEPRINTS_KEY, set()).add(name)
    return view_or_blueprint


def is_exempt(app: Ampulla, endpoint: str, blueprints: tuple[str, ...] | list[str]) -> bool:
    """Whether ``endpoint`` (with its ``blueprints``, innermost first) is exempt from the CSRF check."""
    view: Any = app.view_functions.get(endpoint)
    if view is not None and (
        getattr(view, _EXEMPT_ATTR, False) or getattr(getattr(view, "view_class", None), _EXEMPT_ATTR, False)
    ):
        return True
    if blueprints:
        names: set[str] = app.extensions.get(EXEMPT_BLUEPRINTS_KEY) or set()
        registered = app.blueprints
        for name in blueprints:
            if name in names or getattr(registered.get(name), _EXEMPT_ATTR, False):
                return True
    return False


def needs_check(method: str, mimetype: str) -> bool:
    """Whether a request with this method and body type is checked (see the module documentation).

    Args:
        method: The request method.
        mimetype: The request's content type without parameters (``""`` when absent).
    """
    if method not in _UNSAFE_METHODS:
        return False
    return mimetype in _CHECKED_TYPES or (not mimetype and method == "POST")


def csrf_check(request: Request, streaming: bool = False) -> None:
    """Check ``request``'s CSRF token; the request cycle calls this before ``before_request`` hooks.

    The cycle skips it when ``CSRF_ENABLED`` is off and for exempt endpoints (see :func:`csrf_exempt`).

    Args:
        request: The request (routed).
        streaming: The view reads the body itself (``@stream_request_body``): the token must come in a header.

    Raises:
        CSRFError: The request needs a token and has no valid one.
    """
    if request.endpoint is None or not needs_check(request.method, request.mimetype):
        return
    token: str | None = None
    for header in HEADER_NAMES:
        token = request.headers.get(header)
        if token:
            break
    if not token and not streaming:
        token = request.form.get(FIELD_NAME)
    validate_csrf(token)
