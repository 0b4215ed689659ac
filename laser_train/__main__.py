"""Command line: ``python -m laser_train [run|train|eval|config] [--config FILE] [--section.key=value ...]``.

* ``run`` (the default, also with no arguments at all): the main job — synthetic data, every variant,
  results table, run directory (:mod:`laser_train.experiment`).
* ``train --variant weak``: train one variant into ``run.out`` (``--run.resume=true`` continues it).
* ``eval --checkpoint PATH [--data DIR] [--split test]``: evaluate a checkpoint on any dataset in the
  documented format; prints the metrics as JSON.
* ``config``: print the resolved configuration as JSON (a starting point for ``--config FILE``).
"""

from __future__ import annotations

import argparse
import json
import sys

from laser_train.config import ConfigError, load_config, to_dict

USAGE = __doc__


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate ``--section.key=value`` overrides from the subcommand's own options."""
    overrides, rest = [], []
    for a in argv:
        head = a.lstrip("-").split("=", 1)[0]
        if a.startswith("--") and "." in head and "=" in a:
            overrides.append(a)
        else:
            rest.append(a)
    return overrides, rest


def _eval(args, overrides) -> int:
    from laser_train import train as T
    from laser_train.checkpoint import load_checkpoint
    from laser_train.config import apply_overrides, from_dict
    from laser_train.data.format import validate_dataset
    from laser_train.data.loader import load_split
    from laser_train.evaluate import evaluate_model
    from laser_train.losses import SpecSupervision
    from laser_train.model import build_model

    state = load_checkpoint(args.checkpoint)
    cfg = apply_overrides(from_dict(state["config"]), overrides)
    root = args.data or state.get("extra", {}).get("dataset") or T.ensure_dataset(cfg)
    ds = validate_dataset(root, skip_invalid=cfg.data.skip_invalid)
    for p in ds.skipped:
        print(f"skipped: {p}", file=sys.stderr)
    split = args.split if ds.split(args.split) else None
    data = load_split(ds, split, cfg.data.crop_size)
    model = build_model(cfg.model, ds.vocabulary, cfg.data.crop_size)
    model.load_state_dict(state["model"])
    sup = SpecSupervision(ds.vocabulary, cfg.loss.logic, cfg.loss.temperature)
    sup.register(data)
    negs = [sup.add_many(n or ()) for n in data.negatives]
    if not any(negs) and len(data) > 1:  # no negatives in the manifest: other videos' captions
        negs = [[data.spec_ids[(v + 1) % len(data)]] for v in range(len(data))]
    metrics: dict = {"checkpoint": str(args.checkpoint), "data": str(root), "split": split or "all",
                     "videos": len(data), "epoch": state["epoch"]}
    metrics.update(evaluate_model(model, data, sup, negs, cfg.eval.ks, cfg.eval.threshold))
    print(json.dumps(metrics, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides, rest = _split_overrides(argv)
    ap = argparse.ArgumentParser(prog="python -m laser_train", description=USAGE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", default="run", choices=("run", "train", "eval", "config"))
    ap.add_argument("--config", help="JSON config file (same shape as `python -m laser_train config`)")
    ap.add_argument("--variant", default="weak", help="train: which variant (weak, full, no_<term>, untrained)")
    ap.add_argument("--checkpoint", help="eval: checkpoint file")
    ap.add_argument("--data", help="eval: dataset directory (default: the checkpoint's dataset)")
    ap.add_argument("--split", default="test", help="eval: split to evaluate (default test; all if missing)")
    args = ap.parse_args(rest)
    from laser_train.data.format import DatasetError

    if args.command == "eval" and not args.checkpoint:
        ap.error("eval needs --checkpoint PATH")
    try:
        if args.command == "eval":
            return _eval(args, overrides)
        cfg = load_config(args.config, overrides)
        return _dispatch(args, cfg)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args, cfg) -> int:
    if args.command == "config":
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    if args.command == "train":
        from pathlib import Path

        from laser_train import train as T

        res = T.main(cfg, args.variant, Path(cfg.run.out) / args.variant, resume=cfg.run.resume)
        print(json.dumps(res["metrics"], indent=2))
        return 0
    from laser_train.experiment import run_experiment

    run_experiment(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
