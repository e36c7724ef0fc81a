"""Registration shared by :class:`~ampulla.Ampulla` and :class:`~ampulla.Blueprint`.

Routes, hooks and error handlers are stored in dicts keyed by blueprint name (``None`` for the application);
the application turns them into one precomputed chain per endpoint before its first request.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import IO, Any, TypeVar

from .exceptions import HTTPException, default_exceptions

F = TypeVar("F", bound=Callable[..., Any])
ErrorHandlerKey = type[BaseException] | int


def get_root_path(import_name: str) -> str:
    """The folder of the module or package ``import_name`` (the current directory for ``__main__`` shells)."""
    module = sys.modules.get(import_name)
    filename: str | None = getattr(module, "__file__", None) if module is not None else None
    if filename:
        return os.path.dirname(os.path.abspath(filename))
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None or spec.origin in ("namespace", "built-in"):
        return os.getcwd()
    return os.path.dirname(os.path.abspath(spec.origin))


def _package_location(import_name: str) -> str | None:
    """The folder on ``sys.path`` that ``import_name``'s top-level package or module is imported from."""
    top = import_name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    locations = spec.submodule_search_locations
    if not locations:
        return os.path.dirname(str(spec.origin))
    if spec.origin is not None and spec.origin != "namespace":
        # A regular package: <location>/<package>/__init__.py.
        return os.path.dirname(os.path.dirname(spec.origin))
    # A namespace package: the portion that holds the submodule, else the first one.
    portion = locations[0]
    try:
        sub = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        sub = None
    if sub is not None and sub.submodule_search_locations:
        common = pathlib.Path(os.path.commonpath(list(sub.submodule_search_locations)))
        portion = next((loc for loc in locations if common.is_relative_to(loc)), portion)
    return os.path.dirname(portion)


def find_package(import_name: str) -> tuple[str | None, str]:
    """Where ``import_name`` is installed: ``(prefix, folder on sys.path)``.

    The prefix is the installation prefix (``sys.prefix`` or a virtualenv's folder holding ``lib``) when the
    package is installed, else ``None`` (the package is imported from a project folder, or cannot be found:
    then the folder is the current directory).
    """
    location = _package_location(import_name) or os.getcwd()
    prefix = os.path.abspath(sys.prefix)
    if pathlib.PurePath(location).is_relative_to(prefix):
        return prefix, location
    parent, folder = os.path.split(location)
    if folder.lower() != "site-packages":
        return None, location
    grandparent, lib = os.path.split(parent)
    if lib.lower() == "lib":  # <prefix>/lib/site-packages (Windows)
        return grandparent, location
    if os.path.basename(grandparent).lower() == "lib":  # <prefix>/lib/pythonX.Y/site-packages
        return os.path.dirname(grandparent), location
    return parent, location


class HookList(list[Callable[..., Any]]):
    """A list of hook functions that tells its registry's owner when it changes.

    Flask reads its hook lists on every request, and extensions rely on that: they may append a function to
    ``app.after_request_funcs[None]`` directly, even while a request is under way. Ampulla compiles the lists
    into each endpoint's plan, so a change must reach the plans: every mutating method calls ``changed()``.
    """

    __slots__ = ("_changed",)

    def __init__(self, changed: Callable[[], None], functions: Iterable[Callable[..., Any]] = ()) -> None:
        super().__init__(functions)
        self._changed = changed

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)  # a copy is a plain list, detached from the application


