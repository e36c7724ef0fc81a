"""A malformed or cut-short chunked body sent to gunicorn answers 400, and the server log has no traceback.

gunicorn raises its own parse errors (``InvalidChunkSize``, ``ChunkMissingTerminator``, ``NoMoreData``...) from
``wsgi.input`` while the app reads the body; Ampulla's body reader turns them into 400s. The requests go over a
raw socket, since no HTTP client sends a broken chunked body.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RunningServer, free_port, server_command, start_server, stop_server

pytest.importorskip("gunicorn")

#: Bodies after the headers of a chunked POST; each is malformed or ends early.
BAD_BODIES = {
    "bad-chunk-size": b"zz\r\n",
    "chunk-without-terminator": b"3\r\nabcXY0\r\n\r\n",
    "bad-chunk-extension": b"3;\rx\r\nabc\r\n0\r\n\r\n",
    "negative-size": b"-5\r\nabcde\r\n0\r\n\r\n",
}
#: Bodies that stop in the middle, then the client closes its sending side.
TRUNCATED_BODIES = {
    "mid-chunk": b"a\r\nabc",
    "before-last-chunk": b"3\r\nabc\r\n",
}
ROUTES = {
    "/form": b"application/x-www-form-urlencoded",
    "/json": b"application/json",
    "/upload": b"multipart/form-data; boundary=b",
}


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("gunicorn-body") / "gunicorn.log"
    running = start_server("gunicorn", server_command("gunicorn", port), port, log_path)
    try:
        yield running
    finally:
        stop_server(running)


def _head(path: str, content_type: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n".encode()
        + b"Content-Type: "
        + content_type
        + b"\r\n\r\n"
    )


def _exchange(server: RunningServer, data: bytes, half_close: bool) -> bytes:
    """Send ``data``, optionally close the sending side, and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and not half_close and _complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def _status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1."), reply[:200]
    return int(reply.split(b" ", 2)[1])


def _assert_quiet_log(server: RunningServer) -> None:
    # gunicorn prints its own "Error handling request" with a traceback for an exception that escapes the app.
    time.sleep(0.2)  # let the worker's last line reach the log file (ordering only, nothing is asserted on time)
    output = server.output()
    assert "Traceback" not in output, output[-5000:]
    assert "Error handling request" not in output, output[-5000:]
    assert "[ERROR]" not in output, output[-5000:]


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("body", list(BAD_BODIES))
def test_malformed_chunked_body_answers_400(gunicorn: RunningServer, path: str, body: str) -> None:
    reply = _exchange(gunicorn, _head(path, ROUTES[path]) + BAD_BODIES[body], half_close=False)
    assert _status(reply) == 400, reply[:500]
    _assert_quiet_log(gunicorn)


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("body", list(TRUNCATED_BODIES))
def test_truncated_chunked_body_answers_400(gunicorn: RunningServer, path: str, body: str) -> None:
    reply = _exchange(gunicorn, _head(path, ROUTES[path]) + TRUNCATED_BODIES[body], half_close=True)
    assert _status(reply) == 400, reply[:500]
    _assert_quiet_log(gunicorn)


def test_client_reset_mid_body_leaves_no_traceback(gunicorn: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10) as sock:
        sock.sendall(_head("/form", ROUTES["/form"]) + b"a\r\nabc")
        # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # The worker is still serving, and said nothing about the reset.
    conn = gunicorn.connection()
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn.close()
    _assert_quiet_log(gunicorn)


def test_a_good_chunked_body_still_works(gunicorn: RunningServer) -> None:
    reply = _exchange(gunicorn, _head("/form", ROUTES["/form"]) + b"3\r\na=1\r\n0\r\n\r\n", half_close=False)
    assert _status(reply) == 200
    assert b'"a":["1"]' in reply
