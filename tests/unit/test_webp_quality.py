"""The lossy WebP quality read from the VP8 frame header, and the scope it leads to."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from detector.media.avif_quality import avif_quality, base_q_idx
from detector.media.loader import MediaLoader
from detector.media.sampling import FrameSampler
from detector.media.webp_quality import base_quantizer, webp_quality
from detector.scoring.scope import assess
from tests.support import mediagen


def _webp(image: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="WEBP", **options)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [5, 20, 35, 50, 65, 75, 90, 100])
def test_the_quality_a_webp_was_saved_at_is_read_back(quality: int) -> None:
    estimate = webp_quality(_webp(mediagen.face_photo(), quality=quality))
    assert estimate is not None
    assert abs(estimate - quality) <= 3


def test_what_is_not_lossy_vp8_has_no_quality() -> None:
    photo = mediagen.face_photo()
    assert webp_quality(_webp(photo, lossless=True)) is None
    png = io.BytesIO()
    Image.fromarray(photo).save(png, format="PNG")
    assert webp_quality(png.getvalue()) is None
    lossy = _webp(photo, quality=40)
    assert base_quantizer(lossy[:40]) is None  # the VP8 chunk is cut short
    assert base_quantizer(lossy[:60]) is not None  # the header fields come first: still read
    with_alpha = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    assert webp_quality(_webp(with_alpha, quality=30)) == pytest.approx(30, abs=3)  # VP8X + ALPH first


def test_heavy_webp_is_degraded_and_reported() -> None:
    loader = MediaLoader()
    for quality, degraded in ((20, True), (90, False)):
        media = loader.load(_webp(mediagen.face_photo(), quality=quality))
        assert media.info.webp_quality == pytest.approx(quality, abs=3)
        frames = [f.image for f in FrameSampler(loader=loader).sample(media).frames]
        reasons = assess(media.info, frames, [], 49.0).degraded
        assert [r.split(" (")[0] for r in reasons] == (["heavy WebP compression"] if degraded else [])


def _saved(image: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [5, 20, 35, 50, 75, 90, 100])
def test_the_quality_an_avif_was_saved_at_is_read_back(quality: int) -> None:
    data = _saved(mediagen.face_photo(), "AVIF", quality=quality)
    assert avif_quality(data, 512, 512) == pytest.approx(quality, abs=2)
    assert avif_quality(data, 500, 512) is None  # a sequence header of another size is not the image's
    assert base_q_idx(data[: data.index(b"mdat") + 8], 512, 512) is None  # cut inside the headers


def test_unreadable_heic_and_avif_are_limited_heavy_avif_degraded() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    loader = MediaLoader()
    photo = mediagen.face_photo()
    heic = loader.load(_saved(photo, "HEIF", quality=80))
    assert assess(heic.info, [], [], 49.0).limited == []  # its quality is read (test_heic_quality)
    scope = assess(replace(heic.info, heic_quality=None), [], [], 49.0)
    assert scope.limited == ["HEIC, a format the detectors were not validated on (quality unknown)"]
    assert scope.degraded == []
    heavy = loader.load(_saved(photo, "AVIF", quality=30))
    assert heavy.info.avif_quality == pytest.approx(30, abs=2)
    assert [r.split(" (")[0] for r in assess(heavy.info, [], [], 49.0).degraded] == ["heavy AVIF compression"]
    fine = loader.load(_saved(photo, "AVIF", quality=80))
    assert assess(fine.info, [], [], 49.0).limited == []
    unread = replace(fine.info, avif_quality=None)
    assert assess(unread, [], [], 49.0).limited == [
        "AVIF, a format the detectors were not validated on (quality unknown)"
    ]
    plain = loader.load(_webp(mediagen.face_photo(), quality=90))
    assert assess(plain.info, [], [], 49.0).limited == []
