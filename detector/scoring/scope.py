"""Is a frame a camera photograph? The detectors were trained on photographs only.

Drawings, screenshots, slides and flat graphics are out of the detectors' scope: their scores
there mean nothing. A camera image has sensor noise almost everywhere, so very few of its 8x8
blocks are exactly flat, and its colours number in the tens of thousands. A frame is
*non-photographic* when both hold: at least :data:`FLAT_SHARE` of its 8x8 blocks are flat (every
channel's standard deviation below 1 grey level) and it has fewer distinct colours than
:data:`COLOUR_SHARE` of its pixels. Measured on ../shared/data (647 real photos, 126 generated
images, 307 face photos), only scikit-image's ``horse.png`` (a black silhouette drawing) is flagged,
while a synthetic screenshot and a flat cartoon are flagged as PNG and as JPEG (quality 85).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BLOCK = 8
FLAT_STD = 1.0
FLAT_SHARE = 0.5
COLOUR_SHARE = 0.02
LONGEST_SIDE = 1024


@dataclass(frozen=True)
class ScopeCheck:
    """The two statistics and the decision for one frame."""

    flat_share: float
    colour_share: float

    @property
    def photographic(self) -> bool:
        return not (self.flat_share >= FLAT_SHARE and self.colour_share < COLOUR_SHARE)


def check_frame(image: np.ndarray) -> ScopeCheck:
    """Statistics of an RGB uint8 frame (subsampled by striding to at most 1024 px, never smoothed)."""
    step = max(1, int(np.ceil(max(image.shape[:2]) / LONGEST_SIDE)))
    img = np.ascontiguousarray(image[::step, ::step, :3])
    h, w = (img.shape[0] // BLOCK) * BLOCK, (img.shape[1] // BLOCK) * BLOCK
    if h == 0 or w == 0:
        return ScopeCheck(flat_share=0.0, colour_share=1.0)
    blocks = img[:h, :w].astype(np.float32).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3)
    flat = blocks.std(axis=(1, 3)).max(axis=-1) < FLAT_STD
    packed = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    return ScopeCheck(flat_share=float(flat.mean()), colour_share=len(np.unique(packed)) / packed.size)


def photographic(frames: Sequence[np.ndarray]) -> bool:
    """True when most sampled frames (at least half) look like camera photographs."""
    if not frames:
        return False
    votes = [check_frame(frame).photographic for frame in frames]
    return sum(votes) * 2 >= len(votes)
