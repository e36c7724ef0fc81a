"""The plumbing of ``benchmarks/server.py``: which rows and scenarios run, the servers' command lines, the
best-peer ratio, and that every server it starts (and everything in its process group) is gone afterwards.

No timing is asserted: the live tests only check that requests were answered.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmarks import server as bench
from benchmarks.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent


def test_rows_pair_each_framework_with_the_servers_of_its_protocols() -> None:
    rows = bench.rows_for(["granian", "gunicorn-gthread"], ["starlette", "ampulla", "flask", "ampulla-def"])
    assert [row.key for row in rows] == [
        "gunicorn-gthread/ampulla",
        "gunicorn-gthread/flask",
        "granian/ampulla",
        "granian/ampulla-def",
        "granian/starlette",
    ]


def test_short_scenario_names_reuse_the_registry() -> None:
    json_scenario, db = bench.resolve_scenario("json"), bench.resolve_scenario("db")
    assert json_scenario.name == "json"
    assert json_scenario.request == SCENARIOS["query_json"].request
    assert json_scenario.expected == SCENARIOS["query_json"].expected
    assert db.request == SCENARIOS["orm"].request and db.factory == "create_orm_app"
    assert bench.resolve_scenario("route50") == SCENARIOS["route50"]


def test_each_scenario_is_served_by_the_app_of_its_factory() -> None:
    flask = bench.Row(bench.SERVER_KINDS["gunicorn-sync"], bench.FRAMEWORKS["flask"])
    ampulla_asgi = bench.Row(bench.SERVER_KINDS["uvicorn"], bench.FRAMEWORKS["ampulla"])
    ampulla_wsgi = bench.Row(bench.SERVER_KINDS["granian-wsgi"], bench.FRAMEWORKS["ampulla"])
    assert flask.target("create_app") == "benchmarks.apps.flask_app:create_app"
    assert flask.target("create_orm_app") == "benchmarks.apps.orm_flask:create_orm_app"
    assert ampulla_asgi.target("create_orm_app") == "benchmarks.apps.orm_ampulla_async:create_orm_app"
    assert ampulla_wsgi.target("create_app") == "benchmarks.apps.ampulla_app:create_app"


def test_command_lines_one_worker_on_loopback_with_the_stated_threads() -> None:
    args = bench.parse_args(["--frameworks", "ampulla,bare-asgi", "--threads", "6", "--scenarios", "json,db"])
    assert [s.name for s in args.scenario_list] == ["json", "db"]
    commands = {row.key: bench.command(row, "create_app", 8123, args.settings) for row in args.rows}
    assert set(commands) == {f"{s}/{f}" for s in bench.SERVER_KINDS for f in ("ampulla", "bare-asgi")
                             if (bench.SERVER_KINDS[s].protocol == "asgi") or f == "ampulla"}  # fmt: skip
    for cmd in commands.values():
        assert cmd[0] == sys.executable
        assert cmd[cmd.index("--workers") + 1] == "1"
        assert "127.0.0.1" in " ".join(cmd) and "0.0.0.0" not in cmd
        assert bench._port_of(cmd) == 8123
    assert commands["gunicorn-gthread/ampulla"][-1] == "benchmarks.apps.ampulla_app:create_app()"
    assert "--threads 6" in " ".join(commands["gunicorn-gthread/ampulla"])
    assert "--threads" not in commands["gunicorn-sync/ampulla"]
    assert "--interface wsgi --blocking-threads 6" in " ".join(commands["granian-wsgi/ampulla"])
    assert "--interface asgi " in " ".join(commands["granian/ampulla"])
    assert "--interface asginl" in " ".join(commands["granian/bare-asgi"])  # no lifespan support in the bare callable
    assert "--lifespan off" in " ".join(commands["uvicorn/bare-asgi"])
    uvicorn = commands["uvicorn/ampulla"]
    assert uvicorn[uvicorn.index("--http") + 1] == args.settings.http
    assert "--interface asgi3" in " ".join(uvicorn)


def test_no_row_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--servers", "uvicorn", "--frameworks", "flask"])


def _result(row: bench.Row, scenario: str, requests: int) -> bench.LoadResult:
    return bench.LoadResult(row.key, scenario, requests=requests, seconds=1.0, latencies_ns=[1_000_000, 2_000_000])


def test_ratio_is_to_the_best_peer_on_the_same_server() -> None:
    rows = bench.rows_for(["gunicorn-sync", "gunicorn-gthread"], ["ampulla", "flask", "falcon", "bare"])
    rps = {"gunicorn-sync": (120, 100, 150, 400), "gunicorn-gthread": (300, 200, 100, 400)}
    results = {row.key: {"hello": _result(row, "hello", rps[row.server.name][i % 4])} for i, row in enumerate(rows)}
    best = bench.best_peer(results, rows, "gunicorn-sync", "hello")
    assert best is not None and best[0].framework.name == "falcon" and best[1] == 150  # bare is no peer
    text = bench.render(results, rows, [bench.resolve_scenario("hello")], markdown=True)
    lines = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in text.splitlines()}
    assert "| 0.80 |" in lines[("gunicorn sync", "Ampulla")]  # 120 / Falcon's 150
    assert "1.00 (best)" in lines[("gunicorn sync", "Falcon")]
    assert "| 1.50 |" in lines[("gunicorn gthread", "Ampulla")]  # 300 / Flask's 200 on its own server


@pytest.mark.parametrize("parent_ignores_term", [False, True])
def test_stop_kills_the_whole_group_within_its_bound(tmp_path: Path, parent_ignores_term: bool) -> None:
    # A "server" that forks a worker: either the parent ignores SIGTERM, or it dies and leaves the worker.
    script = textwrap.dedent(f"""
        import signal, subprocess, sys, time
        child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        subprocess.Popen([sys.executable, "-c", child])
        if {parent_ignores_term}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.2)
        assert bench.group_alive(proc.pid)
    finally:
        bench.stop(proc, timeout=0.5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode is not None
    assert not bench.group_alive(proc.pid)


def test_a_server_that_exits_at_start_is_an_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; sys.exit(3)", "--port", str(bench.free_port())]
    with (tmp_path / "log").open("wb") as log, pytest.raises(RuntimeError, match="status 3"):  # noqa: SIM117
        with bench.running(cmd, log, {"PATH": ""}, timeout=10):
            pass


@pytest.mark.parametrize("server", list(bench.SERVER_KINDS))
def test_a_bare_app_under_each_server_answers_and_is_gone_after(server: str, tmp_path: Path) -> None:
    kind = bench.SERVER_KINDS[server]
    pytest.importorskip(kind.package)
    row = bench.Row(kind, bench.FRAMEWORKS["bare" if kind.protocol == "wsgi" else "bare-asgi"])
    port = bench.free_port()
    cmd = bench.command(row, "create_app", port, bench.default_settings(threads=2))
    env = {"PATH": "", "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    hello = bench.resolve_scenario("json")
    with (tmp_path / "log").open("wb") as log, pytest.raises(KeyError, match="stop here"):  # noqa: SIM117
        with bench.running(cmd, log, env) as pid:
            assert asyncio.run(bench.check(port, hello)) == []
            result = asyncio.run(bench.load(port, pid, hello, connections=2, warmup=0.0, duration=0.3))
            assert result.requests > 0 and result.errors == 0 and not result.error, result
            raise KeyError("stop here")  # a failure inside the block still stops the server
    assert not bench.group_alive(pid), (tmp_path / "log").read_text()


def test_requests_per_server_cpu_second() -> None:
    merged = bench.LoadResult.merge([
        bench.LoadResult("r", "hello", requests=300, seconds=2.0, server_cpu=0.5),
        bench.LoadResult("r", "hello", requests=100, seconds=2.0, server_cpu=1.5),
    ])  # fmt: skip
    assert merged.per_cpu_second == 400 / (1.0 * 4.0)  # 400 requests over 4 s at one core on average
    assert bench.LoadResult("r", "hello", requests=10, seconds=1.0).per_cpu_second is None
