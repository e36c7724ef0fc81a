"""The thread pool behind ``def`` views under ASGI: results, errors, growth, reuse, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ampulla import Ampulla
from ampulla.threadpool import SyncPool


@pytest.fixture
def thread_errors() -> Iterator[list[Any]]:
    """Exceptions that escape any thread while the test runs (there should be none)."""
    errors: list[Any] = []
    previous = threading.excepthook
    threading.excepthook = errors.append
    yield errors
    threading.excepthook = previous


@pytest.fixture
def pool() -> Iterator[SyncPool]:
    pool = SyncPool(4, thread_name_prefix="test-pool")
    yield pool
    pool.shutdown(wait=True)


def test_run_gives_the_result_or_the_exception_on_the_loop(pool: SyncPool) -> None:
    def fail() -> None:
        raise LookupError("missing")

    async def main() -> tuple[Any, str, str]:
        loop = asyncio.get_running_loop()
        value = await pool.run(loop, lambda a, b: a + b, 2, 3)
        name = await pool.run(loop, lambda: threading.current_thread().name)
        with pytest.raises(LookupError, match="missing") as info:
            await pool.run(loop, fail)
        return value, name, str(info.value)

    value, name, message = asyncio.run(main())
    assert value == 5
    assert name.startswith("test-pool_")
    assert message == "missing"


def test_submit_is_an_executor_for_run_in_executor(pool: SyncPool) -> None:
    assert pool.submit(lambda a, *, b: a * b, 6, b=7).result(timeout=5) == 42
    failed = pool.submit(int, "x")
    assert isinstance(failed.exception(timeout=5), ValueError)

    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(pool, sum, [1, 2, 3])

    assert asyncio.run(main()) == 6


def test_threads_start_on_demand_up_to_the_limit_and_are_reused(pool: SyncPool) -> None:
    names: set[str] = set()
    for _ in range(20):  # one call at a time: one thread serves them all
        names.add(pool.submit(lambda: threading.current_thread().name).result(timeout=5))
    assert len(names) == 1

    release = threading.Event()
    running = threading.Semaphore(0)

    def blocked() -> str:
        running.release()
        release.wait(5)
        return threading.current_thread().name

    futures = [pool.submit(blocked) for _ in range(10)]
    for _ in range(4):
        assert running.acquire(timeout=5)  # four run at once
    assert not running.acquire(timeout=0.2)  # the fifth waits: never more threads than max_workers
    release.set()
    assert len({f.result(timeout=5) for f in futures}) <= 4
    assert len(pool._threads) == 4


def test_a_cancelled_call_is_dropped_and_the_pool_keeps_serving(pool: SyncPool, thread_errors: list[Any]) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        future = pool.run(loop, time.sleep, 0.2)
        await asyncio.sleep(0.01)
        future.cancel()  # what a client disconnect does to the awaiting task
        await asyncio.sleep(0.3)
        return await pool.run(loop, str, "still serving")

    assert asyncio.run(main()) == "still serving"
    assert thread_errors == []


def test_a_result_for_a_closed_loop_is_dropped_without_error(thread_errors: list[Any]) -> None:
    pool = SyncPool(1)  # one worker: the next call runs only after the late result was handed over
    started = threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.2)
        return "late"

    loop = asyncio.new_event_loop()
    pool.run(loop, slow)
    assert started.wait(5)
    loop.close()
    assert pool.submit(str, "after").result(timeout=5) == "after"
    pool.shutdown()
    assert thread_errors == []


def test_shutdown_finishes_queued_calls_then_refuses_new_ones() -> None:
    pool = SyncPool(1)
    done: list[int] = []
    futures = [pool.submit(lambda i=i: (time.sleep(0.01), done.append(i))) for i in range(5)]
    pool.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    assert all(f.done() for f in futures)
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print)


def test_shutdown_can_cancel_queued_calls() -> None:
    pool = SyncPool(1)
    release = threading.Event()
    first = pool.submit(release.wait, 5)
    queued = [pool.submit(str, i) for i in range(3)]
    time.sleep(0.05)
    threading.Timer(0.1, release.set).start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert first.result() is True
    assert all(f.cancelled() for f in queued)


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SyncPool(0)


def test_run_sync_carries_the_context_and_the_app_pool_is_sized_by_config() -> None:
    app = Ampulla(__name__)
    app.config["SYNC_VIEW_THREADS"] = 3
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    async def main() -> tuple[str, str]:
        var.set("from the loop")
        return await app.run_sync(var.get), await app.run_sync(lambda *, x: x, x="keyword")

    assert asyncio.run(main()) == ("from the loop", "keyword")
    assert app.sync_executor.max_workers == 3
    asyncio.run(app.shutdown())


def test_a_pool_dropped_without_shutdown_stops_its_threads() -> None:
    pool = SyncPool(2)
    assert pool.submit(str, 1).result(timeout=5) == "1"
    threads = list(pool._threads)
    del pool
    gc.collect()
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_apps_served_over_asgi_leave_no_threads_behind() -> None:
    before = set(threading.enumerate())
    for _ in range(10):
        app = Ampulla(__name__)
        app.add_url_rule("/", "index", lambda: "ok")
        assert app.test_client(protocol="asgi").get("/").text == "ok"
        del app
    # Every thread started meanwhile (the apps' pool threads) ends once its app is collected, however long a busy
    # machine takes; the test client's shared loop thread (a daemon) is the one that stays. Right after answering, a
    # pool thread may still hold its last call's objects for a moment (seen: 0.09 s): collect until the threads end.
    started = [t for t in threading.enumerate() if t not in before and t.name != "ampulla-websocket-test-loop"]
    deadline = time.monotonic() + 60
    while any(t.is_alive() for t in started) and time.monotonic() < deadline:
        gc.collect()
        for thread in started:
            thread.join(timeout=0.05)
    assert [t.name for t in started if t.is_alive()] == []


def test_a_submitted_call_cancelled_while_queued_never_runs(pool: SyncPool) -> None:
    release = threading.Event()
    ran: list[str] = []
    blockers = [pool.submit(release.wait, 5) for _ in range(4)]  # every worker busy
    queued = pool.submit(ran.append, "queued")
    assert queued.cancel()
    release.set()
    assert all(b.result(timeout=5) for b in blockers)
    assert pool.submit(str, "next").result(timeout=5) == "next"
    assert queued.cancelled() and ran == []
