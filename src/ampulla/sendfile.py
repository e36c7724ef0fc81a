"""File responses: ``send_file`` and ``send_from_directory``, with caching validators and byte ranges.

Files are streamed in chunks, never read whole into memory. The body iterator carries the open file as
``wsgi_file`` so the WSGI adapter can hand a full (non-range) body to the server's ``wsgi.file_wrapper``
(``sendfile(2)`` on most servers).

Conditional requests follow RFC 9110: ``If-Match`` / ``If-Unmodified-Since`` failures answer 412,
``If-None-Match`` / ``If-Modified-Since`` matches answer 304 for ``GET`` and ``HEAD``. A ``Range`` header on a
``GET`` answers 206 with one range, or 206 ``multipart/byteranges`` with several; a malformed header is
ignored (200, full body) and an unsatisfiable one answers 416 with ``Content-Range: bytes */<length>``.
"""

from __future__ import annotations

import io
import mimetypes
import os
import secrets
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from time import time
from typing import IO, Any
from urllib.parse import quote

from .ctx import RequestContext, _cv_ctx
from .exceptions import NotFound, PreconditionFailed, RequestedRangeNotSatisfiable
from .http import (
    http_date,
    if_range_matches,
    is_resource_modified,
    parse_date,
    parse_range_header,
    precondition_failed,
    quote_etag,
)
from .utils import safe_join
from .wrappers import Response

__all__ = ["FileChunks", "send_file", "send_from_directory"]

#: Bytes read from the file per chunk of the response body.
CHUNK_SIZE = 64 * 1024

# Compressed files keep their own type: serving ``a.tar.gz`` as ``application/x-tar`` without
# ``Content-Encoding`` would be wrong, and adding ``Content-Encoding: gzip`` makes browsers unpack downloads.
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/octet-stream",
}


