"""Crafted bytes: header lies, bombs, broken streams, bad metadata and polyglots built from base media."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, PngImagePlugin

from tests.support.hostile.media import base_jpeg, base_png, encode, face_frames, photo, save, variant


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_chunks(*chunks: bytes, base: bytes | None = None) -> bytes:
    """``base`` (a PNG) with extra chunks inserted right after IHDR."""
    data = base_png() if base is None else base
    return data[:33] + b"".join(chunks) + data[33:]


def ztxt(keyword: bytes, text_size: int) -> bytes:
    """A zTXt chunk whose text (repetitive, so it compresses well) inflates to ``text_size`` bytes."""
    return png_chunk(b"zTXt", keyword + b"\x00\x00" + zlib.compress(b"A" * text_size, 9))


def with_app(data: bytes, marker: int, payload: bytes) -> bytes:
    """A JPEG with one extra APPn (or COM) segment right after SOI."""
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def sof_claiming(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose SOF0 header claims ``width`` x ``height``."""
    at = data.index(b"\xff\xc0")
    out = bytearray(data)
    out[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def gif_claiming(width: int, height: int, image_side: int = 16) -> bytes:
    """A GIF whose logical screen is ``width`` x ``height`` around one small image."""
    small = save(Image.new("P", (image_side, image_side), 3), "GIF")
    return small[:6] + struct.pack("<HH", width, height) + small[10:]


def tiff_claiming(width: int, height: int) -> bytes:
    """A minimal little-endian RGB TIFF whose header claims ``width`` x ``height`` (one tiny strip)."""
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample (one value for all samples)
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 2),  # RGB
        (273, 4, 1, 0),  # StripOffsets (patched below)
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, 48),  # StripByteCounts
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    strip = 8 + ifd_size
    body = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        value = strip if tag == 273 else value
        packed = struct.pack("<HHI", tag, typ, count)
        body += packed + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00\x00\x00\x00" + bytes(48)


def bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP whose info header claims ``width`` x ``height`` (a few bytes of pixels)."""
    pixels = bytes(64)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def webp_canvas(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas claims ``width`` x ``height`` around a 16x16 image."""
    small = save(Image.new("RGB", (16, 16), (90, 30, 60)), "WEBP", lossless=True)
    body = small[12:]  # the VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    payload = b"WEBP" + vp8x + body
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def mjpeg_liar(size: int) -> bytes:
    """An MKV declaring 320x240 MJPEG: its first packet is a 320x240 JPEG (what probing sees), the
    next ones ``size`` x ``size`` JPEGs."""
    small = save(Image.new("L", (320, 240), 40), "JPEG", quality=50)
    big = save(Image.new("L", (size, size), 40), "JPEG", quality=5)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=4)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuvj420p"
        for i in range(2):
            packet = av.Packet(small if i == 0 else big)
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 4)
            packet.is_keyframe = True
            out.mux(packet)
    return buf.getvalue()


def patch_avc_dims(data: bytes, width: int, height: int) -> bytes:
    """An MP4 whose avc1 sample entry (and tkhd) claim ``width`` x ``height``; the SPS is unchanged."""
    out = bytearray(data)
    at = out.index(b"avc1")
    out[at + 28 : at + 32] = struct.pack(">HH", width, height)
    tkhd = out.index(b"tkhd")
    out[tkhd + 80 : tkhd + 88] = struct.pack(">II", width << 16, height << 16)
    return bytes(out)


def mdat_scrambled(data: bytes, start_fraction: float) -> bytes:
    """The MP4 with the media data from ``start_fraction`` of the mdat box on replaced by noise."""
    mdat = data.index(b"mdat")
    (length,) = struct.unpack(">I", data[mdat - 4 : mdat])
    start = mdat + 4 + int((length - 8) * start_fraction)
    end = mdat - 4 + length
    noise = np.random.default_rng(3).bytes(end - start)
    return data[:start] + noise + data[end:]


def mdhd_timescale(data: bytes, timescale: int) -> bytes:
    """The MP4 with its media header's timescale replaced (0 makes every timestamp meaningless)."""
    at = data.index(b"mdhd")
    return data[: at + 16] + struct.pack(">I", timescale) + data[at + 20 :]