def _notifying(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def mutate(self: HookList, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self._changed()
        return result

    mutate.__name__ = mutate.__qualname__ = name
    return mutate


for _name in (
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse",
    "__setitem__", "__delitem__", "__iadd__", "__imul__",
):  # fmt: skip
    setattr(HookList, _name, _notifying(_name))


class HookRegistry(defaultdict[str | None, list[Callable[..., Any]]]):
    """Flask's ``defaultdict(list)`` of hook functions by blueprint name, whose lists are :class:`HookList`.

    Adding, replacing or removing a list calls ``changed()``, as a change to a list in it does; looking up a
    missing key (which adds an empty list) does not.
    """

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__(list)
        self._changed = changed

    def __missing__(self, key: str | None) -> list[Callable[..., Any]]:
        value = HookList(self._changed)
        dict.__setitem__(self, key, value)
        return value

    def __setitem__(self, key: str | None, value: Iterable[Callable[..., Any]]) -> None:
        if not isinstance(value, HookList):
            value = HookList(self._changed, value)
        super().__setitem__(key, value)
        self._changed()

    def setdefault(self, key: str | None, default: Iterable[Callable[..., Any]] = ()) -> list[Callable[..., Any]]:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __delitem__(self, key: str | None) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, *args: Any) -> Any:
        result = super().pop(*args)
        self._changed()
        return result

    def clear(self) -> None:
        super().clear()
        self._changed()

    def copy(self) -> defaultdict[str | None, list[Callable[..., Any]]]:  # type: ignore[override]
        """Flask's plain ``defaultdict(list)`` with the same lists (copied), detached from the application."""
        return defaultdict(list, {key: list(value) for key, value in self.items()})

    __copy__ = copy  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return defaultdict, (list, {key: list(value) for key, value in self.items()})


def _endpoint_from_view_func(view_func: Callable[..., Any]) -> str:
    if view_func is None:
        raise ValueError("an endpoint name is required when no view function is given")
    return view_func.__name__


class Scaffold:
    """The registration API common to applications and blueprints.

    Args:
        import_name: The module name, usually ``__name__``; locates templates and static files.
        static_folder: Folder of static files, relative to ``root_path``.
        static_url_path: URL prefix of static files.
        template_folder: Folder of templates, relative to ``root_path``.
        root_path: Override the folder found from ``import_name``.
    """

    name: str

    def __init__(
        self,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        root_path: str | None = None,
    ) -> None:
        self.import_name = import_name
        self.root_path = root_path if root_path is not None else get_root_path(import_name)
        self._static_folder = os.fspath(static_folder).rstrip("/\\") if static_folder is not None else None
        self._static_url_path = static_url_path.rstrip("/") if static_url_path is not None else None
        self.template_folder = os.fspath(template_folder) if template_folder is not None else None
        self.view_functions: dict[str, Callable[..., Any]] = {}
        # Registries keyed by blueprint name (None: the app itself), defaultdicts as in Flask.
        self.error_handler_spec: defaultdict[
            str | None, defaultdict[int | None, dict[type[BaseException], Callable[..., Any]]]
        ] = defaultdict(lambda: defaultdict(dict))
        # The hooks an endpoint's plan holds tell the owner when they change (see HookList).
        changed = self._registries_changed
        self.before_request_funcs: defaultdict[str | None, list[Callable[..., Any]]] = HookRegistry(changed)
        self.after_request_funcs: defaultdict[str | None, list[Callable[..., Any]]] = HookRegistry(changed)
        self.teardown_request_funcs: defaultdict[str | None, list[Callable[..., Any]]] = HookRegistry(changed)
        self.template_context_processors: defaultdict[str | None, list[Callable[..., Any]]] = defaultdict(
            list, {None: []}
        )
        self.url_value_preprocessors: defaultdict[str | None, list[Callable[..., Any]]] = HookRegistry(changed)
        self.url_default_functions: defaultdict[str | None, list[Callable[..., Any]]] = defaultdict(list)
        self.before_websocket_funcs: defaultdict[str | None, list[Callable[..., Any]]] = HookRegistry(changed)

    def _check_setup_finished(self, f_name: str) -> None:
        raise NotImplementedError

    def _registries_changed(self) -> None:
        """A list of ``before_request``, ``after_request``, ``teardown_request``, ``url_value_preprocessor`` or
        ``before_websocket`` functions changed (here: nothing to do; the application compiles its plans again)."""

    # ------------------------------------------------------------------------------------------ folders
    @property
    def static_folder(self) -> str | None:
        """The absolute static folder, or ``None``."""
        if self._static_folder is None:
            return None
        return os.path.join(self.root_path, self._static_folder)

    @static_folder.setter
    def static_folder(self, value: str | os.PathLike[str] | None) -> None:
        self._static_folder = os.fspath(value).rstrip("/\\") if value is not None else None

    @property
    def has_static_folder(self) -> bool:
        """Whether a static folder is configured."""
        return self._static_folder is not None

    @property
    def static_url_path(self) -> str | None:
        """The URL prefix of static files (``/static`` by default)."""
        if self._static_url_path is not None:
            return self._static_url_path
        if self._static_folder is not None:
            basename = os.path.basename(self._static_folder)
            return f"/{basename}".rstrip("/")
        return None

    @static_url_path.setter
    def static_url_path(self, value: str | None) -> None:
        self._static_url_path = value.rstrip("/") if value is not None else None

    def open_resource(self, resource: str, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
        """Open a file relative to :attr:`root_path` for reading, e.g. ``app.open_resource("schema.sql")``.

        Args:
            resource: The path, relative to the root path (``/`` separated).
            mode: ``"rb"`` (default), ``"r"`` or ``"rt"``.
            encoding: The text encoding in a text mode.

        Raises:
            ValueError: ``mode`` is not a reading mode.
        """
        if mode not in ("r", "rt", "rb"):
            raise ValueError("Resources can only be opened for reading.")
        path = os.path.join(self.root_path, resource)
        if mode == "rb":
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    # ------------------------------------------------------------------------------------------ routes
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        """Register a URL rule; ``route`` is its decorator form.

        Args:
            rule: The URL pattern, e.g. ``"/users/<int:id>"``.
            endpoint: The endpoint name (default: the view function's name).
            view_func: The view; may be omitted and attached later with ``@endpoint(name)``.
            provide_automatic_options: Answer ``OPTIONS`` automatically (default True unless ``OPTIONS`` is
                listed in ``methods``).
            **options: ``methods``, ``defaults``, ``strict_slashes``, ``redirect_to``, ``subdomain``, ...
        """
        raise NotImplementedError

    def route(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function as the view for ``rule``.

        Args:
            rule: The URL pattern.
            **options: As for :meth:`add_url_rule`, e.g. ``methods=["GET", "POST"]``.
        """

        def decorator(f: F) -> F:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(rule, endpoint, f, **options)
            return f

        return decorator

    def _method_route(self, method: str, rule: str, options: dict[str, Any]) -> Callable[[F], F]:
        if "methods" in options:
            raise TypeError(f"use the route() decorator to pass methods; {method.lower()}() sets them")
        return self.route(rule, methods=[method], **options)

    def get(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Shortcut for ``route(rule, methods=["GET"])``."""
        return self._method_route("GET", rule, options)

    def post(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Shortcut for ``route(rule, methods=["POST"])``."""
        return self._method_route("POST", rule, options)

    def put(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Shortcut for ``route(rule, methods=["PUT"])``."""
        return self._method_route("PUT", rule, options)

    def patch(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Shortcut for ``route(rule, methods=["PATCH"])``."""
        return self._method_route("PATCH", rule, options)

    def delete(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Shortcut for ``route(rule, methods=["DELETE"])``."""
        return self._method_route("DELETE", rule, options)

    def websocket(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register an ``async def`` view for WebSocket connections to ``rule`` (ASGI servers only).

        Inside it, ``from ampulla import websocket`` gives ``await websocket.receive()``, ``send()``,
        ``accept(subprotocol=...)`` and ``close()``.
        """

        def decorator(f: F) -> F:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(
                rule, endpoint, f, websocket=True, methods=["GET"], provide_automatic_options=False, **options
            )
            return f

        return decorator

    def before_websocket(self, f: F) -> F:
        """Run ``f()`` before each WebSocket view; a non-``None`` return value closes the connection (1008)."""
        return self._register(self.before_websocket_funcs, "before_websocket", f)

    def endpoint(self, endpoint: str) -> Callable[[F], F]:
        """Attach the decorated function to ``endpoint`` (a rule added with ``add_url_rule`` and no view)."""

        def decorator(f: F) -> F:
            self._check_setup_finished("endpoint")
            self.view_functions[endpoint] = f
            return f

        return decorator

    # ------------------------------------------------------------------------------------------ hooks
    def _register(self, store: dict[str | None, list[Callable[..., Any]]], name: str, f: F) -> F:
        self._check_setup_finished(name)
        store[None].append(f)
        return f

    def before_request(self, f: F) -> F:
        """Run ``f()`` before each request; a non-``None`` return value is used as the response."""
        return self._register(self.before_request_funcs, "before_request", f)

    def after_request(self, f: F) -> F:
        """Run ``f(response)`` after each request; it must return a response (last registered runs first)."""
        return self._register(self.after_request_funcs, "after_request", f)

    def teardown_request(self, f: F) -> F:
        """Run ``f(exc)`` when the request ends, always, even after an error (``exc`` or ``None``)."""
        return self._register(self.teardown_request_funcs, "teardown_request", f)

    def context_processor(self, f: F) -> F:
        """Register ``f() -> dict``; its items are added to every template's context."""
        return self._register(self.template_context_processors, "context_processor", f)

    def url_value_preprocessor(self, f: F) -> F:
        """Run ``f(endpoint, values)`` before ``before_request`` hooks; it may change the view arguments."""
        return self._register(self.url_value_preprocessors, "url_value_preprocessor", f)

    def url_defaults(self, f: F) -> F:
        """Run ``f(endpoint, values)`` when building URLs; it may fill in values."""
        return self._register(self.url_default_functions, "url_defaults", f)

    # ------------------------------------------------------------------------------------------ errors
    def errorhandler(self, code_or_exception: ErrorHandlerKey) -> Callable[[F], F]:
        """Register the decorated function to handle a status code or an exception class.

        Args:
            code_or_exception: ``404``, or a class such as ``ValueError`` or an ``HTTPException`` subclass.
        """

        def decorator(f: F) -> F:
            self.register_error_handler(code_or_exception, f)
            return f

        return decorator

    def register_error_handler(self, code_or_exception: ErrorHandlerKey, f: Callable[..., Any]) -> None:
        """Non-decorator form of :meth:`errorhandler`."""
        self._check_setup_finished("register_error_handler")
        exc_class, code = self._get_exc_class_and_code(code_or_exception)
        self.error_handler_spec[None][code][exc_class] = f

    @staticmethod
    def _get_exc_class_and_code(key: ErrorHandlerKey) -> tuple[type[BaseException], int | None]:
        if isinstance(key, int):
            try:
                exc_class: type[BaseException] = default_exceptions[key]
            except KeyError:
                raise ValueError(
                    f"'{key}' is not a recognized HTTP error code. Use a subclass of HTTPException with that "
                    "code instead."
                ) from None
        else:
            exc_class = key
        if isinstance(exc_class, Exception):
            raise TypeError(
                f"{exc_class!r} is an instance, not a class. Handlers can only be registered for Exception classes"
                " or HTTP error codes."
            )
        if not isinstance(exc_class, type) or not issubclass(exc_class, Exception):
            name = getattr(exc_class, "__name__", repr(exc_class))
            raise ValueError(
                f"'{name}' is not a subclass of Exception. Handlers can only be registered for Exception classes or"
                " HTTP error codes."
            )
        if issubclass(exc_class, HTTPException):
            return exc_class, exc_class.code
        return exc_class, None


def registering(register: Callable[[Callable[..., Any], str | None], None], name: str | None) -> Callable[[F], F]:
    """A decorator that passes the function and ``name`` to ``register`` and returns the function unchanged."""

    def decorator(f: F) -> F:
        register(f, name)
        return f

    return decorator


def blueprint_chain(endpoint: str | None) -> tuple[str, ...]:
    """The blueprints of a dotted endpoint, innermost first: ``"a.b.view"`` gives ``("a.b", "a")``."""
    if not endpoint or "." not in endpoint:
        return ()
    parts = endpoint.rpartition(".")[0].split(".")
    return tuple(".".join(parts[:i]) for i in range(len(parts), 0, -1))


def iter_chain(blueprints: Iterable[str]) -> tuple[str | None, ...]:
    """The registry keys for a request: its blueprints (innermost first), then the app (``None``)."""
    return (*blueprints, None)
