"""Augmentations shared by real and pseudo-fake samples, so resizing and compression are never the cue.

Both classes of every training set pass through the same :class:`SharedAugment` with the same
probabilities: a horizontal flip, a down-and-up resize (re-sampling blur as in re-uploaded media)
and a JPEG re-compression at a random quality. Only the pseudo-fake *generators* differ by class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (RGB uint8) encoded as JPEG at ``quality`` and decoded again (Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def down_up(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (< 1, area interpolation) and enlarge back to the original size (linear)."""
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


@dataclass(frozen=True)
class SharedAugment:
    """Random flip, down/up resize and JPEG re-compression, applied identically to both classes."""

    flip_prob: float = 0.5
    resize_prob: float = 0.3
    resize_range: tuple[float, float] = (0.5, 0.9)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (50, 95)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An augmented copy of RGB uint8 ``image`` (same size)."""
        out = image
        if rng.random() < self.flip_prob:
            out = np.ascontiguousarray(out[:, ::-1])
        if rng.random() < self.resize_prob:
            out = down_up(out, float(rng.uniform(*self.resize_range)))
        if rng.random() < self.jpeg_prob:
            out = jpeg_recompress(out, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return out
