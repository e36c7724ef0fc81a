"""Responses that HTTP sends without a body (204 No Content, 304 Not Modified) carry none, whatever the view or
an error handler put in them, over WSGI and ASGI, as Werkzeug sends them: a 304 keeps no entity headers but
``Expires`` and ``Content-Location``, a 204 no ``Content-Length``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from werkzeug.exceptions import HTTPException

from ampulla import Ampulla
from ampulla.testing import AmpullaClient


def test_not_modified_drops_the_body_and_entity_headers(
    app: Ampulla, client: AmpullaClient, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    def view() -> Any:
        headers = {
            "ETag": '"v1"',
            "Expires": "Thu, 01 Jan 2037 00:00:00 GMT",
            "Content-Location": "/doc",
            "Last-Modified": "Thu, 01 Jan 2015 00:00:00 GMT",
            "Content-Language": "en",
            "Cache-Control": "max-age=60",
        }
        return {"not": "sent"}, 304, headers

    app.add_url_rule("/doc", view_func=as_view(view))
    response = client.get("/doc")
    assert response.status_code == 304 and response.get_data() == b""
    assert {name.lower() for name, _ in response.headers.items()} == {
        "etag",
        "expires",
        "content-location",
        "cache-control",
    }


def test_not_modified_from_an_error_handler(app: Ampulla, client: AmpullaClient) -> None:
    """An extension's JSON handler for every HTTP error (flask-smorest's) answering its own 304 exception."""

    class NotModified(HTTPException):
        code = 304

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException) -> Any:
        return {"code": error.code, "status": "Not Modified"}, error.code

    @app.get("/item")
    def item() -> str:
        raise NotModified()

    response = client.get("/item")
    assert response.status_code == 304 and response.get_data() == b""
    assert "Content-Type" not in response.headers and "Content-Length" not in response.headers


def test_no_content_drops_the_body_and_its_length(app: Ampulla, client: AmpullaClient) -> None:
    closed: list[bool] = []

    @app.delete("/item")
    def delete() -> Any:
        return "ignored", 204, {"X-Deleted": "1"}

    class Chunks:
        def __iter__(self) -> Iterator[bytes]:
            return iter([b"never sent"])

        def close(self) -> None:
            closed.append(True)

    @app.delete("/stream")
    def delete_streamed() -> Any:
        return app.response_class(Chunks(), 204)

    response = client.delete("/item")
    assert response.status_code == 204 and response.get_data() == b""
    assert response.headers["X-Deleted"] == "1" and "Content-Length" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")  # not an entity-header strip: only 304's
    streamed = client.delete("/stream")
    assert streamed.status_code == 204 and streamed.get_data() == b""
    assert closed == [True]  # the unread body was closed
