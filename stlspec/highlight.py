"""A Pygments lexer for ``.stl`` files, registered as the ``stlspec`` language (entry point ``pygments.lexers``).

Installed with the package, it makes ``pygmentize -l stlspec`` and Markdown fences written ```` ```stlspec ````
(mkdocs / pymdownx.highlight, Sphinx, GitHub-style renderers built on Pygments) highlight the language.
Pygments is imported only by this module, which only Pygments itself loads.

The token rules follow ``grammar/stl.lark``: the keyword groups below together are exactly the grammar's
reserved words (``tests/test_highlight.py`` checks this against the grammar file and the parsers' keyword set),
names in predicate position (``holding(``, ``"on top of"(``) are functions, the name after ``spec`` is the
spec's name, ``@early`` / ``@[`` are hints, and anything the grammar cannot contain is an ``Error`` token.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace,
)

__all__ = ["StlspecLexer", "KEYWORD_GROUPS"]

#: The reserved words of the language by role; their union is the grammar's keyword set.
KEYWORD_GROUPS: dict[str, tuple[str, ...]] = {
    "declaration": ("include", "category", "unary", "binary", "spec"),
    "quantifier": ("exists", "forall"),
    "temporal": ("then", "until", "release", "next", "weak", "always", "eventually"),
    "boolean": ("not", "and", "or", "implies"),
    "constant": ("true", "false", "inf"),
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_STRING = r'"(?:[^"\\\n]|\\["\\])*"'


class StlspecLexer(RegexLexer):
    """Lexer for the stlspec spatio-temporal specification language (``.stl``)."""

    name = "stlspec"
    aliases = ["stlspec", "stl"]
    filenames = ["*.stl"]
    mimetypes = ["text/x-stlspec"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"(//|#)[^\n]*", Comment.Single),
            (r"/\*(.|\n)*?\*/", Comment.Multiline),
            # `spec NAME`: the spec's name is a definition
            (r"(spec)(\s+)(" + _IDENT + r")", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(KEYWORD_GROUPS["declaration"], suffix=r"\b"), Keyword.Declaration),
            (words(KEYWORD_GROUPS["quantifier"], suffix=r"\b"), Keyword),
            (words(KEYWORD_GROUPS["temporal"], suffix=r"\b"), Keyword),
            (words(KEYWORD_GROUPS["boolean"], suffix=r"\b"), Operator.Word),
            (words(KEYWORD_GROUPS["constant"], suffix=r"\b"), Keyword.Constant),
            # hints: @early, @late, @[0.25, 0.5]
            (r"@" + _IDENT, Name.Decorator),
            (r"@(?=\s*\[)", Name.Decorator),
            # predicate names in atoms and declarations: holding(…), "on top of"(…)
            (r"(" + _IDENT + r")(\s*)(\()", bygroups(Name.Function, Whitespace, Punctuation)),
            (r"(" + _STRING + r")(\s*)(\()", bygroups(Name.Function, Whitespace, Punctuation)),
            (_STRING, String),
            (r"[0-9]+\.[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"==|!=", Operator),
            (r"[(){}\[\],:.]", Punctuation),
            (_IDENT, Name.Variable),
            (r".", Error),
        ],
    }

