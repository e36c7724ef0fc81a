"""Database URLs and engines: one URL gives a sync engine and an asyncio engine with the installed drivers.

``postgresql://`` becomes ``postgresql+psycopg://`` (sync) and ``postgresql+asyncpg://`` (async);
``mysql://`` (and ``mariadb://``) becomes ``+pymysql`` / ``+asyncmy``; ``sqlite://`` uses the standard library
driver and ``+aiosqlite``. A URL that names a driver keeps it for the side it belongs to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool, StaticPool

from .errors import on_do_connect, on_handle_error

#: backend -> (sync driver, async driver) used when the URL names none.
DEFAULT_DRIVERS: dict[str, tuple[str, str]] = {
    "postgresql": ("psycopg", "asyncpg"),
    "mysql": ("pymysql", "asyncmy"),
    "mariadb": ("pymysql", "asyncmy"),
    "sqlite": ("pysqlite", "aiosqlite"),
}
#: drivers that only work under asyncio, per backend, and their sync counterpart
_ASYNC_ONLY: dict[str, dict[str, str]] = {
    "postgresql": {"asyncpg": "psycopg", "psycopg_async": "psycopg", "aiopg": "psycopg"},
    "mysql": {"asyncmy": "pymysql", "aiomysql": "pymysql"},
    "mariadb": {"asyncmy": "pymysql", "aiomysql": "pymysql"},
    "sqlite": {"aiosqlite": "pysqlite"},
}
#: sync drivers whose async counterpart is not the default one
_SYNC_TO_ASYNC: dict[str, dict[str, str]] = {"postgresql": {"psycopg": "asyncpg"}}

DEFAULT_SQLITE_FILE = "app.db"


def _with_driver(url: URL, driver: str | None) -> URL:
    backend = url.get_backend_name()
    return url.set(drivername=backend if driver in (None, "pysqlite") else f"{backend}+{driver}")


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``, accepting the ``postgres://`` spelling some hosting services use."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgres" or parsed.drivername.startswith("postgres+"):
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
    return parsed


def sync_url(url: str | URL) -> URL:
    """The URL for the sync engine: the default driver of the backend unless the URL names a sync one.

    Args:
        url: A database URL such as ``postgresql://user@host/db``.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    async_only = _ASYNC_ONLY.get(backend, {})
    if driver is None:
        if backend in DEFAULT_DRIVERS:
            parsed = _with_driver(parsed, DEFAULT_DRIVERS[backend][0])
    elif driver in async_only:
        parsed = _with_driver(parsed, async_only[driver])
    return _mysql_charset(parsed)


