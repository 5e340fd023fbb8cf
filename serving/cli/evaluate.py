"""``trueframe evaluate``: the metrics of a registered model on labelled media (see scripts/evaluate.py)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    from scripts.evaluate import add_arguments

    p = sub.add_parser("evaluate", help="AUC, EER, calibration of a model on a labelled folder or CSV")
    add_arguments(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation; typed errors propagate to the CLI's error handler."""
    from scripts.evaluate import run

    return run(args)
