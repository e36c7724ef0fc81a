"""flask-smorest 0.47.0 on Ampulla: ``Api``, ``Blueprint`` with marshmallow schemas (``@blp.arguments``,
``@blp.response``), the OpenAPI document at ``/openapi.json`` with path parameters from URL converters, 422
validation errors, pagination headers and ETags (304, 412, 428), over WSGI and ASGI with ``def`` and ``async def``
views."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_smorest imports flask)

# isort: split

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip(
    "flask_smorest", reason="flask-smorest is not installed (pip install -e '.[dev]' installs flask-smorest==0.47.0)"
)

import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint, abort

View = Callable[[Callable[..., Any]], Callable[..., Any]]


class PetSchema(ma.Schema):
    id = ma.fields.Int(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))
    species = ma.fields.String(load_default="cat", validate=ma.validate.OneOf(["cat", "dog"]))
    secret = ma.fields.String(load_only=True)


class PetQueryArgsSchema(ma.Schema):
    species = ma.fields.String(validate=ma.validate.OneOf(["cat", "dog"]))


class SpeciesSchema(ma.Schema):
    code = ma.fields.String()
    owner = ma.fields.UUID()


def make_api(as_view: View) -> tuple[Flask, dict[int, dict[str, Any]]]:
    """The pets API of flask-smorest's quickstart: ``MethodView`` resources and a function view."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Pets",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.2",
        OPENAPI_URL_PREFIX="/",
        TESTING=True,
    )
    api = Api(app)
    pets: dict[int, dict[str, Any]] = {
        n: {"id": n, "name": f"pet{n}", "species": "dog" if n % 3 == 0 else "cat", "secret": "x"} for n in range(1, 24)
    }
    blp = Blueprint("pets", __name__, url_prefix="/pets", description="Operations on pets")

    def find(pet_id: int) -> dict[str, Any]:
        if pet_id not in pets:
            abort(404, message="Pet not found.")
        return pets[pet_id]

    @blp.route("/")
    class Pets(MethodView):
        @blp.arguments(PetQueryArgsSchema, location="query")
        @blp.response(200, PetSchema(many=True))
        @blp.paginate()
        @as_view
        def get(self: Any, args: dict[str, Any], pagination_parameters: Any) -> list[dict[str, Any]]:
            """List pets"""
            found = [p for p in pets.values() if args.get("species") in (None, p["species"])]
            pagination_parameters.item_count = len(found)
            return found[pagination_parameters.first_item : pagination_parameters.last_item + 1]

        @blp.arguments(PetSchema)
        @blp.response(201, PetSchema)
        @as_view
        def post(self: Any, new_pet: dict[str, Any]) -> dict[str, Any]:
            """Add a new pet"""
            pet_id = max(pets) + 1
            pets[pet_id] = {"id": pet_id, **new_pet}
            return pets[pet_id]

    @blp.route("/<int:pet_id>")
    class PetsById(MethodView):
        @blp.etag
        @blp.response(200, PetSchema)
        @as_view
        def get(self: Any, pet_id: int) -> dict[str, Any]:
            """Get pet by ID"""
            return find(pet_id)

        @blp.etag
        @blp.arguments(PetSchema)
        @blp.response(200, PetSchema)
        @as_view
        def put(self: Any, update: dict[str, Any], pet_id: int) -> dict[str, Any]:
            """Update existing pet"""
            pet = find(pet_id)
            blp.check_etag(pet, PetSchema)
            pet.update(update)
            return pet

        @blp.etag
        @blp.response(204)
        @as_view
        def delete(self: Any, pet_id: int) -> None:
            """Delete pet"""
            blp.check_etag(find(pet_id), PetSchema)
            del pets[pet_id]

    @blp.route("/species/<string(length=3):code>/<uuid:owner>")
    @blp.response(200, SpeciesSchema)
    @as_view
    def species(code: str, owner: uuid.UUID) -> dict[str, Any]:
        return {"code": code, "owner": owner}

    api.register_blueprint(blp)
    return app, pets


def error(response: Any) -> Any:
    assert response.content_type == "application/json"
    return response.get_json()


