"""The spec accuracy's fact threshold, calibrated per model on the training videos (``eval.calibrate``).

An "oracle at another scale" — the true scene graph with every true fact at probability 0.25 and
every false one at 0.01 — decides no positive spec at the fixed threshold 0.5, yet knows everything;
calibration must find a threshold between the two scales, reach the truth's accuracy, and the
checkpoint must carry that threshold so that ``laser_train eval`` reports the same numbers."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from laser_train import train as T  # noqa: E402
from laser_train.config import load_config  # noqa: E402
from laser_train.data.dataset import make_loader  # noqa: E402
from laser_train.data.synthetic import write_dataset  # noqa: E402
from laser_train.evaluate import CALIBRATION_GRID, calibrate_threshold, evaluate_model, spec_accuracy  # noqa: E402
from laser_train.model import SceneGraphScores  # noqa: E402

TINY = ["--data.num_train=24", "--data.num_test=12", "--data.num_frames=8", "--train.epochs=1",
        "--train.batch_size=8", "--train.threads=1", "--train.progress=false", "--run.plots=false"]


class ScaledOracle(torch.nn.Module):
    """The batch's true scene graph with true facts at probability ``yes`` and false ones at ``no``."""

    reads_ground_truth = True

    def __init__(self, yes: float, no: float):
        super().__init__()
        self.yes, self.no = yes, no
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        def logits(gt):
            p = gt.float() * self.yes + (1 - gt.float()) * self.no
            return torch.logit(p)

        names = batch["gt_names"].float() * 20.0
        B, N, _ = names.shape
        P, R = batch["gt_unary"].shape[-1], batch["gt_binary"].shape[-1]
        return SceneGraphScores(names, logits(batch["gt_unary"]), logits(batch["gt_binary"]),
                                torch.ones(B, N, P), torch.ones(B, N, N, R))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    write_dataset(root / "data", seed=3, num_train=24, num_test=12, num_frames=8, num_negatives=4)
    cfg = load_config(None, TINY + [f"--data.path={root / 'data'}", f"--run.out={root / 'run'}"])
    return cfg, T.prepare(cfg), root


def _truth(setup, data, negatives):
    graphs = lambda b: (b["gt_names"], b["gt_unary"], b["gt_binary"])  # noqa: E731
    return spec_accuracy(setup.supervision, graphs, make_loader(data, 64), negatives)


def test_calibration_finds_the_scale_of_an_oracle(tiny):
    cfg, setup, _ = tiny
    oracle = ScaledOracle(0.25, 0.01)
    negatives = T.calibration_negatives(cfg, setup)
    threshold, scores = calibrate_threshold(oracle, make_loader(setup.train, 64), setup.supervision, negatives)
    assert set(scores) == set(CALIBRATION_GRID)
    assert 0.01 < threshold <= 0.25
    truth = _truth(setup, setup.train, negatives)
    assert scores[threshold] == pytest.approx(truth["spec_accuracy"])
    assert scores[0.5] < scores[threshold]  # at 0.5 the graph is empty
    # held out, the calibrated threshold gives the truth's accuracy; 0.5 finds no positive true
    test_loader = make_loader(setup.test, 64)
    at = evaluate_model(oracle, test_loader, setup.supervision, setup.test_negatives, threshold=threshold)
    fixed = evaluate_model(oracle, test_loader, setup.supervision, setup.test_negatives, threshold=0.5)
    truth_test = _truth(setup, setup.test, setup.test_negatives)
    assert at["spec_pos_acc"] == pytest.approx(truth_test["spec_pos_acc"]) and at["spec_pos_acc"] > 0.9
    assert fixed["spec_pos_acc"] < at["spec_pos_acc"]


def test_ties_go_to_the_threshold_nearest_one_half(tiny):
    cfg, setup, _ = tiny
    # a calibrated oracle (true facts 0.99, false 0.001) is equally right at every threshold in between
    threshold, scores = calibrate_threshold(ScaledOracle(0.99, 0.001), make_loader(setup.train, 64),
                                            setup.supervision, T.calibration_negatives(cfg, setup))
    assert threshold == 0.5 and scores[0.5] == max(scores.values())


def test_calibration_negatives_are_fixed_and_never_the_video_own_caption(tiny):
    cfg, setup, _ = tiny
    a, b = T.calibration_negatives(cfg, setup), T.calibration_negatives(cfg, setup)
    assert a == b and len(a) == len(setup.train)
    for v, negs in enumerate(a):
        assert negs and len(negs) <= cfg.loss.num_negatives
        assert setup.supervision.positive_id(setup.train, v) not in negs


def test_run_records_the_threshold_and_eval_cli_reuses_it(tiny, tmp_path):
    cfg, setup, _ = tiny
    result = T.main(cfg, "weak", tmp_path / "w", setup=setup)
    metrics = result["metrics"]
    assert metrics["spec_threshold"] in CALIBRATION_GRID
    out = subprocess.run([sys.executable, "-m", "laser_train", "eval", "--checkpoint",
                          str(tmp_path / "w" / "checkpoint.pt"), "--data", str(cfg.data.path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    again = json.loads(out.stdout)
    assert again["spec_threshold"] == metrics["spec_threshold"]
    for k in ("spec_pos_acc", "spec_neg_acc", "unary_r1"):
        assert math.isclose(again[k], metrics[k], rel_tol=1e-9, abs_tol=1e-12), k
    fixed = subprocess.run([sys.executable, "-m", "laser_train", "eval", "--checkpoint",
                            str(tmp_path / "w" / "checkpoint.pt"), "--data", str(cfg.data.path),
                            "--eval.calibrate=false", "--eval.threshold=0.3"],
                           capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["spec_threshold"] == 0.3


def test_stacked_thresholds_score_like_one_evaluation_each(tiny, monkeypatch):
    # calibrate_threshold evaluates several thresholds' scene graphs as one stacked batch; every grid
    # point must score exactly as its own evaluation would (here: a few thresholds per call)
    from laser_train import evaluate as E
    from laser_train.evaluate import SpecAccuracy, binarize, predict

    cfg, setup, _ = tiny
    oracle = ScaledOracle(0.3, 0.02)
    negatives = T.calibration_negatives(cfg, setup)
    loader = make_loader(setup.train, 10)
    monkeypatch.setattr(E, "_CALIBRATION_VIDEOS", 25)  # batches of 10 videos: 2 thresholds per call
    _, scores = calibrate_threshold(oracle, loader, setup.supervision, negatives)
    for t in CALIBRATION_GRID:
        acc = SpecAccuracy(setup.supervision, setup.train, negatives)
        for batch in loader:
            acc.add(binarize(predict(oracle, batch), t), batch)
        assert scores[t] == acc.result()["spec_accuracy"], t


def test_the_prior_is_calibrated_with_the_scene_graphs_it_reads(tiny):
    # the prior scores from the true categories: its calibration loader must keep them
    from laser_train.evaluate import PriorModel

    cfg, setup, _ = tiny
    prior = PriorModel(setup.vocabulary).fit(make_loader(setup.train, 64))
    threshold, scores = T.spec_threshold(prior, setup, cfg)
    assert threshold in CALIBRATION_GRID and set(scores) == set(CALIBRATION_GRID)
