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

_lock = threading.Lock()
_state: Literal["unchecked", "compiled", "fallback"] = "unchecked"
_fallback_lib: torch.library.Library | None = None


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with torchvision's semantics: indices kept, by descending score.

    Boxes are ``(x1, y1, x2, y2)``; a box is dropped when its IoU with a kept, higher-scoring box
    is strictly greater than ``iou_threshold``.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    device = boxes.device
    b = boxes.detach().to("cpu", torch.float64)
    order = torch.sort(scores.detach().to("cpu"), dim=0, descending=True, stable=True).indices
    b = b[order]
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    ix1 = torch.maximum(x1[:, None], x1[None, :])
    iy1 = torch.maximum(y1[:, None], y1[None, :])
    ix2 = torch.minimum(x2[:, None], x2[None, :])
    iy2 = torch.minimum(y2[:, None], y2[None, :])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    iou = (inter / (areas[:, None] + areas[None, :] - inter)).numpy()
    over = iou > iou_threshold
    n = over.shape[0]
    suppressed = [False] * n
    keep: list[int] = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        row = over[i]
        for j in row[i + 1 :].nonzero()[0]:
            suppressed[i + 1 + int(j)] = True
    return order[torch.tensor(keep, dtype=torch.long)].to(device)


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
