"""``Session.get`` through Ampulla's prepared statement gives what SQLAlchemy's gives, in every case."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey, Integer, String, event, select
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from ampulla.app import run_coroutine_sync

AppFactory = Any
Tables = Any


def build(make_app: AppFactory, create_tables: Tables) -> Any:
    app, db = make_app()

    class Person(db.Model):
        id = Column(Integer, primary_key=True)
        kind = Column(String(20))
        name = Column(String(50))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "person"}

    class Engineer(Person):  # single-table
        __mapper_args__ = {"polymorphic_identity": "engineer"}

    class Manager(Person):  # joined-table
        id = Column(Integer, ForeignKey("person.id"), primary_key=True)
        level = Column(Integer)
        __mapper_args__ = {"polymorphic_identity": "manager"}

    class Team(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        members: Mapped[list[Member]] = relationship(lazy="joined", order_by="Member.id")

    class Member(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))

    class Pair(db.Model):
        a = Column(Integer, primary_key=True)
        b = Column(Integer, primary_key=True)

    create_tables(app, db)
    with app.app_context():
        db.session.add_all([
            Person(id=1, name="p"), Engineer(id=2, name="e"), Manager(id=3, name="m", level=2),
            Team(id=1, members=[Member(id=1), Member(id=2), Member(id=3)]), Pair(a=1, b=2),
        ])
        db.session.commit()
    return app, db, Person, Engineer, Manager, Team, Pair


def count_selects(engine: sa.Engine) -> list[str]:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def test_get_matches_sqlalchemy(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Person, Engineer, Manager, Team, Pair = build(make_app, create_tables)
    with app.app_context():
        statements = count_selects(db.engine)
        session = db.session
        person = session.get(Person, 1)
        assert person is not None and type(person) is Person
        assert session.get(Person, 1) is person  # identity map: no second SELECT
        assert len(statements) == 1
        assert type(session.get(Person, 2)) is Engineer  # polymorphic loading
        assert type(session.get(Person, 3)) is Manager
        assert session.get(Engineer, 3) is None and session.get(Manager, 2) is None  # class mismatch
        assert session.get(Engineer, 1) is None
        session.expunge_all()
        assert session.get(Manager, 2) is None and session.get(Engineer, 3) is None  # from the database
        assert session.get(Person, 99) is None
        team = session.get(Team, 1)
        assert [m.id for m in team.members] == [1, 2, 3]  # joined eager collection complete
        assert session.get(Pair, (1, 2)) is not None  # composite keys: SQLAlchemy's path
        assert session.get(Person, 1, options=[sa.orm.defer(Person.name)]) is not None
        assert session.get(Person, 1, populate_existing=True) is not None
        assert session.get(Team, 1, options=[joinedload(Team.members)]) is team


def test_get_sees_pending_and_expired_state(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Person, *_ = build(make_app, create_tables)
    with app.app_context():
        session = db.session
        session.add(Person(id=10, name="new"))
        assert session.get(Person, 10).name == "new"  # autoflush, as with SQLAlchemy's get
        person = session.get(Person, 1)
        session.commit()  # expires everything
        session.execute(sa.update(Person).where(Person.id == 1).values(name="renamed"))
        assert session.get(Person, 1) is person and person.name == "renamed"
        session.delete(person)
        session.flush()
        assert session.get(Person, 1) is None
        session.rollback()


def test_query_get_and_async_get(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Person, _Engineer, Manager, Team, Pair = build(make_app, create_tables)
    with app.app_context():
        assert type(Person.query.get(3)) is Manager
        assert Person.query.options(sa.orm.defer(Person.name)).get(1).id == 1
        assert Pair.query.get((1, 2)).b == 2
        with pytest.raises(sa.exc.InvalidRequestError):
            Pair.query.get(1)

    async def load() -> list[Any]:
        with app.app_context():
            session = db.async_session
            found = [await session.get(Person, 2), await session.get(Team, 1), await session.get(Person, 9)]
            return [type(found[0]).__name__, [m.id for m in found[1].members], found[2]]

    assert run_coroutine_sync(load()) == ["Engineer", [1, 2, 3], None]


def test_get_with_select_after(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, Person, *_ = build(make_app, create_tables)
    with app.app_context():
        names = db.session.scalars(select(Person.name).order_by(Person.id)).all()
        assert names == ["p", "e", "m"]
        assert db.get_or_404(Person, 3).name == "m"
