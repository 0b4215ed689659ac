"""Shared test configuration: Hypothesis profiles and the ``slow`` marker.

Profiles (chosen by ``HYPOTHESIS_PROFILE``, default ``dev``):

``dev``
    A local run: each property test's own ``max_examples``.
``ci``
    What ``.ci/run`` selects: every property test runs :data:`hyp.CI_FACTOR`
    times as many examples (tests spell their count as ``examples(n)``; see
    ``tests/hyp.py``), and the default for tests that name none is larger too.

``slow`` tests are deselected by ``addopts`` (``-m "not slow"``) and run by CI
with ``-m slow`` in a second pytest call.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

import hyp

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", max_examples=100 * hyp.CI_FACTOR, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(hyp.PROFILE)
