"""Regenerate the results section of ``docs/training.md`` from a run of ``python -m laser_train``.

    python docs/gen_training.py runs/default     # from a run directory: copy its metrics and plots, rewrite
    python docs/gen_training.py                  # re-render from the committed docs/img/training/metrics.json
    python docs/gen_training.py --check          # exit 1 if docs/training.md is stale

The section between the ``BEGIN generated results`` and ``END generated results`` markers of
``docs/training.md`` is generated here, never edited by hand: the results table (mean ± sd over
seeds), ratios to the prior, the targets, which predicates the background rules constrain,
per-predicate recall, predicate frequencies, timings, and the plots. From a run directory the
script first copies ``metrics.json`` (without the per-epoch histories) and the plots into
``docs/img/training/``; ``tests/test_docs.py`` checks that the page matches what this script
renders from that committed copy.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/docgen.py, also when loaded by the tests
from docgen import replace_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "training.md"
IMG = REPO / "docs" / "img" / "training"
METRICS = IMG / "metrics.json"
BEGIN = "<!-- BEGIN generated results: docs/gen_training.py writes this section; do not edit by hand -->"
END = "<!-- END generated results -->"
#: plots copied from the run (the timeline and frame grid of the first plotted video)
PLOTS = ("results.png", "loss_curves.png")


def _pct(v: Any, sd: Any = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{100 * v:.1f}"
    return f"{100 * v:.1f} ± {100 * sd:.1f}"


def _ratio(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}×"


def _overrides(config: dict[str, Any]) -> list[str]:
    """``--section.key=value`` for every setting of the run that differs from today's defaults."""
    from laser_train.config import ExperimentConfig, to_dict

    out: list[str] = []

    def walk(run: dict, default: dict, prefix: str) -> None:
        for k, v in run.items():
            if isinstance(v, dict) and isinstance(default.get(k), dict):
                walk(v, default[k], f"{prefix}{k}.")
            elif k in default and v != default[k]:
                value = ",".join(map(str, v)) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v
                out.append(f"--{prefix}{k}={value}")

    walk(config, to_dict(ExperimentConfig()), "")
    return [o for o in out if not o.startswith(("--train.progress", "--run.out"))]


