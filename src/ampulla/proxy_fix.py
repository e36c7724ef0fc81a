"""Trusting what is in front of the application: ``TRUSTED_HOSTS`` and ``PROXY_FIX``.

:func:`host_is_trusted` checks a request's ``Host`` against the configured names; :func:`apply_proxy_fix` rewrites
a request's client address, scheme, host and root path from the ``X-Forwarded-*`` headers of trusted proxies.
:class:`~ampulla.app.Ampulla` applies both while matching a request, before routing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .wrappers import Request


def host_is_trusted(host: str, trusted: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host`` (port ignored) is one of ``trusted``; an entry ``.example.com`` also allows subdomains."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower().rstrip(".")
    for entry in trusted:
        entry = entry.lower().rstrip(".")
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry.rsplit(":", 1)[0].strip("[]"):
            return True
    return False


def apply_proxy_fix(request: Request, settings: dict[str, int]) -> None:
    """Honour ``X-Forwarded-*`` headers set by a known number of trusted proxies (``PROXY_FIX``).

    Each setting counts the proxies that append to that header (0 ignores it): ``x_for``, ``x_proto``,
    ``x_host``, ``x_port``, ``x_prefix``. The value used is the one the outermost trusted proxy wrote, so a
    client cannot spoof it by sending its own header.
    """

    def trusted_value(header: str, count: int) -> str | None:
        if count <= 0:
            return None
        raw: str = request.headers.get(header, "")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(values) < count:
            return None
        return values[-count]

    x_for = int(settings.get("x_for", 0) or 0)
    forwarded_for = trusted_value("X-Forwarded-For", x_for)
    if forwarded_for:
        chain = [v.strip() for v in request.headers.get("X-Forwarded-For", "").split(",") if v.strip()]
        request._access_route = chain[-x_for:] + ([request.remote_addr] if request.remote_addr else [])
        request.remote_addr = forwarded_for
    proto = trusted_value("X-Forwarded-Proto", int(settings.get("x_proto", 0) or 0))
    if proto and proto.lower() in ("http", "https"):
        request.scheme = proto.lower()
    host = trusted_value("X-Forwarded-Host", int(settings.get("x_host", 0) or 0))
    if host:
        request.forwarded_host = host
    port = trusted_value("X-Forwarded-Port", int(settings.get("x_port", 0) or 0))
    if port and port.isdigit():
        base = (request.forwarded_host or request.headers.get("Host") or "").rsplit(":", 1)[0]
        default = (request.scheme, port) in (("http", "80"), ("https", "443"))
        request.forwarded_host = base if default else f"{base}:{port}"
    prefix = trusted_value("X-Forwarded-Prefix", int(settings.get("x_prefix", 0) or 0))
    if prefix:
        request.root_path = "/" + prefix.strip("/") if prefix.strip("/") else ""
