"""VidOR (Shang et al., 2019): the VidVRD schema, one JSON per video in group folders.

``annotation/training/0000/2401075277.json`` holds ``video_id``, ``video_path``
(``0000/2401075277.mp4``, relative to the video folder), ``frame_count``,
``width``, ``height``, ``subject/objects``, ``trajectories`` and
``relation_instances`` exactly as in VidVRD (:mod:`.vidvrd` does the work).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from laser_train.convert import vidvrd
from laser_train.convert.common import DatasetWriter, Reporter

NAME = "vidor"
SUMMARY = "VidOR: VidVRD-style JSON per video in group folders + videos (video_path) or frame folders"
DESCRIPTION = """\
Convert VidOR annotations (annotation/training/<group>/<id>.json and annotation/validation/...; the same
schema as VidVRD: `subject/objects`, per-frame `trajectories`, `relation_instances` with end-exclusive
`end_fid`). Frames: the video at --frames/<video_path> (e.g. video/0000/2401075277.mp4), or a frame folder
--frames/<group>/<id>/ or --frames/<id>/. VidOR videos are long (often over 1000 frames at 30 fps): extract
frames and use --stride (e.g. 15 for 2 fps). Template captions are made from the relation instances."""
EXAMPLE = """\
example:
  python -m laser_train convert vidor --annotations vidor/annotation/validation --frames vidor/frames \\
      --stride 15 --out data/vidor"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    vidvrd.add_arguments(p)


def _frame_names(data: Any, path: Path) -> list[str]:
    vid = str(data.get("video_id", path.stem)) if isinstance(data, dict) else path.stem
    names = []
    vpath = data.get("video_path") if isinstance(data, dict) else None
    if isinstance(vpath, str) and vpath:
        stem = vpath.rsplit(".", 1)[0] if "." in vpath.rsplit("/", 1)[-1] else vpath
        names += [stem, vpath]
    names += [f"{path.parent.name}/{vid}", vid]
    return list(dict.fromkeys(names))


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    return vidvrd.run_vrd(args, report, _frame_names)
