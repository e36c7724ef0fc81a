"""Flask-SQLAlchemy's API on ampulla.db: pagination classes, recorded queries, modification signals, the
legacy metaclass, table naming with inheritance, ``db.Table`` with bind keys, engine options, session scopes."""

from __future__ import annotations

import os
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy import Column, ForeignKey, Integer, String, select

from ampulla import Ampulla
from ampulla.db import Database, ModelMixin, Pagination, Query
from ampulla.db.cli import add_models_to_shell
from ampulla.db.model import DefaultMeta
from ampulla.db.pagination import QueryPagination, SelectPagination
from ampulla.db.record_queries import get_recorded_queries

from .conftest import AppFactory


def _app(tmp_path: Any, **config: Any) -> Ampulla:
    app = Ampulla(__name__, instance_path=str(tmp_path / "instance"))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    app.config.update(config)
    return app


# ---------------------------------------------------------------------------------------------- pagination
class RangePagination(Pagination[int]):
    """Pagination over a range (``data=``), the way a user paginates something that is not a query."""

    def _query_items(self) -> list[int]:
        data = self._query_args["data"]
        return list(data[self._query_offset : self._query_offset + self.per_page])

    def _query_count(self) -> int:
        return len(self._query_args["data"])


def test_pagination_subclass_queries_through_its_hooks(tmp_path: Any) -> None:
    page = RangePagination(data=range(95), page=3, per_page=10)
    assert (page.items, page.total, page.pages, page.first, page.last) == (list(range(20, 30)), 95, 10, 21, 30)
    following = page.next()
    assert following.page == 4 and following.total == 95 and following.items[0] == 30
    assert page.prev().items[0] == 10
    app = _app(tmp_path)
    with app.test_request_context("/?page=2&per_page=5"):
        assert RangePagination(data=range(95)).items == [5, 6, 7, 8, 9]
    with app.test_request_context(query_string={"page": None, "per_page": 7}):
        assert RangePagination(data=range(95)).items == list(range(7))


def test_pagination_built_from_items_queries_nothing() -> None:
    page: Pagination[str] = Pagination(page=2, per_page=2, items=["c", "d"], total=5)
    assert (page.pages, page.has_next, page.next_num, page.first) == (3, True, 3, 3)
    with pytest.raises(RuntimeError):
        page.next()


def test_paginate_returns_select_and_query_paginations(make_app: AppFactory, create_tables: Any) -> None:
    app, db = make_app()

    class Note(db.Model):
        id = Column(Integer, primary_key=True)

    create_tables(app, db)
    with app.app_context():
        db.session.add_all(Note() for _ in range(25))
        db.session.commit()
        page = db.paginate(select(Note).order_by(Note.id), per_page=10)
        assert isinstance(page, SelectPagination)
        assert [n.id for n in page.next().items] == list(range(11, 21))
        legacy = Note.query.order_by(Note.id).paginate(page=3, per_page=10, count=False)
        assert isinstance(legacy, QueryPagination)
        assert (legacy.total, len(legacy.items), legacy.has_next) == (None, 5, False)
    with app.test_request_context("/?page=2&per_page=20"):
        assert [n.id for n in db.paginate(select(Note).order_by(Note.id))] == list(range(21, 26))


# ---------------------------------------------------------------------------------------------- recorded queries
def test_recorded_queries(tmp_path: Any) -> None:
    app = _app(tmp_path, SQLALCHEMY_RECORD_QUERIES=True)
    app.import_name = __name__.partition(".")[0]  # this test module's package is the "application"
    db = Database(app)

    class Item(db.Model):
        id = Column(Integer, primary_key=True)

    with app.app_context():
        db.create_all()
        db.session.execute(select(Item).where(Item.id < 3)).all()
        info = get_recorded_queries()[-1]
        assert "FROM item" in (info.statement or "")
        assert info.parameters[0][0] == 3
        assert info.duration == info.end_time - info.start_time >= 0
        assert os.path.basename(__file__) in info.location and "(test_recorded_queries)" in info.location
    with app.app_context():
        assert get_recorded_queries() == []
    assert get_recorded_queries() == []


def test_queries_not_recorded_by_default(tmp_path: Any) -> None:
    app = _app(tmp_path)
    db = Database(app)
    with app.app_context():
        db.session.execute(sa.text("SELECT 1"))
        assert get_recorded_queries() == []


# ---------------------------------------------------------------------------------------------- signals
def test_models_committed_signals(make_app: AppFactory, create_tables: Any) -> None:
    pytest.importorskip("blinker")
    from ampulla.db.track_modifications import before_models_committed, models_committed

    app, db = make_app({"SQLALCHEMY_TRACK_MODIFICATIONS": True})

    class Task(db.Model):
        id = Column(Integer, primary_key=True)
        title = Column(String(50))

    create_tables(app, db)
    before: list[Any] = []
    after: list[Any] = []
    with (
        before_models_committed.connected_to(lambda sender, changes: before.append(changes), app),
        models_committed.connected_to(lambda sender, changes: after.append(changes), app),
        app.app_context(),
    ):
        task = Task(title="a")
        db.session.add(task)
        db.session.commit()
        assert before == after == [[(task, "insert")]]
        task.title = "b"
        db.session.commit()
        assert after[-1] == [(task, "update")]
        db.session.delete(task)
        db.session.rollback()
        db.session.commit()
        assert len(after) == 2  # a rolled-back change is not reported


