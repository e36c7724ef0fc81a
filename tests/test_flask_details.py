"""Smaller Flask behaviours: json.dump/load, FLASK_ settings, blueprint endpoints, handler registration errors."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.routing import Rule as WerkzeugRule

from ampulla import Ampulla, Blueprint, Response, json, request


def test_json_dump_and_load_use_the_app_provider(app: Ampulla) -> None:
    out = io.StringIO()
    json.dump({"name": "Ampulla"}, out)  # outside an app: the default rules
    with app.app_context():
        app.json.sort_keys = False  # type: ignore[attr-defined]
        json.dump({"b": 1, "a": 2}, out)
    assert out.getvalue().startswith('{"name": "Ampulla"}')
    assert out.getvalue().endswith('{"b": 1, "a": 2}')
    with app.app_context():
        assert json.load(io.StringIO('{"x": [1, 2]}')) == {"x": [1, 2]}


def test_from_prefixed_env_reads_flask_then_ampulla(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", "flask")
    monkeypatch.setenv("FLASK_POOL", "[1, 2]")
    monkeypatch.setenv("FLASK_DB__HOST", "db.flask")
    monkeypatch.setenv("AMPULLA_SECRET_KEY", "ampulla")
    app = Ampulla(__name__)
    app.config["DB"] = {"HOST": "localhost", "PORT": 5432}
    app.config.from_prefixed_env()
    assert app.config["SECRET_KEY"] == "ampulla"
    assert app.config["POOL"] == [1, 2]
    assert app.config["DB"] == {"HOST": "db.flask", "PORT": 5432}
    app.config.from_prefixed_env("FLASK")
    assert app.config["SECRET_KEY"] == "flask"


def test_blueprint_endpoint_serves_an_app_rule(app: Ampulla, protocol: str) -> None:
    app.url_map.add(WerkzeugRule("/legacy", endpoint="legacy"))
    bp = Blueprint("old", __name__)

    @bp.endpoint("legacy")
    def legacy() -> str:
        return str(request.endpoint)

    app.register_blueprint(bp, url_prefix="/old")
    client = app.test_client(protocol=protocol)
    assert client.get("/legacy").text == "legacy"
    assert client.get("/old/legacy").status_code == 404


def test_error_handler_registration_errors(app: Ampulla) -> None:
    with pytest.raises(TypeError, match=r"ValueError\(\) is an instance, not a class"):
        app.register_error_handler(ValueError(), lambda e: "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'list' is not a subclass of Exception\."):
        app.register_error_handler(list, lambda e: "")  # type: ignore[arg-type]


def test_jsonify_refuses_args_and_kwargs(app: Ampulla) -> None:
    with app.app_context(), pytest.raises(TypeError, match="args or kwargs"):
        json.jsonify(1, a=2)


def test_bound_methods_serve_several_rules_of_one_endpoint(app: Ampulla, protocol: str) -> None:
    class Pages:
        def __init__(self, app: Ampulla) -> None:
            app.add_url_rule("/", "page", self.page)
            app.add_url_rule("/<name>/", "page", self.page)

        def page(self, name: str = "home") -> str:
            return name

    Pages(app)
    client = app.test_client(protocol=protocol)
    assert client.get("/").text == "home"
    assert client.get("/about/").text == "about"


def test_stream_with_context_closes_a_custom_iterator(app: Ampulla, protocol: str) -> None:
    from collections.abc import Iterator

    from ampulla import Response, stream_with_context

    closed: list[bool] = []

    class Chunks:
        def __init__(self, gen: Iterator[str]) -> None:
            self._gen = gen

        def __iter__(self) -> Chunks:
            return self

        def __next__(self) -> str:
            return next(self._gen)

        def close(self) -> None:
            closed.append(True)

    @app.route("/")
    def index() -> Response:
        def generate() -> Iterator[str]:
            yield "Hello "
            yield request.args["name"]

        return Response(stream_with_context(Chunks(generate())))

    assert app.test_client(protocol=protocol).get("/?name=Ann").text == "Hello Ann"
    assert closed == [True]


def test_a_whole_body_sets_content_length_at_once(
    app: Ampulla, protocol: str, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    # As Werkzeug: Response("...") and a view's str/bytes/dict answer carry Content-Length before they are sent,
    # so after_request functions (size logging, compression thresholds) read content_length.
    seen: list[tuple[int | None, str | None]] = []

    @app.after_request
    def record(response: Response) -> Response:
        seen.append((response.content_length, response.headers.get("Content-Length")))
        return response

    app.add_url_rule("/text", "text", as_view(lambda: "héllo"))
    app.add_url_rule("/bytes", "bytes", as_view(lambda: b"abc"))
    app.add_url_rule("/json", "json", as_view(lambda: {"a": 1}))
    app.add_url_rule("/stream", "stream", as_view(lambda: Response(iter([b"a", b"bc"]))))
    client = app.test_client(protocol=protocol)
    assert client.get("/text").headers["Content-Length"] == "6"
    assert client.get("/bytes").headers["Content-Length"] == "3"
    json_response = client.get("/json")
    assert json_response.headers["Content-Length"] == str(len(json_response.data))
    assert client.get("/stream").data == b"abc"
    assert seen[:3] == [(6, "6"), (3, "3"), (len(json_response.data), str(len(json_response.data)))]
    assert seen[3] == (None, None)  # a streamed body has no length until it is sent


def test_set_data_keeps_content_length_true() -> None:
    response = Response("abc")
    assert response.headers["Content-Length"] == "3"
    response.set_data("abcdef")
    assert response.content_length == 6
    response.data = b""
    assert response.headers["Content-Length"] == "0"

    class NoLength(Response):
        automatically_set_content_length = False

    quiet = NoLength("abc")
    assert "Content-Length" not in quiet.headers
    quiet.set_data("abcdef")
    assert "Content-Length" not in quiet.headers
    assert Response().headers.get("Content-Length") is None  # no body given: computed when sent
