"""The caption pipeline's problems are :class:`Diagnostic` objects built by the ``llm_*`` constructors.

* every E7xx/W7xx of an answer or a request is a ``Diagnostic`` about no file (``path=None``), rendered
  ``error[E703]: …``; a record holds them next to the checker's diagnostics;
* the JSONL report keeps its format: ``Diagnostic.to_dict()`` per diagnostic (``path`` null for the
  pipeline's own codes) and records read back from the report or the cache are equal to what was written;
* an unreadable captions file (a directory, a device, bytes that are not UTF-8) or a malformed line is an
  E706 diagnostic with its line and column, for ``load_captions`` and for ``stlspec from-captions``;
* ``stlspec negatives`` reads its spec file through the defensive reader (E801).
"""

from __future__ import annotations

import json

import pytest

from stlspec import diagnostics
from stlspec.cli import main
from stlspec.diagnostics import Diagnostic, StlError
from stlspec.llm.generate import validate_answer
from stlspec.llm.records import CaptionFileError, SpecRecord, load_captions, write_report
from stlspec.span import Span
from unreadable import BAD_BYTE_AT, KINDS, unreadable

VOCAB_TEXT = "category person\nunary walking(person)\n"
SPEC = "spec s { exists a: person. eventually walking(a) }"

KEYS = ["path", "line", "column", "end_line", "end_column", "severity", "code", "message", "hints"]


@pytest.fixture(scope="module")
def vocab():
    import stlspec

    return stlspec.compile_text(VOCAB_TEXT).vocabulary


def test_pipeline_constructors_build_fileless_diagnostics():
    made = [diagnostics.llm_no_spec(), diagnostics.llm_several_specs(2), diagnostics.llm_refused("policy"),
            diagnostics.llm_request_failed("HTTP 500 after retries"),
            diagnostics.llm_batch_entry_failed("batch entry expired"), diagnostics.llm_answer_cut_off(),
            diagnostics.llm_declarations_ignored(3)]
    assert [d.code for d in made] == ["E701", "E702", "E703", "E704", "E705", "W701", "W702"]
    for d in made:
        assert isinstance(d, Diagnostic) and d.path is None and not d.span.known
        assert d.render().startswith(f"{d.severity}[{d.code}]: {d.message}")
    assert made[1].message == "the answer holds 2 specs; expected exactly one"
    assert made[2].message == "the model refused to answer (policy)"
    assert made[6].message == "3 declaration(s) in the answer were ignored"
    assert [d.is_error for d in made] == [True] * 5 + [False] * 2


def test_validate_answer_returns_diagnostics(vocab):
    none = validate_answer("I cannot see a video.", "c", "s", vocab)
    assert not none.ok and [d.code for d in none.diagnostics] == ["E701"]
    assert none.rendered.startswith("error[E701]: no spec found in the answer")
    two = validate_answer(f"```stl\n{SPEC}\n{SPEC.replace('spec s', 'spec t')}\n```", "c", "s", vocab)
    assert [d.code for d in two.diagnostics] == ["E702"]
    assert two.rendered == "error[E702]: the answer holds 2 specs; expected exactly one"
    decl_only = validate_answer("```stl\nunary running(any)\n```", "c", "s", vocab)
    assert [d.code for d in decl_only.diagnostics] == ["E701"]
    bad = validate_answer("```stl\nspec s { exists a: person. eventually runing(a) }\n```", "c", "s", vocab)
    assert [d.code for d in bad.diagnostics] == ["E201"] and bad.diagnostics[0].span.known
    warned = validate_answer(f"```stl\nunary running(any)\n{SPEC}\n```", "c", "s", vocab)
    assert warned.ok and [d.code for d in warned.diagnostics] == ["W702"]
    assert all(isinstance(d, Diagnostic) for o in (none, two, decl_only, bad, warned) for d in o.diagnostics)


