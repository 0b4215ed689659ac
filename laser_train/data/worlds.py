"""The synthetic worlds ``python -m laser_train`` can generate, by name (``data.world``).

========== ======================================= ==================================================
``toy``    :mod:`laser_train.data.synthetic`       6 categories, 7 unary / 6 binary predicates, 3-4
                                                   objects, 12 frames (fast; the tests' world)
``playroom`` :mod:`laser_train.data.playroom`      22 categories, 16 unary / 22 binary predicates,
                                                   4-10 tracks, 24 frames, occlusion, interactions
========== ======================================= ==================================================

A world module provides ``CATEGORIES``, ``UNARY``, ``BINARY`` (column orders),
``VOCABULARY_STL``, ``BACKGROUND`` (its background-knowledge rules, a file in
``laser_train/configs``), ``DEFAULTS`` (``num_frames``, ``image_size``,
``min_objects``, ``max_objects``) and ``generate_video(seed, index, **DEFAULTS)``
returning a :class:`laser_train.data.synthetic.SyntheticVideo`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from laser_train.config import ConfigError

__all__ = ["WORLDS", "get_world", "world_settings", "background_path"]

WORLDS = {"toy": "laser_train.data.synthetic", "playroom": "laser_train.data.playroom"}
SIZE_KEYS = ("num_frames", "image_size", "min_objects", "max_objects")


def get_world(name: str) -> ModuleType:
    """The module of world ``name``; a clear error naming the worlds otherwise."""
    if name not in WORLDS:
        raise ConfigError(f"unknown synthetic world {name!r} (data.world): choose one of {', '.join(WORLDS)}")
    return importlib.import_module(WORLDS[name])


def world_settings(name: str, **given: int) -> dict[str, int]:
    """The world's size settings, with every ``given`` value that is not 0 taking precedence."""
    out = dict(get_world(name).DEFAULTS)
    for k in SIZE_KEYS:
        if given.get(k):
            out[k] = int(given[k])
    return out


def background_path(name: str) -> Path:
    """The world's background-knowledge rules (a ``.stl`` file in ``laser_train/configs``)."""
    return Path(__file__).resolve().parent.parent / "configs" / get_world(name).BACKGROUND
