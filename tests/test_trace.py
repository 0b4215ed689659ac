"""Tests of the scene-graph trace format: round trips, presence, and every trace error code with its message."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stlspec import ir
from stlspec.diagnostics import StlError
from stlspec.trace import Trace, load_trace
from strategies import VOCAB, traces

DOCS = Path(__file__).resolve().parent.parent / "docs" / "traces.md"


def doc_example() -> dict:
    """The JSON example of docs/traces.md (so the documented example is tested)."""
    text = DOCS.read_text(encoding="utf-8")
    return json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))


def small(**over) -> dict:
    data = {
        "num_frames": 3,
        "tracks": [{"id": "man", "names": {"person": 1.0}}, {"id": "cup", "names": {"cup": 0.5}}],
        "unary": [{"pred": "walking", "track": "man", "frames": [0, 1], "p": 0.9}],
        "binary": [{"pred": "holding", "subject": "man", "object": "cup", "frame": 2}],
    }
    data.update(over)
    return data


def errors(data, vocabulary=None) -> list[tuple[str, str]]:
    with pytest.raises(StlError) as info:
        Trace.from_dict(data, vocabulary)
    return [(d.code, d.message) for d in info.value.diagnostics]


# ---------------------------------------------------------------------- reading


def test_docs_example_loads():
    tr = Trace.from_dict(doc_example())
    assert tr.track_ids == ("man", "cup", "7")
    assert tr.categories == ("person", "cup", "door")
    assert tr.unary.shape == (4, 3, 2) and tr.binary.shape == (4, 3, 3, 2) and tr.names.shape == (3, 3)
    assert tr.unary[2, 0, 0] == 0.7 and tr.unary[3, 0, 0] == 0.9 and tr.unary[3, 2, 1] == 1.0
    assert tr.binary[0, 0, 1, 1] == 0.6 and tr.binary[1, 0, 1, 0] == 1.0
    assert tr.present[:, 1].tolist() == [True, True, True, False]


def test_columns_without_vocabulary_follow_first_appearance():
    tr = Trace.from_dict(small())
    assert tr.categories == ("person", "cup")
    assert tr.unary_preds == ("walking",) and tr.binary_preds == ("holding",)
    assert tr.unary[:, 0, 0].tolist() == [0.9, 0.9, 0.0]  # missing facts are 0
    assert tr.binary[2, 0, 1, 0] == 1.0  # p defaults to 1
    assert tr.present.all()


def test_columns_with_vocabulary_are_the_vocabularys():
    tr = Trace.from_dict(small(), VOCAB)
    assert tr.categories == VOCAB.categories
    assert tr.unary_preds == VOCAB.unary_names and tr.binary_preds == VOCAB.binary_names
    assert tr.unary[0, 0, tr.unary_index["walking"]] == 0.9
    assert tr.unary[:, :, tr.unary_index["open"]].sum() == 0


def test_presence_zeroes_facts_when_arrays_are_built():
    data = small()
    data["tracks"][1]["present"] = [0, 1]
    data["binary"][0]["frame"] = 2  # cup absent at frame 2
    tr = Trace.from_dict(data)
    assert tr.binary[2, 0, 1, 0] == 0.0
    assert tr.names[1, tr.category_index["cup"]] == 0.5  # names are not masked
    arrays = Trace.from_arrays(np.ones((1, 1)), np.ones((2, 1, 1)), np.ones((2, 1, 1, 1)),
                               present=[[True], [False]])
    assert arrays.unary[:, 0, 0].tolist() == [1.0, 0.0]
    assert arrays.binary[:, 0, 0, 0].tolist() == [1.0, 0.0]


def test_integer_track_ids_are_strings():
    data = small(tracks=[{"id": 3}, {"id": "cup"}], unary=[{"pred": "walking", "track": 3, "frame": 0}],
                 binary=[])
    assert Trace.from_dict(data).track_ids == ("3", "cup")


def test_arrays_are_read_only():
    tr = Trace.from_dict(small())
    with pytest.raises(ValueError):
        tr.unary[0, 0, 0] = 0.5


@settings(max_examples=60, deadline=None)
@given(traces())
def test_round_trip(tr):
    back = Trace.from_dict(json.loads(json.dumps(tr.to_dict())))
    assert back.equals(tr)
    assert Trace.from_dict(tr.to_dict(), VOCAB).equals(tr)


def test_load_trace_file(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc_example()))
    assert load_trace(str(p)).equals(Trace.from_dict(doc_example()))


def test_from_arrays_defaults():
    tr = Trace.from_arrays(np.zeros((2, 1)), np.zeros((3, 2, 1)), np.zeros((3, 2, 2, 2)))
    assert tr.categories == ("c0",) and tr.unary_preds == ("u0",) and tr.binary_preds == ("b0", "b1")
    assert tr.track_ids == ("t0", "t1") and tr.num_frames == 3 and tr.num_tracks == 2


# ---------------------------------------------------------------------- errors


def test_e501_malformed():
    assert errors([1, 2]) == [("E501", "a trace is a JSON object, got list")]
    assert errors({"tracks": []}) == [("E501", "trace: missing required key 'num_frames'")]
    errs = errors(small(num_frame=3))
    assert ("E501", "num_frame: unknown key 'num_frame'") in errs
    assert errors(small(num_frames=0)) == [("E501", "num_frames: a trace has at least one frame, got 0")]
    assert errors(small(version=2)) == [("E501", "version: unsupported trace version 2; this is version 1")]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frame": "x"}])) == [
        ("E501", 'unary[0].frame: expected an integer frame, got "x"')]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frame": 0, "frames": [1]}])) == [
        ("E501", "unary[0]: give either 'frame' or 'frames', not both")]
    assert errors(small(unary=[{"pred": "walking", "track": "man"}])) == [
        ("E501", "unary[0]: missing 'frame' (one frame) or 'frames' (a list of frames)")]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frames": [0, 1], "p": [0.5]}])) == [
        ("E501", "unary[0].p: 1 probabilities for 2 frames")]
    assert errors(small(tracks=[{"id": "man", "names": ["person"]}], binary=[])) == [
        ("E501", "tracks[0].names: expected an object {category: probability}, got list")]
    assert errors(small(unary={"pred": "walking"})) == [("E501", "unary: expected a list, got dict")]


def test_e501_unknown_key_did_you_mean():
    with pytest.raises(StlError) as info:
        Trace.from_dict(small(tracks=[{"id": "man", "present": [0], "nmaes": {}}, {"id": "cup"}]))
    (d,) = info.value.diagnostics
    assert (d.code, d.message, d.hints) == ("E501", "tracks[0].nmaes: unknown key 'nmaes'", ("did you mean 'names'?",))


def test_e501_invalid_json_has_position(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"num_frames": 3,\n  "tracks": [,]}')
    with pytest.raises(StlError) as info:
        load_trace(str(p))
    (d,) = info.value.diagnostics
    assert d.code == "E501" and d.message.startswith("invalid JSON")
    assert (d.span.line, d.span.column) == (2, 14)
    assert f"{p}:2:14" in str(info.value)


def test_e501_missing_file(tmp_path):
    with pytest.raises(StlError) as info:
        load_trace(str(tmp_path / "nope.json"))
    assert info.value.diagnostics[0].code == "E501"
    assert "cannot read trace file" in info.value.diagnostics[0].message


def test_e501_from_arrays_shapes():
    with pytest.raises(StlError) as info:
        Trace.from_arrays(np.zeros((2, 1)), np.zeros((3, 2, 1)), np.zeros((3, 2, 3, 1)))
    (d,) = info.value.diagnostics
    assert d.code == "E501" and d.message.startswith("binary: shape (3, 2, 3, 1) does not match the expected (3, 2, 2, 1)")


def test_e502_unknown_names():
    errs = errors(small(unary=[{"pred": "walking", "track": "mna", "frame": 0}]))
    assert errs == [("E502", "unary[0].track: unknown track 'mna'")]
    with pytest.raises(StlError) as info:
        Trace.from_dict(small(unary=[{"pred": "walkng", "track": "man", "frame": 0}]), VOCAB)
    (d,) = info.value.diagnostics
    assert (d.code, d.message, d.hints) == ("E502", "unary[0].pred: unknown unary predicate 'walkng'",
                                            ("did you mean 'walking'?",))
    assert errors(small(tracks=[{"id": "man", "names": {"persn": 1}}], binary=[]), VOCAB) == [
        ("E502", "tracks[0].names.persn: unknown category 'persn'")]
    # Declared columns are closed even without a vocabulary.
    assert errors(small(binary_preds=["near"])) == [("E502", "binary[0].pred: unknown binary predicate 'holding'")]


def test_e503_frames_out_of_range():
    assert errors(small(num_frames=32, unary=[{"pred": "walking", "track": "man", "frame": 40}])) == [
        ("E503", "unary[0].frame: frame 40 is out of range [0, 32)")]
    assert errors(small(tracks=[{"id": "man", "present": [0, 3]}, {"id": "cup"}])) == [
        ("E503", "tracks[0].present[1]: frame 3 is out of range [0, 3)")]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frames": [0, -1]}])) == [
        ("E503", "unary[0].frames[1]: frame -1 is out of range [0, 3)")]


def test_e504_probabilities():
    assert errors(small(binary=[{"pred": "near", "subject": "man", "object": "cup", "frame": 0, "p": 1.5}])) == [
        ("E504", "binary[0].p: probability 1.5 is not in [0, 1]")]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frame": 0, "p": math.nan}])) == [
        ("E504", "unary[0].p: probability nan is not in [0, 1]")]
    assert errors(small(unary=[{"pred": "walking", "track": "man", "frame": 0, "p": "high"}])) == [
        ("E504", 'unary[0].p: probability must be a number in [0, 1], got "high"')]
    with pytest.raises(StlError) as info:
        Trace.from_arrays(np.full((1, 1), -0.5), np.zeros((1, 1, 0)), np.zeros((1, 1, 1, 0)))
    assert [(d.code, d.message) for d in info.value.diagnostics] == [
        ("E504", "names[0, 0]: probability -0.5 is not in [0, 1]")]


def test_e505_duplicates(tmp_path):
    errs = errors(small(tracks=[{"id": "man"}, {"id": "man"}, {"id": "cup"}]))
    assert errs == [("E505", "tracks[1].id: track 'man' is defined twice")]
    errs = errors(small(unary=[{"pred": "walking", "track": "man", "frames": [0, 1]},
                               {"pred": "walking", "track": "man", "frame": 1, "p": 0.2}]))
    assert errs == [("E505", "unary[1].frame: duplicate fact walking(man) at frame 1; first given at unary[0].frames[1]")]
    assert errors(small(categories=["cup", "cup", "person"])) == [("E505", "categories[1]: 'cup' is declared twice")]
    p = tmp_path / "dup.json"
    p.write_text('{"num_frames": 1, "tracks": [{"id": "a", "names": {"cup": 1, "cup": 0.5}}]}')
    with pytest.raises(StlError) as info:
        load_trace(str(p))
    assert [(d.code, d.message) for d in info.value.diagnostics] == [
        ("E505", "key 'cup' appears twice in one JSON object")]


def test_all_problems_are_collected():
    data = small(num_frames=2, unary=[{"pred": "walking", "track": "ghost", "frame": 5, "p": 2}], binary=[])
    codes = sorted(code for code, _ in errors(data))
    assert codes == ["E502", "E503", "E504"]


def test_bad_input_never_raises_raw_errors():
    # A grab bag of wrongly typed values: only StlError may come out.
    for bad in (None, "x", {"num_frames": None, "tracks": None}, {"num_frames": 1, "tracks": [None, 3]},
                {"num_frames": 1.5, "tracks": [{"id": None}]}, {"num_frames": 1, "tracks": [], "unary": [7]},
                {"num_frames": 1, "tracks": [{"id": "a"}], "binary": [{"pred": 3, "subject": [], "object": {}}]}):
        with pytest.raises(StlError):
            Trace.from_dict(bad)


def test_vocabulary_is_an_ir_vocabulary():
    voc = ir.Vocabulary(categories=("person",), unary=(("walking", None),))
    tr = Trace.from_dict({"num_frames": 1, "tracks": [{"id": "a", "names": {"person": 1}}]}, voc)
    assert tr.binary.shape == (1, 1, 1, 0)


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True),
                          st.sampled_from(["man", "cup", "walking", "near", "person", ""]))
_json = st.recursive(_json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["id", "names", "present", "pred", "track", "subject", "object", "frame",
                                     "frames", "p", "person", "x"]), inner, max_size=4)), max_leaves=12)
_documents = st.fixed_dictionaries(
    {}, optional={"version": _json, "num_frames": st.one_of(st.integers(-1, 5), _json), "tracks": _json,
                  "unary": _json, "binary": _json, "categories": _json})


@settings(max_examples=150, deadline=None)
@given(_documents, st.booleans())
def test_fuzzed_documents_parse_or_raise_our_error(doc, with_vocab):
    try:
        Trace.from_dict(doc, VOCAB if with_vocab else None)
    except StlError as e:
        assert e.diagnostics and all(d.code.startswith("E50") for d in e.diagnostics)


# ---------------------------------------------------------------------- the fast fact reader


# mostly well-formed values (the fast path's), with every kind of bad one mixed in
_ids = st.sampled_from(["man", "cup", "man", "cup", 3, 3, "3", "dog", 3.0, True, None, ""])
_frames = st.sampled_from([0, 1, 2, 3, 0, 1, 2, 3, -1, 4, 2.0, True, "1"])
_probs = st.one_of(st.floats(0, 1), st.floats(0, 1), st.floats(-0.5, 1.5), st.sampled_from([float("nan"), 1, False]),
                   st.lists(st.floats(0, 1), max_size=3))


def _fact(roles):
    preds = ["walking", "flying", 7] if len(roles) == 1 else ["holding", "near", "flying"]
    required = {"pred": st.sampled_from(preds), **{r: _ids for r in roles}}
    frames = st.lists(_frames, max_size=4)
    when = st.one_of(st.fixed_dictionaries({"frame": _frames}), st.fixed_dictionaries({"frames": frames}),
                     st.fixed_dictionaries({}, optional={"frame": _frames, "frames": frames}))
    extra = st.fixed_dictionaries({}, optional={"p": _probs, "x": st.just(1)})
    some, every = st.fixed_dictionaries({}, optional=required), st.fixed_dictionaries(required)

    def fact(parts):  # a fact with an unknown key "x" may also lack required keys; the others have them all
        maybe_missing, complete, frames, rest = parts
        return {**(maybe_missing if "x" in rest else complete), **frames, **rest}

    return st.tuples(some, every, when, extra).map(fact)


_fact_docs = st.fixed_dictionaries({
    "num_frames": st.integers(1, 4),
    "tracks": st.just([{"id": "man"}, {"id": "cup"}, {"id": 3}]),
    "unary": st.lists(_fact(("track",)), max_size=6),
    "binary": st.lists(_fact(("subject", "object")), max_size=6)})


def _read(doc, vocabulary):
    try:
        tr = Trace.from_dict(doc, vocabulary)
    except StlError as e:
        return [(d.code, d.message) for d in e.diagnostics]
    return (tr.unary.tolist(), tr.binary.tolist(), tr.unary_preds, tr.binary_preds)


@settings(max_examples=300, deadline=None)
@given(_fact_docs, st.booleans())
def test_fast_fact_path_reads_like_the_careful_one(doc, with_vocab):
    # The fast path takes the well-formed facts; the careful one reads every fact and reports. Same trace,
    # same messages (a duplicate's "first given at" included) whichever path read the first copy.
    from stlspec import trace as trace_mod

    voc = VOCAB if with_vocab else None
    fast = _read(doc, voc)
    keys = trace_mod._FastFacts.keys
    trace_mod._FastFacts.keys = lambda self, fact: None
    try:
        careful = _read(doc, voc)
    finally:
        trace_mod._FastFacts.keys = keys
    assert fast == careful


def _depth_reference(text: str, limit: int) -> int | None:
    depth, in_str, esc = 0, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return i
        elif ch in "]}":
            depth -= 1
    return None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='[]{}"\\ a\n', max_size=60), st.integers(0, 6))
def test_depth_scan_matches_a_character_by_character_scan(text, limit):
    from stlspec.files import first_too_deep

    assert first_too_deep(text, limit) == _depth_reference(text, limit)
