"""The application under fuzz and the drivers that send one request through its WSGI and ASGI callables.

The app runs as in production (``TESTING`` off, exceptions not propagated), so an internal error becomes a
500 that the invariants catch; its logger prints nothing but records everything, and any record at WARNING
or above (every logged exception) is a failure too.

Requests are described once (:class:`Req`) and delivered the way servers deliver them:

- WSGI (PEP 3333): ``PATH_INFO`` is the percent-decoded path as latin-1 text, ``QUERY_STRING`` the raw query
  as latin-1 text, headers as ``HTTP_*`` keys (repeated headers joined with ``,``), ``wsgi.input`` a file;
- ASGI (HTTP 2.3): ``path`` is the percent-decoded path decoded as UTF-8 (invalid bytes replaced, as uvicorn
  and hypercorn do), ``raw_path`` the encoded bytes, lower-cased header names, the body in ``http.request``
  messages of ``chunk_size`` bytes, then ``http.disconnect`` once the response is complete.

Header values never contain CR or LF (every HTTP/1.1 parser refuses them before the app sees them).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

from ampulla import Ampulla, Blueprint, request, send_file, send_from_directory, session, stream_request_body

__all__ = [
    "APP_NAME",
    "BIG_UPLOAD_LIMIT",
    "FILE_CONTENT",
    "MAX_CONTENT_LENGTH",
    "MAX_FORM_MEMORY_SIZE",
    "MAX_FORM_PARTS",
    "MAX_JSON_DEPTH",
    "MEMORY_FACTOR",
    "MEMORY_SLACK",
    "InvariantError",
    "Req",
    "Result",
    "canonical",
    "capture_logs",
    "get_app",
    "run_asgi",
    "run_wsgi",
    "send",
]

APP_NAME = "ampulla_fuzz_app"
SECRET_KEY = "fuzz-secret-key"
OLD_SECRET_KEY = "fuzz-old-secret-key"
#: Small limits, so that a fuzz input a few KiB long can cross them with the repeat operations of the targets
#: (and each input stays fast). ``/big-upload`` and ``/big-form`` allow 4 MiB, past the ASGI adapter's 1 MiB
#: spool threshold.
MAX_CONTENT_LENGTH = 256 * 1024
MAX_FORM_MEMORY_SIZE = 16 * 1024
MAX_FORM_PARTS = 200
#: The app's nesting limit for JSON bodies (``MAX_JSON_DEPTH``): deeper is a 400 wherever it is parsed.
MAX_JSON_DEPTH = 512
BIG_UPLOAD_LIMIT = 4 * 1024 * 1024
#: Memory bound for one request (form targets): at most ``MEMORY_FACTOR`` times the body plus ``MEMORY_SLACK``
#: allocated at peak (traced by tracemalloc). The body may exist once as received, once joined, once parsed,
#: once in spooled files; far beyond that is per-message or per-part overhead a client controls (an
#: amplification: thousands of tiny ASGI messages, thousands of parts...).
MEMORY_FACTOR = 4
MEMORY_SLACK = 1024 * 1024
#: The fuzz targets send a body in at most this many ``http.request`` messages (a smaller chunk size is raised
#: to fit, see :func:`chunk_size_for`), so that one input stays fast; the explicit slow-upload test of
#: ``test_hostile_input.py`` sends 262,144 one-byte messages.
MAX_ASGI_MESSAGES = 2_000


def chunk_size_for(body: bytes, wanted: int) -> int:
    """``wanted``, raised so that ``body`` takes at most ``MAX_ASGI_MESSAGES`` messages."""
    return max(1, wanted, -(-len(body) // MAX_ASGI_MESSAGES))
#: Content of the file served by the ``send_file`` views (1000 bytes, every byte position distinguishable).
FILE_CONTENT = bytes((i * 7 + 3) % 251 for i in range(1000))
FILE_MTIME = 1_700_000_000
MEM_ETAG = "mem-etag-1"
#: Stored outside the public folder: no URL may ever return it.
SECRET_MARKER = b"TOP-SECRET-6f1c0a"
ASGI_TIMEOUT = 30.0

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE_RE = re.compile(r"([1-5][0-9][0-9]) [^\r\n\x00]*")


class InvariantError(AssertionError):
    """A hostile input broke an invariant (a 500, an escaped exception, a logged error, a malformed answer...)."""


# ---------------------------------------------------------------------------------------------------------
# Helpers shared by the app and the targets
# ---------------------------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    """A canonical, ASCII-only text for a JSON-like value, built without recursion (any nesting depth).

    Floats are written with ``repr`` (``nan``, ``inf`` included), strings as escaped JSON strings (lone
    surrogates included), dict keys in order.
    """
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            out.append("{")
            stack.append(_Text("}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, val = entries[index]
                stack.append(val)
                stack.append(_Text(("," if index else "") + json.dumps(str(key)) + ":"))
        elif isinstance(item, list | tuple):
            out.append("[")
            stack.append(_Text("]"))
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_Text(","))
        elif isinstance(item, str | bool) or item is None:
            out.append(json.dumps(item))
        elif isinstance(item, int):
            try:
                out.append(str(item))
            except ValueError:  # more digits than int -> str allows
                out.append(f"<int of {item.bit_length()} bits>")
        elif isinstance(item, float):
            out.append(repr(item))
        else:
            out.append(f"<{type(item).__name__}>")
    return "".join(out)


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def typed(value: Any) -> list[str]:
    """A view argument as ``[type, text]`` so that a round trip compares types as well as values."""
    if isinstance(value, bool):
        return ["bool", str(value)]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    return ["str", json.dumps(value)]


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------------------------

#: endpoint -> rule of the converter routes (URL building round trips use every one of them).
CONVERTER_RULES: dict[str, str] = {
    "conv_int": "/int/<int:value>",
    "conv_signed": "/signed/<int(signed=True):value>",
    "conv_bounded": "/bounded/<int(min=1, max=100):value>",
    "conv_fixed": "/fixed/<int(fixed_digits=4):value>",
    "conv_float": "/float/<float:value>",
    "conv_sfloat": "/sfloat/<float(signed=True):value>",
    "conv_uuid": "/uuid/<uuid:value>",
    "conv_string": "/str/<value>",
    "conv_minmax": "/minmax/<string(minlength=2, maxlength=8):value>",
    "conv_exact": "/exact/<string(length=3):value>",
    "conv_path": "/path/<path:value>",
    "conv_any": '/any/<any(red, green, "dark blue"):value>',
    "conv_multi": "/multi/<int:a>/<b>/<path:c>",
    "conv_slashed": "/dir/<value>/",
    "conv_wild": "/<value>/wild",
    "conv_over_int": "/over/<int:value>",
    "conv_over_str": "/over/<value>",
}
ANY_ITEMS = ("red", "green", "dark blue")

_state: dict[str, Any] = {}


def _make_echo(endpoint: str, as_async: bool) -> Any:
    def echo(**values: Any) -> Any:
        return {
            "endpoint": request.endpoint,
            "values": {k: typed(v) for k, v in sorted(values.items())},
            "args": [[k, v] for k, v in request.args.items(multi=True)],
        }

    if as_async:

        async def async_echo(**values: Any) -> Any:
            return echo(**values)

        async_echo.__name__ = endpoint
        return async_echo
    echo.__name__ = endpoint
    return echo


def _form_answer() -> dict[str, Any]:
    files = []
    for name, upload in request.files.items(multi=True):
        data = upload.read()
        files.append([name, upload.filename, upload.content_type, len(data), file_digest(data)])
    return {"form": [[k, v] for k, v in request.form.items(multi=True)], "files": files}


def build_app(root: str) -> Ampulla:
    """The realistic application every target talks to (files under ``root``)."""
    public = os.path.join(root, "public")
    os.makedirs(os.path.join(public, "sub"), exist_ok=True)
    for name in ("hello.txt", os.path.join("sub", "data.bin")):
        with open(os.path.join(public, name), "wb") as f:
            f.write(FILE_CONTENT)
        os.utime(os.path.join(public, name), (FILE_MTIME, FILE_MTIME))
    with open(os.path.join(root, "secret.txt"), "wb") as f:
        f.write(SECRET_MARKER)

    app = Ampulla(APP_NAME, root_path=root, static_folder=None)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SECRET_KEY_FALLBACKS=[OLD_SECRET_KEY],
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        MAX_JSON_DEPTH=MAX_JSON_DEPTH,
        SYNC_VIEW_THREADS=4,
        # Behind one trusted proxy, with the opt-in hardening on: more request-derived text reaches headers.
        PROXY_FIX={"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1},
        TRUSTED_HOSTS=["localhost", "127.0.0.1", ".example.org"],
        SECURITY_HEADERS=True,
        CONTENT_SECURITY_POLICY="default-src 'self'",
        HSTS_MAX_AGE=3600,
    )
    assert not app.testing

    bp = Blueprint("bp", __name__, url_prefix="/bp")
    for index, (endpoint, rule) in enumerate(CONVERTER_RULES.items()):
        app.add_url_rule(rule, endpoint, _make_echo(endpoint, as_async=index % 2 == 1))
    bp.add_url_rule("/<int:value>", "item", _make_echo("item", as_async=False))
    app.register_blueprint(bp)

    @app.route("/")
    def index() -> str:
        return "index"

    @app.route("/static-page")
    async def static_page() -> str:
        return "static"

    @app.route("/dir/", endpoint="dir_index")
    def dir_index() -> str:
        return "dir"

    @app.route("/loose", strict_slashes=False)
    def loose() -> str:
        return "loose"

    @app.route("/post-only", methods=["POST"])
    def post_only() -> str:
        return "posted"

    app.add_url_rule("/old/<int:value>", "old", redirect_to="/int/<value>")

    @app.route("/args", inline=True)
    def args() -> Any:
        return {"args": [[k, v] for k, v in request.args.items(multi=True)]}

    @app.route("/form", methods=["POST", "PUT"])
    def form() -> Any:
        return _form_answer()

    @app.route("/form-async", methods=["POST"])
    async def form_async() -> Any:
        return _form_answer()

    @app.route("/big-form", methods=["POST"], max_content_length=BIG_UPLOAD_LIMIT)
    def big_form() -> Any:
        return _form_answer()

    @app.route("/values", methods=["GET", "POST"])
    def values() -> Any:
        return {"values": [[k, v] for k, v in request.values.items(multi=True)]}

    @app.route("/json", methods=["POST", "PUT"])
    async def json_view() -> Any:
        return {"canon": canonical(request.get_json())}

    @app.route("/json-sync", methods=["POST"])
    def json_sync() -> Any:
        data = request.get_json(silent=True)
        return {"canon": canonical(data)}

    @app.route("/data", methods=["POST", "PUT", "PATCH"])
    def data() -> Any:
        body = request.get_data()
        return {"len": len(body), "digest": file_digest(body)}

    @app.route("/big-upload", methods=["POST"], max_content_length=BIG_UPLOAD_LIMIT)
    def big_upload() -> Any:
        digest = hashlib.sha256()
        size = 0
        while chunk := request.stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        return {"len": size, "digest": digest.hexdigest()[:16]}

    @app.route("/upload-stream", methods=["POST"])
    @stream_request_body
    async def upload_stream() -> Any:
        size = 0
        async for chunk in request.stream_async():
            size += len(chunk)
        return {"len": size}

    @app.route("/cookies")
    def cookies() -> Any:
        return {"cookies": [[k, v] for k, v in request.cookies.items(multi=True)]}

    @app.route("/session")
    def session_view() -> Any:
        return {"session": canonical(dict(session))}

    @app.route("/session/set", methods=["POST"])
    async def session_set() -> Any:
        count = session.get("n")
        session["n"] = count + 1 if isinstance(count, int) and not isinstance(count, bool) else 1
        return {"n": session["n"]}

    @app.route("/file")
    def file() -> Any:
        return send_file(os.path.join("public", "hello.txt"), mimetype="text/plain")

    @app.route("/file-mem")
    async def file_mem() -> Any:
        return send_file(
            io.BytesIO(FILE_CONTENT), mimetype="application/octet-stream", etag=MEM_ETAG, last_modified=FILE_MTIME
        )

    @app.route("/files/<path:name>")
    def files(name: str) -> Any:
        return send_from_directory("public", name)

    @app.route("/stream")
    def stream() -> Any:
        def generate() -> Iterator[bytes]:
            yield b"a" * 10
            yield b"b" * 10

        return generate()

    @app.route("/headers", methods=["GET", "POST"])
    def headers() -> Any:
        return {
            "count": len(list(request.headers)),
            "host": request.host,
            "ua": request.user_agent.string,
            "len": request.content_length,
            "mimetype": request.mimetype,
            "params": sorted(request.mimetype_params.items()),
            "url": request.url,
            "secure": request.is_secure,
            "auth": request.authorization.to_header() if request.authorization else None,
        }

    return app


def get_app() -> Ampulla:
    """The process-wide app (built once, in a temporary folder removed at exit)."""
    app = _state.get("app")
    if app is None:
        root = tempfile.mkdtemp(prefix="ampulla-fuzz-")
        atexit.register(shutil.rmtree, root, True)
        app = build_app(root)
        logger = app.logger
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(_CAPTURE)
        logger.propagate = False
        logger.disabled = False
        _state["app"] = app
        _state["root"] = root
        _warm_up(app)
    return app


def _warm_up(app: Ampulla) -> None:
    """One request per view and protocol, so lazy imports and per-endpoint caches are not counted in the
    first measured request's memory."""
    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    multipart = [(b"content-type", b"multipart/form-data; boundary=b")]
    body = b'--b\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\nv\r\n--b--\r\n'
    requests = [Req("GET", rule.rule.encode()) for rule in app.url_map.iter_rules() if "<" not in rule.rule]
    requests += [
        Req("POST", route, b"", headers, data)
        for route in (b"/form", b"/form-async", b"/big-form", b"/values", b"/data", b"/big-upload",
                      b"/upload-stream")
        for headers, data in ((form, b"a=1"), (multipart, body))
    ]
    requests += [Req("POST", b"/json", b"", [(b"content-type", b"application/json")], b"[1]"),
                 Req("GET", b"/file", b"", [(b"range", b"bytes=0-1,3-4")]), Req("GET", b"/x/wild")]
    for req in requests:
        for runner in (run_wsgi, run_asgi):
            with contextlib.suppress(InvariantError):
                runner(app, req)
    _CAPTURE.records.clear()


