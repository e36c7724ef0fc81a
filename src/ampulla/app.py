"""The application object: configuration, registration, URL building, and the facade to servers and tests.

The request cycle itself is in :mod:`ampulla.cycle` (one :class:`~ampulla.cycle.SyncCycle`, one
:class:`~ampulla.cycle.AsyncCycle`), each endpoint's plan in :mod:`ampulla.endpoint`. The methods Flask lets an
application override (``dispatch_request()``, ``process_response(response)``, ``handle_exception(e)``...) are
here with Flask's signatures; the cycles call an override at the same moment as Flask does, over WSGI and ASGI.

:class:`Ampulla` is the facade: ``app(environ, start_response)`` reaches :mod:`ampulla.wsgi`,
``await app(scope, receive, send)`` :mod:`ampulla.asgi`, and ``test_client``, ``cli`` and ``run`` the test
client, the command line and the development server. The core modules never import those.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import GeneratorType, MethodType, TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast
from urllib.parse import quote

from werkzeug.exceptions import Aborter

from . import asgi as _asgi
from . import wsgi as _wsgi
from .concurrency import add_background_task
from .concurrency import ensure_sync as _ensure_sync
from .concurrency import is_async_callable as is_async_callable
from .concurrency import run_coroutine_sync as run_coroutine_sync
from .config import Config
from .ctx import AppContext, RequestContext, _AppCtxGlobals
from .ctx import _cv_ctx as _imported_cv_ctx
from .cycle import CALLED_POINTS, OVERRIDE_POINTS, ROUTING_ERROR_POINTS, AsyncCycle, SyncCycle, run_teardowns
from .endpoint import Endpoint, RequestPolicy
from .exceptions import BadRequest, HTTPException, NotFound, error_response
from .json import DefaultJSONProvider, JSONProvider
from .proxy_fix import _VALID_HOSTS, check_request_host
from .proxy_fix import apply_proxy_fix as apply_proxy_fix
from .proxy_fix import host_is_trusted as host_is_trusted
from .response import _TEXT_CONTENT_TYPES, _text_content_type
from .routing import BuildError, Map, MapAdapter, RequestRedirect, Rule, WebsocketMismatch
from .scaffold import F, Scaffold, registering
from .signals import appcontext_tearing_down
from .signals import send as send_signal
from .threadpool import SyncPool
from .wrappers import Request, Response

if TYPE_CHECKING:
    from .blueprints import Blueprint
    from .cli import AppGroup
    from .sessions import SessionInterface, SessionMixin
    from .templating import AmpullaEnvironment
    from .testing import AmpullaClient, AmpullaCliRunner

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

ResponseReturnValue = Any
_UNSET: Any = object()


def _make_cli_group(name: str) -> AppGroup:
    from .cli import AppGroup

    return AppGroup(name)


def _warn_flask_style(message: str) -> None:
    """Warn as Flask's ``flask.app`` does: attributed to ``flask.app`` while ``ampulla.flask_patch`` serves it,
    so warning filters written for a Flask application still match."""
    alias = getattr(sys.modules.get("flask.app"), "_ampulla_alias", None)
    module = "flask.app" if __name__ in getattr(alias, "sources", ()) else __name__
    warnings.warn_explicit(message, UserWarning, __file__, 0, module=module)


def _strip_default_port(host: str, scheme: str) -> str:
    """``host`` without the scheme's default port (``:80`` for http and ws, ``:443`` for https and wss)."""
    if scheme in ("http", "ws") and host.endswith(":80"):
        return host[:-3]
    if scheme in ("https", "wss") and host.endswith(":443"):
        return host[:-4]
    return host


def _subdomain_of(host: str, server_name: str) -> str:
    """The subdomain of ``host`` under ``server_name``; ``"<invalid>"`` (matching nothing), with Werkzeug's
    warning, when the host is not under it."""
    labels = host.split(".")
    server_labels = server_name.split(".")
    offset = -len(server_labels)
    if labels[offset:] != server_labels:
        _warn_flask_style(f"Current server name {host!r} doesn't match configured server name {server_name!r}")
        return "<invalid>"
    return ".".join(label for label in labels[:offset] if label)


def _request_ctx(name: str) -> RequestContext:
    ctx = _cv_ctx.get(None)
    if not isinstance(ctx, RequestContext):
        raise RuntimeError(f"app.{name}() works while handling a request (in a request context)")
    return ctx


class _WsgiApp:
    """``app.wsgi_app``: the app's WSGI handler, or what was set in its place (middleware wrapping it)."""

    def __get__(self, app: Ampulla | None, owner: type[Ampulla]) -> Callable[..., Any]:
        if app is None:
            return _wsgi.handle_wsgi
        middleware = app.__dict__.get("_wsgi_middleware")
        return middleware if middleware is not None else MethodType(_wsgi.handle_wsgi, app)

    def __set__(self, app: Ampulla, value: Callable[..., Any]) -> None:
        app.__dict__["_wsgi_middleware"] = value

    def __delete__(self, app: Ampulla) -> None:
        app.__dict__["_wsgi_middleware"] = None


def _call_through_wsgi_app(app: Ampulla, environ: dict[str, Any], start_response: Any, send: Any = None) -> Any:
    """``__call__`` of a subclass overriding ``wsgi_app``: WSGI calls go through it."""
    if send is None:
        return app.wsgi_app(environ, start_response)
    return _asgi.handle_asgi(app, environ, start_response, send)


