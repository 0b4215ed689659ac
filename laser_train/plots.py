"""PNG plots of a run: loss curves, the results table as bars, scene-graph timelines, frame grids.

* ``loss_curves.png``   total training loss per step for every variant, a moving average (left); the weak
  run's loss terms per epoch (right). Variants optimise different sums, so compare shapes, not levels.
* ``results.png``       macro recall@1 of unary / binary / rule-free binary predicates, names recall@1 and
  positive spec accuracy for every row of the results table; error bars are the standard deviation
  over seeds (rows trained with several seeds).
* ``timeline_<id>.png`` for a held-out video: one row per fact that is true at some frame or predicted
  with probability >= 0.5 at some frame; left the hidden truth, right the weakly supervised model's
  probability per frame, with a colour bar. Rows are sorted so that true facts come first.
* ``frames_<id>.png``   a few frames of that video with every track's box, labelled with the model's
  predicted category and every unary predicate with probability >= the spec accuracy's threshold (green ✓ true,
  red ✗ false); below each frame, every predicted non-spatial binary fact, marked the same way, the
  true ones it missed, and how many of the spatial relations (left_of ... near) it got right.

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


#: (metric key, label) of the bars in ``results.png``.
BAR_KEYS = (("names_r1", "names R@1"), ("unary_macro_r1", "unary mR@1"), ("binary_macro_r1", "binary mR@1"),
            ("binary_free_macro_r1", "rule-free binary mR@1"), ("spec_pos_acc", "positive spec acc"))


def results_bars(path: Path, results: dict[str, dict[str, float]],
                 spread: dict[str, dict[str, float]] | None = None) -> Path:
    plt = _plt()
    spread = spread or {}
    rows = list(results)
    keys = [kv for kv in BAR_KEYS if any(kv[0] in results[r] for r in rows)]
    x = np.arange(len(rows))
    w = 0.8 / max(len(keys), 1)
    fig, ax = plt.subplots(figsize=(max(9, 1.2 * len(rows)), 4.5))
    for i, (k, label) in enumerate(keys):
        vals = [100 * results[r].get(k, float("nan")) for r in rows]
        err = [100 * spread.get(r, {}).get(k, float("nan")) for r in rows]
        err = [0.0 if not np.isfinite(e) else e for e in err]
        ax.bar(x + (i - (len(keys) - 1) / 2) * w, vals, w, yerr=err, capsize=2, label=label)
    ax.set_xticks(x, rows, rotation=20)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title("held-out results (error bars: sd over seeds where several)")
    ax.legend(fontsize=8, ncol=3)
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
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.3 * len(rows) + 1.9), sharey=True)
    for ax, mat, title in ((axes[0], truth, "hidden truth"), (axes[1], pred, "predicted probability (weak)")):
        im = ax.imshow(mat, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("frame")
        ax.set_xticks(range(0, mat.shape[1], max(1, mat.shape[1] // 12)))
    axes[0].set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.01, label="probability (truth: 0 or 1)")
    fig.suptitle(f"{data.ids[v]}: {data.captions[v]}", fontsize=9, wrap=True)
    fig.subplots_adjust(left=0.25, right=0.9, bottom=0.12, top=0.85, wspace=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


SPATIAL = ("left_of", "right_of", "above", "below", "near")


def frame_grid(path: Path, v: int, data, probs, vocabulary, frames: int = 4, threshold: float = 0.5) -> Path:
    from laser_train.data.video import read_frames

    plt = _plt()
    names, unary, binary = probs
    rec = data.records[v]
    video = read_frames(rec.video, data.frames[v, :int(data.frame_mask[v].sum())].tolist())  # the sampled frames
    T = int(data.frame_mask[v].sum())
    N = int(data.track_mask[v].sum())
    picks = np.linspace(0, T - 1, min(frames, T)).round().astype(int)
    W, H = rec.size
    cats = [vocabulary.categories[int(names[v, n].argmax())] for n in range(N)]
    fig, axes = plt.subplots(2, len(picks), figsize=(3.6 * len(picks), 7.2),
                             gridspec_kw={"height_ratios": [3, 2]})
    axes = np.asarray(axes).reshape(2, len(picks))
    ok, bad = "#2ca02c", "#d62728"
    for col, t in enumerate(picks):
        ax = axes[0, col]
        ax.imshow(video[t], interpolation="nearest")
        for n in range(N):
            if not data.present[v, t, n]:
                continue
            x0, y0, x1, y1 = (data.boxes[v, t, n].numpy() * np.array([W, H, W, H])).tolist()
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1, color="white"))
            true_cat = vocabulary.categories[int(data.gt_names[v, n].argmax())] if data.has_ground_truth else None
            lines = [(f"{n}:{cats[n]}", ok if true_cat in (None, cats[n]) else bad)]
            for p, pname in enumerate(vocabulary.unary_names):
                if float(unary[v, t, n, p]) >= threshold:
                    right = data.has_ground_truth and bool(data.gt_unary[v, t, n, p] > 0.5)
                    lines.append((f"{pname} {'✓' if right else '✗'}", ok if right else bad))
            for k, (text, color) in enumerate(lines):
                ax.text(x0 - 0.5, y0 - 1.5 - 5.5 * (len(lines) - 1 - k), text, color=color, fontsize=5,
                        va="bottom", bbox=dict(facecolor="black", alpha=0.55, pad=0.3, lw=0))
        ax.set_title(f"frame {int(data.frames[v, t])}", fontsize=9)
        ax.axis("off")
        # binary facts of this frame
        txt = axes[1, col]
        txt.axis("off")
        entries: list[tuple[str, str]] = []
        spatial_right = spatial_total = 0
        for a in range(N):
            for b in range(N):
                if a == b or not (data.present[v, t, a] and data.present[v, t, b]):
                    continue
                for r, rname in enumerate(vocabulary.binary_names):
                    p_ = float(binary[v, t, a, b, r]) >= threshold
                    y_ = data.has_ground_truth and bool(data.gt_binary[v, t, a, b, r] > 0.5)
                    if rname in SPATIAL:
                        if y_ or p_:
                            spatial_total += 1
                            spatial_right += int(y_ and p_)
                        continue
                    if p_:
                        entries.append((f"{rname}({a},{b}) {'✓' if y_ else '✗'}", ok if y_ else bad))
                    elif y_:
                        entries.append((f"missed {rname}({a},{b})", "#7f7f7f"))
        entries.sort(key=lambda e: (e[1] != ok, e[0]))
        head = f"spatial: {spatial_right}/{spatial_total} right (predicted and true)"
        shown = entries[:22]
        more = len(entries) - len(shown)
        txt.text(0, 1, head, fontsize=6.5, va="top", transform=txt.transAxes)
        for k, (text, color) in enumerate(shown):
            txt.text(0, 0.93 - k * 0.042, text, fontsize=6.5, va="top", color=color, transform=txt.transAxes)
        if more > 0:
            txt.text(0, 0.93 - len(shown) * 0.042, f"... {more} more", fontsize=6.5, va="top",
                     transform=txt.transAxes)
    fig.suptitle(f"{data.ids[v]} — weak model, facts with probability >= {threshold:g} "
                 f"(✓ true, ✗ false; tracks numbered)", fontsize=9)
    return _save(plt, fig, path, dpi=110)


def make_all(out: Path, setup, models: dict[str, Any], histories: dict[str, list],
             metrics: dict[str, Any], cfg) -> list[Path]:
    """Every plot of a run into ``out``; ``metrics`` has ``results`` and ``spread`` rows; returns the files."""
    from laser_train.evaluate import predict

    out.mkdir(parents=True, exist_ok=True)
    spread = {r: s for r, s in metrics.get("spread", {}).items()
              if len(metrics.get("rows", {}).get(r, {}).get("per_seed", [])) > 1}
    files = [loss_curves(out / "loss_curves.png", histories),
             results_bars(out / "results.png", metrics["results"], spread)]
    row = "weak" if "weak" in models else next(iter(models))
    model = models[row]
    # the threshold the row's spec accuracy used (its first seed's: the model plotted), else eval.threshold
    first = (metrics.get("rows", {}).get(row, {}).get("per_seed") or [{}])[0]
    threshold = first.get("spec_threshold", cfg.eval.threshold)
    if setup.test.has_ground_truth and cfg.eval.plot_videos:
        data = _PlotBatch(setup.test, list(range(min(cfg.eval.plot_videos, len(setup.test)))))
        probs = tuple(p.detach() for p in predict(model, data.batch).probs())
        for v, name in enumerate(data.ids):
            name = safe_name(name)  # a record id may hold '/' or other path characters
            files.append(timeline(out / f"timeline_{name}.png", v, data, probs, setup.vocabulary))
            files.append(frame_grid(out / f"frames_{name}.png", v, data, probs, setup.vocabulary,
                                    threshold=threshold))
    return files


class _PlotBatch:
    """A few videos of a split as one collated batch, with the attributes the plots read."""

    def __init__(self, dataset, index: list[int]):
        self.batch = dataset.batch(index)
        self.ids = [dataset.ids[i] for i in index]
        self.captions = [dataset.captions[i] for i in index]
        self.records = [dataset.records[i] for i in index]
        self.has_ground_truth = "gt_names" in self.batch

    def __getattr__(self, name: str):
        try:
            return self.__dict__["batch"][name]
        except KeyError:
            raise AttributeError(name) from None
