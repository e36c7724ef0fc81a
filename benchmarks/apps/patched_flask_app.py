"""The Flask benchmark application (``flask_app.py``) unchanged, served by Ampulla through ``ampulla.flask_patch``.

Compared with ``ampulla_app`` (the same application written against Ampulla's imports) it shows what the patch
costs per request. The patch must come before Flask is imported, so this framework is loaded in a process of its
own (``instructions.py`` runs one process per framework and scenario; with ``run.py``, leave ``flask`` out of
``--frameworks``): where real Flask is already imported, loading it fails with the patch's ``ImportError``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ampulla.flask_patch  # noqa: F401  (first: flask_app.py imports flask)

_spec = importlib.util.spec_from_file_location(
    "benchmarks.apps._flask_app_on_ampulla", Path(__file__).with_name("flask_app.py")
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

create_app = _module.create_app
create_hooks_app = _module.create_hooks_app
