"""Regenerate the results section of ``docs/baselines.md`` from a run of ``python -m laser_train compare``.

    python docs/gen_baselines.py runs/compare --as toy   # copy a compare run's metrics as measurement "toy"
    python docs/gen_baselines.py                         # re-render from the committed docs/img/baselines/*.json
    python docs/gen_baselines.py --check                 # exit 1 if docs/baselines.md is stale

The section between the ``BEGIN generated results`` and ``END generated results`` markers is
generated here, never edited by hand: for each committed measurement (one compare run), the
configuration it was measured with, the table (mean ± sd over seeds), where LASER's objective is
ahead of each baseline and where not (recomputed by :func:`laser_train.compare.verdict`), and the
wall time. From a run directory the script first copies the table's part of ``metrics.json`` to
``docs/img/baselines/NAME.json``; a test checks that the page matches what this script renders
from the committed copies.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/docgen.py, also when loaded by the tests
from docgen import replace_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "baselines.md"
METRICS = REPO / "docs" / "img" / "baselines"  # one NAME.json per measurement
BEGIN = "<!-- BEGIN generated results: docs/gen_baselines.py writes this section; do not edit by hand -->"
END = "<!-- END generated results -->"
COLUMNS = (("names_r1", "names R@1"), ("unary_r1", "unary R@1"), ("unary_macro_r1", "unary mR@1"),
           ("binary_r1", "binary R@1"), ("binary_macro_r1", "binary mR@1"),
           ("spec_pos_acc", "spec pos acc"), ("spec_neg_acc", "spec neg acc"))
TITLES = {"unary_macro_r1": "unary mR@1", "binary_macro_r1": "binary mR@1"}


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _pct(v: Any, sd: Any = None) -> str:
    if _nan(v):
        return "–"
    if _nan(sd):
        return f"{100 * v:.1f}"
    return f"{100 * v:.1f} ± {100 * sd:.1f}"


def sd_text(noise: Any) -> str:
    return "" if _nan(noise) else f", sd {100 * noise:.1f}"


def slim(m: dict[str, Any]) -> dict[str, Any]:
    """The part of a compare ``metrics.json`` the page is rendered from (kept in the repository)."""
    keys = {k for k, _ in COLUMNS}
    rows = {row: {"mean": {k: v for k, v in r["mean"].items() if k in keys},
                  "sd": {k: v for k, v in r["sd"].items() if k in keys},
                  "seeds": r.get("seeds", []), "train_time_s": r.get("train_time_s")}
            for row, r in m["rows"].items()}
    cfg = m["config"]
    sys.path.insert(0, str(REPO))
    from laser_train.compare import verdict
    from laser_train.train import BASELINES

    judged = verdict({r: v["mean"] for r, v in rows.items()},
                     {r: (v["sd"] if len(v["seeds"]) > 1 else {}) for r, v in rows.items()}, BASELINES)
    return {"rows": rows, "seeds": m["seeds"], "best_baseline": m["best_baseline"], "verdict": judged,
            "timings": {k: m["timings"].get(k) for k in ("total_s", "total_cpu_s_with_workers", "load_average_end")},
            "config": {"data": cfg["data"], "model": cfg["model"], "train": cfg["train"],
                       "loss": {k: cfg["loss"][k] for k in ("svilm", "finsta", "hero", "weights")}}}


def render_all(measurements: dict[str, dict[str, Any]]) -> str:
    """The generated section: every measurement, in name order."""
    out = [BEGIN, ""]
    for name in sorted(measurements):
        out.append(render(measurements[name]))
        out.append("")
    out.append(END)
    return "\n".join(out)


def render(m: dict[str, Any]) -> str:
    """The markdown of one measurement (slim metrics ``m``)."""
    d, t, mo = m["config"]["data"], m["config"]["train"], m["config"]["model"]
    world = d.get("world", "toy")
    seeds = m["seeds"]
    out = [f"### `{world}` world, {len(seeds)} seed{'s' if len(seeds) > 1 else ''}, {t['epochs']} epochs", ""]
    if m.get("note"):
        out += [m["note"], ""]
    frames = f"{d['num_frames']} frames" if d.get("num_frames") else "the world's default length"
    out.append(f"Measured with `python -m laser_train compare` on the `{world}` world ({d['num_train']} training "
               f"and {d['num_test']} held-out videos of {frames}), model `{mo['name']}`, "
               f"{t['epochs']} epochs, batch {t['batch_size']}, seeds {', '.join(map(str, m['seeds']))} for every "
               f"trained row. Recall in % over the held-out videos' true facts (mean ± sd over seeds); "
               f"mR@1 is macro recall@1 (every predicate counts equally); train time in seconds per seed.")
    out.append("")
    out.append("| row | " + " | ".join(title for _, title in COLUMNS) + " | train s |")
    out.append("| --- |" + " ---: |" * (len(COLUMNS) + 1))
    for row, r in m["rows"].items():
        sd = r["sd"] if len(r.get("seeds", [])) > 1 else {}
        cells = [_pct(r["mean"].get(k), sd.get(k)) for k, _ in COLUMNS]
        ts = r.get("train_time_s")
        out.append(f"| `{row}` | " + " | ".join(cells) + f" | {'–' if _nan(ts) else f'{ts:.0f}'} |")
    out.append("")
    best = m["best_baseline"]
    out.append(f"Best baseline by mean unary/binary macro recall@1: **{best}** (the `laser+{best}` row adds it "
               f"to LASER's objective with weight 1).")
    out.append("")
    out.append("Where LASER's objective (`laser`) is ahead and where not — the difference of the means against "
               "the two rows' combined standard deviation (\"within noise\" when it is smaller):")
    out.append("")
    v = m["verdict"]
    for key, item in v.items():
        if not isinstance(item, dict):
            continue
        baseline, metric = key.split(".", 1)
        out.append(f"- {TITLES.get(metric, metric)} vs `{baseline}`: {100 * item['laser']:.1f} vs "
                   f"{100 * item['baseline']:.1f} ({100 * item['difference']:+.1f}{sd_text(item['noise'])}) — "
                   f"{item['outcome']}")
    out.append("")
    out.append(f"LASER's objective ahead of every baseline on unary and binary macro recall@1: "
               f"**{'yes' if v.get('laser_ahead_of_every_baseline') else 'no'}**.")
    tm = m["timings"]
    load = (tm.get("load_average_end") or [float("nan")])[0]
    out.append("")
    cpu = tm.get("total_cpu_s_with_workers")  # absent from runs before it counted the training workers
    cpu_text = "" if cpu is None else f" (CPU time {cpu / 60:.1f} min, with the training workers)"
    out.append(f"Wall time of the whole comparison: {tm['total_s'] / 60:.1f} min{cpu_text} on a 2-core CPU "
               f"machine, load average {load:.1f} at the end — timings under load are noisy; the ratios between "
               f"rows are what carries over.")
    return "\n".join(out)


def load_all() -> dict[str, dict[str, Any]]:
    """The committed measurements, by name."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(METRICS.glob("*.json"))}


