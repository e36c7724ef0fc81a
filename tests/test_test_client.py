"""The test client: Werkzeug's ``Client`` and ``EnvironBuilder`` API as Flask's ``FlaskClient`` offers it, over WSGI and
ASGI; prepared builders and environs, cookies, session transactions, kept contexts, client and response classes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import werkzeug.test
import werkzeug.wrappers

from ampulla import Ampulla, g, has_request_context, make_response, redirect, request, session, url_for
from ampulla.testing import AmpullaClient, AmpullaCliRunner, EnvironBuilder, TestResponse


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


# ---------------------------------------------------------------------------------------------- Werkzeug's API
def test_client_and_builder_are_werkzeugs(app: Ampulla, protocol: str) -> None:
    client = app.test_client(protocol=protocol)
    assert isinstance(client, werkzeug.test.Client)
    assert issubclass(EnvironBuilder, werkzeug.test.EnvironBuilder)
    assert client.protocol == protocol


def test_open_takes_every_environ_builder_argument(app: Ampulla, protocol: str) -> None:
    @app.route("/echo", methods=["PATCH"])
    def echo() -> dict[str, Any]:
        if "wsgi.errors" in request.environ:  # under ASGI there is no wsgi.errors stream
            request.environ["wsgi.errors"].write("logged")
        return {
            "args": request.args.to_dict(flat=False),
            "form": request.form.to_dict(),
            "file": [request.files["up"].filename, request.files["up"].read().decode()],
            "header": request.headers.get("X-Token"),
            "remote": request.remote_addr,
            "ua": request.user_agent.string,
        }

    errors = io.StringIO()
    response = app.test_client(protocol=protocol).open(
        "/echo",
        method="PATCH",
        query_string={"q": ["1", "2"]},
        headers={"X-Token": "t"},
        data={"name": "Ada", "up": (io.BytesIO(b"file body"), "up.txt")},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
        environ_overrides={"HTTP_USER_AGENT": "overridden"},
        errors_stream=errors,
        buffered=True,
    )
    assert response.json == {
        "args": {"q": ["1", "2"]},
        "form": {"name": "Ada"},
        "file": ["up.txt", "file body"],
        "header": "t",
        "remote": "10.1.2.3",
        "ua": "overridden",
    }
    assert errors.getvalue() == ("logged" if protocol == "wsgi" else "")


def test_json_body_and_response(app: Ampulla, protocol: str) -> None:
    @app.post("/double")
    def double() -> Any:
        return {"n": request.json["n"] * 2}

    @app.get("/text")
    def text() -> str:
        return "plain"

    client = app.test_client(protocol=protocol)
    response = client.post("/double", json={"n": 21})
    assert response.json == {"n": 42}
    assert response.get_json() == {"n": 42}
    assert response.request.method == "POST"
    assert response.request.environ["CONTENT_TYPE"] == "application/json"
    assert isinstance(response.request, werkzeug.wrappers.Request)
    plain = client.get("/text")
    assert plain.text == "plain" and plain.json is None  # Werkzeug's: not JSON is None
    assert plain.get_json(force=True, silent=True) is None


def test_follow_redirects_keeps_the_history(app: Ampulla, protocol: str) -> None:
    @app.route("/start", methods=["POST"])
    def start() -> Any:
        return redirect(url_for("middle"), 307)

    @app.route("/middle", methods=["POST"])
    def middle() -> Any:
        return redirect(url_for("end"))

    @app.route("/end")
    def end() -> str:
        return f"{request.method} at the end"

    @app.route("/away")
    def away() -> Any:
        return redirect("https://elsewhere.test/")

    client = app.test_client(protocol=protocol)
    response = client.post("/start", data={"a": "1"}, follow_redirects=True)
    assert response.text == "GET at the end"
    assert [r.status_code for r in response.history] == [307, 302]
    assert response.request.path == "/end"
    assert client.post("/start").status_code == 307  # not followed unless asked
    with pytest.raises(RuntimeError, match="external redirects"):
        client.get("/away", follow_redirects=True)


def test_cookies_by_key_domain_and_path(app: Ampulla, protocol: str) -> None:
    @app.route("/set")
    def set_cookies() -> Any:
        response = make_response("set")
        response.set_cookie("flavour", "oat")
        response.set_cookie("scoped", "yes", path="/shop")
        return response

    @app.route("/shop/cookies")
    @app.route("/cookies")
    def cookies() -> dict[str, str]:
        return dict(request.cookies)

    client = app.test_client(protocol=protocol)
    client.get("/set")
    cookie = client.get_cookie("flavour")
    assert cookie is not None and (cookie.value, cookie.domain, cookie.path) == ("oat", "localhost", "/")
    assert client.get_cookie("scoped") is None
    assert client.get_cookie("scoped", "localhost", "/shop") is not None
    assert client.get("/cookies").json == {"flavour": "oat"}
    assert client.get("/shop/cookies").json == {"flavour": "oat", "scoped": "yes"}
    client.set_cookie("extra", "1", domain="other.test")  # another host's cookie is not sent here
    client.set_cookie("flavour", "rye")
    assert client.get("/cookies").json == {"flavour": "rye"}
    client.delete_cookie("flavour")
    assert client.get_cookie("flavour") is None
    assert client.get("/cookies").json == {}


def test_session_cookie_with_a_dotted_domain_reaches_subdomains(app: Ampulla, protocol: str) -> None:
    app.config.update(SERVER_NAME="www.example.test", SESSION_COOKIE_DOMAIN=".example.test")

    @app.route("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = app.test_client(protocol=protocol)
    assert [client.get("/count").text for _ in range(2)] == ["1", "2"]
    assert client.get_cookie("session", domain="example.test") is not None


def test_with_client_keeps_the_request_context(app: Ampulla, protocol: str) -> None:
    @app.route("/hello")
    def hello() -> str:
        g.seen = request.args["name"]
        return "hi"

    client = app.test_client(protocol=protocol)
    with client:
        client.get("/hello?name=ada")
        assert request.args["name"] == "ada" and g.seen == "ada"
        client.get("/hello?name=bob")  # the next request replaces the kept context
        assert request.args["name"] == "bob"
    assert not has_request_context()


class UserClient(AmpullaClient):
    """An extension's client (as Flask-Login's ``FlaskLoginClient``): arguments pass through untouched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        user = kwargs.pop("user", None)
        super().__init__(*args, **kwargs)
        if user is not None:
            with self.session_transaction() as sess:
                sess["user"] = user


