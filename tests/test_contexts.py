"""Application and request contexts: the proxies, ``g``, teardown, preservation, threads and tasks."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ampulla import (
    Ampulla,
    after_this_request,
    copy_current_request_context,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
    session,
    url_for,
)
from ampulla.testing import EnvironBuilder, scope_from_environ

View = Callable[[Callable[..., Any]], Callable[..., Any]]


async def _asgi_get(app: Ampulla, path: str) -> tuple[int, bytes]:
    """One GET through the app's ASGI callable with a hand-built scope."""
    environ = EnvironBuilder(app, path).get_environ()
    scope = scope_from_environ(environ)
    sent_request = False
    status = 0
    body: list[bytes] = []
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    try:
        await app(scope, receive, send)
    finally:
        finished.set()
    return status, b"".join(body)


def _close_thread_loop() -> None:
    """Close the per-thread event loop Ampulla made in this (short-lived) thread.

    NOTE: works around the leak checked by test_async_views.py::test_per_thread_loop_is_closed_when_thread_ends;
    without it the loop's ResourceWarning surfaces at a random later point of the run.
    """
    from ampulla.concurrency import _thread_state

    loop = getattr(_thread_state, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


# ---------------------------------------------------------------------------------------------- outside contexts


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (lambda: request.path, "outside of request context"),
        (lambda: request.args, "outside of request context"),
        (lambda: session.get("x"), "outside of request context"),
        (lambda: g.x, "outside of application context"),
        (lambda: current_app.name, "outside of application context"),
        (lambda: current_app.config, "outside of application context"),
    ],
    ids=["request.path", "request.args", "session", "g", "current_app.name", "current_app.config"],
)
def test_proxies_outside_a_context_raise_a_helpful_runtime_error(use: Callable[[], Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message) as info:
        use()
    # The message says what to do, not only what went wrong.
    assert "with app." in str(info.value) or "test_request_context" in str(info.value)


def test_request_outside_request_but_inside_app_context_still_raises(app: Ampulla) -> None:
    with app.app_context():
        assert current_app.name == app.name
        with pytest.raises(RuntimeError, match="request context"):
            request.method  # noqa: B018
        with pytest.raises(RuntimeError, match="request context"):
            session.get("x")


def test_unbound_proxies_are_falsy_and_have_a_repr() -> None:
    assert not request
    assert not g
    assert repr(request) == "<LocalProxy unbound>"  # Werkzeug's and Flask's text


def test_g_repr_names_the_app(app: Ampulla) -> None:
    # ``flask.g`` once ampulla.flask_patch is active in this process (the extension tests turn it on).
    package = "flask" if "ampulla.flask_patch" in sys.modules else "ampulla"
    with app.app_context():
        assert repr(g) == f"<{package}.g of 'test_app'>"


def test_context_proxies_are_context_managers(app: Ampulla) -> None:
    from ampulla.globals import app_ctx, request_ctx

    with app.test_request_context("/x"):
        with app_ctx, request_ctx:
            assert request.path == "/x"
        assert request.path == "/x"


def test_has_request_context_and_has_app_context(app: Ampulla, client: Any, as_view: View) -> None:
    assert (has_app_context(), has_request_context()) == (False, False)
    with app.app_context():
        assert (has_app_context(), has_request_context()) == (True, False)
    with app.test_request_context("/"):
        assert (has_app_context(), has_request_context()) == (True, True)
    assert (has_app_context(), has_request_context()) == (False, False)

    @app.route("/")
    @as_view
    def index() -> dict[str, bool]:
        return {"app": has_app_context(), "request": has_request_context()}

    assert client.get("/").json == {"app": True, "request": True}


# ---------------------------------------------------------------------------------------------- app context and g


def test_app_context_gives_current_app_and_g(app: Ampulla) -> None:
    app.config["SERVER_NAME"] = "example.test"
    with app.app_context() as ctx:
        assert current_app._get_current_object() is app  # type: ignore[attr-defined]
        g.db = "connection"
        assert g.db == "connection"
        assert g.get("db") == "connection"
        assert g.get("missing", 5) == 5
        assert "db" in g
        assert g.pop("db") == "connection"
        assert "db" not in g
        assert g.setdefault("n", 1) == 1
        assert ctx.g is g._get_current_object()  # type: ignore[attr-defined]
        assert url_for("static", filename="x.css") == "http://example.test/static/x.css"


def test_g_is_per_app_context(app: Ampulla) -> None:
    with app.app_context():
        g.value = "first"
    with app.app_context():
        assert "value" not in g
    with app.app_context():
        g.outer = 1
        with app.app_context():
            assert "outer" not in g
            g.inner = 2
        assert g.outer == 1
        assert "inner" not in g


def test_g_is_shared_between_app_context_and_inner_test_request_context(app: Ampulla) -> None:
    with app.app_context():
        g.user = "ann"
        with app.test_request_context("/"):
            assert g.user == "ann"
            g.added_in_request = True
        assert g.added_in_request is True


def test_g_of_another_app_is_not_shared(app: Ampulla, tmp_path: Any) -> None:
    other = Ampulla("other_app", root_path=str(tmp_path))
    with app.app_context():
        g.mine = 1
        with other.test_request_context("/"):
            assert current_app.name == "other_app"
            assert "mine" not in g
        assert current_app.name == app.name


def test_nested_contexts_restore_the_outer_one(app: Ampulla) -> None:
    with app.test_request_context("/outer"):
        with app.test_request_context("/inner"):
            assert request.path == "/inner"
        assert request.path == "/outer"
    assert not has_request_context()


def test_g_is_fresh_for_each_request(app: Ampulla, client: Any, as_view: View) -> None:
    @app.route("/")
    @as_view
    def index() -> str:
        seen = g.get("counter", 0)
        g.counter = seen + 1
        return str(seen)

    assert client.get("/").text == "0"
    assert client.get("/").text == "0"


def test_g_set_in_before_request_is_visible_in_view_and_after_request(app: Ampulla, client: Any, as_view: View) -> None:
    @app.before_request
    def load_user() -> None:
        g.user = request.args.get("user", "anon")

    @app.after_request
    def tag(response: Any) -> Any:
        response.headers["X-User"] = g.user
        return response

    @app.route("/")
    @as_view
    def index() -> str:
        return f"hello {g.user}"

    response = client.get("/?user=bob")
    assert response.text == "hello bob"
    assert response.headers["X-User"] == "bob"


# ---------------------------------------------------------------------------------------------- test_request_context


def test_test_request_context_sets_request_attributes(app: Ampulla) -> None:
    @app.route("/submit/<int:item>", methods=["POST"])
    def submit(item: int) -> str:
        return ""

    with app.test_request_context(
        "/submit/7?x=1&x=2", method="POST", data={"name": "ann", "tags": ["a", "b"]}, headers={"X-Test": "yes"}
    ):
        assert request.method == "POST"
        assert request.path == "/submit/7"
        assert request.args.getlist("x") == ["1", "2"]
        assert request.form["name"] == "ann"
        assert request.form.getlist("tags") == ["a", "b"]
        assert request.headers["X-Test"] == "yes"
        assert request.endpoint == "submit"
        assert request.view_args == {"item": 7}
        assert request.url == "http://localhost/submit/7?x=1&x=2"
        assert url_for("submit", item=8) == "/submit/8"


def test_test_request_context_with_json_and_unknown_url(app: Ampulla) -> None:
    with app.test_request_context("/nowhere", method="PUT", json={"a": [1, 2]}):
        assert request.get_json() == {"a": [1, 2]}
        assert request.is_json
        assert request.endpoint is None
        assert request.routing_exception is not None


def test_session_in_test_request_context(app: Ampulla) -> None:
    with app.test_request_context("/"):
        session["cart"] = [1]
        assert session["cart"] == [1]


# ---------------------------------------------------------------------------------------------- teardown


def test_teardown_request_and_appcontext_get_the_unhandled_exception(app: Ampulla, client: Any, as_view: View) -> None:
    app.testing = False
    seen: list[tuple[str, Any]] = []

    @app.teardown_request
    def td_request(exc: BaseException | None) -> None:
        seen.append(("request", exc))

    @app.teardown_appcontext
    def td_app(exc: BaseException | None) -> None:
        seen.append(("app", exc))

    @app.route("/boom")
    @as_view
    def boom() -> str:
        raise ZeroDivisionError("boom")

    @app.route("/fine")
    @as_view
    def fine() -> str:
        return "fine"

    assert client.get("/boom").status_code == 500
    assert [kind for kind, _ in seen] == ["request", "app"]
    assert all(isinstance(exc, ZeroDivisionError) for _, exc in seen)

    seen.clear()
    assert client.get("/fine").text == "fine"
    assert seen == [("request", None), ("app", None)]


def test_teardown_runs_when_the_exception_propagates_in_testing_mode(app: Ampulla, client: Any, as_view: View) -> None:
    seen: list[Any] = []

    @app.teardown_request
    def td_request(exc: BaseException | None) -> None:
        seen.append(("request", type(exc).__name__))

    @app.teardown_appcontext
    def td_app(exc: BaseException | None) -> None:
        seen.append(("app", type(exc).__name__))

    @app.route("/boom")
    @as_view
    def boom() -> str:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        client.get("/boom")
    assert seen == [("request", "ZeroDivisionError"), ("app", "ZeroDivisionError")]
    assert not has_request_context()


def test_teardown_gets_none_when_an_error_handler_handled_the_exception(
    app: Ampulla, client: Any, as_view: View
) -> None:
    seen: list[Any] = []

    @app.errorhandler(ValueError)
    def handled(e: ValueError) -> tuple[str, int]:
        return "handled", 400

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        seen.append(exc)

    @app.route("/")
    @as_view
    def index() -> str:
        raise ValueError("x")

    assert client.get("/").status_code == 400
    assert seen == [None]


def test_teardown_request_runs_in_reverse_registration_order_with_request_available(
    app: Ampulla, client: Any, as_view: View
) -> None:
    order: list[str] = []

    @app.teardown_request
    def first(exc: BaseException | None) -> None:
        order.append(f"first {request.path}")

    @app.teardown_request
    def second(exc: BaseException | None) -> None:
        order.append(f"second {request.path}")

    @app.route("/t")
    @as_view
    def t() -> str:
        return "ok"

    client.get("/t")
    assert order == ["second /t", "first /t"]


def test_failing_teardown_does_not_stop_the_others(app: Ampulla, protocol: str) -> None:
    app.testing = False
    ran: list[str] = []

    @app.teardown_request
    def ok(exc: BaseException | None) -> None:
        ran.append("ok")

    @app.teardown_request
    def broken(exc: BaseException | None) -> None:
        ran.append("broken")
        raise RuntimeError("teardown failed")

    @app.route("/")
    def index() -> str:
        return "ok"

    assert app.test_client(protocol=protocol).get("/").text == "ok"
    assert ran == ["broken", "ok"]


def test_teardown_appcontext_after_app_context_with_exception(app: Ampulla) -> None:
    seen: list[Any] = []

    @app.teardown_appcontext
    def td(exc: BaseException | None) -> None:
        seen.append((exc, has_app_context(), current_app.name))

    with pytest.raises(KeyError), app.app_context():
        raise KeyError("k")
    assert len(seen) == 1
    assert isinstance(seen[0][0], KeyError)
    assert seen[0][1:] == (True, app.name)

    with app.app_context():
        pass
    assert seen[1] == (None, True, app.name)


def test_teardown_appcontext_runs_once_for_request_inside_app_context(app: Ampulla) -> None:
    seen: list[Any] = []

    @app.teardown_appcontext
    def td(exc: BaseException | None) -> None:
        seen.append(exc)

    with app.app_context():
        with app.test_request_context("/"):
            pass
        # The outer app context still owns g: its teardown has not run yet.
        assert seen == []
    assert seen == [None]


# ---------------------------------------------------------------------------------------------- after_this_request


def test_after_this_request_modifies_only_this_response(app: Ampulla, client: Any, as_view: View) -> None:
    @app.route("/with")
    @as_view
    def with_hook() -> str:
        @after_this_request
        def add_header(response: Any) -> Any:
            response.headers["X-Once"] = request.path
            return response

        return "with"

    @app.route("/without")
    @as_view
    def without() -> str:
        return "without"

    assert client.get("/with").headers.get("X-Once") == "/with"
    assert "X-Once" not in client.get("/without").headers
    assert "X-Once" not in client.get("/without").headers


def test_after_this_request_outside_a_request_raises(app: Ampulla) -> None:
    with pytest.raises(RuntimeError), app.app_context():
        after_this_request(lambda r: r)


# ---------------------------------------------------------------------------------------------- threads


def test_copy_current_request_context_in_a_thread(app: Ampulla, client: Any, as_view: View) -> None:
    results: dict[str, Any] = {}

    @app.route("/work")
    @as_view
    def work() -> str:
        g.job = "job-1"

        @copy_current_request_context
        def in_thread() -> None:
            results["path"] = request.path
            results["arg"] = request.args["q"]
            results["job"] = g.job
            results["app"] = current_app.name

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(5)
        return "started"

    assert client.get("/work?q=1").text == "started"
    assert results == {"path": "/work", "arg": "1", "job": "job-1", "app": app.name}


def test_copy_current_request_context_outside_a_request_raises(app: Ampulla) -> None:
    with pytest.raises(RuntimeError):
        copy_current_request_context(lambda: None)


def test_context_does_not_leak_into_a_plain_thread(app: Ampulla, client: Any) -> None:
    seen: dict[str, bool] = {}

    @app.route("/")
    def index() -> str:
        def target() -> None:
            seen["request"] = has_request_context()

        thread = threading.Thread(target=target)
        thread.start()
        thread.join(5)
        return "ok"

    client.get("/")
    assert seen == {"request": False}


# ---------------------------------------------------------------------------------------------- with client:


def test_with_client_preserves_the_last_request_context(app: Ampulla, client: Any, as_view: View) -> None:
    torn_down: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        torn_down.append(request.path)

    @app.route("/first")
    @app.route("/second")
    @as_view
    def page() -> str:
        g.seen = request.path
        return "ok"

    with client:
        client.get("/first?x=1")
        assert request.path == "/first"
        assert request.args["x"] == "1"
        assert g.seen == "/first"
        assert torn_down == []

        client.get("/second")
        assert request.path == "/second"
        assert g.seen == "/second"
        # The previous preserved context was popped when the next request started.
        assert torn_down == ["/first"]

    assert torn_down == ["/first", "/second"]
    assert not has_request_context()


def test_with_client_preserves_session(app: Ampulla, client: Any) -> None:
    @app.route("/login")
    def login() -> str:
        session["user"] = "ann"
        return "ok"

    with client:
        client.get("/login")
        assert session["user"] == "ann"
    assert not has_request_context()


def test_without_with_block_no_context_remains(app: Ampulla, client: Any) -> None:
    @app.route("/")
    def index() -> str:
        return "ok"

    client.get("/")
    assert not has_request_context()
    assert not has_app_context()


# ---------------------------------------------------------------------------------------------- tasks


def test_contextvars_follow_create_task_in_async_view(app: Ampulla, client: Any) -> None:
    @app.route("/task")
    async def with_task() -> dict[str, Any]:
        g.token = "t-1"

        async def child() -> dict[str, Any]:
            await asyncio.sleep(0)
            return {
                "app": current_app.name,
                "path": request.path,
                "arg": request.args["a"],
                "token": g.token,
                "has_request": has_request_context(),
            }

        return await asyncio.create_task(child())

    assert client.get("/task?a=z").json == {
        "app": app.name,
        "path": "/task",
        "arg": "z",
        "token": "t-1",
        "has_request": True,
    }


def test_gathered_tasks_see_the_request(app: Ampulla, client: Any) -> None:
    @app.route("/gather")
    async def gathered() -> list[str]:
        async def part(i: int) -> str:
            await asyncio.sleep(0.001 * i)
            return f"{i}:{request.args['k']}"

        return list(await asyncio.gather(*(part(i) for i in range(3))))

    assert client.get("/gather?k=v").json == ["0:v", "1:v", "2:v"]


# ---------------------------------------------------------------------------------------------- isolation


def test_concurrent_requests_in_threads_do_not_share_g(app: Ampulla, protocol: str, as_view: View) -> None:
    workers = 5
    barrier = threading.Barrier(workers, timeout=5)

    @app.route("/mine/<int:n>")
    @as_view
    def mine(n: int) -> str:
        g.n = n
        barrier.wait()  # every request has set its g before any reads it
        return f"{n}={g.n}:{request.view_args['n'] if request.view_args else '?'}"

    @app.route("/warm")
    def warm() -> str:
        return "warm"

    app.test_client(protocol=protocol).get("/warm")
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = app.test_client(protocol=protocol).get(f"/mine/{n}").text
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            _close_thread_loop()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert results == {n: f"{n}={n}:{n}" for n in range(workers)}


def test_concurrent_asgi_tasks_do_not_share_g_or_request(app: Ampulla) -> None:
    count = 8
    state: dict[str, Any] = {}

    @app.route("/task/<int:n>")
    async def task_view(n: int) -> str:
        g.n = n
        await state["barrier"].wait()  # all requests are in flight together
        return f"{g.n}:{request.path}"

    async def main() -> list[tuple[int, bytes]]:
        state["barrier"] = asyncio.Barrier(count)
        async with asyncio.timeout(5):
            return await asyncio.gather(*(_asgi_get(app, f"/task/{n}") for n in range(count)))

    results = asyncio.run(main())
    assert results == [(200, f"{n}:/task/{n}".encode()) for n in range(count)]
    assert not has_app_context()


# ---------------------------------------------------------------------------------------------- streamed bodies


def test_stream_with_context_keeps_the_request_until_the_stream_ends(app: Ampulla, client: Any, as_view: View) -> None:
    from ampulla import stream_with_context

    events: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append("teardown")

    @app.route("/stream")
    @as_view
    def stream() -> Any:
        g.prefix = request.args["p"]

        @stream_with_context
        def generate() -> Any:
            for i in range(3):
                events.append(f"chunk {i}")
                yield f"{g.prefix}{request.path}{i};"

        return generate()

    response = client.get("/stream?p=>")
    assert response.text == ">/stream0;>/stream1;>/stream2;"
    assert events == ["chunk 0", "chunk 1", "chunk 2", "teardown"]
    assert not has_request_context()


def test_proxies_forward_every_attribute_as_werkzeug_proxies_do(app: Ampulla, protocol: str) -> None:
    from ampulla import Request
    from ampulla.globals import LocalProxy, request_ctx

    seen: dict[str, Any] = {}

    @app.before_request
    def remember() -> None:
        g.user = "ann"
        request.tag = "t"  # type: ignore[attr-defined]

    @app.route("/p")
    def view() -> str:
        seen["is_request"] = isinstance(request, Request)
        seen["class"] = request.__class__
        seen["proxy"] = isinstance(request, LocalProxy)
        seen["same"] = request._get_current_object() is request_ctx.request  # type: ignore[attr-defined]
        seen["missing"] = hasattr(request, "no_such_attribute"), hasattr(g, "no_such_name")
        seen["g"] = g.user, g.get("user"), "user" in g
        return f"{request.tag} {request.args.get('q')}"  # type: ignore[attr-defined]

    assert app.test_client(protocol=protocol).get("/p?q=1").text == "t 1"
    assert seen == {
        "is_request": True,
        "class": Request,
        "proxy": True,
        "same": True,
        "missing": (False, False),
        "g": ("ann", "ann", True),
    }
    with app.app_context():
        assert not hasattr(g, "user")  # a new app context, a new g
        g.n = 1
        assert g.n == 1 and g._get_current_object().n == 1  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="outside of request context"):
        request.args  # noqa: B018
    with pytest.raises(RuntimeError, match="outside of application context"):
        g.user  # noqa: B018


