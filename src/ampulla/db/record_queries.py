"""Recording the queries of an application context: ``SQLALCHEMY_RECORD_QUERIES = True``.

With the setting on when the engines are created, each statement run inside an application context (a request
is one) is recorded; :func:`get_recorded_queries` returns them, e.g. to log slow queries after a request::

    @app.after_request
    def log_slow_queries(response):
        for query in get_recorded_queries():
            if query.duration > 0.5:
                app.logger.warning("slow query %s at %s", query.statement, query.location)
        return response

Recording costs a listener call per statement, so it is off unless the setting turns it on.
"""

from __future__ import annotations

import dataclasses
import sys
from time import perf_counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..ctx import current_context

__all__ = ["get_recorded_queries"]

_KEY = "_sqlalchemy_queries"


@dataclasses.dataclass
class _QueryInfo:
    """One recorded query.

    Attributes:
        statement: The SQL sent to the database, with placeholders.
        parameters: The parameters sent with it.
        start_time: When it started (:func:`time.perf_counter`).
        end_time: When it ended (:func:`time.perf_counter`).
        location: ``file:line (function)`` of the application code that ran it (``"<unknown>"`` when none).
    """

    statement: str | None
    parameters: Any
    start_time: float
    end_time: float
    location: str

    @property
    def duration(self) -> float:
        """How long the query took, in seconds."""
        return self.end_time - self.start_time


def get_recorded_queries() -> list[_QueryInfo]:
    """The queries recorded in the current application context so far (empty outside one).

    Returns:
        A list of query records with ``statement``, ``parameters``, ``start_time``, ``end_time``, ``duration``
        and ``location``.
    """
    ctx = current_context()
    if ctx is None:
        return []
    queries: list[_QueryInfo] = ctx.g.__dict__.get(_KEY, [])
    return queries


def listen(engine: sa.Engine) -> None:
    """Record the statements ``engine`` runs in application contexts."""
    event.listen(engine, "before_cursor_execute", _record_start, named=True)
    event.listen(engine, "after_cursor_execute", _record_end, named=True)


def _record_start(context: Any, **kwargs: Any) -> None:
    if current_context() is not None:
        context._ampulla_query_start = perf_counter()


def _location(import_name: str) -> str:
    top = import_name.partition(".")[0]
    prefix = top + "."
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and (name == top or name.startswith(prefix)):
            code = frame.f_code
            return f"{code.co_filename}:{frame.f_lineno} ({code.co_name})"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def _record_end(context: Any, **kwargs: Any) -> None:
    ctx = current_context()
    if ctx is None:
        return
    end = perf_counter()
    start = getattr(context, "_ampulla_query_start", end)
    queries: list[_QueryInfo] = ctx.g.__dict__.setdefault(_KEY, [])
    queries.append(
        _QueryInfo(
            statement=context.statement,
            parameters=context.parameters,
            start_time=start,
            end_time=end,
            location=_location(ctx.app.import_name),
        )
    )
