"""Synthetic-image training batches: real photos and faces vs generated images, format never the cue.

Each half of a batch draws a *family* first (uniformly over the families of its class, so 3,000 SD
tiles do not drown 20 IC-Light images), then an image, then a crop: either a native-resolution crop
(generator traces intact) or the whole image rescaled, as the classifier sees both at inference.
A share of the fakes are real photos and faces rebuilt by a simulated up-sampling stage
(:mod:`datasets.artefacts`), which stands in for GAN generators no training source covers. Both
classes then get the same random re-encoding: none (PNG), JPEG or WebP at quality 65-95 (and, when
configured, WebP, AVIF and HEIF at lower qualities), so file format, which differs between the dev
classes, is never a label.

With ``upscale_prob`` > 0 an image of either class is first enlarged by ordinary software
resampling (bilinear, bicubic or Lanczos, 1.3-2.5x) before its view is cut: real photos are often
up-scaled (small originals, face chips, editors), and a model that never saw that reads plain
interpolation as generator up-sampling (the v2 model's mean logit on 150 real UTKFace adults rose
from -4.48 to -1.14 after a bicubic 2x round trip, to +2.19 after a bilinear one). Applied alike
to both classes, plain interpolation stops being a label while the generators' own traces
survive, stretched.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from datasets.artefacts import random_fake
from datasets.batch import Batch
from datasets.compress import h264_share
from datasets.image_pool import ImagePool
from detector.media.loader import save_image

MODERN_SAVE_ARGS: dict[str, dict[str, int]] = {"AVIF": {"speed": 8}, "HEIF": {}}
"""Encoder arguments beyond quality for the modern formats (AVIF at libavif speed 8: 12 ms for a
160 px view instead of 16, the same quantiser for the same quality)."""


def reencode(image: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    """``image`` saved as ``fmt`` (``JPEG``, ``WEBP``, ``AVIF`` or ``HEIF``) at ``quality`` and
    decoded again."""
    buf = io.BytesIO()
    save_image(Image.fromarray(image), buf, fmt, quality, **MODERN_SAVE_ARGS.get(fmt, {}))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class FormatChain:
    """Random re-encoding and mild rescaling applied identically to both classes; with
    ``h264_prob`` > 0 a share of each batch is also re-encoded as the frames of one H.264 clip
    (video frames reach the model after a platform's re-encode, which JPEG does not imitate).

    JPEG draws its quality from ``quality``; WebP from ``webp_quality`` when set (else ``quality``);
    AVIF and HEIF (``avif_prob``, ``heif_prob``, 0 by default) from ``modern_quality``: phones save
    HEIC and platforms serve WebP / AVIF far below the qualities JPEG is usually saved at."""

    jpeg_prob: float = 0.45
    webp_prob: float = 0.2
    quality: tuple[int, int] = (65, 95)
    flip_prob: float = 0.5
    h264_prob: float = 0.0
    h264_crfs: tuple[int, ...] = (18, 23, 28, 33)
    webp_quality: tuple[int, int] | None = None
    avif_prob: float = 0.0
    heif_prob: float = 0.0
    modern_quality: tuple[int, int] = (25, 90)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One re-encoded copy (the random draws of the default chain are those of earlier runs)."""
        out = np.ascontiguousarray(image[:, ::-1]) if rng.random() < self.flip_prob else image
        roll = rng.random()
        q = int(rng.integers(self.quality[0], self.quality[1] + 1))
        if roll < self.jpeg_prob:
            return reencode(out, "JPEG", q)
        roll -= self.jpeg_prob
        for fmt, prob, span in (
            ("WEBP", self.webp_prob, self.webp_quality),
            ("AVIF", self.avif_prob, self.modern_quality),
            ("HEIF", self.heif_prob, self.modern_quality),
        ):
            if roll < prob:
                return reencode(out, fmt, q if span is None else int(rng.integers(span[0], span[1] + 1)))
            roll -= prob
        return out

    def batch(self, images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """``images`` (same size, any class) with a random ``h264_prob`` share re-encoded together
        as H.264 at one random CRF; draws nothing from ``rng`` when ``h264_prob`` is 0."""
        if self.h264_prob <= 0:
            return images
        return h264_share(images, self.h264_prob, self.h264_crfs, rng)


UPSCALE_FLAGS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)


def upscale(image: np.ndarray, factor: float, flag: int) -> np.ndarray:
    """``image`` enlarged ``factor`` times by plain resampling (``flag``: an OpenCV interpolation)."""
    h, w = image.shape[:2]
    return np.asarray(cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=flag))