def test_openapi_document(protocol: str, as_view: View) -> None:
    app, _ = make_api(as_view)
    response = app.test_client(protocol=protocol).get("/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["info"] == {"title": "Pets", "version": "v1"} and spec["openapi"] == "3.0.2"
    assert spec["tags"] == [{"name": "pets", "description": "Operations on pets"}]
    paths = spec["paths"]
    assert set(paths) == {"/pets/", "/pets/{pet_id}", "/pets/species/{code}/{owner}"}
    assert set(paths["/pets/"]) == {"get", "post"}
    assert set(paths["/pets/{pet_id}"]) >= {"get", "put", "delete", "parameters"}

    # Path parameters come from the URL converters.
    assert paths["/pets/{pet_id}"]["parameters"] == [
        {"in": "path", "name": "pet_id", "required": True, "schema": {"type": "integer", "minimum": 0}}
    ]
    assert paths["/pets/species/{code}/{owner}"]["parameters"] == [
        {"in": "path", "name": "code", "required": True, "schema": {"type": "string", "minLength": 3, "maxLength": 3}},
        {"in": "path", "name": "owner", "required": True, "schema": {"type": "string", "format": "uuid"}},
    ]

    listing = paths["/pets/"]["get"]
    assert listing["summary"] == "List pets" and listing["tags"] == ["pets"]
    query = {p["name"]: p for p in listing["parameters"]}
    assert set(query) == {"species", "page", "page_size"}
    assert query["species"]["schema"] == {"type": "string", "enum": ["cat", "dog"]}
    assert listing["responses"]["200"]["headers"] == {"X-Pagination": {"$ref": "#/components/headers/PAGINATION"}}
    assert listing["responses"]["422"] == {"$ref": "#/components/responses/UNPROCESSABLE_ENTITY"}
    created = paths["/pets/"]["post"]
    assert created["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Pet"}
    assert "201" in created["responses"]
    assert "304" in paths["/pets/{pet_id}"]["get"]["responses"]  # ETag: Not Modified documented
    assert {"412", "428"} <= set(paths["/pets/{pet_id}"]["put"]["responses"])

    pet = spec["components"]["schemas"]["Pet"]
    assert pet["required"] == ["name"]
    assert pet["properties"]["id"]["readOnly"] is True and pet["properties"]["secret"]["writeOnly"] is True


def test_arguments_and_responses(protocol: str, as_view: View) -> None:
    app, pets = make_api(as_view)
    client = app.test_client(protocol=protocol)
    response = client.post("/pets/", json={"name": "Rex", "species": "dog", "secret": "bone"})
    assert response.status_code == 201
    assert response.get_json() == {"id": 24, "name": "Rex", "species": "dog"}  # 'secret' is load-only
    assert pets[24]["secret"] == "bone"
    assert client.post("/pets/", json={"name": "Tom"}).get_json()["species"] == "cat"  # load_default

    assert client.get("/pets/24").get_json() == {"id": 24, "name": "Rex", "species": "dog"}
    assert client.get("/pets/?species=dog&page_size=100").get_json()[-1]["name"] == "Rex"
    owner = uuid.uuid4()
    assert client.get(f"/pets/species/abc/{owner}").get_json() == {"code": "abc", "owner": str(owner)}
    assert client.get(f"/pets/species/abcd/{owner}").status_code == 404  # the converter refuses it
    assert client.get("/pets/species/abc/not-a-uuid").status_code == 404

    missing = client.get("/pets/999")
    assert missing.status_code == 404
    assert error(missing) == {"code": 404, "status": "Not Found", "message": "Pet not found."}
    assert client.delete("/pets/999", headers={"If-Match": '"x"'}).status_code == 404


def test_validation_errors_are_422(protocol: str, as_view: View) -> None:
    app, pets = make_api(as_view)
    client = app.test_client(protocol=protocol)
    response = client.post("/pets/", json={"nickname": "Rex", "species": "cow"})
    assert response.status_code == 422
    assert error(response) == {
        "code": 422,
        "status": "Unprocessable Entity",
        "errors": {
            "json": {
                "name": ["Missing data for required field."],
                "species": ["Must be one of: cat, dog."],
                "nickname": ["Unknown field."],
            }
        },
    }
    response = client.post("/pets/", json={"name": ""})
    assert error(response)["errors"] == {"json": {"name": ["Length must be between 1 and 40."]}}
    response = client.get("/pets/?species=cow")
    assert response.status_code == 422
    assert error(response)["errors"] == {"query": {"species": ["Must be one of: cat, dog."]}}
    response = client.get("/pets/?page=0&page_size=1000")
    assert response.status_code == 422
    assert set(error(response)["errors"]["query"]) == {"page", "page_size"}

    # A body that is not JSON, or not an object: a 4xx, never a 500.
    bad = client.post("/pets/", data="{not json", content_type="application/json")
    assert bad.status_code in (400, 422)
    assert error(bad)["code"] == bad.status_code
    assert client.post("/pets/", json=["a", "list"]).status_code == 422
    assert len(pets) == 23  # nothing was added


def test_pagination_headers(protocol: str, as_view: View) -> None:
    app, _ = make_api(as_view)
    client = app.test_client(protocol=protocol)
    response = client.get("/pets/?page=2&page_size=5")
    assert [p["id"] for p in response.get_json()] == [6, 7, 8, 9, 10]
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 23,
        "total_pages": 5,
        "first_page": 1,
        "last_page": 5,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }
    last = client.get("/pets/?page=5&page_size=5")
    assert [p["id"] for p in last.get_json()] == [21, 22, 23]
    assert "next_page" not in json.loads(last.headers["X-Pagination"])
    default = client.get("/pets/")  # page 1 of 10 items
    assert len(default.get_json()) == 10 and json.loads(default.headers["X-Pagination"])["total_pages"] == 3
    dogs = client.get("/pets/?species=dog&page_size=3")
    assert json.loads(dogs.headers["X-Pagination"])["total"] == 7
    beyond = client.get("/pets/?page=9&page_size=5")  # a page past the last one: empty, no page numbers
    assert beyond.status_code == 200 and beyond.get_json() == []
    header = json.loads(beyond.headers["X-Pagination"])
    assert header == {"total": 23, "total_pages": 5, "first_page": 1, "last_page": 5}


