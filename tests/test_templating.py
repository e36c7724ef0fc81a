"""Templates: rendering, autoescaping, template globals and context processors, loaders, reloading, streaming.

Request-level tests run over WSGI and ASGI (``protocol``) and, where views are involved, with ``def`` and
``async def`` views (``as_view``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import TemplateNotFound
from markupsafe import Markup

from ampulla import Ampulla, flash, g, request, session
from ampulla.templating import (
    get_jinja_env,
    render_template,
    render_template_async,
    render_template_string,
    stream_template,
    stream_template_string,
)

View = Callable[[Callable[..., Any]], Callable[..., Any]]
XSS = "<script>alert('x')</script>"
XSS_ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


def write(folder: Path | str, name: str, text: str) -> Path:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def templates(app: Ampulla) -> Path:
    folder = Path(app.root_path) / "templates"
    folder.mkdir(exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------- rendering


def test_render_template_passes_variables(app: Ampulla, templates: Path, protocol: str, as_view: View) -> None:
    write(templates, "hello.html", "<p>Hello {{ name }}, {{ items|join(',') }}</p>")

    @app.route("/")
    @as_view
    def index() -> str:
        return render_template("hello.html", name="Ada", items=[1, 2, 3])

    response = app.test_client(protocol=protocol).get("/")
    assert response.status_code == 200
    assert response.text == "<p>Hello Ada, 1,2,3</p>"
    assert response.mimetype == "text/html"


def test_render_template_in_async_view_needs_no_await(app: Ampulla, templates: Path, protocol: str) -> None:
    write(templates, "a.html", "{{ n }}")

    @app.route("/")
    async def index() -> str:
        await asyncio.sleep(0)
        return render_template("a.html", n=41 + 1)

    assert app.test_client(protocol=protocol).get("/").text == "42"


def test_render_template_async_awaits_async_context_processors(
    app: Ampulla, templates: Path, protocol: str
) -> None:
    write(templates, "a.html", "{{ user }} {{ n }}")

    @app.context_processor
    async def load_user() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"user": "ada"}

    @app.route("/")
    async def index() -> str:
        return await render_template_async("a.html", n=1)

    assert app.test_client(protocol=protocol).get("/").text == "ada 1"


def test_async_context_processor_in_async_view_without_await_says_what_to_do(
    app: Ampulla, templates: Path, protocol: str
) -> None:
    write(templates, "a.html", "{{ user }}")

    @app.context_processor
    async def load_user() -> dict[str, Any]:
        return {"user": "ada"}

    @app.route("/")
    async def index() -> str:
        return render_template("a.html")

    with pytest.raises(RuntimeError, match="render_template_async"):
        app.test_client(protocol=protocol).get("/")


def test_async_context_processor_works_in_def_view(app: Ampulla, templates: Path, protocol: str) -> None:
    write(templates, "a.html", "{{ user }}")

    @app.context_processor
    async def load_user() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"user": "ada"}

    @app.route("/")
    def index() -> str:
        return render_template("a.html")

    assert app.test_client(protocol=protocol).get("/").text == "ada"


def test_render_template_string(app: Ampulla, protocol: str, as_view: View) -> None:
    @app.route("/")
    @as_view
    def index() -> str:
        return render_template_string("{{ a }} + {{ b }} = {{ a + b }}", a=1, b=2)

    assert app.test_client(protocol=protocol).get("/").text == "1 + 2 = 3"


def test_list_of_names_renders_the_first_that_exists(app: Ampulla, templates: Path) -> None:
    write(templates, "fallback.html", "fallback")
    write(templates, "second.html", "second")
    with app.test_request_context("/"):
        assert render_template(["missing.html", "second.html", "fallback.html"]) == "second"


def test_template_inheritance_and_includes(app: Ampulla, templates: Path) -> None:
    write(templates, "base.html", "<title>{% block title %}Site{% endblock %}</title>{% block body %}{% endblock %}")
    write(templates, "part.html", "[{{ value }}]")
    write(
        templates,
        "page.html",
        '{% extends "base.html" %}{% block title %}Page - {{ super() }}{% endblock %}'
        '{% block body %}{% include "part.html" %}{% endblock %}',
    )
    with app.test_request_context("/"):
        assert render_template("page.html", value="<x>") == "<title>Page - Site</title>[&lt;x&gt;]"


def test_render_outside_any_context_raises_a_clear_error(app: Ampulla) -> None:
    with pytest.raises(RuntimeError, match="app_context"):
        render_template_string("x")


def test_render_with_app_context_only(app: Ampulla) -> None:
    app.config["SERVER_NAME"] = "example.com"

    @app.route("/users")
    def users() -> str:
        return ""

    with app.app_context():
        g.who = "cli"
        text = render_template_string("{{ g.who }} {{ config.SERVER_NAME }} {{ url_for('users', _external=True) }}")
    assert text == "cli example.com http://example.com/users"


# ---------------------------------------------------------------------------------------------- autoescaping


@pytest.mark.parametrize("extension", [".html", ".htm", ".xml", ".xhtml", ".svg", ".HTML"])
def test_html_like_templates_escape_user_input(app: Ampulla, templates: Path, extension: str) -> None:
    write(templates, f"page{extension}", "<b>{{ comment }}</b>")
    with app.test_request_context("/"):
        assert render_template(f"page{extension}", comment=XSS) == f"<b>{XSS_ESCAPED}</b>"


@pytest.mark.parametrize("extension", [".txt", ".js", ".md", ".j2"])
def test_other_templates_are_not_escaped(app: Ampulla, templates: Path, extension: str) -> None:
    write(templates, f"page{extension}", "{{ comment }}")
    with app.test_request_context("/"):
        assert render_template(f"page{extension}", comment=XSS) == XSS


def test_script_from_user_input_is_escaped_in_the_response(
    app: Ampulla, templates: Path, protocol: str, as_view: View
) -> None:
    write(templates, "comment.html", "<div>{{ request.args['c'] }}</div>")

    @app.route("/")
    @as_view
    def index() -> str:
        return render_template("comment.html")

    response = app.test_client(protocol=protocol).get("/", query_string={"c": XSS})
    assert response.text == f"<div>{XSS_ESCAPED}</div>"
    assert "<script>" not in response.text


def test_render_template_string_is_autoescaped(app: Ampulla) -> None:
    with app.test_request_context("/"):
        assert render_template_string("{{ c }}", c=XSS) == XSS_ESCAPED


def test_safe_filter_markup_and_autoescape_false_are_the_only_raw_routes(app: Ampulla, templates: Path) -> None:
    write(
        templates,
        "raw.html",
        "{{ c }}|{{ c|safe }}|{{ m }}|{% autoescape false %}{{ c }}{% endautoescape %}|{{ c }}",
    )
    with app.test_request_context("/"):
        text = render_template("raw.html", c=XSS, m=Markup("<i>trusted</i>"))
    assert text.split("|") == [XSS_ESCAPED, XSS, "<i>trusted</i>", XSS, XSS_ESCAPED]


def test_escaped_values_in_attributes(app: Ampulla) -> None:
    with app.test_request_context("/"):
        text = render_template_string('<a title="{{ t }}">', t='" onmouseover="alert(1)')
    assert text == '<a title="&#34; onmouseover=&#34;alert(1)">'


def test_tojson_filter_uses_the_app_json_provider_and_is_safe_in_script(app: Ampulla) -> None:
    with app.test_request_context("/"):
        text = render_template_string("<script>var d = {{ d|tojson }};</script>", d={"b": "</script>", "a": 1})
    assert text == '<script>var d = {"a": 1, "b": "\\u003c/script\\u003e"};</script>'


# ---------------------------------------------------------------------------------------------- template globals


def test_request_session_g_config_url_for_in_every_template(
    app: Ampulla, templates: Path, protocol: str, as_view: View
) -> None:
    app.config["SITE"] = "Ampulla"
    write(
        templates,
        "globals.html",
        "{{ request.path }} {{ request.args.q }} {{ session.user }} {{ g.x }} {{ config.SITE }} "
        "{{ url_for('index', page=2) }}",
    )

    @app.route("/login")
    @as_view
    def login() -> str:
        session["user"] = "ada"
        return "ok"

    @app.route("/")
    @as_view
    def index() -> str:
        g.x = "gee"
        return render_template("globals.html")

    client = app.test_client(protocol=protocol)
    client.get("/login")
    assert client.get("/?q=search").text == "/ search ada gee Ampulla /?page=2"


def test_session_is_not_opened_by_a_template_that_does_not_use_it(
    app: Ampulla, templates: Path, protocol: str
) -> None:
    write(templates, "plain.html", "plain")

    @app.route("/")
    def index() -> str:
        return render_template("plain.html")

    response = app.test_client(protocol=protocol).get("/")
    assert response.text == "plain"
    # The session proxy was never touched: no Vary: Cookie, no cookie.
    assert "Cookie" not in response.headers.getlist("Vary")
    assert "Set-Cookie" not in response.headers


def test_flashed_messages_are_rendered_escaped_with_categories(
    app: Ampulla, templates: Path, protocol: str, as_view: View
) -> None:
    write(
        templates,
        "messages.html",
        "{% for category, message in get_flashed_messages(with_categories=true) %}"
        "<li class={{ category }}>{{ message }}</li>{% endfor %}",
    )

    @app.route("/post")
    @as_view
    def post() -> str:
        flash("Saved <b>it</b>", "success")
        flash("Careful", "warning")
        return "ok"

    @app.route("/")
    @as_view
    def index() -> str:
        return render_template("messages.html")

    client = app.test_client(protocol=protocol)
    client.get("/post")
    assert client.get("/").text == (
        "<li class=success>Saved &lt;b&gt;it&lt;/b&gt;</li><li class=warning>Careful</li>"
    )
    # Shown once.
    assert client.get("/").text == ""


def test_context_processors_filters_globals_and_tests(app: Ampulla, protocol: str, as_view: View) -> None:
    @app.context_processor
    def site() -> dict[str, Any]:
        return {"site": "Ampulla", "shadowed": "processor"}

    @app.template_filter()
    def shout(value: str) -> str:
        return value.upper() + "!"

    @app.template_filter("twice")
    def double(value: str) -> str:
        return value * 2

    @app.template_global()
    def answer() -> int:
        return 42

    @app.template_test("even")
    def is_even(value: int) -> bool:
        return value % 2 == 0

    @app.route("/")
    @as_view
    def index() -> str:
        return render_template_string(
            "{{ site }} {{ 'hi'|shout }} {{ 'ab'|twice }} {{ answer() }} {{ 4 is even }} {{ 3 is even }} "
            "{{ shadowed }}",
            shadowed="view",
        )

    assert app.test_client(protocol=protocol).get("/").text == "Ampulla HI! abab 42 True False view"


def test_later_context_processors_override_earlier_ones(app: Ampulla) -> None:
    app.context_processor(lambda: {"x": 1, "y": 1})
    app.context_processor(lambda: {"x": 2})
    with app.test_request_context("/"):
        assert render_template_string("{{ x }}{{ y }}") == "21"


def test_registration_after_the_environment_exists_is_seen_before_the_first_request(app: Ampulla) -> None:
    env = get_jinja_env(app)
    env.globals["direct"] = "yes"

    @app.template_filter()
    def late(value: str) -> str:
        return f"late {value}"

    with app.test_request_context("/"):
        assert render_template_string("{{ 'x'|late }} {{ direct }}") == "late x yes"
    assert get_jinja_env(app) is env


def test_environment_is_built_once_and_reused(app: Ampulla, protocol: str) -> None:
    envs = []

    @app.route("/")
    def index() -> str:
        envs.append(get_jinja_env(app))
        return render_template_string("x")

    client = app.test_client(protocol=protocol)
    client.get("/")
    client.get("/")
    assert envs[0] is envs[1]
    assert envs[0].app is app


def test_jinja_options_are_applied(app: Ampulla) -> None:
    app.jinja_options = {"trim_blocks": True, "lstrip_blocks": True}  # type: ignore[attr-defined]
    with app.test_request_context("/"):
        assert render_template_string("{% if true %}\n  yes\n{% endif %}\n") == "  yes\n"


# ---------------------------------------------------------------------------------------------- blueprints


def _fake_blueprint(app: Ampulla, name: str, folder: Path, template_folder: str | None = "templates") -> None:
    # The contract with blueprints.py: ``app.blueprints`` maps names to objects with these attributes.
    app.blueprints[name] = SimpleNamespace(  # type: ignore[assignment]
        name=name, root_path=str(folder), template_folder=template_folder
    )


def test_app_templates_win_over_blueprint_templates_then_registration_order(
    app: Ampulla, templates: Path, tmp_path: Path
) -> None:
    write(templates, "shared.html", "app")
    write(tmp_path / "one" / "templates", "shared.html", "one")
    write(tmp_path / "one" / "templates", "both.html", "one")
    write(tmp_path / "one" / "templates", "only_one.html", "only one")
    write(tmp_path / "two" / "templates", "both.html", "two")
    write(tmp_path / "two" / "templates", "only_two.html", "only two")
    _fake_blueprint(app, "one", tmp_path / "one")
    _fake_blueprint(app, "two", tmp_path / "two")
    _fake_blueprint(app, "none", tmp_path / "none", template_folder=None)
    with app.test_request_context("/"):
        assert render_template("shared.html") == "app"
        assert render_template("both.html") == "one"
        assert render_template("only_one.html") == "only one"
        assert render_template("only_two.html") == "only two"
    assert get_jinja_env(app).list_templates() == ["both.html", "only_one.html", "only_two.html", "shared.html"]


def test_blueprint_context_processors_apply_to_its_requests_only(
    app: Ampulla, tmp_path: Path, protocol: str, as_view: View
) -> None:
    _fake_blueprint(app, "admin", tmp_path / "admin")
    app.template_context_processors["admin"] = [lambda: {"area": "admin"}]
    app.context_processor(lambda: {"area": "public", "site": "S"})

    def page() -> str:
        return render_template_string("{{ site }} {{ area }} {{ request.blueprint }}")

    app.add_url_rule("/admin/", endpoint="admin.index", view_func=as_view(page))
    app.add_url_rule("/", endpoint="index", view_func=as_view(page))
    client = app.test_client(protocol=protocol)
    assert client.get("/admin/").text == "S admin admin"
    assert client.get("/").text == "S public None"


def test_with_real_blueprints(app: Ampulla, templates: Path, tmp_path: Path, protocol: str) -> None:
    from ampulla import blueprints
    write(templates, "index.html", "app {{ 'x'|bp_upper }}")
    write(tmp_path / "shop" / "templates", "shop/list.html", "shop {{ currency }} {{ 'x'|bp_upper }}")
    shop = blueprints.Blueprint("shop", __name__, template_folder="templates", root_path=str(tmp_path / "shop"))

    @shop.context_processor
    def currency() -> dict[str, str]:
        return {"currency": "EUR"}

    @shop.app_template_filter()
    def bp_upper(value: str) -> str:
        return value.upper()

    @shop.route("/shop")
    def shop_list() -> str:
        return render_template("shop/list.html")

    @app.route("/")
    def index() -> str:
        return render_template("index.html", currency="none")

    app.register_blueprint(shop)
    client = app.test_client(protocol=protocol)
    assert client.get("/shop").text == "shop EUR X"
    assert client.get("/").text == "app X"


# ---------------------------------------------------------------------------------------------- not found


def test_missing_template_names_the_folders_searched(app: Ampulla, templates: Path, tmp_path: Path) -> None:
    _fake_blueprint(app, "shop", tmp_path / "shop")
    with app.test_request_context("/"), pytest.raises(TemplateNotFound) as info:
        render_template("nope.html")
    message = str(info.value)
    assert "nope.html" in message
    assert str(templates) in message
    assert str(tmp_path / "shop" / "templates") in message


def test_missing_template_in_a_view_is_a_server_error(
    app: Ampulla, templates: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.testing = False
    monkeypatch.setattr(app.logger, "disabled", True)  # the logger is global: restore it after

    @app.route("/")
    def index() -> str:
        return render_template("nope.html")

    assert app.test_client(protocol=protocol).get("/").status_code == 500


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "../templates/../secret.txt",
        "sub/../../secret.txt",
        "..\\secret.txt",
        "sub/..",
    ],
)
def test_template_names_with_dot_dot_are_not_found(app: Ampulla, templates: Path, name: str) -> None:
    write(Path(app.root_path), "secret.txt", "SECRET")
    write(templates, "sub/page.html", "page")
    with app.test_request_context("/"), pytest.raises(TemplateNotFound):
        render_template(name)


def test_absolute_template_names_stay_inside_the_folder(app: Ampulla, templates: Path) -> None:
    write(Path(app.root_path), "secret.txt", "SECRET")
    with app.test_request_context("/"), pytest.raises(TemplateNotFound):
        render_template(str(Path(app.root_path) / "secret.txt"))


def test_no_template_folder(tmp_path: Path) -> None:
    app = Ampulla("t", root_path=str(tmp_path), template_folder=None)
    with app.test_request_context("/"), pytest.raises(TemplateNotFound, match="no template folders"):
        render_template("a.html")


# ---------------------------------------------------------------------------------------------- auto reload


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    # Make sure the modification time changes even on file systems with coarse timestamps.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.mark.parametrize(
    ("debug", "setting", "reloads"),
    [(False, None, False), (True, None, True), (False, True, True), (True, False, False)],
)
def test_templates_auto_reload(
    app: Ampulla, templates: Path, debug: bool, setting: bool | None, reloads: bool
) -> None:
    app.debug = debug
    app.config["TEMPLATES_AUTO_RELOAD"] = setting
    path = write(templates, "page.html", "v1")

    @app.route("/")
    def index() -> str:
        return render_template("page.html")

    client = app.test_client()
    assert client.get("/").text == "v1"
    _rewrite(path, "v2")
    assert client.get("/").text == ("v2" if reloads else "v1")


# ---------------------------------------------------------------------------------------------- streaming


def test_stream_template_streams_with_the_request_context(
    app: Ampulla, templates: Path, protocol: str, view_kind: str
) -> None:
    write(templates, "stream.html", "{% for i in items %}<{{ i }} {{ request.args.who }}>{% endfor %}")
    torn_down: list[str] = []

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        torn_down.append(request.path)

    def body() -> Iterator[str]:
        return stream_template("stream.html", items=["a", "&"])

    if view_kind == "def":
        app.add_url_rule("/", "index", body)
    else:

        async def index() -> Iterator[str]:
            return body()

        app.add_url_rule("/", "index", index)

    response = app.test_client(protocol=protocol).get("/?who=me")
    assert response.status_code == 200
    assert response.text == "<a me><&amp; me>"
    assert torn_down == ["/"]


def test_stream_template_string_is_an_iterator_of_chunks(app: Ampulla) -> None:
    with app.test_request_context("/"):
        chunks = stream_template_string("{% for i in range(3) %}{{ i }}{% endfor %}")
        assert not isinstance(chunks, str | list)
        assert "".join(chunks) == "012"


# ---------------------------------------------------------------------------------------------- public names


def test_render_functions_are_importable_from_the_package() -> None:
    import ampulla

    assert ampulla.render_template is render_template
    assert ampulla.render_template_string is render_template_string
    assert ampulla.stream_template is stream_template
    assert ampulla.stream_template_string is stream_template_string


def test_explain_template_loading_logs_the_search(
    app: Ampulla, templates: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.logger, "disabled", False)  # other tests may have left the global logger disabled
    app.config["EXPLAIN_TEMPLATE_LOADING"] = True
    write(tmp_path / "shop" / "templates", "shop.html", "shop")
    _fake_blueprint(app, "shop", tmp_path / "shop")
    with caplog.at_level("INFO", logger=app.logger.name), app.test_request_context("/"):
        assert render_template("shop.html") == "shop"
        with pytest.raises(TemplateNotFound):
            render_template("nope.html")
    messages = [record.getMessage() for record in caplog.records]
    assert any("'shop.html' found in " + str(tmp_path / "shop" / "templates") in m for m in messages)
    assert any("'nope.html' not found" in m and str(templates) in m for m in messages)


def test_an_overlay_of_the_environment_renders_for_the_same_app(app: Ampulla, templates: Path) -> None:
    write(templates, "over.html", "<< greeting >> {{ config['SECRET_KEY'] }}")
    app.jinja_env.globals["greeting"] = "hi"
    overlay = app.jinja_env.overlay(variable_start_string="<<", variable_end_string=">>")
    assert overlay.app is app
    assert overlay.frozen == app.jinja_env.frozen
    with app.app_context():
        assert overlay.get_template("over.html").render() == "hi {{ config['SECRET_KEY'] }}"
    with app.test_request_context("/"):
        assert render_template("over.html") == "<< greeting >> test-secret"  # the app's own environment
