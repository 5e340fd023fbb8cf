"""What a checkpoint expects as input (size, value range, normalisation, crop margin): torch-free.

The weights manifest validates into these specs without importing torch; the classifiers in
:mod:`.base` turn images into tensors with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from detector.errors import InvalidRequest

Interpolation = Literal["area", "linear", "cubic", "nearest"]

_CV2_INTERPOLATION: dict[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


@dataclass(frozen=True)
class InputSpec:
    """What a checkpoint expects as input.

    ``size`` is (height, width). Pixels (uint8 RGB) are mapped linearly from [0, 255] onto
    ``value_range`` and then normalised per channel with ``mean`` / ``std``. ``crop_margin`` is the
    square face-crop side divided by the detector's face-box side for face models, ``None`` for
    models that look at whole images. ``interpolation`` ``"area"`` means OpenCV's INTER_AREA when
    shrinking and INTER_LINEAR when enlarging.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_margin: float | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    interpolation: Interpolation = "area"
    channel_order: Literal["RGB"] = "RGB"

    def resize(self, image: np.ndarray) -> np.ndarray:
        """``image`` resized to ``size`` with the checkpoint's interpolation (no-op when equal)."""
        height, width = self.size
        if image.shape[:2] == (height, width):
            return image
        if self.interpolation == "area":
            shrinking = image.shape[0] * image.shape[1] > height * width
            flag = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        else:
            flag = _CV2_INTERPOLATION[self.interpolation]
        return np.asarray(cv2.resize(image, (width, height), interpolation=flag))

    def to_array(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """A float32 NCHW batch: resized, scaled to ``value_range``, normalised."""
        lo, hi = self.value_range
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        batch = np.empty((len(images), 3, *self.size), dtype=np.float32)
        for i, image in enumerate(images):
            check_image(image, i)
            pixels = self.resize(image).astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
            batch[i] = ((pixels - mean) / std).transpose(2, 0, 1)
        return batch


def check_image(image: np.ndarray, index: int) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InvalidRequest(f"image {index}: expected an HxWx3 uint8 RGB array, got shape {shape} {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidRequest(f"image {index}: empty image of shape {image.shape}")