# ---------------------------------------------------------------------------------------------------------
# Log capture
# ---------------------------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_CAPTURE = _Capture()


def _describe_record(record: logging.LogRecord) -> str:
    text = f"{record.levelname} {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        tb = exc.__traceback__
        where = ""
        while tb is not None:
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            tb = tb.tb_next
        text += f": {type(exc).__name__}: {str(exc)[:200]} (raised at {where})"
    return text


@contextlib.contextmanager
def capture_logs(what: str) -> Iterator[None]:
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(_CAPTURE)
    _CAPTURE.records.clear()
    try:
        yield
    finally:
        asyncio_logger.removeHandler(_CAPTURE)
    if _CAPTURE.records:
        records = "; ".join(_describe_record(r) for r in _CAPTURE.records)
        _CAPTURE.records.clear()
        raise InvariantError(f"{what}: logged {records}")


# ---------------------------------------------------------------------------------------------------------
# Requests and results
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Req:
    """One request, independent of the protocol.

    Attributes:
        method: The method token.
        path: The path as the server percent-decoded it (bytes).
        query: The raw query string (bytes, not decoded).
        headers: ``(name, value)`` pairs; names are lower-cased on delivery, CR/LF dropped from values.
        body: The body.
        content_length: Add a matching ``Content-Length`` unless the headers already have one; ``False``
            sends the body chunked (``Transfer-Encoding: chunked``, ``wsgi.input_terminated``).
        chunk_size: Bytes per ASGI ``http.request`` message (1 models a slow upload).
        disconnect: The client goes away mid-body: ``Content-Length`` announces 10 more bytes than the body
            (WSGI input ends early; ASGI sends ``http.disconnect`` after the last chunk).
    """

    method: str = "GET"
    path: bytes = b"/"
    query: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    content_length: bool = True
    chunk_size: int = 65536
    disconnect: bool = False

    def delivered_headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        names = set()
        for name, value in self.headers:
            name = name.strip().lower()
            if not name or not _TOKEN_RE.fullmatch(name.decode("latin-1")):
                continue
            value = value.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")
            names.add(name)
            out.append((name, value))
        if b"host" not in names:
            out.insert(0, (b"host", b"localhost"))
        if b"content-length" not in names and b"transfer-encoding" not in names:
            if self.content_length:
                if self.body or self.disconnect or self.method not in ("GET", "HEAD", "OPTIONS", "DELETE", "TRACE"):
                    length = len(self.body) + (10 if self.disconnect else 0)
                    out.append((b"content-length", str(length).encode("ascii")))
            else:
                out.append((b"transfer-encoding", b"chunked"))
        return out

    def __repr__(self) -> str:
        headers = [(n[:60], v[:60]) for n, v in self.headers[:12]]
        return (
            f"Req({self.method!r}, path={self.path[:200]!r}, query={self.query[:200]!r}, headers={headers!r}"
            f"{'...' if len(self.headers) > 12 else ''}, body={self.body[:200]!r} ({len(self.body)} bytes), "
            f"content_length={self.content_length}, chunk_size={self.chunk_size}, disconnect={self.disconnect})"
        )


