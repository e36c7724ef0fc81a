"""Helpers for untrusted file names and paths."""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata

__all__ = ["safe_join", "secure_filename"]

_FILENAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
# Device names Windows reserves in every directory, whatever the extension ("nul.txt" is NUL too).
_WINDOWS_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
)
#: Longest name :func:`secure_filename` returns (most file systems allow 255 bytes).
MAX_FILENAME_LENGTH = 255


def secure_filename(filename: str) -> str:
    """Make a client-supplied file name safe to use as a single path component on any OS.

    The name is normalised (Unicode NFKD, then non-ASCII dropped, so ``"naïve.txt"`` becomes
    ``"naive.txt"``), path separators and whitespace become ``_``, every character other than ASCII letters,
    digits, ``_``, ``.`` and ``-`` is dropped, and leading dots and underscores plus trailing dots are
    stripped, so no ``..``, hidden file or absolute path can remain. Windows device names (``CON``, ``NUL``,
    ``COM1`` ...) get a ``_`` prefix on every OS, since files move between systems. Names longer than
    :data:`MAX_FILENAME_LENGTH` are shortened, keeping a short extension.

    The result may be ``""`` (e.g. for ``"../.."`` or a name with only non-ASCII letters): callers must handle
    that, for example by generating a name.

    Args:
        filename: The untrusted name, e.g. ``FileStorage.filename``.

    Returns:
        A safe file name, possibly empty.
    """
    filename = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    filename = filename.replace("/", " ").replace("\\", " ")
    filename = _FILENAME_UNSAFE_RE.sub("", "_".join(filename.split()))
    filename = filename.lstrip("._").rstrip(".")
    if filename.split(".", 1)[0].upper() in _WINDOWS_DEVICE_NAMES:
        filename = f"_{filename}"
    if len(filename) > MAX_FILENAME_LENGTH:
        stem, dot, extension = filename.rpartition(".")
        if dot and stem and len(extension) <= 16:
            filename = stem[: MAX_FILENAME_LENGTH - len(extension) - 1].rstrip(".") + "." + extension
        else:
            filename = filename[:MAX_FILENAME_LENGTH].rstrip(".")
    return filename


_DRIVE_RE = re.compile(r"[A-Za-z]:")


def safe_join(directory: str, *pathnames: str) -> str | None:
    """Join untrusted path segments under a trusted directory, or return ``None`` if that would escape it.

    Each segment is normalised as a POSIX path (``a/./b`` becomes ``a/b``, ``a/../b`` becomes ``b``) and
    refused when it is absolute or starts with ``/``, climbs out with ``..``, contains a backslash or a NUL
    byte, or starts with a drive letter (``C:``) - on every OS, so behaviour does not depend on where the
    app runs. On Windows a ``:`` anywhere is refused too (alternate data streams). This is a pure string
    operation: a symlink inside ``directory`` can still point elsewhere.

    Args:
        directory: The trusted base directory (``""`` means the current directory).
        *pathnames: Untrusted segments, e.g. the ``<path:filename>`` part of a URL.

    Returns:
        The joined path, or ``None`` when a segment is unsafe.
    """
    if not directory:
        directory = "."
    parts = [directory]
    for pathname in pathnames:
        if "\\" in pathname or "\0" in pathname or _DRIVE_RE.match(pathname):
            return None
        if os.name == "nt" and ":" in pathname:  # pragma: no cover - Windows only
            return None
        if pathname.startswith("/") or os.path.isabs(pathname):
            return None
        if pathname:
            pathname = posixpath.normpath(pathname)
            if pathname == ".." or pathname.startswith("../"):
                return None
        parts.append(pathname)
    return posixpath.join(*parts)
