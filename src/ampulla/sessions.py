"""Sessions: a dict per visitor, stored in a signed cookie by default (itsdangerous, JSON — never pickle).

Replace ``app.session_interface`` with another :class:`SessionInterface` (e.g. ``RedisSessionInterface``) to
keep the data on the server instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Request, Response


class SessionMixin(MutableMapping[str, Any]):
    """The session's dict interface plus ``permanent``, ``modified``, ``new`` and ``accessed``."""

    new = False
    modified = True
    accessed = True

    @property
    def permanent(self) -> bool:
        """Keep the cookie for ``PERMANENT_SESSION_LIFETIME`` instead of until the browser closes."""
        return bool(self.get("_permanent", False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)


class SecureCookieSession(SessionMixin):
    """A session stored in a signed cookie; tracks changes so unchanged sessions send no cookie.

    Args:
        initial: The stored data.
    """

    def __init__(self, initial: MutableMapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(initial or {})
        self.modified = False
        self.accessed = False

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return self._data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = self.modified = True
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self.accessed = self.modified = True
        del self._data[key]

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        if key not in self._data:
            self.modified = True
        return self._data.setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self.accessed = True
        if key in self._data:
            self.modified = True
        return self._data.pop(key, *default)

    def clear(self) -> None:
        self.accessed = True
        if self._data:
            self.modified = True
        self._data.clear()

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._data

    def to_dict(self) -> dict[str, Any]:
        """A copy of the data."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._data!r}>"


class NullSession(SecureCookieSession):
    """The session when no ``SECRET_KEY`` is set: reading works, writing raises a clear error."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "The session is unavailable because no secret key was set. Set app.config['SECRET_KEY'] (or "
            "app.secret_key) to a long random value, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_hex())'."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class SessionInterface:
    """How sessions are loaded and saved. Subclass and assign to ``app.session_interface``.

    Implement :meth:`open_session` and :meth:`save_session`; the cookie helpers read the ``SESSION_COOKIE_*``
    settings.
    """

    null_session_class: type[NullSession] = NullSession
    pickle_based = False

    def make_null_session(self, app: Ampulla) -> NullSession:
        """A session that refuses writes (used when :meth:`open_session` returns ``None``)."""
        return self.null_session_class()

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, self.null_session_class)

    def get_cookie_name(self, app: Ampulla) -> str:
        return str(app.config["SESSION_COOKIE_NAME"])

    def get_cookie_domain(self, app: Ampulla) -> str | None:
        return app.config["SESSION_COOKIE_DOMAIN"] or None

    def get_cookie_path(self, app: Ampulla) -> str:
        return str(app.config["SESSION_COOKIE_PATH"] or app.config["APPLICATION_ROOT"] or "/")

    def get_cookie_httponly(self, app: Ampulla) -> bool:
        return bool(app.config["SESSION_COOKIE_HTTPONLY"])

    def get_cookie_secure(self, app: Ampulla) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"])

    def get_cookie_samesite(self, app: Ampulla) -> str | None:
        return app.config["SESSION_COOKIE_SAMESITE"]  # type: ignore[no-any-return]

    def get_cookie_partitioned(self, app: Ampulla) -> bool:
        return bool(app.config["SESSION_COOKIE_PARTITIONED"])

    def get_expiration_time(self, app: Ampulla, session: SessionMixin) -> datetime | None:
        """When a permanent session's cookie expires; ``None`` for browser-session cookies."""
        if session.permanent:
            lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
            if not isinstance(lifetime, timedelta):
                lifetime = timedelta(seconds=int(lifetime))
            return datetime.now(UTC) + lifetime
        return None

    def should_set_cookie(self, app: Ampulla, session: SessionMixin) -> bool:
        """Set the cookie when the session changed, or is permanent and ``SESSION_REFRESH_EACH_REQUEST``."""
        return session.modified or (session.permanent and bool(app.config["SESSION_REFRESH_EACH_REQUEST"]))

    def open_session(self, app: Ampulla, request: Request) -> SessionMixin | None:
        """Load the session for ``request``; ``None`` means "use a null session"."""
        raise NotImplementedError

    def save_session(self, app: Ampulla, session: SessionMixin, response: Response) -> None:
        """Store the session and set or delete the cookie on ``response``."""
        raise NotImplementedError


class SecureCookieSessionInterface(SessionInterface):
    """The default: the session JSON-serialised, signed with ``SECRET_KEY`` (HMAC-SHA1) in a cookie.

    A tampered, truncated, expired or foreign-key cookie gives an empty session, never an error.
    ``SECRET_KEY_FALLBACKS`` lists old keys still accepted while rotating.
    """

    salt = "cookie-session"
    digest_method = staticmethod(hashlib.sha1)
    key_derivation = "hmac"
    session_class = SecureCookieSession

    def get_signing_serializer(self, app: Ampulla) -> URLSafeTimedSerializer | None:
        """The serializer for the current keys, or ``None`` without ``SECRET_KEY``."""
        if not app.secret_key:
            return None
        keys: list[Any] = [app.secret_key]
        fallbacks = app.config["SECRET_KEY_FALLBACKS"]
        if fallbacks:
            keys.extend(fallbacks)
        # itsdangerous signs with the last key and accepts all of them.
        keys.reverse()
        return URLSafeTimedSerializer(
            keys,
            salt=self.salt,
            serializer=TaggedJSONSerializer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )

    def open_session(self, app: Ampulla, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
        max_age = int(lifetime.total_seconds()) if isinstance(lifetime, timedelta) else int(lifetime)
        try:
            data = serializer.loads(value, max_age=max_age)
        except (BadSignature, ValueError, TypeError, UnicodeError):
            return self.session_class()
        if not isinstance(data, dict):
            return self.session_class()
        return self.session_class(data)

    def save_session(self, app: Ampulla, session: SessionMixin, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        if session.accessed:
            response.headers.add("Vary", "Cookie")
        if not session:
            if session.modified:
                response.delete_cookie(
                    name, path=path, domain=domain, secure=secure, partitioned=partitioned, samesite=samesite,
                    httponly=httponly,
                )
            return
        if not self.should_set_cookie(app, session):
            return
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return
        value = serializer.dumps(dict(session.to_dict() if isinstance(session, SecureCookieSession) else session))
        expires = self.get_expiration_time(app, session)
        max_cookie = int(app.config.get("MAX_COOKIE_SIZE") or 0)
        cookie_size = len(name) + len(value) + 1
        if max_cookie and cookie_size > max_cookie:
            raise ValueError(
                f"The session cookie would be {cookie_size} bytes, over the browser limit of {max_cookie} "
                f"(MAX_COOKIE_SIZE); browsers would drop it silently. Store less in the session or use a "
                "server-side session interface such as RedisSessionInterface."
            )
        response.set_cookie(
            name,
            value,
            expires=expires,
            httponly=httponly,
            domain=domain,
            path=path,
            secure=secure,
            partitioned=partitioned,
            samesite=samesite,
        )


class TaggedJSONSerializer:
    """JSON with a few tagged types (tuples, bytes, datetimes, Markup) so sessions round-trip them. Never pickle.

    A user dict that looks like a tag (``{" m": "..."}``) round-trips unchanged, so untrusted data stored in
    the session can never become ``Markup``.
    """

    @staticmethod
    def dumps(obj: Any) -> str:
        import json

        return json.dumps(_tag(obj), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def loads(value: str | bytes) -> Any:
        import json

        return json.loads(value, object_hook=_untag)


_TaggedJSON = TaggedJSONSerializer


def _tag(value: Any) -> Any:
    import base64

    if isinstance(value, dict):
        tagged = {str(k): _tag(v) for k, v in value.items()}
        if len(tagged) == 1:
            key = next(iter(tagged))
            if key in _TAGS:
                # A user dict shaped like a tag: rename its key so the decoder's bottom-up pass leaves it alone.
                return {" di": {key + "__": tagged[key]}}
        return tagged
    if isinstance(value, tuple):
        return {" t": [_tag(v) for v in value]}
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if isinstance(value, bytes):
        return {" b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {" d": value.isoformat()}
    if hasattr(value, "__html__"):
        return {" m": str(value.__html__())}
    return value


def _untag(obj: dict[str, Any]) -> Any:
    import base64

    if len(obj) == 1:
        key, value = next(iter(obj.items()))
        if key == " t":
            return tuple(value)
        if key == " b":
            return base64.b64decode(value)
        if key == " d":
            return datetime.fromisoformat(value)
        if key == " m":
            from markupsafe import Markup

            return Markup(value)
        if key == " di" and isinstance(value, dict) and len(value) == 1:
            inner_key, inner_value = next(iter(value.items()))
            if inner_key.endswith("__"):
                return {inner_key[:-2]: inner_value}
    return obj


_TAGS = frozenset((" t", " b", " d", " m", " di"))
