"""WebSocket routes: the ``websocket`` proxy, the test session, accept/close/reject, hooks, errors, blueprints."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ampulla import Ampulla, g, request, url_for
from ampulla.asgi import WebSocketDisconnect
from ampulla.blueprints import Blueprint
from ampulla.globals import websocket
from ampulla.testing import WebSocketClosed, WebSocketRejected


def test_websocket_proxy_is_importable_from_the_package() -> None:
    # The docs (Scaffold.websocket) tell users to write ``from ampulla import websocket``.
    from ampulla import websocket as public_websocket

    assert public_websocket is websocket


def test_websocket_proxy_outside_a_connection_raises(app: Ampulla) -> None:
    with pytest.raises(RuntimeError):
        websocket.accepted  # noqa: B018
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="WebSocket"):
        websocket.accepted  # noqa: B018


def test_echo_with_converters_text_and_bytes(app: Ampulla) -> None:
    @app.websocket("/ws/<room>/<int:seat>")
    async def chat(room: str, seat: int) -> None:
        while True:
            message = await websocket.receive()
            if isinstance(message, bytes):
                await websocket.send(message[::-1])
            else:
                await websocket.send(f"{room}:{seat + 1}:{message}")

    client = app.test_client()
    with client.websocket("/ws/lobby/41") as ws:
        ws.send("hi")
        assert ws.receive() == "lobby:42:hi"
        ws.send(b"\x00\x01\x02")
        assert ws.receive() == b"\x02\x01\x00"
        ws.send("again")
        assert ws.receive() == "lobby:42:again"


def test_converter_mismatch_is_rejected(app: Ampulla) -> None:
    @app.websocket("/ws/<int:seat>")
    async def seat_view(seat: int) -> None:
        await websocket.accept()

    with pytest.raises(WebSocketRejected), app.test_client().websocket("/ws/not-a-number"):
        pass


def test_request_and_url_for_inside_a_websocket_view(app: Ampulla) -> None:
    @app.websocket("/ws/<name>")
    async def info(name: str) -> None:
        await websocket.send_json(
            {
                "path": request.path,
                "token": request.args.get("token"),
                "header": request.headers.get("X-Client"),
                "endpoint": request.endpoint,
                "url": url_for("info", name="other"),
                "scheme": websocket.scope["scheme"],
            }
        )

    with app.test_client().websocket("/ws/ann?token=abc", headers={"X-Client": "tests"}) as ws:
        assert ws.receive_json() == {
            "path": "/ws/ann",
            "token": "abc",
            "header": "tests",
            "endpoint": "info",
            "url": "ws://localhost/ws/other",  # WebSocket rules build external ws:// URLs, as Werkzeug's
            "scheme": "ws",
        }


def test_async_iteration_ends_when_the_client_leaves(app: Ampulla) -> None:
    received: list[Any] = []

    @app.websocket("/ws")
    async def collect() -> None:
        async for message in websocket:
            received.append(message)
        received.append("loop ended")

    with app.test_client().websocket("/ws") as ws:
        ws.send("a")
        ws.send("b")
    assert received == ["a", "b", "loop ended"]


def test_subprotocol_negotiation_and_accept_headers(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def negotiate() -> None:
        offered = websocket.requested_subprotocols
        chosen = next((p for p in offered if p.startswith("v2.")), None)
        await websocket.accept(subprotocol=chosen, headers=[("X-Server", "ampulla")])
        await websocket.send(",".join(offered))

    with app.test_client().websocket("/ws", subprotocols=["v1.chat", "v2.chat"]) as ws:
        assert ws.subprotocol == "v2.chat"
        assert ("x-server", "ampulla") in [(k.lower(), v) for k, v in ws.accept_headers]
        assert ws.receive() == "v1.chat,v2.chat"

    with app.test_client().websocket("/ws") as ws:
        assert ws.subprotocol is None
        assert ws.receive() == ""


def test_json_helpers(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def calc() -> None:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"sum": sum(data["numbers"]), "echo": data})

    with app.test_client().websocket("/ws") as ws:
        ws.send_json({"numbers": [1, 2, 3.5]})
        assert ws.receive_json() == {"sum": 6.5, "echo": {"numbers": [1, 2, 3.5]}}


def test_server_closes_with_a_code(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def closer() -> None:
        await websocket.accept()
        await websocket.send("bye soon")
        await websocket.close(4001, "policy")

    with app.test_client().websocket("/ws") as ws:
        assert ws.receive() == "bye soon"
        with pytest.raises(WebSocketClosed) as info:
            ws.receive()
        assert info.value.code == 4001
        assert ws.close_code == 4001


def test_view_returning_closes_normally(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def once() -> None:
        await websocket.send("only message")

    with app.test_client().websocket("/ws") as ws:
        assert ws.receive() == "only message"
        with pytest.raises(WebSocketClosed) as info:
            ws.receive()
        assert info.value.code == 1000


def test_close_before_accept_rejects_the_connection(app: Ampulla) -> None:
    torn_down: list[Any] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        torn_down.append(exc)

    @app.websocket("/ws")
    async def refuse() -> None:
        if request.args.get("token") != "secret":
            await websocket.close(4003)
            return
        await websocket.accept()
        await websocket.send("welcome")

    client = app.test_client()
    with pytest.raises(WebSocketRejected) as info, client.websocket("/ws"):
        pass
    assert info.value.code == 4003
    assert torn_down == [None]

    with client.websocket("/ws?token=secret") as ws:
        assert ws.receive() == "welcome"


def test_unknown_path_is_rejected(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def known() -> None:
        await websocket.accept()

    with pytest.raises(WebSocketRejected), app.test_client().websocket("/nowhere"):
        pass


def test_http_route_is_not_a_websocket_route(app: Ampulla) -> None:
    @app.route("/page")
    def page() -> str:
        return "page"

    with pytest.raises(WebSocketRejected), app.test_client().websocket("/page"):
        pass


def test_before_websocket_returning_a_value_rejects(app: Ampulla) -> None:
    called: list[str] = []

    @app.before_websocket
    async def check_token() -> str | None:
        if request.args.get("token") != "ok":
            return "forbidden"
        g.user = "ann"
        return None

    @app.websocket("/ws")
    async def protected() -> None:
        called.append("view")
        await websocket.send(f"hello {g.user}")

    client = app.test_client()
    with pytest.raises(WebSocketRejected), client.websocket("/ws"):
        pass
    assert called == []

    with client.websocket("/ws?token=ok") as ws:
        assert ws.receive() == "hello ann"
    assert called == ["view"]


def test_url_value_preprocessor_runs_for_websockets(app: Ampulla) -> None:
    seen: list[str] = []

    @app.url_value_preprocessor
    def pull(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and "room" in values:
            g.room = values.pop("room")

    @app.websocket("/ws/<room>")
    async def room_view() -> None:
        seen.append(g.room)
        await websocket.send(g.room)

    with app.test_client().websocket("/ws/blue") as ws:
        assert ws.receive() == "blue"
    assert seen == ["blue"]


def test_client_leaving_while_the_view_awaits_receive(app: Ampulla) -> None:
    events: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append(f"teardown {exc!r}")

    @app.websocket("/ws")
    async def wait_forever() -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.receive()
        except WebSocketDisconnect as e:
            events.append(f"disconnect {e.code}")
            raise

    with app.test_client().websocket("/ws") as ws:
        ws.send("x")
        ws.close(4000)
    assert events == ["disconnect 4000", "teardown None"]


def test_client_leaving_without_view_handling_it(app: Ampulla) -> None:
    events: list[str] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append(f"teardown {exc!r}")

    @app.websocket("/ws")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    with app.test_client().websocket("/ws") as ws:
        ws.send("ping")
        assert ws.receive() == "ping"
    # The framework swallows the normal disconnect: no error for teardown, nothing raised in the test.
    assert events == ["teardown None"]


def test_exception_in_view_closes_with_1011_and_tears_down(app: Ampulla) -> None:
    app.testing = False
    events: list[Any] = []

    @app.teardown_request
    def td(exc: BaseException | None) -> None:
        events.append(exc)

    @app.websocket("/ws")
    async def fragile() -> None:
        await websocket.accept()
        message = await websocket.receive()
        if message == "boom":
            raise ValueError("bad message")

    with app.test_client().websocket("/ws") as ws:
        ws.send("boom")
        with pytest.raises(WebSocketClosed) as info:
            ws.receive()
        assert info.value.code == 1011
    assert len(events) == 1
    assert isinstance(events[0], ValueError)


def test_teardown_appcontext_runs_after_a_websocket(app: Ampulla) -> None:
    events: list[str] = []

    @app.teardown_appcontext
    def td(exc: BaseException | None) -> None:
        events.append("appcontext")

    @app.websocket("/ws")
    async def quick() -> None:
        await websocket.send("x")

    with app.test_client().websocket("/ws") as ws:
        assert ws.receive() == "x"
    assert events == ["appcontext"]


def test_websocket_view_can_await_other_tasks(app: Ampulla) -> None:
    @app.websocket("/ws")
    async def ticker() -> None:
        async def later(i: int) -> str:
            await asyncio.sleep(0.001)
            return f"{request.path}#{i}"

        for text in await asyncio.gather(*(later(i) for i in range(3))):
            await websocket.send(text)

    with app.test_client().websocket("/ws") as ws:
        assert [ws.receive() for _ in range(3)] == ["/ws#0", "/ws#1", "/ws#2"]


# ---------------------------------------------------------------------------------------------- blueprints


def test_websocket_routes_in_blueprints(app: Ampulla) -> None:
    bp = Blueprint("live", __name__, url_prefix="/live")
    outside: list[str] = []

    @bp.before_websocket
    def bp_only() -> None:
        g.scope = "blueprint"

    @app.before_websocket
    def everywhere() -> None:
        outside.append(request.path)

    @bp.websocket("/feed/<int:n>")
    async def feed(n: int) -> None:
        await websocket.send_json(
            {
                "endpoint": request.endpoint,
                "blueprint": request.blueprint,
                "scope": g.get("scope"),
                "n": n,
                "local": url_for(".feed", n=n + 1),
            }
        )

    @app.websocket("/plain")
    async def plain() -> None:
        await websocket.send(str(g.get("scope")))

    app.register_blueprint(bp)
    client = app.test_client()
    with client.websocket("/live/feed/1") as ws:
        assert ws.receive_json() == {
            "endpoint": "live.feed",
            "blueprint": "live",
            "scope": "blueprint",
            "n": 1,
            "local": "ws://localhost/live/feed/2",
        }
    with client.websocket("/plain") as ws:
        assert ws.receive() == "None"
    assert outside == ["/live/feed/1", "/plain"]


# ---------------------------------------------------------------------------------------------- WSGI


def test_websocket_upgrade_over_wsgi_gets_400_mentioning_asgi(app: Ampulla) -> None:
    @app.websocket("/ws/<room>")
    async def room(room: str) -> None:
        await websocket.accept()

    client = app.test_client(protocol="wsgi")
    response = client.get("/ws/lobby", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status_code == 400
    assert "ASGI" in response.text
    # Without the upgrade headers the websocket-only rule is not an HTTP route: Werkzeug's WebsocketMismatch.
    assert client.get("/ws/lobby").status_code == 400
