"""Media intake: enforce limits, probe images and videos, decode images (types come from :mod:`.sniff`).

Everything happens in memory (``io.BytesIO`` for Pillow and PyAV): no temporary files. The file
name a client sends is informational only; the type always comes from the bytes (:func:`sniff`).
Pillow's and FFmpeg's errors are caught by name and turned into the typed errors of
:mod:`detector.errors`, so callers only ever see a :class:`~detector.errors.TrueframeError`.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from detector.errors import (
    CorruptMedia,
    EmptyMedia,
    InvalidRequest,
    MediaTooLarge,
    MediaTooSmall,
    NoVideoStream,
    TooManyPixels,
    VideoTooLong,
)
from detector.media.avif_quality import avif_quality
from detector.media.files import open_regular_file
from detector.media.heic_quality import heic_quality
from detector.media.sniff import HEAD_BYTES, IMAGE_FORMATS, VIDEO_FORMATS, MediaKind, sniff
from detector.media.webp_quality import webp_quality
from detector.settings import LimitSettings, get_settings


@dataclass(frozen=True)
class MediaInfo:
    """What intake learnt about the bytes: type, hash and (display) geometry, timing for videos."""

    kind: MediaKind
    format: str
    mime: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    fps: float | None = None
    duration_s: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    rotation: int = 0
    has_audio: bool = False
    frame_count_estimated: bool = False  # True when frame_count is duration * fps, not the container's
    jpeg_quality: int | None = None  # IJG quality estimated from a JPEG's luminance table
    webp_quality: int | None = None  # libwebp quality estimated from a lossy WebP's frame header
    avif_quality: int | None = None  # libavif quality estimated from an AVIF still's AV1 headers
    heic_quality: int | None = None  # pillow-heif quality estimated from a HEIC's HEVC headers
    video_bytes: int | None = None  # the video stream's packets (no audio, no container); None: unknown
    animated: bool = False  # an image holding more than one frame or page (GIF, APNG, WebP, TIFF, HEIC)

    @property
    def encoder_quality(self) -> int | None:
        """The quality a JPEG, lossy WebP, AVIF or HEIC image was saved at, estimated from its own
        headers (None: another format, or headers the estimators do not read)."""
        return {
            "jpeg": self.jpeg_quality,
            "webp": self.webp_quality,
            "avif": self.avif_quality,
            "heic": self.heic_quality,
        }.get(self.format)


@dataclass(frozen=True)
class Media:
    """Accepted bytes plus their :class:`MediaInfo`; ``name`` never decides anything."""

    info: MediaInfo
    data: bytes
    name: str | None = None

    def open_video(self) -> av.container.InputContainer:
        """A PyAV container reading ``data`` from memory; use it in a ``with`` block."""
        if self.info.kind != "video":
            raise InvalidRequest(f"{self.info.format} is an image, not a video")
        return _open_container(self.data, self.info.format)


def _open_container(data: bytes, fmt: str) -> av.container.InputContainer:
    """Open with the demuxer the sniffed format implies (FFmpeg does not guess another one)."""
    try:
        return av.open(io.BytesIO(data), mode="r", format=VIDEO_FORMATS[fmt][1])
    except av.FFmpegError as exc:
        raise CorruptMedia(f"cannot read the {fmt} container: {exc.strerror or exc}") from exc


def primary_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream that is not cover art; :class:`NoVideoStream` when there is none."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    if not container.streams.audio and not container.streams.subtitles:
        raise CorruptMedia("the container holds no readable audio or video stream (truncated header?)")
    raise NoVideoStream("the file has no video stream (audio only?)")


@cache
def register_heif() -> None:
    """Let Pillow open and save HEIC through pillow-heif (once per process, on first HEIC only)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def save_image(image: Image.Image, target: Path | BinaryIO, fmt: str, quality: int, **options: int) -> None:
    """Save ``image`` as Pillow format ``fmt`` at ``quality`` (HEIF through pillow-heif, registered
    here on first use, so the training chain and the dev variants need not special-case it)."""
    if fmt == "HEIF":
        register_heif()
    image.save(target, format=fmt, quality=int(quality), **options)


