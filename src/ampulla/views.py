"""Class-based views: :class:`View` and :class:`MethodView`, registered with ``as_view``.

::

    class UserAPI(MethodView):
        def get(self, id):
            ...

        async def post(self, id):
            ...

    app.add_url_rule("/users/<int:id>", view_func=UserAPI.as_view("user"))

Handlers may be ``def`` or ``async def``. When every handler (or ``dispatch_request``) is ``async def``,
``as_view`` returns an ``async def`` view, so the application awaits it on its event loop like any other
async view. Views that mix both styles are plain functions; their async handlers run through
``app.ensure_sync``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from typing import Any, ClassVar, cast

from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

__all__ = ["MethodView", "View", "http_method_funcs"]

#: The handler names :class:`MethodView` looks for.
http_method_funcs = frozenset({"get", "post", "head", "options", "delete", "put", "trace", "patch"})


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class View:
    """A view as a class: subclass it and implement :meth:`dispatch_request`.

    Attributes:
        methods: The methods the URL rule accepts (default ``GET``, plus ``HEAD`` and ``OPTIONS``).
        provide_automatic_options: Whether ``OPTIONS`` is answered automatically (default: yes unless
            ``OPTIONS`` is in ``methods``).
        decorators: Decorators applied to the function ``as_view`` returns, first one innermost.
        init_every_request: Make a new instance for every request (default). Set ``False`` to build one
            instance in ``as_view`` and share it between requests (and threads): then keep no request data
            on ``self``.
    """

    methods: ClassVar[Collection[str] | None] = None
    provide_automatic_options: ClassVar[bool | None] = None
    decorators: ClassVar[list[Callable[..., Any]]] = []
    init_every_request: ClassVar[bool] = True

    def dispatch_request(self, **kwargs: Any) -> Any:
        """Handle the request; receives the URL's variables. May be ``async def``.

        Raises:
            NotImplementedError: A subclass must implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement dispatch_request()")

    @classmethod
    def _is_async(cls) -> bool:
        return inspect.iscoroutinefunction(cls.dispatch_request)

    @classmethod
    def as_view(cls, name: str, *class_args: Any, **class_kwargs: Any) -> Callable[..., Any]:
        """A view function for ``add_url_rule``: it instantiates the class and calls ``dispatch_request``.

        Args:
            name: The endpoint name (also the function's ``__name__``).
            *class_args: Passed to the class's constructor.
            **class_kwargs: Passed to the class's constructor.

        Returns:
            The view function, with ``view_class``, ``methods`` and ``provide_automatic_options`` set.
        """
        view: Any
        shared = None if cls.init_every_request else cls(*class_args, **class_kwargs)

        if cls._is_async():

            async def async_view(**kwargs: Any) -> Any:
                self = shared if shared is not None else async_view.view_class(  # type: ignore[attr-defined]
                    *class_args, **class_kwargs
                )
                rv = self.dispatch_request(**kwargs)
                if inspect.isawaitable(rv):
                    rv = await rv
                return rv

            view = async_view
        else:

            def sync_view(**kwargs: Any) -> Any:
                self = shared if shared is not None else sync_view.view_class(  # type: ignore[attr-defined]
                    *class_args, **class_kwargs
                )
                rv = self.dispatch_request(**kwargs)
                if inspect.isawaitable(rv):
                    from .concurrency import run_coroutine_sync

                    rv = run_coroutine_sync(rv)
                return rv

            view = sync_view

        view.view_class = cls
        view.__name__ = name
        view.__module__ = cls.__module__
        for decorator in cls.decorators:
            view = decorator(view)
        # Set after decorating, so the attributes are on the function that gets registered.
        view.view_class = cls
        view.__name__ = name
        view.__qualname__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        view.methods = cls.methods
        view.provide_automatic_options = cls.provide_automatic_options
        return cast("Callable[..., Any]", view)


class MethodView(View):
    """A view that dispatches to the method named like the request method: ``get``, ``post``, ...

    ``methods`` is filled in from the handlers the class (or its bases) defines. ``HEAD`` falls back to
    ``get``. Handlers may be ``def`` or ``async def``.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "methods" not in cls.__dict__:
            methods: set[str] = set()
            for base in cls.__bases__:
                base_methods = getattr(base, "methods", None)
                if base_methods:
                    methods.update(base_methods)
            for key in http_method_funcs:
                if hasattr(cls, key):
                    methods.add(key.upper())
            if methods:
                cls.methods = methods

    @classmethod
    def _is_async(cls) -> bool:
        if cls.dispatch_request is not MethodView.dispatch_request:
            return inspect.iscoroutinefunction(cls.dispatch_request)
        handlers = [getattr(cls, key) for key in http_method_funcs if hasattr(cls, key)]
        return bool(handlers) and all(inspect.iscoroutinefunction(h) for h in handlers)

    def dispatch_request(self, **kwargs: Any) -> Any:
        """Call the handler for the request method.

        An ``async def`` handler's coroutine is returned for the caller to await when an event loop is
        running (the async view ``as_view`` builds); otherwise it runs through ``app.ensure_sync``.

        Raises:
            AssertionError: No handler exists for the method (the URL rule should not have allowed it).
        """
        ctx = _cv_ctx.get(None)
        if not isinstance(ctx, RequestContext):
            raise RuntimeError("a class-based view can only be called while handling a request")
        method = ctx.request.method
        handler = getattr(self, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(self, "get", None)
        assert handler is not None, f"Unimplemented method {method!r}"
        if inspect.iscoroutinefunction(handler):
            if _in_event_loop():
                return handler(**kwargs)
            return ctx.app.ensure_sync(handler)(**kwargs)
        return handler(**kwargs)
