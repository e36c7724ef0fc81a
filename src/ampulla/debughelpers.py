"""Errors that explain a mistake in debug mode, where the plain behaviour would hide it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .wrappers import Request

__all__ = ["DebugFilesKeyError", "FormDataRoutingRedirect", "UnexpectedUnicodeError"]


class UnexpectedUnicodeError(AssertionError, UnicodeError):
    """Raised in places where text was expected and bytes were given (or the other way round)."""


class DebugFilesKeyError(KeyError, AssertionError):
    """``request.files[key]`` failed because the form was not sent as ``multipart/form-data``.

    Args:
        request: The request.
        key: The missing key.
    """

    def __init__(self, request: Request, key: str) -> None:
        form_matches = request.form.getlist(key)
        text = (
            f"You tried to access the file {key!r} in the request.files dictionary but it does not exist. The "
            f"mimetype for the request is {request.mimetype!r} instead of 'multipart/form-data' which means that "
            "no file contents were transmitted. To fix this error you should provide enctype=\"multipart/form-data\" "
            "in your form."
        )
        if form_matches:
            names = ", ".join(repr(x) for x in form_matches)
            text += f"\n\nThe browser instead transmitted some file names. This was submitted: {names}"
        self.msg = text

    def __str__(self) -> str:
        return self.msg


class FormDataRoutingRedirect(AssertionError):
    """Raised in debug mode when routing answers a form submission with a redirect that drops its body (301 or
    302): the browser would repeat the request as ``GET`` without the form.

    Args:
        request: The request whose ``routing_exception`` is the redirect.
    """

    def __init__(self, request: Request) -> None:
        error = request.routing_exception
        new_path = str(getattr(error, "new_path", None) or getattr(error, "new_url", ""))
        new_url = new_path
        if "://" not in new_path:
            new_url = f"{request.host_url.rstrip('/')}{request.script_root}{new_path}"
        parts = [
            f"A request was sent to {request.url!r}, but routing issued a redirect to the canonical URL {new_url!r}."
        ]
        if new_url.partition("?")[0] == f"{request.base_url}/":
            parts.append(
                " The URL was defined with a trailing slash, so a request without it is redirected to the URL with"
                " the slash."
            )
        parts.append(
            " Send requests to the canonical URL, or use 307 or 308 for routing redirects: with 301 and 302"
            " browsers drop form data.\n\nThis exception is only raised in debug mode."
        )
        super().__init__("".join(parts))
