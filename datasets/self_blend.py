"""Self-Blended Images (Shiohara and Yamasaki, CVPR 2022) with dense 68-point landmark masks.

A real face becomes a pseudo-fake by blending it with a jittered copy of itself: the copy gets
colour, contrast, HSV, sharpness, resampling and JPEG jitter and a slight affine warp, and is pasted
back through a mask of random shape drawn from the face's 68 landmarks (:mod:`datasets.masks`).
Outside the mask the output equals the input pixel for pixel, so the only cues are the blending
boundary and the statistics inside it, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.augment import jpeg_recompress
from datasets.masks import MaskConfig, blend, random_mask


@dataclass(frozen=True)
class SelfBlendConfig:
    """Ranges of the random jitter of the pasted copy, and the mask drawing."""

    max_shift: float = 0.03
    scale_range: tuple[float, float] = (0.95, 1.05)
    colour_shift: float = 20.0
    contrast_range: tuple[float, float] = (0.85, 1.15)
    hsv_shift: tuple[float, float, float] = (8.0, 25.0, 25.0)
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)
    resample_prob: float = 0.4
    mask: MaskConfig = field(default_factory=MaskConfig)


@dataclass
class BlendResult:
    """The pseudo-fake image (uint8 RGB) and the float32 mask in [0, 1] that blended it."""

    image: np.ndarray
    mask: np.ndarray


def rng_of(seed: np.random.Generator | int | None) -> np.random.Generator:
    """``seed`` itself when it is a generator, else a new generator seeded with it."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_rgb(image: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``image`` is an RGB uint8 HxWx3 array."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")


def colour_jitter(image: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig) -> np.ndarray:
    """Per-channel shift, contrast and HSV jitter of an RGB uint8 image."""
    out = image.astype(np.float32)
    out += rng.uniform(-config.colour_shift, config.colour_shift, size=3).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * float(rng.uniform(*config.contrast_range)) + mean
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    dh, ds, dv = config.hsv_shift
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-dh, dh)) % 180.0
    hsv[..., 1] += rng.uniform(-ds, ds)
    hsv[..., 2] += rng.uniform(-dv, dv)
    return np.asarray(cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB))


def texture_jitter(image: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig) -> np.ndarray:
    """Blur or sharpen, down/up-resample and JPEG-compress at random (the generator's texture)."""
    out = image
    roll = rng.random()
    if roll < 0.35:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(rng.uniform(0.4, 1.4)))
    elif roll < 0.7:
        blurred = cv2.GaussianBlur(out, (0, 0), sigmaX=1.0)
        amount = float(rng.uniform(0.3, 1.2))
        out = cv2.addWeighted(out, 1.0 + amount, blurred, -amount, 0.0)
    height, width = out.shape[:2]
    if rng.random() < config.resample_prob:
        factor = float(rng.uniform(0.4, 0.85))
        small = cv2.resize(out, (max(1, round(width * factor)), max(1, round(height * factor))))
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < config.jpeg_prob:
        out = jpeg_recompress(out, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    return np.asarray(out)


def jitter_copy(image: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig) -> np.ndarray:
    """The copy to paste: colour and texture jitter, then a small scale-and-shift warp."""
    out = texture_jitter(colour_jitter(image, rng, config), rng, config)
    height, width = out.shape[:2]
    scale = float(rng.uniform(*config.scale_range))
    shift = rng.uniform(-config.max_shift, config.max_shift, size=2) * np.array([width, height])
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 0.0, scale)
    matrix[:, 2] += shift
    return np.asarray(cv2.warpAffine(out, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    seed: np.random.Generator | int | None = None,
    config: SelfBlendConfig | None = None,
) -> BlendResult:
    """A self-blended pseudo-fake of the face with 68 ``landmarks`` in RGB uint8 ``image``.

    The output differs from ``image`` only where the returned mask is positive, and the same
    integer ``seed`` gives the same output.
    """
    check_rgb(image)
    cfg = config or SelfBlendConfig()
    rng = rng_of(seed)
    mask = random_mask(image.shape[:2], landmarks, rng, cfg.mask)
    copy = jitter_copy(image, rng, cfg)
    return BlendResult(blend(image, copy, mask), mask)
