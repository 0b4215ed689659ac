"""torchrun / DDP on the CPU (gloo): two processes compute the one-process run, a run killed with kill -9
resumes to the same metrics (on two processes, and on one), and the run-honesty checks of resuming and
re-evaluating: config changes are refused (or recorded), ``eval`` gives training's numbers exactly,
unknown variants fail before any data is touched, checkpoints load with weights_only.

The kill -9 and config-change tests start several torchrun jobs and are marked ``slow`` (CI runs them)."""

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

from laser_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from laser_train.data.synthetic import write_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# 18 training videos at a global batch of 8: the last batch (2 videos) splits 1 + 1 over two ranks.
SMALL = ["--train.epochs=4", "--train.batch_size=8", "--train.lr=5e-3", "--train.threads=1",
         "--train.progress=false", "--run.plots=false", "--train.device=cpu", "--loss.num_negatives=2"]
#: Tolerance between K processes and one: the same arithmetic up to the order in which DDP sums gradients.
ATOL = 1e-4


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(v, None)
    return env


def _cmd(nproc: int, out: Path, data: Path, *extra: str) -> list[str]:
    launch = [sys.executable, "-m", "laser_train"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "laser_train"]
    return [*launch, "train", "--variant", "weak", *SMALL, f"--data.path={data}", f"--run.out={out}", *extra]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env(), cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _metrics(out: Path) -> dict:
    return json.loads((out / "weak" / "metrics.json").read_text())


def _close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k], abs=atol), k


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run on one process and on two (gloo), both to completion."""
    root = tmp_path_factory.mktemp("ddp")
    data = root / "data"
    write_dataset(data, seed=0, num_train=18, num_test=8, num_frames=6, num_negatives=2)
    one, two = root / "one", root / "two"
    _run(_cmd(1, one, data))
    out = _run(_cmd(2, two, data))
    return data, one, two, out


def test_two_gloo_processes_compute_the_one_process_run(runs):
    _, one, two, out = runs
    m1, m2 = _metrics(one), _metrics(two)
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    assert out.stdout.count('"spec_accuracy"') == 1  # only rank 0 prints
    _close(m1["metrics"], m2["metrics"], ATOL)
    c1, c2 = load_checkpoint(one / "weak" / "checkpoint.pt"), load_checkpoint(two / "weak" / "checkpoint.pt")
    assert [h["loss"] for h in c1["history"]] == pytest.approx([h["loss"] for h in c2["history"]], rel=ATOL)
    for k, v in c1["model"].items():
        torch.testing.assert_close(v, c2["model"][k], atol=ATOL, rtol=0)
    assert sorted(p.name for p in (two / "weak").iterdir()) == ["checkpoint.pt", "metrics.json"]


@pytest.mark.slow  # several torchrun jobs: run by CI (-m slow), deselected locally
def test_ddp_run_killed_with_sigkill_resumes_to_the_same_metrics(runs, tmp_path):
    """kill -9 of torchrun and both workers after an epoch; resumed on two processes: exactly the
    uninterrupted two-process run; the same checkpoint resumed on one process: the one-process run."""
    import shutil

    data, one, two, _ = runs
    out = tmp_path / "killed"
    cmd = _cmd(2, out, data)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT,
                            start_new_session=True)
    ckpt = out / "weak" / "checkpoint.pt"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists() and load_checkpoint(ckpt)["epoch"] >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun's agent and both workers, no clean-up
        proc.wait()
    killed_at = load_checkpoint(ckpt)["epoch"]
    assert 1 <= killed_at < 4 and not (out / "weak" / "metrics.json").exists()
    resized = tmp_path / "resized"
    shutil.copytree(out, resized)
    _run(cmd + ["--run.resume=true"])
    assert load_checkpoint(ckpt)["epoch"] == 4
    assert _metrics(out)["metrics"] == _metrics(two)["metrics"]
    _run(_cmd(1, resized, data, "--run.resume=true"))
    _close(_metrics(resized)["metrics"], _metrics(one)["metrics"], ATOL)


@pytest.mark.slow  # several torchrun jobs: run by CI (-m slow), deselected locally
def test_resume_with_a_changed_config_is_refused_unless_allowed(runs, tmp_path):
    import shutil

    data, _, two, _ = runs
    out = tmp_path / "changed"
    shutil.copytree(two, out)
    res = subprocess.run(_cmd(1, out, data, "--run.resume=true", "--train.lr=0.1", "--loss.num_negatives=3"),
                         capture_output=True, text=True, timeout=600, env=_env(), cwd=ROOT)
    assert res.returncode == 2
    assert "cannot resume" in res.stderr and "train.lr: 0.005 -> 0.1" in res.stderr
    assert "loss.num_negatives: 2 -> 3" in res.stderr and "--run.allow_config_change=true" in res.stderr
    assert "Traceback" not in res.stderr
    # run.*, eval.*, train.device/threads/progress may change; an explicit override records the change
    _run(_cmd(1, out, data, "--run.resume=true", "--train.epochs=5", "--run.allow_config_change=true"))
    m = _metrics(out)
    assert m["config_changes"] == [{"epoch": 4, "changed": ["train.epochs: 4 -> 5"]}]
    assert load_checkpoint(out / "weak" / "checkpoint.pt")["extra"]["config_changes"] == m["config_changes"]


def test_eval_cli_gives_exactly_the_numbers_of_training(runs):
    _, one, _, _ = runs
    res = _run([sys.executable, "-m", "laser_train", "eval", "--checkpoint", str(one / "weak" / "checkpoint.pt")])
    got = json.loads(res.stdout)
    want = _metrics(one)["metrics"]
    assert got["split"] == "test" and got["videos"] == 8
    for k, v in want.items():
        assert got[k] == v or (math.isnan(v) and math.isnan(got[k])), k


@pytest.mark.parametrize("args, words", [
    (["train", "--variant", "strong"], "unknown variant 'strong' (choose from weak, full"),
    (["run", "--run.variants=weak,nope"], "unknown variant 'nope'"),
    (["train", "--model.name=resnet"], "model.name: unknown value 'resnet' (choose from small, clip)"),
    (["train", "--train.device=tpu"], "train.device: 'tpu': expected one of auto, cpu, cuda, cuda:N"),
])
def test_unknown_names_fail_before_any_data_is_loaded(tmp_path, capsys, args, words):
    from laser_train.__main__ import main

    missing = tmp_path / "no-such-dataset"
    assert main(args + [f"--data.path={missing}", f"--run.out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert words in err and "no-such-dataset" not in err
    assert not (tmp_path / "run").exists()


def test_checkpoints_load_with_weights_only(tmp_path):
    model = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "ok.pt", model=model, epoch=1, config={"a": 1})
    assert load_checkpoint(path)["epoch"] == 1
    evil = tmp_path / "evil.pt"
    torch.save({"version": 1, "model": model.state_dict(), "payload": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="not a laser_train checkpoint"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


class _Payload:
    """An arbitrary object: torch.load(weights_only=True) must refuse to unpickle it."""
