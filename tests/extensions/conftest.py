"""Fixtures of the extension tests: a real Redis, with a key prefix per test that is cleaned up after it.

The tests that need Redis use ``AMPULLA_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/9``, a database
number of their own) and skip, saying why, when no Redis answers there. Every key a test writes starts with (or,
for Flask-Limiter's keys, contains) the test's ``redis_prefix``; the keys are deleted by that pattern afterwards,
never with ``FLUSHDB``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

REDIS_URL_ENV = "AMPULLA_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis that answers (the test skips otherwise)."""
    redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install -e '.[dev]')")
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"no Redis answers at {url} ({e}); set {REDIS_URL_ENV} to one")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A ``redis.Redis`` client of :func:`redis_url` (bytes replies), closed after the test."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_client: Any) -> Iterator[str]:
    """A key prefix no other test uses; every key containing it is deleted after the test."""
    prefix = f"ampulla-ext-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = list(redis_client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            redis_client.delete(*keys)


def redis_keys(client: Any, prefix: str) -> list[str]:
    """The keys that contain ``prefix``, decoded and sorted."""
    return sorted(key.decode() for key in client.scan_iter(match=f"*{prefix}*", count=1000))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Attach the output of the servers a failing test started (``two_servers``) to its report."""
    if call.excinfo is None or call.when != "call":
        return
    for server in getattr(item, "funcargs", {}).get("two_servers") or ():
        item.add_report_section("call", f"{server.name} on port {server.port}", server.output()[-20000:])
