"""Checker: inline `// E: CODE` / `// W: CODE` expectations in tests/check_cases/*.stl, plus rendering snapshots."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

import stlspec
from stlspec.diagnostics import StlError

CASES = Path(__file__).parent / "check_cases"
GOLDEN = Path(__file__).parent / "golden" / "diagnostics"
UPDATE = os.environ.get("STLSPEC_UPDATE_GOLDEN") == "1"
EXPECT = re.compile(r"//\s*[EW]:\s*((?:[EW]\d{3}\s*)+)$")


def expectations(text: str) -> Counter:
    out: Counter = Counter()
    for lineno, line in enumerate(text.splitlines(), 1):
        m = EXPECT.search(line)
        if m:
            for code in m.group(1).split():
                out[(lineno, code)] += 1
    return out


def diagnostics_of(path: Path):
    try:
        checked = stlspec.check(stlspec.load(str(path)))
        return list(checked.warnings), None
    except StlError as err:
        return list(err.diagnostics), err


@pytest.mark.parametrize("path", sorted(p for p in CASES.glob("*.stl") if p.name != "vocab.stl"), ids=lambda p: p.name)
def test_inline_expectations(path: Path):
    diags, _ = diagnostics_of(path)
    got = Counter((d.span.line, d.code) for d in diags if d.path == str(path))
    assert got == expectations(path.read_text())


@pytest.mark.parametrize("name", ["names.stl", "time.stl"])
def test_rendered_snapshot(name: str):
    _, err = diagnostics_of(CASES / name)
    assert err is not None
    text = err.render().replace(str(CASES), "CASES")
    golden = GOLDEN / (name + ".txt")
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    # Never created here: a deleted golden fails until it is regenerated on purpose.
    assert golden.exists(), f"missing golden {golden.name}: run with STLSPEC_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), "run with STLSPEC_UPDATE_GOLDEN=1 to refresh"


def test_every_diagnostic_has_a_help_line():
    for path in CASES.glob("*.stl"):
        diags, _ = diagnostics_of(path)
        for d in diags:
            assert d.hints, f"{d.code} at {path.name}:{d.span.line} has no help"


def test_external_vocabulary_and_open_mode():
    vocab = stlspec.check(stlspec.load(str(CASES / "vocab.stl"))).vocabulary
    core = stlspec.compile_text("spec s { exists p: person. eventually walking(p) }", vocabulary=vocab)
    assert core.specs[0].name == "s"
    open_core = stlspec.compile_text("spec s { exists p: person, b: ball. eventually kicks(p, b) }")
    assert open_core.vocabulary.binary == (("kicks", None, None),)
    assert "ball" in open_core.vocabulary.categories


def test_warnings_do_not_fail():
    checked = stlspec.check(stlspec.parse("spec s { exists x, y. eventually true }"))
    assert [d.code for d in checked.warnings] == ["W101", "W101"]


def test_swapped_and_keyword_suggestions():
    with pytest.raises(StlError) as info:
        stlspec.compile_text('category person\nunary "then"(person)\nspec s { exists p: person. eventually "thne"(p) }')
    assert "did you mean 'then'" in info.value.render()
