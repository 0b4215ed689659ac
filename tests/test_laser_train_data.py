"""laser_train data: the synthetic world is deterministic, its specs check and hold on its own hidden
ground truth, and malformed dataset records give errors that name the record and the field."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")

import stlspec  # noqa: E402
from stlspec.ast import HINT_NAMES  # noqa: E402
from laser_train.data import synthetic  # noqa: E402
from laser_train.data.format import DatasetError, validate_dataset  # noqa: E402


def test_world_is_deterministic_and_prefix_stable():
    a = synthetic.generate_video(3, 5)
    b = synthetic.generate_video(3, 5)
    assert np.array_equal(a.frames, b.frames) and a.spec == b.spec
    assert np.array_equal(a.unary, b.unary) and np.array_equal(a.binary, b.binary)
    # video i does not depend on how many videos are generated
    assert synthetic.generate(3, 6)[5].spec == a.spec
    assert synthetic.generate_video(4, 5).spec != a.spec or not np.array_equal(
        synthetic.generate_video(4, 5).frames, a.frames)


def test_generated_specs_check_and_hold_on_their_hidden_ground_truth():
    from stlspec.backends.reference import evaluate
    from stlspec.trace import Trace

    voc = stlspec.compile_text(synthetic.VOCABULARY_STL).vocabulary
    for i in range(60):
        v = synthetic.generate_video(0, i, num_frames=12)
        program = stlspec.compile_text(v.spec, vocabulary=voc)  # raises StlError if the checker rejects it
        (spec,) = program.specs
        names = np.zeros((len(v.categories), len(voc.categories)))
        for n, c in enumerate(v.categories):
            names[n, voc.categories.index(c)] = 1
        trace = Trace.from_arrays(names, v.unary, v.binary, v.present, categories=voc.categories,
                                  unary_preds=voc.unary_names, binary_preds=voc.binary_names)
        res = evaluate(spec, trace, "boolean")
        assert res.value == 1.0, f"{v.video_id}: {v.spec}"
        # the events are witnessed where the generator placed them, and hints agree with those frames
        assert [e.hint for e in spec.events] == [HINT_NAMES[e["hint"]] for e in v.events]


def test_scene_graph_rules_hold():
    """The ground truth obeys the background-knowledge rules the semantic loss teaches."""
    for i in range(30):
        v = synthetic.generate_video(1, i)
        B = v.binary
        lr = B[..., [0, 1, 2, 3, 4]].sum(-1)
        off_diag = ~np.eye(B.shape[1], dtype=bool)
        both = v.present[:, :, None] & v.present[:, None, :] & off_diag
        assert (lr[both] == 1).all()  # exactly one of left/right/above/below/near
        assert np.array_equal(B[..., 0], B[..., 1].transpose(0, 2, 1))  # left_of(a, b) == right_of(b, a)
        assert (v.unary[..., :5].sum(-1)[v.present] == 1).all()  # still or exactly one direction
        assert not (B[..., 5] & ~B[..., 4]).any()  # holding implies near


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "data"
    synthetic.write_dataset(root, seed=0, num_train=4, num_test=2, num_frames=6, num_negatives=2)
    return root


def _copy(src, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst


def _rewrite(root, fn):
    lines = (root / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    out = fn(recs)
    (root / "manifest.jsonl").write_text("".join(
        (x if isinstance(x, str) else json.dumps(x)) + "\n" for x in out))


def test_valid_dataset_loads(small_dataset):
    ds = validate_dataset(small_dataset)
    assert len(ds.records) == 6 and len(ds.split("test")) == 2
    assert all(r.spec is not None and r.scene_graph is not None for r in ds.records)
    assert any(r.negatives for r in ds.records)


@pytest.mark.parametrize("mutate, field, words", [
    (lambda r: r.update(video="videos/missing.npy"), "video", "file not found"),
    (lambda r: r.pop("caption"), "caption", "missing required field"),
    (lambda r: r.update(spec=r["spec"].replace("exists a:", "exists a: unicorn, z:")), "spec", "does not check"),
    (lambda r: r.update(spec_file="x.stl"), "spec", "exactly one of"),
    (lambda r: r.update(hints=["sometime", "late", "early", "late"]), "hints", "hint"),
    (lambda r: r.update(split="training"), "split", "expected one of"),
    (lambda r: r.update(colour="red"), "colour", "unknown field"),
])
def test_malformed_records_name_record_and_field(small_dataset, tmp_path, mutate, field, words):
    root = _copy(small_dataset, tmp_path)

    def f(recs):
        mutate(recs[1])
        return recs

    _rewrite(root, f)
    with pytest.raises(DatasetError) as err:
        validate_dataset(root)
    probs = err.value.problems
    assert probs and all(p.record == "v00001" and p.line == 2 for p in probs)
    assert probs[0].field == field
    assert words in str(err.value)
    assert "manifest.jsonl:2 record 'v00001'" in str(err.value)


def test_track_frame_out_of_range_and_bad_box(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path)
    path = root / "tracks" / "v00002.json"
    data = json.loads(path.read_text())
    data["tracks"][0]["frames"][-1] = 40
    data["tracks"][1]["boxes"][0] = [5, 5, 1, 9]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        validate_dataset(root)
    text = str(err.value)
    assert "record 'v00002': tracks: tracks/v00002.json: track 't0' frame 40: out of range [0, 6)" in text
    assert "track 't1' frame" in text and "empty box" in text


def test_duplicate_ids_and_bad_json_lines(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path)
    _rewrite(root, lambda recs: recs + [recs[0], "{not json"])
    with pytest.raises(DatasetError) as err:
        validate_dataset(root)
    text = str(err.value)
    assert "manifest.jsonl:7 record 'v00000': id: duplicate id (first on line 1)" in text
    assert "manifest.jsonl:8 record 'line 8': record: invalid JSON" in text


def test_skip_invalid_reports_and_skips(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path)
    _rewrite(root, lambda recs: [dict(recs[0], tracks="tracks/nope.json")] + recs[1:])
    ds = validate_dataset(root, skip_invalid=True)
    assert [r.id for r in ds.records] == [f"v{i:05d}" for i in range(1, 6)]
    assert len(ds.skipped) == 1 and ds.skipped[0].field == "tracks"


def test_synthetic_cli_writes_the_format(tmp_path):
    out = tmp_path / "cli"
    assert synthetic.main(["--out", str(out), "--num-train", "2", "--num-test", "1", "--num-frames", "5",
                           "--num-negatives", "0"]) == 0
    ds = validate_dataset(out)
    assert [r.split for r in ds.records] == ["train", "train", "test"]


def test_negatives_are_generated_for_records_without_them(tmp_path):
    from laser_train.train import generated_negatives

    root = tmp_path / "plain"
    synthetic.write_dataset(root, num_train=2, num_test=1, num_frames=6, num_negatives=0)
    ds = validate_dataset(root)
    assert not any(r.negatives for r in ds.records)
    negs = generated_negatives(ds.records, ds.vocabulary, 3, seed=0)
    assert len(negs) == 3 and all(1 <= len(n) <= 3 for n in negs)
    assert all(n.formula != r.spec.formula for r, ns in zip(ds.records, negs) for n in ns)


def test_sample_cache_returns_the_same_samples_and_respects_its_budget(small_dataset):
    import torch

    from laser_train.config import ExperimentConfig
    from laser_train.data.dataset import build_dataset

    cfg = ExperimentConfig()
    ds = validate_dataset(small_dataset)
    plain = build_dataset(ds, "train", cfg.data, train=True)
    plain.cache_bytes = 0
    cached = build_dataset(ds, "train", cfg.data, train=True)
    assert cached.cache_bytes == 512 * 2**20 and cached.deterministic
    for i in range(len(plain)):
        for _ in range(2):  # the second read comes from the cache
            a, b = plain[i], cached[i]
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)
    assert len(cached._cache) == len(cached)
    # the view without ground truth has its own entries, without gt_*
    view = cached.without_ground_truth()
    assert "gt_unary" not in view[0] and "gt_unary" in cached[0]
    # a budget smaller than two samples keeps one
    small = build_dataset(ds, "train", cfg.data, train=True)
    one = sum(v.nbytes for v in small[0].values() if isinstance(v, torch.Tensor))
    small = build_dataset(ds, "train", cfg.data, train=True)
    small.cache_bytes = int(one * 1.5)
    [small[i] for i in range(len(small))]
    assert len(small._cache) == 1
    # random frame choices in training: never cached
    cfg.data.sampling = "segment"
    rand = build_dataset(ds, "train", cfg.data, train=True)
    assert not rand.deterministic
    rand[0]
    assert not rand._cache


def test_cache_mb_must_not_be_negative():
    import pytest

    from laser_train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="data.cache_mb"):
        load_config(None, ["--data.cache_mb=-1"])
