"""Constants shared by every benchmark application so that they cannot drift apart."""

from __future__ import annotations

#: ``/static<i>`` routes of the 50-route table (plain text body ``"static <i>"``).
STATIC_ROUTES = range(25)
#: ``/items<i>/<int:id>`` routes of the 50-route table (body ``"item <i> <id>"``).
DYNAMIC_ROUTES = range(25, 50)
#: Value the before-request hook stores; the hooks view answers ``"x=<value>"``.
HOOK_VALUE = "hooked"
#: The ``orm`` scenario's ``user`` table has rows 1..ORM_ROWS (see ``orm_common``); the scenario requests this id.
ORM_ROWS = 1000
ORM_USER_ID = 500


def orm_user(user_id: int) -> dict[str, object]:
    """The ``orm`` scenario's row ``user_id`` as its JSON answer (also what the table is filled with)."""
    return {"id": user_id, "name": f"user{user_id}", "email": f"user{user_id}@example.com"}
