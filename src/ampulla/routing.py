"""URL rules, converters, the compiled matcher and URL building.

``Map.match`` is on every request's path, so it is built for speed at registration time:

- static rules (no variables) live in a dict keyed by path: one lookup;
- dynamic rules are sorted by priority (static segments before variables, converters by weight) and compiled
  into one alternation regex per leading static segment, plus one for rules whose first segment is variable.
  The regex engine tries the alternatives in C; ``match.lastindex`` names the rule that matched.

Method mismatches and overlapping rules fall back to a scan in priority order, so the answer always equals
"the first rule, in priority order, that matches path and method".
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from werkzeug.routing import BuildError as _WerkzeugBuildError
from werkzeug.routing import RequestRedirect as _WerkzeugRequestRedirect

from .exceptions import HTTPException, MethodNotAllowed, NotFound

__all__ = [
    "AnyConverter",
    "BaseConverter",
    "BuildError",
    "FloatConverter",
    "IntegerConverter",
    "Map",
    "PathConverter",
    "RequestRedirect",
    "Rule",
    "UUIDConverter",
    "UnicodeConverter",
    "ValidationError",
]


class ValidationError(ValueError):
    """Raised by a converter's ``to_python`` to say "this rule does not match"; matching goes on."""


class RequestRedirect(_WerkzeugRequestRedirect):
    """Raised by matching when the canonical URL differs (e.g. a missing trailing slash). Answers 308.

    Werkzeug's ``RequestRedirect``, so code that catches it catches this.

    Args:
        new_path: The path to redirect to (the app adds the script root and the query string).
    """

    def __init__(self, new_path: str) -> None:
        super().__init__(new_path)
        self.new_path = new_path


# ---------------------------------------------------------------------------------------------- converters


class BaseConverter:
    """Base class of URL converters.

    Subclasses set ``regex`` (no capturing groups), and override ``to_python`` / ``to_url``. Register one with
    ``app.url_map.converters["name"] = MyConverter`` and use it as ``<name:var>`` or ``<name(arg, k=v):var>``.

    Args:
        map: The :class:`Map` the rule belongs to.
        *args: Positional arguments from the rule, e.g. ``<name(1, "a"):var>``.
        **kwargs: Keyword arguments from the rule.
    """

    regex: str = "[^/]+"
    weight: int = 100
    part_isolating: bool = True

    def __init__(self, map: Map | None = None, *args: Any, **kwargs: Any) -> None:
        self.map = map

    def to_python(self, value: str) -> Any:
        """Convert the matched text to the view argument; raise ``ValidationError`` to refuse the match."""
        return value

    def to_url(self, value: Any) -> str:
        """Convert a value to its URL text (percent-encoded)."""
        return quote(str(value), safe="!$&'()*+,:;=@")


class UnicodeConverter(BaseConverter):
    """The default converter: one path segment (no ``/``).

    Args:
        map: The map.
        minlength: Minimum length.
        maxlength: Maximum length.
        length: Exact length.
    """

    def __init__(
        self, map: Map | None = None, minlength: int = 1, maxlength: int | None = None, length: int | None = None
    ) -> None:
        super().__init__(map)
        if length is not None:
            self.regex = f"[^/]{{{int(length)}}}"
        else:
            upper = "" if maxlength is None else str(int(maxlength))
            self.regex = f"[^/]{{{int(minlength)},{upper}}}"


class PathConverter(BaseConverter):
    """Like the default converter but also accepts slashes: ``<path:filename>``."""

    regex = "[^/].*?"
    weight = 200
    part_isolating = False

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="!$&'()*+,/:;=@")


class AnyConverter(BaseConverter):
    """Matches one of the given items: ``<any(about, help, "contact us"):page>``.

    Args:
        map: The map.
        *items: The accepted values.
    """

    def __init__(self, map: Map | None = None, *items: str) -> None:
        super().__init__(map)
        if not items:
            raise ValueError("any() needs at least one item, e.g. <any(a, b):name>")
        self.items = {str(i) for i in items}
        self.regex = "(?:" + "|".join(re.escape(str(i)) for i in sorted(self.items, key=len, reverse=True)) + ")"

    def to_url(self, value: Any) -> str:
        if str(value) not in self.items:
            raise ValueError(f"{value!r} is not one of {sorted(self.items)}")
        return super().to_url(value)


