"""Template rendering benchmark: Ampulla vs Flask vs Jinja2 in a bare WSGI callable.

The scenario: ``GET /rows`` renders ``benchmarks/apps/templates/rows.html``, a child of ``base.html`` with a
loop over 100 rows whose values all need HTML escaping. Every app renders the same template with the same
data through the same Jinja2 settings (autoescape for .html, no auto-reload), so the difference is the
framework's own cost per request: routing, request and context objects, ``render_template``'s context
building, and the response.

The same WSGI environ goes to each app in-process; bodies are checked to be byte-identical before timing.
Rounds are interleaved across apps (rotating order) and the best round per app is reported, plus the
median. Run::

    .venv/bin/python benchmarks/template_bench.py [--seconds 0.5] [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
from collections.abc import Callable, Iterable
from io import BytesIO
from time import perf_counter_ns, thread_time_ns
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "apps", "templates")
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

HEADING = "Users & <friends>"


def make_rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows whose every value needs escaping."""
    return [
        {
            "id": i,
            "name": f"<b>User {i}</b> & \"friends\"",
            "email": f"user{i}@example.com <script>alert('{i}')</script>",
            "note": f"O'Reilly & Sons #{i} > {i - 1}",
        }
        for i in range(count)
    ]


#: The rows every app renders (``--rows`` changes the count; ``--rows 0`` isolates the per-request overhead).
ROWS = make_rows(100)


def build_environ() -> dict[str, Any]:
    """A complete PEP 3333 environ for ``GET /rows``."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/rows",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "54321",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "ampulla-bench/1.0",
        "HTTP_ACCEPT": "text/html,*/*",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def create_bare_jinja_app() -> WSGIApp:
    """Jinja2 used directly from a raw WSGI callable: the floor."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "htm", "xml", "xhtml", "svg")),
        auto_reload=False,
    )

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/rows" and environ["REQUEST_METHOD"] == "GET":
            body = env.get_template("rows.html").render(heading=HEADING, rows=ROWS).encode("utf-8")
            start_response(
                "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
            )
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


def create_ampulla_app() -> WSGIApp:
    """The scenario written for Ampulla."""
    from ampulla import Ampulla
    from ampulla.templating import render_template

    app = Ampulla(__name__, root_path=os.path.join(HERE, "apps"))

    @app.route("/rows")
    def rows() -> str:
        return render_template("rows.html", heading=HEADING, rows=ROWS)

    return app


def create_flask_app() -> WSGIApp:
    """The same app for Flask (only the imports differ)."""
    from flask import Flask, render_template

    app = Flask(__name__, root_path=os.path.join(HERE, "apps"))

    @app.route("/rows")
    def rows() -> str:
        return render_template("rows.html", heading=HEADING, rows=ROWS)

    return app


def call(app: WSGIApp, base: dict[str, Any]) -> tuple[str, bytes]:
    """Call ``app`` once; return the status line and the body."""
    captured: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.append(status)
        return lambda data: None

    environ = dict(base)
    environ["wsgi.input"] = BytesIO()
    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return captured[0], body


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


#: The clock used for timing; ``--clock cpu`` switches to this thread's CPU time, which other processes
#: competing for the CPU (a busy shared machine) disturb much less than wall time.
CLOCK: Callable[[], int] = perf_counter_ns


def time_calls(app: WSGIApp, base: dict[str, Any], calls: int) -> int:
    """Call ``app`` ``calls`` times as a server would; return elapsed nanoseconds."""
    copy, stream, start_response, clock = dict, BytesIO, _start_response, CLOCK
    start = clock()
    for _ in range(calls):
        environ = copy(base)
        environ["wsgi.input"] = stream()
        iterable = app(environ, start_response)
        for _chunk in iterable:
            pass
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return clock() - start


def calibrate(app: WSGIApp, base: dict[str, Any], seconds: float) -> int:
    """A batch size that takes about ``seconds`` (also warms the app up)."""
    calls = 10
    while True:
        elapsed = time_calls(app, base, calls)
        if elapsed >= seconds * 1e9 / 10:
            return max(1, int(calls * seconds * 1e9 / elapsed))
        calls *= 2


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print µs per request and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one timed round")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per app")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time, or this thread's CPU time"
    )
    parser.add_argument("--rows", type=int, default=100, help="rows in the table (0 shows the fixed overhead)")
    args = parser.parse_args(argv)
    ROWS[:] = make_rows(args.rows)
    global CLOCK
    CLOCK = thread_time_ns if args.clock == "cpu" else perf_counter_ns

    factories: dict[str, Callable[[], WSGIApp]] = {
        "bare_jinja": create_bare_jinja_app,
        "ampulla": create_ampulla_app,
        "flask": create_flask_app,
    }
    apps: dict[str, WSGIApp] = {}
    for name, factory in factories.items():
        try:
            apps[name] = factory()
        except ImportError as e:
            print(f"skipping {name}: {e}")
    base = build_environ()
    expected = call(apps["bare_jinja"], base)
    if not expected[0].startswith("200") or len(expected[1]) < 100 * args.rows:
        print(f"FAIL: the bare app answered {expected[0]} with {len(expected[1])} bytes")
        return 1
    for name, app in apps.items():
        got = call(app, base)
        if got != expected:
            print(f"FAIL: {name} answered {got[0]} with a body different from Jinja2's")
            return 1
    print(f"bodies identical ({len(expected[1])} bytes, {expected[1].count(b'&lt;')} escaped '<')")

    batches = {name: calibrate(app, base, args.seconds) for name, app in apps.items()}
    samples: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    for round_index in range(args.repeat):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            gc.collect()
            elapsed = time_calls(apps[name], base, batches[name])
            samples[name].append(elapsed / batches[name] / 1000)
    for name in names:
        got = call(apps[name], base)
        if got != expected:
            print(f"FAIL: {name} changed its answer after the timing")
            return 1

    bare_best = min(samples["bare_jinja"])
    bare_median = statistics.median(samples["bare_jinja"])
    flask_best = min(samples["flask"]) if "flask" in samples else None
    print(f"{'app':<12} {'best µs':>9} {'median µs':>10} {'best/bare':>10} {'median/bare':>12} {'best/flask':>11}")
    for name in names:
        best = min(samples[name])
        median = statistics.median(samples[name])
        vs_flask = f"{best / flask_best:11.2f}" if flask_best else f"{'n/a':>11}"
        print(
            f"{name:<12} {best:9.1f} {median:10.1f} {best / bare_best:10.3f} {median / bare_median:12.3f} {vs_flask}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
