"""The legacy ``Query`` with 404 helpers and pagination, and the statement helpers behind ``db.paginate``.

Identifiers and page values typically come from URLs; they are checked before they reach the database, so an
id that cannot exist (``"abc"`` for an integer key, ``2**70``) is a 404, never a driver error and a 500.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.exc import MultipleResultsFound, NoResultFound

from ..exceptions import NotFound
from .pagination import (
    _UNSET,
    KeysetPage,
    Pagination,
    QueryPagination,
    _past_end,
    configured_max_per_page,
    encode_cursor,
    is_single_entity,
    page_statement,
    resolve_cursor,
    resolve_page_args,
)

_T = TypeVar("_T")

#: A sentinel for "this identifier cannot match a row".
NO_MATCH: Any = object()

_INT_BITS: tuple[tuple[type[sa.types.TypeEngine[Any]], int], ...] = (
    (sa.SmallInteger, 16),
    (sa.BigInteger, 64),
    (sa.Integer, 32),
)


def int_bound(type_: sa.types.TypeEngine[Any], dialect_name: str | None) -> int:
    """The exclusive bound of values of an integer column type on a database (SQLite: 64-bit always)."""
    if dialect_name == "sqlite":
        return 2**63  # SQLite stores every INTEGER in 64 bits
    for cls, bits in _INT_BITS:
        if isinstance(type_, cls):
            return 1 << (bits - 1)
    return 1 << 63


def _coerce_value(type_: sa.types.TypeEngine[Any], value: Any, dialect_name: str | None) -> Any:
    if isinstance(type_, sa.Integer) and not isinstance(value, bool):
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                return NO_MATCH
        if isinstance(value, int):
            bound = int_bound(type_, dialect_name)
            return value if -bound <= value < bound else NO_MATCH
        return value
    if isinstance(type_, sa.Uuid) and isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return NO_MATCH
        return parsed if type_.as_uuid else value
    return value


def coerce_ident(mapper: sa_orm.Mapper[Any], ident: Any, dialect_name: str | None) -> Any:
    """``ident`` converted to the primary key's types, or :data:`NO_MATCH` when no row can have it.

    Args:
        mapper: The model's mapper.
        ident: A primary key value, a tuple for composite keys, or a dict of attribute names.
        dialect_name: The database's dialect (integer ranges differ).
    """
    columns = mapper.primary_key
    if isinstance(ident, Mapping):
        return ident
    values: Sequence[Any] = ident if isinstance(ident, tuple | list) else (ident,)
    if len(values) != len(columns):
        return ident  # let SQLAlchemy explain the mismatch
    coerced = [_coerce_value(col.type, v, dialect_name) for col, v in zip(columns, values, strict=True)]
    if any(v is NO_MATCH for v in coerced):
        return NO_MATCH
    return coerced[0] if len(coerced) == 1 and not isinstance(ident, tuple | list) else tuple(coerced)


def _dialect_name(session: sa_orm.Session, mapper: sa_orm.Mapper[Any]) -> str | None:
    try:
        return session.get_bind(mapper).dialect.name
    except Exception:
        return None


def checked_ident(session: sa_orm.Session, entity: Any, ident: Any) -> Any:
    """``ident`` converted for ``entity``'s primary key on the session's database, or :data:`NO_MATCH`."""
    mapper = sa.inspect(entity)
    return coerce_ident(mapper, ident, _dialect_name(session, mapper))


def int_key_bound(session: sa_orm.Session, entity: Any) -> int:
    """The exclusive bound of ``entity``'s single integer primary key on the session's database (0: none)."""
    mapper = sa.inspect(entity)
    columns = mapper.primary_key
    if len(columns) != 1 or not isinstance(columns[0].type, sa.Integer):
        return 0
    return int_bound(columns[0].type, session.get_bind(mapper).dialect.name)


def not_found(description: str | None) -> NotFound:
    """The 404 raised by the ``*_or_404`` helpers."""
    return NotFound(description)


def found_or_404(value: _T | None, description: str | None) -> _T:
    """``value``, or the 404 of the ``*_or_404`` helpers when it is ``None`` (no row).

    Raises:
        NotFound: ``value`` is ``None``.
    """
    if value is None:
        raise not_found(description)
    return value


#: What ``scalar_one()`` raises for no row or several: a 404 for the ``one_or_404`` helpers.
NOT_ONE_ROW = (NoResultFound, MultipleResultsFound)


class Query(sa_orm.Query[_T]):
    """SQLAlchemy's legacy ``Query`` (``Model.query``, ``db.session.query(Model)``) with Flask-SQLAlchemy's helpers."""

    def get(self, ident: Any) -> _T | None:
        """The row with primary key ``ident``, or ``None`` (``session.get`` with this query's options).

        Kept without SQLAlchemy's legacy warning: ``Model.query.get(id)`` is everywhere in Flask code.
        """
        if (
            not self._with_options
            and self._for_update_arg is None
            and not self.load_options._populate_existing
            and not self._execution_options
        ):
            mapper = self._only_full_mapper_zero("get")
            return self.session.get(mapper.class_, ident)  # the session's fast path
        return self._get_impl(ident, sa_orm.loading._load_on_pk_identity)

    def get_or_404(self, ident: Any, description: str | None = None) -> _T:
        """The row with primary key ``ident``, or a 404.

        Raises:
            NotFound: No such row (or ``ident`` cannot be a key, like ``"abc"`` for an integer key).
        """
        mapper = self._only_full_mapper_zero("get")
        ident = coerce_ident(mapper, ident, _dialect_name(self.session, mapper))
        if ident is NO_MATCH:
            raise not_found(description)
        rv = self.get(ident)
        if rv is None:
            raise not_found(description)
        return rv

    def first_or_404(self, description: str | None = None) -> _T:
        """The first result, or a 404.

        Raises:
            NotFound: No result.
        """
        rv = self.first()
        if rv is None:
            raise not_found(description)
        return rv

    def one_or_404(self, description: str | None = None) -> _T:
        """The only result, or a 404 when there is none or more than one.

        Raises:
            NotFound: No result, or several.
        """
        try:
            return self.one()
        except (NoResultFound, MultipleResultsFound):
            raise not_found(description) from None

    def paginate(
        self,
        *,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int | None = None,
        error_out: bool = True,
        count: bool = True,
    ) -> Pagination[_T]:
        """One page of this query's results; see :meth:`ampulla.db.Database.paginate`.

        Raises:
            NotFound: A bad page value or a page past the end, when ``error_out`` is true.
        """
        return QueryPagination(
            page=page,
            per_page=per_page,
            max_per_page=_UNSET if max_per_page is None else max_per_page,
            error_out=error_out,
            count=count,
            query=self,
        )


class PagePlan:
    """The numbers of one numbered page, resolved once and shared by the sync and async helpers."""

    __slots__ = ("count", "error_out", "max_per_page", "offset", "page", "per_page")

    def __init__(
        self, page: int | None, per_page: int | None, max_per_page: int | None, error_out: bool, count: bool
    ) -> None:
        self.page, self.per_page, self.max_per_page = resolve_page_args(
            page, per_page, max_per_page, error_out, configured_max_per_page()
        )
        self.error_out = error_out
        self.count = count
        self.offset = (self.page - 1) * self.per_page

    def check_total(self, total: int | None) -> bool:
        """Whether items must be fetched (``False``: the page is past the end and ``error_out`` is off).

        Raises:
            NotFound: The page is past the end and ``error_out`` is on.
        """
        if _past_end(self.page, self.offset, total):
            if self.error_out:
                raise not_found(f"Page {self.page}")
            return False
        return True

    def statement(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        """The page's SELECT."""
        return page_statement(statement, self.page, self.per_page, 0 if self.count else 1)

    def build(self, items: list[Any], total: int | None, fetch: Any = None) -> Pagination[Any]:
        """The :class:`Pagination` for the fetched rows.

        Raises:
            NotFound: An empty page other than the first, when ``error_out`` is on.
        """
        more = None
        if not self.count:
            more = len(items) > self.per_page
            del items[self.per_page :]
        if not items and self.page != 1 and self.error_out:
            raise not_found(f"Page {self.page}")
        return Pagination(page=self.page, per_page=self.per_page, max_per_page=self.max_per_page, items=items,
                          total=total, more=more, fetch=fetch)

    def empty(self, total: int | None) -> Pagination[Any]:
        """An empty page (past the end, ``error_out`` off)."""
        return Pagination(page=self.page, per_page=self.per_page, max_per_page=self.max_per_page, items=[],
                          total=total, more=False)


# ---------------------------------------------------------------------------------------------- keyset
def _python_type(expr: Any) -> type | None:
    try:
        python_type: type = expr.type.python_type
    except (AttributeError, NotImplementedError):
        return None
    if python_type in (int, float, str, bool, _dt.datetime, _dt.date, _dt.time, decimal.Decimal, uuid.UUID):
        return python_type
    return None


class KeysetPlan:
    """The key, direction and cursor of one keyset page, shared by the sync and async helpers."""

    __slots__ = ("after", "columns", "cursor", "descending", "per_page", "single_entity", "statement")

    def __init__(
        self,
        statement: sa.Select[Any],
        key: Any,
        *,
        per_page: int | None,
        max_per_page: int | None,
        after: str | None,
        descending: bool,
        error_out: bool,
    ) -> None:
        columns = tuple(key) if isinstance(key, tuple | list) else (key,)
        if not columns:
            raise ValueError("keyset pagination needs at least one key column, e.g. key=User.id")
        self.columns = columns
        self.descending = descending
        _, self.per_page, _ = resolve_page_args(1, per_page, max_per_page, error_out, configured_max_per_page())
        self.cursor, self.after = resolve_cursor(after, [_python_type(c) for c in columns], error_out)
        self.single_entity = is_single_entity(statement)
        order = [c.desc() if descending else c.asc() for c in columns]
        stmt = statement.order_by(None).order_by(*order)
        if self.after is not None:
            key_expr = sa.tuple_(*columns) if len(columns) > 1 else columns[0]
            value_expr = sa.tuple_(*(sa.literal(v, c.type) for v, c in zip(self.after, columns, strict=True))) \
                if len(columns) > 1 else sa.literal(self.after[0], columns[0].type)
            stmt = stmt.where(key_expr < value_expr if descending else key_expr > value_expr)
        self.statement = stmt.limit(self.per_page + 1)

    def _key_values(self, item: Any) -> list[Any]:
        if self.single_entity:
            return [getattr(item, _attribute_name(c)) for c in self.columns]
        mapping = item._mapping
        return [mapping[c] for c in self.columns]

    def build(self, items: list[Any]) -> KeysetPage[Any]:
        """The :class:`KeysetPage` for up to ``per_page + 1`` fetched items."""
        next_cursor = None
        if len(items) > self.per_page:
            del items[self.per_page :]
            next_cursor = encode_cursor(self._key_values(items[-1]))
        return KeysetPage(items=items, per_page=self.per_page, cursor=self.cursor, next_cursor=next_cursor)


def _attribute_name(column: Any) -> str:
    key = getattr(column, "key", None)
    if not isinstance(key, str):
        raise TypeError(f"keyset key {column!r} must be a model attribute such as User.id")
    return key
