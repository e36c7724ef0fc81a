"""Ampulla: Flask's programming model, served by WSGI and ASGI servers, fast and secure by default.

A Flask application ports by changing its imports::

    from ampulla import Ampulla, request

    app = Ampulla(__name__)

    @app.route("/guest/<guest>")
    def hello_guest(guest):
        return "Hello %s as Guest" % guest
"""

from __future__ import annotations

import sys
from typing import Any

from markupsafe import Markup, escape

from .app import Ampulla
from .config import Config
from .ctx import (
    after_this_request,
    copy_current_request_context,
    has_app_context,
    has_request_context,
)
from .exceptions import HTTPException
from .globals import current_app, g, request, session, websocket
from .helpers import (
    abort,
    flash,
    get_flashed_messages,
    make_response,
    redirect,
    run_inline,
    send_file,
    send_from_directory,
    stream_request_body,
    stream_with_context,
    url_for,
)
from .json import jsonify
from .wrappers import Request, Response

__version__ = "0.1.0"

#: Flask's name for the application class, so ``from ampulla import Flask`` ports unchanged code.
Flask = Ampulla

_LAZY = {
    "Blueprint": ("blueprints", "Blueprint"),
    "render_template": ("templating", "render_template"),
    "render_template_string": ("templating", "render_template_string"),
    "render_template_async": ("templating", "render_template_async"),
    "stream_template": ("templating", "stream_template"),
    "stream_template_string": ("templating", "stream_template_string"),
    "View": ("views", "View"),
    "MethodView": ("views", "MethodView"),
}


def __getattr__(name: str) -> Any:
    # Parts with heavier imports (Jinja2) load on first use.
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ampulla' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
    # NOTE: not globals(): "from .globals import ..." bound the submodule to that name in this package.
    setattr(sys.modules[__name__], name, value)
    return value


__all__ = [
    "Ampulla",
    "Blueprint",
    "Config",
    "Flask",
    "HTTPException",
    "Markup",
    "MethodView",
    "Request",
    "Response",
    "View",
    "__version__",
    "abort",
    "after_this_request",
    "copy_current_request_context",
    "current_app",
    "escape",
    "flash",
    "g",
    "get_flashed_messages",
    "has_app_context",
    "has_request_context",
    "jsonify",
    "make_response",
    "redirect",
    "render_template",
    "render_template_async",
    "render_template_string",
    "request",
    "run_inline",
    "send_file",
    "send_from_directory",
    "session",
    "stream_request_body",
    "stream_template",
    "stream_template_string",
    "stream_with_context",
    "url_for",
    "websocket",
]
