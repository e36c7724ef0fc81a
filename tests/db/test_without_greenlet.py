"""An app with only sync sessions needs SQLAlchemy, not greenlet (optional in SQLAlchemy 2.1).

Each check runs in a fresh interpreter where ``import greenlet`` fails, as in a venv without it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PRELUDE = """
import sys
sys.modules["greenlet"] = None  # import greenlet -> ImportError, as when it is not installed
"""


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "check.py"
    script.write_text(_PRELUDE + textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sync_data_layer_imports_and_serves_requests_without_greenlet(tmp_path: Path) -> None:
    out = _run(
        """
        import sys
        from sqlalchemy import Column, Integer, String
        from ampulla import Ampulla
        from ampulla.db import Database

        app = Ampulla(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + sys.argv[0] + ".db"
        db = Database(app)

        class User(db.Model):
            id = Column(Integer, primary_key=True)
            name = Column(String(64), unique=True)

        with app.app_context():
            db.create_all()

        @app.post("/users")
        def create():
            from ampulla import request
            db.session.add(User(name=request.form["name"]))
            db.session.commit()
            return {"count": db.session.query(User).count()}, 201

        @app.get("/users/<int:id>")
        def show(id):
            return {"name": db.get_or_404(User, id).name, "by_query": User.query.filter(User.id == id).one().name}

        for protocol in ("wsgi", "asgi"):
            client = app.test_client(protocol=protocol)
            created = client.post("/users", data={"name": "ann-" + protocol})
            assert created.status_code == 201, created.text
            shown = client.get(f"/users/{created.json['count']}")
            assert shown.json == {"name": "ann-" + protocol, "by_query": "ann-" + protocol}, shown.text
            assert client.get("/users/99").status_code == 404
        print("asyncio loaded:", "sqlalchemy.ext.asyncio" in sys.modules)
        """,
        tmp_path,
    )
    assert out.strip() == "asyncio loaded: False"


def test_async_parts_say_what_to_install(tmp_path: Path) -> None:
    out = _run(
        """
        from ampulla import Ampulla
        from ampulla.db import Database

        app = Ampulla(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        db = Database(app)

        @app.get("/async")
        async def uses_async_session():
            try:
                db.async_session
            except RuntimeError as e:
                return {"error": str(e)}
            return {"error": None}

        print(app.test_client(protocol="asgi").get("/async").json["error"])
        try:
            from ampulla.db import AsyncSession  # noqa: F401
        except ImportError as e:
            print("ImportError:", "greenlet" in str(e))
        """,
        tmp_path,
    )
    first, second = out.strip().splitlines()
    assert "greenlet" in first and "pip install" in first
    assert second == "ImportError: True"