def render(m: dict[str, Any]) -> str:
    """The generated markdown section for metrics ``m`` (the shape ``laser_train.experiment`` writes)."""
    cfg = m["config"]
    d, t = cfg["data"], cfg["train"]
    from laser_train.experiment import table_columns

    rows = m["rows"]
    cols = table_columns({r: info["mean"] for r, info in rows.items()})
    out = [BEGIN, ""]
    timings = m.get("timings", {})
    load = timings.get("load_average_end", [float("nan")])[0]
    world = d.get("world", "toy")
    videos = m.get("videos", {"train": d["num_train"], "test": d["num_test"]})
    if d.get("path"):
        source = f"the dataset `{d['path']}`" + (
            f" ({videos['train']} training and {videos['test']} held-out videos)" if "videos" in m else "")
    else:
        source = f"world `{world}`, {videos['train']} training and {videos['test']} held-out videos"
    overrides = _overrides(cfg)
    out.append(f"Measured with `python -m laser_train{''.join(' ' + o for o in overrides)}` ({source}, "
               f"{t['epochs']} epochs at batch {t['batch_size']}, seeds {', '.join(map(str, m['seeds']))} "
               f"for `weak` and `full`, the first seed for the other rows). Recall in % over the held-out "
               f"videos' hidden scene graphs; mean ± sd over seeds where a row has several. `mR@k` is "
               f"macro recall (the mean over predicates of each predicate's recall); `free` columns count "
               f"only the predicates no background rule mentions.")
    out.append("")
    out.append("| row | seeds | " + " | ".join(title for _, title in cols) + " | train s |")
    out.append("| --- | --- | " + " | ".join("---:" for _ in cols) + " | ---: |")
    for row, info in rows.items():
        several = len(info.get("per_seed", [])) > 1
        cells = [_pct(info["mean"].get(k), info["sd"].get(k) if several else None) for k, _ in cols]
        tt = info.get("train_time_s")
        seeds = ",".join(map(str, info.get("seeds", []))) or "–"
        out.append(f"| {row} | {seeds} | " + " | ".join(cells) + f" | {'–' if tt is None else f'{tt:.0f}'} |")
    out.append("")
    ratios = m.get("ratios_vs_prior", {})
    keys = [("unary_macro_r1", "unary mR@1"), ("binary_macro_r1", "binary mR@1"),
            ("binary_free_macro_r1", "binary free mR@1"), ("unary_r1", "unary R@1"), ("binary_r1", "binary R@1")]
    out.append(f"Ratios to **{m.get('ratio_base', 'prior')}** (the row's mean divided by the prior's):")
    out.append("")
    out.append("| row | " + " | ".join(k for _, k in keys) + " |")
    out.append("| --- | " + " | ".join("---:" for _ in keys) + " |")
    for row, r in ratios.items():
        if row in ("prior",):
            continue
        out.append(f"| {row} | " + " | ".join(_ratio(r.get(k)) for k, _ in keys) + " |")
    out.append("")
    goal = m.get("targets", {})
    names = {"unary_weak_over_full": "weak / full, unary mR@1", "binary_weak_over_full": "weak / full, binary mR@1",
             "unary_weak_over_prior": "weak / prior, unary mR@1", "binary_weak_over_prior": "weak / prior, binary mR@1",
             "binary_free_weak_over_prior": "weak / prior, rule-free binary mR@1",
             "weak_spec_pos_acc": "weak positive spec accuracy"}
    out.append("Targets (checked on the means):")
    out.append("")
    for k, title in names.items():
        if k in goal:
            val = f"{100 * goal[k]:.1f}%" if k == "weak_spec_pos_acc" else f"{goal[k]:.2f}"
            need = (f"{100 * goal[f'{k}_target']:.0f}%" if k == "weak_spec_pos_acc"
                    else f"{goal[f'{k}_target']:.2f}")
            out.append(f"* {title}: **{val}** (target ≥ {need}: {'met' if goal[f'{k}_met'] else '**not met**'})")
    ceiling = m.get("spec_accuracy_on_true_scene_graphs")
    if isinstance(ceiling, dict):
        out.append(f"* spec accuracy of the true scene graphs (the ceiling of those columns): positive "
                   f"{_pct(ceiling.get('spec_pos_acc'))}, negative {_pct(ceiling.get('spec_neg_acc'))}")
    out.append("")
    rc, rf = m.get("rule_constrained", {}), m.get("rule_free", {})
    out.append("Predicates the background rules (`data.background`) constrain, and the rule-free rest:")
    out.append("")
    for kind in ("unary", "binary"):
        out.append(f"* {kind}, constrained: {', '.join(f'`{p}`' for p in rc.get(kind, [])) or 'none'}; "
                   f"rule-free: {', '.join(f'`{p}`' for p in rf.get(kind, [])) or 'none'}")
    out.append("")
    per = m.get("per_predicate_r1", {})
    share = m.get("predicate_share", {})
    if per:
        shown = [r for r in ("prior", "weak", "full") if r in per]
        for kind in ("unary", "binary"):
            out.append(f"Per-predicate recall@1 ({kind}; first seed; share = the predicate's share of the "
                       f"held-out true {kind} facts):")
            out.append("")
            out.append("| predicate | share | rule-free | " + " | ".join(shown) + " |")
            out.append("| --- | ---: | :---: | " + " | ".join("---:" for _ in shown) + " |")
            preds = sorted(per[shown[0]][kind], key=lambda p: -share.get(kind, {}).get(p, 0.0))
            for p in preds:
                out.append(f"| `{p}` | {_pct(share.get(kind, {}).get(p))} | "
                           f"{'yes' if p in rf.get(kind, []) else ''} | "
                           + " | ".join(_pct(per[r][kind].get(p)) for r in shown) + " |")
            out.append("")
    total = timings.get("total_s")
    if total is not None:
        if "total_cpu_s_with_workers" in timings:
            cpu = f"CPU {timings['total_cpu_s_with_workers']:.0f} s (with the training workers)"
        else:
            cpu = f"CPU of the main process {timings.get('total_cpu_s', 0):.0f} s (the workers were not counted)"
        out.append(f"Timings of this run: wall {total:.0f} s ({total / 60:.1f} min), {cpu}; data generation "
                   f"{timings.get('data_generate_s', 0):.0f} s (cached for later runs), "
                   f"loading {timings.get('data_load_s', 0):.0f} s, spec compilation "
                   f"{timings.get('spec_compile_s', 0):.0f} s, plots {timings.get('plots_s', 0):.0f} s; "
                   f"load average at the end {load:.1f} (the machine was shared when it is above 2).")
        out.append("")
    plots = m.get("doc_plots", [])
    for p in plots:
        out.append(f"![{p}](img/training/{p})")
        out.append("")
    out.append(END)
    return "\n".join(out)


def import_run(run: Path) -> dict[str, Any]:
    """Copy ``run``'s metrics (without histories) and plots into ``docs/img/training``; returns the metrics."""
    m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    IMG.mkdir(parents=True, exist_ok=True)
    for old in IMG.glob("*.png"):
        old.unlink()
    plots = []
    for name in PLOTS:
        if (run / "plots" / name).exists():
            shutil.copyfile(run / "plots" / name, IMG / name)
            plots.append(name)
    for pattern in ("timeline_*.png", "frames_*.png"):
        found = sorted((run / "plots").glob(pattern))[:2]
        for f in found:
            shutil.copyfile(f, IMG / f.name)
            plots.append(f.name)
    keep = {k: v for k, v in m.items() if k not in ("histories", "plots", "run_dir", "dataset")}
    keep["doc_plots"] = plots
    METRICS.write_text(json.dumps(keep, indent=1) + "\n", encoding="utf-8")
    return keep


def rewrite(page: str, section: str) -> str:
    return replace_section(page, BEGIN, END, section, PAGE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", help="run directory of python -m laser_train (default: the committed copy)")
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/training.md is stale")
    args = ap.parse_args(argv)
    if args.run:
        m = import_run(Path(args.run))
    else:
        m = json.loads(METRICS.read_text(encoding="utf-8"))
    page = PAGE.read_text(encoding="utf-8")
    new = rewrite(page, render(m))
    if args.check:
        if new != page:
            print(f"{PAGE} is stale: run python docs/gen_training.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    print(f"wrote the results section of {PAGE}")
    return 0


if str(REPO) not in sys.path:  # running as a script from a checkout
    sys.path.insert(0, str(REPO))

if __name__ == "__main__":
    raise SystemExit(main())
