"""The ``ampulla`` command line (app discovery, routes, shell, run, custom commands) and the development server."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import ampulla
from ampulla import Ampulla, current_app, g
from ampulla import cli as cli_module
from ampulla.cli import (
    AmpullaGroup,
    AppGroup,
    NoAppException,
    ScriptInfo,
    cli,
    prepare_import,
    with_appcontext,
)

#: The command line reads and sets these environment variables (fixtures in conftest.py).
pytestmark = pytest.mark.usefixtures("clean_cli_environment")


def write(folder: Path, relative: str, source: str) -> Path:
    """Write a module under ``folder`` (dedented) and make the import system see it."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return path


def invoke(*args: str, group: click.Command = cli, **kwargs: Any) -> Result:
    return CliRunner().invoke(group, list(args), **kwargs)


ROUTES_APP = """
    from ampulla import Ampulla

    app = Ampulla(__name__, static_folder=None)


    @app.route("/users/<int:id>", methods=["GET", "PUT"])
    def user(id):
        return "user"


    @app.route("/", methods=["GET", "POST"])
    def index():
        return "index"


    @app.route("/about")
    def about():
        return "about"
"""


# ---------------------------------------------------------------------------------------------- basics
def test_version_shows_ampulla_and_python_versions() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert f"Ampulla {ampulla.__version__}" in result.output
    assert "Python 3." in result.output


def test_python_dash_m_ampulla_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ampulla", "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Ampulla {ampulla.__version__}")


def test_help_lists_builtin_commands_without_an_app(project: Path) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("run", "routes", "shell"):
        assert name in result.output
    assert "Error" not in result.output


def test_main_uses_the_ampulla_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "main", lambda **kwargs: seen.update(kwargs))
    cli_module.main()
    assert seen == {"auto_envvar_prefix": "AMPULLA"}


# ---------------------------------------------------------------------------------------------- routes
def test_routes_table_is_sorted_by_endpoint_and_hides_head_and_options(project: Path) -> None:
    write(project, "routesapp.py", ROUTES_APP)
    result = invoke("--app", "routesapp:app", "routes")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Endpoint", "Methods", "Rule"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = [line.split(None, 1)[0] for line in lines[2:]]
    assert rows == ["about", "index", "user"]
    assert "GET, POST" in lines[3]
    assert "HEAD" not in result.output and "OPTIONS" not in result.output


def test_routes_sort_by_rule_methods_and_match(project: Path) -> None:
    write(project, "routesapp.py", ROUTES_APP)
    by_rule = invoke("--app", "routesapp", "routes", "--sort", "rule")
    assert [line.split()[-1] for line in by_rule.output.splitlines()[2:]] == ["/", "/about", "/users/<int:id>"]
    by_methods = invoke("--app", "routesapp", "routes", "-s", "methods")
    assert [line.split()[0] for line in by_methods.output.splitlines()[2:]] == ["about", "index", "user"]
    assert by_methods.output.splitlines()[4].split()[1:3] == ["GET,", "PUT"]
    by_match = invoke("--app", "routesapp", "routes", "-s", "match")
    assert [line.split()[0] for line in by_match.output.splitlines()[2:]] == ["user", "index", "about"]


def test_routes_show_the_subdomain_or_host_column(project: Path) -> None:
    write(project, "subapp.py", """
        from ampulla import Ampulla

        app = Ampulla(__name__, static_folder=None)
        app.add_url_rule("/a", subdomain="api", endpoint="a")
        hosts = Ampulla(__name__, static_folder=None, host_matching=True)
        hosts.add_url_rule("/b", host="b.test", endpoint="b")
    """)
    lines = invoke("--app", "subapp:app", "routes").output.splitlines()
    assert lines[0].split() == ["Endpoint", "Methods", "Subdomain", "Rule"]
    assert lines[2].split() == ["a", "GET", "api", "/a"]
    lines = invoke("--app", "subapp:hosts", "routes").output.splitlines()
    assert lines[0].split() == ["Endpoint", "Methods", "Host", "Rule"]
    assert lines[2].split() == ["b", "GET", "b.test", "/b"]


