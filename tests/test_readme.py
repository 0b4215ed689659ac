"""The README's commands and Python example, and the examples in `stlspec --help`, run exactly as written.

They run from a scratch directory holding a copy of the repository's ``examples/`` (commands write files such as
``out.scl`` and ``specs.stl``), with the installed ``stlspec`` command. ``from-captions`` talks to the local fake
Messages API (``stlspec.llm.fakeapi``) through the standard ``ANTHROPIC_BASE_URL`` variable, replaying the answers
in ``tests/fixtures/llm/readme_answers.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
KEY = "sk-ant-test-readme"


def _blocks(lang: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```", README, re.S | re.M)]


def readme_commands() -> list[str]:
    return [line[2:] for block in _blocks("console") for line in block.splitlines() if line.startswith("$ ")]


def help_commands() -> list[str]:
    from stlspec.cli import EPILOG

    return [re.split(r"\s{3,}", line.strip())[0] for line in EPILOG.splitlines() if line.startswith("  stlspec ")]


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["STLSPEC_CACHE"] = str(tmp_path / "cache.sqlite")
    env.update(extra)
    return env


def test_readme_has_the_documented_commands():
    cmds = readme_commands()
    assert {c.split()[1] for c in cmds} >= {"check", "fmt", "eval", "compile", "from-captions"}


@pytest.mark.parametrize("command", [c for c in readme_commands() if "from-captions" not in c] + help_commands())
def test_command_runs_as_written(workdir, command):
    if shutil.which("stlspec", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the stlspec command is not installed (pip install -e .)")
    proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=_env(workdir), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    if " -o out.scl" in command:
        assert (workdir / "out.scl").read_text(encoding="utf-8").strip()


def test_from_captions_as_written(workdir):
    pytest.importorskip("anthropic")
    if shutil.which("stlspec", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the stlspec command is not installed (pip install -e .)")
    from stlspec.llm.fakeapi import FakeMessagesAPI

    import stlspec

    (command,) = [c for c in readme_commands() if "from-captions" in c]
    script = json.loads((REPO / "tests" / "fixtures" / "llm" / "readme_answers.json").read_text(encoding="utf-8"))
    with FakeMessagesAPI(script, api_key=KEY) as api:
        env = _env(workdir, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=api.base_url)
        proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    core = stlspec.compile_file(str(workdir / "specs.stl"))
    assert len(core.specs) == 3
    assert (workdir / "specs.report.jsonl").is_file()


def test_python_example_as_written(workdir):
    pytest.importorskip("torch")
    (code,) = _blocks("python")
    proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=300,
                          env=_env(workdir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tensor([1., 0.])"), proc.stdout
