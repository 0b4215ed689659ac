"""``python -m laser_train convert``: tiny samples of each public format (tests/convert_samples.py) convert into a
dataset that validates, trains and evaluates; malformed inputs give errors naming the file, record and field."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import stlspec
from laser_train.convert import FORMATS, build_parser
from laser_train.convert import main as convert_main
from laser_train.convert.common import mask_box, rle_decode, rle_encode, safe_load_pickle, ConvertError
from laser_train.data.format import validate_dataset
from convert_samples import H, LASER_RECORDS, T, W, WRITERS

GROUND_TRUTH = {"vidvrd": True, "vidor": True, "openpvsg": True, "action-genome": True, "something-else": False,
                "laser": False}
MASKS = {"openpvsg", "laser"}


def write_specs(out: Path) -> None:
    """What `stlspec from-captions` would write: one spec per manifest record, named as the manifest says."""
    vocab = stlspec.compile_file(str(out / "vocabulary.stl")).vocabulary
    pred = stlspec.formatter.quote_name(vocab.binary[0][0])
    parts = ['include "vocabulary.stl"']
    for line in (out / "manifest.jsonl").read_text().splitlines():
        rec = json.loads(line)
        parts.append(f"spec {rec['spec_name']} {{\n  exists a, b.\n    eventually {pred}(a, b)\n}}")
    (out / "specs.stl").write_text("\n\n".join(parts) + "\n")


def convert(fmt: str, tmp_path: Path, *extra: str, capsys=None) -> tuple[int, Path]:
    src = tmp_path / "src"
    args = WRITERS[fmt](src) if not src.exists() else None
    if args is None:
        raise AssertionError("sample written twice")
    out = tmp_path / "out"
    return convert_main([fmt, "--out", str(out), *args, *extra]), out


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_sample_converts_validates(fmt, tmp_path, capsys):
    rc, out = convert(fmt, tmp_path)
    summary = capsys.readouterr().out
    assert rc == 0, summary
    assert "converted 3 videos" in summary and "0 records skipped" in summary
    if fmt != "laser":
        write_specs(out)
        captions = [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()]
        assert len(captions) == 3 and all(c["caption"] for c in captions)
    ds = validate_dataset(out)
    assert len(ds.records) == 3
    assert {r.split for r in ds.records} == {"train", "val" if fmt in ("vidor", "openpvsg", "something-else")
                                             else "test"}
    assert all(r.num_frames == T and r.size == (W, H) for r in ds.records)
    assert all((r.scene_graph is not None) == GROUND_TRUTH[fmt] for r in ds.records)
    masks = [tr["masks"] for r in ds.records for tr in r.read_tracks()]  # masks stay on disk until read
    assert all((m is not None) == (fmt in MASKS) for m in masks)
    if fmt in MASKS:  # every mask decodes to the track's box
        for r in ds.records:
            for tr in r.read_tracks():
                for box, m in zip(tr["boxes"], tr["masks"]):
                    assert mask_box(rle_decode(m)) == box


def test_ground_truth_content(tmp_path, capsys):
    """VidVRD: end_fid is exclusive; the scene graph holds exactly the relation instances."""
    rc, out = convert("vidvrd", tmp_path)
    assert rc == 0
    g = json.loads((out / "scene_graphs" / "ILSVRC2015_train_00005003.json").read_text())
    facts = {(b["pred"], b["subject"], b["object"]): b["frames"] for b in g["binary"]}
    assert facts == {("chase", "0", "1"): [0, 1], ("bite", "0", "1"): [2, 3], ("right", "1", "0"): [0, 1, 2, 3]}
    assert {t["id"]: t["names"] for t in g["tracks"]} == {"0": {"dog": 1.0}, "1": {"frisbee": 1.0}}
    cap = json.loads((out / "captions.jsonl").read_text().splitlines()[0])["caption"]
    assert cap == "A dog chase a frisbee, then a frisbee right a dog, then a dog bite a frisbee."


def test_action_genome_names_and_absent_objects(tmp_path, capsys):
    rc, out = convert("action-genome", tmp_path)
    assert rc == 0
    vocab = (out / "vocabulary.stl").read_text()
    assert 'category person, bag, "cup/glass/bottle", table' in vocab  # the pickles' spelling
    assert "binary looking_at(any, any)" in vocab and "lookingat" not in vocab
    g = json.loads((out / "scene_graphs" / "001YG.json").read_text())
    present = {t["id"]: t["present"] for t in g["tracks"]}
    assert present["table"] == [1, 2, 3]  # not visible in the first annotated frame
    facts = {(b["pred"], b["object"]): b["frames"] for b in g["binary"]}
    assert facts[("holding", "cup/glass/bottle")] == [0, 1] and facts[("beneath", "table")] == [1, 2, 3]
    tracks = json.loads((out / "tracks" / "001YG.json").read_text())["tracks"]
    cup = next(t for t in tracks if t["id"] == "cup/glass/bottle")
    assert cup["boxes"][0] == [16.0, 5.0, 24.0, 11.0]  # (x, y, w, h) -> x0 y0 x1 y1
    man = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert man["id"] == "001YG" and man["spec_name"] == "c_001YG"  # not a valid name: from-captions' renaming


def test_openpvsg_masks_spans_and_caption_order(tmp_path, capsys):
    rc, out = convert("openpvsg", tmp_path, "--stride", "2")
    assert rc == 0
    g = json.loads((out / "scene_graphs" / "P01_01.json").read_text())
    assert g["num_frames"] == 2  # frames 0 and 2 kept
    facts = {(b["pred"], b["subject"], b["object"]): b["frames"] for b in g["binary"]}
    # spans are inclusive: holding [0, 1] keeps frame 0; drinking from [2, 3] and on [2, 3] keep frame 2
    assert facts == {("holding", "1", "2"): [0], ("drinking from", "1", "2"): [1], ("on", "2", "3"): [1]}
    cap = json.loads((out / "captions.jsonl").read_text().splitlines()[0])["caption"]
    assert cap == "An adult holds a cup. Then the adult drinks from the cup."


def test_rle_round_trip_and_starting_with_foreground():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((5, 7)) < 0.4
        assert (rle_decode(rle_encode(m)) == m).all()
    m = np.ones((2, 2), bool)
    assert rle_encode(m) == {"size": [2, 2], "counts": [0, 4]}


# ---------------------------------------------------------------------------------------------- train + eval


@pytest.mark.parametrize("fmt", ["vidvrd", "action-genome", "laser"])
def test_converted_dataset_trains_one_step_and_evaluates(fmt, tmp_path, capsys):
    from laser_train import train as Tr
    from laser_train.config import load_config

    rc, out = convert(fmt, tmp_path)
    assert rc == 0
    if fmt != "laser":
        write_specs(out)
    cfg = load_config(None, [f"--data.path={out}", "--data.background=", "--loss.negatives=other",
                             "--loss.num_negatives=1",
                             "--train.epochs=1", "--train.batch_size=2", "--train.progress=false",
                             "--data.crop_size=8", "--eval.ks=1,5"])
    res = Tr.main(cfg, "weak", tmp_path / "run")
    m = res["metrics"]
    assert np.isfinite(res["history"][0]["loss"])
    assert 0 <= m["spec_accuracy"] <= 1
    if GROUND_TRUTH[fmt]:
        for key in ("binary_r1", "laser_pair_r1", "laser_obj_r1", "predcls_gc_r5", "predcls_nogc_mr5"):
            assert 0 <= m[key] <= 1, key
    else:
        assert "binary_r1" not in m


# ---------------------------------------------------------------------------------------------- malformed


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def run_bad(fmt, tmp_path, edit, *extra):
    src = tmp_path / "src"
    args = WRITERS[fmt](src)
    edit(src)
    return convert_main([fmt, "--out", str(tmp_path / "out"), *args, *extra])


VRD_TRAIN = "vidvrd-dataset/train/ILSVRC2015_train_00005003.json"


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["relation_instances"][0].update(object_tid=7),
     "record 'ILSVRC2015_train_00005003': relation_instances[0].object_tid: names object 7, which is not in "
     "subject/objects"),
    (lambda d: d["trajectories"][2][0]["bbox"].update(xmax=40),
     "record 'ILSVRC2015_train_00005003': trajectories[2][0].bbox: box [3, 2, 40, 14] is outside the 32x24 frame"),
    (lambda d: d.update(frame_count="4"),
     "record 'ILSVRC2015_train_00005003': frame_count: expected an integer >= 1, got '4'"),
    (lambda d: d["relation_instances"][1].update(end_fid=9),
     "record 'ILSVRC2015_train_00005003': relation_instances[1]: frames [2, 9) are empty or beyond frame_count 4"),
])
def test_vidvrd_malformed(tmp_path, capsys, edit, expected):
    rc = run_bad("vidvrd", tmp_path, lambda src: _edit_json(src / VRD_TRAIN, edit))
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{VRD_TRAIN}: {expected}" in err
    assert "--skip-invalid" in err


def test_missing_frame_folder_and_skip_invalid(tmp_path, capsys):
    rc = run_bad("vidvrd", tmp_path, lambda src: shutil.rmtree(src / "frames" / "ILSVRC2015_train_00010001"))
    err = capsys.readouterr().err
    assert rc == 2 and "record 'ILSVRC2015_train_00010001': frames: no frame folder or video" in err
    rc = run_bad("vidvrd", tmp_path / "again",
                 lambda src: shutil.rmtree(src / "frames" / "ILSVRC2015_train_00010001"), "--skip-invalid")
    cap = capsys.readouterr()
    assert rc == 0 and "skipped: " in cap.err and "converted 2 videos" in cap.out and "1 records skipped" in cap.out
    out = tmp_path / "again" / "out"
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2


def test_vidor_missing_video(tmp_path, capsys):
    rc = run_bad("vidor", tmp_path, lambda src: shutil.rmtree(src / "frames" / "0001"))
    err = capsys.readouterr().err
    assert rc == 2 and "annotation/validation/0001/4164158586.json: record '4164158586': frames: no frame folder " \
                       "or video" in err and "0001/4164158586" in err


def test_openpvsg_malformed(tmp_path, capsys):
    def bad_relation(src):
        _edit_json(src / "data" / "pvsg.json", lambda d: d["data"][1]["relations"].append([1, 9, "holding", [[0, 1]]]))
    assert run_bad("openpvsg", tmp_path / "a", bad_relation) == 2
    err = capsys.readouterr().err
    assert "pvsg.json: record 'P01_01': data[1].relations[3][1]: names object 9, which is not in the video's " \
           "objects (1, 2, 3)" in err

    def bad_span(src):
        _edit_json(src / "data" / "pvsg.json", lambda d: d["data"][0]["relations"][0].__setitem__(3, [[2, 7]]))
    assert run_bad("openpvsg", tmp_path / "b", bad_span) == 2
    assert "data[0].relations[0][3][0]: expected [start, end] with 0 <= start <= end < 4" in capsys.readouterr().err

    def small_mask(src):
        from convert_samples import palette_mask
        palette_mask(src / "data" / "vidor" / "masks" / "P01_01" / "0002.png", np.zeros((10, 10), np.uint8))
    assert run_bad("openpvsg", tmp_path / "c", small_mask) == 2
    assert "record 'P01_01': masks: 0002.png is 10x10 but meta says 32x24" in capsys.readouterr().err


def test_action_genome_truncated_and_unsafe_pickles(tmp_path, capsys):
    def truncate(src):
        p = src / "annotations" / "person_bbox.pkl"
        p.write_bytes(p.read_bytes()[:100])
    assert run_bad("action-genome", tmp_path / "a", truncate) == 2
    assert "person_bbox.pkl: person_bbox.pkl is truncated (the pickle ends early)" in capsys.readouterr().err

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned > /dev/null",))

    def evil(src):
        (src / "annotations" / "object_bbox_and_relationship.pkl").write_bytes(pickle.dumps({"x": Evil()}))
    assert run_bad("action-genome", tmp_path / "b", evil) == 2
    err = capsys.readouterr().err
    assert "object_bbox_and_relationship.pkl is not a readable data pickle: refusing to load" in err
    assert "system" in err


def test_action_genome_wrong_types_and_unknown_class(tmp_path, capsys):
    def edit(src, fn):
        p = src / "annotations" / "object_bbox_and_relationship.pkl"
        d = pickle.loads(p.read_bytes())
        fn(d)
        p.write_bytes(pickle.dumps(d))

    assert run_bad("action-genome", tmp_path / "a",
                   lambda s: edit(s, lambda d: d["00607.mp4/000040.png"][0].update(bbox="16 5 8 6"))) == 2
    err = capsys.readouterr().err
    assert "object_bbox_and_relationship.pkl: record '00607.mp4': object_bbox_and_relationship.pkl" \
           "['00607.mp4/000040.png'][0].bbox: expected (x, y, w, h), got '16 5 8 6'" in err
    assert run_bad("action-genome", tmp_path / "b",
                   lambda s: edit(s, lambda d: d["00607.mp4/000040.png"][0].update(
                       contacting_relationship=["licking"]))) == 2
    assert "contacting_relationship[0]: unknown relationship 'licking' (not in the class list)" in \
           capsys.readouterr().err


def test_something_else_malformed(tmp_path, capsys):
    box = "bounding_box_smthsmth_part1.json"
    assert run_bad("something-else", tmp_path / "a", lambda s: _edit_json(
        s / box, lambda d: d["42326"][1]["labels"][1]["box2d"].update(x2=33.5))) == 2
    err = capsys.readouterr().err
    assert "something-something-v2-train.json: record '42326': annotations['42326'][1].labels[1].box2d: box " \
           "[14.0, 6.0, 33.5, 20.0] is outside the 32x24 frame" in err
    assert run_bad("something-else", tmp_path / "b", lambda s: (s / "frames" / "100" / "0003.jpg").unlink()) == 2
    assert "annotations['100'][2].name: frame '100/0003.jpg' is not in the frame folder" in capsys.readouterr().err
    assert run_bad("something-else", tmp_path / "c", lambda s: shutil.rmtree(s / "frames" / "78687")) == 2
    assert "record '78687': frames: missing frame folder" in capsys.readouterr().err


def test_laser_malformed(tmp_path, capsys):
    def truncate(src):
        p = src / "masks" / "0002_2401075277_masks.pkl"
        p.write_bytes(p.read_bytes()[:-20])
    assert run_bad("laser", tmp_path / "a", truncate, "--skip-invalid") == 0
    cap = capsys.readouterr()
    assert "0002_2401075277_masks.pkl: record '0002_2401075277': masks: mask pickle is truncated" in cap.err
    assert "converted 2 videos" in cap.out
    out = tmp_path / "a" / "out"
    assert "0002" not in (out / "specs.stl").read_text()  # specs.stl and the manifest agree
    assert len(validate_dataset(out).records) == 2

    def wrong_shape(src):
        m = {0: {0: np.ones((H, W), bool)}}
        (src / "masks" / "0003_2754378442_masks.pkl").write_bytes(pickle.dumps(m))
    assert run_bad("laser", tmp_path / "b", wrong_shape) == 2
    assert "record '0003_2754378442': [0][0]: expected a bool array [1, 24, 32], got ndarray bool (24, 32)" in \
           capsys.readouterr().err

    def bad_prog(src):
        p = src / "train_specs.jsonl"
        p.write_text(p.read_text() + json.dumps({"caption": "x", "prog": "Until(", "consts": []}) + "\n")
    assert run_bad("laser", tmp_path / "c", bad_prog) == 2
    assert "train_specs.jsonl:3: record 'x': prog: prog does not parse" in capsys.readouterr().err


def test_safe_pickle_allows_numpy_only(tmp_path):
    p = tmp_path / "ok.pkl"
    p.write_bytes(pickle.dumps({1: {2: np.zeros((1, 2, 2), bool)}, "s": {1, 2}}))
    assert safe_load_pickle(p, "x")[1][2].shape == (1, 2, 2)
    p.write_bytes(pickle.dumps(Path("/etc")))
    with pytest.raises(ConvertError, match="refusing to load pathlib"):
        safe_load_pickle(p, "x")


def test_output_dir_must_be_empty_and_help_per_format(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    rc, _ = convert("vidvrd", tmp_path)
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    parser = build_parser()
    for fmt in FORMATS:
        with pytest.raises(SystemExit):
            parser.parse_args([fmt, "--help"])
        text = capsys.readouterr().out
        assert "example" in text and "--skip-invalid" in text and "stlspec from-captions" in text


# ---------------------------------------------------------------------------------------------- a new user's run


@pytest.mark.slow  # about 50 s on the loaded 2-core machine (CLIP training); CI runs it
def test_something_else_to_specs_to_clip_training_and_eval(tmp_path, monkeypatch, capsys):
    """Something-Else sample → convert → `stlspec from-captions` (fake API) → tiny CLIP model → `eval`."""
    pytest.importorskip("anthropic")
    pytest.importorskip("transformers")
    from laser_train import train as Tr
    from laser_train.__main__ import main as laser_main
    from laser_train.clip_model import save_random_clip
    from laser_train.config import load_config
    from stlspec.cli import main as stlspec_main
    from stlspec.llm.fakeapi import FakeMessagesAPI

    rc = laser_main(["convert", "something-else", "--out", str(tmp_path / "sth"),
                     *WRITERS["something-else"](tmp_path / "src")])
    assert rc == 0
    out = tmp_path / "sth"
    answers = {
        "Holding potato next to vicks vaporub bottle":
            'exists h: hand, p: potato, b: "vicks vaporub bottle".\n    holding(h, p) and "next to"(p, b)',
        "Putting a cup on a table": "exists h: hand, c: cup, t: table.\n    holding(h, c) @early\n"
                                    "    then on(c, t) @late",
        "Pushing a box from left to right": "exists h: hand, b: box.\n    touching(h, b) and moving(b)",
    }
    script = {"captions": {cap: {"answers": [f'```stl\nspec s "{cap}" {{\n  {body}\n}}\n```']}
                           for cap, body in answers.items()}}
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-convert")
    with FakeMessagesAPI(script, api_key="sk-ant-test-convert") as api:
        rc = stlspec_main(["from-captions", str(out / "captions.jsonl"), "-o", str(out / "specs.stl"),
                           "--vocab", str(out / "vocabulary.stl"), "--cache", str(tmp_path / "cache.sqlite"),
                           "--base-url", api.base_url, "--no-progress"])
    assert rc == 0, capsys.readouterr()
    ds = validate_dataset(out)
    assert [r.spec.name for r in ds.records] == ["c_78687", "c_42326", "c_100"]

    clip = save_random_clip(tmp_path / "clip", "tiny")
    cfg = load_config(None, [f"--data.path={out}", "--data.background=", "--loss.negatives=other",
                             "--loss.num_negatives=1", "--train.epochs=1", "--train.batch_size=2",
                             "--train.progress=false", "--model.name=clip", f"--model.path={clip}",
                             f"--run.out={tmp_path / 'run'}"])
    res = Tr.main(cfg, "weak", tmp_path / "run" / "weak")
    assert np.isfinite(res["history"][0]["loss"])
    capsys.readouterr()
    rc = laser_main(["eval", "--checkpoint", str(tmp_path / "run" / "weak" / "checkpoint.pt"), "--data", str(out),
                     "--split", "val"])
    metrics = json.loads(capsys.readouterr().out)
    assert rc == 0 and metrics["videos"] == 1 and metrics["split"] == "val"
    assert 0 <= metrics["spec_accuracy"] <= 1 and "binary_r1" not in metrics  # no ground truth in this dataset


# ---------------------------------------------------------------- hostile inputs of the LASER converter


def _laser_with(tmp_path: Path, edit=None, specs: list[str] | None = None) -> int:
    """Write the LASER sample, apply ``edit(src)``, convert with ``specs`` instead of the sample's spec files."""
    src = tmp_path / "src"
    args = WRITERS["laser"](src)
    if edit is not None:
        edit(src)
    if specs is not None:
        args = ["--specs", *specs, *args[args.index("--masks"):]]
    return convert_main(["laser", "--out", str(tmp_path / "out"), *args])


