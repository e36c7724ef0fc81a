"""The thread pool that runs ``def`` views (and other blocking calls) for the event loop under ASGI.

A :class:`concurrent.futures.Executor`, so ``loop.run_in_executor(app.sync_executor, ...)`` works, with one
extra entry point, :meth:`SyncPool.run`, that resolves an asyncio future directly. Waking the event loop is the
last thing a worker does before it waits for its next call: the loop gets the GIL at once instead of waiting for
the worker to finish its bookkeeping, which is where ``run_in_executor`` over a ``ThreadPoolExecutor`` loses
most of its time (``benchmarks/run.py --protocol asgi``, the ``ampulla-def`` column).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

#: A queued call: the loop to wake (``None`` for :meth:`SyncPool.submit`), the future to resolve, the call.
_Item = tuple[
    asyncio.AbstractEventLoop | None,
    asyncio.Future[Any] | concurrent.futures.Future[Any],
    Callable[..., Any],
    tuple[Any, ...],
]


def _resolve(
    future: asyncio.Future[Any] | concurrent.futures.Future[Any], result: Any, error: BaseException | None
) -> None:
    if future.done():
        return  # cancelled meanwhile (the client went away): the result is dropped
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SyncPool(concurrent.futures.Executor):
    """Up to ``max_workers`` threads, started on demand and reused.

    Args:
        max_workers: The most threads the pool starts.
        thread_name_prefix: Thread names are this prefix, ``_`` and a number.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "ampulla-sync") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one token per worker waiting for a call
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        # A pool dropped without shutdown() (an app that is garbage) stops its idle threads.
        self._stop = weakref.finalize(self, _stop, self._queue, self._threads)

    def run(self, loop: asyncio.AbstractEventLoop, func: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Call ``func(*args)`` in a pool thread; the returned future (of ``loop``) gets its result.

        Raises:
            RuntimeError: The pool was shut down.
        """
        future: asyncio.Future[_T] = loop.create_future()
        self._put((loop, future, func, args))
        return future

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[_T]:
        """The :class:`~concurrent.futures.Executor` interface (used by ``loop.run_in_executor``).

        Raises:
            RuntimeError: The pool was shut down.
        """
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        if kwargs:
            self._put((None, future, functools.partial(fn, *args, **kwargs), ()))
        else:
            self._put((None, future, fn, args))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once the queued calls are done (``cancel_futures``: drop the queued calls)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    _cancel(item)
        self._stop()  # once: a second shutdown() or the pool's collection adds nothing
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _put(self, item: _Item) -> None:
        if self._closed:
            raise RuntimeError("cannot run new calls after the pool was shut down")
        self._queue.put(item)
        if self._idle.acquire(blocking=False):
            return  # a waiting worker takes it
        with self._lock:
            if len(self._threads) < self.max_workers and not self._closed:
                thread = threading.Thread(
                    target=_work, args=(self._queue, self._idle), name=f"{self._prefix}_{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()


def _work(work: queue.SimpleQueue[_Item | None], idle: threading.Semaphore) -> None:
    """A worker's loop; it holds the queue, not the pool, so an unused pool can be collected (and stop it)."""
    get = work.get
    while True:
        item = get()
        if item is None:
            return
        loop, future, func, args = item
        del item
        if isinstance(future, concurrent.futures.Future) and not future.set_running_or_notify_cancel():
            idle.release()  # submit()'s future was cancelled while queued
            continue
        result: Any = None
        error: BaseException | None = None
        try:
            result = func(*args)
        except BaseException as e:
            error = e
        idle.release()
        if loop is None:
            _resolve(future, result, error)
        else:
            try:
                # NOTE: the last step before waiting again, so the loop thread gets the GIL at once.
                loop.call_soon_threadsafe(_resolve, future, result, error)
            except RuntimeError:
                pass  # the loop was closed: nobody waits for the result
        del future, func, args, result, error


def _stop(work: queue.SimpleQueue[_Item | None], threads: list[threading.Thread]) -> None:
    """Ask every worker to stop once the queued calls are done (shutdown, or the pool was collected)."""
    for _ in threads:
        work.put(None)


def _cancel(item: _Item) -> None:
    loop, future, _, _ = item
    if loop is None:
        future.cancel()
    else:
        try:
            loop.call_soon_threadsafe(future.cancel)
        except RuntimeError:
            pass