def test_routes_all_methods_shows_head_and_options(project: Path) -> None:
    write(project, "routesapp.py", ROUTES_APP)
    result = invoke("--app", "routesapp", "routes", "--all-methods")
    assert "GET, HEAD, OPTIONS, POST" in result.output


def test_routes_of_an_app_without_routes(project: Path) -> None:
    write(project, "empty.py", "from ampulla import Ampulla\napp = Ampulla(__name__, static_folder=None)\n")
    result = invoke("--app", "empty", "routes")
    assert result.exit_code == 0
    assert "No routes were registered." in result.output


# ---------------------------------------------------------------------------------------------- discovery
APP_MODULE = """
    from ampulla import Ampulla

    {name} = Ampulla(__name__, static_folder=None)


    @{name}.route("/")
    def index():
        return "index"
"""


def app_name_via_cli(*args: str) -> str:
    """Run a command that prints the loaded app's name, with ``args`` before it."""
    group = AmpullaGroup(name="ampulla", load_plugins=False)

    @group.command("which")
    def which() -> None:
        click.echo(f"app={current_app.name}")

    result = invoke(*args, "which", group=group)
    assert result.exit_code == 0, result.output
    return result.output.strip().rsplit("app=", 1)[-1]


def test_discovery_with_app_option(project: Path) -> None:
    write(project, "myproject/__init__.py", "")
    write(project, "myproject/web.py", APP_MODULE.format(name="app"))
    assert app_name_via_cli("--app", "myproject.web:app") == "myproject.web"
    assert app_name_via_cli("-A", "myproject.web") == "myproject.web"


def test_discovery_from_ampulla_app_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "service.py", APP_MODULE.format(name="application"))
    monkeypatch.setenv("AMPULLA_APP", "service")
    assert app_name_via_cli() == "service"


def test_app_option_wins_over_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "first.py", APP_MODULE.format(name="app"))
    write(project, "second.py", APP_MODULE.format(name="app"))
    monkeypatch.setenv("AMPULLA_APP", "first")
    assert app_name_via_cli("--app", "second") == "second"


@pytest.mark.parametrize("filename", ["app.py", "wsgi.py"])
def test_discovery_of_app_py_or_wsgi_py_in_current_folder(project: Path, filename: str) -> None:
    write(project, filename, APP_MODULE.format(name="app"))
    assert app_name_via_cli() == filename[:-3]


def test_app_py_is_tried_before_wsgi_py(project: Path) -> None:
    write(project, "app.py", APP_MODULE.format(name="app"))
    write(project, "wsgi.py", "raise SystemExit('wsgi.py must not be imported')\n")
    assert app_name_via_cli() == "app"


def test_discovery_of_a_single_instance_with_any_name(project: Path) -> None:
    write(project, "api.py", APP_MODULE.format(name="api_service"))
    assert app_name_via_cli("--app", "api") == "api"


@pytest.mark.parametrize("factory", ["create_app", "make_app"])
def test_discovery_of_factories(project: Path, factory: str) -> None:
    write(
        project,
        "factory_mod.py",
        f"""
        from ampulla import Ampulla

        def {factory}():
            return Ampulla("made-by-{factory}")
        """,
    )
    assert app_name_via_cli("--app", "factory_mod") == f"made-by-{factory}"


def test_factory_call_syntax_passes_literal_arguments(project: Path) -> None:
    write(
        project,
        "configured.py",
        """
        from ampulla import Ampulla

        def create_app(env, debug=False):
            app = Ampulla(f"app-{env}-{debug}")
            return app
        """,
    )
    assert app_name_via_cli("--app", "configured:create_app('prod', debug=True)") == "app-prod-True"
    assert app_name_via_cli("--app", "configured:create_app( 'dev' )") == "app-dev-False"


