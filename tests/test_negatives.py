"""Negative specs: every kind is produced, type-checks, and differs in meaning from its positive."""

from __future__ import annotations

from pathlib import Path

import pytest

import stlspec
from stlspec import ast
from stlspec.backends.reference import evaluate
from stlspec.pipeline import load_vocabulary
from stlspec.negatives import KINDS, candidates, generate_negatives, negatives_for_program, random_traces

VOCAB_PATH = Path(__file__).parent / "fixtures" / "llm" / "vocab.stl"
VOCAB = load_vocabulary(str(VOCAB_PATH))

SOURCE = '''
spec pick "A man picks up a cup, then walks to the door." {
  exists m: person, c: cup, d: door.
    near(m, c) @early
    then holding(m, c) @middle
    then walking(m) and near(m, d) @late
}

spec falls "A cup falls." {
  exists c: cup. eventually falling(c) @late
}

spec kick "A boy kicks a ball." {
  exists b: child, x: ball. eventually kicking(b, x) @anytime
}
'''
PROGRAM = stlspec.parse(SOURCE)
PICK, FALLS, KICK = PROGRAM.specs


def _core(spec: ast.Spec):
    return stlspec.compile_text(stlspec.format(ast.Program((spec,))), vocabulary=VOCAB).specs[0]


def test_every_kind_is_produced_for_a_chain():
    negs = generate_negatives(PICK, VOCAB, others=PROGRAM.specs, limit=None, allow_weaker=True)
    assert {n.kind for n in negs} == set(KINDS)
    swapped = next(n for n in negs if n.kind == "swap-events")
    assert [e.hint.name for e in swapped.spec.formula.body.events] == ["early", "middle", "late"]  # hints stay


def test_negatives_differ_in_meaning_from_the_positive():
    pos = _core(PICK)
    traces = random_traces(VOCAB, pos, 30, seed=7)  # a different seed from the one used to verify them
    pos_values = [evaluate(pos, t, "boolean", witnesses=False).value for t in traces]
    negs = generate_negatives(PICK, VOCAB, others=PROGRAM.specs, limit=None)
    assert len(negs) >= 10
    for neg in negs:
        core = _core(neg.spec)
        assert not neg.weaker
        assert any(evaluate(core, t, "boolean", witnesses=False).value != v for t, v in zip(traces, pos_values)), \
            (neg.kind, neg.description)


def test_dropped_events_are_weaker_and_left_out_by_default():
    default = generate_negatives(PICK, VOCAB, kinds=("drop-event",), limit=None)
    assert default == []
    weaker = generate_negatives(PICK, VOCAB, kinds=("drop-event",), limit=None, allow_weaker=True)
    assert weaker and all(n.weaker for n in weaker)


def test_symmetric_relations_are_not_swapped_but_others_are():
    kinds = [(k, d) for k, d, _ in candidates(PICK, VOCAB)]
    swaps = [d for k, d in kinds if k == "swap-arguments"]
    assert swaps == ["holding(m, c) → holding(c, m)"]


def test_single_event_negation_is_never():
    negs = generate_negatives(FALLS, VOCAB, kinds=("negate-event",), limit=None)
    assert len(negs) == 1
    assert stlspec.format(ast.Program((negs[0].spec,))).splitlines()[2].strip() == "always not falling(c)"


def test_category_constraints_are_respected():
    # kicking(any, ball): replacing the ball's category makes an ill-typed spec, which is skipped
    for neg in generate_negatives(KICK, VOCAB, kinds=("change-category",), limit=None):
        assert "x: ball" in stlspec.format(ast.Program((neg.spec,)))


def test_deterministic_and_limited():
    a = generate_negatives(PICK, VOCAB, others=PROGRAM.specs, limit=4, seed=3)
    b = generate_negatives(PICK, VOCAB, others=PROGRAM.specs, limit=4, seed=3)
    assert a == b and len(a) == 4
    assert len({n.kind for n in a}) == 4  # round-robin over kinds


def test_program_output_compiles_on_its_own(tmp_path):
    src = tmp_path / "in" / "specs.stl"
    src.parent.mkdir()
    src.write_text(f'include "{VOCAB_PATH}"\n' + SOURCE)
    out = tmp_path / "out" / "negatives.stl"
    out.parent.mkdir()
    text = negatives_for_program(stlspec.load(str(src)), per_spec=3, output_dir=str(out.parent))
    out.write_text(text)
    core = stlspec.compile_file(str(out))
    assert len(core.specs) == 9
    assert "// swap-events: events" in text


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown negative kind"):
        generate_negatives(PICK, VOCAB, kinds=("shuffle",))


def test_cli_negatives(tmp_path, capsys):
    from stlspec.cli import main

    src = tmp_path / "specs.stl"
    src.write_text(f'include "{VOCAB_PATH}"\n' + SOURCE)
    out = tmp_path / "neg.stl"
    assert main(["negatives", str(src), "-o", str(out), "--per-spec", "2", "--kinds", "swap-events,negate-event"]) == 0
    assert len(stlspec.compile_file(str(out)).specs) == 4  # pick: 2; falls, kick: 1 each (no chain to swap)
    assert main(["negatives", str(src), "--kinds", "bogus"]) == 2
    assert "unknown kind(s) bogus" in capsys.readouterr().err
