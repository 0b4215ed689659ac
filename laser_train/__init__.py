"""laser_train: learn video scene graphs from caption specs (the LASER method) with stlspec.

The main job is ``python -m laser_train``: it generates a synthetic video world
with hidden scene graphs, trains a small perception model with nothing but the
captions' compiled specs as supervision, evaluates it against the hidden truth
and against baselines, and writes a run directory. See ``docs/training.md``.

Modules: :mod:`~laser_train.config` (typed configuration), :mod:`~laser_train.data`
(synthetic world, dataset format, loading), :mod:`~laser_train.model` (perception
models), :mod:`~laser_train.losses` (spec losses via the stlspec torch backend),
:mod:`~laser_train.train` (the trainer), :mod:`~laser_train.evaluate` (metrics),
:mod:`~laser_train.experiment` (the main job), :mod:`~laser_train.plots`,
:mod:`~laser_train.checkpoint`. Importing the package imports none of them.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
