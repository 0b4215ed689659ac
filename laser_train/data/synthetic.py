"""A procedurally generated video world with hidden scene graphs, deterministic from a seed.

Each video shows 3-4 objects of six categories (person, dog, ball, cup, box,
lamp) drawn as coloured shapes on a noisy background. Objects move in scripted
segments; a person may walk to a ball or cup, pick it up and carry it (and
maybe put it down); lamps switch on or off and boxes open or close. From the
simulated positions we compute the *hidden* per-frame scene graph:

* names: the category of every track;
* unary predicates: ``still``, ``moving_left/right/up/down`` (from the frame-to-next-frame
  displacement, dominant axis), ``open(box)``, ``lit(lamp)``;
* binary predicates: ``near`` (centres closer than :data:`NEAR`), otherwise exactly one of
  ``left_of/right_of/above/below`` (dominant axis of the offset), plus ``holding(person, x)``.

Captions describe one to three events that really happen in order, with "when"
hints (early / middle / late), and each caption comes with its spec in the
stlspec language. The ground truth is written to disk only for evaluation and
for the fully supervised baseline; training on specs never reads it.

Video ``i`` depends only on ``(seed, i)``, so a larger dataset extends a
smaller one. ``python -m laser_train.data.synthetic --out DIR`` writes the
dataset in the documented on-disk format (:mod:`laser_train.data.format`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CATEGORIES", "UNARY", "BINARY", "VOCABULARY_STL", "NEAR", "SyntheticVideo",
    "generate_video", "generate", "write_dataset", "main",
]

CATEGORIES = ("person", "dog", "ball", "cup", "box", "lamp")
UNARY = ("still", "moving_left", "moving_right", "moving_up", "moving_down", "open", "lit")
BINARY = ("left_of", "right_of", "above", "below", "near", "holding")

#: The world's vocabulary as stlspec declarations (written to ``vocabulary.stl``).
VOCABULARY_STL = """\
// Vocabulary of the laser_train synthetic world.
category person, dog, ball, cup, box, lamp
unary still(any), moving_left(any), moving_right(any), moving_up(any), moving_down(any)
unary open(box), lit(lamp)
binary left_of(any, any), right_of(any, any), above(any, any), below(any, any), near(any, any)
binary holding(person, any)
"""

BACKGROUND = "background.stl"  # its background-knowledge rules, in laser_train/configs
DEFAULTS = {"num_frames": 12, "image_size": 64, "min_objects": 3, "max_objects": 4}
NEAR = 15.0  # pixels between centres (64-pixel frames)
MOVING = 0.5  # pixels per frame: slower counts as still
_SIZE = {"person": (8, 14), "dog": (13, 8), "ball": (7, 7), "cup": (6, 8), "box": (12, 11), "lamp": (8, 12)}
_COLOR = {"person": (205, 60, 60), "dog": (140, 95, 45), "ball": (240, 150, 30),
          "cup": (60, 90, 225), "box": (60, 165, 70), "lamp": (200, 200, 60)}
_SELF_PROPELLED = ("person", "dog", "ball")  # move on their own; cups move only when carried
_CARRIABLE = ("ball", "cup")
_DIRS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

_UNARY_TEXT = {
    "still": "the {0} stays still", "moving_left": "the {0} moves left", "moving_right": "the {0} moves right",
    "moving_up": "the {0} moves up", "moving_down": "the {0} moves down", "open": "the {0} is open",
    "lit": "the {0} is on",
}
_BINARY_TEXT = {
    "left_of": "the {0} is left of the {1}", "right_of": "the {0} is right of the {1}",
    "above": "the {0} is above the {1}", "below": "the {0} is below the {1}",
    "near": "the {0} is near the {1}", "holding": "the {0} holds the {1}",
}
_HINT_TEXT = {"early": "at the start", "middle": "in the middle", "late": "at the end"}


@dataclass
class SyntheticVideo:
    """One generated video with its tracks, hidden scene graph, caption and spec."""

    video_id: str
    frames: np.ndarray  # [T, H, W, 3] uint8
    boxes: np.ndarray  # [T, N, 4] float32 pixel boxes (x0, y0, x1, y1)
    present: np.ndarray  # [T, N] bool
    categories: list[str]
    unary: np.ndarray  # [T, N, P] bool, columns UNARY
    binary: np.ndarray  # [T, N, N, R] bool, columns BINARY
    caption: str
    spec: str  # one `spec` block in stlspec syntax (the vocabulary lives in vocabulary.stl)
    events: list[dict] = field(default_factory=list)  # [{"frame": t, "hint": "early"}, ...] (for reports)


# ---------------------------------------------------------------------------------------------- world


def _place(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Object centres, kept apart so that most pairs start in a directional relation."""
    margin = 9
    best = rng.uniform(margin, size - margin, (n, 2))
    for _ in range(60):
        cand = rng.uniform(margin, size - margin, (n, 2))
        d = np.linalg.norm(cand[:, None] - cand[None], axis=-1) + np.eye(n) * 1e3
        if d.min() > 14:
            return cand
        best = cand
    return best


