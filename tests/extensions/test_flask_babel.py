"""Flask-Babel 4.0.0 on Ampulla: the locale chosen by a ``locale_selector`` from ``Accept-Language`` or a query
argument, the timezone by a ``timezone_selector``; ``gettext``, ``ngettext`` and ``lazy_gettext`` (in a template
too) translated from a catalog compiled in the test's folder; ``format_datetime``, ``format_decimal``,
``force_locale``."""

from __future__ import annotations

import ampulla.flask_patch  # noqa: F401  (first: flask_babel imports flask)

# isort: split

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

flask_babel = pytest.importorskip(
    "flask_babel", reason="Flask-Babel is not installed (pip install -e '.[dev]' installs Flask-Babel==4.0.0)"
)
from babel import dates, numbers  # noqa: E402
from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.mofile import write_mo  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402
from flask import Flask, render_template, request  # noqa: E402
from flask_babel import (  # noqa: E402
    Babel,
    force_locale,
    format_datetime,
    format_decimal,
    get_locale,
    get_timezone,
    gettext,
    lazy_gettext,
    ngettext,
)

View = Callable[[Callable[..., Any]], Callable[..., Any]]

#: Module level, as in a forms or models module: translated when rendered, in the request's locale.
PAGE_TITLE = lazy_gettext("Welcome")

TRANSLATIONS = {
    "de": {"Welcome": "Willkommen", "Hello %(name)s!": "Hallo %(name)s!", "Settings": "Einstellungen"},
    "fr": {"Welcome": "Bienvenue", "Hello %(name)s!": "Bonjour %(name)s !", "Settings": "Paramètres"},
}
#: CLDR's plural forms: German has two, French three ("one", "many" for millions, "other").
PLURALS = {"de": ("%(num)d Apfel", "%(num)d Äpfel"), "fr": ("%(num)d pomme", "%(num)d pommes", "%(num)d pommes")}
TEMPLATE = """\
<title>{{ title }}</title>
<p>{{ _('Hello %(name)s!', name=name) }}</p>
<p>{{ ngettext('%(num)d apple', '%(num)d apples', apples) }}</p>
<nav>{{ _('Settings') }}</nav>
"""


def _compile_catalogs(root: Path) -> None:
    """``pybabel init`` and ``pybabel compile`` for German and French: a ``.po`` file written, read back and
    compiled to ``translations/<locale>/LC_MESSAGES/messages.mo`` (Flask-Babel's default layout)."""
    for locale, messages in TRANSLATIONS.items():
        catalog = Catalog(locale=locale, domain="messages")
        for source, translated in messages.items():
            catalog.add(source, translated)
        catalog.add(("%(num)d apple", "%(num)d apples"), PLURALS[locale])
        folder = root / "translations" / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with open(folder / "messages.po", "wb") as po:
            write_po(po, catalog)
        with open(folder / "messages.po", "rb") as po:
            compiled = read_po(po, locale=locale)
        with open(folder / "messages.mo", "wb") as mo:
            write_mo(mo, compiled)


