"""``trueframe audit``: false-positive rate of each verdict band on held-out real faces, per group."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detector.evaluation.checks import count, writable_dir

STAGED_UTKFACE = Path("runs") / "staged" / "utkface" / "data" / "images"
"""Where ``python -m datasets.staging stage --only utkface`` puts the photos."""


def register(sub: Any) -> None:
    """Add the ``audit`` sub-command."""
    p = sub.add_parser(
        "audit",
        help="bias audit: FPR of each verdict band on held-out real UTKFace faces per age, gender, race",
    )
    p.add_argument(
        "--utkface", type=Path, default=STAGED_UTKFACE,
        help="staged UTKFace photos (python -m datasets.staging stage --only utkface)",
    )  # fmt: skip
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"), help="stage-output cache")
    p.add_argument("--out", type=Path, default=Path("runs/audit"), help="folder for audit.json and audit.md")
    p.add_argument("--limit", type=count, default=None, help="an evenly spaced subset of N held-out faces")
    p.set_defaults(func=run_audit_command)


def run_audit_command(args: argparse.Namespace) -> int:
    """Run the audit and print its tables."""
    from detector.evaluation.audit import render_audit, run_audit
    from detector.settings import get_settings

    writable_dir(args.out, "--out")
    writable_dir(args.cache, "--cache")
    result = run_audit(get_settings(), args.utkface, args.cache, args.out, args.limit)
    print(render_audit(result))
    print(f"written: {args.out}/audit.json, {args.out}/audit.md")
    return 0
