"""Tests for ampulla.utils: Werkzeug's file name and path helpers, re-exported."""

from __future__ import annotations

import werkzeug.security
import werkzeug.utils

from ampulla import utils


def test_helpers_are_werkzeugs() -> None:
    assert utils.secure_filename is werkzeug.utils.secure_filename
    assert utils.safe_join is werkzeug.security.safe_join


def test_secure_filename_leaves_no_path() -> None:
    assert utils.secure_filename("../../etc/passwd") == "etc_passwd"
    assert utils.secure_filename("../..") == ""


def test_safe_join_refuses_to_leave_the_directory() -> None:
    assert utils.safe_join("/srv/static", "css/app.css") == "/srv/static/css/app.css"
    for path in ("../secret.txt", "sub/../../secret.txt", "/etc/passwd", ".."):
        assert utils.safe_join("/srv/static", path) is None
