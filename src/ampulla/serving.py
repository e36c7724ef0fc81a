"""The development server behind ``ampulla run`` and ``app.run()``, and the launchers of production servers.

The development server uses the standard library only. It speaks HTTP/1.1 (keep-alive, chunked responses
and chunked request bodies), serves each connection in a thread, answers an application that raises with a
500 and keeps serving, and with ``use_reloader`` restarts itself in a child process when Python files change
(through ``watchfiles``). It is neither hardened nor tuned for traffic from the internet: deploy with
gunicorn, uvicorn or granian (see ``docs/deployment.md``), which ``ampulla run --server`` starts with
:func:`gunicorn_command`, :func:`granian_command` and :func:`run_uvicorn`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import io
import logging
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import unquote
from wsgiref.headers import Headers
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from . import __version__
from .exceptions import BadRequest

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Set to ``"true"`` in the child process the reloader starts (the one that serves).
RELOADER_ENV = "AMPULLA_RUN_MAIN"
#: The reloader's PID, so that its child can stop when the reloader dies without cleaning up.
_RELOADER_PID_ENV = "AMPULLA_RELOADER_PID"
#: Bytes of an unread request body the server reads and drops to keep the connection open.
_DRAIN_LIMIT = 1024 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

_log = logging.getLogger("ampulla.serving")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- request bodies
class _Body(io.RawIOBase):
    """A request body reader whose ``read(n)`` returns ``n`` bytes unless the body ends first.

    WSGI applications (and Ampulla's own request) expect file semantics from ``wsgi.input``, not the short
    reads of a raw stream.
    """

    #: The body cannot be read to its end (malformed, or the client went away): close the connection.
    broken = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        parts: list[bytes] = []
        left = size
        while left > 0:
            buffer = bytearray(left)
            count = self.readinto(buffer)
            if not count:
                break
            parts.append(bytes(buffer[:count]))
            left -= count
        return b"".join(parts)


class _LengthBody(_Body):
    """``wsgi.input`` for a body with a ``Content-Length``: reading stops at the end of the body.

    Args:
        rfile: The connection's buffered reader.
        length: The announced body length.
    """

    def __init__(self, rfile: io.BufferedIOBase, length: int) -> None:
        super().__init__()
        self._rfile = rfile
        self.remaining = length

    def readinto(self, buffer: ReadableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        size = min(len(view), self.remaining)
        if size <= 0:
            return 0
        data = self._rfile.read(size)
        count = len(data)
        view[:count] = data
        self.remaining -= count
        if count < size:  # the client went away in the middle of the body
            self.broken = True
            self.remaining = 0
        return count

    def readline(self, size: int | None = -1, /) -> bytes:
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        if limit <= 0:
            return b""
        line = self._rfile.readline(limit)
        self.remaining -= len(line)
        if not line:
            self.broken = True
            self.remaining = 0
        return line

    @property
    def finished(self) -> bool:
        """Whether the whole body has been read from the connection."""
        return self.remaining == 0 and not self.broken


class MalformedChunkedBody(BadRequest, ValueError):
    """The request body's chunked transfer encoding is invalid (an Ampulla app answers 400)."""


class _ChunkedBody(_Body):
    """``wsgi.input`` for a body sent with ``Transfer-Encoding: chunked``: decoded, ends at the last chunk.

    Args:
        rfile: The connection's buffered reader.
    """

    def __init__(self, rfile: io.BufferedIOBase) -> None:
        super().__init__()
        self._rfile = rfile
        self._chunk_left = 0
        self._done = False

    def _fail(self, message: str) -> MalformedChunkedBody:
        self.broken = True
        self._done = True
        return MalformedChunkedBody(message)

    def _next_chunk_size(self) -> int:
        line = self._rfile.readline(1026)
        if not line.endswith(b"\n"):
            raise self._fail("the request body ended inside a chunk-size line")
        size = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size):
            raise self._fail(f"invalid chunk size {size[:20]!r} in the request body")
        return int(size, 16)

    def _skip_trailers(self) -> None:
        for _ in range(100):
            line = self._rfile.readline(8192)
            if line in (b"\r\n", b"\n"):
                return
            if not line:
                raise self._fail("the request body ended inside its trailers")
        raise self._fail("too many trailer lines after the request body")

    def readinto(self, buffer: ReadableBuffer) -> int:
        if self._done:
            return 0
        if self._chunk_left == 0:
            self._chunk_left = self._next_chunk_size()
            if self._chunk_left == 0:
                self._skip_trailers()
                self._done = True
                return 0
        view = memoryview(buffer).cast("B")
        data = self._rfile.read(min(len(view), self._chunk_left))
        if not data:
            raise self._fail("the request body ended inside a chunk")
        count = len(data)
        view[:count] = data
        self._chunk_left -= count
        if self._chunk_left == 0 and self._rfile.readline(3) not in (b"\r\n", b"\n"):
            raise self._fail("a chunk of the request body is not followed by CRLF")
        return count

    @property
    def finished(self) -> bool:
        """Whether the whole body, up to the last chunk, has been read from the connection."""
        return self._done and not self.broken


