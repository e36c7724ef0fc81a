"""URL rules and the URL map: Werkzeug's, with a compiled matcher that answers as ``MapAdapter.match`` does.

``app.url_map`` is a :class:`Map`, a subclass of ``werkzeug.routing.Map``; its rules are
``werkzeug.routing.Rule`` objects and its converters Werkzeug's converters. Everything Werkzeug documents about
them (rule syntax, ``strict_slashes``, ``merge_slashes``, ``redirect_defaults``, subdomains, host matching,
``bind``/``bind_to_environ``, ``MapAdapter.build``, custom ``BaseConverter`` subclasses) holds as it is.

What Ampulla adds is speed on the request path. :meth:`Map.match_compiled` gives the answer
``MapAdapter.match(path, method, return_rule=True)`` gives (the rule and its values, or the same
``RequestRedirect``, ``MethodNotAllowed``, ``WebsocketMismatch`` or ``NotFound``) without binding an adapter per
request:

- it is built from the state machine Werkzeug's ``Map.add`` builds (one state per rule part, static transitions
  in a dict, dynamic ones in Werkzeug's weight order), with each dynamic part's regex compiled once instead of
  looked up per part and request;
- the static prefix of a path is followed with dict lookups; a path that leads, through static transitions
  only, to a rule accepting the method answers from one dict lookup per domain and path;
- an adapter (for the absolute ``Location`` of a redirect) is bound only when a redirect is answered.

``tests/test_routing_property.py`` checks, on generated rule sets and paths, that the answers equal
``MapAdapter.match``'s.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol
from urllib.parse import quote, urljoin

from werkzeug.routing import (
    AnyConverter,
    BaseConverter,
    BuildError,
    EndpointPrefix,
    FloatConverter,
    IntegerConverter,
    MapAdapter,
    PathConverter,
    RequestRedirect,
    Rule,
    RuleFactory,
    RuleTemplate,
    Subdomain,
    Submount,
    UnicodeConverter,
    UUIDConverter,
    ValidationError,
    WebsocketMismatch,
)
from werkzeug.routing import Map as _WerkzeugMap
from werkzeug.routing.converters import DEFAULT_CONVERTERS, NumberConverter

from .exceptions import HTTPException, MethodNotAllowed, NotFound

__all__ = [
    "DEFAULT_CONVERTERS",
    "AnyConverter",
    "BaseConverter",
    "BuildError",
    "EndpointPrefix",
    "FloatConverter",
    "IntegerConverter",
    "Map",
    "MapAdapter",
    "NumberConverter",
    "PathConverter",
    "RequestRedirect",
    "Rule",
    "RuleFactory",
    "RuleTemplate",
    "Subdomain",
    "Submount",
    "UUIDConverter",
    "UnicodeConverter",
    "ValidationError",
    "WebsocketMismatch",
]

_SLASHES_RE = re.compile("/{2,}")
# Werkzeug's simple placeholder syntax of ``redirect_to`` strings: "/new/<id>".
_PLACEHOLDER_RE = re.compile(r"<([^>]+)>")
# What a redirect keeps unencoded in its path: the WHATWG path-segment set, as Werkzeug.
_PATH_SAFE = "!$&'()*+,/:;=@"


class AdapterSource(Protocol):
    """What holds a request's ``MapAdapter`` (a request context): the matcher asks it only to build a redirect."""

    @property
    def url_adapter(self) -> MapAdapter | None: ...


#: Where the matcher gets the request's ``MapAdapter`` for a redirect: a function returning it, or its holder.
Binder = Callable[[], MapAdapter] | AdapterSource


def _adapter(bind: Binder) -> MapAdapter:
    """The ``MapAdapter`` of ``bind``."""
    adapter = bind() if callable(bind) else bind.url_adapter
    assert adapter is not None  # a request context always has one
    return adapter


class _SlashRequired(Exception):
    """Control flow of the search: the path matches a strict-slashes rule once a ``/`` is appended."""


