"""Ampulla's compiled matcher answers as Werkzeug's ``MapAdapter.match``; ``url_for`` builds as ``MapAdapter.build``.

Rule sets are generated (static text, every converter with arguments, a custom converter refusing values,
defaults, ``strict_slashes``, ``merge_slashes``, methods, subdomains, host matching, WebSocket rules,
``redirect_to``, aliases), and so are paths (derived from the rules, with values that fit or not, doubled,
missing or extra slashes, and arbitrary ones). For each, the answer of ``Map.match_compiled`` is compared with
the answer of the Werkzeug adapter bound to the same request: the rule and its converted values, or the same
redirect URL, the same 405 methods, the same 400 (WebSocket mismatch) or 404.
"""

from __future__ import annotations

import re
import uuid
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from werkzeug.routing import MapAdapter

from ampulla import Ampulla, url_for
from ampulla.routing import (
    AnyConverter,
    BaseConverter,
    BuildError,
    FloatConverter,
    IntegerConverter,
    Map,
    PathConverter,
    Rule,
    UUIDConverter,
    ValidationError,
)


class EvenConverter(BaseConverter):
    """Digits; odd numbers are refused in ``to_python`` (a ``ValidationError`` after the regex matched)."""

    regex = r"\d+"
    weight = 40

    def to_python(self, value: str) -> int:
        number = int(value)
        if number % 2:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class SlashyConverter(BaseConverter):
    """A custom converter whose regex spans slashes (``part_isolating`` is then ``False``)."""

    regex = r"[a-z]+/[a-z]+"


CONVERTERS = [
    "",
    "string",
    "string(length=2)",
    "string(minlength=2, maxlength=3)",
    "int",
    "int(signed=True)",
    "int(min=1, max=50)",
    "int(fixed_digits=3)",
    "float",
    "float(signed=True)",
    "path",
    "any(a, b, 'c d')",
    "uuid",
    "even",
    "slashy",
]
STATIC_WORDS = ["a", "b", "ab", "x-y", "1", "v.2", "é", "c d"]
METHOD_SETS: list[list[str] | None] = [None, ["GET"], ["POST"], ["GET", "POST"], ["PUT", "DELETE"], ["GET", "OPTIONS"]]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]
ENDPOINTS = ["e0", "e1", "e2", "e3"]


@st.composite
def segment(draw: st.DrawFn, names: list[str]) -> str:
    """One path segment of a rule: static text, a variable, or both."""
    kind = draw(st.sampled_from(["static", "static", "var", "mixed"]))
    if kind == "static":
        return draw(st.sampled_from(STATIC_WORDS))

    def var() -> str:
        name = f"v{len(names)}"
        names.append(name)
        converter = draw(st.sampled_from(CONVERTERS))
        return f"<{converter}:{name}>" if converter else f"<{name}>"

    if kind == "var":
        return var()
    shape = draw(st.sampled_from(["p-v", "v-p", "v-v"]))
    if shape == "p-v":
        return draw(st.sampled_from(STATIC_WORDS)) + var()
    if shape == "v-p":
        return var() + "." + draw(st.sampled_from(["json", "x"]))
    return var() + "-" + var()


#: The variable names of a rule string or a ``redirect_to`` string.
_PLACEHOLDER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


@st.composite
def rule_spec(draw: st.DrawFn, host_matching: bool) -> dict[str, Any]:
    names: list[str] = []
    segments = draw(st.lists(segment(names), min_size=0, max_size=3))
    path = "/" + "/".join(segments)
    if segments and draw(st.booleans()):
        path += "/"
    if draw(st.integers(0, 9)) == 0:
        path = path.replace("/", "//", 1)  # a rule with a doubled slash (merged unless merge_slashes=False)
    spec: dict[str, Any] = {
        "string": path,
        "endpoint": draw(st.sampled_from(ENDPOINTS)),
        "methods": draw(st.sampled_from(METHOD_SETS)),
        "strict_slashes": draw(st.sampled_from([None, True, False])),
        "merge_slashes": draw(st.sampled_from([None, None, True, False])),
    }
    if draw(st.integers(0, 3)) == 0:
        spec["defaults"] = draw(
            st.dictionaries(st.sampled_from(["v0", "v1", "page"]), st.sampled_from([1, 2, "a"]), max_size=2)
        )
    if host_matching:
        spec["host"] = draw(st.sampled_from(["example.com", "api.example.com", "<sub>.example.com", "<sub>.test"]))
    else:
        spec["subdomain"] = draw(st.sampled_from([None, None, "", "api", "<sub>"]))
    if draw(st.integers(0, 7)) == 0:
        spec["websocket"] = True
        spec["methods"] = draw(st.sampled_from([None, ["GET"]]))
    extra = draw(st.integers(0, 15))
    if extra == 0:
        spec["redirect_to"] = draw(st.sampled_from(["/target", "target/<v0>", "/t/<v0>/<v1>"]))
    elif extra == 1:
        spec["alias"] = True
    return spec