def _drain(body: _LengthBody | _ChunkedBody, limit: int = _DRAIN_LIMIT) -> bool:
    """Read and drop what the application left unread. Returns whether the connection can be reused."""
    try:
        while limit > 0:
            block = body.read(min(65536, limit))
            if not block:
                break
            limit -= len(block)
    except (OSError, ValueError):
        return False
    return body.finished


# ---------------------------------------------------------------------------------------------- responses
class _ResponseWriter(ServerHandler):
    """Runs the WSGI application for one request and writes an HTTP/1.1 response.

    Adds ``Transfer-Encoding: chunked`` to responses of unknown length (HTTP/1.1 clients) and
    ``Connection: close`` when the connection will not be reused.
    """

    http_version = "1.1"
    server_software = f"Ampulla-dev/{__version__}"
    # NOTE: wsgiref copies the process environment into every request's environ by default; secrets in
    # environment variables have no business there (debug pages show the environ).
    os_environ: dict[str, str] = {}
    error_body = b"Internal Server Error: the application raised an exception (see the server log)."

    # Set by wsgiref's BaseHandler (not declared in its type stubs).
    status: str | None
    headers: Headers | None
    headers_sent: bool
    environ: dict[str, Any]

    def __init__(self, handler: DevRequestHandler, body: _Body, environ: dict[str, Any]) -> None:
        server = handler.server
        super().__init__(
            cast(IO[bytes], body),
            cast(IO[bytes], handler.wfile),
            sys.stderr,
            environ,
            multithread=server.multithread,
            multiprocess=False,
        )
        self.request_handler = handler
        self.body = body
        self.completed = False
        self._chunked = False
        self._head = environ["REQUEST_METHOD"] == "HEAD"
        self._no_body = self._head

    def cleanup_headers(self) -> None:
        headers = self.headers
        assert self.status is not None and headers is not None
        code = int(self.status[:3])
        if code < 200 or code in (204, 304):
            self._no_body = True
        if "Content-Length" not in headers and not self._head:
            self.set_content_length()
        handler = self.request_handler
        if self.body.broken:
            handler.close_connection = True
        if "Content-Length" not in headers and not self._no_body:
            if handler.request_version == "HTTP/1.1":
                headers["Transfer-Encoding"] = "chunked"
                self._chunked = True
            else:  # an HTTP/1.0 client reads the body until the connection closes
                handler.close_connection = True
        if handler.close_connection:
            headers["Connection"] = "close"

    def write(self, data: bytes) -> None:
        if type(data) is not bytes:
            raise TypeError(f"the application must yield bytes, not {type(data).__name__}")
        if not self.status:
            raise AssertionError("write() before start_response()")
        if not self.headers_sent:
            self.bytes_sent = len(data)
            self.send_headers()
        else:
            self.bytes_sent += len(data)
        if self._no_body or not data:
            return
        if self._chunked:
            self._write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._write(data)
        self._flush()

    def finish_content(self) -> None:
        if not self.headers_sent:
            assert self.headers is not None
            if not self._head:
                self.headers.setdefault("Content-Length", "0")
            self.send_headers()
        elif self._chunked and not self._no_body:
            self._write(b"0\r\n\r\n")
            self._flush()
        self.completed = True

    def log_exception(self, exc_info: Any) -> None:
        environ = self.environ or {}
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        _log.error("Error on request %s %s", method, path, exc_info=exc_info)

    def handle_error(self) -> None:
        # The response is answered with a 500 when nothing was sent yet; a stream that fails half-way is cut
        # short (no final chunk), so the client sees an incomplete response rather than a truncated success.
        self.request_handler.close_connection = True
        super().handle_error()


