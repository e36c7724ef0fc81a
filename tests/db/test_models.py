"""Models: the seed's model verbatim, both query styles, SQLAlchemy 2 style, bases, table names, binds."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey, Integer, SmallInteger, String, select
from sqlalchemy.exc import IntegrityError, UnboundExecutionError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ampulla import Ampulla, request
from ampulla.db import Database, Model, Query, camel_to_snake_case

AppFactory = Any
Tables = Any

constants = SimpleNamespace(ROLE_USER=0, ROLE_ADMIN=1)


class UserBase:
    """A plain mixin, as in the seed."""

    def is_admin(self) -> bool:
        return bool(self.role == constants.ROLE_ADMIN)  # type: ignore[attr-defined]


def define_seed_model(Base: Any) -> Any:
    """The seed's model, verbatim."""

    class User(UserBase, Base):
        __tablename__ = 'user'
        __table_args__ = {'sqlite_autoincrement': True}

        id = Column(Integer, primary_key=True)
        name = Column(String(64), unique=True)
        email = Column(String(120), unique=True, default="")
        role = Column(SmallInteger, default=constants.ROLE_USER)
        password = Column(String)

    return User


def seed_app(make_app: AppFactory, create_tables: Tables, **db_kwargs: Any) -> tuple[Ampulla, Database, Any]:
    app, db = make_app(**db_kwargs)
    User = define_seed_model(db.Model)

    @app.errorhandler(IntegrityError)
    def conflict(e: IntegrityError) -> Any:
        return {"error": "already exists"}, 409

    @app.post("/users")
    def create_users() -> Any:
        for name in request.form.getlist("name"):
            db.session.add(User(name=name, email=request.form.get("email", ""), password="x"))
        db.session.commit()
        return {"count": db.session.query(User).count()}, 201

    @app.get("/users/<int:id>")
    def show(id: int) -> Any:
        user = db.get_or_404(User, id)
        return {"name": user.name, "admin": user.is_admin(), "role": user.role, "email": user.email}

    create_tables(app, db)
    return app, db, User


