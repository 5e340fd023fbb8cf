"""The encoder quality of an AVIF still image, read from its AV1 headers (nothing is decoded).

An AVIF made by libavif as a single still picture keeps, at the start of its ``mdat`` box, the AV1
temporal unit of the image: a sequence header with ``reduced_still_picture_header`` and a frame
whose uncompressed header carries ``base_q_idx`` (0-255) right after the tile layout (AV1
specification, sections 5.5, 5.9). libavif sets that index from the quality alone:
:data:`QUALITY_BY_INDEX` was measured with Pillow's libavif on three scikit-image photographs
(and checked on dev photos), which all gave the same index at each quality. With an alpha plane
the plane read can be the alpha's (a photo saved at 30 with alpha read 38). Anything else (full
sequence headers, non-uniform tiles, a grid, a sequence header whose size is not the image's)
gives None, and the scope then treats the AVIF as a format whose quality is unknown
(:mod:`detector.scoring.scope`).
"""

from __future__ import annotations

from collections.abc import Iterator

from detector.media.codec_bits import Bits, iso_box, quality_from_table

QUALITY_BY_INDEX = (
    (0, 100), (16, 95), (32, 90), (60, 80), (76, 75), (92, 70), (120, 60), (148, 50),
    (172, 40), (184, 35), (196, 30), (216, 20), (236, 10), (249, 5), (255, 0),
)  # fmt: skip
"""(base_q_idx, libavif quality) pairs; the quality between them is interpolated."""

_SEQUENCE_HEADER, _FRAME_HEADER, _FRAME = 1, 3, 6


def _obus(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of the OBUs at the start of ``data`` (each must carry its size)."""
    offset = 0
    while offset < len(data):
        header = data[offset]
        if header & 0x80 or not header & 0x02:  # forbidden bit, or no size field
            return
        offset += 1 + ((header >> 2) & 1)
        size = shift = 0
        while offset < len(data) and shift < 56:
            byte = data[offset]
            offset += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield (header >> 3) & 0x0F, data[offset : offset + size]
        offset += size


def _tile_log2(block: int, target: int) -> int:
    k = 0
    while (block << k) < target:
        k += 1
    return k


def base_q_idx(data: bytes, width: int, height: int) -> int | None:
    """``base_q_idx`` of a reduced-header AVIF still whose coded size is ``width`` x ``height``."""
    mdat = iso_box(data, b"mdat")
    sequence: tuple[int, int, int, int] | None = None
    for kind, payload in _obus(mdat or b""):
        if kind == _SEQUENCE_HEADER:
            bits = Bits(payload)
            bits.f(3)  # profile
            if not (bits.f(1) and bits.f(1)):  # still_picture, reduced_still_picture_header
                return None
            bits.f(5)  # level
            width_bits, height_bits = bits.f(4) + 1, bits.f(4) + 1
            coded_w, coded_h = bits.f(width_bits) + 1, bits.f(height_bits) + 1
            sb128 = bits.f(1)
            bits.f(2)  # filter intra, intra edge filter
            superres = bits.f(1)
            if {coded_w, coded_h} != {width, height} or bits.overrun:
                return None
            sequence = (coded_w, coded_h, sb128, superres)
        elif kind in (_FRAME_HEADER, _FRAME) and sequence is not None:
            return _frame_base_q(Bits(payload), *sequence)
    return None


def _frame_base_q(bits: Bits, width: int, height: int, sb128: int, superres: int) -> int | None:
    """The uncompressed header of a reduced-header key frame, up to ``base_q_idx``."""
    bits.f(1)  # disable_cdf_update
    screen_content = bits.f(1)  # the reduced header selects it per frame
    if screen_content:
        bits.f(1)  # force_integer_mv
    frame_w = width
    if superres and bits.f(1):
        denominator = bits.f(3) + 9
        frame_w = (width * 8 + denominator // 2) // denominator
    if bits.f(1):  # render size differs
        bits.f(32)
    if screen_content and frame_w == width:
        bits.f(1)  # allow_intrabc
    mi_cols, mi_rows = 2 * ((frame_w + 7) >> 3), 2 * ((height + 7) >> 3)
    shift = 5 if sb128 else 4
    sb_cols, sb_rows = (mi_cols + (1 << shift) - 1) >> shift, (mi_rows + (1 << shift) - 1) >> shift
    sb_size = shift + 2
    min_cols = _tile_log2(4096 >> sb_size, sb_cols)
    max_cols, max_rows = _tile_log2(1, min(sb_cols, 64)), _tile_log2(1, min(sb_rows, 64))
    min_tiles = max(min_cols, _tile_log2((4096 * 2304) >> (2 * sb_size), sb_rows * sb_cols))
    if not bits.f(1):  # non-uniform tile spacing: not read here
        return None
    cols = min_cols
    while cols < max_cols and bits.f(1):
        cols += 1
    rows = max(min_tiles - cols, 0)
    while rows < max_rows and bits.f(1):
        rows += 1
    if cols or rows:
        bits.f(cols + rows + 2)  # context_update_tile_id, tile_size_bytes_minus_1
    index = bits.f(8)
    return None if bits.overrun else index


def avif_quality(data: bytes, width: int, height: int) -> int | None:
    """The libavif quality (0-100) an AVIF still was saved at, estimated; None when not readable."""
    index = base_q_idx(data, width, height)
    if index is None:
        return None
    return quality_from_table(index, QUALITY_BY_INDEX)
