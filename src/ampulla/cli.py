"""The ``ampulla`` command line: ``run``, ``routes``, ``shell``, ``db`` and the app's ``@app.cli`` commands.

Where the application is found, first match wins:

1. ``--app IMPORT``: ``module``, ``module:app``, ``module:create_app('dev')``, ``path/to/app.py[:app]``;
2. the ``AMPULLA_APP`` environment variable, same syntax;
3. ``app.py`` or ``wsgi.py`` in the current folder.

Inside a module the app is the Ampulla instance named ``app`` or ``application``, else the only Ampulla
instance, else what a factory ``create_app()`` or ``make_app()`` returns. The current folder is put on
``sys.path`` first, so ``ampulla --app examples.users.app:app run`` works from the project root.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import os
import platform
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import update_wrapper
from types import ModuleType
from typing import Any, TypeVar, cast, overload

import click

from . import __version__
from .app import Ampulla
from .concurrency import run_coroutine_sync
from .ctx import current_context
from .globals import g
from .helpers import get_debug_flag

F = TypeVar("F", bound=Callable[..., Any])

_APP_NAMES = ("app", "application")
_FACTORY_NAMES = ("create_app", "make_app")
_DEFAULT_FILES = ("app.py", "wsgi.py")
_SERVERS = ("dev", "uvicorn", "granian", "gunicorn")
_SERVER_APP_FACTORY = "ampulla.cli:load_app_from_env"


class NoAppException(click.UsageError):
    """The application could not be found or loaded; the message says what was tried and what to do."""

    #: True when no app was named at all (no --app, no AMPULLA_APP, no app.py or wsgi.py).
    nothing_configured = False


@dataclass(frozen=True)
class AppTarget:
    """Where an application was found, in a form a server can import in its own processes.

    Attributes:
        module: The module's import name (``"examples.users.app"``).
        expr: The attribute name (``"app"``) or the factory call (``"create_app('dev')"``).
        import_dir: The folder that must be on ``sys.path`` to import ``module``.
    """

    module: str
    expr: str
    import_dir: str

    @property
    def is_factory(self) -> bool:
        """Whether ``expr`` calls a factory (the server must call it, not just import it)."""
        return "(" in self.expr

    def __str__(self) -> str:
        return f"{self.module}:{self.expr}"


# ---------------------------------------------------------------------------------------------- discovery
def _split_import(spec: str) -> tuple[str, str | None]:
    # NOTE: a colon followed by a slash is a Windows drive ("C:\\app.py"), not the attribute separator.
    parts = re.split(r":(?![\\/])", spec.strip(), maxsplit=1)
    return parts[0], (parts[1].strip() or None) if len(parts) == 2 else None


def _prepare_import(path: str) -> tuple[str, str]:
    """The module name and the folder to put on ``sys.path`` for ``path`` (a dotted name or a ``.py`` file).

    A dotted name imports from the current folder. For a file, the folder above its outermost package is
    used, so ``src/pkg/app.py`` (with ``src/pkg/__init__.py``) imports as ``pkg.app`` from ``src``.
    """
    is_file = path.endswith(".py") or os.sep in path or bool(os.altsep and os.altsep in path)
    if not is_file:
        return path, os.getcwd()
    path = os.path.realpath(path)
    stem, ext = os.path.splitext(path)
    if ext == ".py":
        path = stem
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    names: list[str] = []
    while True:
        path, name = os.path.split(path)
        names.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    return ".".join(reversed(names)), path


def _put_on_sys_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _import_module(module_name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise NoAppException(
                f"Could not import {module_name!r} ({where}): there is no module named {missing!r} on the "
                f"Python path. Run ampulla from the folder that contains it (now {os.getcwd()}), or fix "
                "the name."
            ) from None
        raise _import_failed(module_name, where) from None
    except ImportError:
        raise _import_failed(module_name, where) from None


def _import_failed(module_name: str, where: str) -> NoAppException:
    return NoAppException(
        f"While importing {module_name!r} ({where}), an ImportError was raised:\n\n{traceback.format_exc()}"
    )


def _called_with_wrong_args(func: Callable[..., Any], error: BaseException) -> bool:
    """Whether a TypeError comes from calling ``func`` itself (not from inside it)."""
    tb = error.__traceback__
    code = getattr(func, "__code__", None)
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return False
        tb = tb.tb_next
    return True


def _check_app(value: Any, description: str) -> Ampulla:
    if isinstance(value, Ampulla):
        return value
    raise NoAppException(
        f"{description} gave {type(value).__name__!s}, not an Ampulla application. Point --app at the "
        "Ampulla instance (module:app) or at a function that returns one (module:create_app())."
    )


def _find_best_app(module: ModuleType) -> tuple[Ampulla, str]:
    """The app of a module and how to name it: ``app``/``application``, the only instance, or a factory.

    Raises:
        NoAppException: None found, several found, or the factory needs arguments.
    """
    name = module.__name__
    for attr in _APP_NAMES:
        value = getattr(module, attr, None)
        if isinstance(value, Ampulla):
            return value, attr
    found: dict[int, tuple[str, Ampulla]] = {}
    for attr, value in vars(module).items():
        if isinstance(value, Ampulla) and id(value) not in found:
            found[id(value)] = (attr, value)
    if len(found) == 1:
        attr, app = next(iter(found.values()))
        return app, attr
    if len(found) > 1:
        names = ", ".join(sorted(attr for attr, _ in found.values()))
        raise NoAppException(
            f"Module {name!r} holds several Ampulla applications ({names}); say which one with "
            f"'--app {name}:NAME'."
        )
    for attr in _FACTORY_NAMES:
        factory = getattr(module, attr, None)
        if not inspect.isfunction(factory):
            continue
        try:
            value = factory()
        except TypeError as e:
            if not _called_with_wrong_args(factory, e):
                raise
            raise NoAppException(
                f"Module {name!r} has a factory {attr!r}, but it cannot be called without arguments. "
                f"Pass them in the import string: --app \"{name}:{attr}('arg')\"."
            ) from e
        return _check_app(value, f"The factory {name}:{attr}()"), f"{attr}()"
    raise NoAppException(
        f"Module {name!r} has no Ampulla application. Looked for an Ampulla instance named 'app' or "
        "'application' (or a single Ampulla instance under any name), then for a factory function "
        f"'create_app()' or 'make_app()'. Name it explicitly with '--app {name}:NAME'."
    )


def _find_app_by_string(module: ModuleType, app_name: str) -> tuple[Ampulla, str]:
    """The app named by ``app_name`` in ``module``: an attribute (``app``) or a call (``create_app(1)``).

    Raises:
        NoAppException: The name cannot be parsed, does not exist, or does not give an Ampulla app.
    """
    name = module.__name__
    try:
        expr = ast.parse(app_name.strip(), mode="eval").body
    except SyntaxError:
        raise NoAppException(
            f"Could not parse {app_name!r} as an attribute name or a function call, e.g. 'app' or "
            "\"create_app('dev')\"."
        ) from None
    call = isinstance(expr, ast.Call)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if isinstance(expr, ast.Name):
        attr = expr.id
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        attr = expr.func.id
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg is not None}
        except ValueError:
            raise NoAppException(
                f"The arguments in {app_name!r} must be Python literals (strings, numbers, ...)."
            ) from None
    else:
        raise NoAppException(
            f"{app_name!r} is neither an attribute name nor a call of a function by its name, e.g. 'app' or "
            "\"create_app('dev')\"."
        )
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise NoAppException(f"Module {name!r} has no attribute {attr!r}.") from None
    if inspect.isfunction(value):
        try:
            result = value(*args, **kwargs)
        except TypeError as e:
            if not _called_with_wrong_args(value, e):
                raise
            raise NoAppException(
                f"The factory {name}:{attr} could not be called with the arguments in {app_name!r}: {e}"
            ) from e
        return _check_app(result, f"{name}:{app_name}"), (app_name.strip() if call else f"{attr}()")
    if call:
        raise NoAppException(
            f"{name}:{attr} is not a function, so it cannot be called; use '--app {name}:{attr}'."
        )
    return _check_app(value, f"{name}:{attr}"), attr


def _locate_app(spec: str, where: str) -> tuple[Ampulla, AppTarget]:
    """Import the app named by an import string (``module``, ``module:app``, ``path/app.py:create_app()``).

    Args:
        spec: The import string.
        where: Where it came from, for error messages (``"--app"``, ``"AMPULLA_APP"``).

    Raises:
        NoAppException: The module or the app cannot be found.
    """
    module_part, app_name = _split_import(spec)
    module_name, import_dir = _prepare_import(module_part)
    _put_on_sys_path(import_dir)
    module = _import_module(module_name, f"{where}={spec!r}")
    app, expr = _find_best_app(module) if app_name is None else _find_app_by_string(module, app_name)
    return app, AppTarget(module_name, expr, import_dir)


def prepare_import(path: str | os.PathLike[str]) -> str:
    """The module name to import for ``path`` (a dotted name or a ``.py`` file); puts the folder it imports
    from first on ``sys.path`` (above the outermost package for a file inside packages)."""
    module_name, import_dir = _prepare_import(os.fspath(path))
    if not sys.path or sys.path[0] != import_dir:
        sys.path.insert(0, import_dir)
    return module_name


def find_best_app(module: ModuleType) -> Ampulla:
    """The application of ``module``: an instance named ``app`` or ``application``, the only instance, or what
    a factory ``create_app()``/``make_app()`` returns.

    Raises:
        NoAppException: None found, several found, or the factory needs arguments.
    """
    return _find_best_app(module)[0]


def find_app_by_string(module: ModuleType, app_name: str) -> Ampulla:
    """The application named by ``app_name`` in ``module``: an attribute (``app``) or a factory call with
    literal arguments (``create_app('dev')``).

    Raises:
        NoAppException: The name cannot be parsed, does not exist, or does not give an application.
    """
    return _find_app_by_string(module, app_name)[0]


def locate_app(module_name: str, app_name: str | None, raise_if_not_found: bool = True) -> Ampulla | None:
    """Import ``module_name`` and find its application (``app_name``, else :func:`find_best_app`).

    Args:
        module_name: The module's import name.
        app_name: An attribute name or factory call, or ``None``.
        raise_if_not_found: When false, a module that does not exist gives ``None`` (an import error raised
            inside it still raises).

    Raises:
        NoAppException: The module or the application cannot be found or loaded.
    """
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if not (missing and (module_name == missing or module_name.startswith(missing + "."))):
            raise _import_failed(module_name, "import") from None
        if not raise_if_not_found:
            return None
        raise NoAppException(f"Could not import {module_name!r}.") from None
    except ImportError:
        raise _import_failed(module_name, "import") from None
    module = sys.modules[module_name]
    return find_best_app(module) if app_name is None else find_app_by_string(module, app_name)


class ScriptInfo:
    """Finds and loads the application for the commands of one invocation (``ctx.obj``).

    Args:
        app_import_path: The ``--app`` value.
        create_app: Returns the app; overrides discovery (for custom scripts and tests).
        set_debug_flag: Set the app's ``debug`` from the environment (``AMPULLA_DEBUG``, else ``FLASK_DEBUG``)
            once it is loaded.
        load_dotenv_defaults: Kept for Flask compatibility (stored).
    """

    def __init__(
        self,
        app_import_path: str | None = None,
        create_app: Callable[..., Ampulla] | None = None,
        set_debug_flag: bool = True,
        load_dotenv_defaults: bool = True,
    ) -> None:
        self.app_import_path = app_import_path
        self.create_app = create_app
        self.set_debug_flag = set_debug_flag
        self.load_dotenv_defaults = load_dotenv_defaults
        #: Where the app was found (``None`` when ``create_app`` made it).
        self.target: AppTarget | None = None
        self.data: dict[str, Any] = {}
        self._loaded_app: Ampulla | None = None

    def _spec(self) -> tuple[str | None, str]:
        if self.app_import_path:
            return self.app_import_path, "--app"
        env = os.environ.get("AMPULLA_APP", "").strip()
        if env:
            return env, "AMPULLA_APP"
        env = os.environ.get("FLASK_APP", "").strip()
        return (env or None), "FLASK_APP"

    def load_app(self) -> Ampulla:
        """The application, loaded once.

        Raises:
            NoAppException: Nothing was found; the message lists what was tried.
        """
        if self._loaded_app is not None:
            return self._loaded_app
        if self.create_app is not None:
            app = _check_app(self.create_app(), "create_app()")
        else:
            spec, where = self._spec()
            if spec is not None:
                app, self.target = _locate_app(spec, where)
            else:
                app, self.target = self._discover()
        if self.set_debug_flag:
            app.debug = get_debug_flag()
        self._loaded_app = app
        return app

    def _discover(self) -> tuple[Ampulla, AppTarget]:
        cwd = os.getcwd()
        for filename in _DEFAULT_FILES:
            path = os.path.join(cwd, filename)
            if os.path.isfile(path):
                return _locate_app(path, f"found {filename} in the current folder")
        error = NoAppException(
            "Could not find an Ampulla application. Tried:\n"
            "  - the --app option: not given\n"
            "  - the AMPULLA_APP (or FLASK_APP) environment variable: not set\n"
            f"  - app.py and wsgi.py in the current folder ({cwd}): not there\n"
            "Say where the app is: 'ampulla --app module:app COMMAND' (or --app \"module:create_app()\"), or "
            "'export AMPULLA_APP=module:app', or run ampulla in the folder that holds app.py or wsgi.py."
        )
        error.nothing_configured = True
        raise error

    def reload_paths(self) -> list[str]:
        """The folders the reloader watches: the app's top-level package (or module folder); no import."""
        spec, _ = self._spec()
        if self.create_app is not None:
            return [os.getcwd()]
        if spec is None:
            return [os.getcwd()]
        module_name, import_dir = _prepare_import(_split_import(spec)[0])
        top = module_name.split(".")[0]
        package_dir = os.path.join(import_dir, top)
        if os.path.isdir(package_dir):
            return [package_dir]
        if os.path.isfile(package_dir + ".py"):
            return [import_dir]
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.origin and os.path.isfile(found.origin):
            return [os.path.dirname(found.origin)]
        return [import_dir]


