"""The bundled examples: every file checks clean, and every spec holds on its ``holds`` trace and fails on
its ``fails`` trace.

Layout (see ``examples/``): ``vocab.stl`` is the shared vocabulary, ``specs/*.stl`` include it, and each spec
``NAME`` has ``traces/NAME.holds.json`` and ``traces/NAME.fails.json`` — small 0/1 scene graphs
(T <= 12 frames, N <= 4 tracks). On 0/1 traces every logic must agree with ``boolean``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import stlspec
from stlspec import ast
from stlspec.backends.reference import evaluate
from stlspec.trace import load_trace

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SPEC_FILES = sorted((EXAMPLES / "specs").glob("*.stl"))
TRACES = EXAMPLES / "traces"
LOGICS = ("boolean", "godel", "product")


def _specs() -> list[tuple[Path, str]]:
    out = []
    for path in SPEC_FILES:
        for spec in stlspec.compile_file(str(path)).specs:
            out.append((path, spec.name))
    return out


SPECS = _specs()


def test_enough_examples():
    assert len(SPEC_FILES) >= 12
    assert len({name for _, name in SPECS}) == len(SPECS), "spec names are unique across examples"


@pytest.mark.parametrize("path", [EXAMPLES / "vocab.stl", *SPEC_FILES], ids=lambda p: p.name)
def test_example_checks_clean(path: Path):
    program = stlspec.parse(path.read_text(encoding="utf-8"), path=str(path))
    checked = stlspec.check(program)  # raises StlError on any error
    assert not checked.warnings, "\n".join(w.render() for w in checked.warnings)
    assert not checked.open_vocabulary, "examples are checked against examples/vocab.stl"
    if path.parent.name == "specs":
        assert any(i.path == "../vocab.stl" for i in program.items if isinstance(i, ast.Include))


def test_every_trace_belongs_to_a_spec():
    names = {name for _, name in SPECS}
    for trace in TRACES.glob("*.json"):
        spec, kind, _ = trace.name.rsplit(".", 2)
        assert spec in names and kind in ("holds", "fails"), f"stray trace {trace.name}"


@pytest.mark.parametrize("kind", ["holds", "fails"])
@pytest.mark.parametrize("path,name", SPECS, ids=[name for _, name in SPECS])
def test_spec_on_its_trace(path: Path, name: str, kind: str):
    program = stlspec.compile_file(str(path))
    trace_path = TRACES / f"{name}.{kind}.json"
    assert trace_path.exists(), f"missing {trace_path.relative_to(REPO)}"
    trace = load_trace(str(trace_path), program.vocabulary)
    assert trace.is_boolean()
    assert trace.num_frames <= 12 and trace.num_tracks <= 4, "example traces stay small"
    want = 1.0 if kind == "holds" else 0.0
    for logic in LOGICS:
        value = evaluate(program.spec(name), trace, logic).value
        assert value == want, f"{name} on {trace_path.name} under {logic}: {value}, expected {want}"
