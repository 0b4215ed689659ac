"""LASER ``prog`` records → ``.stl``: sequences keep their order, constants become typed variables,
hints come from the video locations, and every record that cannot be converted is reported with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import stlspec
from stlspec.backends.reference import evaluate
from stlspec.cli import main
from stlspec.laser_import import ConversionError, import_laser_file, parse_prog
from stlspec.trace import Trace
from unreadable import BAD_BYTE_AT, KINDS, unreadable

FIX = Path(__file__).parent / "fixtures" / "llm" / "laser_records.jsonl"


@pytest.fixture(scope="module")
def result():
    return import_laser_file(FIX)


def test_converted_and_reported(result):
    assert result.total == 9
    assert [rid for _, rid, _ in result.converted] == ["03f2ed96-1719", "1a2b3c4d-0001", "1a2b3c4d-0002"]
    reasons = {f.record_id: f.reason for f in result.failures}
    assert "consts[3], but consts has 1 entries" in reasons["bad-const"]
    assert "unknown constructor 'Sometimes'" in reasons["bad-constructor"]
    assert "does not parse" in reasons["bad-syntax"]
    assert "'open' is used with 1 and 2 arguments" in reasons["bad-arity"] or \
        "'open' has 2 argument(s) here but 1" in reasons["bad-arity"]
    assert "not valid JSON" in reasons["line 8"]
    assert "no `prog`" in reasons["no-prog"]
    assert [f.line for f in result.failures] == [4, 5, 6, 7, 8, 9]


def test_output_compiles_with_its_declarations(result):
    core = stlspec.compile_text(result.text)
    assert [s.name for s in core.specs] == ["c_03f2ed96_1719", "c_1a2b3c4d_0001", "c_1a2b3c4d_0002"]
    assert set(core.vocabulary.categories) == {"floor", "boy", "gift", "door", "dining table", "person"}


def test_example_record_translation(result):
    spec = stlspec.parse(result.text).specs[0]
    text = stlspec.format(stlspec.ast.Program((spec,)))
    assert text == (
        "spec c_03f2ed96_1719 {\n"
        "  exists floor: floor, boy: boy, gift: gift.\n"
        "    holding(gift) @[0.0, 0.5]\n"
        '    then "sitting on"(boy, floor) @[0.5, 1.0]\n'
        "}\n")


def test_vars_are_bound_in_a_nested_block_and_coarse_hints_used(result):
    spec = stlspec.parse(result.text).specs[1]
    text = stlspec.format(stlspec.ast.Program((spec,)))
    assert "exists door: door.\n    exists a, b." in text.replace("\n      ", "\n    ")
    assert "@early" in text and "@middle" in text and "@late" in text  # a bad precise entry: coarse hints
    assert "a != b" in text and "not open(door)" in text


def test_single_event_becomes_hinted_eventually(result):
    spec = stlspec.parse(result.text).specs[2]
    assert 'eventually "in front of"(dining_table, person) @late' in stlspec.format(stlspec.ast.Program((spec,)))


def _trace(frames: list[dict], tracks=("floor", "boy", "gift")) -> Trace:
    """A 0/1 trace over the example record's names: one track per category."""
    T, N = len(frames), len(tracks)
    unary = np.zeros((T, N, 1))
    binary = np.zeros((T, N, N, 1))
    for t, f in enumerate(frames):
        if f.get("holding"):
            unary[t, 2, 0] = 1
        if f.get("sitting"):
            binary[t, 1, 0, 0] = 1
    return Trace(names=np.eye(N), unary=unary, binary=binary, present=np.ones((T, N), bool),
                 categories=tracks, unary_preds=("holding",), binary_preds=("sitting on",),
                 track_ids=tuple(f"t{i}" for i in range(N)))


