"""HTTP errors are Werkzeug's exceptions, as Flask code and extensions expect (WSGI and ASGI, def and async views)."""

from __future__ import annotations

from typing import Any

import pytest
import werkzeug.exceptions
import werkzeug.routing
import werkzeug.wrappers

from ampulla import Ampulla, abort
from ampulla import exceptions as ampulla_exceptions
from ampulla.wrappers import ClientDisconnected

PROTOCOLS = pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
VIEW_KINDS = pytest.mark.parametrize("kind", ["def", "async"])


def _view(kind: str, func: Any) -> Any:
    if kind == "def":
        return func

    async def view(**kwargs: Any) -> Any:
        return func(**kwargs)

    view.__name__ = func.__name__
    return view


class CSRFError(werkzeug.exceptions.BadRequest):
    """What an extension defines (Flask-WTF's CSRFError is a BadRequest)."""

    description = "The CSRF token is missing."


def test_the_classes_are_werkzeugs() -> None:
    assert ampulla_exceptions.HTTPException is werkzeug.exceptions.HTTPException
    assert ampulla_exceptions.NotFound is werkzeug.exceptions.NotFound
    assert ampulla_exceptions.default_exceptions is werkzeug.exceptions.default_exceptions
    assert issubclass(ClientDisconnected, werkzeug.exceptions.ClientDisconnected)
    with pytest.raises(werkzeug.exceptions.NotFound):
        abort(404)
    with pytest.raises(werkzeug.exceptions.MisdirectedRequest):
        abort(421)  # every code Werkzeug knows


@PROTOCOLS
@VIEW_KINDS
def test_werkzeug_exceptions_from_anywhere_answer_their_status(protocol: str, kind: str) -> None:
    app = Ampulla(__name__)

    def extension_error() -> str:
        raise CSRFError()

    def werkzeug_abort() -> str:
        werkzeug.exceptions.abort(410)

    def caught() -> str:
        try:
            abort(404)
        except werkzeug.exceptions.NotFound as e:
            return f"caught {e.code}"

    for func in (extension_error, werkzeug_abort, caught):
        app.add_url_rule(f"/{func.__name__}", view_func=_view(kind, func))
    client = app.test_client(protocol=protocol)
    refused = client.get("/extension_error")
    assert refused.status_code == 400 and "The CSRF token is missing." in refused.text
    assert client.get("/werkzeug_abort").status_code == 410
    assert client.get("/caught").text == "caught 404"


@PROTOCOLS
@VIEW_KINDS
def test_a_handler_for_httpexception_sees_every_http_error(protocol: str, kind: str) -> None:
    """The pattern of Flask's documentation for JSON errors."""
    app = Ampulla(__name__)

    @app.errorhandler(werkzeug.exceptions.HTTPException)
    def json_error(e: werkzeug.exceptions.HTTPException) -> Any:
        return {"code": e.code, "name": e.name, "description": e.description}, e.code

    app.add_url_rule("/teapot", view_func=_view(kind, lambda: abort(418)), endpoint="teapot")
    app.add_url_rule("/csrf", view_func=_view(kind, lambda: (_ for _ in ()).throw(CSRFError())), endpoint="csrf")
    app.add_url_rule("/post-only", view_func=_view(kind, lambda: "posted"), endpoint="post_only", methods=["POST"])
    client = app.test_client(protocol=protocol)
    assert client.get("/teapot").json["code"] == 418
    assert client.get("/csrf").json == {"code": 400, "name": "Bad Request", "description": "The CSRF token is missing."}
    assert client.get("/nowhere").json["code"] == 404
    not_allowed = client.get("/post-only")
    assert not_allowed.json["code"] == 405


@PROTOCOLS
def test_an_exception_carrying_a_werkzeug_response_sends_it(protocol: str) -> None:
    app = Ampulla(__name__)

    @app.route("/")
    def index() -> str:
        response = werkzeug.wrappers.Response("short and stout", status=418, headers={"X-Pot": "tea"})
        raise werkzeug.exceptions.HTTPException(response=response)

    answer = app.test_client(protocol=protocol).get("/")
    assert (answer.status_code, answer.text, answer.headers["X-Pot"]) == (418, "short and stout", "tea")


@PROTOCOLS
def test_errors_keep_their_headers(protocol: str) -> None:
    app = Ampulla(__name__)
    challenge = ampulla_exceptions.Unauthorized(
        www_authenticate=werkzeug.datastructures.WWWAuthenticate("basic", {"realm": "admin"})
    )

    @app.route("/admin")
    def admin() -> str:
        raise challenge

    @app.route("/busy")
    def busy() -> str:
        abort(503, retry_after=30)

    client = app.test_client(protocol=protocol)
    assert client.get("/admin").headers["WWW-Authenticate"] == "Basic realm=admin"
    assert client.get("/busy").headers["Retry-After"] == "30"
    assert client.post("/admin").headers["Allow"] == "GET, HEAD, OPTIONS"


def test_slash_redirects_are_werkzeugs_request_redirect() -> None:
    from ampulla.routing import RequestRedirect

    assert RequestRedirect is werkzeug.routing.RequestRedirect
    app = Ampulla(__name__)
    app.add_url_rule("/dir/", "dir", lambda: "dir")
    response = app.test_client().get("/dir?x=1")
    assert (response.status_code, response.headers["Location"]) == (308, "http://localhost/dir/?x=1")
