"""File responses: the static route, send_file and send_from_directory.

Covers validators (ETag, Last-Modified), conditional requests (304, 412), byte ranges (206, 416) as Flask
answers them (Werkzeug's ``send_file``), streaming without reading whole files, ``wsgi.file_wrapper``,
Content-Disposition, and path traversal.
Request-level tests run over WSGI and ASGI (``protocol``).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wsgi import FileWrapper

from ampulla import Ampulla
from ampulla.exceptions import NotFound
from ampulla.http import http_date, parse_date
from ampulla.sendfile import CHUNK_SIZE, send_file, send_from_directory
from ampulla.testing import AmpullaClient, EnvironBuilder

CONTENT = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes
MTIME = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def static(app: Ampulla) -> Path:
    folder = Path(app.root_path) / "static"
    folder.mkdir()
    (folder / "data.txt").write_bytes(CONTENT)
    (folder / "style.css").write_text("body { color: red }", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "app.js").write_text("console.log(1)", encoding="utf-8")
    os.utime(folder / "data.txt", (MTIME.timestamp(), MTIME.timestamp()))
    # Files outside the static folder that traversal must not reach.
    (Path(app.root_path) / "secret.txt").write_text("SECRET", encoding="utf-8")
    (Path(app.root_path) / "static-secret").mkdir()
    (Path(app.root_path) / "static-secret" / "x.txt").write_text("SECRET", encoding="utf-8")
    return folder


@pytest.fixture
def static_client(app: Ampulla, static: Path, protocol: str) -> AmpullaClient:
    return app.test_client(protocol=protocol)


# ---------------------------------------------------------------------------------------------- static route


def test_static_file_is_served_with_validators(static_client: AmpullaClient) -> None:
    response = static_client.get("/static/data.txt")
    assert response.status_code == 200
    assert response.data == CONTENT
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"] == "Fri, 01 Mar 2024 12:00:00 GMT"
    assert re.fullmatch(r'"[0-9.]+-36-[0-9]+"', response.headers["ETag"])  # Werkzeug's: mtime-size-checksum
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Disposition"] == "inline; filename=data.txt"


@pytest.mark.parametrize(
    ("path", "mimetypes"),
    [
        ("/static/style.css", {"text/css"}),
        # The mimetypes module's answer depends on the Python version and the system's mime.types.
        ("/static/sub/app.js", {"text/javascript", "application/javascript"}),
    ],
)
def test_static_mimetypes_and_subfolders(static_client: AmpullaClient, path: str, mimetypes: set[str]) -> None:
    response = static_client.get(path)
    assert response.status_code == 200
    assert response.mimetype in mimetypes


def test_static_max_age_setting(app: Ampulla, static: Path, protocol: str) -> None:
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = timedelta(hours=1)
    response = app.test_client(protocol=protocol).get("/static/data.txt")
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    expires = parse_date(response.headers["Expires"])
    assert expires is not None
    assert abs((expires - datetime.now(UTC)).total_seconds() - 3600) < 60


def test_send_file_and_blueprint_static_files_ask_get_send_file_max_age(app: Ampulla, static: Path) -> None:
    from ampulla import Blueprint

    class Assets(Blueprint):
        def get_send_file_max_age(self, filename: str | None) -> int | None:
            return 100 if filename == "data.txt" else super().get_send_file_max_age(filename)

    assets = Assets("assets", __name__, static_folder=str(static), static_url_path="/assets")
    app.register_blueprint(assets)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 60
    with app.test_request_context():
        response = send_file(static / "data.txt")
        assert (response.cache_control.max_age, response.direct_passthrough) == (60, True)
        response.close()
        response = assets.send_static_file("data.txt")
        assert response.cache_control.max_age == 100
        response.close()
        response = assets.send_static_file("style.css")
        assert response.cache_control.max_age == 60
        response.close()


def test_head_sends_headers_without_the_body(static_client: AmpullaClient) -> None:
    response = static_client.head("/static/data.txt")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert "ETag" in response.headers


def test_missing_static_file_and_folder_are_404(static_client: AmpullaClient) -> None:
    assert static_client.get("/static/nope.txt").status_code == 404
    assert static_client.get("/static/sub").status_code == 404
    assert static_client.get("/static/sub/").status_code == 404
    assert static_client.get("/static/data.txt/x").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/..%5csecret.txt",
        "/static/sub%5c..%5c..%5csecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/data.txt%00.png",
        "/static/%00",
        "/static/../static-secret/x.txt",
        "/static/C:secret.txt",
        "/static/c:/windows/win.ini",
    ],
)
def test_static_path_traversal_is_404(static_client: AmpullaClient, path: str) -> None:
    response = static_client.get(path)
    if response.status_code == 308:
        # "/static//etc/passwd" is redirected to the merged path, which stays inside the folder.
        assert response.headers["Location"].startswith("http://localhost/static/")
        response = static_client.get(response.headers["Location"])
    assert response.status_code == 404
    assert b"SECRET" not in response.data


def test_symlink_pointing_out_of_the_folder_is_404(app: Ampulla, static: Path, protocol: str) -> None:
    (static / "escape.txt").symlink_to(Path(app.root_path) / "secret.txt")
    (static / "escape-dir").symlink_to(Path(app.root_path) / "static-secret", target_is_directory=True)
    (static / "inside.txt").symlink_to(static / "data.txt")
    client = app.test_client(protocol=protocol)
    assert client.get("/static/escape.txt").status_code == 404
    assert client.get("/static/escape-dir/x.txt").status_code == 404
    inside = client.get("/static/inside.txt")
    assert inside.status_code == 200
    assert inside.data == CONTENT
    assert inside.headers["Content-Disposition"] == "inline; filename=inside.txt"


def test_static_folder_next_to_a_similar_named_folder(app: Ampulla, static: Path, protocol: str) -> None:
    # "static-secret" starts with "static": a prefix check would let it through.
    (static / "link").symlink_to(Path(app.root_path) / "static-secret" / "x.txt")
    assert app.test_client(protocol=protocol).get("/static/link").status_code == 404


# ---------------------------------------------------------------------------------------------- conditional


def test_if_none_match_gives_304(static_client: AmpullaClient) -> None:
    etag = static_client.get("/static/data.txt").headers["ETag"]
    response = static_client.get("/static/data.txt", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert "Content-Length" not in response.headers
    assert "Content-Type" not in response.headers
    weak = static_client.get("/static/data.txt", headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    assert static_client.get("/static/data.txt", headers={"If-None-Match": "*"}).status_code == 304
    other = static_client.get("/static/data.txt", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200
    assert other.data == CONTENT


def test_if_modified_since_gives_304(static_client: AmpullaClient) -> None:
    same = static_client.get("/static/data.txt", headers={"If-Modified-Since": http_date(MTIME)})
    assert same.status_code == 304
    later = static_client.get("/static/data.txt", headers={"If-Modified-Since": http_date(MTIME + timedelta(days=1))})
    assert later.status_code == 304
    earlier = static_client.get(
        "/static/data.txt", headers={"If-Modified-Since": http_date(MTIME - timedelta(seconds=1))}
    )
    assert earlier.status_code == 200
    junk = static_client.get("/static/data.txt", headers={"If-Modified-Since": "yesterday-ish"})
    assert junk.status_code == 200
    # Werkzeug's parse_date raises OverflowError on a year past datetime's range: a full answer, not a 500.
    huge = static_client.get("/static/data.txt", headers={"If-Modified-Since": "Mon, 01 Jan 99999999999 00:00:00 GMT"})
    assert (huge.status_code, huge.data) == (200, CONTENT)


def test_etag_changes_when_the_file_changes(app: Ampulla, static: Path, protocol: str) -> None:
    client = app.test_client(protocol=protocol)
    etag = client.get("/static/data.txt").headers["ETag"]
    (static / "data.txt").write_bytes(CONTENT + b"!")
    response = client.get("/static/data.txt", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.data == CONTENT + b"!"
    assert response.headers["ETag"] != etag


def test_failed_if_match_gives_412(static_client: AmpullaClient) -> None:
    etag = static_client.get("/static/data.txt").headers["ETag"]
    assert static_client.get("/static/data.txt", headers={"If-Match": etag}).status_code == 200
    assert static_client.get("/static/data.txt", headers={"If-Match": '"other"'}).status_code == 412
    assert static_client.get("/static/data.txt", headers={"If-Match": f'"other", {etag}'}).status_code == 200
    # As in Flask, If-Unmodified-Since is not evaluated.
    old = http_date(MTIME - timedelta(days=1))
    assert static_client.get("/static/data.txt", headers={"If-Unmodified-Since": old}).status_code == 200


# ---------------------------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=10-19", 10, 20),
        ("bytes=30-", 30, 36),
        ("bytes=-6", 30, 36),
        ("bytes=30-1000", 30, 36),
        ("bytes=35-35", 35, 36),
        ("BYTES = 0-0", 0, 1),
    ],
)
def test_single_range_gives_206(static_client: AmpullaClient, header: str, start: int, stop: int) -> None:
    response = static_client.get("/static/data.txt", headers={"Range": header})
    assert response.status_code == 206
    assert response.data == CONTENT[start:stop]
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/36"
    assert response.headers["Content-Length"] == str(stop - start)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "header",
    [
        # Past the end, or a suffix longer than the file.
        "bytes=36-",
        "bytes=100-200",
        "bytes=-1000",
        "bytes=" + "9" * 5000 + "-",
        # Several ranges (Werkzeug answers one range only): the response can never grow past the file.
        "bytes=0-1, 10-12, -2",
        "bytes=0-5, 3-9, 0-0",
        "bytes=" + ",".join(["0-0"] * 200),
        # Malformed, or another unit.
        "bytes=abc",
        "bytes=5-2",
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=",
        "pages=1-2",
        "bytes 0-1",
        "bytes=0x0-1",
        "\u00e9",
    ],
)
def test_range_that_is_not_one_satisfiable_byte_range_gives_416(static_client: AmpullaClient, header: str) -> None:
    response = static_client.get("/static/data.txt", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */36"
    assert b"0123" not in response.data


def test_if_range_decides_whether_the_range_applies(static_client: AmpullaClient) -> None:
    full = static_client.get("/static/data.txt")
    etag = full.headers["ETag"]
    last_modified = full.headers["Last-Modified"]
    for if_range, status in [
        (etag, 206),
        (last_modified, 206),
        ('"stale"', 200),
        (http_date(MTIME - timedelta(days=1)), 200),
        ("junk", 200),
        ("Mon, 01 Jan 99999999999 00:00:00 GMT", 200),
    ]:
        response = static_client.get("/static/data.txt", headers={"Range": "bytes=0-1", "If-Range": if_range})
        assert response.status_code == status, if_range
        assert response.data == (b"01" if status == 206 else CONTENT)


def test_head_with_a_range_gives_the_206_headers(static_client: AmpullaClient) -> None:
    response = static_client.head("/static/data.txt", headers={"Range": "bytes=0-1"})
    assert (response.status_code, response.data) == (206, b"")
    assert response.headers["Content-Length"] == "2"
    assert response.headers["Content-Range"] == "bytes 0-1/36"


def test_empty_file(app: Ampulla, static: Path, protocol: str) -> None:
    (static / "empty.txt").write_bytes(b"")
    client = app.test_client(protocol=protocol)
    response = client.get("/static/empty.txt")
    assert (response.status_code, response.data, response.headers["Content-Length"]) == (200, b"", "0")
    # As in Flask, a range on an empty file is not processed: the (empty) file is sent.
    assert client.get("/static/empty.txt", headers={"Range": "bytes=0-"}).status_code == 200


# ---------------------------------------------------------------------------------------------- send_file


@pytest.fixture
def tracked_files(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every file object send_file opens, to check they get closed."""
    import builtins

    opened: list[Any] = []
    real_open = builtins.open

    def tracking_open(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        opened.append(f)
        return f

    monkeypatch.setattr("werkzeug.utils.open", tracking_open, raising=False)
    return opened


def test_send_file_path_relative_to_root_path(app: Ampulla, protocol: str) -> None:
    Path(app.root_path, "reports").mkdir()
    Path(app.root_path, "reports", "q1.csv").write_text("a,b\n1,2\n", encoding="utf-8")

    @app.route("/report")
    def report() -> Any:
        return send_file("reports/q1.csv", as_attachment=True)

    response = app.test_client(protocol=protocol).get("/report")
    assert response.data == b"a,b\n1,2\n"
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=q1.csv"


def test_files_are_closed_after_the_response(
    app: Ampulla, static: Path, protocol: str, tracked_files: list[Any]
) -> None:
    client = app.test_client(protocol=protocol)
    client.get("/static/data.txt")
    client.head("/static/data.txt")
    client.get("/static/data.txt", headers={"Range": "bytes=0-1"})
    client.get("/static/data.txt", headers={"Range": "bytes=0-1,3-4"})
    client.get("/static/data.txt", headers={"Range": "bytes=100-"})
    client.get("/static/data.txt", headers={"If-Modified-Since": http_date(MTIME)})
    client.get("/static/data.txt", headers={"If-Match": '"x"'})
    assert len(tracked_files) == 7
    assert all(f.closed for f in tracked_files)


def test_large_files_are_streamed_in_chunks(app: Ampulla, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = os.urandom(CHUNK_SIZE * 3 + 123)
    big.write_bytes(data)
    with app.test_request_context("/"):
        response = send_file(big)
        body = response.response
        assert isinstance(body, FileWrapper)
        assert response.is_streamed
        chunks = list(body)
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 123]
    assert b"".join(chunks) == data
    body.close()
    assert body.file.closed


def test_wsgi_file_wrapper_is_used_for_whole_files_only(app: Ampulla, static: Path) -> None:
    wrapped: list[Any] = []

    class ServerFileWrapper:
        def __init__(self, file: Any, block_size: int) -> None:
            wrapped.append(file)
            self.file = file

        def __iter__(self) -> Iterator[bytes]:
            return iter(lambda: self.file.read(8192), b"")

        def close(self) -> None:
            self.file.close()

    def call(headers: dict[str, str]) -> bytes:
        environ = EnvironBuilder(app, "/static/data.txt", headers=headers).get_environ()
        environ["wsgi.file_wrapper"] = ServerFileWrapper
        iterable = app(environ, lambda status, headers, exc_info=None: None)
        try:
            return b"".join(iterable)
        finally:
            iterable.close()  # type: ignore[attr-defined]

    returned: list[Any] = []

    def call_returning(headers: dict[str, str]) -> Any:
        environ = EnvironBuilder(app, "/static/data.txt", headers=headers).get_environ()
        environ["wsgi.file_wrapper"] = ServerFileWrapper
        iterable = app(environ, lambda status, headers, exc_info=None: None)
        returned.append(iterable)
        return iterable

    whole = call_returning({})
    assert isinstance(whole, ServerFileWrapper)  # handed to the server as is: it may use sendfile(2)
    assert b"".join(whole) == CONTENT
    whole.close()
    assert wrapped[0].closed
    assert call({"Range": "bytes=1-2"}) == b"12"
    # A range is the wrapper's file sought and cut short: the server gets Ampulla's iterable, not its wrapper.
    assert not isinstance(call_returning({"Range": "bytes=1-2"}), ServerFileWrapper)
    returned[-1].close()


def test_send_file_object_needs_a_name_or_mimetype(app: Ampulla) -> None:
    with app.test_request_context("/"):
        with pytest.raises(TypeError, match="download_name"):
            send_file(io.BytesIO(b"data"))
        response = send_file(io.BytesIO(b"data"), mimetype="application/x-thing")
        assert response.mimetype == "application/x-thing"
        assert "Content-Disposition" not in response.headers
        assert "ETag" not in response.headers  # no path to derive one from


def test_send_file_object_supports_ranges(app: Ampulla, protocol: str) -> None:
    @app.route("/")
    def index() -> Any:
        return send_file(io.BytesIO(CONTENT), download_name="report.pdf", etag="v1")

    client = app.test_client(protocol=protocol)
    full = client.get("/")
    assert full.data == CONTENT
    assert full.mimetype == "application/pdf"
    assert full.headers["ETag"] == '"v1"'
    assert full.headers["Content-Length"] == "36"
    part = client.get("/", headers={"Range": "bytes=-3"})
    assert (part.status_code, part.data) == (206, b"xyz")
    assert client.get("/", headers={"If-None-Match": '"v1"'}).status_code == 304


def test_send_file_refuses_text_mode_files(app: Ampulla, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("x", encoding="utf-8")
    with app.test_request_context("/"), open(path, encoding="utf-8") as f, pytest.raises(ValueError, match="binary"):
        send_file(f, mimetype="text/plain")  # type: ignore[arg-type]


def test_send_file_missing_path_raises(app: Ampulla, tmp_path: Path) -> None:
    with app.test_request_context("/"), pytest.raises(FileNotFoundError):
        send_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "attachment; filename=report.pdf"),
        ("my report.pdf", 'attachment; filename="my report.pdf"'),
        ('say "hi".txt', 'attachment; filename="say \\"hi\\".txt"'),
        ("résumé.pdf", "attachment; filename=resume.pdf; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"),
        ("日本語.txt", "attachment; filename=.txt; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt"),
    ],
)
def test_content_disposition(app: Ampulla, name: str, expected: str) -> None:
    with app.test_request_context("/"):
        response = send_file(io.BytesIO(b"x"), download_name=name, as_attachment=True)
    assert response.headers["Content-Disposition"] == expected


