"""Scope: is this medium something the detectors can judge, and how sure may their verdict be?

The detectors were validated on camera photographs and videos of faces at usable sizes and
ordinary compression. :func:`assess` returns a :class:`Scope`:

* **out of scope** (no score is given): drawings, screenshots and flat graphics (below), blank or
  near-constant frames (standard deviation under :data:`BLANK_STD` grey levels), and extreme strips
  (aspect ratio over :data:`MAX_ASPECT`);
* **limited** (the verdict is kept closer to ``uncertain``): faces found but all smaller than the face
  model can judge, HEIC or AVIF images of unknown quality, greyscale media (every sampled frame without
  colour, below), images of a picture inset in a flat canvas such as a screenshot
  (:mod:`detector.scoring.inset`), videos in which no face was found (the video fusion was fitted on
  talking heads only) and, from the report's side, videos checked on fewer frames than the video
  fusion was calibrated on (:func:`few_frames`) (one step; the last four only for items in scope), and
  **degraded** media, whose
  pixels every model reads outside what it was validated on: heavy JPEG, WebP, AVIF or HEIC compression
  (estimated quality under :data:`MIN_JPEG_QUALITY`, :data:`MIN_WEBP_QUALITY`, :data:`MIN_AVIF_QUALITY`,
  :data:`MIN_HEIC_QUALITY`), starved video (under :data:`MIN_VIDEO_BPP` bits per pixel per frame,
  counting the video stream's own packets, not its audio) and tiny media (short side under
  :data:`MIN_SIDE` px, enlarged to the models' inputs). On degraded media the pixels never accuse
  (:mod:`detector.scoring.fusion.rules`, rule 7): with a one-step rule, 12% of real dev photos saved at
  JPEG quality 10 and 2.6% shrunk to 96 px were accused (the dev suite's ``heavy`` and ``thumbnail``
  variants).

Drawings and screenshots:

Drawings, screenshots, slides and flat graphics are out of the detectors' scope: their scores
there mean nothing. A camera image has sensor noise almost everywhere, so very few of its 8x8
blocks are exactly flat, and its colours number in the tens of thousands. A frame is
*non-photographic* when both hold: at least :data:`FLAT_SHARE` of its 8x8 blocks are flat (every
channel's standard deviation below 1 grey level) and it has fewer distinct colours than
:data:`COLOUR_SHARE` of its pixels. Measured on ../shared/data (647 real photos, 126 generated
images, 307 face photos), only scikit-image's ``horse.png`` (a black silhouette drawing) is flagged,
while a synthetic screenshot and a flat cartoon are flagged as PNG and as JPEG (quality 85).
Heavy JPEG flattens a photo's blocks as well (at quality 10, 6 of 29 dev photos had half or more
of them flat and few colours), so heavily compressed JPEGs, WebPs, AVIFs and HEICs skip this test and
are judged as degraded instead.

Greyscale:

Nearly all the media the models were calibrated on are in colour (10 of the 353 dev images are grey),
and without colour their probabilities drift: on the dev suite's ``greyscale`` variant (report half)
the image ECE is 0.067 against 0.030 for the same copies in colour, above the 0.054 a perfectly
calibrated score shows at that size (README, "Greyscale"). A frame is *greyscale* when at least
:data:`GREY_SHARE` of its pixels (subsampled to about 256 px) have channels within
:data:`GREY_CHROMA` grey levels of each other.
Over the 1,435 images of ../shared/data the greyscale ones (mode ``L`` files and grey photos saved
as RGB: six ImageNet photos and four generated images of the dev set among them) have 98.6-100% of
such pixels; the most nearly grey colour image (a dim PolyU photo) has 91.0% (checked 2026-12-04).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from detector.scoring.fusion.text import NOT_PHOTOGRAPHIC
from detector.scoring.inset import CANVAS_TOL, INSET_TRIM, Inset, canvas_blocks, measure, nested

if TYPE_CHECKING:
    from detector.media.loader import MediaInfo

BLOCK = 8
FLAT_STD = 1.0
FLAT_SHARE = 0.5
COLOUR_SHARE = 0.02
LONGEST_SIDE = 1024
BLANK_STD = 2.0
MAX_ASPECT = 8.0
MIN_JPEG_QUALITY = 50
MIN_WEBP_QUALITY = 65
"""Lossy WebP below this is degraded: the synthetic-image model saw WebP at 65-95 only, and in a probe
3 of 58 real dev photos saved as WebP at quality 50 were accused, 0 of 29 as JPEG at quality 50."""
MIN_AVIF_QUALITY = 50
"""AVIF below this is degraded: real dev photos as AVIF at quality 35 got an accusing band 22.6%
of the time; at 50 and 75, 1 of 58 in a probe (the photo accused in every format)."""
MIN_HEIC_QUALITY = 50
"""HEIC below this (QP over 22 from x265) is degraded: real dev photos as HEIC at quality 30 got an
accusing band 20.0% of the time without any HEIC rule, 3.5% with a one-step rule (the dev suite's
``heic`` variant); at 50, 1 of 58 in a probe (the photo accused in every format). A camera's own
8736x5856 HEIC in ../shared/data reads QP 22 (quality 50): not degraded."""
LOSSY_FORMATS = {
    "jpeg": ("JPEG", MIN_JPEG_QUALITY),
    "webp": ("WebP", MIN_WEBP_QUALITY),
    "avif": ("AVIF", MIN_AVIF_QUALITY),
    "heic": ("HEIC", MIN_HEIC_QUALITY),
}
"""Format -> (name in reasons, least quality not degraded) for the formats whose encoder quality the
loader estimates (:attr:`detector.media.loader.MediaInfo.encoder_quality`)."""
UNVALIDATED_IMAGE_FORMATS = frozenset({"avif", "heic"})
"""Lossy image formats no model saw in training: when their quality cannot be read (headers outside
what :mod:`detector.media.avif_quality` and :mod:`detector.media.heic_quality` read) their verdicts
move one step."""
MIN_VIDEO_BPP = 0.02
MIN_SIDE = 128
GREY_CHROMA = 8
"""Most grey levels between a pixel's channels for it to count as grey (JPEG's chroma noise on a
grey photo stays at 7 or under in the 99th percentile)."""
GREY_SHARE = 0.98
"""Least share of grey pixels for a frame to be greyscale."""


@dataclass(frozen=True)
class ScopeCheck:
    """The two statistics and the decision for one frame; ``colour_share`` is None when it was not
    counted because the blocks alone show a photograph (fewer than :data:`FLAT_SHARE` flat).
    ``inset``: how the frame's largest non-flat region sits in it (:mod:`detector.scoring.inset`)."""

    flat_share: float
    colour_share: float | None
    inset: Inset | None = None
    shape: tuple[int, int] = (0, 0)
    """The checked frame's height and width (pixels)."""

    @property
    def inset_picture(self) -> bool:
        """A picture inset in a flat canvas, such as a screenshot (:mod:`detector.scoring.inset`)."""
        return self.inset is not None and self.inset.inset

    @property
    def photographic(self) -> bool:
        return not (
            self.flat_share >= FLAT_SHARE
            and self.colour_share is not None
            and self.colour_share < COLOUR_SHARE
        )


