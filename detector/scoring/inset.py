"""Pictures inset in a flat canvas: screenshots of a post or a chat, a photo on a plain page, a collage.

The synthetic-image model reads the whole image and its patches, and the fusion was fitted on photos
and generated images as they are, not on a picture shown inside a user interface. On the dev
suite's ``screenshot`` copies (report half, 2026-12-04, without this rule) the synthetic-image model
still ranked them (AUC 0.999), but the final score's ECE was 0.254: 15 of 63 generated images were
`likely_authentic` and 1 in an accusing band (90.5% of their matched copies are), while 80.9% of the
real ones were `authentic`. The scope holds such an image one step back (:mod:`detector.scoring.scope`).

A picture is *inset* when the largest 4-connected region of non-flat 8x8 blocks (flat: every
channel's standard deviation under 1 grey level, :func:`detector.scoring.scope.flat_blocks`)
* has a bounding box covering :data:`MIN_COVER` to :data:`MAX_COVER` of the frame, filled at least
  :data:`MIN_FILL` by the region itself,
* has at least two sides away from the frame's edges, and on each such side
* the blocks just outside are flat (at least :data:`MIN_RING_FLAT`) and the region runs straight along
  it (at least :data:`MIN_EDGE` of the box's own edge row or column, or of the one inside it, belongs
  to it: compression ringing around a pasted picture leaves a sparse line outside its true side).

The straight sides are what a camera scene lacks: a clipped sky or a studio backdrop leaves flat
blocks around an irregular region. Over the 1,453 images that PIL opens in ../shared/data's
``synthetic``, ``faces``, ``dev/synthetic``, ``deepfake/frames`` and ``c2pa`` folders (real photos,
face photos, generated images, the dev images) four are taken: a photo printed on a card and
photographed on a blue backdrop, two photos boxed by black bars (a BSDS scan, an ImageNet photo),
pictures in a canvas too, and one ImageNet product shot on white. Of the 100 composites, 95; of
their 50 PNGs re-encoded, 47 at JPEG 85, 41 at JPEG 70, 37 at JPEG 55 and 38 as WebP 80 (reading
the edge line alone: 46, 34, 27 and 20, and only the card taken of ../shared/data). Missed: insets
whose own content is flat at its border (a desk on white, a poster), so the region's side is not
straight. Taken by design: a picture letterboxed or pillarboxed with flat bars (a padded square
post, a frame grab with black bars).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_COVER = 0.03
MAX_COVER = 0.9
MIN_FILL = 0.6
MIN_RING_FLAT = 0.9
MIN_EDGE = 0.8
MIN_SIDES = 2
EDGE_DEPTH = 2
"""Lines of blocks, from each side of the box inwards, of which the fullest says how straight it is."""


@dataclass(frozen=True)
class Inset:
    """The largest non-flat region of a frame's block grid and how it sits in the frame."""

    cover: float
    """Its bounding box's share of the frame."""
    fill: float
    """The share of its bounding box that the region itself covers."""
    sides: int
    """Sides of the bounding box away from the frame's edges."""
    ring_flat: float
    """The least flat share of the blocks just outside those sides."""
    edge: float
    """The least share of the region along those sides, each read on its fuller of the box's edge line
    and the line inside it (1: a straight side)."""
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    """The bounding box in blocks: first row, first column, rows, columns."""
    grid: tuple[int, int] = (0, 0)
    """The block grid's rows and columns."""

    @property
    def inset(self) -> bool:
        """Whether the region is a picture inset in a flat canvas (the thresholds above)."""
        return (
            MIN_COVER <= self.cover <= MAX_COVER
            and self.fill >= MIN_FILL
            and self.sides >= MIN_SIDES
            and self.ring_flat >= MIN_RING_FLAT
            and self.edge >= MIN_EDGE
        )


def measure(flat: np.ndarray) -> Inset | None:
    """How the largest non-flat region of a block grid (True: flat) sits in it; None when no block,
    or every block, is flat."""
    if flat.size == 0 or flat.all() or not flat.any():
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~flat).astype(np.uint8), connectivity=4)
    k = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[k, :4])
    rows, cols = flat.shape
    region = labels[y : y + h, x : x + w] == k
    outside, along = [], []
    # a side's straightness: the fuller of the box's own edge line and the one inside it, since
    # compression ringing around a pasted picture adds a sparse line of non-flat blocks outside it
    if y > 0:
        outside.append(flat[y - 1, x : x + w])
        along.append(region[:EDGE_DEPTH].mean(axis=1))
    if y + h < rows:
        outside.append(flat[y + h, x : x + w])
        along.append(region[-EDGE_DEPTH:].mean(axis=1))
    if x > 0:
        outside.append(flat[y : y + h, x - 1])
        along.append(region[:, :EDGE_DEPTH].mean(axis=0))
    if x + w < cols:
        outside.append(flat[y : y + h, x + w])
        along.append(region[:, -EDGE_DEPTH:].mean(axis=0))
    return Inset(
        cover=w * h / flat.size,
        fill=float(region.mean()),
        sides=len(outside),
        ring_flat=min((float(o.mean()) for o in outside), default=0.0),
        edge=min((float(a.max()) for a in along), default=0.0),
        box=(y, x, h, w),
        grid=(rows, cols),
    )