# ---------------------------------------------------------------------------------------------- models
def test_legacy_declarative_base_with_default_meta(tmp_path: Any) -> None:
    Base: Any = sa_orm.declarative_base(cls=ModelMixin, metaclass=DefaultMeta, name="Model")
    app = _app(tmp_path, SQLALCHEMY_BINDS={"audit": "sqlite://"})
    db = Database(app, model_class=Base)

    class UserAccount(db.Model):
        id = Column(Integer, primary_key=True)

    class Event(db.Model):
        __bind_key__ = "audit"
        id = Column(Integer, primary_key=True)

    assert isinstance(db.Model, DefaultMeta)
    assert UserAccount.__tablename__ == "user_account"
    assert Event.__table__.metadata is db.metadatas["audit"]
    with app.app_context():
        db.create_all()
        db.session.add(Event())
        db.session.commit()
        assert isinstance(Event.query, Query) and Event.query.count() == 1
        assert add_models_to_shell() == {"UserAccount": UserAccount, "Event": Event, "db": db}


@pytest.mark.parametrize("base", ["default", "declarative"])
def test_table_names_with_inheritance(tmp_path: Any, base: str) -> None:
    if base == "default":
        db = Database(_app(tmp_path))
    else:

        class Base(sa_orm.DeclarativeBase):
            pass

        db = Database(_app(tmp_path), model_class=Base)

    class Duck(db.Model):
        id = Column(Integer, primary_key=True)
        kind = Column(String(20))
        __mapper_args__ = {"polymorphic_on": kind, "polymorphic_identity": "duck"}

    class Mallard(Duck):  # no primary key: single-table inheritance
        __mapper_args__ = {"polymorphic_identity": "mallard"}

    class Donald(Duck):  # a primary key of its own: joined-table inheritance
        id = Column(Integer, ForeignKey(Duck.id), primary_key=True)
        __mapper_args__ = {"polymorphic_identity": "donald"}

    class Manual(db.Model):
        __tablename__ = "MANUAL"
        id = Column(Integer, primary_key=True)

    assert (Duck.__tablename__, Mallard.__tablename__, Donald.__tablename__) == ("duck", "duck", "donald")
    assert Mallard.__table__ is Duck.__table__
    assert Manual.__table__.name == "MANUAL"


def test_db_table_goes_to_the_metadata_of_its_bind(tmp_path: Any) -> None:
    db = Database(_app(tmp_path, SQLALCHEMY_BINDS={"other": "sqlite://"}))
    default = db.Table("tag", Column("id", Integer, primary_key=True))
    other = db.Table("tag", Column("id", Integer, primary_key=True), bind_key="other")
    mine = sa.MetaData()
    explicit = db.Table("tag", mine, Column("id", Integer, primary_key=True))
    assert (default.metadata, other.metadata, explicit.metadata) == (db.metadata, db.metadatas["other"], mine)


def test_dynamic_relationship_queries_with_the_query_class(tmp_path: Any) -> None:
    class MyQuery(Query[Any]):
        pass

    db = Database(_app(tmp_path), query_class=MyQuery)

    class Parent(db.Model):
        id = Column(Integer, primary_key=True)
        children = db.relationship("Child", backref=db.backref("parent"), lazy="dynamic")

    class Child(db.Model):
        id = Column(Integer, primary_key=True)
        parent_id = Column(ForeignKey(Parent.id))

    assert isinstance(Parent().children, MyQuery)


# ---------------------------------------------------------------------------------------------- engines, sessions
def test_engine_options_and_echo(tmp_path: Any) -> None:
    app = _app(tmp_path, SQLALCHEMY_ENGINE_OPTIONS={"echo": False}, SQLALCHEMY_BINDS={"a": "sqlite://"})
    db = Database(app, engine_options={"echo": True})
    with app.app_context():
        assert db.engines["a"].echo and not db.engine.echo
    db.dispose(app)

    app = _app(tmp_path, SQLALCHEMY_ECHO=True)
    db = Database(app)
    with app.app_context():
        assert db.engine.echo and db.engine.pool.echo
    db.dispose(app)



def test_make_engine_hook_and_driver_level_sqlite_uri(tmp_path: Any) -> None:
    made: list[Any] = []

    class Recording(Database):
        def _make_engine(self, bind_key: str | None, options: dict[str, Any], app: Ampulla) -> sa.Engine:
            made.append((bind_key, options["url"]))
            return super()._make_engine(bind_key, options, app)

    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite:///file:data.db?uri=true")
    db = Recording(app)
    with app.app_context():
        db.create_all()
        assert made == [(None, db.engine.url)]
        assert db.engine.url.database == "file:" + os.path.join(app.instance_path, "data.db")
    db.dispose(app)


def test_session_scopefunc(tmp_path: Any) -> None:
    scopes = iter(range(100))
    app = _app(tmp_path)
    db = Database(app, session_options={"scopefunc": lambda: next(scopes)})
    with app.app_context():
        first, second = db.session(), db.session()
        assert first is not second


def test_joined_subclass_of_a_bound_model_uses_its_bind(make_app: AppFactory, create_tables: Any) -> None:
    app, db = make_app({"SQLALCHEMY_BINDS": {"a": "sqlite://"}})

    class Person(db.Model):
        __bind_key__ = "a"
        id = Column(Integer, primary_key=True)
        kind = Column(String(20), nullable=False)
        __mapper_args__ = {"polymorphic_on": kind, "polymorphic_identity": "person"}

    class Admin(Person):
        id = Column(ForeignKey(Person.id), primary_key=True)
        org = Column(String(20), nullable=False)
        __mapper_args__ = {"polymorphic_identity": "admin"}

    create_tables(app, db)
    with app.app_context():
        db.session.add(Admin(org="pallets"))
        db.session.commit()
        admin = db.session.execute(select(Admin)).scalar_one()
        db.session.expire(admin)
        assert admin.org == "pallets"
