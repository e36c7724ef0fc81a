"""What Ampulla itself provides for extensions, checked without them (no flask import here)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from ampulla import Ampulla, current_app, request
from ampulla.endpoint import ViewKind


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator written as Flask asks extensions to: a plain function calling ``current_app.ensure_sync``."""

    @functools.wraps(func)
    def decorated_view(*args: Any, **kwargs: Any) -> Any:
        if request.args.get("user") is None:
            return "login first", 401
        return current_app.ensure_sync(func)(*args, **kwargs)

    return decorated_view


def passthrough(func: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator that returns the view's coroutine unawaited."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def test_a_def_decorator_running_an_async_view_with_ensure_sync(app: Ampulla, protocol: str) -> None:
    threads: list[str] = []

    @app.route("/secret/<int:n>")
    @guard
    async def secret(n: int) -> str:
        await asyncio.sleep(0)
        threads.append(threading.current_thread().name)
        return f"secret {n} for {request.args['user']}"

    client = app.test_client(protocol=protocol)
    assert client.get("/secret/1").status_code == 401
    response = client.get("/secret/2?user=ann")
    assert response.status_code == 200 and response.text == "secret 2 for ann"
    assert len(threads) == 1
    # Under ASGI the decorator runs in the thread pool, where ensure_sync may run the coroutine.
    assert app.endpoint_plan("secret").kind is ViewKind.WRAPPED


def test_a_def_decorator_returning_the_coroutine(app: Ampulla, protocol: str) -> None:
    @app.route("/")
    @passthrough
    async def index() -> str:
        await asyncio.sleep(0)
        return f"index {request.path}"

    assert app.test_client(protocol=protocol).get("/").text == "index /"
