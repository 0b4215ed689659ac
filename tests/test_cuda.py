"""The CUDA paths: the torch backend, the models and training on a GPU agree with the CPU.

Skipped where no CUDA device is present (CI has none); `bench/gpu_checks.sh` runs this file on a lent GPU
machine. Everything is compared with the CPU (itself differentially tested against the reference
interpreter), in float64 for the spec backend and within float32 / bf16 tolerances for the models.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from strategies import VOCAB, specs, traces  # noqa: E402
from test_laser_train_models import VOC, _batch  # noqa: E402
from test_torch_backend import _close, _laser_specs, _random_batch  # noqa: E402

from stlspec import ir  # noqa: E402
from stlspec.backends import reference  # noqa: E402
from stlspec.backends.torch import SceneGraphBatch, compile_specs  # noqa: E402

CUDA = torch.device("cuda")
FIELDS = ("names", "unary", "binary", "frame_mask", "track_mask", "present")


def _to(batch: SceneGraphBatch, device, requires_grad: bool = False) -> SceneGraphBatch:
    kw = {}
    for f in FIELDS:
        x = getattr(batch, f, None)
        if x is None:
            continue
        x = x.detach().to(device)
        if requires_grad and x.is_floating_point():
            x.requires_grad_(True)
        kw[f] = x
    return SceneGraphBatch(**kw)


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(pairs=st.lists(st.tuples(specs(max_depth=3, max_events=3), traces(max_T=6, max_N=3)), min_size=1, max_size=4))
def test_cuda_backend_matches_reference(logic, pairs):
    spec_list = [ir.Spec(f"s{i}", s.formula, s.events) for i, (s, _) in enumerate(pairs)]
    ev = compile_specs(spec_list, vocabulary=VOCAB, logic=logic)
    batch = _to(SceneGraphBatch.from_traces([t for _, t in pairs], ev.columns, dtype=torch.float64), CUDA)
    out = ev(batch)
    assert out.values.device.type == "cuda"
    for i, (spec, trace) in enumerate(pairs):
        ref = reference.evaluate(spec, trace, logic, 0.1)
        _close(ref, float(out.values[i]), out.witnesses[i, :, : trace.num_frames].tolist())


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
def test_cuda_values_witnesses_and_gradients_equal_cpu(logic):
    specs_ = _laser_specs(48, seed=1)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    base = _random_batch(48, 16, 6, seed=2, lengths=[16 - (i % 5) for i in range(48)],
                         tracks=[6 - (i % 3) for i in range(48)])
    results = []
    for device in ("cpu", "cuda"):
        b = _to(base, device, requires_grad=True)
        out = ev(b, list(range(48)), list(range(48)), witnesses=True)
        loss = -(out.values.clamp_min(1e-30).log().sum()) + (out.witnesses ** 2).sum()
        loss.backward()
        results.append([out.values.detach().cpu(), out.witnesses.detach().cpu()]
                       + [getattr(b, f).grad.cpu() for f in ("names", "unary", "binary")])
    for a, c in zip(*results):
        torch.testing.assert_close(c, a, atol=1e-9, rtol=1e-9)


def test_cuda_witness_flags_and_certified_pruning_equal_cpu():
    """Per-instance witness flags and certified pruning (values, witnesses, bounds, gradients) on CUDA equal
    the CPU's."""
    specs_ = _laser_specs(16, seed=5)
    base = _random_batch(16, 8, 6, seed=6)
    flags = [k % 3 == 0 for k in range(16)]
    results = []
    for device in ("cpu", "cuda"):
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", prune_below=0.3)
        b = _to(base, device, requires_grad=True)
        out = ev(b, list(range(16)), list(range(16)), witnesses=flags)
        (out.values.sum() + (out.witnesses ** 2).sum()).backward()
        results.append([out.values.detach().cpu(), out.witnesses.detach().cpu(), out.error_bound.cpu()]
                       + [getattr(b, f).grad.cpu() for f in ("names", "unary", "binary")])
    for a, c in zip(*results):
        torch.testing.assert_close(c, a, atol=1e-9, rtol=1e-9)


