"""Class-based views: View and MethodView, ``as_view``, methods, decorators, instances, async handlers.

Request-level tests run over WSGI and ASGI (``protocol``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ampulla import Ampulla, g, request, url_for
from ampulla.views import MethodView, View

# ---------------------------------------------------------------------------------------------- View


def test_view_dispatch_request_gets_url_variables(app: Ampulla, protocol: str) -> None:
    class Greet(View):
        def dispatch_request(self, name: str) -> str:
            return f"hello {name} via {request.method}"

    app.add_url_rule("/hello/<name>", view_func=Greet.as_view("greet"))
    response = app.test_client(protocol=protocol).get("/hello/ada")
    assert response.text == "hello ada via GET"


def test_as_view_sets_name_class_doc_and_methods(app: Ampulla) -> None:
    class Report(View):
        """Monthly report."""

        methods = ["GET", "POST"]

        def dispatch_request(self) -> str:
            return "report"

    view = Report.as_view("monthly_report")
    assert view.__name__ == "monthly_report"
    assert view.__doc__ == "Monthly report."
    assert view.view_class is Report  # type: ignore[attr-defined]
    assert view.methods == ["GET", "POST"]  # type: ignore[attr-defined]
    app.add_url_rule("/report", view_func=view)
    assert "monthly_report" in app.view_functions
    with app.test_request_context("/"):
        assert url_for("monthly_report") == "/report"


def test_view_methods_restrict_the_rule(app: Ampulla, protocol: str) -> None:
    class Submit(View):
        methods = ["POST"]

        def dispatch_request(self) -> str:
            return "submitted"

    app.add_url_rule("/submit", view_func=Submit.as_view("submit"))
    client = app.test_client(protocol=protocol)
    assert client.post("/submit").text == "submitted"
    assert client.get("/submit").status_code == 405


def test_view_without_dispatch_request_says_so(app: Ampulla, protocol: str) -> None:
    class Empty(View):
        pass

    app.add_url_rule("/", view_func=Empty.as_view("empty"))
    with pytest.raises(NotImplementedError, match="dispatch_request"):
        app.test_client(protocol=protocol).get("/")


def test_class_args_and_kwargs_go_to_the_constructor(app: Ampulla, protocol: str) -> None:
    class Template(View):
        def __init__(self, prefix: str, suffix: str = "") -> None:
            self.prefix = prefix
            self.suffix = suffix

        def dispatch_request(self) -> str:
            return f"{self.prefix}body{self.suffix}"

    app.add_url_rule("/a", view_func=Template.as_view("a", "<", suffix=">"))
    app.add_url_rule("/b", view_func=Template.as_view("b", "["))
    client = app.test_client(protocol=protocol)
    assert client.get("/a").text == "<body>"
    assert client.get("/b").text == "[body"


@pytest.mark.parametrize(("init_every_request", "distinct"), [(True, 3), (False, 1)])
def test_init_every_request(app: Ampulla, protocol: str, init_every_request: bool, distinct: int) -> None:
    created = threading.Event()
    seen: list[View] = []  # keeps the instances alive, so their ids stay distinct

    class Counter(View):
        def __init__(self) -> None:
            created.set()

        def dispatch_request(self) -> str:
            seen.append(self)
            return "ok"

    Counter.init_every_request = init_every_request
    view = Counter.as_view("counter")
    # A shared instance is built by as_view itself; per-request instances only when requests come.
    assert created.is_set() is (not init_every_request)
    app.add_url_rule("/", view_func=view)
    client = app.test_client(protocol=protocol)
    for _ in range(3):
        assert client.get("/").text == "ok"
    assert len(seen) == 3
    assert len({id(instance) for instance in seen}) == distinct


def test_decorators_wrap_the_view_first_innermost(app: Ampulla, protocol: str) -> None:
    def tag(label: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def wrapper(**kwargs: Any) -> Any:
                return f"{label}({func(**kwargs)})"

            return wrapper

        return decorator

    class Page(View):
        decorators = [tag("inner"), tag("outer")]

        def dispatch_request(self) -> str:
            return "page"

    view = Page.as_view("page")
    assert view.view_class is Page  # type: ignore[attr-defined]
    assert view.__name__ == "page"
    app.add_url_rule("/", view_func=view)
    assert app.test_client(protocol=protocol).get("/").text == "outer(inner(page))"


def test_decorator_can_refuse_the_request(app: Ampulla, protocol: str) -> None:
    def login_required(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            if request.args.get("user") is None:
                return "login first", 401
            return func(**kwargs)

        return wrapper

    class Secret(View):
        decorators = [login_required]

        def dispatch_request(self) -> str:
            return "secret"

    app.add_url_rule("/", view_func=Secret.as_view("secret"))
    client = app.test_client(protocol=protocol)
    assert client.get("/").status_code == 401
    assert client.get("/?user=ada").text == "secret"


def test_async_dispatch_request(app: Ampulla, protocol: str) -> None:
    class Slow(View):
        async def dispatch_request(self, n: int) -> str:
            await asyncio.sleep(0)
            return f"slow {n * 2}"

    view = Slow.as_view("slow")
    assert inspect.iscoroutinefunction(view)
    app.add_url_rule("/slow/<int:n>", view_func=view)
    assert app.test_client(protocol=protocol).get("/slow/21").text == "slow 42"


# ---------------------------------------------------------------------------------------------- MethodView


class ItemAPI(MethodView):
    def get(self, item_id: int | None = None) -> str:
        return "list" if item_id is None else f"item {item_id}"

    def post(self) -> tuple[str, int]:
        return f"created {request.form['name']}", 201


class FullItemAPI(ItemAPI):
    def delete(self, item_id: int) -> tuple[str, int]:
        return "", 204

    def put(self, item_id: int) -> str:
        return f"replaced {item_id}"


def test_method_view_collects_methods_from_handlers_and_bases() -> None:
    assert set(ItemAPI.methods or ()) == {"GET", "POST"}
    assert set(FullItemAPI.methods or ()) == {"GET", "POST", "DELETE", "PUT"}


def test_method_view_explicit_methods_win() -> None:
    class ReadOnly(FullItemAPI):
        methods = ["GET"]

    assert ReadOnly.methods == ["GET"]


def test_method_view_dispatches_by_method(app: Ampulla, protocol: str) -> None:
    view = FullItemAPI.as_view("items")
    app.add_url_rule("/items/", view_func=view, methods=["GET", "POST"])
    app.add_url_rule("/items/<int:item_id>", view_func=view, methods=["GET", "PUT", "DELETE"])
    client = app.test_client(protocol=protocol)
    assert client.get("/items/").text == "list"
    created = client.post("/items/", data={"name": "pen"})
    assert (created.status_code, created.text) == (201, "created pen")
    assert client.get("/items/7").text == "item 7"
    assert client.put("/items/7").text == "replaced 7"
    assert client.delete("/items/7").status_code == 204
    assert client.patch("/items/7").status_code == 405
    assert client.delete("/items/").status_code == 405


def test_method_view_undefined_method_is_405_with_allow(app: Ampulla, protocol: str) -> None:
    app.add_url_rule("/items/", view_func=ItemAPI.as_view("items"))
    response = app.test_client(protocol=protocol).delete("/items/")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed


def test_head_falls_back_to_get(app: Ampulla, protocol: str) -> None:
    calls: list[str] = []

    class Page(MethodView):
        def get(self) -> str:
            calls.append(request.method)
            return "body"

    app.add_url_rule("/", view_func=Page.as_view("page"))
    response = app.test_client(protocol=protocol).head("/")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == "4"
    assert calls == ["HEAD"]


def test_automatic_options(app: Ampulla, protocol: str) -> None:
    app.add_url_rule("/items/", view_func=ItemAPI.as_view("items"))
    response = app.test_client(protocol=protocol).options("/items/")
    assert response.status_code == 200
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "POST", "OPTIONS"}


def test_options_handler_replaces_automatic_options(app: Ampulla, protocol: str) -> None:
    class Custom(MethodView):
        def get(self) -> str:
            return "get"

        def options(self) -> tuple[str, int, dict[str, str]]:
            return "", 204, {"Allow": "GET, OPTIONS", "X-Custom": "yes"}

    app.add_url_rule("/", view_func=Custom.as_view("custom"))
    response = app.test_client(protocol=protocol).options("/")
    assert response.status_code == 204
    assert response.headers["X-Custom"] == "yes"


def test_provide_automatic_options_false(app: Ampulla, protocol: str) -> None:
    class NoOptions(MethodView):
        provide_automatic_options = False

        def get(self) -> str:
            return "get"

    view = NoOptions.as_view("no_options")
    assert view.provide_automatic_options is False  # type: ignore[attr-defined]
    app.add_url_rule("/", view_func=view)
    assert app.test_client(protocol=protocol).options("/").status_code == 405


def test_async_handlers(app: Ampulla, protocol: str) -> None:
    class AsyncAPI(MethodView):
        async def get(self, n: int) -> str:
            await asyncio.sleep(0)
            g.seen = n
            return f"get {n} {g.seen}"

        async def post(self, n: int) -> str:
            await asyncio.sleep(0)
            return f"post {n} {request.form['x']}"

    view = AsyncAPI.as_view("async_api")
    assert inspect.iscoroutinefunction(view)  # awaited on the app's loop, not run in a thread
    app.add_url_rule("/<int:n>", view_func=view)
    client = app.test_client(protocol=protocol)
    assert client.get("/3").text == "get 3 3"
    assert client.post("/4", data={"x": "y"}).text == "post 4 y"
    assert client.head("/3").status_code == 200


def test_mixed_sync_and_async_handlers(app: Ampulla, protocol: str) -> None:
    class Mixed(MethodView):
        def get(self) -> str:
            return "sync get"

        async def post(self) -> str:
            await asyncio.sleep(0)
            return f"async post {request.method}"

    view = Mixed.as_view("mixed")
    assert not inspect.iscoroutinefunction(view)
    app.add_url_rule("/", view_func=view)
    client = app.test_client(protocol=protocol)
    assert client.get("/").text == "sync get"
    assert client.post("/").text == "async post POST"


def test_overridden_dispatch_request_can_wrap_handlers(app: Ampulla, protocol: str) -> None:
    class Audited(MethodView):
        def dispatch_request(self, **kwargs: Any) -> Any:
            rv = super().dispatch_request(**kwargs)
            return f"[{rv}]"

        def get(self) -> str:
            return "get"

        async def post(self) -> str:
            return "post"

    app.add_url_rule("/", view_func=Audited.as_view("audited"))
    client = app.test_client(protocol=protocol)
    assert client.get("/").text == "[get]"
    assert client.post("/").text == "[post]"


def test_method_view_with_blueprint_and_url_for(app: Ampulla, protocol: str) -> None:
    blueprints = pytest.importorskip("ampulla.blueprints")
    bp = blueprints.Blueprint("api", __name__, url_prefix="/api")

    class Users(MethodView):
        def get(self, user_id: int) -> str:
            return url_for(".user", user_id=user_id + 1)

    bp.add_url_rule("/users/<int:user_id>", view_func=Users.as_view("user"))
    app.register_blueprint(bp)
    assert app.test_client(protocol=protocol).get("/api/users/1").text == "/api/users/2"


def test_view_classes_are_importable_from_the_package() -> None:
    # ``from flask.views import MethodView`` ports as ``from ampulla import MethodView``.
    import ampulla

    assert ampulla.View is View
    assert ampulla.MethodView is MethodView
    assert {"View", "MethodView"} <= set(ampulla.__all__)
