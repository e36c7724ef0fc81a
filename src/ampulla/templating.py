"""Jinja2 templates: one environment per application, loaders, autoescaping, and the render functions.

The environment is built once per application (on first use) and cached in ``app.extensions``. Until the
application has handled its first request, filters, globals and tests registered on the application are
copied into it on every use, so registration order does not matter during setup; after that, rendering
does no setup work at all.

Every template sees ``request``, ``session``, ``g``, ``config``, ``url_for``, ``get_flashed_messages`` and
``csrf_token``. ``request``, ``session`` and ``g`` are the context proxies installed as environment globals:
they cost nothing unless a template uses them (the session cookie is only read if a template touches it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from jinja2 import BaseLoader, FileSystemLoader, Template, TemplateNotFound
from jinja2 import Environment as BaseEnvironment
from jinja2.runtime import Context, new_context

from .ctx import AppContext, RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .signals import before_render_template, send, send_async, template_rendered

if TYPE_CHECKING:
    from .app import Ampulla

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

__all__ = [
    "AmpullaEnvironment",
    "AmpullaLoader",
    "AmpullaTemplate",
    "Environment",
    "TemplateNotFound",
    "get_jinja_env",
    "render_template",
    "render_template_async",
    "render_template_string",
    "select_jinja_autoescape",
    "stream_template",
    "stream_template_string",
    "update_template_context",
]

_ENV_KEY = "ampulla.jinja_env"
_AUTOESCAPE_EXTENSIONS = (".html", ".htm", ".xml", ".xhtml", ".svg")
_create_lock = threading.Lock()


def select_jinja_autoescape(filename: str | None) -> bool:
    """Whether a template is autoescaped: ``.html .htm .xml .xhtml .svg`` files and string templates.

    Args:
        filename: The template name, or ``None`` for :func:`render_template_string`.
    """
    if filename is None:
        return True
    return filename.lower().endswith(_AUTOESCAPE_EXTENSIONS)


class AmpullaLoader(BaseLoader):
    """Finds templates in the application's template folder, then in each blueprint's, in registration order.

    The blueprint list is read when a template is loaded (not when the loader is made), so blueprints
    registered after the environment was created are searched too. A name containing a ``..`` segment is
    never found.

    Args:
        app: The application.
    """

    def __init__(self, app: Ampulla) -> None:
        self.app = app
        self._loaders: dict[str, FileSystemLoader] = {}

    def _loader(self, folder: str) -> FileSystemLoader:
        loader = self._loaders.get(folder)
        if loader is None:
            loader = self._loaders[folder] = FileSystemLoader(folder)
        return loader

    def folders(self) -> list[str]:
        """The absolute folders searched, in order (folders that do not exist included)."""
        app = self.app
        folders: list[str] = []
        if app.template_folder is not None:
            folders.append(os.path.join(app.root_path, app.template_folder))
        for blueprint in app.blueprints.values():
            folder = getattr(blueprint, "template_folder", None)
            if folder is None:
                continue
            path = os.path.join(blueprint.root_path, os.fspath(folder))
            if path not in folders:
                folders.append(path)
        return folders

    def get_source(self, environment: BaseEnvironment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        folders = self.folders()
        explain = bool(self.app.config.get("EXPLAIN_TEMPLATE_LOADING"))
        for index, folder in enumerate(folders):
            try:
                source = self._loader(folder).get_source(environment, template)
            except TemplateNotFound:
                continue
            if explain:
                self.app.logger.info(
                    "Template %r found in %s (searched %s)", template, folder, ", ".join(folders[: index + 1])
                )
            return source
        searched = ", ".join(folders) if folders else "(no template folders are configured)"
        if explain:
            self.app.logger.info("Template %r not found; searched %s", template, searched)
        raise TemplateNotFound(
            template,
            f"Template {template!r} was not found. Searched the template folders: {searched}. Check the name "
            "and the application's (or blueprint's) template_folder.",
        )

    def list_templates(self) -> list[str]:
        found: set[str] = set()
        for folder in self.folders():
            if os.path.isdir(folder):
                found.update(self._loader(folder).list_templates())
        return sorted(found)


class AmpullaTemplate(Template):
    """A Jinja template whose render context is built faster when it has no globals of its own."""

    def new_context(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> Context:
        template_globals: MutableMapping[str, Any] = self.globals
        # PERF: Jinja keeps a template's globals as ChainMap(template's own, environment's) and copies it
        # key by key in Python on every render (twice: for the context and its key set), about 0.7 µs per
        # global. With no template-specific globals, the environment's plain dict has the same items and
        # copies at C speed (benchmarks/run.py --scenarios template: ~8 µs per render with Ampulla's 13 globals).
        if type(template_globals) is ChainMap and len(template_globals.maps) == 2 and not template_globals.maps[0]:
            template_globals = template_globals.maps[1]
        return new_context(self.environment, self.name, self.blocks, vars, shared, template_globals, locals)


class AmpullaEnvironment(BaseEnvironment):
    """The Jinja environment of one application (``app.jinja_env``).

    Args:
        app: The application.
        **options: Jinja ``Environment`` options (``app.jinja_options``).
    """

    template_class = AmpullaTemplate
    # PERF: the environment's own attributes in slots keep its __dict__ (Jinja's ~26 attributes) within what
    # CPython shares between instances and specialises method lookups on: the compiled templates call
    # ``environment.getattr`` for every ``{{ row.name }}`` (benchmarks/instructions.py: template, -1%).
    __slots__ = ("_auto_reload_setting", "_processors", "app", "frozen")

    def __init__(self, app: Ampulla, **options: Any) -> None:
        if "loader" not in options:
            options["loader"] = AmpullaLoader(app)
        super().__init__(**options)
        self.app = app
        #: Set once the app has served its first request: from then on nothing is re-synchronised.
        self.frozen = False
        self._auto_reload_setting: bool | None = None
        self._processors: dict[str | None, tuple[tuple[Callable[..., Any], bool], ...]] = {}

    def overlay(self, *args: Any, **kwargs: Any) -> AmpullaEnvironment:
        """Jinja's overlay (an environment sharing this one's data, with some options changed), for the same app."""
        rv: AmpullaEnvironment = super().overlay(*args, **kwargs)
        # Jinja copies the instance __dict__; the slots above are copied here.
        for name in AmpullaEnvironment.__slots__:
            setattr(rv, name, getattr(self, name))
        return rv


#: Flask's name for the application's environment class (``jinja_environment``): subclass it to customise.
Environment = AmpullaEnvironment


def _render(app: Ampulla, template: Template, context: dict[str, Any]) -> str:
    """Render, sending ``before_render_template`` and ``template_rendered`` when something listens."""
    if before_render_template.receivers:
        send(before_render_template, app, template=template, context=context)
    rv = template.render(context)
    if template_rendered.receivers:
        send(template_rendered, app, template=template, context=context)
    return rv


def _auto_reload(app: Ampulla) -> bool:
    setting = app.config["TEMPLATES_AUTO_RELOAD"]
    return bool(app.debug if setting is None else setting)


def create_jinja_environment(app: Ampulla) -> AmpullaEnvironment:
    """Build the environment for ``app`` from ``app.jinja_options`` (use :func:`get_jinja_env` instead)."""
    from .csrf import generate_csrf
    from .globals import g, request, session
    from .helpers import get_flashed_messages, url_for

    options = dict(getattr(app, "jinja_options", None) or {})
    if "autoescape" not in options:
        options["autoescape"] = getattr(app, "select_jinja_autoescape", select_jinja_autoescape)
    if "auto_reload" not in options:
        options["auto_reload"] = _auto_reload(app)
    env_class = getattr(app, "jinja_environment", None) or AmpullaEnvironment
    env: AmpullaEnvironment = env_class(app, **options)
    env._auto_reload_setting = env.auto_reload
    env.globals.update(
        url_for=url_for,
        get_flashed_messages=get_flashed_messages,
        csrf_token=generate_csrf,
        config=app.config,
        request=request,
        session=session,
        g=g,
    )
    env.policies["json.dumps_function"] = app.json.dumps
    return env


def _sync(app: Ampulla, env: AmpullaEnvironment) -> None:
    """Copy the app's registries into the environment (only until the first request)."""
    env.filters.update(app.template_filters)
    env.globals.update(app.template_globals)
    env.tests.update(app.template_tests)
    reload = _auto_reload(app)
    if reload != env._auto_reload_setting:
        env.auto_reload = env._auto_reload_setting = reload
    env._processors.clear()
    if app.got_first_request:
        env.frozen = True


