"""Sessions: a dict per visitor, stored in a signed cookie by default (itsdangerous, JSON — never pickle).

Replace ``app.session_interface`` with another :class:`SessionInterface` (e.g. ``RedisSessionInterface``) to
keep the data on the server instead.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup

from .http import http_date, parse_date
from .json import dumps, loads

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
    #: Turns the session into the cookie's payload and back (tags extra types; see :class:`JSONTag`).
    serializer: TaggedJSONSerializer | Any = None  # set below, once the class exists
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
            serializer=self.serializer,
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


class JSONTag:
    """One extra type the session serializer understands: how to recognise it and convert it both ways.

    Subclass it and register the subclass on a serializer (``serializer.register(TagOrderedDict, index=0)``)
    to store more types in the session.

    Attributes:
        key: The marker of the tagged value (``{" t": [...]}``); empty for a tag that only converts the
            contents of a container.
        serializer: The serializer the tag belongs to.
    """

    __slots__ = ("serializer",)
    key: str = ""

    def __init__(self, serializer: TaggedJSONSerializer) -> None:
        self.serializer = serializer

    def check(self, value: Any) -> bool:
        """Whether this tag handles ``value``."""
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        """``value`` as JSON-able data (without the marker)."""
        raise NotImplementedError

    def to_python(self, value: Any) -> Any:
        """The Python value back from the JSON data (the marker already removed)."""
        raise NotImplementedError

    def tag(self, value: Any) -> Any:
        """``value`` converted and wrapped in its marker."""
        return {self.key: self.to_json(value)}


class TagDict(JSONTag):
    """A one-key dict whose key is a marker: the key gets a ``__`` suffix, so it is never read as a tag."""

    __slots__ = ()
    key = " di"

    def check(self, value: Any) -> bool:
        return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in self.serializer.tags

    def to_json(self, value: Any) -> Any:
        (name, item), = value.items()
        return {name + "__": self.serializer.tag(item)}

    def to_python(self, value: Any) -> Any:
        (name, item), = value.items()
        return {name[:-2]: item}


class PassDict(JSONTag):
    """Any other dict: its values are tagged (JSON keys are strings already)."""

    __slots__ = ()

    def check(self, value: Any) -> bool:
        return isinstance(value, dict)

    def to_json(self, value: Any) -> Any:
        tag = self.serializer.tag
        return {name: tag(item) for name, item in value.items()}

    tag = to_json


class TagTuple(JSONTag):
    """A tuple, stored as a list under ``" t"``."""

    __slots__ = ()
    key = " t"

    def check(self, value: Any) -> bool:
        return isinstance(value, tuple)

    def to_json(self, value: Any) -> Any:
        tag = self.serializer.tag
        return [tag(item) for item in value]

    def to_python(self, value: Any) -> Any:
        return tuple(value)


class PassList(JSONTag):
    """A list: its items are tagged."""

    __slots__ = ()

    def check(self, value: Any) -> bool:
        return isinstance(value, list)

    def to_json(self, value: Any) -> Any:
        tag = self.serializer.tag
        return [tag(item) for item in value]

    tag = to_json


class TagBytes(JSONTag):
    """Bytes, base64-encoded under ``" b"``."""

    __slots__ = ()
    key = " b"

    def check(self, value: Any) -> bool:
        return isinstance(value, bytes)

    def to_json(self, value: Any) -> Any:
        return base64.b64encode(value).decode("ascii")

    def to_python(self, value: Any) -> Any:
        return base64.b64decode(value)


class TagMarkup(JSONTag):
    """An object with ``__html__`` (e.g. :class:`~markupsafe.Markup`), read back as ``Markup``."""

    __slots__ = ()
    key = " m"

    def check(self, value: Any) -> bool:
        return callable(getattr(value, "__html__", None))

    def to_json(self, value: Any) -> Any:
        return str(value.__html__())

    def to_python(self, value: Any) -> Any:
        return Markup(value)


class TagUUID(JSONTag):
    """A :class:`~uuid.UUID`, as its hex string under ``" u"``."""

    __slots__ = ()
    key = " u"

    def check(self, value: Any) -> bool:
        return isinstance(value, UUID)

    def to_json(self, value: Any) -> Any:
        return value.hex

    def to_python(self, value: Any) -> Any:
        return UUID(value)


class TagDateTime(JSONTag):
    """A :class:`~datetime.datetime`, as an HTTP date (UTC, whole seconds) under ``" d"``."""

    __slots__ = ()
    key = " d"

    def check(self, value: Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: Any) -> Any:
        return http_date(value)

    def to_python(self, value: Any) -> Any:
        parsed = parse_date(value)
        if parsed is None:
            # Cookies written by earlier Ampulla releases hold ISO 8601 dates.
            return datetime.fromisoformat(value)
        return parsed


class TaggedJSONSerializer:
    """Compact JSON plus tagged types, the session cookie's format (the same as Flask's, so a cookie signed
    by a Flask application with the same key stays valid). Never pickle.

    Besides JSON's types it stores dicts with marker-shaped keys, tuples, bytes, ``Markup``, UUIDs and
    datetimes. A user dict that looks like a tag (``{" m": "..."}``) round-trips unchanged, so untrusted data
    stored in the session can never become ``Markup``.

    Attributes:
        tags: Marker → tag, for reading.
        order: The tags tried in order when writing.
    """

    __slots__ = ("order", "tags")

    #: The tag classes every new serializer registers, in this order.
    default_tags: list[type[JSONTag]] = [
        TagDict, PassDict, TagTuple, PassList, TagBytes, TagMarkup, TagUUID, TagDateTime,
    ]

    def __init__(self) -> None:
        self.tags: dict[str, JSONTag] = {}
        self.order: list[JSONTag] = []
        for tag_class in self.default_tags:
            self.register(tag_class)

    def register(self, tag_class: type[JSONTag], force: bool = False, index: int | None = None) -> None:
        """Add a tag.

        Args:
            tag_class: The :class:`JSONTag` subclass; it is instantiated with this serializer.
            force: Replace a tag with the same key instead of raising.
            index: Where the tag goes in :attr:`order` (default: last); put special cases of an existing tag
                before it.

        Raises:
            KeyError: A tag with that key exists and ``force`` is false.
        """
        tag = tag_class(self)
        if tag.key:
            if tag.key in self.tags and not force:
                raise KeyError(f"Tag '{tag.key}' is already registered.")
            self.tags[tag.key] = tag
        if index is None:
            self.order.append(tag)
        else:
            self.order.insert(index, tag)

    def tag(self, value: Any) -> Any:
        """``value`` with its non-JSON parts tagged (by the first tag whose ``check`` accepts it)."""
        for tag in self.order:
            if tag.check(value):
                return tag.tag(value)
        return value

    def untag(self, value: dict[str, Any]) -> Any:
        """A dict read from JSON, converted back if it is a tagged value."""
        if len(value) != 1:
            return value
        key = next(iter(value))
        tag = self.tags.get(key)
        if tag is None:
            return value
        return tag.to_python(value[key])

    def _untag_scan(self, value: Any) -> Any:
        # Innermost first, so a tag's contents are Python values when it converts them.
        if isinstance(value, dict):
            return self.untag({name: self._untag_scan(item) for name, item in value.items()})
        if isinstance(value, list):
            return [self._untag_scan(item) for item in value]
        return value

    def dumps(self, value: Any) -> str:
        """``value`` tagged, as compact JSON."""
        return dumps(self.tag(value), separators=(",", ":"))

    def loads(self, value: str | bytes) -> Any:
        """The value back from :meth:`dumps`'s JSON."""
        return self._untag_scan(loads(value))


#: The serializer of :class:`SecureCookieSessionInterface` (``interface.serializer``).
session_json_serializer = TaggedJSONSerializer()

SecureCookieSessionInterface.serializer = session_json_serializer