class FileChunks:
    """A response body that reads ``length`` bytes of an open file in chunks and closes it when done.

    Attributes:
        wsgi_file: The open file, for ``wsgi.file_wrapper``; ``None`` when only part of the file is sent
            (the wrapper would send everything up to the end of the file).

    Args:
        file: A binary file positioned where the body starts.
        length: How many bytes to send; ``None`` means up to the end of the file.
        chunk_size: Bytes per read.
        whole: Whether the body runs to the end of the file (allows ``wsgi.file_wrapper``).
    """

    __slots__ = ("_file", "_remaining", "chunk_size", "wsgi_file")

    def __init__(
        self, file: IO[bytes], length: int | None, chunk_size: int = CHUNK_SIZE, whole: bool = True
    ) -> None:
        self._file: IO[bytes] | None = file
        self._remaining = length
        self.chunk_size = chunk_size
        self.wsgi_file: IO[bytes] | None = file if whole else None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        file = self._file
        if file is None:
            raise StopIteration
        remaining = self._remaining
        size = self.chunk_size if remaining is None else min(self.chunk_size, remaining)
        data = file.read(size) if size > 0 else b""
        if not data:
            self.close()
            raise StopIteration
        if remaining is not None:
            self._remaining = remaining - len(data)
        return data

    def close(self) -> None:
        """Close the file (the server calls this after sending, or on a ``HEAD`` request)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()


class _MultipartRanges:
    """A ``multipart/byteranges`` body: each range of the file between boundary lines."""

    __slots__ = ("_file", "_parts")

    def __init__(self, file: IO[bytes], base: int, parts: list[tuple[bytes, int, int]], end: bytes) -> None:
        self._file: IO[bytes] | None = file
        self._parts: Iterator[bytes] = self._generate(file, base, parts, end)

    @staticmethod
    def _generate(
        file: IO[bytes], base: int, parts: list[tuple[bytes, int, int]], end: bytes
    ) -> Iterator[bytes]:
        for head, start, stop in parts:
            yield head
            file.seek(base + start)
            remaining = stop - start
            while remaining > 0:
                data = file.read(min(CHUNK_SIZE, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
            yield b"\r\n"
        yield end

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._parts)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _guess_mimetype(name: str) -> str:
    mimetype, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    return mimetype or "application/octet-stream"


def _content_disposition(disposition: str, name: str) -> str:
    # Control characters would break the header; quotes and backslashes would end the quoted string.
    name = "".join(c for c in name if c >= " " and c != "\x7f")
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
        encoded = quote(name, safe="!#$&+^`|")
        return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    if any(c in name for c in ' "\\;,()<>@:/[]?={}\t'):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'{disposition}; filename="{escaped}"'
    return f"{disposition}; filename={name}"


def _file_size(file: IO[bytes]) -> int | None:
    """Bytes from the current position to the end, when knowable."""
    if isinstance(file, io.TextIOBase):
        raise ValueError("send_file() needs a file opened in binary mode ('rb') or an io.BytesIO")
    if isinstance(file, io.BytesIO):
        return file.getbuffer().nbytes - file.tell()
    try:
        size = os.fstat(file.fileno()).st_size
        return max(0, size - file.tell())
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    try:
        if file.seekable():
            position = file.tell()
            end = file.seek(0, io.SEEK_END)
            file.seek(position)
            return end - position
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _cache_control(headers: list[tuple[str, str]], max_age: int | None) -> None:
    # None: the browser may store the file but must revalidate (cheap with the validators: 304).
    if max_age is None:
        headers.append(("Cache-Control", "no-cache"))
    elif max_age > 0:
        headers.append(("Cache-Control", f"public, max-age={max_age}"))
        headers.append(("Expires", http_date(int(time() + max_age))))
    else:
        headers.append(("Cache-Control", "no-cache, max-age=0"))


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
    """Send a file's contents as the response, streamed in chunks.

    A relative path is resolved against the application's ``root_path``. Never pass a path built from user
    input: use :func:`send_from_directory` for that.

    Args:
        path_or_file: A path, or a binary file object (``open(..., "rb")``, ``io.BytesIO``). The file is
            closed when the response is done.
        mimetype: The content type; guessed from ``download_name`` (or the path) when omitted.
        as_attachment: Ask the browser to save the file (``Content-Disposition: attachment``) instead of
            showing it (``inline``).
        download_name: The file name the browser sees; defaults to the path's base name. Non-ASCII names are
            sent with an RFC 5987 ``filename*`` parameter and an ASCII fallback.
        conditional: Answer ``If-None-Match`` / ``If-Modified-Since`` with 304, failed ``If-Match`` /
            ``If-Unmodified-Since`` with 412, and ``Range`` with 206 or 416.
        etag: ``True`` computes an ETag from the path, modification time and size (not available for file
            objects); a string is used as the ETag; ``False`` sends none.
        last_modified: The modification time to send; defaults to the file's mtime for paths.
        max_age: Seconds browsers may cache the file without asking (``Cache-Control: public, max-age=N``),
            or a function of the path returning that. ``None`` asks the application
            (``app.get_send_file_max_age``: ``SEND_FILE_MAX_AGE_DEFAULT``); when that is ``None`` too,
            ``Cache-Control: no-cache`` makes browsers revalidate with the validators and get a cheap 304.

    Returns:
        The response (200, 206, 304 or 412).

    Raises:
        FileNotFoundError: ``path_or_file`` is a path that does not exist.
        ValueError: A file object without ``mimetype`` or ``download_name`` (the type cannot be guessed), or
            a text-mode file.
        RequestedRangeNotSatisfiable: The ``Range`` header asks only for bytes past the end (416).
    """
    ctx = _cv_ctx.get(None)
    app = ctx.app if ctx is not None else None
    request = ctx.request if isinstance(ctx, RequestContext) else None
    if max_age is None and app is not None:
        max_age = app.get_send_file_max_age  # SEND_FILE_MAX_AGE_DEFAULT, or the application's override
    path: str | None = None
    modified: datetime | None = None
    if isinstance(path_or_file, str | os.PathLike):
        path = os.fspath(path_or_file)
        if not os.path.isabs(path) and app is not None:
            path = os.path.join(app.root_path, path)
        file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the response body
        try:
            stat = os.fstat(file.fileno())
        except BaseException:
            file.close()
            raise
        size: int | None = stat.st_size
        mtime: float | None = stat.st_mtime
        mtime_ns: int | None = stat.st_mtime_ns
        if download_name is None:
            download_name = os.path.basename(path)
    else:
        file = path_or_file
        size = _file_size(file)
        mtime = mtime_ns = None
    try:
        if mimetype is None:
            if download_name is None:
                raise ValueError(
                    "Unable to detect the MIME type because a file name is not available. Pass "
                    "download_name='name.ext' or mimetype='type/subtype', or pass a path instead of a file."
                )
            mimetype = _guess_mimetype(download_name)
        if last_modified is not None:
            modified = parse_date(http_date(last_modified))
        elif mtime is not None:
            modified = parse_date(http_date(mtime))

        etag_value: str | None = None
        if isinstance(etag, str):
            etag_value = etag
        elif etag and path is not None and mtime_ns is not None and size is not None:
            # A cheap validator: changes with the file's path, mtime and size, without reading its content.
            checksum = zlib.adler32(path.encode("utf-8", "surrogateescape")) & 0xFFFFFFFF
            etag_value = f"{mtime_ns:x}-{size:x}-{checksum:x}"

        headers: list[tuple[str, str]] = []
        if download_name is not None:
            disposition = "attachment" if as_attachment else "inline"
            headers.append(("Content-Disposition", _content_disposition(disposition, download_name)))
        if etag_value is not None:
            quoted = etag_value.startswith(('"', "W/"))
            headers.append(("ETag", etag_value if quoted else quote_etag(etag_value)))
        if modified is not None:
            headers.append(("Last-Modified", http_date(modified)))
        if callable(max_age):
            max_age = max_age(path)
        _cache_control(headers, max_age)

        response_class = app.response_class if app is not None else Response
        if conditional and request is not None:
            method = request.method
            request_headers = request.headers
            if precondition_failed(
                request_headers.get("If-Match"), request_headers.get("If-Unmodified-Since"), etag_value, modified
            ):
                file.close()
                raise PreconditionFailed()
            if method in ("GET", "HEAD") and not is_resource_modified(
                request_headers.get("If-None-Match"),
                request_headers.get("If-Modified-Since"),
                etag_value,
                modified,
            ):
                file.close()
                not_modified = response_class(None, 304, headers)
                not_modified.headers.remove("Content-Type")
                return not_modified
            if size is not None:
                headers.append(("Accept-Ranges", "bytes"))
                range_header = request_headers.get("Range")
                if (
                    range_header
                    and method == "GET"
                    and if_range_matches(request_headers.get("If-Range"), etag_value, modified)
                ):
                    try:
                        ranges = parse_range_header(range_header, size)
                    except RequestedRangeNotSatisfiable:
                        file.close()
                        raise
                    if ranges is not None:
                        return _range_response(response_class, file, size, ranges, mimetype, headers)

        if size is not None:
            headers.append(("Content-Length", str(size)))
        return response_class(FileChunks(file, size), 200, headers, mimetype=mimetype, direct_passthrough=True)
    except BaseException:
        file.close()
        raise


def _range_response(
    response_class: type[Response],
    file: IO[bytes],
    size: int,
    ranges: list[tuple[int, int]],
    mimetype: str,
    headers: list[tuple[str, str]],
) -> Response:
    base = file.tell() if file.seekable() else 0
    if len(ranges) == 1:
        start, stop = ranges[0]
        file.seek(base + start)
        headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
        headers.append(("Content-Length", str(stop - start)))
        body = FileChunks(file, stop - start, whole=False)
        return response_class(body, 206, headers, mimetype=mimetype)
    # Several ranges: one multipart/byteranges body (RFC 9110 14.6), each part with its own Content-Range.
    boundary = secrets.token_hex(16)
    part_type = f"{mimetype}; charset=utf-8" if mimetype.startswith("text/") else mimetype
    parts: list[tuple[bytes, int, int]] = []
    length = 0
    for start, stop in ranges:
        head = (
            f"--{boundary}\r\nContent-Type: {part_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n"
        ).encode("latin-1")
        parts.append((head, start, stop))
        length += len(head) + (stop - start) + 2
    end = f"--{boundary}--\r\n".encode("ascii")
    length += len(end)
    headers.append(("Content-Length", str(length)))
    return response_class(
        _MultipartRanges(file, base, parts, end),
        206,
        headers,
        content_type=f"multipart/byteranges; boundary={boundary}",
    )


def send_from_directory(
    directory: str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: Any
) -> Response:
    """Send a file from inside ``directory``; safe for paths that come from the URL.

    Any path that would leave the directory gets 404: ``..`` segments, absolute paths, backslashes, NUL
    bytes, drive letters, and symbolic links that resolve outside the directory. Directories and missing
    files get 404 too.

    Args:
        directory: The trusted folder, relative to the application's ``root_path`` unless absolute.
        path: The untrusted path inside it, e.g. the ``<path:filename>`` part of the URL.
        **kwargs: Passed on to :func:`send_file` (``max_age``, ``as_attachment``, ``download_name``...).

    Raises:
        NotFound: The path is unsafe, missing, or not a regular file.
    """
    directory = os.fspath(directory)
    requested = os.fspath(path)
    joined = safe_join(directory, requested)
    if joined is None:
        raise NotFound()
    ctx = _cv_ctx.get(None)
    if ctx is not None and not os.path.isabs(joined):
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
