"""Golden Scallop programs for the bundled examples.

``tests/golden/scallop/<example>.scl`` is the program for ``examples/specs/<example>.stl``
(input relations declared, no facts); ``<spec>.<holds|fails>.scl`` files are
standalone programs with an example trace embedded, exactly what
``stlspec compile --target scallop FILE --trace TRACE -o out.scl`` writes.
Refresh after an intended change with::

    STLSPEC_UPDATE_GOLDEN=1 pytest tests/test_scallop_golden.py

and read the diff. Every golden file must also pass the subset self-check.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import stlspec
from stlspec.backends.scallop import validate
from stlspec.trace import load_trace

UPDATE = os.environ.get("STLSPEC_UPDATE_GOLDEN") == "1"
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "scallop"
SPEC_FILES = sorted((EXAMPLES / "specs").glob("*.stl"))
#: Standalone goldens: (spec file, trace file).
STANDALONE = [("cup_then_door.stl", "cup_then_door.holds.json"),
              ("background.stl", "left_of_is_asymmetric.fails.json")]


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    validate(text)
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden {path.name}: run with STLSPEC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name}: run with STLSPEC_UPDATE_GOLDEN=1 to refresh"


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_example_program(path: Path):
    program = stlspec.compile_file(str(path))
    _check(f"{path.stem}.scl", stlspec.compile(program, target="scallop").text)


@pytest.mark.parametrize("spec_file,trace_file", STANDALONE, ids=[t for _, t in STANDALONE])
def test_standalone_program(spec_file: str, trace_file: str):
    program = stlspec.compile_file(str(EXAMPLES / "specs" / spec_file))
    trace = load_trace(str(EXAMPLES / "traces" / trace_file), program.vocabulary)
    text = stlspec.compile(program, target="scallop", trace=trace).text
    _check(trace_file.replace(".json", ".scl"), text)


def test_no_stale_goldens():
    expected = {f"{p.stem}.scl" for p in SPEC_FILES} | {t.replace(".json", ".scl") for _, t in STANDALONE}
    present = {p.name for p in GOLDEN.glob("*.scl")} if GOLDEN.exists() else set()
    assert present <= expected, f"stale golden files: {sorted(present - expected)}"
