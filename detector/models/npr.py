"""Synthetic-image classifier: an NPR front end over native-resolution patches, one score per image.

Up-sampling layers in generators (transposed convolutions, nearest or bilinear up-sampling followed
by convolutions) correlate neighbouring pixels inside each 2x2 cell. Following NPR (Tan et al.,
CVPR 2024) the network first computes the *neighbouring pixel relationship* residual
``x - up_nearest(x[::2, ::2])`` and a compact CNN classifies that residual. Resizing would erase
the traces, so the classifier never resizes: it tiles each image into up to ``max_patches`` square
patches of ``input.size`` pixels on a grid aligned to multiples of 8 (the usual generator stride)
and the image's logit is the mean of its patch logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional

from detector.models._registry import register_model
from detector.models.base import Classifier
from detector.models.spec import check_image

GRID_ALIGN = 8


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """``x`` minus its 2x nearest-neighbour down/up-sampled copy (H and W must be even)."""
    return x - functional.interpolate(x[:, :, ::2, ::2], scale_factor=2.0, mode="nearest")


class NPRNet(nn.Module):
    """(N, 3, P, P) patches in [0, 1] -> (N, 1) synthetic logits."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 48, 64), gain: float = 4.0) -> None:
        super().__init__()
        self.gain = gain
        layers: list[nn.Module] = []
        cin = 3
        for width in widths:
            layers += [
                nn.Conv2d(cin, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(npr_residual(x) * self.gain))
        return out


def patch_grid(height: int, width: int, patch: int, max_patches: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of up to ``max_patches`` patches spread over the image, 8-aligned."""

    def starts(extent: int, count: int) -> list[int]:
        if extent <= patch:
            return [0]
        last = (extent - patch) // GRID_ALIGN * GRID_ALIGN
        raw = np.linspace(0, last, count)
        return sorted({int(v) // GRID_ALIGN * GRID_ALIGN for v in raw})

    per_side = max(1, int(np.sqrt(max_patches)))
    return [(y, x) for y in starts(height, per_side) for x in starts(width, per_side)][:max_patches]


def image_patches(image: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """(K, patch, patch, 3) uint8 patches of ``image``; images smaller than a patch are reflect-padded."""
    height, width = image.shape[:2]
    if height < patch or width < patch:
        image = cv2.copyMakeBorder(
            image, 0, max(0, patch - height), 0, max(0, patch - width), cv2.BORDER_REFLECT_101
        )
        height, width = image.shape[:2]
    corners = patch_grid(height, width, patch, max_patches)
    return np.stack([image[y : y + patch, x : x + patch] for y, x in corners])


class NPRClassifier(Classifier):
    """Tiles each image into native-resolution patches and averages the patch logits."""

    max_patches: int = 64

    def _patches(self, image: np.ndarray) -> torch.Tensor:
        patch = self.spec.size[0]
        tiles = image_patches(image, patch, self.max_patches)
        batch = self.spec.to_array(list(tiles))
        return torch.from_numpy(batch).to(self.device, self.dtype)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Patch logits for an already tiled and normalised batch (N, 3, P, P) -> (N,)."""
        return self.module(batch).reshape(-1)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """One synthetic logit per RGB uint8 image of any size: the mean of its patch logits."""
        out = np.empty(len(images), dtype=np.float32)
        with torch.inference_mode():
            for i, image in enumerate(images):
                check_image(image, i)
                out[i] = float(self.forward(self._patches(image)).float().mean().cpu())
        return out


@register_model("nprcnn", classifier=NPRClassifier)
def nprcnn() -> nn.Module:
    """The NPR patch network (about 0.12 M parameters)."""
    return NPRNet()
