"""Self-Blended Images (Shiohara and Yamasaki, CVPR 2022) from MTCNN's five landmarks.

A real face becomes a pseudo-fake by blending it with a jittered copy of itself: the copy gets
colour, sharpness, frequency (down/up-sampling) and JPEG jitter and a slight affine warp, and is
pasted back through a soft mask. The mask is the convex hull of points derived from the five
landmarks (eyes raised towards the brows and pushed outwards, mouth corners pushed towards the
chin and cheeks), each point jittered, then eroded or dilated, blurred, scaled by a random blend
ratio and confined to the face box. Outside the mask the output equals the input pixel for pixel,
so the only cue is the blending boundary and the statistics inside it, as in the paper.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np

BLEND_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SelfBlendConfig:
    """Ranges of the random jitter; defaults follow the paper's spirit at small crop sizes."""

    point_jitter: float = 0.08
    max_shift: float = 0.03
    scale_range: tuple[float, float] = (0.95, 1.05)
    colour_shift: float = 20.0
    contrast_range: tuple[float, float] = (0.85, 1.15)
    hsv_shift: tuple[float, float, float] = (8.0, 25.0, 25.0)
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)
    resample_prob: float = 0.4
    blur_sigma: tuple[float, float] = (1.0, 6.0)
    blend_ratios: tuple[float, ...] = BLEND_RATIOS


@dataclass
class BlendResult:
    """The pseudo-fake image (uint8 RGB) and the float32 mask in [0, 1] that blended it."""

    image: np.ndarray
    mask: np.ndarray


def _rng(seed: np.random.Generator | int | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def hull_points(landmarks: np.ndarray) -> np.ndarray:
    """Eight (x, y) points around the inner face derived from MTCNN's five landmarks."""
    lm = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    eye_l, eye_r, _nose, mouth_l, mouth_r = lm
    across = eye_r - eye_l
    up = (eye_l + eye_r) / 2.0 - (mouth_l + mouth_r) / 2.0
    return np.stack(
        [
            eye_l - 0.40 * across + 0.55 * up,
            eye_r + 0.40 * across + 0.55 * up,
            eye_l - 0.55 * across - 0.10 * up,
            eye_r + 0.55 * across - 0.10 * up,
            mouth_l - 0.40 * across - 0.05 * up,
            mouth_r + 0.40 * across - 0.05 * up,
            mouth_l - 0.10 * across - 0.55 * up,
            mouth_r + 0.10 * across - 0.55 * up,
        ]
    )


def box_mask(shape: tuple[int, int], box: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """A float32 0/1 mask of the pixels inside ``box`` (x1, y1, x2, y2), clipped to the image."""
    height, width = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    mask = np.zeros((height, width), dtype=np.float32)
    c0, r0 = max(0, int(np.ceil(x1))), max(0, int(np.ceil(y1)))
    c1, r1 = min(width, int(np.floor(x2)) + 1), min(height, int(np.floor(y2)) + 1)
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = 1.0
    return mask


def blend_mask(
    shape: tuple[int, int],
    landmarks: np.ndarray,
    box: np.ndarray | tuple[float, ...],
    rng: np.random.Generator,
    config: SelfBlendConfig,
) -> np.ndarray:
    """The soft blending mask: jittered landmark hull, eroded/dilated, blurred, inside ``box``."""
    height, width = shape
    points = hull_points(landmarks)
    face = float(np.linalg.norm(points.max(0) - points.min(0))) or 1.0
    points = points + rng.normal(0.0, config.point_jitter * face / 2.0, size=points.shape)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    k = int(rng.integers(1, max(2, int(0.08 * face))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    hard = np.asarray(cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel))
    sigma = float(rng.uniform(*config.blur_sigma)) * face / 100.0
    soft = np.asarray(cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigmaX=max(sigma, 0.5)), np.float32)
    if soft.max() > 0:
        soft = soft / soft.max()
    soft *= float(rng.choice(config.blend_ratios))
    soft *= box_mask(shape, box)
    soft[soft < 1e-3] = 0.0
    return soft.astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def jitter_copy(image: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig) -> np.ndarray:
    """The copy to paste: colour, contrast, HSV, sharpness, resampling and JPEG jitter, then a warp."""
    out = image.astype(np.float32)
    out += rng.uniform(-config.colour_shift, config.colour_shift, size=3).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * float(rng.uniform(*config.contrast_range)) + mean
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    dh, ds, dv = config.hsv_shift
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-dh, dh)) % 180.0
    hsv[..., 1] += rng.uniform(-ds, ds)
    hsv[..., 2] += rng.uniform(-dv, dv)
    out_u8 = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    roll = rng.random()
    if roll < 0.35:
        out_u8 = cv2.GaussianBlur(out_u8, (0, 0), sigmaX=float(rng.uniform(0.4, 1.4)))
    elif roll < 0.7:
        blurred = cv2.GaussianBlur(out_u8, (0, 0), sigmaX=1.0)
        amount = float(rng.uniform(0.3, 1.2))
        out_u8 = cv2.addWeighted(out_u8, 1.0 + amount, blurred, -amount, 0.0)
    height, width = out_u8.shape[:2]
    if rng.random() < config.resample_prob:
        factor = float(rng.uniform(0.4, 0.85))
        small = cv2.resize(out_u8, (max(1, round(width * factor)), max(1, round(height * factor))))
        out_u8 = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < config.jpeg_prob:
        out_u8 = _jpeg(out_u8, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    scale = float(rng.uniform(*config.scale_range))
    shift = rng.uniform(-config.max_shift, config.max_shift, size=2) * np.array([width, height])
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 0.0, scale)
    matrix[:, 2] += shift
    return np.asarray(cv2.warpAffine(out_u8, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))


def self_blend(
    image: np.ndarray,
    box: np.ndarray | tuple[float, ...],
    landmarks: np.ndarray,
    seed: np.random.Generator | int | None = None,
    config: SelfBlendConfig | None = None,
) -> BlendResult:
    """A self-blended pseudo-fake of the face at ``box`` / ``landmarks`` in RGB uint8 ``image``.

    The output differs from ``image`` only where the returned mask is positive, and the same
    integer ``seed`` gives the same output.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    cfg = config or SelfBlendConfig()
    rng = _rng(seed)
    mask = blend_mask(image.shape[:2], landmarks, box, rng, cfg)
    copy = jitter_copy(image, rng, cfg).astype(np.float32)
    m = mask[..., None]
    blended = image.astype(np.float32) * (1.0 - m) + copy * m
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    out[mask == 0] = image[mask == 0]
    return BlendResult(image=out, mask=mask)
