"""Find the ``.stl`` text in a model's answer.

Models wrap their answer in prose ("Here is the spec: …"), in Markdown code
fences (labelled ``stl``, ``stlspec``, something else or nothing), or both; a
long answer may be cut off inside a fence. :func:`extract_spec` recovers the
spec text in all of these cases and says how it found it, so the repair loop
can tell the model precisely what went wrong when nothing was found.

The rules, in order:

1. Fenced blocks (closed or cut off at the end). Blocks that contain a
   ``spec … {`` win; when several do, the *last* one wins (models that correct
   themselves mid-answer put the corrected version last). Declaration-only
   ``stl`` blocks that come before it are kept, because open-vocabulary answers
   sometimes put the vocabulary in its own block.
2. No fence: the text from the first line that starts a top-level item
   (``spec``, ``category``, ``unary``, ``binary``, ``include``), or from the
   first ``spec NAME … {`` after a space or colon, to the brace that closes the
   last ``spec`` block.
3. Neither: a bare formula starting at ``exists``/``forall`` is wrapped into a
   ``spec`` block, because some models answer with the formula alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_spec"]

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n", re.MULTILINE)
_SPEC_START = re.compile(r"(?m)(?:^|(?<=[\s:]))spec\s+[A-Za-z_][A-Za-z0-9_]*\s*(\"(?:[^\"\\\n]|\\.)*\")?\s*\{")
_ITEM_START = re.compile(r"(?m)^[ \t]*(spec|category|unary|binary|include)\b")
_BARE_FORMULA = re.compile(r"(?m)^[ \t]*(exists|forall)\b")
_DECL_ONLY = re.compile(r"(?m)^[ \t]*(category|unary|binary|include)\b")

#: Fence labels that are certainly not our language; blocks labelled so are ignored.
_FOREIGN_LABELS = {"python", "py", "json", "bash", "sh", "shell", "yaml", "lark", "prolog", "datalog", "scallop"}


@dataclass(frozen=True, slots=True)
class Extraction:
    """The spec text found in an answer and how it was found.

    ``how`` is ``"fenced"``, ``"fenced-truncated"``, ``"prose"`` or ``"bare-formula"``.
    """

    text: str
    how: str


def _fenced_blocks(answer: str) -> list[tuple[str, str, bool]]:
    """``(label, body, closed)`` for each fenced block, in order."""
    blocks: list[tuple[str, str, bool]] = []
    pos = 0
    while True:
        m = _FENCE.search(answer, pos)
        if m is None:
            return blocks
        fence, label = m.group(1), m.group(2).lower()
        closing = re.compile(r"(?m)^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        end = closing.search(answer, m.end())
        if end is None:  # cut off (max_tokens) or sloppy: the block runs to the end
            blocks.append((label, answer[m.end():], False))
            return blocks
        blocks.append((label, answer[m.end():end.start()], True))
        pos = end.end()


def _spec_end(text: str, open_brace: int) -> int | None:
    """Index just past the ``}`` matching ``text[open_brace]``, skipping strings and comments."""
    depth, i, n = 0, open_brace, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "/" and text.startswith("//", i) or c == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        elif c == "/" and text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = n if close < 0 else close + 2
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _from_prose(answer: str) -> str | None:
    specs = list(_SPEC_START.finditer(answer))
    if not specs:
        return None
    first = _ITEM_START.search(answer)
    start = first.start() if first is not None and first.start() <= specs[0].start() else specs[0].start()
    last = specs[-1]
    end = _spec_end(answer, last.end() - 1)
    return answer[start:end if end is not None else len(answer)].strip()


def _bare_formula(answer: str) -> str | None:
    m = _BARE_FORMULA.search(answer)
    if m is None:
        return None
    # The formula runs to the first blank line (prose usually follows after one).
    body = re.split(r"\n[ \t]*\n", answer[m.start():], maxsplit=1)[0].strip().rstrip(".")
    return "spec answer {\n  " + body + "\n}"


def extract_spec(answer: str) -> Extraction | None:
    """The ``.stl`` text in ``answer``, or ``None`` when it holds none."""
    blocks = [b for b in _fenced_blocks(answer) if b[0] not in _FOREIGN_LABELS]
    with_spec = [i for i, (_, body, _) in enumerate(blocks) if _SPEC_START.search(body)]
    if with_spec:
        chosen = with_spec[-1]
        label, body, closed = blocks[chosen]
        # Declaration-only blocks before the chosen one belong to the answer too.
        decls = [b for _, b, _ in blocks[:chosen] if _DECL_ONLY.search(b) and not _SPEC_START.search(b)]
        inner = _from_prose(body) or body
        text = "\n".join([*(d.strip() for d in decls), inner.strip()])
        return Extraction(text.strip(), "fenced" if closed else "fenced-truncated")
    prose = _from_prose(answer)
    if prose is not None:
        return Extraction(prose, "prose")
    for _, body, closed in blocks:  # a fenced bare formula
        bare = _bare_formula(body)
        if bare is not None:
            return Extraction(bare, "bare-formula")
    bare = _bare_formula(answer)
    if bare is not None:
        return Extraction(bare, "bare-formula")
    return None
