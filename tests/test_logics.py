"""One ``Logic`` object per logic, with scalar and tensor operations that agree.

The reference interpreter uses the scalar side, the torch backend the tensor
side; these tests pin them to each other (elementwise ops, n-ary folds through
``fold_space`` + ``space_reduce`` / ``space_cumulate``, and the ``until`` map
monoid against the scalar recursion ``u(t) = ψ(t) ∨ (φ(t) ∧ u(t+1))``), and
check that importing the module does not import torch.
"""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyp import examples
from stlspec.logics import SCALAR_LOGICS, get_logic

torch = pytest.importorskip("torch")

LOGICS = [get_logic(n) for n in SCALAR_LOGICS] + [get_logic("smooth", 0.5)]
IDS = [str(L) for L in LOGICS]
probs = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=7)
TOL = 1e-9


def test_importing_logics_does_not_import_torch():
    code = "import sys, stlspec.logics as L; L.get_logic('smooth'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("L", LOGICS, ids=IDS)
@settings(max_examples=examples(50), deadline=None)
@given(xs=probs)
def test_elementwise_and_folds_agree(L, xs):
    t = torch.tensor(xs, dtype=torch.float64)
    atoms = [L.atom(x) for x in xs]
    assert L.tensor_atom(t).tolist() == pytest.approx(atoms, abs=TOL)
    a = L.tensor_atom(t)
    assert L.tensor_not(a).tolist() == pytest.approx([L.not_(x) for x in atoms], abs=TOL)
    parts = list(a.unbind())
    assert float(L.tensor_and(parts)) == pytest.approx(L.and_(atoms), abs=TOL)
    assert float(L.tensor_or(parts)) == pytest.approx(L.or_(atoms), abs=TOL)
    for disjunction, scalar in ((True, L.or_), (False, L.and_)):
        to, op, ident, back = L.fold_space(disjunction)
        z = to(a)
        assert float(back(L.space_reduce(z, 0, disjunction))) == pytest.approx(scalar(atoms), abs=TOL)
        assert float(back(functools.reduce(op, z.unbind(), torch.tensor(ident, dtype=z.dtype)))) == \
            pytest.approx(scalar(atoms), abs=TOL)
        prefix = back(L.space_cumulate(z, disjunction)).tolist()
        suffix = back(L.space_cumulate(z, disjunction, reverse=True)).tolist()
        assert prefix == pytest.approx([scalar(atoms[:i + 1]) for i in range(len(atoms))], abs=TOL)
        assert suffix == pytest.approx([scalar(atoms[i:]) for i in range(len(atoms))], abs=TOL)


@pytest.mark.parametrize("L", LOGICS, ids=IDS)
@settings(max_examples=examples(50), deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=6))
def test_until_maps_compose_like_the_recursion(L, pairs):
    phi = torch.tensor([p for p, _ in pairs], dtype=torch.float64)
    psi = torch.tensor([q for _, q in pairs], dtype=torch.float64)
    maps = L.until_maps()
    # Scalar: u(e) = ψ(e); u(s) = ψ(s) ∨ (φ(s) ∧ u(s+1)).
    u = float(psi[-1])
    for s in range(len(pairs) - 2, -1, -1):
        u = L.or_([float(psi[s]), L.and_([float(phi[s]), u])])
    m = maps.identity(phi[:1])
    for s in range(len(pairs) - 1):
        m = maps.compose(m, maps.f(phi[s:s + 1], psi[s:s + 1]))
    assert float(maps.apply(m, psi[-1:])) == pytest.approx(u, abs=1e-7)
    # g(φ) is x ↦ φ ∧ x.
    x = float(psi[0])
    assert float(maps.apply(maps.g(phi[:1]), psi[:1])) == pytest.approx(L.and_([float(phi[0]), x]), abs=1e-7)


def test_suffix_product_gradient_is_exact():
    L = get_logic("product")
    for z0 in ([0.3, 0.5, 0.9], [0.3, 0.0, 0.9]):
        z = torch.tensor(z0, dtype=torch.float64, requires_grad=True)
        g, = torch.autograd.grad(L.space_cumulate(z, False, reverse=True).sum(), z)
        z2 = torch.tensor(z0, dtype=torch.float64, requires_grad=True)
        g2, = torch.autograd.grad(z2.flip(-1).cumprod(-1).flip(-1).sum(), z2)
        assert torch.allclose(g, g2)


def test_every_logic_names_its_scallop_provenance():
    assert get_logic("godel").scallop_provenance == "minmaxprob"
    assert get_logic("exact").scallop_provenance == "topkproofs"
    assert get_logic("product").scallop_provenance is None
