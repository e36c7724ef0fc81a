"""Signals sent when a session commits changes to models: ``SQLALCHEMY_TRACK_MODIFICATIONS = True``.

With the setting on when a session is created, each commit of that session sends
:data:`before_models_committed` (before the commit) and :data:`models_committed` (after it) with the
application as sender and ``changes``, a list of ``(instance, operation)`` with operation ``"insert"``,
``"update"`` or ``"delete"``::

    from ampulla.db.track_modifications import models_committed

    @models_committed.connect_via(app)
    def on_commit(sender, changes):
        for instance, operation in changes:
            ...

The signals are ``blinker`` signals (``pip install blinker``). Tracking costs work on every flush, so it is off
unless the setting turns it on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from blinker import Namespace
from sqlalchemy import event

from ..ctx import current_context

__all__ = ["before_models_committed", "models_committed"]

_signals = Namespace()

#: Sent after a session committed changes to models: ``sender`` is the app, ``changes`` the list of
#: ``(instance, "insert" | "update" | "delete")``.
models_committed = _signals.signal("models-committed")
#: Sent before a session commits changes to models, with the same arguments as :data:`models_committed`.
before_models_committed = _signals.signal("before-models-committed")

_CHANGES = "ampulla_model_changes"


def listen(session: sa_orm.Session) -> None:
    """Track the changes ``session`` commits and send the signals."""
    session.info[_CHANGES] = {}
    event.listen(session, "before_flush", _record_ops, named=True)
    event.listen(session, "before_commit", _record_ops, named=True)
    event.listen(session, "before_commit", _before_commit)
    event.listen(session, "after_commit", _after_commit)
    event.listen(session, "after_rollback", _after_rollback)


def _record_ops(session: sa_orm.Session, **kwargs: Any) -> None:
    changes: dict[Any, tuple[Any, str]] = session.info.setdefault(_CHANGES, {})
    for targets, operation in ((session.new, "insert"), (session.dirty, "update"), (session.deleted, "delete")):
        for target in targets:
            state = sa.inspect(target)
            key = state.identity_key if state.has_identity else id(target)
            changes[key] = (target, operation)


def _send(session: sa_orm.Session, signal: Any, clear: bool) -> None:
    changes: dict[Any, tuple[Any, str]] = session.info.get(_CHANGES) or {}
    ctx = current_context()
    if changes and ctx is not None:
        signal.send(ctx.app, changes=list(changes.values()))
    if clear:
        changes.clear()


def _before_commit(session: sa_orm.Session) -> None:
    _send(session, before_models_committed, clear=False)


def _after_commit(session: sa_orm.Session) -> None:
    _send(session, models_committed, clear=True)


def _after_rollback(session: sa_orm.Session) -> None:
    changes = session.info.get(_CHANGES)
    if changes:
        changes.clear()