def make_map(specs: list[dict[str, Any]], options: dict[str, Any]) -> tuple[Map, list[Rule]]:
    url_map = Map(**options)
    url_map.converters["even"] = EvenConverter
    url_map.converters["slashy"] = SlashyConverter
    rules = []
    for spec in specs:
        try:
            rule = Rule(**spec)
            url_map.add(rule)
        except (ValueError, TypeError, LookupError):
            continue  # a rule Werkzeug refuses (a default shadowing a variable is fine, syntax errors are not)
        rules.append(rule)
    return url_map, rules


VALUES = ["a", "b", "c d", "ab", "abc", "7", "08", "012", "-3", "1.5", "-0.25", "2e5", "é", "x.json", "a/b", "",
          "12345678-1234-5678-1234-567812345678", "0", "51", "4", "a.x", "a-b"]  # fmt: skip


def fitting_value(draw: st.DrawFn, converter: BaseConverter) -> str:
    """A text the converter's regex takes (its ``to_python`` may still refuse it: a value out of range)."""
    if isinstance(converter, AnyConverter):
        return draw(st.sampled_from(sorted(converter.items)))
    if isinstance(converter, UUIDConverter):
        return str(draw(st.uuids()))
    if isinstance(converter, FloatConverter):
        text = draw(st.sampled_from(["1.5", "0.25", "10.0", "3.75"]))
        return ("-" + text) if converter.signed and draw(st.booleans()) else text
    if isinstance(converter, IntegerConverter | EvenConverter):
        text = str(draw(st.integers(0, 120)))
        if getattr(converter, "fixed_digits", 0):
            text = text.zfill(converter.fixed_digits)
        return ("-" + text) if getattr(converter, "signed", False) and draw(st.booleans()) else text
    if isinstance(converter, SlashyConverter):
        return draw(st.sampled_from(["ab/cd", "x/y"]))
    if isinstance(converter, PathConverter):
        return draw(st.sampled_from(["a", "a/b", "x/y/z", "a/b/"]))
    return draw(st.sampled_from(["ab", "abc", "x", "c d", "é", "a.b"]))


@st.composite
def path_for(draw: st.DrawFn, rules: list[Rule]) -> str:
    """A path made from one of the rules (values that fit or not, slashes changed), or an arbitrary one."""
    if rules and draw(st.integers(0, 4)) > 0:
        rule = draw(st.sampled_from(rules))
        out = []
        for is_dynamic, data in rule._trace:
            if data == "|":
                out = []
                continue
            if not is_dynamic:
                out.append(data)
            elif draw(st.integers(0, 3)):
                out.append(fitting_value(draw, rule._converters[data]))
            else:
                out.append(draw(st.sampled_from(VALUES)))
        path = "".join(out)
    else:
        path = "/" + "/".join(draw(st.lists(st.sampled_from([*STATIC_WORDS, *VALUES]), max_size=4)))
    change = draw(st.integers(0, 7))
    if change == 0:
        path = path.rstrip("/") or "/"
    elif change == 1:
        path += "/"
    elif change == 2:
        at = draw(st.integers(0, max(0, path.count("/") - 1)))
        pieces = path.split("/")
        pieces.insert(at + 1, "")
        path = "/".join(pieces)
    elif change == 3:
        path = "//" + path.lstrip("/")
    return path


