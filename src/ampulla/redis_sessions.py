"""Server-side sessions in Redis: the cookie holds only a signed random session id.

::

    import redis
    from ampulla.redis_sessions import RedisSessionInterface

    app.session_interface = RedisSessionInterface(redis.Redis(host="127.0.0.1", port=6379))

Compared with the default signed-cookie session, the data never leaves the server, its size is not limited
by the browser, and a session can be revoked (logged out everywhere) by deleting its key. The data is stored
as JSON (never pickle), under ``<prefix><session id>`` with a time to live of ``PERMANENT_SESSION_LIFETIME``.

The interface is synchronous (``redis.Redis``): each request that uses the session makes one or two short
blocking calls to Redis. Under ASGI they run in the thread pool for ``def`` views with ``def`` hooks, and on
the event loop for ``async def`` views.

When Redis cannot be reached (connection refused or reset, time-out), a request that needs its session is
answered with ``503 Service Unavailable`` and ``Retry-After`` instead of a 500: one error line is logged on the
``ampulla.sessions`` logger when an outage starts (no traceback), one line when Redis answers again, and the
client reconnects by itself. Give the client short time-outs and no long retry loop, so that the 503 is fast.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from itsdangerous import BadSignature, Signer

from .ctx import _cv_ctx as _imported_cv_ctx
from .exceptions import ServiceUnavailable, error_response
from .sessions import SecureCookieSession, SessionInterface, SessionMixin
from .sessions import session_json_serializer as _imported_serializer

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Request, Response

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx
session_json_serializer = _imported_serializer  # PERF: assigned, not imported (as _cv_ctx)

__all__ = ["RedisClient", "RedisSession", "RedisSessionInterface", "SessionStoreUnavailable"]

logger = logging.getLogger("ampulla.sessions")

#: Marks a request whose session store failed: later uses of ``session`` in it get a null session.
_FAILED_KEY = "ampulla.session_store_failed"


class SessionStoreUnavailable(ServiceUnavailable):
    """503 answer when the session store (Redis) cannot be reached."""

    description = "The session store is temporarily unavailable. Please try again in a moment."


def default_unavailable_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis cannot be reached": ``OSError`` and redis-py's connection errors.

    redis-py's ``ConnectionError`` and ``TimeoutError`` do not derive from the built-in ones; they are added when
    the ``redis`` package is installed. ``BusyLoadingError`` (Redis still loading its data) is a
    ``ConnectionError``.
    """
    errors: list[type[BaseException]] = [OSError]
    try:
        from redis import exceptions as redis_errors
    except ImportError:  # pragma: no cover - another client
        return tuple(errors)
    errors += [redis_errors.ConnectionError, redis_errors.TimeoutError]
    return tuple(errors)


class RedisClient(Protocol):
    """The part of ``redis.Redis`` the interface uses (any compatible client works)."""

    def get(self, name: str) -> Any: ...

    def set(self, name: str, value: str, ex: int | None = None) -> Any: ...

    def delete(self, *names: str) -> Any: ...

    def expire(self, name: str, time: int) -> Any: ...


class RedisSession(SecureCookieSession):
    """A session stored in Redis under :attr:`sid`.

    Args:
        initial: The stored data.
        sid: The session id (random, URL-safe).
        new: Whether the session did not exist in the store.
    """

    def __init__(self, initial: MutableMapping[str, Any] | None = None, sid: str = "", new: bool = False) -> None:
        super().__init__(initial)
        self.sid = sid
        self.new = new
        #: Ids to delete from the store when the session is saved (set by ``regenerate``).
        self.stale_sids: list[str] = []


