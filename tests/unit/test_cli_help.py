"""Every ``trueframe`` command's ``--help`` gives each option's default (the README says so; a
walkthrough found ``--baseline``, ``--cache`` and others without one)."""

from __future__ import annotations

import argparse

from serving.cli import build_parser


def test_every_option_with_a_default_says_it_in_its_help() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, command in subcommands.choices.items():
        text = command.format_help()
        for action in command._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
                continue
            if action.help in (None, argparse.SUPPRESS):
                continue
            rendered = action.help % {**vars(action), "prog": command.prog}
            assert "default" in rendered, (name, action.option_strings)
            assert rendered.split()[0] in text
            checked += 1
    assert checked >= 15
    evaluate = subcommands.choices["evaluate"].format_help()
    assert "(default: meso4.df)" in evaluate
