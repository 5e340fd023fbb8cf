"""The options of the one-model evaluation (``trueframe evaluate --model``), kept apart from it.

Building the command line's parser imports every sub-command's options; this module imports only
the dataset readers, so ``trueframe --help``, ``trueframe scan`` and the rest do not pay for torch,
scikit-learn and OpenCV, which :mod:`detector.evaluation.models` needs only to run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from datasets.readers import Sample, read_celebdf, read_dfdc, read_faceforensics

LAYOUTS: dict[str, Callable[[Path], list[Sample]]] = {
    "ffpp": read_faceforensics,
    "celebdf": read_celebdf,
    "dfdc": read_dfdc,
}


def device_name(text: str) -> str:
    """An ``argparse`` type: a device of :data:`detector.settings.DEVICE_FORM` (``mps`` or ``meta``
    failed with a traceback deep in a model)."""
    from detector.settings import DEVICE_CHOICES, DEVICE_FORM

    if not DEVICE_FORM.fullmatch(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {DEVICE_CHOICES}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The one-model options of ``trueframe evaluate`` and ``python -m detector.evaluation.models``."""
    parser.add_argument("--model", help="registered model name, e.g. meso4.df")
    parser.add_argument("--data", type=Path, help="folder with real/ and fake/ (or a --layout tree)")
    parser.add_argument("--csv", type=Path, help="CSV with path,label[,group] rows")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="dataset layout of --data")
    parser.add_argument("--fake-dir", default="fake", help="name of the fake sub-folder (default fake)")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per video (default 16)")
    parser.add_argument("--whole-image", action="store_true", help="face model: images are face crops")
    parser.add_argument("--out", type=Path, help="folder for metrics.json, scores.csv and PNGs")
    parser.add_argument("--weights-dir", type=Path, help="folder of imported weights")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda[:N]")
