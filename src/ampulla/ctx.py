"""Application and request contexts, and the context variable behind ``request``, ``g`` and friends.

One context variable holds the active context. A :class:`RequestContext` is also an application context, so
a request pushes one object, not two. The core passes contexts explicitly; only the proxies in
``globals.py`` (used by application code) read the variable.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .signals import appcontext_popped, appcontext_pushed, send

if TYPE_CHECKING:
    from werkzeug.routing import MapAdapter

    from .app import Ampulla
    from .endpoint import Endpoint
    from .sessions import SessionMixin
    from .wrappers import Request, Response

#: The active context of this thread or task (a RequestContext is an AppContext).
#: PERF: a module that uses it imports it under another name and assigns it to ``_cv_ctx``: CPython 3.11 compiles
#: ``name.method(...)`` on a name bound by an import as an attribute load then a call, which makes a bound method on
#: every call (expecting a module); on a name bound by assignment it calls the method directly. Five such calls cost
#: 2,300 of 46,000 instructions per request (benchmarks/instructions.py: hooks).
_cv_ctx: contextvars.ContextVar[AppContext] = contextvars.ContextVar("ampulla.ctx")
_MISSING: Any = object()


class _AppCtxGlobals:
    """``g``: a namespace for data that lives as long as the application context."""

    if TYPE_CHECKING:
        # Typed attribute access, so ``g.user = ...`` and ``g.user`` pass mypy --strict in applications.
        # PERF: declared for type checkers only; at run time the built-in attribute access is faster.
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

        def __delattr__(self, name: str) -> None: ...

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute ``name`` or ``default``."""
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: Any = _MISSING) -> Any:
        """Remove and return ``name``."""
        if default is _MISSING:
            return self.__dict__.pop(name)
        return self.__dict__.pop(name, default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        """``name``'s value, setting it to ``default`` first when missing."""
        return self.__dict__.setdefault(name, default)

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        ctx = _cv_ctx.get(None)
        if ctx is None or ctx._g is not self:
            return object.__repr__(self)
        # Named as the code that uses it imports it: ``flask.g`` while ampulla.flask_patch serves Flask's names.
        package = "flask" if "ampulla.flask_patch" in sys.modules else "ampulla"
        return f"<{package}.g of {ctx.app.name!r}>"


class AppContext:
    """The application context: makes ``current_app`` and ``g`` available.

    Use ``with app.app_context():`` outside requests (CLI commands, scripts, tests).

    Args:
        app: The application.
    """

    # NOTE: "__dict__" among the slots: extensions keep their own attributes on contexts.
    __slots__ = ("__dict__", "_g", "_older_tokens", "_token", "app")

    #: Whether popping this context runs the ``teardown_appcontext`` functions (not for a request context inside
    #: an app context of the same app). PERF: a class default, set on the instance only when it differs.
    owns_app_ctx = True

    def __init__(self, app: Ampulla) -> None:
        self.app = app
        self._g: _AppCtxGlobals | None = None
        # PERF: the token of the latest push; a list only for a context pushed again (benchmarks: hello).
        self._token: contextvars.Token[AppContext] | None = None
        self._older_tokens: list[contextvars.Token[AppContext]] | None = None

    @property
    def g(self) -> _AppCtxGlobals:
        g = self._g
        if g is None:
            g = self._g = self.app.app_ctx_globals_class()
        return g

    @g.setter
    def g(self, value: _AppCtxGlobals) -> None:
        self._g = value

    @property
    def url_adapter(self) -> MapAdapter | None:
        """Werkzeug's ``MapAdapter`` of this context (``app.create_url_adapter``), made on first use.

        Bound to the request in a request context, else to ``SERVER_NAME`` (``None`` without it).
        """
        cache = self.__dict__
        if "_url_adapter" not in cache:
            cache["_url_adapter"] = self.app.create_url_adapter(getattr(self, "request", None))
        return cache["_url_adapter"]  # type: ignore[no-any-return]

    @url_adapter.setter
    def url_adapter(self, value: MapAdapter | None) -> None:
        self.__dict__["_url_adapter"] = value

    def _set(self) -> bool:
        """Make this the active context; whether it was not active before (its first push)."""
        earlier = self._token
        self._token = _cv_ctx.set(self)
        if earlier is None:
            return True
        if self._older_tokens is None:
            self._older_tokens = [earlier]
        else:
            self._older_tokens.append(earlier)
        return False

    def _reset(self) -> None:
        """Undo the latest push (restore the context that was active before it)."""
        token = self._token
        if token is None:
            raise RuntimeError(f"{type(self).__name__} popped more often than pushed")
        older = self._older_tokens
        self._token = older.pop() if older else None
        _cv_ctx.reset(token)

    def push(self) -> None:
        """Make this the active context."""
        if self._set() and appcontext_pushed.receivers:
            send(appcontext_pushed, self.app)

    def pop(self, exc: BaseException | None = None) -> None:
        """Run teardown functions and restore the previous context."""
        last = not self._older_tokens
        try:
            if last and self.owns_app_ctx:
                self.app.do_teardown_appcontext(exc)
        finally:
            self._reset()
        if last and appcontext_popped.receivers:
            send(appcontext_popped, self.app)

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pop(exc)


class RequestContext(AppContext):
    """The request context: an application context plus ``request``, ``session`` and flashes.

    Args:
        app: The application.
        request: The request.
    """

    # Attributes every request reads are slots set in __init__; the rest keep class-level defaults until set.
    __slots__ = (
        "_after_request_functions",
        "_holds",
        "_session",
        "async_mode",
        "background_tasks",
        "plan",
        "request",
    )

    # PERF: rarely changed flags as class defaults, set on the instance only when they differ (no store per request).
    #: Kept after the request by the test client (``with client:``).
    preserved = False
    #: A copy made by ``copy_current_request_context``.
    _is_copy = False

    #: The flashed messages, once read or flashed in this request.
    flashes: list[tuple[str, str]] | None = None
    #: A teardown deferred while the context is held, and the exception it is to see.
    _teardown_pending = False
    _pending_exc: BaseException | None = None
    #: The WebSocket of a WebSocket request.
    websocket: Any = None
    #: Under ASGI: the event loop of the request (``async def`` code called from a pool thread runs there).
    loop: asyncio.AbstractEventLoop | None = None
    #: Under ASGI: reads the body before the view.
    read_body: Callable[[Request], Awaitable[None]] | None = None

    def __init__(self, app: Ampulla, request: Request) -> None:
        # NOTE: wsgi.serve sets these slots itself, without this call: a slot added here is added there too.
        self.app = app
        self.request = request
        self._g = None
        self._token = None
        self._older_tokens = None
        self._session: SessionMixin | None = None
        self._after_request_functions: list[Callable[[Response], Response]] | None = None
        self._holds = 0
        self.background_tasks: list[Callable[[], Any]] | None = None
        #: Torn down by the async cycle (after the body was sent), not by :meth:`pop`.
        self.async_mode = False
        #: The endpoint's plan, once the cycle matched the request.
        self.plan: Endpoint | None = None

    @property
    def session(self) -> SessionMixin:
        """The session, opened on first use through the app's session interface."""
        session = self._session
        if session is None:
            session = self._session = self.app.open_session(self)
        return session

    @session.setter
    def session(self, value: SessionMixin) -> None:
        self._session = value

    @property
    def session_opened(self) -> bool:
        return self._session is not None

    def push(self) -> None:
        """Make this the active context; shares ``g`` with an enclosing app context of the same app."""
        outer = _cv_ctx.get(None)
        if outer is not None and outer.app is self.app and not isinstance(outer, RequestContext):
            self._g = outer.g
            self.owns_app_ctx = False
        # PERF: AppContext._set inline (benchmarks/instructions.py: hello).
        earlier = self._token
        self._token = _cv_ctx.set(self)
        if earlier is not None:
            if self._older_tokens is None:
                self._older_tokens = [earlier]
            else:
                self._older_tokens.append(earlier)
        # Under ASGI the cycle sends it on the event loop, where async receivers can be awaited.
        elif appcontext_pushed.receivers and self.owns_app_ctx and not self.async_mode:
            send(appcontext_pushed, self.app)

    def hold(self) -> None:
        """Keep the context alive past the end of the request (a streamed body that still uses it)."""
        self._holds += 1

    def release(self) -> None:
        """End a :meth:`hold`; the last release after the request ended runs the teardown functions."""
        self._holds -= 1
        if self._holds == 0 and self._teardown_pending and not self.async_mode:
            self._teardown_pending = False
            token = _cv_ctx.set(self)
            try:
                self._teardown(self._pending_exc)
            finally:
                _cv_ctx.reset(token)

    def _teardown(self, exc: BaseException | None) -> None:
        (self.app._sync_cycle or self.app._cycles()[0]).teardown(self, exc)

    def pop(self, exc: BaseException | None = None) -> None:
        """Run teardown functions (deferred while held), close uploads and restore the previous context."""
        last = not self._older_tokens
        try:
            if last:
                if self._holds > 0:
                    self._teardown_pending = True
                    self._pending_exc = exc
                else:
                    # PERF: the cycle's teardown without the _teardown hop (benchmarks/instructions.py: hello).
                    (self.app._sync_cycle or self.app._cycles()[0]).teardown(self, exc)
        finally:
            # PERF: AppContext._reset inline (benchmarks/instructions.py: hello).
            token = self._token
            older = self._older_tokens
            self._token = older.pop() if older else None
            _cv_ctx.reset(token)  # type: ignore[arg-type]  # None (popped more often than pushed): TypeError
        if last and appcontext_popped.receivers and self.owns_app_ctx and not self._is_copy:
            send(appcontext_popped, self.app)

    def _leave(self) -> None:
        """Stop being the active context without tearing down (the async cycle tears down later)."""
        self._reset()

    def __enter__(self) -> RequestContext:
        self.push()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pop(exc)

    def copy(self) -> RequestContext:
        """A context for the same request, e.g. to use in a thread (see ``copy_current_request_context``)."""
        new = RequestContext(self.app, self.request)
        new._session = self._session
        new._g = self._g
        new.flashes = self.flashes
        new.owns_app_ctx = False
        new._is_copy = True
        new.websocket = self.websocket
        new.plan = self.plan
        new.loop = self.loop
        return new


def current_context() -> AppContext | None:
    """The active context, or ``None``."""
    return _cv_ctx.get(None)


def has_app_context() -> bool:
    """Whether an application (or request) context is active."""
    return _cv_ctx.get(None) is not None


def has_request_context() -> bool:
    """Whether a request context is active."""
    return isinstance(_cv_ctx.get(None), RequestContext)


def after_this_request(func: Callable[[Response], Response]) -> Callable[[Response], Response]:
    """Run ``func(response)`` after this request (usable as a decorator inside a view).

    Raises:
        RuntimeError: Called outside a request.
    """
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("after_this_request() can only be used while handling a request")
    if ctx._after_request_functions is None:
        ctx._after_request_functions = []
    ctx._after_request_functions.append(func)
    return func


def copy_current_request_context(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``func`` so it runs inside a copy of the current request context (for threads).

    Raises:
        RuntimeError: Called outside a request.
    """
    import functools

    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("copy_current_request_context() can only be used while handling a request")
    copied = ctx.copy()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with copied:
            return copied.app.ensure_sync(func)(*args, **kwargs)

    return wrapper


__all__ = [
    "AppContext",
    "RequestContext",
    "after_this_request",
    "copy_current_request_context",
    "has_app_context",
    "has_request_context",
]