def avi_dims(data: bytes, width: int, height: int) -> bytes:
    """The AVI with its video stream format (BITMAPINFOHEADER) claiming ``width`` x ``height``."""
    at = data.index(b"strf")
    return data[: at + 12] + struct.pack("<ii", width, height) + data[at + 20 :]


def noise_strip(width: int, height: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def brand(data: bytes, major: bytes, compatible: bytes | None = None) -> bytes:
    """The MP4 with its ftyp major brand (and every compatible brand) replaced."""
    size = struct.unpack(">I", data[:4])[0]
    out = bytearray(data)
    out[8:12] = major
    for i in range(16, size, 4):
        out[i : i + 4] = compatible if compatible is not None else major
    return bytes(out)


def ebml_doctype(data: bytes, doctype: bytes) -> bytes:
    at = data.index(b"\x42\x82")
    length = data[at + 2] & 0x7F
    return data[: at + 3] + doctype.ljust(length, b"\x00")[:length] + data[at + 3 + length :]


def exif_loop() -> bytes:
    """EXIF whose IFD0 points to itself as the next IFD, with an ExifIFD pointer back to IFD0."""
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHII", 0x0112, 3, 1, 6 << 16)  # Orientation 6
    ifd += struct.pack(">HHII", 0x8769, 4, 1, 8)  # ExifIFD -> IFD0 again
    ifd += struct.pack(">I", 8)  # next IFD -> IFD0 again
    return b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return save(photo(), "JPEG", quality=90, exif=exif)


def xmp_bomb() -> bytes:
    entities = '<!ENTITY a "aaaaaaaaaaaaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    packet = (
        f'<?xml version="1.0"?><!DOCTYPE x [{entities}]><x:xmpmeta xmlns:x="adobe:ns:meta/">&i;</x:xmpmeta>'
    ).encode()
    return with_app(base_jpeg(), 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet)


def jumbf_garbage() -> bytes:
    """A JPEG with an APP11 segment that starts like a C2PA JUMBF box and then is noise."""
    noise = np.random.default_rng(11).bytes(600)
    payload = b"JP" + b"\x00\x01" + b"\x00\x00\x00\x01" + struct.pack(">I", 600) + b"jumb" + noise
    return with_app(base_jpeg(), 0xEB, payload)


def flip_signature_byte(signed: bytes, offset: int = 10) -> bytes:
    """C2PA-signed media with one bit flipped inside the 64-byte ES256 signature of its COSE_Sign1."""
    start = signed.index(b"\xf6\x58\x40", signed.index(b"c2pa.signature")) + 3  # nil payload, bstr(64)
    out = bytearray(signed)
    out[start + offset] ^= 0x01
    return bytes(out)


def c2pa_signature_flipped(folder: Path) -> bytes:
    """A JPEG signed with a test chain, then one bit of its signature flipped."""
    from tests.support.c2pa_signing import make_chain, sign_media

    return flip_signature_byte(sign_media(make_chain(), variant(77), "image/jpeg"))


def many_text_chunks() -> bytes:
    info = PngImagePlugin.PngInfo()
    for i in range(4000):
        info.add_text(f"k{i}", "v" * 20)
    return save(photo(), "PNG", pnginfo=info)


def animated(fmt: str, **options: object) -> bytes:
    frames = [Image.fromarray(f) for f in face_frames(4, (96, 64))]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, **options)
    return buf.getvalue()


def long_gap() -> bytes:
    """Two frames 700 s apart (the container's duration is over the 600 s limit)."""
    base = Fraction(1, 1000)
    return encode(face_frames(2, (96, 64)), "mp4", pts=[0, 700_000], time_base=base, fps=Fraction(1, 700))


def zip_archive() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.txt", "not media" * 50)
    return buf.getvalue()


def rotated() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        stream.set_display_rotation(-90)
        for image in face_frames(6, (96, 64)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def no_packets() -> bytes:
    """An MKV with a declared 96x64 H.264 stream and no packet at all."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=8)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        out.start_encoding()  # the header is written; no frame is ever encoded
    return buf.getvalue()


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]
