"""The async (ASGI) request cycle, and running coroutines from sync code.

:class:`AsyncCycleMixin` gives :class:`~ampulla.app.Ampulla` the async twins of its request cycle
(:meth:`~AsyncCycleMixin.handle_request_async` and friends): async views, hooks and error handlers are awaited,
``def`` views run in a thread pool with the context copied, and teardown waits until the body was sent. Background
tasks queued by a request run here too, for both protocols.

The other direction is :func:`run_coroutine_sync`: under WSGI, ``async def`` views and hooks run on the thread's
long-lived event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .chains import _Chain, _csrf_check, _hook_lists
from .ctx import RequestContext, _cv_ctx
from .exceptions import HTTPException, InternalServerError
from .routing import RequestRedirect
from .scaffold import blueprint_chain, iter_chain
from .threadpool import SyncPool

if TYPE_CHECKING:
    import logging

    from .app import Ampulla, ResponseReturnValue
    from .config import Config
    from .ctx import AppContext
    from .sessions import SessionInterface
    from .wrappers import Request, Response


def is_async_callable(func: Any) -> bool:
    """Whether calling ``func`` returns a coroutine (async functions and objects with an async ``__call__``)."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


class _AsyncChain:
    """The ASGI twin of :class:`~ampulla.chains._Chain`: each function with a flag telling whether to await it."""

    __slots__ = ("after", "before", "blueprints", "sync_after", "sync_prelude", "teardown", "url_value_preprocessors")

    def __init__(self, app: Ampulla, endpoint: str | None) -> None:
        self.blueprints = blueprint_chain(endpoint)
        preprocessors, before, after, teardown = _hook_lists(app, self.blueprints)

        def flagged(funcs: list[Callable[..., Any]]) -> tuple[tuple[Callable[..., Any], bool], ...]:
            return tuple((f, is_async_callable(f)) for f in funcs)

        self.url_value_preprocessors = flagged(preprocessors)
        self.before = flagged(before)
        self.after = flagged(after)
        self.teardown = flagged(teardown)
        #: Every URL value preprocessor and ``before_request`` function is a plain function: with a ``def``
        #: view they all run in the view's thread-pool call, so a blocking hook never stalls the event loop.
        self.sync_prelude = not any(is_async for _, is_async in (*self.url_value_preprocessors, *self.before))
        #: Every ``after_request`` function is a plain function: they (and saving the session) join that call.
        self.sync_after = not any(is_async for _, is_async in self.after)


# What ``_pooled_cycle`` hands back to the loop (see its docstring).
_VIEW_ERROR, _AWAITABLE, _MADE, _PROCESSED, _LATE_ERROR = range(5)


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


