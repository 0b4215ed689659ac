"""keep_freed_memory: large tensors reuse freed memory instead of being page-faulted in afresh."""

import subprocess
import sys

import pytest

# Five steps of three 64 MB tensors each (above any mmap threshold), after one warm-up step; the minor page
# faults of those five steps are printed.
SCRIPT = """
import resource, sys, torch
from stlspec.backends.torch.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def step():
    x = torch.ones(16 << 20)
    y = x + 1
    return float((y * 2)[0])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_large_tensors_are_not_faulted_in_afresh_every_step():
    kept, faults = _faults("keep")
    if not kept:
        pytest.skip("the C library is not glibc")
    _, default = _faults("system")
    pages = 5 * 3 * (64 << 20) // 4096
    assert default > pages // 2  # glibc's default: each tensor a fresh mmap, its pages faulted in again
    assert faults < default // 3  # kept: freed blocks are reused (measured: at most a fifth)


def test_returns_false_where_it_cannot_apply(monkeypatch):
    from stlspec.backends.torch import memory

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False
