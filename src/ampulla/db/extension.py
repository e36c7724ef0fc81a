"""``Database``: engines from the app's config, sessions scoped to the app/request context, helpers.

A session belongs to the application context it was first used in (a request is one): created on first use
of ``db.session``, closed (and so rolled back unless committed) when the context ends. Two requests never
share a session, whether they run in threads (WSGI) or tasks (ASGI). ``db.async_session`` is the asyncio
twin, for ``async def`` views, on engines made from the same URL with the asyncio drivers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import sys
import threading
from asyncio.events import _get_running_loop
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar, cast, overload
from weakref import WeakKeyDictionary

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ..ctx import AppContext, current_context
from . import engines as _engines
from .errors import DatabaseUnavailableError, handle_unavailable
from .model import Model, current_database, fresh_base, is_declarative, metadata_for, prepare_user_base
from .pagination import _UNSET, KeysetPage, Pagination, SelectPagination, count_statement, result_items
from .query import (
    NO_MATCH,
    NOT_ONE_ROW,
    KeysetPlan,
    PagePlan,
    Query,
    checked_ident,
    found_or_404,
    int_key_bound,
    not_found,
)
from .session import Session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..app import Ampulla
    from .async_session import AsyncSession

_O = TypeVar("_O")
_T = TypeVar("_T")

logger = logging.getLogger("ampulla.db")
_instances = itertools.count()

_NO_APP = (
    "Working outside of application context: db.{name} needs an active application. Use it inside a view, "
    "or wrap the code in 'with app.app_context():'."
)


class _AppState:
    """What one Database keeps per application: engine specs and engines (sync; async per event loop)."""

    __slots__ = ("async_engines", "engines", "lock", "specs")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.specs: dict[str | None, _engines.EngineSpec] | None = None
        self.engines: dict[str | None, sa.Engine] | None = None
        self.async_engines: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, AsyncEngine]] = (
            WeakKeyDictionary()
        )


class _SessionProxy:
    """``db.session`` seen outside any context (e.g. stored at import time): resolves on each use."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __call__(self) -> Session:
        return self._db._context_session()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db._context_session(), name)

    def remove(self) -> None:
        """Close the current context's session, if it has one."""
        self._db._remove_session()

    def __repr__(self) -> str:
        return f"<db.session proxy of {self._db!r}>"


def _owner_key(ctx: AppContext, key: str) -> str:
    """The ``g`` key of the session of ``ctx``.

    A request nested in an application context of the same app shares that context's ``g`` and session
    (as in Flask). A copy made by ``copy_current_request_context`` also shares ``g`` but runs in another
    thread: it gets a session of its own.
    """
    if ctx.owns_app_ctx or not getattr(ctx, "_is_copy", False):
        return key
    return f"{key}:{id(ctx)}"


