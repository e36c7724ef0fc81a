"""Endpoint plans and the request policy: what the request cycle needs, worked out once instead of per request.

An :class:`Endpoint` holds, for one endpoint, the view and how it runs (:class:`ViewKind`), its URL value
preprocessors and ``before``/``after``/``teardown`` hooks in calling order with whether each is ``async def``,
its blueprint chain, body limit, streaming and CSRF exemption. The application compiles each plan on first use,
under a lock (:meth:`ampulla.Ampulla.endpoint_plan`); requests that matched no rule use the plan of ``None``.

A :class:`RequestPolicy` holds the configuration switches the cycle reads on every request; the application
reads them again when its configuration changed (see :attr:`ampulla.config.Config.version`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .concurrency import ensure_sync, is_async_callable, wraps_async_callable
from .csrf import is_exempt
from .scaffold import blueprint_chain, iter_chain

if TYPE_CHECKING:
    from .app import Ampulla

#: A hook and whether calling it gives a coroutine.
Hook = tuple[Callable[..., Any], bool]
#: ``Endpoint.body_limit`` when the route sets none (``MAX_CONTENT_LENGTH`` applies).
NO_LIMIT_SET: Any = object()


class ViewKind(enum.Enum):
    """How a view runs under ASGI (under WSGI every view runs in the server's thread)."""

    #: ``async def``: awaited on the event loop.
    ASYNC = "async"
    #: A plain function wrapping an ``async def`` view (``functools.wraps``), as extensions' decorators are:
    #: called in the thread pool, where it may run the view with ``current_app.ensure_sync`` (Flask's pattern for
    #: extensions, Flask-Login's ``login_required``); a coroutine it returns is awaited on the event loop.
    WRAPPED = "wrapped"
    #: A ``def`` view registered with ``inline=True``: called on the event loop (it must not block).
    INLINE = "inline"
    #: A ``def`` view: called in the application's thread pool.
    THREAD = "thread"


def _hooks(funcs: list[Callable[..., Any]]) -> tuple[Hook, ...]:
    return tuple((f, is_async_callable(f)) for f in funcs)


class Endpoint:
    """The compiled plan of one endpoint (``name`` is ``None`` for requests that matched no rule).

    Attributes:
        name: The endpoint.
        view: The view function as registered (``None`` for the ``None`` plan or a rule without a view yet).
        sync_view: ``view`` callable from sync code (an ``async def`` view runs on the thread's event loop).
        kind: How the view runs under ASGI.
        blueprints: The blueprints of the endpoint, innermost first.
        url_value_preprocessors: URL value preprocessors, outermost (the app) first.
        before: ``before_request`` functions, outermost first.
        after: ``after_request`` functions, innermost first, last registered first.
        teardown: ``teardown_request`` functions, innermost first, last registered first.
        before_websocket: ``before_websocket`` functions, outermost first.
        sync_url_value_preprocessors: The same functions callable from sync code (likewise the next three).
        body_limit: The route's ``max_content_length``, or :data:`NO_LIMIT_SET`.
        streaming: The view reads the body itself (``@stream_request_body``).
        csrf_exempt: The view or one of its blueprints is exempt from the CSRF check.
        error_handlers: An error handler is registered on the app or one of the endpoint's blueprints.
        has_prelude: There are URL value preprocessors or ``before_request`` hooks to run.
        view_is_coroutine: Calling the view gives a coroutine.
        pooled: Under ASGI one thread-pool call runs the whole cycle: the view, every URL value preprocessor,
            ``before``/``after`` hook and error handler that can run for it are plain functions.
        pooled_prelude: Under ASGI the view's thread-pool call runs its URL value preprocessors and ``before``
            hooks too (they are plain functions; an ``after`` hook or an error handler is not).
    """

    __slots__ = (
        "after",
        "before",
        "before_websocket",
        "blueprints",
        "body_limit",
        "csrf_exempt",
        "error_handlers",
        "has_prelude",
        "kind",
        "name",
        "pooled",
        "pooled_prelude",
        "streaming",
        "sync_after",
        "sync_before",
        "sync_teardown",
        "sync_url_value_preprocessors",
        "sync_view",
        "teardown",
        "url_value_preprocessors",
        "view",
        "view_is_coroutine",
    )

    def __init__(self, app: Ampulla, name: str | None) -> None:
        self.name = name
        self.compile(app)

    def compile(self, app: Ampulla) -> None:
        """Read the plan from the application's registries (again, in place, when a hook list changed: a request
        under way then runs the ``after_request`` and ``teardown_request`` functions added during it, as on
        Flask)."""
        name = self.name
        self.blueprints = blueprint_chain(name)
        keys = iter_chain(self.blueprints)  # innermost first, the app (None) last
        outer_first = tuple(reversed(keys))
        self.url_value_preprocessors = _hooks([f for k in outer_first for f in app.url_value_preprocessors[k]])
        self.before = _hooks([f for k in outer_first for f in app.before_request_funcs[k]])
        self.after = _hooks([f for k in keys for f in reversed(app.after_request_funcs[k])])
        self.teardown = _hooks([f for k in keys for f in reversed(app.teardown_request_funcs[k])])
        self.before_websocket = _hooks([f for k in outer_first for f in app.before_websocket_funcs[k]])
        self.sync_url_value_preprocessors = tuple(ensure_sync(f) for f, _ in self.url_value_preprocessors)
        self.sync_before = tuple(ensure_sync(f) for f, _ in self.before)
        self.sync_after = tuple(ensure_sync(f) for f, _ in self.after)
        self.sync_teardown = tuple(ensure_sync(f) for f, _ in self.teardown)
        view = app.view_functions.get(name) if name is not None else None
        self.view = view
        self.sync_view = ensure_sync(view) if view is not None else None
        self.view_is_coroutine = view is not None and is_async_callable(view)
        self.has_prelude = bool(self.url_value_preprocessors or self.before)
        if view is None or self.view_is_coroutine:
            self.kind = ViewKind.ASYNC
        elif wraps_async_callable(view):
            self.kind = ViewKind.WRAPPED
        elif name in app._inline_endpoints:
            self.kind = ViewKind.INLINE
        else:
            self.kind = ViewKind.THREAD
        self.body_limit = app._endpoint_body_limits.get(name, NO_LIMIT_SET) if name is not None else NO_LIMIT_SET
        self.streaming = name in app._streaming_endpoints
        self.csrf_exempt = name is not None and is_exempt(app, name, self.blueprints)
        handlers = [
            handler
            for key in keys
            for handler_map in app.error_handler_spec[key].values()
            for handler in handler_map.values()
        ]
        self.error_handlers = bool(handlers)
        handlers_sync = not any(is_async_callable(handler) for handler in handlers)
        self.pooled_prelude = self.kind is ViewKind.THREAD and not any(
            is_async for _, is_async in (*self.url_value_preprocessors, *self.before)
        )
        self.pooled = self.pooled_prelude and handlers_sync and not any(is_async for _, is_async in self.after)

    def __repr__(self) -> str:
        return f"<Endpoint {self.name!r} {self.kind.value}>"


class RequestPolicy:
    """The configuration switches read on every request, copied from the config once per change.

    Attributes:
        version: The :attr:`~ampulla.config.Config.version` they were read at.
        proxy_fix: ``PROXY_FIX``.
        trusted_hosts: ``TRUSTED_HOSTS``.
        csrf: ``CSRF_ENABLED``.
        security_headers: ``SECURITY_HEADERS``.
        may_trap: An HTTP error may propagate like an unhandled exception (``TRAP_HTTP_EXCEPTIONS``,
            ``TRAP_BAD_REQUEST_ERRORS``, or debug mode, where a missing form key propagates).
        form_limits: ``MAX_CONTENT_LENGTH``, ``MAX_FORM_MEMORY_SIZE`` and ``MAX_FORM_PARTS``, or ``None`` when the
            config lacks one of them (the request class's defaults then apply).
    """

    __slots__ = ("csrf", "form_limits", "may_trap", "proxy_fix", "security_headers", "trusted_hosts", "version")

    def __init__(self, config: Mapping[str, Any], version: int) -> None:
        self.version = version
        self.proxy_fix: dict[str, int] | None = config.get("PROXY_FIX") or None
        self.trusted_hosts: list[str] | tuple[str, ...] | None = config.get("TRUSTED_HOSTS") or None
        self.csrf = bool(config.get("CSRF_ENABLED"))
        self.security_headers = bool(config.get("SECURITY_HEADERS"))
        trap_bad_request = config.get("TRAP_BAD_REQUEST_ERRORS")
        self.may_trap = bool(
            config.get("TRAP_HTTP_EXCEPTIONS") or trap_bad_request or (trap_bad_request is None and config.get("DEBUG"))
        )
        names = ("MAX_CONTENT_LENGTH", "MAX_FORM_MEMORY_SIZE", "MAX_FORM_PARTS")
        self.form_limits: tuple[int | None, int | None, int | None] | None = (
            (config["MAX_CONTENT_LENGTH"], config["MAX_FORM_MEMORY_SIZE"], config["MAX_FORM_PARTS"])
            if all(name in config for name in names)
            else None
        )


__all__ = ["NO_LIMIT_SET", "Endpoint", "Hook", "RequestPolicy", "ViewKind"]
