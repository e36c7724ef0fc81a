"""Error handling of the sync request cycle: finding error handlers, HTTP errors, unhandled exceptions.

:class:`ErrorHandlingMixin` gives :class:`~ampulla.app.Ampulla` the methods that turn an exception raised by a hook
or a view into a response: the registered handler (by status code, then by class; blueprints first), the error's
own page, or a 500 (a traceback page in debug mode). The async twins are in :mod:`ampulla.async_cycle`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .exceptions import HTTPException, InternalServerError, MethodNotAllowed
from .routing import RequestRedirect
from .scaffold import iter_chain

if TYPE_CHECKING:
    import logging

    from .app import ResponseReturnValue
    from .chains import _Chain
    from .config import Config
    from .ctx import RequestContext
    from .wrappers import Response


class ErrorHandlingMixin:
    """How :class:`~ampulla.app.Ampulla` answers errors; a mixin without state of its own."""

    if TYPE_CHECKING:
        # What these methods use from Ampulla (and Scaffold), declared for the type checker only.
        config: Config
        error_handler_spec: dict[str | None, dict[int | None, dict[type[BaseException], Callable[..., Any]]]]
        response_class: type[Response]

        @property
        def debug(self) -> bool: ...
        @property
        def testing(self) -> bool: ...
        @property
        def logger(self) -> logging.Logger: ...
        def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]: ...
        def _chain(self, endpoint: str | None) -> _Chain: ...
        def make_response(self, rv: ResponseReturnValue) -> Response: ...
        def process_response(
            self, ctx: RequestContext, response: Response, chain: _Chain | None = None
        ) -> Response: ...

    def _find_error_handler(self, e: BaseException, blueprints: tuple[str, ...]) -> Callable[..., Any] | None:
        """The handler for ``e``: by status code (blueprints first, then the app), then by class (same order)."""
        exc_class = type(e)
        code = e.code if isinstance(e, HTTPException) else None
        for c in (code, None) if code is not None else (None,):
            for name in iter_chain(blueprints):
                handler_map = self.error_handler_spec.get(name)
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

    def trap_http_exception(self, e: HTTPException) -> bool:
        """Whether an HTTP error should propagate like an unhandled exception (``TRAP_*`` settings)."""
        if self.config["TRAP_HTTP_EXCEPTIONS"]:
            return True
        trap_bad_request = self.config["TRAP_BAD_REQUEST_ERRORS"]
        if trap_bad_request is None and self.debug and e.__class__.__name__ == "BadRequestKeyError":
            return True
        if trap_bad_request:
            return e.code == 400
        return False

    def handle_http_exception(self, ctx: RequestContext, e: HTTPException) -> ResponseReturnValue:
        """Answer an HTTP error with its registered handler, or its default page."""
        if e.code is None or isinstance(e, RequestRedirect):
            if isinstance(e, RequestRedirect):
                return self._redirect_response(ctx, e)
            return e
        if isinstance(e, MethodNotAllowed) and ctx.request.method == "OPTIONS":
            pass
        handler = self._find_error_handler(e, self._chain(ctx.request.endpoint).blueprints)
        if handler is None:
            return e
        return self.ensure_sync(handler)(e)

    def _redirect_response(self, ctx: RequestContext, e: RequestRedirect) -> Response:
        request = ctx.request
        location = quote(request.script_root + e.new_path, safe="/:@!$&'()*+,;=~%")
        if request.query_string:
            # Percent-encode what a Location header cannot carry (NUL, CR, LF, spaces, non-ASCII).
            location += "?" + quote(request.query_string, safe="!$&'()*+,/:;=?@~%")
        response = self.response_class(f"Redirecting to {location}", 308)
        response.headers.set("Location", location)
        return response

    def handle_user_exception(self, ctx: RequestContext, e: Exception) -> ResponseReturnValue:
        """Handle an exception from a hook or view: HTTP errors and registered handlers; re-raise the rest."""
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            return self.handle_http_exception(ctx, e)
        handler = self._find_error_handler(e, self._chain(ctx.request.endpoint).blueprints)
        if handler is None:
            raise e
        return self.ensure_sync(handler)(e)

    def should_propagate(self) -> bool:
        """Whether unhandled exceptions are re-raised (``PROPAGATE_EXCEPTIONS``, or in testing mode)."""
        value = self.config["PROPAGATE_EXCEPTIONS"]
        if value is not None:
            return bool(value)
        return self.testing

    def log_exception(self, ctx: RequestContext | None, exc: BaseException) -> None:
        """Log an unhandled exception (called before the 500 page is sent)."""
        where = f" on {ctx.request.path} [{ctx.request.method}]" if ctx is not None else ""
        self.logger.error("Exception%s", where, exc_info=(type(exc), exc, exc.__traceback__))

    def handle_exception(self, ctx: RequestContext, e: Exception) -> Response:
        """Answer an unhandled exception with a 500 (its handler's response if registered).

        Raises:
            Exception: ``e`` itself when exceptions propagate (testing mode).
        """
        if self.should_propagate():
            raise e
        self.log_exception(ctx, e)
        server_error = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, self._chain(ctx.request.endpoint).blueprints)
        rv: ResponseReturnValue
        if handler is not None:
            rv = self.ensure_sync(handler)(server_error)
        elif self.debug:
            rv = self._debug_page(e)
        else:
            rv = server_error
        return self.finalize_from_error(ctx, rv)

    def finalize_from_error(self, ctx: RequestContext, rv: ResponseReturnValue) -> Response:
        """Build the response for an error, running ``after_request`` hooks; a failing hook is logged."""
        response = self.make_response(rv)
        try:
            return self.process_response(ctx, response)
        except Exception as hook_error:
            self.logger.exception("Request finalizing failed with an error while handling an error")
            del hook_error
            return response

    def _debug_page(self, e: BaseException) -> Response:
        import html

        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        body = (
            "<!doctype html>\n<title>Traceback</title>\n<h1>500 Internal Server Error (debug mode)</h1>\n"
            f"<pre>{html.escape(text)}</pre>\n"
            "<p>This page is shown because DEBUG is on. Never run with DEBUG in production.</p>\n"
        )
        return self.response_class(body, 500)
