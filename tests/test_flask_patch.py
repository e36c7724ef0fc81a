"""ampulla.flask_patch: flask.* and flask_sqlalchemy.* served by Ampulla's modules, each check in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter with warnings as errors; ``path`` goes first on its sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FLASK_"))}
    env["PYTHONPATH"] = os.pathsep.join([*([str(path)] if path else []), SRC])
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def check(code: str, *, path: Path | None = None) -> str:
    result = run_python(code, path=path)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def real_flask(tmp_path: Path) -> Path:
    """A folder holding stand-ins for installed ``flask`` and ``flask_sqlalchemy`` packages."""
    for name in ("flask", "flask_sqlalchemy"):
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("REAL = True\n")
    (tmp_path / "flask" / "globals.py").write_text("REAL = True\n")
    return tmp_path


def test_flask_names_are_amp_objects() -> None:
    check(
        """
        import ampulla.flask_patch
        import flask
        from flask import Flask, Blueprint, jsonify, render_template, request, session, url_for

        import ampulla
        from ampulla import blueprints, globals, json, templating

        assert Flask is ampulla.Ampulla is ampulla.Flask
        assert Blueprint is blueprints.Blueprint
        assert request is globals.request and session is globals.session
        assert jsonify is json.jsonify and url_for is ampulla.url_for
        assert render_template is templating.render_template
        assert flask.json.jsonify is json.jsonify
        """
    )


def test_an_app_written_for_flask_runs() -> None:
    out = check(
        """
        import ampulla.flask_patch
        from flask import Flask, jsonify, request

        app = Flask(__name__)

        @app.route("/hello/<name>")
        def hello(name):
            return jsonify(name=name, page=request.args.get("page", type=int))

        print(app.test_client().get("/hello/ann?page=2").get_json())
        """
    )
    assert out.strip() == "{'name': 'ann', 'page': 2}"


def test_every_flask_module_is_an_alias() -> None:
    check(
        """
        import importlib, sys
        import ampulla.flask_patch
        from ampulla.flask_patch import AliasModule, _ALIASES

        for name in _ALIASES:
            module = importlib.import_module(name)
            assert isinstance(module, AliasModule) and sys.modules[name] is module, name
            assert module.__name__ == name and module.__spec__.name == name
        assert not any(isinstance(getattr(m, "__file__", None), str) and "site-packages/flask" in m.__file__
                       for m in sys.modules.values() if m is not None)
        """
    )


def test_submodule_names_map_to_amp_classes() -> None:
    check(
        """
        import ampulla.flask_patch
        import flask.app, flask.cli, flask.globals, flask.json.provider, flask.json.tag, flask.sansio.app
        import flask.sessions, flask.testing, flask.views
        from flask.globals import request_ctx
        from flask.testing import EnvironBuilder, FlaskClient, FlaskCliRunner

        import ampulla.globals, ampulla.json, ampulla.sessions, ampulla.testing, ampulla.views
        from ampulla import Ampulla

        assert flask.app.Flask is flask.sansio.app.App is Ampulla
        assert request_ctx is ampulla.globals.request_ctx
        assert FlaskClient is ampulla.testing.AmpullaClient and FlaskCliRunner is ampulla.testing.AmpullaCliRunner
        assert EnvironBuilder is ampulla.testing.EnvironBuilder
        assert flask.json.provider.DefaultJSONProvider is ampulla.json.DefaultJSONProvider
        assert flask.json.tag.TaggedJSONSerializer is ampulla.sessions.TaggedJSONSerializer
        assert flask.sessions.SecureCookieSessionInterface is ampulla.sessions.SecureCookieSessionInterface
        assert flask.views.MethodView is ampulla.views.MethodView
        """
    )


def test_flask_sqlalchemy_is_amp_database() -> None:
    check(
        """
        import ampulla.flask_patch
        from flask_sqlalchemy import SQLAlchemy
        from flask_sqlalchemy.model import Model
        from flask_sqlalchemy.pagination import Pagination
        import flask_sqlalchemy.extension

        import ampulla.db

        assert SQLAlchemy is ampulla.db.Database is flask_sqlalchemy.extension.SQLAlchemy
        assert Model is ampulla.db.ModelMixin and Pagination is ampulla.db.Pagination
        """
    )


def test_version_attribute_warns_like_flask() -> None:
    check(
        """
        import warnings
        import ampulla.flask_patch
        import flask, flask_sqlalchemy

        for module, version in ((flask, "3.1.3"), (flask_sqlalchemy, "3.1.1")):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert module.__version__ == version
            assert caught[0].category is DeprecationWarning
            assert "importlib.metadata.version" in str(caught[0].message)
        """
    )


def test_distribution_metadata_answers_as_flask() -> None:
    check(
        """
        import importlib.metadata as metadata
        import ampulla.flask_patch

        assert metadata.version("flask") == metadata.version("Flask") == "3.1.3"
        assert metadata.version("flask-sqlalchemy") == metadata.version("Flask_SQLAlchemy") == "3.1.1"
        assert metadata.distribution("flask").metadata["Name"] == "Flask"
        assert "Flask" in metadata.packages_distributions()["flask"]
        """
    )


def test_installed_flask_is_shadowed(real_flask: Path) -> None:
    check(
        """
        import ampulla.flask_patch
        import flask, flask.globals, flask_sqlalchemy
        assert not hasattr(flask, "REAL") and not hasattr(flask.globals, "REAL")
        assert not hasattr(flask_sqlalchemy, "REAL")
        """,
        path=real_flask,
    )


def test_patch_after_real_flask_is_an_error(real_flask: Path) -> None:
    result = run_python(
        """
        import flask
        import ampulla.flask_patch
        """,
        path=real_flask,
    )
    assert result.returncode == 1
    assert "ImportError: ampulla.flask_patch was imported after real Flask (flask" in result.stderr
    assert "make `import ampulla.flask_patch` the first import" in result.stderr


def test_process_without_patch_is_untouched(real_flask: Path) -> None:
    check(
        """
        import sys
        before = list(sys.meta_path)
        import ampulla, ampulla.app, ampulla.cli, ampulla.db, ampulla.testing
        assert sys.meta_path == before
        assert "ampulla.flask_patch" not in sys.modules and "flask" not in sys.modules
        import flask
        assert flask.REAL
        """,
        path=real_flask,
    )


def test_importing_twice_installs_one_finder() -> None:
    check(
        """
        import importlib, sys
        import ampulla.flask_patch
        importlib.reload(ampulla.flask_patch)
        assert ampulla.flask_patch.install() is ampulla.flask_patch.installed_finder()
        assert sum(type(f).__name__ == "FlaskAliasFinder" for f in sys.meta_path) == 1
        """
    )


def test_missing_names_are_errors_not_stand_ins() -> None:
    check(
        """
        import ampulla.flask_patch
        import flask

        try:
            flask.no_such_name
        except AttributeError as exc:
            assert "Ampulla does not provide it yet" in str(exc)
        else:
            raise AssertionError("no error")
        try:
            import flask.no_such_module
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("no error")
        assert not hasattr(flask, "websocket")  # Flask exports only its own names
        """
    )


def test_star_import_and_dir_list_flask_names() -> None:
    check(
        """
        import ampulla.flask_patch
        import flask
        from flask import *  # noqa: F403

        assert Flask is flask.Flask and request is flask.request  # noqa: F405
        assert {"Flask", "request", "json", "cli", "sessions"} <= set(dir(flask))
        assert "Flask" in flask.__all__ and "json" not in flask.__all__
        """
    )


def test_assignment_on_an_alias_leaves_amp_modules_alone() -> None:
    check(
        """
        import pytest
        import ampulla.flask_patch
        import flask.helpers
        import ampulla.helpers

        original = ampulla.helpers.url_for
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setattr(flask.helpers, "url_for", "patched")
        assert flask.helpers.url_for == "patched" and ampulla.helpers.url_for is original
        monkeypatch.undo()
        assert flask.helpers.url_for is original is ampulla.helpers.url_for
        """
    )
