"""End-to-end CLI tests: the commands a user types, their output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stlspec.cli import main

VOCAB = """category person, cup, door
unary walking(person), open(door)
binary holding(person, cup), near(any, any)
"""

THREE_MISTAKES = VOCAB + """
spec grab "a person grabs a cup, then walks" {
  exists p: person, c: cup.
    near(p, c) @early
    then holdng(p, c)
    then walkin(p) and near(p, c @late
}
"""

CHECKER_MISTAKES = VOCAB + """
spec grab "a person grabs a cup, then walks" {
  exists p: persn, c: cup.
    near(p, c) @early
    then holdng(p, c)
    then eventually[6, 2] walking(p) @late
}
"""


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_reports_all_three_mistakes_with_positions_and_help(tmp_path, capsys):
    path = tmp_path / "grab.stl"
    path.write_text(CHECKER_MISTAKES)
    code, out, err = run(["check", str(path)], capsys)
    assert code == 1
    for needle in (f"{path}:6:13: error[E202]: unknown category 'persn'", "did you mean 'person'?",
                   f"{path}:8:10: error[E201]: unknown binary predicate 'holdng'", "did you mean 'holding'?",
                   f"{path}:9:21: error[E401]", "did you mean [2, 6]?", "3 errors"):
        assert needle in err


def test_check_syntax_error(tmp_path, capsys):
    path = tmp_path / "grab.stl"
    path.write_text(THREE_MISTAKES)
    code, _, err = run(["check", str(path)], capsys)
    assert code == 1 and "error[E101]" in err and "^" in err


def test_check_json(tmp_path, capsys):
    path = tmp_path / "grab.stl"
    path.write_text(CHECKER_MISTAKES)
    code, out, _ = run(["check", "--format", "json", str(path)], capsys)
    assert code == 1
    data = json.loads(out)
    assert [d["code"] for d in data] == ["E202", "E201", "E401"]
    assert data[0]["line"] == 6 and data[0]["hints"]


def test_check_clean_and_missing_file(tmp_path, capsys):
    path = tmp_path / "ok.stl"
    path.write_text(VOCAB + "spec s { exists p: person. eventually walking(p) }\n")
    assert run(["check", str(path)], capsys)[0] == 0
    code, _, err = run(["check", str(tmp_path / "nope.stl")], capsys)
    assert code == 1 and "cannot read" in err


def test_fmt_check_and_write(tmp_path, capsys):
    path = tmp_path / "s.stl"
    path.write_text(VOCAB + "spec s{exists p:person.eventually walking(p)}")
    assert run(["fmt", "--check", str(path)], capsys)[0] == 1
    assert run(["fmt", str(path)], capsys)[0] == 0
    assert run(["fmt", "--check", str(path)], capsys)[0] == 0
    assert "spec s {\n  exists p: person.\n    eventually walking(p)\n}\n" in path.read_text()


def test_compile_core(tmp_path, capsys):
    path = tmp_path / "s.stl"
    path.write_text(VOCAB + "spec s { exists p: person. walking(p) then open(p) }\n")
    code, out, err = run(["compile", "--target", "core", str(path)], capsys)
    assert code == 1 and "E302" in err  # open(door) applied to a person
    path.write_text(VOCAB + "spec s { exists p: person, d: door. walking(p) then open(d) }\n")
    code, out, _ = run(["compile", "--target", "core", str(path)], capsys)
    assert code == 0 and "#event1" in out


def test_unknown_target(tmp_path, capsys):
    path = tmp_path / "s.stl"
    path.write_text(VOCAB + "spec s { true }\n")
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--target", "llvm", str(path)])
    assert exit_.value.code == 2
    assert "invalid choice: 'llvm' (choose from 'core', 'scallop')" in capsys.readouterr().err


def test_eval_on_a_trace(tmp_path, capsys):
    spec = tmp_path / "s.stl"
    spec.write_text(VOCAB + "spec s { exists p: person, c: cup. near(p, c) @early then holding(p, c) }\n")
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({
        "version": 1, "num_frames": 4,
        "tracks": [{"id": "man", "names": {"person": 1.0}}, {"id": "mug", "names": {"cup": 1.0}}],
        "unary": [],
        "binary": [{"pred": "near", "subject": "man", "object": "mug", "frames": [0], "p": 1.0},
                   {"pred": "holding", "subject": "man", "object": "mug", "frames": [2], "p": 0.8}],
    }))
    code, out, err = run(["eval", str(spec), "--trace", str(trace), "--logic", "godel"], capsys)
    assert code == 0, err
    assert "0.8000" in out and "frame 0" in out and "frame 2" in out
    code, out, _ = run(["eval", str(spec), "--trace", str(trace), "--format", "json"], capsys)
    data = json.loads(out)
    assert data["s"]["value"] == pytest.approx(0.8)
    assert len(data["s"]["witnesses"]) == 2


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "check" in out and "eval" in out


def test_module_entry_point_and_light_import():
    code = ("import sys, stlspec; stlspec.compile_text('unary a(any)\\nspec s { exists x. a(x) }'); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    proc = subprocess.run([sys.executable, "-m", "stlspec", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "stlspec" in proc.stdout
