"""Declarative bases: ``Model`` (importable and typed), ``.query`` on every model, table names and bind keys.

Three ways to declare models, all with ``Model.query``, automatic ``__tablename__`` and ``__bind_key__``:

- ``db.Model``: each :class:`~ampulla.db.Database` has its own base (and tables), as in Flask-SQLAlchemy;
- ``ampulla.db.Model``: a base importable before any ``Database`` exists, so ``class User(Model)`` is typed
  for mypy; pass ``Database(app, model_class=Model)`` to use it;
- your own ``DeclarativeBase`` subclass: ``Database(app, model_class=Base)`` adds the same features to it.
"""

from __future__ import annotations

import re
import types
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.orm import DeclarativeBase, declared_attr

from ..ctx import current_context
from .query import Query

if TYPE_CHECKING:
    from .extension import Database

_T = TypeVar("_T")

_CAMEL = re.compile(r"((?<=[a-z0-9])[A-Z]|(?!^)[A-Z](?=[a-z]))")


def camel_to_snake_case(name: str) -> str:
    """``UserRole`` -> ``user_role``, ``HTTPResponse`` -> ``http_response``: the automatic table name."""
    return _CAMEL.sub(r"_\1", name).lower().lstrip("_")


def current_database() -> Database:
    """The :class:`~ampulla.db.Database` of the active application.

    Raises:
        RuntimeError: No application context, or the application has no ``Database``.
    """
    ctx = current_context()
    if ctx is None:
        raise RuntimeError(
            "Working outside of application context: Model.query and db.session need an active application. "
            "Use them inside a view, or wrap the code in 'with app.app_context():'."
        )
    db = ctx.app.extensions.get("sqlalchemy")
    if db is None:
        raise RuntimeError(
            f"The application {ctx.app.name!r} has no Database. Create it with 'db = Database(app)' or call "
            "'db.init_app(app)' before using models."
        )
    return db  # type: ignore[no-any-return]


class _QueryProperty:
    """``Model.query``: a :class:`Query` for the model on the current application's session."""

    def __get__(self, obj: Any, cls: type[_T]) -> Query[_T]:
        db = current_database()
        query_class: type[Query[_T]] = getattr(cls, "query_class", None) or db.Query
        return query_class(cls, session=db.session)


def _declares_primary_key(cls: type) -> bool:
    for value in cls.__dict__.values():
        if isinstance(value, sa.Column) and value.primary_key:
            return True
        if isinstance(value, sa_orm.MappedColumn) and value.column.primary_key:
            return True
    return False


def auto_tablename(cls: Any) -> str | None:
    """The table name for a model without ``__tablename__``.

    ``None`` (no table of its own) for a subclass of a mapped model that declares no primary key: that is
    single-table inheritance. A subclass that declares a primary key gets its own table (joined inheritance).
    """
    for base in cls.__mro__[1:]:
        if isinstance(base.__dict__.get("__table__"), sa.Table):
            return camel_to_snake_case(cls.__name__) if _declares_primary_key(cls) else None
    return camel_to_snake_case(cls.__name__)


def _bind_metadatas(base: type) -> dict[str | None, sa.MetaData]:
    metadatas: dict[str | None, sa.MetaData] | None = base.__dict__.get("__ampulla_metadatas__")
    if metadatas is None:
        default: sa.MetaData = base.metadata  # type: ignore[attr-defined]
        default.info.setdefault("bind_key", None)
        metadatas = {None: default}
        type.__setattr__(base, "__ampulla_metadatas__", metadatas)
    return metadatas


def metadata_for(base: type, bind_key: str | None) -> sa.MetaData:
    """The ``MetaData`` holding the tables of ``base``'s models with ``__bind_key__ = bind_key``."""
    metadatas = _bind_metadatas(base)
    metadata = metadatas.get(bind_key)
    if metadata is None:
        default = metadatas[None]
        metadata = sa.MetaData(
            schema=default.schema, naming_convention=default.naming_convention, info={"bind_key": bind_key}
        )
        metadatas[bind_key] = metadata
    return metadata


def _declarative_base_of(cls: type) -> type | None:
    for klass in cls.__mro__:
        if "__ampulla_metadatas__" in klass.__dict__:
            return klass
    return None


