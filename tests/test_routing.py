"""The URL map (Werkzeug's, matched by Ampulla's compiled matcher): rule syntax, converters, priority, methods,
slashes, redirects and URL building."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampulla.exceptions import MethodNotAllowed, NotFound
from ampulla.routing import BaseConverter, BuildError, Map, RequestRedirect, Rule, ValidationError


class CompiledMap(Map):
    """A map whose ``match`` is the compiled matcher, ``build`` the adapter's (path only)."""

    def match(self, path: str, method: str = "GET", subdomain: str = "") -> tuple[Rule, dict[str, Any]]:
        return self.match_compiled(subdomain, path, method)

    def build(self, endpoint: str, values: dict[str, Any] | None = None, method: str | None = None) -> str:
        return self.bind("localhost").build(endpoint, values, method)


def make_map(*rules: Rule, **kwargs: Any) -> CompiledMap:
    url_map = CompiledMap(**kwargs)
    for rule in rules:
        url_map.add(rule)
    return url_map


def endpoint_of(url_map: CompiledMap, path: str, method: str = "GET") -> tuple[str, dict[str, Any]]:
    rule, values = url_map.match(path, method)
    assert (rule, values) == url_map.bind("localhost").match(path, method, return_rule=True)
    return rule.endpoint, values


def test_static_and_variable_rules() -> None:
    m = make_map(
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/guest/<guest>", endpoint="guest", methods=["GET"]),
        Rule("/api/v1/users/", endpoint="users", methods=["GET", "POST", "PUT"]),
    )
    assert endpoint_of(m, "/") == ("index", {})
    assert endpoint_of(m, "/guest/Ann") == ("guest", {"guest": "Ann"})
    assert endpoint_of(m, "/api/v1/users/", "PUT") == ("users", {})
    with pytest.raises(NotFound):
        m.match("/guest/a/b")
    with pytest.raises(NotFound):
        m.match("/guest/")


def test_head_is_allowed_with_get_and_405_lists_methods() -> None:
    m = make_map(Rule("/x", endpoint="x", methods=["GET"]), Rule("/x", endpoint="y", methods=["POST"]))
    assert endpoint_of(m, "/x", "HEAD")[0] == "x"
    assert endpoint_of(m, "/x", "POST")[0] == "y"
    with pytest.raises(MethodNotAllowed) as info:
        m.match("/x", "DELETE")
    assert info.value.valid_methods == ["GET", "HEAD", "POST"]
    assert ("Allow", "GET, HEAD, POST") in info.value.get_headers()


def test_405_for_dynamic_rules_and_fallback_to_later_rule_with_method() -> None:
    m = make_map(
        Rule("/items/<int:id>", endpoint="get_item", methods=["GET"]),
        Rule("/items/<name>", endpoint="post_named", methods=["POST"]),
    )
    assert endpoint_of(m, "/items/5") == ("get_item", {"id": 5})
    # /items/5 also matches the string rule, which accepts POST
    assert endpoint_of(m, "/items/5", "POST") == ("post_named", {"name": "5"})
    with pytest.raises(MethodNotAllowed):
        m.match("/items/5", "DELETE")