def _append_record(src: Path, line: str) -> None:
    p = src / "train_specs.jsonl"
    p.write_text(p.read_text() + line + "\n")


@pytest.mark.parametrize("case", ["dir", "device", "latin1", "too_large"])
def test_laser_unreadable_spec_records(tmp_path, capsys, monkeypatch, case):
    # The records file is read as `stlspec import-laser` reads it (laser_train.data.files: regular files
    # only, capped, UTF-8 with the first bad byte's position), never a hang or a traceback.
    if case == "too_large":
        import stlspec.laser_import

        monkeypatch.setattr(stlspec.laser_import, "MAX_RECORDS_BYTES", 100)
    latin = tmp_path / "latin1_specs.jsonl"
    latin.write_bytes(b'{"caption": "a", "prog": "x"}\n{"caption": "caf\xe9"}\n')
    specs = {"dir": [str(tmp_path)], "device": ["/dev/zero"], "latin1": [str(latin)], "too_large": None}[case]
    assert _laser_with(tmp_path / "t", specs=specs) == 2
    err = capsys.readouterr().err
    expected = {"dir": "is a directory", "device": "/dev/zero is not a regular file",
                "latin1": "latin1_specs.jsonl:2:17: not UTF-8 text (byte 0xe9)",
                "too_large": "over the limit of 100 bytes"}[case]
    assert expected in err and "Traceback" not in err
    assert "caf" not in err  # never echoes the file


