"""Pagination: numbered pages from ``?page=&per_page=`` (bad values never a 500) and keyset pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, String, select

from ampulla import Ampulla
from ampulla.db import Database, KeysetPage, Pagination
from ampulla.db.pagination import decode_cursor, encode_cursor
from ampulla.exceptions import NotFound

AppFactory = Any
Tables = Any


def items_app(make_app: AppFactory, create_tables: Tables, rows: int = 45) -> tuple[Ampulla, Database, Any]:
    app, db = make_app()

    class Item(db.Model):
        id = Column(Integer, primary_key=True)
        name = Column(String(20))
        created = Column(DateTime)

    @app.get("/items")
    def items() -> Any:
        page = db.paginate(select(Item).order_by(Item.id))
        return {"ids": [i.id for i in page.items], "page": page.page, "per_page": page.per_page,
                "total": page.total, "pages": page.pages, "next": page.next_num, "prev": page.prev_num}

    @app.get("/legacy")
    def legacy() -> Any:
        page = Item.query.order_by(Item.id).paginate(max_per_page=10)
        return {"ids": [i.id for i in page], "total": page.total}

    @app.get("/lenient")
    def lenient() -> Any:
        page = db.paginate(select(Item.name).order_by(Item.id), error_out=False, count=False)
        return {"names": page.items, "page": page.page, "per_page": page.per_page, "has_next": page.has_next}

    @app.get("/keyset")
    def keyset() -> Any:
        page = db.keyset_paginate(select(Item), key=(Item.created, Item.id), descending=True)
        return {"ids": [i.id for i in page], "next": page.next_cursor}

    create_tables(app, db)
    start = dt.datetime(2024, 1, 1, 12, 0, 0)
    with app.app_context():
        db.session.add_all(
            Item(id=i, name=f"item{i}", created=start + dt.timedelta(minutes=i // 2)) for i in range(1, rows + 1)
        )
        db.session.commit()
    return app, db, Item


def test_page_values_from_the_query_string(make_app: AppFactory, create_tables: Tables) -> None:
    app, _, _ = items_app(make_app, create_tables)
    client = app.test_client()
    first = client.get("/items").json
    assert first == {"ids": list(range(1, 21)), "page": 1, "per_page": 20, "total": 45, "pages": 3, "next": 2,
                     "prev": None}
    assert client.get("/items?page=3").json["ids"] == list(range(41, 46))
    assert client.get("/items?page=2&per_page=7").json["ids"] == list(range(8, 15))
    assert client.get("/items?per_page=1000000000").json["per_page"] == 100  # clamped, not a huge fetch
    assert client.get("/legacy?per_page=500").json["ids"] == list(range(1, 11))
    assert client.get("/legacy").json["total"] == 45


BAD_PAGE_QUERIES = [
    "page=abc", "page=-1", "page=0", "page=4", "page=1.5", "page=99999999999999999999999", f"page={'9' * 5000}",
    "per_page=0", "per_page=-5", "per_page=x", "page=3&per_page=50", "page=%00", "page=1e3",
]


def test_bad_page_values_are_404_never_500(make_app: AppFactory, create_tables: Tables) -> None:
    app, _, _ = items_app(make_app, create_tables, rows=45)
    client = app.test_client()
    for query in BAD_PAGE_QUERIES:
        assert (query, client.get(f"/items?{query}").status_code) == (query, 404)


def test_lenient_pages_use_defaults(make_app: AppFactory, create_tables: Tables) -> None:
    app, _, _ = items_app(make_app, create_tables, rows=45)
    client = app.test_client()
    assert client.get("/lenient?page=abc&per_page=-3").json == {
        "names": [f"item{i}" for i in range(1, 21)], "page": 1, "per_page": 20, "has_next": True
    }
    assert client.get("/lenient?page=3").json["has_next"] is False  # known without COUNT
    assert client.get("/lenient?page=50").json == {"names": [], "page": 50, "per_page": 20, "has_next": False}
    assert client.get(f"/lenient?page={10**30}").json["names"] == []


def test_empty_table_first_page(make_app: AppFactory, create_tables: Tables) -> None:
    app, _, _ = items_app(make_app, create_tables, rows=0)
    client = app.test_client()
    assert client.get("/items").json["ids"] == []
    assert client.get("/items").json["pages"] == 0
    assert client.get("/items?page=2").status_code == 404


def test_pagination_object(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Item = items_app(make_app, create_tables, rows=45)
    with app.app_context():
        page = db.paginate(select(Item).order_by(Item.id), page=2, per_page=10)
        assert isinstance(page, Pagination)
        assert (page.first, page.last, page.pages, page.has_prev, page.has_next) == (11, 20, 5, True, True)
        assert [i.id for i in page.next().items] == list(range(21, 31))
        assert page.prev().page == 1
        assert page.next().next().next().next(error_out=False).items == []
        with pytest.raises(NotFound):
            page.next().next().next().next(error_out=True)
        rows = db.paginate(select(Item.id, Item.name).order_by(Item.id), page=1, per_page=2)
        assert [tuple(r) for r in rows.items] == [(1, "item1"), (2, "item2")]


@pytest.mark.parametrize(
    ("pages", "current", "expected"),
    [
        (0, 1, []),
        (1, 1, [1]),
        (5, 3, [1, 2, 3, 4, 5]),
        (20, 10, [1, 2, None, 8, 9, 10, 11, 12, 13, 14, None, 19, 20]),
        (20, 1, [1, 2, 3, 4, 5, None, 19, 20]),
        (20, 20, [1, 2, None, 18, 19, 20]),
    ],
)
def test_iter_pages(pages: int, current: int, expected: list[int | None]) -> None:
    page: Pagination[int] = Pagination(page=current, per_page=10, max_per_page=None, items=[1], total=pages * 10)
    assert list(page.iter_pages()) == expected


def test_keyset_pages_walk_the_table_without_offsets(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Item = items_app(make_app, create_tables, rows=45)
    client = app.test_client()
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = client.get("/keyset?per_page=10" + (f"&after={cursor}" if cursor else "")).json
        seen += page["ids"]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(range(45, 0, -1))  # created desc, id desc: ties on created broken by id
    with app.app_context():
        page = db.keyset_paginate(select(Item), key=Item.id, per_page=3, after=None)
        assert isinstance(page, KeysetPage) and [i.id for i in page] == [1, 2, 3] and page.has_next
        rows = db.keyset_paginate(select(Item.id, Item.name), key=Item.id, per_page=2, after=page.next_cursor)
        assert [tuple(r) for r in rows.items] == [(4, "item4"), (5, "item5")]


BAD_CURSORS = [
    "garbage", "%%%", encode_cursor([1]), encode_cursor(["x", 1]), encode_cursor(["2024-13-99T00:00", 1]),
    encode_cursor(["2024-01-01T00:00:00", 2**70]), encode_cursor(["2024-01-01T00:00:00", "1"]), "A" * 5000,
]


def test_bad_cursors_are_404(make_app: AppFactory, create_tables: Tables) -> None:
    app, _, _ = items_app(make_app, create_tables, rows=5)
    client = app.test_client()
    for cursor in BAD_CURSORS:
        assert client.get("/keyset", query_string={"after": cursor}).status_code == 404, cursor


def test_cursor_round_trip() -> None:
    import decimal
    import uuid

    values = [dt.datetime(2024, 5, 1, 8, 30), 7, "x", decimal.Decimal("1.50"), uuid.UUID(int=5), dt.date(2024, 1, 2)]
    types = [dt.datetime, int, str, decimal.Decimal, uuid.UUID, dt.date]
    assert list(decode_cursor(encode_cursor(values), types)) == values
    with pytest.raises(ValueError):
        decode_cursor(encode_cursor([True]), [int])
