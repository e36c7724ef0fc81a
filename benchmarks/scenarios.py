"""Scenario registry: the request each scenario sends and the response it must get back.

A scenario is pure data: a protocol-neutral :class:`Request`, the app factory it needs
(see :mod:`benchmarks.apps`) and the expected status, headers and body. Drivers (WSGI
now, ASGI later) turn the request into their own wire format.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks.apps.common import DYNAMIC_ROUTES, HOOK_VALUE, ORM_USER_ID, orm_user
from benchmarks.apps.template_common import PATH as TEMPLATE_PATH
from benchmarks.apps.template_common import jinja_environment, render

BodyKind = Literal["text", "json", "ignore"]


@dataclass(frozen=True)
class Request:
    """A protocol-neutral HTTP request."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """What an application answered, captured from one call."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True)
class Scenario:
    """One benchmark case: a request, the app factory serving it and the expected answer."""

    name: str
    description: str
    request: Request
    factory: str = "create_app"
    status: int = 200
    body_kind: BodyKind = "text"
    expected: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def check(self, response: Response) -> list[str]:
        """Return the list of differences between ``response`` and the expectation."""
        problems: list[str] = []
        if response.status != self.status:
            problems.append(f"status {response.status}, expected {self.status}")
        for name, value in self.headers.items():
            got = response.header(name)
            if got != value:
                problems.append(f"header {name}: {got!r}, expected {value!r}")
        if self.body_kind == "text":
            text = response.body.decode("utf-8", "replace")
            if text != self.expected:
                problems.append(f"body {_clip(text)}, expected {_clip(self.expected)}")
        elif self.body_kind == "json":
            try:
                data = json.loads(response.body)
            except ValueError as exc:
                problems.append(f"body is not JSON ({exc}): {_clip(response.body)}")
            else:
                if data != self.expected:
                    problems.append(f"JSON {_clip(data)}, expected {_clip(self.expected)}")
        return problems


def _clip(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars of repr)"


#: All scenarios by name, in the order they are reported.
SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add ``scenario`` to :data:`SCENARIOS` (names must be unique)."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"duplicate scenario {scenario.name!r}")
    SCENARIOS[scenario.name] = scenario
    return scenario


def multipart_body(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes]], boundary: str
) -> tuple[bytes, str]:
    """Encode a ``multipart/form-data`` body; return it with its Content-Type value."""
    delimiter = f"--{boundary}".encode()
    parts: list[bytes] = []
    for name, value in fields.items():
        parts += [delimiter, f'Content-Disposition: form-data; name="{name}"'.encode(), b"", value.encode()]
    for name, (filename, data) in files.items():
        if delimiter in data:
            raise ValueError("file content contains the multipart boundary")
        disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
        parts += [delimiter, disposition.encode(), b"Content-Type: application/octet-stream", b"", data]
    parts += [delimiter + b"--", b""]
    return b"\r\n".join(parts), f"multipart/form-data; boundary={boundary}"


ITEM_ROUTE = DYNAMIC_ROUTES[-10]  # a dynamic route near the end of the 50-route table
UPLOAD_SIZE = 100 * 1024
UPLOAD_DATA = random.Random(20240101).randbytes(UPLOAD_SIZE)
UPLOAD_BODY, UPLOAD_CONTENT_TYPE = multipart_body(
    {"title": "report"}, {"file": ("data.bin", UPLOAD_DATA)}, boundary="----AmpullaBench7MA4YWxkTrZu0gW"
)
ECHO_DOCUMENT: dict[str, Any] = {
    "id": 12345,
    "name": "Widget",
    "price": 19.99,
    "in_stock": True,
    "sku": "W-12345",
    "description": "A small widget, caf\u00e9 edition",
    "tags": ["tools", "metal", "small"],
    "dimensions": {"w": 10, "h": 20, "d": 5},
    "ratings": [5, 4, 5, 3],
    "related": [{"id": 1, "name": "Gadget"}, {"id": 2, "name": "Gizmo"}],
    "created": "2024-01-01T00:00:00Z",
}

register(Scenario("hello", "GET / returning a short text", Request("GET", "/"), expected="Hello, World!"))
register(
    Scenario(
        "route50",
        f"GET a dynamic route (#{ITEM_ROUTE + 1}) of a 50-route table",
        Request("GET", f"/items{ITEM_ROUTE}/123"),
        expected=f"item {ITEM_ROUTE} 123",
    )
)
register(
    Scenario(
        "query_json",
        "query string parsing (int, multi-value) answered as JSON",
        Request("GET", "/search", query="q=hello&page=3&tags=a&tags=b"),
        body_kind="json",
        expected={"q": "hello", "page": 3, "tags": ["a", "b"]},
    )
)
register(
    Scenario(
        "form",
        "POST an urlencoded form",
        Request(
            "POST",
            "/form",
            body=b"name=Alice&email=alice%40example.com&age=30",
            content_type="application/x-www-form-urlencoded",
        ),
        expected="Alice alice@example.com 30",
    )
)
register(
    Scenario(
        "upload",
        f"POST multipart/form-data with a {UPLOAD_SIZE // 1024} KB file and a text field",
        Request("POST", "/upload", body=UPLOAD_BODY, content_type=UPLOAD_CONTENT_TYPE),
        expected=f"report data.bin {UPLOAD_SIZE}",
    )
)
register(
    Scenario(
        "json_echo",
        "POST a JSON object and echo it back",
        Request(
            "POST",
            "/echo",
            body=json.dumps(ECHO_DOCUMENT, separators=(",", ":")).encode(),
            content_type="application/json",
        ),
        body_kind="json",
        expected=ECHO_DOCUMENT,
    )
)
register(
    Scenario(
        "notfound",
        "GET an unknown path (404)",
        Request("GET", "/does/not/exist"),
        status=404,
        body_kind="ignore",
    )
)
register(
    Scenario(
        "hooks",
        "before_request sets a request-scoped value, after_request adds a header",
        Request("GET", "/hooks"),
        factory="create_hooks_app",
        expected=f"x={HOOK_VALUE}",
        headers={"X-Hook": "1"},
    )
)

register(
    Scenario(
        "template",
        "GET /rows: a layout and a child template looping over 100 rows of escaped values (Jinja2)",
        Request("GET", TEMPLATE_PATH),
        factory="create_template_app",
        expected=render(jinja_environment()),
    )
)
register(
    Scenario(
        "orm",
        "GET /users/<id>: one row by primary key from a 1,000-row SQLite table (SQLAlchemy ORM)",
        Request("GET", f"/users/{ORM_USER_ID}"),
        factory="create_orm_app",
        body_kind="json",
        expected=orm_user(ORM_USER_ID),
    )
)
