"""Faces detected in whole frames at anchors and followed in small regions between them.

MTCNN over a whole frame is most of a video's face time: its pyramid searches every face size,
down to the smallest face judged, everywhere in the frame. :class:`DetectionPlan` searches whole
frames only at *anchors* (every ``FaceSettings.full_detect_every``-th sampled frame, and the last)
and plans the frames between two resolved frames ``a < b`` from what they hold:

- When the faces of ``a`` and ``b`` pair one to one by the tracking rule
  (:func:`detector.faces.tracks.pair_greedily`; none on either side pairs too), every frame
  between them is searched only in one *region* per pair: the union of the pair's two boxes,
  widened by :data:`REGION_PAD` x the larger side on every side, clipped to the frame, and
  scaled down (never up) so that the smaller face of the pair is :data:`REGION_FACE_SCALE` x the
  smallest face searched. Faces found there are mapped back to the frame, and one face found by
  two regions (IoU >= 0.5) counts once, at its higher probability.
- Otherwise, or when neither holds a face and the stretch is an anchors' one (a face the detector
  missed at both anchors would be missed throughout), the frame halfway between them is searched
  whole and both halves are planned again; a half without faces at either end holds none.
- A frame where some region finds no face, or a face cut by one of its edges inside the frame
  (a face moved out of it, or another one reaches into it), is searched whole in the next round.

So a face present at both ends of a stretch is found wherever it is in between, and a face that
enters or leaves splits the stretch until its frames are searched whole. What the plan can miss
is a face seen only between searched frames whose faces agree (fewer than
``full_detect_every / 2`` sampled frames when no face is around, ``full_detect_every - 1``
beside a followed face); ``full_detect_every = 1`` searches every frame whole.

Each round's requests are plain RGB images for one call of any face detector (in process, a Serve
deployment that batches them with other requests, a scan actor), so the plan runs unchanged
everywhere; a region's requests within a stretch share one shape, so they batch together.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detector.faces.tracks import FaceDetection, box_iou, pair_greedily
from detector.media.frames import HasImage, Images
from detector.settings import FaceSettings

__all__ = ["REGION_FACE_SCALE", "REGION_PAD", "DetectionPlan", "detect_planned"]

REGION_PAD = 0.5
"""A region reaches this many face sides beyond the union of its pair's boxes on every side."""

REGION_FACE_SCALE = 4.0
"""A region is scaled so the smaller face of its pair is this many times the smallest face searched.

MTCNN's box of a face depends a little on the scale it is found at: on the bench clips, region
boxes were 2.1% smaller than whole-frame ones on average at 2.5 (median 0.8%), 1.4% at 4 (median
0.2%), 0.3% at 6, while the region's cost grows with the square of this."""

DUPLICATE_IOU = 0.5

Faces = list[FaceDetection]


@dataclass(frozen=True)
class _Region:
    """Where frame ``position`` is searched: full-resolution bounds (end exclusive) and copy size."""

    position: int
    x0: int
    y0: int
    x1: int
    y1: int
    width: int
    height: int


