"""HTTP exceptions: Werkzeug's own classes (:mod:`werkzeug.exceptions`) and ``abort``.

Raising one of them from a view, a hook or a parser ends the request with that status; error handlers
registered for its code or class answer it. They are the same classes Flask and every Flask extension use, so
``except werkzeug.exceptions.NotFound`` catches ``abort(404)``, a handler for ``HTTPException`` sees every HTTP
error, and an extension's own subclass (Flask-WTF's ``CSRFError`` is a ``BadRequest``) answers its status.

:func:`error_response` turns one into an Ampulla :class:`~ampulla.wrappers.Response` (the cycle, the adapters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import (
    BadGateway,
    BadHost,
    BadRequest,
    BadRequestKeyError,
    ClientDisconnected,
    Conflict,
    ExpectationFailed,
    FailedDependency,
    Forbidden,
    GatewayTimeout,
    Gone,
    HTTPException,
    HTTPVersionNotSupported,
    ImATeapot,
    InternalServerError,
    LengthRequired,
    Locked,
    MethodNotAllowed,
    MisdirectedRequest,
    NotAcceptable,
    NotFound,
    NotImplemented,
    PreconditionFailed,
    PreconditionRequired,
    RequestedRangeNotSatisfiable,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    RequestURITooLarge,
    SecurityError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnavailableForLegalReasons,
    UnprocessableEntity,
    UnsupportedMediaType,
    abort,
    default_exceptions,
)

if TYPE_CHECKING:
    from .response import Response

#: The encoded default page of each class, rendered once (``benchmarks/run.py``: notfound).
_DEFAULT_BODIES: dict[type, bytes] = {}


def error_response(error: HTTPException, response_class: type[Response] | None = None) -> Response:
    """The response for an HTTP error: the one it carries, else its page with its status and headers.

    Not Werkzeug's ``HTTPException.get_response``, which builds a Werkzeug response from a WSGI environ: this
    builds Ampulla's, under ASGI too, with each class's default page rendered once.

    A response it carries from elsewhere (a Werkzeug response an extension built) is copied into an Ampulla
    response: status, headers and body.

    Args:
        error: The exception.
        response_class: The class to build (default :class:`~ampulla.response.Response`).
    """
    from .response import Response

    cls = response_class or Response
    carried: Any = error.response
    if carried is not None:
        if isinstance(carried, Response):
            return carried
        headers = list(carried.headers.items())
        return cls(carried.get_data(), carried.status_code, headers)
    kind = type(error)
    code = error.code or 500
    headers = error.get_headers()
    if error.description is kind.description and kind.get_body is HTTPException.get_body:
        # PERF: a class's default page is rendered and encoded once.
        body = _DEFAULT_BODIES.get(kind)
        if body is None:
            body = _DEFAULT_BODIES[kind] = error.get_body().encode()
        response = cls._fast(body, code, headers[0][1])
        if len(headers) > 1:
            response.headers.extend(headers[1:])
        return response
    return cls(error.get_body(), code, headers)


__all__ = [
    "BadGateway",
    "BadHost",
    "BadRequest",
    "BadRequestKeyError",
    "ClientDisconnected",
    "Conflict",
    "ExpectationFailed",
    "FailedDependency",
    "Forbidden",
    "GatewayTimeout",
    "Gone",
    "HTTPException",
    "HTTPVersionNotSupported",
    "ImATeapot",
    "InternalServerError",
    "LengthRequired",
    "Locked",
    "MethodNotAllowed",
    "MisdirectedRequest",
    "NotAcceptable",
    "NotFound",
    "NotImplemented",
    "PreconditionFailed",
    "PreconditionRequired",
    "RequestEntityTooLarge",
    "RequestHeaderFieldsTooLarge",
    "RequestTimeout",
    "RequestURITooLarge",
    "RequestedRangeNotSatisfiable",
    "SecurityError",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnavailableForLegalReasons",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "abort",
    "default_exceptions",
    "error_response",
]
