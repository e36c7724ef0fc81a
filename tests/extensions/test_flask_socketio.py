"""Flask-SocketIO 5.7.0 on Ampulla, in threading mode: its test client (connect, emit, acks, rooms, namespaces,
the HTTP session), real servers (``socketio.run`` on Werkzeug's server, gunicorn with threads) driven by a real
python-socketio client over WebSocket and long-polling, and two server processes joined by a Redis message queue.

Flask-SocketIO serves Socket.IO through the app's WSGI callable (it wraps ``app.wsgi_app``): under an ASGI
server only the app's HTTP routes are served, which the tests check too.
"""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_socketio imports flask)

# isort: split

import os
import queue
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

pytest.importorskip(
    "flask_socketio", reason="Flask-SocketIO is not installed (pip install -e '.[dev]' installs Flask-SocketIO==5.7.0)"
)
socketio_client = pytest.importorskip(
    "socketio", reason="python-socketio's client is not installed (pip install -e '.[dev]' installs it)"
)
pytest.importorskip("requests", reason="python-socketio's client needs requests (pip install -e '.[dev]')")

from flask import Flask, request, session  # noqa: E402
from flask_socketio import (  # noqa: E402
    ConnectionRefusedError,
    Namespace,
    SocketIO,
    close_room,
    emit,
    join_room,
    leave_room,
    rooms,
    send,
)

from tests.e2e.conftest import (  # noqa: E402
    RunningServer,
    _gunicorn_extra_args,
    free_port,
    start_server,
    stop_server,
)

HERE = Path(__file__).resolve().parent
WAIT = 20.0  # upper bound for an event to arrive from a real server (not a timing assertion)


# ---------------------------------------------------------------------------------------------- in process
@pytest.fixture
def chat() -> tuple[Flask, SocketIO]:
    """A chat app as Flask-SocketIO's documentation writes one: event handlers, rooms, acks, a namespace class."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="socketio-tests", TESTING=True)
    socketio = SocketIO(app, async_mode="threading")

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @socketio.on("connect")
    def connect(auth: dict[str, Any] | None) -> None:
        if auth is not None and auth.get("token") == "refuse":
            raise ConnectionRefusedError("bad token")
        emit("welcome", {"sid": request.sid, "user": session.get("user")})

    @socketio.on("message")
    def message(data: Any) -> None:
        send(data)  # back to the sender, as a 'message' (or 'json') event

    @socketio.on("json")
    def json_message(data: Any) -> None:
        send({"got": data}, json=True)

    @socketio.on("echo")
    def echo(*args: Any) -> dict[str, Any]:
        return {"args": list(args), "user": session.get("user")}  # the ack

    @socketio.on("remember")
    def remember(value: str) -> None:
        session["remembered"] = value  # Socket.IO's own copy of the session (manage_session=True)

    @socketio.on("recall")
    def recall() -> dict[str, Any]:
        return {"remembered": session.get("remembered")}

    @socketio.on("join")
    def join(room: str) -> list[str]:
        join_room(room)
        emit("arrived", request.sid, to=room, include_self=False)
        return sorted(rooms())

    @socketio.on("leave")
    def leave(room: str) -> None:
        leave_room(room)

    @socketio.on("say")
    def say(room: str, text: str) -> None:
        emit("said", text, to=room)

    @socketio.on("shout")
    def shout(text: str) -> None:
        emit("shouted", text, broadcast=True)

    @socketio.on("close")
    def close(room: str) -> None:
        close_room(room)

    @socketio.on("fail")
    def fail() -> None:
        raise ValueError("the handler failed")

    @socketio.on_error_default
    def on_error(error: Exception) -> dict[str, str]:
        return {"error": f"{type(error).__name__}: {error}"}

    class Stocks(Namespace):
        def on_connect(self) -> None:
            emit("ready", request.namespace)

        def on_quote(self, symbol: str) -> dict[str, Any]:
            return {"symbol": symbol, "namespace": request.namespace}

    socketio.on_namespace(Stocks("/stocks"))
    return app, socketio


def names(received: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    return [(event["name"], event["args"]) for event in received]


def test_connect_with_auth_and_refusal(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, auth={"token": "ok"})
    assert client.is_connected()
    [(name, [payload])] = names(client.get_received())
    assert name == "welcome" and payload["sid"] and payload["user"] is None
    client.disconnect()
    assert not client.is_connected()

    refused = socketio.test_client(app, auth={"token": "refuse"})
    assert not refused.is_connected()


def test_emit_send_and_acks(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    assert client.emit("echo", 1, "two", {"three": [3]}, callback=True) == {
        "args": [1, "two", {"three": [3]}],
        "user": None,
    }
    client.send("plain text")
    client.send({"a": 1}, json=True)
    # (the test client records a 'message' or 'json' event's data itself as its args)
    assert names(client.get_received()) == [("message", "plain text"), ("json", {"got": {"a": 1}})]
    # An exception in a handler goes to the error handler, whose value is the ack.
    assert client.emit("fail", callback=True) == {"error": "ValueError: the handler failed"}


def test_rooms_reach_their_members_only(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    ann, bob, cid = (socketio.test_client(app) for _ in range(3))
    for client in (ann, bob, cid):
        client.get_received()

    ann_rooms = ann.emit("join", "lobby", callback=True)
    assert "lobby" in ann_rooms and len(ann_rooms) == 2  # the room and the client's own sid
    bob.emit("join", "lobby", callback=True)
    assert [name for name, _ in names(ann.get_received())] == ["arrived"]  # not sent back to bob
    assert bob.get_received() == []

    cid.emit("say", "lobby", "hello")  # a non-member may emit to the room
    assert names(ann.get_received()) == [("said", ["hello"])]
    assert names(bob.get_received()) == [("said", ["hello"])]
    assert cid.get_received() == []

    bob.emit("leave", "lobby")
    ann.emit("say", "lobby", "still there?")
    assert names(ann.get_received()) == [("said", ["still there?"])]
    assert bob.get_received() == []

    cid.emit("shout", "everyone")
    assert all(names(c.get_received()) == [("shouted", ["everyone"])] for c in (ann, bob, cid))

    ann.emit("close", "lobby")
    cid.emit("say", "lobby", "anyone?")
    assert ann.get_received() == [] and bob.get_received() == []


def test_namespace_class(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, namespace="/stocks")
    assert client.is_connected("/stocks")
    assert names(client.get_received("/stocks")) == [("ready", ["/stocks"])]
    assert client.emit("quote", "ACME", namespace="/stocks", callback=True) == {
        "symbol": "ACME",
        "namespace": "/stocks",
    }


def test_http_session_reaches_socketio_handlers(chat: tuple[Flask, SocketIO], protocol: str) -> None:
    """With ``flask_test_client``, the session set by an HTTP view (over WSGI or ASGI) is the handlers' session."""
    app, socketio = chat
    http = app.test_client(protocol=protocol)
    assert http.post("/login/ann").status_code == 200
    client = socketio.test_client(app, flask_test_client=http)
    [(name, [payload])] = names(client.get_received())
    assert name == "welcome" and payload["user"] == "ann"
    assert client.emit("echo", callback=True) == {"args": [], "user": "ann"}

    # Socket.IO keeps its own copy: what a handler stores lasts for the connection, the cookie is not changed.
    client.emit("remember", "blue")
    assert client.emit("recall", callback=True) == {"remembered": "blue"}
    with http.session_transaction() as saved:
        assert dict(saved) == {"user": "ann"}
    other = socketio.test_client(app, flask_test_client=http)
    assert other.emit("recall", callback=True) == {"remembered": None}


