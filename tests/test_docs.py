"""The user guide proves itself: every ```python block of every docs/*.md page runs.

Each page's blocks run in order, in one namespace, inside a temporary working directory, as the body of a
module registered in ``sys.modules`` (so ``Ampulla(__name__)`` finds its root path there). A block preceded,
on the line right before its fence, by ``<!-- skip -->`` is only compiled, not run: use that for fragments
that need a server, Redis or PostgreSQL.

Two more checks keep the guide honest: links between pages (and their ``#anchors``) resolve, and
docs/configuration.md documents every key of ``Ampulla.default_config``.
"""

from __future__ import annotations

import gc
import linecache
import os
import re
import sys
import textwrap
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
SKIP_MARKER = "<!-- skip -->"
_FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^`\s]*)")


@dataclass
class Block:
    """One fenced code block of a page."""

    number: int  # 1-based among the page's python blocks
    line: int  # 1-based line of the opening fence
    code: str
    skipped: bool

    @property
    def first_line(self) -> str:
        for line in self.code.splitlines():
            if line.strip():
                return line.strip()
        return ""


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, in order, with their skip markers.

    Raises:
        ValueError: A fence is not closed, or a skip marker is not followed by a python block.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == SKIP_MARKER:
            following = _FENCE_RE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if following is None or following.group("info") != "python":
                raise ValueError(f"line {i + 1}: {SKIP_MARKER} must be on the line right before a ```python fence")
        match = _FENCE_RE.match(line)
        if match is None:
            i += 1
            continue
        fence, indent, info = match.group("fence"), match.group("indent"), match.group("info")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence[0] * len(fence)) and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"line {start + 1}: the code fence is never closed")
        i += 1
        if info == "python":
            skipped = start > 0 and lines[start - 1].strip() == SKIP_MARKER
            code = textwrap.dedent("\n".join(body)) + "\n"
            blocks.append(Block(len(blocks) + 1, start + 1, code, skipped))
    return blocks


PAGES = sorted(DOCS_DIR.glob("*.md"))


def _module_name(page: Path) -> str:
    return "docs_" + re.sub(r"\W", "_", page.stem)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    name = _module_name(page)
    module = types.ModuleType(name)
    module.__file__ = str(tmp_path / f"{name}.py")
    namespace: dict[str, Any] = module.__dict__
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, name, module)
    environ = dict(os.environ)  # pages may set variables (e.g. to show from_prefixed_env)
    try:
        for block in blocks:
            where = f"{page.name}: block {block.number} (line {block.line}, starting {block.first_line!r})"
            filename = f"<{page.name} block {block.number}>"
            # Tracebacks then show the failing line of the example.
            linecache.cache[filename] = (len(block.code), None, block.code.splitlines(True), filename)
            try:
                code = compile(block.code, filename, "exec")
            except SyntaxError as e:
                pytest.fail(f"{where} does not compile: {e}", pytrace=False)
            if block.skipped:
                continue
            failure = None
            try:
                exec(code, namespace)
            except (KeyboardInterrupt, pytest.fail.Exception):
                raise
            except BaseException as e:
                tb = e.__traceback__.tb_next if e.__traceback__ is not None else None  # drop the exec() frame
                failure = f"{where} failed:\n" + "".join(traceback.format_exception(type(e), e, tb))
            if failure is not None:
                pytest.fail(failure, pytrace=False)
    finally:
        os.environ.clear()
        os.environ.update(environ)
        namespace.clear()
        # Objects the page left unclosed are finalised here, so their warnings fail this page's test.
        gc.collect()


def test_pages_exist() -> None:
    assert PAGES, f"no Markdown pages found in {DOCS_DIR}"


def test_block_parser() -> None:
    text = textwrap.dedent(
        """\
        Intro.

        ```python
        x = 1
        ```

        <!-- skip -->
        ```python
        serve_forever()
        ```

        ```sh
        echo not python
        ```

        1. In a list:

           ```python
           y = x + 1
           ```
        """
    )
    blocks = python_blocks(text)
    assert [(b.number, b.line, b.skipped, b.first_line) for b in blocks] == [
        (1, 3, False, "x = 1"),
        (2, 8, True, "serve_forever()"),
        (3, 18, False, "y = x + 1"),
    ]
    assert blocks[2].code == "y = x + 1\n"
    with pytest.raises(ValueError, match="right before"):
        python_blocks("<!-- skip -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\nx = 1\n")


def test_configuration_page_lists_every_setting() -> None:
    from ampulla import Ampulla

    page = DOCS_DIR / "configuration.md"
    if not page.exists():
        pytest.skip("docs/configuration.md is not written")
    text = page.read_text(encoding="utf-8")
    missing = [key for key in (*Ampulla.default_config, "SYNC_VIEW_THREADS") if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not document: {', '.join(missing)}"


_LINK_RE = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")


def _prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks, with inline code spans removed."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE_RE.match(line)
        if match is not None and (fence is None or line.strip().strip(fence[0]) == ""):
            fence = match.group("fence") if fence is None else None
            continue
        if fence is None:
            lines.append(line)
    return lines


def _anchors(text: str) -> set[str]:
    """GitHub-style anchors of a page's headings."""
    anchors: set[str] = set()
    for line in _prose_lines(text):
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_links_resolve(page: Path) -> None:
    broken = []
    prose = _CODE_SPAN_RE.sub("", "\n".join(_prose_lines(page.read_text(encoding="utf-8"))))
    for match in _LINK_RE.finditer(prose):
        target = match.group("target")
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with this anchor")
    assert not broken, f"{page.name} has broken links: {'; '.join(broken)}"
