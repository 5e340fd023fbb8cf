"""The drawing test of the scope (:func:`detector.scoring.scope.check_frame`): exact flat blocks,
colours counted only when they could matter, and no more frames read than the vote needs."""

from __future__ import annotations

import numpy as np
import pytest

from detector.scoring.scope import BLOCK, FLAT_STD, block_stats, check_frame, photographic
from tests.support import mediagen


def float_flat(image: np.ndarray) -> np.ndarray:
    """The definition: every channel's standard deviation over the block under FLAT_STD."""
    h, w = (image.shape[0] // BLOCK) * BLOCK, (image.shape[1] // BLOCK) * BLOCK
    blocks = image[:h, :w].astype(np.float64).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3)
    flat: np.ndarray = (blocks.std(axis=(1, 3)) < FLAT_STD).all(axis=-1)
    return flat


def test_flat_blocks_follow_the_definition_at_the_boundary() -> None:
    half = np.zeros((BLOCK, BLOCK, 3), np.uint8)
    half[: BLOCK // 2] = 2  # half 0, half 2: standard deviation exactly 1, not under it
    just_under = half.copy()
    just_under[0, 0] = 1  # one pixel nearer the mean: just under 1
    one_channel = np.zeros_like(half)
    one_channel[..., 2] = half[..., 2]  # flat in two channels only
    image = np.concatenate([half, just_under, one_channel, np.full_like(half, 9)], axis=1)
    assert block_stats(image)[0].tolist() == [[False, True, False, True]]
    assert float_flat(image).tolist() == [[False, True, False, True]]


@pytest.mark.parametrize("spread", [1, 2, 3, 256])
def test_block_flatness_and_means_equal_the_definition_on_random_images(spread: int) -> None:
    rng = np.random.default_rng(spread)
    base = rng.integers(0, 256 - spread + 1, (13, 17, 1, 1, 3))
    noise = rng.integers(0, spread, (13, 17, BLOCK, BLOCK, 3))
    image = (base + noise).astype(np.uint8).transpose(0, 2, 1, 3, 4).reshape(13 * BLOCK, 17 * BLOCK, 3)
    image = np.pad(image, ((0, 5), (0, 3), (0, 0)))  # partial blocks at the edges are left out
    flat, means = block_stats(image)
    np.testing.assert_array_equal(flat, float_flat(image))
    blocks = image[: 13 * BLOCK, : 17 * BLOCK].astype(np.float64).reshape(13, BLOCK, 17, BLOCK, 3)
    np.testing.assert_allclose(means, blocks.mean(axis=(1, 3)))  # each block's mean colour


def test_colours_are_counted_only_when_the_blocks_could_make_a_drawing() -> None:
    photo = check_frame(mediagen.face_photo())
    assert photo.photographic
    assert photo.colour_share is None
    drawing = np.zeros((96, 128, 3), np.uint8)
    drawing[24:64, 32:96] = (200, 40, 40)  # on the block grid: every block flat
    flat = check_frame(drawing)
    assert flat.flat_share == 1.0
    assert flat.colour_share == pytest.approx(2 / (96 * 128))
    assert not flat.photographic
    tiny = check_frame(np.zeros((BLOCK - 1, 50, 3), np.uint8))
    assert (tiny.flat_share, tiny.colour_share, tiny.photographic) == (0.0, 1.0, True)


class Frames:
    """A sequence of frames that counts how many are read."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images, self.reads = images, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads += 1
        return self.images[index]


@pytest.mark.parametrize(
    ("kinds", "reads", "expected"),
    [
        ("pppp", 2, True),  # two of four already make half
        ("dddd", 3, False),  # after three drawings one photo cannot make half
        ("dpdp", 4, True),
        ("ddpd", 4, False),
        ("d", 1, False),
        ("", 0, False),
    ],
)
def test_the_vote_reads_no_more_frames_than_it_needs(kinds: str, reads: int, expected: bool) -> None:
    photo = mediagen.face_photo()
    drawing = np.zeros((64, 64, 3), np.uint8)
    frames = Frames([photo if k == "p" else drawing for k in kinds])
    assert photographic(frames) is expected  # type: ignore[arg-type]
    assert frames.reads == reads
    votes = [check_frame(f).photographic for f in frames.images]
    assert expected == (bool(votes) and sum(votes) * 2 >= len(votes))  # the old rule, read in full
