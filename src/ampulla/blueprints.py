"""Blueprints: groups of routes, hooks, error handlers, templates and static files registered on an app.

A blueprint records what is declared on it and replays it on ``app.register_blueprint(bp, url_prefix=...)``,
with its name prefixed to endpoints (``"bp.view"``) and its URL prefix to rules. Blueprints nest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .scaffold import ErrorHandlerKey, F, Scaffold, registering

if TYPE_CHECKING:
    from .app import Ampulla
    from .wrappers import Response

DeferredSetupFunction = Callable[["BlueprintSetupState"], None]


class _CliGroupDefault:
    """``cli_group``'s default: the blueprint's commands form a group named after the blueprint."""

    def __repr__(self) -> str:
        return "<the blueprint's name>"


_CLI_GROUP_DEFAULT: Any = _CliGroupDefault()


class BlueprintSetupState:
    """What a blueprint's recorded functions receive when it is registered.

    Attributes:
        app: The application.
        blueprint: The blueprint being registered.
        options: The options given to ``register_blueprint``.
        first_registration: Whether this blueprint object was not registered before.
        name: The registered (dotted, possibly renamed) name.
        url_prefix: The URL prefix in effect.
        subdomain: The subdomain in effect.
        url_defaults: Default values for all its rules.
    """

    def __init__(
        self, blueprint: Blueprint, app: Ampulla, options: dict[str, Any], first_registration: bool
    ) -> None:
        self.app = app
        self.blueprint = blueprint
        self.options = options
        self.first_registration = first_registration
        subdomain = options.get("subdomain")
        if subdomain is None:
            subdomain = blueprint.subdomain
        self.subdomain: str | None = subdomain
        url_prefix = options.get("url_prefix")
        if url_prefix is None:
            url_prefix = blueprint.url_prefix
        self.url_prefix: str | None = url_prefix
        self.name: str = options.get("name", blueprint.name)
        self.name_prefix: str = options.get("name_prefix", "")
        self.url_defaults: dict[str, Any] = dict(blueprint.url_values_defaults)
        self.url_defaults.update(options.get("url_defaults", ()))

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        **options: Any,
    ) -> None:
        """Add a rule to the app with the blueprint's prefix, subdomain, defaults and endpoint name."""
        if self.url_prefix is not None:
            rule = "/".join((self.url_prefix.rstrip("/"), rule.lstrip("/"))) if rule else self.url_prefix
        options.setdefault("subdomain", self.subdomain)
        if endpoint is None:
            if view_func is None:
                raise ValueError(f"blueprint rule {rule!r} needs an endpoint name or a view function")
            endpoint = view_func.__name__
        defaults = self.url_defaults
        if "defaults" in options:
            defaults = {**defaults, **options.pop("defaults")}
        self.app.add_url_rule(
            rule,
            f"{self.name_prefix}.{self.name}.{endpoint}".lstrip("."),
            view_func,
            defaults=defaults,
            **options,
        )