class Ampulla(Scaffold):
    """The application: one object served by WSGI (``app(environ, start_response)``) and ASGI servers.

    Args:
        import_name: The application's module, usually ``__name__``.
        static_url_path: URL prefix of the static folder (default ``/static``).
        static_folder: Folder of static files relative to the root path (``None`` disables the route).
        static_host: The host of the static route when ``host_matching`` is on.
        host_matching: Match rules on their ``host`` (``url_map.host_matching``) instead of a subdomain.
        subdomain_matching: Match rules' ``subdomain`` against the ``SERVER_NAME``.
        template_folder: Folder of templates relative to the root path.
        instance_path: Folder for local data (SQLite file, uploads); default ``<root>/instance``.
        instance_relative_config: Resolve config file names against the instance folder.
        root_path: Override the folder found from ``import_name``.
    """

    request_class: type[Request] = Request
    response_class: type[Response] = Response
    json_provider_class: type[JSONProvider] = DefaultJSONProvider
    config_class: type[Config] = Config
    app_ctx_globals_class: type[_AppCtxGlobals] = _AppCtxGlobals
    url_map_class: type[Map] = Map
    #: The class of :attr:`aborter`.
    aborter_class: type[Aborter] = Aborter
    url_rule_class: type[Rule] = Rule
    test_client_class: type[AmpullaClient] | None = None
    #: The class :meth:`test_cli_runner` makes (default :class:`~ampulla.testing.AmpullaCliRunner`).
    test_cli_runner_class: type[AmpullaCliRunner] | None = None
    #: Extra keyword arguments for the Jinja2 environment (set before the first render).
    jinja_options: dict[str, Any] = {}

    default_config: dict[str, Any] = {
        "DEBUG": False,
        "TESTING": False,
        "PROPAGATE_EXCEPTIONS": None,
        "SECRET_KEY": None,
        "SECRET_KEY_FALLBACKS": None,
        "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
        "SESSION_COOKIE_NAME": "session",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_PATH": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": False,
        "SESSION_COOKIE_PARTITIONED": False,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_REFRESH_EACH_REQUEST": True,
        "SERVER_NAME": None,
        "APPLICATION_ROOT": "/",
        "PREFERRED_URL_SCHEME": "http",
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 500_000,
        "MAX_FORM_PARTS": 1_000,
        "MAX_JSON_DEPTH": 512,
        "SEND_FILE_MAX_AGE_DEFAULT": None,
        "TRAP_BAD_REQUEST_ERRORS": None,
        "TRAP_HTTP_EXCEPTIONS": False,
        "EXPLAIN_TEMPLATE_LOADING": False,
        "TEMPLATES_AUTO_RELOAD": None,
        "MAX_COOKIE_SIZE": 4093,
        "TRUSTED_HOSTS": None,
        "PROXY_FIX": None,
        "SECURITY_HEADERS": False,
        "CONTENT_SECURITY_POLICY": None,
        "HSTS_MAX_AGE": None,
        "CSRF_ENABLED": False,
        "CSRF_TIME_LIMIT": None,
    }

    def __init__(
        self,
        import_name: str,
        static_url_path: str | None = None,
        static_folder: str | os.PathLike[str] | None = "static",
        static_host: str | None = None,
        host_matching: bool = False,
        subdomain_matching: bool = False,
        template_folder: str | os.PathLike[str] | None = "templates",
        instance_path: str | None = None,
        instance_relative_config: bool = False,
        root_path: str | None = None,
    ) -> None:
        super().__init__(
            import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        self.name = self._find_name()
        if instance_path is None:
            instance_path = self.auto_find_instance_path()
        elif not os.path.isabs(instance_path):
            raise ValueError("If an instance path is provided it must be absolute. A relative path was given instead.")
        self.instance_path = instance_path
        self.config = self.config_class(
            instance_path if instance_relative_config else self.root_path, self.default_config
        )
        self.json: JSONProvider = self.json_provider_class(self)
        self.url_map = self.url_map_class(host_matching=host_matching)
        self.subdomain_matching = subdomain_matching
        self.host_matching = host_matching
        self.static_host = static_host
        #: Functions called as ``handler(error, endpoint, values)`` when ``url_for`` cannot build a URL; the
        #: first to return a value other than ``None`` answers (see :meth:`handle_url_build_error`).
        self.url_build_error_handlers: list[Callable[[Exception, str, dict[str, Any]], str | None]] = []
        #: The :class:`werkzeug.exceptions.Aborter` that :func:`ampulla.abort` uses in this app.
        self.aborter = self.make_aborter()
        self.extensions: dict[str, Any] = {}
        self.blueprints: dict[str, Blueprint] = {}
        self.teardown_appcontext_funcs: list[Callable[..., Any]] = []
        self.shell_context_processors: list[Callable[[], dict[str, Any]]] = []
        self.template_filters: dict[str, Callable[..., Any]] = {}
        self.template_globals: dict[str, Callable[..., Any]] = {}
        self.template_tests: dict[str, Callable[..., Any]] = {}
        self.before_serving_funcs: list[Callable[..., Any]] = []
        self.after_serving_funcs: list[Callable[..., Any]] = []
        self._got_first_request = False
        #: What was set as ``app.wsgi_app`` (middleware wrapping it), if anything.
        self._wsgi_middleware: Callable[..., Any] | None = None
        #: Each endpoint's compiled plan (see :meth:`endpoint_plan`).
        self._plans: dict[str | None, Endpoint] = {}
        self._policy = RequestPolicy(self.config, -1)
        self._sync_cycle: SyncCycle | None = None
        self._async_cycle: AsyncCycle | None = None
        self._inline_endpoints: set[str] = set()
        self._streaming_endpoints: set[str] = set()
        self._endpoint_body_limits: dict[str, int | None] = {}
        self._executor: SyncPool | None = None
        self._served = False
        #: Background tasks started outside a request, kept until they are done.
        self._background: set[asyncio.Task[None]] = set()
        self._logger: logging.Logger | None = None
        self._session_interface: SessionInterface | None = None
        self._setup_lock = threading.RLock()  # re-entrant: a before_serving function may change a hook list
        self._cli: AppGroup | None = None
        self._appcontext_funcs: tuple[int, list[Callable[..., Any]]] | None = None
        if self.has_static_folder:
            assert bool(static_host) == host_matching, (
                "Invalid static_host/host_matching combination: static_host needs host_matching=True, and "
                "host_matching=True with a static folder needs static_host"
            )
            self._add_static_route()
        else:
            assert not static_host or host_matching, "static_host needs host_matching=True"

    def make_aborter(self) -> Aborter:
        """Create the :attr:`aborter` (an instance of :attr:`aborter_class`); override to customise it."""
        return self.aborter_class()

    def _find_name(self) -> str:
        if self.import_name == "__main__":
            main: str | None = getattr(sys.modules.get("__main__"), "__file__", None)
            if main:
                return os.path.splitext(os.path.basename(main))[0]
        return self.import_name

    def _add_static_route(self) -> None:
        url_path = self.static_url_path
        assert url_path is not None

        def static(filename: str) -> Response:
            return self.send_static_file(filename)

        self.add_url_rule(
            f"{url_path}/<path:filename>", endpoint="static", view_func=static, host=self.static_host
        )

    def send_static_file(self, filename: str) -> Response:
        """Serve ``filename`` from the static folder (the ``static`` endpoint's view).

        Raises:
            NotFound: The file does not exist or the name leaves the folder.
        """
        from .helpers import send_from_directory

        folder = self.static_folder
        if folder is None:
            raise RuntimeError("this application has no static folder")
        return send_from_directory(folder, filename, max_age=self.get_send_file_max_age(filename))

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """The cache max-age for static files (``SEND_FILE_MAX_AGE_DEFAULT``; ``None`` means conditional only)."""
        from .helpers import send_file_max_age

        return send_file_max_age(self.config)

    def auto_find_instance_path(self) -> str:
        """The instance folder: ``instance`` beside the package or module, or ``<prefix>/var/<name>-instance``
        when the application is installed (in ``site-packages``)."""
        from .scaffold import _package_location, find_package

        if _package_location(self.import_name) is None:
            # Not importable (``__main__``, a name given with root_path): beside the root path.
            return os.path.join(self.root_path, "instance")
        prefix, location = find_package(self.import_name)
        if prefix is None:
            return os.path.join(location, "instance")
        return os.path.join(prefix, "var", f"{self.name}-instance")

    def open_instance_resource(self, resource: str, mode: str = "rb", encoding: str | None = "utf-8") -> IO[Any]:
        """Open a file relative to :attr:`instance_path` (reading or writing).

        Args:
            resource: The path, relative to the instance folder.
            mode: Any :func:`open` mode.
            encoding: The text encoding in a text mode.
        """
        path = os.path.join(self.instance_path, resource)
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    @property
    def permanent_session_lifetime(self) -> timedelta:
        """``PERMANENT_SESSION_LIFETIME`` as a :class:`~datetime.timedelta` (an int is seconds)."""
        value = self.config["PERMANENT_SESSION_LIFETIME"]
        if isinstance(value, timedelta):
            return value
        return timedelta(seconds=int(value))

    @permanent_session_lifetime.setter
    def permanent_session_lifetime(self, value: timedelta | int) -> None:
        self.config["PERMANENT_SESSION_LIFETIME"] = value

    # ------------------------------------------------------------------------------------------ properties
    @property
    def debug(self) -> bool:
        """Debug mode (``DEBUG``): traceback pages, template auto-reload. Never enable in production."""
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value
        if self.config["TEMPLATES_AUTO_RELOAD"] is None:
            from .templating import _ENV_KEY

            env = self.extensions.get(_ENV_KEY)
            if env is not None:
                env.auto_reload = env._auto_reload_setting = bool(value)

    @property
    def testing(self) -> bool:
        """Testing mode (``TESTING``): unhandled exceptions propagate to the test client."""
        return bool(self.config["TESTING"])

    @testing.setter
    def testing(self, value: bool) -> None:
        self.config["TESTING"] = value

    @property
    def secret_key(self) -> str | bytes | None:
        """``SECRET_KEY``, used to sign sessions and CSRF tokens."""
        return cast("str | bytes | None", self.config["SECRET_KEY"])

    @secret_key.setter
    def secret_key(self, value: str | bytes | None) -> None:
        self.config["SECRET_KEY"] = value

    @property
    def logger(self) -> logging.Logger:
        """The logger named after the app; :data:`ampulla.logging.default_handler` (the request's error stream,
        else stderr) is added when no handler would show its messages."""
        if self._logger is None:
            from ampulla.logging import create_logger

            self._logger = create_logger(self)
        return self._logger

    @property
    def session_interface(self) -> SessionInterface:
        """How sessions are stored (signed cookies by default); assign a ``SessionInterface`` to change it."""
        if self._session_interface is None:
            from .sessions import SecureCookieSessionInterface

            self._session_interface = SecureCookieSessionInterface()
        return self._session_interface

    @session_interface.setter
    def session_interface(self, value: SessionInterface) -> None:
        self._session_interface = value

    @property
    def cli(self) -> AppGroup:
        """Custom commands: ``@app.cli.command()``; run as ``ampulla --app module:app NAME`` in the app context."""
        if self._cli is None:
            from .cli import AppGroup

            self._cli = AppGroup(self.name)
        return self._cli

    def test_cli_runner(self, **kwargs: Any) -> AmpullaCliRunner:
        """A click test runner that invokes the app's commands (``runner.invoke(args=["cmd"])``)."""
        from .testing import AmpullaCliRunner

        cls = self.test_cli_runner_class or AmpullaCliRunner
        return cls(self, **kwargs)

    @property
    def jinja_env(self) -> AmpullaEnvironment:
        """The Jinja2 environment of the app, built once on first use."""
        from .templating import get_jinja_env

        return get_jinja_env(self)

    def update_template_context(self, context: dict[str, Any]) -> None:
        """Add ``request``, ``session``, ``g``, ``config`` and the context processors' values to ``context``."""
        from .templating import update_template_context

        update_template_context(self, context)

    @property
    def got_first_request(self) -> bool:
        """Whether a request has been handled (setup methods then raise)."""
        return self._got_first_request

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_first_request:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the application. It has already "
                "handled its first request, so changes would be applied inconsistently. Make sure all "
                "imports, decorators, functions, etc. needed to set up the application are done before "
                "running it."
            )

    # ------------------------------------------------------------------------------------------ registration
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        self._check_setup_finished("add_url_rule")
        if endpoint is None:
            if view_func is None:
                raise ValueError(f"add_url_rule({rule!r}) needs an endpoint name or a view function")
            endpoint = view_func.__name__
        options["endpoint"] = endpoint
        if options.pop("inline", False) or getattr(view_func, "run_inline", False):
            self._inline_endpoints.add(endpoint)
        if getattr(view_func, "stream_request_body", False):
            self._streaming_endpoints.add(endpoint)
        body_limit = options.pop("max_content_length", _UNSET)
        if body_limit is not _UNSET:
            self._endpoint_body_limits[endpoint] = body_limit
        methods = options.pop("methods", None)
        if methods is None:
            methods = getattr(view_func, "methods", None) or ("GET",)
        if isinstance(methods, str):
            raise TypeError(
                "Allowed methods must be a list of strings, for example: @app.route(..., methods=['POST'])"
            )
        methods = {m.upper() for m in methods}
        required = set(getattr(view_func, "required_methods", ()))
        if provide_automatic_options is None:
            provide_automatic_options = getattr(view_func, "provide_automatic_options", None)
        if provide_automatic_options is None:
            if "OPTIONS" not in methods:
                provide_automatic_options = True
                required.add("OPTIONS")
            else:
                provide_automatic_options = False
        methods |= required
        rule_obj = self.url_rule_class(rule, methods=methods, **options)
        rule_obj.provide_automatic_options = provide_automatic_options  # type: ignore[attr-defined]
        if view_func is not None:
            old = self.view_functions.get(endpoint)
            if old is not None and old != view_func and getattr(old, "__wrapped__", None) is not view_func:
                raise AssertionError(
                    f"View function mapping is overwriting an existing endpoint function: {endpoint}. Give "
                    "the view a unique endpoint name with endpoint='...'."
                )
            self.view_functions[endpoint] = view_func
        self.url_map.add(rule_obj)

    def register_blueprint(self, blueprint: Blueprint, **options: Any) -> None:
        """Register a blueprint: its routes, hooks, error handlers, templates and static files.

        Args:
            blueprint: The blueprint.
            **options: ``url_prefix``, ``subdomain``, ``url_defaults``, ``name`` (to register it twice).
        """
        self._check_setup_finished("register_blueprint")
        blueprint.register(self, options)

    def iter_blueprints(self) -> Iterator[Blueprint]:
        """The registered blueprints, in registration order."""
        return iter(self.blueprints.values())

    def teardown_appcontext(self, f: F) -> F:
        """Run ``f(exc)`` when the application context ends (after every request, and after ``app_context``)."""
        self._check_setup_finished("teardown_appcontext")
        self.teardown_appcontext_funcs.append(f)
        return f

    def shell_context_processor(self, f: F) -> F:
        """Register ``f() -> dict`` of names preloaded in ``ampulla shell``."""
        self.shell_context_processors.append(f)
        return f

    def before_serving(self, f: F) -> F:
        """Run ``f()`` once when the server starts (ASGI lifespan; before the first request under WSGI)."""
        self.before_serving_funcs.append(f)
        return f

    def after_serving(self, f: F) -> F:
        """Run ``f()`` once when the server stops (ASGI lifespan; at interpreter exit under WSGI)."""
        self.after_serving_funcs.append(f)
        return f

    def _add_template_helper(self, kind: str, store: dict[str, Callable[..., Any]], f: Callable[..., Any],
                             name: str | None) -> None:
        self._check_setup_finished(f"add_template_{kind}")
        store[name or f.__name__] = f

    def template_filter(self, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated function as a Jinja filter (default name: the function's)."""
        return registering(self.add_template_filter, name)

    def add_template_filter(self, f: Callable[..., Any], name: str | None = None) -> None:
        """Register a Jinja filter."""
        self._add_template_helper("filter", self.template_filters, f, name)

    def template_global(self, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated function as a Jinja global."""
        return registering(self.add_template_global, name)

    def add_template_global(self, f: Callable[..., Any], name: str | None = None) -> None:
        """Register a Jinja global."""
        self._add_template_helper("global", self.template_globals, f, name)

    def template_test(self, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated function as a Jinja test."""
        return registering(self.add_template_test, name)

    def add_template_test(self, f: Callable[..., Any], name: str | None = None) -> None:
        """Register a Jinja test."""
        self._add_template_helper("test", self.template_tests, f, name)

    # ------------------------------------------------------------------------------------------ sync/async
    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """A synchronous version of ``func``: coroutine functions run on the thread's long-lived event loop."""
        return _ensure_sync(func)

    @property
    def sync_executor(self) -> SyncPool:
        """The thread pool that runs ``def`` views under ASGI (``SYNC_VIEW_THREADS`` workers, default 40).

        A :class:`concurrent.futures.Executor`: ``loop.run_in_executor(app.sync_executor, func)`` works.
        """
        executor = self._executor
        if executor is None:
            with self._setup_lock:
                executor = self._executor
                if executor is None:
                    size = int(self.config.get("SYNC_VIEW_THREADS") or 40)
                    executor = self._executor = SyncPool(size, thread_name_prefix="ampulla-sync")
        return executor

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function in the app's thread pool with the current context (``request`` etc.)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        if kwargs:
            return await self.sync_executor.run(loop, context.run, functools.partial(func, *args, **kwargs))
        return await self.sync_executor.run(loop, context.run, func, *args)

    # ------------------------------------------------------------------------------------------ contexts
    def app_context(self) -> AppContext:
        """A new application context: ``with app.app_context(): ...``."""
        return AppContext(self)

    def request_context(self, environ: dict[str, Any] | Request) -> RequestContext:
        """A request context for a WSGI environ (routed, as Flask's) or for a :class:`Request`."""
        if isinstance(environ, Request):
            return RequestContext(self, environ)
        ctx = RequestContext(self, self.request_class.from_environ(environ, self))
        self._cycles()[0].match(ctx)
        return ctx

    def test_request_context(self, *args: Any, **kwargs: Any) -> RequestContext:
        """A request context for a request built like the test client's.

        Takes the arguments of :class:`~ampulla.testing.EnvironBuilder` (Werkzeug's ``EnvironBuilder``) after
        ``app``: ``path``, ``base_url``, ``subdomain``, ``url_scheme``, ``method``, ``query_string``, ``headers``,
        ``data``, ``json``, ``environ_base``, ``environ_overrides``... The URL is matched so
        ``request.endpoint`` and ``view_args`` are set.
        """
        from .testing import EnvironBuilder

        builder = EnvironBuilder(self, *args, **kwargs)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        request = self.request_class.from_environ(environ, self)
        ctx = RequestContext(self, request)
        self._cycles()[0].match(ctx)
        return ctx

    def test_client(self, use_cookies: bool = True, **kwargs: Any) -> AmpullaClient:
        """An in-process client: ``client.get("/")`` returns a response with ``status_code``, ``data``, ``json``.

        The client is :attr:`test_client_class` (default :class:`~ampulla.testing.AmpullaClient`, a Werkzeug
        ``Client``), made as Flask makes it: ``cls(app, app.response_class, use_cookies=..., **kwargs)``.

        Args:
            use_cookies: Keep cookies between requests.
            **kwargs: Passed to the client class: ``protocol="asgi"`` drives the ASGI callable instead of the
                WSGI one.
        """
        from .testing import AmpullaClient

        cls = self.test_client_class or AmpullaClient
        return cls(self, self.response_class, use_cookies=use_cookies, **kwargs)

    # ------------------------------------------------------------------------------------------ plans and setup
    def endpoint_plan(self, endpoint: str | None) -> Endpoint:
        """The compiled plan of ``endpoint`` (``None``: requests that matched no rule), compiled on first use."""
        plan = self._plans.get(endpoint)
        if plan is None:
            with self._setup_lock:
                plan = self._plans.get(endpoint)
                if plan is None:
                    plan = self._plans[endpoint] = Endpoint(self, endpoint)
        return plan

    def _registries_changed(self) -> None:
        """A hook list changed (an extension added a function directly, even during a request): compile the plans
        again, in place, so that the next requests and those under way see it, as Flask reads its lists on each
        request."""
        plans = getattr(self, "_plans", None)  # None while Scaffold.__init__ runs
        if plans:
            with self._setup_lock:
                for plan in plans.values():
                    plan.compile(self)

    def _cycles(self) -> tuple[SyncCycle, AsyncCycle]:
        """The request cycles, built with the override points the application has at that moment."""
        sync, async_ = self._sync_cycle, self._async_cycle
        if sync is None or async_ is None:
            with self._setup_lock:
                if self._sync_cycle is None or self._async_cycle is None:
                    overridden = frozenset(
                        name
                        for name in (*OVERRIDE_POINTS, *ROUTING_ERROR_POINTS, *CALLED_POINTS)
                        if getattr(getattr(self, name), "__func__", None) is not Ampulla.__dict__[name]
                    )
                    self._sync_cycle = SyncCycle(self, overridden)
                    self._async_cycle = AsyncCycle(self, overridden, SyncCycle(self, overridden))
                sync, async_ = self._sync_cycle, self._async_cycle
        assert sync is not None and async_ is not None
        return sync, async_

    def _refresh_policy(self) -> RequestPolicy:
        config = self.config
        policy = self._policy = RequestPolicy(config, config.version)
        return policy

    def _first_request(self, register_atexit: bool = True) -> None:
        """Once, before the first request: ``before_serving`` functions (unless the server's start ran them)."""
        with self._setup_lock:
            if self._got_first_request:
                return
            if not self._served:
                self._served = True
                for func in self.before_serving_funcs:
                    _ensure_sync(func)()
            if register_atexit and self.after_serving_funcs:
                import atexit

                for func in self.after_serving_funcs:
                    atexit.register(_ensure_sync(func))
            # Overrides set on the instance up to now count (extensions patch methods in init_app).
            self._sync_cycle = self._async_cycle = None
            self._got_first_request = True

    async def _first_request_async(self) -> None:
        """:meth:`_first_request` under ASGI: ``before_serving`` functions are awaited on the event loop."""
        if not self._served:
            await self.startup()
        self._first_request(register_atexit=False)

    async def startup(self) -> None:
        """Run ``before_serving`` functions once (ASGI lifespan startup, or the first request)."""
        if self._served:
            return
        self._served = True
        for func in self.before_serving_funcs:
            rv = func()
            if inspect.isawaitable(rv):
                await rv

    async def shutdown(self) -> None:
        """Run ``after_serving`` functions (ASGI lifespan shutdown) and stop the sync thread pool."""
        for func in self.after_serving_funcs:
            rv = func()
            if inspect.isawaitable(rv):
                await rv
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Werkzeug's ``MapAdapter`` for a request, or outside one for ``SERVER_NAME`` (``None`` without it).

        As Flask binds it: in a request to the request's host, script root, scheme, method, path and query
        string; to ``SERVER_NAME`` instead of the host when it is set (unless ``host_matching``), with the
        subdomain taken from the host when ``subdomain_matching`` is on, else the map's ``default_subdomain``.
        Outside a request to ``SERVER_NAME``, ``APPLICATION_ROOT`` and ``PREFERRED_URL_SCHEME``. ``url_for``
        builds with it (``ctx.url_adapter``) and routing redirects take their absolute URL from it.

        Raises:
            BadHost: The host is not a valid IDNA name.
        """
        url_map = self.url_map
        config = self.config
        if request is not None:
            scheme = request.scheme
            host = _strip_default_port(request.host.lower(), scheme)
            subdomain: str | None = None
            server_name: str | None = config["SERVER_NAME"]
            if url_map.host_matching:
                server_name = None
            elif not self.subdomain_matching:
                subdomain = url_map.default_subdomain or ""
            server_name = host if server_name is None else _strip_default_port(server_name.lower(), scheme)
            if subdomain is None and not url_map.host_matching:
                subdomain = _subdomain_of(host, server_name)
            return url_map.bind(
                server_name,
                request.root_path,
                subdomain,
                scheme,
                request.method,
                request.path,
                query_args=request.query_string.decode("utf-8", "replace"),
            )
        if config["SERVER_NAME"] is not None:
            return url_map.bind(
                config["SERVER_NAME"],
                script_name=config["APPLICATION_ROOT"],
                url_scheme=config["PREFERRED_URL_SCHEME"],
            )
        return None

    def _url_domain(self, ctx: RequestContext) -> str:
        """The domain part the request is matched with: the adapter's subdomain (the map's default subdomain
        unless ``subdomain_matching``), or its server name with ``host_matching``."""
        url_map = self.url_map
        if url_map.host_matching:
            return cast(MapAdapter, ctx.url_adapter).server_name
        if self.subdomain_matching:
            return cast(str, cast(MapAdapter, ctx.url_adapter).subdomain)
        return url_map.default_subdomain

    def _match_request(self, ctx: RequestContext, websocket: bool = False) -> None:
        """Check the host, then route: sets ``url_rule``, ``endpoint`` and ``view_args``, or ``routing_exception``."""
        request = ctx.request
        policy = self._policy
        if policy.version != self.config.version:
            policy = self._refresh_policy()
        # PERF: a WSGI request whose Host was seen valid before, without PROXY_FIX or TRUSTED_HOSTS, needs no
        # check_request_host call (benchmarks/instructions.py: hello).
        if (
            request.scope is not None
            or policy.proxy_fix
            or policy.trusted_hosts
            or request.environ.get("HTTP_HOST") not in _VALID_HOSTS
        ):
            host_error = check_request_host(request, policy.proxy_fix, policy.trusted_hosts)
            if host_error is not None:
                request.routing_exception = host_error
                return
        try:
            url_map = self.url_map
            # PERF: the domain without an adapter unless subdomains or hosts are matched (benchmarks: hello).
            if url_map.host_matching or self.subdomain_matching:
                domain = self._url_domain(ctx)
            else:
                domain = url_map.default_subdomain
            # The context gives the MapAdapter, made only for a redirect.
            rule, values = (url_map._compiled or url_map.compiled).match(
                domain, request.path, "GET" if websocket else request.method, websocket, ctx
            )
        except HTTPException as e:
            self._routing_failed(request, e)
            return
        request.url_rule = rule
        request.endpoint = rule.endpoint
        request.view_args = values

    def _routing_failed(self, request: Request, e: HTTPException) -> None:
        """Keep the routing error of ``request`` to raise when dispatching."""
        if (
            isinstance(e, NotFound | WebsocketMismatch)
            and request.scope is None
            and request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            e = BadRequest(
                "WebSocket connections need an ASGI server: run the app with uvicorn or granian "
                "(see docs/deployment.md); this WSGI server cannot upgrade connections."
            )
        # Without its traceback (frames of the router, which hold the request): no reference cycle per 404.
        request.routing_exception = e.with_traceback(None)

    # ------------------------------------------------------------------------------------------ Flask's cycle
    # The methods below have Flask 3.1's signatures: override them (or set them on the instance) and every
    # cycle calls the override at Flask's moment. Their default implementations are the cycles' own steps.
    def full_dispatch_request(self) -> Response:
        """Preprocess the request, dispatch it and finalize the answer, handling what they raise."""
        ctx = _request_ctx("full_dispatch_request")
        cycle = self._cycles()[0]
        return cycle.full_dispatch(ctx, cycle.plan_of(ctx))

    def preprocess_request(self) -> ResponseReturnValue | None:
        """URL value preprocessors, the CSRF check, then ``before_request`` functions until one answers."""
        ctx = _request_ctx("preprocess_request")
        cycle = self._cycles()[0]
        return cycle.preprocess(ctx, cycle.plan_of(ctx))

    def dispatch_request(self) -> ResponseReturnValue:
        """Call the view of the matched rule and return what it returns (or raise the routing error)."""
        ctx = _request_ctx("dispatch_request")
        cycle = self._cycles()[0]
        return cycle.dispatch(ctx, cycle.plan_of(ctx))

    def finalize_request(self, rv: ResponseReturnValue, from_error_handler: bool = False) -> Response:
        """``make_response(rv)``, then ``process_response``; with ``from_error_handler`` a failing hook is logged."""
        ctx = _request_ctx("finalize_request")
        cycle = self._cycles()[0]
        return cycle.finalize(ctx, cycle.plan_of(ctx), rv, from_error_handler)

    def process_response(self, response: Response) -> Response:
        """Run ``after_this_request`` functions and ``after_request`` hooks, then save the session."""
        ctx = _request_ctx("process_response")
        cycle = self._cycles()[0]
        return cycle.process_response(ctx, cycle.plan_of(ctx), response)

    def handle_user_exception(self, e: Exception) -> ResponseReturnValue:
        """Handle an exception from a hook or view: HTTP errors and registered handlers; re-raise the rest."""
        ctx = _request_ctx("handle_user_exception")
        cycle = self._cycles()[0]
        return cycle.handle_user_exception(ctx, cycle.plan_of(ctx), e)

    def handle_http_exception(self, e: HTTPException) -> ResponseReturnValue:
        """Answer an HTTP error with its registered handler, or the error itself (its page)."""
        ctx = _request_ctx("handle_http_exception")
        cycle = self._cycles()[0]
        return cycle.handle_http_exception(ctx, cycle.plan_of(ctx), e)

    def handle_exception(self, e: Exception) -> Response:
        """Answer an unhandled exception with a 500 (its handler's response if registered).

        Raises:
            Exception: ``e`` itself when exceptions propagate (testing mode).
        """
        ctx = _request_ctx("handle_exception")
        cycle = self._cycles()[0]
        return cycle.handle_exception(ctx, cycle.plan_of(ctx), e)

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        """Run ``teardown_request`` functions (innermost blueprint first, last registered first)."""
        ctx = _request_ctx("do_teardown_request")
        cycle = self._cycles()[0]
        cycle.teardown_request(ctx, cycle.plan_of(ctx), exc)

    def do_teardown_appcontext(self, exc: BaseException | None = None) -> None:
        """Run ``teardown_appcontext`` functions (last registered first), then send ``appcontext_tearing_down``."""
        funcs = self._appcontext_teardowns()
        if funcs:
            run_teardowns(self, funcs, exc)
        if appcontext_tearing_down.receivers:
            send_signal(appcontext_tearing_down, self, exc=exc)

    def _appcontext_teardowns(self) -> list[Callable[..., Any]]:
        funcs = self.teardown_appcontext_funcs
        if not funcs:
            return []
        cached = self._appcontext_funcs
        if cached is None or cached[0] != len(funcs):
            # Wrapped once, not on every pop; rebuilt if a function was registered since.
            cached = self._appcontext_funcs = (len(funcs), [_ensure_sync(f) for f in reversed(funcs)])
        return cached[1]

    def raise_routing_exception(self, request: Request) -> NoReturn:
        """Raise the request's routing error (``request.routing_exception``) when dispatching.

        In debug mode a redirect that drops a form (301 or 302 for a method other than ``GET``, ``HEAD`` and
        ``OPTIONS``) raises :class:`~ampulla.debughelpers.FormDataRoutingRedirect` instead, naming the
        canonical URL.
        """
        error = request.routing_exception
        assert error is not None
        if (
            not self.debug
            or not isinstance(error, RequestRedirect)
            or error.code in (307, 308)
            or request.method in ("GET", "HEAD", "OPTIONS")
        ):
            raise error
        from .debughelpers import FormDataRoutingRedirect

        raise FormDataRoutingRedirect(request)

    def make_default_options_response(self) -> Response:
        """The automatic ``OPTIONS`` answer: 200 with an ``Allow`` header."""
        ctx = _request_ctx("make_default_options_response")
        methods = self.url_map.compiled.allowed_methods(
            self._url_domain(ctx), ctx.request.path, ctx
        )
        response = self.response_class()
        response.headers.set("Allow", ", ".join(sorted(methods)))
        return response

    def trap_http_exception(self, e: HTTPException) -> bool:
        """Whether an HTTP error should propagate like an unhandled exception (``TRAP_*`` settings)."""
        if self.config["TRAP_HTTP_EXCEPTIONS"]:
            return True
        trap_bad_request = self.config["TRAP_BAD_REQUEST_ERRORS"]
        if trap_bad_request is None and self.debug and e.__class__.__name__ == "BadRequestKeyError":
            return True
        if trap_bad_request:
            return e.code == 400
        return False

    def should_propagate(self) -> bool:
        """Whether unhandled exceptions are re-raised (``PROPAGATE_EXCEPTIONS``, or in testing mode)."""
        value = self.config["PROPAGATE_EXCEPTIONS"]
        if value is not None:
            return bool(value)
        return self.testing

    def log_exception(
        self, exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> None:
        """Log an unhandled exception (called before the 500 page is sent)."""
        ctx = _cv_ctx.get(None)
        where = f" on {ctx.request.path} [{ctx.request.method}]" if isinstance(ctx, RequestContext) else ""
        self.logger.error("Exception%s", where, exc_info=exc_info)

    def make_response(self, rv: ResponseReturnValue) -> Response:
        """Turn a view's return value into a :class:`Response`.

        Accepts a Response, str, bytes, dict or list (JSON), a generator or iterator (streamed), an
        ``HTTPException``, or a tuple ``(body, status)``, ``(body, headers)``, ``(body, status, headers)``.

        Raises:
            TypeError: The value is ``None`` or of another type; the message names what to return.
        """
        response_class = self.response_class
        # PERF: the common cases first, without tuple unpacking (benchmarks/run.py: hello).
        if isinstance(rv, str):
            if response_class in _TEXT_CONTENT_TYPES:
                content_type = _TEXT_CONTENT_TYPES[response_class]
            else:
                content_type = _text_content_type(response_class)
            return response_class._fast(rv.encode(), 200, content_type)
        if isinstance(rv, Response):
            return rv
        if isinstance(rv, dict | list):
            return self.json.response(rv)
        status: Any = None
        headers: Any = None
        if isinstance(rv, tuple):
            if len(rv) == 3:
                rv, status, headers = rv
            elif len(rv) == 2:
                if isinstance(rv[1], dict | tuple | list) or hasattr(rv[1], "items") or (
                    rv[1].__class__.__name__ == "Headers"
                ):
                    rv, headers = rv
                else:
                    rv, status = rv
            else:
                raise TypeError(
                    "The view function did not return a valid response tuple. The tuple must have the form "
                    "(body, status, headers), (body, status), or (body, headers)."
                )
        if rv is None:
            raise TypeError(
                "The view function did not return a valid response. The function either returned None or "
                "ended without a return statement. Return a string, dict, list, tuple or Response."
            )
        if isinstance(rv, Response):
            response = rv
        elif isinstance(rv, str | bytes | bytearray):
            response = response_class(bytes(rv) if isinstance(rv, bytearray) else rv)
        elif isinstance(rv, dict | list):
            response = self.json.response(rv)
        elif isinstance(rv, HTTPException):
            response = error_response(rv, response_class)
        elif isinstance(rv, GeneratorType | Iterator) or inspect.isasyncgen(rv) or hasattr(rv, "__anext__"):
            response = response_class(cast(Any, rv))
        else:
            raise TypeError(
                f"The view function did not return a valid response. The return type must be a string, dict, "
                f"list, tuple with headers or status, Response instance, or iterator, but it was a "
                f"{type(rv).__name__}."
            )
        if status is not None:
            response.status = status
        if headers:
            response.headers.update(headers)
        return response

    def add_security_headers(self, request: Request, response: Response) -> None:
        """Add the opt-in security headers (``SECURITY_HEADERS``); headers a view set itself are kept.

        ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin`` and
        ``X-Frame-Options: SAMEORIGIN`` always; ``Content-Security-Policy`` from ``CONTENT_SECURITY_POLICY``;
        ``Strict-Transport-Security`` on HTTPS requests when ``HSTS_MAX_AGE`` is set.
        """
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        csp = self.config["CONTENT_SECURITY_POLICY"]
        if csp:
            headers.setdefault("Content-Security-Policy", csp)
        hsts = self.config["HSTS_MAX_AGE"]
        if hsts is not None and request.is_secure:
            headers.setdefault("Strict-Transport-Security", f"max-age={int(hsts)}; includeSubDomains")

    def open_session(self, ctx: RequestContext) -> SessionMixin:
        """Open the session for the request through ``session_interface`` (on first use of ``session``)."""
        interface = self.session_interface
        session = interface.open_session(self, ctx.request)
        if session is None:
            session = interface.make_null_session(self)
        return session

    # ------------------------------------------------------------------------------------------ background tasks
    def add_background_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` after the response has been sent, with the app context active.

        Inside a request it runs once the body is sent (sync or async functions); outside a request it
        starts at once in the background (a task on the running loop, else a thread).
        """
        add_background_task(self, functools.partial(func, *args, **kwargs))

    # ------------------------------------------------------------------------------------------ URLs
    def inject_url_defaults(self, endpoint: str, values: dict[str, Any]) -> None:
        """Let ``url_defaults`` functions fill in values for building ``endpoint``."""
        keys: tuple[str | None, ...] = (None,)
        if "." in endpoint:
            parts = endpoint.rpartition(".")[0].split(".")
            keys = (None, *(".".join(parts[:i]) for i in range(1, len(parts) + 1)))
        for key in keys:
            for func in self.url_default_functions.get(key, ()):
                func(endpoint, values)

    def url_for(
        self,
        endpoint: str,
        /,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        """Build the URL of an endpoint. See :func:`ampulla.url_for`.

        In a request, URLs are relative unless ``_external`` (or ``_scheme``) asks otherwise; outside one (an
        application context) they are external, built from ``SERVER_NAME``, ``APPLICATION_ROOT`` and
        ``PREFERRED_URL_SCHEME``.

        Raises:
            RuntimeError: Outside a request without ``SERVER_NAME``.
            ValueError: ``_scheme`` with ``_external=False``.
            BuildError: No rule fits, and no :attr:`url_build_error_handlers` function answered.
        """
        ctx = _cv_ctx.get(None)
        if isinstance(ctx, RequestContext):
            if endpoint[:1] == ".":
                blueprint = ctx.request.blueprint
                endpoint = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
            adapter = ctx.url_adapter
            if _external is None:
                _external = _scheme is not None
        else:
            adapter = ctx.url_adapter if ctx is not None and ctx.app is self else self.create_url_adapter(None)
            if adapter is None:
                raise RuntimeError(
                    "Unable to build URLs outside an active request without 'SERVER_NAME' configured: set "
                    "app.config['SERVER_NAME'] (e.g. 'example.com'), and 'APPLICATION_ROOT' and "
                    "'PREFERRED_URL_SCHEME' as needed, or build the URL inside a request."
                )
            endpoint = endpoint.lstrip(".")
            if _external is None:
                _external = True
        if _scheme is not None and not _external:
            raise ValueError("When specifying '_scheme', '_external' must be True.")
        self.inject_url_defaults(endpoint, values)
        assert adapter is not None
        try:
            url = adapter.build(endpoint, values, method=_method, url_scheme=_scheme, force_external=_external)
        except BuildError as error:
            values.update(_anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external)
            return self.handle_url_build_error(error, endpoint, values)
        if _anchor is not None:
            url += "#" + quote(_anchor, safe="%!#$&'()*+,/:;=?@")
        return url

    def handle_url_build_error(self, error: BuildError, endpoint: str, values: dict[str, Any]) -> str:
        """Ask :attr:`url_build_error_handlers` for a URL ``url_for`` could not build.

        Each handler is called as ``handler(error, endpoint, values)``; the first one returning a value other
        than ``None`` answers. A handler may raise a ``BuildError``, which replaces ``error`` for the next.

        Raises:
            BuildError: No handler answered.
        """
        for handler in self.url_build_error_handlers:
            try:
                rv = handler(error, endpoint, values)
            except BuildError as e:
                error = e
            else:
                if rv is not None:
                    return rv
        if error is sys.exc_info()[1]:
            raise
        raise error

    def redirect(self, location: str, code: int = 302) -> Response:
        """The redirect response :func:`ampulla.redirect` returns in this app; override to change it.

        Args:
            location: The target URL.
            code: 301, 302 (default), 303, 307 or 308.
        """
        from .helpers import _redirect

        return _redirect(location, code, self.response_class)

    # ------------------------------------------------------------------------------------------ protocols
    #: The WSGI application, ``app.wsgi_app(environ, start_response)``; wrap it with middleware as
    #: ``app.wsgi_app = Middleware(app.wsgi_app)`` (or override it in a subclass): ``app(environ,
    #: start_response)`` then calls it.
    wsgi_app = _WsgiApp()

    #: WSGI ``app(environ, start_response)`` or ASGI 3 ``await app(scope, receive, send)``. (PERF: the WSGI
    #: handler itself, without an ``app.wsgi_app`` call unless middleware replaced it; benchmarks: hello.)
    __call__ = _wsgi.serve

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "wsgi_app" in cls.__dict__ and "__call__" not in cls.__dict__:
            cls.__call__ = _call_through_wsgi_app  # type: ignore[method-assign]

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        load_dotenv: bool = True,
        **options: Any,
    ) -> None:
        """Serve with Werkzeug's development server (:func:`werkzeug.serving.run_simple`), threaded, reloading in
        debug mode. Use gunicorn/uvicorn/granian in production.

        Does nothing when the app was started by the ``ampulla`` (or ``flask``) command, which serves it itself.
        The interactive debugger is never started: debug mode shows a traceback page instead.

        Args:
            host: The address to bind; default the host of ``SERVER_NAME``, else ``127.0.0.1``.
            port: The port; default the port of ``SERVER_NAME``, else 5000.
            debug: Turn debug mode on or off (overrides ``AMPULLA_DEBUG``/``FLASK_DEBUG``).
            load_dotenv: Load ``.env`` and ``.flaskenv`` files first (needs python-dotenv).
            **options: Passed to ``run_simple``: ``use_reloader`` (default: debug mode), ``reloader_type``,
                ``extra_files``, ``exclude_patterns``, ``threaded`` (default ``True``), ``ssl_context``...
        """
        import werkzeug.serving

        from .helpers import get_debug_flag, get_load_dotenv

        if os.environ.get("AMPULLA_RUN_FROM_CLI") == "true" or os.environ.get("FLASK_RUN_FROM_CLI") == "true":
            if not werkzeug.serving.is_running_from_reloader():
                print(
                    " * Ignoring app.run() inside the 'ampulla' command; put it under "
                    "'if __name__ == \"__main__\":'.",
                    file=sys.stderr,
                )
            return
        if get_load_dotenv(load_dotenv):
            from .cli import load_dotenv as _load_dotenv

            _load_dotenv()
            if "AMPULLA_DEBUG" in os.environ or "FLASK_DEBUG" in os.environ:
                self.debug = get_debug_flag()
        if debug is not None:
            self.debug = bool(debug)
        server_host, _, server_port = (self.config.get("SERVER_NAME") or "").partition(":")
        if not host:
            host = server_host or "127.0.0.1"
        if port is None:
            port = int(server_port) if server_port else 5000
        port = int(port)
        options.setdefault("use_reloader", self.debug)
        # NOTE: Werkzeug's interactive debugger runs code sent over HTTP: never started, whatever is asked.
        options["use_debugger"] = False
        options.setdefault("threaded", True)
        from .cli import show_server_banner

        show_server_banner(self.debug, self.name)
        try:
            werkzeug.serving.run_simple(host, port, self, **options)
        finally:
            # A server stopped without the reloader can be started again (interactive sessions).
            self._got_first_request = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _install_cli_group_factory() -> None:
    from .blueprints import Blueprint

    Blueprint.cli_group_factory = staticmethod(_make_cli_group)


_install_cli_group_factory()
