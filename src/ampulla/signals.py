"""Signals (blinker), with Flask's names, sent at Flask's moments by both request cycles.

Connect a receiver to observe the application without changing it::

    from ampulla.signals import template_rendered

    def record(sender, template, context, **extra):
        ...

    template_rendered.connect(record, app)

Each signal's sender is the application. A signal nobody listens to costs nothing: every sending place checks
``signal.receivers`` first. Receivers may be ``async def``; under WSGI they run on the thread's event loop,
under ASGI they are awaited on the request's loop (plain receivers run on the loop too, so keep them short).

=========================  ========================================  ===================================
signal                     sent                                      keyword arguments
=========================  ========================================  ===================================
``request_started``        before the ``before_request`` hooks
``request_finished``       after ``after_request`` hooks, session    ``response``
``got_request_exception``  an unhandled exception, before the 500    ``exception``
``request_tearing_down``   after the ``teardown_request`` functions  ``exc``
``appcontext_tearing_down`` after ``teardown_appcontext`` functions  ``exc``
``appcontext_pushed``      an application context was pushed
``appcontext_popped``      an application context was popped
``before_render_template`` before a template renders                 ``template``, ``context``
``template_rendered``      after a template rendered                 ``template``, ``context``
``message_flashed``        :func:`~ampulla.flash` stored a message   ``message``, ``category``
=========================  ========================================  ===================================
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from blinker import Namespace, Signal

__all__ = [
    "Namespace",
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "before_render_template",
    "got_request_exception",
    "message_flashed",
    "request_finished",
    "request_started",
    "request_tearing_down",
    "send",
    "send_async",
    "template_rendered",
]

_signals = Namespace()

template_rendered = _signals.signal("template-rendered")
before_render_template = _signals.signal("before-render-template")
request_started = _signals.signal("request-started")
request_finished = _signals.signal("request-finished")
request_tearing_down = _signals.signal("request-tearing-down")
got_request_exception = _signals.signal("got-request-exception")
appcontext_tearing_down = _signals.signal("appcontext-tearing-down")
appcontext_pushed = _signals.signal("appcontext-pushed")
appcontext_popped = _signals.signal("appcontext-popped")
message_flashed = _signals.signal("message-flashed")


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` from sync code; ``async def`` receivers run to completion on the thread's event loop.

    Callers check ``signal.receivers`` first, so an unused signal costs one attribute test.
    """
    from .concurrency import ensure_sync  # NOTE: here, as concurrency imports ctx, which sends signals

    signal.send(sender, _async_wrapper=ensure_sync, **kwargs)


def _as_coroutine(func: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return call


async def send_async(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` on an event loop: ``async def`` receivers are awaited, plain ones called on the loop."""
    await signal.send_async(sender, _sync_wrapper=_as_coroutine, **kwargs)
