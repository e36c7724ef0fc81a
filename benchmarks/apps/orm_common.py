"""Shared pieces of the ``orm`` scenario: a 1,000-row ``user`` table in a fresh SQLite file per app.

Every framework's ``create_orm_app()`` gets its own database file (filled here with the standard library,
so the filling is not part of any framework's cost) and answers ``GET /users/<id>`` with the row as JSON.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile

#: Rows in the table.
ROWS = 1000
#: The id the scenario requests.
USER_ID = 500
#: The JSON answer for :data:`USER_ID`.
EXPECTED = {"id": USER_ID, "name": f"user{USER_ID}", "email": f"user{USER_ID}@example.com"}

_SCHEMA = (
    "CREATE TABLE user (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(64) UNIQUE, "
    "email VARCHAR(120) UNIQUE, role SMALLINT, password VARCHAR)"
)


def make_database(label: str) -> str:
    """Create a SQLite file holding the filled ``user`` table; return its path (removed at exit)."""
    folder = tempfile.mkdtemp(prefix=f"ampulla-bench-orm-{label}-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "bench.db")
    with sqlite3.connect(path) as conn:
        conn.execute(_SCHEMA)
        conn.executemany(
            "INSERT INTO user (id, name, email, role, password) VALUES (?, ?, ?, 0, 'x')",
            [(i, f"user{i}", f"user{i}@example.com") for i in range(1, ROWS + 1)],
        )
    conn.close()
    return path