def get_jinja_env(app: Ampulla) -> AmpullaEnvironment:
    """The application's Jinja environment, created on first use (``app.jinja_env``).

    Args:
        app: The application.
    """
    env: AmpullaEnvironment | None = app.extensions.get(_ENV_KEY)
    if env is None:
        with _create_lock:
            env = app.extensions.get(_ENV_KEY)
            if env is None:
                env = app.extensions[_ENV_KEY] = create_jinja_environment(app)
    if not env.frozen:
        _sync(app, env)
    return env


def _processors(
    app: Ampulla, env: AmpullaEnvironment, ctx: AppContext
) -> tuple[tuple[Callable[..., Any], bool], ...]:
    """The context processors for this request: the app's, then each blueprint's from the outermost in."""
    key = ctx.request.blueprint if isinstance(ctx, RequestContext) else None
    funcs = env._processors.get(key)
    if funcs is None:
        from .concurrency import is_async_callable

        registry = app.template_context_processors
        names: list[str | None] = [None]
        if isinstance(ctx, RequestContext):
            names.extend(reversed(ctx.request.blueprints))
        funcs = tuple(
            (func, is_async_callable(func)) for name in names for func in registry.get(name, ())
        )
        env._processors[key] = funcs
    return funcs


def _need_context() -> AppContext:
    ctx = _cv_ctx.get(None)
    if ctx is None:
        raise RuntimeError(
            "Rendering a template needs an application context: render inside a view, or wrap the call in "
            "'with app.app_context():'."
        )
    return ctx


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _build_context(
    app: Ampulla, env: AmpullaEnvironment, ctx: AppContext, context: dict[str, Any]
) -> dict[str, Any]:
    # The cache is cleared on every use until the first request (see _sync), so this never goes stale.
    processors = env._processors.get(ctx.request.blueprint if isinstance(ctx, RequestContext) else None)
    if processors is None:
        processors = _processors(app, env, ctx)
    if not processors:
        # PERF: the common case (benchmarks/run.py --scenarios template): no copy, no calls.
        return context
    merged: dict[str, Any] = {}
    for func, is_async in processors:
        if is_async:
            if _in_event_loop():
                raise RuntimeError(
                    f"The context processor {func.__qualname__} is async and cannot run inside an async view "
                    "with render_template(); use 'await render_template_async(...)' there, or make the "
                    "processor a plain function."
                )
            from .concurrency import run_coroutine_sync

            merged.update(run_coroutine_sync(func()))
        else:
            merged.update(func())
    # The values passed to render_template win over context processors.
    merged.update(context)
    return merged