def test_file_path_import_puts_the_package_parent_on_sys_path(project: Path) -> None:
    write(project, "src/pkg/__init__.py", "")
    write(project, "src/pkg/site.py", APP_MODULE.format(name="app"))
    assert prepare_import("src/pkg/site.py") == "pkg.site"
    assert sys.path[0] == str((project / "src").resolve())
    assert app_name_via_cli("--app", "src/pkg/site.py:app") == "pkg.site"


def test_module_name_resolves_against_the_current_folder(project: Path) -> None:
    assert prepare_import("examples.users.app") == "examples.users.app"
    assert sys.path[0] == str(project)


def discovery_error(*args: str) -> str:
    result = invoke(*args, "routes")
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())


def test_nothing_found_says_what_was_tried_and_what_to_set(project: Path) -> None:
    message = discovery_error()
    assert "Could not find an Ampulla application" in message
    assert "--app option: not given" in message
    assert "AMPULLA_APP (or FLASK_APP) environment variable: not set" in message
    assert f"app.py and wsgi.py in the current folder ({project})" in message
    assert "export AMPULLA_APP=module:app" in message


def test_missing_module_is_reported(project: Path) -> None:
    message = discovery_error("--app", "nosuchmodule:app")
    assert "Could not import 'nosuchmodule'" in message
    assert "--app='nosuchmodule:app'" in message


def test_missing_module_from_env_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPULLA_APP", "nosuchmodule")
    assert "AMPULLA_APP='nosuchmodule'" in discovery_error()


def test_import_error_inside_the_module_shows_its_traceback(project: Path) -> None:
    write(project, "broken.py", "import a_dependency_that_is_not_installed\n")
    message = discovery_error("--app", "broken")
    assert "While importing 'broken'" in message
    assert "a_dependency_that_is_not_installed" in message


def test_missing_attribute_is_reported(project: Path) -> None:
    write(project, "mod.py", APP_MODULE.format(name="app"))
    assert "Module 'mod' has no attribute 'nope'" in discovery_error("--app", "mod:nope")


def test_attribute_that_is_not_an_app_is_reported(project: Path) -> None:
    write(project, "mod.py", "app = 42\n")
    assert "gave int, not an Ampulla application" in discovery_error("--app", "mod:app")


def test_module_without_app_lists_what_was_looked_for(project: Path) -> None:
    write(project, "plain.py", "x = 1\n")
    message = discovery_error("--app", "plain")
    assert "Module 'plain' has no Ampulla application" in message
    assert "'create_app()' or 'make_app()'" in message


def test_several_apps_must_be_named(project: Path) -> None:
    write(
        project,
        "two.py",
        """
        from ampulla import Ampulla

        public = Ampulla("public")
        admin = Ampulla("admin")
        """,
    )
    message = discovery_error("--app", "two")
    assert "several Ampulla applications (admin, public)" in message
    assert "--app two:NAME" in message
    assert app_name_via_cli("--app", "two:admin") == "admin"


def test_factory_that_needs_arguments_says_how_to_pass_them(project: Path) -> None:
    write(project, "needs.py", "from ampulla import Ampulla\ndef create_app(env):\n    return Ampulla(env)\n")
    message = discovery_error("--app", "needs")
    assert "cannot be called without arguments" in message
    assert "needs:create_app('arg')" in message


def test_type_error_inside_a_factory_is_not_hidden(project: Path) -> None:
    write(project, "buggy.py", "def create_app():\n    return len(5)\n")
    result = invoke("--app", "buggy", "routes")
    assert isinstance(result.exception, TypeError)


def test_unparseable_app_expression(project: Path) -> None:
    write(project, "mod.py", APP_MODULE.format(name="app"))
    assert "Could not parse" in discovery_error("--app", "mod:app(")
    assert "must be Python literals" in discovery_error("--app", "mod:create_app(os.environ)")
    assert "is not a function" in discovery_error("--app", "mod:app()")


