"""The asyncio side: ``db.async_session`` and the ``async_*`` helpers on aiosqlite, asyncpg and asyncmy,
sharing the models and config of the sync side, over WSGI and ASGI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, String, func, select
from sqlalchemy.exc import IntegrityError

from ampulla import Ampulla, request
from ampulla.app import run_coroutine_sync
from ampulla.db import AsyncSession, Database

AppFactory = Any
Tables = Any


def book_app(make_app: AppFactory, create_tables: Tables) -> tuple[Ampulla, Database, Any]:
    app, db = make_app()

    class Book(db.Model):
        id = Column(Integer, primary_key=True)
        title = Column(String(100), unique=True, nullable=False)

    @app.errorhandler(IntegrityError)
    async def conflict(e: IntegrityError) -> Any:
        # The failed commit was rolled back: the session is usable here.
        count = (await db.async_session.execute(select(func.count()).select_from(Book))).scalar_one()
        return {"error": "exists", "books": count}, 409

    @app.post("/books")
    async def create() -> Any:
        session = db.async_session
        assert isinstance(session, AsyncSession)
        for title in request.form.getlist("title"):
            session.add(Book(title=title))
        await session.commit()
        return {"ok": True}, 201

    @app.get("/books/<id>")
    async def show(id: str) -> Any:
        book = await db.async_get_or_404(Book, id)
        return {"id": book.id, "title": book.title}

    @app.get("/books/title/<title>")
    async def by_title(title: str) -> Any:
        book = await db.async_first_or_404(select(Book).where(Book.title == title))
        only = await db.async_one_or_404(select(Book.id).where(Book.title == title))
        return {"id": book.id, "only": only}

    @app.get("/books")
    async def index() -> Any:
        page = await db.async_paginate(select(Book).order_by(Book.id), max_per_page=5)
        return {"titles": [b.title for b in page], "total": page.total, "next": page.next_num}

    @app.get("/books/after")
    async def keyset() -> Any:
        page = await db.async_keyset_paginate(select(Book), key=Book.id, per_page=2)
        return {"titles": [b.title for b in page], "next": page.next_cursor}

    @app.get("/books/mixed")
    def mixed() -> Any:  # a sync view of the same app sees the same data through db.session
        return {"count": db.session.query(Book).count()}

    create_tables(app, db)
    return app, db, Book


def test_async_session_crud_and_helpers(make_app: AppFactory, create_tables: Tables, protocol: str) -> None:
    app, db, _Book = book_app(make_app, create_tables)
    client = app.test_client(protocol=protocol)
    assert client.post("/books", data={"title": ["Dune", "Emma", "Ubik"]}).status_code == 201
    assert client.get("/books/1").json == {"id": 1, "title": "Dune"}
    for missing in ("999", "abc", str(2**70), "-1"):
        assert client.get(f"/books/{missing}").status_code == 404
    assert client.get("/books/title/Emma").json == {"id": 2, "only": 2}
    assert client.get("/books/title/Nope").status_code == 404
    assert client.get("/books?per_page=2").json == {"titles": ["Dune", "Emma"], "total": 3, "next": 2}
    assert client.get("/books?page=abc").status_code == 404
    first = client.get("/books/after").json
    assert first["titles"] == ["Dune", "Emma"]
    assert client.get(f"/books/after?after={first['next']}").json == {"titles": ["Ubik"], "next": None}
    assert client.get("/books/mixed").json == {"count": 3}
    # A unique violation: 409 and nothing of the request written.
    response = client.post("/books", data={"title": ["Zorba", "Dune"]})
    assert (response.status_code, response.json) == (409, {"error": "exists", "books": 3})
    run_coroutine_sync(db.wait_closed())
    with app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_async_create_all_and_engines(make_app: AppFactory) -> None:
    app, db = make_app()

    class Note(db.Model):
        id = Column(Integer, primary_key=True)
        body = Column(String(50))

    async def work() -> list[str]:
        with app.app_context():
            await db.async_drop_all()
            await db.async_create_all()
            assert db.async_engine is db.async_engines[None]
            assert db.async_engine.url.drivername in {"sqlite+aiosqlite", "postgresql+asyncpg", "mysql+asyncmy"}
            db.async_session.add_all([Note(body="a"), Note(body="b")])
            await db.async_session.commit()
            rows = (await db.async_session.execute(select(Note.body).order_by(Note.id))).scalars().all()
            await db.async_session.remove()
            await db.async_drop_all()
            return list(rows)

    assert run_coroutine_sync(work()) == ["a", "b"]


def test_async_engines_follow_the_event_loop(make_app: AppFactory, backend: str) -> None:
    import asyncio

    app, db = make_app()

    async def engine_id() -> int:
        with app.app_context():
            await db.async_session.execute(select(1))
            return id(db.async_engine)

    first = run_coroutine_sync(engine_id())
    assert run_coroutine_sync(engine_id()) == first  # the thread's long-lived loop keeps its pool
    other_loop = asyncio.new_event_loop()
    try:
        assert other_loop.run_until_complete(engine_id()) != first  # pools never cross event loops
    finally:
        with app.app_context():
            other_loop.run_until_complete(db.async_dispose())
        other_loop.close()