def _segments(rng: np.random.Generator, T: int) -> np.ndarray:
    """Per-frame velocity [T, 2] made of 1-3 constant segments (still or one of four directions)."""
    k = int(rng.integers(1, 4))
    cuts = sorted(rng.choice(np.arange(1, T), size=min(k - 1, T - 1), replace=False).tolist())
    vel = np.zeros((T, 2))
    bounds = [0, *cuts, T]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if rng.random() < 0.3:
            continue
        d = _DIRS[str(rng.choice(list(_DIRS)))]
        vel[lo:hi] = np.array(d) * rng.uniform(2.0, 3.2)
    return vel


def _integrate(start: np.ndarray, vel: np.ndarray, size: int, margin: float = 6.0) -> np.ndarray:
    """Positions [T, 2] from a start and per-frame velocities; walls stop the motion."""
    pos = np.zeros_like(vel)
    pos[0] = start
    for t in range(1, len(vel)):
        pos[t] = np.clip(pos[t - 1] + vel[t - 1], margin, size - margin)
    return pos


def _simulate(rng: np.random.Generator, T: int, size: int, n_min: int, n_max: int):
    n = int(rng.integers(n_min, n_max + 1))
    cats = [str(c) for c in rng.choice(CATEGORIES, size=n, replace=False)]
    if "person" not in cats and rng.random() < 0.75:
        cats[int(rng.integers(n))] = "person"
    start = _place(rng, n, size)
    pos = np.zeros((T, n, 2))
    for i, c in enumerate(cats):
        vel = _segments(rng, T) if c in _SELF_PROPELLED else np.zeros((T, 2))
        pos[:, i] = _integrate(start[i], vel, size)
    holding = np.zeros((T, n, n), bool)
    scripted: set[int] = set()
    people = [i for i, c in enumerate(cats) if c == "person"]
    things = [i for i, c in enumerate(cats) if c in _CARRIABLE]
    if people and things and rng.random() < 0.65:
        p, o = people[0], int(rng.choice(things))
        _script_pickup(rng, pos, p, o, T, size, holding)
        scripted |= {p, o}
    state = np.zeros((T, n), bool)  # open (box) / lit (lamp)
    for i, c in enumerate(cats):
        if c in ("box", "lamp"):
            state[:, i] = rng.random() < 0.5
            if rng.random() < 0.7:
                t0 = int(rng.integers(2, T - 1))
                state[t0:, i] = ~state[t0:, i]
    present = np.ones((T, n), bool)
    others = [i for i in range(n) if i not in scripted]
    if others and rng.random() < 0.2:  # someone enters late or leaves early: exercises presence masks
        i = int(rng.choice(others))
        k = int(rng.integers(2, max(3, T // 3)))
        if rng.random() < 0.5:
            present[:k, i] = False
        else:
            present[T - k:, i] = False
    return cats, pos, holding, state, present


def _script_pickup(rng, pos, p, o, T, size, holding) -> None:
    """Person ``p`` walks to ``o`` (arriving at frame k), lifts it and carries it; maybe puts it down."""
    k = int(rng.integers(max(2, T // 4), T // 2 + 1))
    side = float(rng.choice([-1.0, 1.0]))
    target = pos[0, o] + np.array([side * 6.0, 0.0])
    speed = rng.uniform(2.0, 3.0)
    for direction in (-side, side):  # approach from the side the person stands on
        begin = target - np.array([direction * speed * k, 0.0])
        if 7 <= begin[0] <= size - 7:
            break
    else:
        return
    pos[: k + 1, o] = pos[0, o]
    pos[: k + 1, p] = begin + np.linspace(0, 1, k + 1)[:, None] * (target - begin)
    end = T
    if T - k > 5 and rng.random() < 0.4:
        end = int(rng.integers(k + 3, T - 1))
    d = np.array(_DIRS[str(rng.choice(list(_DIRS)))]) * rng.uniform(2.0, 3.0)
    vel = np.zeros((T - k, 2))
    vel[: end - k] = d
    pos[k:, p] = _integrate(pos[k, p], vel, size, margin=9.0)
    carry = np.array([-side * 5.0, -3.0])  # held objects are lifted to the person's hand
    pos[k:end, o] = pos[k:end, p] + carry
    if end < T:
        pos[end:, o] = pos[end - 1, o]
    holding[k:end, p, o] = True


# ---------------------------------------------------------------------------------------------- truth


def _scene_graph(pos, holding, state, present, cats):
    T, n, _ = pos.shape
    vel = np.zeros_like(pos)
    if T > 1:
        vel[:-1] = pos[1:] - pos[:-1]
        vel[-1] = vel[-2]
    vx, vy = vel[..., 0], vel[..., 1]
    moving = np.hypot(vx, vy) > MOVING
    horiz = np.abs(vx) >= np.abs(vy)
    unary = np.zeros((T, n, len(UNARY)), bool)
    unary[..., 0] = ~moving
    unary[..., 1] = moving & horiz & (vx < 0)
    unary[..., 2] = moving & horiz & (vx > 0)
    unary[..., 3] = moving & ~horiz & (vy < 0)
    unary[..., 4] = moving & ~horiz & (vy > 0)
    for i, c in enumerate(cats):
        if c == "box":
            unary[:, i, 5] = state[:, i]
        if c == "lamp":
            unary[:, i, 6] = state[:, i]
    off = pos[:, None, :, :] - pos[:, :, None, :]  # [T, a, b, 2] = centre_b - centre_a
    dx, dy = off[..., 0], off[..., 1]
    near = np.hypot(dx, dy) < NEAR
    hor = np.abs(dx) >= np.abs(dy)
    binary = np.zeros((T, n, n, len(BINARY)), bool)
    binary[..., 0] = ~near & hor & (dx > 0)  # a left of b
    binary[..., 1] = ~near & hor & (dx < 0)
    binary[..., 2] = ~near & ~hor & (dy > 0)  # image y grows downwards: a above b
    binary[..., 3] = ~near & ~hor & (dy < 0)
    binary[..., 4] = near
    binary[..., 5] = holding
    eye = np.eye(n, dtype=bool)
    binary[:, eye] = False
    unary &= present[..., None]
    binary &= (present[:, :, None] & present[:, None, :])[..., None]
    return unary, binary


# ---------------------------------------------------------------------------------------------- render


def _render(rng, pos, cats, state, present, holding, size):
    T, n, _ = pos.shape
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.uniform(25, 70, 3)
    tint = {i: np.clip(np.array(_COLOR[c]) + rng.uniform(-25, 25, 3), 0, 255) for i, c in enumerate(cats)}
    frames = np.empty((T, size, size, 3), np.float32)
    held = holding.any(axis=1)  # [T, n]: drawn last so the person's hand does not hide it
    for t in range(T):
        img = np.empty((size, size, 3), np.float32)
        img[:] = base
        img += rng.normal(0, 6, (size, size, 1))
        for i in sorted(range(n), key=lambda i: held[t, i]):
            if not present[t, i]:
                continue
            _draw(img, xx, yy, cats[i], pos[t, i], tint[i], bool(state[t, i]))
        frames[t] = img
    return np.clip(frames, 0, 255).astype(np.uint8)


def _draw(img, xx, yy, cat, centre, color, on):
    cx, cy = centre
    w, h = _SIZE[cat]
    box = (np.abs(xx - cx) <= w / 2) & (np.abs(yy - cy) <= h / 2)
    if cat == "person":
        body = (np.abs(xx - cx) <= w / 2 - 1) & (yy >= cy - h / 2 + 5) & (yy <= cy + h / 2)
        head = (xx - cx) ** 2 + (yy - (cy - h / 2 + 2.5)) ** 2 <= 7
        img[body] = color
        img[head] = (235, 200, 170)
    elif cat == "dog":
        img[((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1] = color
        img[(np.abs(xx - (cx + w / 2 - 1)) <= 1.5) & (np.abs(yy - (cy - h / 2)) <= 1.5)] = color * 0.6
    elif cat == "ball":
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= (w / 2) ** 2] = color
    elif cat == "cup":
        img[box] = color
        img[(np.abs(xx - (cx + w / 2 + 1)) <= 1) & (np.abs(yy - cy) <= 1.5)] = color
    elif cat == "box":
        img[box] = color
        if on:  # open: the dark inside and the raised lid show
            img[box & (yy <= cy - h / 2 + 4)] = (20, 20, 20)
            img[(np.abs(xx - cx) <= w / 2) & (np.abs(yy - (cy - h / 2 - 1)) <= 0.5)] = (230, 230, 230)
    elif cat == "lamp":
        shade = box & (yy <= cy) & (np.abs(xx - cx) <= (yy - (cy - h / 2)) * 0.7 + 1)
        stem = (np.abs(xx - cx) <= 1) & (yy > cy) & (yy <= cy + h / 2)
        img[stem] = (120, 120, 120)
        img[shade] = (255, 245, 140) if on else color * 0.5
        if on:
            glow = ((xx - cx) ** 2 + (yy - cy - 1) ** 2 <= 30) & ~shade & ~stem
            img[glow] = img[glow] * 0.5 + np.array([255.0, 240.0, 120.0]) * 0.5


def _boxes(pos, cats):
    T, n, _ = pos.shape
    half = np.array([[_SIZE[c][0] / 2, _SIZE[c][1] / 2] for c in cats])  # [n, 2]
    # +0.5: shapes are drawn around pixel centres, and pixel i covers [i, i + 1) in box coordinates
    return np.concatenate([pos - half + 0.5, pos + half + 0.5], axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------------- captions


def _hint_frames(T: int) -> dict[str, list[int]]:
    """Frames whose position t/(T-1) lies strictly inside each hint's interval (so ordering is strict)."""
    out: dict[str, list[int]] = {"early": [], "middle": [], "late": []}
    for t in range(T):
        f = t / max(T - 1, 1)
        out["early" if f < 1 / 3 else "late" if f > 2 / 3 else "middle"].append(t)
    return out


def _describe(rng, cats, unary, binary, present):
    """Pick 1-3 events that happen in order and write the caption and the spec body."""
    T, n, _ = unary.shape
    slots = _hint_frames(T)
    names = [h for h in ("early", "middle", "late") if slots[h]]
    e = min(int(rng.choice([1, 2, 3], p=[0.2, 0.4, 0.4])), len(names))
    hints = [names[i] for i in sorted(rng.choice(len(names), size=e, replace=False))]
    changes_u = unary.any(axis=0) & ~unary.all(axis=0)  # [n, P]: informative atoms change over time
    changes_b = binary.any(axis=0) & ~binary.all(axis=0)
    used: list[int] = []  # tracks mentioned, in order of first mention -> variables a, b, c
    events: list[tuple[str, int, list[tuple]]] = []
    for hint in hints:
        t = int(rng.choice(slots[hint]))
        cands, weights = [], []
        for i in range(n):
            for p in np.flatnonzero(unary[t, i]):
                cands.append((UNARY[p], i))
                weights.append((3.0 if changes_u[i, p] else 1.0) * (0.5 if p == 0 else 1.0))
            for j in range(n):
                for r in np.flatnonzero(binary[t, i, j]):
                    cands.append((BINARY[r], i, j))
                    weights.append((4.0 if r == 5 else 1.0) * (2.0 if changes_b[i, j, r] else 1.0))
        events.append((hint, t, choose_atoms(rng, cands, weights, used, 0.5)))
    caption, spec_body = caption_and_spec(events, used, cats, _UNARY_TEXT, _BINARY_TEXT)
    return caption, spec_body, [{"frame": t, "hint": h} for h, t, _ in events]


def choose_atoms(rng: np.random.Generator, cands: list[tuple], weights: list[float], used: list[int],
                 p_second: float) -> list[tuple]:
    """One fact (two with probability ``p_second``) of ``cands`` by ``weights``, keeping at most three
    tracks mentioned in all; ``used`` (tracks in order of first mention) is extended in place."""
    atoms: list[tuple] = []
    for _ in range(1 + int(rng.random() < p_second)):
        ok = [k for k, a in enumerate(cands)
              if a not in atoms and len(set(used) | set(a[1:])) <= 3]
        if not ok:
            break
        w = np.array([weights[k] for k in ok])
        a = cands[ok[int(rng.choice(len(ok), p=w / w.sum()))]]
        atoms.append(a)
        used.extend(i for i in a[1:] if i not in used)
    return atoms


def caption_and_spec(events: list[tuple[str, int, list[tuple]]], used: list[int], cats: list[str],
                     unary_text: dict[str, str], binary_text: dict[str, str]) -> tuple[str, str]:
    """The caption text and the spec body (``exists ... . <events>``) of ordered ``(hint, frame, atoms)``."""
    var = {track: "abc"[k] for k, track in enumerate(used)}
    binders = ", ".join(f"{var[i]}: {cats[i]}" for i in used)

    def formula(atoms):
        return " and ".join(f"{a[0]}({', '.join(var[i] for i in a[1:])})" for a in atoms)

    def text(atoms):
        parts = []
        for a in atoms:
            table = unary_text if len(a) == 2 else binary_text
            parts.append(table[a[0]].format(*(cats[i].replace("_", " ") for i in a[1:])))
        return " and ".join(parts)

    if len(events) == 1:
        hint, _, atoms = events[0]
        body = f"eventually ({formula(atoms)}) @{hint}"
    else:
        body = "\n    then ".join(f"{formula(atoms)} @{hint}" for hint, _, atoms in events)
    caption = ", then ".join(f"{text(atoms)} {_HINT_TEXT[hint]}" for hint, _, atoms in events)
    caption = caption[0].upper() + caption[1:] + "."
    return caption, f"exists {binders}.\n    {body}"


# ---------------------------------------------------------------------------------------------- api


def generate_video(seed: int, index: int, *, num_frames: int = 12, image_size: int = 64,
                   min_objects: int = 3, max_objects: int = 4) -> SyntheticVideo:
    """Video ``index`` of the world with ``seed`` (independent of how many videos are generated)."""
    rng = np.random.default_rng([seed, index])
    T = num_frames
    cats, pos, holding, state, present = _simulate(rng, T, image_size, min_objects, max_objects)
    unary, binary = _scene_graph(pos, holding, state, present, cats)
    frames = _render(rng, pos, cats, state, present, holding, image_size)
    caption, body, events = _describe(rng, cats, unary, binary, present)
    vid = f"v{index:05d}"
    spec = f'spec {vid} "{caption}" {{\n  {body}\n}}\n'
    return SyntheticVideo(vid, frames, _boxes(pos, cats), present, cats, unary, binary, caption, spec, events)


def generate(seed: int, count: int, start: int = 0, **kwargs) -> list[SyntheticVideo]:
    return [generate_video(seed, i, **kwargs) for i in range(start, start + count)]


def write_dataset(out: str | Path, *, seed: int = 0, num_train: int = 600, num_test: int = 150,
                  num_frames: int = 0, image_size: int = 0, min_objects: int = 0, max_objects: int = 0,
                  num_negatives: int = 8, progress: bool = False, world: str = "toy") -> Path:
    """Write synthetic ``world`` (:mod:`laser_train.data.worlds`) to ``out`` in the dataset format.

    Sizes left at 0 take the world's defaults. Each record carries ``num_negatives`` negative
    specs made by :mod:`stlspec.negatives` (verified to differ in meaning), so training does not
    have to generate them. The world's background rules are copied to ``out/background.stl``.
    """
    import shutil

    from laser_train.data.format import write_record_files
    from laser_train.data.worlds import background_path, get_world, world_settings

    W = get_world(world)
    sizes = world_settings(world, num_frames=num_frames, image_size=image_size, min_objects=min_objects,
                           max_objects=max_objects)
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "tracks").mkdir(exist_ok=True)
    (out / "scene_graphs").mkdir(exist_ok=True)
    (out / "vocabulary.stl").write_text(W.VOCABULARY_STL, encoding="utf-8")
    shutil.copyfile(background_path(world), out / "background.stl")
    total = num_train + num_test
    indices = range(total)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"{world} videos", unit="video", leave=False)
    records = []
    for i in indices:
        v = W.generate_video(seed, i, **sizes)
        split = "train" if i < num_train else "test"
        records.append(write_record_files(out, v, split, W))
    if num_negatives:
        import stlspec

        from laser_train.data.negatives import make_negatives

        vocabulary = stlspec.compile_text(W.VOCABULARY_STL).vocabulary
        texts = make_negatives([r["spec"] for r in records], vocabulary, num_negatives, seed, progress=progress)
        for r, text in zip(records, texts):
            r["negatives"] = text  # "" when the generator found none: do not look again at start-up
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    meta = {"generator": W.__name__, "world": world, "seed": seed, "num_train": num_train,
            "num_test": num_test, **sizes, "num_negatives": num_negatives}
    (out / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laser_train.data.synthetic", description=__doc__.split("\n")[0])
    from laser_train.data.worlds import WORLDS

    ap.add_argument("--out", required=True, help="dataset directory to write")
    ap.add_argument("--world", default="toy", choices=tuple(WORLDS), help="which world (default: toy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-train", type=int, default=600)
    ap.add_argument("--num-test", type=int, default=150)
    ap.add_argument("--num-frames", type=int, default=0, help="frames per video (default: the world's)")
    ap.add_argument("--image-size", type=int, default=0, help="frame size in pixels (default: the world's)")
    ap.add_argument("--num-negatives", type=int, default=8, help="negative specs per video (0: none)")
    args = ap.parse_args(argv)
    path = write_dataset(args.out, seed=args.seed, num_train=args.num_train, num_test=args.num_test,
                         num_frames=args.num_frames, image_size=args.image_size,
                         num_negatives=args.num_negatives, progress=True, world=args.world)
    print(f"wrote {args.num_train + args.num_test} videos to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
