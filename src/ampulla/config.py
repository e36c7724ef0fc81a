"""``app.config``: a dict with loaders for objects, mappings, files and environment variables."""

from __future__ import annotations

import errno
import json
import os
import types
from collections.abc import Callable, Mapping
from typing import IO, Any


class Config(dict[str, Any]):
    """The application's configuration. Only UPPER-CASE keys are loaded by the ``from_*`` helpers.

    Args:
        root_path: The folder relative file names are resolved against.
        defaults: Initial values.
    """

    #: Goes up on every change of a key, so the application reads the settings it uses on every request
    #: again only when they may have changed (a change inside a nested value does not count).
    version = 0

    def __init__(self, root_path: str | os.PathLike[str] = ".", defaults: Mapping[str, Any] | None = None) -> None:
        super().__init__(defaults or {})
        self.root_path = os.fspath(root_path)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.version += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``dict.update``."""
        super().update(*args, **kwargs)
        self.version += 1

    def __ior__(self, other: Any) -> Config:  # type: ignore[override,misc]
        super().__ior__(other)
        self.version += 1
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``dict.setdefault``."""
        if key not in self:
            self.version += 1
        return super().setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        """``dict.pop``."""
        self.version += 1
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """``dict.popitem``."""
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        """``dict.clear``."""
        super().clear()
        self.version += 1

    def from_object(self, obj: object | str) -> None:
        """Load the upper-case attributes of an object, class or module (or an import path ``"pkg.mod:Obj"``)."""
        if isinstance(obj, str):
            obj = import_string(obj)
        for key in dir(obj):
            if key.isupper():
                self[key] = getattr(obj, key)

    def from_mapping(self, mapping: Mapping[str, Any] | None = None, **kwargs: Any) -> bool:
        """Load the upper-case keys of a mapping and of keyword arguments. Returns True."""
        items: dict[str, Any] = {}
        if mapping is not None:
            items.update(mapping)
        items.update(kwargs)
        for key, value in items.items():
            if key.isupper():
                self[key] = value
        return True

    def from_prefixed_env(self, prefix: str | None = None, *, loads: Callable[[str], Any] = json.loads) -> bool:
        """Load environment variables starting with ``PREFIX_``.

        Values are parsed with ``loads`` (JSON by default, so ``"5"`` is an int and ``"true"`` a bool);
        unparseable values stay strings. ``PREFIX_DB__HOST`` sets ``config["DB"]["HOST"]``.

        Args:
            prefix: The prefix, without the ``_``. By default ``FLASK_`` variables are read, then ``AMPULLA_``
                ones (which win), so the settings of an application ported from Flask keep working.
            loads: Parses each value.

        Returns:
            True.
        """
        for each in ("FLASK", "AMPULLA") if prefix is None else (prefix,):
            self._load_prefixed(f"{each}_", loads)
        return True

    def _load_prefixed(self, prefix: str, loads: Callable[[str], Any]) -> None:
        for key in sorted(os.environ):
            if not key.startswith(prefix):
                continue
            raw = os.environ[key]
            try:
                value: Any = loads(raw)
            except Exception:
                value = raw
            key = key[len(prefix) :]
            if "__" not in key:
                self[key] = value
                continue
            current: dict[str, Any] = self
            *parents, tail = key.split("__")
            for parent in parents:
                if parent not in current:
                    current[parent] = {}
                current = current[parent]
            current[tail] = value

    def from_file(
        self,
        filename: str | os.PathLike[str],
        load: Callable[[IO[Any]], Mapping[str, Any]],
        silent: bool = False,
        text: bool = True,
    ) -> bool:
        """Load a file with ``load`` (``json.load``, ``tomllib.load`` with ``text=False``) and its upper keys.

        Args:
            filename: Absolute, or relative to the app's root path.
            load: Reads an open file and returns a mapping.
            silent: Return False instead of raising when the file is missing.
            text: Open in text mode (``tomllib`` needs ``text=False``).

        Raises:
            OSError: The file cannot be read (unless ``silent`` and it does not exist).
        """
        path = os.path.join(self.root_path, filename)
        try:
            with open(path, "r" if text else "rb") as f:
                data = load(f)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        return self.from_mapping(data)

    def from_pyfile(self, filename: str | os.PathLike[str], silent: bool = False) -> bool:
        """Execute a Python file and load its upper-case names."""
        path = os.path.join(self.root_path, filename)
        module = types.ModuleType("config")
        module.__file__ = path
        try:
            with open(path, "rb") as f:
                exec(compile(f.read(), path, "exec"), module.__dict__)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        self.from_object(module)
        return True

    def from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Load the Python file named by an environment variable.

        Raises:
            RuntimeError: The variable is not set (unless ``silent``).
        """
        value = os.environ.get(variable_name)
        if not value:
            if silent:
                return False
            raise RuntimeError(
                f"The environment variable {variable_name!r} is not set; set it to the path of a configuration file"
            )
        return self.from_pyfile(value, silent=silent)

    def get_namespace(self, namespace: str, lowercase: bool = True, trim_namespace: bool = True) -> dict[str, Any]:
        """Keys starting with ``namespace`` (e.g. ``"IMAGE_STORE_"``) as a dict."""
        result: dict[str, Any] = {}
        for key, value in self.items():
            if not key.startswith(namespace):
                continue
            name = key[len(namespace) :] if trim_namespace else key
            result[name.lower() if lowercase else name] = value
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict.__repr__(self)}>"


def import_string(path: str) -> Any:
    """Import ``"package.module:attr"`` or ``"package.module.attr"``.

    Raises:
        ImportError: The module or attribute does not exist.
    """
    import importlib

    if ":" in path:
        module_name, _, attr = path.partition(":")
    elif "." in path:
        module_name, _, attr = path.rpartition(".")
        try:
            return importlib.import_module(path)
        except ImportError:
            pass
    else:
        return importlib.import_module(path)
    module = importlib.import_module(module_name)
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None
