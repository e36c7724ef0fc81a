"""File responses: ``send_file`` and ``send_from_directory``, as Flask's, on Werkzeug's.

:func:`werkzeug.utils.send_file` builds the response (type guess, ``Content-Disposition``, validators,
``Cache-Control``) and makes it conditional with :meth:`ampulla.response.Response.make_conditional`: 304, 412,
a single byte range (206) or 416. Files are streamed in chunks, never read whole into memory; under WSGI a whole
file goes to the server's ``wsgi.file_wrapper`` (``sendfile(2)`` on most servers).

What Ampulla adds: the current request's headers under ASGI too (Werkzeug reads a WSGI environ), and
:func:`send_from_directory` also refuses a symbolic link that leads out of the directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any, cast

from werkzeug.security import safe_join
from werkzeug.utils import send_file as _werkzeug_send_file
from werkzeug.wsgi import FileWrapper

from .ctx import RequestContext
from .ctx import _cv_ctx as _imported_cv_ctx
from .exceptions import NotFound
from .wrappers import Request, Response

_cv_ctx = _imported_cv_ctx  # PERF: assigned, not imported: see the note on ctx._cv_ctx

__all__ = ["CHUNK_SIZE", "send_file", "send_from_directory"]

#: Bytes read from the file per chunk of the response body (Werkzeug's default is 8 KiB).
CHUNK_SIZE = 64 * 1024

#: The request headers :meth:`~ampulla.response.Response.make_conditional` reads, as WSGI environ keys.
_CONDITIONAL_HEADERS = ("Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since")


def _file_wrapper(file: IO[bytes], buffer_size: int = CHUNK_SIZE) -> FileWrapper:
    return FileWrapper(file, max(buffer_size, CHUNK_SIZE))


def _environ(request: Request | None) -> dict[str, Any]:
    """The WSGI environ Werkzeug's ``send_file`` reads: the request's own under WSGI; under ASGI (or outside a
    request) one holding the method and the headers conditional requests use. Without a server's
    ``wsgi.file_wrapper`` the file is read in chunks of :data:`CHUNK_SIZE`."""
    if request is not None and request.environ:
        environ = request.environ
        return environ if "wsgi.file_wrapper" in environ else {**environ, "wsgi.file_wrapper": _file_wrapper}
    environ = {"wsgi.file_wrapper": _file_wrapper}
    if request is not None:
        environ["REQUEST_METHOD"] = request.method
        headers = request.headers
        for name in _CONDITIONAL_HEADERS:
            value = headers.get(name)
            if value is not None:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def send_file(
    path_or_file: str | os.PathLike[str] | IO[bytes],
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime | int | float | None = None,
    max_age: int | Callable[[str | None], int | None] | None = None,
) -> Response:
    """Send a file's contents as the response, streamed in chunks (Flask's ``send_file``).

    A relative path is resolved against the application's ``root_path``. Never pass a path built from user
    input: use :func:`send_from_directory` for that.

    Args:
        path_or_file: A path, or a binary file object (``open(..., "rb")``, ``io.BytesIO``) positioned at its
            start. The file is closed when the response is done.
        mimetype: The content type; guessed from ``download_name`` (or the path) when omitted.
        as_attachment: Ask the browser to save the file (``Content-Disposition: attachment``) instead of
            showing it (``inline``).
        download_name: The file name the browser sees; defaults to the path's base name. Non-ASCII names are
            sent with an RFC 5987 ``filename*`` parameter and an ASCII fallback.
        conditional: Answer ``If-None-Match`` / ``If-Modified-Since`` with 304, a failed ``If-Match`` with 412,
            and ``Range`` with 206 or 416 (inside a request only).
        etag: ``True`` computes an ETag from the path, modification time and size (not available for file
            objects); a string is used as the ETag; ``False`` sends none.
        last_modified: The modification time to send; defaults to the file's mtime for paths.
        max_age: Seconds browsers may cache the file without asking (``Cache-Control: public, max-age=N``),
            or a function of the path returning that. ``None`` means the app's
            :meth:`~ampulla.Ampulla.get_send_file_max_age` (``SEND_FILE_MAX_AGE_DEFAULT``), whose default
            ``None`` sends ``Cache-Control: no-cache`` so browsers revalidate and get a cheap 304.

    Returns:
        The response (200, 206, 304 or 412).

    Raises:
        FileNotFoundError: ``path_or_file`` is a path that does not exist.
        TypeError: A file object without ``mimetype`` or ``download_name`` (the type cannot be guessed).
        ValueError: A text-mode file.
        RequestedRangeNotSatisfiable: The ``Range`` header cannot be answered with one byte range (416).
    """
    ctx = _cv_ctx.get(None)
    app = ctx.app if ctx is not None else None
    request = ctx.request if isinstance(ctx, RequestContext) else None
    if max_age is None and app is not None:
        max_age = app.get_send_file_max_age
    response = _werkzeug_send_file(
        path_or_file,
        _environ(request),
        mimetype=mimetype,
        as_attachment=as_attachment,
        download_name=download_name,
        conditional=conditional and request is not None,
        etag=etag,
        last_modified=last_modified,
        max_age=max_age,
        use_x_sendfile=bool(app.config.get("USE_X_SENDFILE")) if app is not None else False,
        response_class=app.response_class if app is not None else Response,  # type: ignore[arg-type]
        _root_path=app.root_path if app is not None else None,
    )
    return cast(Response, response)


def send_from_directory(
    directory: str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: Any
) -> Response:
    """Send a file from inside ``directory``; safe for paths that come from the URL (Flask's
    ``send_from_directory``).

    Any path that would leave the directory gets 404: ``..`` segments and absolute paths (Werkzeug's
    :func:`~werkzeug.security.safe_join`), NUL bytes and, unlike Werkzeug, symbolic links that resolve outside
    the directory. Directories and missing files get 404 too.

    Args:
        directory: The trusted folder, relative to the application's ``root_path`` unless absolute.
        path: The untrusted path inside it, e.g. the ``<path:filename>`` part of the URL.
        **kwargs: Passed on to :func:`send_file` (``max_age``, ``as_attachment``, ``download_name``...).

    Raises:
        NotFound: The path is unsafe, missing, or not a regular file.
    """
    directory = os.fspath(directory)
    joined = safe_join(directory, os.fspath(path))
    if joined is None or "\0" in joined:  # os.path.realpath raises on NUL
        raise NotFound()
    ctx = _cv_ctx.get(None)
    if ctx is not None:
        joined = os.path.join(ctx.app.root_path, joined)
        directory = os.path.join(ctx.app.root_path, directory)
    real_dir = os.path.realpath(directory)
    real = os.path.realpath(joined)
    # A symlink inside the folder may point anywhere; only targets inside the (resolved) folder are served.
    if real == real_dir or os.path.commonpath([real_dir, real]) != real_dir or not os.path.isfile(real):
        raise NotFound()
    kwargs.setdefault("download_name", os.path.basename(joined))
    try:
        return send_file(real, **kwargs)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound() from None
