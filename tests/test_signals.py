"""Signals: sent at Flask's moments over WSGI and ASGI, for def and async views, and free when unused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ampulla import Ampulla, flash, render_template_string
from ampulla import signals as sig
from ampulla.signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    before_render_template,
    got_request_exception,
    message_flashed,
    request_finished,
    request_started,
    request_tearing_down,
    template_rendered,
)


@pytest.fixture
def events() -> Iterator[list[Any]]:
    """Connect a recorder to every request signal; disconnect afterwards."""
    recorded: list[Any] = []
    connected: list[tuple[Any, Callable[..., Any]]] = []

    def recorder(name: str) -> Callable[..., Any]:
        def record(sender: Any, **kwargs: Any) -> None:
            recorded.append((name, sender, kwargs))

        return record

    for signal in (
        request_started, request_finished, got_request_exception, request_tearing_down,
        appcontext_tearing_down, appcontext_pushed, appcontext_popped,
    ):
        receiver = recorder(signal.name)
        signal.connect(receiver)
        connected.append((signal, receiver))
    yield recorded
    for signal, receiver in connected:
        signal.disconnect(receiver)


def make_app(as_view: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Ampulla:
    app = Ampulla(__name__)
    app.secret_key = "test"

    def index() -> str:
        return "ok"

    def boom() -> str:
        raise ZeroDivisionError("boom")

    app.add_url_rule("/", view_func=as_view(index))
    app.add_url_rule("/boom", view_func=as_view(boom))
    return app


def test_request_signals_in_flask_order(
    events: list[Any], protocol: str, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    app = make_app(as_view)
    calls: list[str] = []
    app.before_request(lambda: calls.append("before") and None)
    request_started.connect(lambda sender: calls.append("started"), app, weak=False)
    try:
        response = app.test_client(protocol=protocol).get("/")
    finally:
        request_started.receivers.clear()
    assert response.text == "ok"
    assert calls == ["started", "before"]
    names = [name for name, _, _ in events]
    assert names == [
        "appcontext-pushed", "request-started", "request-finished", "request-tearing-down",
        "appcontext-tearing-down", "appcontext-popped",
    ]
    assert all(sender is app for _, sender, _ in events)
    finished = next(kwargs for name, _, kwargs in events if name == "request-finished")
    assert finished["response"].status_code == 200
    assert next(kwargs for name, _, kwargs in events if name == "request-tearing-down") == {"exc": None}


def test_got_request_exception(
    events: list[Any], protocol: str, as_view: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    app = make_app(as_view)
    response = app.test_client(protocol=protocol).get("/boom")
    assert response.status_code == 500
    exceptions = [kwargs["exception"] for name, _, kwargs in events if name == "got-request-exception"]
    assert len(exceptions) == 1 and isinstance(exceptions[0], ZeroDivisionError)


def test_async_receivers_are_awaited(protocol: str) -> None:
    app = Ampulla(__name__)
    app.add_url_rule("/", view_func=lambda: "ok", endpoint="index")
    seen: list[int] = []

    async def on_finished(sender: Any, response: Any) -> None:
        seen.append(response.status_code)

    request_finished.connect(on_finished, app)
    try:
        assert app.test_client(protocol=protocol).get("/").status_code == 200
    finally:
        request_finished.disconnect(on_finished, app)
    assert seen == [200]


def test_template_and_flash_signals(protocol: str) -> None:
    app = Ampulla(__name__)
    app.secret_key = "test"

    @app.route("/")
    def index() -> str:
        flash("Saved", "info")
        return render_template_string("<p>{{ n }}</p>", n=1)

    recorded: list[Any] = []

    def before(sender: Any, template: Any, context: dict[str, Any]) -> None:
        context["n"] = 2  # a receiver may change the context before rendering

    def rendered(sender: Any, template: Any, context: dict[str, Any]) -> None:
        recorded.append(("rendered", context["n"]))

    def flashed(sender: Any, message: str, category: str) -> None:
        recorded.append(("flashed", message, category))

    before_render_template.connect(before, app)
    template_rendered.connect(rendered, app)
    message_flashed.connect(flashed, app)
    try:
        response = app.test_client(protocol=protocol).get("/")
    finally:
        before_render_template.disconnect(before, app)
        template_rendered.disconnect(rendered, app)
        message_flashed.disconnect(flashed, app)
    assert response.text == "<p>2</p>"
    assert recorded == [("flashed", "Saved", "info"), ("rendered", 2)]


def test_app_context_signals_outside_requests() -> None:
    app = Ampulla(__name__)
    recorded: list[str] = []
    appcontext_pushed.connect(lambda sender: recorded.append("pushed"), app, weak=False)
    appcontext_popped.connect(lambda sender: recorded.append("popped"), app, weak=False)
    try:
        with app.app_context(), app.test_request_context("/"):
            pass  # the request context shares the outer app context: no second push
    finally:
        appcontext_pushed.receivers.clear()
        appcontext_popped.receivers.clear()
    assert recorded == ["pushed", "popped"]


def test_unused_signals_are_never_sent(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """With no receivers, no signal is sent (each sending place tests ``signal.receivers`` first)."""
    for signal in (request_started, request_finished, appcontext_pushed, template_rendered):
        assert not signal.receivers

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a signal without receivers was sent")

    for module in ("ampulla.cycle", "ampulla.ctx", "ampulla.templating", "ampulla.app", "ampulla.helpers"):
        monkeypatch.setattr(f"{module}.send", fail, raising=False)
    monkeypatch.setattr("ampulla.cycle.send_async", fail)
    monkeypatch.setattr("ampulla.app.send_signal", fail)
    app = Ampulla(__name__)
    app.secret_key = "test"

    @app.route("/")
    def index() -> str:
        flash("x")
        return render_template_string("{{ 1 }}")

    assert app.test_client(protocol=protocol).get("/").text == "1"
    assert sig.Namespace is not None
