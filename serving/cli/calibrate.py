"""``trueframe calibrate``: fit per-model calibration and the fusion stack (see scripts/calibrate.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``calibrate`` sub-command."""
    from scripts.calibrate import add_arguments

    p = sub.add_parser(
        "calibrate",
        help="fit calibration and fusion on the labelled calibration sets; writes weights/",
        description="Fit per-model calibration (manifest) and the fusion stack (weights/fusion.toml) "
        "on half of the calibration data; measure ECE on the other half.",
    )
    add_arguments(p)
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    """Run the calibration and print its summary (ECE before/after, thresholds) as JSON."""
    from scripts.calibrate import run

    summary = run(args)
    print(json.dumps(summary, indent=2))
    return 0
