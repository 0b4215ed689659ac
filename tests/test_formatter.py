"""Formatter: parse(fmt(ast)) == ast, idempotence, comments kept, and the canonical layout (golden)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import stlspec

from ast_strategies import programs

GOLDEN = Path(__file__).parent / "golden" / "fmt"
UPDATE = os.environ.get("STLSPEC_UPDATE_GOLDEN") == "1"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_roundtrip_and_idempotence(program):
    text = stlspec.format(program)
    again = stlspec.parse(text)
    assert again == program
    assert stlspec.format(again) == text


def test_comments_survive():
    src = "// vocabulary\ncategory a\n\n# the spec\nspec s {\n  // inside\n  true\n}\n// end\n"
    out = stlspec.format(stlspec.parse(src))
    for c in ("// vocabulary", "# the spec", "// inside", "// end"):
        assert c in out
    assert stlspec.format(stlspec.parse(out)) == out


def test_golden_layout():
    for src in sorted(GOLDEN.glob("*.in.stl")):
        expected_path = src.with_name(src.name.replace(".in.stl", ".out.stl"))
        got = stlspec.format(stlspec.parse(src.read_text(), str(src)))
        if UPDATE:
            expected_path.write_text(got)
        # Never created here: a deleted golden fails until it is regenerated on purpose.
        assert expected_path.exists(), f"missing golden {expected_path.name}: run with STLSPEC_UPDATE_GOLDEN=1"
        assert got == expected_path.read_text(), f"{src.name}: run with STLSPEC_UPDATE_GOLDEN=1 to refresh"


def test_examples_are_in_canonical_layout():
    root = Path(__file__).parent.parent
    for path in [root / "examples" / "vocab.stl", *sorted((root / "examples" / "specs").glob("*.stl"))]:
        text = path.read_text()
        assert stlspec.format(stlspec.parse(text, str(path))) == text, f"run `stlspec fmt {path}`"
