"""The request cycles: :class:`SyncCycle` (WSGI), :class:`AsyncCycle` (ASGI HTTP and WebSocket).

One request goes: match (host check, routing, the endpoint's plan) → preprocess (URL value preprocessors, the
CSRF check, ``before_request`` hooks) → dispatch (the view) → finalize (``make_response``, then
``process_response``: ``after_this_request`` functions, ``after_request`` hooks, the session, security headers)
→ teardown; an exception goes through ``handle_user_exception`` (error handlers, HTTP errors) and, when
unhandled, ``handle_exception`` (a 500). :class:`AsyncCycle` subclasses :class:`SyncCycle` and overrides only
the steps that await; a ``def`` view under ASGI runs in the thread pool, with its whole cycle when every hook
and error handler it can meet is a plain function (one hop, the sync cycle's own code in the pool thread).

Flask's override points (``app.dispatch_request()``, ``app.process_response(response)``...) are honoured: each
cycle calls a method the application (or an instance attribute set on it) overrides at the same moment as Flask
does, and the default methods come back here. Under ASGI a plain override runs in the thread pool.

Error decisions are plain functions: :func:`find_error_handler`, :func:`redirect_response`, :func:`debug_page`.
The cycles never import an adapter, a server, the test client or the CLI.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import traceback
from asyncio import get_running_loop
from asyncio.events import _get_running_loop
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .concurrency import ensure_sync, is_async_callable, run_coroutine_sync
from .csrf import csrf_check
from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .endpoint import NO_LIMIT_SET, Endpoint, ViewKind
from .exceptions import BadRequestKeyError, HTTPException, InternalServerError
from .routing import RequestRedirect
from .scaffold import iter_chain
from .signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    got_request_exception,
    request_finished,
    request_started,
    request_tearing_down,
    send,
    send_async,
)

if TYPE_CHECKING:
    from .app import Ampulla, ResponseReturnValue
    from .wrappers import Request, Response

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

#: Flask's override points the cycles honour, by the name of the app's method.
OVERRIDE_POINTS = (
    "full_dispatch_request",
    "preprocess_request",
    "dispatch_request",
    "finalize_request",
    "process_response",
    "handle_user_exception",
    "handle_http_exception",
    "handle_exception",
    "do_teardown_request",
    "do_teardown_appcontext",
)
#: Methods of the app that decide how a routing error is raised and whether it propagates; an application
#: overriding one of them has its routing errors raised and handled as Flask does, step by step.
ROUTING_ERROR_POINTS = ("raise_routing_exception", "trap_http_exception")
#: Other methods of the app the cycles call; one overridden keeps the WSGI adapter on the general path.
CALLED_POINTS = ("make_response",)

BodyReader = Callable[["Request"], Awaitable[None]]


# ---------------------------------------------------------------------------------------------- decisions
def find_error_handler(app: Ampulla, e: BaseException, blueprints: tuple[str, ...]) -> Callable[..., Any] | None:
    """The handler for ``e``: by status code (blueprints first, then the app), then by class (same order)."""
    exc_class = type(e)
    code = e.code if isinstance(e, HTTPException) else None
    spec = app.error_handler_spec
    for c in (code, None) if code is not None else (None,):
        for name in iter_chain(blueprints):
            handler_map = spec.get(name)
            if not handler_map:
                continue
            handlers = handler_map.get(c)
            if not handlers:
                continue
            for cls in exc_class.__mro__:
                handler = handlers.get(cls)
                if handler is not None:
                    return handler
    return None


def show_missing_key(app: Ampulla, e: HTTPException) -> None:
    """In debug mode (or with ``TRAP_BAD_REQUEST_ERRORS``) a missing form or query key is named on its 400 page."""
    if isinstance(e, BadRequestKeyError) and (app.debug or app.config["TRAP_BAD_REQUEST_ERRORS"]):
        e.show_exception = True


def redirect_response(app: Ampulla, request: Request, e: RequestRedirect) -> Response:
    """The redirect routing answers (308: a trailing slash, merged slashes, ``redirect_to``...) to ``new_url``."""
    # Percent-encode what a Location header cannot carry (NUL, CR, LF, spaces, non-ASCII); a URL stays as it is.
    location = quote(e.new_url, safe="/:@!$&'()*+,;=~%?#[]")
    response = app.response_class(f"Redirecting to {location}", e.code)
    response.headers.set("Location", location)
    return response


def debug_page(app: Ampulla, e: BaseException) -> Response:
    """The 500 page of debug mode: the traceback, escaped (there is no interactive debugger)."""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    body = (
        "<!doctype html>\n<title>Traceback</title>\n<h1>500 Internal Server Error (debug mode)</h1>\n"
        f"<pre>{html.escape(text)}</pre>\n"
        "<p>This page is shown because DEBUG is on. Never run with DEBUG in production.</p>\n"
    )
    return app.response_class(body, 500)


def run_teardowns(app: Ampulla, funcs: tuple[Callable[..., Any], ...] | list[Callable[..., Any]], exc: Any) -> None:
    """Call each teardown function; a failing one is logged and the rest still run (re-raised when propagating)."""
    first: BaseException | None = None
    for func in funcs:
        try:
            func(exc)
        except Exception as e:
            if first is None:
                first = e
            app.logger.exception("Error in teardown function %r", func)
    if first is not None and app.should_propagate():
        raise first


def call_sync(ctx: RequestContext, func: Callable[..., Any], *args: Any) -> Any:
    """Call ``func`` from sync code: an ``async def`` one runs on the request's event loop when this is a
    thread-pool thread of an ASGI request (loop-bound resources stay on their loop), else on this thread's."""
    if not is_async_callable(func):
        return func(*args)
    loop = ctx.loop
    if loop is not None and _get_running_loop() is None:
        return asyncio.run_coroutine_threadsafe(func(*args), loop).result()
    return run_coroutine_sync(func(*args))


