"""Per-endpoint hook chains: what the request cycle runs around a view, gathered once per endpoint.

:func:`_hook_lists` collects an endpoint's URL value preprocessors and ``before``, ``after`` and ``teardown``
hooks from the application and its blueprints, in calling order. :class:`_Chain` holds them ready for the sync
(WSGI) cycle of :class:`~ampulla.app.Ampulla`; its async twin ``_AsyncChain`` is in :mod:`ampulla.async_cycle`.
The CSRF check, which both cycles run between the URL value preprocessors and the ``before`` hooks, is here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .scaffold import blueprint_chain, iter_chain

if TYPE_CHECKING:
    from .app import Ampulla


class _Csrf:
    """The CSRF check, imported on first use so the core never imports ``ampulla.csrf`` at import time."""

    check: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        from .csrf import csrf_check

        self.check = csrf_check
        return csrf_check


_csrf = _Csrf()


def _csrf_check(app: Ampulla) -> None:
    (_csrf.check or _csrf.load())(app)


def _hook_lists(app: Ampulla, blueprints: tuple[str, ...]) -> tuple[list[Callable[..., Any]], ...]:
    """URL value preprocessors, before, after and teardown functions for a request, in calling order."""
    keys = iter_chain(blueprints)
    outer_first = tuple(reversed(keys))
    return (
        [f for key in outer_first for f in app.url_value_preprocessors.get(key, ())],
        [f for key in outer_first for f in app.before_request_funcs.get(key, ())],
        [f for key in keys for f in reversed(app.after_request_funcs.get(key, ()))],
        [f for key in keys for f in reversed(app.teardown_request_funcs.get(key, ()))],
    )


class _Chain:
    """Everything the request cycle needs for one endpoint, computed once (see ``Ampulla._chain``)."""

    __slots__ = ("after", "before", "blueprints", "teardown", "url_value_preprocessors")

    def __init__(self, app: Ampulla, endpoint: str | None) -> None:
        self.blueprints = blueprint_chain(endpoint)
        preprocessors, before, after, teardown = _hook_lists(app, self.blueprints)
        sync = app.ensure_sync
        self.url_value_preprocessors = tuple(sync(f) for f in preprocessors)
        self.before = tuple(sync(f) for f in before)
        self.after = tuple(sync(f) for f in after)
        self.teardown = tuple(sync(f) for f in teardown)
