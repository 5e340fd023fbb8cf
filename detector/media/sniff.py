"""Sniffing: (kind, format, MIME type) from the leading bytes of a file, never from its name.

Magic numbers for the still formats, ISO-BMFF ``ftyp`` brands for HEIC / AVIF / MP4 / MOV / M4V,
the EBML DocType for WebM / MKV and the first atom of old QuickTime files.
"""

from __future__ import annotations

import struct
from typing import Literal

from detector.errors import UnsupportedMediaType

MediaKind = Literal["image", "video"]

HEAD_BYTES = 4096
"""How many leading bytes :func:`sniff` needs at most."""

# format -> (mime, Pillow format name or FFmpeg demuxer name)
IMAGE_FORMATS = {
    "jpeg": ("image/jpeg", "JPEG"),
    "png": ("image/png", "PNG"),
    "webp": ("image/webp", "WEBP"),
    "gif": ("image/gif", "GIF"),
    "bmp": ("image/bmp", "BMP"),
    "tiff": ("image/tiff", "TIFF"),
    "heic": ("image/heic", "HEIF"),
    "avif": ("image/avif", "AVIF"),
}
VIDEO_FORMATS = {
    "mp4": ("video/mp4", "mov"),
    "mov": ("video/quicktime", "mov"),
    "m4v": ("video/x-m4v", "mov"),
    "webm": ("video/webm", "matroska"),
    "mkv": ("video/x-matroska", "matroska"),
    "avi": ("video/x-msvideo", "avi"),
}

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_GENERIC = {b"mif1", b"msf1"}
_M4V_BRANDS = {b"M4V ", b"M4VH", b"M4VP"}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9"} | {
    b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"mmp4", b"MSNV", b"XAVC", b"f4v ",
    b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"3g2b", b"3g2c",
}  # fmt: skip
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}  # audio-only MPEG-4: not supported
_QT_FIRST_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _kind_of(fmt: str) -> tuple[MediaKind, str, str]:
    if fmt in IMAGE_FORMATS:
        return "image", fmt, IMAGE_FORMATS[fmt][0]
    return "video", fmt, VIDEO_FORMATS[fmt][0]


def _ftyp_format(head: bytes) -> str | None:
    """HEIC / AVIF / MP4 / MOV / M4V from an ISO-BMFF ``ftyp`` box (major + compatible brands)."""
    size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    end = min(size if size >= 16 else 16, len(head))
    brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if major in _AUDIO_BRANDS:
        return None
    if major in _AVIF_BRANDS or (major in _HEIF_GENERIC and brands & _AVIF_BRANDS):
        return "avif"
    if major in _HEIC_BRANDS or major in _HEIF_GENERIC:
        return "heic"
    if major == b"qt  ":
        return "mov"
    if major in _M4V_BRANDS:
        return "m4v"
    if major in _MP4_BRANDS:
        return "mp4"
    if b"qt  " in brands:
        return "mov"
    if brands & _MP4_BRANDS:
        return "mp4"
    return None


def _is_quicktime_without_ftyp(head: bytes) -> bool:
    """Old QuickTime files start straight with a moov/mdat/wide/free atom (size must be sane)."""
    if len(head) < 8 or head[4:8] not in _QT_FIRST_ATOMS:
        return False
    size = struct.unpack(">I", head[:4])[0]
    if size in (0, 1):  # 0: runs to the end of the file; 1: 64-bit size follows
        return True
    if size < 8:
        return False
    nxt = head[size + 4 : size + 8]
    return len(nxt) < 4 or all(32 <= c < 127 for c in nxt)


def _ebml_vint(buf: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """One EBML variable-length integer at ``pos``: (value, new position)."""
    first = buf[pos]
    if first == 0:
        raise ValueError("invalid EBML vint")
    length = 9 - first.bit_length()
    value = first if keep_marker else first & (0xFF >> length)
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
    if pos + length > len(buf):
        raise ValueError("EBML vint runs past the buffer")
    return value, pos + length


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType string ("webm" / "matroska") of the EBML header at the start of ``head``."""
    try:
        size, pos = _ebml_vint(head, 4, keep_marker=False)
        end = min(pos + size, len(head))
        while pos < end:
            element, pos = _ebml_vint(head, pos, keep_marker=True)
            length, pos = _ebml_vint(head, pos, keep_marker=False)
            if element == 0x4282:
                return head[pos : pos + length].rstrip(b"\0")
            pos += length
    except (ValueError, IndexError):
        return None
    return None


def sniff(head: bytes) -> tuple[MediaKind, str, str]:
    """(kind, format, mime) from the leading bytes (``HEAD_BYTES`` is enough); never from a name."""
    fmt: str | None = None
    if head[:3] == b"\xff\xd8\xff":
        fmt = "jpeg"
    elif head[:8] == b"\x89PNG\r\n\x1a\n":
        fmt = "png"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        fmt = "gif"
    elif head[:4] in (b"II*\0", b"MM\0*"):
        fmt = "tiff"
    elif head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in _BMP_DIB_SIZES:
        fmt = "bmp"
    elif head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        fmt = "webp" if head[8:12] == b"WEBP" else "avi"
    elif head[4:8] == b"ftyp" and len(head) >= 12:
        fmt = _ftyp_format(head)
    elif head[:4] == b"\x1a\x45\xdf\xa3":
        fmt = {b"webm": "webm", b"matroska": "mkv"}.get(_ebml_doctype(head) or b"")
    elif _is_quicktime_without_ftyp(head):
        fmt = "mov"
    if fmt is None:
        raise UnsupportedMediaType(
            "not a supported image or video (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF, "
            "MP4, MOV, M4V, WebM, MKV, AVI); the type is read from the content, not the name"
        )
    return _kind_of(fmt)