#: A rule as the fast paths answer it: (rule, methods, websocket, (name, to_python, group) of each value).
_Entry = tuple[Rule, Any, bool, tuple[tuple[str, Callable[[str], Any], int], ...]]
#: A dynamic transition: (regex match, whether it consumes the rest of the path, the group of a trailing-slash
#: suffix or 0, the groups of the values in order, the next node, the next node's rules for the fast path).
_Edge = tuple[Callable[[str], "re.Match[str] | None"], bool, int, tuple[int, ...], "_Node", tuple[_Entry, ...]]


class _Node:
    """One state of the matcher: the rules ending here and the transitions on the next path part."""

    __slots__ = ("dynamic", "dynamic_above", "rules", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.dynamic: tuple[_Edge, ...] = ()
        self.rules: tuple[Rule, ...] = ()
        #: For a node reached from a domain's start through static transitions only: whether it or a node on
        #: the way has dynamic transitions (else a path leaving the static transitions here matches nothing).
        self.dynamic_above = True


def _compile_state(state: Any, post: set[int]) -> _Node:
    """A :class:`_Node` tree from a state of Werkzeug's ``StateMachineMatcher`` (sorted by ``Map.update``)."""
    node = _Node()
    node.rules = tuple(state.rules)
    node.static = {key: _compile_state(child, post) for key, child in state.static.items()}
    edges: list[_Edge] = []
    for part, child in state.dynamic:
        regex = re.compile(part.content)
        numbered = sorted(
            (int(name[11:]), index) for name, index in regex.groupindex.items() if name.startswith("__werkzeug_")
        )
        groups = tuple(index for _, index in numbered)
        suffix = regex.groups if part.suffixed else 0
        target = _compile_state(child, post)
        edges.append((regex.match, bool(part.final), suffix, groups, target, _entries(target.rules, groups, post)))
    node.dynamic = tuple(edges)
    return node


# ``seen`` collects what a search met: the method sets of rules whose path matched but not the method, and
# ``None`` for a rule that matched but is of the other kind (WebSocket or HTTP).


def _first_accepting(
    rules: Iterable[Rule], method: str, websocket: bool, seen: list[Any], lax_only: bool
) -> Rule | None:
    """The first of ``rules`` (only those without strict slashes if ``lax_only``) taking ``method`` and of the
    request's kind; what the others would have taken goes to ``seen``."""
    for rule in rules:
        if lax_only and rule.strict_slashes:
            continue
        methods = rule.methods
        if methods is not None and method not in methods:
            seen.append(methods)
        elif rule.websocket != websocket:
            seen.append(None)
        else:
            return rule
    return None


def _end(
    node: _Node, values: list[str], method: str, websocket: bool, seen: list[Any]
) -> tuple[Rule, list[str]] | None:
    """Every part consumed at ``node``: its first rule accepting the method, else a strict-slashes rule one
    ``/`` further down (raises :class:`_SlashRequired`) or a non-strict one (matches)."""
    rule = _first_accepting(node.rules, method, websocket, seen, False)
    if rule is not None:
        return rule, values
    slash = node.static.get("")
    if slash is not None:
        for rule in slash.rules:
            methods = rule.methods
            if websocket == rule.websocket and (methods is None or method in methods):
                if rule.strict_slashes:
                    raise _SlashRequired()
                return rule, values
    return None


def _edges(
    node: _Node, parts: list[str], i: int, values: list[str], method: str, websocket: bool, seen: list[Any]
) -> tuple[Rule, list[str]] | None:
    """The dynamic transitions of ``node`` on ``parts[i]`` (``i`` < ``len(parts)``), in Werkzeug's order, then
    the rules of ``node`` without strict slashes when only an empty part (a trailing slash) is left."""
    last = len(parts) - 1
    for match, final, suffix, groups, child, _ in node.dynamic:
        if final:
            m = match("/".join(parts[i:]))
            rest, start = _NO_PARTS, 0
        else:
            m = match(parts[i])
            rest, start = parts, i + 1
        if m is not None:
            if suffix and m.group(suffix) == "/":
                rest, start = _SLASH_PART, 0
            found_values = [*values, m.group(groups[0])] if len(groups) == 1 else values + [m.group(g) for g in groups]
            if start == len(rest):
                found = _end(child, found_values, method, websocket, seen)
            else:
                found = _search(child, rest, start, found_values, method, websocket, seen)
            if found is not None:
                return found
    if i == last and not parts[i]:
        rule = _first_accepting(node.rules, method, websocket, seen, True)
        if rule is not None:
            return rule, values
    return None


def _search(
    node: _Node, parts: list[str], i: int, values: list[str], method: str, websocket: bool, seen: list[Any]
) -> tuple[Rule, list[str]] | None:
    """The first rule, in Werkzeug's order, matching ``parts[i:]`` from ``node``; ``None`` if there is none.

    Werkzeug's order is a depth-first search trying, at each part, the static transition first and then the
    dynamic ones by weight. The static transitions are followed here in a loop; backtracking then tries the
    dynamic transitions from the deepest node up.

    Raises:
        _SlashRequired: The first match in that order is a strict-slashes rule wanting a trailing ``/``.
    """
    n = len(parts)
    trail: list[_Node] = []
    while i < n:
        child = node.static.get(parts[i])
        if child is None:
            break
        trail.append(node)
        node = child
        i += 1
    if i == n:
        found = _end(node, values, method, websocket, seen)
    else:
        found = _edges(node, parts, i, values, method, websocket, seen)
    while found is None and trail:
        node = trail.pop()
        i -= 1
        found = _edges(node, parts, i, values, method, websocket, seen)
    return found


_NO_PARTS: list[str] = []
_SLASH_PART: list[str] = [""]


def _no_match(seen: list[Any]) -> MethodNotAllowed | WebsocketMismatch | NotFound:
    """The error ``MapAdapter.match`` raises when nothing matched (``valid_methods`` sorted)."""
    methods: set[str] = set()
    for item in seen:
        if item is not None:
            methods.update(item)
    if methods:
        return MethodNotAllowed(valid_methods=sorted(methods))
    if None in seen:
        return WebsocketMismatch()
    return NotFound()


def _fast_to_python(converter: BaseConverter) -> Callable[[str], Any]:
    """``converter.to_python``, or a built-in giving the same value for what its regex matched: ``str`` for
    Werkzeug's string-like converters, ``int`` for a plain ``IntegerConverter`` (a ``ValueError`` of ``int``, on
    more digits than ``sys.get_int_max_str_digits()``, sends the fast path to the full search, which answers 404
    as Werkzeug does). PERF: one Python call less per URL value (benchmarks/instructions.py: route50)."""
    kind = type(converter)
    if kind.to_python is BaseConverter.to_python:
        return str
    if (
        isinstance(converter, IntegerConverter)
        and kind is IntegerConverter
        and not converter.fixed_digits
        and converter.min is None
        and converter.max is None
    ):
        return int
    return converter.to_python


def _entries(rules: Iterable[Rule], groups: tuple[int, ...], post: set[int]) -> tuple[_Entry, ...]:
    """What the fast paths need of ``rules``, up to the first one needing more than its values (a rule in
    ``post``, or one with values from earlier transitions: the fast paths never reach it)."""
    entries: list[_Entry] = []
    for rule in rules:
        if id(rule) in post or len(rule._converters) != len(groups):
            break
        plan = tuple(
            (name, _fast_to_python(converter), group)
            for (name, converter), group in zip(rule._converters.items(), groups, strict=True)
        )
        entries.append((rule, rule.methods, bool(rule.websocket), plan))
    return tuple(entries)


class CompiledMatcher:
    """The matcher of one state of a :class:`Map` (rebuilt when rules are added).

    Args:
        url_map: The map, already updated (``Map.update``).
    """

    __slots__ = ("domains", "map", "post", "root")

    def __init__(self, url_map: Map) -> None:
        self.map = url_map
        #: ids of rules whose match needs more than their values: an alias, ``redirect_to``, or another rule
        #: of the endpoint that provides defaults for it (a ``redirect_defaults`` redirect).
        self.post: set[int] = set()
        for rules in url_map._rules_by_endpoint.values():
            for rule in rules:
                if rule.alias or rule.redirect_to is not None or any(o.provides_defaults_for(rule) for o in rules):
                    self.post.add(id(rule))
        self.root = _compile_state(url_map._matcher._root, self.post)
        #: static domain part -> (the node after it and the path's leading "/", where a path's parts start;
        #: path -> the rules reached from there through static transitions only).
        self.domains: dict[str, tuple[_Node, dict[str, tuple[_Entry, ...]]]] = {}
        for domain, node in self.root.static.items():
            start = node.static.get("")
            if start is not None:
                paths: dict[str, tuple[_Entry, ...]] = {}
                start.dynamic_above = bool(start.dynamic)
                self._index(start, "", paths)
                self.domains[domain] = (start, paths)

    def _index(self, node: _Node, prefix: str, paths: dict[str, tuple[_Entry, ...]]) -> None:
        """Index the paths of the nodes reached from ``node`` through static transitions only."""
        for key, child in node.static.items():
            path = f"{prefix}/{key}"
            child.dynamic_above = node.dynamic_above or bool(child.dynamic)
            if child.rules and not path.startswith("//"):  # "//a" is matched as "/a": the full search
                paths[path] = _entries(child.rules, (), self.post)
            self._index(child, path, paths)

    def _find(
        self, domain: str, path: str, method: str, websocket: bool, seen: list[Any]
    ) -> tuple[Rule, list[str]] | None:
        """Werkzeug's search over ``[domain, *path.split("/")]``: the static domain first, then dynamic ones."""
        found = None
        known = self.domains.get(domain)
        if known is not None:
            found = _search(known[0], path.split("/"), 1, [], method, websocket, seen)
        if found is None and self.root.dynamic:
            found = _edges(self.root, [domain, *path.split("/")], 0, [], method, websocket, seen)
        return found

    # ------------------------------------------------------------------------------------------ matching
    def match(
        self,
        domain: str,
        path_info: str,
        method: str,
        websocket: bool,
        bind: Binder,
    ) -> tuple[Rule, dict[str, Any]]:
        """See :meth:`Map.match_compiled`.

        Two fast paths answer what Werkzeug's search would find first, and only when they are sure; anything
        else (a method no rule takes, a redirect, a converter refusing its value, backtracking) is left to the
        full search.
        """
        known = self.domains.get(domain)
        if known is not None:
            # PERF: a path reached through static transitions only: one lookup, before the shape check below (the
            # index holds no path starting with "//"; benchmarks: hello).
            entries = known[1].get(path_info)
            if entries is not None:
                for rule, methods, rule_websocket, _ in entries:
                    if (methods is None or method in methods) and rule_websocket == websocket:
                        return rule, (dict(rule.defaults) if rule.defaults else {})
        if path_info[:1] == "/" and path_info[1:2] != "/":
            path = path_info
        else:
            # As MapAdapter.match: one leading slash ("//a" is "/a").
            path = f"/{path_info.lstrip('/')}" if path_info else ""
        parts = path.split("/")
        if known is not None:
            # PERF: the static transitions, then the first dynamic one matching the last part, when it leads to
            # a rule accepting the method (benchmarks: route50); or 404 at once when the path leaves the static
            # transitions where no dynamic one could take it (benchmarks: notfound).
            node = known[0]
            i, n = 1, len(parts)
            while i < n:
                child = node.static.get(parts[i])
                if child is None:
                    break
                node = child
                i += 1
            if i < n:
                part = parts[i]
                if i == n - 1 and node.dynamic:
                    for match, _, suffix, _, _, entries in node.dynamic:
                        m = match(part)
                        if m is None:
                            continue
                        if not suffix:
                            for rule, methods, rule_websocket, plan in entries:
                                if (methods is None or method in methods) and rule_websocket == websocket:
                                    try:
                                        if len(plan) == 1:
                                            name, to_python, group = plan[0]
                                            values = {name: to_python(m.group(group))}
                                        else:
                                            values = {key: call(m.group(g)) for key, call, g in plan}
                                    except (ValidationError, ValueError):
                                        break
                                    if rule.defaults:
                                        values.update(rule.defaults)
                                    return rule, values
                        break
                elif not node.dynamic_above and (part or i < n - 1) and not self.root.dynamic and "//" not in path:
                    raise NotFound()
        seen: list[Any] = []
        rule, raw = self._search(domain, path, method, websocket, seen, bind)
        try:
            values = self._convert(rule, raw)
        except ValidationError:
            raise _no_match(seen) from None
        if rule.defaults:
            values.update(rule.defaults)
        if id(rule) in self.post:
            self._redirect(rule, values, domain, path, method, bind)
        return rule, values

    @staticmethod
    def _convert(rule: Rule, raw: list[str]) -> dict[str, Any]:
        """The rule's values: each matched text through its converter's ``to_python``.

        Raises:
            ValidationError: A converter refused its text.
        """
        values = {}
        converters = rule._converters
        if raw:
            for name, value in zip(converters, raw, strict=False):
                values[name] = converters[name].to_python(value)
        return values

    def _search(
        self, domain: str, path: str, method: str, websocket: bool, seen: list[Any], bind: Binder
    ) -> tuple[Rule, list[str]]:
        """The rule and raw values Werkzeug's matcher finds, or the redirect or error it leads to."""
        try:
            found = self._find(domain, path, method, websocket, seen)
        except _SlashRequired:
            self._redirect_to_path(f"{path}/", bind)
        if found is None:
            # With merge_slashes, a second search on the merged path; without "//" it would repeat the first.
            if "//" in path and self.map.merge_slashes:
                merged = _SLASHES_RE.sub("/", path)
                try:
                    found = self._find(domain, merged, method, websocket, seen)
                except _SlashRequired:
                    self._redirect_to_path(f"{merged}/", bind)
                if found is not None and found[0].merge_slashes is not False:
                    self._redirect_to_path(merged, bind)
            raise _no_match(seen)
        return found

    @staticmethod
    def _redirect_to_path(path: str, bind: Binder) -> NoReturn:
        adapter = _adapter(bind)
        raise RequestRedirect(adapter.make_redirect_url(quote(path, safe=_PATH_SAFE), adapter.query_args or {}))

    def _redirect(
        self, rule: Rule, values: dict[str, Any], domain: str, path: str, method: str, bind: Binder
    ) -> None:
        """Raise the redirect ``MapAdapter.match`` raises for an alias, ``redirect_defaults`` or ``redirect_to``."""
        url_map = self.map
        if rule.alias and url_map.redirect_defaults:
            adapter = _adapter(bind)
            raise RequestRedirect(
                adapter.make_alias_redirect_url(
                    f"{domain}|{path}", rule.endpoint, values, method, adapter.query_args or {}
                )
            )
        target = rule.redirect_to
        if not url_map.redirect_defaults and target is None:
            return
        adapter = _adapter(bind)
        query_args = adapter.query_args or {}
        if url_map.redirect_defaults:
            url = adapter.get_default_redirect(rule, method, values, query_args)
            if url is not None:
                raise RequestRedirect(url)
        if target is None:
            return
        if isinstance(target, str):

            def placeholder(match: re.Match[str]) -> str:
                return str(rule._converters[match.group(1)].to_url(values[match.group(1)]))

            url = _PLACEHOLDER_RE.sub(placeholder, target)
        else:
            url = target(adapter, **values)
        netloc = f"{adapter.subdomain}.{adapter.server_name}" if adapter.subdomain else adapter.server_name
        raise RequestRedirect(urljoin(f"{adapter.url_scheme or 'http'}://{netloc}{adapter.script_name}", url))

    def allowed_methods(self, domain: str, path_info: str, bind: Binder) -> list[str]:
        """The methods ``MapAdapter.allowed_methods`` lists for the path (sorted)."""
        try:
            self.match(domain, path_info, "--", False, bind)
        except MethodNotAllowed as e:
            return list(e.valid_methods or ())
        except HTTPException:
            return []
        return []


class Map(_WerkzeugMap):
    """The URL map of an application (``app.url_map``): Werkzeug's ``Map``, plus a compiled matcher.

    Every argument and attribute is Werkzeug's: ``rules``, ``default_subdomain``, ``strict_slashes``,
    ``merge_slashes``, ``redirect_defaults``, ``converters``, ``sort_parameters``, ``sort_key``,
    ``host_matching``. Register a converter with ``app.url_map.converters["name"] = MyConverter`` (a
    ``BaseConverter`` subclass) before adding the rules that use it.
    """

    def __init__(self, rules: Iterable[RuleFactory] | None = None, **kwargs: Any) -> None:
        self._compiled: CompiledMatcher | None = None
        self._compile_lock = threading.Lock()
        super().__init__(rules, **kwargs)

    def add(self, rulefactory: RuleFactory) -> None:
        """Add a rule or rule factory (``Submount``, ``Subdomain``...) and bind its rules; see Werkzeug's."""
        super().add(rulefactory)
        self._compiled = None

    @property
    def compiled(self) -> CompiledMatcher:
        """The compiled matcher of the current rules (built on first use after a change)."""
        compiled = self._compiled
        if compiled is None:
            with self._compile_lock:
                compiled = self._compiled
                if compiled is None:
                    self.update()
                    compiled = self._compiled = CompiledMatcher(self)
        return compiled

    def match_compiled(
        self,
        domain: str,
        path_info: str,
        method: str = "GET",
        websocket: bool = False,
        bind: Callable[[], MapAdapter] | None = None,
    ) -> tuple[Rule, dict[str, Any]]:
        """Match a request as ``self.bind(...).match(path_info, method, return_rule=True)`` would.

        Args:
            domain: The adapter's domain part: its ``subdomain`` (``""`` for none; the map's
                ``default_subdomain`` when subdomains are not matched), or with ``host_matching`` its
                ``server_name`` (the request's host, lower-case).
            path_info: The decoded request path.
            method: The request method, upper-case.
            websocket: Whether the request is a WebSocket handshake.
            bind: Returns the request's ``MapAdapter``; called only to build the URL of a redirect.
                Default: ``self.bind("localhost", subdomain=domain)`` (or ``self.bind(domain)`` with
                host matching).

        Returns:
            The rule and its values (converted, with the rule's defaults).

        Raises:
            RequestRedirect: A trailing slash, merged slashes, an alias, ``redirect_defaults`` or
                ``redirect_to``; ``new_url`` is absolute.
            MethodNotAllowed: Rules match the path but not the method (``valid_methods``, sorted).
            WebsocketMismatch: Only a rule of the other kind (WebSocket or HTTP) matches.
            NotFound: Nothing matches.
        """
        compiled = self._compiled or self.compiled
        if bind is None:
            bind = self._default_bind(domain)
        return compiled.match(domain, path_info, method, websocket, bind)

    def _default_bind(self, domain: str) -> Callable[[], MapAdapter]:
        if self.host_matching:
            return lambda: self.bind(domain)
        return lambda: self.bind("localhost", subdomain=domain)