def block_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each whole :data:`BLOCK` x :data:`BLOCK` block's flatness (every channel's standard deviation
    under :data:`FLAT_STD`, tested exactly in integers: n x sum of squares - square of sum <
    (FLAT_STD x n)^2, n pixels a block) and its mean colour, from one summed-area table."""
    h, w = (image.shape[0] // BLOCK) * BLOCK, (image.shape[1] // BLOCK) * BLOCK
    sums, squares = cv2.integral2(np.ascontiguousarray(image[:h, :w]), sdepth=cv2.CV_32S, sqdepth=cv2.CV_64F)

    def per_block(table: np.ndarray) -> np.ndarray:
        corners = table[BLOCK::BLOCK, BLOCK::BLOCK] - table[:-1:BLOCK, BLOCK::BLOCK]
        return (corners - table[BLOCK::BLOCK, :-1:BLOCK] + table[:-1:BLOCK, :-1:BLOCK]).astype(np.int64)

    n = BLOCK * BLOCK
    s1, s2 = per_block(sums), per_block(squares)  # exact: at most 64 x 255^2 per block and channel
    bound = round((FLAT_STD * n) ** 2)
    flat: np.ndarray = (n * s2 - s1 * s1 < bound).all(axis=-1)
    return flat, s1 / n


def _stride(shape: tuple[int, int]) -> int:
    """The step :func:`check_frame` strides a frame of ``shape`` by, to at most :data:`LONGEST_SIDE` px."""
    return max(1, int(np.ceil(max(shape) / LONGEST_SIDE)))


def check_frame(image: np.ndarray, inset: bool = False) -> ScopeCheck:
    """Statistics of an RGB uint8 frame (subsampled by striding to at most 1024 px, never smoothed).

    Distinct colours are counted only when the flat blocks could make it a drawing: a camera frame
    (few flat blocks) costs one summed-area table of the 1024 px copy. With ``inset`` the blocks are
    also read for a picture inset in a flat canvas (an image's check; a video's frames skip it)."""
    shape = (int(image.shape[0]), int(image.shape[1]))
    step = _stride(shape)
    img = np.ascontiguousarray(image[::step, ::step, :3])
    if img.shape[0] < BLOCK or img.shape[1] < BLOCK:
        return ScopeCheck(flat_share=0.0, colour_share=1.0, shape=shape)
    flat, means = block_stats(img)
    placed = nested(flat, means, measure(canvas_blocks(flat, means))) if inset else None
    flat_share = float(flat.mean())
    if flat_share < FLAT_SHARE:
        return ScopeCheck(flat_share=flat_share, colour_share=None, inset=placed, shape=shape)
    packed = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    colours = len(np.unique(packed)) / packed.size
    return ScopeCheck(flat_share=flat_share, colour_share=colours, inset=placed, shape=shape)


def photographic(frames: Sequence[np.ndarray]) -> bool:
    """True when most sampled frames (at least half) look like camera photographs; stops reading
    frames as soon as the count is decided."""
    needed = (len(frames) + 1) // 2
    votes = 0
    for position in range(len(frames)):
        votes += check_frame(frames[position]).photographic
        if votes >= needed or votes + len(frames) - position - 1 < needed:
            break
    return bool(frames) and votes >= needed


@dataclass(frozen=True)
class Scope:
    """Why a medium is out of the detectors' scope (no score), or why their verdict is limited."""

    out_of_scope: list[str] = field(default_factory=list)
    limited: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    """The reasons of ``limited`` that weaken every pixel signal, not only the face model's."""

    @property
    def photographic(self) -> bool:
        """In scope: the detectors' scores mean something here."""
        return not self.out_of_scope


