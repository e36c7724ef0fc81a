"""Shared fixtures: every behavioural test runs over WSGI and ASGI, and over ``def`` and ``async def`` views."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ampulla import Ampulla
from ampulla.testing import AmpullaClient

# No timing in tests: property tests get no per-example deadline, whatever the machine's load.
settings.register_profile("ampulla", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ampulla")


@pytest.fixture(params=["wsgi", "asgi"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Which of the app's callables the test client drives."""
    return str(request.param)


@pytest.fixture(params=["def", "async"])
def view_kind(request: pytest.FixtureRequest) -> str:
    """Whether test views are plain functions or coroutine functions."""
    return str(request.param)


@pytest.fixture
def as_view(view_kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn a plain function into a view of the parametrised kind (keeps its name for the endpoint)."""

    def convert(func: Callable[..., Any]) -> Callable[..., Any]:
        if view_kind == "def":
            return func

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return wrapper

    return convert


@pytest.fixture
def app(tmp_path: Any) -> Iterator[Ampulla]:
    """A fresh application in testing mode rooted in a temporary folder."""
    application = Ampulla("test_app", root_path=str(tmp_path))
    application.testing = True
    application.config["SECRET_KEY"] = "test-secret"
    yield application
    # Tests may silence the app's logger; it is process-global, so restore it.
    logging.getLogger("test_app").disabled = False


@pytest.fixture
def client(app: Ampulla, protocol: str) -> AmpullaClient:
    """A test client over the parametrised protocol."""
    return app.test_client(protocol=protocol)


# ---------------------------------------------------------------------------------------------- command line
@pytest.fixture
def clean_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``AMPULLA_APP``/``AMPULLA_DEBUG``/``AMPULLA_RUN_FROM_CLI`` and no served app: the run command sets them for
    the servers it starts; monkeypatch restores the originals afterwards."""
    from ampulla import cli as cli_module

    for name in ("AMPULLA_APP", "AMPULLA_DEBUG", "AMPULLA_RUN_FROM_CLI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_module, "_served_app", None)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project folder as the current directory; modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
