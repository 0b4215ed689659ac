"""Running emitted programs with real Scallop (``scallopy`` and ``scli``).

scallopy is built from source (see docs/scallop.md), so these tests skip when
it is absent -- except under CI, which installs the build in
``../shared/scallop`` and makes a missing scallopy an error (``real_scallop``).
The programs' grammar, structure and minmaxprob semantics are also tested
without Scallop in test_scallop_subset.py, test_scallop_emit.py and
test_scallop_semantics.py. When scallopy is absent, the runner must fail with a
helpful ImportError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stlspec
from stlspec import ir
from stlspec.backends.reference import evaluate
from stlspec.backends.scallop import compile_program
from stlspec.trace import Trace, load_trace
from real_scallop import HAVE_SCALLOPY, needs_scallopy
from strategies import VOCAB

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"



SPEC = ir.Spec("s", ir.Exists((("a", "person"),), ir.Eventually(ir.And((
    ir.Unary("walking", "a"), ir.Next(ir.Always(ir.Not(ir.Unary("red", "a")), ir.Window(0, 2))))), event=0)),
    (ir.EventInfo(0),))
PROGRAM = ir.CoreProgram(VOCAB, (SPEC,))


def _trace(seed: int = 0, T: int = 5, N: int = 3) -> Trace:
    rng = np.random.default_rng(seed)
    return Trace.from_arrays(rng.uniform(size=(N, 3)), rng.uniform(size=(T, N, 3)), rng.uniform(size=(T, N, N, 2)),
                             categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                             binary_preds=VOCAB.binary_names)


def test_missing_scallopy_says_how_to_install(monkeypatch):
    import sys

    from stlspec.backends.scallop import run

    monkeypatch.setitem(sys.modules, "scallopy", None)  # what an environment without it sees
    with pytest.raises(ImportError, match="make install-scallopy"):
        run(PROGRAM, _trace())


def test_compiling_never_imports_scallopy():
    import sys

    compile_program(PROGRAM, trace=_trace())
    assert "scallopy" not in sys.modules or HAVE_SCALLOPY


@needs_scallopy
@pytest.mark.parametrize("standalone", [False, True])
def test_minmaxprob_equals_godel(standalone):
    from stlspec.backends.scallop import run

    trace = _trace()
    prog = compile_program(PROGRAM, trace=trace if standalone else None, witnesses=True)
    result = run(prog, None if standalone else trace, provenance="minmaxprob")
    ref = evaluate(SPEC, trace, "godel")
    assert result.values["s"] == pytest.approx(ref.value, abs=1e-6)
    assert np.allclose(result.witnesses["s"], ref.witnesses, atol=1e-5)


@needs_scallopy
def test_examples_under_real_scallop():
    from stlspec.backends.scallop import run

    for trace_path in sorted((EXAMPLES / "traces").glob("*.json")):
        name = trace_path.name.rsplit(".", 2)[0]
        for spec_path in sorted((EXAMPLES / "specs").glob("*.stl")):
            program = stlspec.compile_file(str(spec_path))
            if name not in {s.name for s in program.specs}:
                continue
            trace = load_trace(str(trace_path), program.vocabulary)
            got = run(compile_program(program, trace=trace, specs=[name]), provenance="minmaxprob")
            assert got.values[name] == pytest.approx(evaluate(program.spec(name), trace, "godel").value, abs=1e-6)


@needs_scallopy
def test_difftopkproofs_module_has_gradients():
    import torch

    from stlspec.backends.scallop import ScallopModule

    module = ScallopModule(PROGRAM, provenance="difftopkproofs", k=3)
    trace = _trace()
    names = torch.tensor(trace.names, dtype=torch.float32)[None].requires_grad_()
    unary = torch.tensor(trace.unary, dtype=torch.float32)[None].requires_grad_()
    binary = torch.tensor(trace.binary, dtype=torch.float32)[None]
    out = module(names, unary, binary)
    assert out.shape == (1, 1)
    out.sum().backward()
    assert unary.grad is not None and torch.isfinite(unary.grad).all()
