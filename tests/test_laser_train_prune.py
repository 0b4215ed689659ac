"""loss.prune_below: certified pruning of the training evaluator, from the configuration."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from laser_train import train as T  # noqa: E402
from laser_train.config import ConfigError, load_config  # noqa: E402
from laser_train.losses import weak_loss  # noqa: E402

SMALL = ["--data.world=toy", "--data.num_train=8", "--data.num_test=4", "--data.num_negatives=2",
         "--train.progress=false"]


@pytest.mark.parametrize("value, match", [("-0.1", "prune_below"), ("1.5", "prune_below"), ("nan", "prune_below")])
def test_bad_values_are_config_errors(value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, SMALL + [f"--loss.prune_below={value}"])


def test_smooth_logic_refuses_pruning():
    with pytest.raises(ConfigError, match="product or godel"):
        load_config(None, SMALL + ["--loss.prune_below=0.1", "--loss.logic=smooth"])


def test_the_training_evaluator_prunes_and_a_step_runs(tmp_path):
    cfg = load_config(None, SMALL + [f"--run.out={tmp_path}/runs", "--loss.prune_below=0.2"])
    setup = T.prepare(cfg, progress=False)
    sup = setup.supervision
    assert sup.evaluator().prune_below == 0.2
    assert sup.evaluator("boolean").prune_below is None  # spec accuracy stays exact
    vcfg = T.variant_config(cfg, "weak")
    model, opt, _ = T.build(vcfg, setup, 10)
    index = torch.arange(4)
    batch = setup.train.batch(index)
    work = T._weak_work(setup, vcfg, index, np.random.default_rng(0))
    loss, terms = weak_loss(sup, model(batch).probs(), batch, work, vcfg.loss.weights)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(t) for t in terms.values())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
