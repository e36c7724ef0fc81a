"""Tests for ampulla.utils: secure_filename and safe_join."""

from __future__ import annotations

import os
import posixpath
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ampulla.utils import MAX_FILENAME_LENGTH, safe_join, secure_filename

# ---------------------------------------------------------------------------------------------------------
# secure_filename
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("My cool movie.mov", "My_cool_movie.mov"),
        ("../../../etc/passwd", "etc_passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "windows_system32_cmd.exe"),
        ("/etc/passwd", "etc_passwd"),
        ("i contain cool \xfcml\xe4uts.txt", "i_contain_cool_umlauts.txt"),
        ("naïve café.pdf", "naive_cafe.pdf"),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("__init__.py", "init__.py"),
        ("trailing.dots...", "trailing.dots"),
        ("tab\tand\nnewline.txt", "tab_and_newline.txt"),
        ("a\x00b.txt", "ab.txt"),
        ("<script>alert(1)</script>.html", "scriptalert1_script.html"),
        ("résumé (final) [v2].docx", "resume_final_v2.docx"),
        ("ﬁle.txt", "file.txt"),  # NFKD splits the ligature
        ("report-2024_v1.0.tar.gz", "report-2024_v1.0.tar.gz"),
    ],
)
def test_secure_filename(filename: str, expected: str) -> None:
    assert secure_filename(filename) == expected


@pytest.mark.parametrize("filename", ["", "..", "../..", "/", "日本語", "...", "___", "\x00"])
def test_secure_filename_may_return_an_empty_string(filename: str) -> None:
    assert secure_filename(filename) == ""


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("NUL.tar.gz", "_NUL.tar.gz"),
        ("com1.log", "_com1.log"),
        ("LPT9", "_LPT9"),
        ("com\u00b9.txt", "_com1.txt"),  # superscript one, which Windows also treats as a device
        ("aux_file.txt", "aux_file.txt"),
        ("console.txt", "console.txt"),
    ],
)
def test_secure_filename_avoids_windows_device_names_on_every_os(filename: str, expected: str) -> None:
    assert secure_filename(filename) == expected


def test_secure_filename_shortens_long_names_keeping_the_extension() -> None:
    result = secure_filename("a" * 1000 + ".jpeg")
    assert len(result) == MAX_FILENAME_LENGTH
    assert result.endswith(".jpeg")
    assert len(secure_filename("b" * 1000)) == MAX_FILENAME_LENGTH


_WINDOWS_DEVICES = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")


@given(st.text(max_size=300))
def test_secure_filename_is_always_safe(filename: str) -> None:
    result = secure_filename(filename)
    assert re.fullmatch(r"[A-Za-z0-9_.-]*", result)
    assert not result.startswith(".")
    if result.startswith("_"):  # only the prefix that defuses a device name
        assert _WINDOWS_DEVICES.fullmatch(result[1:])
    assert not result.endswith(".")
    assert result not in (".", "..")
    assert not _WINDOWS_DEVICES.fullmatch(result)
    assert len(result) <= MAX_FILENAME_LENGTH
    assert secure_filename(result) == result


# ---------------------------------------------------------------------------------------------------------
# safe_join
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pathnames", "expected"),
    [
        (("index.html",), "static/index.html"),
        (("css/site.css",), "static/css/site.css"),
        (("css", "site.css"), "static/css/site.css"),
        (("a/./b//c.txt",), "static/a/b/c.txt"),
        (("a/../b.txt",), "static/b.txt"),
        (("a/b/../../c.txt",), "static/c.txt"),
        (("..file",), "static/..file"),
        (("file..",), "static/file.."),
        (("",), "static/"),
        ((), "static"),
        (("dir:name",), "static/dir:name"),
    ],
)
def test_safe_join_joins_safe_segments(pathnames: tuple[str, ...], expected: str) -> None:
    assert safe_join("static", *pathnames) == expected


@pytest.mark.parametrize(
    "pathname",
    [
        "..",
        "../secret",
        "a/../../secret",
        "a/b/../../../secret",
        "/etc/passwd",
        "//etc/passwd",
        "\\windows\\win.ini",
        "a\\..\\..\\secret",
        "C:\\Windows",
        "C:/Windows",
        "c:secret",
        "file\x00.txt",
    ],
)
def test_safe_join_refuses_escaping_segments(pathname: str) -> None:
    assert safe_join("static", pathname) is None
    assert safe_join("static", "ok", pathname) is None


def test_safe_join_segment_resolving_to_the_directory_itself_stays_inside() -> None:
    assert safe_join("static", "a/..") == "static/."


def test_safe_join_empty_directory_means_current_directory() -> None:
    assert safe_join("", "a.txt") == "./a.txt"
    assert safe_join("", "../a.txt") is None


segment = st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(["..", ".", "", "a", "b", "/", "\\", "C:", "%2e%2e", "\x00"]), max_size=8).map(
        "/".join
    ),
)


@given(st.lists(segment, max_size=4))
def test_safe_join_never_leaves_the_directory(pathnames: list[str]) -> None:
    base = os.path.abspath("/srv/app/static")
    result = safe_join(base, *pathnames)
    if result is None:
        return
    assert "\x00" not in result and "\\" not in result
    resolved = posixpath.normpath(result)
    assert resolved == base or resolved.startswith(base + "/")
