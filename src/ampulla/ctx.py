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
    __slots__ = ("__dict__", "_g", "_tokens", "app", "owns_app_ctx")

    def __init__(self, app: Ampulla) -> None:
        self.app = app
        self._g: _AppCtxGlobals | None = None
        self._tokens: list[contextvars.Token[AppContext]] = []
        self.owns_app_ctx = True

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

    def push(self) -> None:
        """Make this the active context."""
        self._tokens.append(_cv_ctx.set(self))
        if appcontext_pushed.receivers and len(self._tokens) == 1:
            send(appcontext_pushed, self.app)

    def pop(self, exc: BaseException | None = None) -> None:
        """Run teardown functions and restore the previous context."""
        last = len(self._tokens) == 1
        try:
            if last and self.owns_app_ctx:
                self.app.do_teardown_appcontext(exc)
        finally:
            _cv_ctx.reset(self._tokens.pop())
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

    __slots__ = (
        "_after_request_functions",
        "_holds",
        "_is_copy",
        "_pending_exc",
        "_session",
        "_teardown_pending",
        "async_mode",
        "background_tasks",
        "flashes",
        "loop",
        "plan",
        "preserved",
        "read_body",
        "request",
        "websocket",
    )

    def __init__(self, app: Ampulla, request: Request) -> None:
        self.app = app
        self.request = request
        self._g = None
        self._tokens = []
        self.owns_app_ctx = True
        self._session: SessionMixin | None = None
        self.flashes: list[tuple[str, str]] | None = None
        self._after_request_functions: list[Callable[[Response], Response]] | None = None
        self.preserved = False
        self._holds = 0
        self._teardown_pending = False
        self._pending_exc: BaseException | None = None
        self.background_tasks: list[Callable[[], Any]] | None = None
        self.websocket: Any = None
        self._is_copy = False
        #: Torn down by the async cycle (after the body was sent), not by :meth:`pop`.
        self.async_mode = False
        #: The endpoint's plan, once the cycle matched the request.
        self.plan: Endpoint | None = None
        #: Under ASGI: the event loop of the request (``async def`` code called from a pool thread runs there).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Under ASGI: reads the body before the view.
        self.read_body: Callable[[Request], Awaitable[None]] | None = None

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
        self._tokens.append(_cv_ctx.set(self))
        # Under ASGI the cycle sends it on the event loop, where async receivers can be awaited.
        if appcontext_pushed.receivers and self.owns_app_ctx and not self.async_mode and len(self._tokens) == 1:
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
        last = len(self._tokens) == 1
        try:
            if last:
                if self._holds > 0:
                    self._teardown_pending = True
                    self._pending_exc = exc
                else:
                    # PERF: the cycle's teardown without the _teardown hop (benchmarks/instructions.py: hello).
                    (self.app._sync_cycle or self.app._cycles()[0]).teardown(self, exc)
        finally:
            _cv_ctx.reset(self._tokens.pop())
        if last and appcontext_popped.receivers and self.owns_app_ctx and not self._is_copy:
            send(appcontext_popped, self.app)

    def _leave(self) -> None:
        """Stop being the active context without tearing down (the async cycle tears down later)."""
        _cv_ctx.reset(self._tokens.pop())

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
