"""The test client's Flask-style entry points: prepared builders and environs, and session transactions."""

from __future__ import annotations

from typing import Any

import pytest

from ampulla import Ampulla, request, session
from ampulla.testing import AmpullaCliRunner, EnvironBuilder


def test_open_a_builder_or_an_environ(app: Ampulla, protocol: str) -> None:
    @app.route("/where")
    def where() -> str:
        return f"{request.remote_addr} {request.url}"

    client = app.test_client(protocol=protocol)
    builder = EnvironBuilder(app, path="/where", base_url="https://example.test")
    try:
        assert client.open(builder).text == "127.0.0.1 https://example.test/where"
        environ = builder.get_environ()
    finally:
        builder.close()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert client.open(environ).text == "10.0.0.2 https://example.test/where"


def test_builder_reads_a_url_and_uses_the_app_json(app: Ampulla) -> None:
    builder = EnvironBuilder(app, "https://example.test/a/b?x=1")
    assert (builder.url_scheme, builder.host, builder.script_root, builder.path) == (
        "https",
        "example.test",
        "",
        "/a/b",
    )
    assert builder.base_url == "https://example.test/"
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    builder = EnvironBuilder(app, json="\u20ac")
    assert builder.input_stream.read().decode() == '"\u20ac"'
    assert builder.input_stream.read().decode() == '"\u20ac"'  # a fresh stream each time


def test_session_transaction_keeps_the_active_request(app: Ampulla, protocol: str) -> None:
    @app.route("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = app.test_client(protocol=protocol)
    with app.test_request_context("/mine"):
        mine = request._get_current_object()  # type: ignore[attr-defined]
        with client.session_transaction() as sess:
            assert request._get_current_object() is mine  # type: ignore[attr-defined]
            sess["n"] = 41
    assert client.get("/count").text == "42"


def test_session_transaction_without_a_secret_key(protocol: str) -> None:
    app = Ampulla(__name__)
    client = app.test_client(protocol=protocol)
    with pytest.raises(RuntimeError, match="Session backend did not open a session"), client.session_transaction():
        pass


def test_cli_runner_class(app: Ampulla) -> None:
    class Runner(AmpullaCliRunner):
        pass

    assert type(app.test_cli_runner()) is AmpullaCliRunner
    app.test_cli_runner_class = Runner
    runner: Any = app.test_cli_runner()
    assert isinstance(runner, Runner)