def test_script_info_records_an_importable_target(project: Path) -> None:
    write(project, "factories.py", "from ampulla import Ampulla\ndef create_app(n=1):\n    return Ampulla('f')\n")
    info = ScriptInfo("factories:create_app(2)")
    info.load_app()
    assert info.target is not None
    assert str(info.target) == "factories:create_app(2)"
    assert info.target.is_factory
    assert info.load_app() is info.load_app()


def test_reload_paths_watch_the_top_level_package_without_importing(project: Path) -> None:
    write(project, "examples/__init__.py", "raise SystemExit('must not be imported')\n")
    write(project, "examples/users/__init__.py", "")
    assert ScriptInfo("examples.users.app:app").reload_paths() == [str(project / "examples")]
    assert ScriptInfo("single:app").reload_paths() == [str(project)]
    assert ScriptInfo().reload_paths() == [str(project)]


# ---------------------------------------------------------------------------------------------- commands
def test_app_group_commands_run_in_the_app_context() -> None:
    app = Ampulla("custom", static_folder=None)
    group = AmpullaGroup(name="manage", create_app=lambda: app, load_plugins=False)
    tools = AppGroup("tools")

    @tools.command()
    @click.argument("name")
    def greet(name: str) -> None:
        """Greet someone."""
        g.greeted = name
        click.echo(f"hello {name} from {current_app.name}")

    @tools.command(with_appcontext=False)
    def outside() -> None:
        click.echo(f"has app: {bool(current_app)}")

    @tools.command
    async def later() -> None:
        click.echo(f"async in {current_app.name}")

    @tools.group()
    def nested() -> None:
        pass

    @nested.command("deep")
    def deep() -> None:
        click.echo(f"deep in {current_app.name}")

    group.add_command(tools)
    assert isinstance(nested, AppGroup)
    assert invoke("tools", "greet", "Ada", group=group).output == "hello Ada from custom\n"
    assert invoke("tools", "outside", group=group).output == "has app: False\n"
    assert invoke("tools", "later", group=group).output == "async in custom\n"
    assert invoke("tools", "nested", "deep", group=group).output == "deep in custom\n"
    assert "Greet someone." in invoke("tools", "greet", "--help", group=group).output


def test_with_appcontext_on_a_plain_click_command() -> None:
    app = Ampulla("plain-click", static_folder=None)

    @click.command()
    @with_appcontext
    def show() -> None:
        click.echo(current_app.name)

    result = CliRunner().invoke(show, [], obj=ScriptInfo(create_app=lambda: app))
    assert result.output == "plain-click\n"


CUSTOM_COMMANDS_APP = """
    import click
    from ampulla import Ampulla, current_app
    from ampulla.cli import AppGroup

    app = Ampulla(__name__, static_folder=None)
    if not hasattr(Ampulla, "cli"):  # until the Ampulla.cli property lands
        app.cli = AppGroup(app.name)


    @app.cli.command("greet")
    @click.argument("name")
    def greet(name):
        \"\"\"Say hello from the app.\"\"\"
        click.echo(f"hello {name} from {current_app.name}")
"""


def test_app_cli_commands_are_part_of_the_main_cli(project: Path) -> None:
    write(project, "withcli.py", CUSTOM_COMMANDS_APP)
    result = invoke("--app", "withcli", "greet", "Bob")
    assert result.exit_code == 0, result.output
    assert result.output == "hello Bob from withcli\n"
    listing = invoke("--app", "withcli", "--help")
    assert "greet" in listing.output and "Say hello from the app." in listing.output


def test_ampulla_cli_property_is_a_lazy_app_group() -> None:
    if not hasattr(Ampulla, "cli"):
        pytest.skip("Ampulla.cli is not wired in app.py yet")
    app = Ampulla("with-cli-property", static_folder=None)
    assert isinstance(app.cli, AppGroup)
    assert app.cli is app.cli
    assert app.cli.name == app.name


