"""The seed application: routing and user inputs (``make run`` serves it on http://127.0.0.1:5000)."""

from __future__ import annotations

import time
from typing import Any

from ampulla import Ampulla, Response, abort, g, request

app = Ampulla(__name__)

# An in-memory store; the database-backed version lives in the data layer's example.
USERS: dict[int, dict[str, Any]] = {}


@app.before_request
def start_timer() -> None:
    g.started = time.perf_counter()


@app.after_request
def add_timing_header(response: Response) -> Response:
    elapsed_ms = (time.perf_counter() - g.started) * 1000
    response.headers["X-Response-Time"] = f"{elapsed_ms:.2f}ms"
    return response


@app.route("/")
def index() -> str:
    return (
        "<h1>Ampulla</h1><ul>"
        '<li><a href="/guest/Ann">/guest/Ann</a></li>'
        '<li><a href="/api/v1/users/">/api/v1/users/</a></li>'
        '<li><a href="/search?q=ampulla">/search?q=ampulla</a></li>'
        "</ul>"
    )


@app.route("/guest/<guest>")
def hello_guest(guest: str) -> str:
    return "Hello %s as Guest" % guest  # noqa: UP031 - the seed's own example


@app.route("/api/v1/users/", methods=["GET", "POST", "PUT"])
def users() -> Any:
    if request.method == "GET":
        return {"users": list(USERS.values())}
    data = request.get_json(silent=True) or request.form
    name = data.get("name")
    if not name:
        abort(400, "a 'name' is required")
    if request.method == "POST":
        user_id = max(USERS, default=0) + 1
        USERS[user_id] = {"id": user_id, "name": name, "email": data.get("email", "")}
        return USERS[user_id], 201
    user_id = int(data.get("id", 0) or 0)
    if user_id not in USERS:
        abort(404)
    USERS[user_id].update(name=name, email=data.get("email", USERS[user_id]["email"]))
    return USERS[user_id]


@app.route("/api/v1/users/<int:id>")
def user(id: int) -> Any:
    if id not in USERS:
        abort(404)
    return USERS[id]


def search() -> dict[str, Any]:
    return {"q": request.args.get("q", ""), "page": request.args.get("page", 1, type=int)}


app.add_url_rule("/search", view_func=search)


@app.route("/upload", methods=["POST"])
def upload() -> dict[str, Any]:
    files = request.files
    return {name: {"filename": f.filename, "size": len(f.read())} for name, f in files.items()}