def test_etags(protocol: str, as_view: View) -> None:
    app, pets = make_api(as_view)
    client = app.test_client(protocol=protocol)
    first = client.get("/pets/1")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and etag.endswith('"')

    unchanged = client.get("/pets/1", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    assert client.get("/pets/1", headers={"If-None-Match": '"other"'}).status_code == 200

    # Writing needs the current ETag: none is 428, a stale one 412, and nothing changes.
    missing = client.put("/pets/1", json={"name": "Felix"})
    assert missing.status_code == 428
    assert error(missing) == {"code": 428, "status": "Precondition Required"}
    stale = client.put("/pets/1", json={"name": "Felix"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert error(stale) == {"code": 412, "status": "Precondition Failed"}
    assert pets[1]["name"] == "pet1"

    updated = client.put("/pets/1", json={"name": "Felix"}, headers={"If-Match": etag})
    assert updated.status_code == 200 and updated.get_json()["name"] == "Felix"
    new_etag = updated.headers["ETag"]
    assert new_etag != etag
    assert client.get("/pets/1", headers={"If-None-Match": etag}).status_code == 200  # the old one no longer matches
    assert client.get("/pets/1", headers={"If-None-Match": new_etag}).status_code == 304

    assert client.delete("/pets/1", headers={"If-Match": etag}).status_code == 412
    assert client.delete("/pets/1").status_code == 428
    deleted = client.delete("/pets/1", headers={"If-Match": new_etag})
    assert deleted.status_code == 204 and 1 not in pets


def test_api_errors_and_documentation_pages(protocol: str, as_view: View) -> None:
    """What ``Api(app)`` adds without any smorest Blueprint: JSON errors for every HTTP error, the (empty)
    OpenAPI document and the ReDoc and Swagger UI pages rendered from flask-smorest's templates."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Pets",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.2",
        OPENAPI_URL_PREFIX="/docs",
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="https://cdn.example.test/redoc/redoc.standalone.js",
        OPENAPI_SWAGGER_UI_PATH="/swagger-ui",
        OPENAPI_SWAGGER_UI_URL="https://cdn.example.test/swagger-ui/",
        TESTING=True,
    )
    Api(app)

    def conflict() -> str:
        abort(409, message="Already there.", errors={"name": ["taken"]})
        return "unreachable"

    app.add_url_rule("/conflict", view_func=as_view(conflict))
    client = app.test_client(protocol=protocol)
    response = client.get("/conflict")
    assert response.status_code == 409
    assert error(response) == {
        "code": 409,
        "status": "Conflict",
        "message": "Already there.",
        "errors": {"name": ["taken"]},
    }
    assert error(client.get("/nowhere")) == {"code": 404, "status": "Not Found"}
    assert error(client.post("/conflict")) == {"code": 405, "status": "Method Not Allowed"}

    spec = client.get("/docs/openapi.json").get_json()
    assert spec["info"] == {"title": "Pets", "version": "v1"} and spec["paths"] == {}
    redoc = client.get("/docs/redoc")
    assert redoc.status_code == 200 and redoc.mimetype == "text/html"
    assert "https://cdn.example.test/redoc/redoc.standalone.js" in redoc.get_data(as_text=True)
    assert "/docs/openapi.json" in redoc.get_data(as_text=True)
    swagger = client.get("/docs/swagger-ui").get_data(as_text=True)
    assert "https://cdn.example.test/swagger-ui/swagger-ui-bundle.js" in swagger and "/docs/openapi.json" in swagger