def test_download_name_cannot_add_a_header(app: Ampulla) -> None:
    with app.test_request_context("/"), pytest.raises(ValueError, match="newline"):
        send_file(io.BytesIO(b"x"), download_name="evil\r\nSet-Cookie: x=1.txt", as_attachment=True)


def test_etag_and_last_modified_options(app: Ampulla, static: Path) -> None:
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    with app.test_request_context("/"):
        response = send_file(static / "data.txt", etag=False, last_modified=when, max_age=lambda path: 60)
        response.close()
    assert "ETag" not in response.headers
    assert response.headers["Last-Modified"] == "Thu, 02 Jan 2020 03:04:05 GMT"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    with app.test_request_context("/"):
        response = send_file(static / "data.txt", max_age=0, conditional=False)
        response.close()
    assert response.headers["Cache-Control"] == "no-cache, max-age=0"
    with app.test_request_context("/", headers={"If-None-Match": "*", "Range": "bytes=0-1"}):
        unconditional = send_file(static / "data.txt", conditional=False)
        assert unconditional.get_data() == CONTENT
    assert unconditional.status_code == 200
    assert "Accept-Ranges" not in unconditional.headers


@pytest.mark.parametrize(
    ("name", "mimetype", "encoding"),
    [
        ("a.tar.gz", "application/x-tar", "gzip"),
        ("a.svg", "image/svg+xml", None),
        ("a.unknownext", "application/octet-stream", None),
        ("noext", "application/octet-stream", None),
        ("a.json", "application/json", None),
    ],
)
def test_mimetype_guess(app: Ampulla, name: str, mimetype: str, encoding: str | None) -> None:
    with app.test_request_context("/"):
        response = send_file(io.BytesIO(b"x"), download_name=name)
        attachment = send_file(io.BytesIO(b"x"), download_name=name, as_attachment=True)
    assert response.mimetype == mimetype
    assert response.headers.get("Content-Encoding") == encoding
    assert "Content-Encoding" not in attachment.headers  # a download is saved as it is, not unpacked


