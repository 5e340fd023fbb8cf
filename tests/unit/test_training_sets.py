"""Training-set plumbing: the shared compression chain, H.264 round trips, grid-figure tiles, the
face and synthetic-image batch builders (balanced labels, model-size crops, audit faces held out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets.compress import CompressionChain, h264_roundtrip
from datasets.face_pool import FacePool, utk_tag
from datasets.face_training import (
    FaceForgerySet,
    FaceMix,
    face_mix,
    is_audit_face,
    jitter_crop,
    source_weights,
)
from datasets.figure_tiles import grid_tiles, matches_any
from datasets.image_pool import ImagePool
from datasets.synthetic_training import FormatChain, SyntheticSet, random_view


def _textured(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    import cv2

    return np.asarray(cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC))


def test_h264_roundtrip_keeps_frames_and_degrades_with_crf() -> None:
    frames = [_textured(i) for i in range(6)]
    errors = []
    for crf in (18, 38):
        out = h264_roundtrip(frames, crf)
        assert len(out) == len(frames)
        assert all(o.shape == f.shape and o.dtype == np.uint8 for o, f in zip(out, frames, strict=True))
        errors.append(np.mean([np.abs(o.astype(int) - f).mean() for o, f in zip(out, frames, strict=True)]))
    assert 0 < errors[0] < errors[1]


def test_chain_is_identical_for_both_classes() -> None:
    """The chain draws from the rng alone: the same draws give the same output whatever the label."""
    chain = CompressionChain(h264_prob=1.0)
    images = [_textured(i, 64) for i in range(4)]
    ra, rb = np.random.default_rng(5), np.random.default_rng(5)
    a, b = chain.batch(images, ra), chain.batch(images, rb)
    assert ra.bit_generator.state == rb.bit_generator.state  # the same draws
    _same_h264_output(a, b, images)


def test_every_look_change_keeps_the_picture_and_is_seeded() -> None:
    """Each look (tone, colour, sharpening, smoothing, noise) is drawn, changes the pixels but not
    the shape, and a seed gives the same output; with ``look_prob`` 0 the chain draws no extra
    number, so configs written before the looks existed train on the same batches."""
    from datasets.augment import LOOKS, look_jitter

    image = _textured(3, 64)
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        look = LOOKS[int(np.random.default_rng(seed).integers(len(LOOKS)))]
        out = look_jitter(image, rng)
        assert (out.shape, out.dtype) == (image.shape, np.uint8)
        assert np.abs(out.astype(int) - image).mean() > 0.5, look
        assert np.array_equal(out, look_jitter(image, np.random.default_rng(seed)))
        seen.add(look)
    assert seen == set(LOOKS)
    # with every step off, the chain draws one number per step it checks: flip, gray, resize, JPEG
    idle = {"flip_prob": 0.0, "gray_prob": 0.0, "resize_prob": 0.0, "jpeg_prob": 0.0, "h264_prob": 0.0}
    chain_rng, expected = np.random.default_rng(9), np.random.default_rng(9)
    assert np.array_equal(CompressionChain(**idle).sample(image, chain_rng), image)
    expected.random(4)
    assert chain_rng.bit_generator.state == expected.bit_generator.state
    looked = CompressionChain(h264_prob=0.0, look_prob=1.0, flip_prob=0.0, resize_prob=0.0, jpeg_prob=0.0)
    assert not np.array_equal(looked.sample(image, np.random.default_rng(1)), image)


def _same_h264_output(a: list[np.ndarray], b: list[np.ndarray], originals: list[np.ndarray]) -> None:
    """Two encodes of the same frames at the same CRF. libx264 through PyAV is not bit-reproducible
    here (run to run up to ~5 grey levels at CRF 33 on 96 px frames, single-threaded too), so: the
    two copies are closer to each other than either is to the original."""
    for x, y, o in zip(a, b, originals, strict=True):
        assert np.abs(x.astype(int) - y).mean() < 0.6 * np.abs(x.astype(int) - o).mean()


def test_grid_tiles_and_dev_matching() -> None:
    figure = np.zeros((400, 700, 3), np.uint8)
    tiles = [_textured(i, 150) for i in range(6)]
    for i, tile in enumerate(tiles):
        y, x = 20 + (i // 3) * 190, 20 + (i % 3) * 220
        figure[y : y + 150, x : x + 150] = tile
    figure[185:195, 30:300] = 255  # a caption line between rows
    found = grid_tiles(figure)
    assert len(found) == 6
    assert all(abs(t.shape[0] - 144) <= 2 for t in found)
    assert matches_any(found[4], [tiles[4][20:120, 20:120]])
    assert not matches_any(found[4], [tiles[1][20:120, 20:120]])


def test_utk_tags_and_audit_split() -> None:
    assert utk_tag("26_1_3_20170104235421742.jpg.chip.jpg") == "age=26;gender=1;race=3"
    assert utk_tag("notutk.jpg") == ""
    groups = [f"utkface/{i}_0_0_2017" for i in range(2000)]
    share = np.mean([is_audit_face(g) for g in groups])
    assert 0.10 < share < 0.20
    assert not is_audit_face("lfw_gray/Someone")


def _pool(n: int, label: int) -> FacePool:
    from tests.support.mediagen import face_photo

    photo = face_photo()[40:264, 150:374]
    lm = np.stack(np.meshgrid(np.linspace(70, 150, 17), np.linspace(60, 170, 4)), -1).reshape(-1, 2)[:68]
    return FacePool(
        np.stack([photo] * n),
        np.stack([lm.astype(np.float32)] * n),
        np.full(n, label, np.uint8),
        [f"g/{i}" for i in range(n)],
        [""] * n,
        [""] * n,
        2.0,
    )


def test_face_batches_are_balanced_model_size_crops() -> None:
    data = FaceForgerySet(_pool(6, 0), _pool(2, 1), 1.3, 64, CompressionChain(h264_prob=0.5))
    batch = data.batch(8, np.random.default_rng(0))
    assert len(batch.images) == 8
    assert batch.labels.tolist() == [0.0, 1.0] * 4
    assert all(im.shape == (64, 64, 3) for im in batch.images)
    fixed = data.fixed(1)
    assert fixed.labels.sum() == 6 + 2
    assert len(fixed.labels) == 12 + 2


def test_source_shares_set_how_often_each_source_is_drawn() -> None:
    groups = [f"photos/{i}" for i in range(90)] + [f"video/clip{i % 2}" for i in range(10)]
    assert source_weights(groups, {}) is None
    weights = source_weights(groups, {"video": 0.3})
    assert weights is not None
    assert weights.sum() == pytest.approx(1.0)
    assert weights[90:].sum() == pytest.approx(0.3)
    assert np.allclose(weights[:90], 0.7 / 90)
    for bad in ({"video": 1.0}, {"video": 0.0}, {"absent": 0.1}, {"photos": 0.5, "video": 0.4}):
        with pytest.raises(ValueError, match=r"shares|no faces|no other faces"):
            source_weights(groups, bad)
    with pytest.raises(ValueError, match="no other faces"):
        source_weights([f"video/{i}" for i in range(4)], {"video": 0.5})


def test_weighted_draws_feed_the_real_half_and_the_pseudo_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    base = _pool(10, 0)
    pool = FacePool(base.crops, base.landmarks, base.labels, [*(f"p/{i}" for i in range(8)), "v/0", "v/1"],
                    base.tags, base.sources, base.context_margin)  # fmt: skip
    weights = source_weights(pool.groups, {"v": 0.9})
    data = FaceForgerySet(pool, None, 1.3, 64, CompressionChain(), real_weights=weights)
    rng = np.random.default_rng(3)
    drawn = [data._draw_real(rng) for _ in range(400)]
    assert 0.8 < np.mean([d >= 8 for d in drawn]) < 0.97
    made_from: list[int] = []
    monkeypatch.setattr(data, "pseudo_fake", lambda i, _rng: made_from.append(i) or pool.crops[i])
    data.batch(200, rng)  # 100 real crops and 100 pseudo-fakes, each from a weighted draw
    assert 0.8 < np.mean([i >= 8 for i in made_from]) < 0.97
    uniform = FaceForgerySet(pool, None, 1.3, 64, CompressionChain())
    assert np.mean([uniform._draw_real(rng) >= 8 for _ in range(400)]) < 0.35
    with pytest.raises(ValueError, match="one probability per real face"):
        FaceForgerySet(pool, None, 1.3, 64, CompressionChain(), real_weights=np.ones(3) / 3)


def test_a_recipe_mix_sets_how_often_real_fakes_are_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """``data.mix`` of a recipe: real_fake 0 draws only pseudo-fakes, 1 only the real fakes;
    unknown keys and impossible shares are errors, not silently the defaults."""
    assert face_mix({}) == FaceMix()
    real, fakes = _pool(6, 0), _pool(2, 1)
    rng = np.random.default_rng(5)
    for share, expected in ((0.0, 0.0), (1.0, 1.0)):
        data = FaceForgerySet(real, fakes, 1.3, 64, CompressionChain(), mix=face_mix({"real_fake": share}))
        pseudo: list[int] = []
        monkeypatch.setattr(data, "pseudo_fake", lambda i, _rng, out=pseudo: out.append(i) or real.crops[i])
        for _ in range(50):
            data.fake(rng)
        assert 1 - len(pseudo) / 50 == expected
    default = FaceForgerySet(real, fakes, 1.3, 64, CompressionChain(), mix=face_mix({"swap": 0.5}))
    assert default.mix.real_fake == FaceMix().real_fake
    assert default.mix.swap == 0.5
    for bad in ({"realfake": 0.1}, {"real_fake": 1.5}, {"self_blend": 0.0, "swap": 0.0}, {"swap": -1}):
        with pytest.raises(ValueError, match=r"data\.mix"):
            face_mix(bad)


def test_jitter_crop_without_rng_is_the_centre() -> None:
    context = np.zeros((200, 200, 3), np.uint8)
    context[70:130, 70:130] = 255  # the centre 60 px: a 1.3 margin at context 2.0 is 130 px wide
    crop = jitter_crop(context, 2.0, 1.3, 130, None)
    assert crop[65, 65].tolist() == [255, 255, 255]
    assert crop[2, 2].tolist() == [0, 0, 0]


def test_synthetic_batches_balance_families_and_formats() -> None:
    pool = ImagePool()
    for i in range(6):
        pool.add(_textured(i, 200), 0, "photos", f"p/{i}")
    pool.add(_textured(9, 300), 1, "gen_a", "a/0")
    pool.add(_textured(10, 180), 1, "gen_b", "b/0")
    data = SyntheticSet(pool, 96, FormatChain(), simulated_share=0.5)
    batch = data.batch(10, np.random.default_rng(0))
    assert batch.labels.tolist() == [0.0, 1.0] * 5
    assert all(im.shape == (96, 96, 3) for im in batch.images)
    view = random_view(_textured(3, 300), 96, np.random.default_rng(1), native_prob=1.0)
    assert view.shape == (96, 96, 3)
    with pytest.raises(ValueError, match="real and generated"):
        SyntheticSet(ImagePool(), 96, FormatChain())


def test_audit_limit_is_an_even_subset_over_every_group(tmp_path: Path) -> None:
    from detector.evaluation.audit import audit_faces

    for age in range(1, 90):
        for race in range(5):
            (tmp_path / f"{age}_{age % 2}_{race}_20170116{age:03d}{race}.jpg.chip.jpg").touch()
    every = audit_faces(tmp_path)
    subset = audit_faces(tmp_path, limit=len(every) // 4)
    assert len(subset) == len(every) // 4
    assert {f.path for f in subset} <= {f.path for f in every}
    # evenly spaced over the sorted names (age first): every age band stays in, not only the young
    assert {f.age for f in subset} == {f.age for f in every}
    assert len({f.race for f in subset}) >= 4


def test_plain_upscaling_reaches_both_classes_and_validation() -> None:
    pool = ImagePool()
    pool.add(_textured(1, 120), 0, "photos", "p/0")
    pool.add(_textured(2, 100), 1, "gen", "g/0")
    always = SyntheticSet(pool, 96, FormatChain(), upscale_prob=1.0, upscale_range=(1.5, 2.0))
    never = SyntheticSet(pool, 96, FormatChain())
    for label, side in ((0, 120), (1, 100)):
        big = always.draw(label, np.random.default_rng(label))
        assert side * 1.5 <= big.shape[0] <= side * 2.0
        assert big.shape[0] == big.shape[1]
        assert never.draw(label, np.random.default_rng(label)).shape[0] == side
    again = always.draw(0, np.random.default_rng(0))
    assert np.array_equal(again, always.draw(0, np.random.default_rng(0)))  # deterministic for a seed
    val = never.fixed(upscaled=2.0)
    assert val.labels.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert [im.shape[0] for im in val.images] == [120, 100, 240, 200]
    assert len(never.fixed().images) == 2


def test_h264_share_of_a_synthetic_batch_is_seeded_and_off_by_default() -> None:
    images = [_textured(i, 96) for i in range(6)]
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert FormatChain().batch(images, rng) is images
    assert rng.bit_generator.state == state  # v2 / v3 batches stay reproducible
    chain = FormatChain(h264_prob=1.0, h264_crfs=(33,))
    out = chain.batch(images, np.random.default_rng(1))
    assert all(o.shape == i.shape for o, i in zip(out, images, strict=True))
    assert all(np.abs(o.astype(int) - i).mean() > 0.5 for o, i in zip(out, images, strict=True))
    _same_h264_output(out, chain.batch(images, np.random.default_rng(1)), images)


def test_format_chain_adds_avif_and_heif_at_their_own_qualities() -> None:
    """The v5 chain's modern formats: each is a real re-encode at a quality drawn from its own range,
    seeded; the default chain draws what v2 / v3 drew (no modern format, no extra draw)."""
    from datasets.synthetic_training import reencode

    image = _textured(3, 96)
    for fmt, chain in (
        ("AVIF", FormatChain(jpeg_prob=0, webp_prob=0, avif_prob=1.0, flip_prob=0, modern_quality=(20, 20))),
        ("HEIF", FormatChain(jpeg_prob=0, webp_prob=0, heif_prob=1.0, flip_prob=0, modern_quality=(20, 20))),
        ("WEBP", FormatChain(jpeg_prob=0, webp_prob=1.0, flip_prob=0, webp_quality=(20, 20))),
    ):
        out = chain(image, np.random.default_rng(0))
        assert np.array_equal(out, reencode(image, fmt, 20)), fmt
        assert np.abs(out.astype(int) - image).mean() > 1.0, fmt
        assert not np.array_equal(out, reencode(image, fmt, 90)), fmt
    plain = FormatChain(jpeg_prob=0, webp_prob=0)
    rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    plain(image, rng)
    ref.random(), ref.random(), ref.integers(65, 96)  # flip, format roll, quality: as v2 / v3 drew
    assert rng.bit_generator.state == ref.bit_generator.state
