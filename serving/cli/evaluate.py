"""``trueframe evaluate``: one model on labelled media, or the whole service on the dev suite.

``--suite dev`` scores the shipped defaults end to end on the development sets (see
:mod:`detector.evaluation.suite`); ``--model NAME --data DIR`` scores one raw model
(:mod:`detector.evaluation.models`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detector.errors import InvalidRequest
from detector.evaluation.checks import choices, count, writable_dir

SHARED = Path("..") / "shared" / "data"


def register(sub: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    from detector.evaluation.dev_set import VARIANTS
    from detector.evaluation.model_args import add_arguments

    p = sub.add_parser(
        "evaluate",
        help="the dev suite end to end (--suite dev), or one model's AUC/EER/calibration on labelled media",
    )
    add_arguments(p)
    out = next(a for a in p._actions if a.dest == "out")
    out.help = f"{out.help} (default: runs/dev-eval with --suite dev, none with --model)"
    p.add_argument("--suite", choices=["dev"], help="score the shipped defaults end to end on the dev sets")
    p.add_argument("--dev-dir", type=Path, default=SHARED / "dev", help="the dev set (INDEX.tsv)")
    p.add_argument("--ffpp-dir", type=Path, default=SHARED / "deepfake" / "ffpp_c23", help="the FF++ pair")
    p.add_argument(
        "--variants",
        default="original,matched",
        help=f"{', '.join(VARIANTS[:-1])} and/or {VARIANTS[-1]} (comma-separated)",
    )
    p.add_argument(
        "--halves", default="report", help="report and/or calibrate (comma-separated: report,calibrate)"
    )
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"), help="stage-output cache")
    p.add_argument("--baseline", default="meso4.df", help="comparison model ('' for none)")
    p.add_argument(
        "--limit",
        type=count,
        default=None,
        help="N items of each set (dev index, face stills), evenly spread (smoke runs)",
    )
    p.add_argument(
        "--real-faces",
        type=Path,
        default=None,
        help="staged UTKFace photos for the face-stills rows (default: runs/staged/utkface/data/images "
        "when staged; '' for none)",
    )
    p.add_argument(
        "--face-photos",
        type=Path,
        default=SHARED / "faces",
        help="real face photos no model trained on, for the face-stills rows ('' for none)",
    )
    p.set_defaults(func=run_evaluate)


def _real_faces(given: Path | None) -> Path | None:
    """The held-out face folder: as given ('' = none), else the staged UTKFace folder if present."""
    from serving.cli.audit import STAGED_UTKFACE

    if given is not None:
        return given if str(given) not in ("", ".") else None
    if STAGED_UTKFACE.is_dir():
        return STAGED_UTKFACE
    print(f"face stills vs held-out real faces: skipped (nothing staged at {STAGED_UTKFACE})")
    return None


def _face_photos(given: Path) -> Path | None:
    """The real face photos no model trained on ('' = none); a missing folder is skipped, saying so."""
    if str(given) in ("", "."):
        return None
    if given.is_dir():
        return given
    print(f"face stills vs real face photos: skipped (no folder at {given})")
    return None


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the chosen evaluation; typed errors propagate to the CLI's error handler."""
    if args.suite is None:
        if args.model is None:
            raise InvalidRequest("give --suite dev, or --model NAME with --data DIR or --csv FILE")
        from detector.evaluation.models import run

        return run(args)
    from detector.evaluation.dev_set import VARIANTS
    from detector.evaluation.runner import SuiteConfig, render, run_dev_suite
    from detector.settings import get_settings

    variants = choices(args.variants, VARIANTS, "--variants")
    halves = choices(args.halves, ("report", "calibrate"), "--halves")
    if not (args.dev_dir / "INDEX.tsv").is_file():
        raise InvalidRequest(f"no dev set at {args.dev_dir} (INDEX.tsv missing)")
    out = writable_dir(args.out or Path("runs/dev-eval"), "--out")
    writable_dir(args.cache, "--cache")
    config = SuiteConfig(
        args.dev_dir,
        args.ffpp_dir,
        out,
        args.cache,
        variants,
        halves,
        args.baseline or None,
        args.limit,
        _real_faces(args.real_faces),
        _face_photos(args.face_photos),
    )
    results = run_dev_suite(get_settings(), config)
    print(render(results))
    print(f"written: {out}/metrics.json, {out}/report.md and the ROC / reliability PNGs")
    return 0
