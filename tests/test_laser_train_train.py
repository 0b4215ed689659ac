"""laser_train training: a tiny end-to-end run learns, a killed run resumes to exactly the same
metrics, checkpoints are atomic, and the CLI evaluates a checkpoint on a dataset directory."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from laser_train import train as T  # noqa: E402
from laser_train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from laser_train.config import load_config  # noqa: E402
from laser_train.data.synthetic import write_dataset  # noqa: E402
from laser_train.evaluate import chance_metrics  # noqa: E402

# Small enough for CI, big enough that spec supervision visibly works (about 12 s per run here).
TINY = ["--data.num_train=64", "--data.num_test=24", "--data.num_frames=8", "--train.epochs=15",
        "--train.batch_size=8", "--train.lr=5e-3", "--train.threads=1", "--train.progress=false",
        "--run.plots=false"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data = root / "data"
    write_dataset(data, seed=0, num_train=64, num_test=24, num_frames=8, num_negatives=6)
    cfg = load_config(None, TINY + [f"--data.path={data}", f"--run.out={root / 'run'}"])
    return cfg, T.prepare(cfg), root


def test_tiny_weak_run_reduces_loss_and_beats_chance(tiny):
    cfg, setup, _ = tiny
    res = T.main(cfg, "weak", None, setup=setup)  # no time limit here: speed is measured in bench/
    hist = res["history"]
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    chance = chance_metrics(setup.test)
    m = res["metrics"]
    assert m["names_r1"] > 2 * chance["names_r1"]
    assert m["binary_r1"] > 2 * chance["binary_r1"]
    assert m["unary_macro_r1"] > 2 * chance["unary_macro_r1"]


def test_fewer_training_videos_than_negatives(tmp_path):
    """Negatives drawn from other videos' captions: a dataset with fewer videos than `loss.num_negatives`
    uses all the others instead of failing inside numpy."""
    data = tmp_path / "data"
    write_dataset(data, seed=0, num_train=3, num_test=2, num_frames=6, num_negatives=0)
    cfg = load_config(None, ["--data.num_frames=6", "--train.epochs=1", "--train.batch_size=3",
                             "--train.progress=false", "--run.plots=false", "--loss.num_negatives=5",
                             "--loss.negatives=other", f"--data.path={data}", f"--run.out={tmp_path / 'run'}"])
    res = T.main(cfg, "weak", None)
    assert math.isfinite(res["history"][-1]["loss"])


def test_full_supervision_learns(tiny):
    cfg, setup, _ = tiny
    res = T.main(cfg, "full", None, setup=setup)
    assert res["metrics"]["unary_r1"] > 0.5 and res["metrics"]["binary_r1"] > 0.5


def _metrics_of(out_dir: Path) -> dict:
    return json.loads((out_dir / "metrics.json").read_text())["metrics"]


def test_resume_after_kill_reproduces_uninterrupted_metrics(tiny, tmp_path):
    cfg, setup, root = tiny
    ref = T.main(cfg, "weak", tmp_path / "ref", setup=setup)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "laser_train", "train", "--variant", "weak", *TINY,
            f"--data.path={cfg.data.path}", f"--run.out={out}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "weak" / "checkpoint.pt"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists() and load_checkpoint(ckpt)["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = load_checkpoint(ckpt)["epoch"]
    assert 2 <= killed_at < cfg.train.epochs
    resume = subprocess.run(args + ["--run.resume=true"], capture_output=True, text=True, timeout=180)
    assert resume.returncode == 0, resume.stderr
    final = load_checkpoint(ckpt)
    assert final["epoch"] == cfg.train.epochs
    assert [h["loss"] for h in final["history"]] == [h["loss"] for h in ref["history"]]
    got, want = _metrics_of(out / "weak"), ref["metrics"]
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])), k


def test_checkpoint_is_atomic_and_complete(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, epoch=3, config={"a": 1})
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]  # no temporary file left behind
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["config"] == {"a": 1}
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):
        load_checkpoint(tmp_path / "bad.pt")


def test_eval_cli_on_a_checkpoint_and_dataset(tiny, tmp_path):
    cfg, setup, _ = tiny
    T.main(cfg, "untrained", tmp_path / "u", setup=setup)
    out = subprocess.run([sys.executable, "-m", "laser_train", "eval", "--checkpoint",
                          str(tmp_path / "u" / "checkpoint.pt"), "--data", str(cfg.data.path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)
    assert m["videos"] == 24 and 0 <= m["unary_r1"] <= 1 and 0 <= m["spec_accuracy"] <= 1


def test_experiment_writes_run_directory_table_and_plots(tiny, tmp_path, capsys):
    from laser_train.config import from_dict, to_dict
    from laser_train.experiment import RATIO_KEYS, TABLE_COLUMNS, run_experiment

    cfg, _, _ = tiny
    cfg = from_dict(to_dict(cfg))
    cfg.train.epochs, cfg.run.plots, cfg.eval.plot_videos = 2, True, 1
    cfg.run.variants, cfg.run.out, cfg.run.seeds = ("weak", "no_semantic"), str(tmp_path / "run"), (0, 1)
    metrics = run_experiment(cfg)
    run = Path(metrics["run_dir"])
    assert run == tmp_path / "run"
    assert list(metrics["results"]) == ["chance", "prior", "untrained", "weak", "no_semantic"]
    for f in ("config.json", "metrics.json", "weak/checkpoint.pt", "weak-seed1/checkpoint.pt",
              "plots/loss_curves.png", "plots/results.png"):
        assert (run / f).exists(), f
    assert not (run / "no_semantic-seed1").exists()  # ablations: the first seed only
    assert len(list((run / "plots").glob("timeline_*.png"))) == 1
    assert len(list((run / "plots").glob("frames_*.png"))) == 1
    out = capsys.readouterr().out
    assert "unary mR@1" in out and "prior" in out and "no_semantic" in out and "wall time" in out
    saved = json.loads((run / "metrics.json").read_text())
    # every row carries every column, its seeds and spreads; ratios are against the prior row
    assert [c[0] for c in saved["columns"]][:len(TABLE_COLUMNS)] == [k for k, _ in TABLE_COLUMNS]
    for row, info in saved["rows"].items():
        for key, _ in TABLE_COLUMNS:
            assert key in info["mean"] and key in info["sd"], (row, key)
    assert saved["rows"]["weak"]["seeds"] == [0, 1] and len(saved["rows"]["weak"]["per_seed"]) == 2
    assert saved["rows"]["no_semantic"]["seeds"] == [0]
    w = [m["unary_macro_r1"] for m in saved["rows"]["weak"]["per_seed"]]
    assert saved["results"]["weak"]["unary_macro_r1"] == pytest.approx(sum(w) / 2)
    assert saved["ratio_base"] == "prior"
    checked = 0
    for key in RATIO_KEYS:
        base, got = saved["results"]["prior"][key], saved["ratios_vs_prior"]["weak"][key]
        if math.isnan(base) or base == 0:
            assert math.isnan(got), key  # undefined, not silently 0 or inf
            continue
        assert got == pytest.approx(saved["results"]["weak"][key] / base), key
        assert saved["ratios_vs_prior"]["prior"][key] == pytest.approx(1.0), key
        checked += 1
    assert checked >= 8
    assert saved["rule_free"]["binary"] == [] and "left_of" in saved["rule_constrained"]["binary"]  # toy
    # a second run with the same run.out goes to a fresh numbered directory
    cfg.run.variants, cfg.run.plots, cfg.run.seeds = ("weak",), False, (0,)
    assert Path(run_experiment(cfg)["run_dir"]) == tmp_path / "run-1"
