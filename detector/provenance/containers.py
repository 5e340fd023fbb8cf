"""Find metadata blocks in image containers without decoding pixels: XMP, EXIF, PNG text.

Walks JPEG segments, PNG chunks and WebP RIFF chunks by their length fields and falls back to
scanning for an XMP packet or an EXIF header in other containers (HEIC, AVIF, TIFF, MP4, GIF).
Structural damage stops the walk and is reported as a warning; it never raises.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_JPEG_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_PREFIX = b"Exif\x00\x00"
MAX_TEXT_BYTES = 4 * 1024 * 1024  # a decompressed PNG text chunk larger than this is skipped
MAX_IFD_ENTRIES = 512

TAG_MAKE, TAG_MODEL, TAG_SOFTWARE = 0x010F, 0x0110, 0x0131
TAG_EXIF_IFD, TAG_USER_COMMENT = 0x8769, 0x9286


@dataclass
class MetadataBlocks:
    """Raw metadata found in one file; ``warnings`` names what was damaged or skipped."""

    container: str = "unknown"
    xmp: list[bytes] = field(default_factory=list)
    exif: list[bytes] = field(default_factory=list)
    png_text: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def container_of(data: bytes) -> str:
    """``jpeg``, ``png``, ``webp``, ``tiff`` or ``other``, from the first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return "other"


def find_blocks(data: bytes) -> MetadataBlocks:
    """Every XMP packet, EXIF (TIFF) block and PNG text entry in ``data``."""
    blocks = MetadataBlocks(container=container_of(data))
    walker = {"jpeg": _walk_jpeg, "png": _walk_png, "webp": _walk_webp}.get(blocks.container)
    if walker is not None:
        walker(data, blocks)
    elif blocks.container == "tiff":
        blocks.exif.append(data)
    if not blocks.xmp:
        packet = _scan_xmp_packet(data)
        if packet is not None:
            blocks.xmp.append(packet)
    if not blocks.exif and blocks.container == "other":
        tiff = _scan_exif(data)
        if tiff is not None:
            blocks.exif.append(tiff)
    return blocks


def _walk_jpeg(data: bytes, blocks: MetadataBlocks) -> None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            blocks.warnings.append("metadata: JPEG segment structure is damaged; stopped reading it")
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata after this
            return
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2 or i + 2 + length > n:
            blocks.warnings.append("metadata: JPEG segment length runs past the end of the file")
            return
        payload = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and payload.startswith(EXIF_PREFIX):
            blocks.exif.append(payload[len(EXIF_PREFIX) :])
        elif marker == 0xE1 and payload.startswith(XMP_JPEG_PREFIX):
            blocks.xmp.append(payload[len(XMP_JPEG_PREFIX) :])
        i += 2 + length


def _walk_png(data: bytes, blocks: MetadataBlocks) -> None:
    i, n = len(PNG_SIGNATURE), len(data)
    while i + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[i : i + 8])
        if i + 12 + length > n:
            blocks.warnings.append(f"metadata: PNG chunk {ctype!r} runs past the end of the file")
            return
        body = data[i + 8 : i + 8 + length]
        i += 12 + length
        if ctype == b"IEND":
            return
        if ctype == b"eXIf":
            blocks.exif.append(body[len(EXIF_PREFIX) :] if body.startswith(EXIF_PREFIX) else body)
        elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
            entry = _png_text(ctype, body, blocks.warnings)
            if entry is None:
                continue
            key, text = entry
            if key == "XML:com.adobe.xmp":
                blocks.xmp.append(text.encode("utf-8"))
            else:
                blocks.png_text.setdefault(key, text)


def _png_text(ctype: bytes, body: bytes, warnings: list[str]) -> tuple[str, str] | None:
    """Decode one tEXt / zTXt / iTXt chunk into (keyword, text); None and a warning if broken."""
    key_raw, sep, rest = body.partition(b"\x00")
    if not sep or not key_raw:
        warnings.append(f"metadata: PNG {ctype.decode()} chunk has no keyword; ignored")
        return None
    key = key_raw.decode("latin-1")
    try:
        if ctype == b"tEXt":
            return key, rest.decode("latin-1")
        if ctype == b"zTXt":
            return key, _inflate(rest[1:]).decode("latin-1")
        compressed, rest = rest[:1] == b"\x01", rest[2:]
        _lang, _, rest = rest.partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        return key, (_inflate(text) if compressed else text).decode("utf-8")
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        warnings.append(f"metadata: PNG text chunk {key!r} cannot be decoded ({exc}); ignored")
        return None


