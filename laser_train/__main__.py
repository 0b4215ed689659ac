"""Command line of laser_train: ``python -m laser_train [COMMAND] [options] [--section.key=value ...]``.

Each subcommand is one entry of :data:`COMMANDS` (name → :class:`Command`): its one-line summary, a
description for its own ``--help``, a function adding its options, and its handler. Configuration overrides
(``--section.key=value``, see :mod:`laser_train.config`) are accepted by every command that builds a
configuration and are separated from the command's own options before argparse sees them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from laser_train.config import ConfigError, load_config, to_dict

__all__ = ["main", "COMMANDS", "Command"]

PROG = "python -m laser_train"

OVERVIEW = f"""\
Train video scene-graph perception models from caption specs (the LASER method).

With no command, runs the main job: generate the embedded synthetic video world, train every variant
(weakly supervised by specs, fully supervised, ablations), evaluate, and print the results table.

Configuration: every command that trains or evaluates takes `--config FILE` (JSON, the shape that
`{PROG} config` prints) and overrides `--section.key=value`, e.g.
  --train.epochs=3  --data.path=DIR  --model.name=small  --loss.weights.semantic=0

examples:
  {PROG}                                    # the main job on its embedded default
  {PROG} train --variant weak --train.epochs=2 --run.out=runs/try
  {PROG} eval --checkpoint runs/try/weak/checkpoint.pt --split test
  {PROG} config > my.json                   # then edit and pass --config my.json
  {PROG} compare --run.out=runs/compare     # S-ViLM, Finsta, HERO beside LASER's objective

`{PROG} COMMAND --help` explains each command. Docs: docs/training.md."""


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` declares its options, ``run(args, overrides)`` executes it."""

    summary: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, list[str]], int]


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


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help=f"JSON config file (the shape `{PROG} config` prints); overrides apply on top")


# ----------------------------------------------------------------------------------------------- run


def _run_args(p: argparse.ArgumentParser) -> None:
    _config_option(p)


def _check_variants(names) -> None:
    """Unknown variants fail here, before any data is generated or loaded."""
    from laser_train.train import VARIANTS

    bad = [v for v in names if v not in VARIANTS]
    if bad:
        raise ConfigError(f"unknown variant {bad[0]!r} (choose from {', '.join(VARIANTS)})")


def _run(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)
    _check_variants(cfg.run.variants)
    from laser_train.experiment import run_experiment

    run_experiment(cfg)
    return 0


# ------------------------------------------------------------------------------------------- compare


def _compare(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)
    from laser_train.compare import run_compare

    run_compare(cfg)
    return 0


# --------------------------------------------------------------------------------------------- train


def _train_args(p: argparse.ArgumentParser) -> None:
    _config_option(p)
    p.add_argument("--variant", default="weak", metavar="NAME",
                   help="which variant to train: weak (specs only, the method), full (ground-truth scene "
                        "graphs), untrained, no_<term> (weak without one loss term, e.g. no_temporal), an "
                        "embedding baseline (svilm, finsta, hero) or weak+<baseline>; default weak")


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)
    from pathlib import Path

    from laser_train import train as T

    from laser_train.distributed import current

    _check_variants([args.variant])
    res = T.main(cfg, args.variant, Path(cfg.run.out) / args.variant, resume=cfg.run.resume)
    if current().is_main:
        print(json.dumps(res["metrics"], indent=2))
    return 0


# ---------------------------------------------------------------------------------------------- eval


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint file written by training")
    p.add_argument("--data", metavar="DIR",
                   help="dataset directory in the documented format (default: the checkpoint's dataset)")
    p.add_argument("--split", default="test", metavar="NAME",
                   help="split to evaluate: train, val or test (default test); a split the data lacks is an error")


def _eval(args: argparse.Namespace, overrides: list[str]) -> int:
    """The evaluation of training (:func:`laser_train.train.evaluate`) on any split: same negatives, same code."""
    from laser_train import train as T
    from laser_train.checkpoint import load_checkpoint
    from laser_train.config import apply_overrides, from_dict
    from laser_train.data.dataset import build_dataset
    from laser_train.data.format import SPLITS, DatasetError, Problem, validate_dataset
    from laser_train.losses import SpecSupervision
    from laser_train.model import build_model

    if args.split not in SPLITS:  # before anything is loaded
        raise DatasetError([Problem("-", 0, "--split", f"unknown split {args.split!r}; choose from "
                                    f"{', '.join(SPLITS)}")])
    state = load_checkpoint(args.checkpoint)
    cfg = apply_overrides(from_dict(state["config"]), overrides)
    rt, dist = T.start(cfg)
    root = args.data or state.get("extra", {}).get("dataset") or T.ensure_dataset(cfg)
    ds = validate_dataset(root, skip_invalid=cfg.data.skip_invalid)
    for p in ds.skipped:
        print(f"skipped: {p}", file=sys.stderr)
    data = build_dataset(ds, args.split, cfg.data, train=False, seed=cfg.train.seed)  # an empty split is an error
    model = build_model(cfg.model, ds.vocabulary, cfg.data.crop_size).to(rt.device)
    model.load_state_dict(state["model"])
    sup = SpecSupervision(ds.vocabulary, cfg.loss.logic, cfg.loss.temperature, cfg.loss.prune_below)
    sup.register(data)
    negs = T.heldout_negatives(cfg, sup, data, ds.vocabulary)  # the negatives training's evaluation uses
    metrics: dict = {"checkpoint": str(args.checkpoint), "data": str(root), "split": args.split,
                     "videos": len(data), "epoch": state["epoch"]}
    from laser_train.evaluate import rule_free_predicates

    free = rule_free_predicates(T.load_background(cfg.data.background, ds.vocabulary, Path(root)), ds.vocabulary)
    # the same columns as training, with the spec threshold training calibrated (kept in the checkpoint)
    threshold = state.get("extra", {}).get("spec_threshold") if cfg.eval.calibrate else None
    metrics.update(T.evaluate_data(model, data, sup, negs, cfg, dist, free, threshold))
    if dist.is_main:
        print(json.dumps(metrics, indent=2))
    return 0


