"""Measure the resident memory of one server process serving the example while users sign up.

::

    python -m examples.users.memory_check --requests 3000 --concurrency 32
    MALLOC_ARENA_MAX=2 python -m examples.users.memory_check --requests 3000

It starts ``uvicorn examples.users.app:app --interface asgi3`` (one process, ``def`` views in its thread pool)
on a free port of 127.0.0.1 with an SQLite database in a temporary folder, sends ``--requests`` JSON sign-ups
(``POST /api/v1/users/``, each hashing a password with scrypt) over ``--concurrency`` keep-alive connections,
prints the process's resident size (``VmRSS``) when idle, after the warm-up and at each tenth of the run, and
stops the server by its PID. Environment variables (``MALLOC_ARENA_MAX``...) pass through to the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /health in time")


def _sign_ups(port: int, start: int, count: int, concurrency: int, run: str) -> int:
    """Send ``count`` sign-ups numbered from ``start``; returns how many were not answered 201."""
    lock = threading.Lock()
    state = {"next": start, "end": start + count, "bad": 0}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = state["next"]
                if i >= state["end"]:
                    break
                state["next"] = i + 1
            body = json.dumps({"name": f"{run}-{i}", "email": f"{run}-{i}@example.test", "password": "pw-" * 4})
            try:
                conn.request("POST", "/api/v1/users/", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            if not ok:
                with lock:
                    state["bad"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return state["bad"]


def main() -> None:
    """Run the measurement (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="sign-ups after the warm-up")
    parser.add_argument("--warmup", type=int, default=300, help="sign-ups before the first figure")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"sqlite:///{folder}/users.db",
            SECRET_KEY="memory-check",
            PYTHONPATH=os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), str(ROOT)) if p),
        )
        command = [sys.executable, "-m", "uvicorn", "examples.users.app:app", "--host", "127.0.0.1",
                   "--port", str(port), "--interface", "asgi3", "--log-level", "warning"]  # fmt: skip
        with open(Path(folder) / "server.log", "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, proc)
            run = f"m{os.getpid()}"
            print(f"idle (one GET /health): {rss_mib(proc.pid):.1f} MiB", flush=True)
            bad = _sign_ups(port, 0, args.warmup, args.concurrency, run)
            base = rss_mib(proc.pid)
            print(f"after warm-up ({args.warmup} sign-ups): {base:.1f} MiB", flush=True)
            step = max(1, args.requests // 10)
            done = 0
            while done < args.requests:
                n = min(step, args.requests - done)
                bad += _sign_ups(port, args.warmup + done, n, args.concurrency, run)
                done += n
                now = rss_mib(proc.pid)
                print(f"after {done} sign-ups: {now:.1f} MiB ({(now - base) / base * 100:+.1f} %)", flush=True)
            print(f"not 201: {bad}; MALLOC_ARENA_MAX={env.get('MALLOC_ARENA_MAX', '-')}")
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.returncode not in (0, -15):
                print((Path(folder) / "server.log").read_text()[-3000:])


if __name__ == "__main__":
    main()
