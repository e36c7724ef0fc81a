"""Starlette's ``hooks`` app with ``BaseHTTPMiddleware`` instead of a pure ASGI middleware (only that scenario)."""

from __future__ import annotations

from benchmarks.apps.starlette_app import create_hooks_basehttp_app as create_hooks_app

__all__ = ["create_hooks_app"]