class DevRequestHandler(WSGIRequestHandler):
    """Serves the requests of one connection: HTTP/1.1 keep-alive until the client or an error closes it."""

    protocol_version = "HTTP/1.1"
    server_version = f"Ampulla-dev/{__version__}"
    sys_version = ""
    #: Seconds an idle keep-alive connection (or a stalled upload) keeps its thread.
    timeout = 30
    disable_nagle_algorithm = True
    server: DevServer

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            if self.request_version != "HTTP/1.1":
                self.close_connection = True
            self._serve()
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def _body(self) -> tuple[_LengthBody | _ChunkedBody, bool] | None:
        """The request body reader and whether it is chunked; ``None`` after answering a bad request."""
        transfer_encoding = self.headers.get("Transfer-Encoding")
        length = self.headers.get("Content-Length")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                self.send_error(501, "Only the chunked transfer encoding is supported")
                return None
            if length is not None:  # NOTE: both headers at once is how requests are smuggled past proxies
                self.send_error(400, "Content-Length and Transfer-Encoding are both set")
                return None
            return _ChunkedBody(self.rfile), True
        if length is None:
            return _LengthBody(self.rfile, 0), False
        if not length.strip().isdigit():
            self.send_error(400, "Invalid Content-Length")
            return None
        return _LengthBody(self.rfile, int(length)), False

    def make_environ(self, chunked: bool) -> dict[str, Any]:
        """The WSGI environ for the parsed request (``wsgi.*`` keys are added by the response writer)."""
        environ = self.server.base_environ.copy()
        environ.pop("CONTENT_LENGTH", None)
        path, _, query = self.path.partition("?")
        if not path.startswith("/") and "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        environ["SERVER_PROTOCOL"] = self.request_version
        environ["SERVER_SOFTWARE"] = self.server_version
        environ["REQUEST_METHOD"] = self.command
        environ["PATH_INFO"] = unquote(path, "latin-1")
        environ["QUERY_STRING"] = query
        environ["REMOTE_ADDR"] = self.client_address[0]
        environ["REMOTE_PORT"] = str(self.client_address[1])
        if chunked:
            environ["wsgi.input_terminated"] = True
        for name, value in self.headers.items():
            if "_" in name:
                # NOTE: "X_Forwarded_For" would land in the same key as "X-Forwarded-For"; like gunicorn and
                # nginx we drop such headers so a client cannot shadow one set by a proxy.
                continue
            key = name.upper().replace("-", "_")
            value = value.strip()
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if not chunked or key == "CONTENT_TYPE":
                    environ[key] = value
                continue
            key = "HTTP_" + key
            if key in environ:
                value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
            environ[key] = value
        return environ

    def _serve(self) -> None:
        body_and_kind = self._body()
        if body_and_kind is None:
            return
        body, chunked = body_and_kind
        environ = self.make_environ(chunked)
        writer = _ResponseWriter(self, body, environ)
        app = self.server.get_app()
        assert app is not None
        writer.run(app)
        if not writer.completed or (not self.close_connection and not _drain(body)):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        _log.info("%s - - [%s] %s", self.address_string(), self.log_date_time_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        _log.warning("%s - - [%s] %s", self.address_string(), self.log_date_time_string(), format % args)


class DevServer(socketserver.ThreadingMixIn, WSGIServer):
    """The development server: one thread per connection (or one connection at a time).

    Args:
        host: The address to bind (``"127.0.0.1"``, ``"0.0.0.0"``, ``"::1"``).
        port: The port to bind (``0`` picks a free one; see ``server_port``).
        app: The WSGI application.
        threaded: Serve connections in threads; ``False`` serves one connection at a time.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: WSGIApplication, threaded: bool = True) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.multithread = threaded
        super().__init__((host, port), DevRequestHandler)
        self.set_app(app)

    def server_bind(self) -> None:
        # NOTE: HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.multithread:
            super().process_request(request, client_address)
        else:
            socketserver.TCPServer.process_request(self, request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        _log.error("Error while serving %s", client_address, exc_info=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket."""
        host = self.server_name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}"


def make_server(host: str, port: int, app: WSGIApplication, threaded: bool = True) -> DevServer:
    """Bind a development server; call ``serve_forever()`` to serve and ``shutdown()`` to stop.

    Args:
        host: The address to bind.
        port: The port (``0`` for a free one).
        app: The WSGI application.
        threaded: One thread per connection.

    Raises:
        OSError: The address cannot be bound; the message says which and what to do.
    """
    try:
        return DevServer(host, port, app, threaded=threaded)
    except OSError as e:
        import errno

        if e.errno == errno.EADDRINUSE:
            raise OSError(
                e.errno,
                f"Port {port} on {host} is already in use. Stop the program using it, or pick another port "
                "(ampulla run --port 5001, or app.run(port=5001)).",
            ) from None
        raise


