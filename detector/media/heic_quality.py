"""The encoder quality of a HEIC image, read from its HEVC headers (nothing is decoded).

A HEIC keeps its primary image as an ``hvc1`` item (or a ``grid`` of ``hvc1`` tiles, as phones save
them) whose parameter sets sit in the item's ``hvcC`` property and whose coded slices sit in ``mdat``
where ``iloc`` points. The first slice's quantiser is ``26 + init_qp_minus26`` (picture parameter set)
``+ slice_qp_delta`` (slice segment header; H.265 sections 7.3.2.2, 7.3.2.3, 7.3.6.1), read here for IDR
slices, the kind HEIF writers emit for stills. x265 (libheif's encoder, behind pillow-heif) sets that QP
from a constant rate factor, so it moves a little with content: :data:`QUALITY_BY_QP` was measured with
pillow-heif (libheif 1.23, x265 4.3) on three scikit-image and five dev photographs, which all gave the
same QP at each quality (about 47 - quality / 2). Anything else (no primary ``hvc1``, a non-IDR slice, a
cut header) gives None, and the scope then treats the HEIC as a format whose quality is unknown
(:mod:`detector.scoring.scope`).
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.media.codec_bits import Bits, iso_box, iso_boxes, quality_from_table

QUALITY_BY_QP = (
    (0, 95), (2, 90), (7, 80), (12, 70), (17, 60), (22, 50), (27, 40), (32, 30), (37, 20), (42, 10),
    (47, 0), (51, 0),
)  # fmt: skip
"""(slice QP, pillow-heif quality) pairs; the quality between them is interpolated."""

_IDR_W_RADL, _IDR_N_LP = 19, 20
_SPS, _PPS = 33, 34
MAX_SLICE_HEADER_BYTES = 256
"""Bytes of the first slice NAL unit read: its header is a few dozen bits."""
MAX_ITEM_BYTES = 8192
"""Bytes of the coded item searched for its first slice, past any SEI or other non-slice units."""
MAX_PARAMETER_SET_BYTES = 4096
"""Bytes of a parameter set read: its fields up to the ones needed (scaling lists included) fit."""
MAX_PARAMETER_SETS = 64
"""Parameter sets of one type an ``hvcC`` may list (H.265 allows 16 VPS / SPS and 64 PPS ids); more,
or one running past the box, and the file is not read: the parse stays bounded on hostile input."""


def _rbsp(nal: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of a NAL unit's payload, without its 2-byte header and its
    emulation-prevention bytes."""
    out, zeros = bytearray(), 0
    for byte in nal[2 : 2 + limit]:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _full(payload: bytes) -> tuple[int, int, bytes]:
    """(version, flags, body) of a full box."""
    return payload[0], int.from_bytes(payload[1:4], "big"), payload[4:]


def _uint(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "big") if size else 0


@dataclass(frozen=True)
class _Item:
    """What the quantiser read needs of the primary coded image: its parameter sets, slice bytes
    and NAL length size."""

    parameter_sets: dict[int, list[bytes]]
    slice_data: bytes
    length_size: int


def _items(meta: bytes) -> dict[int, bytes]:
    """Item id -> item type from ``iinf`` (``infe`` version 2 or 3)."""
    iinf = iso_box(meta, b"iinf")
    if iinf is None or len(iinf) < 6:
        return {}
    version, _, body = _full(iinf)
    types: dict[int, bytes] = {}
    for kind, infe in iso_boxes(body[2 if version == 0 else 4 :]):
        if kind != b"infe" or len(infe) < 4 or infe[0] not in (2, 3):
            continue
        id_size = 2 if infe[0] == 2 else 4
        item_id = _uint(infe, 4, id_size)
        types[item_id] = infe[4 + id_size + 2 : 4 + id_size + 6]
    return types


def _first_tile(meta: bytes, grid: int) -> int | None:
    """The first item a ``grid`` item ``grid`` is derived from (``iref`` / ``dimg``)."""
    iref = iso_box(meta, b"iref")
    if iref is None or len(iref) < 4:
        return None
    version, _, body = _full(iref)
    size = 2 if version == 0 else 4
    for kind, ref in iso_boxes(body):
        if kind == b"dimg" and _uint(ref, 0, size) == grid and _uint(ref, size, 2) > 0:
            return _uint(ref, size + 2, size)
    return None


