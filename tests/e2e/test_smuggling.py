"""Request smuggling shapes and malformed Host headers sent over raw sockets to real servers on 127.0.0.1.

uvicorn with h11 passes a request carrying both ``Content-Length`` and ``Transfer-Encoding`` to the app; the app
must answer 400 with ``Connection: close`` so the request hidden after the ``0`` chunk is never answered.
gunicorn, granian and the development server refuse or neutralise the shape themselves; for each, the hidden
request must never be answered. Reads end at the server's close (the timeout only bounds a failing test).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RunningServer, free_port, server_command, start_server, stop_server

SERVERS = ("uvicorn", "gunicorn", "granian-asgi", "granian-wsgi", "ampulla-run-dev")

SMUGGLED = (
    b"POST /form HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"0\r\n"
    b"\r\n"
    b"GET /guest/smuggled HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"\r\n"
)


@pytest.fixture(scope="module", params=SERVERS)
def raw_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``serverapp`` served by each server in turn."""
    name = str(request.param)
    port = free_port()
    log_path = tmp_path_factory.mktemp("smuggling-logs") / f"{name}.log"
    running = start_server(name, server_command(name, port), port, log_path)
    try:
        yield running
    finally:
        stop_server(running)


def exchange(port: int, data: bytes, timeout: float = 15.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; return everything read and whether the server closed the connection.

    ``False`` means the connection was still open when ``timeout`` ran out.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except TimeoutError:
            return received, False


def test_uvicorn_request_with_content_length_and_transfer_encoding_is_refused_by_the_app(tmp_path: Path) -> None:
    port = free_port()
    # h11, uvicorn's pure-Python parser, passes such a request on to the app; httptools (used when installed)
    # refuses it itself, before the app could.
    command = [*server_command("uvicorn", port), "--http", "h11"]
    running = start_server("uvicorn", command, port, tmp_path / "uvicorn.log")
    try:
        received, closed = exchange(port, SMUGGLED)
    finally:
        stop_server(running)
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 400 "), received
    assert b"server: uvicorn" in head  # answered through the server, by the app
    assert b"connection: close" in head
    assert b"Content-Length and Transfer-Encoding" in received  # the app's message, not the server's
    assert closed, "the connection must be closed after the refusal"
    assert received.count(b"HTTP/1.") == 1, received
    assert b"smuggled" not in received


def test_hidden_request_is_never_answered(raw_server: RunningServer) -> None:
    received, closed = exchange(raw_server.port, SMUGGLED)
    assert closed, f"{raw_server.name} kept the connection open"
    assert received.count(b"HTTP/1.") == 1, received
    assert b"smuggled" not in received
    status = int(received.split(b" ", 2)[1])
    # granian drops Content-Length, reads the chunked body and closes the connection: an empty form, 200.
    assert status == 400 or (raw_server.name.startswith("granian") and status == 200), received


@pytest.mark.parametrize(
    "host",
    [b"example.com:@evil.test", b"example.com:80@evil.test", b"evil.test#.example.org", b"evil.test\\.example.org"],
)
def test_malformed_host_is_400_through_the_server(raw_server: RunningServer, host: bytes) -> None:
    request = b"GET /guest/x HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    received, _ = exchange(raw_server.port, request)
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert b"evil" not in received.split(b"\r\n\r\n", 1)[1]