def async_url(url: str | URL) -> URL | None:
    """The URL for the asyncio engine, or ``None`` when no asyncio driver is known for the backend.

    Args:
        url: A database URL such as ``postgresql://user@host/db``.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    if driver is not None and driver in _ASYNC_ONLY.get(backend, {}):
        return _mysql_charset(parsed)
    if backend not in DEFAULT_DRIVERS:
        return None
    special = _SYNC_TO_ASYNC.get(backend, {})
    chosen = special.get(driver or "", DEFAULT_DRIVERS[backend][1])
    return _mysql_charset(_with_driver(parsed, chosen))


def _mysql_charset(url: URL) -> URL:
    # Full Unicode (emoji included) unless the URL says otherwise; MySQL's "utf8" is 3-byte only.
    if url.get_backend_name() in ("mysql", "mariadb") and "charset" not in url.query:
        return url.update_query_dict({"charset": "utf8mb4"})
    return url


def is_sqlite_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (each sync/async engine then has its own)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def resolve_sqlite_path(url: URL, instance_path: str) -> URL:
    """Make a relative SQLite file path relative to the instance folder, creating the folder.

    Args:
        url: A ``sqlite://`` URL.
        instance_path: The app's instance folder.
    """
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url):
        return url
    database = url.database or ""
    if database.startswith("file:"):
        if url.query.get("uri") != "true":
            return url
        # A driver-level URI (sqlite:///file:name.db?uri=true): its path is relative to the instance folder too.
        path = database[len("file:") :]
        if not os.path.isabs(path):
            path = os.path.join(instance_path, path)
        _make_instance_folder(os.path.dirname(path), instance_path)
        return url.set(database="file:" + path)
    if not os.path.isabs(database):
        database = os.path.join(instance_path, database)
        url = url.set(database=database)
    _make_instance_folder(os.path.dirname(database), instance_path)
    return url


def _make_instance_folder(folder: str, instance_path: str) -> None:
    folder = os.path.normpath(folder)
    instance = os.path.normpath(instance_path)
    if folder == instance or folder.startswith(instance + os.sep):
        os.makedirs(folder, exist_ok=True)  # the instance folder is ours to create; other folders are not


def default_url(instance_path: str) -> str:
    """The URL used when none is configured: the SQLite file ``app.db`` in the instance folder."""
    return "sqlite:///" + os.path.join(instance_path, DEFAULT_SQLITE_FILE)


def engine_defaults(url: URL, *, is_async: bool) -> dict[str, Any]:
    """Engine options Ampulla adds unless configured: pool pre-ping for servers, a shared pool for memory.

    Args:
        url: The engine's URL (driver already chosen).
        is_async: Whether the options are for an asyncio engine.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_memory(url):
            # One connection shared by every session, or each connection would see another empty database.
            return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        return {}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if backend in ("mysql", "mariadb"):
        options["pool_recycle"] = 7200  # below MySQL's default wait_timeout, so idle connections stay valid
    return options


def _merge(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in options.items():
        if key == "connect_args" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


class EngineSpec:
    """How to build the sync and async engines of one bind key."""

    __slots__ = ("async_options", "async_url", "options", "url")

    def __init__(
        self, url: URL, async_url: URL | None, options: dict[str, Any], async_options: dict[str, Any]
    ) -> None:
        self.url = url
        self.async_url = async_url
        self.options = options
        self.async_options = async_options


def engine_specs(
    config: Mapping[str, Any], instance_path: str, engine_options: Mapping[str, Any]
) -> dict[str | None, EngineSpec]:
    """The engines an app's config asks for, by bind key (``None``: the default database).

    Args:
        config: The app's config (``SQLALCHEMY_DATABASE_URI``, ``DATABASE_URL``, ``SQLALCHEMY_BINDS``...).
        instance_path: The app's instance folder (relative SQLite paths, the default database).
        engine_options: The ``Database``'s default engine options (the config's win).

    Unless an option sets it, ``hide_parameters`` is ``True`` (``False`` when the config's ``DEBUG`` is on):
    SQLAlchemy then leaves statement parameters out of its exception messages and ``echo`` logs.

    Raises:
        ValueError: A bind given as a dict has no ``url``.
    """
    base_options: dict[str, Any] = dict(engine_options)
    # Statement parameters (password hashes, e-mail addresses, tokens) stay out of exception messages and echo
    # logs, unless in debug mode; an explicit option (here, in a bind or in the async options) wins.
    base_options.setdefault("hide_parameters", not config.get("DEBUG"))
    echo = config.get("SQLALCHEMY_ECHO")
    if echo:
        base_options.setdefault("echo", echo)
        base_options.setdefault("echo_pool", echo)
    async_options: dict[str, Any] = dict(config.get("SQLALCHEMY_ASYNC_ENGINE_OPTIONS") or {})
    binds: dict[str | None, Any] = dict(config.get("SQLALCHEMY_BINDS") or {})
    uri = config.get("SQLALCHEMY_DATABASE_URI") or config.get("DATABASE_URL") or os.environ.get("DATABASE_URL")
    if uri:
        binds[None] = uri
    elif None not in binds:
        binds[None] = default_url(instance_path)  # no URL: the SQLite file in the instance folder, binds or not
    if None in binds:
        # SQLALCHEMY_ENGINE_OPTIONS are the default database's; a bind gives its options in its dict.
        default = binds[None]
        default = dict(default) if isinstance(default, Mapping) else {"url": default}
        binds[None] = {**(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}), **default}
    specs: dict[str | None, EngineSpec] = {}
    for key, value in binds.items():
        options = dict(value) if isinstance(value, Mapping) else {"url": value}
        if "url" not in options:
            raise ValueError(f"SQLALCHEMY_BINDS[{key!r}] needs a 'url'")
        raw_url = options.pop("url")
        raw_async = options.pop("async_url", None)
        if key is None and raw_async is None:
            raw_async = config.get("SQLALCHEMY_ASYNC_DATABASE_URI")
        url = resolve_sqlite_path(sync_url(raw_url), instance_path)
        derived = normalize_url(raw_async) if raw_async is not None else async_url(raw_url)
        if derived is not None:
            derived = resolve_sqlite_path(derived, instance_path)
        merged = {**base_options, **options}
        # connect_args are driver-specific (psycopg's are not asyncpg's), except with SQLite's one module.
        portable = {k: v for k, v in merged.items() if k not in ("connect_args", "creator", "module")}
        if url.get_backend_name() == "sqlite" and "connect_args" in merged:
            portable["connect_args"] = merged["connect_args"]
        specs[key] = EngineSpec(url, derived, merged, {**portable, **async_options})
    return specs


