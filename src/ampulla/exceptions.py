"""HTTP exceptions.

Raising one of these from a view, a hook or a parser ends the request with that status. Each class carries a
default ``description`` that is shown in the HTML error page; pass your own text to override it. ``abort(code)``
raises the class registered for ``code``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

if TYPE_CHECKING:
    from .wrappers import Response


_DEFAULT_BODIES: dict[type, bytes] = {}


class HTTPException(Exception):
    """Base class for every HTTP error.

    Args:
        description: Text shown in the error page instead of the class default.
        response: A ready response to send instead of the generated error page.
    """

    code: ClassVar[int | None] = None
    description: str | None = None

    def __init__(self, description: str | None = None, response: Response | None = None) -> None:
        super().__init__()
        if description is not None:
            self.description = description
        self.response = response

    @property
    def name(self) -> str:
        """The status phrase, e.g. ``"Not Found"``."""
        if self.code is None:
            return "Unknown Error"
        try:
            return HTTPStatus(self.code).phrase
        except ValueError:
            return "Unknown Error"

    def get_description(self) -> str:
        """The description as an HTML paragraph (escaped)."""
        return f"<p>{html.escape(self.description or '')}</p>"

    def get_body(self) -> str:
        """The HTML document sent for this error."""
        return (
            "<!doctype html>\n<html lang=en>\n"
            f"<title>{self.code} {html.escape(self.name)}</title>\n"
            f"<h1>{html.escape(self.name)}</h1>\n{self.get_description()}\n"
        )

    def get_headers(self) -> list[tuple[str, str]]:
        """Headers sent with the generated error page."""
        return [("Content-Type", "text/html; charset=utf-8")]

    def get_response(self) -> Response:
        """The response for this error: ``self.response`` if given, else the generated page."""
        if self.response is not None:
            return self.response
        from .wrappers import Response

        cls = type(self)
        if self.description is cls.description and cls.get_body is HTTPException.get_body:
            # PERF: the default page of each class is rendered once (benchmarks/run.py: notfound).
            body = _DEFAULT_BODIES.get(cls)
            if body is None:
                body = _DEFAULT_BODIES[cls] = self.get_body().encode("utf-8")
            response = Response._fast(body, self.code or 500, "text/html; charset=utf-8")
            extra = self.get_headers()
            if len(extra) > 1:
                response.headers.extend(extra[1:])
            return response
        return Response(self.get_body(), self.code or 500, self.get_headers())

    def __str__(self) -> str:
        return f"{self.code or '???'} {self.name}: {self.description}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self}'>"


class BadRequest(HTTPException):
    """400: the request is malformed."""

    code = 400
    description = "The browser (or proxy) sent a request that this server could not understand."


class BadRequestKeyError(BadRequest, KeyError):
    """400 raised when a key is missing from ``request.form``, ``request.args`` or ``request.files``."""

    def __init__(self, key: object = None, description: str | None = None) -> None:
        super().__init__(description)
        self.key = key
        if key is not None and description is None:
            self.description = f"{BadRequest.description} Missing key: {key!r}."

    def __str__(self) -> str:
        return HTTPException.__str__(self)


class SecurityError(BadRequest):
    """400 raised when a request tries to do something unsafe (e.g. leave a directory)."""


class Unauthorized(HTTPException):
    """401: authentication is required.

    Args:
        description: Error page text.
        response: A ready response.
        www_authenticate: Value(s) for the ``WWW-Authenticate`` header.
    """

    code = 401
    description = (
        "The server could not verify that you are authorized to access the URL requested. You either supplied "
        "the wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the "
        "credentials required."
    )

    def __init__(
        self,
        description: str | None = None,
        response: Response | None = None,
        www_authenticate: str | Iterable[str] | None = None,
    ) -> None:
        super().__init__(description, response)
        if isinstance(www_authenticate, str):
            www_authenticate = [www_authenticate]
        self.www_authenticate = list(www_authenticate or ())

    def get_headers(self) -> list[tuple[str, str]]:
        headers = super().get_headers()
        headers.extend(("WWW-Authenticate", value) for value in self.www_authenticate)
        return headers


class Forbidden(HTTPException):
    """403: the request is understood and refused."""

    code = 403
    description = (
        "You don't have the permission to access the requested resource. It is either read-protected or not "
        "readable by the server."
    )


class NotFound(HTTPException):
    """404: nothing matches the URL."""

    code = 404
    description = (
        "The requested URL was not found on the server. If you entered the URL manually please check your "
        "spelling and try again."
    )


class MethodNotAllowed(HTTPException):
    """405: the URL exists, the method does not. Sends an ``Allow`` header.

    Args:
        valid_methods: The methods the URL accepts.
        description: Error page text.
        response: A ready response.
    """

    code = 405
    description = "The method is not allowed for the requested URL."

    def __init__(
        self,
        valid_methods: Iterable[str] | None = None,
        description: str | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(description, response)
        self.valid_methods = sorted(valid_methods) if valid_methods is not None else None

    def get_headers(self) -> list[tuple[str, str]]:
        headers = super().get_headers()
        if self.valid_methods:
            headers.append(("Allow", ", ".join(self.valid_methods)))
        return headers


class NotAcceptable(HTTPException):
    """406."""

    code = 406
    description = "The resource identified by the request can not produce a response the client accepts."


class RequestTimeout(HTTPException):
    """408."""

    code = 408
    description = "The server closed the network connection because the browser didn't finish the request."


class Conflict(HTTPException):
    """409: the request conflicts with the current state (e.g. a unique value taken)."""

    code = 409
    description = "A conflict happened while processing the request."


class Gone(HTTPException):
    """410."""

    code = 410
    description = "The requested URL is no longer available on this server."


class LengthRequired(HTTPException):
    """411."""

    code = 411
    description = "A request with this method requires a valid Content-Length header."


class PreconditionFailed(HTTPException):
    """412."""

    code = 412
    description = "The precondition on the request for the URL failed positive evaluation."


class RequestEntityTooLarge(HTTPException):
    """413: the body, a form field or the number of form parts is over a configured limit."""

    code = 413
    description = "The data value transmitted exceeds the capacity limit."


class RequestURITooLarge(HTTPException):
    """414."""

    code = 414
    description = "The length of the requested URL exceeds the capacity limit for this server."


class UnsupportedMediaType(HTTPException):
    """415: the body's Content-Type is not one the endpoint accepts."""

    code = 415
    description = "The server does not support the media type transmitted in the request."


