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
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from itsdangerous import BadSignature, Signer

from .sessions import SecureCookieSession, SessionInterface, SessionMixin, TaggedJSONSerializer

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Request, Response

__all__ = ["RedisClient", "RedisSession", "RedisSessionInterface"]


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
    """

    session_class = RedisSession
    salt = "ampulla.redis-session"

    def __init__(self, client: RedisClient, prefix: str = "session:", sid_bytes: int = 32) -> None:
        self.client = client
        self.prefix = prefix
        self.sid_bytes = sid_bytes

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
        return bool(self.client.delete(self.key(sid)))

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
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie:
            try:
                sid = signer.unsign(cookie).decode("ascii")
            except (BadSignature, UnicodeError, ValueError):
                sid = ""
            if sid:
                raw = self.client.get(self.key(sid))
                if raw is not None:
                    try:
                        data = TaggedJSONSerializer.loads(raw)
                    except (ValueError, TypeError, UnicodeError):
                        data = None
                    if isinstance(data, dict):
                        return self.session_class(data, sid=sid)
        # No cookie, a forged or stale id, or data gone: a fresh id, never the one the client sent.
        return self.session_class(sid=self.generate_sid(), new=True)

    def save_session(self, app: Ampulla, session: SessionMixin, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        if not isinstance(session, RedisSession):
            return
        if session.accessed:
            response.headers.add("Vary", "Cookie")
        if session.stale_sids:
            self.client.delete(*(self.key(sid) for sid in session.stale_sids))
            session.stale_sids.clear()
        if not session:
            if session.modified:
                if not session.new:
                    self.client.delete(self.key(session.sid))
                response.delete_cookie(
                    name, path=path, domain=domain, secure=secure, partitioned=partitioned, samesite=samesite,
                    httponly=httponly,
                )
            return
        ttl = self._lifetime(app)
        key = self.key(session.sid)
        refresh = bool(app.config["SESSION_REFRESH_EACH_REQUEST"])
        if session.modified or session.new:
            self.client.set(key, TaggedJSONSerializer.dumps(session.to_dict()), ex=ttl)
        elif refresh:
            # Sliding expiry: an active session stays alive; an idle one disappears after the lifetime.
            self.client.expire(key, ttl)
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