@dataclass
class Result:
    protocol: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    peak: int | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


def wsgi_environ(req: Req) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": req.path.decode("latin-1"),
        "QUERY_STRING": req.query.decode("latin-1"),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in req.delivered_headers():
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    if not req.content_length:
        environ["wsgi.input_terminated"] = True
    return environ


def asgi_scope(req: Req) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": req.path.decode("utf-8", "replace"),
        "raw_path": quote_from_bytes(req.path, safe="/").encode("ascii"),
        "query_string": req.query,
        "root_path": "",
        "headers": req.delivered_headers(),
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
        "state": {},
    }


def _check_headers(protocol: str, headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvariantError(f"{protocol}: header {name!r}: {value!r} is not text")
        if not _TOKEN_RE.fullmatch(name):
            raise InvariantError(f"{protocol}: header name {name!r} is not a token")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvariantError(f"{protocol}: header {name}: {value[:200]!r} is not latin-1") from None
        if "\r" in value or "\n" in value or "\x00" in value:
            raise InvariantError(f"{protocol}: header {name}: {value[:200]!r} contains CR, LF or NUL")


def _check_result(result: Result, req: Req) -> None:
    protocol = result.protocol
    if not 100 <= result.status <= 599:
        raise InvariantError(f"{protocol}: status {result.status} out of range")
    _check_headers(protocol, result.headers)
    length = result.header_list("Content-Length")
    if len(length) > 1:
        raise InvariantError(f"{protocol}: {len(length)} Content-Length headers")
    if req.method == "HEAD" and result.body:
        raise InvariantError(f"{protocol}: HEAD answered with a {len(result.body)}-byte body")
    if (length and req.method != "HEAD" and result.status not in (204, 304)
            and (not length[0].isdigit() or int(length[0]) != len(result.body))):
        raise InvariantError(f"{protocol}: Content-Length {length[0]!r} but the body has {len(result.body)} bytes")
    if result.status >= 500:
        raise InvariantError(f"{protocol}: status {result.status} for {req!r}: {result.body[:300]!r}")


@contextlib.contextmanager
def _memory(enabled: bool, box: list[int | None]) -> Iterator[None]:
    if not enabled:
        yield
        return
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        box[0] = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()


def run_wsgi(app: Ampulla, req: Req, *, measure: bool = False) -> Result:
    """Call ``app(environ, start_response)`` like a WSGI server and check the protocol was followed."""
    environ = wsgi_environ(req)
    calls: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if calls and exc_info is None:
            raise InvariantError("wsgi: start_response called twice without exc_info")
        if not isinstance(status, str) or not _STATUS_LINE_RE.fullmatch(status):
            raise InvariantError(f"wsgi: malformed status line {status!r}")
        if not isinstance(headers, list) or not all(isinstance(h, tuple) and len(h) == 2 for h in headers):
            raise InvariantError(f"wsgi: headers must be a list of pairs, got {headers!r}"[:300])
        calls.append((status, list(headers)))

        def write(data: bytes) -> None:  # pragma: no cover - the app never uses write()
            raise InvariantError("wsgi: the legacy write() callable was used")

        return write

    box: list[int | None] = [None]
    chunks: list[bytes] = []
    with _memory(measure, box):
        try:
            iterable = app(environ, start_response)
            try:
                for chunk in iterable:
                    if not isinstance(chunk, bytes):
                        raise InvariantError(f"wsgi: body chunk of type {type(chunk).__name__}")
                    if not calls:
                        raise InvariantError("wsgi: body yielded before start_response")
                    chunks.append(chunk)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except InvariantError:
            raise
        except Exception as e:
            raise InvariantError(f"wsgi: {type(e).__name__} escaped the WSGI callable for {req!r}: {e}") from e
    if not calls:
        raise InvariantError("wsgi: start_response was never called")
    status_line, headers = calls[-1]
    return Result("wsgi", int(status_line[:3]), headers, b"".join(chunks), box[0])


_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
        atexit.register(_close_loop)
    return _LOOP


def _close_loop() -> None:
    if _LOOP is not None and not _LOOP.is_closed():
        _LOOP.close()


async def _drive_asgi(app: Ampulla, req: Req) -> Result:
    scope = asgi_scope(req)
    body = req.body
    size = max(1, req.chunk_size)
    position = 0
    body_sent = False
    response_done = asyncio.Event()
    started: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal position, body_sent
        if not body_sent:
            chunk = body[position : position + size]
            position += len(chunk)
            body_sent = position >= len(body)
            return {"type": "http.request", "body": chunk, "more_body": not body_sent or req.disconnect}
        if not req.disconnect:
            await response_done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal started
        kind = message.get("type")
        if response_done.is_set():
            raise InvariantError(f"asgi: {kind} sent after the response was complete")
        if kind == "http.response.start":
            if started is not None:
                raise InvariantError("asgi: http.response.start sent twice")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool):
                raise InvariantError(f"asgi: status {status!r} is not an int")
            headers = message.get("headers", [])
            for pair in headers:
                if len(pair) != 2 or not isinstance(pair[0], bytes) or not isinstance(pair[1], bytes):
                    raise InvariantError(f"asgi: header {pair!r} is not a pair of bytes"[:300])
            started = dict(message)
        elif kind == "http.response.body":
            if started is None:
                raise InvariantError("asgi: http.response.body before http.response.start")
            chunk = message.get("body", b"")
            if not isinstance(chunk, bytes):
                raise InvariantError(f"asgi: body of type {type(chunk).__name__}")
            chunks.append(chunk)
            if not message.get("more_body", False):
                response_done.set()
        else:
            raise InvariantError(f"asgi: unexpected message type {kind!r}")

    try:
        await asyncio.wait_for(app(scope, receive, send), ASGI_TIMEOUT)
    except InvariantError:
        raise
    except TimeoutError:
        raise InvariantError(f"asgi: no answer within {ASGI_TIMEOUT} s for {req!r}") from None
    except Exception as e:
        raise InvariantError(f"asgi: {type(e).__name__} escaped the ASGI callable for {req!r}: {e}") from e
    finally:
        response_done.set()
    if started is None:
        raise InvariantError("asgi: the app returned without sending http.response.start")
    if not chunks:
        raise InvariantError("asgi: the app returned without completing the body")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in started.get("headers", [])]
    return Result("asgi", started["status"], headers, b"".join(chunks))