def _records(vocab) -> list[SpecRecord]:
    bad = validate_answer("```stl\nspec s { exists a: person. eventually runing(a) }\n```", "c", "s", vocab)
    return [
        SpecRecord("v1", "a person walks", "v1", "ok", spec=SPEC, diagnostics=[diagnostics.llm_declarations_ignored(1)]),
        SpecRecord("v2", "someone runs", "v2", "failed", spec=bad.text,
                   diagnostics=[*bad.diagnostics, diagnostics.llm_answer_cut_off()], rendered=bad.rendered),
        SpecRecord("v3", "x", "v3", "failed", diagnostics=[diagnostics.llm_refused("no reason")],
                   error="refused: no"),
        SpecRecord("v4", "y", "v4", "failed", diagnostics=[diagnostics.llm_request_failed("HTTP 500")],
                   error="HTTP 500", transient=True),
    ]


def test_report_format_is_diagnostic_dicts_and_reads_back(tmp_path, vocab):
    records = _records(vocab)
    path = tmp_path / "r.jsonl"
    write_report(records, path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row, rec in zip(rows, records):
        assert row["diagnostics"] == [d.to_dict() for d in rec.diagnostics]
        for d in row["diagnostics"]:
            assert list(d) == KEYS
    assert rows[0]["diagnostics"] == [{"path": None, "line": 0, "column": 0, "end_line": 0, "end_column": 0,
                                       "severity": "warning", "code": "W702",
                                       "message": "1 declaration(s) in the answer were ignored", "hints": []}]
    e201 = rows[1]["diagnostics"][0]
    assert e201["code"] == "E201" and e201["path"] == "<s>" and e201["line"] >= 1 and e201["column"] > 1
    back = [SpecRecord.from_dict(r) for r in rows]
    assert [b.to_dict() for b in back] == rows
    assert all(isinstance(d, Diagnostic) for b in back for d in b.diagnostics)
    assert [b.headline() for b in back] == ["ok", f"E201 {records[1].diagnostics[0].message}",
                                           "refused: no", "HTTP 500"]


def test_records_cached_before_the_change_still_load():
    """A cached record written when pipeline problems were plain dicts reads back as Diagnostics."""
    old = {"caption_id": "v", "caption": "c", "spec_name": "v", "status": "failed", "spec": None,
           "diagnostics": [{"path": None, "line": 0, "column": 0, "end_line": 0, "end_column": 0,
                            "severity": "error", "code": "E703", "message": "the model refused to answer (x)",
                            "hints": []}],
           "rendered": "error[E703]: the model refused to answer (x)", "model": "m", "rounds": 1}
    rec = SpecRecord.from_dict(old)
    assert rec.diagnostics == [diagnostics.llm_refused("x")]
    assert rec.headline() == "E703 the model refused to answer (x)"


def test_diagnostic_dict_round_trip_keeps_position_and_hints():
    d = diagnostics.unknown_predicate("unknown predicate 'runing'", Span(10, 16, 2, 3, 2, 9), "f.stl",
                                      hints=["did you mean 'running'?"])
    back = Diagnostic.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.to_dict() == d.to_dict() and back.render() == d.render()
    assert back.render().startswith("f.stl:2:3: error[E201]: ")


# ---------------------------------------------------------------------- hostile captions files


CAPTION = b'{"id": "a", "caption": "ok"}'


@pytest.mark.parametrize("kind", KINDS)
def test_load_captions_refuses_unreadable_files(tmp_path, kind):
    path, fragment = unreadable(tmp_path, kind, CAPTION)
    with pytest.raises(CaptionFileError) as info:
        load_captions(path)
    assert isinstance(info.value, StlError)
    (d,) = info.value.diagnostics
    assert d.code == "E706" and d.path == path and fragment in d.message
    if kind == "latin1":
        assert (d.span.line, d.span.column) == BAD_BYTE_AT


@pytest.mark.parametrize("content,line,column,fragment", [
    ('{"id": "a", "caption": "x"}\n{"id": "b", "caption": }\n', 2, 24, "not valid JSON"),
    ('{"id": "a"}\n', 1, 1, "no caption text"),
    ('[1, 2]\n', 1, 1, "expected a JSON object"),
    ('{"id": "a", "caption": ' + "[" * 300 + "]" * 300 + "}\n", 1, 23 + 200, "nested more than 200 deep"),
])
def test_malformed_caption_lines_are_positioned(tmp_path, content, line, column, fragment):
    p = tmp_path / "c.jsonl"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(CaptionFileError) as info:
        load_captions(p)
    (d,) = info.value.diagnostics
    assert d.code == "E706" and fragment in d.message
    assert (d.span.line, d.span.column) == (line, column)
    assert str(info.value).startswith(f"{p}:{line}:{column}: error[E706]: ")


@pytest.mark.parametrize("kind", KINDS)
def test_cli_from_captions_refuses_unreadable_files(tmp_path, capsys, kind):
    path, fragment = unreadable(tmp_path, kind, CAPTION)
    out = tmp_path / "out.stl"
    code = main(["from-captions", path, "-o", str(out), "--cache", str(tmp_path / "cache.sqlite"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and fragment in err
    assert "error[E706]: " in err and not out.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_cli_negatives_refuses_unreadable_files(tmp_path, capsys, kind):
    path, fragment = unreadable(tmp_path, kind, CAPTION)
    assert main(["negatives", path]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err and "error[E801]: " in err


# ---------------------------------------------------------------------- outputs and the cache


@pytest.mark.parametrize("where", ["dir", "device", "not_sqlite"])
def test_cache_path_that_cannot_hold_a_cache(tmp_path, capsys, where):
    from stlspec.llm.cache import Cache

    cache = {"dir": str(tmp_path), "device": "/dev/zero", "not_sqlite": str(tmp_path / "c.jsonl")}[where]
    if where == "not_sqlite":
        (tmp_path / "c.jsonl").write_text('{"id": "a", "caption": "a person walks"}\n' * 50)
    before = (tmp_path / "c.jsonl").read_bytes() if where == "not_sqlite" else None
    with pytest.raises(StlError) as info:
        Cache(cache)
    (d,) = info.value.diagnostics
    assert d.code == "E706" and d.path == cache and "as the cache" in d.message
    captions = tmp_path / "caps.jsonl"
    captions.write_text('{"id": "a", "caption": "a person walks"}\n')
    code = main(["from-captions", str(captions), "-o", str(tmp_path / "o.stl"), "--cache", cache, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "error[E706]: cannot use" in err
    if before is not None:
        assert (tmp_path / "c.jsonl").read_bytes() == before  # never written to


def test_from_captions_refuses_a_directory_as_output_before_any_work(tmp_path, capsys):
    captions = tmp_path / "caps.jsonl"
    captions.write_text('{"id": "a", "caption": "a person walks"}\n')
    for extra in (["-o", str(tmp_path)], ["-o", str(tmp_path / "o.stl"), "--report", str(tmp_path)]):
        code = main(["from-captions", str(captions), *extra, "--cache", str(tmp_path / "c.sqlite"), "--dry-run"])
        err = capsys.readouterr().err
        assert code == 1 and f"{tmp_path}: error[E804]: cannot write {tmp_path}: it is a directory" in err


def test_write_report_into_a_directory_is_e804(tmp_path):
    with pytest.raises(StlError) as info:
        write_report([], tmp_path)
    assert [d.code for d in info.value.diagnostics] == ["E804"]
    write_report([], tmp_path / "new" / "r.jsonl")  # missing folders are created
    assert (tmp_path / "new" / "r.jsonl").read_text() == ""


@pytest.mark.parametrize("command", ["import-laser", "negatives"])
@pytest.mark.parametrize("where", ["dir", "missing_dir"])
def test_outputs_that_cannot_be_written_are_e804(tmp_path, capsys, command, where):
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    source = {"import-laser": repo / "tests" / "fixtures" / "llm" / "laser_records.jsonl",
              "negatives": repo / "examples" / "specs" / "pick_up.stl"}[command]
    out = str(tmp_path) if where == "dir" else str(tmp_path / "no" / "such" / "o.stl")
    assert main([command, str(source), "-o", out]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{out}: error[E804]: cannot write" in err
    if command == "import-laser":
        assert main([command, str(source), "-o", str(tmp_path / "o.stl"), "--report", out]) == 1
        assert f"{out}: error[E804]" in capsys.readouterr().err
