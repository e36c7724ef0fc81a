"""The asyncio session behind ``db.async_session``, in a module of its own: importing it imports SQLAlchemy's
asyncio extension, which needs the ``greenlet`` package (``pip install 'sqlalchemy[asyncio]'``)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession

from .session import Session, forget


class AsyncSession(_AsyncSession):
    """The asyncio session behind ``db.async_session`` (its sync side is a :class:`Session`).

    Attributes:
        loop: The event loop the session (and its engine's connections) belongs to.
    """

    sync_session_class = Session
    loop: asyncio.AbstractEventLoop | None = None

    async def remove(self) -> None:
        """Close the session; the next ``db.async_session`` in this context is a new one."""
        await self.close()
        forget(self)