def _property(meta: bytes, item: int, kind: bytes) -> bytes | None:
    """The payload of the property of type ``kind`` that ``ipma`` associates with ``item``."""
    iprp = iso_box(meta, b"iprp")
    ipco = iso_box(iprp or b"", b"ipco")
    ipma = iso_box(iprp or b"", b"ipma")
    if ipco is None or ipma is None or len(ipma) < 8:
        return None
    properties = list(iso_boxes(ipco))
    version, flags, body = _full(ipma)
    id_size, index_size, pos = (2 if version < 1 else 4), (2 if flags & 1 else 1), 4
    for _ in range(_uint(body, 0, 4)):
        item_id, count = _uint(body, pos, id_size), _uint(body, pos + id_size, 1)
        pos += id_size + 1
        for _ in range(count):
            index = _uint(body, pos, index_size) & (0x7FFF if index_size == 2 else 0x7F)
            pos += index_size
            if item_id == item and 0 < index <= len(properties) and properties[index - 1][0] == kind:
                return properties[index - 1][1]
        if pos > len(body):
            return None
    return None


def _location(data: bytes, meta: bytes, item: int) -> bytes | None:
    """The first :data:`MAX_ITEM_BYTES` of ``item``'s data (first extent, file offsets or ``idat``)."""
    iloc = iso_box(meta, b"iloc")
    if iloc is None or len(iloc) < 8:
        return None
    version, _, body = _full(iloc)
    offset_size, length_size = body[0] >> 4, body[0] & 15
    base_size, index_size = body[1] >> 4, (body[1] & 15) if version in (1, 2) else 0
    id_size, pos = (4 if version == 2 else 2), 2
    count = _uint(body, pos, id_size)
    pos += id_size
    for _ in range(count):
        item_id = _uint(body, pos, id_size)
        pos += id_size
        method = _uint(body, pos, 2) & 15 if version in (1, 2) else 0
        pos += 2 if version in (1, 2) else 0
        base = _uint(body, pos + 2, base_size)
        extents = _uint(body, pos + 2 + base_size, 2)
        pos += 4 + base_size
        if pos > len(body):
            return None
        if item_id == item and extents:
            start = base + _uint(body, pos + index_size, offset_size)
            source = data if method == 0 else (iso_box(meta, b"idat") if method == 1 else None)
            return None if source is None else source[start : start + MAX_ITEM_BYTES]
        pos += extents * (index_size + offset_size + length_size)
    return None


