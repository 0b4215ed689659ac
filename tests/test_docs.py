"""Docs are executed: every ``stlspec`` code block in the docs compiles (or fails as it says it should).

Conventions for fenced code blocks in ``docs/**/*.md`` and ``README.md``:

* A block whose info string starts with ``stlspec`` is a *complete* ``.stl`` file. It is compiled with
  :func:`stlspec.compile_text` as if it were a file in the repository root, so a block can use the example
  vocabulary with ``include "examples/vocab.stl"`` — real syntax a reader can run from a checkout, not a
  test-only convention. It must compile without errors and without warnings.
* ``title="error E201"`` (rendered by mkdocs-material as the block's caption) marks an error example: the
  block must fail with exactly that error code (the set of error codes reported is ``{"E201"}``).
* ``title="warning W101"`` marks a warning example: the block compiles, and the checker's warnings are
  exactly that code.
* Fragments that are not complete files (a single formula, a shell session, the keyword list) use another
  language tag (``text``, ``console``) and are not compiled.

The last test builds the site with ``mkdocs build --strict`` (marked ``slow``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import stlspec
from stlspec.diagnostics import CODES, StlError

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = sorted((REPO / "docs").rglob("*.md")) + [p for p in [REPO / "README.md"] if p.exists()]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
_EXPECT = re.compile(r"^(?P<kind>error|warning) (?P<code>[EW]\d{3})$")


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def lang(self) -> str:
        return self.info.split(maxsplit=1)[0] if self.info.strip() else ""

    @property
    def expect(self) -> tuple[str, str] | None:
        """``("error", "E201")`` / ``("warning", "W101")`` from ``title="…"``, or ``None``."""
        m = _TITLE.search(self.info)
        if not m:
            return None
        e = _EXPECT.match(m.group("title").strip())
        return (e.group("kind"), e.group("code")) if e else None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file (also indented ones, e.g. inside admonitions)."""
    rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").strip()
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        blocks.append(Block(rel, i + 1, info, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def stlspec_blocks() -> list[Block]:
    return [b for p in DOC_FILES for b in code_blocks(p) if b.lang == "stlspec"]


BLOCKS = stlspec_blocks()


def compile_block(block: Block):
    """Compile a block as a file in the repository root; return the checked program's warnings."""
    path = str(REPO / "docs-block.stl")
    core = stlspec.compile_text(block.text, path=path)
    # compile_text returns the core IR only; warnings come from the checker.
    checked = stlspec.check(stlspec.parse(block.text, path=path))
    return core, checked.warnings


def test_docs_have_stlspec_blocks():
    assert len(BLOCKS) >= 30, "the language reference should be full of examples"
    pages = {b.doc for b in BLOCKS}
    for page in ("docs/index.md", "docs/getting-started.md", "docs/errors.md"):
        assert page in pages, f"{page} has no stlspec example"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_stlspec_block(block: Block):
    expect = block.expect
    if expect is None:
        assert "title=" not in block.info or not re.search(r'title="(error|warning)', block.info), (
            f"{block.id}: unparseable expectation in {block.info!r}; write title=\"error E201\"")
        try:
            _, warnings = compile_block(block)
        except StlError as err:
            pytest.fail(f"{block.id}: example does not compile:\n{err}")
        assert not warnings, f"{block.id}: example draws warnings:\n" + "\n".join(w.render() for w in warnings)
        return
    kind, code = expect
    assert code in CODES, f"{block.id}: {code} is not a registered diagnostic code"
    assert CODES[code].severity == kind, f"{block.id}: {code} is a {CODES[code].severity}, not a {kind}"
    if kind == "error":
        with pytest.raises(StlError) as info:
            compile_block(block)
        codes = {d.code for d in info.value.errors}
        assert codes == {code}, f"{block.id}: expected exactly {code}, got {sorted(codes)}:\n{info.value}"
    else:
        try:
            _, warnings = compile_block(block)
        except StlError as err:
            pytest.fail(f"{block.id}: warning example does not compile:\n{err}")
        assert {w.code for w in warnings} == {code}, (
            f"{block.id}: expected warning {code}, got {sorted(w.code for w in warnings)}")


def test_fence_parser_sees_indented_blocks(tmp_path):
    text = 'x\n\n!!! note\n    ```stlspec title="error E201"\n    spec s { p(x) }\n    ```\n'
    tmp = tmp_path / "page.md"
    tmp.write_text(text, encoding="utf-8")
    (b,) = code_blocks(tmp)
    assert b.expect == ("error", "E201") and b.text == "spec s { p(x) }\n" and b.line == 4


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    """The site builds with ``--strict`` (broken links, missing nav pages or snippets fail)."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install -e .[docs])")
    proc = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
