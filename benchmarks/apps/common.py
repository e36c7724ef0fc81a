"""Constants shared by every benchmark application so that they cannot drift apart."""

from __future__ import annotations

#: ``/static<i>`` routes of the 50-route table (plain text body ``"static <i>"``).
STATIC_ROUTES = range(25)
#: ``/items<i>/<int:id>`` routes of the 50-route table (body ``"item <i> <id>"``).
DYNAMIC_ROUTES = range(25, 50)
#: Value the before-request hook stores; the hooks view answers ``"x=<value>"``.
HOOK_VALUE = "hooked"