class Blueprint(Scaffold):
    """A reusable group of routes and hooks.

    Args:
        name: The blueprint's name, prefixed to its endpoints (no dots).
        import_name: Its module, usually ``__name__``.
        static_folder: Its own static folder.
        static_url_path: URL path of its static files (default: the folder's name).
        template_folder: Its own templates folder (searched after the app's).
        url_prefix: Prefix of all its rules, e.g. ``"/admin"``.
        subdomain: Subdomain of all its rules.
        url_defaults: Default view arguments for all its rules.
        root_path: Override the folder found from ``import_name``.
        cli_group: The name of the command group of :attr:`cli`'s commands (default: the blueprint's name);
            ``None`` adds them to the application's own commands. ``register_blueprint(cli_group=...)``
            overrides it.
    """

    _got_registered_once = False
    #: Makes the group of :attr:`cli` from a name (set by ``ampulla.app``: the command line is the facade's).
    cli_group_factory: ClassVar[Callable[[str], Any] | None] = None

    def __init__(
        self,
        name: str,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        url_prefix: str | None = None,
        subdomain: str | None = None,
        url_defaults: dict[str, Any] | None = None,
        root_path: str | None = None,
        cli_group: str | None = _CLI_GROUP_DEFAULT,
    ) -> None:
        super().__init__(
            import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        if not name:
            raise ValueError("'name' may not be empty.")
        if "." in name:
            raise ValueError("'name' may not contain a dot '.' character.")
        self.name = name
        self.url_prefix = url_prefix
        self.subdomain = subdomain
        self.deferred_functions: list[DeferredSetupFunction] = []
        self.url_values_defaults = url_defaults or {}
        self._blueprints: list[tuple[Blueprint, dict[str, Any]]] = []
        self.cli_group = cli_group
        self._cli: Any = None

    @property
    def cli(self) -> Any:
        """This blueprint's commands (``@bp.cli.command()``), an ``AppGroup`` added to the application's
        commands when the blueprint is registered (see ``cli_group``)."""
        if self._cli is None:
            factory = type(self).cli_group_factory
            if factory is None:
                raise RuntimeError("blueprint commands need ampulla.app to be imported")
            self._cli = factory(self.name)
        return self._cli

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_registered_once:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the blueprint '{self.name}'. It has "
                "already been registered at least once, any changes will not be applied consistently. Make sure "
                "all imports, decorators, functions, etc. needed to set up the blueprint are done before "
                "registering it."
            )

    def record(self, func: DeferredSetupFunction) -> None:
        """Call ``func(state)`` when the blueprint is registered."""
        self._check_setup_finished("record")
        self.deferred_functions.append(func)

    def record_once(self, func: DeferredSetupFunction) -> None:
        """Like :meth:`record`, but only on the blueprint's first registration."""

        def wrapper(state: BlueprintSetupState) -> None:
            if state.first_registration:
                func(state)

        self.record(wrapper)

    def make_setup_state(
        self, app: Ampulla, options: dict[str, Any], first_registration: bool = False
    ) -> BlueprintSetupState:
        return BlueprintSetupState(self, app, options, first_registration)

    def register_blueprint(self, blueprint: Blueprint, **options: Any) -> None:
        """Nest ``blueprint`` in this one; its name and URL prefix are prefixed with this one's.

        Raises:
            ValueError: ``blueprint`` is this blueprint.
        """
        if blueprint is self:
            raise ValueError("Cannot register a blueprint on itself")
        self._check_setup_finished("register_blueprint")
        self._blueprints.append((blueprint, options))

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        if endpoint and "." in endpoint:
            raise ValueError("'endpoint' may not contain a dot '.' character.")
        if view_func is not None and "." in getattr(view_func, "__name__", ""):
            raise ValueError("'view_func' name may not contain a dot '.' character.")
        self.record(
            lambda s: s.add_url_rule(
                rule, endpoint, view_func, provide_automatic_options=provide_automatic_options, **options
            )
        )

    def send_static_file(self, filename: str) -> Response:
        """Serve ``filename`` from the blueprint's static folder (cached for :meth:`get_send_file_max_age`)."""
        from .helpers import send_from_directory

        folder = self.static_folder
        if folder is None:
            raise RuntimeError(f"blueprint {self.name!r} has no static folder")
        return send_from_directory(folder, filename, max_age=self.get_send_file_max_age(filename))

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """The cache max-age of the blueprint's static files: the app's ``SEND_FILE_MAX_AGE_DEFAULT`` (``None``:
        conditional requests only). Override it to give this blueprint's files their own."""
        from .globals import current_app
        from .helpers import send_file_max_age

        return send_file_max_age(current_app.config)

    # ------------------------------------------------------------------------------------------ registration
    def register(self, app: Ampulla, options: dict[str, Any]) -> None:
        """Replay everything recorded on this blueprint on ``app`` (called by ``app.register_blueprint``).

        Raises:
            ValueError: Another blueprint is already registered under the same name.
        """
        name_prefix = options.get("name_prefix", "")
        self_name = options.get("name", self.name)
        name = f"{name_prefix}.{self_name}".lstrip(".")
        if name in app.blueprints:
            bp_desc = "this" if app.blueprints[name] is self else "a different"
            existing_at = f" '{name}'" if self_name != name else ""
            raise ValueError(
                f"The name '{self_name}' is already registered for {bp_desc} blueprint{existing_at}. Use "
                "'name=' to provide a unique name."
            )
        first_bp_registration = not any(bp is self for bp in app.blueprints.values())
        app.blueprints[name] = self
        self._got_registered_once = True
        state = self.make_setup_state(app, options, first_bp_registration)
        if self.has_static_folder:
            state.add_url_rule(
                f"{self.static_url_path}/<path:filename>", view_func=self.send_static_file, endpoint="static"
            )
        self._merge_blueprint_funcs(app, name)
        cli = self._cli
        if cli is not None and cli.commands:
            group = options.get("cli_group", self.cli_group)
            if group is None:
                app.cli.commands.update(cli.commands)
            else:
                cli.name = name if group is _CLI_GROUP_DEFAULT else group
                app.cli.add_command(cli)
        for deferred in self.deferred_functions:
            deferred(state)
        for blueprint, bp_options in self._blueprints:
            bp_options = bp_options.copy()
            bp_url_prefix = bp_options.get("url_prefix")
            bp_subdomain = bp_options.get("subdomain")
            if bp_subdomain is None:
                bp_subdomain = blueprint.subdomain
            if state.subdomain is not None and bp_subdomain is not None:
                bp_options["subdomain"] = f"{bp_subdomain}.{state.subdomain}"
            elif bp_subdomain is not None:
                bp_options["subdomain"] = bp_subdomain
            elif state.subdomain is not None:
                bp_options["subdomain"] = state.subdomain
            if bp_url_prefix is None:
                bp_url_prefix = blueprint.url_prefix
            if state.url_prefix is not None and bp_url_prefix is not None:
                bp_options["url_prefix"] = state.url_prefix.rstrip("/") + "/" + bp_url_prefix.lstrip("/")
            elif bp_url_prefix is not None:
                bp_options["url_prefix"] = bp_url_prefix
            elif state.url_prefix is not None:
                bp_options["url_prefix"] = state.url_prefix
            bp_options["name_prefix"] = name
            blueprint.register(app, bp_options)

    def _merge_blueprint_funcs(self, app: Ampulla, name: str) -> None:
        def extend(
            bp_dict: dict[str | None, list[Callable[..., Any]]], parent: dict[str | None, list[Callable[..., Any]]]
        ) -> None:
            for key, values in bp_dict.items():
                key = name if key is None else f"{name}.{key}"
                parent.setdefault(key, []).extend(values)

        for key, handler_map in self.error_handler_spec.items():
            target_key = name if key is None else f"{name}.{key}"
            target = app.error_handler_spec[target_key]
            for code, handlers in handler_map.items():
                target[code].update(handlers)
        for endpoint, func in self.view_functions.items():
            # ``@bp.endpoint(name)`` serves the app's endpoint ``name`` (as in Flask) and the blueprint's own.
            app.view_functions[endpoint] = func
            app.view_functions[f"{name}.{endpoint}"] = func
        extend(self.before_request_funcs, app.before_request_funcs)
        extend(self.after_request_funcs, app.after_request_funcs)
        extend(self.teardown_request_funcs, app.teardown_request_funcs)
        extend(self.url_default_functions, app.url_default_functions)
        extend(self.url_value_preprocessors, app.url_value_preprocessors)
        extend(self.template_context_processors, app.template_context_processors)
        extend(self.before_websocket_funcs, app.before_websocket_funcs)

    # ------------------------------------------------------------------------------------------ app-wide hooks
    def before_app_request(self, f: F) -> F:
        """Like ``before_request``, for every request of the app."""
        self.record_once(lambda s: s.app.before_request_funcs.setdefault(None, []).append(f))
        return f

    def after_app_request(self, f: F) -> F:
        """Like ``after_request``, for every request of the app."""
        self.record_once(lambda s: s.app.after_request_funcs.setdefault(None, []).append(f))
        return f

    def teardown_app_request(self, f: F) -> F:
        """Like ``teardown_request``, for every request of the app."""
        self.record_once(lambda s: s.app.teardown_request_funcs.setdefault(None, []).append(f))
        return f

    def app_context_processor(self, f: F) -> F:
        """Like ``context_processor``, for every template of the app."""
        self.record_once(lambda s: s.app.template_context_processors.setdefault(None, []).append(f))
        return f

    def app_url_value_preprocessor(self, f: F) -> F:
        """Like ``url_value_preprocessor``, for every request of the app."""
        self.record_once(lambda s: s.app.url_value_preprocessors.setdefault(None, []).append(f))
        return f

    def app_url_defaults(self, f: F) -> F:
        """Like ``url_defaults``, for every URL built in the app."""
        self.record_once(lambda s: s.app.url_default_functions.setdefault(None, []).append(f))
        return f

    def app_errorhandler(self, code: ErrorHandlerKey) -> Callable[[F], F]:
        """Like ``errorhandler``, for errors anywhere in the app."""

        def decorator(f: F) -> F:
            self.record_once(lambda s: s.app.register_error_handler(code, f))
            return f

        return decorator

    def app_template_filter(self, name: str | None = None) -> Callable[[F], F]:
        """Register a Jinja filter for the whole app."""
        return registering(self.add_app_template_filter, name)

    def add_app_template_filter(self, f: Callable[..., Any], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_filter(f, name))

    def app_template_global(self, name: str | None = None) -> Callable[[F], F]:
        """Register a Jinja global for the whole app."""
        return registering(self.add_app_template_global, name)

    def add_app_template_global(self, f: Callable[..., Any], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_global(f, name))

    def app_template_test(self, name: str | None = None) -> Callable[[F], F]:
        """Register a Jinja test for the whole app."""
        return registering(self.add_app_template_test, name)

    def add_app_template_test(self, f: Callable[..., Any], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_test(f, name))

    # Template helpers declared on a blueprint apply app-wide (Jinja has one environment per app).
    template_filter = app_template_filter
    template_global = app_template_global
    template_test = app_template_test
    add_template_filter = add_app_template_filter
    add_template_global = add_app_template_global
    add_template_test = add_app_template_test