class NumberConverter(BaseConverter):
    """Shared logic of ``int`` and ``float``."""

    weight = 50
    num_convert: ClassVar[Callable[[str], Any]] = int

    def __init__(
        self,
        map: Map | None = None,
        fixed_digits: int = 0,
        min: float | None = None,
        max: float | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(map)
        self.fixed_digits = fixed_digits
        self.min = min
        self.max = max
        self.signed = signed
        if signed:
            self.regex = "-?" + self.regex

    def to_python(self, value: str) -> Any:
        if self.fixed_digits and len(value) != self.fixed_digits:
            raise ValidationError()
        number = type(self).num_convert(value)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        text = str(type(self).num_convert(value))
        if self.fixed_digits:
            text = text.zfill(self.fixed_digits)
        return text


class IntegerConverter(NumberConverter):
    """``<int:id>``: ASCII digits, ``signed=True`` allows a minus; ``min``, ``max``, ``fixed_digits``."""

    regex = r"[0-9]+"


class FloatConverter(NumberConverter):
    """``<float:x>``: ``1.5`` (a dot is required, an exponent allowed: ``1.5e-7``); ``signed``, ``min``, ``max``."""

    regex = r"[0-9]+\.[0-9]+(?:e[-+]?[0-9]+)?"
    num_convert = float

    def to_url(self, value: Any) -> str:
        text = repr(float(value))
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e", 1)
        return text

    def __init__(
        self, map: Map | None = None, min: float | None = None, max: float | None = None, signed: bool = False
    ) -> None:
        super().__init__(map, min=min, max=max, signed=signed)


class UUIDConverter(BaseConverter):
    """``<uuid:ident>``: a UUID in its canonical text form, given to the view as ``uuid.UUID``."""

    regex = r"[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: Any) -> str:
        return str(value)


DEFAULT_CONVERTERS: Mapping[str, type[BaseConverter]] = {
    "default": UnicodeConverter,
    "string": UnicodeConverter,
    "any": AnyConverter,
    "path": PathConverter,
    "int": IntegerConverter,
    "float": FloatConverter,
    "uuid": UUIDConverter,
}

# ---------------------------------------------------------------------------------------------- rules

_VAR_RE = re.compile(
    r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>.*?)\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)


def _escape_outside_vars(pattern: str) -> str:
    """``pattern`` with its text regex-escaped and its ``<variables>`` kept as they are."""
    out: list[str] = []
    pos = 0
    for m in _VAR_RE.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "".join(out)


def _parse_converter_args(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Parse ``1, "a", min=2`` into args and kwargs; bare words are strings (``any(a, b)``)."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return node.id
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
        ):
            return -node.operand.value
        raise ValueError(f"converter arguments must be literals, got {ast.unparse(node)!r}")

    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise ValueError(f"cannot parse converter arguments {text!r}") from None
    assert isinstance(call, ast.Call)
    return tuple(value(a) for a in call.args), {k.arg: value(k.value) for k in call.keywords if k.arg}


