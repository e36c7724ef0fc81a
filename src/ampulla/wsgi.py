"""The WSGI adapter: environ in, core request cycle, status/headers/body out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .asgi import handle_asgi
from .concurrency import run_background_tasks, run_coroutine_sync
from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .datastructures import Headers, bodiless_header_pairs, header_pairs
from .endpoint import NO_LIMIT_SET, Endpoint
from .exceptions import HTTPException, error_response
from .json import DefaultJSONProvider
from .proxy_fix import _VALID_HOSTS, SUPPORTED_VERSIONS, check_framing, check_http_version
from .response import _SIZES, _TEXT_CONTENT_TYPES, Response, _new_object
from .signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    request_finished,
    request_started,
    request_tearing_down,
)
from .wrappers import Request, _length_of

if TYPE_CHECKING:
    from .app import Ampulla
    from .cycle import SyncCycle

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

#: ``SERVER_SOFTWARE`` prefixes of servers that take no ``Connection`` header from the application: wsgiref's
#: refuse hop-by-hop headers; Werkzeug's development server closes every connection and says so itself.
_NO_HOP_BY_HOP_SERVERS = ("WSGIServer/", "Werkzeug/")


class _StreamingBody:
    """A streamed body for the server: encodes text chunks and closes the response when done.

    Async iterables (an ``async def`` view returning an async generator) are driven on the worker thread's
    long-lived event loop.
    """

    __slots__ = ("_aiter", "_iter", "_response")

    def __init__(self, response: Response) -> None:
        self._response = response
        body: Any = response.response
        if hasattr(body, "__aiter__"):
            self._aiter = body.__aiter__()
            self._iter = None
        else:
            self._aiter = None
            self._iter = iter(body)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is not None:
            chunk = next(self._iter)
        else:
            try:
                chunk = run_coroutine_sync(self._aiter.__anext__())
            except StopAsyncIteration:
                raise StopIteration from None
        return chunk.encode() if isinstance(chunk, str) else chunk

    def close(self) -> None:
        try:
            aclose = getattr(self._aiter, "aclose", None)
            if aclose is not None:
                    run_coroutine_sync(aclose())
        finally:
            self._response.close()


#: Statuses sent without a body (1xx, 204, 304; the status setter refuses codes under 100).
_BODILESS = frozenset((*range(100, 200), 204, 304))


def to_wsgi(response: Response, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Send ``response`` through ``start_response`` and return the body iterable."""
    given = response.headers
    # PERF: Ampulla's own Headers are checked when set; their list goes out as it is (instructions.py: hello).
    headers: list[tuple[str, str]] = given._list if given.__class__ is Headers else header_pairs(given)
    body = response.response
    code = response._status_code
    if code in _BODILESS:
        # As Werkzeug: a 1xx, 204 or 304 carries no body, whatever the response holds (an error handler's JSON).
        start_response(response._status_line, bodiless_header_pairs(code, headers))
        response.close()
        return []
    if isinstance(body, list):
        # PERF: the usual one-chunk body of bytes without a loop (benchmarks/instructions.py: hello).
        if len(body) != 1 or body[0].__class__ is not bytes:
            for i, chunk in enumerate(body):
                if not isinstance(chunk, bytes):
                    body[i] = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        for name, _ in headers:
            if name == "Content-Length" or (len(name) == 14 and name.lower() == "content-length"):
                break
        else:
            headers = [*headers, ("Content-Length", str(sum(map(len, body))))]
        start_response(response._status_line, headers)
        if "REQUEST_METHOD" in environ and environ["REQUEST_METHOD"] == "HEAD":
            response.close()
            return []
        if response._on_close:
            return _StreamingBody(response)
        return body
    start_response(response._status_line, headers)
    if environ.get("REQUEST_METHOD") == "HEAD":
        response.close()
        return []
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and type(body) is file_wrapper and not response._on_close:
        # A whole file that send_file wrapped with the server's own wrapper: the server sends it (sendfile(2)).
        return body
    return _StreamingBody(response)


