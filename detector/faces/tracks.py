"""Face detections and the tracks that link them across sampled frames.

Linking rule (:func:`link_tracks`), applied frame by frame in the order the frames were sampled:

1. A track is *open* while it has missed at most ``max_gap`` consecutive sampled frames (a missed
   detection, a blink of the detector); after that it is closed and never extended again.
2. Every (open track, detection) pair gets a match key. The pair matches *by overlap* when the IoU
   of the track's last box and the detection's box is at least ``iou_threshold``. Otherwise it may
   match *by distance* when the distance between the two box centres, divided by the larger of the
   two box sides, is at most ``center_dist`` and the two sides differ by less than a factor of
   :data:`MAX_SIDE_RATIO` (a face does not double in size between two samples).
3. Pairs are taken greedily: overlap matches first (highest IoU first), then distance matches
   (closest first); a track and a detection are each used at most once per frame.
4. Every unmatched detection starts a new track.

Tracks are returned longest first, then largest (mean side) first, and numbered in that order, so
``tracks[0]`` (``track_id == 0``) is the main face of a clip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_SIDE_RATIO = 2.0
DEFAULT_MAX_GAP = 2


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One face found in one frame; coordinates are full-resolution pixels of that frame.

    ``landmarks`` is a (5, 2) float32 array of (x, y): left eye, right eye, nose, mouth left,
    mouth right (MTCNN's order; "left" is the image's left). Equality is identity: two detections
    are the same only if they are the same object (the pipeline keys crops by them).
    """

    frame_index: int
    box: tuple[float, float, float, float]
    probability: float
    landmarks: np.ndarray = field(repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def side(self) -> float:
        """``max(width, height)``: the same side :func:`detector.faces.crop_face` scales by margin."""
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


@dataclass
class FaceTrack:
    """The same face followed across frames: detections ordered by frame, at most one per frame."""

    track_id: int
    detections: list[FaceDetection]

    @property
    def length(self) -> int:
        return len(self.detections)

    @property
    def mean_side(self) -> float:
        if not self.detections:
            return 0.0
        return float(np.mean([d.side for d in self.detections]))

    @property
    def frame_indices(self) -> list[int]:
        return [d.frame_index for d in self.detections]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0 when either is empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match_key(
    last: FaceDetection, det: FaceDetection, iou_threshold: float, center_dist: float
) -> tuple[int, float] | None:
    """Sort key of a candidate pair (lower is better), or None when the pair may not match."""
    iou = box_iou(last.box, det.box)
    if iou > 0 and iou >= iou_threshold:
        return (0, -iou)
    big, small = max(last.side, det.side), min(last.side, det.side)
    if small <= 0 or big / small >= MAX_SIDE_RATIO:
        return None
    (ax, ay), (bx, by) = last.center, det.center
    dist = math.hypot(ax - bx, ay - by) / big
    if dist <= center_dist:
        return (1, dist)
    return None


def pair_greedily(
    lasts: Sequence[FaceDetection],
    detections: Sequence[FaceDetection],
    iou_threshold: float,
    center_dist: float,
) -> list[tuple[int, int]]:
    """(i, j) pairs of ``lasts[i]`` with ``detections[j]`` by rules 2 and 3 above: overlap matches
    first (highest IoU first), then distance matches (closest first), each used at most once."""
    candidates: list[tuple[tuple[int, float], int, int]] = []
    for t, last in enumerate(lasts):
        for d, det in enumerate(detections):
            key = _match_key(last, det, iou_threshold, center_dist)
            if key is not None:
                candidates.append((key, t, d))
    candidates.sort()
    used_tracks: set[int] = set()
    used_dets: set[int] = set()
    pairs = []
    for _, t, d in candidates:
        if t in used_tracks or d in used_dets:
            continue
        used_tracks.add(t)
        used_dets.add(d)
        pairs.append((t, d))
    return pairs


@dataclass
class _OpenTrack:
    detections: list[FaceDetection]
    last_position: int


def link_tracks(
    per_frame: Sequence[Sequence[FaceDetection]],
    iou_threshold: float,
    center_dist: float,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[FaceTrack]:
    """Link per-frame detections into tracks by the greedy rule in this module's docstring.

    ``per_frame[i]`` holds the detections of the i-th sampled frame; gaps are counted in sampled
    frames, not in video frame numbers. The returned tracks hold the very detection objects given.
    """
    if max_gap < 0:
        raise ValueError("max_gap must be >= 0")
    open_tracks: list[_OpenTrack] = []
    closed: list[_OpenTrack] = []
    for position, detections in enumerate(per_frame):
        still_open: list[_OpenTrack] = []
        for track in open_tracks:
            (still_open if position - track.last_position - 1 <= max_gap else closed).append(track)
        open_tracks = still_open
        lasts = [track.detections[-1] for track in open_tracks]
        used_dets: set[int] = set()
        for t, d in pair_greedily(lasts, detections, iou_threshold, center_dist):
            used_dets.add(d)
            open_tracks[t].detections.append(detections[d])
            open_tracks[t].last_position = position
        for d, det in enumerate(detections):
            if d not in used_dets:
                open_tracks.append(_OpenTrack([det], position))
    everything = closed + open_tracks
    everything.sort(key=lambda t: (t.detections[0].frame_index, t.detections[0].box))
    tracks = [FaceTrack(track_id=-1, detections=o.detections) for o in everything]
    tracks.sort(key=lambda t: (-t.length, -t.mean_side))
    for number, linked in enumerate(tracks):
        linked.track_id = number
    return tracks
