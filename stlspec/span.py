"""Source positions: where a node or a diagnostic came from.

A :class:`Span` is a half-open character range with 1-based line/column of both
ends. Spans never take part in node equality (see :mod:`stlspec.ast`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Span", "NO_SPAN"]


class Span(NamedTuple):
    """Immutable like the AST nodes; a NamedTuple because parsers create one per token (cheap to build)."""

    start: int = 0
    end: int = 0
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    @property
    def known(self) -> bool:
        """False for synthesized nodes that have no place in any source text."""
        return self.line > 0

    def cover(self, other: "Span") -> "Span":
        """The smallest span containing both ``self`` and ``other``."""
        if not self.known:
            return other
        if not other.known:
            return self
        first = self if self.start <= other.start else other
        last = self if self.end >= other.end else other
        return Span(first.start, last.end, first.line, first.column, last.end_line, last.end_column)

    def shifted(self, offset: int, lines: int) -> "Span":
        """This span moved ``offset`` characters and ``lines`` lines on (for text that starts a line)."""
        return Span(self.start + offset, self.end + offset, self.line + lines, self.column,
                    self.end_line + lines, self.end_column)

    @staticmethod
    def at(source: str, start: int, end: int | None = None) -> "Span":
        """Build a span from character offsets into ``source``."""
        end = start if end is None else end
        line, col = _line_col(source, start)
        end_line, end_col = _line_col(source, end)
        return Span(start, end, line, col, end_line, end_col)


def _line_col(source: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    line_start = source.rfind("\n", 0, offset) + 1
    return line, offset - line_start + 1


NO_SPAN = Span()