def test_emit_from_an_http_view(
    chat: tuple[Flask, SocketIO], protocol: str, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """``socketio.emit`` in a view (``def`` or ``async def``, under WSGI or ASGI) reaches the connected clients.

    Under ASGI the Socket.IO endpoint itself is not served: Flask-SocketIO answers through ``app.wsgi_app``.
    """
    app, socketio = chat

    def publish() -> dict[str, bool]:
        socketio.emit("news", request.get_json(), to=request.args.get("room"))
        return {"sent": True}

    app.add_url_rule("/publish", view_func=as_view(publish), methods=["POST"])
    ann, bob = socketio.test_client(app), socketio.test_client(app)
    ann.get_received(), bob.get_received()
    ann.emit("join", "lobby", callback=True)
    bob.get_received()

    http = app.test_client(protocol=protocol)
    assert http.post("/publish", json={"headline": "all"}).get_json() == {"sent": True}
    assert names(ann.get_received()) == [("news", [{"headline": "all"}])]
    assert names(bob.get_received()) == [("news", [{"headline": "all"}])]
    assert http.post("/publish?room=lobby", json={"headline": "lobby"}).status_code == 200
    assert names(ann.get_received()) == [("news", [{"headline": "lobby"}])]
    assert bob.get_received() == []

    polling = http.get("/socket.io/?EIO=4&transport=polling")
    if protocol == "wsgi":
        assert polling.status_code == 200 and polling.get_data(as_text=True).startswith("0{")  # an Engine.IO open
    else:
        assert polling.status_code == 404


# ---------------------------------------------------------------------------------------------- real servers
class Listener:
    """A python-socketio client that records every event it receives."""

    def __init__(self) -> None:
        self.client = socketio_client.Client(reconnection=False)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client.on("*", self._record)

    def _record(self, event: str, *args: Any) -> None:
        self.events.put((event, args[0] if len(args) == 1 else list(args)))

    def connect(self, port: int, transport: str, token: str = "letmein") -> Listener:
        self.client.connect(
            f"http://127.0.0.1:{port}", auth={"token": token}, transports=[transport], wait_timeout=WAIT
        )
        return self

    def next(self, name: str) -> Any:
        """The data of the next ``name`` event (events of other names before it are dropped)."""
        while True:
            event, data = self.events.get(timeout=WAIT)
            if event == name:
                return data

    def call(self, event: str, *args: Any) -> Any:
        return self.client.call(event, args[0] if len(args) == 1 else args, timeout=WAIT)

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def listeners() -> Iterator[Callable[[], Listener]]:
    made: list[Listener] = []

    def make() -> Listener:
        made.append(Listener())
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def _command(server: str, port: int) -> list[str]:
    if server == "werkzeug":
        return [sys.executable, str(HERE / "flask_socketio_app.py"), str(port)]
    return [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "16", "--bind", f"127.0.0.1:{port}",
        *_gunicorn_extra_args(), "flask_socketio_app:app",
    ]  # fmt: skip


def _start(server: str, log_dir: Path, **env: str) -> RunningServer:
    """``flask_socketio_app`` served by ``socketio.run`` (Werkzeug's server) or gunicorn, on a free port."""
    port = free_port()
    with mock.patch.dict(os.environ, env):
        return start_server(server, _command(server, port), port, log_dir / f"{server}-{port}.log", cwd=HERE)


def _post(server: RunningServer, path: str, body: bytes) -> int:
    conn = server.connection()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = _start(str(request.param), tmp_path_factory.mktemp("socketio-logs"))
    try:
        yield running
    finally:
        stop_server(running)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_real_server_connect_ack_and_rooms(
    served: RunningServer, transport: str, listeners: Callable[[], Listener]
) -> None:
    ann = listeners().connect(served.port, transport)
    bob = listeners().connect(served.port, transport)
    assert ann.client.transport() == transport
    assert ann.next("welcome")["sid"] == ann.client.get_sid()

    assert ann.call("echo", {"n": 1}) == {"echo": {"n": 1}, "by": "server"}
    room = f"room-{transport}"
    assert room in ann.call("join", room)
    assert room in bob.call("join", room)
    ann.client.emit("say", (room, "hello"))
    assert ann.next("said") == {"text": "hello", "by": "server"}
    assert bob.next("said") == {"text": "hello", "by": "server"}

    # An HTTP request to the same server emits to the room.
    assert _post(served, f"/announce/{room}", b'{"text": "from http"}') == 200
    assert bob.next("announcement") == {"text": "from http", "by": "server"}

    assert room not in bob.call("leave", room)


def test_real_server_refuses_a_connection(served: RunningServer, listeners: Callable[[], Listener]) -> None:
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        listeners().connect(served.port, "websocket", token="wrong")
    assert listeners().connect(served.port, "websocket").call("echo", 1) == {"echo": 1, "by": "server"}


# ---------------------------------------------------------------------------------------------- message queue
@pytest.fixture
def redis_url() -> str:
    """The Redis server's URL; pub/sub is not per database: a channel of its own isolates each test."""
    redis = pytest.importorskip("redis")
    url = os.environ.get("AMPULLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"Redis at {url} is unreachable: {e}")
    finally:
        client.close()
    return url


def test_two_processes_share_rooms_through_redis(
    redis_url: str, tmp_path: Path, listeners: Callable[[], Listener]
) -> None:
    """Clients of two server processes (Werkzeug's and gunicorn's) in one room; emits from either process, from
    an HTTP view, and from an external ``SocketIO(message_queue=...)`` reach both."""
    channel = f"ampulla-test-socketio-{secrets.token_hex(4)}"
    env = {"SOCKETIO_MESSAGE_QUEUE": redis_url, "SOCKETIO_CHANNEL": channel}
    first = _start("werkzeug", tmp_path, SOCKETIO_PROCESS_NAME="first", **env)
    try:
        second = _start("gunicorn", tmp_path, SOCKETIO_PROCESS_NAME="second", **env)
        try:
            ann = listeners().connect(first.port, "websocket")
            bob = listeners().connect(second.port, "polling")
            assert ann.next("welcome")["by"] == "first" and bob.next("welcome")["by"] == "second"
            ann.call("join", "lobby")
            bob.call("join", "lobby")

            bob.client.emit("say", ("lobby", "from bob"))  # handled by the second process
            assert ann.next("said") == {"text": "from bob", "by": "second"}
            assert bob.next("said") == {"text": "from bob", "by": "second"}

            assert _post(first, "/announce/lobby", b'{"text": "news"}') == 200
            assert bob.next("announcement") == {"text": "news", "by": "first"}
            assert ann.next("announcement") == {"text": "news", "by": "first"}

            external = SocketIO(message_queue=redis_url, channel=channel)  # a worker with no app, no server
            external.emit("said", {"text": "from outside", "by": "external"}, to="lobby")
            assert ann.next("said") == {"text": "from outside", "by": "external"}
            assert bob.next("said") == {"text": "from outside", "by": "external"}
        finally:
            stop_server(second)
    finally:
        stop_server(first)
