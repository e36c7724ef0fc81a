"""Writes the seed corpus: a few realistic, valid inputs per target (``tests/corpus/<target>/seed-*``).

Run ``python -m tests.fuzz.seeds`` after changing how a target decodes its input. Seeds are inputs in the
target's format (see ``targets.Reader``): control bytes, then 0x1E-separated fields.
"""

from __future__ import annotations

from pathlib import Path

from .targets import (
    BUILD_ENDPOINTS,
    CHARSETS,
    JSON_TYPES,
    LENGTH_MODES,
    METHODS,
    RANGE_ROUTES,
    ROUTE_PATHS,
    SEP,
)

CORPUS_ROOT = Path(__file__).resolve().parents[1] / "corpus"


def enc(control: bytes | list[int], *fields: bytes) -> bytes:
    return bytes(control) + SEP + SEP.join(fields)


def _method(name: str) -> int:
    return METHODS.index(name)


def seeds() -> dict[str, dict[str, bytes]]:
    get, post, options = _method("GET"), _method("POST"), _method("OPTIONS")
    crlf = b"\r\n"
    boundary = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
    browser_body = crlf.join([
        b"--" + boundary,
        b'Content-Disposition: form-data; name="title"',
        b"",
        b"Hello, world",
        b"--" + boundary,
        b'Content-Disposition: form-data; name="upload"; filename="r\xc3\xa9sum\xc3\xa9.txt"',
        b"Content-Type: text/plain",
        b"",
        b"line one\r\nline two",
        b"--" + boundary + b"--",
        b"",
    ])
    return {
        "router": {
            "int": enc([get], b"/int/42", b"x=1"),
            "signed": enc([get], b"/signed/-17"),
            "float": enc([get], b"/float/1.5e-7"),
            "sfloat": enc([get], b"/sfloat/-0.25"),
            "uuid": enc([get], b"/uuid/123E4567-E89B-12D3-A456-426614174000"),
            "string": enc([get], b"/str/caf%C3%A9"),
            "path": enc([get], b"/path/a/b/../c.txt"),
            "any": enc([get], b"/any/dark%20blue"),
            "multi": enc([get], b"/multi/3/x/y/z"),
            "fixed": enc([get], b"/fixed/0042"),
            "minmax": enc([get], b"/minmax/abcdefgh"),
            "slash-redirect": enc([get], b"/dir/name"),
            "old-redirect": enc([get], b"/old/5", b"keep=1"),
            "blueprint": enc([get], b"/bp/9"),
            "traversal": enc([get], b"/files/..%2fsecret.txt"),
            "options": enc([options], b"/int/1"),
            "method-not-allowed": enc([get], b"/post-only"),
            "wild": enc([get], b"/anything/wild"),
        },
        "url_build": {
            name: enc([BUILD_ENDPOINTS.index(name), 0, 1], value, b"page", b"2")
            for name, value in [
                ("conv_int", b"\x01\x00"), ("conv_signed", b"\x05"), ("conv_float", b"\x3f\xf8" + bytes(6)),
                ("conv_sfloat", b"\xbf\xf8" + bytes(6)), ("conv_uuid", bytes(range(16))),
                ("conv_string", "caf\u00e9 ?#%".encode()), ("conv_path", b"dir/sub dir/file.txt"),
                ("conv_any", b"ab"), ("conv_minmax", b"abc"), ("conv_exact", b"xyz"), ("bp.item", b"\x07"),
                ("conv_wild", b"w"), ("conv_slashed", b"d"), ("conv_fixed", b"\x00\x2a"),
                ("conv_bounded", b"\x63"),
            ]
        } | {"multi": enc([BUILD_ENDPOINTS.index("conv_multi"), 0], b"\x03", b"seg", b"a/b")},
        "query": {
            "simple": enc([0], b"a=1&b=2&a=3"),
            "encoded": enc([0], b"q=caf%C3%A9+au+lait&empty=&flag&x=%zz"),
            "raw-utf8": enc([1], "k=\u00e9t\u00e9".encode()),
            "many": enc([0, 0, 250], b"k=v&"),
        },
        "urlencoded": {
            "simple": enc([0, 0, 0, 0], b"name=Ada&lang=py&lang=rs"),
            "latin1": enc([CHARSETS.index(b"latin-1"), 0, 0, 0], b"name=Jos%E9"),
            "chunked": enc([1, 1, LENGTH_MODES.index("chunked"), 1], b"a=1&b=%C3%A9"),
            "values": enc([0, 2, 0, 0], b"x=1"),
            "data": enc([0, 3, 0, 0], b"raw body"),
            "big": enc([0, 0, 0, 0, 0x01, 0x00], b"field=" + b"x" * 1000),
        },
        "multipart": {
            "browser": enc([0, 0, 0], b"multipart/form-data; boundary=" + boundary, browser_body),
            "structured": enc([0, 0, 1, 2, 0, 0, 1], b"b0und", b"title", b"hello", b"file", b"data\x00bytes",
                              b"a.txt"),
            "latin1-filename": enc([1, 2, 2, 1, 0, 5], b"bnd", b"doc", b"%PDF", b"r\xe9sum\xe9"),
            "rfc2231": enc([0, 3, 1, 1, 0, 3], b"bnd", b"doc", b"content", "na\u00efve.txt".encode()),
            "thousand-parts": enc([0, 0, 1, 1, 2, 0, 0x03, 0xe8], b"bnd", b"f", b"v"),
            "truncated": enc([0, 0, 1, 1, 16, 0, 0, 30], b"bnd", b"f", b"value"),
        },
        "cookies": {
            "raw": enc([1], b"sid=abc; theme=dark; empty=; quoted=\"a b\""),
            "roundtrip": enc([0, 2], b"sid", b"abc", b"note", "caf\u00e9; \"x\"\\".encode(), b"e", b""),
            "junk": enc([1], b";;=; =x; a=\"\\777\"; \xff\xfe=1"),
        },
        "json": {
            "object": enc([0, 0, 0, 0], b'{"a": [1, 2.5, null, true], "b": "caf\\u00e9"}'),
            "deepish": enc([0, 0, 1, 0, 50, 0], b"1"),
            "not-json": enc([JSON_TYPES.index(b"text/plain"), 0, 0, 0], b"{}"),
            "silent": enc([0, 1, 0, 0], b"{bad"),
            "bignum": enc([0, 0, 0, 0], b"[1e999, -0.0, 123456789012345678901234567890]"),
        },
        "range": {
            "single": enc([0, 0, 0], b"bytes=0-99"),
            "multi": enc([RANGE_ROUTES.index(b"/file-mem"), 0, 0], b"bytes=0-9,20-29,-5"),
            "if-range": enc([0, 0, 0], b"bytes=10-", b"{etag}"),
            "not-modified": enc([2, 0], b"", b"", b"{etag}"),
            "since": enc([1, 0], b"", b"", b"", b"{date}"),
            "precondition": enc([0, 0], b"", b"", b"", b"", b'"other"'),
            "many-ranges": enc([0, 0, 1, 0, 200], b"bytes=0-0,2-2"),
            "unsatisfiable": enc([3, 0, 0], b"bytes=5000-"),
        },
        "session": {
            "junk": enc([0], b"eyJuIjoxfQ.bad.sig"),
            "tampered": enc([1, 0, 0, 0, 5, 1]),
            "foreign": enc([2, 1], b"mallory"),
            "fallback": enc([3], b"alice"),
            "expired": enc([4]),
            "untouched": enc([5]),
        },
        "request": {
            "form-post": enc([post, 1, 2, 0, 1, 0], b"", b"a=1", b"application/x-www-form-urlencoded", b"1",
                             b"x=y"),
            "stream-upload": enc([post, 4, 1, 0, 0, 1], b"", b"", b"text/plain", b"0123456789" * 20),
            "headers": enc([get, 12, 3, 9, 10, 6, 1, 0], b"", b"", b"curl/8", b"*/*", b"example.org:8080"),
            "raw-path": enc([get, 255, 0], b"/%ff%fe/../x", b"q=%00"),
        },
    }


