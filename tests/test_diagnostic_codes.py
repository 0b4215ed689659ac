"""Diagnostics by constructor: one named constructor per code, built nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

from stlspec import diagnostics

REPO = Path(__file__).resolve().parent.parent
#: A direct construction: ``Diagnostic(`` called with anything (a literal code, a variable, ...).
DIRECT = re.compile(r"\bDiagnostic\s*\(")


def test_every_code_has_exactly_one_constructor():
    assert set(diagnostics.CONSTRUCTORS) == set(diagnostics.CODES)
    names = [getattr(fn, "__name__", "") for fn in diagnostics.CONSTRUCTORS.values()]
    assert len(set(names)) == len(names)
    for code, fn in diagnostics.CONSTRUCTORS.items():
        assert getattr(diagnostics, fn.__name__) is fn, code


def test_no_diagnostic_is_built_outside_the_registry():
    """Only the constructors call ``Diagnostic(...)``: with a literal code, a variable or anything else."""
    offenders = set()
    for package in ("stlspec", "laser_train"):
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            if rel == "stlspec/diagnostics.py":
                continue
            if DIRECT.search(path.read_text(encoding="utf-8")):
                offenders.add(rel)
    assert not offenders, f"build these diagnostics with the constructors in stlspec.diagnostics: {sorted(offenders)}"


def test_the_scan_finds_a_direct_construction():
    """The scan is not vacuous: it matches the forms it must refuse."""
    for text in ('Diagnostic("E501", m)', "Diagnostic(code, m)", "diagnostics.Diagnostic (c, m)"):
        assert DIRECT.search(text), text
    for text in ("list[Diagnostic]", "Diagnostic.from_dict(d)", "isinstance(d, Diagnostic)"):
        assert not DIRECT.search(text), text
