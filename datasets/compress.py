"""The compression chain applied alike to both classes: down/up-scaling, JPEG and H.264 re-encoding.

Users send platform-compressed media, so every training sample, real or fake, passes through the
same random chain; compression can then never be the cue that separates the classes.
:func:`h264_roundtrip` encodes a batch of same-size images as the frames of one libx264 clip at a
given CRF (PyAV bundles libx264) and decodes them back, the artefacts a re-uploaded video carries.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np

from datasets.augment import down_up, jpeg_recompress, look_jitter


def h264_roundtrip(images: Sequence[np.ndarray], crf: int, preset: str = "veryfast") -> list[np.ndarray]:
    """``images`` (same even-sized RGB uint8) after one libx264 encode at ``crf`` and a decode."""
    if not images:
        return []
    height, width = images[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": preset}
        for image in images:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            ):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, mode="r") as inp:
        decoded = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    if len(decoded) != len(images):
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {len(images)} frames")
    return decoded


def h264_share(
    images: list[np.ndarray], prob: float, crfs: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """``images`` with a random ``prob`` share re-encoded together by :func:`h264_roundtrip` at one
    CRF drawn from ``crfs`` (left as they are when the chosen ones differ in size or are odd-sized)."""
    out = list(images)
    chosen = [i for i in range(len(out)) if rng.random() < prob]
    if (
        chosen
        and all(out[i].shape == out[chosen[0]].shape for i in chosen)
        and out[chosen[0]].shape[0] % 2 == 0
    ):
        crf = int(rng.choice(crfs))
        for i, frame in zip(chosen, h264_roundtrip([out[i] for i in chosen], crf), strict=True):
            out[i] = frame
    return out


@dataclass(frozen=True)
class CompressionChain:
    """Per-sample look (off unless ``look_prob``), flip, down/up-scale and JPEG; per-batch H.264 at a
    random CRF for a share of samples."""

    flip_prob: float = 0.5
    resize_prob: float = 0.3
    resize_range: tuple[float, float] = (0.4, 0.9)
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (55, 95)
    h264_prob: float = 0.4
    h264_crfs: tuple[int, ...] = (18, 23, 28, 33)
    gray_prob: float = 0.03
    look_prob: float = 0.0  # share given a random change of look (datasets.augment.look_jitter) first

    def sample(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The per-sample part of the chain."""
        out = image
        if self.look_prob and rng.random() < self.look_prob:
            out = look_jitter(out, rng)
        if rng.random() < self.flip_prob:
            out = np.ascontiguousarray(out[:, ::-1])
        if rng.random() < self.gray_prob:
            out = np.repeat(out.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
        if rng.random() < self.resize_prob:
            out = down_up(out, float(rng.uniform(*self.resize_range)))
        if rng.random() < self.jpeg_prob:
            out = jpeg_recompress(out, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return out

    def batch(self, images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Every image through :meth:`sample`, then a random share re-encoded together as H.264."""
        return h264_share([self.sample(im, rng) for im in images], self.h264_prob, self.h264_crfs, rng)
