"""``trueframe calibrate``: fit calibration, fusion and verdict bands on the dev set's calibrate half."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from detector.errors import InvalidRequest
from detector.evaluation.checks import choices, count, writable_dir

SHARED = Path("..") / "shared" / "data"


def register(sub: Any) -> None:
    """Add the ``calibrate`` sub-command."""
    from detector.evaluation.dev_set import CALIBRATION_VARIANTS

    p = sub.add_parser(
        "calibrate",
        help="fit per-model calibration, fusion and verdict bands on real fakes (dev calibrate half)",
        description="Fit Platt calibration of each configured model, the fusion stack and the verdict "
        "bands on the calibrate half of the dev set; write weights/manifest.toml and weights/fusion.toml. "
        "`trueframe evaluate --suite dev` then reports on the other half.",
    )
    p.add_argument("--dev-dir", type=Path, default=SHARED / "dev", help="the dev set (INDEX.tsv)")
    p.add_argument("--ffpp-dir", type=Path, default=SHARED / "deepfake" / "ffpp_c23", help="the FF++ pair")
    p.add_argument(
        "--variants",
        default=",".join(CALIBRATION_VARIANTS),
        help="variants to fit on (comma-separated; degraded copies fit only the degraded sections)",
    )
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"), help="stage-output cache")
    p.add_argument(
        "--manifest", type=Path, default=Path("weights/manifest.toml"),
        help="weights manifest the calibration is written into",
    )  # fmt: skip
    p.add_argument(
        "--fusion", type=Path, default=Path("weights/fusion.toml"), help="fusion parameters written here"
    )
    p.add_argument(
        "--limit", type=count, default=None, help="N calibrate-half items, evenly spread (smoke runs)"
    )
    p.add_argument("--dry-run", action="store_true", help="fit and print; write nothing into weights/")
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    """Fit and (unless --dry-run) write; print the fitted tables as JSON."""
    from detector.evaluation.calibrate import calibrate
    from detector.evaluation.dev_set import CALIBRATION_VARIANTS
    from detector.evaluation.runner import SuiteConfig
    from detector.settings import get_settings

    variants = choices(args.variants, CALIBRATION_VARIANTS, "--variants")  # upscaled was let through
    if not (args.dev_dir / "INDEX.tsv").is_file():
        raise InvalidRequest(f"no dev set at {args.dev_dir} (INDEX.tsv missing)")
    writable_dir(args.cache, "--cache")
    if not args.dry_run:
        for target in (args.manifest, args.fusion):
            writable_dir(target.parent, f"the folder of {target}")
    config = SuiteConfig(
        args.dev_dir, args.ffpp_dir, Path("runs/calibration"), args.cache, variants, limit=args.limit
    )
    summary = calibrate(get_settings(), config, args.manifest, args.fusion, args.dry_run)
    print(json.dumps(summary, indent=2))
    return 0
