"""Self-blended images: mask geometry, where pixels change, and seed reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.self_blend import BlendResult, box_mask, hull_points, self_blend
from detector.tracks import FaceDetection

SEEDS = range(6)


@pytest.fixture(scope="module")
def face(face_photo: np.ndarray) -> tuple[np.ndarray, FaceDetection]:
    """The astronaut photo and MTCNN's detection of her face (box and five landmarks)."""
    from detector.faces import FaceExtractor

    faces = FaceExtractor(device="cpu").detect([face_photo])[0]
    assert faces, "MTCNN found no face in the astronaut photo"
    return face_photo, faces[0]


def _blend(face: tuple[np.ndarray, FaceDetection], seed: int) -> BlendResult:
    image, det = face
    return self_blend(image, det.box, det.landmarks, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_lies_inside_the_face_box(face: tuple[np.ndarray, FaceDetection], seed: int) -> None:
    image, det = face
    result = _blend(face, seed)
    assert result.mask.shape == image.shape[:2]
    assert result.mask.dtype == np.float32
    assert result.mask.min() >= 0.0
    assert result.mask.max() <= 1.0
    assert (result.mask > 0).sum() > 0.2 * det.width * det.height, "the mask covers too little of the face"
    inside = box_mask(image.shape[:2], det.box) > 0
    assert not (result.mask[~inside] > 0).any(), "mask leaks outside the face box"


@pytest.mark.parametrize("seed", SEEDS)
def test_blend_changes_pixels_only_inside_the_mask(face: tuple[np.ndarray, FaceDetection], seed: int) -> None:
    image, _ = face
    result = _blend(face, seed)
    changed = (result.image != image).any(axis=2)
    assert changed.any(), "the blended image equals its source"
    assert not (changed & (result.mask == 0)).any(), "pixels changed outside the mask"
    assert result.image.dtype == np.uint8
    assert result.image.shape == image.shape


def test_same_seed_same_output_other_seed_other_output(face: tuple[np.ndarray, FaceDetection]) -> None:
    first, again, other = _blend(face, 7), _blend(face, 7), _blend(face, 8)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.mask, again.mask)
    assert not np.array_equal(first.image, other.image)


def test_hull_points_surround_the_landmarks(face: tuple[np.ndarray, FaceDetection]) -> None:
    _, det = face
    points = hull_points(det.landmarks)
    lo, hi = points.min(0), points.max(0)
    assert (det.landmarks >= lo).all()
    assert (det.landmarks <= hi).all()


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        self_blend(np.zeros((8, 8), np.uint8), (0, 0, 4, 4), np.zeros((5, 2)), 0)
