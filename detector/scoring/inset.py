"""Pictures inset in a flat canvas: screenshots of a post or a chat, a photo on a plain page, a collage.

The synthetic-image model reads the whole image and its patches, and the fusion was fitted on photos
and generated images as they are, not on a picture shown inside a user interface. On the dev
suite's ``screenshot`` copies (report half, 2026-12-04, without this rule) the synthetic-image model
still ranked them (AUC 0.999), but the final score's ECE was 0.254: 15 of 63 generated images were
`likely_authentic` and 1 in an accusing band (90.5% of their matched copies are), while 80.9% of the
real ones were `authentic`. The scope holds such an image one step back (:mod:`detector.scoring.scope`).

The *canvas* is what the picture sits on: the flat 8x8 blocks (every channel's standard deviation
under 1 grey level, :func:`detector.scoring.scope.block_stats`) within :data:`CANVAS_TOL` grey levels
of one of the :data:`CANVAS_COLOURS` commonest colours of the flat blocks on the frame's border, joined
to that border through such blocks (:func:`canvas_blocks`). A flat patch of the picture itself, a
smooth sky or a plain backdrop of another colour than the page, is not canvas. A picture is *inset*
when the largest 4-connected region of non-canvas blocks
* has a bounding box covering :data:`MIN_COVER` to :data:`MAX_COVER` of the frame, filled at least
  :data:`MIN_FILL` by the region itself,
* has at least two sides away from the frame's edges, and on each such side
* the blocks just outside are canvas (at least :data:`MIN_RING_CANVAS`) and the region runs straight
  along it (at least :data:`MIN_EDGE` of the box's own edge row or column, or of the one inside it,
  belongs to it: compression ringing around a pasted picture leaves a sparse line outside its true
  side), once what is attached to a side has been peeled off (:func:`_peel`: a bubble of text right
  below a picture's bubble in a chat joins it into one region; the box then ends where the region
  steps to a full line, within a quarter of the box).

The straight sides are what a camera scene lacks: a clipped sky or a studio backdrop leaves flat blocks
around an irregular region. Measured 2026-12-04 (23:10 UTC) over the 1,453 images that PIL opens in
../shared/data's ``synthetic``, ``faces``, ``dev/synthetic``, ``deepfake/frames`` and ``c2pa`` folders
(real photos, face photos, generated images, the dev images), five are taken: a photo printed on a card
and photographed on a blue backdrop, two photos boxed by black bars (a BSDS scan, an ImageNet photo),
pictures in a canvas too, an ImageNet product shot on white, and a collage of ten portraits on white. Of
the dev suite's 660 ``screenshot`` copies (both halves and the 307 face photos' rows, PNG), 627 are
taken; of every sixth of them (110) re-encoded, 97 at JPEG 85, 96 at JPEG 70, 107 at JPEG 55 and 90 as
WebP 80. Before the canvas was told by its colour (every flat block counted as canvas), the same sets
gave 4 (the collage not taken), 466, and 90, 88, 95 and 75: a picture's own flat patches on its border
broke its straight sides, and generated pictures have more of them. The peeling was added for the dev
suite's ``chat`` layout, chosen on its calibrate half (175 copies: 15 taken without it, 170 with it);
with it the figures above are 629 of 660, and 104, 97, 97, 107 and 93 of the 110 as PNG, JPEG 85, 70, 55
and WebP 80, with the same five images of ../shared/data. Missed: pictures whose border is the canvas's
own colour (a sky as white as the page, dark bands on a dark page), so the region's side is not
straight. Taken by design: a picture letterboxed or pillarboxed with flat bars (a padded square post, a
frame grab with black bars).

A post's card on a page is not the page's colour, so the page's canvas ends at the card, and the region
is the whole card, its header and actions with it: :func:`nested` reads the card again as a frame of its
own. It was chosen on the dev suite's ``card`` layout's calibrate half (2026-12-05): 152 of 175 cuts then
lie within the picture, none did before (the other 23 pictures have a border as white as the card;
their cut leaves out the card's header and actions, :func:`detector.scoring.scope.inset_picture`).
Nothing changes over the 1,453 images of ../shared/data above. Of the dev suite's 1,059 ``screenshot``,
``chat`` and ``page`` copies (both halves), three change: the ImageNet cash machine's black bars (in the
chat and the page) and an overskirt photo's black backdrop (in the screenshot) are cut off. Of the 307
face photos padded on white and on black (614), one changes each way: a photo printed on a blue card and
photographed on a backdrop is cut out of its card.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CANVAS_TOL = 4.0
"""Grey levels (any channel) within which a flat block has a canvas colour: a flat block's mean moves
by a level or two under JPEG or WebP; 2 took 81 of the 110 WebP screenshot copies above, 4 and 6 took 90."""
CANVAS_COLOURS = 4
"""The commonest colours (rounded to 4 levels) of the border's flat blocks that may be canvas: a page,
a bar, a header."""
MIN_COVER = 0.03
MAX_COVER = 0.9
MIN_FILL = 0.6
MIN_RING_CANVAS = 0.9
MIN_EDGE = 0.8
MIN_SIDES = 2
EDGE_DEPTH = 2
"""Lines of blocks, from each side of the box inwards, of which the fullest says how straight it is."""
INSET_TRIM = 2
"""Blocks cut off each side of an inset picture's box that lies away from the frame's edges: the box's
edge blocks straddle the picture's border, and JPEG's 16 px chroma blocks carry its ringing one block
further out, so with one block the cut of a photo padded with black bars was 9 px wider than the
photo. The model still reads a cut photo a little differently from the whole one (ten padded copies
of five real photos: logits within 0.52 of the photo's own on average, the whole canvas 2.09). A
card's box (:func:`nested`) is read this far inside its sides too."""
MAX_PEEL = 0.25
"""The share of the box's lines that may be peeled off one side (:func:`_peel`)."""
MIN_STEP = 0.3
"""How much fuller than the line before it the line a side is peeled to must be: an element attached
to a picture ends at a step (a text bubble against a picture's bubble), a rounded blob widens gradually
(a disc's lines grow by at most 0.18)."""


@dataclass(frozen=True)
class Inset:
    """The largest non-canvas region of a frame's block grid and how it sits in the frame. For a
    picture inside a card (:func:`nested`), ``fill``, ``sides``, ``ring_canvas`` and ``edge`` are read
    inside the card, ``cover``, ``box`` and ``grid`` in the frame."""

    cover: float
    """Its bounding box's share of the frame (the box after peeling, :func:`measure`)."""
    fill: float
    """The share of that box that the region itself covers."""
    sides: int
    """Sides of the region's bounding box away from the frame's edges."""
    ring_canvas: float
    """The least canvas share of the blocks just outside those sides (of the box before peeling)."""
    edge: float
    """The least share of the region along those sides, each read on its fuller of the box's edge line
    and the line inside it (1: a straight side)."""
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    """The box after peeling, in blocks: first row, first column, rows, columns."""
    grid: tuple[int, int] = (0, 0)
    """The block grid's rows and columns."""

    @property
    def inset(self) -> bool:
        """Whether the region is a picture inset in a flat canvas (the thresholds above)."""
        return (
            MIN_COVER <= self.cover <= MAX_COVER
            and self.fill >= MIN_FILL
            and self.sides >= MIN_SIDES
            and self.ring_canvas >= MIN_RING_CANVAS
            and self.edge >= MIN_EDGE
        )


def canvas_blocks(flat: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The canvas of a block grid (module docstring): the flat blocks (``flat``) whose mean colour
    (``means``, rows x columns x 3) is near one of the commonest colours of the border's flat blocks,
    joined to the border through such blocks."""
    border = np.zeros_like(flat)
    border[[0, -1], :] = border[:, [0, -1]] = True
    if not (flat & border).any():
        return np.zeros_like(flat)
    keys, counts = np.unique(np.round(means[flat & border] / 4), axis=0, return_counts=True)
    colours = keys[np.argsort(-counts, kind="stable")[:CANVAS_COLOURS]] * 4
    near = (np.abs(means[:, :, None, :] - colours[None, None]) <= CANVAS_TOL).all(axis=-1).any(axis=-1)
    _, labels = cv2.connectedComponents((flat & near).astype(np.uint8), connectivity=4)
    joined = np.unique(labels[border & flat & near])
    canvas: np.ndarray = np.isin(labels, joined[joined > 0])
    return canvas


def _lines(region: np.ndarray, side: str) -> np.ndarray:
    """The region's share of each line of its box, from ``side`` inwards."""
    shares: np.ndarray = region.mean(axis=1 if side in ("top", "bottom") else 0)
    return shares[::-1] if side in ("bottom", "right") else shares


def _peel(lines: np.ndarray) -> int:
    """Lines to peel off a side that is not straight (:func:`_lines`): to the first line within
    :data:`MAX_PEEL` of the box that holds :data:`MIN_EDGE` of it, at least :data:`MIN_STEP` more than
    the line before it, and the next line too; 0 when the side is straight, or when no line is."""
    if lines[:EDGE_DEPTH].max() >= MIN_EDGE:
        return 0
    for depth in range(1, int(MAX_PEEL * len(lines)) + 1):
        step = lines[depth] - lines[depth - 1]
        if step >= MIN_STEP and (lines[depth : depth + EDGE_DEPTH] >= MIN_EDGE).all():
            return depth
    return 0


def measure(canvas: np.ndarray) -> Inset | None:
    """How the largest region of non-canvas blocks of a block grid (True: canvas,
    :func:`canvas_blocks`) sits in it, after peeling off its box's sides what was attached to a
    straight-sided picture (:func:`_peel`); None when no block, or every block, is canvas."""
    if canvas.size == 0 or canvas.all() or not canvas.any():
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~canvas).astype(np.uint8), connectivity=4)
    k = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[k, :4])
    rows, cols = canvas.shape
    region = labels[y : y + h, x : x + w] == k
    # the sides away from the frame's edges, and the blocks just outside each
    outside = {
        side: line
        for side, away, line in (
            ("top", y > 0, canvas[max(y - 1, 0), x : x + w]),
            ("bottom", y + h < rows, canvas[min(y + h, rows - 1), x : x + w]),
            ("left", x > 0, canvas[y : y + h, max(x - 1, 0)]),
            ("right", x + w < cols, canvas[y : y + h, min(x + w, cols - 1)]),
        )
        if away
    }
    # what is attached to a side of the picture (a chat's bubble of text) is peeled off the box
    peel = {side: _peel(_lines(region, side)) for side in outside}
    top, bottom, left, right = (peel.get(side, 0) for side in ("top", "bottom", "left", "right"))
    y, x, h, w = y + top, x + left, h - top - bottom, w - left - right
    region = region[top : top + h, left : left + w]
    # a side's straightness: the fuller of the box's own edge line and the one inside it, since
    # compression ringing around a pasted picture adds a sparse line of non-flat blocks outside it
    return Inset(
        cover=w * h / canvas.size,
        fill=float(region.mean()),
        sides=len(outside),
        ring_canvas=min((float(o.mean()) for o in outside.values()), default=0.0),
        edge=min((float(_lines(region, side)[:EDGE_DEPTH].max()) for side in outside), default=0.0),
        box=(y, x, h, w),
        grid=(rows, cols),
    )


