"""The ``playroom`` world: a harder procedurally generated video world, deterministic from a seed.

Where the ``toy`` world (:mod:`laser_train.data.synthetic`) has 6 categories, 13
predicates and 3-4 objects, this one has **22 categories, 16 unary and 22 binary
predicates, 4-10 tracks per video** (repeated categories allowed: two people, two
balls), **24 frames**, tracks that enter, leave and are occluded (``present``
masks), and captions that mention only part of what happens (at most three
tracks; the rest are distractors no caption mentions).

What happens. Agents (person, child, robot, dog, cat) follow a short plan of
behaviours: walk, idle, go to an object and interact with it (hold and carry,
touch, push, throw, kick, pet, point at), chase a moving thing, talk to another
person, sit on a chair. Small objects rest on the floor, **on** tables, shelves
and chairs, or **inside** boxes, baskets and bins; thrown and kicked things fly
and slow down. Lamps, TVs and boxes switch state; dogs bark, cats sleep, cups
fill up, robots blink, children cry, people wave.

The hidden scene graph (per frame):

* motion (``still``, ``moving_left/right/up/down`` from the displacement to the
  next frame, dominant axis; ``fast`` above :data:`FAST` px/frame) and the
  category-specific states above;
* geometry: ``near`` (centres closer than :data:`NEAR`), otherwise exactly one of
  ``left_of/right_of/above/below``; ``approaching`` / ``moving_away_from`` (a's
  velocity towards / away from b above 1 px/frame, within :data:`CLOSE` px);
  ``chasing``; ``in_front_of`` / ``behind`` (boxes overlap; depth order);
* support: ``on``, ``inside``, ``sitting_on``;
* interactions: ``holding``, ``touching``, ``pushing``, ``throwing``, ``kicking``,
  ``petting``, ``pointing_at``, ``looking_at``, ``talking_to``.

Which predicates pixels are needed for (the honest part). Box geometry alone
cannot tell the interactions apart: every interaction happens between an agent
and an object at contact distance, and agents also stand idle at the same
distance from objects they do not touch (decoys). What gives them away is drawn
*inside the boxes*, so that it is in the track crops:

* an agent that acts draws an **action cue**: a 3x3 "hand" patch on the side of
  its body that faces the target, coloured by the action (:data:`ACTION_COLOR`);
  the target gets a 2x2 **contact mark** of the same colour on its side facing
  the agent (``pointing_at`` and ``talking_to`` have no contact mark: they
  happen at a distance; ``talking_to`` draws a white speech mark at the mouth);
* every agent has **eyes on the side it faces** (``looking_at`` is: b lies on the
  side a faces, within 40 px horizontally and 14 px vertically);
* ``inside``: the container's front wall is drawn over the lower part of the
  thing inside; ``in_front_of`` with the same box geometry draws it whole;
* ``in_front_of``/``behind``: who hides whom where boxes overlap (depth order);
* states: open lid, lit shade, bright screen, raised arm (waving), bent body
  (sitting), open mouth (barking), dark closed-eye body (sleeping), brown fill
  (full), red light (blinking), blue tears (crying).

Which predicates box geometry does give away: motion, ``fast``, the spatial
relations, ``approaching``, ``moving_away_from``, ``chasing`` (mostly), ``on``
(mostly), and ``holding`` while the holder walks (the object moves with it).

Presence. A track is present at a frame when at least :data:`VISIBLE` of its
pixels are visible (inside the frame and not hidden by nearer objects); its box
is clipped to the frame. Agents sometimes walk in from or out of the frame.

Video ``i`` depends only on ``(seed, i)``. ``python -m laser_train.data.synthetic
--world playroom --out DIR`` writes the world in the dataset format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laser_train.data.synthetic import SyntheticVideo, _hint_frames, caption_and_spec, choose_atoms

__all__ = [
    "CATEGORIES", "UNARY", "BINARY", "VOCABULARY_STL", "BACKGROUND", "DEFAULTS", "NEAR", "FAST", "CLOSE",
    "VISIBLE", "ACTION_COLOR", "INTERACTIONS", "generate_video",
]

AGENTS = ("person", "child", "robot", "dog", "cat")
HANDED = ("person", "child", "robot")
SMALL = ("ball", "cup", "bottle", "book", "phone", "toy_car", "plate", "apple")
CONTAINERS = ("box", "basket", "bin")
SURFACES = ("table", "chair", "shelf")
APPLIANCES = ("lamp", "tv", "plant")
CATEGORIES = AGENTS + SMALL + CONTAINERS + SURFACES + APPLIANCES

MOTION = ("still", "moving_left", "moving_right", "moving_up", "moving_down", "fast")
#: category-specific states: predicate -> category
STATES = {"open": "box", "lit": "lamp", "screen_on": "tv", "sitting": "person", "waving": "person",
          "sleeping": "cat", "barking": "dog", "full": "cup", "blinking": "robot", "crying": "child"}
UNARY = MOTION + tuple(STATES)
SPATIAL = ("left_of", "right_of", "above", "below", "near")
BINARY = SPATIAL + ("approaching", "moving_away_from", "chasing", "in_front_of", "behind", "inside", "on",
                    "sitting_on", "holding", "touching", "pushing", "throwing", "kicking", "petting",
                    "pointing_at", "looking_at", "talking_to")
#: argument categories of the binary predicates (``any`` unless listed)
BINARY_TYPES = {"sitting_on": ("person", "chair"), "throwing": ("person", "any"), "kicking": ("any", "ball"),
                "petting": ("person", "any"), "pointing_at": ("person", "any"),
                "talking_to": ("person", "person")}
#: interaction predicates whose truth needs the pixels (action cues), with their cue colours
ACTION_COLOR = {"holding": (255, 215, 170), "touching": (255, 255, 255), "pushing": (255, 60, 200),
                "throwing": (60, 255, 255), "kicking": (255, 255, 0), "petting": (150, 80, 255),
                "pointing_at": (0, 255, 120), "talking_to": (250, 250, 250)}
INTERACTIONS = tuple(ACTION_COLOR)

VOCABULARY_STL = (
    "// Vocabulary of the laser_train playroom world.\n"
    f"category {', '.join(CATEGORIES)}\n"
    f"unary {', '.join(f'{p}(any)' for p in MOTION)}\n"
    f"unary {', '.join(f'{p}({c})' for p, c in STATES.items())}\n"
    "binary " + ", ".join(f"{r}({', '.join(BINARY_TYPES.get(r, ('any', 'any')))})" for r in BINARY) + "\n"
)
BACKGROUND = "background_playroom.stl"  # in laser_train/configs
#: the world's default size (``data.*`` settings left at 0 take these)
DEFAULTS = {"num_frames": 24, "image_size": 96, "min_objects": 4, "max_objects": 10}

NEAR = 18.0  # px between centres (96-px frames)
CLOSE = 30.0  # approaching / moving_away_from only between things this close
FAST = 3.5  # px per frame
MOVING = 0.5  # px per frame: slower counts as still
VISIBLE = 0.3  # fraction of a track's pixels that must be visible for it to be present
_SIZE = {"person": (10, 18), "child": (8, 13), "robot": (10, 14), "dog": (14, 9), "cat": (11, 8),
         "ball": (7, 7), "cup": (6, 8), "bottle": (5, 10), "book": (8, 6), "phone": (4, 7), "toy_car": (9, 5),
         "plate": (9, 3), "apple": (6, 6), "box": (14, 12), "basket": (14, 10), "bin": (10, 13),
         "table": (24, 12), "chair": (11, 14), "shelf": (16, 22), "lamp": (8, 16), "tv": (16, 11),
         "plant": (9, 15)}
_COLOR = {"person": (200, 55, 55), "child": (230, 120, 150), "robot": (150, 160, 175), "dog": (140, 95, 45),
          "cat": (110, 110, 110), "ball": (240, 150, 30), "cup": (60, 90, 225), "bottle": (40, 170, 160),
          "book": (150, 40, 120), "phone": (30, 30, 40), "toy_car": (220, 40, 40), "plate": (235, 235, 225),
          "apple": (120, 200, 40), "box": (60, 165, 70), "basket": (190, 150, 80), "bin": (80, 80, 140),
          "table": (130, 85, 50), "chair": (170, 110, 60), "shelf": (100, 70, 45), "lamp": (200, 200, 60),
          "tv": (45, 45, 55), "plant": (40, 120, 50)}
_DIRS = np.array([(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)])

_UNARY_TEXT = {
    "still": "the {0} stays still", "moving_left": "the {0} moves left", "moving_right": "the {0} moves right",
    "moving_up": "the {0} moves up", "moving_down": "the {0} moves down", "fast": "the {0} moves fast",
    "open": "the {0} is open", "lit": "the {0} is on", "screen_on": "the {0} is on",
    "sitting": "the {0} sits", "waving": "the {0} waves", "sleeping": "the {0} sleeps",
    "barking": "the {0} barks", "full": "the {0} is full", "blinking": "the {0} blinks",
    "crying": "the {0} cries",
}
_BINARY_TEXT = {
    "left_of": "the {0} is left of the {1}", "right_of": "the {0} is right of the {1}",
    "above": "the {0} is above the {1}", "below": "the {0} is below the {1}", "near": "the {0} is near the {1}",
    "approaching": "the {0} approaches the {1}", "moving_away_from": "the {0} moves away from the {1}",
    "chasing": "the {0} chases the {1}", "in_front_of": "the {0} is in front of the {1}",
    "behind": "the {0} is behind the {1}", "inside": "the {0} is in the {1}", "on": "the {0} is on the {1}",
    "sitting_on": "the {0} sits on the {1}", "holding": "the {0} holds the {1}",
    "touching": "the {0} touches the {1}", "pushing": "the {0} pushes the {1}",
    "throwing": "the {0} throws the {1}", "kicking": "the {0} kicks the {1}", "petting": "the {0} pets the {1}",
    "pointing_at": "the {0} points at the {1}", "looking_at": "the {0} looks at the {1}",
    "talking_to": "the {0} talks to the {1}",
}
# How salient a fact is for a caption writer (relative weights when picking what a caption mentions).
_SALIENCE = {**{r: 6.0 for r in INTERACTIONS}, "looking_at": 1.5, "chasing": 5.0, "sitting_on": 5.0,
             "inside": 3.0, "on": 2.0, "in_front_of": 1.0, "behind": 1.0, "approaching": 2.0,
             "moving_away_from": 1.5, "near": 0.7, "left_of": 0.4, "right_of": 0.4, "above": 0.4, "below": 0.4,
             **{s: 3.0 for s in STATES}, "still": 0.3, "fast": 2.0, "moving_left": 1.0, "moving_right": 1.0,
             "moving_up": 1.0, "moving_down": 1.0}


# ---------------------------------------------------------------------------------------------- simulation


@dataclass
class _Scene:
    T: int
    size: int
    cats: list[str]
    pos: np.ndarray  # [T, n, 2] centres
    depth: np.ndarray  # [n] draw order (larger = nearer the camera)
    facing: np.ndarray  # [T, n] -1 left / +1 right
    action: list[list[tuple[str, int] | None]]  # [T][n]: (interaction, target) of agent n
    support: list[list[tuple[str, int] | None]]  # [T][n]: ("on" | "inside" | "sitting_on", what)
    chase: np.ndarray  # [T, n] target being chased, -1
    states: dict[str, np.ndarray] = field(default_factory=dict)  # state predicate -> [T, n] bool

    @property
    def n(self) -> int:
        return len(self.cats)


def _pick_categories(rng: np.random.Generator, n: int) -> list[str]:
    k_agents = int(min(n - 1, rng.choice([1, 2, 3, 3, 4, 4])))
    cats = [str(c) for c in rng.choice(AGENTS, size=k_agents, p=[0.34, 0.16, 0.14, 0.2, 0.16])]
    k_furn = int(min(n - k_agents - 1, rng.integers(0, 3)))
    cats += [str(c) for c in rng.choice(CONTAINERS + SURFACES, size=k_furn, replace=False)]
    rest = n - len(cats)
    pool = SMALL + APPLIANCES
    weights = np.array([3.0] * len(SMALL) + [1.5] * len(APPLIANCES))
    cats += [str(c) for c in rng.choice(pool, size=rest, p=weights / weights.sum())]
    return cats


def _half(cat: str, sitting: bool = False) -> np.ndarray:
    w, h = _SIZE[cat]
    if sitting:
        h = int(h * 0.7)
    return np.array([w / 2, h / 2])


class _Sim:
    """Frame-by-frame simulation of one video (plans for agents, physics for things)."""

    def __init__(self, rng: np.random.Generator, T: int, size: int, cats: list[str]):
        self.rng, self.T, self.size, self.cats = rng, T, size, cats
        n = len(cats)
        self.n = n
        self.pos = np.zeros((T, n, 2))
        self.vel = np.zeros((n, 2))  # current velocity of free things (thrown, kicked, rolling)
        self.facing = np.ones((T, n))
        self.action = [[None] * n for _ in range(T)]
        self.support = [[None] * n for _ in range(T)]
        self.chase = -np.ones((T, n), int)
        self.busy = np.zeros(n, bool)  # an object some agent is using
        furniture = [i for i, c in enumerate(cats) if c in CONTAINERS + SURFACES]
        self.depth = rng.permutation(n).astype(float) + 10.0
        self.depth[furniture] = rng.uniform(0, 5, len(furniture))  # furniture stands at the back
        self.start = self._layout()

    def _free_spot(self, taken: list[np.ndarray], margin: float = 10.0, gap: float = 14.0) -> np.ndarray:
        best = None
        for _ in range(30):
            p = self.rng.uniform(margin, self.size - margin, 2)
            if all(np.linalg.norm(p - q) > gap for q in taken):
                return p
            best = p
        return best

    def _layout(self) -> np.ndarray:
        """Start positions; small things may start on a surface or inside a container."""
        rng, cats, size = self.rng, self.cats, self.size
        start = np.zeros((self.n, 2))
        taken: list[np.ndarray] = []
        self.rest: dict[int, tuple[str, int]] = {}  # thing -> ("on"/"inside", furniture) at the start
        for i, c in enumerate(cats):
            if c in CONTAINERS + SURFACES:
                start[i] = self._free_spot(taken, margin=16.0, gap=24.0)
                start[i, 1] = max(start[i, 1], size * 0.45)  # furniture stands on the lower half
                taken.append(start[i])
        holders = [i for i, c in enumerate(cats) if c in CONTAINERS + SURFACES and c != "chair"]
        used: set[int] = set()
        for i, c in enumerate(cats):
            if c in CONTAINERS + SURFACES:
                continue
            free = [h for h in holders if h not in used]
            if c in SMALL and free and rng.random() < 0.5:
                h = int(rng.choice(free))
                used.add(h)
                kind = "inside" if cats[h] in CONTAINERS else "on"
                self.rest[i] = (kind, h)
                start[i] = self._rest_point(i, h, kind, start[h])
            else:
                start[i] = self._free_spot(taken)
                taken.append(start[i])
        return start

    def _rest_point(self, i: int, h: int, kind: str, hpos: np.ndarray) -> np.ndarray:
        hh, hi = _half(self.cats[h]), _half(self.cats[i])
        dx = self.rng.uniform(-hh[0] + hi[0], hh[0] - hi[0]) if hh[0] > hi[0] else 0.0
        if kind == "on":  # bottom of i on top of h
            return hpos + np.array([dx, -hh[1] - hi[1]])
        return hpos + np.array([dx, -hh[1] + hi[1] + 1.0])  # inside: sits low in the container

    # -------------------------------------------------------------------------------------- plans

    def _next(self, a: int, t: int, pos: np.ndarray) -> dict:
        """The behaviour agent ``a`` starts at frame ``t`` (chosen with the positions at ``t``)."""
        b = self._choose(a, pos)
        length = int(self.rng.integers(6, 12))
        if b["target"] >= 0 and b["kind"] != "chasing":  # time to get there first
            length += int(np.hypot(*(pos[b["target"]] - pos[a])) / 2.5)
        b["lo"], b["hi"] = t, min(self.T, t + length)
        return b

    def _pick(self, a: int, pool: list[int], pos: np.ndarray) -> int:
        """One of ``pool``, nearer ones more likely (agents act on what is around them)."""
        d = np.hypot(*(pos[pool] - pos[a]).T)
        w = np.exp(-d / 20.0)
        return int(pool[int(self.rng.choice(len(pool), p=w / w.sum()))])

    def _choose(self, a: int, pos: np.ndarray) -> dict:
        rng, cats = self.rng, self.cats
        cat = cats[a]
        things = [i for i in range(self.n) if i != a and not self.busy[i]]
        smalls = [i for i in things if cats[i] in SMALL]
        options: list[tuple[str, float, dict]] = [("walk", 1.5, {}), ("idle_near", 1.5, {})]
        if cat in HANDED and smalls:
            options += [("holding", 2.0, {}), ("touching", 1.0, {})]
        if cat in ("person", "child", "robot", "dog"):
            pushable = [i for i in things if cats[i] in ("box", "basket", "chair", "toy_car", "bin")]
            if pushable:
                options.append(("pushing", 1.2, {"pool": pushable}))
        if cat == "person" and [i for i in smalls if cats[i] in ("ball", "apple", "book")]:
            options.append(("throwing", 2.0, {}))
        if cat in ("person", "child", "dog") and [i for i in things if cats[i] == "ball"]:
            options.append(("kicking", 2.0, {}))
        if cat == "person":
            if [i for i in things if cats[i] in ("dog", "cat")]:
                options.append(("petting", 2.0, {}))
            options.append(("pointing_at", 1.0, {}))
            if [i for i in things if cats[i] == "person"]:
                options.append(("talking_to", 2.0, {}))
            if [i for i in things if cats[i] == "chair"]:
                options.append(("sitting_on", 2.0, {}))
        if cat in ("dog", "cat", "child"):
            options.append(("chasing", 1.2, {}))
        names = [o[0] for o in options]
        w = np.array([o[1] for o in options])
        kind = names[int(rng.choice(len(names), p=w / w.sum()))]
        extra = options[names.index(kind)][2]
        pools = {
            "holding": smalls, "touching": things, "pushing": extra.get("pool", []),
            "throwing": [i for i in smalls if cats[i] in ("ball", "apple", "book")],
            "kicking": [i for i in things if cats[i] == "ball"],
            "petting": [i for i in things if cats[i] in ("dog", "cat")],
            "talking_to": [i for i in things if cats[i] == "person"],
            "sitting_on": [i for i in things if cats[i] == "chair"],
            "pointing_at": things, "idle_near": things, "chasing": things,
        }
        target = self._pick(a, pools[kind], pos) if pools.get(kind) else -1
        if kind in ("holding", "pushing", "throwing", "kicking", "sitting_on") and target >= 0:
            self.busy[target] = True
        if target < 0 and kind not in ("walk",):
            kind = "walk"
        return {"kind": kind, "target": target}

    # -------------------------------------------------------------------------------------- run

    def run(self) -> _Scene:
        rng, T, size, cats, n = self.rng, self.T, self.size, self.cats, self.n
        pos = self.start.copy()
        current: dict[int, dict] = {}
        rest = dict(self.rest)  # thing -> (kind, furniture) while it rests
        held: dict[int, int] = {}  # thing -> holder
        sitting = np.zeros((T, n), bool)
        walk_vel = {a: _DIRS[int(rng.integers(4))] * rng.uniform(1.5, 3.0) for a in range(n)}
        for a in rng.permutation([i for i in range(n) if cats[i] in AGENTS]).tolist():
            if rng.random() < 0.2:  # walks in from the side: starts off-frame
                side = float(rng.choice([-1.0, 1.0]))
                pos[a, 0] = -8.0 if side > 0 else size + 8.0
                walk_vel[a] = np.array([side * rng.uniform(2.0, 3.0), 0.0])
                current[a] = {"kind": "enter", "target": -1, "lo": 0, "hi": int(rng.integers(4, 8))}
                continue
            b = current[a] = self._next(a, 0, pos)
            o = b["target"]
            if o >= 0 and b["kind"] != "pointing_at":  # the video starts where the action is
                gap = rng.uniform(8.0, 20.0) * float(rng.choice([-1.0, 1.0]))
                pos[a] = np.clip(pos[o] + np.array([gap, rng.uniform(-4, 4)]), 8, size - 8)
        exiting = {a for a in range(n) if cats[a] in AGENTS and rng.random() < 0.12}
        for t in range(T):
            self.pos[t] = pos
            for a in range(n):
                if cats[a] not in AGENTS:
                    continue
                b = current.get(a)
                if b is None or t >= b["hi"]:
                    if b is not None and b["target"] >= 0 and b["kind"] not in ("holding", "pushing"):
                        self.busy[b["target"]] = False
                    b = current[a] = self._next(a, t, pos)
                step = self._step(a, b, t, pos, rest, held, walk_vel, sitting, a in exiting and t > T - 6)
                pos[a] = pos[a] + step
            # things: held things follow their holder; free things fly and slow down; toy cars drive
            for i in range(n):
                if cats[i] == "toy_car" and i not in held and i not in rest and not self.busy[i] and rng.random() < 0.25:
                    self.vel[i] = _DIRS[int(rng.integers(2))] * rng.uniform(3.0, 5.0)
                if i in held:
                    h = held[i]
                    hh, hi = _half(cats[h]), _half(cats[i])
                    pos[i] = pos[h] + np.array([self.facing[t, h] * (hh[0] + hi[0] - 2.0), 0.0])
                elif cats[i] not in AGENTS and np.abs(self.vel[i]).sum() > 0:
                    pos[i] = np.clip(pos[i] + self.vel[i], 4.0, size - 4.0)
                    self.vel[i] *= 0.8
                    if np.hypot(*self.vel[i]) < 0.6:
                        self.vel[i] = 0.0
            for i, (kind, h) in rest.items():
                self.support[t][i] = (kind, h)
        self.sitting = sitting
        return self._finish()

    def _target_side(self, a: int, o: int, pos: np.ndarray) -> float:
        return 1.0 if pos[o, 0] >= pos[a, 0] else -1.0

    def _go(self, a: int, goal: np.ndarray, pos: np.ndarray, speed: float = 2.5) -> np.ndarray:
        d = goal - pos[a]
        dist = np.hypot(*d)
        return d if dist <= speed else d / dist * speed

    def _step(self, a, b, t, pos, rest, held, walk_vel, sitting, leaving) -> np.ndarray:
        cats, size, T = self.cats, self.size, self.T
        kind, o = b["kind"], b["target"]
        if leaving:
            v = np.array([3.0 * self.facing[max(t - 1, 0), a], 0.0])
            self.facing[t, a] = np.sign(v[0])
            return v
        if kind == "enter":
            self.facing[t, a] = np.sign(walk_vel[a][0]) or 1.0
            return walk_vel[a]
        if kind == "walk":
            v = walk_vel[a]
            nxt = pos[a] + v
            if not (8 <= nxt[0] <= size - 8 and 8 <= nxt[1] <= size - 8):
                walk_vel[a] = -v
                v = -v
            if v[0]:
                self.facing[t, a] = np.sign(v[0])
            else:
                self.facing[t, a] = self.facing[max(t - 1, 0), a]
            return v
        side = self._target_side(a, o, pos)
        ha, ho = _half(cats[a]), _half(cats[o])
        contact = pos[o] - np.array([side * (ha[0] + ho[0] - 1.0), ho[1] - ha[1]])  # stand beside, feet level
        contact[1] = np.clip(contact[1], 10, size - 10)
        self.facing[t, a] = side
        if kind == "chasing":
            self.chase[t, a] = o
            if np.hypot(*(pos[o] - pos[a])) < 6 and np.abs(self.vel[o]).sum() == 0 and cats[o] not in AGENTS:
                self.vel[o] = (pos[o] - pos[a] + 1e-3) / (np.hypot(*(pos[o] - pos[a])) + 1e-3) * 3.0
            return self._go(a, pos[o], pos, 3.2)
        if kind == "pointing_at":
            d = pos[o] - pos[a]
            if np.hypot(*d) < 22:
                return -d / (np.hypot(*d) + 1e-6) * 2.0
            self.action[t][a] = ("pointing_at", o)
            return np.zeros(2)
        if kind == "talking_to":
            goal = pos[o] - np.array([side * 16.0, 0.0])
            if np.hypot(*(goal - pos[a])) > 3:
                return self._go(a, goal, pos)
            self.action[t][a] = ("talking_to", o)
            return np.zeros(2)
        if kind == "sitting_on":
            goal = pos[o] + np.array([0.0, -3.0])
            if np.hypot(*(goal - pos[a])) > 2.5:
                return self._go(a, goal, pos)
            sitting[t, a] = True
            self.support[t][a] = ("sitting_on", o)
            return goal - pos[a]
        if np.hypot(*(contact - pos[a])) > 2.6 and held.get(o) != a and "since" not in b:  # walk there first
            return self._go(a, contact, pos)
        # at the target
        if kind == "idle_near":
            return contact - pos[a]
        if kind in ("touching", "petting"):
            self.action[t][a] = (kind, o)
            return contact - pos[a]
        if kind == "holding":
            held[o] = a
            rest.pop(o, None)
            self.action[t][a] = ("holding", o)
            if t - b.setdefault("since", t) >= 3:  # lift it, then carry it around
                v = b.setdefault("carry", _DIRS[int(self.rng.integers(4))] * self.rng.uniform(1.5, 2.5))
                nxt = pos[a] + v
                if not (10 <= nxt[0] <= size - 10 and 10 <= nxt[1] <= size - 10):
                    b["carry"] = v = -v
                if v[0]:
                    self.facing[t, a] = np.sign(v[0])
                return v
            return contact - pos[a]
        if kind == "pushing":
            rest.pop(o, None)
            v = np.array([side * 1.6, 0.0])
            if not 12 <= pos[o, 0] + v[0] <= size - 12:
                return np.zeros(2)
            self.action[t][a] = ("pushing", o)
            pos[o] = pos[o] + v
            return v
        if kind in ("throwing", "kicking"):
            since = b.setdefault("since", t)
            if t - since < 4:  # wind-up: lift and swing the arm (throw), or draw the leg back (kick)
                if kind == "throwing":
                    held[o] = a
                    rest.pop(o, None)
                self.action[t][a] = ("holding", o) if kind == "throwing" and t - since < 1 else (kind, o)
                return np.zeros(2)
            if "released" not in b:
                b["released"] = t
                held.pop(o, None)
                rest.pop(o, None)
                self.vel[o] = np.array([side * 6.0, float(self.rng.uniform(-2.0, 1.0))])
            return np.zeros(2)
        return np.zeros(2)

    def _finish(self) -> _Scene:
        rng, T, n, cats = self.rng, self.T, self.n, self.cats
        states = {}
        for p, c in STATES.items():
            s = np.zeros((T, n), bool)
            for i in range(n):
                if cats[i] != c:
                    continue
                if p == "sitting":
                    s[:, i] = self.sitting[:, i]
                    continue
                on = rng.random() < 0.45
                s[:, i] = on
                for _ in range(int(rng.integers(0, 3))):
                    t0 = int(rng.integers(1, T - 1))
                    s[t0:, i] = ~s[t0:, i]
            states[p] = s
        # waving only while idle (not acting); sleeping cats lie still (no behaviour moves them)
        acting = np.array([[self.action[t][i] is not None for i in range(n)] for t in range(T)])
        states["waving"] &= ~acting
        step = np.zeros((T, n))
        step[:-1] = np.hypot(*(self.pos[1:] - self.pos[:-1]).transpose(2, 0, 1))
        states["sleeping"] &= step <= MOVING  # a cat that moves is awake
        return _Scene(T, self.size, cats, self.pos.copy(), self.depth, self.facing, self.action, self.support,
                      self.chase, states)


# ---------------------------------------------------------------------------------------------- truth


def _boxes(scene: _Scene) -> np.ndarray:
    T, n = scene.T, scene.n
    out = np.zeros((T, n, 4))
    for i, c in enumerate(scene.cats):
        sit = scene.states["sitting"][:, i] if c == "person" else np.zeros(T, bool)
        for t in range(T):
            h = _half(c, bool(sit[t]))
            out[t, i, :2] = scene.pos[t, i] - h + 0.5
            out[t, i, 2:] = scene.pos[t, i] + h + 0.5
    return out


def _scene_graph(scene: _Scene, boxes: np.ndarray, present: np.ndarray):
    T, n, cats = scene.T, scene.n, scene.cats
    pos = scene.pos
    vel = np.zeros_like(pos)
    if T > 1:
        vel[:-1] = pos[1:] - pos[:-1]
        vel[-1] = vel[-2]
    vx, vy = vel[..., 0], vel[..., 1]
    speed = np.hypot(vx, vy)
    moving = speed > MOVING
    horiz = np.abs(vx) >= np.abs(vy)
    U = {p: k for k, p in enumerate(UNARY)}
    B = {r: k for k, r in enumerate(BINARY)}
    unary = np.zeros((T, n, len(UNARY)), bool)
    unary[..., U["still"]] = ~moving
    unary[..., U["moving_left"]] = moving & horiz & (vx < 0)
    unary[..., U["moving_right"]] = moving & horiz & (vx > 0)
    unary[..., U["moving_up"]] = moving & ~horiz & (vy < 0)
    unary[..., U["moving_down"]] = moving & ~horiz & (vy > 0)
    unary[..., U["fast"]] = speed > FAST
    for p in STATES:
        unary[..., U[p]] = scene.states[p]
    off = pos[:, None, :, :] - pos[:, :, None, :]  # [T, a, b, 2] = centre_b - centre_a
    dx, dy = off[..., 0], off[..., 1]
    dist = np.hypot(dx, dy)
    near = dist < NEAR
    hor = np.abs(dx) >= np.abs(dy)
    binary = np.zeros((T, n, n, len(BINARY)), bool)
    binary[..., B["left_of"]] = ~near & hor & (dx > 0)
    binary[..., B["right_of"]] = ~near & hor & (dx < 0)
    binary[..., B["above"]] = ~near & ~hor & (dy > 0)  # image y grows downwards
    binary[..., B["below"]] = ~near & ~hor & (dy < 0)
    binary[..., B["near"]] = near
    toward = (vel[:, :, None, :] * off).sum(-1) / np.maximum(dist, 1e-6)  # a's speed towards b
    binary[..., B["approaching"]] = (toward > 1.0) & (dist < CLOSE)
    binary[..., B["moving_away_from"]] = (toward < -1.0) & (dist < CLOSE)
    overlap = ((np.minimum(boxes[:, :, None, 2], boxes[:, None, :, 2])
                - np.maximum(boxes[:, :, None, 0], boxes[:, None, :, 0])).clip(0)
               * (np.minimum(boxes[:, :, None, 3], boxes[:, None, :, 3])
                  - np.maximum(boxes[:, :, None, 1], boxes[:, None, :, 1])).clip(0)) >= 4.0
    nearer = scene.depth[:, None] > scene.depth[None, :]
    front = overlap & nearer[None]
    for t in range(T):
        for i in range(n):
            if scene.chase[t, i] >= 0:
                binary[t, i, scene.chase[t, i], B["chasing"]] = True
            sup = scene.support[t][i]
            if sup is not None:
                kind, h = sup
                binary[t, i, h, B[kind]] = True
                if kind == "inside":  # neither in front of nor behind its container
                    front[t, i, h] = front[t, h, i] = False
            act = scene.action[t][i]
            if act is not None:
                binary[t, i, act[1], B[act[0]]] = True
        # looking_at: b lies on the side a faces, roughly at eye level, not too far
        for i in range(n):
            if cats[i] not in AGENTS:
                continue
            f = scene.facing[t, i]
            binary[t, i, :, B["looking_at"]] = (dx[t, i] * f > 3) & (np.abs(dx[t, i]) < 40) & (np.abs(dy[t, i]) < 14)
    binary[..., B["in_front_of"]] = front
    binary[..., B["behind"]] = front.transpose(0, 2, 1)
    binary[..., B["chasing"]] &= binary[..., B["approaching"]] | near  # a chase is seen while closing in
    eye = np.eye(n, dtype=bool)
    binary[:, eye] = False
    unary &= present[..., None]
    binary &= (present[:, :, None] & present[:, None, :])[..., None]
    return unary, binary


# ---------------------------------------------------------------------------------------------- render


def _patch(img, ids, k, x0, y0, x1, y1, color, mask_fn=None):
    """Paint pixels [x0, x1) x [y0, y1) (clipped), optionally only where ``mask_fn(xx, yy)``; record owner k."""
    H, W = ids.shape
    xa, xb = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), W)
    ya, yb = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), H)
    if xa >= xb or ya >= yb:
        return
    if mask_fn is None:
        img[ya:yb, xa:xb] = color
        ids[ya:yb, xa:xb] = k
        return
    yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
    m = mask_fn(xx + 0.5, yy + 0.5)
    img[ya:yb, xa:xb][m] = color
    ids[ya:yb, xa:xb][m] = k


def _draw(img, ids, k, cat, c, tint, st: dict[str, bool], facing: float, sit: bool):
    """Draw track k (category ``cat``) centred at ``c``; ``st`` holds its category states."""
    w, h = _SIZE[cat]
    if sit:
        h = int(h * 0.7)
    cx, cy = c[0] + 0.5, c[1] + 0.5
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    ell = lambda xx, yy: ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1  # noqa: E731
    eye_x = cx + facing * w * 0.25
    if cat in ("person", "child", "robot"):
        head = 4 if cat != "child" else 3
        body = tint if cat != "robot" else tint
        _patch(img, ids, k, x0 + 1, y0 + head, x1 - 1, y1, body)
        skin = (235, 200, 170) if cat != "robot" else (190, 200, 210)
        _patch(img, ids, k, cx - head / 2 - 0.5, y0, cx + head / 2 + 0.5, y0 + head + 0.5, skin)
        _patch(img, ids, k, eye_x - 0.5, y0 + 1, eye_x + 0.5, y0 + 2, (20, 20, 20))
        if cat == "person" and st.get("waving"):
            _patch(img, ids, k, x0, y0, x0 + 1.5, y0 + 5, skin)
        if cat == "person" and sit:
            _patch(img, ids, k, cx - facing * 1 - 1, y1 - 3, cx + facing * 4 + 1, y1 - 1, tint * 0.6)
        if cat == "robot" and st.get("blinking"):
            _patch(img, ids, k, cx - 1, y0 + head, cx + 1, y0 + head + 2, (255, 30, 30))
        if cat == "child" and st.get("crying"):
            _patch(img, ids, k, eye_x - 0.5, y0 + 2, eye_x + 0.5, y0 + 4, (60, 120, 255))
    elif cat in ("dog", "cat"):
        body = tint * (0.55 if st.get("sleeping") else 1.0)
        _patch(img, ids, k, x0, y0 + 2, x1, y1, body, ell)
        hx = cx + facing * (w / 2 - 2)
        _patch(img, ids, k, hx - 2, y0, hx + 2, y0 + 4, body * 0.8)
        if not st.get("sleeping"):
            _patch(img, ids, k, hx + facing - 0.5, y0 + 1, hx + facing + 0.5, y0 + 2, (20, 20, 20))
        else:
            _patch(img, ids, k, hx - 1, y0 - 3, hx + 1, y0 - 1, (240, 240, 240))
        if st.get("barking"):
            _patch(img, ids, k, hx + facing * 2 - 1, y0 + 3, hx + facing * 2 + 1, y0 + 5, (250, 250, 250))
    elif cat in ("ball", "apple"):
        _patch(img, ids, k, x0, y0, x1, y1, tint, ell)
        if cat == "apple":
            _patch(img, ids, k, cx - 0.5, y0 - 1, cx + 0.5, y0 + 1, (90, 60, 20))
    elif cat == "cup":
        _patch(img, ids, k, x0, y0, x1, y1, tint)
        _patch(img, ids, k, x1, cy - 1.5, x1 + 1.5, cy + 1.5, tint)
        if st.get("full"):
            _patch(img, ids, k, x0 + 1, y0, x1 - 1, y0 + 2, (110, 60, 20))
    elif cat == "bottle":
        _patch(img, ids, k, x0, y0 + 3, x1, y1, tint)
        _patch(img, ids, k, cx - 1, y0, cx + 1, y0 + 3, tint * 0.7)
    elif cat in ("book", "phone", "plate"):
        _patch(img, ids, k, x0, y0, x1, y1, tint)
        if cat == "book":
            _patch(img, ids, k, x0, y0, x0 + 1, y1, (240, 240, 230))
        if cat == "phone":
            _patch(img, ids, k, x0 + 0.5, y0 + 1, x1 - 0.5, y1 - 1.5, (90, 140, 200))
    elif cat == "toy_car":
        _patch(img, ids, k, x0, y0, x1, y1 - 1, tint)
        for wx in (x0 + 1.5, x1 - 1.5):
            _patch(img, ids, k, wx - 1, y1 - 1.5, wx + 1, y1 + 0.5, (20, 20, 20))
    elif cat in ("box", "basket", "bin"):
        _patch(img, ids, k, x0, y0, x1, y1, tint)
        if cat == "basket":
            _patch(img, ids, k, x0, y0 - 3, x0 + 1, y0, tint * 0.7)
            _patch(img, ids, k, x1 - 1, y0 - 3, x1, y0, tint * 0.7)
            _patch(img, ids, k, x0, y0 - 4, x1, y0 - 3, tint * 0.7)
        if cat == "box" and st.get("open"):
            _patch(img, ids, k, x0, y0, x1, y0 + 3, (20, 20, 20))
            _patch(img, ids, k, x0, y0 - 2, x1, y0 - 1, (230, 230, 230))
        if cat == "bin":
            _patch(img, ids, k, x0 - 1, y0, x1 + 1, y0 + 2, tint * 0.6)
    elif cat == "table":
        _patch(img, ids, k, x0, y0, x1, y0 + 3, tint)
        _patch(img, ids, k, x0 + 1, y0 + 3, x0 + 3, y1, tint * 0.8)
        _patch(img, ids, k, x1 - 3, y0 + 3, x1 - 1, y1, tint * 0.8)
    elif cat == "chair":
        _patch(img, ids, k, x0, y0, x0 + 2, y1, tint)
        _patch(img, ids, k, x0, cy, x1, cy + 2, tint)
        _patch(img, ids, k, x1 - 2, cy, x1, y1, tint * 0.8)
    elif cat == "shelf":
        _patch(img, ids, k, x0, y0, x1, y1, tint * 0.6)
        for yy in np.linspace(y0, y1 - 2, 4):
            _patch(img, ids, k, x0, yy, x1, yy + 2, tint)
    elif cat == "lamp":
        _patch(img, ids, k, cx - 1, cy, cx + 1, y1, (120, 120, 120))
        shade = (255, 245, 140) if st.get("lit") else tint * 0.5
        _patch(img, ids, k, x0, y0, x1, cy, shade, lambda xx, yy: np.abs(xx - cx) <= (yy - y0) * 0.5 + 1)
    elif cat == "tv":
        _patch(img, ids, k, x0, y0, x1, y1, tint)
        screen = (120, 200, 255) if st.get("screen_on") else (15, 15, 20)
        _patch(img, ids, k, x0 + 1, y0 + 1, x1 - 1, y1 - 2, screen)
    elif cat == "plant":
        _patch(img, ids, k, cx - 2.5, cy + 2, cx + 2.5, y1, (150, 80, 40))
        _patch(img, ids, k, x0, y0, x1, cy + 2, tint, ell)
    else:  # pragma: no cover - CATEGORIES is closed
        raise AssertionError(cat)


def _states_of(scene: _Scene, t: int, i: int) -> dict[str, bool]:
    return {p: bool(scene.states[p][t, i]) for p, c in STATES.items() if c == scene.cats[i]}


def _sitting(scene: _Scene, t: int, i: int) -> bool:
    return scene.cats[i] == "person" and bool(scene.states["sitting"][t, i])


def _draw_cue(img, ids, k, box, side: float, color, size: float):
    """A ``size`` square patch at the vertical middle of ``box`` on its ``side`` (-1 left, +1 right)."""
    x0, y0, x1, y1 = box
    cy = (y0 + y1) / 2
    x = x1 - size if side > 0 else x0
    _patch(img, ids, k, x, cy - size / 2, x + size, cy + size / 2, color)


def _render(rng, scene: _Scene, boxes: np.ndarray):
    """Frames [T, H, W, 3] uint8 and the visible fraction of every track [T, n]."""
    T, n, size, cats = scene.T, scene.n, scene.size, scene.cats
    base = rng.uniform(25, 70, 3)
    tint = [np.clip(np.array(_COLOR[c], float) + rng.uniform(-20, 20, 3), 0, 255) for c in cats]
    frames = rng.standard_normal((T, size, size, 1), dtype=np.float32) * 6 + base.astype(np.float32)
    visible = np.zeros((T, n))
    for t in range(T):
        img = frames[t]
        ids = -np.ones((size, size), int)
        held_by = {a[1]: i for i, a in enumerate(scene.action[t]) if a is not None and a[0] in ("holding", "throwing")}
        inside = {i: s[1] for i, s in enumerate(scene.support[t]) if s is not None and s[0] == "inside"}
        order = sorted(range(n), key=lambda i: scene.depth[held_by[i]] + 0.5 if i in held_by else scene.depth[i])
        owned = np.ones(n)
        for i in order:
            if i in inside:
                continue  # drawn with its container
            _draw(img, ids, i, cats[i], scene.pos[t, i], tint[i], _states_of(scene, t, i),
                  float(scene.facing[t, i]), _sitting(scene, t, i))
            owned[i] = max((ids == i).sum(), 1)
            if cats[i] in CONTAINERS:
                for j, c in inside.items():
                    if c == i:  # draw the thing inside now, then the front wall over its lower part
                        _draw(img, ids, j, cats[j], scene.pos[t, j], tint[j], _states_of(scene, t, j), 1.0, False)
                        owned[j] = max((ids == j).sum(), 1)
                        x0, y0, x1, y1 = boxes[t, i]
                        _patch(img, ids, i, x0, (y0 + y1) / 2 - 1, x1, y1, tint[i] * 0.85)
        for i in order:  # cues go on top: they are what the crops must show
            act = scene.action[t][i]
            if act is None:
                continue
            r, o = act
            side = 1.0 if scene.pos[t, o, 0] >= scene.pos[t, i, 0] else -1.0
            color = np.array(ACTION_COLOR[r], float)
            if r == "talking_to":
                x0, y0, x1, y1 = boxes[t, i]
                mx = x1 - 2 if side > 0 else x0 + 1
                _patch(img, ids, i, mx, y0 + 2, mx + 1, y0 + 3, color)
                continue
            _draw_cue(img, ids, i, boxes[t, i], side, color, 3.0)
            if r != "pointing_at":
                _draw_cue(img, ids, o, boxes[t, o], -side, color, 2.0)
        counts = np.bincount(ids[ids >= 0].ravel(), minlength=n)
        b = boxes[t]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        inframe = (b[:, [2, 3]].clip(0, size) - b[:, [0, 1]].clip(0, size)).clip(0).prod(-1)
        # not hidden by nearer things (of what it painted) x inside the frame (of its box)
        visible[t] = np.minimum(counts / owned, 1.0) * inframe / area
    return np.clip(frames, 0, 255).astype(np.uint8), np.clip(visible, 0, 1)


# ---------------------------------------------------------------------------------------------- captions


def _describe(rng, cats, unary, binary):
    """Pick 1-3 events in order, each 1-2 salient facts true at one frame; caption text and spec body."""
    T, n, _ = unary.shape
    slots = _hint_frames(T)
    names = [h for h in ("early", "middle", "late") if slots[h]]
    e = min(int(rng.choice([1, 2, 3], p=[0.25, 0.4, 0.35])), len(names))
    hints = [names[i] for i in sorted(rng.choice(len(names), size=e, replace=False))]
    changes_u = unary.any(axis=0) & ~unary.all(axis=0)
    changes_b = binary.any(axis=0) & ~binary.all(axis=0)
    used: list[int] = []
    events: list[tuple[str, int, list[tuple]]] = []
    for hint in hints:
        t = int(rng.choice(slots[hint]))
        cands, weights = [], []
        for i in range(n):
            for p in np.flatnonzero(unary[t, i]):
                cands.append((UNARY[p], i))
                weights.append(_SALIENCE[UNARY[p]] * (2.0 if changes_u[i, p] else 1.0))
            for j in range(n):
                for r in np.flatnonzero(binary[t, i, j]):
                    cands.append((BINARY[r], i, j))
                    weights.append(_SALIENCE[BINARY[r]] * (1.5 if changes_b[i, j, r] else 1.0))
        atoms = choose_atoms(rng, cands, weights, used, 0.4)
        if atoms:
            events.append((hint, t, atoms))
    caption, body = caption_and_spec(events, used, cats, _UNARY_TEXT, _BINARY_TEXT)
    return caption, body, [{"frame": t, "hint": h} for h, t, _ in events]


# ---------------------------------------------------------------------------------------------- api


def generate_video(seed: int, index: int, *, num_frames: int = 24, image_size: int = 96, min_objects: int = 4,
                   max_objects: int = 10) -> SyntheticVideo:
    """Video ``index`` of the playroom world with ``seed`` (independent of how many videos are generated)."""
    if min_objects < 2 or max_objects < min_objects:
        raise ValueError(f"playroom needs 2 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    if num_frames < 3:
        raise ValueError(f"playroom needs at least 3 frames, got {num_frames}")
    rng = np.random.default_rng([seed, index, 0x9A7])
    n = int(rng.integers(min_objects, max_objects + 1))
    cats = _pick_categories(rng, n)
    scene = _Sim(rng, num_frames, image_size, cats).run()
    boxes = _boxes(scene)
    frames, visible = _render(rng, scene, boxes)
    present = visible >= VISIBLE
    clipped = boxes.copy()
    clipped[..., [0, 2]] = clipped[..., [0, 2]].clip(0, image_size)
    clipped[..., [1, 3]] = clipped[..., [1, 3]].clip(0, image_size)
    present &= (clipped[..., 2] - clipped[..., 0] >= 1) & (clipped[..., 3] - clipped[..., 1] >= 1)
    unary, binary = _scene_graph(scene, boxes, present)
    keep = present.any(0)  # a track never seen is no track
    cats = [c for c, k in zip(cats, keep) if k]
    present, clipped, unary, binary = present[:, keep], clipped[:, keep], unary[:, keep], binary[:, keep][:, :, keep]
    caption, body, events = _describe(rng, cats, unary, binary)
    vid = f"v{index:05d}"
    spec = f'spec {vid} "{caption}" {{\n  {body}\n}}\n'
    return SyntheticVideo(vid, frames, clipped.astype(np.float32), present, cats, unary, binary, caption, spec,
                          events)