@pytest.mark.parametrize(
    ("rule", "path", "expected"),
    [
        ("/n/<int:n>", "/n/42", 42),
        ("/n/<int(signed=True):n>", "/n/-42", -42),
        ("/n/<float:n>", "/n/1.5", 1.5),
        ("/n/<float(signed=True):n>", "/n/-1.5", -1.5),
        ("/n/<path:n>", "/n/a/b/c.txt", "a/b/c.txt"),
        ("/n/<string(length=2):n>", "/n/ab", "ab"),
        ("/n/<string(minlength=2, maxlength=3):n>", "/n/abc", "abc"),
        ("/n/<any(about, help, 'contact us'):n>", "/n/contact us", "contact us"),
        ("/n/<uuid:n>", "/n/12345678-1234-5678-1234-567812345678", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ],
)
def test_converters_match(rule: str, path: str, expected: Any) -> None:
    m = make_map(Rule(rule, endpoint="e"))
    assert m.match(path)[1] == {"n": expected}


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ("/n/<int:n>", "/n/-1"),
        ("/n/<int:n>", "/n/1.5"),
        ("/n/<int:n>", "/n/abc"),
        ("/n/<int(min=1, max=10):n>", "/n/11"),
        ("/n/<int(min=1, max=10):n>", "/n/0"),
        ("/n/<int(fixed_digits=3):n>", "/n/12"),
        ("/n/<float:n>", "/n/1"),
        ("/n/<string(length=2):n>", "/n/abc"),
        ("/n/<string(maxlength=3):n>", "/n/abcd"),
        ("/n/<any(a, b):n>", "/n/c"),
        ("/n/<uuid:n>", "/n/not-a-uuid"),
        ("/n/<n>", "/n/a/b"),
    ],
)
def test_converters_refuse(rule: str, path: str) -> None:
    m = make_map(Rule(rule, endpoint="e"))
    with pytest.raises(NotFound):
        m.match(path)


def test_static_segments_win_over_variables_regardless_of_order() -> None:
    m = make_map(
        Rule("/users/<name>", endpoint="user"),
        Rule("/users/<int:id>", endpoint="user_by_id"),
        Rule("/users/new", endpoint="new_user"),
        Rule("/<path:rest>", endpoint="catch_all"),
    )
    assert endpoint_of(m, "/users/new")[0] == "new_user"
    assert endpoint_of(m, "/users/7") == ("user_by_id", {"id": 7})
    assert endpoint_of(m, "/users/ann") == ("user", {"name": "ann"})
    assert endpoint_of(m, "/anything/else") == ("catch_all", {"rest": "anything/else"})


def test_trailing_slash_redirects_and_strict_slashes_off() -> None:
    m = make_map(
        Rule("/users/", endpoint="users"),
        Rule("/docs/<page>/", endpoint="doc"),
        Rule("/loose/", endpoint="loose", strict_slashes=False),
        Rule("/about", endpoint="about"),
    )
    with pytest.raises(RequestRedirect) as info:
        m.match("/users")
    assert info.value.new_url == "http://localhost/users/"
    assert info.value.code == 308
    with pytest.raises(RequestRedirect) as info:
        m.match("/docs/intro")
    assert info.value.new_url == "http://localhost/docs/intro/"
    assert endpoint_of(m, "/loose")[0] == "loose"
    assert endpoint_of(m, "/loose/")[0] == "loose"
    with pytest.raises(NotFound):
        m.match("/about/")


def test_defaults_are_passed_and_choose_the_rule_when_building() -> None:
    m = make_map(
        Rule("/page/", endpoint="page", defaults={"n": 1}),
        Rule("/page/<int:n>", endpoint="page"),
    )
    assert m.match("/page/")[1] == {"n": 1}
    assert m.match("/page/3")[1] == {"n": 3}
    assert m.build("page", {"n": 1}) == "/page/"
    assert m.build("page", {"n": 3}) == "/page/3"
    # The rule with the defaults is the canonical URL of n=1 (redirect_defaults, on by default).
    with pytest.raises(RequestRedirect) as info:
        m.match("/page/1")
    assert info.value.new_url == "http://localhost/page/"


def test_redirect_to_pattern_and_callable() -> None:
    m = make_map(
        Rule("/old/<int:id>", endpoint="old", redirect_to="/new/<id>"),
        Rule("/legacy", endpoint="legacy", redirect_to=lambda adapter, **values: "/modern"),
    )
    with pytest.raises(RequestRedirect) as info:
        m.match("/old/5")
    assert info.value.new_url == "http://localhost/new/5"
    with pytest.raises(RequestRedirect) as info:
        m.match("/legacy")
    assert info.value.new_url == "http://localhost/modern"