#: The app that ``ampulla run`` serves in this process (read by :func:`load_app_from_env`).
_served_app: Ampulla | None = None


def load_app_from_env() -> Ampulla:
    """App factory for servers started by ``ampulla run --server ...`` (``ampulla.cli:load_app_from_env``).

    Loads the app named by ``AMPULLA_APP`` in the server's worker process (factories and ``--debug`` need
    this: the server cannot call ``create_app('dev')`` itself), and applies ``AMPULLA_DEBUG``.
    """
    app = _served_app
    if app is None:
        app = ScriptInfo().load_app()
        debug = os.environ.get("AMPULLA_DEBUG")
        if debug is not None:
            app.debug = debug.lower() in ("1", "true", "yes", "on")
    return app


# ---------------------------------------------------------------------------------------------- groups
def _current_app() -> Ampulla:
    ctx = current_context()
    if ctx is None:
        raise RuntimeError("this command needs an application context (see ampulla.cli.with_appcontext)")
    return ctx.app


def with_appcontext(f: F) -> F:
    """Run a click command callback inside the app's application context (loading the app if needed).

    ``async def`` callbacks are run to completion on the thread's event loop.
    """

    @click.pass_context
    def decorator(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        if current_context() is None:
            app = ctx.ensure_object(ScriptInfo).load_app()
            ctx.with_resource(app.app_context())
        rv = ctx.invoke(f, *args, **kwargs)
        if inspect.isawaitable(rv):
            rv = run_coroutine_sync(rv)
        return rv

    return cast(F, update_wrapper(decorator, f))


class AppGroup(click.Group):
    """A click group whose commands run inside the application context (Flask's ``AppGroup``).

    ``app.cli`` is one: ``@app.cli.command()`` registers a command run as ``ampulla --app module:app NAME``.
    Pass ``with_appcontext=False`` to ``command()`` for a command that does not need the app.
    """

    @overload
    def command(self, __func: Callable[..., Any]) -> click.Command: ...

    @overload
    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]: ...

    def command(self, *args: Any, **kwargs: Any) -> Any:
        """Register a command (as ``click.Group.command``); its callback runs in the app context."""
        wrap = kwargs.pop("with_appcontext", True)
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.command()(args[0])

        def decorator(f: Callable[..., Any]) -> click.Command:
            register = click.Group.command(self, *args, **kwargs)
            return cast(click.Command, register(with_appcontext(f) if wrap else f))

        return decorator

    @overload
    def group(self, __func: Callable[..., Any]) -> click.Group: ...

    @overload
    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Group]: ...

    def group(self, *args: Any, **kwargs: Any) -> Any:
        """Register a subgroup; it is an :class:`AppGroup` unless ``cls`` says otherwise."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.group()(args[0])
        kwargs.setdefault("cls", AppGroup)
        return click.Group.group(self, *args, **kwargs)


def _require_app_context(command: click.Command) -> click.Command:
    """A copy of ``command`` (and of its subcommands) whose callbacks run inside the application context."""
    clone = copy.copy(command)
    if clone.callback is not None:
        clone.callback = with_appcontext(clone.callback)
    if isinstance(clone, click.Group):
        clone.commands = {name: _require_app_context(sub) for name, sub in clone.commands.items()}
    return clone


def _unavailable_command(name: str, message: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(message)

    return click.Command(
        name,
        callback=fail,
        help=message,
        short_help="(unavailable, see 'ampulla db --help')",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )


def _db_commands() -> click.Command | None:
    """``ampulla.db.cli.db_cli`` when it imports; a command explaining what to install when it cannot."""
    try:
        module = importlib.import_module("ampulla.db.cli")
    except ModuleNotFoundError as e:
        if e.name in ("ampulla.db", "ampulla.db.cli"):
            return None
        return _unavailable_command(
            "db",
            f"The db commands need the database extra: pip install 'ampulla[db]' (missing: {e.name!r}).",
        )
    except Exception as e:
        return _unavailable_command("db", f"The db commands could not be loaded: {type(e).__name__}: {e}")
    command = getattr(module, "db_cli", None)
    return _require_app_context(command) if isinstance(command, click.Command) else None


class AmpullaGroup(AppGroup):
    """The ``ampulla`` command: built-in commands, ``db``, plugins and the app's ``app.cli`` commands.

    Args:
        add_default_commands: Add ``run``, ``shell`` and ``routes``.
        create_app: Returns the app, instead of discovering it (for custom management scripts).
        add_version_option: Add ``--version``.
        load_plugins: Add the ``db`` group and commands of the ``ampulla.commands`` entry point group. An
            ``app.cli`` command named ``db`` (Flask-Migrate's, say) takes the built-in group's place.
        set_debug_flag: Set the loaded app's ``debug`` from ``AMPULLA_DEBUG`` (else ``FLASK_DEBUG``), as Flask does.
        load_dotenv: Accepted for Flask compatibility.
        **extra: Passed to :class:`click.Group`.
    """

    def __init__(
        self,
        add_default_commands: bool = True,
        create_app: Callable[[], Ampulla] | None = None,
        add_version_option: bool = True,
        load_plugins: bool = True,
        set_debug_flag: bool = True,
        load_dotenv: bool = True,
        **extra: Any,
    ) -> None:
        params: list[click.Parameter] = list(extra.pop("params", None) or ())
        #: Flask's switches: apply ``--debug`` to the app, and load ``.env``/``.flaskenv`` files first.
        self.set_debug_flag = set_debug_flag
        self.load_dotenv = load_dotenv
        params.append(
            click.Option(
                ["-A", "--app"],
                metavar="IMPORT",
                help=(
                    "The application: 'module:app', \"module:create_app('dev')\" or 'path/app.py'. "
                    "Default: $AMPULLA_APP, else app.py or wsgi.py in the current folder."
                ),
                is_eager=True,
                expose_value=False,
                allow_from_autoenv=False,
                callback=_set_app,
            )
        )
        if add_version_option:
            params.append(
                click.Option(
                    ["--version"],
                    is_flag=True,
                    is_eager=True,
                    expose_value=False,
                    callback=_print_version,
                    help="Show the Ampulla and Python versions and exit.",
                )
            )
        super().__init__(params=params, **extra)
        self.create_app = create_app
        self._plugins_loaded = not load_plugins
        #: Built-in commands that give way to an ``app.cli`` command of the same name.
        self._yielding: set[str] = set()
        if add_default_commands:
            self.add_command(run_command)
            self.add_command(shell_command)
            self.add_command(routes_command)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        db = _db_commands()
        if db is not None and db.name not in self.commands:
            self.add_command(db)
            self._yielding.add(db.name or "db")
        from importlib.metadata import entry_points

        for entry_point in entry_points(group="ampulla.commands"):
            try:
                command = entry_point.load()
            except Exception as e:
                command = _unavailable_command(entry_point.name, f"Could not load the command: {e}")
            self.add_command(command, entry_point.name)

    def _app_cli(
        self, ctx: click.Context, report: bool, quiet_if_unconfigured: bool = False
    ) -> click.Group | None:
        try:
            app = ctx.ensure_object(ScriptInfo).load_app()
        except NoAppException as e:
            if report and not (quiet_if_unconfigured and e.nothing_configured):
                click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
            return None
        cli = getattr(app, "cli", None)
        return cli if isinstance(cli, click.Group) else None

    def _app_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The app's own ``cmd_name`` command (``app.cli``), or None (no app configured, or no such command).

        An app that fails to load gives None too: ``--help`` still lists the built-in commands, and running the
        built-in one loads the app again and reports the error then.
        """
        try:
            app_cli = self._app_cli(ctx, report=False)
        except Exception:
            return None
        if app_cli is None or cmd_name not in app_cli.list_commands(ctx):
            return None
        return self._in_app_context(ctx, app_cli, cmd_name)

    @staticmethod
    def _in_app_context(ctx: click.Context, app_cli: click.Group, cmd_name: str) -> click.Command | None:
        """``app_cli``'s command ``cmd_name``, the app's context pushed for the command's run (unless active)."""
        app = ctx.ensure_object(ScriptInfo).load_app()
        active = current_context()
        if active is None or active.app is not app:
            ctx.with_resource(app.app_context())
        return app_cli.get_command(ctx, cmd_name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_plugins()
        if cmd_name in self._yielding:
            # NOTE: Ampulla's own 'db' is a default: an extension's command of that name (Flask-Migrate's
            # 'db' group, added to app.cli by Migrate(app, db)) is what the app asked for.
            command = self._app_command(ctx, cmd_name)
            if command is not None:
                return command
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        app_cli = self._app_cli(ctx, report=True)
        if app_cli is None:
            return None
        return self._in_app_context(ctx, app_cli, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        names = set(super().list_commands(ctx))
        try:
            # NOTE: plain 'ampulla --help' outside a project should not open with an error.
            app_cli = self._app_cli(ctx, report=True, quiet_if_unconfigured=True)
        except Exception:
            # NOTE: an app that fails to import must not hide the built-in commands from --help.
            click.secho(f"{traceback.format_exc()}\n", err=True, fg="red")
            app_cli = None
        if app_cli is not None:
            names.update(app_cli.list_commands(ctx))
        return sorted(names)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(create_app=self.create_app, set_debug_flag=self.set_debug_flag)
        return super().make_context(info_name, args, parent=parent, **extra)


def _set_app(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(ScriptInfo).app_import_path = value
    return value


def get_version(ctx: click.Context, param: click.Parameter | None, value: Any) -> None:
    """The ``--version`` option's callback: print the versions of Python, Ampulla and Werkzeug, then exit.

    With :mod:`ampulla.flask_patch` active it also names the Flask release whose API is served.
    """
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    lines = [f"Ampulla {__version__}", f"Python {platform.python_version()}"]
    if "ampulla.flask_patch" in sys.modules:
        lines.append(f"Flask {version('flask')}")
    try:
        lines.append(f"Werkzeug {version('werkzeug')}")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        pass
    click.echo("\n".join(lines), color=ctx.color)
    ctx.exit()


_print_version = get_version


def load_dotenv(path: str | os.PathLike[str] | None = None, load_defaults: bool = True) -> bool:
    """Set environment variables from ``.flaskenv`` and ``.env`` (found upwards from the current folder),
    then from ``path``; variables already set are never changed. Needs ``python-dotenv``.

    Args:
        path: A further file to load (its values win over the default files').
        load_defaults: Load ``.flaskenv`` and ``.env`` (``.env`` wins over ``.flaskenv``).

    Returns:
        Whether any variable was read from a file.
    """
    try:
        dotenv: Any = importlib.import_module("dotenv")
    except ImportError:
        if path or os.path.isfile(".env") or os.path.isfile(".flaskenv"):
            click.secho(
                " * Tip: There are .env files present. Install python-dotenv to use them.", fg="yellow", err=True
            )
        return False
    values: dict[str, str | None] = {}
    if load_defaults:
        for name in (".flaskenv", ".env"):
            found = dotenv.find_dotenv(name, usecwd=True)
            if found:
                values.update(dotenv.dotenv_values(found, encoding="utf-8"))
    if path is not None and os.path.isfile(path):
        values.update(dotenv.dotenv_values(path, encoding="utf-8"))
    for key, value in values.items():
        if value is not None and key not in os.environ:
            os.environ[key] = value
    return bool(values)


# ---------------------------------------------------------------------------------------------- run
def _server_target(info: ScriptInfo, server: str, debug: bool | None) -> tuple[str, bool, AppTarget]:
    """What to tell the server to import: ``module:app`` itself, or the factory that loads ``AMPULLA_APP``."""
    target = info.target
    if target is None:
        raise click.UsageError(
            f"--server {server} imports the application by name in its own processes, and this app was made "
            "by a create_app callback. Point to it with '--app module:app' (or \"module:create_app()\")."
        )
    if target.is_factory or debug is not None:
        os.environ["AMPULLA_APP"] = str(target)
        if debug is not None:
            os.environ["AMPULLA_DEBUG"] = "1" if debug else "0"
        return _SERVER_APP_FACTORY, True, target
    return str(target), False, target


def _server_env(target: AppTarget) -> dict[str, str]:
    env = os.environ.copy()
    python_path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = target.import_dir + (os.pathsep + python_path if python_path else "")
    return env


_SERVER_HELP = (
    "dev: Werkzeug's development server (WSGI). uvicorn: ASGI (WebSockets). granian: ASGI, or WSGI with "
    "--interface wsgi. gunicorn: WSGI, production-grade."
)


class CertParamType(click.ParamType):  # type: ignore[type-arg]
    """``--cert``: a certificate file, ``adhoc`` (a throwaway certificate; needs ``cryptography``), or the
    import name of an ``ssl.SSLContext``."""

    name = "path"

    def __init__(self) -> None:
        self.path_type = click.Path(exists=True, dir_okay=False, resolve_path=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            import ssl
        except ImportError:
            raise click.BadParameter(
                'Using "--cert" requires Python to be compiled with SSL support.', ctx, param
            ) from None
        try:
            return self.path_type(value, param, ctx)
        except click.BadParameter:
            text = click.STRING(value, param, ctx).lower()
            if text == "adhoc":
                try:
                    importlib.import_module("cryptography")
                except ImportError:
                    raise click.BadParameter(
                        "Using ad-hoc certificates requires the cryptography library.", ctx, param
                    ) from None
                return text
            from werkzeug.utils import import_string

            found = import_string(text, silent=True)
            if isinstance(found, ssl.SSLContext):
                return found
            raise


def _validate_key(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--key`` goes with a certificate file given to ``--cert``: the two become ``cert=(cert, key)``."""
    cert = ctx.params.get("cert")
    is_adhoc = cert == "adhoc"
    try:
        import ssl
    except ImportError:
        is_context = False
    else:
        is_context = isinstance(cert, ssl.SSLContext)
    if value is not None:
        if is_adhoc:
            raise click.BadParameter('When "--cert" is "adhoc", "--key" is not used.', ctx, param)
        if is_context:
            raise click.BadParameter('When "--cert" is an SSLContext object, "--key" is not used.', ctx, param)
        if not cert:
            raise click.BadParameter('"--cert" must also be specified.', ctx, param)
        ctx.params["cert"] = (cert, value)
    elif cert and not (is_adhoc or is_context):
        raise click.BadParameter('Required when using "--cert".', ctx, param)
    return value


class SeparatedPathType(click.Path):
    """A list of paths separated by :data:`os.pathsep` (``:`` on POSIX, ``;`` on Windows)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        items = self.split_envvar_value(value)
        return [super(SeparatedPathType, self).convert(item, param, ctx) for item in items]


def _run_envvars(name: str) -> list[str]:
    """``AMPULLA_RUN_<NAME>``, then ``FLASK_RUN_<NAME>``: ``run``'s options read from the environment."""
    return [f"AMPULLA_RUN_{name}", f"FLASK_RUN_{name}"]


def show_server_banner(debug: bool, app_import_path: str | None) -> None:
    """Print the app being served and its debug mode, as ``flask run`` does (not in the reloader's child).

    Args:
        debug: Whether debug mode is on.
        app_import_path: How the app was named (``--app`` or ``AMPULLA_APP``), if it was.
    """
    import werkzeug.serving

    if werkzeug.serving.is_running_from_reloader():
        return
    if app_import_path is not None:
        click.echo(f" * Serving Ampulla app '{app_import_path}'")
    click.echo(f" * Debug mode: {'on' if debug else 'off'}")


def _not_loaded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """The WSGI app of the reloader's own process, which watches files and never serves."""
    raise RuntimeError("the reloader process does not serve requests")  # pragma: no cover


def _dev_server_app(info: ScriptInfo, reload: bool, debug: bool | None) -> Any:
    """The app the development server serves, or a stand-in for the process that only reloads.

    With the reloader the app is imported in the serving child only (the watching process never runs the app's
    module). There an app that fails to import is answered with a 500 and the error printed, so that saving a fix
    restarts the server instead of ending it, as ``flask run`` does.
    """
    import werkzeug.serving

    if reload and not werkzeug.serving.is_running_from_reloader():
        return _not_loaded
    try:
        app = info.load_app()
    except Exception as e:
        if not werkzeug.serving.is_running_from_reloader():
            raise
        traceback.print_exc()
        error = e

        def failing_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            raise error from None

        return failing_app
    if debug is not None:
        app.debug = debug
    return app


@click.command("run", short_help="Serve the app (development server, uvicorn, granian or gunicorn).")
@click.option(
    "--host", "-h", default="127.0.0.1", show_default=True, envvar=_run_envvars("HOST"), help="The address to bind."
)
@click.option(
    "--port",
    "-p",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar=_run_envvars("PORT"),
    help="The port to bind.",
)
@click.option(
    "--reload/--no-reload",
    default=None,
    envvar=_run_envvars("RELOAD"),
    help="Restart when a file of the app changes (Werkzeug's reloader on the development server). Default: on in "
    "debug mode for the development server.",
)
@click.option(
    "--debug/--no-debug",
    default=None,
    envvar="AMPULLA_DEBUG",
    help="Debug mode: traceback pages, template reloading. Never in production. [env: AMPULLA_DEBUG]",
)
@click.option(
    "--debugger/--no-debugger",
    default=None,
    envvar=_run_envvars("DEBUGGER"),
    help="Accepted for Flask compatibility: Ampulla never starts Werkzeug's interactive debugger (debug mode shows a "
    "traceback page).",
)
@click.option(
    "--with-threads/--without-threads",
    default=True,
    envvar=_run_envvars("WITH_THREADS"),
    help="The development server serves each request in a thread.",
)
@click.option("--server", type=click.Choice(_SERVERS), default="dev", show_default=True, help=_SERVER_HELP)
@click.option(
    "--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes (not for dev)."
)
@click.option(
    "--interface",
    type=click.Choice(("asgi", "wsgi")),
    default=None,
    help="The protocol granian speaks to the app. [default: asgi]",
)
@click.option(
    "--extra-files",
    "-e",
    default=None,
    type=SeparatedPathType(),
    envvar=_run_envvars("EXTRA_FILES"),
    help=f"With --reload on the development server: more files to watch, separated by {os.pathsep!r}.",
)
@click.option(
    "--exclude-patterns",
    default=None,
    type=SeparatedPathType(),
    envvar=_run_envvars("EXCLUDE_PATTERNS"),
    help="With --reload on the development server: fnmatch patterns of files to ignore, separated by "
    f"{os.pathsep!r}.",
)
@click.option(
    "--cert",
    type=CertParamType(),
    is_eager=True,
    envvar=_run_envvars("CERT"),
    help="The development server serves HTTPS with this certificate file (with --key), 'adhoc', or the import "
    "name of an ssl.SSLContext.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    callback=_validate_key,
    expose_value=False,
    envvar=_run_envvars("KEY"),
    help="The key file for --cert.",
)
@click.pass_context
def run_command(
    ctx: click.Context,
    host: str,
    port: int,
    reload: bool | None,
    debug: bool | None,
    debugger: bool | None,
    with_threads: bool,
    server: str,
    workers: int | None,
    interface: str | None,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None = None,
    cert: Any = None,
) -> None:
    """Serve the application.

    The default is Werkzeug's development server, threaded: for your machine only. In production run gunicorn,
    uvicorn or granian, directly or through '--server' (see docs/deployment.md). Options can also be set as
    AMPULLA_RUN_<OPTION> (or FLASK_RUN_<OPTION>) environment variables: AMPULLA_RUN_PORT=8000.
    """
    del debugger  # NOTE: the interactive debugger runs code sent over HTTP; it is never started
    info = ctx.ensure_object(ScriptInfo)
    debug_mode = debug if debug is not None else get_debug_flag()
    if reload is None:
        reload = debug_mode and server == "dev"
    if interface is not None and server != "granian":
        raise click.UsageError(f"--interface applies to --server granian, not to --server {server}.", ctx)
    if workers is not None and server == "dev":
        raise click.UsageError(
            "The development server is one process; --workers applies to --server gunicorn, uvicorn or "
            "granian.",
            ctx,
        )
    os.environ["AMPULLA_RUN_FROM_CLI"] = "true"

    if server == "dev":
        import werkzeug.serving

        app = _dev_server_app(info, reload, debug)
        show_server_banner(bool(getattr(app, "debug", debug_mode)), info._spec()[0])
        # NOTE: Werkzeug's server prints why it cannot bind the address (a port in use...) and exits with 1.
        werkzeug.serving.run_simple(
            host,
            port,
            app,
            use_reloader=reload,
            use_debugger=False,
            threaded=with_threads,
            ssl_context=cert,
            extra_files=extra_files,
            exclude_patterns=exclude_patterns,
        )
        return

    from . import servers

    if cert is not None:
        raise click.UsageError(f"--cert applies to the development server, not to --server {server}.", ctx)
    global _served_app
    app = info.load_app()
    if debug is not None:
        app.debug = debug
    target, factory, app_target = _server_target(info, server, debug)
    reload_paths = info.reload_paths() if reload else []
    if importlib.util.find_spec(server) is None:
        raise click.ClickException(f"--server {server} needs {server}: pip install 'ampulla[server]'")
    if server == "uvicorn":
        _served_app = app
        servers.run_uvicorn(
            target, factory, host, port, workers, reload, reload_paths, app_target.import_dir, bool(debug)
        )
        return
    if server == "gunicorn":
        argv = servers.gunicorn_command(target, factory, host, port, workers, reload)
    else:
        interface = interface or "asgi"
        argv = servers.granian_command(target, factory, host, port, workers, reload, interface, reload_paths)
    click.echo(f" * Starting: {' '.join(argv)}", err=True)
    servers.exec_server(argv, _server_env(app_target))


# ---------------------------------------------------------------------------------------------- routes, shell
def _methods_text(rule: Any, hidden: set[str]) -> str:
    if getattr(rule, "websocket", False):
        return "WEBSOCKET"
    methods = rule.methods
    if methods is None:
        return "ANY"
    return ", ".join(sorted(set(methods) - hidden))


@click.command("routes", short_help="Show the routes for the app.")
@click.option(
    "--sort",
    "-s",
    type=click.Choice(("endpoint", "methods", "domain", "rule", "match")),
    default="endpoint",
    help="Method to sort routes by. 'match' is the order that Ampulla will match routes when dispatching a "
    "request.",
)
@click.option("--all-methods", is_flag=True, help="Show HEAD and OPTIONS methods.")
@with_appcontext
def routes_command(sort: str, all_methods: bool) -> None:
    """Show all registered routes with endpoints and methods."""
    app = _current_app()
    rules = list(app.url_map.iter_rules())
    if not rules:
        click.echo("No routes were registered.")
        return
    hidden = set() if all_methods else {"HEAD", "OPTIONS"}
    host_matching = app.url_map.host_matching

    def domain(rule: Any) -> str:
        return str((rule.host if host_matching else rule.subdomain) or "")

    has_domain = any(domain(rule) for rule in rules)
    headers = ["Endpoint", "Methods"]
    sorts = ["endpoint", "methods"]
    if has_domain:
        headers.append("Host" if host_matching else "Subdomain")
        sorts.append("domain")
    headers.append("Rule")
    sorts.append("rule")
    rows: list[list[str]] = []
    for rule in rules:
        row = [rule.endpoint, _methods_text(rule, hidden)]
        if has_domain:
            row.append(domain(rule))
        row.append(rule.rule)
        rows.append(row)
    if sort in sorts:
        column = sorts.index(sort)
        rows.sort(key=lambda row: row[column])
    table = [headers, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    template = "  ".join(f"{{{i}:<{w}}}" for i, w in enumerate(widths))
    click.echo(template.format(*headers))
    click.echo(template.format(*("-" * w for w in widths)))
    for row in rows:
        click.echo(template.format(*row))


def make_shell_context(app: Ampulla) -> dict[str, Any]:
    """The names preloaded in ``ampulla shell``: ``app``, ``g`` and those of the shell context processors."""
    context: dict[str, Any] = {"app": app, "g": g}
    for processor in app.shell_context_processors:
        context.update(app.ensure_sync(processor)())
    return context


@click.command("shell", short_help="Open a Python shell in the app's context.")
@with_appcontext
def shell_command() -> None:
    """Open an interactive Python shell with 'app', 'g' and the app's shell context preloaded."""
    import code

    app = _current_app()
    banner = (
        f"Python {sys.version} on {sys.platform}\n"
        f"App: {app.name}\nInstance: {app.instance_path}\n"
        f"Preloaded: {{names}}"
    )
    context: dict[str, Any] = {}
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        with open(startup) as f:
            exec(compile(f.read(), startup, "exec"), context)
    context.update(make_shell_context(app))
    names = ", ".join(sorted(name for name in context if not name.startswith("__")))
    if sys.stdin.isatty():
        interactive_hook = getattr(sys, "__interactivehook__", None)
        if interactive_hook is not None:
            try:
                import readline
                from rlcompleter import Completer
            except ImportError:
                pass
            else:
                readline.set_completer(Completer(context).complete)
            interactive_hook()
    code.interact(banner=banner.format(names=names), local=context, exitmsg="")


# ---------------------------------------------------------------------------------------------- entry point
cli = AmpullaGroup(
    name="ampulla",
    help=(
        "Manage and serve an Ampulla application.\n\n"
        "The app is found with --app, else $AMPULLA_APP, else app.py or wsgi.py in the current folder. "
        "Commands registered with @app.cli.command() are listed here too."
    ),
)


def main() -> None:
    """Run the ``ampulla`` command (the console script and ``python -m ampulla``)."""
    cli.main(auto_envvar_prefix="AMPULLA")


__all__ = [
    "AmpullaGroup",
    "AppGroup",
    "AppTarget",
    "NoAppException",
    "ScriptInfo",
    "cli",
    "find_app_by_string",
    "find_best_app",
    "load_app_from_env",
    "locate_app",
    "main",
    "make_shell_context",
    "prepare_import",
    "show_server_banner",
    "with_appcontext",
]
