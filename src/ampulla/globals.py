"""Proxies for application code: ``request``, ``g``, ``session``, ``current_app``.

Each proxy looks up the active context on every use, so one module-level name serves every thread and task.
The framework's own core never uses them; it passes the context explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .ctx import AppContext, RequestContext, _AppCtxGlobals
from .ctx import _cv_ctx as _imported_cv_ctx

if TYPE_CHECKING:
    from .app import Ampulla
    from .asgi import WebSocket
    from .sessions import SessionMixin
    from .wrappers import Request

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

_NO_APP = (
    "Working outside of application context. Code that uses current_app or g needs an active application: "
    "run it inside a request, or wrap it in 'with app.app_context():'."
)
_NO_REQUEST = (
    "Working outside of request context. Code that uses request or session needs an active HTTP request: "
    "run it inside a view, or in tests use 'with app.test_request_context(...):'."
)


#: The proxy's own attributes; every other attribute, ``__class__`` included, is the object's (as Werkzeug's
#: proxies: ``isinstance(request, Request)`` holds).
_OWN = frozenset(("_get_current_object", "_LocalProxy__wrapped_lookup", "_LocalProxy__name"))
_own_attribute = object.__getattribute__


class LocalProxy:
    """Forwards every operation to the object returned by a lookup function."""

    __slots__ = ("__name", "__wrapped_lookup")

    def __init__(self, lookup: Callable[[], Any], name: str) -> None:
        object.__setattr__(self, "_LocalProxy__wrapped_lookup", lookup)
        object.__setattr__(self, "_LocalProxy__name", name)

    def _get_current_object(self) -> Any:
        """The real object behind the proxy (e.g. to send it to another thread)."""
        return self.__wrapped_lookup()

    # PERF: __getattribute__, not __getattr__: Python calls __getattr__ only after the ordinary lookup failed,
    # which builds an AttributeError each time (about 4,700 instructions per ``request.args``;
    # benchmarks/instructions.py: query_json).
    def __getattribute__(self, name: str) -> Any:
        if name in _OWN:
            return _own_attribute(self, name)
        return getattr(_own_attribute(self, "_LocalProxy__wrapped_lookup")(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped_lookup(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.__wrapped_lookup(), name)

    def __getitem__(self, key: Any) -> Any:
        return self.__wrapped_lookup()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__wrapped_lookup()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self.__wrapped_lookup()[key]

    def __contains__(self, item: Any) -> bool:
        return item in self.__wrapped_lookup()

    def __iter__(self) -> Any:
        return iter(self.__wrapped_lookup())

    def __len__(self) -> int:
        return len(self.__wrapped_lookup())

    def __bool__(self) -> bool:
        try:
            return bool(self.__wrapped_lookup())
        except RuntimeError:
            return False

    def __eq__(self, other: object) -> bool:
        return bool(self.__wrapped_lookup() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self.__wrapped_lookup() != other)

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped_lookup()(*args, **kwargs)

    def __aiter__(self) -> Any:
        return self.__wrapped_lookup().__aiter__()

    def __anext__(self) -> Any:
        return self.__wrapped_lookup().__anext__()

    def __repr__(self) -> str:
        try:
            return repr(self.__wrapped_lookup())
        except RuntimeError:
            return "<LocalProxy unbound>"  # Werkzeug's text, for every proxy

    def __str__(self) -> str:
        return str(self.__wrapped_lookup())

    def __enter__(self) -> Any:
        return self.__wrapped_lookup().__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped_lookup().__exit__(*exc_info)

    def __dir__(self) -> list[str]:
        try:
            return dir(self.__wrapped_lookup())
        except RuntimeError:
            return []


def _lookup_app() -> Ampulla:
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError(_NO_APP)
    return ctx.app


def _lookup_app_ctx() -> AppContext:
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError(_NO_APP)
    return ctx


def _lookup_g() -> _AppCtxGlobals:
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError(_NO_APP)
    g = ctx._g  # PERF: the slot, then the creating property (benchmarks/instructions.py: hooks)
    return g if g is not None else ctx.g


def _lookup_request_ctx() -> RequestContext:
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError(_NO_REQUEST)
    return ctx


def _lookup_request() -> Request:
    # PERF: _lookup_request_ctx inlined; every request.<attribute> goes through here (instructions.py: query_json).
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError(_NO_REQUEST)
    return ctx.request


def _lookup_session() -> SessionMixin:
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError(_NO_REQUEST)
    return ctx.session


def _lookup_websocket() -> WebSocket:
    ws = _lookup_request_ctx().websocket
    if ws is None:
        raise RuntimeError("Not in a WebSocket connection: 'websocket' is only available in @app.websocket views.")
    return cast("WebSocket", ws)


class _RequestProxy(LocalProxy):
    """``request``: the lookup inline (PERF: one call less per attribute; benchmarks/instructions.py: query_json)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        ctx = _cv_ctx.get(None)
        if ctx.__class__ is RequestContext and name not in _OWN:
            return getattr(ctx.request, name)
        return LocalProxy.__getattribute__(self, name)


class _GlobalsProxy(LocalProxy):
    """``g``: the lookup inline (PERF: one call less per attribute; benchmarks/instructions.py: hooks)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        ctx = _cv_ctx.get(None)
        if ctx is not None and ctx._g is not None and name not in _OWN:
            return getattr(ctx._g, name)
        return LocalProxy.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        ctx = _cv_ctx.get(None)
        if ctx is None:
            raise RuntimeError(_NO_APP)
        g = ctx._g
        if g is None:
            # PERF: AppContext.g's creation without the property hop (benchmarks/instructions.py: hooks).
            g = ctx._g = ctx.app.app_ctx_globals_class()
        setattr(g, name, value)


current_app: Ampulla = cast("Ampulla", LocalProxy(_lookup_app, "current_app"))
g: _AppCtxGlobals = cast(_AppCtxGlobals, _GlobalsProxy(_lookup_g, "g"))
request: Request = cast("Request", _RequestProxy(_lookup_request, "request"))
session: SessionMixin = cast("SessionMixin", LocalProxy(_lookup_session, "session"))
websocket: WebSocket = cast("WebSocket", LocalProxy(_lookup_websocket, "websocket"))
request_ctx: RequestContext = cast(RequestContext, LocalProxy(_lookup_request_ctx, "request_ctx"))
app_ctx: AppContext = cast(AppContext, LocalProxy(_lookup_app_ctx, "app_ctx"))

#: The context variable holding the active application context (a request context is one too).
_cv_app = _cv_ctx


class _RequestContextVar:
    """Reads like Flask's ``_cv_request`` context variable: the active request context, if any."""

    __slots__ = ()
    name = "ampulla.request_ctx"

    def get(self, *default: Any) -> RequestContext | Any:
        ctx = _cv_ctx.get(None)
        if isinstance(ctx, RequestContext):
            return ctx
        if default:
            return default[0]
        raise LookupError(self.name)


_cv_request = _RequestContextVar()
