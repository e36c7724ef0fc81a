"""Static typing: ``class User(Model)`` and the Database API pass ``mypy --strict`` with precise types."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TYPED_APP = '''
from typing import Any

from sqlalchemy import Row, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ampulla import Ampulla
from ampulla.db import Database, KeysetPage, Model, Pagination, Query, Session


class User(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


app = Ampulla(__name__)
db = Database(app, model_class=Model)


@app.route("/users/<int:id>")
def show(id: int) -> dict[str, object]:
    user: User = db.get_or_404(User, id)
    query: Query[User] = User.query
    first: User | None = User.query.filter(User.id == id).first()
    also: User = User.query.get_or_404(id)
    page: Pagination[User] = db.paginate(select(User).order_by(User.id))
    names: Pagination[Row[Any]] = db.paginate(select(User.id, User.name))
    one: User = db.one_or_404(select(User).where(User.id == id))
    name: str = db.first_or_404(select(User.name))
    keyset: KeysetPage[object] = db.keyset_paginate(select(User), key=User.id)
    session: Session = db.session
    rows: list[User] = list(session.scalars(select(User)).all())
    return {"user": user.name, "n": len(rows), "q": query, "f": first, "a": also, "p": page.items,
            "o": one, "name": name, "k": keyset.next_cursor, "names": names.total}


@app.route("/a/<int:id>")
async def ashow(id: int) -> str:
    user: User = await db.async_get_or_404(User, id)
    result = await db.async_session.execute(select(User).where(User.id == id))
    again: User = result.scalar_one()
    return user.name + again.name
'''

WRONG = '''
from ampulla.db import Model, Database
from sqlalchemy.orm import Mapped, mapped_column


class Item(Model):
    id: Mapped[int] = mapped_column(primary_key=True)


db = Database(model_class=Model)


def wrong() -> int:
    return Item.query.first()
'''


def mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    # Run from the repository so the (warm) .mypy_cache and the [tool.mypy] settings (strict) are used.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--follow-imports=silent", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_typed_models_and_api_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    result = mypy(tmp_path, "typed_app.py", TYPED_APP)
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = mypy(tmp_path, "wrong.py", WRONG)
    assert wrong.returncode == 1
    assert 'Incompatible return value type (got "Item | None", expected "int")' in wrong.stdout
