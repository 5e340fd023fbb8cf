"""Blending masks of varied shape from 68 facial landmarks (iBUG 300-W order), for pseudo-fakes.

Real manipulations paste regions of many shapes: whole-face swaps (hull of the face and forehead),
inner-face swaps (brows to mouth), lip-sync edits (lower face), component edits (eyes, nose and
mouth) and the soft ellipses of older tools. :func:`random_mask` draws one of these, jitters its
landmarks, erodes or dilates it, blurs its edge and scales it by a blend ratio, so a detector
learns the blending boundary and not one mask outline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
EYES = slice(36, 48)
MOUTH = slice(48, 68)


@dataclass(frozen=True)
class MaskConfig:
    """Ranges of the random mask drawing (fractions are of the face size)."""

    shapes: tuple[str, ...] = ("face", "face", "inner", "lower", "components", "ellipse")
    point_jitter: float = 0.03
    morph: float = 0.06
    blur: tuple[float, float] = (0.02, 0.10)
    blend_ratios: tuple[float, ...] = (0.5, 0.75, 1.0, 1.0, 1.0, 1.0)


def face_size(landmarks: np.ndarray) -> float:
    """Diagonal of the landmarks' bounding box, the unit of every mask distance."""
    pts = np.asarray(landmarks, np.float32)
    return float(np.linalg.norm(pts.max(0) - pts.min(0))) or 1.0


def _forehead(lm: np.ndarray, lift: float) -> np.ndarray:
    """Brow points raised by ``lift`` times the brow-to-chin height (the hull then covers the forehead)."""
    brows = lm[BROWS]
    up = brows.mean(0) - lm[8]
    return brows + lift * up


def _hull(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask


def _face(lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return _hull(np.concatenate([lm[JAW], _forehead(lm, float(rng.uniform(0.0, 0.35)))]), shape)


def _inner(lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return _hull(np.concatenate([lm[BROWS], lm[NOSE], lm[EYES], lm[MOUTH], lm[3:14:2]]), shape)


def _lower(lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return _hull(np.concatenate([lm[2:15], lm[29:36]]), shape)


def _components(lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for part in (
        np.concatenate([lm[17:22], lm[36:42]]),
        np.concatenate([lm[22:27], lm[42:48]]),
        lm[NOSE],
        lm[MOUTH],
    ):
        mask |= _hull(part, shape)
    grow = max(1, int(0.05 * face_size(lm)))
    return np.asarray(cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)))


def _ellipse(lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    pts = np.concatenate([lm[JAW], _forehead(lm, 0.2)]).astype(np.float32)
    (cx, cy), (w, h), angle = cv2.fitEllipse(pts)
    mask = np.zeros(shape, np.uint8)
    scale = float(rng.uniform(0.8, 1.0))
    cv2.ellipse(mask, ((cx, cy), (w * scale, h * scale), angle), 1, -1)
    return mask


SHAPES: dict[str, Callable[[np.ndarray, tuple[int, int], np.random.Generator], np.ndarray]] = {
    "face": _face,
    "inner": _inner,
    "lower": _lower,
    "components": _components,
    "ellipse": _ellipse,
}


def random_mask(
    shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator, config: MaskConfig | None = None
) -> np.ndarray:
    """A float32 mask in [0, 1] of ``shape`` (height, width): a random region shape, deformed and blurred."""
    cfg = config or MaskConfig()
    lm = np.asarray(landmarks, np.float32).reshape(68, 2)
    size = face_size(lm)
    lm = lm + rng.normal(0.0, cfg.point_jitter * size, size=lm.shape).astype(np.float32)
    kind = str(rng.choice(cfg.shapes))
    hard = SHAPES[kind](lm, shape, rng)
    k = int(rng.integers(1, max(2, int(cfg.morph * size) + 1)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    hard = np.asarray(cv2.erode(hard, kernel) if rng.random() < 0.5 else cv2.dilate(hard, kernel))
    sigma = max(0.5, float(rng.uniform(*cfg.blur)) * size)
    soft = np.asarray(cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigmaX=sigma), np.float32)
    if soft.max() > 0:
        soft /= soft.max()
    soft *= float(rng.choice(cfg.blend_ratios))
    soft[soft < 1e-3] = 0.0
    return soft.astype(np.float32)


def blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` pasted onto ``target`` through ``mask``; where the mask is 0 the target stays exact."""
    m = mask[..., None]
    out = np.clip(np.round(target.astype(np.float32) * (1.0 - m) + source.astype(np.float32) * m), 0, 255)
    result = out.astype(np.uint8)
    result[mask == 0] = target[mask == 0]
    return result
