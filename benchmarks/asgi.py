"""ASGI driver: build a scope once, then call an ASGI 3 app in-process, checked or timed.

Every call gets ``dict(base_scope)`` and a fresh exchange: ``receive`` yields the whole body as one
``http.request`` message (later calls wait for the response to end, then report ``http.disconnect``, as a
server does when the client stays connected), and ``send`` records the status, headers and body chunks.
The exchange is the same for every framework, so the per-call harness cost is identical and small.

All calls of one timed round run inside one coroutine on one event loop, created once per process (a
server keeps its loop too), so loop creation and teardown are never measured.
"""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter_ns
from typing import Any

from benchmarks.scenarios import Request, Response

Scope = dict[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The process-wide event loop every ASGI call runs on (closed at exit)."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
        atexit.register(_close_loop, _loop)
    return _loop


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed():
        return
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


class Exchange:
    """One request/response exchange: the ``receive`` and ``send`` callables given to the app."""

    __slots__ = ("body", "chunks", "complete", "finished", "headers", "requested", "status")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requested = False
        self.complete = False  #: the final ``http.response.body`` was sent
        self.finished: asyncio.Event | None = None  #: created only if the app listens past the body
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    async def receive(self) -> Message:
        """The body as one message; afterwards wait for the end of the response, then disconnect."""
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if not self.complete:
            if self.finished is None:
                self.finished = asyncio.Event()
            await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Record the response start and body chunks."""
        kind = message["type"]
        if kind == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
                if self.finished is not None:
                    self.finished.set()
        elif kind == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])


class Driver:
    """Sends one scenario's request to ASGI 3 apps."""

    protocol = "asgi"

    def __init__(self, request: Request) -> None:
        self.base = build_scope(request)
        self.body = request.body
        self.loop = event_loop()

    def call(self, app: ASGIApp) -> Response:
        """Call ``app`` once and capture its complete response."""
        exchange = Exchange(self.body)
        self.loop.run_until_complete(app(dict(self.base), exchange.receive, exchange.send))
        if not exchange.status:
            raise RuntimeError("the application never sent http.response.start")
        if not exchange.complete:
            raise RuntimeError("the application returned before the final http.response.body")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in exchange.headers]
        return Response(exchange.status, headers, b"".join(exchange.chunks))

    def time(self, app: ASGIApp, calls: int) -> int:
        """Call ``app`` ``calls`` times in one coroutine on the driver's loop; return elapsed ns."""
        elapsed: int = self.loop.run_until_complete(self._run(app, calls))
        return elapsed

    async def _run(self, app: ASGIApp, calls: int) -> int:
        base, body, exchange, copy = self.base, self.body, Exchange, dict
        start = perf_counter_ns()
        for _ in range(calls):
            current = exchange(body)
            await app(copy(base), current.receive, current.send)
        return perf_counter_ns() - start


def build_scope(request: Request) -> Scope:
    """Return an ASGI 3 HTTP scope for ``request`` with the same headers as the WSGI driver's environ."""
    headers: list[tuple[bytes, bytes]] = [
        (b"host", b"127.0.0.1"),
        (b"user-agent", b"ampulla-bench/1.0"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
    ]
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        headers.append((b"content-length", str(len(request.body)).encode("latin-1")))
    if request.content_type is not None:
        headers.append((b"content-type", request.content_type.encode("latin-1")))
    for name, value in request.headers.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 54321),
        "scheme": "http",
        "method": request.method,
        "root_path": "",
        "path": request.path,
        "raw_path": request.path.encode("latin-1"),
        "query_string": request.query.encode("latin-1"),
        "headers": headers,
    }
