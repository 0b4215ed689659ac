"""Tiny samples of each public dataset format, written from the published schemas (for tests/test_convert.py).

Every writer makes 3 videos of T=4 frames of W×H = 32×24 pixels (two train, one held out) and returns the
``convert`` command-line arguments that read it.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

T, W, H = 4, 32, 24


def frames(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / name)


def vrd_annotation(vid: str, shift: int, extra: dict | None = None) -> dict:
    """dog (tid 0) chases a frisbee (tid 1) in frames 0-1, then bites it in frames 2-3 (end exclusive)."""
    traj = []
    for t in range(T):
        traj.append([{"tid": 0, "bbox": {"xmin": 1 + t + shift, "ymin": 2, "xmax": 12 + t + shift, "ymax": 14},
                      "generated": 0, "tracker": "none"},
                     {"tid": 1, "bbox": {"xmin": 16, "ymin": 5, "xmax": 30, "ymax": 20}, "generated": 0,
                      "tracker": "none"}])
    data = {"video_id": vid, "frame_count": T, "fps": 30, "width": W, "height": H,
            "subject/objects": [{"tid": 0, "category": "dog"}, {"tid": 1, "category": "frisbee"}],
            "trajectories": traj,
            "relation_instances": [
                {"subject_tid": 0, "object_tid": 1, "predicate": "chase", "begin_fid": 0, "end_fid": 2},
                {"subject_tid": 0, "object_tid": 1, "predicate": "bite", "begin_fid": 2, "end_fid": 4},
                {"subject_tid": 1, "object_tid": 0, "predicate": "right", "begin_fid": 0, "end_fid": 4}]}
    data.update(extra or {})
    return data


def write_vidvrd(root: Path) -> list[str]:
    ann = root / "vidvrd-dataset"
    for split, vids in (("train", ["ILSVRC2015_train_00005003", "ILSVRC2015_train_00010001"]),
                        ("test", ["ILSVRC2015_val_00144000"])):
        (ann / split).mkdir(parents=True)
        for k, vid in enumerate(vids):
            (ann / split / f"{vid}.json").write_text(json.dumps(vrd_annotation(vid, k)))
            frames(root / "frames" / vid, [f"{t:06d}.jpg" for t in range(T)], k)
    return ["--annotations", str(ann), "--frames", str(root / "frames")]


def write_vidor(root: Path) -> list[str]:
    ann = root / "annotation"
    for split, group, vids in (("training", "0000", ["2401075277", "2754378442"]),
                               ("validation", "0001", ["4164158586"])):
        (ann / split / group).mkdir(parents=True)
        for k, vid in enumerate(vids):
            extra = {"version": "VERSION 1.0", "video_hash": "abc", "video_path": f"{group}/{vid}.mp4",
                     "tags": []}
            (ann / split / group / f"{vid}.json").write_text(json.dumps(vrd_annotation(vid, k, extra)))
            frames(root / "frames" / group / vid, [f"{t:04d}.png" for t in range(T)], k)
    return ["--annotations", str(ann), "--frames", str(root / "frames")]


def palette_mask(path: Path, ids: np.ndarray) -> None:
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette([c for i in range(256) for c in (i * 7 % 256, i * 13 % 256, i * 29 % 256)])
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def write_openpvsg(root: Path) -> list[str]:
    data = root / "data"
    videos = []
    ids = ["0010_8610561401", "P01_01", "1015_4698228062"]
    for k, vid in enumerate(ids):
        frames(data / "vidor" / "frames" / vid, [f"{t:04d}.png" for t in range(T)], k)
        for t in range(T):
            m = np.zeros((H, W), np.uint8)
            m[2:14, 1 + t:12 + t] = 1  # adult
            m[5:20, 16:30] = 2  # cup
            if t >= 2:
                m[20:24, 0:8] = 3  # table, visible from frame 2
            palette_mask(data / "vidor" / "masks" / vid / f"{t:04d}.png", m)
        videos.append({
            "video_id": vid, "meta": {"num_frames": T, "width": W, "height": H, "fps": 5},
            "objects": [{"object_id": 1, "category": "adult", "is_thing": True, "status": []},
                        {"object_id": 2, "category": "cup", "is_thing": True, "status": []},
                        {"object_id": 3, "category": "table", "is_thing": True, "status": []}],
            "relations": [[1, 2, "holding", [[0, 1]]], [1, 2, "drinking from", [[2, 3]]],
                          [2, 3, "on", [[2, 3]]]],
            "captions": [{"span": [2, 3], "description": "Then the adult drinks from the cup."},
                         {"span": [0, 1], "description": "An adult holds a cup."}],
            "summary": "An adult holds a cup and drinks from it."})
    pvsg = {"objects": {"thing": ["adult", "cup", "table"], "stuff": ["floor"]},
            "relations": ["holding", "drinking from", "on", "beside"],
            "split": {"vidor": {"train": ids[:2], "val": ids[2:]}}, "data": videos}
    (data / "pvsg.json").write_text(json.dumps(pvsg))
    return ["--pvsg", str(data / "pvsg.json"), "--frames", str(data), "--masks", str(data)]


def write_action_genome(root: Path) -> list[str]:
    ann = root / "annotations"
    ann.mkdir(parents=True)
    (ann / "object_classes.txt").write_text("person\nbag\ncup/glass/bottle\ntable\n")
    (ann / "relationship_classes.txt").write_text("lookingat\nnotlookingat\nunsure\nbeneath\ninfrontof\n"
                                                 "holding\ntouching\nnotcontacting\n")
    persons, objects = {}, {}
    for k, (vid, split) in enumerate((("001YG.mp4", "train"), ("00607.mp4", "train"), ("0A8CF.mp4", "test"))):
        names = [f"{n:06d}.png" for n in (12, 40, 95, 130)]
        frames(root / "frames" / vid, names, k)
        for t, name in enumerate(names):
            key = f"{vid}/{name}"
            persons[key] = {"bbox": np.array([[1.0 + t, 2.0, 14.0 + t, 23.0]], dtype=np.float32),
                            "bbox_score": np.array([0.99], dtype=np.float32), "bbox_size": (W, H),
                            "bbox_mode": "xyxy", "keypoints": np.zeros((1, 17, 3), np.float32)}
            objects[key] = [
                {"class": "cup/glass/bottle", "bbox": (16.0, 5.0, 8.0, 6.0), "visible": True,
                 "attention_relationship": ["looking_at"], "spatial_relationship": ["in_front_of"],
                 "contacting_relationship": ["holding"] if t < 2 else ["touching"],
                 "metadata": {"tag": f"{vid}/cup/glass/bottle/{name[:-4]}", "set": split}},
                {"class": "table", "bbox": None if t == 0 else (0.0, 18.0, 30.0, 6.0), "visible": t != 0,
                 "attention_relationship": None if t == 0 else ["not_looking_at"],
                 "spatial_relationship": None if t == 0 else ["beneath"],
                 "contacting_relationship": None if t == 0 else ["not_contacting"],
                 "metadata": {"tag": f"{vid}/table/{name[:-4]}", "set": split}}]
    with open(ann / "person_bbox.pkl", "wb") as f:
        pickle.dump(persons, f)
    with open(ann / "object_bbox_and_relationship.pkl", "wb") as f:
        pickle.dump(objects, f)
    return ["--annotations", str(ann), "--frames", str(root / "frames")]


SSV2 = [("78687", "Holding potato next to vicks vaporub bottle", "Holding [something] next to [something]",
         ["potato", "vicks vaporub bottle"]),
        ("42326", "Putting a cup on a table", "Putting [something] on [something]", ["a cup", "a table"]),
        ("100", "Pushing a box from left to right", "Pushing [something] from left to right", ["a box"])]


def write_something_else(root: Path) -> list[str]:
    train = [{"id": i, "label": lab, "template": tpl, "placeholders": ph} for i, lab, tpl, ph in SSV2[:2]]
    val = [{"id": i, "label": lab, "template": tpl, "placeholders": ph} for i, lab, tpl, ph in SSV2[2:]]
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "labels" / "something-something-v2-validation.json").write_text(json.dumps(val))
    boxes = {}
    for k, (vid, _, _, ph) in enumerate(SSV2):
        names = [f"{t + 1:04d}.jpg" for t in range(T)]
        frames(root / "frames" / vid, names, k)
        entries = []
        for t, name in enumerate(names):
            labels = [{"box2d": {"x1": 1.0 + t, "y1": 2.0, "x2": 10.0 + t, "y2": 12.0}, "category": "hand",
                       "standard_category": "hand", "gt_annotation": "hand 0000"}]
            for j, noun in enumerate(ph):
                labels.append({"box2d": {"x1": 14.0 + j * 8, "y1": 6.0, "x2": 21.0 + j * 8, "y2": 20.0},
                               "category": noun, "standard_category": f"{j:04d}",
                               "gt_annotation": f"object {j:04d}"})
            entries.append({"name": f"{vid}/{name}", "labels": labels, "nr_instances": len(labels)})
        boxes[vid] = entries
    (root / "bounding_box_smthsmth_part1.json").write_text(json.dumps(boxes))
    return ["--labels", str(root / "labels" / "something-something-v2-train.json"),
            str(root / "labels" / "something-something-v2-validation.json"),
            "--annotations", str(root / "bounding_box_smthsmth_part1.json"), "--frames", str(root / "frames")]


LASER_RECORDS = [
    {"caption": "0001_4164158586",
     "prog": 'Until(Finally(Logic(Binary("holding",Const(-2),Const(-1)))), '
             'Finally(Logic(Binary("sitting on",Const(-2),Const(-3)))))',
     "consts": ["gift", "boy", "chair"], "args": ["A", "B", "C"], "unary_kws": [],
     "binary_kws": ["holding", "sitting on"], "video location": ["early", "late"]},
    {"caption": "0002_2401075277",
     "prog": 'Finally(Logic(Binary("holding",Const(-1),Const(-2))))',
     "consts": ["boy", "gift"], "args": ["A", "B"], "unary_kws": [], "binary_kws": ["holding"]},
    {"caption": "0003_2754378442",
     "prog": 'Finally(Logic(Binary("sitting on",Const(-1),Const(-2))))',
     "consts": ["boy", "chair"], "args": ["A", "B"], "unary_kws": [], "binary_kws": ["sitting on"]},
]


def laser_masks(seed: int) -> dict:
    out = {}
    for t in range(T):
        a = np.zeros((1, H, W), bool)
        a[0, 2:14, 1 + t:12 + t] = True
        b = np.zeros((1, H, W), bool)
        b[0, 5:20, 16:30] = True
        out[t] = {0: a, 1: b}
    return out


def write_laser(root: Path) -> list[str]:
    (root / "masks").mkdir(parents=True)
    (root / "train_specs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LASER_RECORDS[:2]))
    (root / "test_specs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LASER_RECORDS[2:]))
    for k, rec in enumerate(LASER_RECORDS):
        vid = rec["caption"]
        frames(root / "frames" / vid, [f"{t:05d}.jpg" for t in range(T)], k)
        with open(root / "masks" / f"{vid}_masks.pkl", "wb") as f:
            pickle.dump(laser_masks(k), f)
    return ["--specs", str(root / "train_specs.jsonl"), str(root / "test_specs.jsonl"),
            "--masks", str(root / "masks"), "--frames", str(root / "frames")]


WRITERS = {"vidvrd": write_vidvrd, "vidor": write_vidor, "openpvsg": write_openpvsg,
           "action-genome": write_action_genome, "something-else": write_something_else, "laser": write_laser}