def rewrite(page: str, section: str) -> str:
    return replace_section(page, BEGIN, END, section, PAGE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="a `python -m laser_train compare` run directory")
    ap.add_argument("--as", dest="name", default="main", help="the measurement's name (its file NAME.json)")
    ap.add_argument("--note", default="", help="a sentence shown above the measurement's table")
    ap.add_argument("--check", action="store_true", help="exit 1 if the page differs from what would be written")
    args = ap.parse_args(argv)
    if args.run:
        m = slim(json.loads((Path(args.run) / "metrics.json").read_text(encoding="utf-8")))
        m["note"] = args.note
        METRICS.mkdir(parents=True, exist_ok=True)
        (METRICS / f"{args.name}.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    page = PAGE.read_text(encoding="utf-8")
    new = rewrite(page, render_all(load_all()))
    if not args.check:
        PAGE.write_text(new, encoding="utf-8")
        print(f"wrote {PAGE}")
    elif new != page:  # show what changed, so that a stale page in CI says why
        sys.stderr.writelines(difflib.unified_diff(page.splitlines(True), new.splitlines(True), "docs/baselines.md",
                                                   "rendered", n=1))
        print("docs/baselines.md is stale: run python docs/gen_baselines.py", file=sys.stderr)
    return int(args.check and new != page)


if __name__ == "__main__":
    raise SystemExit(main())