def random_upscale(image: np.ndarray, rng: np.random.Generator, scale: tuple[float, float]) -> np.ndarray:
    """``image`` enlarged by a random factor in ``scale`` with a random plain interpolation."""
    flag = UPSCALE_FLAGS[int(rng.integers(len(UPSCALE_FLAGS)))]
    return upscale(image, float(rng.uniform(*scale)), flag)


def random_view(
    image: np.ndarray, size: int, rng: np.random.Generator, native_prob: float = 0.5
) -> np.ndarray:
    """A ``size`` px square view: a native-resolution crop, or the image rescaled (short side 1-1.5x)."""
    h, w = image.shape[:2]
    if rng.random() >= native_prob or min(h, w) < size:
        scale = size * float(rng.uniform(1.0, 1.5)) / min(h, w)
        flag = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = np.asarray(
            cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=flag)
        )
        h, w = image.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(image[y : y + size, x : x + size])


class SyntheticSet:
    """Batches of ``size`` px views: half real, half generated or simulated, through one format chain."""

    def __init__(
        self,
        pool: ImagePool,
        size: int,
        chain: FormatChain,
        simulated_share: float = 0.2,
        upscale_prob: float = 0.0,
        upscale_range: tuple[float, float] = (1.3, 2.5),
    ) -> None:
        self.pool, self.size, self.chain, self.simulated_share = pool, size, chain, simulated_share
        self.upscale_prob, self.upscale_range = upscale_prob, upscale_range
        self.by_family: dict[tuple[int, str], list[int]] = defaultdict(list)
        for i, (label, family) in enumerate(zip(pool.labels, pool.families, strict=True)):
            self.by_family[(label, family)].append(i)
        self.families = {c: sorted(f for (lab, f) in self.by_family if lab == c) for c in (0, 1)}
        if not self.families[0] or not self.families[1]:
            raise ValueError("the pool needs real and generated images")

    def draw(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """An image of class ``label``: a family drawn uniformly, a member of it, maybe up-scaled."""
        family = self.families[label][int(rng.integers(len(self.families[label])))]
        members = self.by_family[(label, family)]
        image = self.pool.images[members[int(rng.integers(len(members)))]]
        if self.upscale_prob > 0 and rng.random() < self.upscale_prob:
            return random_upscale(image, rng, self.upscale_range)
        return image

    def fake(self, rng: np.random.Generator) -> np.ndarray:
        """A generated image, or with ``simulated_share`` a real one rebuilt by a simulated up-sampler."""
        if rng.random() < self.simulated_share:
            return random_fake(random_view(self.draw(0, rng), self.size, rng, native_prob=0.7), rng)
        return random_view(self.draw(1, rng), self.size, rng)

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` views (even: half real, half fake)."""
        images: list[np.ndarray] = []
        for _ in range(size // 2):
            images.append(self.chain(random_view(self.draw(0, rng), self.size, rng), rng))
            images.append(self.chain(self.fake(rng), rng))
        images = self.chain.batch(images, rng)
        return Batch(images, np.tile(np.asarray([0.0, 1.0], np.float32), size // 2))

    def fixed(self, upscaled: float = 0.0) -> Batch:
        """Every pool image whole (the classifier does its own views), for validation; with
        ``upscaled`` > 1 also a bicubic copy of each enlarged that many times (same label)."""
        images, labels = list(self.pool.images), list(self.pool.labels)
        if upscaled > 1:
            images += [upscale(image, upscaled, cv2.INTER_CUBIC) for image in self.pool.images]
            labels += labels
        return Batch(images, np.asarray(labels, np.float32))