def test_build_quotes_values_and_appends_unknown_keys_as_query() -> None:
    m = make_map(Rule("/guest/<guest>", endpoint="guest"), Rule("/files/<path:p>", endpoint="files"))
    # Werkzeug's converters keep "/" in a value (which then no longer matches a one-segment variable).
    assert m.build("guest", {"guest": "a b/c?"}) == "/guest/a%20b/c%3F"
    assert m.build("files", {"p": "dir/file name.txt"}) == "/files/dir/file%20name.txt"
    assert m.build("guest", {"guest": "x", "page": 2, "tag": ["a", "b"]}) == "/guest/x?page=2&tag=a&tag=b"
    assert m.build("guest", {"guest": "x", "skip": None}) == "/guest/x"


def test_build_errors_name_the_problem() -> None:
    m = make_map(Rule("/guest/<guest>", endpoint="guest"), Rule("/only-post", endpoint="post", methods=["POST"]))
    with pytest.raises(BuildError, match="Could not build url for endpoint 'missing'"):
        m.build("missing")
    with pytest.raises(BuildError, match="Did you forget to specify values \\['guest'\\]"):
        m.build("guest", {})
    with pytest.raises(BuildError, match="Did you mean to use methods \\['POST'\\]"):
        m.build("post", {}, method="GET")
    assert m.build("post", {}, method="POST") == "/only-post"


def test_custom_converter_registration_and_validation_error() -> None:
    class ListConverter(BaseConverter):
        def to_python(self, value: str) -> list[str]:
            return value.split(",")

        def to_url(self, value: Any) -> str:
            return ",".join(BaseConverter.to_url(self, v) for v in value)

    class EvenConverter(BaseConverter):
        regex = r"\d+"

        def to_python(self, value: str) -> int:
            if int(value) % 2:
                raise ValidationError()
            return int(value)

    m = CompiledMap()
    m.converters["list"] = ListConverter
    m.converters["even"] = EvenConverter
    m.add(Rule("/tags/<list:tags>", endpoint="tags"))
    m.add(Rule("/n/<even:n>", endpoint="even"))
    assert m.match("/tags/a,b,c")[1] == {"tags": ["a", "b", "c"]}
    assert m.build("tags", {"tags": ["x", "y"]}) == "/tags/x,y"
    assert endpoint_of(m, "/n/4") == ("even", {"n": 4})
    # A ValidationError from to_python ends matching: 404, whatever other rule could match (as Werkzeug).
    with pytest.raises(NotFound):
        m.match("/n/5")


def test_rule_syntax_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="must start with a slash"):
        Rule("users")
    with pytest.raises(LookupError, match="the converter 'nope' does not exist"):
        make_map(Rule("/<nope:x>", endpoint="e"))
    with pytest.raises(SyntaxError, match="duplicate argument 'a'"):
        make_map(Rule("/<a>/<a>", endpoint="e"))
    with pytest.raises(ValueError, match="malformed url rule"):
        make_map(Rule("/<a", endpoint="e"))
    with pytest.raises(TypeError, match="list of strings"):
        Rule("/x", methods="GET")  # type: ignore[arg-type]


def test_many_rules_each_reachable() -> None:
    rules = [Rule(f"/static{i}", endpoint=f"s{i}") for i in range(25)]
    rules += [Rule(f"/items{i}/<int:id>", endpoint=f"d{i}") for i in range(25, 50)]
    m = make_map(*rules)
    for i in range(25):
        assert endpoint_of(m, f"/static{i}") == (f"s{i}", {})
    for i in range(25, 50):
        assert endpoint_of(m, f"/items{i}/{i * 3}") == (f"d{i}", {"id": i * 3})
    with pytest.raises(NotFound):
        m.match("/items25/x")


def test_subdomain_rules_only_match_their_subdomain() -> None:
    m = make_map(Rule("/", endpoint="main"), Rule("/", endpoint="api_root", subdomain="api"))
    assert m.match("/")[0].endpoint == "main"
    assert m.match("/", subdomain="api")[0].endpoint == "api_root"
    with pytest.raises(NotFound):
        m.match("/", subdomain="other")


segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=20
)


