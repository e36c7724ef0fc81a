"""Database errors, and how a database that cannot be reached becomes a 503 answer.

A connection that fails (the server is down, refuses, drops the connection mid-query) is raised as
:class:`DatabaseUnavailableError`, an ``OperationalError`` *and* an ``InterfaceError`` (so ``except`` clauses
written for either still catch it). :class:`~ampulla.db.Database` registers a handler that answers it, and
SQLAlchemy's pool ``TimeoutError`` (every connection busy), with ``503 Service Unavailable`` (and
``Retry-After`` when ``SQLALCHEMY_RETRY_AFTER`` is set); every other
database error is left to the application (an ``IntegrityError`` is typically answered with 409).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from ..ctx import RequestContext, current_context
from ..cycle import rehandle
from ..exceptions import ServiceUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import ExceptionContext

logger = logging.getLogger("ampulla.db")


class DatabaseUnavailableError(sa_exc.OperationalError, sa_exc.InterfaceError):
    """The database could not be reached: connecting failed, or the connection broke while in use.

    The pool has already discarded the broken connections (and checks connections before use), so the next
    request reconnects as soon as the database is back.
    """


class DatabaseUnavailable(ServiceUnavailable):
    """503 answer for :class:`DatabaseUnavailableError` and pool time-outs."""

    description = "The database is temporarily unavailable. Please try again in a moment."


def _unavailable_from(ctx: ExceptionContext) -> DatabaseUnavailableError:
    wrapped = ctx.sqlalchemy_exception
    original = ctx.original_exception
    if isinstance(wrapped, sa_exc.DBAPIError):
        return DatabaseUnavailableError(
            wrapped.statement,
            None,
            wrapped.orig or original,
            hide_parameters=True,
            connection_invalidated=wrapped.connection_invalidated,
            ismulti=wrapped.ismulti,
        )
    return DatabaseUnavailableError(
        ctx.statement, None, original, hide_parameters=True, connection_invalidated=ctx.is_disconnect
    )


def on_handle_error(ctx: ExceptionContext) -> BaseException | None:
    """``handle_error`` engine listener: turn connection failures into :class:`DatabaseUnavailableError`.

    A failure is a connection failure when SQLAlchemy's dialect recognised a disconnect, when no connection
    existed yet (connecting failed), or when the driver raised a bare ``OSError`` mid-query (asyncpg does).
    """
    if ctx.is_pre_ping:
        return None  # the pool handles a failed ping itself by reconnecting
    if isinstance(ctx.original_exception, DatabaseUnavailableError):
        return None
    if isinstance(ctx.original_exception, OSError) and not ctx.is_disconnect and ctx.connection is not None:
        ctx.is_disconnect = True  # invalidate the socket SQLAlchemy did not recognise as broken
    if ctx.is_disconnect or ctx.connection is None:
        if isinstance(ctx.original_exception, sa_exc.SQLAlchemyError) and not isinstance(
            ctx.original_exception, sa_exc.DBAPIError
        ):
            return None
        return _unavailable_from(ctx)
    return None


def on_do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
    """``do_connect`` engine listener: report a failed connection as :class:`DatabaseUnavailableError`.

    Drivers such as asyncpg raise bare ``OSError`` (``ConnectionRefusedError``) or their own exceptions when
    connecting fails, which SQLAlchemy does not wrap; the driver's DB-API errors pass through (SQLAlchemy
    wraps them and :func:`on_handle_error` converts them).
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as e:
        if isinstance(e, dialect.loaded_dbapi.Error):
            raise
        raise DatabaseUnavailableError(None, None, e, hide_parameters=True) from e


def handle_unavailable(error: Exception) -> Any:
    """Error handler registered on the app: log the outage and answer 503 (through a user 503 handler)."""
    reason = getattr(error, "orig", None) or error
    logger.error("database unavailable, answering 503: %s: %s", type(reason).__name__, reason)
    ctx = current_context()
    retry_after = ctx.app.config.get("SQLALCHEMY_RETRY_AFTER") if ctx is not None else None
    http_error = DatabaseUnavailable(retry_after=retry_after)
    if not isinstance(ctx, RequestContext):
        return http_error
    # On the event loop of an ASGI request: an awaitable the cycle awaits, so an ``async def`` 503 handler works too.
    return rehandle(ctx, http_error)