def test_cuda_large_batch_is_one_plan():
    # B = 4,096 videos in one call: bounded memory and the same values as four calls of 1,024.
    specs_ = _laser_specs(64, seed=3)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="product")
    base = _to(_random_batch(4096, 32, 8, seed=4, dtype=torch.float32), CUDA)
    ids = [i % 64 for i in range(4096)]
    whole = ev(base, ids, list(range(4096))).values
    parts = []
    for lo in range(0, 4096, 1024):
        sub = SceneGraphBatch(*(getattr(base, f)[lo:lo + 1024] for f in FIELDS[:5]))
        parts.append(ev(sub, ids[lo:lo + 1024], list(range(1024))).values)
    torch.testing.assert_close(whole, torch.cat(parts), atol=1e-6, rtol=1e-5)
    assert torch.isfinite(whole).all()


def _model_batch(device="cpu"):
    return {k: v.to(device) for k, v in _batch(T=4).items()}


def test_small_model_on_cuda_equals_cpu_and_runs_under_bf16():
    from laser_train.model import SmallPerception

    torch.manual_seed(0)
    model = SmallPerception(VOC)
    cpu = model(_model_batch()).probs()
    model = model.to(CUDA)
    gpu = model(_model_batch(device=CUDA)).probs()
    for a, c in zip(cpu, gpu):
        torch.testing.assert_close(c.cpu(), a, atol=1e-4, rtol=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        scores = model(_model_batch(device=CUDA))
    assert scores.names.dtype == torch.float32  # logits leave autocast in float32
    sum(p.sum() for p in scores.probs()).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("precision", ("fp32", "bf16", "fp16"))
def test_weak_training_on_cuda(tmp_path, precision):
    from laser_train import train as T
    from laser_train.config import load_config
    from laser_train.data.synthetic import write_dataset

    data = tmp_path / "data"
    write_dataset(data, seed=0, num_train=32, num_test=8, num_frames=8, num_negatives=4)
    args = ["--data.num_frames=8", "--train.epochs=2", "--train.batch_size=8", "--train.progress=false",
            "--run.plots=false", f"--data.path={data}", f"--run.out={tmp_path / 'run'}",
            "--train.device=cuda", f"--train.precision={precision}"]
    res = T.main(load_config(None, args), "weak")
    assert "cuda" in res["device"]
    assert all(math.isfinite(h["loss"]) for h in res["history"])
    if precision == "fp32":  # the same run on the CPU: the same losses up to float32 and cuDNN rounding
        cpu = T.main(load_config(None, args[:-2] + ["--train.device=cpu", f"--run.out={tmp_path / 'cpu'}"]),
                     "weak")
        assert res["history"][0]["loss"] == pytest.approx(cpu["history"][0]["loss"], rel=1e-3)


def test_clip_training_step_on_cuda(tmp_path):
    pytest.importorskip("transformers")
    from laser_train import train as T
    from laser_train.clip_model import save_random_clip
    from laser_train.config import load_config
    from laser_train.data.synthetic import write_dataset

    clip = save_random_clip(tmp_path / "clip", "tiny")
    data = tmp_path / "data"
    write_dataset(data, seed=0, num_train=16, num_test=8, num_frames=6, num_negatives=4)
    args = ["--data.num_frames=6", "--train.epochs=1", "--train.batch_size=8", "--train.progress=false",
            "--run.plots=false", f"--data.path={data}", f"--run.out={tmp_path / 'run'}", "--model.name=clip",
            f"--model.path={clip}", "--data.crop_size=32", "--train.device=cuda", "--train.precision=bf16"]
    res = T.main(load_config(None, args), "weak")
    assert all(math.isfinite(h["loss"]) for h in res["history"])
    assert 0.0 <= res["metrics"]["unary_r1"] <= 1.0
