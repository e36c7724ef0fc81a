"""Real servers for the end-to-end tests: started as subprocesses on free 127.0.0.1 ports, stopped by PID.

Every server runs ``serverapp.py`` from this folder. Output goes to a log file (never a pipe that could fill
up and block the server); a failing test shows it.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable

if os.name == "nt":  # pragma: no cover
    pytest.skip("the end-to-end server tests need POSIX process groups and gunicorn", allow_module_level=True)


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asgi_missing_reason() -> str | None:
    """Why ASGI servers cannot run the app yet, or ``None``."""
    if importlib.util.find_spec("ampulla.asgi") is None:
        return "ampulla.asgi (the ASGI adapter) is not importable yet"
    return None


def _gunicorn_extra_args() -> list[str]:
    # NOTE: gunicorn >= 27 opens a control socket under ~/.gunicorn by default; tests keep out of $HOME.
    import gunicorn

    return ["--no-control-socket"] if tuple(gunicorn.version_info) >= (27,) else []


def server_command(name: str, port: int) -> list[str]:
    """The command line that serves ``serverapp`` with the server called ``name`` on ``port``."""
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    ampulla = [PYTHON, "-m", "ampulla"]
    commands = {
        "gunicorn": [
            PYTHON, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            *_gunicorn_extra_args(), "serverapp:app",
        ],
        "uvicorn": [PYTHON, "-m", "uvicorn", "serverapp:app", "--interface", "asgi3", *bind],
        "granian-asgi": [PYTHON, "-m", "granian", "--interface", "asgi", *bind, "serverapp:app"],
        "granian-wsgi": [PYTHON, "-m", "granian", "--interface", "wsgi", *bind, "serverapp:app"],
        "ampulla-run-dev": [*ampulla, "--app", "serverapp:app", "run", *bind],
        "ampulla-run-uvicorn": [*ampulla, "--app", "serverapp:app", "run", "--server", "uvicorn", *bind],
        "ampulla-run-granian-factory": [
            *ampulla, "--app", "serverapp:create_app()", "run", "--server", "granian", *bind,
        ],
        "ampulla-run-gunicorn-factory": [
            *ampulla, "--app", "serverapp:create_app()", "run", "--server", "gunicorn", "--workers", "2", *bind,
        ],
    }  # fmt: skip
    return commands[name]


#: Servers that talk ASGI to the app (they need ``ampulla.asgi``).
ASGI_SERVERS = frozenset({"uvicorn", "granian-asgi", "ampulla-run-uvicorn", "ampulla-run-granian-factory"})
ALL_SERVERS = (
    "gunicorn",
    "uvicorn",
    "granian-asgi",
    "granian-wsgi",
    "ampulla-run-dev",
    "ampulla-run-uvicorn",
    "ampulla-run-granian-factory",
    "ampulla-run-gunicorn-factory",
)


@dataclass
class RunningServer:
    """A server subprocess and where to reach it."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stopped: bool = field(default=False)

    def output(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        """A new HTTP/1.1 connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def _ready(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


#: Runs the server with SIGINT and SIGQUIT at their defaults, as from a terminal: a test run started in the
#: background by a non-interactive shell ignores them, and the server would inherit that (Ctrl+C tests hang).
_DEFAULT_SIGNALS = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGQUIT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]  # fmt: skip


def start_server(
    name: str,
    command: list[str],
    port: int,
    log_path: Path,
    cwd: Path = E2E_DIR,
    ready_path: str = "/health",
    timeout: float = 20.0,
) -> RunningServer:
    """Start ``command`` and wait (bounded) until ``GET ready_path`` answers 200.

    Raises:
        RuntimeError: The server exited or did not answer in time (its output is in the message).
    """
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["GUNICORN_CMD_ARGS"] = " ".join(_gunicorn_extra_args())
    env.pop("AMPULLA_APP", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*_DEFAULT_SIGNALS, *command], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = RunningServer(name, proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before serving:\n{server.output()}")
        if _ready(port, ready_path):
            return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"{name} did not answer GET {ready_path} within {timeout} s:\n{server.output()}")


def stop_server(server: RunningServer, timeout: float = 10.0) -> int:
    """Stop the server by its PID: SIGTERM, then SIGKILL after ``timeout``. Returns its exit status."""
    proc = server.proc
    server.stopped = True
    if proc.poll() is not None:
        return proc.returncode
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait(5)
        # Workers of a master killed this way would outlive it: end the session we started for it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return code


@pytest.fixture(scope="module", params=ALL_SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``serverapp`` served by each server in turn (ASGI ones skip until ``ampulla.asgi`` exists)."""
    name = str(request.param)
    if name in ASGI_SERVERS and (reason := asgi_missing_reason()):
        pytest.skip(reason)
    port = free_port()
    log_path = tmp_path_factory.mktemp("server-logs") / f"{name}.log"
    running = start_server(name, server_command(name, port), port, log_path)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Attach the server's output to failing tests."""
    if call.excinfo is None or call.when != "call":
        return
    funcargs = getattr(item, "funcargs", {})
    running = funcargs.get("server") or funcargs.get("dev_server")
    if isinstance(running, RunningServer):
        item.add_report_section("call", f"{running.name} output", running.output()[-20000:])
