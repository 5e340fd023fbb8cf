"""Greedy non-maximum suppression in plain torch, with torchvision's semantics.

The face detector's NMS (:func:`batched_nms`, per image) and the ``torchvision::nms`` fallback
of :mod:`detector.faces.tvcompat` share :func:`nms_reference`, so detecting faces needs no
torchvision import (see :mod:`detector.faces.mtcnn_nets`).
"""

from __future__ import annotations

import torch

CPU_VANILLA_ELEMENTS = 4000
"""Above this many box coordinates on the CPU (100,000 elsewhere), :func:`batched_nms` suppresses
image by image, below it in one call with the coordinate offset trick: torchvision 0.28's rule,
kept so that the faces found are those torchvision's ``batched_nms`` gave (tested)."""


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


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, index: torch.Tensor, iou: float) -> torch.Tensor:
    """NMS within each ``index`` value (image) only: kept indices by descending score, as
    torchvision's ``batched_nms`` computes them over :func:`nms_reference`."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if boxes.numel() > (CPU_VANILLA_ELEMENTS if boxes.device.type == "cpu" else 100_000):
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for value in torch.unique(index):
            mine = torch.where(index == value)[0]
            keep_mask[mine[nms_reference(boxes[mine], scores[mine], iou)]] = True
        kept = torch.where(keep_mask)[0]
        return kept[scores[kept].sort(descending=True)[1]]
    offsets = index.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms_reference(boxes + offsets[:, None], scores, iou)
