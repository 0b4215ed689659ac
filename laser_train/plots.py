"""PNG plots of a run: loss curves, the results table as bars, scene-graph timelines, frame grids.

* ``loss_curves.png``   total training loss per step for every variant, a moving average (left); the weak
  run's four loss terms per epoch (right). Variants optimise different sums, so compare shapes, not levels.
* ``results.png``       recall@1 of names / unary / binary for every row of the results table.
* ``timeline_<id>.png`` for a held-out video: one row per fact that is true at some frame or predicted
  with probability >= 0.5 at some frame; left the hidden truth, right the weakly supervised model's
  probability per frame. Rows are sorted so that true facts come first.
* ``frames_<id>.png``   a few frames of that video with every track's box, labelled with the model's
  predicted category and its most probable unary predicate.

matplotlib is imported here only (with the non-interactive Agg backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from laser_train.data.files import safe_name

__all__ = ["make_all", "loss_curves", "results_bars", "timeline", "frame_grid"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path, dpi: int = 100) -> Path:
    """Lay out, write and close a figure (closing frees it: runs draw many)."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def loss_curves(path: Path, histories: dict[str, list]) -> Path:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    top = 0.0
    for name, hist in histories.items():
        steps = [x for h in hist for x in h.get("step_losses", [])]
        if not steps:
            continue
        k = max(1, len(steps) // 30)  # light smoothing: a moving average over ~1/30 of the run
        smooth = np.convolve(steps, np.ones(k) / k, mode="valid")
        a.plot(np.arange(len(smooth)) + k - 1, smooth, label=name)
        top = max(top, float(np.percentile(smooth, 99)))
    a.set_xlabel("step")
    a.set_ylabel("training loss")
    a.set_ylim(0, top * 1.05 if top > 0 else None)
    a.set_title("total loss per step (moving average)")
    a.legend(fontsize=8)
    weak = histories.get("weak", [])
    if weak:
        for term in weak[0]["terms"]:
            b.plot([h["epoch"] for h in weak], [h["terms"][term] for h in weak], marker="o", label=term)
        b.set_xlabel("epoch")
        b.set_ylabel("mean term value (unweighted)")
        b.set_title("weak supervision: loss terms")
        b.legend(fontsize=8)
    return _save(plt, fig, path)


def results_bars(path: Path, results: dict[str, dict[str, float]]) -> Path:
    plt = _plt()
    rows = list(results)
    keys = ("names_r1", "unary_r1", "binary_r1")
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(rows)), 4))
    for i, k in enumerate(keys):
        ax.bar(x + (i - 1) * 0.27, [100 * results[r].get(k, float("nan")) for r in rows], 0.27,
               label=k.replace("_r1", " R@1"))
    ax.set_xticks(x, rows, rotation=20)
    ax.set_ylabel("recall@1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("held-out recall@1 (every ground-truth fact)")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _facts(v: int, data, probs, vocabulary, max_rows: int = 24):
    """(label, truth [T], prob [T]) for the facts of video v worth showing."""
    names, unary, binary = probs
    T = int(data.frame_mask[v].sum())
    N = int(data.track_mask[v].sum())
    cats = [vocabulary.categories[int(c)] for c in data.gt_names[v, :N].argmax(-1)]
    label = [f"{c}#{i}" for i, c in enumerate(cats)]
    rows = []
    for n in range(N):
        for p, pname in enumerate(vocabulary.unary_names):
            gt, pr = data.gt_unary[v, :T, n, p].numpy(), unary[v, :T, n, p].numpy()
            if gt.any() or (pr >= 0.5).any():
                rows.append((f"{pname}({label[n]})", gt, pr))
    for n in range(N):
        for m in range(N):
            if n == m:
                continue
            for r, rname in enumerate(vocabulary.binary_names):
                gt, pr = data.gt_binary[v, :T, n, m, r].numpy(), binary[v, :T, n, m, r].numpy()
                if gt.any() or (pr >= 0.5).any():
                    rows.append((f"{rname}({label[n]}, {label[m]})", gt, pr))
    rows.sort(key=lambda r: (-r[1].mean(), r[0]))
    return rows[:max_rows]


def timeline(path: Path, v: int, data, probs, vocabulary) -> Path:
    plt = _plt()
    rows = _facts(v, data, probs, vocabulary)
    if not rows:
        rows = [("(no facts)", np.zeros(int(data.frame_mask[v].sum())), np.zeros(int(data.frame_mask[v].sum())))]
    truth = np.stack([r[1] for r in rows])
    pred = np.stack([r[2] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.3 * len(rows) + 1.8), sharey=True)
    for ax, mat, title in ((axes[0], truth, "hidden truth"), (axes[1], pred, "predicted probability (weak)")):
        ax.imshow(mat, aspect="auto", cmap="Greens", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("frame")
        ax.set_xticks(range(mat.shape[1]))
    axes[0].set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    fig.suptitle(f"{data.ids[v]}: {data.captions[v]}", fontsize=9, wrap=True)
    return _save(plt, fig, path)


def frame_grid(path: Path, v: int, data, probs, vocabulary, frames: int = 4) -> Path:
    from laser_train.data.video import read_frames

    plt = _plt()
    names, unary, _ = probs
    rec = data.records[v]
    T = int(data.frame_mask[v].sum())
    video = read_frames(rec.video, data.frames[v, :T].tolist())  # only the sampled frames
    N = int(data.track_mask[v].sum())
    picks = np.linspace(0, T - 1, min(frames, T)).round().astype(int)
    W, H = rec.size
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.6))
    axes = np.atleast_1d(axes)
    for ax, t in zip(axes, picks):
        ax.imshow(video[t], interpolation="nearest")
        for n in range(N):
            if not data.present[v, t, n]:
                continue
            x0, y0, x1, y1 = (data.boxes[v, t, n].numpy() * np.array([W, H, W, H])).tolist()
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1, color="white"))
            cat = vocabulary.categories[int(names[v, n].argmax())]
            top = vocabulary.unary_names[int(unary[v, t, n].argmax())]
            ax.text(x0 - 0.5, y0 - 1.5, f"{cat}\n{top}", color="white", fontsize=6, va="bottom",
                    bbox=dict(facecolor="black", alpha=0.5, pad=0.5, lw=0))
        ax.set_title(f"frame {int(data.frames[v, t])}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{data.ids[v]} — predicted labels (weak model)", fontsize=9)
    return _save(plt, fig, path, dpi=110)