class Database:
    """SQLAlchemy for an Ampulla app: ``db = Database(app)`` (or ``Database()`` then ``db.init_app(app)``).

    The URL comes from ``SQLALCHEMY_DATABASE_URI`` or ``DATABASE_URL`` (config, then environment); without one
    the database is the SQLite file ``app.db`` in the app's instance folder. See ``docs/database.md``.

    Args:
        app: The application to set up now.
        metadata: The ``MetaData`` of ``db.Model`` (e.g. with a naming convention for migrations).
        session_options: Keyword arguments for every session (``expire_on_commit``, ``autoflush``...);
            ``class_`` chooses a :class:`Session` subclass.
        query_class: The ``Query`` class of ``Model.query`` and ``db.session.query``.
        model_class: Your declarative base (``class Base(DeclarativeBase)``), :class:`ampulla.db.Model`, or a
            plain mixin for every model; default: a new base for this ``Database`` (``db.Model``).
        engine_options: Default ``create_engine`` options for every engine (config may override them).
        add_models_to_shell: Add ``db`` and the model classes to ``ampulla shell``.
        disable_autonaming: Do not derive ``__tablename__`` from class names (with the default base).
    """

    # Common SQLAlchemy names as attributes, so Flask-SQLAlchemy code (``db.Column(db.Integer)``) runs as-is;
    # the rest of ``sqlalchemy`` and ``sqlalchemy.orm`` are reached through ``__getattr__`` at runtime.
    Column = sa.Column
    Integer = sa.Integer
    SmallInteger = sa.SmallInteger
    BigInteger = sa.BigInteger
    String = sa.String
    Text = sa.Text
    Unicode = sa.Unicode
    UnicodeText = sa.UnicodeText
    Boolean = sa.Boolean
    Float = sa.Float
    Numeric = sa.Numeric
    Date = sa.Date
    DateTime = sa.DateTime
    Time = sa.Time
    Interval = sa.Interval
    LargeBinary = sa.LargeBinary
    JSON = sa.JSON
    Enum = sa.Enum
    Uuid = sa.Uuid
    ForeignKey = sa.ForeignKey
    UniqueConstraint = sa.UniqueConstraint
    CheckConstraint = sa.CheckConstraint
    Index = sa.Index
    MetaData = sa.MetaData
    select = staticmethod(sa.select)
    insert = staticmethod(sa.insert)
    update = staticmethod(sa.update)
    delete = staticmethod(sa.delete)
    text = staticmethod(sa.text)
    func = sa.func
    and_ = staticmethod(sa.and_)
    or_ = staticmethod(sa.or_)
    not_ = staticmethod(sa.not_)
    mapped_column = staticmethod(sa_orm.mapped_column)
    Mapped = sa_orm.Mapped

    def __init__(
        self,
        app: Ampulla | None = None,
        *,
        metadata: sa.MetaData | None = None,
        session_options: Mapping[str, Any] | None = None,
        query_class: type[Query[Any]] = Query,
        model_class: type[Any] | None = None,
        engine_options: Mapping[str, Any] | None = None,
        add_models_to_shell: bool = True,
        disable_autonaming: bool = False,
    ) -> None:
        number = next(_instances)
        self._session_key = f"_ampulla_db_session_{number}"
        self._async_key = f"_ampulla_db_async_session_{number}"
        self._copies_key = f"_ampulla_db_copies_{number}"
        self.Query = query_class
        options = dict(session_options or {})
        self._session_class: type[Session] = options.pop("class_", Session)
        if not issubclass(self._session_class, Session):
            raise TypeError("session_options['class_'] must be a subclass of ampulla.db.Session")
        options.setdefault("query_cls", query_class)
        self._scopefunc: Callable[[], Any] | None = options.pop("scopefunc", None)
        self.session_options = options
        self._engine_options = dict(engine_options or {})
        self._add_models_to_shell = add_models_to_shell
        self.Model: type[Any] = self._make_model(model_class, metadata, disable_autonaming)
        self._state_key = f"ampulla.db.state.{number}"
        self._proxy = _SessionProxy(self)
        self._closing: set[asyncio.Future[Any]] = set()
        # Sessions an ASGI teardown closes in the thread pool: dispose() waits for them, or their connections
        # would be checked in to a disposed pool and stay open.
        self._closing_sync: set[concurrent.futures.Future[None]] = set()
        self._int_bounds: dict[tuple[Any, Any], int] = {}
        if app is not None:
            self.init_app(app)

    def _make_model(
        self, model_class: type[Any] | None, metadata: sa.MetaData | None, disable_autonaming: bool
    ) -> type:
        if model_class is None or not is_declarative(model_class):
            base = fresh_base(metadata, model_class)
            if getattr(base, "query_class", None) is None:
                type.__setattr__(base, "query_class", self.Query)
        else:
            if metadata is not None and metadata is not model_class.metadata:
                raise ValueError("pass metadata= only with the default model class; your base has its own MetaData")
            if not issubclass(model_class, Model):
                prepare_user_base(model_class)
                if getattr(model_class, "query_class", None) is None:
                    type.__setattr__(model_class, "query_class", self.Query)
            base = model_class
        if disable_autonaming:
            type.__setattr__(base, "__ampulla_autonaming__", False)
        return base

    # ------------------------------------------------------------------------------------------ setup
    def init_app(self, app: Ampulla) -> None:
        """Register with ``app``: session teardown, 503 for an unreachable database, shell names.

        Engines are created on first use from the config at that time.

        Raises:
            RuntimeError: The app already has a ``Database``.
        """
        if "sqlalchemy" in app.extensions:
            raise RuntimeError(
                "This app already has a Database; use one per app and SQLALCHEMY_BINDS for several databases."
            )
        app.extensions["sqlalchemy"] = self
        for key in app.config.get("SQLALCHEMY_BINDS") or ():
            if key is not None:
                metadata_for(self.Model, key)
        app.extensions[self._state_key] = _AppState()
        app.teardown_appcontext(self._teardown_appcontext)
        app.register_error_handler(DatabaseUnavailableError, handle_unavailable)
        app.register_error_handler(sa.exc.TimeoutError, handle_unavailable)
        if self._add_models_to_shell:
            app.shell_context_processor(self._shell_context)

    def _shell_context(self) -> dict[str, Any]:
        names: dict[str, Any] = {"db": self}
        for mapper in self.Model.registry.mappers:
            names.setdefault(mapper.class_.__name__, mapper.class_)
        return names

    def _state(self, app: Ampulla) -> _AppState:
        try:
            return app.extensions[self._state_key]  # type: ignore[no-any-return]
        except KeyError:
            raise RuntimeError(
                f"The Database is not registered with the application {app.name!r}; call db.init_app(app)."
            ) from None

    def _current_app(self, name: str) -> Ampulla:
        ctx = current_context()
        if ctx is None:
            raise RuntimeError(_NO_APP.format(name=name))
        return ctx.app

    # ------------------------------------------------------------------------------------------ engines
    def _load_engines(self, state: _AppState, app: Ampulla) -> dict[str | None, sa.Engine]:
        with state.lock:
            if state.engines is None:
                if state.specs is None:
                    state.specs = _engines.engine_specs(app.config, app.instance_path, self._engine_options)
                engines = {key: self._make_engine(key, {"url": spec.url, **spec.options}, app)
                           for key, spec in state.specs.items()}
                if app.config.get("SQLALCHEMY_RECORD_QUERIES"):
                    from .record_queries import listen

                    for engine in engines.values():
                        listen(engine)
                state.engines = engines
            return state.engines

    def _make_engine(self, bind_key: str | None, options: dict[str, Any], app: Ampulla) -> sa.Engine:
        """Create the sync engine of ``bind_key`` (override to change how engines are made).

        Args:
            bind_key: The bind key (``None``: the default database).
            options: ``create_engine`` keyword arguments, the URL as ``"url"``; Ampulla's defaults are added
                under them.
            app: The application the engine is for.
        """
        options = dict(options)
        return _engines.create_sync_engine(options.pop("url"), options)

    def _engines_of(self, app: Ampulla) -> dict[str | None, sa.Engine]:
        state = self._state(app)
        return state.engines or self._load_engines(state, app)

    @property
    def engines(self) -> Mapping[str | None, sa.Engine]:
        """The current app's engines by bind key (``None`` is the default database)."""
        return self._engines_of(self._current_app("engines"))

    @property
    def engine(self) -> sa.Engine:
        """The current app's default engine."""
        engines = self._engines_of(self._current_app("engine"))
        if None not in engines:
            raise RuntimeError("no default database: set SQLALCHEMY_DATABASE_URI")
        return engines[None]

    def _async_engines_of(self, app: Ampulla, loop: asyncio.AbstractEventLoop) -> dict[str | None, AsyncEngine]:
        state = self._state(app)
        engines = state.async_engines.get(loop)
        if engines is not None:
            return engines
        with state.lock:
            engines = state.async_engines.get(loop)
            if engines is None:
                if state.specs is None:
                    state.specs = _engines.engine_specs(app.config, app.instance_path, self._engine_options)
                self._prune_closed_loops(state)
                engines = {}
                for key, spec in state.specs.items():
                    if spec.async_url is not None:
                        engines[key] = _engines.create_async_engine(spec.async_url, spec.async_options)
                if app.config.get("SQLALCHEMY_RECORD_QUERIES"):
                    from .record_queries import listen

                    for async_engine in engines.values():
                        listen(async_engine.sync_engine)
                state.async_engines[loop] = engines
            return engines

    @staticmethod
    def _prune_closed_loops(state: _AppState) -> None:
        for loop, engines in list(state.async_engines.items()):
            if loop.is_closed():
                for engine in engines.values():
                    engine.sync_engine.dispose(close=False)  # its connections died with the loop
                del state.async_engines[loop]

    @property
    def async_engines(self) -> Mapping[str | None, AsyncEngine]:
        """The current app's asyncio engines (for the running event loop) by bind key."""
        return self._async_engines_of(self._current_app("async_engines"), _running_loop("async_engines"))

    @property
    def async_engine(self) -> AsyncEngine:
        """The current app's default asyncio engine (for the running event loop)."""
        engines = self.async_engines
        if None not in engines:
            raise RuntimeError(
                "no asyncio driver is known for the default database URL; set SQLALCHEMY_ASYNC_DATABASE_URI"
            )
        return engines[None]

    def dispose(self, app: Ampulla | None = None) -> None:
        """Close every pooled connection of ``app`` (default: the current app) and forget its engines.

        The next use creates new engines from the config. Call it in tests, or in a worker after a fork. Sessions
        that an ASGI request's teardown is still closing in the thread pool are waited for first, so their
        connections are closed too.
        """
        if app is None:
            app = self._current_app("dispose")
        state = self._state(app)
        with state.lock:
            engines, state.engines, state.specs = state.engines, None, None
            loops = list(state.async_engines.items())
            state.async_engines.clear()
        self._int_bounds.clear()
        closing = list(self._closing_sync)
        if closing:
            # NOTE: bounded: a dispose() called from a pool thread must not wait on a close queued behind it.
            concurrent.futures.wait(closing, timeout=_CLOSE_WAIT)
        for engine in (engines or {}).values():
            engine.dispose()
        for loop, async_engines in loops:
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(self.wait_closed())
            for async_engine in async_engines.values():
                _dispose_async(async_engine, loop)

    async def async_dispose(self) -> None:
        """Close the pooled connections of the current app's asyncio engines for the running loop."""
        app = self._current_app("async_dispose")
        loop = _running_loop("async_dispose")
        state = self._state(app)
        engines = state.async_engines.pop(loop, None)
        await self.wait_closed()  # sessions still closing would check connections into a disposed pool
        for engine in (engines or {}).values():
            await engine.dispose()

    # ------------------------------------------------------------------------------------------ relationships
    def relationship(self, *args: Any, **kwargs: Any) -> Any:
        """``sqlalchemy.orm.relationship``; a ``lazy="dynamic"`` one (and its backref) queries with :attr:`Query`."""
        self._set_query_class(kwargs)
        return sa_orm.relationship(*args, **kwargs)

    def dynamic_loader(self, argument: Any, **kwargs: Any) -> Any:
        """``sqlalchemy.orm.dynamic_loader`` whose queries are of this database's :attr:`Query` class."""
        self._set_query_class(kwargs)
        return sa_orm.dynamic_loader(argument, **kwargs)

    def backref(self, name: str, **kwargs: Any) -> Any:
        """``sqlalchemy.orm.backref``; a ``lazy="dynamic"`` one queries with :attr:`Query`."""
        kwargs.setdefault("query_class", self.Query)
        return sa_orm.backref(name, **kwargs)

    def _set_query_class(self, kwargs: dict[str, Any]) -> None:
        kwargs.setdefault("query_class", self.Query)
        backref = kwargs.get("backref")
        if isinstance(backref, tuple) and len(backref) == 2 and isinstance(backref[1], dict):
            backref[1].setdefault("query_class", self.Query)

    # ------------------------------------------------------------------------------------------ metadata
    def Table(self, name: str, *args: Any, bind_key: str | None = None, **kwargs: Any) -> sa.Table:
        """A ``sqlalchemy.Table`` in the ``MetaData`` of ``bind_key`` (default: the default database's).

        ``db.Table("user_role", db.Column("user_id", db.ForeignKey("user.id")), ...)``, as with
        Flask-SQLAlchemy; a ``MetaData`` passed after the name is used instead (``bind_key`` is then ignored).

        Args:
            name: The table's name.
            args: Columns and constraints, optionally preceded by a ``MetaData``.
            bind_key: The bind key of the database the table is in.
            kwargs: ``sqlalchemy.Table`` keyword arguments.
        """
        if args and isinstance(args[0], sa.MetaData):
            return sa.Table(name, *args, **kwargs)
        return sa.Table(name, metadata_for(self.Model, bind_key), *args, **kwargs)

    @property
    def metadatas(self) -> Mapping[str | None, sa.MetaData]:
        """The ``MetaData`` of each bind key that has models (``None``: the default database)."""
        return cast("Mapping[str | None, sa.MetaData]", self.Model.__ampulla_metadatas__)

    @property
    def metadata(self) -> sa.MetaData:
        """The ``MetaData`` of the default database's tables."""
        return self.metadatas[None]

    def _bind_keys(
        self, bind_key: str | Iterable[str | None] | None, default: Iterable[str | None]
    ) -> list[str | None]:
        if bind_key == "__all__":
            return list(default)
        if bind_key is None or isinstance(bind_key, str):
            return [bind_key]
        return list(bind_key)

    def _run_metadata(self, op: str, bind_key: str | Iterable[str | None] | None) -> None:
        engines = self.engines
        for key in self._bind_keys(bind_key, self.metadatas):
            engine = engines.get(key)
            if engine is None:
                raise KeyError(f"Bind key {key!r} is not in SQLALCHEMY_BINDS.")
            metadata = self.metadatas.get(key)
            if metadata is None:
                continue
            getattr(metadata, op)(bind=engine)

    def create_all(self, bind_key: str | Iterable[str | None] | None = "__all__") -> None:
        """Create the tables that do not exist yet (``bind_key``: one key, a list, or ``"__all__"``)."""
        self._run_metadata("create_all", bind_key)

    def drop_all(self, bind_key: str | Iterable[str | None] | None = "__all__") -> None:
        """Drop the models' tables (``bind_key``: one key, a list, or ``"__all__"``)."""
        self._run_metadata("drop_all", bind_key)

    def reflect(self, bind_key: str | Iterable[str | None] | None = "__all__") -> None:
        """Load the tables of the databases into :attr:`metadatas` (they appear in ``metadata.tables``)."""
        engines = self.engines
        for key in self._bind_keys(bind_key, engines):
            engine = engines.get(key)
            if engine is None:
                raise KeyError(f"Bind key {key!r} is not in SQLALCHEMY_BINDS.")
            metadata_for(self.Model, key).reflect(bind=engine)

    async def _async_run_metadata(self, op: str, bind_key: str | Iterable[str | None] | None) -> None:
        engines = self.async_engines
        for key in self._bind_keys(bind_key, self.metadatas):
            engine = engines.get(key)
            metadata = self.metadatas.get(key)
            if engine is None:
                raise KeyError(f"Bind key {key!r} has no asyncio engine.")
            if metadata is None:
                continue
            async with engine.begin() as connection:
                await connection.run_sync(getattr(metadata, op))

    async def async_create_all(self, bind_key: str | Iterable[str | None] | None = "__all__") -> None:
        """:meth:`create_all` through the asyncio engines."""
        await self._async_run_metadata("create_all", bind_key)

    async def async_drop_all(self, bind_key: str | Iterable[str | None] | None = "__all__") -> None:
        """:meth:`drop_all` through the asyncio engines."""
        await self._async_run_metadata("drop_all", bind_key)

    # ------------------------------------------------------------------------------------------ sessions
    @property
    def session(self) -> Session:
        """The session of the current application/request context (created on first use).

        It is closed when the context ends, which rolls back whatever was not committed.
        """
        # PERF: one context-variable read and one dict lookup on the hot path (benchmarks: orm).
        ctx = current_context()
        if ctx is not None and ctx.owns_app_ctx and self._scopefunc is None:
            session: Session | None = ctx.g.__dict__.get(self._session_key)
            if session is not None:
                return session
        return self._session_slow(ctx)

    def _context_session(self) -> Session:
        ctx = current_context()
        if ctx is None:
            raise RuntimeError(_NO_APP.format(name="session"))
        return self._session_slow(ctx)

    def _session_slow(self, ctx: AppContext | None) -> Session:
        if ctx is None:
            return cast(Session, self._proxy)
        key = _owner_key(ctx, self._session_key)
        if self._scopefunc is not None:
            key = f"{key}:scope:{self._scopefunc()!r}"
        store = ctx.g.__dict__
        session: Session | None = store.get(key)
        if session is None:
            session = store[key] = self._create_session(ctx.app)
            if key != self._session_key:
                store.setdefault(self._copies_key, []).append(key)
        return session

    def _create_session(self, app: Ampulla) -> Session:
        engines = self._engines_of(app)
        session = self._session_class(bind=engines.get(None), **self.session_options)
        if len(engines) > 1:
            session._ampulla_engines = engines
        if app.config.get("SQLALCHEMY_TRACK_MODIFICATIONS"):
            from .track_modifications import listen

            listen(session)
        return session

    def _remove_session(self) -> None:
        ctx = current_context()
        if ctx is None:
            return
        session = ctx.g.__dict__.pop(_owner_key(ctx, self._session_key), None)
        if session is not None:
            _close_sync(session)

    @property
    def async_session(self) -> AsyncSession:
        """The asyncio session of the current context, for ``async def`` views (created on first use).

        ``await db.async_session.execute(select(User))``. It is closed when the context ends.

        Raises:
            RuntimeError: Used outside an application context or without a running event loop.
        """
        ctx = current_context()
        if ctx is None:
            raise RuntimeError(_NO_APP.format(name="async_session"))
        key = _owner_key(ctx, self._async_key)
        store = ctx.g.__dict__
        session: AsyncSession | None = store.get(key)
        if session is None:
            loop = _running_loop("async_session")
            session = store[key] = self._create_async_session(ctx.app, loop)
            if key != self._async_key:
                store.setdefault(self._copies_key, []).append(key)
        return session

    def _create_async_session(self, app: Ampulla, loop: asyncio.AbstractEventLoop) -> AsyncSession:
        engines = self._async_engines_of(app, loop)
        if None not in engines and not engines:
            raise RuntimeError(
                "no asyncio driver is known for the database URL; set SQLALCHEMY_ASYNC_DATABASE_URI"
            )
        from .async_session import AsyncSession  # needs greenlet: loaded on first use, after the engines' check

        session = AsyncSession(bind=engines.get(None), sync_session_class=self._session_class, **self.session_options)
        if len(engines) > 1:
            sync_session = cast(Session, session.sync_session)
            sync_session._ampulla_engines = {key: e.sync_engine for key, e in engines.items()}
        session.loop = loop
        if app.config.get("SQLALCHEMY_TRACK_MODIFICATIONS"):
            from .track_modifications import listen

            listen(session.sync_session)
        return session

    def _teardown_appcontext(self, exc: BaseException | None) -> None:
        ctx = current_context()
        if ctx is None:
            return
        store = ctx.g.__dict__
        session = store.pop(self._session_key, None)
        async_session = store.pop(self._async_key, None)
        # Sessions of request-context copies (other threads) end with the request at the latest.
        copies = store.pop(self._copies_key, None)
        if session is None and async_session is None and copies is None:
            return
        loop = _get_running_loop()
        if session is not None:
            self._close(ctx, session, loop)
        if async_session is not None:
            self._close(ctx, async_session, loop)
        for key in copies or ():
            other = store.pop(key, None)
            if other is not None:
                self._close(ctx, other, loop)

    def _close(self, ctx: AppContext, session: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        """Close a session at the end of its context, never blocking an event loop running in this thread."""
        if _is_async_session(session):
            self._close_async(session, loop)
        elif loop is None or not session.in_transaction() or _closes_locally(session):
            # WSGI, or nothing to send to the database. PERF: under ASGI, a session that only read from SQLite
            # (in no transaction at the database) closes here: a thread-pool hop would cost more than the close
            # itself (benchmarks/run.py --protocol asgi --scenarios orm).
            _close_sync(session)
        else:
            # ASGI runs teardown on the event loop: the ROLLBACK and check-in happen in the thread pool.
            executor = getattr(ctx.app, "sync_executor", None)
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._closing_sync.add(done)
            done.add_done_callback(self._closing_sync.discard)

            def close() -> None:
                try:
                    _close_sync(session)
                finally:
                    done.set_result(None)

            try:
                self._track(loop.run_in_executor(executor, close))
            except BaseException:
                done.set_result(None)
                raise

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._closing.add(future)
        future.add_done_callback(self._closing.discard)

    def _close_async(self, session: AsyncSession, running: asyncio.AbstractEventLoop | None) -> None:
        sync_session = session.sync_session
        if not sync_session.in_transaction():
            sync_session.close()  # no connection held: nothing to await
            return
        loop = session.loop
        if loop is None or loop.is_closed():
            sync_session.invalidate()
        elif running is loop:
            self._track(loop.create_task(_close_async_session(session)))  # ASGI: on the server's loop
        elif not loop.is_running():
            loop.run_until_complete(_close_async_session(session))  # WSGI: this thread's loop, idle now
        else:
            asyncio.run_coroutine_threadsafe(_close_async_session(session), loop)

    async def wait_closed(self) -> None:
        """Wait until the sessions a teardown started closing on the running event loop are closed.

        Under ASGI a teardown closes sessions without blocking the loop (as a task, or in the thread pool),
        so they may still be closing when the request is over; tests that inspect the pool await this.
        """
        loop = asyncio.get_running_loop()
        while pending := [f for f in self._closing if f.get_loop() is loop]:
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------------------------------ helpers
    # The sync and async twins below differ only in their I/O call; checks and 404 decisions are shared.
    def _ident_or_404(self, session: sa_orm.Session, entity: Any, ident: Any, description: str | None) -> Any:
        """``ident`` converted for ``entity``'s primary key, or a 404 when no row can have it.

        Raises:
            NotFound: ``ident`` cannot be a key of ``entity`` (``"abc"`` for an integer key, out of range).
        """
        ident = self._checked_ident(session, entity, ident)
        if ident is NO_MATCH:
            raise not_found(description)
        return ident

    def _checked_ident(self, session: sa_orm.Session, entity: Any, ident: Any) -> Any:
        # PERF: an int for an integer key is checked against a cached range (benchmarks: orm).
        if type(ident) is int and isinstance(session, Session) and session._ampulla_engines is None:
            key = (entity, session.bind)
            bound = self._int_bounds.get(key)
            if bound is None:
                bound = self._int_bounds[key] = int_key_bound(session, entity)
            if bound:
                return ident if -bound <= ident < bound else NO_MATCH
        return checked_ident(session, entity, ident)

    def get_or_404(self, entity: type[_O], ident: Any, *, description: str | None = None, **kwargs: Any) -> _O:
        """``db.session.get(entity, ident)``, or a 404 when there is no such row.

        ``ident`` may come straight from a URL: a value that cannot be a key (``"abc"`` for an integer key,
        a number beyond the column's range) is a 404 too, never a database error.

        Raises:
            NotFound: No such row.
        """
        session = self.session
        ident = self._ident_or_404(session, entity, ident, description)
        return found_or_404(session.get(entity, ident, **kwargs), description)

    def first_or_404(self, statement: sa.Select[_T], *, description: str | None = None) -> _T:
        """The first column of the first row of ``statement``, or a 404.

        Raises:
            NotFound: No row.
        """
        return found_or_404(self.session.execute(statement).scalar(), description)

    def one_or_404(self, statement: sa.Select[_T], *, description: str | None = None) -> _T:
        """The first column of the only row of ``statement``, or a 404 when there is none or several.

        Raises:
            NotFound: No row, or more than one.
        """
        try:
            return self.session.execute(statement).scalar_one()
        except NOT_ONE_ROW:
            raise not_found(description) from None

    @overload
    def paginate(
        self,
        select: sa.Select[_T],
        *,
        page: int | None = ...,
        per_page: int | None = ...,
        max_per_page: int | None = ...,
        error_out: bool = ...,
        count: bool = ...,
    ) -> Pagination[_T]: ...

    @overload
    def paginate(
        self,
        select: sa.Select[Any, Any, *tuple[Any, ...]],
        *,
        page: int | None = ...,
        per_page: int | None = ...,
        max_per_page: int | None = ...,
        error_out: bool = ...,
        count: bool = ...,
    ) -> Pagination[sa.Row[Any]]: ...

    def paginate(
        self,
        select: Any,
        *,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int | None = None,
        error_out: bool = True,
        count: bool = True,
    ) -> Pagination[Any]:
        """One page of ``select``'s results, with the total and page numbers.

        Page values default to the request's ``?page=`` and ``?per_page=`` (20). ``per_page`` is clamped to
        ``max_per_page`` (default ``SQLALCHEMY_MAX_PER_PAGE``, 100).

        Args:
            select: A ``select()``; one entity or column gives those values as items, several give rows.
            page: The page number (1-based).
            per_page: Items per page.
            max_per_page: The largest page size accepted.
            error_out: Answer 404 for a bad value or a page past the end (else: defaults, empty page).
            count: Count the total (a ``COUNT`` query); off, ``has_next`` is found by fetching one more row.

        Raises:
            NotFound: A bad value or a page past the end, when ``error_out`` is true.
        """
        return SelectPagination(
            page=page,
            per_page=per_page,
            max_per_page=_UNSET if max_per_page is None else max_per_page,
            error_out=error_out,
            count=count,
            select=select,
            session=self.session,
        )

    def keyset_paginate(
        self,
        select: sa.Select[Any],
        *,
        key: Any,
        per_page: int | None = None,
        max_per_page: int | None = None,
        after: str | None = None,
        descending: bool = False,
        error_out: bool = True,
    ) -> KeysetPage[Any]:
        """One page of ``select`` ordered by ``key``, starting after a cursor: no COUNT, no OFFSET.

        For large tables: every page costs the same. Pass ``page.next_cursor`` as ``?after=`` to get the next.

        Args:
            select: A ``select()``.
            key: The ordering column(s), unique together and NOT NULL, e.g. ``User.id`` or
                ``(Post.created, Post.id)``.
            per_page: Items per page (default ``?per_page=``, then 20), clamped to ``max_per_page``.
            max_per_page: The largest page size accepted.
            after: The cursor (default: the request's ``?after=``).
            descending: Order by ``key`` descending.
            error_out: Answer 404 for a cursor that does not decode (else: start from the beginning).

        Raises:
            NotFound: A bad cursor or page size, when ``error_out`` is true.
        """
        plan = KeysetPlan(select, key, per_page=per_page, max_per_page=max_per_page, after=after,
                          descending=descending, error_out=error_out)
        return plan.build(result_items(self.session.execute(plan.statement), select))

    async def async_get_or_404(
        self, entity: type[_O], ident: Any, *, description: str | None = None, **kwargs: Any
    ) -> _O:
        """:meth:`get_or_404` on :attr:`async_session`.

        Raises:
            NotFound: No such row.
        """
        session = self.async_session
        ident = self._ident_or_404(session.sync_session, entity, ident, description)
        return found_or_404(await session.get(entity, ident, **kwargs), description)

    async def async_first_or_404(self, statement: sa.Select[_T], *, description: str | None = None) -> _T:
        """:meth:`first_or_404` on :attr:`async_session`.

        Raises:
            NotFound: No row.
        """
        return found_or_404((await self.async_session.execute(statement)).scalar(), description)

    async def async_one_or_404(self, statement: sa.Select[_T], *, description: str | None = None) -> _T:
        """:meth:`one_or_404` on :attr:`async_session`.

        Raises:
            NotFound: No row, or more than one.
        """
        try:
            return (await self.async_session.execute(statement)).scalar_one()
        except NOT_ONE_ROW:
            raise not_found(description) from None

    async def async_paginate(
        self,
        select: Any,
        *,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int | None = None,
        error_out: bool = True,
        count: bool = True,
    ) -> Pagination[Any]:
        """:meth:`paginate` on :attr:`async_session` (the page's ``next()``/``prev()`` are not available).

        Raises:
            NotFound: A bad value or a page past the end, when ``error_out`` is true.
        """
        plan = PagePlan(page, per_page, max_per_page, error_out, count)
        session = self.async_session
        total = (await session.execute(count_statement(select))).scalar() if count else None
        if not plan.check_total(total):
            return plan.empty(total)
        items = result_items(await session.execute(plan.statement(select)), select)
        return plan.build(items, total)

    async def async_keyset_paginate(
        self,
        select: sa.Select[Any],
        *,
        key: Any,
        per_page: int | None = None,
        max_per_page: int | None = None,
        after: str | None = None,
        descending: bool = False,
        error_out: bool = True,
    ) -> KeysetPage[Any]:
        """:meth:`keyset_paginate` on :attr:`async_session`.

        Raises:
            NotFound: A bad cursor or page size, when ``error_out`` is true.
        """
        plan = KeysetPlan(select, key, per_page=per_page, max_per_page=max_per_page, after=after,
                          descending=descending, error_out=error_out)
        return plan.build(result_items(await self.async_session.execute(plan.statement), select))

    # ------------------------------------------------------------------------------------------ misc
    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Flask-SQLAlchemy exposes all of sqlalchemy and sqlalchemy.orm on the db object.
            if name.startswith("_"):
                raise AttributeError(name)
            for module in (sa, sa_orm):
                if hasattr(module, name):
                    return getattr(module, name)
            raise AttributeError(f"'Database' object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<Database model={self.Model.__qualname__}>"


# ---------------------------------------------------------------------------------------------- functions
def _running_loop(name: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"db.{name} is for 'async def' views and other coroutines (it needs a running event loop); "
            "in sync code use db.session and db.engine."
        ) from None


def _is_async_session(session: object) -> TypeGuard[AsyncSession]:
    """Whether ``session`` is an asyncio session (never, while none was made: its module is not loaded)."""
    module = sys.modules.get("ampulla.db.async_session")
    return module is not None and isinstance(session, module.AsyncSession)


#: How long :meth:`Database.dispose` waits for sessions still closing in the thread pool (seconds).
_CLOSE_WAIT = 10.0


def _closes_locally(session: Session) -> bool:
    """Whether closing ``session`` sends nothing to the database, so that it cannot block.

    True when every DBAPI connection the session holds reports, through the DBAPI's optional
    ``in_transaction`` attribute, that no transaction is open there: then the rollback on check-in does no
    I/O. ``sqlite3`` has it, and opens no transaction for a ``SELECT``; drivers without the attribute (a
    network database) always close in the thread pool under ASGI.
    """
    transaction = session.get_transaction()
    if transaction is None:
        return True
    try:
        holds = transaction._connections.values()  # SQLAlchemy 2: (Connection, Transaction, ...) per bind
        return all(getattr(held[0].connection.dbapi_connection, "in_transaction", True) is False for held in holds)
    except Exception:  # an invalidated connection, another SQLAlchemy layout: take the safe path
        return False


def _close_sync(session: Session) -> None:
    try:
        session.close()
    except Exception as e:  # the database went away; the connection is discarded, nothing to roll back
        logger.warning("closing the database session failed (%s: %s); discarding it", type(e).__name__, e)
        try:
            session.invalidate()
        except Exception:
            pass


async def _close_async_session(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception as e:
        logger.warning("closing the async database session failed (%s: %s); discarding it", type(e).__name__, e)
        try:
            await session.invalidate()
        except Exception:
            pass


def _dispose_async(engine: AsyncEngine, loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed() or loop.is_running():
        engine.sync_engine.dispose(close=False)
        return
    loop.run_until_complete(engine.dispose())


__all__ = ["Database", "current_database"]
