"""The ``trueframe`` command line: one sub-command per module listed in ``COMMAND_MODULES``.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed namespace and returning an exit code. Typed errors become exit code 2 and one
line: ``error: <code>: <message>`` on stderr, or with ``--json`` a JSON line
``{"error": {"code", "message"}}`` on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from detector.errors import TrueframeError, UnknownModel

if TYPE_CHECKING:
    from detector.settings import Settings

COMMAND_MODULES: tuple[str, ...] = (
    "serving.cli.analyze",
    "serving.cli.models",
    "serving.cli.provenance",
    "serving.cli.keys",
    "serving.cli.scan",
    "serving.cli.evaluate",
    "serving.cli.calibrate",
    "serving.cli.audit",
    "serving.cli.serve",
)

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The full parser; sub-command modules are imported here, not at package import."""
    parser = argparse.ArgumentParser(
        prog="trueframe", description="How likely is this image or video authentic, and why."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    for command in sub.choices.values():
        show_defaults(command)
    return parser


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """End each option's help with its default when it has one its text does not already give
    (the README promises every ``--help`` lists them), in nested actions too (``weights fetch``,
    ``keys create``); an option without help text gets the default alone (they were skipped)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                show_defaults(command)
            continue
        quiet = action.default in (None, False, argparse.SUPPRESS) or not action.option_strings
        if quiet or action.help == argparse.SUPPRESS or (action.help and "default" in action.help):
            continue
        action.help = f"{action.help} (default: %(default)s)" if action.help else "default: %(default)s"


def model_name(text: str) -> str:
    """An ``argparse`` type for ``--model``: a name, never empty (``--model ''`` silently meant the
    settings' model)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty model name (leave --model out for the settings' model)")
    return text


def with_face_model(settings: Settings, name: str | None) -> Settings:
    """``settings`` with ``--model NAME`` as the face model (as they are when None); an unknown name
    is ``unknown_model`` naming the option, not the setting it replaces."""
    if name is None:
        return settings
    from detector.models._registry import get_entry

    try:
        get_entry(name)
    except UnknownModel as exc:
        raise UnknownModel(f"--model: {exc.message}") from None
    return settings.model_copy(update={"models": settings.models.model_copy(update={"face_model": name})})


def with_data_dir(settings: Settings, given: Path | None) -> Settings:
    """``settings`` with ``--data-dir`` when given, their data folder made (the store and uploads go
    there); a folder that cannot be made (a regular file, under ``/proc``) is ``invalid_request``
    naming it and ``--data-dir`` or ``TRUEFRAME_DATA_DIR``, not a FileExistsError traceback."""
    from detector.evaluation.checks import writable_dir

    if given is not None:
        settings = settings.model_copy(update={"data_dir": given})
    writable_dir(settings.data_dir.expanduser(), "--data-dir" if given is not None else "TRUEFRAME_DATA_DIR")
    return settings


PILLOW_BOMB_WARNING = r"Image size \(\d+ pixels\) exceeds limit"
"""Pillow's DecompressionBombWarning, for images between its guard and twice it: the loader's own
pixel limit refuses them as ``too_many_pixels`` right after, so the warning only repeats that."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trueframe`` console script."""
    warnings.filterwarnings("ignore", message=PILLOW_BOMB_WARNING)  # once per process, here
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # output still buffered meets a closed reader here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe (a socket, a child process): a bug, not the reader going away
        return EXIT_BROKEN_PIPE
    return code


def _run(args: argparse.Namespace) -> int:
    """The chosen command; typed errors become one line (JSON under ``--json``) and exit code 2."""
    try:
        from detector.settings import check_setting_names

        check_setting_names(os.environ)  # every command, those that read no setting too (`schema`)
        code: int = args.func(args)
    except TrueframeError as exc:
        if getattr(args, "json", False):  # --json promises JSON lines, errors included
            print(json.dumps({"error": exc.to_dict()}))
        else:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


EXIT_BROKEN_PIPE = 141
"""Exit code when whoever reads stdout closed it (``trueframe ... | head``): 128 + SIGPIPE, as a
shell tool killed by the signal reports."""


def _stdout_closed() -> bool:
    """Whether stdout's reader went away; if so stdout is pointed at /dev/null, so the interpreter's
    own flush at exit does not print a second BrokenPipeError."""
    import select

    fd = sys.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if not any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
        return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return True
