"""The lexicon of ``.stl`` text, shared by both parsers: keywords, whitespace, comments, quoted names.

``grammar/stl.lark`` is the reference; ``tests/test_lexicon.py`` checks that
every keyword literal of the grammar is in :data:`KEYWORDS` (and nothing else),
and that the terminals here match the grammar's on the same inputs.
"""

from __future__ import annotations

import re

__all__ = ["KEYWORDS", "WHITESPACE", "LINE_COMMENT", "BLOCK_COMMENT", "STRING", "IDENT", "unquote", "quote"]

#: Reserved words of the language; a predicate or category with one of these names must be quoted.
KEYWORDS = frozenset(
    "include category unary binary spec exists forall then implies or and until release not next weak "
    "always eventually true false inf".split()
)

#: Whitespace is ASCII only (Lark's ``common.WS``): NBSP, U+2028 and friends are errors in both parsers.
WHITESPACE = r"[ \t\f\r\n]+"
LINE_COMMENT = r"(?://|\#)[^\n]*"
BLOCK_COMMENT = r"/\*[\s\S]*?\*/"
STRING = r'"(?:[^"\\\n]|\\["\\])*"'
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

_ESCAPE = re.compile(r'\\(["\\])')
_IDENT = re.compile(IDENT)


def unquote(token: str) -> str:
    """The text of a quoted name token (``"sitting on"`` → ``sitting on``)."""
    return _ESCAPE.sub(r"\1", token[1:-1])


def quote(text: str) -> str:
    """``text`` as a quoted name token (the inverse of :func:`unquote`).

    Quoted names cannot hold a line break (the grammar's ``STRING``): callers
    that might have one check with :func:`quotable` first.
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quotable(text: str) -> bool:
    """Whether ``text`` can be written as a quoted name."""
    return "\n" not in text


def is_bare_name(text: str) -> bool:
    """Whether ``text`` can be written without quotes (an identifier that is not a keyword)."""
    return _IDENT.fullmatch(text) is not None and text not in KEYWORDS