PNG_TEXT_CHUNK_BYTES = 16 * 1024 * 1024
"""Pillow refuses a PNG whose one decompressed text chunk passes 1 MB (a valid 1.4 MB zTXt was refused
as corrupt). Text does not stop a decode here: metadata parsing caps text on its own
(:data:`detector.provenance.containers.MAX_TEXT_BYTES`), and a bigger chunk is still a bomb to refuse."""


def _open_image(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Pillow image reading the header only, restricted to the sniffed format.

    Pillow's own bomb guard warns from 89 M pixels and refuses from twice that; it is raised (never
    lowered: loaders with other limits may share the process) to ``max_pixels`` so that an image our
    limit accepts is not warned about. A header claiming over twice the guard is still refused by
    Pillow before our own check runs (``TooManyPixels`` either way)."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    if fmt == "heic":
        register_heif()
    if fmt == "png":
        from PIL import PngImagePlugin

        PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, PNG_TEXT_CHUNK_BYTES)
    try:
        return Image.open(io.BytesIO(data), formats=[IMAGE_FORMATS[fmt][1]])
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise CorruptMedia(f"the bytes start like {fmt} but its header cannot be read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise CorruptMedia(f"cannot read the {fmt} header: {exc}") from exc


def _animated(im: Image.Image) -> bool:
    """Whether the image holds a second frame or page (only the first is decoded and judged); Pillow
    reads at most the next frame's header. A second frame that cannot be read counts as none: it
    could not have been judged either."""
    try:
        return bool(getattr(im, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        return False


def _to_rgb(im: Image.Image) -> np.ndarray:
    """RGB uint8: alpha over white, 16-bit / float scaled to 8 bits, palette/CMYK/grey converted."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if im.mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif im.mode.startswith("I;16") or 255 < top <= 65535:
            arr = arr / 257.0
        elif top > 65535:
            arr = arr * (255.0 / top)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    has_alpha = "A" in im.getbands() or "a" in im.getbands() or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode != "RGB":  # converting an RGB image would only copy it (a 100 MP photo: 300 MB more)
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


# IJG (libjpeg) standard luminance quantisation table, natural order (quality 50).
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip


def jpeg_quality(im: Image.Image) -> int | None:
    """The IJG quality (1-100) a JPEG's luminance table corresponds to, or None without tables.

    Pillow gives tables in zigzag order; comparing sorted values makes the estimate order-free.
    """
    tables = getattr(im, "quantization", None) or {}
    if 0 not in tables or len(tables[0]) != 64:
        return None
    ratio = float(np.mean(np.sort(np.asarray(tables[0], np.float64)) / np.sort(_IJG_LUMA))) * 100.0
    quality = (200.0 - ratio) / 2.0 if ratio <= 100.0 else 5000.0 / ratio
    return int(np.clip(round(quality), 1, 100))


class MediaLoader:
    """Turns a path or bytes into :class:`Media` (sniff, limits, probe) and decodes images."""

    def __init__(self, limits: LimitSettings | None = None) -> None:
        self.limits = limits if limits is not None else get_settings().limits

    def load(self, source: str | Path | bytes, name: str | None = None) -> Media:
        """Accept ``source`` (a path, or the bytes themselves) or raise a typed error."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if not data:
                raise EmptyMedia("the upload is empty (0 bytes)")
            kind, fmt, mime = sniff(data[:HEAD_BYTES])
            self._check_bytes(kind, len(data))
        else:
            path = Path(source)
            name = name if name is not None else path.name
            data, (kind, fmt, mime) = self._read_path(path)
        digest = hashlib.sha256(data).hexdigest()
        if kind == "image":
            info = self._probe_image(data, fmt, mime, digest)
        else:
            info = self._probe_video(data, fmt, mime, digest)
        return Media(info=info, data=data, name=name)

    def _byte_limit(self, kind: MediaKind) -> int:
        return self.limits.max_image_bytes if kind == "image" else self.limits.max_video_bytes

    def _check_bytes(self, kind: MediaKind, size: int) -> None:
        limit = self._byte_limit(kind)
        if size > limit:
            raise MediaTooLarge(f"{kind} is {size} bytes; the limit is {limit}", size=size, limit=limit)

    def _read_path(self, path: Path) -> tuple[bytes, tuple[MediaKind, str, str]]:
        """Open (regular files only), sniff the head, check the byte limit, and only then read the rest."""
        with open_regular_file(path) as (fh, size):
            if size == 0:
                raise EmptyMedia(f"{path.name} is empty (0 bytes)")
            head = fh.read(HEAD_BYTES)
            sniffed = sniff(head)
            self._check_bytes(sniffed[0], size)
            data = head + fh.read(self._byte_limit(sniffed[0]) + 1 - len(head))
        self._check_bytes(sniffed[0], len(data))  # the file may have grown since it was opened
        return data, sniffed

    def _check_pixels(self, width: int, height: int, what: str) -> None:
        if width * height > self.limits.max_pixels:
            raise TooManyPixels(
                f"{what} is {width}x{height} = {width * height} pixels; "
                f"the limit is {self.limits.max_pixels}",
                width=width,
                height=height,
            )

    def _check_geometry(self, width: int, height: int, what: str) -> None:
        self._check_pixels(width, height, what)
        if min(width, height) < self.limits.min_side:
            raise MediaTooSmall(
                f"{what} is {width}x{height}; both sides must be at least {self.limits.min_side} px",
                width=width,
                height=height,
            )

    def _probe_image(self, data: bytes, fmt: str, mime: str, digest: str) -> MediaInfo:
        """Size from the header (nothing decoded yet), swapped when EXIF says the image is turned."""
        with _open_image(data, fmt, self.limits.max_pixels) as im:
            width, height = im.size
            self._check_geometry(width, height, "image")
            try:
                orientation = int(im.getexif().get(0x0112, 1))
            except (OSError, SyntaxError, ValueError, struct.error, TypeError):
                orientation = 1  # unreadable EXIF: decode_image's exif_transpose ignores it too
            quality = jpeg_quality(im) if fmt == "jpeg" else None
            animated = _animated(im)
        webp = webp_quality(data) if fmt == "webp" else None
        avif = avif_quality(data, width, height) if fmt == "avif" else None
        heic = heic_quality(data) if fmt == "heic" else None
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return MediaInfo(
            "image", fmt, mime, len(data), digest, width, height,
            jpeg_quality=quality, webp_quality=webp, avif_quality=avif, heic_quality=heic, animated=animated,
        )  # fmt: skip

    def _probe_video(self, data: bytes, fmt: str, mime: str, digest: str) -> MediaInfo:
        """Geometry, timing and rotation from the container (decodes at most the first frame)."""
        with _open_container(data, fmt) as container:
            stream = primary_video_stream(container)
            width, height = stream.codec_context.width, stream.codec_context.height
            if not width or not height:
                raise CorruptMedia(f"the {fmt} video stream declares no frame size")
            self._check_geometry(width, height, "video")
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            duration = _duration(container, stream)
            if duration is not None and duration > self.limits.max_video_seconds:
                raise VideoTooLong(
                    f"video is {duration:.1f} s; the limit is {self.limits.max_video_seconds:g} s",
                    duration_s=duration,
                )
            frame_count: int | None = stream.frames or None
            estimated = frame_count is None and duration is not None and fps is not None
            if estimated:
                frame_count = max(1, round(duration * fps))  # type: ignore[operator]
            rotation = _first_frame_rotation(container, stream)
            codec = stream.codec_context.name
            has_audio = bool(container.streams.audio)
        if rotation in (90, 270):
            width, height = height, width
        video_bytes = None
        if frame_count is not None:  # a header's frame count is the attacker's: bounded by the length limit
            most = min(2 * frame_count, int(self.limits.max_video_seconds * MAX_FPS)) + 100
            video_bytes = _video_stream_bytes(data, fmt, most)
        return MediaInfo(
            "video", fmt, mime, len(data), digest, width, height, fps=fps, duration_s=duration,
            frame_count=frame_count, codec=codec, rotation=rotation, has_audio=has_audio,
            frame_count_estimated=estimated, video_bytes=video_bytes,
        )  # fmt: skip

    def decode_image(self, media: Media, max_side: int | None = None) -> tuple[np.ndarray, float]:
        """RGB uint8 HxWx3 (EXIF orientation applied, first frame of GIF/multi-page) and its scale.

        With ``max_side`` the image is scaled down (area) to that longest side; a JPEG is decoded at
        the smallest DCT scale still at least that large, so a huge JPEG never exists at full size.
        The decoded size is checked against the limits again (headers can lie); a JPEG decoded at a
        reduced DCT scale is checked against the pixel limit only (a 60000x16 strip decodes at 1/8 as
        7500x2: that short side is the draft's doing, not the file's).
        """
        info = media.info
        if info.kind != "image":
            raise InvalidRequest(f"{info.format} is a video; sample frames with FrameSampler")
        with _open_image(media.data, info.format, self.limits.max_pixels) as im:
            self._check_geometry(im.size[0], im.size[1], "image")
            full = im.size
            try:
                drafted = False
                if max_side is not None and info.format == "jpeg" and max(full) > max_side:
                    im.draft(
                        "RGB",
                        (max(1, full[0] * max_side // max(full)), max(1, full[1] * max_side // max(full))),
                    )
                    drafted = True
                im.load()
                if drafted and im.size[0] <= full[0] and im.size[1] <= full[1]:
                    self._check_pixels(im.size[0], im.size[1], "decoded image")
                else:
                    self._check_geometry(im.size[0], im.size[1], "decoded image")
                ImageOps.exif_transpose(im, in_place=True)  # not a copy when already upright
                rgb = _to_rgb(im)
            except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
                raise CorruptMedia(f"cannot decode the {info.format} image: {exc}") from exc
        return _scaled(rgb, max_side, max(full))


def _scaled(rgb: np.ndarray, max_side: int | None, full_side: int) -> tuple[np.ndarray, float]:
    """``rgb`` scaled down (area) to ``max_side``, and its scale relative to the undecoded ``full_side``."""
    import cv2

    h, w = rgb.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        rgb = np.ascontiguousarray(
            cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        )
    return rgb, max(rgb.shape[:2]) / full_side


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """Seconds, from the stream, else the container, else the last packet (demux only, no decode)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    end: float | None = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base:
                stop = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                end = stop if end is None else max(end, stop)
        container.seek(0)
    except av.FFmpegError:
        pass  # whatever was readable before the damage bounds the duration
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    return None if end is None else end - start


MAX_FPS = 240
"""Frames per second assumed at most when bounding a stream's packets by the length limit."""


def _video_stream_bytes(data: bytes, fmt: str, max_packets: int) -> int | None:
    """Bytes the primary video stream's packets carry, demuxed (never decoded), so that a starved
    picture is not hidden by its audio track; the container's stated bit rates are not trusted.
    None when the stream has more than ``max_packets`` packets or cannot be demuxed to its end."""
    with _open_container(data, fmt) as container:
        stream = primary_video_stream(container)
        total = 0
        try:
            for count, packet in enumerate(container.demux(stream)):
                if count >= max_packets:
                    return None
                total += packet.size
        except av.FFmpegError:
            return None
    return total


def _first_frame_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation (0/90/180/270) from the first frame's display matrix."""
    try:
        for frame in container.decode(stream):
            return clockwise_rotation(frame)
    except av.FFmpegError:
        return 0  # the sampler reports undecodable streams; the probe only needs the geometry
    return 0


def clockwise_rotation(frame: av.VideoFrame) -> int:
    """PyAV reports the display matrix counter-clockwise in [-180, 180]; we use clockwise 0..270."""
    return round(-frame.rotation / 90.0) % 4 * 90