# ---------------------------------------------------------------------------------------------- run_simple
def is_running_from_reloader() -> bool:
    """Whether this process is the server child started by the reloader."""
    return os.environ.get(RELOADER_ENV) == "true"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (main thread only), so ``kill PID`` stops as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch_reloader_parent() -> None:
    """In the reloader's child: stop when the reloader is gone (killed without a chance to stop us)."""
    expected = os.environ.get(_RELOADER_PID_ENV)
    if not expected or not expected.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(1.0)
        _log.warning(" * The reloader process has exited; stopping the server.")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ampulla-reloader-watchdog", daemon=True).start()


def _configure_logging() -> None:
    if not _log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        _log.addHandler(handler)
    if _log.level == logging.NOTSET:
        _log.setLevel(logging.INFO)


def _print_banner(server: DevServer, app: Any) -> None:
    name = getattr(app, "name", None)
    debug = getattr(app, "debug", None)
    if name is not None:
        mode = "" if debug is None else f" (debug mode: {'on' if debug else 'off'})"
        _echo(f" * Serving Ampulla app {name!r}{mode}")
    if server.server_name in ("0.0.0.0", "::"):
        local = "127.0.0.1" if server.server_name == "0.0.0.0" else "[::1]"
        _echo(f" * Running on all addresses ({server.server_name}), e.g. http://{local}:{server.server_port}")
    _echo(f" * Running on {server.url} (Press CTRL+C to quit)")
    _echo(
        " * WARNING: this is the development server. Do not use it in production: serve the app with "
        "gunicorn, uvicorn or granian (see docs/deployment.md)."
    )


def run_simple(
    hostname: str,
    port: int,
    application: WSGIApplication,
    use_reloader: bool = False,
    use_debugger: bool = False,
    use_evalex: bool = True,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    reloader_interval: float = 1,
    reloader_type: str = "auto",
    threaded: bool = True,
    processes: int = 1,
    passthrough_errors: bool = False,
    reloader_paths: Sequence[str] | None = None,
    ssl_context: Any = None,
) -> None:
    """Serve ``application`` with the development server until Ctrl-C (or SIGTERM).

    Prints the URL and a warning that this server is for development only. An application that raises is
    logged and answered with a 500; the server keeps serving.

    Args:
        hostname: The address to bind (``127.0.0.1`` keeps the server private to this machine).
        port: The port (``0`` picks a free one and prints it).
        application: The WSGI application (an :class:`~ampulla.Ampulla` app is one).
        use_reloader: Serve from a child process and restart it when a Python file changes (needs
            ``watchfiles``).
        use_debugger: Accepted for Flask compatibility; Ampulla never serves an interactive debugger (debug
            mode shows a traceback page).
        use_evalex: Accepted for Flask compatibility; ignored.
        extra_files: With the reloader, further files whose change restarts the server.
        exclude_patterns: With the reloader, ``fnmatch`` patterns of paths to ignore.
        reloader_interval: Accepted for Flask compatibility; ``watchfiles`` is notified of changes.
        reloader_type: Accepted for Flask compatibility; ignored.
        threaded: One thread per connection.
        processes: Must be 1: for several processes use gunicorn, uvicorn or granian with ``--workers``.
        passthrough_errors: Accepted for Flask compatibility; errors are always logged and answered with 500.
        reloader_paths: Folders the reloader watches (default: the script's folder and the app's root path).
        ssl_context: An ``ssl.SSLContext``: serve HTTPS.

    Raises:
        ValueError: ``processes`` is not 1.
        OSError: The address cannot be bound.
    """
    del use_debugger, use_evalex, reloader_interval, reloader_type, passthrough_errors
    if processes != 1:
        raise ValueError(
            "The development server runs one process. For several worker processes use "
            "'ampulla run --server gunicorn --workers N' (or uvicorn/granian)."
        )
    if use_reloader and not is_running_from_reloader():
        paths = list(reloader_paths) if reloader_paths else default_reload_paths(application)
        sys.exit(run_with_reloader(paths, extra_files or (), exclude_patterns or ()))
    _configure_logging()
    server = make_server(hostname, port, application, threaded=threaded)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    if is_running_from_reloader():
        _watch_reloader_parent()
    _print_banner(server, application)
    try:
        with _sigterm_as_interrupt():
            try:
                server.serve_forever(poll_interval=0.25)
            except KeyboardInterrupt:
                pass
    finally:
        server.server_close()
        _echo(" * Server stopped.")


