"""Names and comments for generated ``.stl`` text built from untrusted input (captions, ids, file names).

Core (no LLM dependency): used by ``laser_import``, ``negatives`` and the LLM
pipeline alike.

* :func:`spec_name_for` turns any id into a fresh spec identifier.
* :func:`comment_line` / :func:`comment_block` write text as ``//`` comments
  that cannot end early: every character that could end a line for *any*
  reader (``\\n``, ``\\r``, the other Unicode line breaks) or confuse a terminal
  (other control characters) is written as an escape, so a caption holding
  ``"\\nspec evil { true }"`` stays inside its comment.
"""

from __future__ import annotations

import re
import unicodedata

from stlspec.lexicon import KEYWORDS

__all__ = ["spec_name_for", "comment_line", "comment_block", "MAX_COMMENT_CHARS"]

#: Longest untrusted text kept in one comment line (the rest is cut with an ellipsis).
MAX_COMMENT_CHARS = 500


def spec_name_for(caption_id: str, used: set[str]) -> str:
    """A spec name (identifier) for a caption id, unique among ``used`` (which it extends)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", str(caption_id)).strip("_")[:60] or "caption"
    if not re.match(r"[A-Za-z_]", base) or base in KEYWORDS:
        base = "c_" + base
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def _safe(ch: str) -> str:
    if ch == "\t":
        return ch
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
    return ch


def comment_line(text: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """``text`` as the body of one ``//`` comment line: line breaks and control characters escaped."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "…"
    return "".join(_safe(ch) for ch in text)


def comment_block(text: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """``text`` as ``//`` lines: one per ``\\n``-separated line, each made safe by :func:`comment_line`."""
    return "\n".join(("// " + comment_line(line, limit)).rstrip() for line in str(text).split("\n"))
