"""Pseudo-fake generators: self-blends and landmark-matched swaps change pixels only inside their mask
and are deterministic for a seed; masks come in every shape and stay near the face."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.landmarks import LandmarkModel
from datasets.masks import SHAPES, MaskConfig, blend, random_mask
from datasets.self_blend import BlendResult, self_blend
from datasets.swap import nearest_donor, normalised_shape, swap_blend

SEEDS = range(6)


@pytest.fixture(scope="module")
def face(face_photo: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The astronaut photo, dlib's 68 landmarks of her face and MTCNN's box."""
    from detector.faces.extract import FaceExtractor

    faces = FaceExtractor(device="cpu").detect([face_photo])[0]
    assert faces, "MTCNN found no face in the astronaut photo"
    landmarks = LandmarkModel()(face_photo, faces[0].box)
    return face_photo, landmarks, faces[0].box


@pytest.fixture(scope="module")
def donor(face_photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Another face: the astronaut mirrored and tinted, with its landmarks mirrored too."""
    from detector.faces.extract import FaceExtractor

    image = np.ascontiguousarray(face_photo[:, ::-1])
    image = np.clip(image.astype(np.int16) + np.array([30, -10, -20]), 0, 255).astype(np.uint8)
    box = FaceExtractor(device="cpu").detect([image])[0][0].box
    return image, LandmarkModel()(image, box)


def test_landmarks_lie_on_the_face(face: tuple[np.ndarray, np.ndarray, tuple[float, ...]]) -> None:
    _, landmarks, box = face
    assert landmarks.shape == (68, 2)
    x1, y1, x2, y2 = box
    inside = (
        (landmarks[:, 0] > x1 - 10)
        & (landmarks[:, 0] < x2 + 10)
        & (landmarks[:, 1] > y1)
        & (landmarks[:, 1] < y2 + 20)
    )
    assert inside.mean() > 0.95
    # the mouth (48-67) is below the eyes (36-47), the nose tip (30) between them
    assert landmarks[48:68, 1].mean() > landmarks[30, 1] > landmarks[36:48, 1].mean()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_mask_shape_covers_part_of_the_face(
    face: tuple[np.ndarray, np.ndarray, tuple[float, ...]], shape: str
) -> None:
    image, landmarks, box = face
    mask = random_mask(image.shape[:2], landmarks, np.random.default_rng(0), MaskConfig(shapes=(shape,)))
    assert mask.dtype == np.float32
    assert mask.min() >= 0.0
    assert mask.max() <= 1.0
    x1, y1, x2, y2 = (int(v) for v in box)
    area = (x2 - x1) * (y2 - y1)
    assert (mask > 0).sum() > 0.1 * area, f"{shape} mask covers too little"
    _ys, xs = np.nonzero(mask)
    assert xs.min() > x1 - 0.5 * (x2 - x1), f"{shape} mask strays left of the face"
    assert xs.max() < x2 + 0.5 * (x2 - x1), f"{shape} mask strays right of the face"


def _changed_only_inside(image: np.ndarray, result: BlendResult) -> None:
    changed = (result.image != image).any(axis=2)
    assert changed.any(), "the pseudo-fake equals its source"
    assert not (changed & (result.mask == 0)).any(), "pixels changed outside the mask"
    assert result.image.dtype == np.uint8
    assert result.image.shape == image.shape


@pytest.mark.parametrize("seed", SEEDS)
def test_self_blend_changes_pixels_only_inside_its_mask(
    face: tuple[np.ndarray, np.ndarray, tuple[float, ...]], seed: int
) -> None:
    image, landmarks, _ = face
    _changed_only_inside(image, self_blend(image, landmarks, seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_swap_changes_pixels_only_inside_its_mask(
    face: tuple[np.ndarray, np.ndarray, tuple[float, ...]], donor: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    image, landmarks, _ = face
    _changed_only_inside(image, swap_blend(image, landmarks, donor[0], donor[1], seed))


def test_generators_are_deterministic_per_seed(
    face: tuple[np.ndarray, np.ndarray, tuple[float, ...]], donor: tuple[np.ndarray, np.ndarray]
) -> None:
    image, landmarks, _ = face
    for make in (
        lambda s: self_blend(image, landmarks, s),
        lambda s: swap_blend(image, landmarks, *donor, s),
    ):
        first, again, other = make(7), make(7), make(8)
        np.testing.assert_array_equal(first.image, again.image)
        np.testing.assert_array_equal(first.mask, again.mask)
        assert not np.array_equal(first.image, other.image)


def test_swap_pastes_the_aligned_donor_inside_the_mask(
    face: tuple[np.ndarray, np.ndarray, tuple[float, ...]], donor: tuple[np.ndarray, np.ndarray]
) -> None:
    """Inside a full-strength mask the swap shows the donor warped onto the target's landmarks."""
    from datasets.self_blend import SelfBlendConfig
    from datasets.swap import align_donor

    image, landmarks, _ = face
    config = SelfBlendConfig(jpeg_prob=0.0, resample_prob=0.0, mask=MaskConfig(blend_ratios=(1.0,)))
    result = swap_blend(image, landmarks, *donor, 3, config)
    core = result.mask > 0.99
    assert core.sum() > 500
    aligned = align_donor(donor[0], donor[1], landmarks, image.shape[:2])
    grey = lambda a: a.astype(np.float32).mean(axis=2)[core]  # noqa: E731 - colour is transferred, shape is not
    assert (
        np.corrcoef(grey(result.image), grey(aligned))[0, 1]
        > np.corrcoef(grey(result.image), grey(image))[0, 1]
    )


def test_nearest_donor_prefers_the_same_shape(face: tuple[np.ndarray, np.ndarray, tuple[float, ...]]) -> None:
    _, landmarks, _ = face
    shifted = landmarks * 1.7 + 40.0  # same shape, other scale and place
    distorted = landmarks.copy()
    distorted[48:68] += np.array([0.0, 25.0])  # mouth moved
    assert nearest_donor(landmarks, [distorted, shifted]) == 1
    np.testing.assert_allclose(normalised_shape(shifted), normalised_shape(landmarks), atol=1e-6)


def test_blend_with_an_empty_mask_is_the_identity() -> None:
    target = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    out = blend(target, np.zeros_like(target), np.zeros((16, 16), np.float32))
    np.testing.assert_array_equal(out, target)


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        self_blend(np.zeros((8, 8), np.uint8), np.zeros((68, 2)), 0)