def test_unknown_command_reports_a_missing_app(project: Path) -> None:
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "Could not find an Ampulla application" in result.output
    assert "No such command 'frobnicate'" in result.output


def test_db_commands_are_added_and_run_in_the_app_context(monkeypatch: pytest.MonkeyPatch) -> None:
    db_cli = click.Group("db", help="Database commands.")

    @db_cli.command("where")
    def where() -> None:  # written like ampulla.db.cli: finds the app through current_app
        click.echo(f"db of {current_app.name}")

    original_callback = where.callback
    fake = types.ModuleType("ampulla.db.cli")
    fake.db_cli = db_cli  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ampulla.db.cli", fake)
    app = Ampulla("dbapp", static_folder=None)
    group = AmpullaGroup(name="ampulla", create_app=lambda: app)
    assert invoke("db", "where", group=group).output == "db of dbapp\n"
    assert "Database commands." in invoke("--help", group=group).output
    assert db_cli.commands["where"].callback is original_callback  # the original group is left alone


def test_a_db_command_of_the_app_wins_over_the_built_in_db_group(monkeypatch: pytest.MonkeyPatch) -> None:
    # Flask-Migrate adds its "db" group to app.cli: "ampulla db upgrade" must run it, as "flask db upgrade" does.
    builtin = click.Group("db", help="Built-in database commands.")

    @builtin.command("upgrade")
    def builtin_upgrade() -> None:
        click.echo("built-in upgrade")

    fake = types.ModuleType("ampulla.db.cli")
    fake.db_cli = builtin  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ampulla.db.cli", fake)
    app = Ampulla("migrating", static_folder=None)
    own = click.Group("db", help="The app's database migrations.")

    @own.command("upgrade")
    def own_upgrade() -> None:
        click.echo(f"app upgrade in {current_app.name}")

    app.cli.add_command(own)
    group = AmpullaGroup(name="ampulla", create_app=lambda: app)
    result = invoke("db", "upgrade", group=group)
    assert result.exit_code == 0, result.output
    assert result.output == "app upgrade in migrating\n"
    assert "The app's database migrations." in invoke("--help", group=group).output
    # An app without its own "db" command keeps the built-in group.
    plain = AmpullaGroup(name="ampulla", create_app=lambda: Ampulla("plain", static_folder=None))
    assert invoke("db", "upgrade", group=plain).output == "built-in upgrade\n"


def test_db_commands_explain_a_missing_database_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> types.ModuleType:
        if name == "ampulla.db.cli":
            raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")
        return real_import(name, package)

    monkeypatch.setattr(cli_module.importlib, "import_module", fake_import)
    group = AmpullaGroup(name="ampulla", create_app=lambda: Ampulla("x"))
    result = invoke("db", "upgrade", group=group)
    assert result.exit_code == 1
    assert "pip install 'ampulla[db]'" in result.output


def test_db_group_is_skipped_when_the_module_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> types.ModuleType:
        if name == "ampulla.db.cli":
            raise ModuleNotFoundError("No module named 'ampulla.db.cli'", name="ampulla.db.cli")
        return real_import(name, package)

    monkeypatch.setattr(cli_module.importlib, "import_module", fake_import)
    group = AmpullaGroup(name="ampulla", create_app=lambda: Ampulla("x"))
    assert "db" not in invoke("--help", group=group).output.split("Commands:")[1]


# ---------------------------------------------------------------------------------------------- shell
def test_shell_preloads_app_g_and_shell_context(project: Path) -> None:
    write(
        project,
        "shellapp.py",
        """
        from ampulla import Ampulla

        app = Ampulla(__name__, static_folder=None)


        @app.shell_context_processor
        def extra():
            return {"db": "the-database", "answer": 42}
        """,
    )
    script = "print(app.name, db, answer)\nprint(type(g).__name__)\nprint(current_app_name())\n"
    result = invoke("--app", "shellapp", "shell", input="def current_app_name():\n    return app.name\n\n" + script)
    assert result.exit_code == 0, result.output
    assert "shellapp the-database 42" in result.output
    assert "Preloaded: answer, app, db, g" in result.output
    assert "App: shellapp" in result.output


