"""The core never reaches an adapter, a server, the test client or the command line.

The facade (``ampulla.app``: ``app(...)``, ``test_client``, ``cli``, ``run``) and the adapters reach them; the
core modules (the cycles, plans, wrappers, routing, sessions, templating...) import none of them, not even
inside a function. Imports for the type checker only (``if TYPE_CHECKING:``) do not count.

And a rule of the source for speed: no method is called on an object a module imported by name.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, ModuleType

from ampulla.globals import LocalProxy

SRC = Path(__file__).resolve().parents[1] / "src" / "ampulla"
#: The facade and the edges: they may import anything of Ampulla.
EDGE = {"__init__", "__main__", "app", "asgi", "wsgi", "testing", "cli", "servers", "flask_patch", "db.cli"}
#: What the core may not import.
FORBIDDEN = {"ampulla.app", "ampulla.asgi", "ampulla.wsgi", "ampulla.testing", "ampulla.cli", "ampulla.servers",
             "ampulla.flask_patch", "ampulla.db.cli"}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts)


def _runtime_imports(path: Path) -> set[str]:
    """The absolute names of the Ampulla modules ``path`` imports outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    package = ("ampulla." + _module_name(path)).rsplit(".", 1)[0]
    if path.name == "__init__.py":
        package = "ampulla." + _module_name(path).removesuffix(".__init__") if _module_name(path) != "__init__" else (
            "ampulla"
        )
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name.startswith("ampulla"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    module = ".".join([*base, *(child.module.split(".") if child.module else [])])
                else:
                    module = child.module or ""
                if module.startswith("ampulla"):
                    found.add(module)
                    found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def test_core_modules_never_import_the_edges() -> None:
    offenders = {}
    core = [p for p in SRC.rglob("*.py") if _module_name(p) not in EDGE]
    assert len(core) > 30
    for path in core:
        bad = sorted(_runtime_imports(path) & FORBIDDEN)
        if bad:
            offenders[_module_name(path)] = bad
    assert offenders == {}


def test_serving_a_request_loads_no_test_client_cli_or_server() -> None:
    code = """
import json, sys
from ampulla import Ampulla, request
app = Ampulla("boundary")

@app.route("/<name>")
def hello(name):
    return {"hello": name, "q": request.args.get("q")}

chunks = []
status = []
body = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/ann", "QUERY_STRING": "q=1", "SERVER_NAME": "localhost",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": "localhost",
            "wsgi.input": __import__("io").BytesIO()}, lambda s, h, e=None: status.append(s))
chunks = b"".join(body)
print(json.dumps({"status": status[0], "body": chunks.decode(), "modules": sorted(m for m in sys.modules
                  if m.startswith(("ampulla", "click", "werkzeug.serving", "jinja2", "sqlalchemy")))}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "200 OK"
    assert json.loads(result["body"]) == {"hello": "ann", "q": "1"}
    loaded = set(result["modules"])
    assert {"ampulla.cycle", "ampulla.endpoint", "ampulla.wsgi"} <= loaded
    assert not loaded & {"ampulla.testing", "ampulla.cli", "ampulla.servers", "ampulla.flask_patch", "click"}
    assert not any(m.startswith(("jinja2", "sqlalchemy", "ampulla.db")) for m in loaded)  # loaded when used


def _imported_objects(path: Path) -> dict[str, object]:
    """The names ``path`` binds at module level by ``from ... import``, to the objects they name.

    Modules, classes and functions are left out (calling their attributes makes no bound method), and so are
    the context proxies (every attribute of theirs is looked up on the object behind them anyway).
    """
    module = importlib.import_module("ampulla." + _module_name(path).removesuffix(".__init__"))
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name
                value = getattr(module, name, None)
                if not issubclass(type(value), ModuleType | type | FunctionType | BuiltinFunctionType | LocalProxy):
                    found[name] = value
    return found


def test_methods_are_never_called_on_an_imported_object() -> None:
    # CPython 3.11 compiles ``name.method(...)`` on a name bound by an import as an attribute load then a call,
    # making a bound method on each call (it expects a module there); ``ctx._cv_ctx`` is therefore imported under
    # another name and assigned. Five such calls cost 5% of a request with hooks.
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        imported = _imported_objects(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in imported
            ):
                offenders.append(f"{_module_name(path)}:{node.lineno} {ast.unparse(node.func)}")
    assert offenders == []