def test_test_client_class_subclasses_keep_every_argument(app: Ampulla, protocol: str) -> None:
    class JSONResponse(app.response_class):  # type: ignore[name-defined,misc]
        @property
        def shout(self) -> str:
            return str(self.get_data(as_text=True)).upper()

    @app.route("/me")
    def me() -> str:
        return str(session.get("user"))

    app.response_class = JSONResponse
    app.test_client_class = UserClient
    client = app.test_client(user="ada", protocol=protocol)
    assert isinstance(client, UserClient) and client.protocol == protocol
    response = client.get("/me")
    assert response.shout == "ADA"
    assert isinstance(response, JSONResponse) and isinstance(response, TestResponse)


def test_test_request_context_takes_environ_builder_arguments(app: Ampulla) -> None:
    @app.route("/items/<int:item>", methods=["PUT"])
    def item(item: int) -> str:
        return str(item)

    with app.test_request_context(
        "/items/3", method="PUT", query_string={"a": "b"}, json={"x": 1}, headers={"X-A": "1"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"}, subdomain=None, url_scheme="https",
    ):  # fmt: skip
        assert request.endpoint == "item" and request.view_args == {"item": 3}
        assert request.json == {"x": 1} and request.args["a"] == "b" and request.headers["X-A"] == "1"
        assert request.remote_addr == "10.0.0.9" and request.scheme == "https"


def test_an_unbuffered_body_is_read_lazily_and_closed(app: Ampulla) -> None:
    closed: list[str] = []

    @app.route("/stream")
    def stream() -> Any:
        def generate() -> Iterator[str]:
            try:
                yield "a"
                yield "b"
            finally:
                closed.append("generator")

        response = app.response_class(generate())
        response.call_on_close(lambda: closed.append("response"))
        return response

    client = app.test_client()
    read = client.get("/stream")
    assert closed == []  # nothing read yet
    assert read.data == b"ab"
    assert closed == ["generator", "response"]  # closed once read to its end
    closed.clear()
    client.get("/stream")  # dropped unread: closed when the test lets go of it
    assert "response" in closed
    closed.clear()
    assert client.get("/stream", buffered=True).data == b"ab"
    assert closed == ["generator", "response"]
