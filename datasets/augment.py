"""Degradations that both classes of a training set get alike: JPEG re-compression, down/up-scaling.

The chains that apply them at random are :class:`datasets.compress.CompressionChain` (faces) and
:class:`datasets.synthetic_training.FormatChain` (whole images).
"""

from __future__ import annotations

import io

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
