"""Changes that both classes of a training set get alike: JPEG re-compression, down/up-scaling, and
the *look* of a picture (tone, colour, sharpening, smoothing, sensor noise: :func:`look_jitter`).

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


LOOKS = ("tone", "colour", "sharpen", "smooth", "noise")


def look_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with one random whole-picture change of look: a gamma and contrast curve, a colour
    temperature and saturation shift, unsharp masking, edge-preserving smoothing (a beauty filter's
    skin) or sensor-like noise. Applied to both classes, it keeps a face's grading, retouching or
    camera from standing in for "real" (the real faces of training are mostly one photo dataset)."""
    look = LOOKS[int(rng.integers(len(LOOKS)))]
    out = image.astype(np.float32)
    if look == "tone":
        gamma, gain = float(rng.uniform(0.7, 1.4)), float(rng.uniform(0.8, 1.25))
        out = 255.0 * np.clip((out / 255.0) ** gamma * gain + float(rng.uniform(-0.06, 0.06)), 0, 1)
    elif look == "colour":
        out = out * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * float(rng.uniform(0.6, 1.4))
    elif look == "sharpen":
        blur = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 2.0))).astype(np.float32)
        out = out + (out - blur) * float(rng.uniform(0.3, 1.5))
    elif look == "smooth":
        d, sigma = int(rng.choice([5, 7, 9])), float(rng.uniform(20, 60))
        out = cv2.bilateralFilter(image, d, sigma, float(rng.uniform(3, 9))).astype(np.float32)
    else:
        out = out + rng.normal(0.0, float(rng.uniform(2.0, 8.0)), size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