def _install_listeners(engine: Engine) -> None:
    event.listen(engine, "handle_error", on_handle_error)
    event.listen(engine, "do_connect", on_do_connect)
    if engine.dialect.name in ("mysql", "mariadb"):
        _enable_mysql_string_default()


def create_sync_engine(url: URL, options: Mapping[str, Any]) -> Engine:
    """Create the sync engine for ``url`` with Ampulla's defaults under ``options``.

    Args:
        url: The sync URL (see :func:`sync_url`).
        options: ``create_engine`` keyword arguments; they win over the defaults.
    """
    engine = sa.create_engine(url, **_merge(engine_defaults(url, is_async=False), options))
    _install_listeners(engine)
    return engine


def create_async_engine(url: URL, options: Mapping[str, Any]) -> Any:
    """Create the asyncio engine for ``url`` (an ``AsyncEngine``).

    Args:
        url: The async URL (see :func:`async_url`).
        options: ``create_async_engine`` keyword arguments; a sync ``QueuePool`` becomes its asyncio twin.

    Raises:
        RuntimeError: The ``greenlet`` package, which SQLAlchemy's asyncio support needs, is missing.
    """
    import importlib.util

    if importlib.util.find_spec("greenlet") is None:
        raise RuntimeError(
            "Async database sessions need the 'greenlet' package: pip install 'sqlalchemy[asyncio]' "
            "(or the 'ampulla[db]' extra)."
        )
    from sqlalchemy.ext.asyncio import create_async_engine as _create

    merged = _merge(engine_defaults(url, is_async=True), options)
    if merged.get("poolclass") is QueuePool:
        merged["poolclass"] = AsyncAdaptedQueuePool
    engine = _create(url, **merged)
    _install_listeners(engine.sync_engine)
    return engine


_mysql_string_hook_installed = False


def _enable_mysql_string_default() -> None:
    """Let ``Column(String)`` without a length create ``VARCHAR(255)`` on MySQL/MariaDB.

    MySQL requires a length where SQLite and PostgreSQL do not, so a model written for them (the seed's
    ``password = Column(String)``) would fail in ``create_all``. Only that failing case changes.
    """
    global _mysql_string_hook_installed
    if _mysql_string_hook_installed:
        return
    from sqlalchemy.ext.compiler import compiles

    def _string(type_: sa.String, compiler: Any, **kw: Any) -> str:
        if type_.length is None:
            return compiler._extend_string(type_, {}, "VARCHAR(255)")  # type: ignore[no-any-return]
        return compiler.visit_string(type_, **kw)  # type: ignore[no-any-return]

    compiles(sa.String, "mysql")(_string)
    compiles(sa.String, "mariadb")(_string)
    _mysql_string_hook_installed = True
