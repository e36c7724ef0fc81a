"""Redis sessions while Redis is down: 503 with ``Retry-After``, one log line, and recovery when Redis is back.

A real ``redis.Redis`` client talks to a port of 127.0.0.1 where nothing listens (connection refused), or to a
``redis-server`` this module starts on a free port and stops by its PID. Over WSGI and ASGI, with ``def`` and
``async def`` views.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ampulla import Ampulla, session
from ampulla.redis_sessions import RedisSessionInterface, SessionStoreUnavailable

redis = pytest.importorskip("redis")
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

SECRET = "outage-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_open_clients: list[Any] = []


def _client(port: int) -> Any:
    # Short time-outs and no retry loop: what docs/sessions.md recommends, so that the 503 is immediate.
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    _open_clients.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open_clients:
        _open_clients.pop().close()


def _app(client: Any, **interface: Any) -> Ampulla:
    app = Ampulla(__name__)
    app.secret_key = SECRET
    app.session_interface = RedisSessionInterface(client, prefix="outage-test:", **interface)

    @app.route("/set")
    def set_value() -> str:
        session["user"] = "ada"
        return "stored"

    @app.route("/async-set")
    async def async_set_value() -> str:
        session["user"] = "ada"
        return "stored"

    @app.route("/get")
    def get_value() -> str:
        return str(session.get("user"))

    @app.route("/async-get")
    async def async_get_value() -> str:
        return str(session.get("user"))

    @app.route("/plain")
    def plain() -> str:
        return "no session here"

    return app


def _signed_cookie(sid: str = "some-session-id") -> str:
    from itsdangerous import Signer

    return Signer([SECRET], salt=RedisSessionInterface.salt).sign(sid).decode("ascii")


@pytest.fixture
def down_app() -> Ampulla:
    return _app(_client(_free_port()))


def _session_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ampulla.sessions" and r.levelno >= logging.INFO]


@pytest.mark.parametrize("path", ["/set", "/async-set"])
def test_saving_while_redis_is_down_is_503_without_a_cookie(
    down_app: Ampulla, protocol: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = down_app.test_client(protocol=protocol).get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "session store is temporarily unavailable" in response.text
    assert "stored" not in response.text
    assert "Set-Cookie" not in response.headers
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    [record] = _session_records(caplog)
    assert record.levelno == logging.ERROR
    assert "\n" not in record.getMessage() and "ConnectionError" in record.getMessage()


@pytest.mark.parametrize("path", ["/get", "/async-get"])
def test_reading_while_redis_is_down_is_503(
    down_app: Ampulla, protocol: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = down_app.test_client(protocol=protocol)
    client.set_cookie("session", _signed_cookie())
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert not [r for r in caplog.records if r.exc_info]
    assert [r.levelno for r in _session_records(caplog)] == [logging.ERROR]


def test_one_error_line_per_outage_not_per_request(down_app: Ampulla, caplog: pytest.LogCaptureFixture) -> None:
    client = down_app.test_client()
    client.set_cookie("session", _signed_cookie())
    for path in ["/get", "/set", "/async-get", "/async-set"] * 3:
        assert client.get(path).status_code == 503
    assert [r.levelno for r in _session_records(caplog)] == [logging.ERROR]


def test_views_without_the_session_are_unaffected(down_app: Ampulla, protocol: str) -> None:
    client = down_app.test_client(protocol=protocol)
    client.set_cookie("session", _signed_cookie())
    assert client.get("/plain").text == "no session here"


@pytest.mark.parametrize("path", ["/get", "/set"])
def test_the_apps_503_handler_shapes_the_answer(protocol: str, path: str) -> None:
    app = _app(_client(_free_port()))

    @app.errorhandler(503)
    def unavailable(error: Any) -> tuple[dict[str, Any], int]:
        # A handler that touches the session (flashes, templates) must not fail again.
        return {"error": error.description, "user": session.get("user"), "retry": error.retry_after}, 503

    client = app.test_client(protocol=protocol)
    client.set_cookie("session", _signed_cookie())
    response = client.get(path)
    assert response.status_code == 503
    assert response.get_json() == {
        "error": SessionStoreUnavailable.description,
        "user": None,
        "retry": 5,
    }


def test_retry_after_is_configurable(protocol: str) -> None:
    app = _app(_client(_free_port()), retry_after=30)
    assert app.test_client(protocol=protocol).get("/set").headers["Retry-After"] == "30"
    app = _app(_client(_free_port()), retry_after=None)
    response = app.test_client(protocol=protocol).get("/set")
    assert response.status_code == 503 and "Retry-After" not in response.headers


def test_revoke_while_redis_is_down_is_503(down_app: Ampulla, protocol: str) -> None:
    interface = down_app.session_interface
    assert isinstance(interface, RedisSessionInterface)

    @down_app.route("/revoke")
    def revoke() -> str:
        interface.revoke("someone")
        return "revoked"

    assert down_app.test_client(protocol=protocol).get("/revoke").status_code == 503


def test_other_redis_errors_stay_500(protocol: str) -> None:
    """Only "cannot reach Redis" is a 503; a wrong command or a bug is still a server error."""

    class Broken:
        def get(self, name: str) -> Any:
            raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

        def set(self, name: str, value: str, ex: int | None = None) -> Any:
            raise redis.ResponseError("WRONGTYPE")

        def delete(self, *names: str) -> Any:
            return 0

        def expire(self, name: str, time: int) -> Any:
            return 0

    app = _app(Broken())
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client(protocol=protocol)
    client.set_cookie("session", _signed_cookie())
    assert client.get("/get").status_code == 500


# ---------------------------------------------------------------------------------------------- recovery
@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A ``redis-server`` of this test on a free port; ``start()`` and ``stop()`` it (by PID)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "redis.log"

    def start() -> None:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _client(port).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{log.read_text()}")

    def stop() -> None:
        proc = procs[-1]
        proc.terminate()
        proc.wait(10)

    start()
    try:
        yield {"port": port, "start": start, "stop": stop}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_recovers_when_redis_is_back(
    redis_server: dict[str, Any], protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(_client(redis_server["port"]))
    client = app.test_client(protocol=protocol)
    assert client.get("/set").status_code == 200
    assert client.get("/get").text == "ada"

    redis_server["stop"]()
    assert client.get("/get").status_code == 503
    assert client.get("/async-set").status_code == 503

    redis_server["start"]()  # an empty Redis (nothing saved): the session is gone, not the service
    assert client.get("/get").text == "None"
    assert client.get("/async-set").status_code == 200
    assert client.get("/async-get").text == "ada"
    levels = [(r.levelno, r.getMessage().split(",")[0]) for r in _session_records(caplog)]
    assert levels == [
        (logging.ERROR, levels[0][1]),
        (logging.WARNING, "session store reachable again"),
    ]
    assert not [r for r in caplog.records if r.exc_info]