# -------------------------------------------------------------------------------------------- config


def _config(args: argparse.Namespace, overrides: list[str]) -> int:
    print(json.dumps(to_dict(load_config(args.config, overrides)), indent=2))
    return 0


COMMANDS: dict[str, Command] = {
    "run": Command(
        "the main job: every variant, the results table, metrics and plots (the default command)",
        "Train and evaluate every variant listed in run.variants (weak, full, ablations) on one prepared "
        "dataset, then print the results table and write the run directory (config, checkpoints, "
        "metrics.json, plots). Without --data.path the embedded synthetic video world is generated (and "
        f"cached). Example: {PROG} run --train.epochs=4 --run.out=runs/short",
        _run_args, _run),
    "train": Command(
        "train one variant into run.out/VARIANT (resumable with --run.resume=true)",
        "Train one variant and print its evaluation metrics as JSON. The checkpoint is written atomically "
        "after every epoch to run.out/VARIANT/checkpoint.pt; --run.resume=true continues from it. "
        f"Example: {PROG} train --variant full --data.path=my_dataset --train.epochs=10",
        _train_args, _train),
    "eval": Command(
        "evaluate a checkpoint on a dataset split; prints metrics as JSON",
        "Evaluate a trained checkpoint (recall@k of names, unary and binary predicates; spec accuracy) on a "
        "dataset in the documented format. The checkpoint's saved configuration is used; overrides apply "
        f"on top. Example: {PROG} eval --checkpoint runs/default/weak/checkpoint.pt --split test",
        _eval_args, _eval),
    "compare": Command(
        "the embedding baselines (S-ViLM, Finsta, HERO) beside LASER's objective, every seed",
        "Train the same perception model on the same data and batches with each objective - S-ViLM, Finsta, "
        "HERO (laser_train.objectives), LASER's specs, LASER plus the best baseline - and the fully "
        "supervised upper bound, each with every seed of run.seeds; print the table (mean ± sd) with the "
        "chance, prior and untrained rows, say where LASER's objective wins and where not, and write "
        "RUN/metrics.json. It trains (3 baselines + 2 + full) x seeds models: several times the main job's "
        f"time. Example: {PROG} compare --run.out=runs/compare --train.epochs=6 (docs/baselines.md)",
        _run_args, _compare),
    "config": Command(
        "print the resolved configuration as JSON (a starting point for --config FILE)",
        "Print the configuration that the given --config file and overrides resolve to, as JSON with every "
        f"section and key. Example: {PROG} config --train.epochs=3 > my.json",
        _config_option, _config),
}


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("format_args", nargs=argparse.REMAINDER, metavar="FORMAT ...",
                   help="the format and its options (see `convert FORMAT --help`)")


def _convert(args: argparse.Namespace, overrides: list[str]) -> int:
    from laser_train.convert import main as convert_main

    return convert_main(list(args.format_args) + overrides)


COMMANDS["convert"] = Command(
    "convert a public dataset (OpenPVSG, VidVRD, VidOR, Action Genome, Something-Else, LASER) to the format",
    "Convert a public video scene-graph dataset into the documented dataset format, writing captions.jsonl "
    "for `stlspec from-captions`. Formats: openpvsg, vidvrd, vidor, action-genome, something-else, laser; "
    f"`{PROG} convert FORMAT --help` lists each one's inputs. Docs: docs/datasets.md. Example: "
    f"{PROG} convert vidvrd --annotations vidvrd/train --frames vidvrd/frames --out data/vidvrd",
    _convert_args, _convert)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=OVERVIEW, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.summary, description=cmd.description,
                           epilog="Configuration overrides: --section.key=value (see `config`).")
        cmd.add_arguments(p)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:  # its own parser (one subparser per format), no configuration
        from laser_train.convert import main as convert_main

        return convert_main(argv[1:])
    overrides, rest = _split_overrides(argv)
    if not rest or (rest[0].startswith("-") and rest[0] not in ("-h", "--help")):
        rest.insert(0, "run")  # no command: the main job
    args = build_parser().parse_args(rest)
    from laser_train.checkpoint import CheckpointError
    from laser_train.data.files import DataError
    from laser_train.data.format import DatasetError
    from laser_train.device import DeviceError

    errors: tuple[type[Exception], ...] = (ConfigError, DatasetError, DataError, DeviceError, CheckpointError)
    if args.command in ("run", "train", "eval"):
        from laser_train.clip_model import ClipLoadError  # transformers itself is imported only when used

        errors += (ClipLoadError,)
    try:
        return COMMANDS[args.command].run(args, overrides)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if "torch.distributed" in sys.modules:  # a torchrun job: leave the process group cleanly
            import torch.distributed

            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