@pytest.fixture
def babel_app(tmp_path: Path, as_view: View) -> Flask:
    """The app of Flask-Babel's documentation: selectors for the locale and the timezone, views and a template
    using the translation functions."""
    _compile_catalogs(tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(TEMPLATE, encoding="utf-8")
    app = Flask(__name__, root_path=str(tmp_path))
    app.config.update(TESTING=True, BABEL_DEFAULT_TIMEZONE="UTC")

    def get_locale_from_request() -> str | None:
        # A query argument wins (a language menu), then the browser's preference.
        return request.args.get("lang") or request.accept_languages.best_match(["de", "fr", "en"])

    def get_timezone_from_request() -> str | None:
        return request.args.get("tz")

    Babel(app, locale_selector=get_locale_from_request, timezone_selector=get_timezone_from_request)

    def page() -> str:
        return render_template("page.html", title=PAGE_TITLE, name=request.args.get("name", "Ann"), apples=3)

    def hello() -> str:
        return (
            f"{get_locale()} {gettext('Hello %(name)s!', name='Bob')} {ngettext('%(num)d apple', '%(num)d apples', 1)}"
        )

    def when() -> str:
        moment = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
        return f"{get_timezone()}|{format_datetime(moment)}|{format_datetime(moment, 'short')}|{format_decimal(1234.5)}"

    def forced() -> str:
        with force_locale("fr"):
            inside = gettext("Welcome")
        return f"{inside} {gettext('Welcome')} {PAGE_TITLE}"

    app.add_url_rule("/page", view_func=as_view(page))
    app.add_url_rule("/hello", view_func=as_view(hello))
    app.add_url_rule("/when", view_func=as_view(when))
    app.add_url_rule("/forced", view_func=as_view(forced))
    return app


def test_the_locale_from_accept_language_or_a_query_argument(babel_app: Flask, protocol: str) -> None:
    client = babel_app.test_client(protocol=protocol)
    cases = [
        ({}, "", "en Hello Bob! 1 apple"),  # no preference: BABEL_DEFAULT_LOCALE
        ({"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}, "", "de Hallo Bob! 1 Apfel"),
        ({"Accept-Language": "es, fr;q=0.8, de;q=0.5"}, "", "fr Bonjour Bob ! 1 pomme"),
        ({"Accept-Language": "es"}, "", "en Hello Bob! 1 apple"),  # nothing it has
        ({"Accept-Language": "de"}, "?lang=fr", "fr Bonjour Bob ! 1 pomme"),  # the query argument wins
    ]
    for headers, query, expected in cases:
        assert client.get("/hello" + query, headers=headers).text == expected, (headers, query)


def test_gettext_ngettext_and_lazy_gettext_in_a_template(babel_app: Flask, protocol: str) -> None:
    client = babel_app.test_client(protocol=protocol)
    german = client.get("/page?name=<Eve>", headers={"Accept-Language": "de"}).text
    assert german == ("<title>Willkommen</title>\n<p>Hallo &lt;Eve&gt;!</p>\n<p>3 Äpfel</p>\n<nav>Einstellungen</nav>")
    french = client.get("/page?lang=fr").text
    assert "<title>Bienvenue</title>" in french and "<p>3 pommes</p>" in french
    assert "<nav>Paramètres</nav>" in french
    english = client.get("/page").text
    assert "<title>Welcome</title>" in english and "<p>3 apples</p>" in english
    # The lazy string is not bound to the first request's locale.
    assert "<title>Willkommen</title>" in client.get("/page?lang=de").text


def test_format_datetime_in_the_locale_and_timezone(babel_app: Flask, protocol: str) -> None:
    client = babel_app.test_client(protocol=protocol)
    moment = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)

    tz, medium, short, number = client.get("/when?lang=de&tz=Europe/Berlin").text.split("|")
    assert tz == "Europe/Berlin"
    assert medium == "01.03.2024, 16:30:00"  # UTC+1 in March
    assert short == dates.format_datetime(moment, "short", tzinfo=dates.get_timezone("Europe/Berlin"), locale="de")
    assert number == "1.234,5"

    tz, medium, short, number = client.get("/when", headers={"Accept-Language": "en-US"}).text.split("|")
    assert tz == "UTC"  # BABEL_DEFAULT_TIMEZONE
    assert medium == dates.format_datetime(moment, "medium", tzinfo=UTC, locale="en")
    assert medium.startswith("Mar 1, 2024, 3:30:00") and medium.endswith("PM")
    assert number == "1,234.5"

    tz, medium, _, number = client.get("/when?lang=fr&tz=America/New_York").text.split("|")
    assert medium == dates.format_datetime(moment, "medium", tzinfo=dates.get_timezone(tz), locale="fr")
    assert medium.startswith("1 mars 2024") and "10:30:00" in medium  # UTC-5
    assert number == numbers.format_decimal(1234.5, locale="fr")


def test_force_locale_and_outside_a_request(babel_app: Flask, protocol: str) -> None:
    client = babel_app.test_client(protocol=protocol)
    assert client.get("/forced", headers={"Accept-Language": "de"}).text == "Bienvenue Willkommen Willkommen"
    assert client.get("/forced").text == "Bienvenue Welcome Welcome"
    # Without an application context there is nothing to choose a locale from: the source strings.
    assert gettext("Welcome") == "Welcome" and str(PAGE_TITLE) == "Welcome" and get_locale() is None
    with babel_app.test_request_context("/", headers={"Accept-Language": "fr"}):
        assert (str(get_locale()), str(PAGE_TITLE)) == ("fr", "Bienvenue")