def make_all(out: Path, setup, models: dict[str, Any], histories: dict[str, list],
             results: dict[str, dict[str, float]], cfg) -> list[Path]:
    """Every plot of a run into ``out``; returns the files written."""
    from laser_train.evaluate import predict

    out.mkdir(parents=True, exist_ok=True)
    files = [loss_curves(out / "loss_curves.png", histories), results_bars(out / "results.png", results)]
    model = models.get("weak") or next(iter(models.values()))
    if setup.test.has_ground_truth and cfg.eval.plot_videos:
        data = _PlotBatch(setup.test, list(range(min(cfg.eval.plot_videos, len(setup.test)))))
        probs = tuple(p.detach() for p in predict(model, data.batch).probs())
        for v, name in enumerate(data.ids):
            name = safe_name(name)  # a record id may hold '/' or other path characters
            files.append(timeline(out / f"timeline_{name}.png", v, data, probs, setup.vocabulary))
            files.append(frame_grid(out / f"frames_{name}.png", v, data, probs, setup.vocabulary))
    return files


class _PlotBatch:
    """A few videos of a split as one collated batch, with the attributes the plots read."""

    def __init__(self, dataset, index: list[int]):
        self.batch = dataset.batch(index)
        self.ids = [dataset.ids[i] for i in index]
        self.captions = [dataset.captions[i] for i in index]
        self.records = [dataset.records[i] for i in index]

    def __getattr__(self, name: str):
        try:
            return self.__dict__["batch"][name]
        except KeyError:
            raise AttributeError(name) from None