def _wsgi_upload(app: Ampulla, path: str, body: bytes, content_type: str) -> tuple[str, bytes]:
    """One POST through ``app(environ, start_response)``, as a WSGI server makes it (the adapter's own path)."""
    import io

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
    }  # fmt: skip
    status: list[str] = []
    answer = b"".join(app(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type]
    return status[0], answer


@pytest.mark.parametrize("size", [10, 600 * 1024], ids=["in-memory", "spooled"])
def test_uploads_are_closed_when_the_request_ends(app: Ampulla, protocol: str, as_view: View, size: int) -> None:
    kept: list[Any] = []

    @app.route("/upload", methods=["POST"])
    @as_view
    def receive() -> str:
        kept.append(request.files["f"])
        return str(len(request.files["f"].read()))

    body = (b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.bin\"\r\n\r\n" + b"x" * size
            + b"\r\n--b--\r\n")  # fmt: skip
    content_type = "multipart/form-data; boundary=b"
    if protocol == "wsgi":
        status, answer = _wsgi_upload(app, "/upload", body, content_type)
        assert (status, answer) == ("200 OK", str(size).encode())
    else:
        response = app.test_client(protocol="asgi").post("/upload", data=body, content_type=content_type)
        assert (response.status_code, response.text) == (200, str(size))
    [upload] = kept
    assert upload.stream.closed


def test_a_request_class_overriding_close_is_closed_after_every_request(app: Ampulla, protocol: str) -> None:
    closed: list[str] = []

    class Tracked(app.request_class):  # type: ignore[name-defined,misc]
        def close(self) -> None:
            closed.append(self.path)
            super().close()

    app.request_class = Tracked

    @app.route("/", methods=["GET", "POST"])
    def index() -> str:
        return "ok"

    if protocol == "wsgi":
        assert _wsgi_upload(app, "/", b"", "text/plain") == ("200 OK", b"ok")
    else:
        assert app.test_client(protocol="asgi").get("/").text == "ok"
    assert closed == ["/"]
