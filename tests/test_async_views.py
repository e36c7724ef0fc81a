"""``async def`` views and hooks behave like ``def`` ones over WSGI and ASGI."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from ampulla import Ampulla, Response, after_this_request, g, make_response, request
from ampulla.exceptions import HTTPException, abort

View = Callable[[Callable[..., Any]], Callable[..., Any]]


# ---------------------------------------------------------------------------------------------- hooks


def test_async_before_request_can_set_g_and_short_circuit(app: Ampulla, client: Any, as_view: View) -> None:
    @app.before_request
    async def load() -> Any:
        await asyncio.sleep(0)
        if request.args.get("deny"):
            return "denied by hook", 403
        g.loaded = request.path
        return None

    @app.route("/page")
    @as_view
    def page() -> str:
        return f"view saw {g.loaded}"

    assert client.get("/page").text == "view saw /page"
    response = client.get("/page?deny=1")
    assert (response.status_code, response.text) == (403, "denied by hook")


def test_async_after_request_changes_the_response(app: Ampulla, client: Any, as_view: View) -> None:
    order: list[str] = []

    @app.after_request
    async def first_registered(response: Response) -> Response:
        await asyncio.sleep(0)
        order.append("first")
        response.headers["X-First"] = "1"
        return response

    @app.after_request
    def second_registered(response: Response) -> Response:
        order.append("second")
        return response

    @app.route("/")
    @as_view
    def index() -> str:
        @after_this_request
        async def once(response: Response) -> Response:
            await asyncio.sleep(0)
            response.headers["X-Once"] = "yes"
            return response

        return "ok"

    response = client.get("/")
    assert response.headers["X-First"] == "1"
    assert response.headers["X-Once"] == "yes"
    assert order == ["second", "first"]


def test_async_teardown_request_and_appcontext(app: Ampulla, client: Any, as_view: View) -> None:
    seen: list[str] = []

    @app.teardown_request
    async def td_request(exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        seen.append(f"request {request.path} {exc!r}")

    @app.teardown_appcontext
    async def td_app(exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        seen.append(f"app {g.get('marker')}")

    @app.route("/t")
    @as_view
    def t() -> str:
        g.marker = "m"
        return "ok"

    assert client.get("/t").text == "ok"
    assert seen == ["request /t None", "app m"]


def test_async_errorhandler_for_exception_and_code(app: Ampulla, client: Any, as_view: View) -> None:
    @app.errorhandler(KeyError)
    async def key_error(e: KeyError) -> tuple[dict[str, str], int]:
        await asyncio.sleep(0)
        return {"missing": str(e.args[0]), "path": request.path}, 400

    @app.errorhandler(404)
    async def not_found(e: HTTPException) -> tuple[str, int]:
        await asyncio.sleep(0)
        return f"no {request.path}", 404

    @app.route("/key")
    @as_view
    def key() -> str:
        raise KeyError("id")

    @app.route("/abort")
    @as_view
    def aborted() -> str:
        abort(404)

    response = client.get("/key")
    assert (response.status_code, response.json) == (400, {"missing": "id", "path": "/key"})
    assert client.get("/abort").text == "no /abort"
    assert client.get("/unknown").text == "no /unknown"


def test_async_500_handler_for_unhandled_errors(app: Ampulla, client: Any, as_view: View) -> None:
    app.testing = False

    @app.errorhandler(500)
    async def server_error(e: HTTPException) -> tuple[str, int]:
        await asyncio.sleep(0)
        original = getattr(e, "original_exception", None)
        return f"sorry ({type(original).__name__})", 500

    @app.route("/boom")
    @as_view
    def boom() -> str:
        raise ZeroDivisionError()

    response = client.get("/boom")
    assert (response.status_code, response.text) == (500, "sorry (ZeroDivisionError)")


def test_async_url_value_preprocessor(app: Ampulla, client: Any, as_view: View) -> None:
    @app.url_value_preprocessor
    async def pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
        await asyncio.sleep(0)
        if values is not None and "lang" in values:
            g.lang = values.pop("lang")

    @app.route("/<lang>/hello")
    @as_view
    def hello() -> str:
        return f"hello in {g.lang}"

    assert client.get("/fr/hello").text == "hello in fr"


def test_async_context_processor(app: Ampulla, client: Any, tmp_path: Any) -> None:
    pytest.importorskip("jinja2")
    from ampulla.templating import render_template, render_template_async

    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "hello.html").write_text("{{ greeting }}, {{ user }} at {{ request.path }}")

    @app.context_processor
    async def inject_user() -> dict[str, str]:
        await asyncio.sleep(0)
        return {"user": "ann", "greeting": "overridden"}

    @app.route("/sync")
    def sync_view() -> str:
        return render_template("hello.html", greeting="Hi")

    @app.route("/async")
    async def async_view() -> str:
        return await render_template_async("hello.html", greeting="Hey")

    assert client.get("/sync").text == "Hi, ann at /sync"
    assert client.get("/async").text == "Hey, ann at /async"


def test_async_hooks_mixed_with_sync_hooks_run_in_order(app: Ampulla, client: Any, as_view: View) -> None:
    order: list[str] = []

    @app.before_request
    def one() -> None:
        order.append("before sync")

    @app.before_request
    async def two() -> None:
        order.append("before async")

    @app.after_request
    async def three(response: Response) -> Response:
        order.append("after async")
        return response

    @app.after_request
    def four(response: Response) -> Response:
        order.append("after sync")
        return response

    @app.route("/")
    @as_view
    def index() -> str:
        order.append("view")
        return "ok"

    client.get("/")
    assert order == ["before sync", "before async", "view", "after sync", "after async"]


# ---------------------------------------------------------------------------------------------- the WSGI event loop


def test_wsgi_async_views_share_one_long_lived_loop_per_thread(app: Ampulla) -> None:
    @app.route("/loop")
    async def loop_id() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return {"loop": id(loop), "thread": threading.get_ident()}

    client = app.test_client(protocol="wsgi")
    first = client.get("/loop").json
    second = client.get("/loop").json
    assert first == second

    other: dict[str, Any] = {}

    def in_thread() -> None:
        other.update(client.get("/loop").json)
        _close_thread_loop()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(5)
    assert other["thread"] != first["thread"]
    assert other["loop"] != first["loop"]


def test_wsgi_loop_bound_objects_survive_between_requests(app: Ampulla) -> None:
    # A connection pool made in one request (bound to the loop) is usable in the next.
    state: dict[str, Any] = {}

    @app.route("/use")
    async def use() -> str:
        if "queue" not in state:
            state["queue"] = asyncio.Queue()
            state["lock"] = asyncio.Lock()
        async with state["lock"]:
            await state["queue"].put(request.args["v"])
            await asyncio.sleep(0)
        return str(state["queue"].qsize())

    client = app.test_client(protocol="wsgi")
    assert client.get("/use?v=a").text == "1"
    assert client.get("/use?v=b").text == "2"


def test_per_thread_loop_is_closed_when_thread_ends(app: Ampulla) -> None:
    # Thread-per-request WSGI servers start a thread for each request: its loop must not leak.
    @app.route("/")
    async def index() -> str:
        return "ok"

    client = app.test_client(protocol="wsgi")
    client.get("/")  # the main thread's loop is long-lived and stays open: fine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            thread = threading.Thread(target=client.get, args=("/",))
            thread.start()
            thread.join(5)
        del thread
        gc.collect()
    leaks = [str(w.message) for w in caught if "unclosed" in str(w.message)]
    assert leaks == []


def _close_thread_loop() -> None:
    """Close the loop Ampulla made for this short-lived thread (see the leak test above)."""
    from ampulla.concurrency import _thread_state

    loop = getattr(_thread_state, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


def test_async_view_can_await_and_use_tasks(app: Ampulla, client: Any) -> None:
    @app.route("/work")
    async def work() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        results = await asyncio.gather(*(asyncio.sleep(0.001, result=i) for i in range(3)))
        return {"results": results, "path": request.path}

    assert client.get("/work").json == {"results": [0, 1, 2], "path": "/work"}


# ---------------------------------------------------------------------------------------------- return values


def _return_value_routes(app: Ampulla) -> None:
    @app.route("/str")
    async def r_str() -> str:
        await asyncio.sleep(0)
        return "<b>text</b>"

    @app.route("/bytes")
    async def r_bytes() -> bytes:
        return b"\x00raw"

    @app.route("/dict")
    async def r_dict() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"a": 1, "b": [True, None]}

    @app.route("/list")
    async def r_list() -> list[int]:
        return [1, 2, 3]

    @app.route("/tuple-status")
    async def r_tuple_status() -> tuple[str, int]:
        return "created", 201

    @app.route("/tuple-headers")
    async def r_tuple_headers() -> tuple[str, dict[str, str]]:
        return "with header", {"X-Custom": "h"}

    @app.route("/tuple-all")
    async def r_tuple_all() -> tuple[dict[str, str], int, list[tuple[str, str]]]:
        return {"ok": "no"}, 418, [("X-Teapot", "yes")]

    @app.route("/response")
    async def r_response() -> Response:
        return Response("custom", status=202, mimetype="text/plain", headers={"X-R": "1"})

    @app.route("/make-response")
    async def r_make_response() -> Response:
        response = make_response("made", 203)
        response.headers["X-Made"] = "1"
        return response

    @app.route("/sync-generator")
    async def r_sync_generator() -> Iterator[str]:
        def generate() -> Iterator[str]:
            yield "a"
            yield "b"

        return generate()

    @app.route("/async-generator")
    async def r_async_generator() -> AsyncIterator[str]:
        async def generate() -> AsyncIterator[str]:
            for part in ("x", "y", "z"):
                await asyncio.sleep(0)
                yield part

        return generate()

    @app.route("/async-generator-tuple")
    async def r_async_generator_tuple() -> Any:
        async def generate() -> AsyncIterator[bytes]:
            yield b"event: 1\n\n"

        return generate(), 200, {"Content-Type": "text/event-stream"}


@pytest.mark.parametrize(
    ("path", "status", "body", "content_type", "header"),
    [
        ("/str", 200, b"<b>text</b>", "text/html; charset=utf-8", None),
        ("/bytes", 200, b"\x00raw", "text/html; charset=utf-8", None),
        ("/dict", 200, b'{"a":1,"b":[true,null]}', "application/json", None),
        ("/list", 200, b"[1,2,3]", "application/json", None),
        ("/tuple-status", 201, b"created", "text/html; charset=utf-8", None),
        ("/tuple-headers", 200, b"with header", "text/html; charset=utf-8", ("X-Custom", "h")),
        ("/tuple-all", 418, b'{"ok":"no"}', "application/json", ("X-Teapot", "yes")),
        ("/response", 202, b"custom", "text/plain; charset=utf-8", ("X-R", "1")),
        ("/make-response", 203, b"made", "text/html; charset=utf-8", ("X-Made", "1")),
        ("/sync-generator", 200, b"ab", "text/html; charset=utf-8", None),
        ("/async-generator", 200, b"xyz", "text/html; charset=utf-8", None),
        ("/async-generator-tuple", 200, b"event: 1\n\n", "text/event-stream", None),
    ],
)
def test_async_view_return_values(
    app: Ampulla,
    client: Any,
    path: str,
    status: int,
    body: bytes,
    content_type: str,
    header: tuple[str, str] | None,
) -> None:
    _return_value_routes(app)
    response = client.get(path)
    assert response.status_code == status
    if content_type == "application/json":
        import json

        assert json.loads(response.data) == json.loads(body)
    else:
        assert response.data == body
    assert response.headers["Content-Type"] == content_type
    if header is not None:
        assert response.headers[header[0]] == header[1]


def test_async_view_returning_none_is_a_clear_error(app: Ampulla, client: Any) -> None:
    @app.route("/none")
    async def nothing() -> None:
        await asyncio.sleep(0)

    with pytest.raises(TypeError, match="did not return a valid response"):
        client.get("/none")
