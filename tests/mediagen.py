"""Small, real media files generated for tests (PyAV for H.264, Pillow for images)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def face_photo() -> np.ndarray:
    """scikit-image's astronaut photo (a real face, public domain), RGB uint8."""
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)


def face_frame(index: int, n_frames: int, size: tuple[int, int], face_side: int | None = None) -> np.ndarray:
    """Frame ``index`` of a clip: the face photo scaled to ``face_side`` moving left to right.

    The background carries the frame index as a gradient so that every frame is distinct.
    """
    width, height = size
    side = face_side or int(height * 0.8)
    face = np.asarray(Image.fromarray(face_photo()).resize((side, side), Image.Resampling.BILINEAR))
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (index * 5) % 256
    frame[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[..., 2] = 128
    span = max(width - side, 0)
    x = int(span * index / max(n_frames - 1, 1))
    y = (height - side) // 2
    frame[y : y + side, x : x + side] = face[: height - y, : width - x]
    return frame


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int | Fraction = 25,
    codec: str = "libx264",
    rotation: int | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Encode RGB frames into a video file; ``pts`` (in ``time_base``) makes variable frame rate."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "ultrafast", "bf": "0"}
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.metadata["rotate"] = str(rotation)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_face_clip(
    path: Path, n_frames: int = 50, fps: int = 25, size: tuple[int, int] = (320, 240), **kwargs: object
) -> Path:
    """An H.264 clip of the face photo moving across ``n_frames`` frames."""
    frames = [face_frame(i, n_frames, size) for i in range(n_frames)]
    return write_clip(path, frames, fps=fps, **kwargs)  # type: ignore[arg-type]


IMAGE_FORMATS = {
    "jpeg": ("JPEG", ".jpg"),
    "png": ("PNG", ".png"),
    "webp": ("WEBP", ".webp"),
    "gif": ("GIF", ".gif"),
    "bmp": ("BMP", ".bmp"),
    "tiff": ("TIFF", ".tif"),
    "heic": ("HEIF", ".heic"),
    "avif": ("AVIF", ".avif"),
}


def write_image(path: Path, image: np.ndarray, fmt: str, **save_kwargs: object) -> Path:
    """Save ``image`` in one of :data:`IMAGE_FORMATS` (HEIC/AVIF through pillow-heif)."""
    pil_format, _ = IMAGE_FORMATS[fmt]
    if fmt in {"heic", "avif"}:
        import pillow_heif

        pillow_heif.register_heif_opener()
        pillow_heif.register_avif_opener() if hasattr(pillow_heif, "register_avif_opener") else None
    Image.fromarray(image).save(path, format=pil_format, **save_kwargs)
    return path