def update_template_context(app: Ampulla, context: dict[str, Any]) -> None:
    """Add the context processors' values to ``context`` in place (values already there are kept).

    Args:
        app: The application.
        context: The template context to complete.
    """
    ctx = _need_context()
    env = get_jinja_env(app)
    merged = _build_context(app, env, ctx, dict(context))
    context.update(merged)


def _prepare(ctx: AppContext) -> tuple[Ampulla, AmpullaEnvironment]:
    app = ctx.app
    env: AmpullaEnvironment | None = app.extensions.get(_ENV_KEY)
    if env is None or not env.frozen:
        env = get_jinja_env(app)
    return app, env


def render_template(template_name_or_list: str | Template | list[str | Template], **context: Any) -> str:
    """Render a template from the template folders with the given variables.

    Works in ``def`` and ``async def`` views alike (no ``await``). HTML-like templates are autoescaped.

    Args:
        template_name_or_list: A template name such as ``"users/list.html"``, a list of names (the first
            that exists is used), or a ``Template``.
        **context: Variables for the template; they override context processors' values.

    Returns:
        The rendered text.

    Raises:
        TemplateNotFound: No template folder holds the template (the message lists the folders searched).
        RuntimeError: No application context is active.
    """
    ctx = _cv_ctx.get(None) or _need_context()
    app, env = _prepare(ctx)
    template = env.get_or_select_template(template_name_or_list)
    return _render(app, template, _build_context(app, env, ctx, context))


