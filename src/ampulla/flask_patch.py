"""Serve ``flask`` and ``flask_sqlalchemy`` from Ampulla, so unchanged Flask code and extensions run on it.

Import this module first, before anything imports Flask::

    >>> import ampulla.flask_patch  # first: entry point, conftest.py or WSGI/ASGI module
    >>> from flask import Flask, request  # Ampulla's objects
    >>> from flask_sqlalchemy import SQLAlchemy  # ampulla.db.Database

From then on ``flask``, each ``flask.*`` module that Flask 3.1.3 has, ``flask_sqlalchemy`` and its modules are
alias modules in :data:`sys.modules`, created by a finder at the front of :data:`sys.meta_path`. Real Flask is
never imported, even when it is installed (pip brings it with any extension): the finder answers first.

How a name resolves:

- ``flask.X`` serves the attributes of ``ampulla.X`` (``flask.globals`` → :mod:`ampulla.globals`), and
  ``flask_sqlalchemy.X`` those of ``ampulla.db.X``; a few modules map elsewhere (``flask.sansio.app`` →
  :mod:`ampulla.app`, ``flask.json.tag`` → the serializer in :mod:`ampulla.sessions`). Flask's class names map to
  Ampulla's (``Flask`` → :class:`~ampulla.Ampulla`, ``FlaskClient`` → ``AmpullaClient``,
  ``SQLAlchemy`` → :class:`~ampulla.db.Database`).
- Where Ampulla has no such module yet (``ampulla.signals``, ``ampulla.logging``, ...), the alias is an empty
  module: names Ampulla lacks raise :class:`AttributeError` (an :class:`ImportError` in ``from ... import``), never
  a stand-in. Once the module exists, the alias serves it with no change here.
- The packages ``flask`` and ``flask_sqlalchemy`` serve exactly the names Flask and Flask-SQLAlchemy export, each
  from the alias of the module that defines it, and their submodules as attributes.
- An alias binds a name on first use, as Flask's modules bind what they import (``from .globals import
  request``): later reads cost a plain attribute lookup, and rebinding Ampulla's module afterwards does not
  change what the alias already serves.
- Assigning a name on an alias (``monkeypatch.setattr(flask.helpers, "x", ...)``) stays on the alias: Ampulla's
  own modules are never changed through one (patch ``ampulla.helpers`` to change what Ampulla calls).

``flask.__version__`` and ``flask_sqlalchemy.__version__`` answer ``"3.1.3"`` and ``"3.1.1"`` with the same
:class:`DeprecationWarning` as the real packages, and :func:`importlib.metadata.version` answers the same for
``"flask"`` and ``"flask-sqlalchemy"`` while the patch is active.

Importing this module after real Flask (or Flask-SQLAlchemy) was imported raises :class:`ImportError`: the objects
already made from real Flask cannot be switched. A process that never imports it is untouched.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from importlib.metadata import Distribution, DistributionFinder
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["AliasModule", "FlaskAliasFinder", "install", "installed_finder"]

#: The releases whose API the aliases present.
FLASK_VERSION = "3.1.3"
FLASK_SQLALCHEMY_VERSION = "3.1.1"

_PACKAGES = ("flask", "flask_sqlalchemy")


@dataclass(frozen=True)
class _Alias:
    """How one Flask module name resolves to Ampulla's names.

    Attributes:
        sources: Ampulla modules whose attributes the alias serves under the same names, first match wins. A source
            that does not exist (yet) is skipped.
        renames: Flask's name → ``"ampulla.module:name"`` where Ampulla's name differs.
        exports: For a package: each name it re-exports → the Flask module that defines it. When set, the package
            serves only these names (and its submodules).
        package: Whether the alias is a package (has submodules).
    """

    sources: tuple[str, ...] = ()
    renames: Mapping[str, str] = field(default_factory=dict)
    exports: Mapping[str, str] | None = None
    package: bool = False


def _exports(table: Mapping[str, str]) -> dict[str, str]:
    """Expand ``{"flask.module": "name other"}`` into ``{"name": "flask.module", "other": "flask.module"}``."""
    return {name: module for module, names in table.items() for name in names.split()}


#: What ``flask/__init__.py`` of Flask 3.1.3 exports, by the module that defines each name.
_FLASK_EXPORTS = _exports(
    {
        "flask.app": "Flask",
        "flask.blueprints": "Blueprint",
        "flask.config": "Config",
        "flask.ctx": "after_this_request copy_current_request_context has_app_context has_request_context",
        "flask.globals": "current_app g request session",
        "flask.helpers": "abort flash get_flashed_messages get_template_attribute make_response redirect send_file"
        " send_from_directory stream_with_context url_for",
        "flask.json": "jsonify",
        "flask.signals": "appcontext_popped appcontext_pushed appcontext_tearing_down before_render_template"
        " got_request_exception message_flashed request_finished request_started request_tearing_down"
        " template_rendered",
        "flask.templating": "render_template render_template_string stream_template stream_template_string",
        "flask.wrappers": "Request Response",
    }
)

_FLASK_TAG_NAMES = (
    "JSONTag PassDict PassList TagBytes TagDateTime TagDict TagMarkup TagTuple TagUUID TaggedJSONSerializer"
)

_ALIASES: dict[str, _Alias] = {
    "flask": _Alias(exports=_FLASK_EXPORTS, package=True),
    "flask.app": _Alias(("ampulla.app",), {"Flask": "ampulla.app:Ampulla"}),
    "flask.blueprints": _Alias(("ampulla.blueprints",)),
    "flask.cli": _Alias(("ampulla.cli",), {"FlaskGroup": "ampulla.cli:AmpullaGroup"}),
    "flask.config": _Alias(("ampulla.config",)),
    "flask.ctx": _Alias(("ampulla.ctx",)),
    "flask.debughelpers": _Alias(("ampulla.debughelpers",)),
    "flask.globals": _Alias(("ampulla.globals",)),
    "flask.helpers": _Alias(("ampulla.helpers",)),
    "flask.json": _Alias(("ampulla.json",), package=True),
    "flask.json.provider": _Alias(("ampulla.json",)),
    "flask.json.tag": _Alias(
        ("ampulla.json_tag",), {name: f"ampulla.sessions:{name}" for name in _FLASK_TAG_NAMES.split()}
    ),
    "flask.logging": _Alias(("ampulla.logging",)),
    "flask.sansio": _Alias(package=True),
    "flask.sansio.app": _Alias(("ampulla.app",), {"App": "ampulla.app:Ampulla"}),
    "flask.sansio.blueprints": _Alias(("ampulla.blueprints",)),
    "flask.sansio.scaffold": _Alias(("ampulla.scaffold",)),
    "flask.sessions": _Alias(("ampulla.sessions",)),
    "flask.signals": _Alias(("ampulla.signals",)),
    "flask.templating": _Alias(("ampulla.templating",), {"DispatchingJinjaLoader": "ampulla.templating:AmpullaLoader"}),
    "flask.testing": _Alias(
        ("ampulla.testing",),
        {"FlaskClient": "ampulla.testing:AmpullaClient", "FlaskCliRunner": "ampulla.testing:AmpullaCliRunner"},
    ),
    "flask.typing": _Alias(("ampulla.typing",), {"ResponseReturnValue": "ampulla.app:ResponseReturnValue"}),
    "flask.views": _Alias(("ampulla.views",)),
    "flask.wrappers": _Alias(("ampulla.wrappers",)),
    "flask_sqlalchemy": _Alias(exports={"SQLAlchemy": "flask_sqlalchemy.extension"}, package=True),
    "flask_sqlalchemy.cli": _Alias(("ampulla.db.cli",)),
    "flask_sqlalchemy.extension": _Alias(("ampulla.db.extension",), {"SQLAlchemy": "ampulla.db.extension:Database"}),
    "flask_sqlalchemy.model": _Alias(("ampulla.db.model",), {"Model": "ampulla.db.mixin:Model"}),
    "flask_sqlalchemy.pagination": _Alias(("ampulla.db.pagination",)),
    "flask_sqlalchemy.query": _Alias(("ampulla.db.query",)),
    "flask_sqlalchemy.record_queries": _Alias(("ampulla.db.record_queries",)),
    "flask_sqlalchemy.session": _Alias(("ampulla.db.session",)),
    "flask_sqlalchemy.table": _Alias(("ampulla.db.table",)),
    "flask_sqlalchemy.track_modifications": _Alias(("ampulla.db.track_modifications",)),
}

#: Distribution name (normalised) → (name as published, version, summary).
_DISTRIBUTIONS: dict[str, tuple[str, str, str]] = {
    "flask": ("Flask", FLASK_VERSION, "Flask's API, served by Ampulla (ampulla.flask_patch)."),
    "flask-sqlalchemy": (
        "Flask-SQLAlchemy",
        FLASK_SQLALCHEMY_VERSION,
        "Flask-SQLAlchemy's API, served by ampulla.db (ampulla.flask_patch).",
    ),
}

_VERSION_OWNERS = {"flask": "flask", "flask_sqlalchemy": "flask-sqlalchemy"}
_MISSING = object()


def _import_optional(name: str) -> ModuleType | None:
    """Import an Ampulla module, or None when that module does not exist (an error inside it still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def _split_target(target: str) -> tuple[str, str]:
    module, _, attr = target.partition(":")
    return module, attr


class AliasModule(ModuleType):
    """A ``flask.*`` or ``flask_sqlalchemy.*`` module whose names are Ampulla's.

    A name resolves on its first read and is then bound on the alias; a name Ampulla lacks raises
    :class:`AttributeError` each time (so a later ``ampulla.signals`` is picked up).
    """

    _ampulla_alias: _Alias

    def __init__(self, name: str) -> None:
        super().__init__(name)
        alias = _ALIASES[name]
        ModuleType.__setattr__(self, "_ampulla_alias", alias)
        ModuleType.__setattr__(self, "__doc__", f"Flask's ``{name}``, served by Ampulla (see ampulla.flask_patch).")

    def _ampulla_sources(self) -> list[ModuleType]:
        modules: list[ModuleType] | None = vars(self).get("_ampulla_modules")
        if modules is None:
            modules = [module for module in map(_import_optional, self._ampulla_alias.sources) if module is not None]
            ModuleType.__setattr__(self, "_ampulla_modules", modules)
        return modules

    def _ampulla_target(self, name: str) -> tuple[ModuleType, str] | None:
        """Where the alias's own (not re-exported) name lives in Ampulla: a module and its attribute name."""
        alias = self._ampulla_alias
        if name in alias.renames:
            module_name, attr = _split_target(alias.renames[name])
            module = _import_optional(module_name)
            if module is not None and hasattr(module, attr):
                return module, attr
        for module in self._ampulla_sources():
            if hasattr(module, name):
                return module, name
        return None

    def _ampulla_child(self, name: str) -> ModuleType | None:
        """The alias submodule ``<self>.name``, imported on first access like Flask's eagerly imported ones."""
        child = f"{self.__name__}.{name}"
        if child not in _ALIASES:
            return None
        return importlib.import_module(child)

    def __getattr__(self, name: str) -> Any:
        alias = self._ampulla_alias
        if name == "__version__" and self.__name__ in _VERSION_OWNERS:
            dist = _VERSION_OWNERS[self.__name__]
            warnings.warn(
                f"The '__version__' attribute is deprecated and will be removed in {_DISTRIBUTIONS[dist][0]} 3.2."
                " Use feature detection or"
                f" 'importlib.metadata.version(\"{dist}\")' instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            return _DISTRIBUTIONS[dist][1]
        if name == "__all__":
            return sorted(n for n in self._ampulla_public_names() if not n.startswith("_"))
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        if alias.exports is not None:
            owner = alias.exports.get(name)
            if owner is not None:
                if owner == f"{self.__name__}.{name}":
                    return importlib.import_module(owner)
                value = getattr(importlib.import_module(owner), name, _MISSING)
                if value is not _MISSING:
                    # PERF: bound once, as Flask's modules bind their imports: later reads are plain lookups.
                    ModuleType.__setattr__(self, name, value)
                    return value
        else:
            target = self._ampulla_target(name)
            if target is not None:
                value = getattr(*target)
                ModuleType.__setattr__(self, name, value)
                return value
        child = self._ampulla_child(name)
        if child is not None:
            return child
        raise AttributeError(
            f"module {self.__name__!r} has no attribute {name!r} (Ampulla does not provide it yet;"
            " see docs/compatibility.md)"
        )

    def _ampulla_public_names(self) -> set[str]:
        alias = self._ampulla_alias
        if alias.exports is not None:
            names = {name for name in alias.exports if self._ampulla_has(name)}
        else:
            names = {name for name in alias.renames if self._ampulla_target(name) is not None}
            for module in self._ampulla_sources():
                names.update(vars(module))
        return names

    def _ampulla_has(self, name: str) -> bool:
        try:
            self.__getattr__(name)
        except AttributeError:
            return False
        return True

    def __dir__(self) -> list[str]:
        prefix = self.__name__ + "."
        children = {n[len(prefix) :] for n in _ALIASES if n.startswith(prefix) and "." not in n[len(prefix) :]}
        return sorted(set(super().__dir__()) | self._ampulla_public_names() | children)


class _AliasDistribution(Distribution):
    """Installed-distribution metadata for an aliased package, as :mod:`importlib.metadata` reads it."""

    def __init__(self, key: str) -> None:
        self._name, self._version, self._summary = _DISTRIBUTIONS[key]
        self._top_level = "flask" if key == "flask" else "flask_sqlalchemy"

    def read_text(self, filename: str) -> str | None:
        """Return the text of one metadata file (``METADATA``, ``top_level.txt``), None for others.

        Args:
            filename: The file's name inside the distribution's metadata directory.

        Returns:
            Its text, or None when the distribution has no such file.
        """
        if filename in ("METADATA", "PKG-INFO"):
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: {self._version}\nSummary: {self._summary}\n"
        if filename == "top_level.txt":
            return self._top_level + "\n"
        return None

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        """Return a path relative to Ampulla's package directory (the aliases have no files of their own).

        Args:
            path: A path relative to the distribution's root.

        Returns:
            The path under Ampulla's package directory.
        """
        return Path(__file__).parent / path


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class FlaskAliasFinder(DistributionFinder, Loader):
    """Finds, loads and describes the alias modules: the meta-path hook that :func:`install` puts first."""

    ampulla_flask_patch = True

    def find_spec(
        self, fullname: str, path: Iterable[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Return a spec for an aliased Flask module, None for any other name.

        Args:
            fullname: The module's full dotted name.
            path: The parent package's ``__path__`` (unused).
            target: The module being reloaded, if any (unused).

        Returns:
            A spec whose loader is this finder, or None to let the other finders answer.
        """
        alias = _ALIASES.get(fullname)
        if alias is None:
            return None
        return ModuleSpec(fullname, self, origin="ampulla.flask_patch", is_package=alias.package)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        """Create the alias module for ``spec``.

        Args:
            spec: A spec returned by :meth:`find_spec`.

        Returns:
            A new :class:`AliasModule`.
        """
        return AliasModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        """Import the Ampulla modules behind an alias, so their import errors surface at ``import flask.x``.

        Args:
            module: The module made by :meth:`create_module`.
        """
        if isinstance(module, AliasModule):
            module._ampulla_sources()

    def find_distributions(self, context: DistributionFinder.Context | None = None) -> Iterator[Distribution]:
        """Yield the metadata of Flask and Flask-SQLAlchemy as the aliases present them.

        Args:
            context: The name asked for (None for every distribution).

        Yields:
            The matching alias distributions; they come before any installed real Flask's.
        """
        name = getattr(context, "name", None)
        for key in _DISTRIBUTIONS:
            if name is None or _normalise(name) == key:
                yield _AliasDistribution(key)

    def invalidate_caches(self) -> None:
        """Nothing is cached: part of the finder protocol."""


def installed_finder() -> FlaskAliasFinder | None:
    """Return the finder on :data:`sys.meta_path` if the patch is active, else None."""
    for finder in sys.meta_path:
        # NOTE: by marker, not isinstance: a reloaded module has a new class, and the first finder stays.
        if getattr(finder, "ampulla_flask_patch", False):
            return finder  # type: ignore[return-value]
    return None


def _imported_real_flask() -> list[str]:
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if any(name == pkg or name.startswith(pkg + ".") for pkg in _PACKAGES)
        and module is not None
        and "_ampulla_alias" not in vars(module)
    )


def install() -> FlaskAliasFinder:
    """Put the alias finder first on :data:`sys.meta_path` (once); importing this module calls it.

    Returns:
        The active finder.

    Raises:
        ImportError: Real Flask or Flask-SQLAlchemy modules were imported before the patch.
    """
    real = _imported_real_flask()
    if real:
        shown = ", ".join(real[:5]) + (" ..." if len(real) > 5 else "")
        where = getattr(sys.modules[real[0]], "__file__", None) or "?"
        raise ImportError(
            f"ampulla.flask_patch was imported after real Flask ({shown}, from {where}). Import it before anything"
            " that imports flask or flask_sqlalchemy: make `import ampulla.flask_patch` the first import of the"
            " program (its entry point, the WSGI/ASGI module, or conftest.py)."
        )
    finder = installed_finder()
    if finder is None:
        finder = FlaskAliasFinder()
        sys.meta_path.insert(0, finder)
    return finder


install()