def test_send_file_outside_a_request_has_no_conditional_handling(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc")
    response = send_file(path)
    assert response.status_code == 200
    assert response.get_data() == b"abc"


# ---------------------------------------------------------------------------------------------- send_from_directory


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "sub/../../secret.txt",
        "/etc/passwd",
        str(Path("/") / "etc" / "passwd"),
        "..\\secret.txt",
        "sub\\..\\..\\secret.txt",
        "data.txt\x00.png",
        "C:\\Windows\\win.ini",
        "c:secret.txt",
        "..",
        ".",
        "",
        "sub",
        "missing.txt",
    ],
)
def test_send_from_directory_refuses_paths_leaving_the_directory(app: Ampulla, static: Path, path: str) -> None:
    with app.test_request_context("/"), pytest.raises(NotFound):
        send_from_directory(static, path)


def test_send_from_directory_relative_directory_and_kwargs(app: Ampulla, static: Path, protocol: str) -> None:
    @app.route("/download/<path:name>")
    def download(name: str) -> Any:
        return send_from_directory("static", name, as_attachment=True, download_name="renamed.txt")

    client = app.test_client(protocol=protocol)
    response = client.get("/download/sub/app.js")
    assert response.data == b"console.log(1)"
    assert response.headers["Content-Disposition"] == "attachment; filename=renamed.txt"
    assert client.get("/download/../secret.txt").status_code == 404
    assert client.get("/download/%2e%2e/secret.txt").status_code == 404


def test_send_from_directory_with_pathlike(app: Ampulla, static: Path) -> None:
    with app.test_request_context("/"):
        response = send_from_directory(static, Path("sub") / "app.js")
        assert response.get_data() == b"console.log(1)"
