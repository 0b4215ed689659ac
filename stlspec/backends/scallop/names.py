"""Safe names and literals for emitted Scallop text.

Predicate, category and spec names come from ``.stl`` files and from LLM
output, so they can contain anything: quotes, backslashes, newlines, tabs,
``*/``, Scallop keywords, emoji. None of that may reach the program text
unencoded -- Scallop 0.2.5 has no escape for a backslash followed by certain
letters, treats a tab as a syntax error, and rejects reserved words as names
(see ``shared/reference/scallop.md``). Three encoders, each **injective** (two
different names never share an encoding) and each producing only characters of
a small safe alphabet:

``literal(name)``
    A string-literal body for a name used as *data* (``unary("walking", t, n)``,
    ``sat("pick_up")``). Letters, digits, space, ``_``, ``.``, ``-`` are kept so
    common names stay readable; every other character becomes ``~hex~`` (``~``
    itself is encoded, which keeps the scheme injective).
``ident(prefix, name)``
    An identifier for a name used as *code* (variables, witness relations):
    ``prefix`` + the name with letters and digits kept, ``_`` doubled, and any
    other character written ``_hex_``. Because ``prefix`` starts with a letter
    and ends with ``_``, the result never starts with ``_`` and never equals a
    reserved word.
``comment(text)``
    Printable ASCII only (``ascii()``-style escapes), so an original name kept
    in a ``//`` comment cannot end the comment with a newline.

:data:`RESERVED` lists Scallop 0.2.5's reserved words; the subset grammar
(``subset.lark``) rejects them as names, and this module never produces them.
"""

from __future__ import annotations

import re

__all__ = ["RESERVED", "literal", "unliteral", "ident", "comment", "SAFE_LITERAL_CHARS", "is_ident"]

#: Words Scallop 0.2.5 will not accept as relation, variable or constructor names.
RESERVED: frozenset[str] = frozenset(
    "bound free and or not implies where if then else exists forall in case is new as true false import "
    "extern type const relation rel query "
    "i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 char bool String Symbol DateTime Duration "
    "Entity Tensor".split()
)

#: Characters a string literal body may contain verbatim.
SAFE_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.-")

_IDENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def literal(name: str) -> str:
    """The body of a safe Scallop string literal for ``name`` (without quotes)."""
    return "".join(c if c in SAFE_LITERAL_CHARS else f"~{ord(c):x}~" for c in name)


def unliteral(body: str) -> str:
    """Inverse of :func:`literal` (used by the runner to map result keys back)."""
    return re.sub(r"~([0-9a-f]+)~", lambda m: chr(int(m.group(1), 16)), body)


def ident(prefix: str, name: str) -> str:
    """A Scallop identifier for ``name``, distinct for distinct names under one prefix."""
    if not re.fullmatch(r"[a-z][a-z0-9]*_", prefix):
        raise ValueError(f"identifier prefix must look like 'v_', got {prefix!r}")
    out = []
    for c in name:
        if c.isascii() and c.isalnum():
            out.append(c)
        elif c == "_":
            out.append("__")
        else:
            out.append(f"_{ord(c):x}_")
    return prefix + "".join(out)


def is_ident(text: str) -> bool:
    """True when ``text`` is a valid, non-reserved Scallop identifier."""
    return bool(_IDENT_RE.match(text)) and text not in RESERVED


def comment(text: str) -> str:
    """``text`` as printable ASCII for a ``//`` comment (no newline can slip through)."""
    out = []
    for c in text:
        if " " <= c <= "~" and c != "\\":
            out.append(c)
        elif c == "\\":
            out.append("\\\\")
        else:
            out.append(ascii(c)[1:-1])
    return "".join(out)