def outcome(call: Any) -> tuple[Any, ...]:
    """What a match answered, comparable between the two matchers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rule, values = call()
        except Exception as e:  # the kind of answer is what is compared
            valid = getattr(e, "valid_methods", None)
            return (
                type(e).__name__,
                getattr(e, "new_url", None),
                frozenset(valid) if valid is not None else None,
                getattr(e, "code", None),
            )
    return ("match", id(rule), sorted((k, type(v).__name__, repr(v)) for k, v in values.items()))


def assert_same(adapter: MapAdapter, url_map: Map, domain: str, path: str, method: str, websocket: bool) -> None:
    expected = outcome(lambda: adapter.match(path, method, return_rule=True, websocket=websocket))
    got = outcome(lambda: url_map.match_compiled(domain, path, method, websocket, lambda: adapter))
    assert got == expected, (path, method, websocket, [(r.rule, r.endpoint) for r in url_map.iter_rules()])
    if currently_in_test_context():
        event(f"answer: {expected[0]}")


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_matcher_answers_as_werkzeug(data: st.DataObject) -> None:
    options = {
        "strict_slashes": data.draw(st.booleans(), "strict_slashes"),
        "merge_slashes": data.draw(st.booleans(), "merge_slashes"),
        "redirect_defaults": data.draw(st.booleans(), "redirect_defaults"),
        "default_subdomain": data.draw(st.sampled_from(["", "", "api"]), "default_subdomain"),
    }
    specs = data.draw(st.lists(rule_spec(host_matching=False), min_size=1, max_size=8), "rules")
    url_map, rules = make_map(specs, options)
    assume(rules)
    for _ in range(6):
        path = data.draw(path_for(rules), "path")
        method = data.draw(st.sampled_from(METHODS), "method")
        websocket = data.draw(st.booleans(), "websocket") if data.draw(st.integers(0, 4)) == 0 else False
        subdomain = data.draw(st.sampled_from([options["default_subdomain"]] * 3 + ["", "api", "x", "<invalid>"]))
        script = data.draw(st.sampled_from(["/", "/app"]), "script_name")
        query = data.draw(st.sampled_from([None, "q=1", "a=%20&b"]), "query")
        adapter = url_map.bind(
            "example.com", script, subdomain, "ws" if websocket else "https", method, path, query_args=query
        )
        assert_same(adapter, url_map, subdomain, path, method, websocket)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_matcher_answers_as_werkzeug_with_host_matching(data: st.DataObject) -> None:
    options = {
        "host_matching": True,
        "strict_slashes": data.draw(st.booleans(), "strict_slashes"),
        "merge_slashes": data.draw(st.booleans(), "merge_slashes"),
    }
    specs = data.draw(st.lists(rule_spec(host_matching=True), min_size=1, max_size=6), "rules")
    url_map, rules = make_map(specs, options)
    assume(rules)
    for _ in range(4):
        path = data.draw(path_for(rules), "path")
        method = data.draw(st.sampled_from(METHODS), "method")
        host = data.draw(
            st.sampled_from(["example.com", "api.example.com", "x.example.com", "a.test", "other.org"]), "host"
        )
        adapter = url_map.bind(host, "/", None, "http", method, path)
        assert_same(adapter, url_map, adapter.server_name, path, method, False)


@pytest.mark.parametrize(
    ("rules", "path", "method"),
    [
        # The static transition is tried first: its strict-slashes rule redirects before <x> is tried.
        ([Rule("/a/b/", endpoint="slash"), Rule("/a/<x>", endpoint="var")], "/a/b", "GET"),
        ([Rule("/a/b/", endpoint="slash", methods=["POST"]), Rule("/a/<x>", endpoint="var")], "/a/b", "GET"),
        # A converter refusing its value after the regex matched: 404, or 405 with the methods met before.
        ([Rule("/n/<even:n>", endpoint="even")], "/n/3", "GET"),
        (
            [Rule("/n/<even:n>", endpoint="even", methods=["GET"]), Rule("/n/3", endpoint="three", methods=["PUT"])],
            "/n/3",
            "GET",
        ),
        ([Rule("/n/<int:n>", endpoint="n", methods=["POST"]), Rule("/n/<even:n>", endpoint="even")], "/n/3", "GET"),
        # A path converter followed by a slash, and rules of the other kind.
        ([Rule("/p/<path:p>/", endpoint="p")], "/p/a/b", "GET"),
        ([Rule("/p/<path:p>/", endpoint="p")], "/p/a/b/", "GET"),
        ([Rule("/w", endpoint="ws", websocket=True)], "/w", "GET"),
        ([Rule("/w/", endpoint="ws", websocket=True), Rule("/w", endpoint="http", methods=["POST"])], "/w", "GET"),
        # Merged slashes; a rule that keeps them (merge_slashes=False); leading slashes are dropped.
        ([Rule("/a/b", endpoint="ab")], "/a//b", "GET"),
        ([Rule("/a/b", endpoint="ab", merge_slashes=False)], "/a//b", "GET"),
        ([Rule("/a//b", endpoint="ab", merge_slashes=False)], "/a//b", "GET"),
        ([Rule("/a/", endpoint="a")], "///a", "GET"),
        ([Rule("/", endpoint="root")], "", "GET"),
        # Defaults: they override matched values, and the rule providing them is the canonical URL.
        ([Rule("/u/", endpoint="u", defaults={"page": 1}), Rule("/u/<int:page>", endpoint="u")], "/u/1", "GET"),
        ([Rule("/u/", endpoint="u", defaults={"page": 1}), Rule("/u/<int:page>", endpoint="u")], "/u/2", "GET"),
        ([Rule("/d/<int:page>", endpoint="d", defaults={"page": 9})], "/d/2", "GET"),
        ([Rule("/old/<int:n>", endpoint="old", redirect_to="new/<n>")], "/old/4", "GET"),
        ([Rule("/x", endpoint="x", alias=True), Rule("/y", endpoint="x")], "/x", "GET"),
    ],
)
def test_werkzeugs_order_and_answers_in_known_cases(rules: list[Rule], path: str, method: str) -> None:
    url_map = Map()
    url_map.converters["even"] = EvenConverter
    for rule in rules:
        url_map.add(rule)
    adapter = url_map.bind("example.com", "/app", query_args="q=1")
    assert_same(adapter, url_map, "", path, method, False)
    assert_same(adapter, url_map, "", path, method, True)


def test_the_matcher_is_rebuilt_when_a_rule_is_added() -> None:
    url_map = Map([Rule("/a", endpoint="a")])
    assert url_map.match_compiled("", "/a")[0].endpoint == "a"
    url_map.add(Rule("/b/<int:n>", endpoint="b"))
    assert url_map.match_compiled("", "/b/3")[1] == {"n": 3}


# ------------------------------------------------------------------------------------------------------ building


@st.composite
def build_values(draw: st.DrawFn, rule: Rule) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in sorted(rule.arguments):
        if draw(st.integers(0, 5)):
            values[name] = draw(
                st.one_of(
                    st.sampled_from(["a", "b", "c d", "x/y", "é?#", 7, -3, 2, 1.5]),
                    st.uuids(),
                    st.integers(min_value=0, max_value=999),
                )
            )
    if draw(st.booleans()):
        values["q"] = draw(st.sampled_from(["1", ["a", "b"], None, "x y"]))
    return values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_url_for_builds_as_werkzeug(data: st.DataObject) -> None:
    subdomain_matching = data.draw(st.booleans(), "subdomain_matching")
    app = Ampulla(__name__, static_folder=None, subdomain_matching=subdomain_matching)
    app.url_map.converters["even"] = EvenConverter
    app.url_map.converters["slashy"] = SlashyConverter
    server_name = data.draw(st.sampled_from([None, "example.com", "example.com:8080"]), "SERVER_NAME")
    app.config["SERVER_NAME"] = server_name
    app.config["APPLICATION_ROOT"] = data.draw(st.sampled_from(["/", "/root"]), "APPLICATION_ROOT")
    specs = data.draw(st.lists(rule_spec(host_matching=False), min_size=1, max_size=6), "rules")
    rules = []
    for spec in specs:
        spec = {k: v for k, v in spec.items() if k not in ("alias", "websocket")}
        target = spec.get("redirect_to")
        if target is not None and not set(_PLACEHOLDER.findall(target)) <= set(_PLACEHOLDER.findall(spec["string"])):
            # Matching the test request to such a rule raises KeyError, as with Flask and Werkzeug: not a build case.
            del spec["redirect_to"]
        try:
            app.add_url_rule(spec.pop("string"), view_func=None, **spec)
        except (ValueError, TypeError, LookupError, AssertionError):
            continue
    rules = [rule for rule in app.url_map.iter_rules()]
    assume(rules)
    rule = data.draw(st.sampled_from(rules), "rule")
    values = data.draw(build_values(rule), "values")
    method = data.draw(st.sampled_from([None, "GET", "POST"]), "method")
    external = data.draw(st.sampled_from([None, True, False]), "external")
    scheme = data.draw(st.sampled_from([None, "https"]), "scheme") if external else None
    host = data.draw(st.sampled_from(["example.com", "api.example.com", "example.com:8080", "other.org"]), "host")
    base = data.draw(st.sampled_from(["", "/mount"]), "script_root")

    def werkzeug_build(adapter: MapAdapter, default_external: bool) -> str:
        return adapter.build(
            rule.endpoint,
            dict(values),
            method=method,
            url_scheme=scheme,
            force_external=default_external if external is None else external,
        )

    def compare(ours: Any, reference: Any) -> None:
        assert outcome_of(ours) == outcome_of(reference)

    # In a request: bound as Flask binds a request (bind_to_environ with SERVER_NAME or the subdomain).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with app.test_request_context("/-unrouted-", base_url=f"http://{host}{base}") as ctx:
            environ = ctx.request.environ
            if app.url_map.host_matching:
                adapter = app.url_map.bind_to_environ(environ, server_name=None)
            elif subdomain_matching:
                adapter = app.url_map.bind_to_environ(environ, server_name=server_name)
            else:
                adapter = app.url_map.bind_to_environ(
                    environ, server_name=server_name, subdomain=app.url_map.default_subdomain or ""
                )
            compare(
                lambda: url_for(rule.endpoint, _method=method, _scheme=scheme, _external=external, **values),
                lambda: werkzeug_build(adapter, scheme is not None),
            )
    # Outside a request: bound to SERVER_NAME, APPLICATION_ROOT and PREFERRED_URL_SCHEME.
    if server_name is not None:
        with app.app_context():
            adapter = app.url_map.bind(
                server_name, script_name=app.config["APPLICATION_ROOT"], url_scheme=app.config["PREFERRED_URL_SCHEME"]
            )
            compare(
                lambda: url_for(rule.endpoint, _method=method, _scheme=scheme, _external=external, **values),
                lambda: werkzeug_build(adapter, True),
            )


def outcome_of(call: Any) -> tuple[Any, ...]:
    try:
        return ("url", call())
    except BuildError as e:
        return ("BuildError", e.endpoint, sorted(e.values), e.method)
    except Exception as e:  # a converter refusing a value: the same error either way
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_requests_route_as_werkzeug_matches(protocol: str) -> None:
    app = Ampulla(__name__, static_folder=None)

    @app.route("/users/", defaults={"page": 1})
    @app.route("/users/page/<int:page>")
    def users(page: int) -> str:
        return f"users {page}"

    @app.route("/files/<path:name>/")
    def files(name: str) -> str:
        return name

    @app.route("/post/<uuid:ident>", methods=["POST"])
    def post(ident: uuid.UUID) -> str:
        return ident.hex

    client = app.test_client(protocol=protocol)
    adapter = app.url_map.bind("localhost")
    for path, method in [
        ("/users/", "GET"),
        ("/users", "GET"),
        ("/users/page/1", "GET"),
        ("/users/page/2", "GET"),
        ("/users//page/2", "GET"),
        ("/files/a/b", "GET"),
        ("/files/a//b/", "GET"),
        (f"/post/{uuid.UUID(int=5)}", "GET"),
        (f"/post/{uuid.UUID(int=5)}", "POST"),
        ("/nothing", "GET"),
    ]:
        response = client.open(path, method=method)
        expected = outcome(lambda: adapter.match(path, method, return_rule=True))  # noqa: B023
        if expected[0] == "match":
            assert response.status_code == 200
        elif expected[0] == "RequestRedirect":
            assert (response.status_code, response.headers["Location"]) == (308, expected[1])
        else:
            assert response.status_code == expected[3]
            if expected[0] == "MethodNotAllowed":
                assert set(response.headers["Allow"].split(", ")) == expected[2]