@settings(max_examples=200, deadline=None)
@given(
    name=segment,
    number=st.integers(min_value=0, max_value=10**12),
    signed=st.integers(min_value=-(10**9), max_value=10**9),
    path=st.lists(segment, min_size=1, max_size=4).map("/".join),
    ident=st.uuids(),
    # Werkzeug's float converter matches digits.digits, no exponent: floats whose str() has none.
    real=st.floats(min_value=1e-4, max_value=1e9, allow_nan=False, allow_infinity=False).filter(
        lambda f: f != int(f) and "e" not in str(f)
    ),
)
def test_build_then_match_round_trips_for_every_converter(
    name: str, number: int, signed: int, path: str, ident: uuid.UUID, real: float
) -> None:
    from urllib.parse import unquote

    m = make_map(
        Rule("/s/<name>", endpoint="s"),
        Rule("/i/<int:number>", endpoint="i"),
        Rule("/signed/<int(signed=True):signed>", endpoint="signed"),
        Rule("/p/<path:path>", endpoint="p"),
        Rule("/u/<uuid:ident>", endpoint="u"),
        Rule("/f/<float:real>", endpoint="f"),
    )
    cases = [
        ("s", {"name": name}),
        ("i", {"number": number}),
        ("signed", {"signed": signed}),
        ("u", {"ident": ident}),
        ("f", {"real": real}),
    ]
    # Werkzeug's path converter ("[^/].*?") does not match a newline.
    if not path.startswith("/") and "//" not in path and not path.endswith("/") and "\n" not in path:
        cases.append(("p", {"path": path}))
    for endpoint, values in cases:
        built = m.build(endpoint, values)
        # A server percent-decodes the path before routing.
        rule, matched = m.match(unquote(built))
        assert rule.endpoint == endpoint
        assert matched == values


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_paths_give_a_match_or_an_http_error(path: str) -> None:
    m = make_map(
        Rule("/", endpoint="index"),
        Rule("/users/", endpoint="users"),
        Rule("/users/<int:id>", endpoint="user"),
        Rule("/files/<path:p>", endpoint="files"),
        Rule("/any/<any(a, b):x>", endpoint="any"),
    )
    try:
        m.match("/" + path)
    except (NotFound, MethodNotAllowed, RequestRedirect):
        pass


def test_repeated_slashes_redirect_to_the_merged_path() -> None:
    m = make_map(Rule("/a/b", endpoint="ab"), Rule("/files/<path:p>", endpoint="files"))
    with pytest.raises(RequestRedirect) as info:
        m.match("/a//b")
    assert info.value.new_url == "http://localhost/a/b"
    assert m.match("/files/x//y")[1] == {"p": "x//y"}  # a path variable keeps what it matched
    with pytest.raises(NotFound):
        m.match("/nothing//here")
    strict = make_map(Rule("/a/b", endpoint="ab"), merge_slashes=False)
    with pytest.raises(NotFound):
        strict.match("/a//b")


@pytest.mark.parametrize(
    ("rule", "path", "expected"),
    [
        ("/n/<int:v>", "/n/" + "7" * 5000, NotFound),  # more digits than int() takes: 404, as Werkzeug
        ("/n/<int:v>", "/n/" + "\u0661\u0662", {"v": 12}),  # any Unicode decimal digit, as Werkzeug's \\d+
        ("/n/<int:v>", "/n/007", {"v": 7}),
        ("/n/<int(min=5):v>", "/n/3", NotFound),
        ("/n/<int(fixed_digits=3):v>", "/n/12", NotFound),
        ("/n/<int(signed=True):v>", "/n/-4", {"v": -4}),
        ("/s/<v>", "/s/x y", {"v": "x y"}),
        ("/a/<any(x, y):v>", "/a/y", {"v": "y"}),
        ("/p/<path:v>", "/p/a/b", {"v": "a/b"}),
    ],
)
def test_converted_values_equal_werkzeugs(rule: str, path: str, expected: Any) -> None:
    url_map = Map([Rule(rule, endpoint="e")])
    adapter = url_map.bind("localhost")
    if expected is NotFound:
        with pytest.raises(NotFound):
            url_map.match_compiled("", path)
        with pytest.raises(NotFound):
            adapter.match(path)
        return
    _, values = url_map.match_compiled("", path)
    assert values == expected == adapter.match(path)[1]
    assert type(values["v"]) is type(adapter.match(path)[1]["v"])