def render_template_string(source: str, **context: Any) -> str:
    """Render a template given as a string (always autoescaped).

    Never build ``source`` from user input: a template can call any global it sees. Pass user input as a
    variable instead: ``render_template_string("Hello {{ name }}", name=name)``.

    Args:
        source: The template source.
        **context: Variables for the template.

    Returns:
        The rendered text.
    """
    ctx = _cv_ctx.get(None) or _need_context()
    app, env = _prepare(ctx)
    template = env.from_string(source)
    return _render(app, template, _build_context(app, env, ctx, context))


async def render_template_async(
    template_name_or_list: str | Template | list[str | Template], **context: Any
) -> str:
    """Like :func:`render_template`, but awaits ``async def`` context processors.

    Args:
        template_name_or_list: A template name, a list of names, or a ``Template``.
        **context: Variables for the template.

    Returns:
        The rendered text.
    """
    ctx = _cv_ctx.get(None) or _need_context()
    app, env = _prepare(ctx)
    template = env.get_or_select_template(template_name_or_list)
    processors = _processors(app, env, ctx)
    if processors:
        merged: dict[str, Any] = {}
        for func, is_async in processors:
            merged.update(await func() if is_async else func())
        merged.update(context)
        context = merged
    if before_render_template.receivers:
        await send_async(before_render_template, app, template=template, context=context)
    rv = template.render(context)
    if template_rendered.receivers:
        await send_async(template_rendered, app, template=template, context=context)
    return rv


def _generate(app: Ampulla, template: Template, context: dict[str, Any]) -> Iterator[str]:
    if before_render_template.receivers:
        send(before_render_template, app, template=template, context=context)
    yield from template.generate(context)
    if template_rendered.receivers:
        send(template_rendered, app, template=template, context=context)


def _stream(ctx: AppContext, template: Template, context: dict[str, Any]) -> Iterator[str]:
    if before_render_template.receivers or template_rendered.receivers:
        generator = _generate(ctx.app, template, context)
    else:
        generator = template.generate(context)
    if isinstance(ctx, RequestContext):
        from .helpers import stream_with_context

        return stream_with_context(generator)  # type: ignore[no-any-return]
    return generator


def stream_template(template_name_or_list: str | Template | list[str | Template], **context: Any) -> Iterator[str]:
    """Render a template piece by piece: return the iterator from a view to stream the response.

    ``request``, ``session`` and ``g`` stay usable in the template while the response is sent.

    Args:
        template_name_or_list: A template name, a list of names, or a ``Template``.
        **context: Variables for the template.

    Returns:
        An iterator of text chunks.
    """
    ctx = _cv_ctx.get(None) or _need_context()
    app, env = _prepare(ctx)
    template = env.get_or_select_template(template_name_or_list)
    return _stream(ctx, template, _build_context(app, env, ctx, context))


def stream_template_string(source: str, **context: Any) -> Iterator[str]:
    """Render a template string piece by piece; see :func:`stream_template`.

    Args:
        source: The template source (autoescaped).
        **context: Variables for the template.

    Returns:
        An iterator of text chunks.
    """
    ctx = _cv_ctx.get(None) or _need_context()
    app, env = _prepare(ctx)
    template = env.from_string(source)
    return _stream(ctx, template, _build_context(app, env, ctx, context))
