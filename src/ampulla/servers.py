"""Launchers of the production servers behind ``ampulla run --server gunicorn | uvicorn | granian``.

Ampulla writes no server. The development server (``ampulla run`` without ``--server``, and ``app.run()``) is
Werkzeug's :func:`werkzeug.serving.run_simple`; gunicorn, uvicorn and granian serve in production (see
``docs/deployment.md``). This module only builds their command lines (gunicorn, granian), starts uvicorn in this
process, and replaces this process with a server.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_command(
    target: str, factory: bool, host: str, port: int, workers: int | None = None, reload: bool = False
) -> list[str]:
    """The gunicorn command line (WSGI) serving ``target``: ``"module:app"``, or a factory (``factory``)."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", _bind_address(host, port)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if reload:
        argv.append("--reload")
    return [*argv, f"{target}()" if factory else target]


def granian_command(
    target: str,
    factory: bool,
    host: str,
    port: int,
    workers: int | None = None,
    reload: bool = False,
    interface: str = "asgi",
    reload_paths: Sequence[str] = (),
) -> list[str]:
    """The granian command line that serves ``target`` with ``--interface asgi`` (or ``wsgi``)."""
    argv = [sys.executable, "-m", "granian", "--interface", interface, "--host", host, "--port", str(port)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if reload:
        argv.append("--reload")
        for path in reload_paths:
            argv += ["--reload-paths", path]
    if factory:
        argv.append("--factory")
    module, _, attr = target.partition(":")
    if module == __package__ or module.startswith(f"{__package__}."):
        # NOTE: granian resolves a dotted target against the current folder, and when that folder is a package
        # (has __init__.py) it prefixes the package's name ("pkg.ampulla.cli"). A file path resolves to the
        # right module wherever Ampulla is installed.
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            target = f"{spec.origin}:{attr}"
    return [*argv, target]


def run_uvicorn(
    target: str,
    factory: bool,
    host: str,
    port: int,
    workers: int | None = None,
    reload: bool = False,
    reload_paths: Sequence[str] = (),
    app_dir: str | None = None,
    debug: bool = False,
) -> None:
    """Serve ``target`` with uvicorn in this process (ASGI 3), until it stops.

    Raises:
        RuntimeError: uvicorn is not installed.
    """
    try:
        import uvicorn
    except ImportError:
        raise RuntimeError("uvicorn is not installed: pip install 'ampulla[server]'") from None
    uvicorn.run(
        target,
        host=host,
        port=port,
        # NOTE: the app object is one callable for WSGI and ASGI (it dispatches on the argument count), so
        # uvicorn's "auto" detection cannot tell: say ASGI 3 explicitly.
        interface="asgi3",
        factory=factory,
        workers=workers,
        reload=reload,
        reload_dirs=list(reload_paths) if reload else None,
        app_dir=app_dir,
        log_level="debug" if debug else None,
    )


def exec_server(argv: Sequence[str], env: dict[str, str]) -> None:
    """Replace this process with a server (so that signals reach it directly); a child process on Windows."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # pragma: no cover - exec does not keep the console on Windows
        raise SystemExit(subprocess.call(list(argv), env=env))
    os.execve(argv[0], list(argv), env)  # pragma: no cover - replaced by the server


__all__ = ["exec_server", "granian_command", "gunicorn_command", "run_uvicorn"]
