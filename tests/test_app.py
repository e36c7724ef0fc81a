"""The application: the seed's routing examples, registration, hooks, responses and errors.

Every test runs over WSGI and ASGI (``client``) and, where views are involved, ``def`` and ``async def``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ampulla import (
    Ampulla,
    Response,
    abort,
    after_this_request,
    g,
    jsonify,
    make_response,
    redirect,
    request,
    url_for,
)
from ampulla.exceptions import BadRequest, HTTPException, NotFound
from ampulla.routing import BaseConverter
from ampulla.testing import AmpullaClient

View = Callable[[Callable[..., Any]], Callable[..., Any]]


# ---------------------------------------------------------------------------------------------- the seed


def test_seed_routing_examples(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @app.route("/api/v1/users/", methods=["GET", "POST", "PUT"])
    @as_view
    def users() -> str:
        return f"users via {request.method}"

    @app.route("/guest/<guest>")
    @as_view
    def hello_guest(guest: str) -> str:
        return "Hello %s as Guest" % guest  # noqa: UP031 - the seed verbatim

    for method in ("GET", "POST", "PUT"):
        response = client.open("/api/v1/users/", method=method)
        assert response.status_code == 200
        assert response.text == f"users via {method}"
    assert client.delete("/api/v1/users/").status_code == 405
    response = client.get("/guest/Ann%20Lee")
    assert response.text == "Hello Ann Lee as Guest"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == str(len(response.data))


def test_add_url_rule_and_endpoint_decorator(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @as_view
    def func_to_exec() -> str:
        return "executed"

    app.add_url_rule("/endpoint", view_func=func_to_exec)
    app.add_url_rule("/named", endpoint="named_endpoint", methods=["GET", "POST"])

    @app.endpoint("named_endpoint")
    @as_view
    def named() -> str:
        return f"named {request.method}"

    assert client.get("/endpoint").text == "executed"
    assert client.post("/named").text == "named POST"
    with app.test_request_context():
        assert url_for("func_to_exec") == "/endpoint"
        assert url_for("named_endpoint") == "/named"


def test_method_shortcuts(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    for name in ("get", "post", "put", "patch", "delete"):
        decorator = getattr(app, name)

        def view(name: str = name) -> str:
            return name

        view.__name__ = f"view_{name}"
        decorator(f"/{name}")(as_view(view))
    for name in ("get", "post", "put", "patch", "delete"):
        assert client.open(f"/{name}", method=name.upper()).text == name
        other = "POST" if name != "post" else "GET"
        assert client.open(f"/{name}", method=other).status_code == 405
    with pytest.raises(TypeError, match="route\\(\\) decorator"):
        app.get("/x", methods=["POST"])


def test_converters_through_the_app(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @app.route("/post/<int:post_id>")
    @as_view
    def show_post(post_id: int) -> dict[str, Any]:
        return {"id": post_id, "type": type(post_id).__name__}

    @app.route("/path/<path:subpath>")
    @as_view
    def show_subpath(subpath: str) -> str:
        return subpath

    assert client.get("/post/42").json == {"id": 42, "type": "int"}
    assert client.get("/post/abc").status_code == 404
    assert client.get("/path/a/b/c").text == "a/b/c"


def test_custom_converter_on_app(app: Ampulla, client: AmpullaClient) -> None:
    class ListConverter(BaseConverter):
        def to_python(self, value: str) -> list[str]:
            return value.split("+")

        def to_url(self, value: Any) -> str:
            return "+".join(value)

    app.url_map.converters["list"] = ListConverter

    @app.route("/tags/<list:tags>")
    def tags(tags: list[str]) -> dict[str, Any]:
        return {"tags": tags, "url": url_for("tags", tags=["x", "y"])}

    assert client.get("/tags/a+b").json == {"tags": ["a", "b"], "url": "/tags/x+y"}


def test_trailing_slash_redirect_keeps_query_string(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/projects/")
    def projects() -> str:
        return "projects " + request.args.get("page", "")

    response = client.get("/projects?page=2")
    assert response.status_code == 308
    assert response.headers["Location"] == "http://localhost/projects/?page=2"
    assert client.get("/projects?page=2", follow_redirects=True).text == "projects 2"


def test_automatic_head_and_options(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/thing", methods=["GET", "PUT"])
    def thing() -> str:
        return "body"

    head = client.head("/thing")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == "4"
    options = client.options("/thing")
    assert options.status_code == 200
    assert options.headers["Allow"] == "GET, HEAD, OPTIONS, PUT"
    not_allowed = client.post("/thing")
    assert not_allowed.status_code == 405
    assert not_allowed.headers["Allow"] == "GET, HEAD, OPTIONS, PUT"


def test_duplicate_endpoint_is_refused_at_registration(app: Ampulla) -> None:
    @app.route("/a")
    def view() -> str:
        return "a"

    with pytest.raises(AssertionError, match="overwriting an existing endpoint function: view"):

        @app.route("/b")
        def view() -> str:
            return "b"


def test_setup_after_first_request_raises_with_advice(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> str:
        return "ok"

    assert client.get("/").status_code == 200
    with pytest.raises(AssertionError, match="can no longer be called on the application"):
        app.add_url_rule("/late", view_func=index, endpoint="late")
    with pytest.raises(AssertionError, match="'before_request'"):
        app.before_request(lambda: None)


def test_methods_as_string_is_a_clear_error(app: Ampulla) -> None:
    with pytest.raises(TypeError, match="methods=\\['POST'\\]"):
        app.add_url_rule("/x", view_func=lambda: "x", endpoint="x", methods="POST")


# ---------------------------------------------------------------------------------------------- hooks


def test_before_and_after_request_order(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    calls: list[str] = []

    @app.before_request
    def first() -> None:
        calls.append("before1")
        g.user = "ann"

    @app.before_request
    def second() -> None:
        calls.append("before2")

    @app.after_request
    def after_a(response: Response) -> Response:
        calls.append("afterA")
        response.headers["X-A"] = "1"
        return response

    @app.after_request
    def after_b(response: Response) -> Response:
        calls.append("afterB")
        return response

    @app.route("/")
    @as_view
    def index() -> str:
        calls.append("view")
        return f"hi {g.user}"

    response = client.get("/")
    assert response.text == "hi ann"
    assert response.headers["X-A"] == "1"
    assert calls == ["before1", "before2", "view", "afterB", "afterA"]


def test_before_request_return_value_short_circuits(app: Ampulla, client: AmpullaClient) -> None:
    @app.before_request
    def guard() -> Any:
        if request.args.get("key") != "s3cret":
            return {"error": "forbidden"}, 403
        return None

    @app.route("/")
    def index() -> str:
        return "secret data"

    denied = client.get("/")
    assert denied.status_code == 403
    assert denied.json == {"error": "forbidden"}
    assert client.get("/?key=s3cret").text == "secret data"


def test_hooks_run_for_404_too(app: Ampulla, client: AmpullaClient) -> None:
    seen: list[Any] = []
    app.before_request(lambda: seen.append(request.endpoint))

    @app.after_request
    def tag(response: Response) -> Response:
        response.headers["X-Tagged"] = "yes"
        return response

    response = client.get("/missing")
    assert response.status_code == 404
    assert response.headers["X-Tagged"] == "yes"
    assert seen == [None]


def test_teardown_request_always_runs_with_the_exception(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False
    app.logger.disabled = True
    seen: list[Any] = []

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        seen.append(type(exc).__name__ if exc else None)

    @app.route("/ok")
    def ok() -> str:
        return "ok"

    @app.route("/boom")
    def boom() -> str:
        raise ZeroDivisionError

    assert client.get("/ok").status_code == 200
    assert client.get("/boom").status_code == 500
    assert seen == [None, "ZeroDivisionError"]


def test_after_this_request(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @app.route("/")
    @as_view
    def index() -> str:
        @after_this_request
        def add_cookie(response: Response) -> Response:
            response.set_cookie("seen", "1")
            return response

        return "ok"

    assert "seen=1" in client.get("/").headers["Set-Cookie"]


def test_url_value_preprocessor_and_url_defaults(app: Ampulla, client: AmpullaClient) -> None:
    @app.url_defaults
    def add_lang(endpoint: str, values: dict[str, Any]) -> None:
        if "lang_code" in values or not hasattr(g, "lang_code"):
            return
        values["lang_code"] = g.lang_code

    @app.url_value_preprocessor
    def pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.lang_code = values.pop("lang_code", None) if values else None

    @app.route("/<lang_code>/about")
    def about() -> str:
        return f"{g.lang_code} {url_for('about')}"

    assert client.get("/de/about").text == "de /de/about"


# ---------------------------------------------------------------------------------------------- responses


def test_return_types(app: Ampulla, client: AmpullaClient, as_view: View, protocol: str) -> None:
    cases: dict[str, Callable[[], Any]] = {
        "str": lambda: "text",
        "bytes": lambda: b"\x00\x01",
        "dict": lambda: {"a": 1},
        "list": lambda: [1, 2],
        "status": lambda: ("created", 201),
        "headers": lambda: ("with header", {"X-H": "v"}),
        "status_headers": lambda: ("both", 202, [("X-H", "w")]),
        "status_line": lambda: ("teapot", "418 I AM A TEAPOT"),
        "response": lambda: Response("plain", 203, mimetype="text/plain"),
        "json_tuple": lambda: ({"ok": False}, 400),
        "make_response": lambda: make_response("made", 206, {"X-M": "1"}),
        "jsonify": lambda: jsonify(a=1, b=[1, 2]),
        "generator": lambda: (part for part in ["a", "b", "c"]),
    }
    for name, func in cases.items():
        view = as_view(lambda func=func: func())
        view.__name__ = name
        app.add_url_rule(f"/{name}", view_func=view)

    assert client.get("/str").data == b"text"
    assert client.get("/bytes").data == b"\x00\x01"
    response = client.get("/dict")
    assert response.json == {"a": 1}
    assert response.mimetype == "application/json"
    assert client.get("/list").json == [1, 2]
    assert client.get("/status").status_code == 201
    assert client.get("/headers").headers["X-H"] == "v"
    response = client.get("/status_headers")
    assert (response.status_code, response.headers["X-H"], response.text) == (202, "w", "both")
    response = client.get("/status_line")
    assert response.status_code == 418
    if protocol == "wsgi":  # ASGI carries no reason phrase
        assert response.status == "418 I AM A TEAPOT"
    response = client.get("/response")
    assert (response.status_code, response.mimetype) == (203, "text/plain")
    response = client.get("/json_tuple")
    assert (response.status_code, response.json) == (400, {"ok": False})
    response = client.get("/make_response")
    assert (response.status_code, response.headers["X-M"], response.text) == (206, "1", "made")
    assert client.get("/jsonify").json == {"a": 1, "b": [1, 2]}
    response = client.get("/generator")
    assert response.data == b"abc"
    assert "Content-Length" not in response.headers


def test_invalid_return_value_is_a_clear_error(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/none")
    def none() -> None:
        return None

    @app.route("/number")
    def number() -> int:
        return 5

    with pytest.raises(TypeError, match="returned None"):
        client.get("/none")
    with pytest.raises(TypeError, match="it was a int"):
        client.get("/number")


def test_redirect_and_url_for(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> Response:
        return redirect(url_for("target", name="a b", q="x&y", _anchor="top"))

    @app.route("/target/<name>")
    def target(name: str) -> str:
        return f"{name}|{request.args['q']}|{url_for('target', name='z', _external=True)}"

    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/target/a%20b?q=x%26y#top"
    assert client.get("/", follow_redirects=True).text == "a b|x&y|http://localhost/target/z"


def test_redirect_encodes_unsafe_characters(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> Response:
        return redirect(request.args["next"])

    response = client.get("/", query_string={"next": '/a"><script>\r\nX-Injected: 1'})
    assert response.status_code == 302
    assert "\n" not in response.headers["Location"]
    assert "X-Injected" not in dict(response.headers)
    assert "<script>" not in response.text


def test_url_for_outside_requests(app: Ampulla) -> None:
    @app.route("/users/<int:id>")
    def user(id: int) -> str:
        return str(id)

    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        url_for("user", id=5)
    app.config["SERVER_NAME"] = "example.com"
    with app.app_context():
        assert url_for("user", id=5, tab="x") == "http://example.com/users/5?tab=x"
        assert url_for("user", id=5, _external=False) == "/users/5"
        assert url_for("user", id=5, _external=True) == "http://example.com/users/5"
        assert url_for("user", id=5, _external=True, _scheme="https") == "https://example.com/users/5"
    with pytest.raises(RuntimeError, match="application context"):
        url_for("user", id=5)


def test_url_for_method_selects_rule(app: Ampulla) -> None:
    app.add_url_rule("/read", endpoint="item", view_func=lambda: "r", methods=["GET"])
    app.add_url_rule("/write", endpoint="item", methods=["POST"])
    with app.test_request_context():
        assert url_for("item") == "/read"
        assert url_for("item", _method="POST") == "/write"


def test_cookies_set_delete_and_sent_back(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/set")
    def set_cookie() -> Response:
        response = make_response("set")
        response.set_cookie("flavour", "oat meal", httponly=True, samesite="Lax", max_age=60)
        return response

    @app.route("/read")
    def read() -> str:
        return request.cookies.get("flavour", "none")

    @app.route("/delete")
    def delete() -> Response:
        response = make_response("deleted")
        response.delete_cookie("flavour")
        return response

    header = client.get("/set").headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Max-Age=60" in header
    assert client.get("/read").text == "oat meal"
    client.get("/delete")
    assert client.get("/read").text == "none"


def test_header_injection_is_refused(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> Response:
        response = make_response("x")
        response.headers["X-Name"] = request.args["v"]
        return response

    with pytest.raises(ValueError, match="newline"):
        client.get("/", query_string={"v": "a\r\nSet-Cookie: evil=1"})
    app.testing = False
    app.logger.disabled = True
    response = client.get("/", query_string={"v": "a\r\nSet-Cookie: evil=1"})
    assert response.status_code == 500
    assert "evil" not in str(response.headers)


# ---------------------------------------------------------------------------------------------- errors


def test_abort_and_error_handlers(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @app.errorhandler(404)
    @as_view
    def not_found(error: HTTPException) -> Any:
        return {"error": "not here", "code": error.code}, 404

    @app.errorhandler(ValueError)
    @as_view
    def value_error(error: ValueError) -> Any:
        return f"bad value: {error}", 422

    @app.route("/item/<int:id>")
    @as_view
    def item(id: int) -> str:
        if id == 0:
            abort(404)
        if id == 1:
            raise ValueError("one")
        if id == 2:
            abort(make_response("custom", 299))
        if id == 3:
            abort(409, "taken")
        return "found"

    assert client.get("/item/0").json == {"error": "not here", "code": 404}
    assert client.get("/nowhere").json == {"error": "not here", "code": 404}
    response = client.get("/item/1")
    assert (response.status_code, response.text) == (422, "bad value: one")
    response = client.get("/item/2")
    assert (response.status_code, response.text) == (299, "custom")
    response = client.get("/item/3")
    assert response.status_code == 409
    assert "taken" in response.text
    assert client.get("/item/4").text == "found"


def test_retry_after_on_429_and_503(app: Ampulla, client: AmpullaClient, as_view: View) -> None:
    @app.route("/<int:case>")
    @as_view
    def limited(case: int) -> str:
        if case == 0:
            abort(429, retry_after=30)
        if case == 1:
            abort(503, "down for maintenance", retry_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
        abort(503)

    response = client.get("/0")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "30")
    response = client.get("/1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert "down for maintenance" in response.text
    response = client.get("/2")
    assert response.status_code == 503
    assert "Retry-After" not in response.headers


def test_generic_http_exception_handler_and_500_handler(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False
    app.logger.disabled = True

    @app.errorhandler(HTTPException)
    def any_http(error: HTTPException) -> Any:
        return {"code": error.code, "name": error.name}, error.code

    @app.errorhandler(500)
    def server_error(error: Any) -> Any:
        return {"code": 500, "original": type(error.original_exception).__name__}, 500

    @app.route("/boom")
    def boom() -> str:
        raise KeyError("x")

    assert client.get("/nope").json == {"code": 404, "name": "Not Found"}
    assert client.post("/boom").json == {"code": 405, "name": "Method Not Allowed"}
    assert client.get("/boom").json == {"code": 500, "original": "KeyError"}


def test_unhandled_exception_gives_500_page_and_app_keeps_serving(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False
    app.logger.disabled = True

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    @app.route("/ok")
    def ok() -> str:
        return "ok"

    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert client.get("/ok").text == "ok"


def test_debug_mode_shows_escaped_traceback(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False
    app.debug = True
    app.logger.disabled = True

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("<b>bad</b>")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "Traceback" in response.text
    assert "&lt;b&gt;bad&lt;/b&gt;" in response.text


def test_exceptions_propagate_in_testing_mode(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/boom")
    def boom() -> str:
        raise LookupError("visible to the test")

    with pytest.raises(LookupError, match="visible to the test"):
        client.get("/boom")


def test_register_error_handler_validates(app: Ampulla) -> None:
    with pytest.raises(ValueError, match="not a recognized HTTP error code"):
        app.register_error_handler(999, lambda e: "x")
    with pytest.raises(TypeError, match="instance"):
        app.register_error_handler(NotFound(), lambda e: "x")  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        abort(299)


def test_missing_form_key_is_400_not_500(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False

    @app.route("/", methods=["POST"])
    def index() -> str:
        return request.form["name"]

    response = client.post("/", data={"other": "x"})
    assert response.status_code == 400
    assert "<title>400 Bad Request</title>" in response.text


# ---------------------------------------------------------------------------------------------- config & app


def test_config_loaders(app: Ampulla, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings:
        DEBUG = False
        FROM_OBJECT = "yes"
        lower_ignored = 1

    app.config.from_object(Settings)
    assert app.config["FROM_OBJECT"] == "yes"
    assert "lower_ignored" not in app.config
    app.config.from_mapping({"A": 1}, B=2, c=3)
    assert (app.config["A"], app.config["B"], "c" in app.config) == (1, 2, False)
    monkeypatch.setenv("AMPULLA_PORT", "8080")
    monkeypatch.setenv("AMPULLA_NAME", "not json")
    monkeypatch.setenv("AMPULLA_DB__HOST", '"db.local"')
    app.config.from_prefixed_env()
    assert app.config["PORT"] == 8080
    assert app.config["NAME"] == "not json"
    assert app.config["DB"] == {"HOST": "db.local"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"FROM_FILE": True, "lower": 1}))
    assert app.config.from_file(str(path), load=json.load)
    assert app.config["FROM_FILE"] is True
    assert app.config.from_file("missing.json", load=json.load, silent=True) is False
    with pytest.raises(OSError, match="Unable to load configuration file"):
        app.config.from_file("missing.json", load=json.load)
    toml = tmp_path / "config.toml"
    toml.write_text('SECRET = "t"\n')
    import tomllib

    app.config.from_file(str(toml), load=tomllib.load, text=False)
    assert app.config["SECRET"] == "t"
    assert app.config.get_namespace("FROM_") == {"object": "yes", "file": True}


def test_defaults_and_instance_path(tmp_path: Any) -> None:
    app = Ampulla("some_app", root_path=str(tmp_path))
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.instance_path == os.path.join(str(tmp_path), "instance")
    assert app.debug is False
    assert app.testing is False
    app.debug = True
    assert app.config["DEBUG"] is True
    with pytest.raises(ValueError, match="absolute"):
        Ampulla("x", instance_path="relative/path")
    assert app.logger.name == "some_app"


def test_app_root_path_from_module() -> None:
    app = Ampulla(__name__)
    assert app.root_path == os.path.dirname(os.path.abspath(__file__))
    assert app.name == __name__


# ---------------------------------------------------------------------------------------------- bad input


def test_invalid_utf8_in_path_is_400(app: Ampulla) -> None:
    @app.route("/<name>")
    def show(name: str) -> str:
        return name

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": b"/\xff\xfe".decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
    }
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["400 Bad Request"]
    assert b"UTF-8" in body


def test_invalid_utf8_and_bad_escapes_in_query(app: Ampulla, client: AmpullaClient) -> None:
    app.testing = False

    @app.route("/")
    def index() -> str:
        return request.args.get("q", "missing")

    assert client.get("/?q=%ff%fe").status_code == 400
    assert client.get("/?q=100%").text == "100%"
    assert client.get("/?q=%zz").text == "%zz"
    assert client.get("/?q=caf%C3%A9").text == "café"


def test_streamed_response_closes_generator(app: Ampulla, client: AmpullaClient) -> None:
    closed: list[bool] = []

    def generate() -> Iterator[str]:
        try:
            yield "one"
            yield "two"
        finally:
            closed.append(True)

    @app.route("/")
    def index() -> Response:
        return Response(generate(), mimetype="text/plain")

    assert client.get("/").data == b"onetwo"
    assert closed == [True]


def test_bad_request_description_is_escaped(app: Ampulla, client: AmpullaClient) -> None:
    @app.route("/")
    def index() -> str:
        raise BadRequest("<script>alert(1)</script>")

    response = client.get("/")
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_session_transaction_reads_and_writes_the_clients_session(app: Ampulla, client: AmpullaClient) -> None:
    from ampulla import session

    @app.route("/whoami")
    def whoami() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session.get("user_id"))

    with client.session_transaction() as sess:
        sess["user_id"] = 42
    assert client.get("/whoami").text == "42"
    with client.session_transaction() as sess:
        assert sess["visits"] == 1
        assert sess["user_id"] == 42


def test_explicit_headers_replace_the_clients_defaults(app: Ampulla, client: AmpullaClient) -> None:
    app.add_url_rule("/ua", "ua", lambda: request.user_agent.string)
    assert client.get("/ua", headers={"User-Agent": "curl/8"}).text == "curl/8"
    assert client.get("/ua", headers=[("X-A", "1"), ("X-A", "2")]).status_code == 200


def test_str_return_uses_the_response_class_default_mimetype(app: Ampulla, client: AmpullaClient) -> None:
    class TextResponse(Response):
        default_mimetype = "text/plain"

    app.response_class = TextResponse
    app.add_url_rule("/", "index", lambda: "plain")
    assert client.get("/").content_type == "text/plain; charset=utf-8"


def test_oversized_body_is_413_for_form_access_whatever_the_type(app: Ampulla, client: AmpullaClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 100
    app.testing = False

    @app.route("/", methods=["POST"])
    def index() -> str:
        return str(len(request.form))

    assert client.post("/", data=b"x" * 200, content_type="application/octet-stream").status_code == 413


# ---------------------------------------------------------------------------------------------- wsgi_app
def _wsgi_get(app: Any, path: str = "/") -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               "REMOTE_ADDR": "127.0.0.1"}  # fmt: skip
    seen: list[Any] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.extend((status, headers))))
    return seen[0], dict(seen[1]), body


class _Tagging:
    """WSGI middleware adding a header and counting calls."""

    def __init__(self, inner: Callable[..., Any], tag: str) -> None:
        self.inner, self.tag, self.calls = inner, tag, 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        return self.inner(environ, lambda s, h, e=None: start_response(s, [*h, ("X-Tag", self.tag)], e))


def _hello_app(cls: type[Ampulla] = Ampulla) -> Ampulla:
    app = cls(__name__)
    app.route("/")(lambda: "hello")
    return app


def test_middleware_set_as_wsgi_app_serves_every_wsgi_call() -> None:
    app = _hello_app()
    assert _wsgi_get(app)[2] == b"hello"
    app.wsgi_app = inner = _Tagging(app.wsgi_app, "inner")  # type: ignore[method-assign]
    app.wsgi_app = outer = _Tagging(app.wsgi_app, "outer")  # type: ignore[method-assign]
    assert app.wsgi_app is outer
    for _ in range(2):
        status, headers, body = _wsgi_get(app)
        assert (status, body, headers["X-Tag"]) == ("200 OK", b"hello", "outer")  # the outer one adds last
    assert (inner.calls, outer.calls) == (2, 2)
    assert app.test_client().get("/").headers.getlist("X-Tag") == ["inner", "outer"]  # the test client too
    del app.wsgi_app  # back to the app's own handler
    assert "X-Tag" not in _wsgi_get(app)[1]
    assert app.wsgi_app.__func__ is Ampulla.wsgi_app  # type: ignore[attr-defined]


def test_a_subclass_overriding_wsgi_app_or_call_is_called() -> None:
    class Wrapped(Ampulla):
        def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            return _Tagging(super().wsgi_app, "subclass")(environ, start_response)

    class Deeper(Wrapped):
        pass

    class Called(Ampulla):
        def __call__(self, environ: Any, start_response: Any, send: Any = None) -> Any:
            return _Tagging(super().__call__, "call")(environ, start_response)

    assert _wsgi_get(_hello_app(Wrapped))[1]["X-Tag"] == "subclass"
    assert _wsgi_get(_hello_app(Deeper))[1]["X-Tag"] == "subclass"
    assert _wsgi_get(_hello_app(Called))[1]["X-Tag"] == "call"
    assert _hello_app(Wrapped).test_client(protocol="asgi").get("/").text == "hello"  # ASGI has no wsgi_app