class RedisSessionInterface(SessionInterface):
    """Store sessions in Redis; the cookie carries a signed, random session id.

    Args:
        client: A ``redis.Redis`` client (``decode_responses`` may be on or off).
        prefix: Prepended to the session id to form the Redis key.
        sid_bytes: Random bytes in a session id (32 gives 256 bits, far beyond guessing).
        retry_after: Seconds sent as ``Retry-After`` with the 503 when Redis cannot be reached (``None``: no
            header).
        unavailable_errors: The exceptions from the client that mean Redis cannot be reached (default:
            :func:`default_unavailable_errors`); any other exception stays a 500.
    """

    session_class = RedisSession
    salt = "ampulla.redis-session"

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "session:",
        sid_bytes: int = 32,
        *,
        retry_after: int | None = 5,
        unavailable_errors: tuple[type[BaseException], ...] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.sid_bytes = sid_bytes
        self.retry_after = retry_after
        self.unavailable_errors = unavailable_errors if unavailable_errors is not None else default_unavailable_errors()
        #: Whether the last call to Redis failed (an outage is logged once, when it starts and when it ends).
        self.unavailable = False
        self._failures = 0

    # ------------------------------------------------------------------------------------------ outages
    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the client; a connection failure becomes :class:`SessionStoreUnavailable` (logged once)."""
        try:
            result = func(*args, **kwargs)
        except self.unavailable_errors as e:
            self._failures += 1
            if not self.unavailable:
                self.unavailable = True
                logger.error("session store unavailable, answering 503: %s: %s", type(e).__name__, e)
            else:
                logger.debug("session store still unavailable: %s: %s", type(e).__name__, e)
            raise SessionStoreUnavailable(retry_after=self.retry_after) from None
        if self.unavailable:
            self.unavailable = False
            logger.warning("session store reachable again, after %d failed calls", self._failures)
            self._failures = 0
        return result

    def _answer_unavailable(self, app: Ampulla, error: SessionStoreUnavailable, response: Response) -> None:
        """Turn ``response`` into the 503 for ``error`` (through the app's 503 handler when it runs here)."""
        ctx = _cv_ctx.get(None)
        replacement: Response | None = None
        if ctx is not None and hasattr(ctx, "request"):
            try:
                rv = app.handle_http_exception(error)
                if not hasattr(rv, "__await__"):
                    replacement = app.make_response(rv)
                elif hasattr(rv, "close"):
                    rv.close()  # an async 503 handler on the event loop: the default page instead
            except Exception:  # the handler failed too: the default page, like any failing error handler
                replacement = None
        if replacement is None:
            replacement = error_response(error, app.response_class)
        body = response.response
        if body is not replacement.response and hasattr(body, "close"):
            body.close()
        response.status_code = replacement.status_code
        response.headers = replacement.headers
        response.response = replacement.response

    # ------------------------------------------------------------------------------------------ helpers
    def generate_sid(self) -> str:
        """A new random session id."""
        return secrets.token_urlsafe(self.sid_bytes)

    def key(self, sid: str) -> str:
        """The Redis key of session ``sid``."""
        return self.prefix + sid

    def _signer(self, app: Ampulla) -> Signer | None:
        secret = app.config["SECRET_KEY"]
        if not secret:
            return None
        keys: list[Any] = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), secret]
        return Signer(keys, salt=self.salt)

    @staticmethod
    def _lifetime(app: Ampulla) -> int:
        lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
        seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
        return max(1, int(seconds))

    # ------------------------------------------------------------------------------------------ revocation
    def revoke(self, sid: str) -> bool:
        """Delete session ``sid`` from the store: its cookie no longer logs anyone in.

        Args:
            sid: The session id (``session.sid``).

        Returns:
            Whether the session existed.
        """
        return bool(self._call(self.client.delete, self.key(sid)))

    def regenerate(self, session: SessionMixin) -> str:
        """Give ``session`` a new id, keeping its data; the old id is deleted when the response is saved.

        Call it when the user logs in (or changes privilege) so an id planted before login (session
        fixation) is worthless afterwards.

        Args:
            session: The current session (``ampulla.session`` or its real object).

        Returns:
            The new session id.

        Raises:
            TypeError: ``session`` is not a :class:`RedisSession`.
        """
        real = getattr(session, "_get_current_object", lambda: session)()
        if not isinstance(real, RedisSession):
            raise TypeError("regenerate() needs a RedisSession; is app.session_interface a RedisSessionInterface?")
        if real.sid and not real.new:
            real.stale_sids.append(real.sid)
        real.sid = self.generate_sid()
        real.new = True
        real.modified = True
        return real.sid

    # ------------------------------------------------------------------------------------------ interface
    def open_session(self, app: Ampulla, request: Request) -> RedisSession | None:
        signer = self._signer(app)
        if signer is None:
            return None
        marks = request.environ
        if marks.get(_FAILED_KEY):
            return None  # the store failed earlier in this request (e.g. a 503 handler reads flashes)
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie:
            try:
                sid = signer.unsign(cookie).decode("ascii")
            except (BadSignature, UnicodeError, ValueError):
                sid = ""
            if sid:
                try:
                    raw = self._call(self.client.get, self.key(sid))
                except SessionStoreUnavailable:
                    marks[_FAILED_KEY] = True
                    raise
                if raw is not None:
                    try:
                        data = session_json_serializer.loads(raw)
                    except (ValueError, TypeError, UnicodeError):
                        data = None
                    if isinstance(data, dict):
                        return self.session_class(data, sid=sid)
        # No cookie, a forged or stale id, or data gone: a fresh id, never the one the client sent.
        return self.session_class(sid=self.generate_sid(), new=True)

    def save_session(self, app: Ampulla, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, RedisSession):
            return
        try:
            self._save(app, session, response)
        except SessionStoreUnavailable as e:
            # NOTE: the response is already made (the view ran): it becomes the 503, without the cookie, so the
            # client never believes that a change it made (a login) was kept.
            self._answer_unavailable(app, e, response)

    def _save(self, app: Ampulla, session: RedisSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        if session.accessed:
            response.headers.add("Vary", "Cookie")
        if session.stale_sids:
            self._call(self.client.delete, *(self.key(sid) for sid in session.stale_sids))
            session.stale_sids.clear()
        if not session:
            if session.modified:
                if not session.new:
                    self._call(self.client.delete, self.key(session.sid))
                response.delete_cookie(
                    name, path=path, domain=domain, secure=secure, partitioned=partitioned, samesite=samesite,
                    httponly=httponly,
                )
            return
        ttl = self._lifetime(app)
        key = self.key(session.sid)
        refresh = bool(app.config["SESSION_REFRESH_EACH_REQUEST"])
        if session.modified or session.new:
            self._call(self.client.set, key, session_json_serializer.dumps(session.to_dict()), ex=ttl)
        elif refresh:
            # Sliding expiry: an active session stays alive; an idle one disappears after the lifetime.
            self._call(self.client.expire, key, ttl)
        if not (session.modified or session.new or (session.permanent and refresh)):
            return
        signer = self._signer(app)
        if signer is None:
            return
        response.set_cookie(
            name,
            signer.sign(session.sid).decode("ascii"),
            expires=self.get_expiration_time(app, session),
            httponly=httponly,
            domain=domain,
            path=path,
            secure=secure,
            partitioned=partitioned,
            samesite=samesite,
        )
