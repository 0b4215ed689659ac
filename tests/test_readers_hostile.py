"""Hostile inputs for the readers this package owns: traces, captions JSONL, ``--synonyms``.

The only acceptable outcomes are a result or our positioned error (a
:class:`StlError` whose diagnostics name the file, and a line/column or JSON
path where there is one) -- never a traceback from deep inside, never a hang,
never an attempt to allocate terabytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyp import examples
from stlspec import diagnostics
from stlspec.diagnostics import StlError
from stlspec.files import MAX_JSON_DEPTH, read_text
from stlspec.trace import load_trace

GOOD = {"num_frames": 2, "tracks": [{"id": "a", "names": {"person": 1.0}}],
        "unary": [{"pred": "walking", "track": "a", "frames": [0]}]}


def _raises(fn, code: str, *fragments: str):
    with pytest.raises(StlError) as info:
        fn()
    d = info.value.diagnostics[0]
    assert d.code == code, info.value
    text = str(info.value)
    for frag in fragments:
        assert frag in text, text
    return d


def test_good_trace_reads(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(GOOD))
    assert load_trace(str(p)).num_frames == 2


@pytest.mark.parametrize("make,fragment", [
    (lambda d: d / "missing.json", "cannot read trace file"),
    (lambda d: d, "it is a directory"),
    (lambda d: Path("/dev/zero"), "not a regular file"),
    (lambda d: Path("/dev/null"), "not a regular file"),
])
def test_unreadable_paths(tmp_path, make, fragment):
    _raises(lambda: load_trace(str(make(tmp_path))), "E501", fragment)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _raises(lambda: load_trace(str(fifo)), "E501", "not a regular file")


def test_non_utf8_names_line_and_column(tmp_path):
    p = tmp_path / "t.json"
    p.write_bytes(b'{"num_frames": 2,\n  "tracks": [{"id": "a\xff"}]}')
    d = _raises(lambda: load_trace(str(p)), "E501", "not valid UTF-8", "line 2")
    assert (d.span.line, d.span.column) == (2, 23) and d.path == str(p)


def test_size_cap(tmp_path, monkeypatch):
    import stlspec.trace as tr

    monkeypatch.setattr(tr, "MAX_TRACE_BYTES", 100)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(GOOD) + " " * 200)
    _raises(lambda: load_trace(str(p)), "E501", "more than the limit")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json(tmp_path, depth):
    p = tmp_path / "t.json"
    p.write_text('{"num_frames": 2, "tracks": ' + "[" * depth + "]" * depth + "}")
    d = _raises(lambda: load_trace(str(p)), "E501", "nests arrays/objects more than")
    assert d.span.line == 1


@pytest.mark.parametrize("num_frames,fragment", [
    ("1000000000000", "more than the limit of 1,000,000 frames"),
    ("1" + "0" * 400, "401-digit number"),
    ("1e8", "more than the limit"),
    ("1e400", "expected an integer frame"),
    ("1" + "0" * 5000, "invalid JSON"),
    ("-1", "at least one frame"),
    ('"12"', "expected an integer frame"),
])
def test_huge_num_frames(tmp_path, num_frames, fragment):
    p = tmp_path / "t.json"
    p.write_text('{"num_frames": ' + num_frames + ', "tracks": []}')
    d = _raises(lambda: load_trace(str(p)), "E501", fragment)
    assert len(str(d.message)) < 300, "never thousands of digits in a message"


def test_total_size_cap(tmp_path):
    tracks = [{"id": f"t{i}"} for i in range(400)]
    preds = [f"r{i}" for i in range(10)]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"num_frames": 100_000, "tracks": tracks, "binary_preds": preds,
                             "unary_preds": [], "categories": []}))
    _raises(lambda: load_trace(str(p)), "E501", "scores", "more than the limit")


def test_huge_frame_index_in_a_fact(tmp_path):
    data = dict(GOOD, unary=[{"pred": "walking", "track": "a", "frames": [10**400]}])
    p = tmp_path / "t.json"
    p.write_text(json.dumps(data))
    d = _raises(lambda: load_trace(str(p)), "E503", "401-digit integer")
    assert len(d.message) < 300


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "t.json"
    p.write_bytes(blob)
    try:
        load_trace(str(p))
    except StlError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                      max_size=3), max_leaves=12)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={
    "num_frames": json_values | st.integers(-5, 5), "tracks": json_values, "unary": json_values,
    "binary": json_values, "categories": json_values, "unary_preds": json_values, "version": json_values}))
def test_random_json_shapes_never_crash(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fuzz") / "t.json"
    p.write_text(json.dumps(data))
    try:
        load_trace(str(p))
    except StlError:
        pass


def test_read_text_strips_bom(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text(p, error=diagnostics.malformed_trace, what="file") == "hello"


# ---------------------------------------------------------------------- captions and --synonyms

from stlspec.llm.records import CaptionFileError, load_captions  # noqa: E402


@pytest.mark.parametrize("content,fragment", [
    (b'{"id": "a", "caption": "x\xff"}\n', "not valid UTF-8"),
    (b'{"id": "a", "caption": ' + b"[" * 1000 + b"]" * 1000 + b"}\n", "nested more than"),
    (b'{"id": 1' + b"0" * 5000 + b', "caption": "x"}\n', "not valid JSON"),
    (b'{"id": [1], "caption": "x"}\n', "must be a string or an integer"),
    (b'{"id": "a", "caption": "' + b"w" * 30_000 + b'"}\n', "too long"),
])
def test_hostile_captions_files(tmp_path, content, fragment):
    p = tmp_path / "c.jsonl"
    p.write_bytes(content)
    with pytest.raises(CaptionFileError, match=fragment):
        load_captions(p)


@pytest.mark.parametrize("target", ["dir", "/dev/zero"])
def test_captions_file_must_be_a_regular_file(tmp_path, target):
    with pytest.raises(CaptionFileError, match="directory|not a regular file"):
        load_captions(tmp_path if target == "dir" else target)


@pytest.mark.parametrize("content,fragment", [
    ("[1, 2]", "expected a JSON object"),
    ('{"grasping": 3}', "must be a string"),
    ('{"grasping": "hold\\ning"}', "single-line"),
    ('{"": "x"}', "non-empty"),
    ("[" * 1000, "nests arrays/objects"),
])
def test_synonyms_are_validated(tmp_path, content, fragment):
    from stlspec.cli_llm import load_synonyms

    p = tmp_path / "syn.json"
    p.write_text(content)
    with pytest.raises(StlError, match=fragment) as info:
        load_synonyms(str(p))
    assert info.value.diagnostics[0].code == "E706"


def test_good_synonyms(tmp_path):
    from stlspec.cli_llm import load_synonyms

    p = tmp_path / "syn.json"
    p.write_text('{"grasping": "holding"}')
    assert load_synonyms(str(p)) == {"grasping": "holding"}
