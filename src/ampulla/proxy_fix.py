"""Checking what the server lets through: the ``Host`` header, ``TRUSTED_HOSTS``, ``PROXY_FIX``, message framing.

:func:`is_valid_host` checks that a ``Host`` value is an RFC 3986 authority without user information, path,
query or fragment; :func:`host_is_trusted` checks it against the configured names; :func:`apply_proxy_fix`
rewrites a request's client address, scheme, host and root path from the ``X-Forwarded-*`` headers of trusted
proxies. :func:`check_request_host` runs all three, once per request, for HTTP requests and WebSocket
handshakes alike; :class:`~ampulla.app.Ampulla` calls it before routing. :func:`check_http_version` and
:func:`check_framing` are the WSGI and ASGI adapters' first step: requests a server should have refused (an
unknown HTTP version, ``Content-Length`` with ``Transfer-Encoding``) are refused here whatever the server.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import BadRequest, HTTPException, HTTPVersionNotSupported, SecurityError

if TYPE_CHECKING:
    from .wrappers import Request

# An RFC 3986 authority without userinfo: host [ ":" port ]. The host is a bracketed IPv6 literal or a
# reg-name / IPv4 address made of dot-separated labels of unreserved characters (letters, digits, "-", "_",
# "~"), with an optional trailing dot. Percent-encoding and sub-delims ("!$&'()*+,;=") are valid in a reg-name
# but in no DNS name, and they would change meaning once echoed into a URL or a header: refused, as Werkzeug
# does. A port is 1 to 5 digits (checked against 65535 below).
_HOST_RE = re.compile(
    r"(?:[a-z0-9_~-]+(?:\.[a-z0-9_~-]+)*\.?|\[(?P<ipv6>[0-9a-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII | re.IGNORECASE,
)
#: Longest accepted value: a 253-character DNS name, a trailing dot and a port.
_MAX_HOST_LENGTH = 260
#: Values already found valid (bounded): the same few hosts come with nearly every request.
_VALID_HOSTS: set[str] = set()
_VALID_HOSTS_LIMIT = 256


def is_valid_host(value: str) -> bool:
    """Whether ``value`` is a syntactically valid ``Host`` header: ``name``, ``name:port``, ``[ipv6]:port``.

    ``name`` is a DNS-style name or an IPv4 address (ASCII letters, digits, ``-``, ``_``, ``~`` in dot-separated
    labels), an IPv6 address must be a valid one in brackets, a port is at most 65535. User information
    (``a@b``), paths, queries, fragments, backslashes, spaces, commas (two ``Host`` headers joined) and
    unbalanced brackets are refused, and so is the empty value.

    Args:
        value: The ``Host`` (or ``X-Forwarded-Host``) value as received.

    Returns:
        ``True`` when the value is a valid authority.
    """
    # PERF: nearly every request repeats a host already seen (benchmarks/run.py: hello).
    if value in _VALID_HOSTS:
        return True
    if not value or len(value) > _MAX_HOST_LENGTH:
        return False
    match = _HOST_RE.fullmatch(value)
    if match is None:
        return False
    literal = match["ipv6"]
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    port = match["port"]
    if port is not None and int(port) > 65535:
        return False
    if len(_VALID_HOSTS) < _VALID_HOSTS_LIMIT:
        _VALID_HOSTS.add(value)
    return True


def split_host(host: str) -> tuple[str, str | None]:
    """``(name, port)`` of a ``host[:port]`` value; an IPv6 literal keeps its brackets.

    >>> split_host("[::1]:8080")
    ('[::1]', '8080')
    >>> split_host("example.com")
    ('example.com', None)
    """
    if host.startswith("["):
        end = host.find("]")
        if end != -1:
            rest = host[end + 1 :]
            return host[: end + 1], (rest[1:] if rest.startswith(":") else None)
        return host, None
    name, sep, port = host.rpartition(":")
    if not sep:
        return host, None
    if ":" in name:  # a bare IPv6 address, without brackets: no port
        return host, None
    return name, port


def _normalized_name(host: str) -> str:
    """The host name of ``host`` (port dropped), lower-case, without a trailing dot, IDNA-encoded."""
    name = split_host(host)[0].lower()
    if not name.startswith("[") and name.count(":") > 1:
        name = f"[{name}]"  # a bare IPv6 address in the configuration
    name = name.rstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return name


def host_is_trusted(host: str, trusted: Collection[str] | str | None) -> bool:
    """Whether ``host`` is a valid ``Host`` value whose name is one of ``trusted`` (the port is ignored).

    An entry ``".example.com"`` allows ``example.com`` and all its subdomains; other entries match exactly.
    Names compare case-insensitively, without a trailing dot; entries in Unicode are IDNA-encoded. An empty or
    ``None`` ``trusted`` allows every valid host.

    Args:
        host: The request's ``host[:port]``.
        trusted: The configured names (``TRUSTED_HOSTS``).

    Returns:
        ``True`` when the host is valid and trusted.
    """
    if not is_valid_host(host):
        return False
    if not trusted:
        return True
    if isinstance(trusted, str):
        trusted = (trusted,)
    name = split_host(host)[0].lower().rstrip(".")
    for entry in trusted:
        if entry.startswith("."):
            ref = _normalized_name(entry[1:])
            if ref and (name == ref or name.endswith("." + ref)):
                return True
        elif name == _normalized_name(entry):
            return True
    return False


def apply_proxy_fix(request: Request, settings: Mapping[str, Any]) -> None:
    """Honour ``X-Forwarded-*`` headers set by a known number of trusted proxies (``PROXY_FIX``).

    Each setting counts the proxies that append to that header (0 ignores it): ``x_for``, ``x_proto``,
    ``x_host``, ``x_port``, ``x_prefix``. The value used is the one the outermost trusted proxy wrote, so a
    client cannot spoof it by sending its own header. Repeated header lines count as one comma-separated list,
    in order, under WSGI and ASGI alike. The forwarded host is not validated here: :func:`check_request_host`
    does it.

    Args:
        request: The request to rewrite.
        settings: The ``PROXY_FIX`` dict.
    """
    headers = request.headers

    def trusted_values(header: str, count: int) -> tuple[str | None, list[str]]:
        if count <= 0:
            return None, []
        raw: str | None = headers.get(header)
        if not raw:
            return None, []
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(values) < count:
            return None, values
        return values[-count], values

    x_for = int(settings.get("x_for", 0) or 0)
    forwarded_for, chain = trusted_values("X-Forwarded-For", x_for)
    if forwarded_for:
        request._access_route = chain[-x_for:] + ([request.remote_addr] if request.remote_addr else [])
        request.remote_addr = forwarded_for
    proto = trusted_values("X-Forwarded-Proto", int(settings.get("x_proto", 0) or 0))[0]
    if proto:
        proto = proto.lower()
        if request.scheme in ("ws", "wss"):  # a WebSocket handshake: the proxy names the HTTP scheme
            proto = {"http": "ws", "https": "wss"}.get(proto, proto)
            if proto in ("ws", "wss"):
                request.scheme = proto
        elif proto in ("http", "https"):
            request.scheme = proto
    host = trusted_values("X-Forwarded-Host", int(settings.get("x_host", 0) or 0))[0]
    if host:
        request.forwarded_host = host
    port = trusted_values("X-Forwarded-Port", int(settings.get("x_port", 0) or 0))[0]
    if port and port.isascii() and port.isdigit():
        base = split_host(request.forwarded_host if request.forwarded_host is not None else request.host)[0]
        default = (request.scheme, port) in (("http", "80"), ("https", "443"), ("ws", "80"), ("wss", "443"))
        request.forwarded_host = base if default else f"{base}:{port}"
    prefix = trusted_values("X-Forwarded-Prefix", int(settings.get("x_prefix", 0) or 0))[0]
    if prefix:
        request.root_path = "/" + prefix.strip("/") if prefix.strip("/") else ""


def check_request_host(
    request: Request, proxy_fix: Mapping[str, int] | None, trusted_hosts: list[str] | tuple[str, ...] | None
) -> HTTPException | None:
    """Validate a request's ``Host``, apply ``PROXY_FIX`` and check ``TRUSTED_HOSTS``, once per request.

    The ``Host`` header, when present, must be a single valid authority (see :func:`is_valid_host`; two ``Host``
    headers arrive joined by a comma and fail), whatever the server let through and whether or not
    ``TRUSTED_HOSTS`` is set. A forwarded host trusted through ``PROXY_FIX`` must be valid too. Without a
    ``Host`` header, or with an empty one (granian passes ``""`` for a request that had none), the server's
    address stands in, as WSGI and ASGI specify and Werkzeug does. On failure the request's host is blanked, so
    error handlers, ``request.url`` and ``url_for(..., _external=True)`` never echo it.

    Args:
        request: The request, before routing.
        proxy_fix: The ``PROXY_FIX`` setting.
        trusted_hosts: The ``TRUSTED_HOSTS`` setting.

    Returns:
        The exception to answer with (:class:`~ampulla.exceptions.BadRequest` or
        :class:`~ampulla.exceptions.SecurityError`, both 400), or ``None`` when the host is acceptable.
    """
    raw = request.host_header()
    if raw and raw not in _VALID_HOSTS and not is_valid_host(raw):
        request.forwarded_host = ""
        return BadRequest("The Host header is not a valid host name: send one Host header of the form name[:port].")
    if proxy_fix:
        apply_proxy_fix(request, proxy_fix)
        forwarded = request.forwarded_host
        if forwarded is not None and not is_valid_host(forwarded):
            request.forwarded_host = ""
            return BadRequest("The X-Forwarded-Host header is not a valid host name of the form name[:port].")
    if trusted_hosts:
        host = request.host
        if not host_is_trusted(host, trusted_hosts):
            request.forwarded_host = ""
            return SecurityError(
                f"Host {host!r} is not in TRUSTED_HOSTS; add it to app.config['TRUSTED_HOSTS'] if it is yours."
            )
    return None


#: HTTP versions served without further parsing, as ASGI's ``http_version`` and WSGI's ``SERVER_PROTOCOL`` give
#: them.
SUPPORTED_VERSIONS = frozenset(
    ("1.1", "1.0", "1", "2", "2.0", "3", "3.0", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/2.0", "HTTP/3", "HTTP/3.0")
)
_VERSION_RE = re.compile(r"(?:HTTP/)?([0-9]{1,3})(?:\.([0-9]{1,3}))?", re.ASCII)


def check_http_version(version: str) -> HTTPException | None:
    """Whether a request's HTTP version (``"1.1"`` or ``"HTTP/1.1"``) can be served.

    HTTP/0.9, every HTTP/1.x (a higher minor version is served as 1.1, RFC 9110 §2.5), HTTP/2 and HTTP/3 are;
    another well-formed version gets 505, a malformed one 400.

    Args:
        version: ASGI's ``scope["http_version"]`` or WSGI's ``environ["SERVER_PROTOCOL"]``.

    Returns:
        The exception to answer with, or ``None``.
    """
    if version in SUPPORTED_VERSIONS:
        return None
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        return BadRequest("The request's HTTP version is malformed.")
    major, minor = int(match[1]), int(match[2] or 0)
    if major == 1 or (major, minor) == (0, 9):
        return None
    return HTTPVersionNotSupported(f"HTTP/{match[1]}{'.' + match[2] if match[2] else ''} is not supported.")


def check_framing(content_length: str | None, transfer_encoding: str | None) -> HTTPException | None:
    """Refuse a request whose body length is ambiguous (request smuggling shapes, RFC 9112 §6).

    A request with both ``Content-Length`` and ``Transfer-Encoding`` is refused (RFC 9112 §6.1: a server
    may process it only after removing ``Content-Length``, and must then close the connection; refusing is
    safer, since a proxy in front may have read the body the other way). So is a ``Content-Length`` that is not
    one decimal number (``"5, 5"`` from two header lines, ``"+5"``, ``"-1"``, ``"0x10"``). The adapters answer
    the returned 400 with ``Connection: close`` before any hook or view runs.

    Args:
        content_length: The ``Content-Length`` value, ``None`` when absent.
        transfer_encoding: The ``Transfer-Encoding`` value, ``None`` when absent.

    Returns:
        The exception to answer with, or ``None``.
    """
    if content_length is not None:
        if transfer_encoding is not None:
            return BadRequest("The request has both Content-Length and Transfer-Encoding; send only one of them.")
        if not (content_length.isdigit() and content_length.isascii()):
            value = content_length.strip(" \t")
            if not (value.isdigit() and value.isascii()):
                return BadRequest("The Content-Length header is not a single decimal number.")
    return None
