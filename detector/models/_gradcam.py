"""Grad-CAM (Selvaraju et al., ICCV 2017) of a classifier's fake-logit on its input images.

For a convolutional layer with activations ``A_k`` (default: the model's last ``nn.Conv2d``), the
map is ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of d(fake-logit)/d(A_k). It is
resized to each input image's own height and width (bilinear) and scaled to [0, 1] per image, so
a heatmap overlays the crop it explains pixel for pixel. Reports carry it as a small grayscale
PNG (:func:`heatmap_png_base64`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from detector.errors import ModelError
from detector.faces.extract import FaceResult
from detector.models.base import Classifier
from detector.report.schema import Heatmap


def last_conv(module: nn.Module) -> nn.Conv2d:
    """The last ``nn.Conv2d`` in ``module`` (registration order); ModelError when there is none."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ModelError(f"{type(module).__name__} has no Conv2d layer for Grad-CAM")
    return convs[-1]


def grad_cam(
    classifier: Classifier, images: Sequence[np.ndarray], layer: nn.Module | None = None
) -> list[np.ndarray]:
    """One float32 map in [0, 1] per image, shaped like that image (H, W); zeros where no evidence.

    Runs on ``classifier.explainer()`` (the trained module where the classifier runs a folded copy).
    """
    if not images:
        return []
    classifier = classifier.explainer()
    target = layer or last_conv(classifier.module)
    saved: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        saved["activation"] = output
        output.register_hook(lambda grad: saved.__setitem__("gradient", grad))

    handle = target.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            batch = classifier.preprocess(images).requires_grad_(True)
            logits = classifier.forward(batch)
            classifier.module.zero_grad(set_to_none=True)
            logits.sum().backward()  # images are independent: each map sees only its own logit
    finally:
        handle.remove()
    activation, gradient = saved["activation"].detach(), saved["gradient"].detach()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cams = torch.relu((weights * activation).sum(dim=1)).cpu().numpy().astype(np.float32)
    return [_fit(cam, image.shape[:2]) for cam, image in zip(cams, images, strict=True)]


def _fit(cam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    height, width = int(shape[0]), int(shape[1])
    resized = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    peak = float(resized.max())
    if peak <= 0.0 or not np.isfinite(peak):
        return np.zeros((height, width), dtype=np.float32)
    return np.clip(resized / peak, 0.0, 1.0).astype(np.float32)


def heatmap_png(cam: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a [0, 1] map (255 = strongest evidence)."""
    pixels = np.round(np.clip(cam, 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ModelError("could not encode the heatmap as PNG")
    return bytes(encoded.tobytes())


def heatmap_png_base64(cam: np.ndarray) -> str:
    """:func:`heatmap_png` as base64 text for the JSON report."""
    return base64.b64encode(heatmap_png(cam)).decode("ascii")


def top_crop_heatmaps(
    classifier: Classifier,
    faces: FaceResult,
    crops: dict[tuple[int, int], np.ndarray],
    logits: dict[tuple[int, int], float],
    limit: int,
) -> list[Heatmap]:
    """Heatmaps of the strongest crop of each face track, the ``limit`` strongest tracks first.

    ``crops`` and ``logits`` are keyed by (frame index, position of the detection in its frame).
    """
    position = {id(det): (det.frame_index, pos) for dets in faces.per_frame for pos, det in enumerate(dets)}
    best: list[tuple[float, int, tuple[int, int]]] = []
    for track in faces.tracks:
        keys = [position[id(det)] for det in track.detections if position[id(det)] in logits]
        if keys:
            key = max(keys, key=lambda k: logits[k])
            best.append((logits[key], track.track_id, key))
    best.sort(key=lambda row: -row[0])
    chosen = best[:limit]
    cams = grad_cam(classifier, [crops[key] for _, _, key in chosen])
    return [
        Heatmap(
            track_id=track_id,
            frame_index=key[0],
            width=int(cam.shape[1]),
            height=int(cam.shape[0]),
            logit=float(logit),
            png_base64=heatmap_png_base64(cam),
        )
        for (logit, track_id, key), cam in zip(chosen, cams, strict=True)
    ]