def nested(flat: np.ndarray, means: np.ndarray, outer: Inset | None) -> Inset | None:
    """The picture inside a card, when ``outer`` (:func:`measure` of the block grid ``flat``,
    ``means``) is one: a post's card on a page is not the page's colour, so the page's canvas ends at
    the card, and the card's header and actions would be judged with its picture. The card's blocks,
    :data:`INSET_TRIM` inside each side of its box, are read as a frame of their own, ringed by the
    card's colour (:func:`canvas_blocks` of them, padded by a line of canvas). Their largest region is
    taken when it is an inset there too, with at least :data:`MIN_SIDES` of its sides inside the card
    (a photo whose own dark sky meets its top is not cut below it); its sides at the card's edge are
    the card's own. A photo letterboxed by black bars inside a page or a bubble is a card of this kind
    too, and is cut without its bars, as it is alone. Otherwise ``outer``."""
    if outer is None or not outer.inset:
        return outer
    y, x, h, w = outer.box
    t = INSET_TRIM
    if min(h, w) <= 2 * t:
        return outer
    rows, cols = slice(y + t, y + h - t), slice(x + t, x + w - t)
    card = canvas_blocks(flat[rows, cols], means[rows, cols])
    inner = measure(np.pad(card, 1, constant_values=True))
    if inner is None:
        return outer
    (iy, ix, ih, iw), (padded_rows, padded_cols) = inner.box, inner.grid  # the card's blocks from 1
    inside = (iy > 1, ix > 1, iy + ih < padded_rows - 1, ix + iw < padded_cols - 1)
    top = y + t + iy - 1 if inside[0] else y
    left = x + t + ix - 1 if inside[1] else x
    bottom = y + t + iy + ih - 1 if inside[2] else y + h
    right = x + t + ix + iw - 1 if inside[3] else x + w
    grid = outer.grid
    picture = Inset(
        cover=(bottom - top) * (right - left) / (grid[0] * grid[1]),
        fill=inner.fill,
        sides=sum(inside),
        ring_canvas=inner.ring_canvas,
        edge=inner.edge,
        box=(top, left, bottom - top, right - left),
        grid=grid,
    )
    return picture if picture.inset and picture.box != outer.box else outer
