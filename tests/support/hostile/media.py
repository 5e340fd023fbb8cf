"""Base media for the hostile cases (built once per process) and an in-memory video encoder."""

from __future__ import annotations

import io
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.support import mediagen


@cache
def photo() -> np.ndarray:
    """128x128 RGB: the astronaut's face photo at a quarter of its size."""
    return np.ascontiguousarray(mediagen.face_photo()[::4, ::4])


def save(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    if fmt in {"HEIF", "AVIF"}:
        import pillow_heif

        pillow_heif.register_heif_opener()
    pil.save(buf, format=fmt, **options)
    return buf.getvalue()


@cache
def base_jpeg() -> bytes:
    return save(photo(), "JPEG", quality=90)


@cache
def base_png() -> bytes:
    return save(photo(), "PNG")


def variant(seed: int) -> bytes:
    """A JPEG of the photo with a few pixels changed: distinct bytes (no result-cache hit) per case."""
    image = photo().copy()
    image[:8, :8] = (seed * 37) % 256  # a whole DCT block: no quantisation can undo it
    return save(image, "JPEG", quality=90)


def face_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [mediagen.face_frame(i, n, size) for i in range(n)]


REALTIME_CODECS = frozenset({"libsvtav1"})
"""Encoders that raise the thread opening them to real-time scheduling (SVT-AV1: SCHED_FIFO 99
where it may, e.g. as root), which the test process and every thread and child it starts afterwards
kept; on 2 cores that starved a later test's teardown until the run's time limit (2026-12-02).
:func:`encode` runs them in a spawned process of their own."""


def encode(
    frames: list[np.ndarray],
    fmt: str,
    codec: str = "libx264",
    *,
    fps: int | Fraction = 8,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> bytes:
    """Encode RGB frames into an in-memory container (``fmt`` is FFmpeg's muxer name); a codec of
    :data:`REALTIME_CODECS` encodes in a fresh process."""
    args = (frames, fmt, codec, fps, pix_fmt, options, pts, time_base)
    if codec not in REALTIME_CODECS:
        return _encode_here(*args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_encode_here, *args).result()


def _encode_here(
    frames: list[np.ndarray],
    fmt: str,
    codec: str,
    fps: int | Fraction,
    pix_fmt: str,
    options: dict[str, str] | None,
    pts: list[int] | None,
    time_base: Fraction | None,
) -> bytes:
    height, width = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if options is None and codec == "libx264":
            options = {"preset": "ultrafast", "bf": "0"}
        stream.options = options or {}
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@cache
def base_mp4() -> bytes:
    """8 frames, 96x64, H.264 in MP4 (moov at the end)."""
    return encode(face_frames(8, (96, 64)), "mp4")


@cache
def base_webm() -> bytes:
    return encode(
        face_frames(8, (96, 64)), "webm", "libvpx", options={"deadline": "realtime", "cpu-used": "8"}
    )


@cache
def webm_gops() -> bytes:
    """24 frames (3 s) of VP8 in WebM, a keyframe every 4 frames."""
    options = {"deadline": "realtime", "cpu-used": "8", "g": "4"}
    return encode(face_frames(24, (96, 64)), "webm", "libvpx", options=options)


@cache
def base_avi() -> bytes:
    return encode(face_frames(8, (96, 64)), "avi", "mpeg4")


def faststart(folder: Path) -> bytes:
    """The MP4 with its moov box first (the muxer needs a real file for that)."""
    path = folder / "faststart.mp4"
    mediagen.write_video(path, face_frames(8, (96, 64)), fps=8, container_options={"movflags": "faststart"})
    return path.read_bytes()
