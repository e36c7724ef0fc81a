"""The ASGI adapter: HTTP, WebSocket and lifespan scopes in, the core request cycle, messages out.

``await app(scope, receive, send)`` lands here. The body is read (within ``MAX_CONTENT_LENGTH``) after routing
and before the view, so ``request.form``, ``files``, ``json`` and ``data`` stay plain attributes in ``async def``
views; views marked ``@stream_request_body`` read it themselves with ``request.stream_async()``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from .concurrency import run_background_tasks_async
from .datastructures import _WIRE_NAMES, ASGIHeaders, Headers, bodiless_header_pairs, header_pairs, wire_name
from .exceptions import HTTPException, RequestEntityTooLarge, error_response
from .proxy_fix import SUPPORTED_VERSIONS, check_framing, check_http_version
from .wrappers import ClientDisconnected, Request, Response, _length_of

if TYPE_CHECKING:
    from .app import Ampulla

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Bodies larger than this are spooled to a temporary file while they are read.
SPOOL_THRESHOLD = 1024 * 1024
_BODY_FREE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "DELETE", "TRACE"))


async def handle_asgi(app: Ampulla, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI connection with ``app`` (``app(scope, receive, send)`` calls this)."""
    kind = scope["type"]
    if kind == "http":
        # PERF: the HTTP branch is here, not one coroutine deeper (benchmarks/instructions.py --protocol asgi).
        headers = ASGIHeaders(scope["headers"])
        mapping = headers._map
        length = mapping.get(b"content-length")
        transfer_encoding = mapping.get(b"transfer-encoding")
        version = scope.get("http_version", "1.1")
        digits = length is not None and length.isdigit()  # bytes.isdigit(): ASCII digits only
        if transfer_encoding is not None or version not in SUPPORTED_VERSIONS or (length is not None and not digits):
            error = _request_error(version, length, transfer_encoding)
            if error is not None:
                await send_response(app, None, _refusal(error), scope, send, receive)
                return
        try:
            request = app.request_class.from_scope(scope, app)  # type: ignore[arg-type]
        except HTTPException as e:
            await send_response(app, None, error_response(e), scope, send, receive)
            return
        request._headers = headers
        if length is not None and digits:
            # PERF: the length just checked, kept for the body reader and the request (the property would look
            # it up again; benchmarks/run.py --protocol asgi: json_echo).
            request._content_length = int(length) if len(length) <= 19 else _length_of(length.decode("ascii"))
        # For the request's body streaming; dropped when the request ends (below).
        scope["ampulla.receive"] = receive
        if scope.get("ampulla.preserve_context"):
            request.environ["ampulla.preserve_context"] = True
        reader: Callable[[Request], Awaitable[None]] | None = None
        if request.method in _BODY_FREE_METHODS and transfer_encoding is None and (length is None or length == b"0"):
            # PERF: no body to wait for (benchmarks/run.py --protocol asgi: hello).
            request.input_stream = io.BytesIO()
        else:
            # PERF: a partial, not a wrapping coroutine (benchmarks/run.py --protocol asgi: json_echo).
            reader = functools.partial(read_body, receive=receive)
        cycle = app._async_cycle or app._cycles()[1]
        response, ctx = await cycle.handle(request, reader)
        try:
            await send_response(app, ctx, response, scope, send, receive)
        finally:
            # The server's receive is often a bound method of an object holding the scope: kept in the scope, each
            # request would leave a reference cycle for the garbage collector (CPU under uvicorn).
            del scope["ampulla.receive"]
            if ctx.preserved:
                scope["ampulla._preserved_context"] = ctx
            teardown = cycle.finish(ctx)
            if teardown is not None:
                await teardown
            if ctx.background_tasks:
                await run_background_tasks_async(app, ctx)
    elif kind == "websocket":
        await _handle_websocket(app, scope, receive, send)
    elif kind == "lifespan":
        await _handle_lifespan(app, scope, receive, send)
    else:
        raise ValueError(f"unsupported ASGI scope type {kind!r}")