@pytest.mark.parametrize("line, expected", [
    ('{"caption": "x", "prog": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests arrays/objects more than 200 deep"),
    ('{"caption": "x", "n": ' + "9" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    (json.dumps({"caption": "x", "prog": "Next(" * 5000 + "Logic(Unary(\"a\", Var(1)))" + ")" * 5000}),
     "constructors nested more than 200 deep"),
    (json.dumps({"caption": "x", "prog": "Finally(Logic(Unary(\"a\", Var(" + "9" * 5000 + "))))"}),
     "integer of 5,000 digits"),
    (json.dumps({"caption": "x", "prog": "Finally(Logic(Unary(\"a\", Var(1e400))))"}), "prog does not parse"),
])
def test_laser_hostile_records_fail_that_record(tmp_path, capsys, line, expected):
    assert _laser_with(tmp_path, lambda src: _append_record(src, line)) == 2
    err = capsys.readouterr().err
    assert "train_specs.jsonl:3: record" in err and expected in err and "Traceback" not in err


def test_laser_records_split_at_newlines_only(tmp_path, capsys):
    # A U+2028 inside a JSON string is not a line break (str.splitlines would cut the record in two).
    rec = dict(LASER_RECORDS[0], caption="0001_\u2028x")
    assert _laser_with(tmp_path, lambda src: _append_record(src, json.dumps(rec, ensure_ascii=False))) == 2
    err = capsys.readouterr().err
    assert "train_specs.jsonl:3: record '0001_\\u2028x': frames: missing frame folder" in err, err


@pytest.mark.parametrize("case", ["dir", "too_large"])
def test_laser_unreadable_mask_pickle(tmp_path, capsys, monkeypatch, case):
    from laser_train.convert import common

    vid = LASER_RECORDS[0]["caption"]

    def edit(src):
        p = src / "masks" / f"{vid}_masks.pkl"
        if case == "dir":
            p.unlink()
            (src / "masks" / f"{vid}.pkl").mkdir()  # a folder where a pickle should be: not taken for one
    if case == "too_large":
        monkeypatch.setattr(common, "PICKLE_LIMIT", 64)
    assert _laser_with(tmp_path, edit) == 2
    err = capsys.readouterr().err
    expected = {"dir": "masks: no mask pickle for this video", "too_large": "over the limit of 64 bytes"}[case]
    assert f"record '{vid}'" in err and expected in err and "Traceback" not in err


def test_converter_readers_refuse_special_files_and_deep_json(tmp_path):
    from laser_train.convert.common import read_json, read_text

    for path in ("/dev/zero", str(tmp_path)):
        for read in (read_json, read_text):
            with pytest.raises(ConvertError, match="directory|not a regular file"):
                read(Path(path), "annotation")
        with pytest.raises(ConvertError, match="directory|not a regular file"):
            safe_load_pickle(Path(path), "data pickle")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ConvertError, match="nested deeper than 64"):
        read_json(deep, "annotation")
    nan = tmp_path / "nan.json"
    nan.write_text('{"frame_count": NaN}')
    with pytest.raises(ConvertError, match="NaN is not valid JSON"):
        read_json(nan, "annotation")
