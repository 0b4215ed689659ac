"""Hypothesis example counts that grow under CI's profile (see ``tests/conftest.py``).

``@settings(max_examples=examples(60))`` runs 60 examples locally and
``60 * CI_FACTOR`` when ``HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``).
"""

from __future__ import annotations

import os

#: The active profile's name: ``dev`` (local, the default) or ``ci``.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
if PROFILE not in ("dev", "ci"):
    raise RuntimeError(f"HYPOTHESIS_PROFILE must be 'dev' or 'ci', not {PROFILE!r}")

#: How many times more examples the CI profile runs.
CI_FACTOR = 3


def examples(n: int) -> int:
    """``n`` locally, ``n * CI_FACTOR`` under the CI profile."""
    return n * CI_FACTOR if PROFILE == "ci" else n