def test_order_is_enforced_unlike_laser_datalog(result):
    """LASER's Until(a, b) was satisfiable by b alone; our `then` needs a before b."""
    core = stlspec.compile_text(result.text)
    spec = core.specs[0]
    in_order = _trace([{"holding": 1}, {}, {"sitting": 1}])
    b_only = _trace([{}, {"sitting": 1}, {}])
    reversed_ = _trace([{"sitting": 1}, {}, {"holding": 1}])
    assert evaluate(spec, in_order, "boolean").value == 1
    assert evaluate(spec, b_only, "boolean").value == 0
    assert evaluate(spec, reversed_, "boolean").value == 0


def test_parse_prog_errors():
    assert parse_prog('Unary("sitting on", Var(1))').args == ("sitting on", parse_prog("Var(1)"))
    for bad in ["", "Until(", "Until(a)", 'Unary("x", Var(1)) extra', "42"]:
        with pytest.raises(ConversionError):
            parse_prog(bad)


def test_cli_import_laser(tmp_path, capsys):
    out = tmp_path / "laser.stl"
    assert main(["import-laser", str(FIX), "-o", str(out), "--report", str(tmp_path / "r.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"{FIX}:4: cannot convert record 'bad-const'" in err
    assert "converted 3 of 9 records; 6 could not be converted" in err
    assert len(stlspec.compile_file(str(out)).specs) == 3
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 9


# ---------------------------------------------------------------------- unreadable records files

RECORD = b'{"caption": "a", "prog": "Logic(Unary(\\"walking\\", Const(-1)))", "consts": ["person"]}'


@pytest.mark.parametrize("kind", KINDS)
def test_import_laser_file_refuses_unreadable_files(tmp_path, kind):
    path, fragment = unreadable(tmp_path, kind, RECORD)
    with pytest.raises(stlspec.StlError) as info:
        import_laser_file(path)
    (d,) = info.value.diagnostics
    assert d.code == "E801" and d.path == path and fragment in d.message, d
    if kind == "latin1":
        assert (d.span.line, d.span.column) == BAD_BYTE_AT


@pytest.mark.parametrize("kind", KINDS)
def test_cli_import_laser_refuses_unreadable_files(tmp_path, capsys, kind):
    path, fragment = unreadable(tmp_path, kind, RECORD)
    out = tmp_path / "out.stl"
    assert main(["import-laser", path, "-o", str(out)]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and fragment in cap.err
    where = f"{path}:{BAD_BYTE_AT[0]}:{BAD_BYTE_AT[1]}" if kind == "latin1" else path
    assert f"{where}: error[E801]: " in cap.err, cap.err
    assert not out.exists()  # nothing half-written


def test_import_laser_lines_end_at_newline_only(tmp_path):
    """A U+2028 inside a JSON string does not split the record (line numbers count "\\n" only)."""
    p = tmp_path / "r.jsonl"
    p.write_text('{"caption": "a\u2028b", "prog": "Until(", "consts": []}\n{"caption": "c", "prog": "Until("}\n',
                 encoding="utf-8")
    result = import_laser_file(p)
    assert result.total == 2 and [f.line for f in result.failures] == [1, 2]
    assert result.failures[0].record_id == "a\u2028b"


@pytest.mark.parametrize("prog, reason", [
    ("Next(" * 5000 + 'Logic(Unary("a", Var(1)))' + ")" * 5000, "at character 1004: constructors nested more than 200"),
    ('Finally(Logic(Unary("a", Var(' + "9" * 5000 + "))))", "integer of 5,000 digits (at most 18)"),
])
def test_hostile_progs_fail_their_record(prog, reason):
    # (were a RecursionError and a ValueError from deep inside the prog parser)
    from stlspec.laser_import import import_laser_lines

    ok = json.dumps({"caption": "v1", "prog": 'Finally(Logic(Unary("a", Var(1))))'})
    result = import_laser_lines([ok, json.dumps({"caption": "v2", "prog": prog})])
    assert [(f.line, f.record_id) for f in result.failures] == [(2, "v2")]
    assert reason in result.failures[0].reason
    assert [rid for _, rid, _ in result.converted] == ["v1"]
