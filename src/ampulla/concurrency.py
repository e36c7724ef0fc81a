"""Running ``async def`` code from sync code and the other way round.

- :func:`run_coroutine_sync`: under WSGI (and in thread-pool threads), ``async def`` views, hooks and error
  handlers run on the thread's long-lived event loop.
- :func:`is_async_callable`: whether calling a function gives a coroutine (``async def``, a partial of one, an
  object with an ``async def __call__``).

The thread pool that runs ``def`` views under ASGI is :class:`ampulla.threadpool.SyncPool`. Background tasks
(``app.add_background_task``) run here too, after the response was sent.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx

if TYPE_CHECKING:
    from .app import Ampulla

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx


def is_async_callable(func: Any) -> bool:
    """Whether calling ``func`` returns a coroutine (async functions and objects with an async ``__call__``)."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


def wraps_async_callable(func: Any) -> bool:
    """Whether ``func`` is async, or a plain function wrapping an async one with :func:`functools.wraps`.

    A decorator written as ``def wrapper(*args): return view(*args)`` around an ``async def`` view returns
    the view's coroutine: such a view is awaited on the event loop like the view it wraps.
    """
    if is_async_callable(func):
        return True
    wrapped = getattr(func, "__wrapped__", None)
    while wrapped is not None:
        if is_async_callable(wrapped):
            return True
        wrapped = getattr(wrapped, "__wrapped__", None)
    return False


class _LoopHolder:
    """Owns a thread's event loop and closes it when the thread ends (its thread-local is dropped)."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        loop = self.loop
        if not loop.is_closed() and not loop.is_running():
            loop.close()


_thread_state = threading.local()


def run_coroutine_sync(awaitable: Awaitable[Any]) -> Any:
    """Run an awaitable to completion on this thread's long-lived event loop.

    Used under WSGI for ``async def`` views and hooks: one loop per worker thread, created once and reused, so
    connection pools bound to the loop survive between requests.

    Raises:
        RuntimeError: Called from a thread whose event loop is already running (use ``await`` there).
    """
    holder: _LoopHolder | None = getattr(_thread_state, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _thread_state.holder = _LoopHolder()
    loop = holder.loop
    if loop.is_running():
        raise RuntimeError("cannot run a coroutine synchronously inside a running event loop; await it instead")
    return loop.run_until_complete(cast(Any, awaitable))


def ensure_sync(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` itself, or for a coroutine function a plain function running it with :func:`run_coroutine_sync`."""
    if is_async_callable(func):

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            return run_coroutine_sync(func(*args, **kwargs))

        return run
    return func


# ---------------------------------------------------------------------------------------------- background tasks
def add_background_task(app: Ampulla, call: Callable[[], Any]) -> None:
    """Queue ``call`` on the current request (run once its body was sent), or start it now outside a request
    (a task on the running loop, else a thread), with the app context active."""
    ctx = _cv_ctx.get(None)
    if isinstance(ctx, RequestContext):
        if ctx.background_tasks is None:
            ctx.background_tasks = []
        ctx.background_tasks.append(call)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    async def run_in_app() -> None:
        with app.app_context():
            rv = call()
            if inspect.isawaitable(rv):
                await rv

    if loop is not None:
        task = loop.create_task(run_in_app())
        app._background.add(task)
        task.add_done_callback(app._background.discard)
    else:
        threading.Thread(target=lambda: run_coroutine_sync(run_in_app()), daemon=True).start()


async def run_background_tasks_async(app: Ampulla, ctx: RequestContext) -> None:
    """Run the background tasks a request queued (ASGI: after the body was sent; def ones in the pool)."""
    tasks, ctx.background_tasks = ctx.background_tasks or [], None
    for call in tasks:
        with app.app_context():
            try:
                if is_async_callable(call):
                    await call()
                else:
                    await app.run_sync(call)
            except Exception:
                app.logger.exception("Error in background task %r", call)


def run_background_tasks(app: Ampulla, ctx: RequestContext) -> None:
    """Run the background tasks a request queued (WSGI: when the server closes the body)."""
    tasks, ctx.background_tasks = ctx.background_tasks or [], None
    for call in tasks:
        with app.app_context():
            try:
                ensure_sync(call)()
            except Exception:
                app.logger.exception("Error in background task %r", call)


__all__ = [
    "add_background_task",
    "ensure_sync",
    "is_async_callable",
    "run_background_tasks",
    "run_background_tasks_async",
    "run_coroutine_sync",
    "wraps_async_callable",
]
