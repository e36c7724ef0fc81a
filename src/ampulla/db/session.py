"""Session classes: bind routing for ``__bind_key__``, and a failed commit that leaves the session usable.

The asyncio session lives in :mod:`ampulla.db.async_session`, loaded on first use: SQLAlchemy's asyncio
extension needs ``greenlet``, which an app with only sync sessions does not have to install.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.exc import UnboundExecutionError

from ..ctx import current_context

if TYPE_CHECKING:
    from sqlalchemy.orm._typing import OrmExecuteOptionsParameter
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.orm.session import _BindArguments, _EntityBindKey, _PKIdentityArgument
    from sqlalchemy.sql.selectable import ForUpdateParameter

Engines = Mapping[str | None, sa.Engine]
_O = TypeVar("_O", bound=object)


def _bind_key(mapper: Any, clause: Any) -> tuple[bool, str | None]:
    """``(found, key)``: the bind key of the table behind ``mapper`` or ``clause``."""
    table = None
    if mapper is not None:
        try:
            mapper = sa.inspect(mapper)
        except sa.exc.NoInspectionAvailable:
            mapper = None
        if isinstance(mapper, sa_orm.Mapper):
            # A joined-inheritance subclass maps a join: its own table says where it lives.
            table = mapper.local_table if isinstance(mapper.local_table, sa.Table) else mapper.persist_selectable
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


#: The prebuilt ``SELECT ... WHERE pk = :ampulla_pk`` of each model with a one-column primary key (``None``:
#: the model does not qualify). Built once, so its SQL cache key is computed once.
_PK_STATEMENTS: WeakKeyDictionary[type, tuple[sa_orm.Mapper[Any], sa.Select[Any]] | None] = WeakKeyDictionary()


def _pk_statement(entity: Any) -> tuple[sa_orm.Mapper[Any], sa.Select[Any]] | None:
    try:
        return _PK_STATEMENTS[entity]
    except KeyError:
        pass
    except TypeError:  # not a class (a Mapper, an aliased class): no fast path
        return None
    mapper = sa.inspect(entity, raiseerr=False)
    plan = None
    if isinstance(mapper, sa_orm.Mapper) and len(mapper.primary_key) == 1 and not mapper.always_refresh:
        column = mapper.primary_key[0]
        plan = (mapper, sa.select(mapper).where(column == sa.bindparam("ampulla_pk", type_=column.type)))
    _PK_STATEMENTS[entity] = plan
    return plan


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

    def get(
        self,
        entity: _EntityBindKey[_O],
        ident: _PKIdentityArgument,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: Any | None = None,
        execution_options: OrmExecuteOptionsParameter = sa.util.EMPTY_DICT,
        bind_arguments: _BindArguments | None = None,
    ) -> _O | None:
        """SQLAlchemy's ``Session.get``: the object with primary key ``ident``, or ``None``.

        PERF: when the object is not in the session, a plain lookup (one-column key, no options) runs a
        SELECT prepared once per model; ``Session.get`` builds and hashes a new one on every call, about a
        quarter of the cost of a request that loads one row (benchmarks: orm). The result is the same.
        """
        if (
            options is None
            and not populate_existing
            and with_for_update is None
            and identity_token is None
            and not execution_options
            and bind_arguments is None
            and ident is not None
            and not isinstance(ident, tuple | list | dict)
        ):
            plan = _pk_statement(entity)
            if plan is not None:
                mapper, statement = plan
                # In the identity map: SQLAlchemy's own path (it checks expiry and the class).
                if self.identity_map.get(mapper.identity_key_from_primary_key((ident,))) is None:
                    result = self.execute(statement, {"ampulla_pk": ident})
                    return result.unique().scalars().one_or_none()
        return super().get(
            entity,
            ident,
            options=options,
            populate_existing=populate_existing,
            with_for_update=with_for_update,
            identity_token=identity_token,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
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
        forget(self)


def forget(session: object) -> None:
    """Drop ``session`` from the current context, where ``db.session``/``db.async_session`` keep it."""
    ctx = current_context()
    store = ctx.g.__dict__ if ctx is not None else {}
    for key in [key for key, value in store.items() if value is session]:
        del store[key]