def rehandle(ctx: RequestContext, e: Exception) -> Any:
    """From inside an error handler, answer ``e`` through the app's error handlers as the running cycle does.

    Returns an awaitable on the event loop of an ASGI request (the cycle awaits what a handler returns), else
    the answer. Extensions use it to turn an error into another one, e.g. a lost database into a 503.
    """
    sync, async_ = ctx.app._cycles()
    plan = sync.plan_of(ctx)
    if ctx.async_mode and _get_running_loop() is not None:
        return async_._handle_user_exception(ctx, plan, e)
    return sync._handle_user_exception(ctx, plan, e)


# ---------------------------------------------------------------------------------------------- sync
class SyncCycle:
    """The request cycle in one thread: WSGI, and a ``def`` view's thread-pool call under ASGI.

    Args:
        app: The application.
        overridden: The names in :data:`OVERRIDE_POINTS` the application overrides.
    """

    def __init__(self, app: Ampulla, overridden: frozenset[str]) -> None:
        self.app = app
        self.overridden = overridden
        self._make_response = app.make_response
        # Each step: the default below, or the app's override called with Flask's signature.
        self._full_dispatch = self._step("full_dispatch_request", self.full_dispatch,
                                         lambda ctx, plan: app.full_dispatch_request())
        self._preprocess = self._step("preprocess_request", self.preprocess,
                                      lambda ctx, plan: app.preprocess_request())
        self._dispatch = self._step("dispatch_request", self.dispatch, lambda ctx, plan: app.dispatch_request())
        self._finalize = self._step("finalize_request", self.finalize,
                                    lambda ctx, plan, rv, from_error: app.finalize_request(rv, from_error))
        self._process_response = self._step("process_response", self.process_response,
                                            lambda ctx, plan, response: app.process_response(response))
        self._handle_user_exception = self._step("handle_user_exception", self.handle_user_exception,
                                                 lambda ctx, plan, e: app.handle_user_exception(e))
        self._handle_http_exception = self._step("handle_http_exception", self.handle_http_exception,
                                                 lambda ctx, plan, e: app.handle_http_exception(e))
        self._handle_exception = self._step("handle_exception", self.handle_exception,
                                            lambda ctx, plan, e: app.handle_exception(e))
        self._teardown_request = self._step("do_teardown_request", self.teardown_request,
                                            lambda ctx, plan, exc: app.do_teardown_request(exc))
        self._teardown_appcontext = self._step("do_teardown_appcontext", self.teardown_appcontext,
                                               lambda ctx, exc: app.do_teardown_appcontext(exc))

        #: Nothing overridden (``make_response`` included): the WSGI adapter runs this cycle's steps inline, a
        #: view's text answered without a ``make_response`` call (wsgi.serve).
        self.inline = not overridden
        #: ``do_teardown_request`` is overridden: it runs whether or not there are teardown functions.
        self.custom_teardown_request = "do_teardown_request" in overridden
        #: No override around preprocessing, dispatch and response processing: the cycles may skip steps that
        #: have nothing to do for a plan, and call the view directly.
        self.plain = not overridden & {
            "preprocess_request", "dispatch_request", "finalize_request", "process_response",
        }  # fmt: skip
        #: A routing error (404, 405, a bad Host) is answered without raising it when nothing can see it raised:
        #: no override of how it is raised, trapped or handled (error handlers are checked per plan).
        self.direct_routing_errors = not overridden & {
            "dispatch_request", "handle_user_exception", "handle_http_exception", *ROUTING_ERROR_POINTS,
        }  # fmt: skip

    def _step(self, name: str, default: Callable[..., Any], override: Callable[..., Any]) -> Callable[..., Any]:
        return self._adapt(name, override) if name in self.overridden else default

    def _adapt(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        """How this cycle calls an override (here: as it is; an ``async def`` one on the thread's loop)."""
        return ensure_sync(call) if is_async_callable(getattr(self.app, name)) else call

    # ------------------------------------------------------------------------------------------ entry
    def handle(self, request: Request) -> tuple[Response, RequestContext]:
        """Run the cycle for ``request``; the context is popped (teardown done) unless the test client keeps it.

        Never raises, except when exceptions propagate (testing mode).
        """
        app = self.app
        if not app._got_first_request:
            app._first_request()
        ctx = RequestContext(app, request)
        if request.environ.get("ampulla.preserve_context"):
            ctx.preserved = True
        ctx.push()
        error: BaseException | None = None
        try:
            try:
                # PERF: self.match(ctx) inline (benchmarks/instructions.py: hello).
                app._match_request(ctx, False)
                plan = app._plans.get(request.endpoint) or app.endpoint_plan(request.endpoint)
                ctx.plan = plan
                if plan.body_limit is not NO_LIMIT_SET:
                    request.max_content_length = plan.body_limit
                response = self._full_dispatch(ctx, plan)
            except Exception as e:
                error = e
                response = self._handle_exception(ctx, self.plan_of(ctx), e)
            except BaseException as e:  # pragma: no cover - KeyboardInterrupt, SystemExit
                error = e
                raise
            return response, ctx
        finally:
            if not ctx.preserved:
                ctx.pop(error)
            # The exception's traceback holds this frame: no reference cycle through it.
            error = None

    def match(self, ctx: RequestContext, websocket: bool = False) -> Endpoint:
        """Check the host, route the request and attach the endpoint's plan to the context."""
        request = ctx.request
        self.app._match_request(ctx, websocket)
        endpoint = request.endpoint
        plan = self.app._plans.get(endpoint) or self.app.endpoint_plan(endpoint)
        ctx.plan = plan
        if plan.body_limit is not NO_LIMIT_SET:
            request.max_content_length = plan.body_limit
        return plan

    def plan_of(self, ctx: RequestContext) -> Endpoint:
        """The context's plan (the plan of its endpoint when the cycle did not attach one)."""
        plan = ctx.plan
        return plan if plan is not None else self.app.endpoint_plan(ctx.request.endpoint)

    # ------------------------------------------------------------------------------------------ steps
    def full_dispatch(self, ctx: RequestContext, plan: Endpoint) -> Response:
        """Preprocess and dispatch, handle what they raise, then finalize (``app.full_dispatch_request()``)."""
        if not self.plain:
            try:
                if request_started.receivers:
                    send(request_started, self.app)
                rv = self._preprocess(ctx, plan)
                if rv is None:
                    rv = self._dispatch(ctx, plan)
            except Exception as e:
                rv = self._handle_user_exception(ctx, plan, e)
            return self._finalize(ctx, plan, rv, False)  # type: ignore[no-any-return]
        # PERF: the same steps, skipping the calls that have nothing to do (benchmarks/instructions.py: hello).
        # NOTE: wsgi.serve runs these steps inline for WSGI requests: a change here is a change there too.
        policy = self.app._policy
        try:
            if request_started.receivers:
                send(request_started, self.app)
            rv = None
            if plan.has_prelude or (policy.csrf and not plan.csrf_exempt):
                if plan.sync_url_value_preprocessors or policy.csrf:
                    rv = self.preprocess(ctx, plan)
                else:  # PERF: before_request functions only, without the preprocess call (instructions.py: hooks)
                    for func in plan.sync_before:
                        rv = func()
                        if rv is not None:
                            break
            if rv is None:
                request = ctx.request
                view = plan.sync_view
                if view is not None and request.routing_exception is None and request.method != "OPTIONS":
                    args = request.view_args
                    rv = view(**args) if args else view()
                    if rv.__class__ is CoroutineType:  # a plain function wrapping an async view
                        rv = run_coroutine_sync(rv)
                else:
                    rv = self.dispatch(ctx, plan)
        except Exception as e:
            rv = self._handle_user_exception(ctx, plan, e)
        if ctx._after_request_functions or request_finished.receivers:
            return self.finalize(ctx, plan, rv, False)
        # PERF: finalize and process_response inline: as they do without after_this_request functions and
        # request_finished receivers (benchmarks/instructions.py: hooks).
        response = self._make_response(rv)
        for hook in plan.sync_after:
            response = hook(response)
        if ctx._session is not None or policy.security_headers:
            self.finish_response(ctx, response)
        return response

    def preprocess_and_dispatch(self, ctx: RequestContext, plan: Endpoint) -> ResponseReturnValue:
        """Preprocess, then dispatch unless a hook answered (a ``def`` view's thread-pool call under ASGI)."""
        rv = self._preprocess(ctx, plan)
        return rv if rv is not None else self._dispatch(ctx, plan)

    def preprocess(self, ctx: RequestContext, plan: Endpoint) -> ResponseReturnValue | None:
        """URL value preprocessors, the CSRF check, then ``before_request`` hooks until one answers."""
        request = ctx.request
        for func in plan.sync_url_value_preprocessors:
            func(request.endpoint, request.view_args)
        if self.app._policy.csrf and not plan.csrf_exempt:
            csrf_check(request, plan.streaming)
        for func in plan.sync_before:
            rv = func()
            if rv is not None:
                return rv
        return None

    def dispatch(self, ctx: RequestContext, plan: Endpoint) -> ResponseReturnValue:
        """Call the view (or raise the routing error; answer an automatic ``OPTIONS``)."""
        request = ctx.request
        if request.routing_exception is not None:
            return self.routing_error(request, plan)
        if request.method == "OPTIONS" and getattr(request.url_rule, "provide_automatic_options", False):
            return self.app.make_default_options_response()
        rv = plan.sync_view(**request.view_args)  # type: ignore[misc, arg-type]
        if rv.__class__ is CoroutineType:  # a plain function wrapping an async view
            rv = run_coroutine_sync(rv)
        return rv

    def routing_error(self, request: Request, plan: Endpoint) -> ResponseReturnValue:
        """Raise the request's routing error, or return it as the answer when raising it would come to the same:
        no error handler and no override can see it, and it cannot propagate (PERF: raising and catching an
        exception costs more than the rest of a 404; benchmarks/instructions.py: notfound)."""
        error = request.routing_exception
        if (
            self.direct_routing_errors
            and not plan.error_handlers
            and not self.app._policy.may_trap
            and isinstance(error, HTTPException)
            and error.code is not None
            and not isinstance(error, RequestRedirect)
        ):
            return error
        self.app.raise_routing_exception(request)

    def finalize(self, ctx: RequestContext, plan: Endpoint, rv: ResponseReturnValue, from_error: bool) -> Response:
        """``make_response(rv)`` then ``process_response``; while answering an error, a failing hook is logged."""
        response = self._make_response(rv)
        try:
            response = self._process_response(ctx, plan, response)
            if request_finished.receivers:
                send(request_finished, self.app, response=response)
        except Exception:
            if not from_error:
                raise
            self.app.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def process_response(self, ctx: RequestContext, plan: Endpoint, response: Response) -> Response:
        """``after_this_request`` functions, ``after_request`` hooks, then save the session."""
        funcs = ctx._after_request_functions
        if funcs:
            for func in funcs:
                response = call_sync(ctx, func, response)
        for hook in plan.sync_after:
            response = hook(response)
        if ctx._session is not None or self.app._policy.security_headers:
            self.finish_response(ctx, response)
        return response

    def finish_response(self, ctx: RequestContext, response: Response) -> None:
        """Save the session (when it was used) and add the opt-in security headers."""
        app = self.app
        if ctx._session is not None:
            app.session_interface.save_session(app, ctx._session, response)
        if app._policy.security_headers:
            app.add_security_headers(ctx.request, response)

    def handle_user_exception(self, ctx: RequestContext, plan: Endpoint, e: Exception) -> ResponseReturnValue:
        """An exception from a hook or the view: HTTP errors and registered handlers; re-raise the rest."""
        if isinstance(e, HTTPException) and not self.app.trap_http_exception(e):
            show_missing_key(self.app, e)
            return self._handle_http_exception(ctx, plan, e)
        handler = find_error_handler(self.app, e, plan.blueprints)
        if handler is None:
            try:
                raise e
            finally:
                del e  # the traceback holds this frame: no reference cycle through it
        return ensure_sync(handler)(e)

    def handle_http_exception(self, ctx: RequestContext, plan: Endpoint, e: HTTPException) -> ResponseReturnValue:
        """An HTTP error: its registered handler, or the error itself (its page)."""
        if e.code is None:
            return e
        if isinstance(e, RequestRedirect):
            return redirect_response(self.app, ctx.request, e)
        handler = find_error_handler(self.app, e, plan.blueprints)
        if handler is None:
            return e
        return ensure_sync(handler)(e)

    def server_error(self, e: Exception, plan: Endpoint) -> tuple[InternalServerError, Callable[..., Any] | None]:
        """Log an unhandled exception (or re-raise it when propagating); its 500 and the 500 handler."""
        app = self.app
        if app.should_propagate():
            raise e
        app.log_exception((type(e), e, e.__traceback__))
        error = InternalServerError(original_exception=e)
        return error, find_error_handler(app, error, plan.blueprints)

    def handle_exception(self, ctx: RequestContext, plan: Endpoint, e: Exception) -> Response:
        """An unhandled exception: a 500 (its handler's answer, or the traceback page in debug mode)."""
        if got_request_exception.receivers:
            send(got_request_exception, self.app, exception=e)
        error, handler = self.server_error(e, plan)
        rv: ResponseReturnValue = error
        if handler is not None:
            rv = ensure_sync(handler)(error)
        elif self.app.debug:
            rv = debug_page(self.app, e)
        return self._finalize(ctx, plan, rv, True)  # type: ignore[no-any-return]

    def teardown(self, ctx: RequestContext, exc: BaseException | None) -> None:
        """``teardown_request`` functions, close the request's files, then ``teardown_appcontext`` functions."""
        if ctx._is_copy:
            return
        plan = ctx.plan or self.plan_of(ctx)
        try:
            if plan.sync_teardown or request_tearing_down.receivers or self.custom_teardown_request:
                self._teardown_request(ctx, plan, exc)
        finally:
            ctx.request.close()
            if ctx.owns_app_ctx and (
                self.app.teardown_appcontext_funcs or appcontext_tearing_down.receivers or self.overridden
            ):
                self._teardown_appcontext(ctx, exc)

    def teardown_request(self, ctx: RequestContext, plan: Endpoint, exc: BaseException | None) -> None:
        """Run ``teardown_request`` functions (innermost blueprint first, last registered first)."""
        if plan.sync_teardown:
            run_teardowns(self.app, plan.sync_teardown, exc)
        if request_tearing_down.receivers:
            send(request_tearing_down, self.app, exc=exc)

    def teardown_appcontext(self, ctx: object, exc: BaseException | None) -> None:
        """Run ``teardown_appcontext`` functions (last registered first)."""
        funcs = self.app._appcontext_teardowns()
        if funcs:
            run_teardowns(self.app, funcs, exc)
        if appcontext_tearing_down.receivers:
            send(appcontext_tearing_down, self.app, exc=exc)


# ---------------------------------------------------------------------------------------------- async
async def _call(func: Callable[..., Any], *args: Any) -> Any:
    rv = func(*args)
    if inspect.isawaitable(rv):
        rv = await rv
    return rv


class AsyncCycle(SyncCycle):
    """The ASGI request cycle: the steps that await, over :class:`SyncCycle`'s decisions.

    ``async def`` views, hooks and error handlers are awaited on the event loop; a ``def`` view runs in the
    thread pool, its whole cycle with it when its plan is ``pooled`` (else its ``def`` hooks with it when they
    all are), through the sync cycle :attr:`pool`. Teardown runs after the body was sent (:meth:`finish`).

    Args:
        app: The application.
        overridden: The names in :data:`OVERRIDE_POINTS` the application overrides.
        pool: The sync cycle that runs in thread-pool threads.
    """

    def __init__(self, app: Ampulla, overridden: frozenset[str], pool: SyncCycle) -> None:
        super().__init__(app, overridden)
        self.pool = pool
        #: A plain override of a step around the view would have to run in a pool thread anyway.
        self.poolable = not any(is_async_callable(getattr(app, name)) for name in overridden)
        if "full_dispatch_request" in overridden:
            self._full_dispatch = self._full_dispatch_override

    def _adapt(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        """An override runs in the thread pool (an ``async def`` one is awaited on the loop)."""
        if is_async_callable(getattr(self.app, name)):
            return call
        run_sync = self.app.run_sync

        async def in_pool(*args: Any) -> Any:
            return await run_sync(call, *args)

        return in_pool

    # ------------------------------------------------------------------------------------------ entry
    async def handle(  # type: ignore[override]
        self, request: Request, read_body: BodyReader | None = None
    ) -> tuple[Response, RequestContext]:
        """Run the cycle for ``request`` up to the response; :meth:`finish` tears down once it was sent.

        ``read_body`` reads the body before the view (not for ``@stream_request_body`` views), so
        ``request.form`` and friends are plain attributes in every view.
        """
        app = self.app
        if not app._got_first_request:
            await app._first_request_async()
        ctx = RequestContext(app, request)
        ctx.async_mode = True
        ctx.read_body = read_body
        if request.environ.get("ampulla.preserve_context"):
            ctx.preserved = True
        ctx.push()
        try:
            try:
                if appcontext_pushed.receivers and ctx.owns_app_ctx:
                    await send_async(appcontext_pushed, app)
                plan = self.match(ctx)
                response = await self._full_dispatch(ctx, plan)
            except Exception as e:
                ctx._pending_exc = e
                try:
                    response = await self._handle_exception(ctx, self.plan_of(ctx), e)
                except BaseException:
                    # Propagating (testing): tear down here, the caller never gets the context.
                    if not ctx.preserved:
                        await self.teardown(ctx, e)
                    raise
            return response, ctx
        finally:
            ctx._leave()

    def finish(self, ctx: RequestContext) -> Awaitable[None] | None:
        """Tear down once the response was sent (unless the test client keeps the context, or a streamed body
        still holds it); the teardown to await, or ``None`` when nothing was left to do (PERF: no coroutine for a
        request without teardown functions; benchmarks/instructions.py --protocol asgi: hello)."""
        if ctx.preserved:
            return None
        if ctx._holds > 0:
            ctx._teardown_pending = True
            return None
        exc = ctx._pending_exc
        if exc is not None:
            ctx._pending_exc = None  # its traceback holds frames that hold the context: no reference cycle
        plan = ctx.plan or self.plan_of(ctx)
        if (
            not plan.teardown
            and not self.app.teardown_appcontext_funcs
            and not self.overridden
            and not request_tearing_down.receivers
            and not appcontext_tearing_down.receivers
            and not appcontext_popped.receivers
        ):
            ctx.request.close()  # PERF: nothing to tear down (benchmarks/run.py --protocol asgi: hello)
            return None
        return self.teardown(ctx, exc)

    # ------------------------------------------------------------------------------------------ steps
    async def full_dispatch(self, ctx: RequestContext, plan: Endpoint) -> Response:  # type: ignore[override]
        request = ctx.request
        whole = False
        try:
            reader = ctx.read_body
            if reader is not None and not plan.streaming:
                await reader(request)
            kind = plan.kind
            if kind is ViewKind.THREAD and request.routing_exception is None and self.poolable:
                ctx.loop = get_running_loop()  # async def code met in the pool thread runs on this loop
                if plan.pooled:
                    whole = True  # a def view and every hook and handler def: the sync cycle, in one pool call
                    rv = None
                else:
                    if request_started.receivers:
                        await send_async(request_started, self.app)
                    if plan.pooled_prelude:
                        rv = await self.app.run_sync(self.pool.preprocess_and_dispatch, ctx, plan)
                    else:
                        rv = await self._preprocess(ctx, plan)
                        if rv is None:
                            rv = await self._dispatch(ctx, plan)
            else:
                if request_started.receivers:
                    await send_async(request_started, self.app)
                # PERF: no coroutine for an empty prelude, nor for calling an async view (--protocol asgi: hello).
                rv = None
                if not self.plain or plan.has_prelude or (self.app._policy.csrf and not plan.csrf_exempt):
                    rv = await self._preprocess(ctx, plan)
                if rv is None:
                    if (self.plain and plan.view_is_coroutine and request.routing_exception is None
                            and request.method != "OPTIONS"):  # fmt: skip
                        rv = await plan.view(**request.view_args)  # type: ignore[misc, arg-type]
                    else:
                        rv = await self._dispatch(ctx, plan)
        except Exception as e:
            rv = await self._handle_user_exception(ctx, plan, e)
        if whole:
            # NOTE: outside the try: what the pooled cycle raises is past its own error handling (a 500).
            return await self.app.run_sync(self.pool.full_dispatch, ctx, plan)  # type: ignore[no-any-return]
        if self.plain and not plan.after and not ctx._after_request_functions and not request_finished.receivers:
            response = self._make_response(rv)  # PERF: no after-request coroutine when there is nothing to run
            if ctx._session is not None or self.app._policy.security_headers:
                self.finish_response(ctx, response)
            return response
        return await self._finalize(ctx, plan, rv, False)  # type: ignore[no-any-return]

    async def _full_dispatch_override(self, ctx: RequestContext, plan: Endpoint) -> Response:
        try:
            reader = ctx.read_body
            if reader is not None and not plan.streaming:
                await reader(ctx.request)
        except Exception as e:
            rv = await self._handle_user_exception(ctx, plan, e)
            return await self._finalize(ctx, plan, rv, False)  # type: ignore[no-any-return]
        full_dispatch: Any = self.app.full_dispatch_request
        if is_async_callable(full_dispatch):
            return await full_dispatch()  # type: ignore[no-any-return]
        return await self.app.run_sync(full_dispatch)  # type: ignore[no-any-return]

    async def preprocess(
        self, ctx: RequestContext, plan: Endpoint
    ) -> ResponseReturnValue | None:
        request = ctx.request
        for func, is_async in plan.url_value_preprocessors:
            rv = func(request.endpoint, request.view_args)
            if is_async:
                await rv
        if self.app._policy.csrf and not plan.csrf_exempt:
            csrf_check(request, plan.streaming)
        for func, is_async in plan.before:
            rv = func()
            if is_async:
                rv = await rv
            if rv is not None:
                return rv
        return None

    async def dispatch(self, ctx: RequestContext, plan: Endpoint) -> ResponseReturnValue:
        request = ctx.request
        if request.routing_exception is not None:
            return self.routing_error(request, plan)
        if request.method == "OPTIONS" and getattr(request.url_rule, "provide_automatic_options", False):
            return self.app.make_default_options_response()
        view: Any = plan.view
        if plan.kind is ViewKind.THREAD or plan.kind is ViewKind.WRAPPED:
            rv = await self.app.run_sync(view, **request.view_args)  # type: ignore[arg-type]
        else:
            rv = view(**request.view_args)  # type: ignore[arg-type]
        if inspect.isawaitable(rv):
            rv = await rv
        return rv

    async def finalize(  # type: ignore[override]
        self, ctx: RequestContext, plan: Endpoint, rv: ResponseReturnValue, from_error: bool
    ) -> Response:
        response = self._make_response(rv)
        try:
            response = await self._process_response(ctx, plan, response)
            if request_finished.receivers:
                await send_async(request_finished, self.app, response=response)
        except Exception:
            if not from_error:
                raise
            self.app.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    async def process_response(  # type: ignore[override]
        self, ctx: RequestContext, plan: Endpoint, response: Response
    ) -> Response:
        funcs = ctx._after_request_functions
        if funcs:
            for func in funcs:
                response = await _call(func, response)
        for func, is_async in plan.after:
            response = func(response)
            if is_async:
                response = await response  # type: ignore[misc]
        if ctx._session is not None or self.app._policy.security_headers:
            self.finish_response(ctx, response)
        return response

    async def handle_user_exception(
        self, ctx: RequestContext, plan: Endpoint, e: Exception
    ) -> ResponseReturnValue:
        if isinstance(e, HTTPException) and not self.app.trap_http_exception(e):
            show_missing_key(self.app, e)
            return await self._handle_http_exception(ctx, plan, e)
        handler = find_error_handler(self.app, e, plan.blueprints)
        if handler is None:
            try:
                raise e
            finally:
                del e  # the traceback holds this frame: no reference cycle through it
        return await _call(handler, e)

    async def handle_http_exception(
        self, ctx: RequestContext, plan: Endpoint, e: HTTPException
    ) -> ResponseReturnValue:
        if e.code is None:
            return e
        if isinstance(e, RequestRedirect):
            return redirect_response(self.app, ctx.request, e)
        handler = find_error_handler(self.app, e, plan.blueprints)
        if handler is None:
            return e
        return await _call(handler, e)

    async def handle_exception(  # type: ignore[override]
        self, ctx: RequestContext, plan: Endpoint, e: Exception
    ) -> Response:
        if got_request_exception.receivers:
            await send_async(got_request_exception, self.app, exception=e)
        error, handler = self.server_error(e, plan)
        rv: ResponseReturnValue = error
        if handler is not None:
            rv = await _call(handler, error)
        elif self.app.debug:
            rv = debug_page(self.app, e)
        return await self._finalize(ctx, plan, rv, True)  # type: ignore[no-any-return]

    async def teardown(self, ctx: RequestContext, exc: BaseException | None) -> None:  # type: ignore[override]
        if ctx._is_copy:
            return
        token = _cv_ctx.set(ctx)
        try:
            try:
                await self._teardown_request(ctx, self.plan_of(ctx), exc)
            finally:
                ctx.request.close()
                if ctx.owns_app_ctx:
                    await self._teardown_appcontext(ctx, exc)
        finally:
            _cv_ctx.reset(token)
        if ctx.owns_app_ctx and appcontext_popped.receivers:
            await send_async(appcontext_popped, self.app)

    async def teardown_request(  # type: ignore[override]
        self, ctx: RequestContext, plan: Endpoint, exc: BaseException | None
    ) -> None:
        if plan.teardown:
            await self._run_teardowns(plan.teardown, exc)
        if request_tearing_down.receivers:
            await send_async(request_tearing_down, self.app, exc=exc)

    async def teardown_appcontext(self, ctx: object, exc: BaseException | None) -> None:  # type: ignore[override]
        funcs = self.app.teardown_appcontext_funcs
        if funcs:
            await self._run_teardowns(tuple((f, is_async_callable(f)) for f in reversed(funcs)), exc)
        if appcontext_tearing_down.receivers:
            await send_async(appcontext_tearing_down, self.app, exc=exc)

    async def _run_teardowns(self, funcs: tuple[tuple[Callable[..., Any], bool], ...], exc: Any) -> None:
        first: BaseException | None = None
        for func, is_async in funcs:
            try:
                rv = func(exc)
                if is_async:
                    await rv
            except Exception as e:
                first = first or e
                self.app.logger.exception("Error in teardown function %r", func)
        if first is not None and self.app.should_propagate():
            raise first

    # ------------------------------------------------------------------------------------------ websocket
    async def websocket(self, request: Request, ws: Any) -> None:
        """The WebSocket cycle: host check and routing, URL value preprocessors and ``before_websocket``
        hooks, the view, then teardown. ``ws`` is the adapter's connection object (``deny``, ``close``)."""
        app = self.app
        if not app._got_first_request:
            await app._first_request_async()
        ctx = RequestContext(app, request)
        ctx.async_mode = True
        ctx.websocket = ws
        ctx.push()
        error: BaseException | None = None
        try:
            if appcontext_pushed.receivers and ctx.owns_app_ctx:
                await send_async(appcontext_pushed, app)
            plan = self.match(ctx, websocket=True)
            routing_error = request.routing_exception
            if routing_error is not None:
                if isinstance(routing_error, HTTPException) and routing_error.code == 400:
                    await ws.deny(routing_error)  # a bad or untrusted Host: refused before any hook
                else:
                    await ws.close(1008 if ws.accepted else 1000)
                return
            try:
                for func, is_async in plan.url_value_preprocessors:
                    rv = func(request.endpoint, request.view_args)
                    if is_async:
                        await rv
                for func, is_async in plan.before_websocket:
                    rv = func()
                    if is_async:
                        rv = await rv
                    if rv is not None:
                        await ws.close(1008)
                        return
                result = plan.view(**request.view_args)  # type: ignore[misc, arg-type]
                if inspect.isawaitable(result):
                    await result
                if not ws.closed:
                    await ws.close(1000)
            except ws.Disconnect:
                pass
            except Exception as e:
                error = e
                app.log_exception((type(e), e, e.__traceback__))
                if not ws.closed:
                    try:
                        await ws.close(1011 if ws.accepted else 1000)
                    except Exception:  # pragma: no cover - the transport is gone
                        pass
                if app.should_propagate():
                    raise
        finally:
            ctx._leave()
            await self.teardown(ctx, error)


__all__ = [
    "OVERRIDE_POINTS",
    "ROUTING_ERROR_POINTS",
    "AsyncCycle",
    "SyncCycle",
    "call_sync",
    "debug_page",
    "find_error_handler",
    "redirect_response",
    "rehandle",
    "run_teardowns",
]
