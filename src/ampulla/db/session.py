"""Session classes: bind routing for ``__bind_key__``, and a failed commit that leaves the session usable."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession

from ..ctx import _cv_ctx

Engines = Mapping[str | None, sa.Engine]


def _bind_key(mapper: Any, clause: Any) -> tuple[bool, str | None]:
    """``(found, key)``: the bind key of the table behind ``mapper`` or ``clause``."""
    table = None
    if mapper is not None:
        try:
            mapper = sa.inspect(mapper)
        except sa.exc.NoInspectionAvailable:
            mapper = None
        if isinstance(mapper, sa_orm.Mapper):
            table = mapper.persist_selectable
    if table is None and clause is not None:
        if isinstance(clause, sa.Table):
            table = clause
        elif isinstance(clause, sa.sql.expression.UpdateBase) and isinstance(clause.table, sa.Table):
            table = clause.table
        else:
            for frm in getattr(clause, "get_final_froms", lambda: ())():
                if isinstance(frm, sa.Table):
                    table = frm
                    break
    if isinstance(table, sa.Table) and "bind_key" in table.metadata.info:
        return True, table.metadata.info["bind_key"]
    return False, None


class Session(sa_orm.Session):
    """The ORM session behind ``db.session``.

    - Models with ``__bind_key__`` run on the engine of that key (``SQLALCHEMY_BINDS``).
    - A ``commit()`` that fails (a unique violation, a lost connection) is rolled back before the error
      propagates, so nothing is half-written and the session is usable again, e.g. in an error handler.
    - ``db.session()`` and ``db.session.remove()`` work as with Flask-SQLAlchemy's scoped session.
    """

    _ampulla_engines: Engines | None = None

    def get_bind(
        self,
        mapper: Any = None,
        *,
        clause: Any = None,
        bind: Any = None,
        _sa_skip_events: bool | None = None,
        _sa_skip_for_implicit_returning: bool = False,
        **kw: Any,
    ) -> sa.Engine | sa.Connection:
        """The engine for ``mapper``/``clause``: the one of its model's ``__bind_key__``, else the default.

        Raises:
            UnboundExecutionError: The model's bind key is not configured in ``SQLALCHEMY_BINDS``.
        """
        engines = self._ampulla_engines
        if bind is None and engines is not None:
            found, key = _bind_key(mapper, clause)
            if found and key is not None:
                engine = engines.get(key)
                if engine is None:
                    raise UnboundExecutionError(
                        f"Bind key {key!r} is not in SQLALCHEMY_BINDS; add it, e.g. "
                        f"app.config['SQLALCHEMY_BINDS'] = {{{key!r}: 'sqlite:///{key}.db'}}."
                    )
                return engine
        return super().get_bind(
            mapper,
            clause=clause,
            bind=bind,
            _sa_skip_events=_sa_skip_events,
            _sa_skip_for_implicit_returning=_sa_skip_for_implicit_returning,
            **kw,
        )

    def commit(self) -> None:
        """Commit; on failure roll back, then re-raise (e.g. ``IntegrityError`` for a unique violation)."""
        try:
            super().commit()
        except BaseException:
            if self.in_transaction():
                try:
                    self.rollback()
                except Exception:  # the connection may be gone too; the original error is what matters
                    self.invalidate()
            raise

    def __call__(self) -> Session:
        """The session itself, for code written for a scoped session (``db.session()``)."""
        return self

    def remove(self) -> None:
        """Close the session (as ``scoped_session.remove()``); the next ``db.session`` is a new one."""
        self.close()
        _forget(self)


class AsyncSession(_AsyncSession):
    """The asyncio session behind ``db.async_session`` (its sync side is a :class:`Session`).

    Attributes:
        loop: The event loop the session (and its engine's connections) belongs to.
    """

    sync_session_class = Session
    loop: asyncio.AbstractEventLoop | None = None

    async def remove(self) -> None:
        """Close the session; the next ``db.async_session`` in this context is a new one."""
        await self.close()
        _forget(self)


def _forget(session: object) -> None:
    """Drop ``session`` from the current context, where ``db.session``/``db.async_session`` keep it."""
    ctx = _cv_ctx.get(None)
    store = ctx.g.__dict__ if ctx is not None else {}
    for key in [key for key, value in store.items() if value is session]:
        del store[key]