class AsyncCycleMixin:
    """The async request cycle of :class:`~ampulla.app.Ampulla`; a mixin without state of its own.

    Its caches and thread pool are attributes set by ``Ampulla.__init__``. Methods that hand the application
    itself to other code narrow ``self`` to ``Ampulla`` for the type checker only (this mixin has no other user).
    """

    if TYPE_CHECKING:
        # What the cycle uses from Ampulla (and Scaffold), declared for the type checker only.
        config: Config
        view_functions: dict[str, Callable[..., Any]]
        before_websocket_funcs: dict[str | None, list[Callable[..., Any]]]
        before_serving_funcs: list[Callable[..., Any]]
        after_serving_funcs: list[Callable[..., Any]]
        teardown_appcontext_funcs: list[Callable[..., Any]]
        _got_first_request: bool
        _served: bool
        _setup_lock: threading.Lock
        _executor: SyncPool | None
        _background: set[asyncio.Task[None]]
        _async_chains: dict[str | None, _AsyncChain]
        _ws_before: dict[str | None, tuple[tuple[Callable[..., Any], bool], ...]]
        _view_kinds: dict[str, str]
        _inline_endpoints: set[str]
        _streaming_endpoints: set[str]

        @property
        def debug(self) -> bool: ...
        @property
        def logger(self) -> logging.Logger: ...
        @property
        def session_interface(self) -> SessionInterface: ...
        def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]: ...
        def app_context(self) -> AppContext: ...
        def _match_request(self, request: Request) -> None: ...
        def make_response(self, rv: ResponseReturnValue) -> Response: ...
        def process_response(
            self, ctx: RequestContext, response: Response, chain: _Chain | None = None
        ) -> Response: ...
        def _chain(self, endpoint: str | None) -> _Chain: ...
        def _preprocess_and_dispatch(self, ctx: RequestContext, chain: _Chain) -> ResponseReturnValue: ...
        def make_default_options_response(self, ctx: RequestContext) -> Response: ...
        def add_security_headers(self, request: Request, response: Response) -> None: ...
        def should_propagate(self) -> bool: ...
        def trap_http_exception(self, e: HTTPException) -> bool: ...
        def _find_error_handler(self, e: BaseException, blueprints: tuple[str, ...]) -> Callable[..., Any] | None: ...
        def _redirect_response(self, ctx: RequestContext, e: RequestRedirect) -> Response: ...
        def log_exception(self, ctx: RequestContext | None, exc: BaseException) -> None: ...
        def _debug_page(self, e: BaseException) -> Response: ...

    def _websocket_before(self, endpoint: str | None) -> tuple[tuple[Callable[..., Any], bool], ...]:
        funcs = self._ws_before.get(endpoint)
        if funcs is None:
            keys = tuple(reversed(iter_chain(self._async_chain(endpoint).blueprints)))
            funcs = tuple(
                (f, is_async_callable(f)) for key in keys for f in self.before_websocket_funcs.get(key, ())
            )
            self._ws_before[endpoint] = funcs
        return funcs

    def _async_chain(self, endpoint: str | None) -> _AsyncChain:
        chain = self._async_chains.get(endpoint)
        if chain is None:
            if TYPE_CHECKING:
                assert isinstance(self, Ampulla)
            chain = self._async_chains[endpoint] = _AsyncChain(self, endpoint)
        return chain

    @property
    def sync_executor(self) -> SyncPool:
        """The thread pool that runs ``def`` views under ASGI (``SYNC_VIEW_THREADS`` workers, default 40).

        A :class:`concurrent.futures.Executor`: ``loop.run_in_executor(app.sync_executor, func)`` works.
        """
        executor = self._executor
        if executor is None:
            with self._setup_lock:
                executor = self._executor
                if executor is None:
                    size = int(self.config.get("SYNC_VIEW_THREADS") or 40)
                    executor = self._executor = SyncPool(size, thread_name_prefix="ampulla-sync")
        return executor

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function in the app's thread pool with the current context (``request`` etc.)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        if kwargs:
            return await self.sync_executor.run(loop, context.run, functools.partial(func, *args, **kwargs))
        return await self.sync_executor.run(loop, context.run, func, *args)

    async def _acall(self, func: Callable[..., Any], *args: Any) -> Any:
        rv = func(*args)
        if inspect.isawaitable(rv):
            rv = await rv
        return rv

    async def startup(self) -> None:
        """Run ``before_serving`` functions once (ASGI lifespan startup, or the first request)."""
        if self._served:
            return
        self._served = True
        for func in self.before_serving_funcs:
            await self._acall(func)

    async def shutdown(self) -> None:
        """Run ``after_serving`` functions (ASGI lifespan shutdown) and stop the sync thread pool."""
        for func in self.after_serving_funcs:
            await self._acall(func)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def handle_request_async(
        self, request: Request, read_body: Callable[[Request], Awaitable[None]] | None = None
    ) -> tuple[Response, RequestContext]:
        """The ASGI request cycle: like :meth:`handle_request`, awaiting async views and hooks.

        ``def`` views run in the thread pool (unless registered with ``inline=True``); ``read_body`` is awaited
        after routing so ``request.form`` and friends are plain attributes in every view.

        Teardown is left to the caller (:meth:`finish_request_async`) so it runs after the body was sent.
        """
        if not self._got_first_request:
            if not self._served:
                await self.startup()
            self._got_first_request = True
        if TYPE_CHECKING:
            assert isinstance(self, Ampulla)
        ctx = RequestContext(self, request)
        ctx.async_mode = True
        if request.environ.get("ampulla.preserve_context"):
            ctx.preserved = True
        ctx.push()
        try:
            try:
                response = await self.full_dispatch_request_async(ctx, read_body)
            except Exception as e:
                ctx._pending_exc = e
                try:
                    response = await self.handle_exception_async(ctx, e)
                except BaseException:
                    # Propagating (testing): tear down here, the caller never gets the context.
                    if not ctx.preserved:
                        await self.teardown_async(ctx, e)
                    raise
            return response, ctx
        finally:
            token = ctx._tokens.pop()
            if not ctx.preserved:
                _cv_ctx.reset(token)

    async def finish_request_async(self, ctx: RequestContext) -> None:
        """Run teardown functions (awaiting async ones) unless a streamed body still holds the context."""
        if ctx.preserved:
            return
        if ctx._holds > 0:
            ctx._teardown_pending = True
            return
        if not self.teardown_appcontext_funcs and not self._async_chain(ctx.request.endpoint).teardown:
            ctx.request.close()  # PERF: nothing to tear down (benchmarks/run.py --protocol asgi: hello)
            return
        await self.teardown_async(ctx, ctx._pending_exc)

    async def teardown_async(self, ctx: RequestContext, exc: BaseException | None) -> None:
        """Run ``teardown_request`` then ``teardown_appcontext`` functions of ``ctx``, awaiting async ones."""
        if ctx._is_copy:
            return
        token = _cv_ctx.set(ctx)
        try:
            funcs = [
                *self._async_chain(ctx.request.endpoint).teardown,
                *((f, is_async_callable(f)) for f in reversed(self.teardown_appcontext_funcs)),
            ]
            first: BaseException | None = None
            for func, is_async in funcs:
                try:
                    rv = func(exc)
                    if is_async:
                        await rv
                except Exception as e:
                    first = first or e
                    self.logger.exception("Error in teardown function %r", func)
            ctx.request.close()
            if first is not None and self.should_propagate():
                raise first
        finally:
            _cv_ctx.reset(token)

    async def full_dispatch_request_async(
        self, ctx: RequestContext, read_body: Callable[[Request], Awaitable[None]] | None = None
    ) -> Response:
        """The async twin of :meth:`full_dispatch_request`."""
        request = ctx.request
        self._match_request(request)
        endpoint = request.endpoint
        chain = self._async_chain(endpoint)
        outcome: tuple[int, Any] | None = None
        try:
            rv = None
            if read_body is not None and (endpoint is None or endpoint not in self._streaming_endpoints):
                await read_body(request)
            rule = request.url_rule
            kind = self._view_kind(rule.endpoint) if rule is not None else None
            if kind == "thread" and chain.sync_prelude and request.method != "OPTIONS":
                # A def view and def hooks: one thread-pool call runs them all, off the event loop.
                outcome = await self.run_sync(self._pooled_cycle, ctx, chain)
                state, value = outcome
                if state == _VIEW_ERROR:
                    raise value
                if state == _AWAITABLE:
                    outcome = None
                    rv = await value
            else:
                for func, is_async in chain.url_value_preprocessors:
                    rv = func(endpoint, request.view_args)
                    if is_async:
                        await rv
                if self.config["CSRF_ENABLED"]:
                    if TYPE_CHECKING:
                        assert isinstance(self, Ampulla)
                    _csrf_check(self)
                rv = None
                for func, is_async in chain.before:
                    rv = func()
                    if is_async:
                        rv = await rv
                    if rv is not None:
                        break
                if rv is None:
                    if kind == "async" and rule is not None and request.method != "OPTIONS":
                        # PERF: one coroutine less for async views (benchmarks/run.py --protocol asgi: hello).
                        rv = await self.view_functions[rule.endpoint](**request.view_args)  # type: ignore[arg-type]
                    else:
                        rv = await self.dispatch_request_async(ctx)
        except Exception as e:
            outcome = None
            rv = await self.handle_user_exception_async(ctx, e)
        if outcome is not None:
            state, value = outcome
            if state == _PROCESSED:
                return cast("Response", value)
            if state == _LATE_ERROR:
                raise value  # after the view, as on the loop: not for the view's error handlers
            return await self.process_response_async(ctx, value, chain)  # _MADE
        response = self.make_response(rv)
        return await self.process_response_async(ctx, response, chain)

    def _pooled_cycle(self, ctx: RequestContext, chain: _AsyncChain) -> tuple[int, Any]:
        """The request cycle of a ``def`` view with ``def`` hooks, in one pool thread (teardown excepted).

        Returns a state and a value: the view's exception (``_VIEW_ERROR``, for the error handlers on the
        loop), an awaitable the view returned (``_AWAITABLE``), a response its ``after_request`` functions still
        have to see on the loop because one is ``async def`` (``_MADE``), a finished response (``_PROCESSED``),
        or an exception raised after the view (``_LATE_ERROR``).
        """
        sync_chain = self._chain(ctx.request.endpoint)  # chain.sync_prelude: its functions are the plain ones
        try:
            rv = self._preprocess_and_dispatch(ctx, sync_chain)
        except Exception as e:
            return _VIEW_ERROR, e
        if inspect.isawaitable(rv):
            return _AWAITABLE, rv
        try:
            response = self.make_response(rv)
            if not chain.sync_after or any(is_async_callable(f) for f in ctx._after_request_functions or ()):
                return _MADE, response
            return _PROCESSED, self.process_response(ctx, response, sync_chain)
        except Exception as e:
            return _LATE_ERROR, e

    def _view_kind(self, endpoint: str) -> str:
        """How the endpoint's view runs under ASGI: ``"async"``, ``"inline"`` (on the loop) or ``"thread"``."""
        kind = self._view_kinds.get(endpoint)
        if kind is None:
            if is_async_callable(self.view_functions[endpoint]):
                kind = "async"
            else:
                kind = "inline" if endpoint in self._inline_endpoints else "thread"
            self._view_kinds[endpoint] = kind
        return kind

    async def dispatch_request_async(self, ctx: RequestContext) -> ResponseReturnValue:
        """Call the view: awaited when async, inline when registered so, else in the thread pool."""
        request = ctx.request
        if request.routing_exception is not None:
            raise request.routing_exception
        rule = request.url_rule
        assert rule is not None
        if request.method == "OPTIONS" and rule.provide_automatic_options:
            return self.make_default_options_response(ctx)
        endpoint = rule.endpoint
        kind = self._view_kind(endpoint)
        view = self.view_functions[endpoint]
        args = request.view_args or {}
        if kind == "async":
            return await view(**args)
        if kind == "inline":
            rv = view(**args)
        else:
            rv = await self.run_sync(view, **args)
        if inspect.isawaitable(rv):
            rv = await rv
        return rv

    async def process_response_async(
        self, ctx: RequestContext, response: Response, chain: _AsyncChain | None = None
    ) -> Response:
        """The async twin of :meth:`process_response`."""
        if ctx._after_request_functions:
            for func in ctx._after_request_functions:
                response = await self._acall(func, response)
        if chain is None:
            chain = self._async_chain(ctx.request.endpoint)
        for func, is_async in chain.after:
            response = func(response)
            if is_async:
                response = await response  # type: ignore[misc]
        if ctx._session is not None:
            if TYPE_CHECKING:
                assert isinstance(self, Ampulla)
            self.session_interface.save_session(self, ctx._session, response)
        if self.config["SECURITY_HEADERS"]:
            self.add_security_headers(ctx.request, response)
        return response

    async def handle_user_exception_async(self, ctx: RequestContext, e: Exception) -> ResponseReturnValue:
        """The async twin of :meth:`handle_user_exception`."""
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            if e.code is None or isinstance(e, RequestRedirect):
                return self._redirect_response(ctx, e) if isinstance(e, RequestRedirect) else e
            handler = self._find_error_handler(e, self._async_chain(ctx.request.endpoint).blueprints)
            return e if handler is None else await self._acall(handler, e)
        handler = self._find_error_handler(e, self._async_chain(ctx.request.endpoint).blueprints)
        if handler is None:
            raise e
        return await self._acall(handler, e)

    async def handle_exception_async(self, ctx: RequestContext, e: Exception) -> Response:
        """The async twin of :meth:`handle_exception`."""
        if self.should_propagate():
            raise e
        self.log_exception(ctx, e)
        server_error = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, self._async_chain(ctx.request.endpoint).blueprints)
        rv: ResponseReturnValue
        if handler is not None:
            rv = await self._acall(handler, server_error)
        elif self.debug:
            rv = self._debug_page(e)
        else:
            rv = server_error
        response = self.make_response(rv)
        try:
            return await self.process_response_async(ctx, response)
        except Exception:
            self.logger.exception("Request finalizing failed with an error while handling an error")
            return response

    def add_background_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` after the response has been sent, with the app context active.

        Inside a request it runs once the body is sent (sync or async functions); outside a request it
        starts at once in the background (a task on the running loop, else a thread).
        """
        call = functools.partial(func, *args, **kwargs)
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
            with self.app_context():
                await self._acall(call)

        if loop is not None:
            task = loop.create_task(run_in_app())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            threading.Thread(target=lambda: run_coroutine_sync(run_in_app()), daemon=True).start()

    async def run_background_tasks_async(self, ctx: RequestContext) -> None:
        """Run the background tasks queued by a request (ASGI: after the body was sent)."""
        tasks, ctx.background_tasks = ctx.background_tasks or [], None
        for call in tasks:
            with self.app_context():
                try:
                    if is_async_callable(call):
                        await call()
                    else:
                        await self.run_sync(call)
                except Exception:
                    self.logger.exception("Error in background task %r", call)

    def run_background_tasks(self, ctx: RequestContext) -> None:
        """Run the background tasks queued by a request (WSGI: when the server closes the body)."""
        tasks, ctx.background_tasks = ctx.background_tasks or [], None
        for call in tasks:
            with self.app_context():
                try:
                    self.ensure_sync(call)()
                except Exception:
                    self.logger.exception("Error in background task %r", call)
