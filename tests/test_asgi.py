"""The ASGI adapter driven by hand: scopes built here, messages collected here, no server and no external libs."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ampulla import (
    Ampulla,
    abort,
    after_this_request,
    current_app,
    g,
    has_app_context,
    request,
    session,
    stream_with_context,
)
from ampulla.sessions import SecureCookieSessionInterface
from ampulla.testing import EnvironBuilder, encode_multipart

TIMEOUT = 5.0


# ---------------------------------------------------------------------------------------------- harness


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    query_string: bytes = b"",
) -> dict[str, Any]:
    """An ASGI 3 HTTP scope, as a server would build it."""
    all_headers = [("host", "localhost"), *(headers or [])]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in all_headers],
        "client": ("127.0.0.1", 50123),
        "server": ("localhost", 80),
    }


class Connection:
    """One client connection: feeds ``incoming`` messages to the app, records what it sends.

    After the incoming messages are used up, ``receive()`` waits until the response is complete (or until
    ``disconnect`` is set) and then reports ``http.disconnect``, like a server would.
    """

    def __init__(self, incoming: list[dict[str, Any]] | None = None) -> None:
        self.incoming = list(incoming if incoming is not None else [{"type": "http.request", "body": b""}])
        self.sent: list[dict[str, Any]] = []
        self.receive_calls = 0
        self.receive_calls_before_response = 0
        self.response_complete = asyncio.Event()
        self.disconnect = asyncio.Event()
        self.body_chunks_seen = 0
        self.disconnect_after_chunks: int | None = None

    async def receive(self) -> dict[str, Any]:
        self.receive_calls += 1
        if not any(m["type"] == "http.response.start" for m in self.sent):
            self.receive_calls_before_response += 1
        if self.incoming:
            message = self.incoming.pop(0)
            await asyncio.sleep(0)
            return message
        complete = asyncio.ensure_future(self.response_complete.wait())
        gone = asyncio.ensure_future(self.disconnect.wait())
        try:
            await asyncio.wait({complete, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            complete.cancel()
            gone.cancel()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(dict(message))
        if message["type"] == "http.response.body":
            if message.get("body"):
                self.body_chunks_seen += 1
                if self.disconnect_after_chunks is not None and self.body_chunks_seen >= self.disconnect_after_chunks:
                    self.disconnect.set()
            if not message.get("more_body", False):
                self.response_complete.set()

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}

    @property
    def body_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.body_messages)


def body_messages(*chunks: bytes) -> list[dict[str, Any]]:
    """``http.request`` messages carrying ``chunks`` (``more_body`` on all but the last)."""
    return [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)]


async def _serve(app: Ampulla, scope: dict[str, Any], conn: Connection) -> Connection:
    async with asyncio.timeout(TIMEOUT):
        await app(scope, conn.receive, conn.send)
    return conn


def serve(app: Ampulla, scope: dict[str, Any], conn: Connection | None = None) -> Connection:
    """Run one ASGI connection to completion on a fresh event loop."""
    return asyncio.run(_serve(app, scope, conn or Connection()))


def lifespan(app: Ampulla, events: list[str]) -> list[dict[str, Any]]:
    """Drive a lifespan scope with ``events`` (``"startup"``/``"shutdown"``); return what the app sent."""
    incoming = [{"type": f"lifespan.{e}"} for e in events]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(TIMEOUT * 2)  # a server waits here; the app must return before
        raise AssertionError("the app kept waiting for lifespan messages")

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    async def main() -> None:
        async with asyncio.timeout(TIMEOUT):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    asyncio.run(main())
    return sent


@pytest.fixture
def live_app(app: Ampulla) -> Ampulla:
    """The shared app with exceptions turned into 500 responses, as in production."""
    app.testing = False
    return app


# ---------------------------------------------------------------------------------------------- lifespan


def test_lifespan_runs_before_and_after_serving_sync_and_async(app: Ampulla) -> None:
    calls: list[str] = []

    @app.before_serving
    def sync_start() -> None:
        calls.append(f"sync start {current_app.name if has_app_context() else app.name}")

    @app.before_serving
    async def async_start() -> None:
        await asyncio.sleep(0)
        calls.append("async start")

    @app.after_serving
    def sync_stop() -> None:
        calls.append("sync stop")

    @app.after_serving
    async def async_stop() -> None:
        await asyncio.sleep(0)
        calls.append("async stop")

    sent = lifespan(app, ["startup", "shutdown"])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == [f"sync start {app.name}", "async start", "sync stop", "async stop"]


def test_before_serving_runs_once_across_lifespan_and_requests(app: Ampulla) -> None:
    calls: list[str] = []

    @app.before_serving
    def start() -> None:
        calls.append("start")

    @app.after_serving
    def stop() -> None:
        calls.append("stop")

    @app.route("/")
    async def index() -> str:
        calls.append("request")
        return "ok"

    async def main() -> list[dict[str, Any]]:
        # A server keeps the lifespan task running while it serves requests.
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[dict[str, Any]] = []
        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(dict(message))
            if message["type"] == "lifespan.startup.complete":
                started.set()

        async with asyncio.timeout(TIMEOUT):
            task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send))
            await inbox.put({"type": "lifespan.startup"})
            await started.wait()
            for _ in range(2):
                assert (await _serve(app, http_scope("/"), Connection())).body == b"ok"
            await inbox.put({"type": "lifespan.shutdown"})
            await task
        return sent

    sent = asyncio.run(main())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == ["start", "request", "request", "stop"]


def test_lifespan_startup_failure_is_reported(app: Ampulla) -> None:
    @app.before_serving
    async def fails() -> None:
        raise ConnectionError("database unreachable")

    sent = lifespan(app, ["startup"])
    assert len(sent) == 1
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "database unreachable" in sent[0]["message"]


def test_lifespan_shutdown_failure_is_reported(app: Ampulla) -> None:
    @app.after_serving
    def fails() -> None:
        raise RuntimeError("flush failed")

    sent = lifespan(app, ["startup", "shutdown"])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "flush failed" in sent[1]["message"]


def test_unknown_scope_type_is_refused(app: Ampulla) -> None:
    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: dict[str, Any]) -> None:
        pass

    with pytest.raises(ValueError, match="scope"):
        asyncio.run(app({"type": "carrier-pigeon"}, receive, send))


# ---------------------------------------------------------------------------------------------- request body


@pytest.mark.parametrize("kind", ["def", "async"])
def test_body_is_read_before_dispatch_for_form_json_and_data(app: Ampulla, kind: str) -> None:
    def form_view() -> dict[str, Any]:
        return {"form": request.form.to_dict(), "args": request.args.to_dict()}

    def json_view() -> Any:
        return {"json": request.json, "get_json": request.get_json()}

    def data_view() -> bytes:
        return request.data[::-1]

    def files_view() -> dict[str, Any]:
        upload = request.files["doc"]
        return {"name": upload.filename, "content": upload.read().decode(), "field": request.form["title"]}

    for func, rule in ((form_view, "/form"), (json_view, "/json"), (data_view, "/data"), (files_view, "/files")):
        view = func
        if kind == "async":

            async def view(_f: Any = func) -> Any:
                await asyncio.sleep(0)
                return _f()

        app.add_url_rule(rule, endpoint=func.__name__, view_func=view, methods=["POST"])

    form = b"name=ann&city=Z%C3%BCrich"
    conn = serve(
        app,
        http_scope(
            "/form",
            "POST",
            [("content-type", "application/x-www-form-urlencoded"), ("content-length", str(len(form)))],
            b"q=1",
        ),
        Connection(body_messages(form[:4], form[4:9], form[9:])),
    )
    assert json.loads(conn.body) == {"form": {"name": "ann", "city": "Zürich"}, "args": {"q": "1"}}

    payload = json.dumps({"items": [1, 2, 3]}).encode()
    conn = serve(
        app,
        http_scope("/json", "POST", [("content-type", "application/json")]),
        Connection(body_messages(payload[:5], payload[5:])),
    )
    assert json.loads(conn.body) == {"json": {"items": [1, 2, 3]}, "get_json": {"items": [1, 2, 3]}}

    conn = serve(app, http_scope("/data", "POST"), Connection(body_messages(b"abc", b"def", b"")))
    assert conn.body == b"fedcba"

    body, content_type = encode_multipart([("title", "report"), ("doc", (io.BytesIO(b"file body"), "r.txt"))])
    conn = serve(
        app,
        http_scope("/files", "POST", [("content-type", content_type), ("content-length", str(len(body)))]),
        Connection(body_messages(body[:30], body[30:])),
    )
    assert json.loads(conn.body) == {"name": "r.txt", "content": "file body", "field": "report"}


def test_chunked_body_without_content_length(app: Ampulla) -> None:
    @app.post("/echo")
    async def echo() -> dict[str, Any]:
        return {"length": len(request.data), "content_length": request.content_length, "data": request.data.decode()}

    chunks = [b"alpha-", b"beta-", b"gamma-", b"delta"]
    conn = serve(app, http_scope("/echo", "POST"), Connection(body_messages(*chunks)))
    assert json.loads(conn.body) == {"length": 22, "content_length": None, "data": "alpha-beta-gamma-delta"}
    assert conn.receive_calls_before_response == len(chunks)


def test_body_over_limit_without_content_length_stops_reading_early(live_app: Ampulla) -> None:
    live_app.config["MAX_CONTENT_LENGTH"] = 100
    called: list[str] = []

    @live_app.post("/upload")
    async def upload() -> str:
        called.append("view")
        return "stored"

    chunks = [b"x" * 30] * 50
    conn = serve(live_app, http_scope("/upload", "POST"), Connection(body_messages(*chunks)))
    assert conn.status == 413
    assert called == []
    # 30 + 30 + 30 + 30 > 100: the fourth chunk is the last one read, not all fifty.
    assert conn.receive_calls_before_response <= 4


def test_content_length_over_limit_is_refused_before_reading(live_app: Ampulla) -> None:
    live_app.config["MAX_CONTENT_LENGTH"] = 100

    @live_app.post("/upload")
    async def upload() -> str:
        return "stored"

    conn = serve(
        live_app,
        http_scope("/upload", "POST", [("content-length", "1000000")]),
        Connection(body_messages(b"x" * 1000, b"x" * 1000)),
    )
    assert conn.status == 413
    assert conn.receive_calls_before_response == 0


def test_body_within_limit_is_accepted(app: Ampulla) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.post("/upload")
    async def upload() -> str:
        return str(len(request.data))

    conn = serve(app, http_scope("/upload", "POST"), Connection(body_messages(b"x" * 50, b"y" * 50)))
    assert (conn.status, conn.body) == (200, b"100")


def test_client_disconnect_while_reading_body_does_not_call_the_view(live_app: Ampulla) -> None:
    called: list[str] = []

    @live_app.post("/upload")
    async def upload() -> str:
        called.append("view")
        return "ok"

    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]
    serve(live_app, http_scope("/upload", "POST"), Connection(incoming))
    assert called == []


# ---------------------------------------------------------------------------------------------- streamed request bodies


def _streaming_upload_app(app: Ampulla, seen: dict[str, Any]) -> None:
    async def upload() -> dict[str, Any]:
        sizes = []
        async for chunk in request.stream_async():
            sizes.append(len(chunk))
        seen["sizes"] = sizes
        return {"total": sum(sizes)}

    upload.stream_request_body = True  # type: ignore[attr-defined]
    app.add_url_rule("/upload", view_func=upload, methods=["POST"])


def test_stream_request_body_view_reads_chunks_as_they_arrive(app: Ampulla) -> None:
    seen: dict[str, Any] = {}
    _streaming_upload_app(app, seen)

    @app.before_request
    def before() -> None:
        # Nothing of the body was read before the view: it gets every chunk itself.
        seen["receive_calls_at_before_request"] = conn.receive_calls

    conn = Connection(body_messages(b"a" * 10, b"b" * 20, b"c" * 30))
    serve(app, http_scope("/upload", "POST", [("content-length", "60")]), conn)
    assert json.loads(conn.body) == {"total": 60}
    assert seen["sizes"] == [10, 20, 30]
    assert seen["receive_calls_at_before_request"] == 0


def test_stream_request_body_view_over_both_protocols(app: Ampulla, client: Any) -> None:
    seen: dict[str, Any] = {}
    _streaming_upload_app(app, seen)
    response = client.post("/upload", data=b"z" * 1000)
    assert response.json == {"total": 1000}


def test_stream_request_body_enforces_the_limit(live_app: Ampulla) -> None:
    live_app.config["MAX_CONTENT_LENGTH"] = 50
    seen: dict[str, Any] = {}
    _streaming_upload_app(live_app, seen)
    conn = serve(live_app, http_scope("/upload", "POST"), Connection(body_messages(*[b"q" * 20] * 10)))
    assert conn.status == 413
    assert conn.receive_calls_before_response <= 3


def test_stream_request_body_decorator_is_public() -> None:
    # The framework's own error message tells users to mark views with ``@stream_request_body``.
    import ampulla
    import ampulla.helpers

    decorator = getattr(ampulla, "stream_request_body", None) or getattr(ampulla.helpers, "stream_request_body", None)
    assert decorator is not None, "no public @stream_request_body decorator in ampulla or ampulla.helpers"

    @decorator
    async def view() -> str:
        return ""

    assert getattr(view, "stream_request_body", False) is True


# ---------------------------------------------------------------------------------------------- streamed responses


def test_streaming_response_from_sync_and_async_generators(app: Ampulla) -> None:
    @app.route("/sync")
    def sync_stream() -> Any:
        def generate() -> Iterator[str]:
            for i in range(3):
                yield f"s{i};"

        return generate()

    @app.route("/async")
    async def async_stream() -> Any:
        async def generate() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0)
                yield f"a{i};".encode()

        return generate(), {"X-Kind": "async"}

    sync_conn = serve(app, http_scope("/sync"))
    assert sync_conn.status == 200
    assert sync_conn.body == b"s0;s1;s2;"
    assert len([m for m in sync_conn.body_messages if m.get("body")]) == 3
    assert sync_conn.body_messages[-1].get("more_body", False) is False

    async_conn = serve(app, http_scope("/async"))
    assert async_conn.body == b"a0;a1;a2;"
    assert async_conn.headers["x-kind"] == "async"
    assert len([m for m in async_conn.body_messages if m.get("body")]) == 3


def test_stream_with_context_keeps_request_and_g_and_defers_teardown(app: Ampulla) -> None:
    events: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append("teardown")

    @app.route("/sync")
    def sync_view() -> Any:
        g.who = "sync"

        @stream_with_context
        def generate() -> Iterator[str]:
            for i in range(2):
                events.append(f"chunk {i}")
                yield f"{request.args['p']}-{g.who}-{i};"

        return generate()

    @app.route("/async")
    async def async_view() -> Any:
        g.who = "async"

        async def generate() -> AsyncIterator[str]:
            for i in range(2):
                await asyncio.sleep(0)
                events.append(f"chunk {i}")
                yield f"{request.args['p']}-{g.who}-{i};"

        return stream_with_context(generate())

    conn = serve(app, http_scope("/sync", query_string=b"p=x"))
    assert conn.body == b"x-sync-0;x-sync-1;"
    assert events == ["chunk 0", "chunk 1", "teardown"]

    events.clear()
    conn = serve(app, http_scope("/async", query_string=b"p=y"))
    assert conn.body == b"y-async-0;y-async-1;"
    assert events == ["chunk 0", "chunk 1", "teardown"]


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "stream_with_context"])
def test_client_disconnect_closes_an_endless_async_stream(app: Ampulla, wrap: bool) -> None:
    events: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append("teardown")

    @app.route("/forever")
    async def forever() -> Any:
        async def generate() -> AsyncIterator[bytes]:
            try:
                while True:
                    await asyncio.sleep(0.001)
                    yield b"tick\n"
            finally:
                events.append("generator closed")

        return stream_with_context(generate()) if wrap else generate()

    conn = Connection()
    conn.disconnect_after_chunks = 3
    serve(app, http_scope("/forever"), conn)
    assert conn.body_chunks_seen >= 3
    assert events == ["generator closed", "teardown"]


def test_client_disconnect_closes_an_endless_sync_stream(app: Ampulla) -> None:
    events: list[str] = []
    blocked = threading.Event()

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append("teardown")

    @app.route("/forever")
    def forever() -> Any:
        def generate() -> Iterator[bytes]:
            try:
                for _ in range(3):
                    yield b"tick\n"
                # A slow producer: the client leaves while the next chunk is being made in the worker thread.
                blocked.wait(0.3)
                while True:
                    yield b"tick\n"
            finally:
                events.append("generator closed")

        return generate()

    conn = Connection()
    conn.disconnect_after_chunks = 3
    serve(app, http_scope("/forever"), conn)  # must not raise
    deadline = time.monotonic() + TIMEOUT
    while "generator closed" not in events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.body_chunks_seen >= 3
    assert "generator closed" in events
    assert "teardown" in events


# ---------------------------------------------------------------------------------------------- threads and the loop


def test_sync_view_runs_in_a_worker_thread_with_context(app: Ampulla) -> None:
    @app.before_request
    async def set_user() -> None:
        g.user = "ann"

    @app.route("/where")
    def where() -> dict[str, Any]:
        return {"thread": threading.get_ident(), "path": request.path, "user": g.user, "app": current_app.name}

    async def main() -> tuple[int, Connection]:
        conn = await _serve(app, http_scope("/where"), Connection())
        return threading.get_ident(), conn

    loop_thread, conn = asyncio.run(main())
    data = json.loads(conn.body)
    assert data["thread"] != loop_thread
    assert {k: data[k] for k in ("path", "user", "app")} == {"path": "/where", "user": "ann", "app": app.name}


def test_inline_sync_view_runs_on_the_loop_thread(app: Ampulla) -> None:
    @app.route("/inline", inline=True)
    def inline_view() -> dict[str, Any]:
        return {"thread": threading.get_ident(), "path": request.path}

    async def main() -> tuple[int, Connection]:
        conn = await _serve(app, http_scope("/inline"), Connection())
        return threading.get_ident(), conn

    loop_thread, conn = asyncio.run(main())
    assert json.loads(conn.body) == {"thread": loop_thread, "path": "/inline"}


def _finishing_order(app: Ampulla, started: threading.Event) -> list[str]:
    """Serve ``/slow`` and, once it has started, ``/fast``; the bodies in the order the requests finished."""

    async def main() -> list[str]:
        finished: list[str] = []

        async def run(path: str) -> None:
            conn = await _serve(app, http_scope(path), Connection())
            finished.append(conn.body.decode())

        slow_task = asyncio.create_task(run("/slow"))
        for _ in range(200):
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        await run("/fast")
        await slow_task
        return finished

    return asyncio.run(main())


def test_blocking_sync_view_does_not_block_async_views(app: Ampulla) -> None:
    started = threading.Event()

    @app.route("/slow")
    def slow() -> str:
        started.set()
        time.sleep(0.5)
        return "slow"

    @app.route("/fast")
    async def fast() -> str:
        return "fast"

    assert _finishing_order(app, started) == ["fast", "slow"]


def test_def_hooks_of_a_def_view_run_in_its_pool_call(app: Ampulla) -> None:
    seen: dict[str, list[int]] = {}

    @app.url_value_preprocessor
    def preprocess(endpoint: str | None, values: dict[str, Any] | None) -> None:
        seen.setdefault(request.path, []).append(threading.get_ident())

    @app.before_request
    def before() -> None:
        seen[request.path].append(threading.get_ident())
        g.user = "ann"

    @app.route("/sync/<name>")
    def sync_view(name: str) -> str:
        seen[request.path].append(threading.get_ident())
        return f"{g.user} {name}"

    @app.route("/async/<name>")
    async def async_view(name: str) -> str:
        seen[request.path].append(threading.get_ident())
        return f"{g.user} {name}"

    async def main() -> tuple[int, Connection, Connection]:
        sync = await _serve(app, http_scope("/sync/x"), Connection())
        async_ = await _serve(app, http_scope("/async/y"), Connection())
        return threading.get_ident(), sync, async_

    loop_thread, sync, async_ = asyncio.run(main())
    assert (sync.body, async_.body) == (b"ann x", b"ann y")
    # def view: preprocessor, hook and view share one pool thread; async view: all on the loop.
    assert len(set(seen["/sync/x"])) == 1
    assert seen["/sync/x"][0] != loop_thread
    assert seen["/async/y"] == [loop_thread] * 3


def test_after_request_and_session_saving_of_a_def_chain_run_in_the_pool(app: Ampulla) -> None:
    threads: dict[str, int] = {}

    class RecordingSessions(SecureCookieSessionInterface):
        def save_session(self, app: Any, session: Any, response: Any) -> None:
            threads["save_session " + request.path] = threading.get_ident()
            super().save_session(app, session, response)

    app.secret_key = "test"
    app.session_interface = RecordingSessions()

    @app.after_request
    def after(response: Any) -> Any:
        threads["after " + request.path] = threading.get_ident()
        response.headers["X-After"] = "1"
        return response

    @app.route("/sync")
    def sync_view() -> str:
        threads["view /sync"] = threading.get_ident()
        session["seen"] = True

        @after_this_request
        def later(response: Any) -> Any:
            threads["after_this_request /sync"] = threading.get_ident()
            return response

        return "sync"

    @app.route("/mixed")
    def mixed_view() -> str:
        threads["view /mixed"] = threading.get_ident()
        session["seen"] = True

        @after_this_request
        async def later(response: Any) -> Any:  # an async one: it runs on the event loop
            threads["after_this_request /mixed"] = threading.get_ident()
            return response

        return "mixed"

    async def main() -> tuple[int, list[Connection]]:
        conns = [await _serve(app, http_scope(path), Connection()) for path in ("/sync", "/mixed")]
        return threading.get_ident(), conns

    loop_thread, conns = asyncio.run(main())
    assert all(c.status == 200 and c.headers.get("x-after") == "1" and "set-cookie" in c.headers for c in conns)
    pooled = {threads[f"{step} /sync"] for step in ("view", "after_this_request", "after", "save_session")}
    assert len(pooled) == 1 and loop_thread not in pooled
    assert threads["view /mixed"] != loop_thread
    assert threads["after_this_request /mixed"] == loop_thread
    # The plain functions around it stay off the loop, in the view's thread.
    assert {threads[f"{s} /mixed"] for s in ("view", "after", "save_session")} == {threads["view /mixed"]}


def test_errors_after_a_pooled_def_view_are_500s_not_view_errors(live_app: Ampulla) -> None:
    handled: list[str] = []

    @live_app.errorhandler(LookupError)
    def lookup(e: Exception) -> tuple[str, int]:
        handled.append(str(e))
        return "handled", 404

    @live_app.after_request
    def after(response: Any) -> Any:
        if request.path == "/after-fails":
            raise LookupError("in after_request")
        return response

    @live_app.route("/after-fails")
    def fine() -> str:
        return "fine"

    @live_app.route("/returns-none")
    def nothing() -> None:
        return None

    assert serve(live_app, http_scope("/after-fails")).status == 500
    assert serve(live_app, http_scope("/returns-none")).status == 500
    assert handled == []  # as on the event loop: errors after the view skip the view's error handlers


def test_blocking_def_hook_of_a_def_view_does_not_block_async_views(app: Ampulla) -> None:
    started = threading.Event()

    @app.before_request
    def slow_hook() -> None:
        if request.path == "/slow":
            started.set()
            time.sleep(0.5)

    @app.route("/slow")
    def slow() -> str:
        return "slow"

    @app.route("/fast")
    async def fast() -> str:
        return "fast"

    assert _finishing_order(app, started) == ["fast", "slow"]


def test_errors_of_def_hooks_in_the_pool_reach_async_error_handlers(app: Ampulla) -> None:
    @app.before_request
    def refuse() -> None:
        if request.args.get("deny"):
            abort(403)
        if request.args.get("crash"):
            raise LookupError("no such thing")

    @app.errorhandler(403)
    async def forbidden(e: Exception) -> tuple[str, int]:
        await asyncio.sleep(0)
        return f"denied on {threading.get_ident() == loop_thread[0]}", 403

    @app.errorhandler(LookupError)
    async def lookup(e: Exception) -> tuple[str, int]:
        return f"lookup: {e}", 404

    @app.route("/")
    def index() -> str:
        return "ok"

    loop_thread: list[int] = []

    async def main() -> list[Connection]:
        loop_thread.append(threading.get_ident())
        return [
            await _serve(app, http_scope("/", query_string=q), Connection())
            for q in (b"deny=1", b"crash=1", b"")
        ]

    denied, crashed, ok = asyncio.run(main())
    assert (denied.status, denied.body) == (403, b"denied on True")  # the async handler ran on the loop
    assert (crashed.status, crashed.body) == (404, b"lookup: no such thing")
    assert (ok.status, ok.body) == (200, b"ok")


# ---------------------------------------------------------------------------------------------- errors


def test_async_view_error_gives_500_and_the_app_keeps_serving(live_app: Ampulla) -> None:
    @live_app.route("/boom")
    async def boom() -> str:
        await asyncio.sleep(0)
        raise RuntimeError("kaboom")

    @live_app.route("/ok")
    async def ok() -> str:
        return "still alive"

    conn = serve(live_app, http_scope("/boom"))
    assert conn.status == 500
    assert b"kaboom" not in conn.body
    assert serve(live_app, http_scope("/ok")).body == b"still alive"


def test_async_error_handlers(live_app: Ampulla) -> None:
    @live_app.errorhandler(404)
    async def not_found(e: Exception) -> tuple[dict[str, str], int]:
        await asyncio.sleep(0)
        return {"missing": request.path}, 404

    @live_app.errorhandler(500)
    async def server_error(e: Exception) -> tuple[str, int]:
        await asyncio.sleep(0)
        return "custom 500", 500

    @live_app.route("/boom")
    async def boom() -> str:
        raise RuntimeError("x")

    conn = serve(live_app, http_scope("/nope"))
    assert (conn.status, json.loads(conn.body)) == (404, {"missing": "/nope"})
    conn = serve(live_app, http_scope("/boom"))
    assert (conn.status, conn.body) == (500, b"custom 500")


def test_http_errors_have_no_body_problems_over_asgi(app: Ampulla) -> None:
    @app.route("/only-post", methods=["POST"])
    async def only_post() -> str:
        return "ok"

    conn = serve(app, http_scope("/only-post"))
    assert conn.status == 405
    assert "POST" in conn.headers["allow"]
    assert int(conn.headers["content-length"]) == len(conn.body)


# ---------------------------------------------------------------------------------------------- background tasks


def test_background_tasks_run_after_the_response_in_an_app_context(app: Ampulla) -> None:
    ran: list[tuple[str, bool, bool, str]] = []
    conn = Connection()

    def sync_task(label: str) -> None:
        ran.append((label, conn.response_complete.is_set(), has_app_context(), current_app.name))

    async def async_task(label: str) -> None:
        await asyncio.sleep(0)
        ran.append((label, conn.response_complete.is_set(), has_app_context(), current_app.name))

    @app.route("/async-view")
    async def async_view() -> str:
        app.add_background_task(sync_task, "sync from async view")
        app.add_background_task(async_task, "async from async view")
        return "queued"

    @app.route("/sync-view")
    def sync_view() -> str:
        app.add_background_task(sync_task, "sync from sync view")
        app.add_background_task(async_task, "async from sync view")
        return "queued"

    assert serve(app, http_scope("/async-view"), conn).body == b"queued"
    conn2 = Connection()
    conn = conn2
    assert serve(app, http_scope("/sync-view"), conn2).body == b"queued"
    assert ran == [
        ("sync from async view", True, True, app.name),
        ("async from async view", True, True, app.name),
        ("sync from sync view", True, True, app.name),
        ("async from sync view", True, True, app.name),
    ]


def test_background_tasks_run_over_both_protocols(app: Ampulla, client: Any) -> None:
    ran: list[str] = []

    def task(value: str) -> None:
        ran.append(f"{value} {has_app_context()}")

    @app.route("/")
    def index() -> str:
        app.add_background_task(task, "done")
        return "ok"

    assert client.get("/").text == "ok"
    assert ran == ["done True"]


# ---------------------------------------------------------------------------------------------- HEAD, WSGI


@pytest.mark.parametrize("path", ["/page", "/stream"])
def test_head_sends_headers_but_no_body(app: Ampulla, path: str) -> None:
    @app.route("/page")
    async def page() -> str:
        return "a body that must not be sent"

    @app.route("/stream")
    def stream() -> Any:
        return iter(["x", "y"])

    conn = serve(app, http_scope(path, "HEAD"))
    assert conn.status == 200
    assert conn.body == b""
    assert conn.body_messages[-1].get("more_body", False) is False
    if path == "/page":
        assert conn.headers["content-length"] == str(len("a body that must not be sent"))


def test_same_app_object_serves_wsgi_and_asgi(app: Ampulla) -> None:
    @app.route("/hello/<name>", methods=["GET", "POST"])
    async def hello(name: str) -> dict[str, Any]:
        return {"name": name, "method": request.method, "form": request.form.to_dict()}

    asgi = serve(app, http_scope("/hello/asgi"))
    assert json.loads(asgi.body) == {"name": "asgi", "method": "GET", "form": {}}

    environ = EnvironBuilder(app, "/hello/wsgi", method="POST", data={"a": "1"}).get_environ()
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = dict(headers)
        return lambda data: None

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        getattr(iterable, "close", lambda: None)()
    assert captured["status"] == "200 OK"
    assert captured["headers"]["Content-Type"] == "application/json"
    assert json.loads(body) == {"name": "wsgi", "method": "POST", "form": {"a": "1"}}


@pytest.mark.parametrize("path", ["/ok", "/form", "/refused"])
def test_a_request_leaves_no_reference_cycle_through_the_servers_receive(
    app: Ampulla, as_view: Any, path: str
) -> None:
    # uvicorn's receive is a bound method of a per-request object holding the scope: if the app kept receive in
    # the scope, every request would leave a cycle that only the garbage collector frees (CPU under load).
    import gc
    import weakref

    app.add_url_rule("/ok", "ok", as_view(lambda: "ok"))
    app.add_url_rule("/form", "form", as_view(lambda: request.form["a"]), methods=["POST"])

    class ServerCycle:
        def __init__(self, scope: dict[str, Any], body: bytes) -> None:
            self.scope = scope
            self.body = body
            self.sent: list[dict[str, Any]] = []

        async def receive(self) -> dict[str, Any]:
            body, self.body = self.body, b""
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(self, message: dict[str, Any]) -> None:
            self.sent.append(message)

    headers = [(b"host", b"example.com")]
    body = b""
    if path == "/form":
        body = b"a=1"
        headers += [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"3")]
    if path == "/refused":
        headers += [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST" if body else "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}  # fmt: skip
    asyncio.run(app(dict(scope), ServerCycle(dict(scope), b"").receive, ServerCycle({}, b"").send))  # warm up
    server = ServerCycle(scope, body)
    gc.collect()
    gc.disable()
    try:
        asyncio.run(app(scope, server.receive, server.send))
        status = server.sent[0]["status"]
        gone = weakref.ref(server)
        del server, scope
        assert gone() is None  # freed by reference counting alone
    finally:
        gc.enable()
    assert status == (400 if path == "/refused" else 200)


@pytest.mark.parametrize("protocol_name", ["wsgi", "asgi"])
def test_answers_leave_no_garbage_for_the_collector(
    app: Ampulla, as_view: Any, view_kind: str, protocol_name: str
) -> None:
    # Reference counting alone frees everything a request made: 200, 404 (the routing error and its traceback),
    # 405, a view error turned into a 500 page.
    import gc

    app.testing = False
    app.add_url_rule("/ok", "ok", as_view(lambda: {"ok": request.args.get("q")}))
    app.add_url_rule("/boom", "boom", as_view(lambda: 1 / 0))
    app.logger.disabled = True
    paths = ["/ok?q=1", "/missing", "/boom"]
    expected = [200, 404, 500]
    if protocol_name == "wsgi" and view_kind == "async":
        # An async view under WSGI runs through asyncio's run_until_complete, whose task keeps the exception
        # whose traceback holds the frame holding the task: asyncio's own cycle, left to the collector.
        paths, expected = paths[:2], expected[:2]
    statuses: list[int] = []

    def wsgi_call(path: str) -> None:
        builder = EnvironBuilder(app, path)
        environ = builder.get_environ()
        builder.close()
        body = app(environ, lambda status, headers, exc_info=None: statuses.append(int(status[:3])))
        b"".join(body)
        getattr(body, "close", lambda: None)()

    async def asgi_calls(count: int) -> int:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def once() -> None:
            for path in paths:
                route, _, query = path.partition("?")
                scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                         "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query.encode(),
                         "root_path": "", "headers": [(b"host", b"example.com")], "client": ("127.0.0.1", 5000),
                         "server": ("127.0.0.1", 8000)}  # fmt: skip
                await app(scope, receive, send)

        await once()  # warm up (plans, caches)
        gc.collect()
        gc.disable()
        try:
            for _ in range(count):
                await once()
            return gc.collect()
        finally:
            gc.enable()

    if protocol_name == "asgi":
        garbage = asyncio.run(asgi_calls(5))
    else:
        for path in paths:
            wsgi_call(path)
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                for path in paths:
                    wsgi_call(path)
            garbage = gc.collect()
        finally:
            gc.enable()
    assert statuses[-len(expected) :] == expected
    assert garbage == 0
    app.logger.disabled = False
