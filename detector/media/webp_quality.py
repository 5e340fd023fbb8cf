"""The encoder quality of a lossy WebP, read from its VP8 frame header (nothing is decoded).

A lossy WebP stores its base quantiser index (0-127) in the first partition of the VP8 key frame,
behind a few boolean-coded header fields (RFC 6386, sections 7, 9.2-9.6). libwebp derives that
index mostly from the quality setting (its segments vary around it with the content), so it maps
back to the quality: :data:`QUALITY_BY_INDEX` was measured with Pillow's libwebp on three 512 px
photographs of scikit-image, which gave the same index at every quality; smaller photos can get
an index a few steps lower, so the estimate can read a few points high (two 500x375 ImageNet
photos saved at 60 read 65 and 72). Heavy WebP compression is outside what the detectors were
validated on, like heavy JPEG: the scope marks it degraded (:mod:`detector.scoring.scope`).
"""

from __future__ import annotations

import struct

from detector.media.codec_bits import quality_from_table

QUALITY_BY_INDEX = (
    (0, 100), (6, 95), (12, 90), (27, 80), (36, 75), (39, 70), (45, 60),
    (52, 50), (59, 40), (68, 30), (78, 20), (92, 10), (102, 5), (127, 0),
)  # fmt: skip
"""(base quantiser index, libwebp quality) pairs; the quality between them is interpolated."""

_KEY_FRAME_START = b"\x9d\x01\x2a"


class _BoolDecoder:
    """VP8's boolean entropy decoder (RFC 6386, section 7.3); reads past the end as zeros."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 2
        self.value = (data[0] << 8) | data[1]
        self.range, self.bit_count = 255, 0

    def read(self, prob: int) -> int:
        split = 1 + (((self.range - 1) * prob) >> 8)
        big_split = split << 8
        if self.value >= big_split:
            bit, self.range, self.value = 1, self.range - split, self.value - big_split
        else:
            bit, self.range = 0, split
        while self.range < 128:
            self.value, self.range = (self.value << 1) & 0xFFFF, self.range << 1
            self.bit_count += 1
            if self.bit_count == 8:
                self.bit_count = 0
                if self.pos < len(self.data):
                    self.value |= self.data[self.pos]
                self.pos += 1
        return bit

    def literal(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            value = (value << 1) | self.read(128)
        return value

    def skip_optional(self, times: int, bits: int, signed: bool = True) -> None:
        """``times`` fields of a flag followed, when set, by ``bits`` (and a sign bit)."""
        for _ in range(times):
            if self.literal(1):
                self.literal(bits + int(signed))


def _vp8_chunk(data: bytes) -> bytes | None:
    """The payload of the top-level ``VP8 `` chunk of a RIFF/WEBP file (None: lossless, animated)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    offset = 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if fourcc == b"VP8 ":
            return data[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
    return None


def base_quantizer(data: bytes) -> int | None:
    """The base quantiser index (0-127) of a lossy WebP's key frame, or None when there is none."""
    vp8 = _vp8_chunk(data)
    if vp8 is None or len(vp8) < 12 or vp8[0] & 1 or vp8[3:6] != _KEY_FRAME_START:
        return None
    header = _BoolDecoder(vp8[10:])
    header.literal(2)  # colour space, clamping type
    if header.literal(1):  # segmentation enabled
        update_map, update_data = header.literal(1), header.literal(1)
        if update_data:
            header.literal(1)  # absolute or delta values
            header.skip_optional(4, 7)  # segment quantisers
            header.skip_optional(4, 6)  # segment loop-filter levels
        if update_map:
            header.skip_optional(3, 8, signed=False)  # segment map probabilities
    header.literal(1 + 6 + 3)  # filter type, loop-filter level, sharpness
    if header.literal(1) and header.literal(1):  # loop-filter deltas enabled and updated
        header.skip_optional(8, 6)
    header.literal(2)  # log2 of the DCT partitions
    index = header.literal(7)
    return None if header.pos > len(header.data) else index  # past the end: a cut header


def webp_quality(data: bytes) -> int | None:
    """The libwebp quality (0-100) a lossy WebP was saved at, estimated; None when not lossy VP8."""
    index = base_quantizer(data)
    if index is None:
        return None
    return quality_from_table(index, QUALITY_BY_INDEX)
