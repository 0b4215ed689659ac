"""laser_train configuration: typed overrides, config files, unknown keys, and the recall metric."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from laser_train.config import ConfigError, ExperimentConfig, from_dict, load_config, to_dict  # noqa: E402
from laser_train.evaluate import recall_at_k  # noqa: E402


def test_overrides_are_typed():
    cfg = load_config(None, ["--train.epochs=3", "--loss.weights.semantic=0", "--run.resume=true",
                             "--eval.ks=1,3", "--data.path=/x"])
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.loss.weights.semantic == 0.0 and cfg.run.resume is True
    assert cfg.eval.ks == (1, 3) and cfg.data.path == "/x"


@pytest.mark.parametrize("bad, words", [
    ("--train.epoch=3", "unknown config key 'train.epoch'"),
    ("--train.epochs=three", "expected int"),
    ("--run.resume=maybe", "expected true/false"),
    ("--train=3", "expected a section"),
    ("--nothing", "must look like"),
])
def test_bad_overrides_are_errors(bad, words):
    with pytest.raises(ConfigError, match=words):
        load_config(None, [bad])


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"epochs": 2, "lr": 0.1}, "loss": {"weights": {"temporal": 0}}}))
    cfg = load_config(str(path), ["--train.lr=0.5"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.loss.weights.temporal) == (2, 0.5, 0.0)
    assert to_dict(from_dict(to_dict(cfg))) == to_dict(cfg)
    assert to_dict(ExperimentConfig())["run"]["variants"][0] == "weak"


def test_recall_counts_every_fact_and_breaks_ties_fairly():
    truth = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # two true facts in one row: at most one can be top-1
    valid = torch.tensor([True])
    assert recall_at_k(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), truth, valid, 1) == (0.5, 2)
    assert recall_at_k(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), truth, valid, 2) == (1.0, 2)
    # a constant scorer gets exactly chance: k / K
    assert recall_at_k(torch.zeros(1, 4), truth, valid, 1)[0] == pytest.approx(0.25)
    assert recall_at_k(torch.zeros(1, 4), truth, valid, 3)[0] == pytest.approx(0.75)


def test_shipped_default_config_matches_the_dataclass_defaults():
    from pathlib import Path

    import laser_train

    path = Path(laser_train.__file__).parent / "configs" / "default.json"
    assert json.loads(path.read_text()) == to_dict(ExperimentConfig())
    assert to_dict(load_config(str(path))) == to_dict(ExperimentConfig())