def test_seed_model_verbatim_and_both_query_styles(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, User = seed_app(make_app, create_tables)
    with app.app_context():
        db.session.add_all([User(name="ann", email="ann@x", role=constants.ROLE_ADMIN), User(name="bob", email="b@x")])
        db.session.commit()
        legacy = db.session.query(User).filter(User.id == 1)
        assert isinstance(legacy, Query)
        assert legacy.first().name == "ann"
        assert User.query.filter(User.id == 1).first().name == "ann"
        assert User.query.filter(User.id == 1).first() is legacy.first()
        assert User.query.get(2).name == "bob"
        assert db.session.scalars(select(User).where(User.id == 2)).one().name == "bob"
        bob = User.query.filter_by(name="bob").one()
        assert (bob.role, bob.is_admin(), User.query.get(1).is_admin()) == (constants.ROLE_USER, False, True)
        assert repr(bob) == "<User 2>"


def test_seed_model_unique_violation_is_a_clean_409(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, User = seed_app(make_app, create_tables)
    client = app.test_client()
    assert client.post("/users", data={"name": "ann", "email": "ann@x"}).status_code == 201
    # "cat" is fine but "ann" exists: the whole request's transaction is rolled back, nothing half-written.
    response = client.post("/users", data={"name": ["cat", "ann"], "email": "other@x"})
    assert response.status_code == 409
    assert response.json == {"error": "already exists"}
    # The seed's email default "" is unique too: a second user without email conflicts.
    assert client.post("/users", data={"name": "dan"}).status_code == 201
    assert client.post("/users", data={"name": "eve"}).status_code == 409
    with app.app_context():
        assert sorted(u.name for u in User.query.all()) == ["ann", "dan"]
    with app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_failed_commit_leaves_the_session_usable(make_app: AppFactory, create_tables: Tables) -> None:
    app, db, User = seed_app(make_app, create_tables)
    with app.app_context():
        db.session.add(User(name="ann", email="a"))
        db.session.commit()
        db.session.add(User(name="ann", email="b"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        assert not db.session.in_transaction()
        assert db.session.query(User).count() == 1  # no PendingRollbackError


def test_user_declarative_base_gets_query(make_app: AppFactory, create_tables: Tables) -> None:
    class Base(DeclarativeBase):
        pass

    app, db = make_app(model_class=Base)
    assert db.Model is Base
    User = define_seed_model(Base)

    class Tag(Base):  # no __tablename__: derived
        id: Mapped[int] = mapped_column(primary_key=True)

    assert Tag.__tablename__ == "tag"
    create_tables(app, db)
    with app.app_context():
        db.session.add(User(name="ann"))
        db.session.commit()
        assert User.query.filter(User.id == 1).one().name == "ann"
        assert Tag.query.count() == 0


def test_plain_mixin_as_model_class(make_app: AppFactory, create_tables: Tables) -> None:
    class Mixin:
        def describe(self) -> str:
            return f"{type(self).__name__}#{self.id}"  # type: ignore[attr-defined]

    app, db = make_app(model_class=Mixin)

    class Item(db.Model):
        id = Column(Integer, primary_key=True)

    create_tables(app, db)
    with app.app_context():
        db.session.add(Item(id=3))
        db.session.commit()
        assert Item.query.one().describe() == "Item#3"


def test_sqlalchemy2_style_with_relationships(make_app: AppFactory, create_tables: Tables) -> None:
    app, db = make_app()

    class Author(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")

    class Book(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(100))
        author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
        author: Mapped[Author] = relationship(back_populates="books")

    create_tables(app, db)
    with app.app_context():
        db.session.add(Author(name="Le Guin", books=[Book(title="Earthsea"), Book(title="Lathe")]))
        db.session.commit()
        author = db.session.execute(select(Author).where(Author.name == "Le Guin")).scalar_one()
        assert [b.title for b in author.books] == ["Earthsea", "Lathe"]
        assert db.first_or_404(select(Book.title).order_by(Book.id.desc())) == "Lathe"
        assert db.one_or_404(select(Author).where(Author.id == 1)).name == "Le Guin"


def test_flask_sqlalchemy_aliases_on_db(make_app: AppFactory, create_tables: Tables) -> None:
    app, db = make_app()

    class Post(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.String(80), nullable=False)
        created = db.Column(db.DateTime, server_default=db.func.now())

    assert db.Interval is sa.Interval  # reached through __getattr__
    assert db.joinedload is sa.orm.joinedload
    with pytest.raises(AttributeError):
        db.no_such_name  # noqa: B018
    create_tables(app, db)
    with app.app_context():
        db.session.add(Post(title="hi"))
        db.session.commit()
        assert db.session.execute(db.select(Post.title)).scalar_one() == "hi"


def test_automatic_table_names_and_inheritance() -> None:
    db = Database()

    class HTTPResponseLog(db.Model):
        id = Column(Integer, primary_key=True)

    class Person(db.Model):
        id = Column(Integer, primary_key=True)
        kind = Column(String(20))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "person"}

    class Employee(Person):  # single-table inheritance: no primary key of its own
        __mapper_args__ = {"polymorphic_identity": "employee"}

    class Manager(Person):  # joined-table inheritance
        id = Column(Integer, ForeignKey("person.id"), primary_key=True)
        __mapper_args__ = {"polymorphic_identity": "manager"}

    class Named(db.Model):
        __tablename__ = "custom_name"
        id = Column(Integer, primary_key=True)

    assert HTTPResponseLog.__tablename__ == "http_response_log"
    assert Employee.__table__ is Person.__table__
    assert Manager.__table__.name == "manager"
    assert Named.__table__.name == "custom_name"
    assert [camel_to_snake_case(n) for n in ("User", "UserRole", "ABC", "V2Item")] == [
        "user", "user_role", "abc", "v2_item"
    ]


def test_disable_autonaming() -> None:
    db = Database(disable_autonaming=True)
    with pytest.raises(sa.exc.InvalidRequestError):

        class Nameless(db.Model):
            id = Column(Integer, primary_key=True)


def test_each_database_has_its_own_tables() -> None:
    first, second = Database(), Database()

    class A(first.Model):
        __tablename__ = "same"
        id = Column(Integer, primary_key=True)

    class B(second.Model):
        __tablename__ = "same"
        id = Column(Integer, primary_key=True)

    assert first.metadata is not second.metadata
    assert isinstance(A(), Model) and isinstance(B(), Model)


def test_binds_route_models_to_their_database(tmp_path: Any) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///main.db"  # relative: in the instance folder
    app.config["SQLALCHEMY_BINDS"] = {"audit": {"url": f"sqlite:///{tmp_path}/audit.db", "echo": False}}
    db = Database(app)

    class Account(db.Model):
        id = Column(Integer, primary_key=True)

    class AuditEntry(db.Model):
        __bind_key__ = "audit"
        id = Column(Integer, primary_key=True)
        message = Column(String(100))

    class Orphan(db.Model):
        __bind_key__ = "missing"
        id = Column(Integer, primary_key=True)

    assert set(db.metadatas) == {None, "audit", "missing"}
    with app.app_context():
        assert set(db.engines) == {None, "audit"}
        db.create_all(bind_key=[None, "audit"])
        db.session.add_all([Account(id=1), AuditEntry(id=1, message="opened")])
        db.session.commit()
        assert sa.inspect(db.engines["audit"]).get_table_names() == ["audit_entry"]
        assert sa.inspect(db.engine).get_table_names() == ["account"]
        assert db.session.execute(select(AuditEntry.message)).scalar_one() == "opened"
        assert db.engine.url.database == os.path.join(str(tmp_path), "main.db")
        with pytest.raises(UnboundExecutionError, match="SQLALCHEMY_BINDS"):
            db.session.execute(select(Orphan)).all()
        with pytest.raises(KeyError, match="missing"):
            db.create_all()
        db.drop_all(bind_key=[None, "audit"])
    db.dispose(app)


def test_reflect(tmp_path: Any) -> None:
    app = Ampulla(__name__, instance_path=str(tmp_path))
    db = Database(app)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE legacy (id INTEGER PRIMARY KEY, value TEXT)"))
        db.reflect()
        assert "legacy" in db.metadata.tables
        assert db.session.execute(db.metadata.tables["legacy"].select()).all() == []
    db.dispose(app)


def test_typed_model_base(tmp_path: Any) -> None:
    # Not parametrised: ampulla.db.Model is process-wide, so its class is defined once.
    app = Ampulla(__name__, instance_path=str(tmp_path))
    db = Database(app, model_class=Model)
    assert db.Model is Model

    class TypedThing(Model):
        __tablename__ = "typed_thing_models_test"
        id: Mapped[int] = mapped_column(primary_key=True)
        label: Mapped[str] = mapped_column(String(30))

    try:
        with app.app_context():
            db.create_all()
            db.session.add(TypedThing(id=1, label="x"))
            db.session.commit()
            assert TypedThing.query.get_or_404(1).label == "x"
            db.drop_all()
    finally:
        Model.metadata.remove(TypedThing.__table__)  # leave the process-wide base as it was
        db.dispose(app)


def test_model_query_needs_an_app_context() -> None:
    db = Database()

    class Lonely(db.Model):
        id = Column(Integer, primary_key=True)

    with pytest.raises(RuntimeError, match="app_context"):
        Lonely.query  # noqa: B018
    app = Ampulla(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="has no Database"):
        Lonely.query  # noqa: B018


def test_init_app_later_and_config_read_on_first_use(tmp_path: Any) -> None:
    db = Database()
    app = Ampulla(__name__, instance_path=str(tmp_path / "inst"))
    db.init_app(app)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///late.db"  # after init_app: still honoured
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 3}
    with app.app_context():
        assert db.engine.url.database == str(tmp_path / "inst" / "late.db")
        assert db.engine.pool.size() == 3
    assert app.extensions["sqlalchemy"] is db
    with pytest.raises(RuntimeError, match="already has a Database"):
        db.init_app(app)
    db.dispose(app)
