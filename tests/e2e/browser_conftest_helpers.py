"""Fixtures and helpers for the browser tests (``test_browser.py``): the example under uvicorn, Debian's chromium.

The browser is always ``/usr/bin/chromium`` (Debian's package, installed by ``make browser-deps``); a browser is
never downloaded (no ``playwright install``). The example runs from a small wrapper module written into a
temporary folder, on a temporary SQLite file and avatar folder, and is stopped by PID at the end.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import PYTHON, RunningServer, asgi_missing_reason, free_port, start_server, stop_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Bound of every browser action and wait, in milliseconds.
ACTION_TIMEOUT_MS = 10_000


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; `make browser-deps`)"
    for module in ("playwright.sync_api", "uvicorn", "sqlalchemy"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            package = module.split(".")[0]
            return f"the Python package {package!r} is not installed (pip install -e '.[dev]')"
    return asgi_missing_reason()


def png_bytes(width: int = 32, height: int = 24, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A valid, decodable PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------- the server
@dataclass
class ExampleServer:
    """The example served by uvicorn: where to reach it and where it keeps its files."""

    server: RunningServer
    base_url: str
    database: Path
    avatars: Path


WRAPPER = '''\
"""The example application for the browser tests, on temporary files (written by browser_conftest_helpers)."""

from examples.users.app import create_app

app = create_app({config!r})
'''


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    """``examples/users`` under uvicorn (ASGI, WebSockets) on a free port of 127.0.0.1."""
    folder = tmp_path_factory.mktemp("browser-example")
    database = folder / "example.db"
    avatars = folder / "avatars"
    secret = secrets.token_hex(32)
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "AVATAR_FOLDER": str(avatars), "SECRET_KEY": secret}
    (folder / "example_wrapper.py").write_text(WRAPPER.format(config=config))
    port = free_port()
    command = [
        PYTHON, "-m", "uvicorn", "example_wrapper:app", "--interface", "asgi3", "--app-dir", str(folder),
        "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "3", "--no-access-log",
    ]  # fmt: skip
    # The example's module also builds a default app at import: the environment points it at the same
    # temporary database and secret, so nothing is written under examples/users/instance.
    environment = {
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": secret,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        running = start_server("uvicorn-example", command, port, folder / "uvicorn.log", cwd=folder)
    try:
        yield ExampleServer(running, f"http://127.0.0.1:{port}", database, avatars)
    finally:
        stop_server(running)


# ---------------------------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless chromium, driven by Playwright (a fresh temporary profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary profile (user-data-dir) and removes it on close.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Browsing:
    """A page in a fresh browser context, recording dialogs, script errors and console errors."""

    page: Page
    base_url: str
    test_name: str
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.url(path), wait_until="load")
        assert response is not None, f"no response for {path}"
        return response

    def shot(self, step: str) -> Path:
        """Save a full-page screenshot as ``test-artifacts/screenshots/browser-<test>-<nn>-<step>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = f"browser-{self.test_name}-{len(self.shots) + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower())}.png"
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True, timeout=ACTION_TIMEOUT_MS)
        self.shots.append(path)
        return path

    def assert_no_dialog(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"


@pytest.fixture
def browsing(browser: Browser, example_server: ExampleServer, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    """A fresh context (its own cookies) and page; fails the test if any dialog (alert, confirm...) opens."""
    context = browser.new_context(base_url=example_server.base_url, viewport={"width": 1000, "height": 700})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    test_name = re.sub(r"^test_", "", request.node.name).replace("_", "-")
    state = Browsing(page, example_server.base_url, test_name)

    def on_dialog(dialog: Any) -> None:
        state.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: state.page_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and state.console_errors.append(message.text))
    failed_before = request.session.testsfailed
    try:
        yield state
        if request.session.testsfailed > failed_before:
            state.shot("at-failure")
            print(f"console errors: {state.console_errors}\npage errors: {state.page_errors}")
            print("server output (tail):\n" + example_server.server.output()[-5000:])
    finally:
        context.close()
    state.assert_no_dialog()
