"""``ampulla run`` and ``app.run()``: Werkzeug's development server (options, reloader, banner), the production
servers ``--server`` starts, and what an Ampulla app answers through Werkzeug's server to malformed requests."""

from __future__ import annotations

import http.client
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import werkzeug.serving
from click.testing import CliRunner

from ampulla import Ampulla, request, servers
from ampulla.cli import AmpullaGroup, NoAppException, cli, load_app_from_env

from .test_cli import APP_MODULE, invoke, write

#: The command line reads and sets these environment variables (fixtures in conftest.py).
pytestmark = pytest.mark.usefixtures("clean_cli_environment")


# ---------------------------------------------------------------------------------------------- run (dev)
@pytest.fixture
def served(project: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls of Werkzeug's ``run_simple`` (not actually serving)."""
    write(project, "runapp.py", APP_MODULE.format(name="app"))
    calls: list[dict[str, Any]] = []

    def fake_run_simple(hostname: str, port: int, application: Any, **options: Any) -> None:
        calls.append({"host": hostname, "port": port, "app": application, **options})

    monkeypatch.setattr(werkzeug.serving, "run_simple", fake_run_simple)
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    for name in ("PORT", "HOST", "RELOAD"):
        monkeypatch.delenv(f"AMPULLA_RUN_{name}", raising=False)
        monkeypatch.delenv(f"FLASK_RUN_{name}", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return calls


def test_run_serves_with_werkzeugs_run_simple(served: list[dict[str, Any]]) -> None:
    result = invoke("--app", "runapp", "run", "--host", "127.0.0.1", "--port", "5055")
    assert result.exit_code == 0, result.output
    (call,) = served
    assert call.pop("app").name == "runapp"
    assert call == {
        "host": "127.0.0.1",
        "port": 5055,
        "use_reloader": False,
        "use_debugger": False,
        "threaded": True,
        "ssl_context": None,
        "extra_files": None,
        "exclude_patterns": None,
    }
    assert os.environ["AMPULLA_RUN_FROM_CLI"] == "true"
    assert " * Serving Ampulla app 'runapp'\n * Debug mode: off\n" in result.output


def test_run_options_of_flask_run(served: list[dict[str, Any]], project: Path) -> None:
    extra = f"{project / 'a.cfg'}{os.pathsep}{project / 'b.toml'}"
    args = ["--no-reload", "--debugger", "--without-threads", "--extra-files", extra, "--exclude-patterns", "*.tmp"]
    result = invoke("--app", "runapp", "run", *args)
    assert result.exit_code == 0, result.output
    call = served[-1]
    assert call["use_debugger"] is False  # never, even when asked for
    assert call["threaded"] is False
    assert call["extra_files"] == [str(project / "a.cfg"), str(project / "b.toml")]
    assert call["exclude_patterns"] == ["*.tmp"]


def test_run_passes_the_certificate(served: list[dict[str, Any]], project: Path) -> None:
    (project / "cert.pem").write_text("x")
    (project / "key.pem").write_text("x")
    result = invoke("--app", "runapp", "run", "--cert", "cert.pem", "--key", "key.pem")
    assert result.exit_code == 0, result.output
    assert served[-1]["ssl_context"] == (str(project / "cert.pem"), str(project / "key.pem"))


def test_run_debug_flag_and_environment_variables(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("--app", "runapp", "run", "--debug", "--no-reload")
    assert served[-1]["app"].debug is True and served[-1]["use_reloader"] is False
    runner = CliRunner()
    monkeypatch.setenv("FLASK_RUN_PORT", "6002")
    monkeypatch.setenv("FLASK_RUN_HOST", "0.0.0.0")
    result = runner.invoke(cli, ["--app", "runapp", "run"], auto_envvar_prefix="AMPULLA")
    assert result.exit_code == 0, result.output
    assert (served[-1]["host"], served[-1]["port"]) == ("0.0.0.0", 6002)
    monkeypatch.setenv("AMPULLA_RUN_PORT", "6001")  # Ampulla's name wins over Flask's
    result = runner.invoke(cli, ["--app", "runapp", "run", "--no-reload"], auto_envvar_prefix="AMPULLA")
    assert result.exit_code == 0, result.output
    assert served[-1]["port"] == 6001


def test_debug_mode_turns_the_reloader_on_without_importing_the_app(
    served: list[dict[str, Any]], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "runapp.py", "raise SystemExit('the reloader process must not import the app')\n")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    result = invoke("--app", "runapp:app", "run")
    assert result.exit_code == 0, result.output
    call = served[-1]
    assert call["use_reloader"] is True
    assert not isinstance(call["app"], Ampulla)  # a stand-in: the reloader's process never serves
    assert " * Debug mode: on" in result.output


def test_the_reloaders_child_answers_500_while_the_app_cannot_be_imported(
    served: list[dict[str, Any]], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "brokenapp.py", "import no_such_module_anywhere\n")
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    result = invoke("--app", "brokenapp", "run", "--reload")
    assert result.exit_code == 0, result.output
    failing = served[-1]["app"]
    with pytest.raises(NoAppException, match="no_such_module_anywhere"):
        failing({}, lambda *args: None)
    monkeypatch.delenv("WERKZEUG_RUN_MAIN")
    result = invoke("--app", "brokenapp", "run")  # without the reloader the command fails at once
    assert result.exit_code == 2
    assert "no_such_module_anywhere" in result.output


def test_run_rejects_options_that_do_not_apply(served: list[dict[str, Any]]) -> None:
    result = invoke("--app", "runapp", "run", "--workers", "4")
    assert result.exit_code == 2
    assert "--workers applies to --server gunicorn" in " ".join(result.output.split())
    result = invoke("--app", "runapp", "run", "--server", "gunicorn", "--interface", "wsgi")
    assert result.exit_code == 2
    assert "--interface applies to --server granian" in result.output


# ---------------------------------------------------------------------------------------------- app.run
def make_app() -> Ampulla:
    app = Ampulla("devserver", static_folder=None)

    @app.route("/hello/<name>")
    def hello(name: str) -> str:
        return f"Hello {name}"

    @app.route("/stream")
    def stream() -> Iterator[str]:
        return (f"part {i};" for i in range(3))

    @app.route("/echo", methods=["POST"])
    def echo() -> dict[str, Any]:
        return {"body": request.get_data(as_text=True), "form": request.form.to_dict()}

    @app.route("/environ")
    def environ() -> dict[str, Any]:
        return {key: str(value) for key, value in request.environ.items() if key.isupper()}

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("the view failed")

    return app


@pytest.fixture
def run_simple_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)
    return calls


def test_app_run_uses_werkzeug_run_simple(
    run_simple_calls: list[tuple[tuple[Any, ...], dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app()
    app.run(port=5099, debug=True, load_dotenv=False)
    (host, port, served_app), options = run_simple_calls[0]
    assert (host, port, served_app) == ("127.0.0.1", 5099, app)
    assert app.debug is True
    # Reloading in debug mode, threads, and never the interactive debugger.
    assert options == {"use_reloader": True, "use_debugger": False, "threaded": True}
    assert " * Serving Ampulla app 'devserver'\n * Debug mode: on\n" in capsys.readouterr().out


def test_app_run_passes_the_reloader_options_and_refuses_the_debugger(
    run_simple_calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    options = {"reloader_type": "stat", "extra_files": ["a.cfg"], "exclude_patterns": ["*.tmp"], "threaded": False}
    make_app().run(use_reloader=True, use_debugger=True, load_dotenv=False, **options)
    assert run_simple_calls[0][1] == {**options, "use_reloader": True, "use_debugger": False}


@pytest.mark.parametrize(
    ("host", "port", "server_name", "expected"),
    [
        (None, None, "example.com:8080", ("example.com", 8080)),
        ("localhost", None, "example.com:8080", ("localhost", 8080)),
        (None, 80, "example.com:8080", ("example.com", 80)),
        (None, 0, None, ("127.0.0.1", 0)),
        (None, None, None, ("127.0.0.1", 5000)),
    ],
)
def test_app_run_host_and_port_from_server_name(
    run_simple_calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    host: str | None,
    port: int | None,
    server_name: str | None,
    expected: tuple[str, int],
) -> None:
    app = make_app()
    app.config["SERVER_NAME"] = server_name
    app.run(host, port, load_dotenv=False)
    assert run_simple_calls[0][0][:2] == expected


def test_app_run_inside_the_cli_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *args, **kwargs: pytest.fail("served"))
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    make_app().run()


# ---------------------------------------------------------------------------------------------- the server
@pytest.fixture
def serve() -> Iterator[Callable[[Any], int]]:
    """Serve an app with Werkzeug's threaded development server in a thread; returns its port."""
    started: list[tuple[Any, threading.Thread]] = []

    def start(app: Any) -> int:
        server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return int(server.server_port)

    yield start
    for server, thread in started:
        server.shutdown()
        thread.join(5)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection (bounded by the socket timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_dev_server_reads_chunked_bodies_and_streams_chunked(serve: Callable[[Any], int]) -> None:
    port = serve(make_app())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/echo",
            body=iter([b"name=Ada", b"&lang=python"]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 200
        assert b'"form":{"lang":"python","name":"Ada"}' in response.read()
    finally:
        conn.close()
    reply = raw_exchange(port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in reply
    assert reply.endswith(b"part 2;\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n4\r\nabcd\r\nZZ\r\n",
            b"400",
            id="malformed-chunk-size",
        ),
        pytest.param(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"400",
            id="content-length-and-transfer-encoding",
        ),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"400", id="negative-length"),
        pytest.param(b"GET /hello/x HTTP/1.1\r\nHost: a@evil.test\r\n\r\n", b"400", id="host-with-userinfo"),
    ],
)
def test_dev_server_refuses_malformed_requests_with_4xx(
    serve: Callable[[Any], int], request_bytes: bytes, status: bytes
) -> None:
    port = serve(make_app())
    reply = raw_exchange(port, request_bytes)
    assert reply.split(b" ", 2)[1] == status, reply
    assert b"Hello" not in reply


def test_dev_server_environ(serve: Callable[[Any], int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPULLA_TEST_SECRET", "must-not-leak")
    port = serve(make_app())
    request_bytes = b"GET /environ?a=1 HTTP/1.1\r\nHost: x\r\nX-Real: yes\r\nX_Spoofed: no\r\n\r\n"
    environ = raw_exchange(port, request_bytes).decode()
    assert '"HTTP_X_REAL":"yes"' in environ
    assert "SPOOFED" not in environ.upper()  # X_Spoofed would shadow a proxy's X-Spoofed: dropped
    assert "must-not-leak" not in environ
    assert '"QUERY_STRING":"a=1"' in environ
    assert '"SERVER_SOFTWARE":"Werkzeug/' in environ


def test_dev_server_answers_a_failing_view_with_500_and_keeps_serving(serve: Callable[[Any], int]) -> None:
    port = serve(make_app())
    reply = raw_exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 500 ")
    assert b"the view failed" not in reply  # no traceback outside debug mode
    assert raw_exchange(port, b"HEAD /hello/head HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"\r\n\r\n")
    assert raw_exchange(port, b"GET /hello/again HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"Hello again")


def test_refusals_carry_one_connection_header(serve: Callable[[Any], int]) -> None:
    port = serve(make_app())
    reply = raw_exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert head.count(b"connection: close") == 1, reply


# ---------------------------------------------------------------------------------------------- --server
@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(servers, "exec_server", lambda argv, env: calls.append((argv, env)))
    return calls


def test_run_with_gunicorn(project: Path, execs: list[tuple[list[str], dict[str, str]]]) -> None:
    write(project, "gapp.py", APP_MODULE.format(name="app"))
    result = invoke("--app", "gapp", "run", "--server", "gunicorn", "-w", "4", "-p", "8000")
    assert result.exit_code == 0, result.output
    argv, env = execs[0]
    assert argv == [
        sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:8000", "--workers", "4", "gapp:app"
    ]  # fmt: skip
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(project)


def test_run_with_gunicorn_and_a_factory_loads_it_in_the_workers(
    project: Path, execs: list[tuple[list[str], dict[str, str]]]
) -> None:
    write(project, "fapp.py", "from ampulla import Ampulla\ndef create_app(env):\n    return Ampulla(env)\n")
    result = invoke("--app", "fapp:create_app('prod')", "run", "--server", "gunicorn", "--host", "::1")
    assert result.exit_code == 0, result.output
    argv, env = execs[0]
    assert argv[-3:] == ["--bind", "[::1]:5000", "ampulla.cli:load_app_from_env()"]
    assert env["AMPULLA_APP"] == "fapp:create_app('prod')"


def test_run_with_granian(project: Path, execs: list[tuple[list[str], dict[str, str]]]) -> None:
    write(project, "grapp.py", APP_MODULE.format(name="app"))
    invoke("--app", "grapp", "run", "--server", "granian", "--workers", "2")
    invoke("--app", "grapp", "run", "--server", "granian", "--interface", "wsgi", "--reload")
    asgi, wsgi = execs[0][0], execs[1][0]
    assert asgi[1:] == [
        "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "5000", "--workers", "2",
        "grapp:app",
    ]  # fmt: skip
    assert wsgi[3:5] == ["--interface", "wsgi"]
    assert wsgi[-4:] == ["--reload", "--reload-paths", str(project), "grapp:app"]


def test_run_with_granian_debug_goes_through_the_loader(
    project: Path, execs: list[tuple[list[str], dict[str, str]]]
) -> None:
    write(project, "grapp.py", APP_MODULE.format(name="app"))
    invoke("--app", "grapp", "run", "--server", "granian", "--debug")
    argv, env = execs[0]
    assert argv[-2] == "--factory"
    assert argv[-1].endswith("cli.py:load_app_from_env")
    assert env["AMPULLA_APP"] == "grapp:app"
    assert env["AMPULLA_DEBUG"] == "1"


def test_run_with_uvicorn(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    write(project, "uapp.py", APP_MODULE.format(name="app"))
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: calls.append((target, kwargs)))
    result = invoke("--app", "uapp:app", "run", "--server", "uvicorn", "--workers", "3", "--port", "8001")
    assert result.exit_code == 0, result.output
    target, kwargs = calls[0]
    assert target == "uapp:app"
    assert kwargs["interface"] == "asgi3"
    assert kwargs["factory"] is False
    assert kwargs["workers"] == 3 and kwargs["port"] == 8001 and kwargs["host"] == "127.0.0.1"
    assert kwargs["reload"] is False
    assert kwargs["app_dir"] == str(project)

    invoke("--app", "uapp:app", "run", "--server", "uvicorn", "--reload", "--debug")
    target, kwargs = calls[1]
    assert (target, kwargs["factory"], kwargs["reload"]) == ("ampulla.cli:load_app_from_env", True, True)
    assert kwargs["reload_dirs"] == [str(project)]
    assert load_app_from_env().debug is True


def test_load_app_from_env_in_a_server_worker(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "worker.py", APP_MODULE.format(name="app"))
    monkeypatch.setenv("AMPULLA_APP", "worker:app")
    monkeypatch.setenv("AMPULLA_DEBUG", "1")
    app = load_app_from_env()
    assert app.name == "worker"
    assert app.debug is True


def test_servers_need_an_importable_app(execs: list[tuple[list[str], dict[str, str]]]) -> None:
    group = AmpullaGroup(name="ampulla", create_app=lambda: Ampulla("made"), load_plugins=False)
    result = invoke("run", "--server", "gunicorn", group=group)
    assert result.exit_code == 2
    assert "--app module:app" in result.output


def test_no_app_exception_is_a_usage_error() -> None:
    assert issubclass(NoAppException, click.UsageError)
