"""Shared by the docs generators (``gen_training.py``, ``gen_baselines.py``): replace a page's generated section.

A generated section sits between a ``BEGIN`` and an ``END`` marker line that the generator owns; everything
outside them is hand-written and kept as it is.
"""

from __future__ import annotations

from pathlib import Path


def replace_section(page: str, begin: str, end: str, section: str, where: Path | str) -> str:
    """``page`` with the text from ``begin`` to ``end`` (markers included) replaced by ``section``."""
    if begin not in page or end not in page:
        raise SystemExit(f"{where}: the generated-section markers are missing ({begin!r} … {end!r})")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + section + tail
