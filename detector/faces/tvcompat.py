"""Make ``import torchvision`` work with the CPU build of torch.

PyPI's torchvision 0.28.0 is a CUDA build. Next to the CPU torch its compiled ops (``_C.so``) do
not load, and ``import torchvision`` then fails in ``_meta_registrations`` with "operator
torchvision::nms does not exist". :func:`ensure_torchvision` first tries to load the compiled
library; only when that fails does it define ``torchvision::nms`` (and its quantized twin
``qnms``) with a pure-torch greedy NMS and tell ``torchvision.extension`` that ops are present
(other compiled ops such as ``roi_align`` stay missing and fail loudly if called). Every module
that imports torchvision or facenet-pytorch calls it first, so Ray workers get it too. Where the
compiled ops load it changes nothing.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Literal

import torch

from detector.faces.nms import nms_reference

_lock = threading.Lock()
_state: Literal["unchecked", "compiled", "fallback"] = "unchecked"
_fallback_lib: torch.library.Library | None = None


def _nms_impl(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return nms_reference(dets, scores, iou_threshold)


def _qnms_impl(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return nms_reference(dets.dequantize(), scores.dequantize(), iou_threshold)


def _torchvision_dir() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _op_exists(name: str) -> bool:
    return hasattr(torch.ops.torchvision, name)


def _try_load_compiled() -> bool:
    if _op_exists("nms"):
        return True
    tv_dir = _torchvision_dir()
    if tv_dir is None:
        return False
    for lib in sorted(tv_dir.glob("_C*.so")) + sorted(tv_dir.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
        except OSError:
            return False
        return _op_exists("nms")
    return False


def ensure_torchvision() -> Literal["compiled", "fallback"]:
    """Make ``torchvision::nms`` exist before torchvision is imported; idempotent, thread-safe.

    Returns ``"compiled"`` when torchvision's own ops are in place (nothing was changed) and
    ``"fallback"`` when the pure-torch NMS was registered.
    """
    global _state, _fallback_lib
    with _lock:
        if _state != "unchecked":
            return _state
        if _try_load_compiled():
            _state = "compiled"
            return _state
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", _nms_impl, "CompositeExplicitAutograd")
        lib.impl("qnms", _qnms_impl, "CompositeExplicitAutograd")
        _fallback_lib = lib
        _mark_ops_available()
        _state = "fallback"
        return _state


def _mark_ops_available() -> None:
    """Let ``torchvision.ops.nms`` call our op: it refuses when the compiled library is missing."""
    import torchvision.extension as tv_extension

    def _has_nms() -> bool:
        return _op_exists("nms")

    tv_extension._has_ops = _has_nms
