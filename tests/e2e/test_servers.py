"""The app over the wire under real servers: gunicorn (WSGI), uvicorn (ASGI), granian (ASGI and WSGI) and
``ampulla run`` (the development server, and the servers it starts with ``--server``)."""

from __future__ import annotations

import http.client
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import ampulla
from ampulla import Ampulla

from .conftest import (
    ASGI_SERVERS,
    PYTHON,
    RunningServer,
    free_port,
    server_command,
    start_server,
    stop_server,
)


@pytest.fixture
def web(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10.0) as client:
        yield client


def test_path_parameter(web: httpx.Client) -> None:
    response = web.get("/guest/Alice")
    assert response.status_code == 200
    assert response.text == "Hello Alice as Guest"
    assert response.headers["content-type"].startswith("text/html")


def test_form_post_echo(web: httpx.Client) -> None:
    response = web.post("/form", data={"name": "Zoë & co", "tag": ["a", "b"]})
    assert response.status_code == 200
    assert response.json() == {"form": {"name": ["Zoë & co"], "tag": ["a", "b"]}}


def test_multipart_upload_reports_size_and_filename(web: httpx.Client) -> None:
    payload = os.urandom(300_000)
    response = web.post(
        "/upload", files={"file": ("report.bin", payload, "application/octet-stream")}, data={"note": "hi"}
    )
    assert response.status_code == 200
    assert response.json() == {"filename": "report.bin", "size": len(payload), "note": "hi"}


def test_streamed_generator_response_is_chunked(server: RunningServer) -> None:
    conn = server.connection()
    try:
        conn.request("GET", "/stream")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding", "").lower() == "chunked"


def test_json_echo(web: httpx.Client) -> None:
    document = {"user": {"name": "Łukasz", "roles": ["admin", "dev"]}, "n": 3.5, "ok": True, "none": None}
    response = web.post("/json", json=document)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"received": document}


def test_unknown_path_is_404(web: httpx.Client) -> None:
    assert web.get("/no/such/page").status_code == 404


def test_wrong_method_is_405_with_allow(web: httpx.Client) -> None:
    response = web.delete("/guest/Alice")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


def test_async_view(web: httpx.Client) -> None:
    assert web.get("/async/21").json() == {"double": 42}


def test_head_has_headers_and_no_body(server: RunningServer) -> None:
    conn = server.connection()
    try:
        conn.request("HEAD", "/guest/Alice")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert body == b""
    assert response.getheader("Content-Length") == str(len("Hello Alice as Guest"))


def test_failing_view_is_500_and_server_keeps_serving(web: httpx.Client) -> None:
    assert web.get("/boom").status_code == 500
    assert web.get("/guest/again").text == "Hello again as Guest"


def test_sequential_requests_on_one_connection(server: RunningServer) -> None:
    conn = server.connection()
    try:
        for name in ("a", "b", "c"):
            conn.request("GET", f"/guest/{name}")
            response = conn.getresponse()
            assert response.read() == f"Hello {name} as Guest".encode()
    finally:
        conn.close()


def test_concurrent_requests(server: RunningServer) -> None:
    def fetch(i: int) -> str:
        conn = server.connection()
        try:
            conn.request("GET", f"/guest/{i}")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(16)))
    assert results == [f"Hello {i} as Guest" for i in range(16)]


def test_websocket_echo(server: RunningServer) -> None:
    if server.name not in ASGI_SERVERS:
        pytest.skip("WebSockets need an ASGI server")
    if not hasattr(Ampulla, "websocket") or not hasattr(ampulla, "websocket"):
        pytest.skip("the WebSocket API (@app.websocket, ampulla.websocket) is not there yet")
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10, close_timeout=5) as ws:
        ws.send("hello over the wire")
        assert ws.recv(timeout=10) == "hello over the wire"


# ---------------------------------------------------------------------------------------------- dev server
def test_dev_server_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    running = start_server("ampulla-run-dev", server_command("ampulla-run-dev", port), port, tmp_path / "dev.log")
    try:
        running.proc.send_signal(signal.SIGINT)
        code = running.proc.wait(10)
    finally:
        stop_server(running)
    output = running.output()
    assert code == 0, output
    assert "Traceback" not in output
    assert f"Running on http://127.0.0.1:{port}" in output
    assert "development server" in output
    assert _get(port, "/health") is None, output


_RELOAD_APP = """
from ampulla import Ampulla

app = Ampulla(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/version")
def version():
    return "{version}"
"""


def _get(port: int, path: str) -> tuple[int, str] | None:
    """The status and body of ``GET path``, or ``None`` when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _wait_for(port: int, path: str, expected: tuple[int, str] | None, timeout: float = 30.0) -> bool:
    """Poll ``GET path`` until it gives ``expected`` (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _get(port, path)
        if got == expected or (expected is not None and expected[1] == "*" and got and got[0] == expected[0]):
            return True
        time.sleep(0.1)
    return False


def _start_reloader(tmp_path: Path) -> tuple[RunningServer, Path, int]:
    module = tmp_path / "reloadapp.py"
    module.write_text(textwrap.dedent(_RELOAD_APP).format(version="v1"))
    port = free_port()
    command = [PYTHON, "-m", "ampulla", "--app", "reloadapp:app", "run", "--reload", "--port", str(port)]
    return start_server("reloader", command, port, tmp_path / "reload.log", cwd=tmp_path), module, port


def test_reload_restarts_the_dev_server_on_code_changes(tmp_path: Path) -> None:
    running, module, port = _start_reloader(tmp_path)
    try:
        assert _get(port, "/version") == (200, "v1")
        module.write_text(textwrap.dedent(_RELOAD_APP).format(version="v2"))
        assert _wait_for(port, "/version", (200, "v2")), running.output()

        # An app that no longer imports is answered with 500 (the error is printed) until the next change.
        module.write_text("this is not Python (\n")
        assert _wait_for(port, "/version", (500, "*")), running.output()
        assert running.proc.poll() is None, "the reloader must survive an app that fails to import"

        module.write_text(textwrap.dedent(_RELOAD_APP).format(version="v3"))
        assert _wait_for(port, "/version", (200, "v3")), running.output()
    finally:
        code = stop_server(running)
    assert code == 0, running.output()
    # The reloader stopped its child: nothing answers on the port any more.
    assert _wait_for(port, "/version", None, timeout=10), running.output()
    output = running.output()
    assert "Detected change in" in output
    assert "SyntaxError" in output


def test_ctrl_c_stops_the_reloader_and_its_server(tmp_path: Path) -> None:
    running, _, port = _start_reloader(tmp_path)
    try:
        os.killpg(running.proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground process group
        code = running.proc.wait(15)
    finally:
        stop_server(running)
    assert code == 0, running.output()
    assert "Traceback" not in running.output()
    assert _wait_for(port, "/version", None, timeout=10), running.output()
