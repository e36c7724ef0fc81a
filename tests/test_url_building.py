"""Flask's routing extras: Werkzeug rule factories, host and subdomain matching, URL building hooks, aborter."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.exceptions import Aborter, HTTPException
from werkzeug.routing import BuildError as WerkzeugBuildError
from werkzeug.routing import Rule as WerkzeugRule
from werkzeug.routing import Submount

from ampulla import Ampulla, abort, redirect, request, url_for
from ampulla.routing import BuildError
from ampulla.views import MethodView


def test_werkzeug_rule_factories_route(app: Ampulla, protocol: str) -> None:
    app.url_map.add(Submount("/api", [WerkzeugRule("/items", endpoint="items"), WerkzeugRule("/", endpoint="root")]))

    @app.endpoint("items")
    def items() -> str:
        return "items"

    @app.endpoint("root")
    def root() -> str:
        return "root"

    client = app.test_client(protocol=protocol)
    assert client.get("/api/items").text == "items"
    assert client.get("/api/").text == "root"
    with app.test_request_context():
        assert url_for("items") == "/api/items"


def test_url_build_error_handlers(app: Ampulla) -> None:
    seen: list[dict[str, Any]] = []

    def handler(error: Exception, endpoint: str, values: dict[str, Any]) -> str | None:
        seen.append(dict(values))
        return "/fallback" if endpoint == "old" else None

    with app.test_request_context():
        with pytest.raises(WerkzeugBuildError):
            url_for("old")
        app.url_build_error_handlers.append(handler)
        assert url_for("old") == "/fallback"
        with pytest.raises(BuildError):
            url_for("other")
    assert seen[0] == {"_anchor": None, "_method": None, "_scheme": None, "_external": False}


def test_url_for_picks_the_rule_using_most_values(app: Ampulla) -> None:
    class Items(MethodView):
        def get(self, id: int | None = None) -> str:
            return "list" if id is None else f"item {id}"

        def post(self) -> str:
            return "created"

    view = Items.as_view("items")
    app.add_url_rule("/items/", methods=["GET"], view_func=view)
    app.add_url_rule("/items/<int:id>", methods=["GET"], view_func=view)
    app.add_url_rule("/items/new", methods=["POST"], view_func=view)
    with app.test_request_context():
        assert url_for("items") == "/items/"
        assert url_for("items", id=3) == "/items/3"
        assert url_for("items", _method="POST") == "/items/new"
    assert app.url_map.is_endpoint_expecting("items", "id")
    assert not app.url_map.is_endpoint_expecting("items", "slug")


def test_url_for_takes_a_value_named_self(app: Ampulla) -> None:
    @app.route("/<self>")
    def index(self: str) -> str:
        return self

    with app.test_request_context():
        assert url_for("index", self="me") == "/me"
        assert app.url_for("index", self="you") == "/you"


def test_scheme_needs_external(app: Ampulla) -> None:
    app.add_url_rule("/", endpoint="index")
    with app.test_request_context():
        assert url_for("index", _scheme="https") == "https://localhost/"
        with pytest.raises(ValueError, match="_external"):
            url_for("index", _scheme="https", _external=False)


def test_host_matching(protocol: str) -> None:
    app = Ampulla(__name__, host_matching=True, static_host="static.test")

    @app.route("/", host="<tenant>.example.test")
    def tenant(tenant: str) -> str:
        return f"tenant {tenant}"

    @app.route("/", host="example.test")
    def home() -> str:
        return "home"

    client = app.test_client(protocol=protocol)
    assert client.get("/", base_url="http://example.test").text == "home"
    assert client.get("/", base_url="http://abc.example.test").text == "tenant abc"
    assert client.get("/", base_url="http://other.test").status_code == 404
    with app.test_request_context(base_url="http://example.test"):
        assert url_for("home") == "/"
        assert url_for("tenant", tenant="x") == "http://x.example.test/"
        assert url_for("static", filename="a.css") == "http://static.test/static/a.css"
    with pytest.raises(AssertionError):
        Ampulla(__name__, static_host="static.test")
    with pytest.raises(AssertionError):
        Ampulla(__name__, host_matching=True)
    Ampulla(__name__, host_matching=True, static_folder=None)


def test_subdomain_matching_refuses_other_hosts(protocol: str) -> None:
    app = Ampulla(__name__, subdomain_matching=True)
    app.config["SERVER_NAME"] = "example.test"

    @app.route("/")
    def index() -> str:
        return "index"

    @app.route("/", subdomain="<user>")
    def user(user: str) -> str:
        return f"user {user}"

    client = app.test_client(protocol=protocol)
    assert client.get("/").text == "index"
    assert client.get("/", base_url="http://ann.example.test").text == "user ann"
    with pytest.warns(UserWarning, match="doesn't match configured server name"):
        assert client.get("/", base_url="http://other.test").text == "user <invalid>"


def test_default_subdomain(protocol: str) -> None:
    app = Ampulla(__name__, subdomain_matching=True)
    app.config["SERVER_NAME"] = "example.test"
    app.url_map.default_subdomain = "www"

    @app.route("/")
    def index() -> str:
        return "www"

    client = app.test_client(protocol=protocol)
    assert client.get("/", base_url="http://www.example.test").text == "www"
    assert client.get("/", base_url="http://example.test").status_code == 404


def test_url_for_outside_a_request_is_external(app: Ampulla) -> None:
    app.add_url_rule("/", endpoint="index")
    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        url_for("index")
    app.config.update(SERVER_NAME="example.test", PREFERRED_URL_SCHEME="https")
    with app.app_context():
        assert url_for("index") == "https://example.test/"


def test_app_aborter_and_redirect(app: Ampulla, protocol: str) -> None:
    class PaymentRequired(HTTPException):
        code = 402
        description = "pay first"

    class MyAborter(Aborter):
        pass

    class MyApp(Ampulla):
        aborter_class = MyAborter

        def redirect(self, location: str, code: int = 302) -> Any:
            response = super().redirect(location, 303)
            response.headers["X-Redirected"] = "yes"
            return response

    custom = MyApp(__name__)
    assert isinstance(custom.aborter, MyAborter)
    custom.aborter.mapping[402] = PaymentRequired

    @custom.route("/pay")
    def pay() -> str:
        abort(402)

    @custom.route("/go")
    def go() -> Any:
        return redirect(f"/pay?from={request.path}")

    client = custom.test_client(protocol=protocol)
    response = client.get("/pay")
    assert response.status_code == 402
    assert "pay first" in response.text
    response = client.get("/go")
    assert response.status_code == 303
    assert response.headers["X-Redirected"] == "yes"
    with pytest.raises(LookupError):
        abort(402)  # no app: Werkzeug's classes only


def test_debug_mode_names_a_redirect_that_drops_a_form(
    app: Ampulla, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ampulla.debughelpers import FormDataRoutingRedirect
    from ampulla.routing import RequestRedirect

    app.debug = True

    @app.route("/user/", methods=["GET", "POST"])
    def user() -> str:
        return request.form["status"]

    client = app.test_client(protocol=protocol)
    response = client.post("/user", data={"status": "ok"})
    assert response.status_code == 308
    monkeypatch.setattr(RequestRedirect, "code", 301)
    if protocol == "wsgi":
        with client, pytest.raises(FormDataRoutingRedirect, match="canonical URL 'http://localhost/user/'"):
            client.post("/user", data={"status": "lost"})
    else:
        with pytest.raises(FormDataRoutingRedirect, match="canonical URL 'http://localhost/user/'"):
            client.post("/user", data={"status": "lost"})
    assert client.get("/user").status_code == 301  # GET keeps nothing to lose
