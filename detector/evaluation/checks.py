"""Checks the evaluation commands share: counts, lists of names, and output folders tested before any work.

An uncached dev-suite run scores for a quarter of an hour before it writes; a folder that cannot be
created must stop it at the start with a typed error, not with a traceback at the end.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from detector.errors import InvalidRequest

T = TypeVar("T")


def count(text: str) -> int:
    """An ``argparse`` type: a whole number of at least 1 (``--limit 0`` or ``-2`` would silently
    score nothing, or all but the last items)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def writable_dir(path: Path, what: str) -> Path:
    """``path`` as a folder this process can write into, created when missing; else a typed error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidRequest(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidRequest(f"{what} {path} is not writable")
    return path


def evenly_spaced(items: Sequence[T], limit: int | None) -> list[T]:
    """``limit`` items spread evenly over ``items`` (all when None or more): a smoke run's subset
    keeps every class, generator and group a sorted list holds, where its first N may be one class."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def choices(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma-separated list of ``allowed`` names, at least one; else a typed error naming ``option``."""
    given = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in given if v not in allowed]
    if unknown or not given:
        shown = ", ".join(unknown) if unknown else "nothing"
        raise InvalidRequest(f"{option} takes {', '.join(allowed)} (comma-separated), not {shown}")
    return given
