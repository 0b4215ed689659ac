"""Whether real Scallop is available to the tests, and the marks that depend on it.

``scallopy`` (Scallop's Python binding) and ``scli`` (its interpreter) are not on
the package index; CI installs a build from ``../shared/scallop`` when present
and then sets ``STLSPEC_REQUIRE_SCALLOPY=1`` (see ``.ci/run``), which turns
every "scallopy is not installed" skip into a failure: under CI the Scallop
tests must run. ``STLSPEC_SCLI`` names the ``scli`` binary (else ``scli`` on
``PATH``, else ``../shared/scallop/scli`` next to the checkout).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("STLSPEC_REQUIRE_SCALLOPY") == "1"


def _have_scallopy() -> bool:
    if importlib.util.find_spec("scallopy") is None:
        return False
    import scallopy

    return hasattr(scallopy, "ScallopContext")  # not the unrelated placeholder on the package index


def _scli() -> str | None:
    env = os.environ.get("STLSPEC_SCLI")
    if env:
        return env
    found = shutil.which("scli")
    if found:
        return found
    shared = REPO.parent / "shared" / "scallop" / "scli"
    return str(shared) if shared.is_file() and os.access(shared, os.X_OK) else None


HAVE_SCALLOPY = _have_scallopy()
SCLI = _scli()

if REQUIRED and not HAVE_SCALLOPY:  # pragma: no cover - a CI set-up error
    raise RuntimeError("STLSPEC_REQUIRE_SCALLOPY=1 but scallopy cannot be imported")

needs_scallopy = pytest.mark.skipif(not HAVE_SCALLOPY, reason="scallopy is not installed (see docs/scallop.md)")
needs_scli = pytest.mark.skipif(SCLI is None, reason="scli is not installed (see docs/scallop.md)")