def _refuse(error: HTTPException, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer a request the server should have refused, asking it to close the connection."""
    response = error_response(error)
    # NOTE: PEP 3333 keeps hop-by-hop headers from applications and wsgiref-based servers assert on them;
    # Werkzeug's development server closes every connection anyway. gunicorn drops the header (and refuses these
    # requests itself); the others honour it.
    if not environ.get("SERVER_SOFTWARE", "").startswith(_NO_HOP_BY_HOP_SERVERS):
        response.headers["Connection"] = "close"
    return to_wsgi(response, environ, start_response)


#: ``send`` given to :func:`serve` by :func:`handle_wsgi`: a WSGI call that looks for no middleware.
_DIRECT: Any = object()


def handle_wsgi(app: Ampulla, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve one WSGI request with ``app``: this is ``app.wsgi_app(environ, start_response)``.

    A request with an unknown HTTP version (505), or with both ``Content-Length`` and ``Transfer-Encoding``
    or an invalid ``Content-Length`` (400), is answered before any hook runs.
    """
    return serve(app, environ, start_response, _DIRECT)  # type: ignore[no-any-return]


def serve(app: Ampulla, environ: dict[str, Any], start_response: Callable[..., Any], send: Any = None) -> Any:
    """``Ampulla.__call__``: ``app(environ, start_response)`` (WSGI), ``await app(scope, receive, send)`` (ASGI 3).

    A WSGI call goes to the middleware set as ``app.wsgi_app`` when there is one, else is served here: the
    request cycle of a plain application inline, anything else through :meth:`SyncCycle.handle`.
    """
    if send is not None:
        if send is not _DIRECT:
            return handle_asgi(app, environ, start_response, send)
    elif app._wsgi_middleware is not None:
        return app._wsgi_middleware(environ, start_response)
    # PERF: membership tests rather than dict.get calls for the usual environ (benchmarks/instructions.py: hello).
    if "SERVER_PROTOCOL" in environ and environ["SERVER_PROTOCOL"] not in SUPPORTED_VERSIONS:
        error = check_http_version(environ["SERVER_PROTOCOL"])
        if error is not None:
            return _refuse(error, environ, start_response)
    length = environ.get("CONTENT_LENGTH")
    # PERF: check_framing's answer for a Content-Length of digits alone inline (benchmarks/instructions.py: form).
    if "HTTP_TRANSFER_ENCODING" in environ or (
        length and not (length.__class__ is str and length.isdigit() and length.isascii())
    ):
        error = check_framing(str(length) if length else None, environ.get("HTTP_TRANSFER_ENCODING"))
        if error is not None:
            return _refuse(error, environ, start_response)
        length = None
    try:
        request_class = app.request_class
        request = request_class.from_environ(environ, app)
    except HTTPException as e:  # undecodable path: answered before any hook runs
        return to_wsgi(error_response(e), environ, start_response)
    if length:
        # checked above: ASCII digits only; PERF: int() itself when it cannot be over 19 digits (run.py: form)
        request._content_length = int(length) if len(length) <= 19 else _length_of(length)
    if not app._got_first_request:
        app._first_request()
    cycle = app._sync_cycle or app._cycles()[0]
    if (
        not cycle.inline
        or "ampulla.preserve_context" in environ
        or appcontext_pushed.receivers
        or request_started.receivers
        or _cv_ctx.get(None) is not None
    ):
        return _handle(app, cycle, request, environ, start_response)
    # PERF: the cycle of a plain application inline (SyncCycle.handle, RequestContext.__init__/push/pop,
    # _match_request, full_dispatch, make_response and to_wsgi for their usual case; benchmarks/instructions.py:
    # hello). Anything else goes to the general steps.
    ctx = _new_object(RequestContext)
    ctx.app = app
    ctx.request = request
    ctx._g = None
    ctx._older_tokens = None
    ctx._session = None
    ctx._after_request_functions = None
    ctx._holds = 0
    ctx.background_tasks = None
    ctx.async_mode = False
    ctx.plan = None
    ctx._token = _cv_ctx.set(ctx)
    failure: BaseException | None = None
    #: The text response made below, when it goes out as made (no hook, session or security header saw it).
    direct: Response | None = None
    plan: Endpoint | None = None
    try:
        try:
            policy = app._policy
            url_map = app.url_map
            if (
                policy.version != app.config.version
                or policy.proxy_fix
                or policy.trusted_hosts
                or environ.get("HTTP_HOST") not in _VALID_HOSTS
                or url_map.host_matching
                or app.subdomain_matching
            ):
                app._match_request(ctx, False)
                policy = app._policy
            else:
                try:
                    rule, values = (url_map._compiled or url_map.compiled).match(
                        url_map.default_subdomain, request.path, request.method, False, ctx
                    )
                    request.url_rule = rule
                    request.endpoint = rule.endpoint
                    request.view_args = values
                except HTTPException as e:
                    app._routing_failed(request, e)
            plan = app._plans.get(request.endpoint) or app.endpoint_plan(request.endpoint)
            ctx.plan = plan
            if plan.body_limit is not NO_LIMIT_SET:
                request.max_content_length = plan.body_limit
            try:
                rv = None
                if plan.has_prelude or (policy.csrf and not plan.csrf_exempt):
                    if plan.sync_url_value_preprocessors or policy.csrf:
                        rv = cycle.preprocess(ctx, plan)
                    else:
                        for func in plan.sync_before:
                            rv = func()
                            if rv is not None:
                                break
                if rv is None:
                    view = plan.sync_view
                    if view is not None and request.routing_exception is None and request.method != "OPTIONS":
                        args = request.view_args
                        rv = view(**args) if args else view()
                        if rv.__class__ is CoroutineType:  # a plain function wrapping an async view
                            rv = run_coroutine_sync(rv)
                    else:
                        rv = cycle.dispatch(ctx, plan)
            except Exception as e:
                rv = cycle.handle_user_exception(ctx, plan, e)
            if ctx._after_request_functions or request_finished.receivers:
                response = cycle.finalize(ctx, plan, rv, False)
            else:
                # PERF: make_response's str, dict and list branches inline (the default JSON provider's body) and
                # Response._fast's construction, which a call would cost 4% of hello (benchmarks/instructions.py:
                # hello, query_json). NOTE: a change to Response._fast is a change here too.
                response_class = app.response_class
                data: bytes | None = None
                if rv.__class__ is str:
                    if response_class in _TEXT_CONTENT_TYPES:
                        data = rv.encode()
                        content_type = _TEXT_CONTENT_TYPES[response_class]
                elif rv.__class__ is dict or rv.__class__ is list:
                    provider = app.json
                    if provider.__class__ is DefaultJSONProvider:  # a subclass may override response()
                        data = provider._body(rv)
                        content_type = provider.mimetype
                if data is not None:
                    size = len(data)
                    headers = _new_object(Headers)
                    headers._list = [
                        ("Content-Type", content_type),
                        ("Content-Length", _SIZES[size] if size < 1024 else str(size)),
                    ]
                    response = _new_object(response_class)
                    response.headers = headers
                    response._status_code = 200
                    response._status_line = "200 OK"
                    response._on_close = None
                    response.response = [data]
                    if not plan.sync_after and ctx._session is None and not policy.security_headers:
                        direct = response
                else:
                    response = cycle._make_response(rv)
                for hook in plan.sync_after:
                    response = hook(response)
                if ctx._session is not None or policy.security_headers:
                    cycle.finish_response(ctx, response)
        except Exception as e:
            failure = e
            response = cycle.handle_exception(ctx, cycle.plan_of(ctx), e)
        except BaseException as e:  # pragma: no cover - KeyboardInterrupt, SystemExit
            failure = e
            raise
    finally:
        if (
            ctx._holds
            or ctx._older_tokens
            or plan is None
            or plan.sync_teardown
            or app.teardown_appcontext_funcs
            or request_tearing_down.receivers
            or appcontext_tearing_down.receivers
            or appcontext_popped.receivers
        ):
            ctx.pop(failure)
        else:
            try:
                # The uploads, as SyncCycle.teardown closes them (PERF: run.py: upload), and whatever a subclass
                # overriding close() releases there.
                if request._files or (request_class is not Request and request_class._own_close):
                    request.close()
            finally:
                token = ctx._token
                ctx._token = None
                _cv_ctx.reset(token)
        # The exception's traceback holds this frame: no reference cycle through it.
        failure = None
    if ctx.background_tasks:
        response.call_on_close(lambda: run_background_tasks(app, ctx))
    elif direct is response and request.method != "HEAD":
        start_response("200 OK", direct.headers._list)
        return direct.response
    if response.__class__ is Response and not response._on_close and response._status_code not in _BODILESS:
        body = response.response
        if body.__class__ is list and len(body) == 1 and body[0].__class__ is bytes:
            headers = response.headers
            if headers.__class__ is Headers and request.method != "HEAD":
                lines = headers._list
                # PERF: the Content-Length of a response made above is its second line (instructions.py: hooks).
                if (len(lines) > 1 and lines[1][0] == "Content-Length") or any(
                    name == "Content-Length" for name, _ in lines
                ):
                    start_response(response._status_line, lines)
                    return body
    return to_wsgi(response, environ, start_response)


def _handle(
    app: Ampulla, cycle: SyncCycle, request: Request, environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """The general path of :func:`serve`: the cycle's ``handle``."""
    response, ctx = cycle.handle(request)
    if ctx.preserved:
        environ["ampulla._preserved_context"] = ctx
    if ctx.background_tasks:
        response.call_on_close(lambda: run_background_tasks(app, ctx))
    return to_wsgi(response, environ, start_response)
