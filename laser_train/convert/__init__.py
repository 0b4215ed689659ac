"""``python -m laser_train convert FORMAT --out DIR``: public video scene-graph datasets → the dataset format.

One module per format (:data:`FORMATS`), each with ``NAME``, ``SUMMARY``,
``DESCRIPTION``, ``EXAMPLE``, ``add_arguments(parser)`` and ``run(args,
report) -> DatasetWriter``; they share the writer and the problem reporter of
:mod:`laser_train.convert.common`. The user's part (what to download) and
what each converter keeps are in ``docs/datasets.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["FORMATS", "main", "convert"]

#: format name → module (imported on use)
FORMATS = {
    "openpvsg": "laser_train.convert.openpvsg",
    "vidvrd": "laser_train.convert.vidvrd",
    "vidor": "laser_train.convert.vidor",
    "action-genome": "laser_train.convert.action_genome",
    "something-else": "laser_train.convert.something_else",
    "laser": "laser_train.convert.laser",
}

FLOW = """\
then:
  stlspec from-captions OUT/captions.jsonl -o OUT/specs.stl --vocab OUT/vocabulary.stl
  python -m laser_train train --data.path=OUT
(the laser format writes OUT/specs.stl itself.) Every record that cannot be converted is reported as
FILE: record 'ID': FIELD: why; the conversion stops at the first unless --skip-invalid is given."""


def _module(name: str):
    import importlib

    return importlib.import_module(FORMATS[name])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m laser_train convert", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a public video scene-graph dataset into laser_train's dataset format "
                    "(manifest.jsonl, tracks/, scene_graphs/, vocabulary.stl, captions.jsonl; see docs/datasets.md).",
        epilog=FLOW)
    sub = ap.add_subparsers(dest="format", metavar="FORMAT", required=True)
    for name in FORMATS:
        mod = _module(name)
        p = sub.add_parser(name, help=mod.SUMMARY, description=mod.DESCRIPTION, epilog=mod.EXAMPLE + "\n\n" + FLOW,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--out", required=True, type=Path, metavar="DIR", help="the dataset folder to write")
        mod.add_arguments(p)
        p.add_argument("--skip-invalid", action="store_true",
                       help="report records that cannot be converted and go on (default: stop at the first)")
        p.add_argument("--copy-frames", action="store_true",
                       help="copy frames into OUT/videos (default: symbolic links to the originals)")
        p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    return ap


def convert(args: argparse.Namespace, stream=None):
    """Run the converter of ``args.format``; returns the :class:`~laser_train.convert.common.Reporter`."""
    from laser_train.convert.common import Reporter

    report = Reporter(skip_invalid=args.skip_invalid, stream=stream)
    writer = _module(args.format).run(args, report)
    writer.close(f"Converted from {args.format} by `python -m laser_train convert`.")
    return report


def main(argv: list[str]) -> int:
    from laser_train.convert.common import ConvertError

    args = build_parser().parse_args(argv)
    try:
        report = convert(args)
    except ConvertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0
