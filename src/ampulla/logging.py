"""The application's logger (``app.logger``) and its default handler, as in Flask.

``app.logger`` is the :mod:`logging` logger named after the application. When nothing would show its
messages (no handler for its level on it or its ancestors), :data:`default_handler` is added: it writes to the
request's error stream (``environ["wsgi.errors"]``) during a request and to ``sys.stderr`` otherwise. In debug
mode the logger's level is ``DEBUG`` unless one was set. Configure :mod:`logging` before the first use of
``app.logger`` to replace this::

    from ampulla.logging import default_handler

    app.logger.removeHandler(default_handler)
"""

from __future__ import annotations

import logging
import sys
from typing import IO, TYPE_CHECKING, Any, cast

from ampulla.ctx import RequestContext
from ampulla.ctx import _cv_ctx as _imported_cv_ctx
from ampulla.globals import LocalProxy

if TYPE_CHECKING:
    from ampulla.app import Ampulla

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

__all__ = ["create_logger", "default_handler", "has_level_handler", "wsgi_errors_stream"]


def _errors_stream() -> IO[str]:
    ctx = _cv_ctx.get(None)
    if isinstance(ctx, RequestContext):
        stream = ctx.request.environ.get("wsgi.errors")
        if stream is not None:
            return cast("IO[str]", stream)
    return sys.stderr


#: The current request's error stream, or ``sys.stderr`` outside a request.
wsgi_errors_stream: IO[str] = cast("IO[str]", LocalProxy(_errors_stream, "wsgi_errors_stream"))


def has_level_handler(logger: logging.Logger) -> bool:
    """Whether a handler of ``logger`` or of an ancestor it propagates to shows its effective level."""
    level = logger.getEffectiveLevel()
    current: Any = logger
    while current:
        if any(handler.level <= level for handler in current.handlers):
            return True
        if not current.propagate:
            break
        current = current.parent
    return False


#: Writes to :data:`wsgi_errors_stream`; added to ``app.logger`` when no other handler shows its messages.
default_handler = logging.StreamHandler(wsgi_errors_stream)
default_handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s"))


def create_logger(app: Ampulla) -> logging.Logger:
    """The logger of ``app`` (named ``app.name``), set up as described in this module."""
    logger = logging.getLogger(app.name)
    if app.debug and not logger.level:
        logger.setLevel(logging.DEBUG)
    if not has_level_handler(logger):
        logger.addHandler(default_handler)
    return logger
