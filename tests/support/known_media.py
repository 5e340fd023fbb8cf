"""Media for the known-media tests: a reviewed photo and clip, their re-encoded and resized copies,
and an unrelated photo (scikit-image's public-domain pictures, no shared data needed)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.support import mediagen


def encode(image: np.ndarray, fmt: str = "JPEG", **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **options)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def reviewed_photo() -> bytes:
    """The astronaut at 256 px, JPEG quality 92: the item a reviewer judges."""
    return encode(mediagen.face_photo()[::2, ::2], quality=92)


def reencoded(data: bytes, quality: int = 55) -> bytes:
    """The same picture decoded and saved again as a lower-quality JPEG (other bytes, same look)."""
    return encode(decode(data), quality=quality)


def resized(data: bytes, side: int = 181, fmt: str = "PNG") -> bytes:
    """The same picture scaled to ``side`` px and saved in another format."""
    image = Image.fromarray(decode(data)).resize((side, side), Image.Resampling.LANCZOS)
    return encode(np.asarray(image), fmt)


def unrelated_photo() -> bytes:
    """Another photograph altogether (scikit-image's coffee cup)."""
    from skimage import data

    return encode(np.asarray(data.coffee(), dtype=np.uint8), quality=90)


def reviewed_clip(folder: Path) -> bytes:
    """A 2 s, 12 fps, 160x120 H.264 clip of the face photo moving across a changing background."""
    frames = [mediagen.face_frame(i, 24, (160, 120)) for i in range(24)]
    return mediagen.write_video(folder / "reviewed.mp4", frames, fps=12).read_bytes()


def reencoded_clip(folder: Path, data: bytes) -> bytes:
    """The clip decoded and encoded again at a lower quality and another resolution (144x108)."""
    source = folder / "source.mp4"
    source.write_bytes(data)
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    smaller = [np.asarray(Image.fromarray(f).resize((144, 108), Image.Resampling.BILINEAR)) for f in frames]
    out = folder / "reencoded.mp4"
    mediagen.write_video(out, smaller, fps=12, options={"crf": "34", "preset": "ultrafast", "bf": "0"})
    return out.read_bytes()
