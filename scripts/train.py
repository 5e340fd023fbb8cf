"""Train a detector from a YAML config: ``python -m scripts.train --config CFG --out RUN_DIR``.

Seeded and resumable (``--resume``); ``--finish`` exports the best epoch of a stopped run; the loop
is :func:`datasets.trainer.run`, the data :mod:`datasets.tasks`. Configs: ``scripts/configs/*.yaml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from datasets.trainer import finalize, load_config, run
from detector.errors import TrueframeError
from detector.evaluation.checks import count


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    from detector.runtime import select_device

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, log, weights)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument(
        "--finish", action="store_true", help="export the best epoch of a stopped run (no training)"
    )
    parser.add_argument("--max-steps", type=count, default=None, help="cap steps per epoch (smoke runs)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    try:
        if args.finish:
            result = finalize(config, args.out)
        else:
            device = select_device(args.device, "--device")
            result = run(config, args.out, resume=args.resume, device=device, max_steps=args.max_steps)
    except TrueframeError as exc:  # an unknown model or device: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(
        json.dumps({"file": str(result.file), "sha256": result.sha256, "metrics": result.metrics}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