def apply_bind_key(cls: type) -> None:
    """Put the table of ``cls`` in the ``MetaData`` of its ``__bind_key__`` (called before it is mapped)."""
    bind_key = getattr(cls, "__bind_key__", None)
    if "metadata" in cls.__dict__:
        return  # the model chose its MetaData itself
    base = _declarative_base_of(cls)
    if base is None:
        return
    metadata = metadata_for(base, bind_key)
    if getattr(cls, "metadata", None) is not metadata:
        type.__setattr__(cls, "metadata", metadata)


def _is_declarative_base(cls: type) -> bool:
    return DeclarativeBase in cls.__bases__ or sa_orm.DeclarativeBaseNoMeta in cls.__bases__


class Model(DeclarativeBase):
    """The declarative base for models, importable before the ``Database`` exists and understood by mypy.

    ``class User(Model)`` gets ``User.query`` (typed ``Query[User]``), a table name derived from the class name
    when ``__tablename__`` is omitted, and ``__bind_key__`` support. Use it with
    ``Database(app, model_class=Model)``; ``db.Model`` (without ``model_class``) is a fresh subclass per
    ``Database`` with the same features but its own tables.
    """

    #: The query class of ``Model.query`` (``None``: the Database's ``Query``).
    query_class: ClassVar[type[Query[Any]] | None] = None
    #: ``Model.query``: a legacy ``Query`` for the model on the current ``db.session``.
    query = _QueryProperty()

    @declared_attr.directive
    def __tablename__(cls) -> str | None:
        return auto_tablename(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if not _is_declarative_base(cls):
            apply_bind_key(cls)
        super().__init_subclass__(**kwargs)
        if _is_declarative_base(cls):
            _bind_metadatas(cls)

    def __repr__(self) -> str:
        state = sa.inspect(self)
        if state.transient:
            pk = f"(transient {id(self)})"
        elif state.pending:
            pk = f"(pending {id(self)})"
        else:
            pk = ", ".join(map(str, state.identity or ()))
        return f"<{type(self).__name__} {pk}>"


_bind_metadatas(Model)


def fresh_base(metadata: sa.MetaData | None = None, mixin: type | None = None) -> type[Model]:
    """A new declarative base with :class:`Model`'s features and its own registry (``db.Model``).

    Args:
        metadata: The ``MetaData`` to use (e.g. with a naming convention for migrations).
        mixin: A plain class whose methods every model should have (Flask-SQLAlchemy's ``model_class``).
    """
    bases: tuple[type, ...] = (Model, DeclarativeBase) if mixin is None else (mixin, Model, DeclarativeBase)
    namespace = {
        "registry": sa_orm.registry(metadata=metadata),
        "__module__": __name__,
        "__doc__": "The declarative base of one Database: ``class User(db.Model)``.",
    }
    return types.new_class("Model", bases, {}, lambda ns: ns.update(namespace))


def prepare_user_base(base: type) -> None:
    """Give a user's declarative base ``.query``, automatic table names and ``__bind_key__``, in place."""
    if "__ampulla_metadatas__" in base.__dict__:
        return
    if not isinstance(getattr(base, "registry", None), sa_orm.registry):
        raise TypeError(
            f"model_class={base.__name__} is not a declarative base: subclass sqlalchemy.orm.DeclarativeBase "
            "('class Base(DeclarativeBase): pass'), or pass a plain mixin class to get a base built on it."
        )
    if not hasattr(base, "query"):
        type.__setattr__(base, "query", _QueryProperty())
    if getattr(base, "__tablename__", None) is None and "__tablename__" not in base.__dict__:
        type.__setattr__(base, "__tablename__", declared_attr.directive(auto_tablename))
    _bind_metadatas(base)
    own = base.__dict__.get("__init_subclass__")
    owner: Any = base

    def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
        apply_bind_key(cls)
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(owner, cls).__init_subclass__(**kwargs)

    type.__setattr__(base, "__init_subclass__", classmethod(__init_subclass__))


def is_declarative(cls: type) -> bool:
    """Whether ``cls`` is a declarative base (has a ``registry``) rather than a plain mixin."""
    return isinstance(getattr(cls, "registry", None), sa_orm.registry)
