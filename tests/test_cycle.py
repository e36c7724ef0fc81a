"""The request cycle as Flask code sees it: the same over WSGI and ASGI, with def and async views and hooks.

Every test here runs in eight variants (protocol, view kind, hook kind): the cycles take different
branches for each (a def view's whole cycle in one thread-pool call under ASGI, async hooks awaited on the
loop, ...), and what an application or extension observes must not change.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from ampulla import Ampulla, abort, after_this_request, g, request
from ampulla.exceptions import HTTPException, NotFound
from ampulla.json import DefaultJSONProvider
from ampulla.wrappers import Response


class Variant:
    def __init__(self, protocol: str, view: str, hook: str) -> None:
        self.protocol = protocol
        self.view = view
        self.hook = hook

    def view_func(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as a def view or as an async def view."""
        if self.view == "def":
            return func

        @functools.wraps(func)
        async def view(**kwargs: Any) -> Any:
            return func(**kwargs)

        return view

    def hook_func(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as a def hook or as an async def hook."""
        if self.hook == "def":
            return func

        @functools.wraps(func)
        async def hook(*args: Any) -> Any:
            return func(*args)

        return hook

    def __repr__(self) -> str:
        return f"{self.protocol}-{self.view}-view-{self.hook}-hooks"


@pytest.fixture(
    params=[(p, v, h) for p in ("wsgi", "asgi") for v in ("def", "async") for h in ("def", "async")],
    ids=lambda t: "-".join(t),
)
def variant(request: pytest.FixtureRequest) -> Variant:
    return Variant(*request.param)


def _client(app: Ampulla, variant: Variant) -> Any:
    return app.test_client(protocol=variant.protocol)


def test_hooks_run_in_flasks_order(variant: Variant) -> None:
    app = Ampulla(__name__)
    calls: list[str] = []
    hook = variant.hook_func

    @app.url_value_preprocessor
    @hook
    def preprocess(endpoint: str | None, values: dict[str, Any] | None) -> None:
        calls.append(f"preprocess {endpoint} {values}")
        if values is not None:
            values["name"] = values["name"].upper()

    @app.before_request
    @hook
    def first() -> None:
        calls.append("before 1")

    @app.before_request
    @hook
    def second() -> None:
        calls.append("before 2")

    @app.after_request
    @hook
    def after_1(response: Response) -> Response:
        calls.append("after 1")
        return response

    @app.after_request
    @hook
    def after_2(response: Response) -> Response:
        calls.append("after 2")
        response.headers["X-After"] = "2"
        return response

    @app.teardown_request
    @hook
    def teardown(exc: BaseException | None) -> None:
        calls.append(f"teardown {exc!r}")

    def hello(name: str) -> str:
        calls.append(f"view {name}")

        @after_this_request
        def later(response: Response) -> Response:
            calls.append("after_this_request")
            return response

        return f"hello {name}"

    app.add_url_rule("/hello/<name>", view_func=variant.view_func(hello))
    response = _client(app, variant).get("/hello/ann")
    assert response.text == "hello ANN"
    assert response.headers["X-After"] == "2"
    assert calls == [
        "preprocess hello {'name': 'ann'}", "before 1", "before 2", "view ANN", "after_this_request",
        "after 2", "after 1", "teardown None",
    ]  # fmt: skip


def test_a_before_request_answer_skips_the_view(variant: Variant) -> None:
    app = Ampulla(__name__)

    @app.before_request
    @variant.hook_func
    def gate() -> Any:
        return ("stopped", 403) if request.args.get("stop") else None

    app.add_url_rule("/", "index", variant.view_func(lambda: "view"))
    client = _client(app, variant)
    assert client.get("/").text == "view"
    stopped = client.get("/?stop=1")
    assert (stopped.status_code, stopped.text) == (403, "stopped")


def test_error_handlers_and_500s(variant: Variant) -> None:
    app = Ampulla(__name__)
    app.logger.disabled = True
    torn_down: list[str] = []

    @app.errorhandler(LookupError)
    @variant.hook_func
    def lookup(e: LookupError) -> Any:
        return {"lookup": str(e)}, 409

    @app.errorhandler(404)
    @variant.hook_func
    def not_found(e: HTTPException) -> Any:
        return {"missing": request.path}, 404

    @app.teardown_request
    @variant.hook_func
    def teardown(exc: BaseException | None) -> None:
        torn_down.append(type(exc).__name__)

    def fails(kind: str) -> str:
        if kind == "lookup":
            raise KeyError("k")
        if kind == "abort":
            abort(404)
        raise RuntimeError("boom")

    app.add_url_rule("/fail/<kind>", view_func=variant.view_func(fails))
    client = _client(app, variant)
    assert client.get("/fail/lookup").json == {"lookup": "'k'"}
    assert client.get("/fail/abort").json == {"missing": "/fail/abort"}
    assert client.get("/nowhere").json == {"missing": "/nowhere"}
    try:
        boom = client.get("/fail/boom")
    finally:
        app.logger.disabled = False  # the logger is shared by every app of this module
    assert boom.status_code == 500
    assert torn_down == ["NoneType", "NoneType", "NoneType", "RuntimeError"]


class Overriding(Ampulla):
    """Overrides every Flask 3.1 override point with Flask's signature, recording the calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []

    def full_dispatch_request(self) -> Response:
        self.seen.append(f"full_dispatch_request {request.endpoint}")
        return super().full_dispatch_request()

    def preprocess_request(self) -> Any:
        self.seen.append("preprocess_request")
        return super().preprocess_request()

    def dispatch_request(self) -> Any:
        self.seen.append("dispatch_request")
        rv = super().dispatch_request()
        return rv + "!" if isinstance(rv, str) else rv

    def make_response(self, rv: Any) -> Response:
        response = super().make_response(rv)
        response.headers["X-Made"] = "1"
        return response

    def finalize_request(self, rv: Any, from_error_handler: bool = False) -> Response:
        self.seen.append(f"finalize_request {from_error_handler}")
        return super().finalize_request(rv, from_error_handler)

    def process_response(self, response: Response) -> Response:
        self.seen.append("process_response")
        response = super().process_response(response)
        response.headers["X-Processed"] = "1"
        return response

    def handle_user_exception(self, e: Exception) -> Any:
        self.seen.append(f"handle_user_exception {type(e).__name__}")
        return super().handle_user_exception(e)

    def handle_http_exception(self, e: HTTPException) -> Any:
        self.seen.append(f"handle_http_exception {e.code}")
        return super().handle_http_exception(e)

    def handle_exception(self, e: Exception) -> Response:
        self.seen.append(f"handle_exception {type(e).__name__}")
        return super().handle_exception(e)

    def log_exception(self, exc_info: Any) -> None:
        self.seen.append(f"log_exception {exc_info[0].__name__}")

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        self.seen.append(f"do_teardown_request {type(exc).__name__}")
        super().do_teardown_request(exc)

    def do_teardown_appcontext(self, exc: BaseException | None = None) -> None:
        self.seen.append("do_teardown_appcontext")
        super().do_teardown_appcontext(exc)

    def make_default_options_response(self) -> Response:
        self.seen.append("make_default_options_response")
        response = super().make_default_options_response()
        response.headers["X-Options"] = "1"
        return response


def test_flask_override_points_are_called_at_flasks_moments(variant: Variant) -> None:
    app = Overriding(__name__)

    def hello() -> str:
        return "hello"

    def boom() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/", "hello", variant.view_func(hello))
    app.add_url_rule("/boom", "boom", variant.view_func(boom))
    client = _client(app, variant)

    ok = client.get("/")
    assert ok.text == "hello!"
    assert ok.headers["X-Made"] == "1" and ok.headers["X-Processed"] == "1"
    assert app.seen == [
        "full_dispatch_request hello", "preprocess_request", "dispatch_request", "finalize_request False",
        "process_response", "do_teardown_request NoneType", "do_teardown_appcontext",
    ]  # fmt: skip

    app.seen.clear()
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["X-Processed"] == "1"
    assert app.seen[:5] == [
        "full_dispatch_request None", "preprocess_request", "dispatch_request", "handle_user_exception NotFound",
        "handle_http_exception 404",
    ]  # fmt: skip

    app.seen.clear()
    failed = client.get("/boom")
    assert failed.status_code == 500 and failed.headers["X-Made"] == "1"
    assert app.seen == [
        "full_dispatch_request boom", "preprocess_request", "dispatch_request", "handle_user_exception RuntimeError",
        "handle_exception RuntimeError", "log_exception RuntimeError", "finalize_request True",
        "process_response", "do_teardown_request RuntimeError", "do_teardown_appcontext",
    ]  # fmt: skip

    app.seen.clear()
    options = client.open("/", method="OPTIONS")
    assert options.headers["X-Options"] == "1" and "GET" in options.headers["Allow"]
    assert "make_default_options_response" in app.seen


def test_methods_replaced_on_the_instance_are_called(variant: Variant) -> None:
    """Extensions wrap the app's methods on the instance (flask-restful wraps handle_user_exception)."""
    app = Ampulla(__name__)
    app.add_url_rule("/missing", "missing", variant.view_func(lambda: abort(404)))

    def error_router(original: Callable[[Exception], Any], e: Exception) -> Any:
        if isinstance(e, NotFound):
            return {"message": "routed by the extension"}, 404
        return original(e)

    app.handle_user_exception = functools.partial(error_router, app.handle_user_exception)  # type: ignore[method-assign]
    assert _client(app, variant).get("/missing").json == {"message": "routed by the extension"}


def test_state_on_contexts_responses_and_g(variant: Variant) -> None:
    """Extensions keep their own attributes on the request context, the request and the response."""
    from ampulla.ctx import current_context

    app = Ampulla(__name__)

    @app.before_request
    @variant.hook_func
    def mark() -> None:
        ctx: Any = current_context()
        ctx._extension_state = "ctx"
        request.extension_value = "request"  # type: ignore[attr-defined]
        g.value = "g"

    @app.after_request
    @variant.hook_func
    def read(response: Response) -> Response:
        ctx: Any = current_context()
        response._EXTENSION_MARK = True  # type: ignore[attr-defined]
        assert "_EXTENSION_MARK" in response.__dict__
        response.headers["X-State"] = f"{ctx._extension_state} {request.extension_value} {g.value}"  # type: ignore[attr-defined]
        return response

    app.add_url_rule("/", "index", variant.view_func(lambda: "ok"))
    assert _client(app, variant).get("/").headers["X-State"] == "ctx request g"


def test_registries_are_flasks_defaultdicts() -> None:
    app = Ampulla(__name__)
    for registry in (
        app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs, app.url_value_preprocessors,
        app.url_default_functions, app.template_context_processors,
    ):  # fmt: skip
        assert isinstance(registry, defaultdict)
        assert registry["never-registered"] == []
    assert app.error_handler_spec["never-registered"][None] == {}
    app.after_request_funcs[None].append(lambda response: response)  # what extensions do
    assert len(app.after_request_funcs[None]) == 1


def test_hooks_added_to_the_registries_after_the_first_request_count(variant: Variant) -> None:
    """Flask reads its hook lists on each request; extensions append to them directly, even from a view
    (Flask-Caching's ``response_hit_indication``): the function runs from that very request on."""
    app = Ampulla(__name__)
    calls: list[str] = []

    def mark(response: Response) -> Response:
        response.headers["X-Mark"] = "yes"
        return response

    def view() -> str:
        if request.args.get("add"):
            app.after_request_funcs[None].append(variant.hook_func(mark))
        return "ok"

    app.add_url_rule("/", "index", variant.view_func(view))
    app.add_url_rule("/other", "other", variant.view_func(lambda: "other"))
    client = _client(app, variant)
    assert "X-Mark" not in client.get("/").headers
    assert "X-Mark" not in client.get("/other").headers
    assert client.get("/?add=1").headers["X-Mark"] == "yes"  # added during this request
    assert client.get("/other").headers["X-Mark"] == "yes"
    # Replacing or removing a list counts too, and so do the other hook registries.
    app.after_request_funcs[None] = []
    assert "X-Mark" not in client.get("/other").headers
    app.before_request_funcs.setdefault(None, []).append(variant.hook_func(lambda: calls.append("before")))
    app.teardown_request_funcs[None].insert(0, variant.hook_func(lambda exc: calls.append("teardown")))
    assert client.get("/other").text == "other"
    assert calls == ["before", "teardown"]
    del app.before_request_funcs[None]
    app.teardown_request_funcs[None].clear()
    client.get("/other")
    assert calls == ["before", "teardown"]


def test_a_copy_of_a_hook_registry_is_flasks_plain_defaultdict() -> None:
    app = Ampulla(__name__)
    app.after_request_funcs[None].append(print)
    for copied in (copy.copy(app.after_request_funcs), copy.deepcopy(app.after_request_funcs)):
        assert type(copied) is defaultdict and type(copied[None]) is list and copied[None] == [print]
        copied[None].append(len)
        assert app.after_request_funcs[None] == [print]


def test_each_endpoint_is_compiled_once(variant: Variant) -> None:
    app = Ampulla(__name__)
    app.add_url_rule("/", "index", variant.view_func(lambda: "ok"))
    client = _client(app, variant)
    client.get("/")
    plan = app.endpoint_plan("index")
    client.get("/")
    assert app.endpoint_plan("index") is plan
    assert plan.kind.value == ("thread" if variant.view == "def" else "async")


def test_config_changes_apply_to_the_next_request(variant: Variant) -> None:
    app = Ampulla(__name__)
    app.add_url_rule("/", "index", variant.view_func(lambda: "ok"))
    client = _client(app, variant)
    assert "X-Frame-Options" not in client.get("/").headers
    app.config["SECURITY_HEADERS"] = True
    assert client.get("/").headers["X-Frame-Options"] == "SAMEORIGIN"
    app.config.update(TRUSTED_HOSTS=["example.com"])
    assert client.get("/").status_code == 400


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_teardown_errors_are_logged_and_the_rest_still_run(variant: Variant) -> None:
    app = Ampulla(__name__)
    records = _Records()
    app.logger.addHandler(records)
    ran: list[str] = []

    @app.teardown_request
    @variant.hook_func
    def last(exc: BaseException | None) -> None:
        ran.append("last")

    @app.teardown_request
    @variant.hook_func
    def failing(exc: BaseException | None) -> None:
        ran.append("failing")
        raise ValueError("teardown failed")

    app.add_url_rule("/", "index", variant.view_func(lambda: "ok"))
    try:
        assert _client(app, variant).get("/").text == "ok"
    finally:
        app.logger.removeHandler(records)
    assert ran == ["failing", "last"]
    assert any(message.startswith("Error in teardown function") for message in records.messages)


def test_request_context_from_a_wsgi_environ() -> None:
    """As Flask's: ``app.request_context(environ)`` routes the request (Flask-SocketIO builds one this way)."""
    from ampulla.testing import EnvironBuilder

    app = Ampulla(__name__)

    @app.route("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return str(user_id)

    with app.request_context(EnvironBuilder(app, "/users/3?x=1").get_environ()):
        assert (request.endpoint, request.view_args, request.args["x"]) == ("user", {"user_id": 3}, "1")


def test_routing_errors_reach_handlers_traps_and_overrides(variant: Variant) -> None:
    """404 and 405 from routing: answered plainly, through an error handler (app or blueprint), propagated with
    ``TRAP_HTTP_EXCEPTIONS``, and through overrides of ``raise_routing_exception``/``trap_http_exception``."""
    seen: list[str] = []

    class Tracing(Ampulla):
        def raise_routing_exception(self, request: Any) -> Any:
            seen.append(f"raise {request.routing_exception.code}")
            return super().raise_routing_exception(request)

        def trap_http_exception(self, e: HTTPException) -> bool:
            seen.append(f"trap {e.code}")
            return super().trap_http_exception(e)

    def build(cls: type[Ampulla] = Ampulla) -> Ampulla:
        app = cls(__name__)
        app.add_url_rule("/only-get", "only_get", variant.view_func(lambda: "got"))

        @app.teardown_request
        @variant.hook_func
        def teardown(exc: BaseException | None) -> None:
            seen.append(f"teardown {exc!r}")

        return app

    plain = build()
    client = _client(plain, variant)
    missing = client.get("/missing")
    assert missing.status_code == 404 and b"Not Found" in missing.data
    not_allowed = client.post("/only-get")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert seen == ["teardown None", "teardown None"]

    seen.clear()
    handled = build()
    handled.register_error_handler(404, variant.hook_func(lambda e: ("custom 404", 404)))
    handled.register_error_handler(HTTPException, variant.hook_func(lambda e: (f"any {e.code}", e.code)))
    client = _client(handled, variant)
    assert client.get("/missing").text == "custom 404"
    assert client.post("/only-get").text == "any 405"

    traced = build(Tracing)
    client = _client(traced, variant)
    seen.clear()
    assert client.get("/missing").status_code == 404
    assert seen == ["raise 404", "trap 404", "teardown None"]

    trapping = build()
    trapping.config.update(TRAP_HTTP_EXCEPTIONS=True, TESTING=True)
    with pytest.raises(NotFound):
        _client(trapping, variant).get("/missing")


class _TextMaker(Ampulla):
    def make_response(self, rv: Any) -> Response:
        response = super().make_response(rv.upper() if isinstance(rv, str) else rv)
        response.headers["X-Made-By"] = "subclass"
        return response


@pytest.mark.parametrize("how", ["subclass", "instance"])
def test_an_overridden_make_response_makes_the_answer_of_a_text_view(protocol: str, as_view: Any, how: str) -> None:
    if how == "subclass":
        app: Ampulla = _TextMaker(__name__)
    else:
        app = Ampulla(__name__)
        made = app.make_response

        def make_response(rv: Any) -> Response:
            response = made(rv + "?" if isinstance(rv, str) else rv)
            response.headers["X-Made-By"] = "instance"
            return response

        app.make_response = make_response  # type: ignore[method-assign]

    def hello() -> str:
        return "hello"

    app.route("/")(as_view(hello))
    client = app.test_client(protocol=protocol)
    for _ in range(2):  # the first request and the later ones (the cycles are built at the first)
        response = client.get("/")
        assert response.status_code == 200
        assert response.headers["X-Made-By"] == how
        assert response.get_data(as_text=True) == ("HELLO" if how == "subclass" else "hello?")


class _UpperJSON(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return super().dumps(obj, **kwargs).upper()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().response(*args, **kwargs)
        response.set_data(self.dumps(args[0] if args else kwargs))
        return response


@pytest.mark.parametrize("debug", [False, True])
def test_a_dict_or_list_answer_is_json_in_the_providers_style(protocol: str, as_view: Any, debug: bool) -> None:
    app = Ampulla(__name__)
    app.debug = debug
    app.json.sort_keys = False  # type: ignore[attr-defined]

    def mapping() -> dict[str, Any]:
        return {"b": 1, "a": [1, "é"]}

    def sequence() -> list[Any]:
        return [{"z": None}, 2]

    app.route("/dict")(as_view(mapping))
    app.route("/list")(as_view(sequence))
    client = app.test_client(protocol=protocol)
    for _ in range(2):  # the first request and the later ones
        answer = client.get("/dict")
        assert answer.status_code == 200
        assert answer.mimetype == "application/json"
        expected = '{\n  "b": 1,\n  "a": [\n    1,\n    "\\u00e9"\n  ]\n}\n' if debug else '{"b":1,"a":[1,"\\u00e9"]}\n'
        assert answer.get_data(as_text=True) == expected
        assert answer.headers["Content-Length"] == str(len(expected))
        assert client.get("/list").get_data(as_text=True) == ('[\n  {\n    "z": null\n  },\n  2\n]\n' if debug
                                                             else '[{"z":null},2]\n')
        assert client.head("/dict").data == b""


def test_a_dict_answer_goes_through_a_custom_json_provider(protocol: str, as_view: Any) -> None:
    app = Ampulla(__name__)
    app.json = _UpperJSON(app)

    def mapping() -> dict[str, Any]:
        return {"key": "value"}

    app.route("/")(as_view(mapping))
    client = app.test_client(protocol=protocol)
    for _ in range(2):
        assert client.get("/").get_data(as_text=True) == '{"KEY": "VALUE"}'