class Rule:
    """One URL pattern and what it leads to.

    Args:
        rule: The pattern, starting with ``/``: ``"/users/<int:id>"``.
        endpoint: The endpoint name used by ``url_for`` and to find the view.
        methods: Allowed methods (upper-cased); ``HEAD`` is added when ``GET`` is present. ``None`` allows all.
        defaults: Values passed to the view for variables not in this rule; also used to pick a rule when
            building URLs.
        subdomain: Only match requests for this subdomain of ``SERVER_NAME``.
        strict_slashes: With a trailing ``/`` in the rule, a request without it is redirected (308). ``False``
            accepts both forms. ``None`` uses the map's setting.
        redirect_to: Redirect matches to this rule pattern (``"/new/<id>"``) or to ``callable(**values)``.
        websocket: This rule matches only WebSocket connections.
        provide_automatic_options: Answer ``OPTIONS`` automatically (set by ``add_url_rule``).
        merge_slashes: Unused; accepted for compatibility.
    """

    def __init__(
        self,
        rule: str,
        *,
        endpoint: str | None = None,
        methods: Iterable[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        subdomain: str | None = None,
        strict_slashes: bool | None = None,
        redirect_to: str | Callable[..., str] | None = None,
        websocket: bool = False,
        provide_automatic_options: bool | None = None,
        merge_slashes: bool | None = None,
        host: str | None = None,
    ) -> None:
        if not rule.startswith("/"):
            raise ValueError(f"URL rule {rule!r} must start with a slash, e.g. '/{rule}'")
        self.rule = rule
        self.endpoint: str = endpoint or ""
        if isinstance(methods, str):
            raise TypeError("methods must be a list of strings, e.g. methods=['GET', 'POST'], not a string")
        self.methods: set[str] | None = None
        if methods is not None:
            self.methods = {m.upper() for m in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")
        self.defaults: dict[str, Any] = dict(defaults or {})
        self._subdomain_given = subdomain
        self.subdomain = subdomain or ""
        self.strict_slashes = strict_slashes
        self.redirect_to = redirect_to
        self.websocket = websocket
        self.provide_automatic_options = provide_automatic_options
        self.host = host
        self.map: Map | None = None
        self.arguments: set[str] = set()
        self._parts: list[str | tuple[str, BaseConverter]] = []
        self._converters: dict[str, BaseConverter] = {}
        self.regex: re.Pattern[str] | None = None
        self._pattern = ""
        self._var_groups: tuple[tuple[str, BaseConverter], ...] = ()

    # -------------------------------------------------------------------------------------- binding
    def bind(self, map: Map) -> None:
        """Parse the pattern with the map's converters and compile its regex."""
        if self.map is not None and self.map is not map:
            raise RuntimeError(f"rule {self.rule!r} is already bound to another map")
        self.map = map
        if self.strict_slashes is None:
            self.strict_slashes = map.strict_slashes
        if self._subdomain_given is None and map.default_subdomain:
            self.subdomain = map.default_subdomain
        self._parse()

    def _parse(self) -> None:
        assert self.map is not None
        pos = 0
        parts: list[str | tuple[str, BaseConverter]] = []
        for m in _VAR_RE.finditer(self.rule):
            if m.start() > pos:
                parts.append(self.rule[pos : m.start()])
            conv_name = m.group("conv") or "default"
            name = m.group("name")
            if name in self._converters:
                raise ValueError(f"variable {name!r} appears twice in rule {self.rule!r}")
            try:
                conv_cls = self.map.converters[conv_name]
            except KeyError:
                raise LookupError(
                    f"no converter named {conv_name!r} in rule {self.rule!r}; register it with "
                    f"app.url_map.converters[{conv_name!r}] = YourConverter"
                ) from None
            args, kwargs = _parse_converter_args(m.group("args")) if m.group("args") else ((), {})
            converter = conv_cls(self.map, *args, **kwargs)
            self._converters[name] = converter
            parts.append((name, converter))
            pos = m.end()
        if pos < len(self.rule):
            parts.append(self.rule[pos:])
        leftover = "".join(p for p in parts if isinstance(p, str))
        if "<" in leftover or ">" in leftover:
            raise ValueError(f"malformed variable in rule {self.rule!r}; use <name> or <converter:name>")
        self._parts = parts
        self.arguments = set(self._converters)
        self.subdomain_arguments: tuple[str, ...] = ()
        self.subdomain_regex: re.Pattern[str] | None = None
        if self.map.host_matching:
            # The rule's host takes the place of its subdomain: the map's tables are keyed by it.
            self.subdomain = (self.host or "").lower() if self.host and "<" not in self.host else (self.host or "")
        if "<" in self.subdomain:
            names = [m.group("name") for m in _VAR_RE.finditer(self.subdomain)]
            var_regex = "[^/]+" if self.map.host_matching else "[^.]+"
            pattern = _VAR_RE.sub(
                lambda m: f"(?P<{m.group('name')}>{var_regex})", _escape_outside_vars(self.subdomain)
            )
            self.subdomain_regex = re.compile(pattern + "\\Z")
            self.subdomain_arguments = tuple(names)
            self.arguments |= set(names)
        regex_parts: list[str] = []
        for i, part in enumerate(parts):
            if isinstance(part, str):
                if i == len(parts) - 1 and part.endswith("/") and not self.strict_slashes and len(self.rule) > 1:
                    regex_parts.append(re.escape(part[:-1]) + "/?")
                else:
                    regex_parts.append(re.escape(part))
            else:
                regex_parts.append(f"(?P<{part[0]}>{part[1].regex})")
        if not self.strict_slashes and not self.rule.endswith("/"):
            regex_parts.append("/?")
        self._pattern = "".join(regex_parts)
        # NOTE: \Z, not $: "$" also matches before a trailing newline ("/a\n" must not match "/a").
        self.regex = re.compile(f"^{self._pattern}\\Z", re.DOTALL)
        self._var_groups = tuple((name, conv) for name, conv in self._converters.items())

    @property
    def is_static(self) -> bool:
        """True when the rule has no variables."""
        return not self._converters

    def _sort_key(self) -> tuple[Any, ...]:
        """Priority: per segment, static text first, then variables by converter weight; path last."""
        key: list[tuple[int, int, int]] = []
        segment_static = 0
        segment_weight: int | None = None
        multi = False
        for part in self._parts:
            if isinstance(part, str):
                chunks = part.split("/")
                for j, chunk in enumerate(chunks):
                    if j > 0:
                        key.append(self._segment_key(segment_static, segment_weight, multi))
                        segment_static, segment_weight, multi = 0, None, False
                    segment_static += len(chunk)
            else:
                conv = part[1]
                segment_weight = conv.weight if segment_weight is None else max(segment_weight, conv.weight)
                multi = multi or not conv.part_isolating
        key.append(self._segment_key(segment_static, segment_weight, multi))
        return tuple(key)

    @staticmethod
    def _segment_key(static: int, weight: int | None, multi: bool) -> tuple[int, int, int]:
        if weight is None:
            return (0, 0, 0)
        return (2 if multi else 1, weight, -static)

    def _first_static_segment(self) -> str | None:
        """The first path segment when it is fully static (used to bucket dynamic rules)."""
        first = self._parts[0]
        if not isinstance(first, str):
            return None
        text = first[1:]
        if "/" in text:
            return text.split("/", 1)[0]
        if len(self._parts) > 1:
            return None  # the first segment continues into a variable
        return text

    # -------------------------------------------------------------------------------------- matching
    def match(self, path: str) -> dict[str, Any] | None:
        """The converted variables when ``path`` matches this rule, else ``None``."""
        assert self.regex is not None
        m = self.regex.match(path)
        if m is None:
            return None
        return self._convert(m.group)

    def _convert(self, group: Callable[[str], str]) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        try:
            for name, conv in self._var_groups:
                values[name] = conv.to_python(group(name))
        except (ValidationError, ValueError):
            return None
        if self.defaults:
            for key, value in self.defaults.items():
                values.setdefault(key, value)
        return values

    # -------------------------------------------------------------------------------------- building
    def suitable_for(self, values: Mapping[str, Any], method: str | None = None) -> bool:
        """Whether this rule can build a URL from ``values`` (and ``method``)."""
        if method is not None and self.methods is not None and method not in self.methods:
            return False
        for key in self.arguments:
            if key not in values and key not in self.defaults:
                return False
        return all(key not in values or values[key] == default for key, default in self.defaults.items())

    def build_subdomain(self, values: Mapping[str, Any]) -> str:
        """The rule's subdomain with its variables filled in from ``values``."""
        if not self.subdomain_arguments:
            return self.subdomain
        return _VAR_RE.sub(lambda m: str(values.get(m.group("name"), self.defaults.get(m.group("name"), ""))),
                           self.subdomain)

    def build(self, values: Mapping[str, Any], append_unknown: bool = True) -> str:
        """The path for ``values``; values the rule does not use become the query string.

        Raises:
            ValueError: A converter refused a value.
        """
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                name, conv = part
                value = values[name] if name in values else self.defaults[name]
                out.append(conv.to_url(value))
        path = "".join(out)
        if append_unknown:
            query = [
                (k, v)
                for k, v in values.items()
                if k not in self.arguments and k not in self.defaults and v is not None
            ]
            if query:
                path += "?" + urlencode(
                    [(k, item) for k, v in query for item in (v if isinstance(v, list | tuple) else [v])]
                )
        return path

    def __repr__(self) -> str:
        methods = f" ({', '.join(sorted(self.methods))})" if self.methods else ""
        return f"<Rule {self.rule!r}{methods} -> {self.endpoint}>"


# ---------------------------------------------------------------------------------------------- the map


class _Table:
    """The compiled matcher for one (subdomain, websocket) combination."""

    __slots__ = ("buckets", "ordered", "static", "wildcard")

    def __init__(self, rules: list[Rule]) -> None:
        self.ordered = sorted(rules, key=Rule._sort_key)
        self.static: dict[str, list[Rule]] = {}
        dynamic_by_segment: dict[str | None, list[Rule]] = {}
        for rule in self.ordered:
            if rule.is_static:
                self.static.setdefault(rule.rule, []).append(rule)
                if not rule.strict_slashes:
                    other = rule.rule[:-1] if rule.rule.endswith("/") and len(rule.rule) > 1 else rule.rule + "/"
                    self.static.setdefault(other, []).append(rule)
            else:
                dynamic_by_segment.setdefault(rule._first_static_segment(), []).append(rule)
        wildcard_rules = dynamic_by_segment.pop(None, [])
        self.wildcard = _Alternation(wildcard_rules) if wildcard_rules else None
        self.buckets = {seg: _Alternation(rs) for seg, rs in dynamic_by_segment.items()}


class _Alternation:
    """Dynamic rules compiled into one regex; rules with the same pattern share an alternative."""

    __slots__ = ("groups", "regex", "rules")

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        alternatives: list[str] = []
        # index of the wrapper group -> (rules sharing the pattern, ((var, group index, converter), ...))
        self.groups: dict[int, tuple[list[Rule], tuple[tuple[str, int, BaseConverter], ...]]] = {}
        by_pattern: dict[str, list[Rule]] = {}
        for rule in rules:
            by_pattern.setdefault(rule._pattern, []).append(rule)
        index = 1
        for n, (pattern, same) in enumerate(by_pattern.items()):
            rule = same[0]
            assert rule.regex is not None
            # Rename the rule's named groups so they are unique in the alternation.
            local = re.sub(r"\(\?P<([a-zA-Z_][a-zA-Z0-9_]*)>", f"(?P<r{n}_\\1>", pattern)
            alternatives.append(f"(?P<r{n}>{local})")
            names = rule.regex.groupindex
            var_groups = tuple((name, index + names[name], conv) for name, conv in rule._var_groups)
            self.groups[index] = (same, var_groups)
            index += 1 + rule.regex.groups
        self.regex = re.compile("(?:" + "|".join(alternatives) + ")\\Z", re.DOTALL)


def _method_allows(rule: Rule, method: str) -> bool:
    return rule.methods is None or method in rule.methods


_SLASHES_RE = re.compile("/{2,}")


class Map:
    """The URL map of an application (``app.url_map``).

    Args:
        strict_slashes: Default for rules: redirect ``/path`` to ``/path/`` when the rule ends with a slash.
        converters: Extra converters by name (added to the defaults).
        merge_slashes: Redirect ``/a//b`` to ``/a/b`` when only the merged path matches a rule.
        host_matching: Rules match on their ``host`` (``"<user>.example.com"``) rather than a subdomain.
        default_subdomain: The subdomain of rules added without one.
    """

    default_converters: ClassVar[Mapping[str, type[BaseConverter]]] = DEFAULT_CONVERTERS

    def __init__(
        self,
        strict_slashes: bool = True,
        converters: Mapping[str, type[BaseConverter]] | None = None,
        merge_slashes: bool = True,
        host_matching: bool = False,
        default_subdomain: str = "",
    ) -> None:
        self.strict_slashes = strict_slashes
        self.merge_slashes = merge_slashes
        self.converters: dict[str, type[BaseConverter]] = dict(self.default_converters)
        if converters:
            self.converters.update(converters)
        self._rules: list[Rule] = []
        self._by_endpoint: dict[str, list[Rule]] = {}
        self._tables: dict[tuple[str, bool], _Table] | None = None
        self._subdomain_patterns: list[tuple[str, re.Pattern[str]]] = []
        #: Match rules by their ``host`` (the full request host) instead of their subdomain.
        self.host_matching = host_matching
        #: The subdomain of rules added without one.
        self.default_subdomain = default_subdomain

    def add(self, rule: Rule | Any) -> None:
        """Add and bind a rule; the matcher is recompiled on the next match.

        Args:
            rule: A :class:`Rule`, or a Werkzeug rule factory or rule (``Submount``, ``Subdomain``,
                ``EndpointPrefix``, ``werkzeug.routing.Rule``): its rules are added as Ampulla rules.
        """
        if not isinstance(rule, Rule):
            for item in rule.get_rules(self):
                self.add(_from_werkzeug(item))
            return
        rule.bind(self)
        self._rules.append(rule)
        rules = self._by_endpoint.setdefault(rule.endpoint, [])
        rules.append(rule)
        # Building tries the rules that use the most values first (stable for equal counts).
        rules.sort(key=lambda r: (-len(r.arguments | r.defaults.keys()), -len(r.defaults)))
        self._tables = None

    def is_endpoint_expecting(self, endpoint: str, *arguments: str) -> bool:
        """Whether some rule of ``endpoint`` has all of ``arguments`` as URL variables."""
        wanted = set(arguments)
        return any(wanted <= rule.arguments for rule in self._by_endpoint.get(endpoint, ()))

    def iter_rules(self, endpoint: str | None = None) -> Iterator[Rule]:
        """The rules, in registration order (only those of ``endpoint`` when given)."""
        if endpoint is not None:
            return iter(self._by_endpoint.get(endpoint, ()))
        return iter(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return self.iter_rules()

    def _compile(self) -> dict[tuple[str, bool], _Table]:
        grouped: dict[tuple[str, bool], list[Rule]] = {}
        patterns: dict[str, re.Pattern[str]] = {}
        for rule in self._rules:
            grouped.setdefault((rule.subdomain, rule.websocket), []).append(rule)
            if rule.subdomain_regex is not None:
                patterns[rule.subdomain] = rule.subdomain_regex
        # The most specific pattern (most literal text) first: "<name>.example.test" before "<name>".
        self._subdomain_patterns = sorted(
            patterns.items(), key=lambda item: -len(_VAR_RE.sub("", item[0]))
        )
        self._tables = {key: _Table(rules) for key, rules in grouped.items()}
        return self._tables

    def _match_variable_subdomain(
        self, path: str, method: str, subdomain: str, websocket: bool, error: HTTPException | None = None
    ) -> tuple[Rule, dict[str, Any]]:
        error = error or NotFound()
        tables = self._tables if self._tables is not None else self._compile()
        for pattern_text, regex in self._subdomain_patterns:
            m = regex.match(subdomain)
            table = tables.get((pattern_text, websocket))
            if m is None or table is None:
                continue
            try:
                rule, values = self._match_table(table, path, method, pattern_text, websocket, tables)
            except (NotFound, MethodNotAllowed) as e:
                error = e if isinstance(e, MethodNotAllowed) else error
                continue
            for key, value in m.groupdict().items():
                if key not in rule.defaults:
                    values[key] = value
            return rule, values
        raise error

    @property
    def has_subdomains(self) -> bool:
        """Whether any rule is bound to a subdomain."""
        tables = self._tables if self._tables is not None else self._compile()
        return any(subdomain for subdomain, _ in tables)

    def match(
        self, path: str, method: str = "GET", subdomain: str = "", websocket: bool = False
    ) -> tuple[Rule, dict[str, Any]]:
        """Find the rule for a request.

        Args:
            path: The decoded request path, starting with ``/``.
            method: The request method, upper-case.
            subdomain: The request's subdomain relative to ``SERVER_NAME`` (``""`` for none).
            websocket: Whether the request is a WebSocket handshake.

        Returns:
            The rule and the converted URL variables (with the rule's defaults).

        Raises:
            NotFound: No rule matches the path.
            MethodNotAllowed: Rules match the path but not the method (``valid_methods`` lists theirs).
            RequestRedirect: The path needs a trailing slash (or the rule has ``redirect_to``).
        """
        tables = self._tables if self._tables is not None else self._compile()
        table = tables.get((subdomain, websocket))
        if self._subdomain_patterns and subdomain:
            if table is None:
                return self._match_variable_subdomain(path, method, subdomain, websocket)
            try:
                return self._match_table(table, path, method, subdomain, websocket, tables)
            except NotFound as e:
                return self._match_variable_subdomain(path, method, subdomain, websocket, e)
        if table is None:
            raise NotFound()
        return self._match_table(table, path, method, subdomain, websocket, tables)

    def _match_table(
        self,
        table: _Table,
        path: str,
        method: str,
        subdomain: str,
        websocket: bool,
        tables: dict[tuple[str, bool], _Table],
    ) -> tuple[Rule, dict[str, Any]]:
        # PERF: static dict first, then one regex per first segment (benchmarks/run.py: hello, route50).
        matched_path = False
        found = table.static.get(path)
        if found is not None:
            for rule in found:
                if _method_allows(rule, method):
                    return self._result(rule, dict(rule.defaults) if rule.defaults else {})
            matched_path = True
        else:
            slash = path.find("/", 1)
            first = path[1:] if slash < 0 else path[1:slash]
            for alt in (table.buckets.get(first), table.wildcard):
                if alt is None:
                    continue
                m = alt.regex.match(path)
                if m is None:
                    continue
                matched_path = True
                index = m.lastindex
                assert index is not None
                rules, var_groups = alt.groups[index]
                rule = rules[0]
                if len(rules) > 1 or not _method_allows(rule, method):
                    for candidate in rules:
                        if _method_allows(candidate, method):
                            rule = candidate
                            break
                    else:
                        break  # a mismatch: the full scan below decides between 405 and other rules
                values: dict[str, Any] = {}
                try:
                    for name, group, conv in var_groups:
                        values[name] = conv.to_python(m.group(group))
                except (ValidationError, ValueError):
                    break  # refused by a converter: a later rule may still match
                if rule.defaults:
                    for key, value in rule.defaults.items():
                        values.setdefault(key, value)
                return self._result(rule, values)
        if not matched_path:
            # PERF: nothing matched the path at all, so no scan can find a rule (benchmarks/run.py: notfound).
            if not path.endswith("/") and self._wants_slash(table, path + "/"):
                raise RequestRedirect(path + "/")
            if "//" in path and self.merge_slashes:
                self._redirect_merged(path, method, subdomain, websocket)
            raise NotFound()
        return self._slow_match(table, path, method, tables, subdomain, websocket)

    def _redirect_merged(self, path: str, method: str, subdomain: str, websocket: bool) -> None:
        """Redirect ``/a//b`` to ``/a/b`` when that matches a rule (raises), else return."""
        merged = _SLASHES_RE.sub("/", path)
        try:
            self.match(merged, method, subdomain, websocket)
        except RequestRedirect as e:
            raise RequestRedirect(e.new_path) from None
        except HTTPException:
            return
        raise RequestRedirect(merged)

    @staticmethod
    def _wants_slash(table: _Table, path: str) -> bool:
        """Whether a strict-slashes rule ending in ``/`` matches ``path`` (which ends with the slash)."""
        found = table.static.get(path)
        if found is not None:
            return any(rule.strict_slashes and rule.rule.endswith("/") for rule in found)
        slash = path.find("/", 1)
        first = path[1:] if slash < 0 else path[1:slash]
        for alt in (table.buckets.get(first), table.wildcard):
            if alt is not None and alt.regex.match(path) is not None:
                return any(
                    rule.strict_slashes and rule.rule.endswith("/") and rule.match(path) is not None
                    for rule in alt.rules
                )
        return False

    def _result(self, rule: Rule, values: dict[str, Any]) -> tuple[Rule, dict[str, Any]]:
        if rule.redirect_to is not None:
            if callable(rule.redirect_to):
                raise RequestRedirect(rule.redirect_to(**values))
            target = Rule(rule.redirect_to)
            target.bind(self)
            raise RequestRedirect(target.build(values, append_unknown=False))
        return rule, values

    def _slow_match(
        self,
        table: _Table,
        path: str,
        method: str,
        tables: dict[tuple[str, bool], _Table],
        subdomain: str,
        websocket: bool,
    ) -> tuple[Rule, dict[str, Any]]:
        allowed: set[str] = set()
        any_method = False
        for rule in table.ordered:
            values = rule.match(path)
            if values is None:
                continue
            if _method_allows(rule, method):
                return self._result(rule, values)
            assert rule.methods is not None
            allowed |= rule.methods
            any_method = True
        if any_method:
            raise MethodNotAllowed(valid_methods=sorted(allowed))
        if "//" in path and self.merge_slashes:
            self._redirect_merged(path, method, subdomain, websocket)
        if not path.endswith("/"):
            for rule in table.ordered:
                if rule.strict_slashes and rule.rule.endswith("/") and rule.match(path + "/") is not None:
                    raise RequestRedirect(path + "/")
        raise NotFound()

    def allowed_methods(self, path: str, subdomain: str = "") -> set[str]:
        """Every method some rule accepts for ``path`` (for automatic ``OPTIONS``)."""
        tables = self._tables if self._tables is not None else self._compile()
        table = tables.get((subdomain, False))
        methods: set[str] = set()
        if table is None:
            return methods
        for rule in table.ordered:
            if rule.match(path) is not None:
                if rule.methods is None:
                    return {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
                methods |= rule.methods
        return methods

    def build(
        self, endpoint: str, values: Mapping[str, Any] | None = None, method: str | None = None
    ) -> tuple[Rule, str]:
        """Build a path (with query string for unused values) for ``endpoint``.

        Raises:
            BuildError: No rule of the endpoint accepts the values.
        """
        values = {k: v for k, v in (values or {}).items() if v is not None}
        rules = self._by_endpoint.get(endpoint)
        if not rules:
            raise BuildError(endpoint, values, method, "no rule has this endpoint name")
        for rule in rules:
            if rule.suitable_for(values, method):
                try:
                    return rule, rule.build(values)
                except ValueError as e:
                    raise BuildError(endpoint, values, method, str(e)) from e
        missing = sorted(set().union(*(r.arguments for r in rules)) - set(values))
        reason = f"missing values for {missing}" if missing else "no rule accepts these values and method"
        raise BuildError(endpoint, values, method, reason)


class BuildError(_WerkzeugBuildError):
    """``url_for`` could not build a URL: an unknown endpoint, or values that fit none of its rules.

    A ``LookupError``, and Werkzeug's ``BuildError``, so code catching either catches it.
    """

    def __init__(self, endpoint: str, values: Mapping[str, Any], method: str | None, reason: str) -> None:
        super().__init__(endpoint, dict(values), method)
        self.reason = reason

    def __str__(self) -> str:
        method_text = f" with method {self.method}" if self.method else ""
        return f"could not build URL for endpoint {self.endpoint!r}{method_text}: {self.reason}"


def _from_werkzeug(rule: Any) -> Rule:
    """An Ampulla :class:`Rule` with the settings of a Werkzeug rule (from a rule factory)."""
    if isinstance(rule, Rule):
        return rule
    return Rule(
        rule.rule,
        endpoint=rule.endpoint,
        methods=rule.methods,
        defaults=rule.defaults,
        subdomain=rule.subdomain,
        strict_slashes=rule.strict_slashes,
        redirect_to=rule.redirect_to,
        websocket=rule.websocket,
        merge_slashes=rule.merge_slashes,
        host=rule.host,
    )