class RequestedRangeNotSatisfiable(HTTPException):
    """416: a ``Range`` header asks for bytes outside the resource.

    Args:
        length: The full length of the resource, sent as ``Content-Range: bytes */length``.
        description: Error page text.
    """

    code = 416
    description = "The server cannot provide the requested range."

    def __init__(self, length: int | None = None, description: str | None = None) -> None:
        super().__init__(description)
        self.length = length

    def get_headers(self) -> list[tuple[str, str]]:
        headers = super().get_headers()
        if self.length is not None:
            headers.append(("Content-Range", f"bytes */{self.length}"))
        return headers


class ExpectationFailed(HTTPException):
    """417."""

    code = 417
    description = "The server could not meet the requirements of the Expect header."


class ImATeapot(HTTPException):
    """418."""

    code = 418
    description = "This server is a teapot, not a coffee machine."


class UnprocessableEntity(HTTPException):
    """422: well-formed but semantically invalid input."""

    code = 422
    description = "The request was well-formed but was unable to be followed due to semantic errors."


class Locked(HTTPException):
    """423."""

    code = 423
    description = "The resource that is being accessed is locked."


class FailedDependency(HTTPException):
    """424."""

    code = 424
    description = "The method could not be performed because the requested action depended on another action."


class PreconditionRequired(HTTPException):
    """428."""

    code = 428
    description = "This request is required to be conditional."


class _RetryAfter(HTTPException):
    """An error that can tell the client when to try again (``Retry-After``).

    Args:
        description: Error page text.
        response: A ready response.
        retry_after: Seconds to wait (an ``int``), or the moment to retry at (a ``datetime``; naive means UTC).
    """

    def __init__(
        self,
        description: str | None = None,
        response: Response | None = None,
        retry_after: datetime | int | None = None,
    ) -> None:
        super().__init__(description, response)
        if isinstance(retry_after, int) and (isinstance(retry_after, bool) or retry_after < 0):
            raise ValueError(f"retry_after must be a number of seconds >= 0 or a datetime, not {retry_after!r}")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers = super().get_headers()
        retry_after = self.retry_after
        if isinstance(retry_after, datetime):
            from .http import http_date

            headers.append(("Retry-After", http_date(retry_after)))
        elif retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        return headers


class TooManyRequests(_RetryAfter):
    """429. ``TooManyRequests(retry_after=30)`` sends ``Retry-After: 30``."""

    code = 429
    description = "This user has exceeded an allotted request count. Try again later."


class RequestHeaderFieldsTooLarge(HTTPException):
    """431."""

    code = 431
    description = "One or more header fields exceeds the maximum size."


class UnavailableForLegalReasons(HTTPException):
    """451."""

    code = 451
    description = "Unavailable for legal reasons."


class InternalServerError(HTTPException):
    """500: an unhandled exception. ``original_exception`` holds it.

    Args:
        description: Error page text.
        response: A ready response.
        original_exception: The exception that was not handled.
    """

    code = 500
    description = (
        "The server encountered an internal error and was unable to complete your request. Either the server "
        "is overloaded or there is an error in the application."
    )

    def __init__(
        self,
        description: str | None = None,
        response: Response | None = None,
        original_exception: BaseException | None = None,
    ) -> None:
        super().__init__(description, response)
        self.original_exception = original_exception


class NotImplemented(HTTPException):
    """501."""

    code = 501
    description = "The server does not support the action requested by the browser."


class BadGateway(HTTPException):
    """502."""

    code = 502
    description = "The proxy server received an invalid response from an upstream server."


class ServiceUnavailable(_RetryAfter):
    """503: e.g. the database is unreachable. ``ServiceUnavailable(retry_after=10)`` sends ``Retry-After: 10``."""

    code = 503
    description = (
        "The server is temporarily unable to service your request due to maintenance downtime or capacity "
        "problems. Please try again later."
    )


class GatewayTimeout(HTTPException):
    """504."""

    code = 504
    description = "The connection to an upstream server timed out."


class HTTPVersionNotSupported(HTTPException):
    """505."""

    code = 505
    description = "The server does not support the HTTP protocol version used in the request."


default_exceptions: dict[int, type[HTTPException]] = {}
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, HTTPException) and _cls.code is not None:
        default_exceptions.setdefault(_cls.code, _cls)
del _cls


def abort(status: int | Response, *args: Any, **kwargs: Any) -> NoReturn:
    """Stop the request with an HTTP error.

    Args:
        status: A status code (``abort(404)``) or a ready response (``abort(make_response(...))``).
        *args: Passed to the exception class, e.g. a description.
        **kwargs: Passed to the exception class.

    Raises:
        HTTPException: Always; the subclass registered for ``status``.
        LookupError: When no exception class exists for the code.
    """
    from .wrappers import Response

    if isinstance(status, Response):
        raise HTTPException(response=status)
    try:
        cls = default_exceptions[status]
    except KeyError:
        raise LookupError(f"no exception for {status!r}; use a code from 400 to 505 or pass a Response") from None
    raise cls(*args, **kwargs)