def run_asgi(app: Ampulla, req: Req, *, measure: bool = False) -> Result:
    """Drive ``await app(scope, receive, send)`` on the harness's event loop and check the protocol."""
    box: list[int | None] = [None]
    with _memory(measure, box):
        result = _loop().run_until_complete(_drive_asgi(app, req))
    result.peak = box[0]
    return result


def send(
    req: Req,
    *,
    protocols: tuple[str, ...] = ("wsgi", "asgi"),
    measure: bool = False,
    memory_bound: int | None = None,
    allow_5xx: bool = False,
) -> list[Result]:
    """Send ``req`` over each protocol and check the common invariants; returns the results in order.

    With ``measure``, the allocations traced at peak must stay under ``memory_bound`` (default:
    ``MEMORY_FACTOR`` times the body plus ``MEMORY_SLACK``).
    """
    app = get_app()
    if memory_bound is None:
        memory_bound = MEMORY_FACTOR * len(req.body) + MEMORY_SLACK
    results = []
    for protocol in protocols:
        with capture_logs(f"{protocol} {req!r}"[:2000]):
            runner = run_wsgi if protocol == "wsgi" else run_asgi
            result = runner(app, req, measure=measure)
        if allow_5xx and result.status >= 500:
            results.append(result)
            continue
        _check_result(result, req)
        if measure and result.peak is not None and result.peak > memory_bound:
            raise InvariantError(
                f"{protocol}: {result.peak} bytes allocated at peak (bound {memory_bound}) for {req!r}"
            )
        results.append(result)
    return results


