"""Untrusted text (captions, ids, file names, model answers) never injects into generated files,
and the core modules do not depend on the LLM package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import stlspec
from stlspec.laser_import import import_laser_lines
from stlspec.naming import comment_block, comment_line

EVIL = 'x\nspec evil "injected" { true }\r\nspec evil2 { true }\u2028spec evil3 { true }\x1b[2J'


@pytest.mark.parametrize("text", [EVIL, "\x85\x0b\x0c", "a" * 10_000])
def test_comments_cannot_end_early(text):
    line = "// " + comment_line(text)
    assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\x1b" not in line
    assert len(line) < 600
    program = stlspec.parse(line + "\n" + comment_block(text) + "\n")
    assert program.specs == () if hasattr(program, "specs") else True


def test_laser_import_caption_cannot_inject_a_spec():
    record = {"caption": EVIL, "prog": "Eventually(holding(a, b))"}
    result = import_laser_lines([json.dumps(record)])
    program = stlspec.parse(result.text)
    names = [s.name.text if hasattr(s.name, "text") else s.name for s in program.specs]
    assert not any("evil" in str(n) for n in names), result.text
    assert "spec evil" not in "\n".join(ln for ln in result.text.splitlines() if not ln.lstrip().startswith("//"))


@pytest.mark.parametrize("line", ["[" * 100_000 + "]" * 100_000, '{"caption": 1' + "0" * 5000 + "}"])
def test_laser_import_hostile_json_fails_that_record(line):
    result = import_laser_lines([line, json.dumps({"caption": "ok", "prog": "Eventually(holding(a, b))"})])
    assert result.total == 2 and len(result.failures) >= 1


def test_core_modules_do_not_import_the_llm_package():
    code = ("import sys, stlspec.negatives, stlspec.laser_import, stlspec.cli; "
            "bad = [m for m in sys.modules if m.startswith('stlspec.llm')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("body", [
    "(" * 5000 + "walking(a)" + ")" * 5000,
    "not " * 5000 + "walking(a)",
    "eventually " * 3000 + "walking(a)",
    "next[100000000] walking(a)",
    "next[" + "9" * 400 + "] walking(a)",
])
def test_pathological_model_answers_fail_that_record_only(body):
    from stlspec.llm.generate import validate_answer

    answer = "```stl\nspec s {\n  exists a. " + body + "\n}\n```"
    outcome = validate_answer(answer, "a caption", "s", None)
    assert outcome.ok or outcome.diagnostics, outcome  # a result or diagnostics, never an exception
