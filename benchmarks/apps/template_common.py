"""Shared pieces of the ``template`` scenario: the template files, the data and the Jinja2 settings.

``GET /rows`` renders ``templates/rows.html``, a child of ``templates/base.html`` with a loop over 100 rows
whose every value needs HTML escaping. Every app renders these files with the same data and the same Jinja2
settings (autoescape for ``.html``, no auto-reload): Ampulla and Flask through their own environment (those are
their defaults), the others through :func:`jinja_environment`. The difference is the framework's own cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

#: The folder holding ``base.html`` and ``rows.html`` (``templates`` next to the app modules: Ampulla's and
#: Flask's default template folder for an app made in this package).
FOLDER = Path(__file__).with_name("templates")
#: The template the scenario renders.
TEMPLATE = "rows.html"
#: The scenario's URL.
PATH = "/rows"
#: The page heading (escaped too).
HEADING = "Users & <friends>"


def make_rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows whose every value needs escaping."""
    return [
        {
            "id": i,
            "name": f'<b>User {i}</b> & "friends"',
            "email": f"user{i}@example.com <script>alert('{i}')</script>",
            "note": f"O'Reilly & Sons #{i} > {i - 1}",
        }
        for i in range(count)
    ]


#: The rows every app renders.
ROWS = make_rows(100)
#: The template variables.
CONTEXT: dict[str, Any] = {"heading": HEADING, "rows": ROWS}


def jinja_environment() -> Environment:
    """A Jinja2 environment with Ampulla's and Flask's settings, for the frameworks without their own."""
    return Environment(
        loader=FileSystemLoader(FOLDER),
        autoescape=select_autoescape(("html", "htm", "xml", "xhtml", "svg")),
        auto_reload=False,
    )


def render(env: Environment) -> str:
    """The page, rendered with ``env``."""
    return env.get_template(TEMPLATE).render(CONTEXT)
