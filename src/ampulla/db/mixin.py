"""``Model`` as a plain class: the features of ``db.Model`` to subclass and pass as ``model_class``.

This is Flask-SQLAlchemy's ``flask_sqlalchemy.model.Model`` (a mixin, not a declarative base), which
``ampulla.flask_patch`` serves under that name; Ampulla code imports it as ``ampulla.db.ModelMixin``.
:class:`ampulla.db.Model` is the typed declarative base instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .model import Model as _Base
from .model import _QueryProperty
from .query import Query

__all__ = ["Model"]


class Model:
    """What ``db.Model`` adds to models, as a plain class: ``query``, ``query_class`` and a ``__repr__``.

    Subclass it to give every model more methods and pass the subclass as ``Database(model_class=...)``, or use
    it as the ``cls`` of a legacy ``declarative_base(cls=ModelMixin, metaclass=DefaultMeta)``.
    """

    #: The query class of ``Model.query`` (``None``: the Database's ``Query``).
    query_class: ClassVar[type[Query[Any]] | None] = None
    #: ``Model.query``: a legacy ``Query`` for the model on the current ``db.session``.
    query = _QueryProperty()

    __repr__ = _Base.__repr__
