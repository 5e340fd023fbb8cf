"""Cut the image tiles out of grid figures (pictures on a dark background with captions between them).

The SFHQ-T2I search-result figures show generated faces as a grid of tiles separated by black
gutters, with white caption text. A tile is a large bright connected region once the thin text is
opened away; captions and gutters are dropped. :func:`matches_any` then compares every tile
with reference images (the development set's faces from the same dataset) by normalised
cross-correlation over scales, so a generated face that is also in the dev set is never trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def grid_tiles(figure: np.ndarray, min_side: int = 96, inset: int = 3) -> list[np.ndarray]:
    """The rectangular picture tiles of an RGB figure, top-left to bottom-right."""
    gray = cv2.cvtColor(figure, cv2.COLOR_RGB2GRAY)
    bright = (gray > 14).astype(np.uint8)
    k = max(5, min_side // 8)
    solid = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=4)
    tiles = []
    for x, y, w, h, area in sorted(stats[1:count].tolist(), key=lambda s: (s[1] // 50, s[0])):
        if w >= min_side and h >= min_side and area >= 0.85 * w * h and 0.4 <= w / h <= 2.5:
            tiles.append(np.ascontiguousarray(figure[y + inset : y + h - inset, x + inset : x + w - inset]))
    return tiles


def _gray(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.asarray(
        cv2.resize(g, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA), np.float32
    )


class DevMatcher:
    """Whether a tile shows one of ``references`` (normalised cross-correlation >= ``threshold``).

    Each reference is tried at widths from 30% to 100% of the downscaled tile, since a reference
    may be a crop of the same picture at another scale; the scaled templates are made once.
    """

    def __init__(
        self, references: Sequence[np.ndarray], threshold: float = 0.9, tile_width: int = 64
    ) -> None:
        self.threshold, self.tile_width = threshold, tile_width
        widths = sorted({max(8, round(tile_width * f)) for f in np.linspace(0.3, 1.0, 15)})
        self.templates = [_gray(ref, w) for ref in references for w in widths]

    def __call__(self, tile: np.ndarray) -> bool:
        small = _gray(tile, self.tile_width)
        for template in self.templates:
            if template.shape[0] > small.shape[0] or template.shape[1] > small.shape[1]:
                continue
            if float(cv2.matchTemplate(small, template, cv2.TM_CCOEFF_NORMED).max()) >= self.threshold:
                return True
        return False


def matches_any(tile: np.ndarray, references: Sequence[np.ndarray], threshold: float = 0.9) -> bool:
    """Whether some reference appears inside ``tile`` (see :class:`DevMatcher`)."""
    return DevMatcher(references, threshold)(tile)
