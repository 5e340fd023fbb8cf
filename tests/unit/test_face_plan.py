"""The face-detection plan: whole frames at anchors, regions between them (detector/faces/plan.py).

A stand-in detector finds white squares on black frames (any RGB image: whole frames and region
copies alike), so every rule of the plan is checked on exact geometry without MTCNN.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.faces.plan import DetectionPlan, detect_planned
from detector.faces.tracks import FaceDetection, box_iou
from detector.settings import FaceSettings

SIZE = (120, 200)  # frame height, width


def frame(*squares: tuple[int, int, int], level: int = 255) -> np.ndarray:
    """A black RGB frame with squares (x, y, side) of grey ``level``."""
    return paint(np.zeros((*SIZE, 3), np.uint8), *squares, level=level)


def paint(image: np.ndarray, *squares: tuple[int, int, int], level: int = 255) -> np.ndarray:
    image = image.copy()
    for x, y, side in squares:
        image[y : y + side, x : x + side] = level
    return image


LEVELS = (255, 200)


class SquareDetector:
    """Finds squares of each grey level in :data:`LEVELS` (overlapping ones stay apart); records
    the shape of every image it was asked about."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        out = []
        for position, image in enumerate(images):
            self.shapes.append(image.shape)
            faces = []
            for level in LEVELS:
                mask = (np.abs(image[..., 0].astype(int) - level) < 20).astype(np.uint8)
                count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
                for x, y, w, h, area in stats[1:count]:
                    if area >= 4:
                        box = (float(x), float(y), float(x + w), float(y + h))
                        faces.append(FaceDetection(position, box, 0.99, np.zeros((5, 2), np.float32)))
            out.append(sorted(faces, key=lambda d: -d.side))
        return out


def run(images: list[np.ndarray], every: int, min_face: float = 8.0) -> tuple[DetectionPlan, list]:
    detector = SquareDetector()
    plan = DetectionPlan(images, FaceSettings(full_detect_every=every), min_face)
    return plan, plan.run(detector)


def boxes(found: list[list[FaceDetection]]) -> list[list[tuple[float, ...]]]:
    return [[tuple(round(v) for v in d.box) for d in faces] for faces in found]


def test_every_frame_whole_when_every_is_one() -> None:
    images = [frame((10 + 5 * i, 20, 30)) for i in range(6)]
    plan, found = run(images, every=1)
    assert (plan.rounds, plan.whole_searches, plan.region_searches) == (1, 6, 0)
    assert boxes(found) == boxes(SquareDetector()(images))
    assert [d.frame_index for faces in found for d in faces] == list(range(6))


def test_a_moving_face_is_followed_in_regions_between_anchors() -> None:
    images = [frame((10 + 2 * i, 30 + i, 30)) for i in range(9)]
    plan, found = run(images, every=4)
    assert (plan.whole_searches, plan.region_searches) == (3, 6)  # anchors 0, 4, 8
    assert boxes(found) == [[(10 + 2 * i, 30 + i, 40 + 2 * i, 60 + i)] for i in range(9)]
    assert [d.frame_index for faces in found for d in faces] == list(range(9))


def test_regions_are_scaled_down_and_mapped_back() -> None:
    images = [frame((20 + 4 * i, 20, 60)) for i in range(5)]
    detector = SquareDetector()
    found = detect_planned(detector, images, FaceSettings(full_detect_every=4), min_face_px=6.0)
    # a region holds the smaller face at 4 x 6 = 24 px instead of 60: 0.4 of the frame's pixels
    regions = [s for s in detector.shapes if s != images[0].shape]
    assert len(regions) == 3
    assert len(set(regions)) == 1  # one shape per stretch: they batch
    for i, faces in enumerate(found):
        (face,) = faces
        assert box_iou(face.box, (20 + 4 * i, 20, 80 + 4 * i, 80)) > 0.9


def test_a_face_entering_between_anchors_is_found_by_halving() -> None:
    images = [frame() for _ in range(5)] + [frame((120, 40, 30)) for _ in range(4)]
    plan, found = run(images, every=4)
    assert [len(f) for f in found] == [0] * 5 + [1] * 4
    assert plan.whole_searches < len(images)


def test_faceless_anchors_probe_the_middle_once() -> None:
    """A face the detector sees only mid-stretch (missed at both anchors) is found by the probe."""
    images = [frame(), frame(), frame((50, 30, 30)), frame(), frame()]
    plan, found = run(images, every=4)
    assert [len(f) for f in found] == [0, 0, 1, 0, 0]
    faceless = [frame() for _ in range(9)]
    plan, found = run(faceless, every=4)
    assert found == [[]] * 9
    assert plan.whole_searches == 5  # anchors 0, 4, 8 and one probe per stretch


def test_a_face_that_leaves_its_region_is_searched_whole() -> None:
    images = [frame((10, 10, 30))] * 2 + [frame((150, 80, 30))] + [frame((10, 10, 30))] * 2
    plan, found = run(images, every=4)
    assert boxes(found)[2] == [(150, 80, 180, 110)]
    assert (plan.whole_searches, plan.region_searches) == (3, 3)  # anchors 0 and 4, then frame 2


def test_a_face_reaching_into_a_region_sends_the_frame_whole() -> None:
    """A second face half inside a region is not kept from it; the frame is searched whole."""
    images = [frame((10, 40, 30)), frame((10, 40, 30), (45, 40, 30)), frame((10, 40, 30))]
    plan, found = run(images, every=2)
    assert boxes(found)[1] == [(10, 40, 40, 70), (45, 40, 75, 70)]
    assert (plan.whole_searches, plan.region_searches) == (3, 1)


def test_two_regions_finding_one_face_count_it_once() -> None:
    """Overlapping faces (IoU 0.38) lie inside each other's regions: each is kept once."""
    image = paint(frame((40, 30, 30)), (50, 35, 30), level=200)
    plan, found = run([image] * 3, every=2)
    assert (plan.whole_searches, plan.region_searches) == (2, 2)
    assert sorted(boxes(found)[1]) == [(40, 30, 70, 60), (50, 35, 80, 65)]


def test_empty_and_misused_plans() -> None:
    plan = DetectionPlan([], FaceSettings(), 8.0)
    assert plan.finished
    assert len(plan.requests()) == 0
    assert plan.result() == []
    plan = DetectionPlan([frame()] * 3, FaceSettings(), 8.0)
    with pytest.raises(RuntimeError):
        plan.result()
    with pytest.raises(ValueError, match="expected faces for 2 requests"):
        plan.take([[]])


def test_each_frame_is_read_once_per_round_whatever_its_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packed frames are unpacked when read: two followed faces make two regions of a frame, cut
    from one read of it, and the anchors' whole frames are read by the detector only."""
    from detector.media.frames import Frame, Images

    reads: list[int] = []
    monkeypatch.setattr(Frame, "image", property(lambda f: reads.append(f.index) or f.pixels))
    images = [frame((10 + 2 * i, 20, 20), (150 - 2 * i, 70, 24)) for i in range(5)]
    frames = [Frame(i, i / 25, image) for i, image in enumerate(images)]
    plan = DetectionPlan(Images(frames), FaceSettings(full_detect_every=4), 8.0)
    found = plan.run(SquareDetector())
    assert (plan.whole_searches, plan.region_searches) == (2, 6)
    assert sorted(reads) == [0, 1, 2, 3, 4]
    assert boxes(found) == boxes(SquareDetector()(images))
