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


def _is_mapped_base(base: type) -> bool:
    """Whether ``base`` is a declarative class (a base or a model) rather than a plain mixin."""
    return (
        isinstance(base, sa_orm.DeclarativeMeta | sa_orm.decl_api.DeclarativeAttributeIntercept)
        or issubclass(base, sa_orm.DeclarativeBaseNoMeta)
    )


def should_set_tablename(cls: type) -> bool:
    """Whether a ``__tablename__`` is derived from the class name of the model ``cls``.

    Not for an abstract model, a declarative base itself, a model whose ``__tablename__`` is a
    ``declared_attr``, or one that names its table; a name inherited from a mixin does not count, one inherited
    from a mapped parent does (the subclass gets its own name, which :func:`table_for` drops again when the
    subclass declares no primary key: single-table inheritance).
    """
    if cls.__dict__.get("__abstract__", False) or not getattr(cls, "__ampulla_autonaming__", True):
        return False
    if not issubclass(cls, DeclarativeBase | sa_orm.DeclarativeBaseNoMeta) and not any(
        isinstance(b, sa_orm.DeclarativeMeta) for b in cls.__mro__[1:]
    ):
        return False
    if any(b is DeclarativeBase or b is sa_orm.DeclarativeBaseNoMeta for b in cls.__bases__):
        return False
    for base in cls.__mro__:
        if "__tablename__" not in base.__dict__:
            continue
        if isinstance(base.__dict__["__tablename__"], declared_attr):
            return False
        return not (base is cls or base.__dict__.get("__abstract__", False) or not _is_mapped_base(base))
    return True


def table_for(cls: Any, *args: Any, **kwargs: Any) -> sa.Table | None:
    """``__table_cls__`` of the bases: the model's table, or ``None`` for single-table inheritance.

    A table is made when one of that name exists already (a reflected table), when the model declares a
    primary key (joined inheritance), or when no parent has a table (SQLAlchemy then explains a missing key).
    """
    name = args[0]
    schema = kwargs.get("schema")
    key = name if schema is None else f"{schema}.{name}"
    if key in cls.metadata.tables:
        return sa.Table(*args, **kwargs)
    for arg in args:
        if (isinstance(arg, sa.Column) and arg.primary_key) or isinstance(arg, sa.PrimaryKeyConstraint):
            return sa.Table(*args, **kwargs)
    if not any("__table__" in base.__dict__ for base in cls.__mro__[1:-1]):
        return sa.Table(*args, **kwargs)
    if "__tablename__" in cls.__dict__:
        type.__delattr__(cls, "__tablename__")  # single-table inheritance: the parent's name shows through
    return None


def name_before_mapping(cls: type) -> None:
    """Set the derived ``__tablename__`` of ``cls`` when it gets one (see :func:`should_set_tablename`)."""
    if should_set_tablename(cls):
        type.__setattr__(cls, "__tablename__", camel_to_snake_case(cls.__name__))


def name_after_mapping(cls: type) -> None:
    """Drop the ``__table__ = None`` SQLAlchemy leaves on a single-table subclass: the parent's shows through."""
    if "__tablename__" not in cls.__dict__ and "__table__" in cls.__dict__ and cls.__dict__["__table__"] is None:
        type.__delattr__(cls, "__table__")


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
    if "metadata" in cls.__dict__ or "__table__" in cls.__dict__:
        return  # the model chose its MetaData (or table) itself
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if not _is_declarative_base(cls):
            apply_bind_key(cls)
            name_before_mapping(cls)
        super().__init_subclass__(**kwargs)
        if _is_declarative_base(cls):
            _bind_metadatas(cls)
        else:
            name_after_mapping(cls)

    @classmethod
    def __table_cls__(cls, *args: Any, **kwargs: Any) -> sa.Table | None:
        return table_for(cls, *args, **kwargs)

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
    if issubclass(base, DeclarativeBase) and issubclass(base, sa_orm.DeclarativeBaseNoMeta):
        raise ValueError(f"model_class={base.__name__} subclasses both DeclarativeBase and DeclarativeBaseNoMeta")
    if "query" not in base.__dict__:
        type.__setattr__(base, "query", _QueryProperty())
    if base.__repr__ is object.__repr__:
        type.__setattr__(base, "__repr__", Model.__repr__)
    _bind_metadatas(base)
    if isinstance(base, BindMetaMixin):
        return  # its metaclass (DefaultMeta) applies bind keys and table names
    naming = isinstance(base, NameMetaMixin) or issubclass(base, NameMixin)
    if "__table_cls__" not in base.__dict__ and not naming:
        type.__setattr__(base, "__table_cls__", classmethod(table_for))
    own = base.__dict__.get("__init_subclass__")
    owner: Any = base

    def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
        apply_bind_key(cls)
        if not naming:
            name_before_mapping(cls)
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(owner, cls).__init_subclass__(**kwargs)
        if not naming:
            name_after_mapping(cls)

    type.__setattr__(base, "__init_subclass__", classmethod(__init_subclass__))


class BindMetaMixin(type):
    """Metaclass mixin: a model's table goes to the ``MetaData`` of its ``__bind_key__``.

    A model that sets ``metadata`` or ``__table__`` itself keeps it.
    """

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        apply_bind_key(cls)
        super().__init__(name, bases, namespace, **kwargs)


class NameMetaMixin(type):
    """Metaclass mixin: a model without ``__tablename__`` gets its class name in snake case.

    A subclass of a mapped model that declares no primary key shares its parent's table (single-table
    inheritance); one that declares a primary key gets a table of its own (joined-table inheritance).
    """

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        name_before_mapping(cls)
        super().__init__(name, bases, namespace, **kwargs)
        name_after_mapping(cls)

    def __table_cls__(cls, *args: Any, **kwargs: Any) -> sa.Table | None:
        return table_for(cls, *args, **kwargs)


class DefaultMeta(BindMetaMixin, NameMetaMixin, sa_orm.DeclarativeMeta):
    """Metaclass of a legacy ``declarative_base()`` with ``__bind_key__`` and automatic ``__tablename__``."""


class DefaultMetaNoName(BindMetaMixin, sa_orm.DeclarativeMeta):
    """Metaclass of a legacy ``declarative_base()`` with ``__bind_key__`` (table names are not derived)."""


class BindMixin:
    """Mixin of a ``DeclarativeBase``: ``__bind_key__`` chooses the ``MetaData`` of a model's table."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        apply_bind_key(cls)
        super().__init_subclass__(**kwargs)


class NameMixin:
    """Mixin of a ``DeclarativeBase``: a model without ``__tablename__`` gets its class name in snake case."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        name_before_mapping(cls)
        super().__init_subclass__(**kwargs)
        name_after_mapping(cls)

    @classmethod
    def __table_cls__(cls, *args: Any, **kwargs: Any) -> sa.Table | None:
        return table_for(cls, *args, **kwargs)


def is_declarative(cls: type) -> bool:
    """Whether ``cls`` is a declarative base (has a ``registry``) rather than a plain mixin."""
    return isinstance(getattr(cls, "registry", None), sa_orm.registry)
