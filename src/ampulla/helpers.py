"""Helpers for views: ``url_for``, ``redirect``, ``make_response``, ``abort``, streaming, flashing, files."""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import quote

from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .exceptions import HTTPException
from .exceptions import abort as _abort
from .scaffold import get_root_path
from .signals import message_flashed, send
from .wrappers import Response

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from typing import IO

__all__ = [
    "abort",
    "flash",
    "get_debug_flag",
    "get_flashed_messages",
    "get_load_dotenv",
    "get_root_path",
    "get_template_attribute",
    "make_response",
    "redirect",
    "run_inline",
    "send_file",
    "send_from_directory",
    "stream_request_body",
    "stream_with_context",
    "url_for",
]


def abort(code: int | Response | Any, *args: Any, **kwargs: Any) -> NoReturn:
    """Stop the request with an HTTP error, raised by the current app's ``aborter`` when there is one.

    Args:
        code: A status code (``abort(404)``) or a ready response (``abort(make_response(...))``).
        *args: Passed to the exception class, e.g. a description.
        **kwargs: Passed to the exception class.

    Raises:
        HTTPException: Always; the class registered for ``code``, or a plain one carrying the response.
        LookupError: No exception class exists for the code.
    """
    if not isinstance(code, int):
        # Werkzeug's Aborter recognises only Werkzeug responses: an Ampulla one is carried here.
        carried: Any = code  # error_response sends it as it is
        raise HTTPException(response=carried)
    ctx = _cv_ctx.get(None)
    if ctx is not None:
        ctx.app.aborter(code, *args, **kwargs)
    _abort(code, *args, **kwargs)


def url_for(
    endpoint: str,
    /,
    *,
    _anchor: str | None = None,
    _method: str | None = None,
    _scheme: str | None = None,
    _external: bool | None = None,
    **values: Any,
) -> str:
    """Build the URL of an endpoint.

    Values that are not variables of the rule become the query string; ``None`` values are dropped. In a
    blueprint, ``".name"`` means the current blueprint's endpoint.

    Args:
        endpoint: The endpoint name (the view function's name unless set).
        _anchor: Appended as ``#anchor``.
        _method: Pick the rule that accepts this method.
        _scheme: The scheme of an external URL.
        _external: Build ``scheme://host/path``. Outside a request this needs ``SERVER_NAME``.
        **values: Values of the rule's variables, and query arguments.

    Raises:
        BuildError: The endpoint is unknown or no rule accepts the values.
        RuntimeError: No application context is active.
    """
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError(
            "url_for() needs an application context: call it in a view, a template, or inside "
            "'with app.app_context():'"
        )
    return ctx.app.url_for(
        endpoint, _anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external, **values
    )


def redirect(location: str, code: int = 302, Response: type[Response] | None = None) -> Response:
    """A redirect response.

    Args:
        location: The target URL; unsafe characters are percent-encoded, so a user-supplied URL cannot inject
            headers or markup.
        code: 301, 302 (default), 303, 307 or 308.
        Response: The response class to use.
    """
    if Response is None:
        ctx = _cv_ctx.get(None)
        if ctx is not None:
            return ctx.app.redirect(location, code)
    return _redirect(location, code, Response)


def _redirect(location: str, code: int, response_class: type[Response] | None) -> Response:
    if response_class is None:
        ctx = _cv_ctx.get(None)
        response_class = ctx.app.response_class if ctx is not None else _response_class()
    safe_location = quote(location, safe="/:?#[]@!$&'()*+,;=%~")
    escaped = html.escape(safe_location)
    body = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        f'<p>You should be redirected automatically to the target URL: <a href="{escaped}">{escaped}</a>. '
        "If not, click the link.\n"
    )
    response = response_class(body, code)
    response.headers.set("Location", safe_location)
    return response


def _response_class() -> type[Response]:
    return Response


def make_response(*args: Any) -> Response:
    """Turn view-style return values into a response, to change it before returning.

    ``make_response("text", 201, {"X-A": "b"})`` accepts what a view may return. With no arguments, an empty
    response.

    Raises:
        RuntimeError: No application context is active.
    """
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError("make_response() needs an application context: call it in a view")
    if not args:
        return ctx.app.response_class()
    if len(args) == 1:
        return ctx.app.make_response(args[0])
    return ctx.app.make_response(args)


def stream_with_context(generator_or_function: Any) -> Any:
    """Keep the request context (``request``, ``session``, ``g``) alive while a streamed body is generated.

    Use around a generator (sync or async) returned from a view, or as a decorator on a generator function.
    Teardown functions run when the stream ends, is closed, or the client disconnects.

    Raises:
        RuntimeError: Used outside a request.
    """
    if callable(generator_or_function) and not (
        hasattr(generator_or_function, "__next__") or hasattr(generator_or_function, "__anext__")
    ):
        func = generator_or_function

        @functools.wraps(func)
        def decorator(*args: Any, **kwargs: Any) -> Any:
            return stream_with_context(func(*args, **kwargs))

        return decorator
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("stream_with_context() can only be used while handling a request")
    if hasattr(generator_or_function, "__anext__"):
        return ContextAsyncStream(ctx, generator_or_function)
    return ContextStream(ctx, iter(generator_or_function))


class ContextStream:
    """A sync iterator run with a request context active; releases the context when done or closed."""

    __slots__ = ("_ctx", "_done", "_gen")

    def __init__(self, ctx: RequestContext, gen: Iterator[Any]) -> None:
        self._ctx = ctx
        self._gen = gen
        self._done = False
        ctx.hold()

    def __iter__(self) -> ContextStream:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        token: Any = _cv_ctx.set(self._ctx)
        try:
            return next(self._gen)
        except BaseException:
            _cv_ctx.reset(token)
            token = None
            self.close()  # ended or failed: close the iterator (a wrapper's own close() runs) and release
            raise
        finally:
            if token is not None:
                _cv_ctx.reset(token)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._ctx.release()

    def close(self) -> None:
        """Close the generator (running its ``finally`` blocks) and release the request context."""
        if self._done:
            return
        token = _cv_ctx.set(self._ctx)
        try:
            close = getattr(self._gen, "close", None)
            if close is not None:
                close()
        finally:
            _cv_ctx.reset(token)
            self._finish()


