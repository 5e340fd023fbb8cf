"""Every ``trueframe`` command's ``--help`` gives each option's default (the README says so; a
walkthrough found ``--baseline``, ``--cache`` and others without one, then options without help
text (``audit --out``, ``calibrate --manifest``) and nested actions (``keys create --role``))."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from serving.cli import build_parser


def _commands(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every sub-command and nested action (``weights fetch``, ``keys create``) under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, command in action.choices.items():
                yield f"{name} {sub_name}", command
                yield from _commands(command, f"{name} {sub_name}")


def test_every_option_of_every_command_has_help_and_says_its_default() -> None:
    checked = 0
    for name, command in _commands(build_parser(), "trueframe"):
        text = command.format_help()
        for action in command._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            assert action.help not in (None, argparse.SUPPRESS, ""), (name, action.option_strings)
            if action.default in (None, False, argparse.SUPPRESS):
                continue
            rendered = action.help % {**vars(action), "prog": command.prog}
            assert "default" in rendered, (name, action.option_strings)
            assert rendered.split()[0] in text
            checked += 1
    assert checked >= 20
    commands = {name: " ".join(c.format_help().split()) for name, c in _commands(build_parser(), "trueframe")}
    assert "(default: meso4.df)" in commands["trueframe evaluate"]
    assert "(default: runs/dev-eval with --suite dev, none with --model)" in commands["trueframe evaluate"]
    assert "(default: runs/audit)" in commands["trueframe audit"]
    assert "(default: submitter)" in commands["trueframe keys create"]
    assert "(default 60)" in commands["trueframe weights fetch"]