# ---------------------------------------------------------------------------------------------- reloader
def default_reload_paths(app: Any) -> list[str]:
    """The folders watched when none are given: the ``__main__`` script's folder and the app's root path."""
    paths: list[str] = []
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file:
        paths.append(os.path.dirname(os.path.abspath(main_file)))
    root_path = getattr(app, "root_path", None)
    if isinstance(root_path, str):
        paths.append(root_path)
    return paths or [os.getcwd()]


def _dedupe_paths(paths: Iterable[str]) -> list[str]:
    """Existing absolute paths, without those inside another listed folder."""
    found = sorted({os.path.abspath(p) for p in paths if os.path.exists(p)}, key=len)
    kept: list[str] = []
    for path in found:
        if not any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(path)
    return kept


def reloader_child_argv() -> list[str]:
    """The command line that started this process (interpreter options included), to start it again."""
    return [sys.executable, *sys.orig_argv[1:]]


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def run_with_reloader(
    paths: Sequence[str],
    extra_files: Iterable[str] = (),
    exclude_patterns: Iterable[str] = (),
    argv: Sequence[str] | None = None,
) -> int:
    """Run this program again in a child process, and restart it when a watched Python file changes.

    The child sees ``AMPULLA_RUN_MAIN=true`` (:func:`is_running_from_reloader`) and serves. When it exits
    with an error (say, a syntax error), the reloader waits for the next change and starts it again.

    Args:
        paths: Folders (watched recursively, ``*.py`` files) and files to watch.
        extra_files: Further files whose change restarts the server, whatever their type.
        exclude_patterns: ``fnmatch`` patterns of paths to ignore.
        argv: The child's command line (default: this process's own).

    Returns:
        The exit status for this process: 0 after Ctrl-C or SIGTERM, else the child's status.

    Raises:
        RuntimeError: ``watchfiles`` is not installed.
    """
    try:
        import watchfiles
    except ImportError:
        raise RuntimeError(
            "Reloading needs the watchfiles package: pip install 'ampulla[server]' (or watchfiles)."
        ) from None
    extra = {os.path.abspath(f) for f in extra_files}
    excluded = tuple(exclude_patterns)
    default_filter = watchfiles.DefaultFilter()

    def watched(change: watchfiles.Change, path: str) -> bool:
        if path in extra:
            return True
        if not path.endswith((".py", ".pyi")) or any(fnmatch.fnmatch(path, p) for p in excluded):
            return False
        return default_filter(change, path)

    watch_paths = _dedupe_paths([*paths, *extra])
    if not watch_paths:
        raise RuntimeError(f"None of the paths to watch exist: {list(paths)}")
    command = list(argv) if argv is not None else reloader_child_argv()
    env = {**os.environ, RELOADER_ENV: "true", _RELOADER_PID_ENV: str(os.getpid())}
    _echo(f" * Restarting with the watchfiles reloader, watching {', '.join(watch_paths)}")
    watcher = watchfiles.watch(
        *watch_paths, watch_filter=watched, rust_timeout=250, yield_on_timeout=True, raise_interrupt=True
    )
    child: subprocess.Popen[bytes] | None = None
    try:
        with _sigterm_as_interrupt():
            while True:
                child = subprocess.Popen(command, env=env)
                changes = None
                for changes in watcher:
                    if changes or child.poll() is not None:
                        break
                if changes:
                    names = sorted({os.path.relpath(path) for _, path in changes})
                    _echo(f" * Detected a change in {', '.join(names)}, reloading")
                    _stop_process(child)
                    continue
                code = child.wait()
                if code == 0:
                    return 0
                _echo(f" * The server exited with status {code}; it restarts when you save a change.")
                for changes in watcher:
                    if changes:
                        break
    except KeyboardInterrupt:
        return 0
    finally:
        if child is not None:
            _stop_process(child)
        watcher.close()


# ---------------------------------------------------------------------------------------- production servers
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


__all__ = [
    "DevRequestHandler",
    "DevServer",
    "MalformedChunkedBody",
    "default_reload_paths",
    "exec_server",
    "granian_command",
    "gunicorn_command",
    "is_running_from_reloader",
    "make_server",
    "reloader_child_argv",
    "run_simple",
    "run_uvicorn",
    "run_with_reloader",
]