def _coded_item(data: bytes) -> _Item | None:
    """The primary image's coded item (the first tile of a grid) with its ``hvcC``."""
    meta_box = iso_box(data, b"meta")
    if meta_box is None or len(meta_box) < 4:
        return None
    meta = meta_box[4:]
    pitm = iso_box(meta, b"pitm")
    if pitm is None or len(pitm) < 6:
        return None
    item = _uint(pitm, 4, 2 if pitm[0] == 0 else 4)
    types = _items(meta)
    if types.get(item) == b"grid":
        tile = _first_tile(meta, item)
        if tile is None:
            return None
        item = tile
    hvcc = _property(meta, item, b"hvcC")
    slice_data = _location(data, meta, item)
    if types.get(item) != b"hvc1" or hvcc is None or len(hvcc) < 23 or slice_data is None:
        return None
    sets: dict[int, list[bytes]] = {}
    pos = 23
    for _ in range(hvcc[22]):
        if pos + 3 > len(hvcc):
            return None
        nal_type, count = hvcc[pos] & 0x3F, _uint(hvcc, pos + 1, 2)
        pos += 3
        for _ in range(count):
            size = _uint(hvcc, pos, 2)
            if pos + 2 + size > len(hvcc) or len(sets.get(nal_type, ())) >= MAX_PARAMETER_SETS:
                return None
            sets.setdefault(nal_type, []).append(hvcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return _Item(sets, slice_data, (hvcc[21] & 3) + 1)


@dataclass(frozen=True)
class _Sps:
    """The sequence parameter set fields an IDR slice header's length depends on."""

    separate_planes: bool
    chroma: bool
    sao: bool


@dataclass(frozen=True)
class _Pps:
    """The picture parameter set fields the first slice header's length and QP depend on."""

    sps_id: int
    extra_bits: int
    output_flag: bool
    init_qp: int


def _skip_scaling_list(bits: Bits) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not bits.f(1):
                bits.ue()
                continue
            if size_id > 1:
                bits.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                bits.se()


def _sps(nal: bytes) -> tuple[int, _Sps] | None:
    """(id, fields) of a sequence parameter set, read up to ``sample_adaptive_offset_enabled_flag``."""
    bits = Bits(_rbsp(nal, MAX_PARAMETER_SET_BYTES))
    bits.f(4)
    sub_layers = bits.f(3)
    bits.f(1 + 96)  # temporal id nesting, general profile, tier and level
    present = [(bits.f(1), bits.f(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.f(2 * (8 - sub_layers))
    for profile, level in present:
        bits.f(88 * profile + 8 * level)
    sps_id, chroma_format = bits.ue(), bits.ue()
    separate = chroma_format == 3 and bool(bits.f(1))
    width, height = bits.ue(), bits.ue()
    if bits.f(1):  # conformance window
        for _ in range(4):
            bits.ue()
    bits.ue(), bits.ue(), bits.ue()  # bit depths, log2 max POC lsb
    ordering_all = bits.f(1)
    for _ in range(sub_layers + 1 if ordering_all else 1):
        bits.ue(), bits.ue(), bits.ue()
    for _ in range(6):  # coding and transform block sizes, transform hierarchy depths
        bits.ue()
    if bits.f(1) and bits.f(1):  # scaling lists enabled and sent
        _skip_scaling_list(bits)
    bits.f(1)  # amp
    sao = bool(bits.f(1))
    if bits.overrun or not width or not height:
        return None
    return sps_id, _Sps(separate, chroma_format != 0 and not separate, sao)


def _pps(nal: bytes) -> tuple[int, _Pps] | None:
    """(id, fields) of a picture parameter set, read up to ``init_qp_minus26``."""
    bits = Bits(_rbsp(nal, MAX_PARAMETER_SET_BYTES))
    pps_id, sps_id = bits.ue(), bits.ue()
    bits.f(1)  # dependent slice segments enabled (read only by later slices)
    output_flag, extra = bool(bits.f(1)), bits.f(3)
    bits.f(2)  # sign data hiding, cabac init present
    bits.ue(), bits.ue()  # default active reference indices
    init_qp = 26 + bits.se()
    return None if bits.overrun else (pps_id, _Pps(sps_id, extra, output_flag, init_qp))


def _first_slice(data: bytes, length_size: int) -> bytes | None:
    """The first coded-slice NAL unit (type under 32) among the length-prefixed units of ``data``."""
    pos = 0
    while pos + length_size < len(data):
        size = _uint(data, pos, length_size)
        nal = data[pos + length_size : pos + length_size + size]
        if len(nal) < 3:
            return None
        if (nal[0] >> 1) & 0x3F < 32:
            return nal
        pos += length_size + size
    return None


def slice_qp(data: bytes) -> int | None:
    """The QP of the first slice of a HEIC's primary image (IDR slices only); None when not read."""
    item = _coded_item(data)
    if item is None:
        return None
    sps_by_id = dict(filter(None, (_sps(nal) for nal in item.parameter_sets.get(_SPS, []))))
    pps_by_id = dict(filter(None, (_pps(nal) for nal in item.parameter_sets.get(_PPS, []))))
    nal = _first_slice(item.slice_data, item.length_size)
    if nal is None or (nal[0] >> 1) & 0x3F not in (_IDR_W_RADL, _IDR_N_LP):
        return None
    bits = Bits(_rbsp(nal, MAX_SLICE_HEADER_BYTES))
    if not bits.f(1):  # the item's first slice must start the picture
        return None
    bits.f(1)  # no_output_of_prior_pics (an IRAP slice)
    pps = pps_by_id.get(bits.ue())
    sps = sps_by_id.get(pps.sps_id) if pps else None
    if pps is None or sps is None:
        return None
    bits.f(pps.extra_bits)
    bits.ue()  # slice type
    bits.f(int(pps.output_flag) + 2 * int(sps.separate_planes))
    if sps.sao:
        bits.f(1 + int(sps.chroma))
    qp = pps.init_qp + bits.se()
    return None if bits.overrun or not 0 <= qp <= 51 else qp


def heic_quality(data: bytes) -> int | None:
    """The pillow-heif quality (0-100) a HEIC was saved at, estimated; None when not readable."""
    qp = slice_qp(data)
    return None if qp is None else quality_from_table(qp, QUALITY_BY_QP)
