"""The objectives in training: every baseline trains the same model on the same batches, LASER's
objective is unchanged by the registry, combinations add up, bad objectives fail at load, and
``compare`` writes every row."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from laser_train import train as T  # noqa: E402
from laser_train.config import ConfigError, load_config  # noqa: E402
from laser_train.data.synthetic import write_dataset  # noqa: E402

TINY = ["--data.num_train=16", "--data.num_test=8", "--data.num_frames=8", "--train.epochs=2",
        "--train.batch_size=8", "--train.threads=1", "--train.progress=false", "--run.plots=false"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("objectives")
    data = root / "data"
    write_dataset(data, seed=0, num_train=16, num_test=8, num_frames=8, num_negatives=4)
    cfg = load_config(None, TINY + [f"--data.path={data}", f"--run.out={root / 'run'}"])
    return cfg, T.prepare(cfg), root


@pytest.mark.parametrize("variant", ["svilm", "finsta", "hero"])
def test_each_baseline_trains_the_model_and_is_evaluated(tiny, variant):
    cfg, setup, _ = tiny
    res = T.main(cfg, variant, None, setup=setup, progress=False)
    hist = res["history"]
    assert len(hist) == 2 and all(math.isfinite(h["loss"]) for h in hist)
    assert any(k.startswith(f"{variant}.") for k in hist[0]["terms"])
    assert "alignment" not in hist[0]["terms"]  # LASER's loss is not computed for a baseline alone
    for key in ("names_r1", "unary_r1", "binary_r1", "spec_accuracy"):
        assert 0.0 <= res["metrics"][key] <= 1.0


def test_laser_objective_is_the_weak_loss_unchanged(tiny):
    """``loss.objective=laser`` (the default) reproduces the weak variant bit for bit."""
    cfg, setup, _ = tiny
    a = T.main(cfg, "weak", None, setup=setup, progress=False)
    b = T.main(load_config(None, TINY + [f"--data.path={cfg.data.path}", "--loss.objective=1*laser"]), "weak",
               None, setup=setup, progress=False)
    assert a["history"][-1]["step_losses"] == b["history"][-1]["step_losses"]
    assert set(a["history"][-1]["terms"]) == {"alignment", "contrastive", "temporal", "semantic", "sparsity"}


def test_laser_plus_baseline_sums_both_objectives(tiny):
    cfg, setup, _ = tiny
    res = T.main(cfg, "weak+finsta", None, setup=setup, progress=False)
    terms = res["history"][0]["terms"]
    assert {"alignment", "finsta.spatial", "finsta.temporal"} <= set(terms)


def test_unknown_objective_fails_at_load_with_the_choices():
    with pytest.raises(ConfigError, match="unknown objective 'clip'.*laser, svilm, finsta, hero"):
        load_config(None, ["--loss.objective=laser+clip"])


def test_unknown_variant_lists_the_baselines():
    from laser_train.config import ExperimentConfig

    with pytest.raises(ValueError, match="weak\\+finsta"):
        T.variant_config(ExperimentConfig(), "finsta+weak")


def test_compare_writes_every_row_with_seeds(tiny, tmp_path):
    from laser_train.compare import run_compare

    cfg, _, _ = tiny
    cfg = load_config(None, TINY + [f"--data.path={cfg.data.path}", f"--run.out={tmp_path / 'cmp'}",
                                    "--train.epochs=1", "--run.seeds=0,1"])
    m = run_compare(cfg)
    best = m["best_baseline"]
    assert best in T.BASELINES
    want = {"chance", "untrained", "svilm", "finsta", "hero", "laser", f"laser+{best}", "full"}
    assert want <= set(m["rows"])
    for row in want - {"chance"}:
        assert m["rows"][row]["seeds"] == [0, 1] or row == "prior"
        assert len(m["rows"][row]["per_seed"]) == 2
        assert "unary_macro_r1" in m["rows"][row]["mean"] and "unary_macro_r1" in m["rows"][row]["sd"]
    assert (tmp_path / "cmp" / "metrics.json").exists()
    assert m["timings"]["total_s"] > 0 and "verdict" in m
