"""laser_train's streaming data pipeline on real video files: decord decodes exactly the sampled frames of
mp4 files written here, frame sampling follows its documented rule, crops come from boxes or masks (COCO
RLE, palette and binary PNG), batches do not depend on the number of workers, the Dataset holds no frames,
a ``from-captions`` spec file that includes the vocabulary validates, and hostile files give positioned
errors."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
decord = pytest.importorskip("decord")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

from laser_train.data import dataset as D  # noqa: E402
from laser_train.data.files import safe_name  # noqa: E402
from laser_train.data.format import DatasetError, validate_dataset  # noqa: E402
from laser_train.data.masks import (rle_counts_from_string, rle_counts_to_string, rle_decode,  # noqa: E402
                                    rle_encode)
from laser_train.data.sampling import Sampling, SamplingError, resample_track, sample_frames  # noqa: E402
from laser_train.data.synthetic import write_dataset  # noqa: E402
from laser_train.data.video import probe, read_frames  # noqa: E402

H, W = 48, 64


def write_mp4(path: Path, frames: np.ndarray, fps: float = 10.0) -> None:
    """Near-lossless H.264 (qp 0, 4:4:4) so decoded pixels are within a few levels of the input."""
    w = imageio_ffmpeg.write_frames(str(path), (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264",
                                    quality=None, macro_block_size=1,
                                    output_params=["-qp", "0", "-pix_fmt", "yuv444p"], ffmpeg_log_level="error")
    w.send(None)
    for f in frames:
        w.send(np.ascontiguousarray(f).tobytes())
    w.close()


def numbered_frames(T: int) -> np.ndarray:
    """Grey frames whose brightness encodes the frame number (8 levels apart)."""
    return np.repeat((20 + 8 * np.arange(T, dtype=np.uint8))[:, None, None, None], H * W * 3).reshape(T, H, W, 3)


# ---------------------------------------------------------------------------------------------- decoding


def test_decord_decodes_exactly_the_sampled_frames(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    write_mp4(path, numbered_frames(24))
    info = probe(path)
    assert (info.num_frames, info.height, info.width, info.fps) == (24, H, W, 10.0)
    picks = [1, 5, 6, 17, 23]
    asked = []
    real = decord.VideoReader.get_batch
    monkeypatch.setattr(decord.VideoReader, "get_batch", lambda self, idx: asked.append(list(idx)) or real(self, idx))
    got = read_frames(path, picks)
    assert asked == [picks]  # one seek-and-decode call for exactly the sampled frames
    assert got.shape == (5, H, W, 3)
    level = got.reshape(5, -1).mean(1)
    assert np.abs(level - (20 + 8 * np.array(picks))).max() < 3, level


def test_npy_and_image_directory_read_only_the_sampled_frames(tmp_path):
    from PIL import Image

    frames = numbered_frames(6)
    np.save(tmp_path / "v.npy", frames)
    d = tmp_path / "imgs"
    d.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(d / f"{t:04d}.png")
    (d / "notes.txt").write_text("not a frame")
    for src in (tmp_path / "v.npy", d):
        assert probe(src).num_frames == 6
        assert np.array_equal(read_frames(src, [4, 0]), frames[[4, 0]])


# ---------------------------------------------------------------------------------------------- sampling


def test_uniform_sampling_takes_segment_centres_and_keeps_short_videos_whole():
    s = Sampling(num_frames=4)
    assert sample_frames(16, None, s, train=False).tolist() == [2, 6, 10, 14]
    assert sample_frames(12, None, Sampling(num_frames=12), train=True).tolist() == list(range(12))
    assert sample_frames(3, None, s, train=False).tolist() == [0, 1, 2]  # never repeats frames
    assert sample_frames(7, None, Sampling(), train=False).tolist() == list(range(7))  # 0 = every frame


def test_segment_sampling_is_random_per_segment_in_training_and_centred_in_eval():
    s = Sampling(num_frames=4, mode="segment")
    seen = set()
    for seed in range(40):
        f = sample_frames(16, None, s, train=True, rng=np.random.default_rng(seed))
        assert all(4 * k <= x < 4 * k + 4 for k, x in enumerate(f))  # one frame in each segment
        seen.add(tuple(f.tolist()))
    assert len(seen) > 10
    again = sample_frames(16, None, s, train=True, rng=np.random.default_rng(3))
    assert again.tolist() == sample_frames(16, None, s, train=True, rng=np.random.default_rng(3)).tolist()
    assert sample_frames(16, None, s, train=False).tolist() == [2, 6, 10, 14]


def test_fps_and_clip_windows():
    # 30 fps source to 10 fps: every third frame, then 4 of those
    assert sample_frames(30, 30.0, Sampling(fps=10), train=False).tolist() == list(range(0, 30, 3))
    assert sample_frames(30, 30.0, Sampling(fps=10, num_frames=2), train=False).tolist() == [6, 21]
    assert sample_frames(10, 5.0, Sampling(fps=25), train=False).tolist() == list(range(10))  # never upsampled
    # a 2 s window of a 10 s, 10 fps video: centred in eval, random (seeded) in training
    win = Sampling(clip_seconds=2.0)
    assert sample_frames(100, 10.0, win, train=False).tolist() == list(range(40, 60))
    starts = {int(sample_frames(100, 10.0, win, train=True, rng=np.random.default_rng(s))[0]) for s in range(30)}
    assert len(starts) > 5 and min(starts) >= 0 and max(starts) <= 80
    with pytest.raises(SamplingError, match="frame rate"):
        sample_frames(100, None, win, train=False)
    with pytest.raises(SamplingError, match="unknown sampling"):
        Sampling(mode="random")


def test_tracks_follow_the_nearest_annotation_within_half_the_spacing():
    listed = np.array([0, 4, 9, 20])
    sampled = np.array([1, 5, 10, 15])  # spacing 14/3 -> tolerance 2
    assert resample_track(listed, sampled, 2).tolist() == [0, 1, 2, -1]  # 15 is 5 away from 20
    assert resample_track(listed, np.array([2]), 2).tolist() == [0]  # tie between 0 and 4: the earlier
    assert resample_track(listed, np.array([4, 5]), 0).tolist() == [1, -1]  # every frame sampled: exact only


# ---------------------------------------------------------------------------------------------- masks


def test_rle_matches_coco_conventions():
    # column-major runs starting with background: a 2x3 mask with only (row 0, col 1) set
    m = np.zeros((2, 3), bool)
    m[0, 1] = True
    assert rle_encode(m, compressed=False) == {"size": [2, 3], "counts": [2, 1, 3]}
    assert rle_counts_to_string([2, 1, 3]) == "213"
    # deltas from the run two back, negative numbers sign-extended (hand-computed per COCO's rleToString)
    assert rle_counts_to_string([0, 5, 3, 1]) == "053L"
    assert rle_counts_from_string("053L") == [0, 5, 3, 1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((rng.integers(1, 40), rng.integers(1, 40))) < rng.random()
        for compressed in (True, False):
            assert np.array_equal(rle_decode(rle_encode(m, compressed)), m)


def _mask_dataset(tmp_path: Path, masks_for) -> Path:
    """One video (a white frame), one track whose box is [8, 8, 40, 24] and whose masks come from masks_for."""
    root = tmp_path / "ds"
    for sub in ("videos", "tracks", "masks"):
        (root / sub).mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "fixtures" / "llm" / "vocab.stl", root / "vocabulary.stl")
    np.save(root / "videos" / "v.npy", np.full((2, H, W, 3), 200, np.uint8))
    mask = np.zeros((H, W), bool)
    mask[8:24, 8:24] = True  # the left half of the box
    (root / "tracks" / "v.json").write_text(json.dumps({"width": W, "height": H, "tracks": [
        {"id": "a", "frames": [0, 1], "boxes": [[8, 8, 40, 24]] * 2, "masks": masks_for(root, mask)}]}))
    (root / "manifest.jsonl").write_text(json.dumps({
        "id": "v", "video": "videos/v.npy", "tracks": "tracks/v.json", "caption": "a dog",
        "spec": 'spec s "a dog" { exists d: dog. walking(d) }'}) + "\n")
    return root


def _png(root: Path, name: str, arr: np.ndarray, palette: bool) -> str:
    from PIL import Image

    im = Image.fromarray(arr.astype(np.uint8), mode="L")
    if palette:
        im = im.convert("P")
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * (256 * 3 - 12))
    im.save(root / "masks" / name)
    return f"masks/{name}"


MASK_FORMS = {
    "rle-string": lambda root, m: [rle_encode(m), rle_encode(m)],
    "rle-list": lambda root, m: [rle_encode(m, compressed=False), None],
    "palette-png": lambda root, m: [{"png": _png(root, "0.png", m * 3, True), "value": 3}] * 2,
    "binary-png": lambda root, m: [_png(root, "b.png", m * 255, False)] * 2,
}


@pytest.mark.parametrize("form", list(MASK_FORMS))
def test_mask_crops(tmp_path, form):
    root = _mask_dataset(tmp_path, MASK_FORMS[form])
    ds = validate_dataset(root)
    assert ds.records[0].has_masks
    items = {}
    for crop in ("box", "mask", "mask_box"):
        data = D.VideoDataset(ds, ds.records, crop_size=16, crop=crop, sampling=Sampling())
        items[crop] = data[0]
    box, masked = items["box"]["crops"][0, 0], items["mask"]["crops"][0, 0]
    assert (box > 0).all()  # the white frame everywhere inside the box's context
    # masked crop: zero right of the mask (the box's right half), the frame's colour inside the mask
    cols = (np.arange(16) + 0.5) / 16 * (32 * 1.3) + 8 - 0.15 * 32  # pixel x of each crop column
    rows = (np.arange(16) + 0.5) / 16 * (16 * 1.3) + 8 - 0.15 * 16
    inside = ((rows >= 8) & (rows < 24))[:, None] & ((cols >= 8) & (cols < 24))[None, :]
    assert (masked[:, inside] == 200).all() and (masked[:, ~inside] == 0).all()
    # mask_box: the box becomes the mask's bounding box
    assert torch.allclose(items["mask_box"]["boxes"][0, 0], torch.tensor([8 / W, 8 / H, 24 / W, 24 / H]))
    assert torch.allclose(items["box"]["boxes"][0, 0], torch.tensor([8 / W, 8 / H, 40 / W, 24 / H]))
    if form == "rle-list":  # frame 1 has no mask: its box is used
        assert torch.equal(items["mask"]["crops"][1, 0], items["box"]["crops"][1, 0])


def test_bad_masks_name_file_track_frame_and_field(tmp_path):
    def bad(root, m):
        rle = rle_encode(m, compressed=False)
        return [rle, {"size": [H, W], "counts": [5, 3]}]

    root = _mask_dataset(tmp_path, bad)
    with pytest.raises(DatasetError) as err:
        validate_dataset(root)
    assert "tracks: tracks/v.json: track 'a' frame 1: masks: the runs cover 8 pixels" in str(err.value)
    root2 = _mask_dataset(tmp_path / "2", lambda root, m: [{"png": "masks/nope.png"}, None])
    with pytest.raises(DatasetError, match="track 'a' frame 0: masks: mask image not found: masks/nope.png"):
        validate_dataset(root2)


# ---------------------------------------------------------------------------------------------- mp4 dataset


@pytest.fixture(scope="module")
def mp4_dataset(tmp_path_factory):
    """The synthetic world (16 videos, 10 frames) re-encoded as mp4 at 5 fps, with box-shaped RLE masks."""
    root = tmp_path_factory.mktemp("mp4") / "data"
    write_dataset(root, seed=0, num_train=12, num_test=4, num_frames=10, num_negatives=0)
    recs = [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]
    for r in recs:
        frames = np.load(root / r["video"])
        mp4 = Path(r["video"]).with_suffix(".mp4")
        write_mp4(root / mp4, frames, fps=5.0)
        (root / r["video"]).unlink()
        r["video"] = mp4.as_posix()
        tpath = root / r["tracks"]
        tracks = json.loads(tpath.read_text())
        h, w = tracks["height"], tracks["width"]
        for tr in tracks["tracks"]:
            tr["masks"] = []
            for x0, y0, x1, y1 in tr["boxes"]:
                m = np.zeros((h, w), bool)
                m[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
                tr["masks"].append(rle_encode(m))
        tpath.write_text(json.dumps(tracks))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


def test_loader_batches_do_not_depend_on_num_workers(mp4_dataset):
    ds = validate_dataset(mp4_dataset)
    data = D.VideoDataset(ds, ds.split("train"), crop_size=12, crop="mask",
                          sampling=Sampling(num_frames=4, mode="segment"), train=True, seed=5)
    runs = []
    for workers in (0, 2):
        loader = D.make_loader(data, 5, shuffle=True, seed=5, num_workers=workers)
        epochs = []
        for epoch in (0, 1):
            D.set_epoch(loader, epoch)
            epochs.append(list(loader))
        runs.append(epochs)
    for e in (0, 1):
        assert len(runs[0][e]) == 3
        for a, b in zip(runs[0][e], runs[1][e]):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)
    # the epochs differ (order and the random frame of each segment)
    assert not torch.equal(runs[0][0][0]["frames"], runs[0][1][0]["frames"])
    first = runs[0][0][0]
    assert first["crops"].shape[1:] == (4, first["present"].shape[2], 3, 12, 12)
    assert first["gt_unary"].shape[:3] == first["present"].shape


def test_the_dataset_holds_no_frames(mp4_dataset, tmp_path, monkeypatch):
    big = tmp_path / "big"
    write_dataset(big, seed=1, num_train=6, num_test=2, num_frames=40, image_size=96, num_negatives=0)
    ds = validate_dataset(big)
    data = D.VideoDataset(ds, ds.split("train"), crop_size=16, sampling=Sampling(num_frames=4))
    frames_bytes = sum(os.path.getsize(r.video) for r in ds.split("train"))
    assert len(pickle.dumps(data)) < frames_bytes / 20  # what each worker receives: records, not frames
    asked = []
    real = D.read_frames
    monkeypatch.setattr(D, "read_frames", lambda path, idx: asked.append(list(idx)) or real(path, idx))
    item = data[3]
    assert asked == [[5, 15, 25, 35]] and item["crops"].shape[0] == 4


def test_tiny_training_run_on_mp4_videos_with_masks(mp4_dataset, tmp_path):
    from laser_train import train as T
    from laser_train.config import load_config

    cfg = load_config(None, [f"--data.path={mp4_dataset}", "--data.num_frames=6", "--data.crop=mask",
                             "--data.sampling=segment", "--data.fps=2.5", "--train.epochs=2", "--train.batch_size=4",
                             "--train.progress=false", "--run.plots=false", "--loss.negatives=other",
                             f"--run.out={tmp_path / 'run'}"])
    setup = T.prepare(cfg)
    res = T.main(cfg, "weak", tmp_path / "run" / "weak", setup=setup)
    assert len(res["history"]) == 2 and all(np.isfinite(h["loss"]) for h in res["history"])
    assert (tmp_path / "run" / "weak" / "checkpoint.pt").exists()
    assert 0 <= res["metrics"]["unary_r1"] <= 1
    # 10 frames at 5 fps sampled at 2.5 fps: 5 candidates, fewer than num_frames: all of them
    assert setup.test.frame_indices(0).tolist() == [0, 2, 4, 6, 8]


# ---------------------------------------------------------------------------------------------- specs


def test_from_captions_spec_file_including_the_vocabulary_validates(tmp_path, monkeypatch):
    pytest.importorskip("anthropic")
    from stlspec.cli import main as stlspec_main
    from stlspec.llm.fakeapi import FakeMessagesAPI

    fix = Path(__file__).parent / "fixtures" / "llm"
    root = tmp_path / "ds"
    for sub in ("videos", "tracks"):
        (root / sub).mkdir(parents=True)
    shutil.copy(fix / "vocab.stl", root / "vocabulary.stl")
    script = json.loads((fix / "answers.json").read_text(encoding="utf-8"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeMessagesAPI(script, api_key="sk-ant-test") as api:
        code = stlspec_main(["from-captions", str(fix / "captions20.jsonl"), "-o", str(root / "specs.stl"),
                             "--vocab", str(root / "vocabulary.stl"), "--cache", str(tmp_path / "c.sqlite"),
                             "--base-url", api.base_url, "--no-progress"])
    assert code in (0, 1)  # two fixture captions fail on purpose; the file is still written
    text = (root / "specs.stl").read_text()
    assert text.count('include "vocabulary.stl"') == 1
    np.save(root / "videos" / "v.npy", np.zeros((4, H, W, 3), np.uint8))
    (root / "tracks" / "v.json").write_text(json.dumps(
        {"width": W, "height": H, "tracks": [{"id": 0, "frames": [0], "boxes": [[1, 1, 5, 5]]}]}))
    names = ["vid001", "vid002", "vid003", "vid004"]
    (root / "manifest.jsonl").write_text("".join(json.dumps(
        {"id": n, "video": "videos/v.npy", "tracks": "tracks/v.json", "caption": "c", "spec_file": "specs.stl",
         "spec_name": n}) + "\n" for n in names))
    ds = validate_dataset(root)
    assert [r.spec.name for r in ds.records] == names
    # a spec file whose own declarations disagree with the dataset vocabulary is an error that says so
    (root / "other.stl").write_text('category dog\nunary walking(dog)\nspec s "x" { exists d: dog. walking(d) }\n')
    (root / "manifest.jsonl").write_text(json.dumps(
        {"id": "x", "video": "videos/v.npy", "tracks": "tracks/v.json", "caption": "c",
         "spec_file": "other.stl"}) + "\n")
    with pytest.raises(DatasetError, match=r"unary predicate 'walking' is declared \(dog\) here but \(any\)"):
        validate_dataset(root)


# ---------------------------------------------------------------------------------------------- hostile input


@pytest.fixture()
def small(tmp_path):
    root = tmp_path / "small"
    write_dataset(root, seed=0, num_train=2, num_test=1, num_frames=4, num_negatives=0)
    return root


def _tracks_error(root: Path, content) -> str:
    path = root / "tracks" / "v00001.json"
    path.unlink()
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)
    with pytest.raises(DatasetError) as err:
        validate_dataset(root)
    return str(err.value)


@pytest.mark.parametrize("content, words", [
    (b'{"tracks": [], "width": 1, "height": 1, "note": "caf\xe9"}', "tracks file .*v00001.json:1:\\d+: not UTF-8"),
    (b"[" * 100_000, "nested deeper than 64 levels"),
    (lambda p: p.mkdir(), "expected a file, found a directory"),
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    (b'{"num_frames": 1000000000000, "width": 64, "height": 64, "tracks": []}', "over the limit of 10000000"),
    (b'{"num_frames": 1' + b"0" * 400 + b', "width": 64, "height": 64, "tracks": []}', "over the limit"),
    (b'{"num_frames": 1e8, "width": 64, "height": 64, "tracks": []}', "num_frames: must be a positive integer"),
    (b'{"num_frames": NaN, "width": 64, "height": 64, "tracks": []}', "NaN is not valid JSON"),
])
def test_hostile_tracks_files(small, content, words):
    text = _tracks_error(small, content)
    assert "manifest.jsonl:2 record 'v00001': tracks:" in text
    assert __import__("re").search(words, text), text


def test_errors_never_echo_other_files(small, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n" * 3)
    text = _tracks_error(small, lambda p: p.symlink_to(secret))
    assert "TOP-SECRET" not in text and "invalid JSON" in text
    manifest = small / "manifest.jsonl"
    recs = [json.loads(x) for x in manifest.read_text().splitlines()]
    recs[0]["tracks"] = "tracks/v00000.json"
    recs[0]["scene_graph"] = str(secret)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(DatasetError) as err:
        validate_dataset(small)
    assert "record 'v00000': scene_graph:" in str(err.value) and "TOP-SECRET" not in str(err.value)


def test_hostile_manifests(small):
    manifest = small / "manifest.jsonl"
    good = manifest.read_text()
    manifest.write_text(good + "[" * 5000 + "\n")
    with pytest.raises(DatasetError, match=r"manifest.jsonl:4 record 'line 4': record: JSON nested deeper"):
        validate_dataset(small)
    manifest.write_bytes(good.encode() + b'{"id": "\xff"}\n')
    with pytest.raises(DatasetError, match=r"manifest .*manifest.jsonl:4:\d+: not UTF-8"):
        validate_dataset(small)
    manifest.unlink()
    manifest.mkdir()
    with pytest.raises(DatasetError, match="manifest .* is a directory"):
        validate_dataset(small)
    manifest.rmdir()
    manifest.symlink_to("/dev/zero")
    with pytest.raises(DatasetError, match="not a regular file"):
        validate_dataset(small)


# ---------------------------------------------------------------------------------------------- honesty


def test_unknown_or_absent_split_is_an_error(small):
    ds = validate_dataset(small)
    with pytest.raises(DatasetError, match="unknown split 'tset'; choose from train, val, test"):
        ds.split("tset")
    with pytest.raises(DatasetError, match=r"no 'val' records \(it has: train \(2\), test \(1\)\)"):
        ds.require_split("val")


def test_eval_cli_refuses_a_split_the_data_lacks(small, tmp_path):
    import subprocess
    import sys

    from laser_train import train as T
    from laser_train.config import load_config

    cfg = load_config(None, [f"--data.path={small}", "--train.progress=false", "--loss.negatives=other",
                             "--data.num_frames=4"])
    T.main(cfg, "untrained", tmp_path / "u")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for split, words in (("val", "no 'val' records"), ("everything", "unknown split 'everything'")):
        out = subprocess.run([sys.executable, "-m", "laser_train", "eval", "--checkpoint",
                              str(tmp_path / "u" / "checkpoint.pt"), "--split", split],
                             capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 2 and words in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_ids_with_path_characters_become_safe_distinct_file_names():
    names = ["a/b", "a_b", "../x", ".hidden", "c:d", "plain"]
    out = [safe_name(n) for n in names]
    assert len(set(out)) == len(out)
    assert all("/" not in o and not o.startswith(".") for o in out)
    assert safe_name("plain") == "plain"


def test_fps_settings_need_a_frame_rate_and_the_manifest_can_give_it(small):
    from types import SimpleNamespace

    cfg = SimpleNamespace(num_frames=2, fps=2.0, sampling="uniform", clip_seconds=0.0, crop_size=8, crop="box")
    ds = validate_dataset(small)
    with pytest.raises(DatasetError) as err:
        D.build_dataset(ds, "train", cfg, train=False)
    assert "manifest.jsonl:1 record 'v00000': fps: data.fps / data.clip_seconds need the video's frame rate" in str(
        err.value) and "skip_invalid" not in str(err.value)
    manifest = small / "manifest.jsonl"
    recs = [dict(json.loads(x), fps=4) for x in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in recs))
    data = D.build_dataset(validate_dataset(small), "train", cfg, train=False)
    assert data.frame_indices(0).tolist() == [0, 2]  # 4 frames at 4 fps -> 2 fps: frames 0 and 2
