"""The application object: configuration, registration, dispatch and error handling.

The request cycle here is protocol-neutral: the WSGI and ASGI adapters build a :class:`~ampulla.wrappers.Request`,
call :meth:`Ampulla.handle_request` (or its async twin) and send the returned response.
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
import traceback
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import GeneratorType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from .config import Config
from .ctx import AppContext, RequestContext, _AppCtxGlobals, _cv_ctx
from .exceptions import BadRequest, HTTPException, InternalServerError, MethodNotAllowed, SecurityError
from .json import DefaultJSONProvider, JSONProvider
from .routing import Map, RequestRedirect, Rule
from .scaffold import F, Scaffold, blueprint_chain, iter_chain, registering
from .wrappers import Request, Response

if TYPE_CHECKING:
    from .blueprints import Blueprint
    from .cli import AppGroup
    from .sessions import SessionInterface, SessionMixin
    from .templating import AmpullaEnvironment
    from .testing import AmpullaClient, AmpullaCliRunner

ResponseReturnValue = Any
_UNSET: Any = object()


# PERF: the Content-Type for views returning str, per response class (benchmarks/run.py: hello).
_TEXT_CONTENT_TYPES: dict[type[Response], str] = {}


def _text_content_type(response_class: type[Response]) -> str:
    mimetype = response_class.default_mimetype or "text/html"
    content_type = Response(b"", mimetype=mimetype).content_type or mimetype
    _TEXT_CONTENT_TYPES[response_class] = content_type
    return content_type


def host_is_trusted(host: str, trusted: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host`` (port ignored) is one of ``trusted``; an entry ``.example.com`` also allows subdomains."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower().rstrip(".")
    for entry in trusted:
        entry = entry.lower().rstrip(".")
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry.rsplit(":", 1)[0].strip("[]"):
            return True
    return False


def apply_proxy_fix(request: Request, settings: dict[str, int]) -> None:
    """Honour ``X-Forwarded-*`` headers set by a known number of trusted proxies (``PROXY_FIX``).

    Each setting counts the proxies that append to that header (0 ignores it): ``x_for``, ``x_proto``,
    ``x_host``, ``x_port``, ``x_prefix``. The value used is the one the outermost trusted proxy wrote, so a
    client cannot spoof it by sending its own header.
    """

    def trusted_value(header: str, count: int) -> str | None:
        if count <= 0:
            return None
        raw: str = request.headers.get(header, "")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(values) < count:
            return None
        return values[-count]

    x_for = int(settings.get("x_for", 0) or 0)
    forwarded_for = trusted_value("X-Forwarded-For", x_for)
    if forwarded_for:
        chain = [v.strip() for v in request.headers.get("X-Forwarded-For", "").split(",") if v.strip()]
        request._access_route = chain[-x_for:] + ([request.remote_addr] if request.remote_addr else [])
        request.remote_addr = forwarded_for
    proto = trusted_value("X-Forwarded-Proto", int(settings.get("x_proto", 0) or 0))
    if proto and proto.lower() in ("http", "https"):
        request.scheme = proto.lower()
    host = trusted_value("X-Forwarded-Host", int(settings.get("x_host", 0) or 0))
    if host:
        request.forwarded_host = host
    port = trusted_value("X-Forwarded-Port", int(settings.get("x_port", 0) or 0))
    if port and port.isdigit():
        base = (request.forwarded_host or request.headers.get("Host") or "").rsplit(":", 1)[0]
        default = (request.scheme, port) in (("http", "80"), ("https", "443"))
        request.forwarded_host = base if default else f"{base}:{port}"
    prefix = trusted_value("X-Forwarded-Prefix", int(settings.get("x_prefix", 0) or 0))
    if prefix:
        request.root_path = "/" + prefix.strip("/") if prefix.strip("/") else ""


def _csrf_check(app: Ampulla) -> None:
    (_adapters.csrf or _adapters.load_csrf())(app)


def _hook_lists(app: Ampulla, blueprints: tuple[str, ...]) -> tuple[list[Callable[..., Any]], ...]:
    """URL value preprocessors, before, after and teardown functions for a request, in calling order."""
    keys = iter_chain(blueprints)
    outer_first = tuple(reversed(keys))
    return (
        [f for key in outer_first for f in app.url_value_preprocessors.get(key, ())],
        [f for key in outer_first for f in app.before_request_funcs.get(key, ())],
        [f for key in keys for f in reversed(app.after_request_funcs.get(key, ()))],
        [f for key in keys for f in reversed(app.teardown_request_funcs.get(key, ()))],
    )


class _Chain:
    """Everything the request cycle needs for one endpoint, computed once (see ``Ampulla._chain``)."""

    __slots__ = ("after", "before", "blueprints", "teardown", "url_value_preprocessors")

    def __init__(self, app: Ampulla, endpoint: str | None) -> None:
        self.blueprints = blueprint_chain(endpoint)
        preprocessors, before, after, teardown = _hook_lists(app, self.blueprints)
        sync = app.ensure_sync
        self.url_value_preprocessors = tuple(sync(f) for f in preprocessors)
        self.before = tuple(sync(f) for f in before)
        self.after = tuple(sync(f) for f in after)
        self.teardown = tuple(sync(f) for f in teardown)


def is_async_callable(func: Any) -> bool:
    """Whether calling ``func`` returns a coroutine (async functions and objects with an async ``__call__``)."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


