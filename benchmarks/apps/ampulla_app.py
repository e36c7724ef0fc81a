"""The benchmark application written for Ampulla: a copy of ``flask_app`` with ampulla imports."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ampulla import Ampulla, g, jsonify, render_template, request
from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, STATIC_ROUTES
from benchmarks.apps.template_common import CONTEXT, PATH, TEMPLATE

if TYPE_CHECKING:
    from ampulla import Response


def create_app() -> Ampulla:
    """Build the app serving every scenario except ``hooks``."""
    app = Ampulla(__name__)

    @app.route("/")
    def hello() -> str:
        return "Hello, World!"

    @app.route("/search")
    def search() -> dict[str, Any]:
        return {
            "q": request.args.get("q"),
            "page": request.args.get("page", type=int),
            "tags": request.args.getlist("tags"),
        }

    @app.route("/form", methods=["POST"])
    def form() -> str:
        data = request.form
        return f"{data['name']} {data['email']} {data['age']}"

    @app.route("/upload", methods=["POST"])
    def upload() -> str:
        upload = request.files["file"]
        size = len(upload.read())
        return f"{request.form['title']} {upload.filename} {size}"

    @app.route("/echo", methods=["POST"])
    def echo() -> Response:
        return jsonify(request.get_json())

    for i in STATIC_ROUTES:
        app.add_url_rule(f"/static{i}", f"static{i}", _static_view(i))
    for i in DYNAMIC_ROUTES:
        app.add_url_rule(f"/items{i}/<int:id>", f"items{i}", _item_view(i))
    return app


def create_hooks_app() -> Ampulla:
    """Build the app for the ``hooks`` scenario."""
    app = Ampulla(__name__)

    @app.before_request
    def set_value() -> None:
        g.x = HOOK_VALUE

    @app.after_request
    def add_header(response: Response) -> Response:
        response.headers["X-Hook"] = "1"
        return response

    @app.route("/hooks")
    def hooks() -> str:
        return f"x={g.x}"

    return app


def create_template_app() -> Ampulla:
    """Build the app for the ``template`` scenario (templates from ``apps/templates``, the default folder)."""
    app = Ampulla(__name__)

    @app.route(PATH)
    def rows() -> str:
        return render_template(TEMPLATE, **CONTEXT)

    return app


def _static_view(i: int) -> Callable[[], str]:
    def view() -> str:
        return f"static {i}"

    return view


def _item_view(i: int) -> Callable[[int], str]:
    def view(id: int) -> str:
        return f"item {i} {id}"

    return view


try:
    from benchmarks.apps.orm_ampulla import create_orm_app  # noqa: F401 - the orm scenario
except ImportError:  # SQLAlchemy missing: only the orm scenario is n/a
    pass
