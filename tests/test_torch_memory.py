"""keep_freed_memory: large tensors reuse freed memory instead of being page-faulted in afresh."""

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys, torch
from stlspec.backends.torch.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
x = torch.ones(16 << 20)            # 64 MB, above any mmap threshold
del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
y = torch.ones(16 << 20)            # the same size again
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_reallocated_large_tensor_is_not_faulted_in_again():
    kept, faults = _faults("keep")
    if not kept:
        pytest.skip("the C library is not glibc")
    _, default = _faults("system")
    pages = (64 << 20) // 4096
    assert default > pages // 2  # glibc's default: a fresh mmap, every page faulted in again
    assert faults < pages // 20  # kept: the freed block is reused


def test_returns_false_where_it_cannot_apply(monkeypatch):
    from stlspec.backends.torch import memory

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False
