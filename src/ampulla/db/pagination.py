"""Pagination: numbered pages (``?page=&per_page=``) with a total, and keyset pages (``?after=``) without COUNT.

Values read from the query string never cause a 500: a value that is not a positive integer, a page past the
end or a cursor that does not decode is answered with 404 (or replaced by the default when ``error_out`` is
false), and ``per_page`` is clamped to ``max_per_page``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from ..ctx import RequestContext, current_context
from ..exceptions import NotFound

T = TypeVar("T")

DEFAULT_PER_PAGE = 20
DEFAULT_MAX_PER_PAGE = 100
#: Offsets beyond this cannot hold rows in practice and overflow some drivers: treated as past the end.
MAX_OFFSET = 2**53


def _request_args() -> Mapping[str, str] | None:
    ctx = current_context()
    if isinstance(ctx, RequestContext):
        return ctx.request.args
    return None


def _not_found(what: str) -> NotFound:
    return NotFound(f"{what} does not exist or is not valid.")


def _int_arg(args: Mapping[str, str] | None, name: str, default: int, error_out: bool) -> int:
    if args is None:
        return default
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        if error_out:
            raise _not_found(f"The {name!r} value {raw[:50]!r}") from None
        return default


def _past_end(page: int, offset: int, total: int | None) -> bool:
    if offset > MAX_OFFSET:
        return True
    return total is not None and page > 1 and offset >= total


def configured_max_per_page() -> int | None:
    """``SQLALCHEMY_MAX_PER_PAGE`` of the current app (100 without one; ``None``: no limit)."""
    ctx = current_context()
    if ctx is None:
        return DEFAULT_MAX_PER_PAGE
    value = ctx.app.config.get("SQLALCHEMY_MAX_PER_PAGE", DEFAULT_MAX_PER_PAGE)
    return None if value is None else int(value)


def resolve_page_args(
    page: int | None,
    per_page: int | None,
    max_per_page: int | None,
    error_out: bool,
    default_max_per_page: int | None = DEFAULT_MAX_PER_PAGE,
) -> tuple[int, int, int | None]:
    """The page number, page size and size limit to use, from arguments or the request's query string.

    Args:
        page: The page (1-based); ``None`` reads ``?page=`` (default 1).
        per_page: Items per page; ``None`` reads ``?per_page=`` (default 20).
        max_per_page: Upper bound of ``per_page``; ``None`` uses ``default_max_per_page``.
        error_out: Raise 404 for a value that is not a positive integer instead of using the default.
        default_max_per_page: The bound when ``max_per_page`` is ``None`` (``SQLALCHEMY_MAX_PER_PAGE``).

    Raises:
        NotFound: A bad value, when ``error_out`` is true.
    """
    args = _request_args() if page is None or per_page is None else None
    if page is None:
        page = _int_arg(args, "page", 1, error_out)
    if per_page is None:
        per_page = _int_arg(args, "per_page", DEFAULT_PER_PAGE, error_out)
    if max_per_page is None:
        max_per_page = default_max_per_page
    if page < 1:
        if error_out:
            raise _not_found(f"Page {page}")
        page = 1
    if per_page < 1:
        if error_out:
            raise _not_found(f"A page of {per_page} items")
        per_page = DEFAULT_PER_PAGE
    if max_per_page is not None:
        per_page = max(1, min(per_page, max_per_page))
    return page, per_page, max_per_page


class _Unset:
    """The default of ``max_per_page``: ``SQLALCHEMY_MAX_PER_PAGE`` of the current app (100)."""

    def __repr__(self) -> str:
        return "<configured max_per_page>"


_UNSET: Any = _Unset()


class Pagination(Generic[T]):
    """One page of results: ``items`` plus what a page navigation needs.

    ``db.paginate`` and ``Query.paginate`` return one (a :class:`SelectPagination` or :class:`QueryPagination`).
    A subclass that implements :meth:`_query_items` and :meth:`_query_count` paginates anything: the keyword
    arguments other than the page values are kept in ``_query_args`` for them. A page already fetched is built
    with ``items=`` (and ``total=``): then nothing is queried.

    Args:
        page: The page number (1-based); ``None`` reads ``?page=`` in a request (default 1).
        per_page: Items per page; ``None`` reads ``?per_page=`` in a request (default 20).
        max_per_page: The largest ``per_page`` accepted; by default ``SQLALCHEMY_MAX_PER_PAGE`` (100).
        error_out: Answer 404 for a value that is not a positive integer or an empty page past the first
            (else: the defaults, and an empty page).
        count: Count the total (``_query_count``); off, :attr:`total` is ``None``.
        items: The items of a page already fetched (nothing is queried).
        more: For a page already fetched without a total: whether a next page exists.
        fetch: For a page already fetched: how to query another page (``fetch(page, error_out)``).
        kwargs: What the subclass queries with (``select`` and ``session``, ``query``...); ``total`` with
            ``items``.

    Attributes:
        page: The current page number (1-based).
        per_page: The maximum number of items on a page.
        max_per_page: The bound ``per_page`` was clamped to (``None`` for none).
        items: The items on this page.
        total: The number of items on all pages (``None`` when counting was turned off).

    Raises:
        NotFound: A bad page value or an empty page past the first, when ``error_out`` is true.
    """

    def __init__(
        self,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int | None = _UNSET,
        error_out: bool = True,
        count: bool = True,
        *,
        items: list[T] | None = None,
        more: bool | None = None,
        fetch: Callable[[int, bool], Pagination[T]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._more = more
        self._fetch = fetch
        if items is not None:
            if page is None or per_page is None:
                raise TypeError("a Pagination built from items= needs page= and per_page=")
            self._query_args: dict[str, Any] = {}
            self.page = page
            self.per_page = per_page
            self.max_per_page = None if max_per_page is _UNSET else max_per_page
            self.items = items
            self.total: int | None = kwargs.pop("total", None)
            if kwargs:
                raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
            return
        self._query_args = kwargs
        if max_per_page is _UNSET:
            max_per_page = configured_max_per_page()
        self.page, self.per_page, self.max_per_page = resolve_page_args(
            page, per_page, max_per_page, error_out, max_per_page
        )
        self._error_out = error_out
        self._count = count
        total = self._query_count() if count else None
        self.total = total
        if _past_end(self.page, self._query_offset, total):
            if error_out:
                raise _not_found(f"Page {self.page}")
            self.items = []
            self._more = False
            return
        self.items = self._query_items()
        if not self.items and self.page != 1 and error_out:
            raise _not_found(f"Page {self.page}")

    @property
    def _query_offset(self) -> int:
        """The index of the first item of the page (the query's ``OFFSET``)."""
        return (self.page - 1) * self.per_page

    def _query_items(self) -> list[T]:
        """Query the items of the page (a subclass implements it with ``_query_args``)."""
        raise NotImplementedError

    def _query_count(self) -> int:
        """Query the number of items on all pages (a subclass implements it with ``_query_args``)."""
        raise NotImplementedError

    @property
    def first(self) -> int:
        """The 1-based number of the first item on the page (0 when the page is empty)."""
        if not self.items:
            return 0
        return (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        """The 1-based number of the last item on the page (0 when the page is empty)."""
        if not self.items:
            return 0
        return self.first + len(self.items) - 1

    @property
    def pages(self) -> int:
        """The number of pages (0 when there are no items or the total was not counted)."""
        if not self.total:
            return 0
        return math.ceil(self.total / self.per_page)

    @property
    def has_prev(self) -> bool:
        """Whether there is a page before this one."""
        return self.page > 1

    @property
    def prev_num(self) -> int | None:
        """The previous page number, or ``None``."""
        return self.page - 1 if self.has_prev else None

    @property
    def has_next(self) -> bool:
        """Whether there is a page after this one (known without a total too)."""
        if self.total is None and self._more is not None:
            return self._more
        return self.page < self.pages

    @property
    def next_num(self) -> int | None:
        """The next page number, or ``None``."""
        return self.page + 1 if self.has_next else None

    def prev(self, *, error_out: bool = False) -> Pagination[T]:
        """Query the previous page (its ``total`` is this page's, not counted again).

        Raises:
            NotFound: The page is empty and ``error_out`` is true.
            RuntimeError: The page was built from items without a way to query (e.g. by ``async_paginate``).
        """
        return self._go(self.page - 1, error_out)

    def next(self, *, error_out: bool = False) -> Pagination[T]:
        """Query the next page (its ``total`` is this page's, not counted again).

        Raises:
            NotFound: The page is empty and ``error_out`` is true.
            RuntimeError: The page was built from items without a way to query (e.g. by ``async_paginate``).
        """
        return self._go(self.page + 1, error_out)

    def _go(self, page: int, error_out: bool) -> Pagination[T]:
        if self._fetch is not None:
            return self._fetch(page, error_out)
        if not self._query_args:
            raise RuntimeError("this page cannot query its neighbours; call the paginate function with page=")
        other = type(self)(
            page=page,
            per_page=self.per_page,
            max_per_page=self.max_per_page,
            error_out=error_out,
            count=False,
            **self._query_args,
        )
        other.total = self.total
        return other

    def iter_pages(
        self, *, left_edge: int = 2, left_current: int = 2, right_current: int = 4, right_edge: int = 2
    ) -> Iterator[int | None]:
        """Page numbers for a navigation bar, ``None`` where numbers are skipped.

        With 20 pages and page 10 current: ``1, 2, None, 8, 9, 10, 11, 12, 13, 14, None, 19, 20``.

        Args:
            left_edge: Pages shown at the start.
            left_current: Pages shown before the current one.
            right_current: Pages shown after the current one.
            right_edge: Pages shown at the end.
        """
        pages = self.pages
        shown = [
            n
            for n in range(1, pages + 1)
            if n <= left_edge
            or self.page - left_current <= n <= self.page + right_current
            or n > pages - right_edge
        ]
        previous = 0
        for n in shown:
            if n != previous + 1:
                yield None
            yield n
            previous = n

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"<Pagination page={self.page} per_page={self.per_page} total={self.total} items={len(self.items)}>"


class _FetchedPagination(Pagination[T]):
    """Items fetched with one row more than the page when there is no total, to know whether a next page exists."""

    def _fetch_extra(self) -> int:
        return 0 if self._count else 1

    def _trim(self, items: list[T]) -> list[T]:
        if not self._count:
            self._more = len(items) > self.per_page
            del items[self.per_page :]
        return items


class SelectPagination(_FetchedPagination[T]):
    """The page :meth:`~ampulla.db.Database.paginate` returns: built with ``select=`` and ``session=``.

    One entity or column selected gives those values as items; several give rows.
    """

    def _query_items(self) -> list[T]:
        statement = self._query_args["select"]
        statement = page_statement(statement, self.page, self.per_page, self._fetch_extra())
        return self._trim(result_items(self._query_args["session"].execute(statement), self._query_args["select"]))

    def _query_count(self) -> int:
        return int(self._query_args["session"].execute(count_statement(self._query_args["select"])).scalar() or 0)


class QueryPagination(_FetchedPagination[T]):
    """The page :meth:`ampulla.db.Query.paginate` returns: built with ``query=`` (a legacy ``Query``)."""

    def _query_items(self) -> list[T]:
        query = self._query_args["query"]
        items: list[T] = query.limit(self.per_page + self._fetch_extra()).offset(self._query_offset).all()
        return self._trim(items)

    def _query_count(self) -> int:
        return int(self._query_args["query"].order_by(None).count())


# ---------------------------------------------------------------------------------------------- statements
def count_statement(statement: sa.Select[Any]) -> sa.Select[int]:
    """``SELECT count(*)`` over ``statement`` without its ORDER BY."""
    return sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())


def page_statement(statement: sa.Select[Any], page: int, per_page: int, extra: int) -> sa.Select[Any]:
    """``statement`` limited to one page (plus ``extra`` rows to detect a next page)."""
    return statement.limit(per_page + extra).offset((page - 1) * per_page)


def is_single_entity(statement: sa.Select[Any]) -> bool:
    """Whether ``statement`` selects one ORM entity (so results are model instances, not rows)."""
    descriptions = statement.column_descriptions
    return len(descriptions) == 1 and descriptions[0].get("entity") is not None and isinstance(
        descriptions[0].get("expr"), type
    )


def result_items(result: sa.Result[Any], statement: sa.Select[Any]) -> list[Any]:
    """The fetched rows of ``statement`` as page items: model instances, single values, or rows."""
    if is_single_entity(statement):
        return list(result.scalars().unique())
    if len(statement.selected_columns) == 1:
        return list(result.scalars())
    return list(result)


# ---------------------------------------------------------------------------------------------- keyset pages
class KeysetPage(Generic[T]):
    """A page of a keyset ("seek") pagination: no COUNT and no OFFSET, so page 10,000 costs what page 1 does.

    Attributes:
        items: The items on this page.
        per_page: The maximum number of items on a page.
        cursor: The cursor this page starts after (``None`` for the first page).
        next_cursor: The cursor of the next page (pass it as ``?after=``), ``None`` on the last page.
    """

    def __init__(self, *, items: list[T], per_page: int, cursor: str | None, next_cursor: str | None) -> None:
        self.items = items
        self.per_page = per_page
        self.cursor = cursor
        self.next_cursor = next_cursor

    @property
    def has_next(self) -> bool:
        """Whether another page follows."""
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"<KeysetPage items={len(self.items)} next_cursor={self.next_cursor!r}>"


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    return str(value)  # Decimal, UUID, enums' values...


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque, URL-safe cursor for the key values of the last item of a page."""
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_value(value: Any, python_type: type | None) -> Any:
    if python_type is None or value is None:
        return value
    if python_type is bool:
        if not isinstance(value, bool):
            raise ValueError("not a boolean")
        return value
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise ValueError("not a 64-bit integer")
        return value
    if python_type is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("not a number")
        return float(value)
    if python_type is str:
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value
    if not isinstance(value, str):
        raise ValueError("not a string")
    if python_type is _dt.datetime:
        return _dt.datetime.fromisoformat(value)
    if python_type is _dt.date:
        return _dt.date.fromisoformat(value)
    if python_type is _dt.time:
        return _dt.time.fromisoformat(value)
    if python_type is decimal.Decimal:
        result = decimal.Decimal(value)
        if not result.is_finite():
            raise ValueError("not a finite number")
        return result
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    return value


def decode_cursor(cursor: str, python_types: Sequence[type | None]) -> tuple[Any, ...]:
    """The key values in ``cursor``, converted to the key columns' Python types.

    Raises:
        ValueError: The cursor is malformed or does not match the key.
    """
    if len(cursor) > 4096:
        raise ValueError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"malformed cursor: {e}") from None
    if not isinstance(values, list) or len(values) != len(python_types):
        raise ValueError("cursor does not match the key")
    try:
        return tuple(_decode_value(v, t) for v, t in zip(values, python_types, strict=True))
    except (ValueError, TypeError, ArithmeticError) as e:
        raise ValueError(f"cursor value does not fit the key: {e}") from None


def resolve_cursor(
    after: str | None, python_types: Sequence[type | None], error_out: bool
) -> tuple[str | None, tuple[Any, ...] | None]:
    """The cursor (argument or ``?after=``) and its decoded key values.

    Raises:
        NotFound: The cursor does not decode, when ``error_out`` is true.
    """
    if after is None:
        args = _request_args()
        after = args.get("after") if args is not None else None
    if not after:
        return None, None
    try:
        return after, decode_cursor(after, python_types)
    except ValueError:
        if error_out:
            raise _not_found("The page cursor") from None
        return None, None
