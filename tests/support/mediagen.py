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


BORDERLINE_ANGLE = 61.0
"""Degrees the face photo is turned for :func:`borderline_face`."""


def borderline_face() -> np.ndarray:
    """The face photo turned :data:`BORDERLINE_ANGLE` degrees about the astronaut's face (edges
    mirrored), 512x512 RGB: MTCNN finds her face with a probability of about 0.92, between 0.9 and
    the default ``faces.min_probability`` of 0.95. Keep it lossless (PNG): JPEG moves that value."""
    import cv2

    turn = cv2.getRotationMatrix2D((224.0, 116.0), BORDERLINE_ANGLE, 1.0)
    turned = cv2.warpAffine(face_photo(), turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(turned, dtype=np.uint8)


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
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Encode RGB frames into a video file; ``pts`` (in ``time_base``) makes variable frame rate."""
    return write_video(path, frames, fps=fps, codec=codec, pts=pts, time_base=time_base)


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


def sd_marked(image: np.ndarray) -> np.ndarray:
    """``image`` (RGB) with the Stable Diffusion v1 invisible watermark, embedded as its scripts do."""
    from imwatermark import WatermarkEncoder

    from detector.provenance.watermark import SD_V1_MESSAGE

    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", SD_V1_MESSAGE)
    return np.ascontiguousarray(encoder.encode(image[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1])


def write_image(path: Path, image: np.ndarray, fmt: str, **save_kwargs: object) -> Path:
    """Save ``image`` in one of :data:`IMAGE_FORMATS` (HEIC/AVIF through pillow-heif)."""
    pil_format, _ = IMAGE_FORMATS[fmt]
    if fmt in {"heic", "avif"}:
        import pillow_heif

        pillow_heif.register_heif_opener()
        pillow_heif.register_avif_opener() if hasattr(pillow_heif, "register_avif_opener") else None
    Image.fromarray(image).save(path, format=pil_format, **save_kwargs)
    return path


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: int | Fraction = 25,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation_cw: int | None = None,
    with_audio: bool = False,
) -> Path:
    """Encode RGB frames, with encoder/muxer options, a display-matrix rotation and audio.

    ``rotation_cw`` writes the display matrix (FFmpeg 8's muxers ignore ``rotate`` metadata).
    ``container_options={"movflags": "faststart"}`` puts the MP4 moov box before the media data
    (needs a real path). ``pts`` in ``time_base`` makes VFR.
    ``with_audio`` adds a silent AAC track as long as the video (constant rate only).
    """
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        chosen: dict[str, object] = dict(options) if options is not None else {}
        if options is None and codec == "libx264":
            chosen = {"crf": "18", "preset": "ultrafast", "bf": "0"}
        stream.options = chosen
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation_cw:
            stream.set_display_rotation(-rotation_cw)  # PyAV's angle is counter-clockwise
        if with_audio:
            audio = container.add_stream("aac", rate=16000, layout="mono")
            silence = np.zeros((1, int(16000 * len(frames) / fps)), dtype=np.float32)
            chunk = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, 0
            for packet in [*audio.encode(chunk), *audio.encode()]:
                container.mux(packet)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    """An MP4 holding a single AAC sine-tone stream and no video."""
    samples = int(seconds * rate)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def drop_box(data: bytes, box: bytes) -> bytes:
    """``data`` (an ISO-BMFF file) without its top-level boxes of type ``box`` (e.g. ``b"moov"``)."""
    out, pos = bytearray(), 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        if data[pos + 4 : pos + 8] != box:
            out += data[pos : pos + size]
        pos += size
    return bytes(out)


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose valid IHDR (correct CRC) claims ``width`` x ``height`` RGB pixels.

    A tiny IDAT and IEND follow, so readers accept the header; decoding it would be a bomb.
    """
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
