"""Helpers for untrusted file names and paths: Werkzeug's, re-exported (``from werkzeug.utils import
secure_filename`` works the same).

- :func:`secure_filename` (:func:`werkzeug.utils.secure_filename`) makes a client's file name a safe single path
  component; it may return ``""``, and it does not shorten long names.
- :func:`safe_join` (:func:`werkzeug.security.safe_join`) joins untrusted segments under a trusted directory,
  or returns ``None`` when they would leave it.
"""

from __future__ import annotations

from werkzeug.security import safe_join
from werkzeug.utils import secure_filename

__all__ = ["safe_join", "secure_filename"]
