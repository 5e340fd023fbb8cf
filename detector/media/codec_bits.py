"""Small readers shared by the header parsers that estimate a lossy image's encoder quality.

:mod:`detector.media.webp_quality`, :mod:`detector.media.avif_quality` and
:mod:`detector.media.heic_quality` read a quantiser from a few header bits (nothing is decoded)
and map it back to the quality setting through a measured table. All of them treat a cut or odd
file as unreadable (None), never as an error: the estimate only decides how far the scope trusts
the pixels (:mod:`detector.scoring.scope`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import numpy as np


class Bits:
    """MSB-first bit reader with Exp-Golomb codes; reads past the end as zeros and says so."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def f(self, n: int) -> int:
        """``n`` bits as an unsigned integer."""
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3] if self.pos >> 3 < len(self.data) else 0
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        """An unsigned Exp-Golomb code (H.264 / H.265 ``ue(v)``); at most 31 leading zeros."""
        zeros = 0
        while not self.f(1):
            zeros += 1
            if zeros > 31 or self.overrun:
                self.pos = 8 * len(self.data) + 1
                return 0
        return (1 << zeros) - 1 + self.f(zeros)

    def se(self) -> int:
        """A signed Exp-Golomb code (``se(v)``)."""
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    @property
    def overrun(self) -> bool:
        """Whether a read went past the end of the data."""
        return self.pos > 8 * len(self.data)


def iso_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of the ISO-BMFF boxes laid one after another in ``data``; stops at a box
    whose size is impossible."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I", data[offset : offset + 4])[0], data[offset + 4 : offset + 8]
        header = 8
        if size == 1 and offset + 16 <= len(data):
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        elif size == 0:
            size = len(data) - offset
        if size < header:
            return
        yield kind, data[offset + header : offset + size]
        offset += size


def iso_box(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first box of type ``kind`` among the boxes in ``data``."""
    return next((payload for box, payload in iso_boxes(data) if box == kind), None)


def quality_from_table(index: int, table: Sequence[tuple[int, int]]) -> int:
    """The encoder quality for quantiser ``index``, interpolated in ``(index, quality)`` pairs."""
    indices, qualities = zip(*table, strict=True)
    return round(float(np.interp(index, indices, qualities)))