class DetectionPlan:
    """Rounds of face-detection requests for the frames of one medium, in sampling order."""

    def __init__(self, images: Sequence[np.ndarray], settings: FaceSettings, min_face_px: float) -> None:
        self._images = images if isinstance(images, Images) else Images(list(images))
        self._settings = settings
        self._min_face = float(min_face_px)
        self._done: dict[int, Faces] = {}
        n = len(self._images)
        anchors = sorted(set(range(0, n, settings.full_detect_every)) | ({n - 1} if n else set()))
        self._whole: list[int] = anchors
        self._regions: list[_Region] = []
        self._stretches: list[tuple[int, int, bool]] = [(a, b, False) for a, b in itertools.pairwise(anchors)]
        self.rounds = 0
        self.whole_searches = 0
        self.region_searches = 0

    @property
    def finished(self) -> bool:
        return not self._whole and not self._regions

    def requests(self) -> Images:
        """This round's images: whole frames (unpacked as the detector reads them), then region
        copies (empty once finished)."""
        cuts: list[HasImage | np.ndarray] = []
        unpacked: dict[int, np.ndarray] = {}  # one frame's RGB at a time, for all its regions in a row
        for region in self._regions:
            if region.position not in unpacked:
                unpacked = {region.position: self._images[region.position]}
            cuts.append(self._cut(unpacked[region.position], region))
        return Images([self._images.source(p) for p in self._whole] + cuts)

    def take(self, found: Sequence[Sequence[FaceDetection]]) -> None:
        """The detector's faces for :meth:`requests`, in their order; plans the next round."""
        asked = len(self._whole) + len(self._regions)
        if len(found) != asked:
            raise ValueError(f"expected faces for {asked} requests, got {len(found)}")
        for position, faces in zip(self._whole, found, strict=False):
            self._done[position] = [replace(d, frame_index=position) for d in faces]
        kept: dict[int, Faces] = {}
        missed: set[int] = set()
        for region, faces in zip(self._regions, found[len(self._whole) :], strict=True):
            whole = [d for d in faces if not self._cut_by_edge(region, d)]
            kept.setdefault(region.position, []).extend(self._mapped(region, d) for d in whole)
            if not whole or len(whole) < len(faces):
                missed.add(region.position)  # the face left its region, or another face reaches in
        for position, faces in kept.items():
            if position not in missed:
                self._done[position] = _once(faces)
        self.rounds += 1
        self.whole_searches += len(self._whole)
        self.region_searches += len(self._regions)
        self._plan(sorted(missed))

    def run(self, detect: Callable[[Sequence[np.ndarray]], Sequence[Sequence[FaceDetection]]]) -> list[Faces]:
        """Every remaining round through ``detect`` (one call per round); the faces per frame."""
        while not self.finished:
            self.take(detect(self.requests()))
        return self.result()

    def result(self) -> list[Faces]:
        """Faces per frame (largest first; ``frame_index`` is the frame's position), once finished."""
        if not self.finished:
            raise RuntimeError("the plan has requests left")
        return [self._done[p] for p in range(len(self._images))]

    def _plan(self, missed: list[int]) -> None:
        whole, regions, stretches = list(missed), [], []
        for a, b, halved in self._stretches:
            if b - a < 2:
                continue
            pairs = self._paired(self._done[a], self._done[b])
            if pairs is None or (not pairs and not halved):
                middle = (a + b) // 2
                whole.append(middle)
                stretches += [(a, middle, True), (middle, b, True)]
                continue
            for position in range(a + 1, b):
                if not pairs:
                    self._done[position] = []
                regions += [self._region(position, da, db) for da, db in pairs]
        self._whole, self._regions, self._stretches = sorted(whole), regions, stretches

    def _paired(self, first: Faces, last: Faces) -> list[tuple[FaceDetection, FaceDetection]] | None:
        """The one-to-one pairs of two frames' faces, or None when some face has no partner."""
        cfg = self._settings
        pairs = pair_greedily(first, last, cfg.track_iou, cfg.track_center_dist)
        if len(pairs) != len(first) or len(pairs) != len(last):
            return None
        return [(first[i], last[j]) for i, j in pairs]

    def _region(self, position: int, a: FaceDetection, b: FaceDetection) -> _Region:
        height, width = self._images.size(position)
        pad = REGION_PAD * max(a.side, b.side)
        x0 = max(0, math.floor(min(a.box[0], b.box[0]) - pad))
        y0 = max(0, math.floor(min(a.box[1], b.box[1]) - pad))
        x1 = min(width, math.ceil(max(a.box[2], b.box[2]) + pad))
        y1 = min(height, math.ceil(max(a.box[3], b.box[3]) + pad))
        scale = min(1.0, REGION_FACE_SCALE * self._min_face / max(1.0, min(a.side, b.side)))
        w, h = max(1, x1 - x0), max(1, y1 - y0)
        return _Region(position, x0, y0, x0 + w, y0 + h, max(1, round(w * scale)), max(1, round(h * scale)))

    @staticmethod
    def _cut(image: np.ndarray, region: _Region) -> np.ndarray:
        crop = image[region.y0 : region.y1, region.x0 : region.x1]
        if (region.width, region.height) != (crop.shape[1], crop.shape[0]):
            crop = cv2.resize(crop, (region.width, region.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop)

    def _cut_by_edge(self, region: _Region, face: FaceDetection) -> bool:
        """Whether ``face`` (copy pixels) touches an edge of the region that is not the frame's."""
        height, width = self._images.size(region.position)
        x1, y1, x2, y2 = face.box
        return (
            (region.x0 > 0 and x1 <= 1)
            or (region.y0 > 0 and y1 <= 1)
            or (region.x1 < width and x2 >= region.width - 1)
            or (region.y1 < height and y2 >= region.height - 1)
        )

    def _mapped(self, region: _Region, face: FaceDetection) -> FaceDetection:
        sx = (region.x1 - region.x0) / region.width
        sy = (region.y1 - region.y0) / region.height
        x1, y1, x2, y2 = face.box
        box = (x1 * sx + region.x0, y1 * sy + region.y0, x2 * sx + region.x0, y2 * sy + region.y0)
        marks = face.landmarks * np.array([sx, sy], np.float32) + np.array([region.x0, region.y0], np.float32)
        return replace(face, frame_index=region.position, box=box, landmarks=marks.astype(np.float32))


def _once(faces: Faces) -> Faces:
    """Faces with duplicates (IoU >= :data:`DUPLICATE_IOU`) removed, the likelier kept; largest first."""
    kept: Faces = []
    for face in sorted(faces, key=lambda d: -d.probability):
        if all(box_iou(face.box, other.box) < DUPLICATE_IOU for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda d: -d.side)


def detect_planned(
    detect: Callable[[Sequence[np.ndarray]], Sequence[Sequence[FaceDetection]]],
    images: Sequence[np.ndarray],
    settings: FaceSettings,
    min_face_px: float,
) -> list[Faces]:
    """Faces of ``images`` (frames in sampling order) by :class:`DetectionPlan` over ``detect``."""
    return DetectionPlan(images, settings, min_face_px).run(detect)