def _inflate(data: bytes) -> bytes:
    """zlib-decompress at most MAX_TEXT_BYTES (a bigger chunk raises ValueError: no zip bombs)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"text larger than {MAX_TEXT_BYTES} bytes")
    return out


def _walk_webp(data: bytes, blocks: MetadataBlocks) -> None:
    i, n = 12, len(data)
    while i + 8 <= n:
        fourcc, size = struct.unpack("<4sI", data[i : i + 8])
        if i + 8 + size > n:
            blocks.warnings.append(f"metadata: WebP chunk {fourcc!r} runs past the end of the file")
            return
        body = data[i + 8 : i + 8 + size]
        if fourcc == b"EXIF":
            blocks.exif.append(body[len(EXIF_PREFIX) :] if body.startswith(EXIF_PREFIX) else body)
        elif fourcc == b"XMP ":
            blocks.xmp.append(body)
        i += 8 + size + (size & 1)


def _scan_xmp_packet(data: bytes) -> bytes | None:
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start)
    return data[start : end + len(b"</x:xmpmeta>")] if end > 0 else data[start : start + 65536]


def _scan_exif(data: bytes) -> bytes | None:
    start = data.find(EXIF_PREFIX)
    while start >= 0:
        tiff = data[start + len(EXIF_PREFIX) :]
        if tiff[:4] in (b"II*\x00", b"MM\x00*"):
            return tiff
        start = data.find(EXIF_PREFIX, start + 1)
    return None


def exif_fields(tiff: bytes) -> dict[str, str]:
    """Make, Model, Software (IFD0) and UserComment (EXIF IFD) from a TIFF-structured block.

    Raises ValueError when the block's structure is broken.
    """
    if tiff[:2] == b"II":
        order = "<"
    elif tiff[:2] == b"MM":
        order = ">"
    else:
        raise ValueError("EXIF block has no TIFF byte-order mark")
    try:
        (ifd0,) = struct.unpack(order + "I", tiff[4:8])
        entries = _ifd_entries(tiff, order, ifd0)
        fields = {
            name: _ascii(tiff, order, entries[tag])
            for tag, name in ((TAG_MAKE, "Make"), (TAG_MODEL, "Model"), (TAG_SOFTWARE, "Software"))
            if tag in entries
        }
        if TAG_EXIF_IFD in entries:
            (exif_ifd,) = struct.unpack(order + "I", entries[TAG_EXIF_IFD][3])
            comment = _ifd_entries(tiff, order, exif_ifd).get(TAG_USER_COMMENT)
            if comment is not None:
                fields["UserComment"] = _user_comment(_value_bytes(tiff, order, comment))
    except struct.error as exc:
        raise ValueError(f"EXIF block is truncated ({exc})") from exc
    return {k: v for k, v in fields.items() if v}


_Entry = tuple[int, int, int, bytes]  # tag, type, count, 4-byte value/offset field
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def _ifd_entries(tiff: bytes, order: str, offset: int) -> dict[int, _Entry]:
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    if count > MAX_IFD_ENTRIES or offset + 2 + 12 * count > len(tiff):
        raise ValueError("EXIF directory is larger than its block")
    entries: dict[int, _Entry] = {}
    for k in range(count):
        pos = offset + 2 + 12 * k
        tag, typ, n = struct.unpack(order + "HHI", tiff[pos : pos + 8])
        entries[tag] = (tag, typ, n, tiff[pos + 8 : pos + 12])
    return entries


def _value_bytes(tiff: bytes, order: str, entry: _Entry) -> bytes:
    _tag, typ, count, raw = entry
    size = _TYPE_SIZES.get(typ, 1) * count
    if size <= 4:
        return raw[:size]
    (offset,) = struct.unpack(order + "I", raw)
    if offset + size > len(tiff):
        raise ValueError("EXIF value points past the end of its block")
    return tiff[offset : offset + size]


def _ascii(tiff: bytes, order: str, entry: _Entry) -> str:
    return _value_bytes(tiff, order, entry).split(b"\x00", 1)[0].decode("latin-1").strip()


def _user_comment(raw: bytes) -> str:
    """EXIF UserComment: an 8-byte character-code header, then the text."""
    header, text = raw[:8], raw[8:]
    if header.startswith(b"UNICODE"):
        # Writers disagree on UTF-16 byte order; printable ASCII decides.
        be, le = text.decode("utf-16-be", "replace"), text.decode("utf-16-le", "replace")
        decoded = be if sum(c.isascii() for c in be) >= sum(c.isascii() for c in le) else le
    else:
        decoded = text.decode("utf-8", "replace")
    return decoded.replace("\x00", "").strip()
