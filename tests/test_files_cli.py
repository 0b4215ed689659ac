"""Hostile files and command lines: every reader and the CLI answer with our positioned errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import stlspec
from stlspec.cli import main
from stlspec import diagnostics
from stlspec.diagnostics import StlError
from stlspec.files import read_text

REPO = Path(__file__).resolve().parent.parent
VOCAB = "category person\nunary walking(person)\n"


def codes(err: StlError) -> list[str]:
    return [d.code for d in err.diagnostics]


def test_include_of_a_special_file_is_refused_without_reading(tmp_path):
    with pytest.raises(StlError) as err:
        stlspec.compile_text('include "/dev/zero"\nspec s { true }', path=str(tmp_path / "a.stl"))
    (d,) = err.value.diagnostics
    assert d.code == "E801" and d.span.line == 1 and "not a regular file" in d.message


def test_include_of_a_directory_and_of_a_missing_file(tmp_path):
    with pytest.raises(StlError) as err:
        stlspec.compile_text(f'include "{tmp_path}"\ninclude "nope.stl"\nspec s {{ true }}',
                             path=str(tmp_path / "a.stl"))
    assert codes(err.value) == ["E801", "E801"]
    assert "directory" in err.value.diagnostics[0].message


def test_include_never_echoes_another_files_contents(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:TOPSECRET:/root:/bin/bash\n")
    main_file = tmp_path / "a.stl"
    main_file.write_text(f'include "{secret}"\nspec s {{ true }}\n')
    with pytest.raises(StlError) as err:
        stlspec.compile_file(str(main_file))
    assert codes(err.value) == ["E206"]
    assert "TOPSECRET" not in err.value.render()


def test_non_utf8_spec_include_and_vocab_files_are_positioned(tmp_path, capsys):
    bad = tmp_path / "bad.stl"
    bad.write_bytes(b"category person\nspec caf\xe9 { true }\n")
    with pytest.raises(StlError) as err:
        stlspec.compile_file(str(bad))
    (d,) = err.value.diagnostics
    assert d.code == "E801" and "line 2, column 9" in d.message
    inc = tmp_path / "inc.stl"
    inc.write_text(f'include "{bad}"\nspec s {{ true }}\n')
    with pytest.raises(StlError) as err:
        stlspec.compile_file(str(inc))
    assert codes(err.value) == ["E801"] and err.value.diagnostics[0].span.line == 1
    good = tmp_path / "good.stl"
    good.write_text(VOCAB + "spec s { true }\n")
    assert main(["check", "--vocab", str(bad), str(good)]) == 1
    assert "E801" in capsys.readouterr().err


def test_size_cap():
    with pytest.raises(StlError) as err:
        read_text(REPO / "README.md", error=diagnostics.cannot_read, what="file", max_bytes=10)
    assert codes(err.value) == ["E801"]


@pytest.mark.parametrize("where", ["dir", "missing_dir"])
def test_compile_output_to_a_directory_or_a_missing_directory(tmp_path, capsys, where):
    spec = tmp_path / "s.stl"
    spec.write_text(VOCAB + "spec s { true }\n")
    out = tmp_path if where == "dir" else tmp_path / "no" / "such" / "out.txt"
    assert main(["compile", "--target", "core", "-o", str(out), str(spec)]) == 1
    assert "E804" in capsys.readouterr().err


def test_unknown_spec_has_its_own_code(tmp_path, capsys):
    spec = tmp_path / "s.stl"
    spec.write_text(VOCAB + "spec walks { true }\n")
    assert main(["compile", "--spec", "walk", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "E208" in err and "did you mean 'walks'" in err


def test_fmt_on_a_missing_file_is_not_unchanged(tmp_path, capsys):
    assert main(["fmt", str(tmp_path / "missing.stl")]) == 1
    out = capsys.readouterr()
    assert "E801" in out.err and "0 unchanged" in out.err and "1 could not be formatted" in out.err


def test_open_vocabulary_is_announced(tmp_path, capsys):
    spec = tmp_path / "s.stl"
    spec.write_text("spec s { exists x. walking(x) }\n")
    assert main(["check", str(spec)]) == 0
    assert "open-vocabulary mode" in capsys.readouterr().err


def test_broken_pipe_is_quiet(tmp_path):
    spec = tmp_path / "s.stl"
    spec.write_text(VOCAB + "".join(f"spec s{i} {{ exists p: person. always walking(p) }}\n" for i in range(3000)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(f"{sys.executable} -m stlspec compile --target core {spec} | head -1", shell=True,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.startswith("spec s0")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_check_does_not_import_the_llm_package(tmp_path):
    spec = tmp_path / "s.stl"
    spec.write_text(VOCAB + "spec s { true }\n")
    code = ("import sys; from stlspec.cli import main; rc = main(['check', '-q', sys.argv[1]]); "
            "assert rc == 0; bad = [m for m in sys.modules if m.startswith('stlspec.llm')]; "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code, str(spec)], check=True, env=env, timeout=120)


def test_many_specs_one_error_recovers_linearly_and_reports_every_error():
    good = "spec ok{i} {{ exists p: person. walking(p) then not walking(p) }}\n"
    text = VOCAB + "".join(good.format(i=i) for i in range(1000))
    text += "spec broken1 { walking( }\n" + "".join(good.format(i=i + 2000) for i in range(10))
    text += "spec broken2 { always }\n"
    with pytest.raises(StlError) as err:
        stlspec.parse(text)
    assert len(err.value.diagnostics) == 2
    assert [d.span.line for d in err.value.diagnostics] == [1003, 1014]


@pytest.mark.parametrize("space", ["\u00a0", "\u2028", "\u3000", "\x0b", "\x1c"])
def test_both_parsers_reject_non_ascii_whitespace(space):
    from stlspec.fastparse import Fallback, fast_parse
    from stlspec.parser import lark_parse

    text = f"spec s {{{space}true }}"
    with pytest.raises(Fallback):
        fast_parse(text)
    with pytest.raises(StlError):
        lark_parse(text)
    with pytest.raises(StlError) as err:
        stlspec.parse(text)
    assert codes(err.value) == ["E102"]


@pytest.mark.parametrize("text", [
    "spec next { true }",                                         # spec names cannot be quoted
    "spec s { exists not. true }",                                # nor variables
    "spec s { exists x. walking(not) }",                          # nor arguments
    "unary until(any)\nspec s { exists x. until(x) }",           # predicate names can
    "category next\nspec s { true }",                             # category names can
    "spec s { exists x. always(x) }",
])
def test_keyword_hints_never_suggest_a_rejected_quoting(text):
    import re

    with pytest.raises(StlError) as err:
        stlspec.parse(text)
    suggested = [m.group(1) for d in err.value.diagnostics for h in d.hints
                 for m in [re.search(r"'(\w+)' is a keyword; (?:quote it|a predicate with that name must be quoted)", h)]
                 if m]
    for word in suggested:  # following the hint must get past the error
        fixed = re.sub(rf"\b{word}\b", f'"{word}"', text)
        try:
            stlspec.parse(fixed)
        except StlError as again:
            first = err.value.diagnostics[0].span.start
            assert all(e.span.start > first + 2 for e in again.diagnostics), (text, fixed)
    assert bool(suggested) == any(w in text for w in ("unary until", "category next", "always(x)")), suggested


def test_prefix_operators_and_quantifiers_start_at_their_keyword():
    text = VOCAB + "spec s { exists a: person. not walking(a) then eventually[0, 2] walking(a) }"
    core = stlspec.compile_text(text)
    assert [e.label for e in core.specs[0].events] == ["not walking(a)", "eventually[0, 2] walking(a)"]
    q = stlspec.parse(text).specs[0].formula
    assert text[q.span.start:q.span.end].startswith("exists a: person.")


def test_echoed_source_lines_are_capped_and_sanitised(tmp_path, capsys):
    # A 180,000-character line with an error (a terminal escape) near its end: the excerpt shows at most
    # MAX_ECHO characters of it around the error (marked … where cut), with the caret under the error and
    # the control character replaced; the reported position is still the real one.
    prefix = "spec s { exists x. " + "a(x) and " * 20_000
    path = tmp_path / "long.stl"
    path.write_text("unary a(any)\n" + prefix + "\x1b[2J a(x) }\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"long.stl:2:{len(prefix) + 1}:" in err and "\x1b" not in err
    lines = err.splitlines()
    text = next(ln for ln in lines if ln.startswith("2 | "))[len("2 | "):]
    caret = next(ln for ln in lines if ln.startswith("  | ") and "^" in ln)[len("  | "):]
    assert len(text) <= diagnostics.MAX_ECHO + 2 and text.startswith("…")
    assert text[caret.index("^")] == "\ufffd"
