"""Blueprints: routes, prefixes, names, nesting, hooks, error handlers, URL building, subdomains, static files.

Every request-level test runs over WSGI and ASGI (``client``) and, where views are involved, with ``def`` and
``async def`` views (``as_view``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ampulla import Ampulla, abort, g, request, url_for
from ampulla.blueprints import Blueprint
from ampulla.exceptions import HTTPException, NotFound

View = Callable[[Callable[..., Any]], Callable[..., Any]]


# ---------------------------------------------------------------------------------------------- public names


def test_blueprint_is_importable_from_the_package() -> None:
    # ``from flask import Blueprint`` ports as ``from ampulla import Blueprint``.
    import ampulla

    assert ampulla.Blueprint is Blueprint
    assert "Blueprint" in ampulla.__all__


# ---------------------------------------------------------------------------------------------- routes


def test_routes_get_the_constructor_url_prefix_and_dotted_endpoints(app: Ampulla, protocol: str, as_view: View) -> None:
    bp = Blueprint("admin", __name__, url_prefix="/admin")

    @bp.route("/")
    @as_view
    def index() -> str:
        return f"index {request.endpoint} {request.blueprint}"

    @bp.route("/users/<int:user_id>")
    @as_view
    def user(user_id: int) -> str:
        return f"user {user_id + 1}"

    app.register_blueprint(bp)
    client = app.test_client(protocol=protocol)

    assert client.get("/admin/").text == "index admin.index admin"
    assert client.get("/admin/users/41").text == "user 42"
    assert client.get("/users/41").status_code == 404
    assert "admin.index" in app.view_functions
    assert "index" not in app.view_functions


def test_register_blueprint_url_prefix_overrides_the_constructor_one(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("shop", __name__, url_prefix="/constructor")

    @bp.route("/items")
    @as_view
    def items() -> str:
        return "items"

    app.register_blueprint(bp, url_prefix="/registered")

    assert client.get("/registered/items").text == "items"
    assert client.get("/constructor/items").status_code == 404


def test_prefix_joining_does_not_double_or_drop_slashes(app: Ampulla, client: Any) -> None:
    bp = Blueprint("p", __name__)

    @bp.route("/x")
    def x() -> str:
        return "x"

    @bp.route("")
    def root() -> str:
        return "root"

    app.register_blueprint(bp, url_prefix="/pre/")

    assert client.get("/pre/x").text == "x"
    doubled = client.get("/pre//x")  # no rule has a doubled slash: redirected to the merged path, as in Flask
    assert (doubled.status_code, doubled.headers["Location"]) == (308, "http://localhost/pre/x")
    assert client.get("/pre/").text == "root"
    with app.test_request_context():
        assert url_for("p.x") == "/pre/x"


def test_blueprint_without_prefix_routes_at_the_root(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("plain", __name__)

    @bp.get("/hello")
    @as_view
    def hello() -> str:
        return "hi"

    app.register_blueprint(bp)
    assert client.get("/hello").text == "hi"
    assert client.post("/hello").status_code == 405


def test_add_url_rule_and_endpoint_decorator(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("api", __name__, url_prefix="/api")

    def ping() -> str:
        return "pong"

    bp.add_url_rule("/ping", view_func=as_view(ping))
    bp.add_url_rule("/custom", endpoint="named", view_func=as_view(ping), methods=["POST"])
    bp.add_url_rule("/late", endpoint="late")

    @bp.endpoint("late")
    @as_view
    def late_view() -> str:
        return "attached later"

    app.register_blueprint(bp)

    assert client.get("/api/ping").text == "pong"
    assert client.post("/api/custom").text == "pong"
    assert client.get("/api/custom").status_code == 405
    assert client.get("/api/late").text == "attached later"
    assert {"api.ping", "api.named", "api.late"} <= set(app.view_functions)


def test_url_defaults_on_constructor_and_registration(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("pages", __name__, url_defaults={"size": 10})

    @bp.route("/list", defaults={"page": 1})
    @bp.route("/list/<int:page>")
    @as_view
    def listing(page: int, size: int) -> str:
        return f"{page}/{size}"

    app.register_blueprint(bp, url_defaults={"size": 50})

    assert client.get("/list").text == "1/50"
    assert client.get("/list/3").text == "3/50"
    # The rule with the defaults is the canonical URL of page 1 (Werkzeug's redirect_defaults, as in Flask).
    redirected = client.get("/list/1")
    assert (redirected.status_code, redirected.headers["Location"]) == (308, "http://localhost/list")


# ---------------------------------------------------------------------------------------------- names


def test_registering_twice_with_name_gives_two_sets_of_endpoints(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("files", __name__)
    seen: list[str] = []

    @bp.before_request
    def before() -> None:
        seen.append(request.blueprint or "")

    @bp.route("/where")
    @as_view
    def where() -> str:
        return f"{request.blueprint}:{url_for('.where')}"

    app.register_blueprint(bp, url_prefix="/a")
    app.register_blueprint(bp, url_prefix="/b", name="files_b")

    assert client.get("/a/where").text == "files:/a/where"
    assert client.get("/b/where").text == "files_b:/b/where"
    assert seen == ["files", "files_b"]
    with app.test_request_context():
        assert url_for("files.where") == "/a/where"
        assert url_for("files_b.where") == "/b/where"


def test_registering_the_same_blueprint_twice_without_a_new_name_fails(app: Ampulla) -> None:
    bp = Blueprint("dup", __name__)
    app.register_blueprint(bp, url_prefix="/one")
    with pytest.raises(ValueError, match="name="):
        app.register_blueprint(bp, url_prefix="/two")


def test_two_blueprints_with_the_same_name_fail(app: Ampulla) -> None:
    app.register_blueprint(Blueprint("same", __name__))
    with pytest.raises(ValueError, match="already registered"):
        app.register_blueprint(Blueprint("same", __name__), url_prefix="/other")


def test_dot_in_blueprint_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="dot"):
        Blueprint("a.b", __name__)
    with pytest.raises(ValueError):
        Blueprint("", __name__)


def test_dot_in_endpoint_or_view_name_is_rejected() -> None:
    bp = Blueprint("bp", __name__)

    def view() -> str:
        return ""

    with pytest.raises(ValueError, match="dot"):
        bp.add_url_rule("/x", endpoint="a.b", view_func=view)

    view.__name__ = "a.b"
    with pytest.raises(ValueError, match="dot"):
        bp.add_url_rule("/y", view_func=view)


def test_blueprint_cannot_be_registered_on_itself() -> None:
    bp = Blueprint("self", __name__)
    with pytest.raises(ValueError):
        bp.register_blueprint(bp)


@pytest.mark.parametrize(
    "setup",
    [
        lambda bp: bp.route("/late")(lambda: "late"),
        lambda bp: bp.before_request(lambda: None),
        lambda bp: bp.after_request(lambda r: r),
        lambda bp: bp.errorhandler(404)(lambda e: "x"),
        lambda bp: bp.register_blueprint(Blueprint("child", __name__)),
        lambda bp: bp.url_value_preprocessor(lambda e, v: None),
    ],
    ids=["route", "before_request", "after_request", "errorhandler", "register_blueprint", "url_value_preprocessor"],
)
def test_setup_after_registration_raises_assertion_error(app: Ampulla, setup: Callable[[Blueprint], Any]) -> None:
    bp = Blueprint("done", __name__)
    app.register_blueprint(bp)
    with pytest.raises(AssertionError, match="registered"):
        setup(bp)


def test_registering_a_blueprint_after_the_first_request_raises(app: Ampulla, client: Any) -> None:
    @app.route("/")
    def index() -> str:
        return "ok"

    assert client.get("/").status_code == 200
    with pytest.raises(AssertionError, match="register_blueprint"):
        app.register_blueprint(Blueprint("late", __name__))


# ---------------------------------------------------------------------------------------------- nesting


def test_nested_blueprints_join_prefixes_and_dot_endpoints(app: Ampulla, client: Any, as_view: View) -> None:
    parent = Blueprint("parent", __name__, url_prefix="/parent")
    child = Blueprint("child", __name__, url_prefix="/child")
    grandchild = Blueprint("grandchild", __name__)

    @child.route("/view")
    @as_view
    def child_view() -> dict[str, Any]:
        return {
            "endpoint": request.endpoint,
            "blueprint": request.blueprint,
            "blueprints": request.blueprints,
            "local": url_for(".child_view"),
            "absolute": url_for("parent.child.grandchild.gc_view"),
        }

    @grandchild.route("/gc")
    @as_view
    def gc_view() -> dict[str, Any]:
        return {"endpoint": request.endpoint, "blueprints": request.blueprints}

    child.register_blueprint(grandchild, url_prefix="/grand")
    parent.register_blueprint(child)
    app.register_blueprint(parent)

    data = client.get("/parent/child/view").json
    assert data == {
        "endpoint": "parent.child.child_view",
        "blueprint": "parent.child",
        "blueprints": ["parent.child", "parent"],
        "local": "/parent/child/view",
        "absolute": "/parent/child/grand/gc",
    }
    assert client.get("/parent/child/grand/gc").json == {
        "endpoint": "parent.child.grandchild.gc_view",
        "blueprints": ["parent.child.grandchild", "parent.child", "parent"],
    }
    assert set(app.blueprints) >= {"parent", "parent.child", "parent.child.grandchild"}


def test_parent_registered_twice_renames_nested_endpoints(app: Ampulla, client: Any, as_view: View) -> None:
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @child.route("/v")
    @as_view
    def v() -> str:
        return f"{request.endpoint} {url_for('.v')}"

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    app.register_blueprint(parent, name="alt", url_prefix="/alt")

    assert client.get("/p/c/v").text == "parent.child.v /p/c/v"
    assert client.get("/alt/c/v").text == "alt.child.v /alt/c/v"


def test_nested_prefix_given_at_nesting_time(app: Ampulla, client: Any) -> None:
    parent = Blueprint("parent", __name__)
    child = Blueprint("child", __name__)

    @child.route("/leaf")
    def leaf() -> str:
        return "leaf"

    parent.register_blueprint(child, url_prefix="/c/")
    app.register_blueprint(parent, url_prefix="/p")

    assert client.get("/p/c/leaf").text == "leaf"


def test_parent_hooks_and_error_handlers_apply_to_nested_blueprints(app: Ampulla, client: Any, as_view: View) -> None:
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")
    order: list[str] = []

    @app.before_request
    def app_before() -> None:
        order.append("app")

    @parent.before_request
    def parent_before() -> None:
        order.append("parent")

    @child.before_request
    def child_before() -> None:
        order.append("child")

    @parent.errorhandler(ValueError)
    def parent_handles(e: ValueError) -> tuple[str, int]:
        return f"parent handled {e}", 418

    @child.route("/boom")
    @as_view
    def boom() -> str:
        raise ValueError("bad")

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    response = client.get("/p/c/boom")
    assert (response.status_code, response.text) == (418, "parent handled bad")
    # Outermost first, like Flask.
    assert order == ["app", "parent", "child"]


# ---------------------------------------------------------------------------------------------- hooks


def _blueprint_with_hooks(app: Ampulla, as_view: View, log: list[str]) -> Blueprint:
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.before_request
    def bp_before() -> None:
        log.append(f"bp_before {request.path}")

    @bp.after_request
    def bp_after(response: Any) -> Any:
        response.headers["X-Bp"] = "yes"
        return response

    @bp.teardown_request
    def bp_teardown(exc: BaseException | None) -> None:
        log.append(f"bp_teardown {request.path}")

    @bp.route("/in")
    @as_view
    def inside() -> str:
        return "in"

    @app.route("/out")
    @as_view
    def outside() -> str:
        return "out"

    app.register_blueprint(bp)
    return bp


def test_blueprint_hooks_run_only_for_its_routes(app: Ampulla, client: Any, as_view: View) -> None:
    log: list[str] = []
    _blueprint_with_hooks(app, as_view, log)

    inside = client.get("/bp/in")
    assert inside.text == "in"
    assert inside.headers.get("X-Bp") == "yes"
    assert log == ["bp_before /bp/in", "bp_teardown /bp/in"]

    log.clear()
    outside = client.get("/out")
    assert outside.text == "out"
    assert "X-Bp" not in outside.headers
    assert log == []


def test_blueprint_before_request_return_value_short_circuits(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("guard", __name__, url_prefix="/guard")
    called: list[str] = []

    @bp.before_request
    def deny() -> tuple[str, int]:
        return "denied", 403

    @bp.route("/x")
    @as_view
    def x() -> str:
        called.append("view")
        return "x"

    app.register_blueprint(bp)
    response = client.get("/guard/x")
    assert (response.status_code, response.text) == (403, "denied")
    assert called == []


def test_app_wide_hooks_declared_on_a_blueprint(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("ext", __name__, url_prefix="/ext")
    log: list[str] = []

    @bp.before_app_request
    def before_all() -> None:
        log.append(f"before {request.path}")

    @bp.after_app_request
    def after_all(response: Any) -> Any:
        response.headers["X-App-Wide"] = "1"
        return response

    @bp.teardown_app_request
    def teardown_all(exc: BaseException | None) -> None:
        log.append(f"teardown {request.path}")

    @bp.app_errorhandler(LookupError)
    def lookup_error(e: LookupError) -> tuple[str, int]:
        return "lookup handled app-wide", 409

    @bp.route("/x")
    @as_view
    def in_bp() -> str:
        return "bp"

    @app.route("/plain")
    @as_view
    def plain() -> str:
        return "plain"

    @app.route("/missing")
    @as_view
    def missing() -> str:
        raise KeyError("nope")

    app.register_blueprint(bp)

    response = client.get("/plain")
    assert response.text == "plain"
    assert response.headers.get("X-App-Wide") == "1"
    assert log == ["before /plain", "teardown /plain"]
    assert client.get("/ext/x").headers.get("X-App-Wide") == "1"
    response = client.get("/missing")
    assert (response.status_code, response.text) == (409, "lookup handled app-wide")


def test_app_hooks_registered_once_even_when_blueprint_registered_twice(app: Ampulla, client: Any) -> None:
    bp = Blueprint("twice", __name__)
    calls: list[str] = []

    @bp.before_app_request
    def count() -> None:
        calls.append("x")

    @app.route("/")
    def index() -> str:
        return "ok"

    app.register_blueprint(bp, url_prefix="/a")
    app.register_blueprint(bp, url_prefix="/b", name="twice_b")
    client.get("/")
    assert calls == ["x"]


def test_app_url_value_preprocessor_and_app_url_defaults(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("tenancy", __name__)

    @bp.app_url_value_preprocessor
    def pull_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and "tenant" in values:
            g.tenant = values.pop("tenant")

    @bp.app_url_defaults
    def add_tenant(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "home" and "tenant" in g:
            values.setdefault("tenant", g.tenant)

    @app.route("/<tenant>/home")
    @as_view
    def home() -> str:
        return f"{g.tenant} {url_for('home')}"

    app.register_blueprint(bp)
    assert client.get("/acme/home").text == "acme /acme/home"


def test_lang_code_url_value_preprocessor_and_url_defaults(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("frontend", __name__, url_prefix="/<lang_code>")

    @bp.url_defaults
    def add_language_code(endpoint: str, values: dict[str, Any]) -> None:
        values.setdefault("lang_code", g.lang_code)

    @bp.url_value_preprocessor
    def pull_lang_code(endpoint: str | None, values: dict[str, Any] | None) -> None:
        assert values is not None
        g.lang_code = values.pop("lang_code")

    @bp.route("/")
    @as_view
    def index() -> str:
        return f"{g.lang_code} {url_for('.about')} {url_for('.about', lang_code='fr')}"

    @bp.route("/about")
    @as_view
    def about() -> str:
        return f"about {g.lang_code}"

    @app.route("/no-lang")
    @as_view
    def no_lang() -> str:
        return "untouched" if "lang_code" not in g else "leaked"

    app.register_blueprint(bp)

    assert client.get("/de/").text == "de /de/about /fr/about"
    assert client.get("/en/about").text == "about en"
    # The blueprint's preprocessor does not run for app routes.
    assert client.get("/no-lang").text == "untouched"


# ---------------------------------------------------------------------------------------------- errors


def test_blueprint_errorhandler_only_for_its_routes(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.errorhandler(ValueError)
    def bp_value_error(e: ValueError) -> tuple[str, int]:
        return "bp handler", 400

    @bp.route("/fail")
    @as_view
    def bp_fail() -> str:
        raise ValueError("x")

    @app.errorhandler(ValueError)
    def app_value_error(e: ValueError) -> tuple[str, int]:
        return "app handler", 422

    @app.route("/fail")
    @as_view
    def app_fail() -> str:
        raise ValueError("x")

    app.register_blueprint(bp)

    bp_response = client.get("/bp/fail")
    assert (bp_response.status_code, bp_response.text) == (400, "bp handler")
    app_response = client.get("/fail")
    assert (app_response.status_code, app_response.text) == (422, "app handler")


def test_blueprint_falls_back_to_app_error_handler(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @app.errorhandler(403)
    def forbidden(e: HTTPException) -> tuple[str, int]:
        return "app 403", 403

    @bp.route("/x")
    @as_view
    def x() -> str:
        abort(403)

    app.register_blueprint(bp)
    response = client.get("/bp/x")
    assert (response.status_code, response.text) == (403, "app 403")


def test_blueprint_http_error_handler_for_abort_in_its_view(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.errorhandler(404)
    def bp_404(e: HTTPException) -> tuple[str, int]:
        return "bp 404", 404

    @app.errorhandler(404)
    def app_404(e: HTTPException) -> tuple[str, int]:
        return "app 404", 404

    @bp.route("/item")
    @as_view
    def item() -> str:
        abort(404)

    app.register_blueprint(bp)

    assert client.get("/bp/item").text == "bp 404"
    # Routing does not happen per blueprint: an unknown URL under the prefix gets the app's handler.
    assert client.get("/bp/unknown").text == "app 404"
    assert client.get("/elsewhere").text == "app 404"


def test_code_handler_on_app_wins_over_generic_http_handler_on_blueprint(
    app: Ampulla, client: Any, as_view: View
) -> None:
    # Flask's lookup order: blueprint code, app code, blueprint class hierarchy, app class hierarchy.
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.errorhandler(HTTPException)
    def bp_generic(e: HTTPException) -> tuple[str, int]:
        return "bp generic", e.code or 500

    @app.errorhandler(404)
    def app_404(e: HTTPException) -> tuple[str, int]:
        return "app 404", 404

    @bp.route("/gone")
    @as_view
    def gone() -> str:
        abort(404)

    @bp.route("/forbidden")
    @as_view
    def forbidden() -> str:
        abort(403)

    app.register_blueprint(bp)

    assert client.get("/bp/gone").text == "app 404"
    assert client.get("/bp/forbidden").text == "bp generic"


def test_error_handler_matches_exception_subclasses_most_specific_first(
    app: Ampulla, client: Any, as_view: View
) -> None:
    bp = Blueprint("bp", __name__)

    @bp.errorhandler(LookupError)
    def lookup(e: LookupError) -> str:
        return "lookup"

    @bp.errorhandler(KeyError)
    def key(e: KeyError) -> str:
        return "key"

    @bp.route("/key")
    @as_view
    def raise_key() -> str:
        raise KeyError("k")

    @bp.route("/index")
    @as_view
    def raise_index() -> str:
        raise IndexError("i")

    app.register_blueprint(bp)
    assert client.get("/key").text == "key"
    assert client.get("/index").text == "lookup"


def test_app_404_handler_for_unknown_urls(app: Ampulla, client: Any) -> None:
    app.register_blueprint(Blueprint("bp", __name__, url_prefix="/bp"))

    @app.errorhandler(NotFound)
    def not_found(e: NotFound) -> tuple[dict[str, str], int]:
        return {"error": "not found", "path": request.path}, 404

    response = client.get("/bp/nothing/here")
    assert response.status_code == 404
    assert response.json == {"error": "not found", "path": "/bp/nothing/here"}


# ---------------------------------------------------------------------------------------------- URL building


def test_url_for_local_and_qualified_endpoints(app: Ampulla, client: Any, as_view: View) -> None:
    bp = Blueprint("blog", __name__, url_prefix="/blog")

    @bp.route("/post/<int:post_id>")
    @as_view
    def post(post_id: int) -> str:
        return "post"

    @bp.route("/")
    @as_view
    def index() -> dict[str, str]:
        return {
            "local": url_for(".post", post_id=3),
            "qualified": url_for("blog.post", post_id=3, q="x"),
            "app": url_for("home"),
        }

    @app.route("/")
    @as_view
    def home() -> dict[str, str]:
        return {"from_app": url_for("blog.post", post_id=7), "dot_at_app": url_for(".home")}

    app.register_blueprint(bp)

    assert client.get("/blog/").json == {"local": "/blog/post/3", "qualified": "/blog/post/3?q=x", "app": "/"}
    assert client.get("/").json == {"from_app": "/blog/post/7", "dot_at_app": "/"}


def test_url_for_unknown_blueprint_endpoint_raises(app: Ampulla) -> None:
    from ampulla.routing import BuildError

    app.register_blueprint(Blueprint("bp", __name__))
    with app.test_request_context(), pytest.raises(BuildError):
        url_for("bp.nope")


# ---------------------------------------------------------------------------------------------- subdomains


@pytest.fixture
def subdomain_app(tmp_path: Any) -> Ampulla:
    application = Ampulla("subdomain_app", subdomain_matching=True, root_path=str(tmp_path))
    application.testing = True
    application.config["SERVER_NAME"] = "example.test"

    @application.route("/")
    def main_index() -> dict[str, str]:
        return {"where": "main", "api_url": url_for("api.index")}

    api = Blueprint("api", __name__, subdomain="api")

    @api.route("/")
    def index() -> dict[str, str]:
        return {"where": "api", "host": request.host, "self": url_for(".index")}

    user = Blueprint("user", __name__, subdomain="<username>")

    @user.route("/profile")
    def profile(username: str) -> str:
        return f"profile of {username}"

    application.register_blueprint(api)
    application.register_blueprint(user)
    return application


def test_subdomain_blueprint_matches_only_its_subdomain(subdomain_app: Ampulla, protocol: str) -> None:
    client = subdomain_app.test_client(protocol=protocol)

    assert client.get("/").json["where"] == "main"
    api = client.get("/", subdomain="api").json
    assert api["where"] == "api"
    assert api["host"] == "api.example.test"
    assert api["self"] == "/"
    assert client.get("/", subdomain="www").status_code == 404


def test_variable_subdomain_blueprint_passes_the_subdomain_to_the_view(subdomain_app: Ampulla, protocol: str) -> None:
    # Flask supports ``subdomain="<username>"``: the subdomain becomes a view argument.
    client = subdomain_app.test_client(protocol=protocol)
    assert client.get("/profile", subdomain="ann").text == "profile of ann"
    assert client.get("/profile").status_code == 404


def test_url_for_a_subdomain_endpoint_from_another_host_is_external(subdomain_app: Ampulla, protocol: str) -> None:
    client = subdomain_app.test_client(protocol=protocol)
    # A relative "/" would point to the main host's index, not the API's.
    assert client.get("/").json["api_url"] == "http://api.example.test/"
    with subdomain_app.app_context():
        assert url_for("api.index", _external=True) == "http://api.example.test/"


def test_register_blueprint_subdomain_option(tmp_path: Any, protocol: str) -> None:
    application = Ampulla("sub_opt", subdomain_matching=True, root_path=str(tmp_path))
    application.config["SERVER_NAME"] = "example.test"
    bp = Blueprint("admin", __name__)

    @bp.route("/")
    def admin_index() -> str:
        return "admin"

    application.register_blueprint(bp, subdomain="admin")
    client = application.test_client(protocol=protocol)
    assert client.get("/", subdomain="admin").text == "admin"
    assert client.get("/").status_code == 404


# ---------------------------------------------------------------------------------------------- static & templates


def test_blueprint_static_folder_route(tmp_path: Any, protocol: str) -> None:
    (tmp_path / "bp_static").mkdir()
    (tmp_path / "bp_static" / "hello.txt").write_text("hello from bp")
    application = Ampulla("static_app", root_path=str(tmp_path))
    bp = Blueprint("assets", __name__, static_folder="bp_static", url_prefix="/assets", root_path=str(tmp_path))
    application.register_blueprint(bp)
    client = application.test_client(protocol=protocol)

    with application.test_request_context():
        url = url_for("assets.static", filename="hello.txt")
    assert url == "/assets/bp_static/hello.txt"
    response = client.get(url)
    assert response.status_code == 200
    assert response.text == "hello from bp"
    assert client.get("/assets/bp_static/missing.txt").status_code == 404
    assert client.get("/assets/bp_static/../../etc/passwd").status_code == 404


def test_blueprint_static_url_path(tmp_path: Any, protocol: str) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.css").write_text("body{}")
    application = Ampulla("static_url_app", root_path=str(tmp_path))
    bp = Blueprint("theme", __name__, static_folder="files", static_url_path="/theme-static", root_path=str(tmp_path))
    application.register_blueprint(bp, url_prefix="/t")
    client = application.test_client(protocol=protocol)

    response = client.get("/t/theme-static/a.css")
    assert response.status_code == 200
    assert response.text == "body{}"
    assert "text/css" in response.headers["Content-Type"]


def test_blueprint_static_files_take_the_blueprints_max_age(tmp_path: Any, protocol: str) -> None:
    class LongLived(Blueprint):
        def get_send_file_max_age(self, filename: str | None) -> int | None:
            return 100

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.css").write_text("body{}")
    application = Ampulla("max_age_app", root_path=str(tmp_path))
    application.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    application.register_blueprint(LongLived("long", __name__, static_folder="files", root_path=str(tmp_path)))
    application.register_blueprint(
        Blueprint("plain", __name__, static_folder="files", static_url_path="/plain", root_path=str(tmp_path))
    )
    client = application.test_client(protocol=protocol)
    assert client.get("/files/a.css").headers["Cache-Control"] == "public, max-age=100"
    assert client.get("/plain/a.css").headers["Cache-Control"] == "public, max-age=3600"


def test_blueprint_template_folder(tmp_path: Any, protocol: str) -> None:
    pytest.importorskip("jinja2")
    from ampulla.templating import render_template

    (tmp_path / "bp_templates").mkdir()
    (tmp_path / "bp_templates" / "bp_page.html").write_text("bp says {{ word }} at {{ request.path }}")
    application = Ampulla("tpl_app", root_path=str(tmp_path))
    bp = Blueprint("tpl", __name__, template_folder="bp_templates", root_path=str(tmp_path))

    @bp.route("/page")
    def page() -> str:
        return render_template("bp_page.html", word="<hi>")

    application.register_blueprint(bp)
    client = application.test_client(protocol=protocol)
    assert client.get("/page").text == "bp says &lt;hi&gt; at /page"