def regressions() -> dict[str, dict[str, bytes]]:
    """Minimal inputs for the bugs fuzzing found (``crash-<bug>``), written in the targets' format so they
    stay readable; crash files libFuzzer writes itself are named ``crash-<sha1>``."""
    get = _method("GET")
    multipart = b"multipart/form-data; boundary=b"
    deep = [0, 0, 1, 0x13, 0x88, 0]  # application/json, depth 5000, no repeat
    return {
        # json.loads raises RecursionError (not ValueError) past ~1000 levels: 500.
        "json": {"deep-nesting": enc(deep, b"1"), "deep-nesting-silent": enc([0, 1, *deep[2:]], b"1")},
        # codecs whose decoder raises UnicodeError (not UnicodeDecodeError), or refuses errors="replace".
        "urlencoded": {"idna-charset": enc([CHARSETS.index(b"idna"), 0, 0, 0], b"a=%78n--")},
        "multipart": {
            "idna-part-charset": enc([0, 0, 0], multipart, b'--b\r\nContent-Disposition: form-data; name="a"\r\n'
                                     b"Content-Type: text/plain; charset=idna\r\n\r\nxn--\r\n--b--\r\n"),
            "idna-filename-star": enc([0, 0, 0], multipart, b'--b\r\nContent-Disposition: form-data; name="a"; '
                                      b"filename*=idna''x%ff\r\n\r\nv\r\n--b--\r\n"),
            "punycode-filename-star": enc([0, 0, 0], multipart, b'--b\r\nContent-Disposition: form-data; '
                                          b"name=\"a\"; filename*=punycode''%ff\r\n\r\nv\r\n--b--\r\n"),
            "idna-boundary-star": enc([0, 0, 0], b"multipart/form-data; boundary*=idna''%ff", b"--b\r\n"),
            "nul-charset-boundary-star": enc([0, 0, 0], b"multipart/form-data; boundary*=a\x00''%ff", b"--b\r\n"),
        },
        # a redirect copies the raw query string into Location; a NUL in it makes Headers raise: 500.
        "router": {"redirect-nul-query": enc([get], b"/old/5", b"k\x00"),
                   "slash-redirect-nul-query": enc([get], b"/dir/name", b"\x00")},
        "request": {"redirect-nul-query": enc([get, ROUTE_PATHS.index(b"/old/3"), 0], b"\x00")},
    }


def main() -> None:
    for target, items in seeds().items():
        folder = CORPUS_ROOT / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, data in items.items():
            (folder / f"seed-{name}").write_bytes(data)
        print(f"{target}: {len(items)} seeds")
    for target, items in regressions().items():
        for name, data in items.items():
            (CORPUS_ROOT / target / f"crash-{name}").write_bytes(data)
        print(f"{target}: {len(items)} regression inputs")


if __name__ == "__main__":
    main()