_BOUNDARY_RE = re.compile(rb"[0-9a-f]{32}")


def assert_same(results: list[Result], what: str = "") -> None:
    """WSGI and ASGI must give the same status and body (multipart/byteranges boundaries aside).

    One exception, by design: under ASGI the body is read (up to ``MAX_CONTENT_LENGTH``) before the view runs,
    under WSGI only when the view asks and only as far as it reads. So when one side answers 413, the other
    may answer what the view says of the first bytes (a 400 for a malformed start, a 200 for a view that never
    reads the body), or hit another limit first (413 with another message).
    """
    first = results[0]
    for other in results[1:]:
        if 413 in (first.status, other.status):
            continue  # which limit is hit first (and how much was read) may differ
        a = _BOUNDARY_RE.sub(b"B", first.body)
        b = _BOUNDARY_RE.sub(b"B", other.body)
        if first.status != other.status or a != b:
            raise InvariantError(
                f"{first.protocol} and {other.protocol} disagree{what}: {first.status} {first.body[:200]!r} vs "
                f"{other.status} {other.body[:200]!r}"
            )
        if first.header("Location") != other.header("Location"):
            raise InvariantError(
                f"{first.protocol} and {other.protocol} redirect differently{what}: "
                f"{first.header('Location')!r} vs {other.header('Location')!r}"
            )
