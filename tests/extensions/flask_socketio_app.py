"""The Flask-SocketIO application that tests/extensions/test_flask_socketio.py serves with real servers.

Built as Flask-SocketIO's documentation builds one, in threading mode. Run by ``socketio.run`` (Werkzeug's
server: ``python flask_socketio_app.py PORT``) or by gunicorn with threads (``flask_socketio_app:app``).
``SOCKETIO_MESSAGE_QUEUE`` and ``SOCKETIO_CHANNEL`` connect several such processes through Redis.
"""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_socketio imports flask)

# isort: split

import os
import sys
from typing import Any

from flask import Flask, request
from flask_socketio import SocketIO, emit, join_room, leave_room, rooms

app = Flask(__name__)
app.config["SECRET_KEY"] = "socketio-tests"
socketio = SocketIO(
    app,
    async_mode="threading",
    message_queue=os.environ.get("SOCKETIO_MESSAGE_QUEUE") or None,
    channel=os.environ.get("SOCKETIO_CHANNEL", "flask-socketio"),
)

#: Which process answered: clients on two servers tell them apart by this.
PROCESS = os.environ.get("SOCKETIO_PROCESS_NAME", "server")


@app.get("/health")
def health() -> str:
    return "ok"


@app.post("/announce/<room>")
def announce(room: str) -> dict[str, Any]:
    """An HTTP request that emits to a room: with a message queue, clients of every process receive it."""
    socketio.emit("announcement", {"text": request.get_json()["text"], "by": PROCESS}, to=room)
    return {"sent": True}


@socketio.on("connect")
def connect(auth: dict[str, Any] | None) -> bool | None:
    if not auth or auth.get("token") != "letmein":
        return False  # refuses the connection
    emit("welcome", {"sid": request.sid, "by": PROCESS})
    return None


@socketio.on("echo")
def echo(data: Any) -> dict[str, Any]:
    return {"echo": data, "by": PROCESS}


@socketio.on("join")
def join(room: str) -> list[str]:
    join_room(room)
    return sorted(rooms())


@socketio.on("leave")
def leave(room: str) -> list[str]:
    leave_room(room)
    return sorted(rooms())


@socketio.on("say")
def say(room: str, text: str) -> None:
    emit("said", {"text": text, "by": PROCESS}, to=room)


if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=int(sys.argv[1]), allow_unsafe_werkzeug=True)
