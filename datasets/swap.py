"""Face X-ray-style swaps (Li et al., CVPR 2020): another identity's face blended in with matched landmarks.

The donor is the face among a candidate pool whose landmark shape (after similarity alignment) is
closest to the target's, as in Face X-ray. It is warped onto the target by the similarity
transform between the two landmark sets, colour-matched to the target inside the mask (mean and
standard deviation per LAB channel), given texture jitter, and pasted through a random mask
(:mod:`datasets.masks`). Outside the mask the target is unchanged pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from datasets.masks import MaskConfig, blend, random_mask
from datasets.self_blend import BlendResult, SelfBlendConfig, check_rgb, rng_of, texture_jitter


def normalised_shape(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks centred and scaled to unit norm (translation- and scale-free shape)."""
    pts = np.asarray(landmarks, np.float64).reshape(68, 2)
    pts = pts - pts.mean(0)
    return pts / (np.linalg.norm(pts) or 1.0)


def nearest_donor(target: np.ndarray, candidates: Sequence[np.ndarray]) -> int:
    """Index of the candidate whose normalised landmark shape is closest to ``target``'s."""
    ref = normalised_shape(target)
    return int(np.argmin([np.linalg.norm(normalised_shape(c) - ref) for c in candidates]))


def colour_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` with its LAB mean/std inside ``mask`` moved to ``target``'s (Reinhard et al.)."""
    inside = mask > 0.1
    if inside.sum() < 16:
        return source
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(0), src[inside].std(0) + 1e-3
    t_mean, t_std = tgt[inside].mean(0), tgt[inside].std(0) + 1e-3
    out = (src - s_mean) / s_std * t_std + t_mean
    return np.asarray(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB))


def align_donor(
    donor: np.ndarray, donor_lm: np.ndarray, target_lm: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """``donor`` warped by the similarity transform that maps its landmarks onto ``target_lm``."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(donor_lm, np.float32).reshape(-1, 1, 2),
        np.asarray(target_lm, np.float32).reshape(-1, 1, 2),
    )
    if matrix is None:
        matrix = np.eye(2, 3, dtype=np.float64)
    height, width = shape
    return np.asarray(cv2.warpAffine(donor, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))


def swap_blend(
    target: np.ndarray,
    target_lm: np.ndarray,
    donor: np.ndarray,
    donor_lm: np.ndarray,
    seed: np.random.Generator | int | None = None,
    config: SelfBlendConfig | None = None,
) -> BlendResult:
    """``donor``'s face blended onto ``target`` (both RGB uint8 with 68 landmarks); deterministic per seed."""
    check_rgb(target)
    check_rgb(donor)
    cfg = config or SelfBlendConfig(
        mask=MaskConfig(shapes=("face", "face", "inner", "inner", "lower", "ellipse"))
    )
    rng = rng_of(seed)
    mask = random_mask(target.shape[:2], target_lm, rng, cfg.mask)
    warped = align_donor(donor, donor_lm, target_lm, target.shape[:2])
    matched = colour_transfer(warped, target, mask)
    return BlendResult(blend(target, texture_jitter(matched, rng, cfg), mask), mask)
