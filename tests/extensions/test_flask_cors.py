"""Flask-CORS 6.0.5 on Ampulla: preflight and actual responses, per-resource and per-route (``@cross_origin``)
settings, error responses, and no CORS headers for origins that are not allowed."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_cors imports flask)

# isort: split

from collections.abc import Callable
from typing import Any

import pytest

flask_cors = pytest.importorskip(
    "flask_cors", reason="Flask-CORS is not installed (pip install -e '.[dev]' installs Flask-CORS==6.0.5)"
)

from flask import Flask, abort  # noqa: E402
from flask_cors import CORS, cross_origin  # noqa: E402

GOOD = "https://app.example"
EVIL = "https://evil.example"


def cors_headers(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture
def cors_app(as_view: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Flask:
    """The app of Flask-CORS's documentation: ``CORS(app, resources=...)`` for an API, one route with its own
    ``@cross_origin`` settings, and routes without CORS."""
    app = Flask(__name__)
    app.config["TESTING"] = True
    CORS(
        app,
        resources={r"/api/*": {"origins": [GOOD, r"https://.*\.partner\.example"]}},
        supports_credentials=True,
        expose_headers=["X-Total-Count"],
        max_age=600,
    )

    def items() -> Any:
        return {"items": [1, 2]}, 200, {"X-Total-Count": "2"}

    def missing() -> Any:
        abort(404)

    def plain() -> Any:
        return "no cors here"

    app.add_url_rule("/api/items", view_func=as_view(items), methods=["GET", "POST", "DELETE"])
    app.add_url_rule("/api/missing", view_func=as_view(missing))
    app.add_url_rule("/plain", view_func=as_view(plain))

    # cross_origin calls the view itself, without ensure_sync: it takes def views only (on Flask too).
    @app.route("/public", methods=["GET", "PUT"])
    @cross_origin(origins="*", methods=["GET"], allow_headers=["X-Token"])
    def public() -> Any:
        return "public"

    return app


def test_preflight_for_an_allowed_origin(cors_app: Flask, protocol: str) -> None:
    client = cors_app.test_client(protocol=protocol)
    response = client.options(
        "/api/items",
        headers={
            "Origin": GOOD,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "Content-Type, X-Requested-With",
        },
    )
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == GOOD
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-max-age"] == "600"
    assert "DELETE" in headers["access-control-allow-methods"].split(", ")
    assert headers["access-control-allow-headers"] == "Content-Type, X-Requested-With"
    assert "Origin" in response.headers["Vary"]
    assert response.data == b""


def test_actual_response_for_allowed_origins(cors_app: Flask, protocol: str) -> None:
    client = cors_app.test_client(protocol=protocol)
    for origin in (GOOD, "https://shop.partner.example"):
        response = client.get("/api/items", headers={"Origin": origin})
        assert response.status_code == 200 and response.json == {"items": [1, 2]}
        assert cors_headers(response) == {
            "access-control-allow-origin": origin,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": "X-Total-Count",
        }
        assert "Origin" in response.headers["Vary"]
    response = client.post("/api/items", headers={"Origin": GOOD})
    assert response.headers["Access-Control-Allow-Origin"] == GOOD


def test_error_responses_carry_cors_headers(cors_app: Flask, protocol: str) -> None:
    response = cors_app.test_client(protocol=protocol).get("/api/missing", headers={"Origin": GOOD})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == GOOD


def test_origins_not_allowed_get_no_cors_headers(cors_app: Flask, protocol: str) -> None:
    client = cors_app.test_client(protocol=protocol)
    preflight = client.options("/api/items", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and cors_headers(preflight) == {}
    actual = client.get("/api/items", headers={"Origin": EVIL})
    assert actual.status_code == 200 and cors_headers(actual) == {}
    # Nor do routes outside the configured resources, whatever the origin.
    assert cors_headers(client.get("/plain", headers={"Origin": GOOD})) == {}


def test_cross_origin_on_one_route(cors_app: Flask, protocol: str) -> None:
    client = cors_app.test_client(protocol=protocol)
    response = client.get("/public", headers={"Origin": EVIL})
    assert response.text == "public"
    assert response.headers["Access-Control-Allow-Origin"] == EVIL  # "*" echoes the origin (send_wildcard=False)
    preflight = client.options(
        "/public",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Token"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == EVIL
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET"
    assert preflight.headers["Access-Control-Allow-Headers"] == "X-Token"
    assert "Allow" in preflight.headers  # Flask's automatic OPTIONS answer, made by the decorator
    # A method the route allows but the CORS settings do not: the preflight allows no method (as on Flask).
    refused = client.options("/public", headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"})
    assert "access-control-allow-methods" not in cors_headers(refused)