def _blank(frames: Sequence[np.ndarray]) -> bool:
    return bool(frames) and all(
        float(f[:: max(1, f.shape[0] // 256), :: max(1, f.shape[1] // 256)].std()) < BLANK_STD for f in frames
    )


def image_check(info: MediaInfo, frames: Sequence[np.ndarray]) -> ScopeCheck | None:
    """An image's own check (the drawing test and the inset picture, :func:`check_frame`) when the
    scope reads one: a single frame, not blank, of a file not heavily compressed (heavy compression
    flattens a photo's blocks too: such a file is degraded, not a drawing); None otherwise."""
    if info.kind != "image" or len(frames) != 1 or _blank(frames) or _heavy_compression(info) is not None:
        return None
    return check_frame(frames[0], inset=True)


def inset_box(check: ScopeCheck | None) -> tuple[int, int, int, int] | None:
    """Top, left, bottom and right (pixels) of the inset picture that ``check`` (:func:`image_check`)
    found in its frame, :data:`INSET_TRIM` blocks inside each side of its box that lies
    away from the frame's edges, so no canvas comes with it; None when it found none, or when the cut
    would be under :data:`MIN_SIDE` px on its short side: too small to judge alone (an ImageNet
    product shot on white cut to a 144x32 strip of the product read as generated, 1.05 against the
    whole image's -2.02)."""
    if check is None or check.inset is None or not check.inset_picture:
        return None
    shape = check.shape
    step = _stride(shape)  # the block grid is the strided frame's
    (top, left, rows, cols), (grid_rows, grid_cols) = check.inset.box, check.inset.grid
    bottom, right = top + rows, left + cols
    trim = INSET_TRIM  # blocks: the box's edge blocks straddle the picture's border
    top, left = top + trim * (top > 0), left + trim * (left > 0)
    bottom, right = bottom - trim * (bottom < grid_rows), right - trim * (right < grid_cols)
    unit = BLOCK * step
    box = (top * unit, left * unit, min(bottom * unit, shape[0]), min(right * unit, shape[1]))
    return box if min(box[2] - box[0], box[3] - box[1]) >= MIN_SIDE else None


def inset_picture(image: np.ndarray, check: ScopeCheck | None) -> np.ndarray:
    """The picture that ``image`` shows inset in a flat canvas, cut out of it (:func:`inset_box`), or
    ``image`` itself when ``check`` (:func:`image_check` of it) found no inset picture.

    The synthetic-image model judges this cut: on the dev suite's screenshots the canvas in its views
    (bars, an avatar, lines of text) moved its logits towards each other (real median -1.2, generated
    0.9), which no fusion section fitted on photos maps right (final-score ECE 0.254), while the same
    pictures cut out scored like photos (-3.0 and 3.7; ECE 0.058). A photo padded with flat bars cuts
    back to the photo. Lines of text right above or below the picture are left out, and so are a
    card's header and actions when its picture could not be cut inside it (:func:`_without_text_rows`)."""
    box = inset_box(check)
    if box is None or check is None:
        return image
    if image.shape[:2] != check.shape:
        raise ValueError(f"a check of a {check.shape} frame cannot cut a {image.shape[:2]} one")
    top, left, bottom, right = _without_text_rows(image, box)
    return image[top:bottom, left:right]


CANVAS_ROW_SHARE = 0.98
"""A pixel row is the canvas's when this share of its pixels is within
:data:`CANVAS_TOL` of the canvas's colour just above (or below) the picture's box."""
ROW_SAMPLE = 4
"""A row's canvas share is read on every this-many-th pixel (times the check's stride): a 3000 px
padded photo's two bands took 108 ms read whole."""


def _without_text_rows(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``box`` without the lines of text a page sets right above or below a picture, as wide as it: they
    lie within a block of it, so the blocks join them to it, but a row of the canvas's own colour
    separates them in the pixels. The top side moves below the last such row in the cut's top quarter
    (the bottom side likewise). The colour is the canvas's just outside the box's untrimmed side, or
    the box's own margin colour when it is a card (:func:`_margin_colour`): a card whose picture could
    not be cut inside it (its border as white as the card) keeps the card's header and actions
    otherwise."""
    top, left, bottom, right = box
    step = _stride(image.shape[:2])
    quarter, margin = (bottom - top) // 4, INSET_TRIM * BLOCK * step + 1
    columns = slice(left, right, ROW_SAMPLE * step)  # every row is read, a few of its pixels
    card = _margin_colour(image, box)
    for side in ("top", "bottom"):
        outside = top - margin if side == "top" else bottom + margin - 1
        colours = [] if card is None else [card]
        if 0 <= outside < image.shape[0]:
            colours.append(np.median(image[outside, columns], axis=0))
        band = image[top : top + quarter] if side == "top" else image[bottom - quarter : bottom]
        canvas_rows = np.zeros(len(band), bool)
        for colour in colours:
            near = (np.abs(band[:, columns].astype(np.int16) - colour) <= CANVAS_TOL).all(axis=-1)
            canvas_rows |= near.mean(axis=1) >= CANVAS_ROW_SHARE
        rows = np.flatnonzero(canvas_rows)
        if rows.size and side == "top":
            top += int(rows[-1]) + 1
        elif rows.size:
            bottom -= quarter - int(rows[0])
    return (top, left, bottom, right) if min(bottom - top, right - left) >= MIN_SIDE else box


def _margin_colour(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """The colour of the box's own margins above and below the cut, when both are mostly (half their
    pixels, rounded to 4 grey levels) one colour and the same one: a card's paper above and below its
    picture. None otherwise: a photo's own sky and ground differ (a night photo's black sky, taken for
    a margin alone, cut 90 of its 360 rows). Each margin is half the trim deep, read inside the box's
    untrimmed side (a card's header starts a block below its edge)."""
    top, left, bottom, right = box
    step = _stride(image.shape[:2])
    depth = INSET_TRIM * BLOCK * step // 2
    if top - depth < 0 or bottom + depth > image.shape[0]:
        return None
    columns = slice(left, right, ROW_SAMPLE * step)  # a few pixels of each row, as the rows are read
    modes = []
    for strip in (image[top - depth : top, columns], image[bottom : bottom + depth, columns]):
        levels = strip.reshape(-1, 3).astype(np.int32) // 4  # 64 levels a channel, packed in one int
        keys, counts = np.unique(levels[:, 0] << 12 | levels[:, 1] << 6 | levels[:, 2], return_counts=True)
        k = int(np.argmax(counts))
        if counts[k] < 0.5 * counts.sum():
            return None
        modes.append(int(keys[k]))
    if modes[0] != modes[1]:
        return None
    mode = np.array([modes[0] >> 12, (modes[0] >> 6) & 63, modes[0] & 63])
    return mode * 4 + 2  # the middle of its 4 levels


class _Unread:
    """The image's check was not passed to :func:`assess`: it runs its own."""


_UNREAD = _Unread()


def _out_of_scope(info: MediaInfo, frames: Sequence[np.ndarray], check: ScopeCheck | None) -> list[str]:
    """The reasons; ``check`` is the image's own check (:func:`image_check`), None when none ran."""
    reasons = []
    if max(info.width, info.height) > MAX_ASPECT * min(info.width, info.height):
        reasons.append(f"an extreme strip ({info.width}x{info.height} px)")
    if _blank(frames):
        reasons.append("blank (no detail to judge)")
    elif _heavy_compression(info) is None and not (  # heavily compressed: degraded, not a drawing
        photographic(frames) if check is None else _picture_photographic(frames[0], check)
    ):
        reasons.append(NOT_PHOTOGRAPHIC)
    return reasons


def _picture_photographic(image: np.ndarray, check: ScopeCheck) -> bool:
    """Whether the image (``check`` is its :func:`image_check`) looks like a camera photograph or,
    when it shows a picture inset in a flat canvas, that picture cut out of it does: a small photo in
    a large flat page or card made the whole image read as a drawing (on the dev suite's layouts'
    calibrate halves 6 to 11 of 175 copies read so whole, of which the cut pictures of 4 to 11 read
    as photos, every card copy's among them; the others were not cut, or their cut is flat too: a
    product shot on white)."""
    if check.photographic:
        return True
    picture = inset_picture(image, check)
    return picture is not image and check_frame(picture).photographic


def _inset(check: ScopeCheck | None) -> list[str]:
    if check is not None and check.inset is not None and check.inset_picture:
        share = f"{check.inset.cover:.0%}"
        judged = (
            "the picture cut out of it"
            if inset_box(check) is not None
            else "the whole image: the picture is too small to judge alone"
        )
        return [
            f"a picture inset in a flat canvas, such as a screenshot (the picture fills about {share}; "
            f"the synthetic-image model judged {judged})"
        ]
    return []


def _heavy_compression(info: MediaInfo) -> str | None:
    """The reason when a JPEG, lossy WebP, AVIF or HEIC was saved at a quality the models were not
    validated on."""
    quality = info.encoder_quality  # set only for the formats of LOSSY_FORMATS
    if quality is None or quality >= LOSSY_FORMATS[info.format][1]:
        return None
    return f"heavy {LOSSY_FORMATS[info.format][0]} compression (quality about {quality})"


def _degraded(info: MediaInfo) -> list[str]:
    reasons = []
    heavy = _heavy_compression(info)
    if heavy is not None:
        reasons.append(heavy)
    if info.kind == "video" and info.duration_s and info.fps:
        stream_bytes = info.size_bytes if info.video_bytes is None else info.video_bytes
        bpp = stream_bytes * 8 / (info.duration_s * info.fps * info.width * info.height)
        if bpp < MIN_VIDEO_BPP:
            reasons.append(f"heavily compressed video ({bpp:.3f} bits per pixel)")
    if min(info.width, info.height) < MIN_SIDE:
        size = f"{info.width}x{info.height} px"
        tiny = max(info.width, info.height) < MIN_SIDE
        narrow = f"a picture under {MIN_SIDE} px on its short side ({size})"
        reasons.append(f"a tiny picture ({size})" if tiny else narrow)
    return reasons


def _unvalidated_format(info: MediaInfo) -> list[str]:
    unvalidated = info.kind == "image" and info.format in UNVALIDATED_IMAGE_FORMATS
    if not unvalidated or info.encoder_quality is not None:  # quality 0 is a quality
        return []
    name = LOSSY_FORMATS[info.format][0]
    return [f"{name}, a format the detectors were not validated on (quality unknown)"]


def greyscale(frame: np.ndarray) -> bool:
    """Whether an RGB uint8 frame has no colour (see the module docstring), on a copy strided to
    about 256 px."""
    step = max(1, max(frame.shape[:2]) // 256)
    f = frame[::step, ::step, :3]
    chroma = f.max(axis=2).astype(np.int16) - f.min(axis=2)
    return bool((chroma <= GREY_CHROMA).mean() >= GREY_SHARE)


def _greyscale(frames: Sequence[np.ndarray]) -> list[str]:
    if frames and all(greyscale(f) for f in frames):
        return ["greyscale (no colour; nearly all media the detectors were validated on are in colour)"]
    return []


def _faceless_video(info: MediaInfo, face_sides: Sequence[float]) -> list[str]:
    if info.kind == "video" and not face_sides:
        return ["no face found (the video score was fitted on videos of faces only)"]
    return []


def _small_faces(face_sides: Sequence[float], min_face_side: float) -> list[str]:
    if face_sides and max(face_sides) < min_face_side:
        # rounded down and up: a 39.6 px face against 40 read "largest 40 px; the face model needs 40"
        largest, needed = math.floor(max(face_sides)), math.ceil(min_face_side)
        return [f"faces too small to judge (largest {largest} px; the face model needs {needed})"]
    return []


def few_frames(scope: Scope, kind: str | None, checked: int, calibrated: int | None) -> Scope:
    """``scope`` limited further when fewer of a video's frames were checked than the video fusion was
    calibrated on (``calibrated``, from ``weights/fusion.toml``; None: not recorded): a score over
    fewer frames spreads wider than the bands were set for (a short clip, ``?frames=`` or keyframes)."""
    if kind != "video" or calibrated is None or checked >= calibrated or scope.out_of_scope:
        return scope
    frames = f"{checked} frame{'s' * (checked != 1)}"
    reason = f"only {frames} checked (the video score was calibrated on {calibrated})"
    return replace(scope, limited=[*scope.limited, reason])


def assess(
    info: MediaInfo,
    frames: Sequence[np.ndarray],
    face_sides: Sequence[float],
    min_face_side: float,
    check: ScopeCheck | _Unread | None = _UNREAD,
) -> Scope:
    """The scope of one medium from its probe, sampled frames and the sides of the faces found (every
    analysis searches for faces); ``check`` is the image's own check when the caller already ran
    :func:`image_check` (it runs here otherwise)."""
    own = image_check(info, frames) if isinstance(check, _Unread) else check
    degraded = _degraded(info)
    limited = degraded + _unvalidated_format(info) + _small_faces(face_sides, min_face_side)
    out = _out_of_scope(info, frames, own)
    if not out:  # limits of a score: an item that gets none is not said to be limited by them
        limited += _greyscale(frames) + _faceless_video(info, face_sides) + _inset(own)
    return Scope(out, limited, degraded)
