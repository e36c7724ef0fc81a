"""Framework registries (one per protocol): which module builds each framework's app, and loading it safely."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Framework:
    """A framework under test and where its benchmark app lives."""

    name: str  #: key used on the command line
    label: str  #: column heading
    module: str  #: module exposing the app factories named by the scenarios
    protocol: str = "wsgi"  #: "wsgi" or "asgi"
    distribution: str | None = None  #: installed distribution, for version reporting
    default: bool = True  #: run when ``--frameworks`` is not given


#: All frameworks by name, in the order they are reported.
FRAMEWORKS: dict[str, Framework] = {
    fw.name: fw
    for fw in (
        Framework("ampulla", "Ampulla", "benchmarks.apps.ampulla_app", distribution="ampulla"),
        Framework("flask", "Flask", "benchmarks.apps.flask_app", distribution="flask"),
        Framework("bottle", "Bottle", "benchmarks.apps.bottle_app", distribution="bottle"),
        Framework("falcon", "Falcon", "benchmarks.apps.falcon_app", distribution="falcon"),
        Framework("bare", "bare", "benchmarks.apps.bare_app"),
        # The Flask app unchanged through ampulla.flask_patch; in a process without real Flask (not by default).
        Framework("ampulla-patched", "Ampulla patched", "benchmarks.apps.patched_flask_app", "wsgi", "ampulla", False),
    )
}

#: ASGI frameworks by name (``--protocol asgi``), in the order they are reported. Names may repeat
#: :data:`FRAMEWORKS`' ("ampulla", "bare"): the registries are separate, one per protocol.
ASGI_FRAMEWORKS: dict[str, Framework] = {
    fw.name: fw
    for fw in (
        Framework("ampulla", "Ampulla", "benchmarks.apps.ampulla_async_app", "asgi", "ampulla"),
        Framework("ampulla-def", "Ampulla def", "benchmarks.apps.ampulla_app", "asgi", "ampulla"),
        Framework("starlette", "Starlette", "benchmarks.apps.starlette_app", "asgi", "starlette"),
        # Starlette with def endpoints (its thread pool), the peer of ampulla-def.
        Framework("starlette-def", "Starlette def", "benchmarks.apps.starlette_def_app", "asgi", "starlette"),
        Framework("quart", "Quart", "benchmarks.apps.quart_app", "asgi", "quart"),
        Framework("fastapi", "FastAPI", "benchmarks.apps.fastapi_app", "asgi", "fastapi"),
        Framework("bare", "bare", "benchmarks.apps.bare_asgi_app", "asgi"),
        # The Flask app (def views) unchanged through ampulla.flask_patch, served over ASGI; compare ampulla-def.
        Framework(
            "ampulla-patched", "Ampulla patched", "benchmarks.apps.patched_flask_app", "asgi", "ampulla", False
        ),
        # Only the hooks scenario, with BaseHTTPMiddleware; on request: --frameworks starlette-bhm.
        Framework("starlette-bhm", "Starlette BHM", "benchmarks.apps.starlette_bhm_app", "asgi", "starlette", False),
    )
}


def registry(protocol: str) -> dict[str, Framework]:
    """The frameworks benchmarked through ``protocol`` ("wsgi" or "asgi")."""
    return ASGI_FRAMEWORKS if protocol == "asgi" else FRAMEWORKS


@dataclass
class LoadedFramework:
    """A framework whose app module imported; builds (and caches) its apps on demand."""

    spec: Framework
    module: ModuleType
    version: str
    _apps: dict[str, Any] = field(default_factory=dict)

    def has_factory(self, factory: str) -> bool:
        """Whether the app module provides ``factory``."""
        return callable(getattr(self.module, factory, None))

    def app(self, factory: str) -> Any:
        """Return the app built by ``factory`` (built once, exceptions propagate)."""
        if factory not in self._apps:
            self._apps[factory] = getattr(self.module, factory)()
        return self._apps[factory]


def load(spec: Framework) -> LoadedFramework | str:
    """Import ``spec``'s app module; return it loaded, or the reason it could not be."""
    try:
        module = importlib.import_module(spec.module)
    except Exception as exc:  # any failure (missing package, half-written code) means "skip"
        return f"{type(exc).__name__}: {exc}"
    return LoadedFramework(spec, module, _version(spec))


def _version(spec: Framework) -> str:
    if spec.distribution is None:
        return "-"
    try:
        return importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return str(getattr(importlib.import_module(spec.distribution), "__version__", "?"))
    except Exception:
        return "?"