class ContextAsyncStream:
    """An async iterator run with a request context active; releases the context when done or closed."""

    __slots__ = ("_ctx", "_done", "_gen")

    def __init__(self, ctx: RequestContext, gen: Any) -> None:
        self._ctx = ctx
        self._gen = gen
        self._done = False
        ctx.hold()

    def __aiter__(self) -> ContextAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        token = _cv_ctx.set(self._ctx)
        try:
            return await self._gen.__anext__()
        except BaseException:
            self._finish()
            raise
        finally:
            _cv_ctx.reset(token)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._ctx.release()

    async def aclose(self) -> None:
        """Close the generator and release the request context."""
        if self._done:
            return
        token = _cv_ctx.set(self._ctx)
        try:
            aclose = getattr(self._gen, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            _cv_ctx.reset(token)
            self._finish()

    def close(self) -> None:
        """Release the context without awaiting (used when the loop is gone)."""
        self._finish()


def stream_request_body(view: F) -> F:
    """Mark a view that reads its body itself with ``async for chunk in request.stream_async()``.

    Under ASGI the body of other views is read (within ``MAX_CONTENT_LENGTH``) before they run; a marked view
    gets the body as it arrives instead, so large uploads need not be buffered. Under WSGI it changes nothing.
    """
    view.stream_request_body = True  # type: ignore[attr-defined]
    return view


def run_inline(view: F) -> F:
    """Mark a cheap ``def`` view to run on the event loop under ASGI instead of the thread pool.

    Only for views that never block (no I/O, no locks); same as ``@app.route(..., inline=True)``.
    """
    view.run_inline = True  # type: ignore[attr-defined]
    return view


def flash(message: str, category: str = "message") -> None:
    """Store a message shown on the next page (``get_flashed_messages`` in templates).

    Args:
        message: The text.
        category: E.g. ``"message"``, ``"error"``, ``"info"``, ``"warning"``.
    """
    from .globals import session

    flashes = session.get("_flashes", [])
    flashes.append((category, message))
    session["_flashes"] = flashes
    if message_flashed.receivers:
        ctx = _cv_ctx.get(None)
        send(message_flashed, ctx.app if ctx is not None else None, message=message, category=category)


def get_flashed_messages(
    with_categories: bool = False, category_filter: tuple[str, ...] | list[str] = ()
) -> list[Any]:
    """The flashed messages (removed from the session; the same list on repeated calls in one request).

    Args:
        with_categories: Return ``(category, message)`` pairs.
        category_filter: Only these categories.
    """
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("get_flashed_messages() can only be used while handling a request")
    flashes = ctx.flashes
    if flashes is None:
        session = ctx.session
        flashes = [tuple(f) for f in session.pop("_flashes")] if "_flashes" in session else []
        ctx.flashes = flashes
    if category_filter:
        flashes = [f for f in flashes if f[0] in category_filter]
    if not with_categories:
        return [f[1] for f in flashes]
    return list(flashes)


def send_file(path_or_file: str | os.PathLike[str] | IO[bytes], *args: Any, **kwargs: Any) -> Response:
    """Send a file (Werkzeug's ``send_file`` in the current request); see :func:`ampulla.sendfile.send_file`."""
    from .sendfile import send_file as _send_file

    return _send_file(path_or_file, *args, **kwargs)


def send_from_directory(
    directory: str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: Any
) -> Response:
    """Send a file from ``directory``; a path that leaves the directory gives 404."""
    from .sendfile import send_from_directory as _send_from_directory

    return _send_from_directory(directory, path, **kwargs)



_FALSE_WORDS = ("0", "false", "no")


def send_file_max_age(config: Any) -> int | None:
    """``SEND_FILE_MAX_AGE_DEFAULT`` in seconds (a ``timedelta`` or a number); ``None``: conditional only."""
    value = config["SEND_FILE_MAX_AGE_DEFAULT"]
    if value is None:
        return None
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return int(value)


def get_debug_flag() -> bool:
    """Whether the environment asks for debug mode: ``AMPULLA_DEBUG``, else ``FLASK_DEBUG`` (``0``, ``false``
    and ``no`` mean off; unset means off)."""
    value = os.environ.get("AMPULLA_DEBUG") or os.environ.get("FLASK_DEBUG") or ""
    return bool(value) and value.lower() not in _FALSE_WORDS


def get_load_dotenv(default: bool = True) -> bool:
    """Whether ``.env`` and ``.flaskenv`` files should be loaded: ``default`` unless ``AMPULLA_SKIP_DOTENV`` or
    ``FLASK_SKIP_DOTENV`` is set to a true value.

    Args:
        default: The answer when neither variable is set.
    """
    value = os.environ.get("AMPULLA_SKIP_DOTENV") or os.environ.get("FLASK_SKIP_DOTENV")
    if not value:
        return default
    return value.lower() in _FALSE_WORDS


def get_template_attribute(template_name: str, attribute: str) -> Any:
    """A macro or variable exported by a template, e.g. to call a macro from Python code.

    ``get_template_attribute("_macros.html", "hello")("World")`` calls the ``hello`` macro.

    Args:
        template_name: The template's name.
        attribute: The macro or variable.
    """
    from .globals import current_app

    return getattr(current_app.jinja_env.get_template(template_name).module, attribute)