def test_flask_discovery_functions(project: Path) -> None:
    from ampulla.cli import find_app_by_string, find_best_app, locate_app

    write(project, "flaskish.py", """
        from ampulla import Ampulla

        def create_app(name="made"):
            return Ampulla(name)
    """)
    assert prepare_import("flaskish.py") == "flaskish"  # puts the project folder on sys.path
    assert locate_app("flaskish", None).name == "made"  # type: ignore[union-attr]
    assert locate_app("flaskish", "create_app('other')").name == "other"  # type: ignore[union-attr]
    assert locate_app("not_a_module_anywhere", None, raise_if_not_found=False) is None
    with pytest.raises(NoAppException):
        locate_app("not_a_module_anywhere", None)
    module = sys.modules["flaskish"]
    assert find_best_app(module).name == "made"
    assert find_app_by_string(module, "create_app('x')").name == "x"


def test_run_cert_and_key_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from ampulla.cli import run_command

    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(click.BadParameter):
        run_command.make_context("run", ["--cert", str(cert)])  # no --key
    with pytest.raises(click.BadParameter):
        run_command.make_context("run", ["--key", str(cert)])  # no --cert
    ctx = run_command.make_context("run", ["--key", str(cert), "--cert", str(cert)])
    assert ctx.params["cert"] == (str(cert), str(cert))
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(click.BadParameter, match="cryptography"):
        run_command.make_context("run", ["--cert", "adhoc"])
    monkeypatch.setitem(sys.modules, "cryptography", types.ModuleType("cryptography"))
    assert run_command.make_context("run", ["--cert", "adhoc"]).params["cert"] == "adhoc"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    monkeypatch.setitem(sys.modules, "my_tls", types.SimpleNamespace(context=context))
    assert run_command.make_context("run", ["--cert", "my_tls.context"]).params["cert"] is context
    with pytest.raises(click.BadParameter):
        run_command.make_context("run", ["--cert", "my_tls.context", "--key", str(cert)])
    ctx = run_command.make_context("run", ["--exclude-patterns", f"*.tmp{os.pathsep}build/*"])
    assert ctx.params["exclude_patterns"] == ["*.tmp", "build/*"]


def test_flask_app_and_debug_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, "envapp.py", """
        from ampulla import Ampulla

        app = Ampulla(__name__, static_folder=None)
        app.debug = True


        @app.cli.command("debug")
        def show_debug():
            print(app.debug)
    """)
    monkeypatch.delenv("AMPULLA_APP", raising=False)
    monkeypatch.delenv("AMPULLA_DEBUG", raising=False)
    monkeypatch.setenv("FLASK_APP", "envapp")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert invoke("debug").output.strip() == "False"  # set_debug_flag: the environment decides
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert invoke("debug").output.strip() == "True"


def test_blueprint_commands(project: Path) -> None:
    write(project, "bpapp.py", """
        from ampulla import Ampulla, Blueprint, current_app

        app = Ampulla(__name__, static_folder=None)
        users = Blueprint("users", __name__)
        tools = Blueprint("tools", __name__, cli_group=None)
        admin = Blueprint("admin", __name__)


        @users.cli.command("create")
        def create():
            print("created in", current_app.name)


        @tools.cli.command("clean")
        def clean():
            print("cleaned")


        @admin.cli.command("grant")
        def grant():
            print("granted")


        app.register_blueprint(users)
        app.register_blueprint(tools)
        app.register_blueprint(admin, cli_group="staff")
    """)
    assert invoke("--app", "bpapp", "users", "create").output.strip() == "created in bpapp"
    assert invoke("--app", "bpapp", "clean").output.strip() == "cleaned"
    assert invoke("--app", "bpapp", "staff", "grant").output.strip() == "granted"