class _AsyncChain:
    """The ASGI twin of :class:`_Chain`: each function with a flag telling whether to await it."""

    __slots__ = ("after", "before", "blueprints", "teardown", "url_value_preprocessors")

    def __init__(self, app: Ampulla, endpoint: str | None) -> None:
        self.blueprints = blueprint_chain(endpoint)
        preprocessors, before, after, teardown = _hook_lists(app, self.blueprints)

        def flagged(funcs: list[Callable[..., Any]]) -> tuple[tuple[Callable[..., Any], bool], ...]:
            return tuple((f, is_async_callable(f)) for f in funcs)

        self.url_value_preprocessors = flagged(preprocessors)
        self.before = flagged(before)
        self.after = flagged(after)
        self.teardown = flagged(teardown)


class _LoopHolder:
    """Owns a thread's event loop and closes it when the thread ends (its thread-local is dropped)."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        loop = self.loop
        if not loop.is_closed() and not loop.is_running():
            loop.close()


_thread_state = threading.local()


def run_coroutine_sync(awaitable: Awaitable[Any]) -> Any:
    """Run an awaitable to completion on this thread's long-lived event loop.

    Used under WSGI for ``async def`` views and hooks: one loop per worker thread, created once and reused, so
    connection pools bound to the loop survive between requests.

    Raises:
        RuntimeError: Called from a thread whose event loop is already running (use ``await`` there).
    """
    holder: _LoopHolder | None = getattr(_thread_state, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _thread_state.holder = _LoopHolder()
    loop = holder.loop
    if loop.is_running():
        raise RuntimeError("cannot run a coroutine synchronously inside a running event loop; await it instead")
    return loop.run_until_complete(cast(Any, awaitable))


class _Adapters:
    """The protocol adapters, imported on first use so the core never imports them at import time."""

    wsgi: Callable[..., Any] | None = None
    asgi: Callable[..., Any] | None = None
    csrf: Callable[..., Any] | None = None

    def load_csrf(self) -> Callable[..., Any]:
        from .csrf import csrf_check

        self.csrf = csrf_check
        return csrf_check

    def load_wsgi(self) -> Callable[..., Any]:
        from .wsgi import handle_wsgi

        self.wsgi = handle_wsgi
        return handle_wsgi

    def load_asgi(self) -> Callable[..., Any]:
        from .asgi import handle_asgi

        self.asgi = handle_asgi
        return handle_asgi


_adapters = _Adapters()


class Ampulla(Scaffold):
    """The application: one object served by WSGI (``app(environ, start_response)``) and ASGI servers.

    Args:
        import_name: The application's module, usually ``__name__``.
        static_url_path: URL prefix of the static folder (default ``/static``).
        static_folder: Folder of static files relative to the root path (``None`` disables the route).
        static_host: Unused unless host matching is on; accepted for compatibility.
        host_matching: Accepted for compatibility.
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
    url_rule_class: type[Rule] = Rule
    test_client_class: type[AmpullaClient] | None = None
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
        if instance_path is None:
            instance_path = self.auto_find_instance_path()
        elif not os.path.isabs(instance_path):
            raise ValueError("instance_path must be an absolute path")
        self.instance_path = instance_path
        self.config = self.config_class(
            instance_path if instance_relative_config else self.root_path, self.default_config
        )
        self.json: JSONProvider = self.json_provider_class(self)
        self.url_map = self.url_map_class()
        self.subdomain_matching = subdomain_matching
        self.host_matching = host_matching
        self.static_host = static_host
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
        self._chains: dict[str | None, _Chain] = {}
        self._sync_views: dict[str, Callable[..., Any]] = {}
        self._async_chains: dict[str | None, _AsyncChain] = {}
        self._ws_before: dict[str | None, tuple[tuple[Callable[..., Any], bool], ...]] = {}
        self._view_kinds: dict[str, str] = {}
        self._inline_endpoints: set[str] = set()
        self._streaming_endpoints: set[str] = set()
        self._endpoint_body_limits: dict[str, int | None] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._served = False
        self._background: set[asyncio.Task[None]] = set()
        self._logger: logging.Logger | None = None
        self._session_interface: SessionInterface | None = None
        self._setup_lock = threading.Lock()
        self._cli: AppGroup | None = None
        self._appcontext_teardowns: tuple[int, list[Callable[..., Any]]] | None = None
        self.name = self._find_name()
        if self.has_static_folder:
            self._add_static_route()

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

        self.add_url_rule(f"{url_path}/<path:filename>", endpoint="static", view_func=static)

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
        value = self.config["SEND_FILE_MAX_AGE_DEFAULT"]
        if value is None:
            return None
        if isinstance(value, timedelta):
            return int(value.total_seconds())
        return int(value)

    def auto_find_instance_path(self) -> str:
        """``<root_path>/instance``: where local data such as the SQLite file lives."""
        return os.path.join(self.root_path, "instance")

    # ------------------------------------------------------------------------------------------ properties
    @property
    def debug(self) -> bool:
        """Debug mode (``DEBUG``): traceback pages, template auto-reload. Never enable in production."""
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value

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
        """The logger named after the app; a stderr handler is added when logging is not configured."""
        if self._logger is None:
            logger = logging.getLogger(self.name)
            if self.debug and not logger.level:
                logger.setLevel(logging.DEBUG)
            if not logging.getLogger().handlers and not logger.handlers:
                handler = logging.StreamHandler()
                handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s"))
                logger.addHandler(handler)
            self._logger = logger
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

        return AmpullaCliRunner(self, **kwargs)

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
        rule_obj.provide_automatic_options = provide_automatic_options
        if view_func is not None:
            old = self.view_functions.get(endpoint)
            if old is not None and old is not view_func and getattr(old, "__wrapped__", None) is not view_func:
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
        if is_async_callable(func):

            @functools.wraps(func)
            def run(*args: Any, **kwargs: Any) -> Any:
                return run_coroutine_sync(func(*args, **kwargs))

            return run
        return func

    # ------------------------------------------------------------------------------------------ contexts
    def app_context(self) -> AppContext:
        """A new application context: ``with app.app_context(): ...``."""
        return AppContext(self)

    def request_context(self, request: Request) -> RequestContext:
        """A request context for ``request``."""
        return RequestContext(self, request)

    def test_request_context(self, *args: Any, **kwargs: Any) -> RequestContext:
        """A request context for a request built like the test client's (``path``, ``method``, ``data``, ...).

        The URL is matched so ``request.endpoint`` and ``view_args`` are set.
        """
        from .testing import EnvironBuilder

        environ = EnvironBuilder(self, *args, **kwargs).get_environ()
        request = self.request_class.from_environ(environ, self)
        self._match_request(request)
        return RequestContext(self, request)

    def test_client(self, use_cookies: bool = True, **kwargs: Any) -> AmpullaClient:
        """An in-process client: ``client.get("/")`` returns a response with ``status_code``, ``data``, ``json``.

        Args:
            use_cookies: Keep cookies between requests.
            **kwargs: ``protocol="asgi"`` drives the ASGI path instead of WSGI.
        """
        from .testing import AmpullaClient

        cls = self.test_client_class or AmpullaClient
        return cls(self, use_cookies=use_cookies, **kwargs)

    # ------------------------------------------------------------------------------------------ request cycle
    def _chain(self, endpoint: str | None) -> _Chain:
        chain = self._chains.get(endpoint)
        if chain is None:
            chain = self._chains[endpoint] = _Chain(self, endpoint)
        return chain

    def _view(self, endpoint: str) -> Callable[..., Any]:
        view = self._sync_views.get(endpoint)
        if view is None:
            view = self._sync_views[endpoint] = self.ensure_sync(self.view_functions[endpoint])
        return view

    def _first_request(self) -> None:
        with self._setup_lock:
            if self._got_first_request:
                return
            if not self._served:
                self._served = True
                for func in self.before_serving_funcs:
                    self.ensure_sync(func)()
            if self.after_serving_funcs:
                import atexit

                for func in self.after_serving_funcs:
                    atexit.register(self.ensure_sync(func))
            self._got_first_request = True

    def _subdomain(self, request: Request) -> str:
        server_name = self.config["SERVER_NAME"]
        if not server_name or not self.url_map.has_subdomains:
            return ""
        host = request.host.lower().rsplit(":", 1)[0] if ":" in request.host else request.host.lower()
        server = server_name.lower().split(":", 1)[0]
        if host == server or not host.endswith("." + server):
            return ""
        return host[: -len(server) - 1]

    def _match_request(self, request: Request) -> None:
        config = self.config
        if config["PROXY_FIX"]:
            apply_proxy_fix(request, config["PROXY_FIX"])
        if config["TRUSTED_HOSTS"] and not host_is_trusted(request.host, config["TRUSTED_HOSTS"]):
            request.routing_exception = SecurityError(
                f"Host {request.host!r} is not in TRUSTED_HOSTS; add it to app.config['TRUSTED_HOSTS'] if it is yours."
            )
            return
        try:
            rule, values = self.url_map.match(
                request.path, request.method, self._subdomain(request) if self.subdomain_matching else ""
            )
        except HTTPException as e:
            if e.code == 404 and request.scope is None and request.headers.get("Upgrade", "").lower() == "websocket":
                e = BadRequest(
                    "WebSocket connections need an ASGI server: run the app with uvicorn or granian "
                    "(see docs/deployment.md); this WSGI server cannot upgrade connections."
                )
            request.routing_exception = e
            return
        request.url_rule = rule
        request.endpoint = rule.endpoint
        request.view_args = values
        if self._endpoint_body_limits and rule.endpoint in self._endpoint_body_limits:
            request.max_content_length = self._endpoint_body_limits[rule.endpoint]

    def handle_request(self, request: Request) -> tuple[Response, RequestContext]:
        """Run the whole request cycle for ``request`` and return the response and the (popped) context.

        This is what the WSGI adapter calls; it never raises except in testing/propagation mode.
        """
        if not self._got_first_request:
            self._first_request()
        ctx = RequestContext(self, request)
        if request.environ.get("ampulla.preserve_context"):
            ctx.preserved = True
        ctx.push()
        error: BaseException | None = None
        try:
            try:
                response = self.full_dispatch_request(ctx)
            except Exception as e:
                error = e
                response = self.handle_exception(ctx, e)
            except BaseException as e:  # pragma: no cover - KeyboardInterrupt, SystemExit
                error = e
                raise
            return response, ctx
        finally:
            if not ctx.preserved:
                ctx.pop(error)

    def full_dispatch_request(self, ctx: RequestContext) -> Response:
        """Route, run ``before_request`` hooks, the view and ``after_request`` hooks, handling HTTP errors."""
        request = ctx.request
        self._match_request(request)
        chain = self._chain(request.endpoint)
        try:
            rv = None
            if chain.url_value_preprocessors:
                for func in chain.url_value_preprocessors:
                    func(request.endpoint, request.view_args)
            if self.config["CSRF_ENABLED"]:
                _csrf_check(self)
            for func in chain.before:
                rv = func()
                if rv is not None:
                    break
            if rv is None:
                rv = self.dispatch_request(ctx)
        except Exception as e:
            rv = self.handle_user_exception(ctx, e)
        response = self.make_response(rv)
        return self.process_response(ctx, response, chain)

    def dispatch_request(self, ctx: RequestContext) -> ResponseReturnValue:
        """Call the view for the matched rule (or raise the routing error)."""
        request = ctx.request
        if request.routing_exception is not None:
            raise request.routing_exception
        rule = request.url_rule
        assert rule is not None
        if request.method == "OPTIONS" and rule.provide_automatic_options:
            return self.make_default_options_response(ctx)
        endpoint = rule.endpoint
        view = self._sync_views.get(endpoint) or self._view(endpoint)
        return view(**request.view_args)  # type: ignore[arg-type]

    def make_default_options_response(self, ctx: RequestContext) -> Response:
        """The automatic ``OPTIONS`` answer: 200 with an ``Allow`` header."""
        methods = self.url_map.allowed_methods(ctx.request.path, self._subdomain(ctx.request))
        response = self.response_class()
        response.headers.set("Allow", ", ".join(sorted(methods)))
        return response

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
            content_type = _TEXT_CONTENT_TYPES.get(response_class) or _text_content_type(response_class)
            return response_class._fast(rv.encode("utf-8"), 200, content_type)
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
            response = rv.get_response()
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

    def process_response(self, ctx: RequestContext, response: Response, chain: _Chain | None = None) -> Response:
        """Run ``after_this_request`` functions, ``after_request`` hooks and save the session."""
        if ctx._after_request_functions:
            for func in ctx._after_request_functions:
                response = self.ensure_sync(func)(response)
        if chain is None:
            chain = self._chain(ctx.request.endpoint)
        for func in chain.after:
            response = func(response)
        if ctx._session is not None:
            self.session_interface.save_session(self, ctx._session, response)
        if self.config["SECURITY_HEADERS"]:
            self.add_security_headers(ctx.request, response)
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

    # ------------------------------------------------------------------------------------------ errors
    def _find_error_handler(self, e: BaseException, blueprints: tuple[str, ...]) -> Callable[..., Any] | None:
        """The handler for ``e``: by status code (blueprints first, then the app), then by class (same order)."""
        exc_class = type(e)
        code = e.code if isinstance(e, HTTPException) else None
        for c in (code, None) if code is not None else (None,):
            for name in iter_chain(blueprints):
                handler_map = self.error_handler_spec.get(name)
                if not handler_map:
                    continue
                handlers = handler_map.get(c)
                if not handlers:
                    continue
                for cls in exc_class.__mro__:
                    handler = handlers.get(cls)
                    if handler is not None:
                        return handler
        return None

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

    def handle_http_exception(self, ctx: RequestContext, e: HTTPException) -> ResponseReturnValue:
        """Answer an HTTP error with its registered handler, or its default page."""
        if e.code is None or isinstance(e, RequestRedirect):
            if isinstance(e, RequestRedirect):
                return self._redirect_response(ctx, e)
            return e
        if isinstance(e, MethodNotAllowed) and ctx.request.method == "OPTIONS":
            pass
        handler = self._find_error_handler(e, self._chain(ctx.request.endpoint).blueprints)
        if handler is None:
            return e
        return self.ensure_sync(handler)(e)

    def _redirect_response(self, ctx: RequestContext, e: RequestRedirect) -> Response:
        request = ctx.request
        location = quote(request.script_root + e.new_path, safe="/:@!$&'()*+,;=~%")
        if request.query_string:
            # Percent-encode what a Location header cannot carry (NUL, CR, LF, spaces, non-ASCII).
            location += "?" + quote(request.query_string, safe="!$&'()*+,/:;=?@~%")
        response = self.response_class(f"Redirecting to {location}", 308)
        response.headers.set("Location", location)
        return response

    def handle_user_exception(self, ctx: RequestContext, e: Exception) -> ResponseReturnValue:
        """Handle an exception from a hook or view: HTTP errors and registered handlers; re-raise the rest."""
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            return self.handle_http_exception(ctx, e)
        handler = self._find_error_handler(e, self._chain(ctx.request.endpoint).blueprints)
        if handler is None:
            raise e
        return self.ensure_sync(handler)(e)

    def should_propagate(self) -> bool:
        """Whether unhandled exceptions are re-raised (``PROPAGATE_EXCEPTIONS``, or in testing mode)."""
        value = self.config["PROPAGATE_EXCEPTIONS"]
        if value is not None:
            return bool(value)
        return self.testing

    def log_exception(self, ctx: RequestContext | None, exc: BaseException) -> None:
        """Log an unhandled exception (called before the 500 page is sent)."""
        where = f" on {ctx.request.path} [{ctx.request.method}]" if ctx is not None else ""
        self.logger.error("Exception%s", where, exc_info=(type(exc), exc, exc.__traceback__))

    def handle_exception(self, ctx: RequestContext, e: Exception) -> Response:
        """Answer an unhandled exception with a 500 (its handler's response if registered).

        Raises:
            Exception: ``e`` itself when exceptions propagate (testing mode).
        """
        if self.should_propagate():
            raise e
        self.log_exception(ctx, e)
        server_error = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, self._chain(ctx.request.endpoint).blueprints)
        rv: ResponseReturnValue
        if handler is not None:
            rv = self.ensure_sync(handler)(server_error)
        elif self.debug:
            rv = self._debug_page(e)
        else:
            rv = server_error
        return self.finalize_from_error(ctx, rv)

    def finalize_from_error(self, ctx: RequestContext, rv: ResponseReturnValue) -> Response:
        """Build the response for an error, running ``after_request`` hooks; a failing hook is logged."""
        response = self.make_response(rv)
        try:
            return self.process_response(ctx, response)
        except Exception as hook_error:
            self.logger.exception("Request finalizing failed with an error while handling an error")
            del hook_error
            return response

    def _debug_page(self, e: BaseException) -> Response:
        import html

        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        body = (
            "<!doctype html>\n<title>Traceback</title>\n<h1>500 Internal Server Error (debug mode)</h1>\n"
            f"<pre>{html.escape(text)}</pre>\n"
            "<p>This page is shown because DEBUG is on. Never run with DEBUG in production.</p>\n"
        )
        return self.response_class(body, 500)

    # ------------------------------------------------------------------------------------------ teardown
    def _run_teardowns(self, funcs: tuple[Callable[..., Any], ...] | list[Callable[..., Any]], exc: Any) -> None:
        first: BaseException | None = None
        for func in funcs:
            try:
                func(exc)
            except Exception as e:
                if first is None:
                    first = e
                self.logger.exception("Error in teardown function %r", func)
        if first is not None and self.should_propagate():
            raise first

    def do_teardown_request(self, ctx: RequestContext, exc: BaseException | None = None) -> None:
        """Run ``teardown_request`` functions (innermost blueprint first, last registered first)."""
        funcs = self._chain(ctx.request.endpoint).teardown
        if funcs:
            self._run_teardowns(funcs, exc)

    def do_teardown_appcontext(self, ctx: AppContext, exc: BaseException | None = None) -> None:
        """Run ``teardown_appcontext`` functions (last registered first)."""
        funcs = self.teardown_appcontext_funcs
        if funcs:
            cached = self._appcontext_teardowns
            if cached is None or cached[0] != len(funcs):
                # Wrapped once, not on every pop; rebuilt if a function was registered since.
                cached = self._appcontext_teardowns = (len(funcs), [self.ensure_sync(f) for f in reversed(funcs)])
            self._run_teardowns(cached[1], exc)

    # ------------------------------------------------------------------------------------------ async cycle
    def _websocket_before(self, endpoint: str | None) -> tuple[tuple[Callable[..., Any], bool], ...]:
        funcs = self._ws_before.get(endpoint)
        if funcs is None:
            keys = tuple(reversed(iter_chain(self._async_chain(endpoint).blueprints)))
            funcs = tuple(
                (f, is_async_callable(f)) for key in keys for f in self.before_websocket_funcs.get(key, ())
            )
            self._ws_before[endpoint] = funcs
        return funcs

    def _async_chain(self, endpoint: str | None) -> _AsyncChain:
        chain = self._async_chains.get(endpoint)
        if chain is None:
            chain = self._async_chains[endpoint] = _AsyncChain(self, endpoint)
        return chain

    @property
    def sync_executor(self) -> ThreadPoolExecutor:
        """The thread pool that runs ``def`` views under ASGI (``SYNC_VIEW_THREADS`` workers, default 40)."""
        executor = self._executor
        if executor is None:
            with self._setup_lock:
                executor = self._executor
                if executor is None:
                    size = int(self.config.get("SYNC_VIEW_THREADS") or 40)
                    executor = self._executor = ThreadPoolExecutor(size, thread_name_prefix="ampulla-sync")
        return executor

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function in the app's thread pool with the current context (``request`` etc.)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        return await loop.run_in_executor(self.sync_executor, call)

    async def _acall(self, func: Callable[..., Any], *args: Any) -> Any:
        rv = func(*args)
        if inspect.isawaitable(rv):
            rv = await rv
        return rv

    async def startup(self) -> None:
        """Run ``before_serving`` functions once (ASGI lifespan startup, or the first request)."""
        if self._served:
            return
        self._served = True
        for func in self.before_serving_funcs:
            await self._acall(func)

    async def shutdown(self) -> None:
        """Run ``after_serving`` functions (ASGI lifespan shutdown) and stop the sync thread pool."""
        for func in self.after_serving_funcs:
            await self._acall(func)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def handle_request_async(
        self, request: Request, read_body: Callable[[Request], Awaitable[None]] | None = None
    ) -> tuple[Response, RequestContext]:
        """The ASGI request cycle: like :meth:`handle_request`, awaiting async views and hooks.

        ``def`` views run in the thread pool (unless registered with ``inline=True``); ``read_body`` is awaited
        after routing so ``request.form`` and friends are plain attributes in every view.

        Teardown is left to the caller (:meth:`finish_request_async`) so it runs after the body was sent.
        """
        if not self._got_first_request:
            if not self._served:
                await self.startup()
            self._got_first_request = True
        ctx = RequestContext(self, request)
        ctx.async_mode = True
        if request.environ.get("ampulla.preserve_context"):
            ctx.preserved = True
        ctx.push()
        try:
            try:
                response = await self.full_dispatch_request_async(ctx, read_body)
            except Exception as e:
                ctx._pending_exc = e
                try:
                    response = await self.handle_exception_async(ctx, e)
                except BaseException:
                    # Propagating (testing): tear down here, the caller never gets the context.
                    if not ctx.preserved:
                        await self.teardown_async(ctx, e)
                    raise
            return response, ctx
        finally:
            token = ctx._tokens.pop()
            if not ctx.preserved:
                _cv_ctx.reset(token)

    async def finish_request_async(self, ctx: RequestContext) -> None:
        """Run teardown functions (awaiting async ones) unless a streamed body still holds the context."""
        if ctx.preserved:
            return
        if ctx._holds > 0:
            ctx._teardown_pending = True
            return
        if not self.teardown_appcontext_funcs and not self._async_chain(ctx.request.endpoint).teardown:
            ctx.request.close()  # PERF: nothing to tear down (benchmarks/run.py --protocol asgi: hello)
            return
        await self.teardown_async(ctx, ctx._pending_exc)

    async def teardown_async(self, ctx: RequestContext, exc: BaseException | None) -> None:
        """Run ``teardown_request`` then ``teardown_appcontext`` functions of ``ctx``, awaiting async ones."""
        if ctx._is_copy:
            return
        token = _cv_ctx.set(ctx)
        try:
            funcs = [
                *self._async_chain(ctx.request.endpoint).teardown,
                *((f, is_async_callable(f)) for f in reversed(self.teardown_appcontext_funcs)),
            ]
            first: BaseException | None = None
            for func, is_async in funcs:
                try:
                    rv = func(exc)
                    if is_async:
                        await rv
                except Exception as e:
                    first = first or e
                    self.logger.exception("Error in teardown function %r", func)
            ctx.request.close()
            if first is not None and self.should_propagate():
                raise first
        finally:
            _cv_ctx.reset(token)

    async def full_dispatch_request_async(
        self, ctx: RequestContext, read_body: Callable[[Request], Awaitable[None]] | None = None
    ) -> Response:
        """The async twin of :meth:`full_dispatch_request`."""
        request = ctx.request
        self._match_request(request)
        endpoint = request.endpoint
        chain = self._async_chain(endpoint)
        try:
            rv = None
            if read_body is not None and (endpoint is None or endpoint not in self._streaming_endpoints):
                await read_body(request)
            for func, is_async in chain.url_value_preprocessors:
                rv = func(endpoint, request.view_args)
                if is_async:
                    await rv
            if self.config["CSRF_ENABLED"]:
                _csrf_check(self)
            rv = None
            for func, is_async in chain.before:
                rv = func()
                if is_async:
                    rv = await rv
                if rv is not None:
                    break
            if rv is None:
                rule = request.url_rule
                if (
                    rule is not None
                    and self._view_kinds.get(rule.endpoint) == "async"
                    and request.method != "OPTIONS"
                ):
                    # PERF: one coroutine less for async views (benchmarks/run.py --protocol asgi: hello).
                    rv = await self.view_functions[rule.endpoint](**request.view_args)  # type: ignore[arg-type]
                else:
                    rv = await self.dispatch_request_async(ctx)
        except Exception as e:
            rv = await self.handle_user_exception_async(ctx, e)
        response = self.make_response(rv)
        return await self.process_response_async(ctx, response, chain)

    async def dispatch_request_async(self, ctx: RequestContext) -> ResponseReturnValue:
        """Call the view: awaited when async, inline when registered so, else in the thread pool."""
        request = ctx.request
        if request.routing_exception is not None:
            raise request.routing_exception
        rule = request.url_rule
        assert rule is not None
        if request.method == "OPTIONS" and rule.provide_automatic_options:
            return self.make_default_options_response(ctx)
        endpoint = rule.endpoint
        kind = self._view_kinds.get(endpoint)
        view = self.view_functions[endpoint]
        if kind is None:
            inline = endpoint in self._inline_endpoints
            kind = "async" if is_async_callable(view) else ("inline" if inline else "thread")
            self._view_kinds[endpoint] = kind
        args = request.view_args or {}
        if kind == "async":
            return await view(**args)
        if kind == "inline":
            rv = view(**args)
        else:
            rv = await self.run_sync(view, **args)
        if inspect.isawaitable(rv):
            rv = await rv
        return rv

    async def process_response_async(
        self, ctx: RequestContext, response: Response, chain: _AsyncChain | None = None
    ) -> Response:
        """The async twin of :meth:`process_response`."""
        if ctx._after_request_functions:
            for func in ctx._after_request_functions:
                response = await self._acall(func, response)
        if chain is None:
            chain = self._async_chain(ctx.request.endpoint)
        for func, is_async in chain.after:
            response = func(response)
            if is_async:
                response = await response  # type: ignore[misc]
        if ctx._session is not None:
            self.session_interface.save_session(self, ctx._session, response)
        if self.config["SECURITY_HEADERS"]:
            self.add_security_headers(ctx.request, response)
        return response

    async def handle_user_exception_async(self, ctx: RequestContext, e: Exception) -> ResponseReturnValue:
        """The async twin of :meth:`handle_user_exception`."""
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            if e.code is None or isinstance(e, RequestRedirect):
                return self._redirect_response(ctx, e) if isinstance(e, RequestRedirect) else e
            handler = self._find_error_handler(e, self._async_chain(ctx.request.endpoint).blueprints)
            return e if handler is None else await self._acall(handler, e)
        handler = self._find_error_handler(e, self._async_chain(ctx.request.endpoint).blueprints)
        if handler is None:
            raise e
        return await self._acall(handler, e)

    async def handle_exception_async(self, ctx: RequestContext, e: Exception) -> Response:
        """The async twin of :meth:`handle_exception`."""
        if self.should_propagate():
            raise e
        self.log_exception(ctx, e)
        server_error = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, self._async_chain(ctx.request.endpoint).blueprints)
        rv: ResponseReturnValue
        if handler is not None:
            rv = await self._acall(handler, server_error)
        elif self.debug:
            rv = self._debug_page(e)
        else:
            rv = server_error
        response = self.make_response(rv)
        try:
            return await self.process_response_async(ctx, response)
        except Exception:
            self.logger.exception("Request finalizing failed with an error while handling an error")
            return response

    def add_background_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` after the response has been sent, with the app context active.

        Inside a request it runs once the body is sent (sync or async functions); outside a request it
        starts at once in the background (a task on the running loop, else a thread).
        """
        call = functools.partial(func, *args, **kwargs)
        ctx = _cv_ctx.get(None)
        if isinstance(ctx, RequestContext):
            if ctx.background_tasks is None:
                ctx.background_tasks = []
            ctx.background_tasks.append(call)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None

        async def run_in_app() -> None:
            with self.app_context():
                await self._acall(call)

        if loop is not None:
            task = loop.create_task(run_in_app())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            threading.Thread(target=lambda: run_coroutine_sync(run_in_app()), daemon=True).start()

    async def run_background_tasks_async(self, ctx: RequestContext) -> None:
        """Run the background tasks queued by a request (ASGI: after the body was sent)."""
        tasks, ctx.background_tasks = ctx.background_tasks or [], None
        for call in tasks:
            with self.app_context():
                try:
                    if is_async_callable(call):
                        await call()
                    else:
                        await self.run_sync(call)
                except Exception:
                    self.logger.exception("Error in background task %r", call)

    def run_background_tasks(self, ctx: RequestContext) -> None:
        """Run the background tasks queued by a request (WSGI: when the server closes the body)."""
        tasks, ctx.background_tasks = ctx.background_tasks or [], None
        for call in tasks:
            with self.app_context():
                try:
                    self.ensure_sync(call)()
                except Exception:
                    self.logger.exception("Error in background task %r", call)

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
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        """Build the URL of an endpoint. See :func:`ampulla.url_for`."""
        ctx = _cv_ctx.get(None)
        if isinstance(ctx, RequestContext):
            request = ctx.request
            if endpoint.startswith("."):
                blueprint = request.blueprint
                endpoint = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
            script_root = request.script_root
            host = request.host
            scheme = request.scheme
            external = bool(_external) or _scheme is not None
        else:
            endpoint = endpoint.lstrip(".")
            server_name = self.config["SERVER_NAME"]
            script_root = (self.config["APPLICATION_ROOT"] or "/").rstrip("/")
            host = server_name or ""
            scheme = self.config["PREFERRED_URL_SCHEME"]
            external = bool(_external) or _scheme is not None
            if external and not server_name:
                raise RuntimeError(
                    "Unable to build an external URL outside a request without SERVER_NAME configured: set "
                    "app.config['SERVER_NAME'] (e.g. 'example.com') or build the URL inside a request."
                )
        if _scheme is not None and not external:
            raise ValueError("When specifying '_scheme', '_external' must be True.")
        self.inject_url_defaults(endpoint, values)
        rule, path = self.url_map.build(endpoint, values, method=_method)
        if self.url_map.has_subdomains:
            server_name = self.config["SERVER_NAME"]
            target = rule.build_subdomain(values)
            current = self._subdomain(ctx.request) if isinstance(ctx, RequestContext) else ""
            if target != current:
                if not server_name:
                    raise RuntimeError(
                        f"Building a URL for the subdomain {target!r} needs SERVER_NAME; set app.config['SERVER_NAME']"
                    )
                external = True
                host = f"{target}.{server_name}" if target else server_name
        url = script_root + path
        if _anchor is not None:
            url += "#" + quote(_anchor, safe="%!#$&'()*+,/:;=?@")
        if external:
            url = f"{_scheme or scheme}://{host}{url}"
        return url

    # ------------------------------------------------------------------------------------------ protocols
    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The WSGI application; wrap it with middleware as ``app.wsgi_app = Middleware(app.wsgi_app)``."""
        return (_adapters.wsgi or _adapters.load_wsgi())(self, environ, start_response)

    def __call__(self, scope_or_environ: dict[str, Any], receive_or_start: Any, send: Any = None) -> Any:
        """WSGI ``app(environ, start_response)`` or ASGI 3 ``await app(scope, receive, send)``."""
        if send is None:
            return self.wsgi_app(scope_or_environ, receive_or_start)
        return (_adapters.asgi or _adapters.load_asgi())(self, scope_or_environ, receive_or_start, send)

    def run(self, host: str = "127.0.0.1", port: int = 5000, debug: bool | None = None, **options: Any) -> None:
        """Serve with the development server (threads; reload in debug). Use gunicorn/uvicorn/granian in production.

        Does nothing when the app was started by the ``ampulla`` command, which serves it itself.
        """
        from .serving import is_running_from_reloader, run_simple

        if os.environ.get("AMPULLA_RUN_FROM_CLI") == "true":
            if not is_running_from_reloader():
                print(
                    " * Ignoring app.run() inside the 'ampulla' command; put it under "
                    "'if __name__ == \"__main__\":'.",
                    file=sys.stderr,
                )
            return
        if debug is not None:
            self.debug = debug
        options.setdefault("use_reloader", self.debug)
        run_simple(host, port, self, **options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
