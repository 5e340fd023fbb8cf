"""The eight inputs of the Foundation issue as (name, HTTP status, error code, maker) rows, used by
the API tests over the real pipeline and the Serve app; and the small media makers they share."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support import mediagen


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def clip(folder: Path, n_frames: int) -> bytes:
    """A 320x240 H.264 clip whose face is large enough for MTCNN in every frame."""
    frames = [mediagen.face_frame(i, n_frames, (320, 240), face_side=240) for i in range(n_frames)]
    return mediagen.write_video(folder / f"c{n_frames}.mp4", frames).read_bytes()


def picture() -> np.ndarray:
    return mediagen.face_photo()[::4, ::4]


def png_1x1() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    return buf.getvalue()


HOSTILE: list[tuple[str, int, str, Callable[[Path], bytes]]] = [
    ("empty.mp4", 422, "empty_media", lambda d: b""),
    ("random.mp4", 415, "unsupported_media_type", lambda d: np.random.default_rng(7).bytes(4096)),
    ("notes.jpg", 415, "unsupported_media_type", lambda d: b"just some text, not a photo\n" * 20),
    ("cut.jpg", 422, "corrupt_media", lambda d: jpeg(picture())[: len(jpeg(picture())) // 2]),
    ("bomb.png", 413, "too_many_pixels", lambda d: mediagen.png_claiming(60000, 60000)),
    ("nomoov.mp4", 422, "corrupt_media", lambda d: mediagen.drop_box(clip(d, 10), b"moov")),
    ("dot.png", 422, "media_too_small", lambda d: png_1x1()),
    ("audio.mp4", 422, "no_video_stream", lambda d: mediagen.write_audio_only(d / "a.mp4").read_bytes()),
]