# ---------------------------------------------------------------------------------------------- lifespan


async def _handle_lifespan(app: Ampulla, scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app.startup()
            except Exception as e:
                app.logger.exception("before_serving failed")
                await send({"type": "lifespan.startup.failed", "message": f"{type(e).__name__}: {e}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await app.shutdown()
            except Exception as e:
                app.logger.exception("after_serving failed")
                await send({"type": "lifespan.shutdown.failed", "message": f"{type(e).__name__}: {e}"})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return


# ---------------------------------------------------------------------------------------------- HTTP


def _announces_body(headers: Headers) -> bool:
    length: str | None = headers.get("Content-Length")
    if length is not None:
        return length.strip() not in ("0", "")
    return "Transfer-Encoding" in headers


def _request_error(version: Any, length: bytes | None, transfer_encoding: bytes | None) -> HTTPException | None:
    """The 505/400 a request the server should have refused gets (unknown version, ambiguous body length)."""
    if version not in SUPPORTED_VERSIONS:
        error = check_http_version(str(version))
        if error is not None:
            return error
    return check_framing(
        None if length is None else length.decode("latin-1"),
        None if transfer_encoding is None else transfer_encoding.decode("latin-1"),
    )


def _refusal(error: HTTPException) -> Response:
    response = error_response(error)
    response.headers["Connection"] = "close"
    return response


async def read_body(request: Request, receive: Receive) -> None:
    """Read the whole body into ``request.input_stream`` within ``MAX_CONTENT_LENGTH``.

    Raises:
        RequestEntityTooLarge: The announced or received size is over the limit (nothing more is read).
        ClientDisconnected: The client went away mid-body.
    """
    scope = request.scope
    assert scope is not None
    if request.method in _BODY_FREE_METHODS and not _announces_body(request.headers):
        request.input_stream = io.BytesIO()
        return
    limit = request.max_content_length
    length = request.content_length
    if length is not None and limit is not None and length > limit:
        raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    first: bytes | None = None
    buffer: bytearray | None = None
    spool: Any = None
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if spool is not None:
                spool.close()
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if limit is not None and size > limit:
                if spool is not None:
                    spool.close()
                raise RequestEntityTooLarge(f"The request body is larger than the limit of {limit} bytes.")
            if spool is not None:
                spool.write(chunk)
            elif first is None and buffer is None:
                first = chunk  # PERF: most bodies arrive in one message: keep it without copying
            else:
                # NOTE: a bytearray, not a list of chunks, so a body sent a byte at a time costs its size.
                if buffer is None:
                    buffer = bytearray(first or b"")
                    first = None
                buffer += chunk
                if size > SPOOL_THRESHOLD:
                    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115 - kept open
                    spool.write(buffer)
                    buffer = None
        if not message.get("more_body", False):
            break
    if spool is not None:
        spool.seek(0)
        request.input_stream = spool
    elif buffer is not None:
        request.input_stream = io.BytesIO(buffer)
    else:
        request.input_stream = io.BytesIO(first or b"")


def _encode_pairs(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header lines as ASGI byte pairs with lower-case names."""
    names = _WIRE_NAMES
    return [(names.get(name) or wire_name(name), value.encode("latin-1")) for name, value in pairs]


def _encode_headers(response: Response) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The headers as ASGI byte pairs with lower-case names, and whether Content-Length is among them."""
    has_length = False
    encoded = []
    names = _WIRE_NAMES
    given = response.headers
    for name, value in given._list if given.__class__ is Headers else header_pairs(given):
        # PERF: each name lower-cased and encoded once per process (benchmarks/run.py --protocol asgi: hello).
        raw = names.get(name) or wire_name(name)
        if raw == b"content-length":
            has_length = True
        encoded.append((raw, value.encode("latin-1")))
    return encoded, has_length


async def send_response(
    app: Ampulla, ctx: object, response: Response, scope: Scope, send: Send, receive: Receive
) -> None:
    """Send ``response`` as ASGI messages; streamed bodies stop when the client disconnects."""
    body = response.response
    status = response._status_code
    if status < 200 or status == 204 or status == 304:
        # As Werkzeug: a 1xx, 204 or 304 carries no body, whatever the response holds (an error handler's JSON).
        lines = bodiless_header_pairs(status, header_pairs(response.headers))
        try:
            await send({"type": "http.response.start", "status": status, "headers": _encode_pairs(lines)})
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            pass
        finally:
            if not isinstance(body, list):
                await _close_body(body)
            if response._on_close:
                response.close()
        return
    headers, has_length = _encode_headers(response)
    head = scope.get("method") == "HEAD"
    if isinstance(body, list):
        if len(body) == 1 and isinstance(body[0], bytes):
            data = body[0]
        else:
            data = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in body)
        if not has_length and status >= 200 and status not in (204, 304):
            headers.append((b"content-length", str(len(data)).encode("latin-1")))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else data})
        except OSError:
            pass  # the client went away; nothing left to do
        finally:
            if response._on_close:
                response.close()
        return
    streamed = False
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        streamed = True
        await _stream_body(app, body, send, receive)  # closes the body itself
    except OSError:
        pass
    finally:
        if not streamed or hasattr(body, "__aiter__"):
            await _close_body(body)
        if response._on_close:
            response.close()


class _ThreadedIterator:
    """Steps a sync iterator in the app's thread pool, one ``next`` at a time, and closes it safely.

    A sync body may block (file reads, slow generators), so it never runs on the event loop. Closing waits for a
    step still running in its thread first: a generator cannot be closed while it executes.
    """

    _DONE: Any = object()
    #: How long closing waits for a step that is still running (a generator blocked for longer is abandoned).
    close_timeout = 10.0

    def __init__(self, app: Ampulla, iterable: Any) -> None:
        self._app = app
        self._source = iterable
        self._iterator = iter(iterable)
        self._pending: asyncio.Future[Any] | None = None

    def __aiter__(self) -> _ThreadedIterator:
        return self

    async def __anext__(self) -> Any:
        # NOTE: shield the step, so cancelling the consumer (a disconnect) leaves it to finish in its thread.
        self._pending = asyncio.ensure_future(self._app.run_sync(next, self._iterator, self._DONE))
        chunk = await asyncio.shield(self._pending)
        if chunk is self._DONE:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        pending = self._pending
        if pending is not None and not pending.done():
            try:
                await asyncio.wait_for(asyncio.shield(pending), self.close_timeout)
            except Exception:
                self._app.logger.warning(
                    "a streamed body did not yield within %s s of a disconnect", self.close_timeout
                )
                return
        close = getattr(self._source, "close", None)
        if close is not None:
            try:
                await self._app.run_sync(close)
            except ValueError:  # pragma: no cover - still executing in another thread
                pass


async def _close_body(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # pragma: no cover - a failing generator finalizer must not hide the response
            pass
        return
    close = getattr(body, "close", None)
    if close is not None:
        close()


async def _stream_body(app: Ampulla, body: Any, send: Send, receive: Receive) -> None:
    iterator: Any = body if hasattr(body, "__aiter__") else _ThreadedIterator(app, body)

    async def pump() -> None:
        async for chunk in iterator:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(watch_disconnect())
    try:
        done, _ = await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump_task, watch_task):
            if not task.done():
                task.cancel()
        for task in (pump_task, watch_task):
            try:
                await task
            except (asyncio.CancelledError, OSError):
                pass
        if iterator is not body:
            await iterator.aclose()
    if pump_task in done and pump_task.exception() is not None:
        raise cast(BaseException, pump_task.exception())


# ---------------------------------------------------------------------------------------------- WebSocket


class WebSocketDisconnect(Exception):
    """The client closed the WebSocket (``code`` is its close code)."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}")
        self.code = code
        self.reason = reason


class WebSocket:
    """The WebSocket of the current connection (``from ampulla import websocket``).

    The connection is accepted on the first ``send``/``receive`` unless :meth:`accept` was called.
    """

    #: What :meth:`receive` raises when the client closed the connection.
    Disconnect = WebSocketDisconnect

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.accepted = False
        self.closed = False
        self._connected = False

    @property
    def requested_subprotocols(self) -> list[str]:
        """The subprotocols the client offered."""
        return list(self.scope.get("subprotocols", ()))

    subprotocols = requested_subprotocols

    async def _ensure_connect(self) -> None:
        if not self._connected:
            message = await self._receive()
            if message["type"] != "websocket.connect":
                raise WebSocketDisconnect(1006)
            self._connected = True

    async def accept(self, subprotocol: str | None = None, headers: list[tuple[str, str]] | None = None) -> None:
        """Accept the connection, optionally choosing a subprotocol and sending headers."""
        if self.accepted:
            return
        await self._ensure_connect()
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await self._send(message)
        self.accepted = True

    async def receive(self) -> str | bytes:
        """The next message (text or bytes).

        Raises:
            WebSocketDisconnect: The client closed the connection.
        """
        await self.accept()
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", "") or "")
        text = message.get("text")
        if text is not None:
            return cast(str, text)
        return cast(bytes, message.get("bytes") or b"")

    async def receive_json(self) -> Any:
        """The next message parsed as JSON."""
        return json.loads(await self.receive())

    async def send(self, data: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message.

        Raises:
            WebSocketDisconnect: The client has gone away (code 1006).
        """
        await self.accept()
        message: dict[str, Any] = (
            {"type": "websocket.send", "text": data}
            if isinstance(data, str)
            else {"type": "websocket.send", "bytes": bytes(data)}
        )
        try:
            await self._send(message)
        except OSError:
            # NOTE: servers raise OSError (uvicorn: ClientDisconnected) once the peer is gone.
            self.closed = True
            raise WebSocketDisconnect(1006) from None

    async def send_json(self, data: Any) -> None:
        """Send ``data`` as a JSON text message."""
        await self.send(json.dumps(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (before accepting, this rejects it with HTTP 403)."""
        if self.closed:
            return
        if not self._connected:
            await self._ensure_connect()
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def deny(self, error: HTTPException) -> None:
        """Refuse the handshake before accepting it: with the HTTP error response when the server offers the
        ``websocket.http.response`` extension, else with a close that the server turns into a 403."""
        await self._ensure_connect()
        self.closed = True
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            response = error_response(error)
            headers, has_length = _encode_headers(response)
            body = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in response.response)
            if not has_length:
                headers.append((b"content-length", str(len(body)).encode("latin-1")))
            await self._send(
                {"type": "websocket.http.response.start", "status": response.status_code, "headers": headers}
            )
            await self._send({"type": "websocket.http.response.body", "body": body})
            return
        await self._send({"type": "websocket.close", "code": 1008, "reason": ""})

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[str | bytes]:
        try:
            while True:
                yield await self.receive()
        except WebSocketDisconnect:
            return


async def _handle_websocket(app: Ampulla, scope: Scope, receive: Receive, send: Send) -> None:
    ws = WebSocket(scope, receive, send)
    headers = ASGIHeaders(scope["headers"])
    version = scope.get("http_version", "1.1")
    refusal = check_http_version(str(version)) if version not in SUPPORTED_VERSIONS else None
    if refusal is not None:
        await ws.deny(refusal)
        return
    try:
        request = app.request_class.from_scope(cast(dict[str, Any], scope), app)
    except HTTPException as e:
        await ws.deny(e)
        return
    request._headers = headers
    request.input_stream = io.BytesIO()
    await (app._async_cycle or app._cycles()[1]).websocket(request, ws)


__all__ = [
    "WebSocket",
    "WebSocketDisconnect",
    "handle_asgi",
    "read_body",
    "send_response",
]

