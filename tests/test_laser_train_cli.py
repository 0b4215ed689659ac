"""`python -m laser_train` command line: every subcommand has its own, specific, readable --help."""

from __future__ import annotations

import pytest

from laser_train.__main__ import COMMANDS, build_parser, main


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_without_markup(capsys):
    out = _help(capsys, "--help")
    for name, cmd in COMMANDS.items():
        assert name in out
    assert "``" not in out and ":mod:" not in out and ":func:" not in out  # no raw reST
    assert "python -m laser_train" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_its_own_help(capsys, name):
    out = _help(capsys, name, "--help")
    assert out.startswith(f"usage: python -m laser_train {name}")
    # the command's own description, not the top-level overview
    first_words = " ".join(COMMANDS[name].description.split()[:4])
    assert first_words in " ".join(out.split())
    assert "With no command, runs the main job" not in out
    assert "``" not in out


def test_descriptions_are_distinct():
    descriptions = [c.description for c in COMMANDS.values()]
    assert len(set(descriptions)) == len(descriptions)


def test_no_command_means_run():
    args = build_parser().parse_args(["run"])
    assert args.command == "run"


def test_eval_without_checkpoint_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval"])
    assert exc.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err
